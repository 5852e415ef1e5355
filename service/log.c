#include "log.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "json_text.h"

svc_log_level svc_log_threshold = SVC_LOG_INFO;

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
    l.buf[l.len++] = '}';
    l.buf[l.len++] = '\n';
    /* One write per line; a short write to stderr is not worth retrying. */
    ssize_t w = write(STDERR_FILENO, l.buf, l.len);
    (void)w;
}
