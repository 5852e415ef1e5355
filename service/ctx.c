/* ctx.c — the transport-neutral parts of a call's context. */
#include <stdint.h>
#include <string.h>
#include <time.h>

#include "handler.h"

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
    if (svc_cancelled(ctx))
        return ndb_errmsg_set(msg, NDB_ECANCELED, "client went away or the deadline passed");
    ndb_status st = ctx->send(ctx, m, msg);
    svc_arena_reset(&ctx->page_arena);
    return st;
}

bool svc_cancelled(svc_ctx *ctx)
{
    if (atomic_load_explicit(&ctx->cancelled, memory_order_relaxed))
        return true;
    if (ctx->deadline_ns == INT64_MAX)
        return false;
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec >= ctx->deadline_ns;
}

ndb_status svc_unimplemented(svc_ctx *ctx, const ProtobufCMessage *req, ProtobufCMessage **resp,
                             ndb_errmsg *msg)
{
    (void)req;
    (void)resp;
    const char *engine = strstr(ctx->method, "VectorService") != NULL
                             ? "the vector engine (vector/)"
                             : "the document engine (engine/doc)";
    return ndb_errmsg_set(msg, NDB_EUNIMPL, "%s is not implemented yet: it needs %s, which is not built",
                          ctx->method, engine);
}
