#include "log.h"

#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
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

/* ---- the writer: lines go out in order, batched by a thread of their own once started ---- */

#define BATCH_BYTES ((size_t)1 << 20)

static struct {
    pthread_mutex_t mu;
    pthread_cond_t more, room; /* lines waiting; space freed */
    char *fill, *spare;        /* callers append to fill; the thread writes spare */
    size_t used;
    bool running, stopping;
    pthread_t thread;
} wr = {.mu = PTHREAD_MUTEX_INITIALIZER, .more = PTHREAD_COND_INITIALIZER, .room = PTHREAD_COND_INITIALIZER};

/* Every byte of p to stderr; a failing stderr is not worth retrying. */
static void write_all(const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(STDERR_FILENO, p, n);
        if (w <= 0)
            return;
        p += w;
        n -= (size_t)w;
    }
}

static void *writer_main(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&wr.mu);
    for (;;) {
        while (wr.used == 0 && !wr.stopping)
            pthread_cond_wait(&wr.more, &wr.mu);
        if (wr.used == 0)
            break; /* stopping, and everything is out */
        char *batch = wr.fill;
        size_t n = wr.used;
        wr.fill = wr.spare;
        wr.spare = batch;
        wr.used = 0;
        pthread_cond_broadcast(&wr.room);
        pthread_mutex_unlock(&wr.mu);
        write_all(batch, n); /* the next batch fills meanwhile; it goes out after this one */
        pthread_mutex_lock(&wr.mu);
    }
    pthread_mutex_unlock(&wr.mu);
    return NULL;
}

/* One whole line out: straight to stderr before the writer starts and after it stops, else
 * appended to the batch (waiting for room when the writer falls a batch behind). */
static void emit(const char *p, size_t n)
{
    pthread_mutex_lock(&wr.mu);
    if (!wr.running) {
        write_all(p, n); /* under mu: lines never interleave */
        pthread_mutex_unlock(&wr.mu);
        return;
    }
    while (wr.used + n > BATCH_BYTES && wr.running)
        pthread_cond_wait(&wr.room, &wr.mu);
    if (!wr.running) {
        write_all(p, n);
    } else {
        if (wr.used == 0)
            pthread_cond_signal(&wr.more);
        memcpy(wr.fill + wr.used, p, n);
        wr.used += n;
    }
    pthread_mutex_unlock(&wr.mu);
}

static void stop_writer(void)
{
    pthread_mutex_lock(&wr.mu);
    if (!wr.running) {
        pthread_mutex_unlock(&wr.mu);
        return;
    }
    wr.stopping = true;
    pthread_cond_signal(&wr.more);
    pthread_mutex_unlock(&wr.mu);
    pthread_join(wr.thread, NULL);
    pthread_mutex_lock(&wr.mu);
    wr.running = false;
    pthread_cond_broadcast(&wr.room);
    pthread_mutex_unlock(&wr.mu);
}

bool svc_log_start_writer(void)
{
    pthread_mutex_lock(&wr.mu);
    bool ok = wr.running;
    if (!ok) {
        wr.fill = malloc(BATCH_BYTES);
        wr.spare = malloc(BATCH_BYTES);
        /* The thread takes no signals (SIGTERM is main's to wait for): it starts with all blocked. */
        sigset_t all, old;
        sigfillset(&all);
        pthread_sigmask(SIG_BLOCK, &all, &old);
        ok = wr.fill != NULL && wr.spare != NULL && pthread_create(&wr.thread, NULL, writer_main, NULL) == 0;
        pthread_sigmask(SIG_SETMASK, &old, NULL);
        if (ok) {
            wr.running = true;
        } else {
            free(wr.fill);
            free(wr.spare);
            wr.fill = wr.spare = NULL;
        }
    }
    pthread_mutex_unlock(&wr.mu);
    if (ok)
        atexit(stop_writer); /* exit or a return from main: every line out first */
    return ok;
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
    emit(l.buf, l.len);
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
