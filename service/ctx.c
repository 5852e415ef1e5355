/* ctx.c — the transport-neutral parts of a call's context. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "handler.h"
#include "pool.h"

/* A call may hold at most this much memory for its request, response and work. */
#define CALL_MEMORY_LIMIT ((size_t)1 << 31)
/* One streamed page may hold at most this much. */
#define PAGE_MEMORY_LIMIT ((size_t)256 << 20)

void svc_ctx_init(svc_ctx *ctx, svc_app *app, int64_t deadline_ns)
{
    memset(ctx, 0, sizeof *ctx);
    ctx->app = app;
    ctx->deadline_ns = deadline_ns;
    atomic_init(&ctx->cancelled, false);
    svc_arena_init(&ctx->arena, CALL_MEMORY_LIMIT);
    svc_arena_init(&ctx->page_arena, PAGE_MEMORY_LIMIT);
}

void svc_ctx_release(svc_ctx *ctx)
{
    svc_arena_release(&ctx->arena);
    svc_arena_release(&ctx->page_arena);
}

ndb_status svc_send(svc_ctx *ctx, const ProtobufCMessage *m, ndb_errmsg *msg)
{
    if (ctx->send == NULL)
        return ndb_errmsg_set(msg, NDB_EINVAL, "%s is not a streaming method", ctx->method);
    ndb_status st = ndb_interrupt_check(svc_interrupt(ctx));
    if (st != NDB_OK)
        return ndb_interrupt_msg(msg, st, "stream stopped");
    st = ctx->send(ctx, m, msg);
    svc_arena_reset(&ctx->page_arena);
    return st;
}

ndb_status svc_recv(svc_ctx *ctx, ProtobufCMessage **m, ndb_errmsg *msg)
{
    *m = NULL;
    if (ctx->recv == NULL)
        return ndb_errmsg_set(msg, NDB_EINVAL, "%s is not a bidirectional method", ctx->method);
    ndb_status st = ndb_interrupt_check(svc_interrupt(ctx));
    if (st != NDB_OK)
        return ndb_interrupt_msg(msg, st, "stream stopped");
    return ctx->recv(ctx, m, msg);
}

/* tok (freed here) as hex in page memory; NULL when out of it. */
static char *page_token_out(svc_ctx *ctx, void *tok, size_t len)
{
    static const char digits[] = "0123456789abcdef";
    char *hex = svc_page_alloc(ctx, 2 * len + 1);
    for (size_t i = 0; hex != NULL && i < len; i++) {
        hex[2 * i] = digits[((const unsigned char *)tok)[i] >> 4];
        hex[2 * i + 1] = digits[((const unsigned char *)tok)[i] & 15];
    }
    if (hex != NULL)
        hex[2 * len] = '\0';
    free(tok);
    return hex;
}

ndb_status svc_stream_pages(svc_ctx *ctx, const svc_pager *p, void *state, int32_t page_size, ndb_errmsg *msg)
{
    size_t room = page_size > 0 && page_size < 100000 ? (size_t)page_size : SVC_PAGE_DOCS;
    int64_t sent = 0;
    for (;;) {
        size_t n = 0, bytes = 0;
        bool end = false;
        ndb_status st;
        while (n < room && bytes < SVC_PAGE_BYTES) {
            if ((st = p->next(ctx, state, n, room, &bytes, &end, msg)) != NDB_OK)
                return st;
            if (end)
                break;
            n++;
        }
        sent += (int64_t)n;
        char *hex = NULL;
        if (p->token != NULL) { /* on the last page too: a limit may have ended it, not the data */
            void *tok = NULL;
            size_t len = 0;
            if ((st = p->token(state, &tok, &len)) != NDB_OK)
                return ndb_errmsg_set(msg, st, "could not make a page token");
            if (len > 0 && (hex = page_token_out(ctx, tok, len)) == NULL)
                return ndb_errmsg_set(msg, NDB_ELIMIT, "response over the call's memory bound");
        }
        if ((st = p->send(ctx, state, n, sent, hex, end, msg)) != NDB_OK || end)
            return st;
    }
}

ndb_status svc_token_in(svc_ctx *ctx, const char *hex, const char *field, const void **tok, size_t *len,
                        ndb_errmsg *msg)
{
    size_t n = strlen(hex);
    *tok = NULL;
    *len = 0;
    if (n == 0)
        return NDB_OK;
    unsigned char *out = svc_alloc(ctx, n / 2 + 1);
    if (n % 2 != 0 || out == NULL)
        return ndb_errmsg_set(msg, NDB_EINVAL, "%s is not a token this server issued", field);
    for (size_t i = 0; i < n; i += 2) {
        int v = 0;
        for (int k = 0; k < 2; k++) {
            char c = hex[i + k];
            int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
            if (d < 0)
                return ndb_errmsg_set(msg, NDB_EINVAL, "%s is not a token this server issued", field);
            v = v * 16 + d;
        }
        out[i / 2] = (unsigned char)v;
    }
    *tok = out;
    *len = n / 2;
    return NDB_OK;
}

int64_t svc_ctx_left_ns(const svc_ctx *ctx)
{
    if (ctx->deadline_ns == INT64_MAX)
        return INT64_MAX;
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    int64_t left = ctx->deadline_ns - ((int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec);
    return left > 0 ? left : 0;
}

const ndb_interrupt *svc_interrupt(svc_ctx *ctx)
{
    /* filled on the handler's first call (the transport sets deadline_ns
     * after svc_ctx_init), when what is left of the deadline is its budget */
    if (ctx->intr.cancelled == NULL) {
        ctx->intr.deadline_ns = ctx->deadline_ns;
        ctx->intr.commit_margin_ns = SVC_COMMIT_MARGIN_NS;
        int64_t left = svc_ctx_left_ns(ctx);
        if (left != INT64_MAX && left / 10 > ctx->intr.commit_margin_ns)
            ctx->intr.commit_margin_ns = left / 10;
        ctx->intr.cancelled = &ctx->cancelled;
    }
    return &ctx->intr;
}

ndb_status svc_held_start(svc_app *app, void (*fn)(void *), void *arg, ndb_errmsg *msg)
{
    if (atomic_fetch_add(&app->watches, 1) >= app->cfg->max_watches) {
        atomic_fetch_sub(&app->watches, 1);
        return ndb_errmsg_set(msg, NDB_ELIMIT, "%d change streams are open (--max-watches); retry with backoff",
                              app->cfg->max_watches);
    }
    ndb_status st = app->streams != NULL ? svc_pool_submit(app->streams, fn, arg) : NDB_ECLOSED;
    if (st != NDB_OK) {
        atomic_fetch_sub(&app->watches, 1);
        return ndb_errmsg_set(msg, NDB_ECLOSED, "server is shutting down");
    }
    return NDB_OK;
}

void svc_held_done(svc_app *app)
{
    atomic_fetch_sub(&app->watches, 1);
}
