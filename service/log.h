/*
 * log.h — structured logs: one JSON object per line on stderr.
 *
 *   SVC_LOG(SVC_LOG_INFO, "grpc listening", LOG_STR("addr", a), LOG_INT("port", p));
 *
 * Fields are typed so strings are always escaped. Lines below the configured
 * level cost one comparison. Thread safety: lines from different threads never
 * interleave. Until svc_log_start_writer each line is one write(2); after it, a
 * thread of the log's own writes them in order, many lines per write(2), so a
 * call does not wait for stderr (a caller waits only when that thread is a
 * whole 1 MiB batch behind); every line is out when the process exits.
 *
 * Calls: each gets a request id (the client's x-request-id when it is a sane
 * one, else a new one), returned to the client and carried by every line the
 * thread running the call writes while it is bound (svc_log_bind_request);
 * one "call" line at info level ends each call (svc_log_access).
 */
#ifndef SVC_LOG_H
#define SVC_LOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum svc_log_level {
    SVC_LOG_DEBUG = 0,
    SVC_LOG_INFO = 1,
    SVC_LOG_WARN = 2,
    SVC_LOG_ERROR = 3,
} svc_log_level;

typedef enum { LOG_F_END = 0, LOG_F_STR, LOG_F_INT, LOG_F_DBL, LOG_F_BOOL } log_field_type;

typedef struct log_field {
    log_field_type type;
    const char *key;
    const char *s;
    int64_t i;
    double d;
} log_field;

#define LOG_STR(k, v) ((log_field){.type = LOG_F_STR, .key = (k), .s = (v)})
#define LOG_INT(k, v) ((log_field){.type = LOG_F_INT, .key = (k), .i = (int64_t)(v)})
#define LOG_DBL(k, v) ((log_field){.type = LOG_F_DBL, .key = (k), .d = (double)(v)})
#define LOG_BOOL(k, v) ((log_field){.type = LOG_F_BOOL, .key = (k), .i = (v) ? 1 : 0})

#define SVC_LOG(level, msg, ...)                                                 \
    do {                                                                         \
        if ((level) >= svc_log_threshold)                                        \
            svc_log_fields((level), (msg), (const log_field[]){__VA_ARGS__ __VA_OPT__(,) \
                                                               {.type = LOG_F_END}}); \
    } while (0)

extern svc_log_level svc_log_threshold;
extern bool svc_log_calls; /* svc_log_access writes its line (--no-access-log clears it) */

/* Starts the writer thread (once; false when it cannot, and lines keep going
 * out one write each). Lines still queued are written at exit. */
bool svc_log_start_writer(void);

/* Parses "debug", "info", "warn" or "error"; returns -1 for anything else. */
int svc_log_parse_level(const char *name);

/* Writes one line: {"ts":..., "level":..., "msg":..., fields...}, plus
 * "request_id" while the thread is bound to a call. */
void svc_log_fields(svc_log_level level, const char *msg, const log_field *fields);

/* Room for a request id and its NUL. */
#define SVC_REQUEST_ID_CAP 65

/* The call's request id into out: given (len bytes, may be NULL) when it is
 * 1..64 characters of [A-Za-z0-9._:-], else a new one (16 hex digits, unique
 * within this process). */
void svc_request_id(char out[SVC_REQUEST_ID_CAP], const char *given, size_t len);

/* Lines this thread writes carry id (NULL: none) until the next call. */
void svc_log_bind_request(const char *id);

/* The call's line: {"msg":"call","transport":...,"method":...,"code":...,"ms":...,
 * "bytes_in":...,"bytes_out":...,"request_id":...} at info level. */
void svc_log_access(const char *transport, const char *method, const char *code, int64_t ns, size_t bytes_in,
                    size_t bytes_out, const char *request_id);

#endif /* SVC_LOG_H */
