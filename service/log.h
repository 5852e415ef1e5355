/*
 * log.h — structured logs: one JSON object per line on stderr.
 *
 *   SVC_LOG(SVC_LOG_INFO, "grpc listening", LOG_STR("addr", a), LOG_INT("port", p));
 *
 * Fields are typed so strings are always escaped. Lines below the configured
 * level cost one comparison. Thread safety: every call writes its line with a
 * single write(2), so lines from different threads never interleave.
 */
#ifndef SVC_LOG_H
#define SVC_LOG_H

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

/* Parses "debug", "info", "warn" or "error"; returns -1 for anything else. */
int svc_log_parse_level(const char *name);

/* Writes one line: {"ts":..., "level":..., "msg":..., fields...}. */
void svc_log_fields(svc_log_level level, const char *msg, const log_field *fields);

#endif /* SVC_LOG_H */
