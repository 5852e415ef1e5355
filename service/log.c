#include "log.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "json_text.h"

svc_log_level svc_log_threshold = SVC_LOG_INFO;
bool svc_log_calls = true;

static const char *const level_names[] = {"debug", "info", "warn", "error"};

int svc_log_parse_level(const char *name)
{
    for (int i = 0; i < 4; i++)
        if (strcmp(name, level_names[i]) == 0)
            return i;
    return -1;
}

/* A line under construction; text past the end is dropped, the line stays valid JSON. */
typedef struct line {
    char buf[4096];
    size_t len;
} line;

static void put(line *l, const char *s, size_t n)
{
    size_t room = sizeof l->buf - 2 - l->len; /* keep space for "}\n" */
    if (n > room)
        n = room;
    memcpy(l->buf + l->len, s, n);
    l->len += n;
}

__attribute__((format(printf, 2, 3)))
static void putf(line *l, const char *fmt, ...)
{
    char tmp[64];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n > 0)
        put(l, tmp, (size_t)n < sizeof tmp ? (size_t)n : sizeof tmp - 1);
}

/* Appends s as a JSON string literal. */
static void put_json_string(line *l, const char *s)
{
    put(l, "\"", 1);
    for (const unsigned char *p = (const unsigned char *)(s ? s : ""); *p; p++) {
        /* stop early rather than emit a truncated escape sequence */
        if (sizeof l->buf - 2 - l->len < 8)
            break;
        char e[6];
        size_t k = ndb_json_escape(*p, e);
        if (k == 0)
            put(l, (const char *)p, 1);
        else
            put(l, e, k);
    }
    put(l, "\"", 1);
}

static _Thread_local const char *bound_request;

void svc_log_bind_request(const char *id)
{
    bound_request = id;
}

void svc_log_fields(svc_log_level level, const char *msg, const log_field *fields)
{
    line l = {.len = 0};
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    char when[40];
    strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%S", &tm);
    put(&l, "{\"ts\":\"", 7);
    put(&l, when, strlen(when));
    putf(&l, ".%03ldZ\",\"level\":\"%s\",\"msg\":", ts.tv_nsec / 1000000, level_names[level]);
    put_json_string(&l, msg);
    for (const log_field *f = fields; f->type != LOG_F_END; f++) {
        put(&l, ",", 1);
        put_json_string(&l, f->key);
        put(&l, ":", 1);
        switch (f->type) {
        case LOG_F_STR: put_json_string(&l, f->s); break;
        case LOG_F_INT: putf(&l, "%" PRId64, f->i); break;
        case LOG_F_DBL: putf(&l, "%.6g", f->d); break;
        case LOG_F_BOOL: put(&l, f->i ? "true" : "false", f->i ? 4 : 5); break;
        case LOG_F_END: break;
        }
    }
    if (bound_request != NULL) {
        put(&l, ",\"request_id\":", 14);
        put_json_string(&l, bound_request);
    }
    l.buf[l.len++] = '}';
    l.buf[l.len++] = '\n';
    /* One write per line; a short write to stderr is not worth retrying. */
    ssize_t w = write(STDERR_FILENO, l.buf, l.len);
    (void)w;
}

void svc_request_id(char out[SVC_REQUEST_ID_CAP], const char *given, size_t len)
{
    static _Atomic uint64_t next;
    static _Atomic uint32_t prefix; /* random per process, so ids from restarts do not repeat */
    bool ok = given != NULL && len > 0 && len < SVC_REQUEST_ID_CAP;
    for (size_t i = 0; ok && i < len; i++) {
        char c = given[i];
        ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
             c == ':' || c == '-';
    }
    if (ok) {
        memcpy(out, given, len);
        out[len] = '\0';
        return;
    }
    uint32_t p = atomic_load_explicit(&prefix, memory_order_relaxed);
    if (p == 0) {
        uint32_t r = 0;
        if (getrandom(&r, sizeof r, GRND_NONBLOCK) != (ssize_t)sizeof r)
            r = (uint32_t)getpid() ^ (uint32_t)time(NULL);
        r |= 1; /* never 0, the unset mark */
        uint32_t unset = 0;
        if (!atomic_compare_exchange_strong(&prefix, &unset, r))
            r = unset;
        p = r;
    }
    uint64_t n = atomic_fetch_add_explicit(&next, 1, memory_order_relaxed);
    snprintf(out, SVC_REQUEST_ID_CAP, "%08" PRIx32 "%08" PRIx64, p, n & 0xffffffffu);
}

void svc_log_access(const char *transport, const char *method, const char *code, int64_t ns, size_t bytes_in,
                    size_t bytes_out, const char *request_id)
{
    if (!svc_log_calls)
        return;
    const char *bound = bound_request;
    bound_request = NULL; /* the line names it itself */
    SVC_LOG(SVC_LOG_INFO, "call", LOG_STR("transport", transport), LOG_STR("method", method), LOG_STR("code", code),
            LOG_DBL("ms", (double)ns / 1e6), LOG_INT("bytes_in", bytes_in), LOG_INT("bytes_out", bytes_out),
            LOG_STR("request_id", request_id));
    bound_request = bound;
}
