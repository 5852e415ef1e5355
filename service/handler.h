/*
 * handler.h — what a method handler sees, whichever transport called it.
 *
 * The gRPC server and the REST shim both decode a request into a protobuf-c
 * message, authorise it, and call the same handler with an svc_ctx. A handler
 * returns NDB_OK with its response (unary) or after sending pages with
 * svc_send (server-streaming; a bidirectional handler also reads the client's
 * further messages with svc_recv); on failure it returns a status and fills msg.
 *
 * Memory: the request, the response and anything built with svc_alloc are
 * owned by the call's arena and released when the call ends; a handler never
 * frees them. Pages sent by svc_send may come from svc_page_alloc, whose
 * memory is reused after each send.
 */
#ifndef SVC_HANDLER_H
#define SVC_HANDLER_H

#include <protobuf-c/protobuf-c.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "app.h"
#include "arena.h"
#include "auth.h"
#include "log.h"
#include "ndb_interrupt.h"
#include "ndb_status.h"

typedef struct svc_ctx svc_ctx;

/* Delivers one streamed message to the client; blocks until the transport
 * can take more (flow control). NDB_ECANCELED when the client is gone. */
typedef ndb_status (*svc_send_fn)(svc_ctx *ctx, const ProtobufCMessage *m, ndb_errmsg *msg);

/* Receives the client's next message into page memory; *m NULL when the client
 * has finished sending. NDB_ECANCELED when it is gone. */
typedef ndb_status (*svc_recv_fn)(svc_ctx *ctx, ProtobufCMessage **m, ndb_errmsg *msg);

struct svc_ctx {
    svc_app *app;
    const char *method;    /* full path, e.g. "/nexadb.v1.DocumentService/Get" */
    svc_role role;
    svc_arena arena;       /* the call's memory */
    svc_arena page_arena;  /* reused after each svc_send */
    int64_t deadline_ns;   /* CLOCK_MONOTONIC; INT64_MAX when none */
    atomic_bool cancelled; /* set by the transport when the client goes away */
    svc_send_fn send;      /* set by the transport for streaming methods */
    svc_recv_fn recv;      /* set by the transport for bidirectional methods */
    bool nowait;           /* SVC_M_TRY_INLINE on the transport's thread: NDB_EBUSY instead of waiting */
    bool http;             /* called through the REST shim (a stream is merged into one answer) */
    bool read_local;       /* cluster: the client takes this node's possibly stale state (read concern "local") */
    bool forwarded;        /* cluster: a follower passed this call on (never passed on again) */
    uint64_t read_after;   /* cluster: a read waits until this node has applied that log entry (0: none) */
    uint64_t log_index;    /* cluster: the log entry of the write this call made, told to the client (0: none) */
    void *transport;       /* the transport's own state */
    char request_id[SVC_REQUEST_ID_CAP]; /* log lines and the x-request-id reply header */
    ndb_interrupt intr;    /* what the engines check: filled by svc_interrupt */
};

typedef ndb_status (*svc_handler_fn)(svc_ctx *ctx, const ProtobufCMessage *req, ProtobufCMessage **resp,
                                     ndb_errmsg *msg);

/* Method flags. */
enum {
    SVC_M_STREAM = 1 << 0, /* server-streaming: results go through svc_send */
    SVC_M_WRITE = 1 << 1,  /* changes data: needs a read-write key */
    SVC_M_OPEN = 1 << 2,   /* needs no key (health, status) */
    SVC_M_INLINE = 1 << 3, /* never blocks: may run on the transport's thread */
    SVC_M_WATCH = 1 << 4,  /* health Watch: event-driven, handled by the transport */
    /* Tried first on the transport's thread with ctx->nowait set; a handler that
     * would have to wait for a lock returns NDB_EBUSY having changed nothing,
     * and the call then runs on the worker pool like any other. */
    SVC_M_TRY_INLINE = 1 << 5,
    /* Bidirectional streaming (gRPC only): the first message arrives as req,
     * the next ones through svc_recv; answers go through svc_send. */
    SVC_M_BIDI = 1 << 6,
    /* A stream that stays open as long as the client wants (Watch): runs on
     * its own thread from the app's stream pool, at most --max-watches at
     * once over both transports (beyond: RESOURCE_EXHAUSTED). */
    SVC_M_HELD = 1 << 7,
};

typedef struct svc_method {
    const char *name; /* as in the .proto, e.g. "InsertOne" */
    svc_handler_fn fn;
    unsigned flags;
} svc_method;

/* A service's handlers, in the order of its descriptor's methods. */
typedef struct svc_service {
    const ProtobufCServiceDescriptor *desc;
    const svc_method *methods;
    size_t n_methods;
} svc_service;

/* The handler tables, one per service file. */
extern const svc_service svc_admin_service;
extern const svc_service svc_document_service;
extern const svc_service svc_vector_service;
extern const svc_service svc_health_service;
extern const svc_service svc_reflection_service;
extern const svc_service svc_reflection_v1alpha_service;

/* Call-lifetime memory; NULL when over the per-call memory bound. */
static inline void *svc_alloc(svc_ctx *ctx, size_t n)
{
    return svc_arena_alloc(&ctx->arena, n);
}

/* A new protobuf-c message of type in call memory, initialised with init;
 * NULL when over the bound. */
#define SVC_NEW(ctx, type, init)                                              \
    ({                                                                        \
        type *p_ = svc_alloc((ctx), sizeof(type));                            \
        if (p_ != NULL)                                                       \
            init(p_);                                                         \
        p_;                                                                   \
    })

/* The error for a response that outgrew the call's memory bound. */
static inline ndb_status svc_oom(ndb_errmsg *msg)
{
    return ndb_errmsg_set(msg, NDB_ELIMIT, "response over the call's memory bound");
}

/* Memory for one streamed page: valid until the next svc_send. */
static inline void *svc_page_alloc(svc_ctx *ctx, size_t n)
{
    return svc_arena_alloc(&ctx->page_arena, n);
}

/* Sends one page of a server-streaming response, then frees page memory. */
ndb_status svc_send(svc_ctx *ctx, const ProtobufCMessage *m, ndb_errmsg *msg);

/* A bidirectional method's next request (SVC_M_BIDI), in page memory: valid
 * until the next svc_send. *m NULL when the client has finished sending. */
ndb_status svc_recv(svc_ctx *ctx, ProtobufCMessage **m, ndb_errmsg *msg);

/*
 * A server-streaming answer read from an engine cursor, a page per message
 * (Find, Aggregate, FindVectors). svc_stream_pages fills each page with at
 * most page_size results (the request's page_size when it is 1..99,999,
 * else SVC_PAGE_DOCS) and about SVC_PAGE_BYTES of encoded results, and hands
 * it to `send`, which builds the method's response and calls svc_send. A page
 * token travels as lower-case hex of the engine's opaque bytes.
 */
#define SVC_PAGE_DOCS 1000
#define SVC_PAGE_BYTES ((size_t)1 << 20)
typedef struct svc_pager {
    /* Puts the next result at index i of the page being filled (in page
     * memory, with room for `room` results: allocate the page's array when i
     * is 0) and adds its encoded size to *bytes; sets *end, putting nothing,
     * when the cursor is exhausted. */
    ndb_status (*next)(svc_ctx *ctx, void *state, size_t i, size_t room, size_t *bytes, bool *end,
                       ndb_errmsg *msg);
    /* A token resuming after the last result read (malloc'd; the pager frees
     * it), or NULL for methods without tokens. */
    ndb_status (*token)(void *state, void **tok, size_t *len);
    /* Sends the page of n results; count is the results sent so far with
     * them, token the next page's in hex (NULL on the last page and for
     * methods without tokens). */
    ndb_status (*send)(svc_ctx *ctx, void *state, size_t n, int64_t count, char *token, bool last,
                       ndb_errmsg *msg);
} svc_pager;
ndb_status svc_stream_pages(svc_ctx *ctx, const svc_pager *p, void *state, int32_t page_size, ndb_errmsg *msg);

/* Decodes a request's token (a page token, a change stream's resume token)
 * from hex into call memory: *len 0 for "", NDB_EINVAL naming field for
 * text this server did not issue. */
ndb_status svc_token_in(svc_ctx *ctx, const char *hex, const char *field, const void **tok, size_t *len,
                        ndb_errmsg *msg);

/*
 * The call's deadline and cancellation as the engines take them (borrowed
 * until the call ends): they stop their work within a few milliseconds of
 * either, with NDB_ETIMEDOUT (DEADLINE_EXCEEDED) or NDB_ECANCELED (CANCELLED).
 * A write starts its commit only while SVC_COMMIT_MARGIN_NS, or a tenth of
 * the time the call had left when the handler first asked (whichever is
 * more), remain before the deadline, so that its append, its fsync and the
 * answer's way back fit before the client gives up: a write whose client
 * saw DEADLINE_EXCEEDED has then applied nothing, unless those took longer.
 */
#define SVC_COMMIT_MARGIN_NS (20 * 1000000LL)
const ndb_interrupt *svc_interrupt(svc_ctx *ctx);

/* Runs fn(arg), a SVC_M_HELD call, on the app's stream pool; fn calls
 * svc_held_done(app) when the call has ended. NDB_ELIMIT (msg says so) when
 * --max-watches such calls are open, NDB_ECLOSED while shutting down. */
ndb_status svc_held_start(svc_app *app, void (*fn)(void *), void *arg, ndb_errmsg *msg);
void svc_held_done(svc_app *app);

/* Prepares a context for one call; the transport sets send/transport after. */
void svc_ctx_init(svc_ctx *ctx, svc_app *app, int64_t deadline_ns);

/* Nanoseconds left before ctx's deadline (0 once passed); INT64_MAX without one. */
int64_t svc_ctx_left_ns(const svc_ctx *ctx);
void svc_ctx_release(svc_ctx *ctx);

#endif /* SVC_HANDLER_H */
