#include "grpc_server.h"

#include <grpc/byte_buffer.h>
#include <grpc/byte_buffer_reader.h>
#include <grpc/grpc.h>
#include <grpc/grpc_security.h>
#include <grpc/support/time.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "conn_gate.h"
#include "dispatch.h"
#include "health.h"
#include "log.h"
#include "metrics.h"
#include "pbcheck.h"
#include "replicate.h"
#include "pool.h"
#include "status_details.h"

/* Calls each queue keeps ready to accept. */
#define REQUESTS_PER_CQ 64
/* Calls waiting for a worker before new ones are refused. */
#define WORKER_QUEUE 4096
/* A bidirectional stream holds a worker while it waits for the client: at most a quarter of the
 * workers do (at least one), and a wait longer than this ends the call. */
#define BIDI_IDLE_NS (60 * (int64_t)1000000000)

typedef enum { TAG_NEW, TAG_RECV, TAG_CLOSE, TAG_SEND, TAG_STATUS, TAG_MORE } tag_kind;

typedef struct call call;

typedef struct tag {
    tag_kind kind;
    call *c;
} tag;

typedef struct cq_thread {
    svc_grpc *g;
    grpc_completion_queue *cq;
    pthread_t thread;
    int started;
} cq_thread;

struct call {
    svc_grpc *g;
    cq_thread *w;
    grpc_call *call;
    grpc_call_details details;
    grpc_metadata_array md;
    grpc_byte_buffer *recv_buf;
    int close_cancelled;
    bool closed; /* RECV_CLOSE_ON_SERVER has completed */
    const svc_route *route;
    ProtobufCMessage *req;
    svc_ctx ctx;
    _Atomic int refs;

    /* Sends: one outstanding at a time; mu guards these fields and every
     * send-side grpc_call_start_batch. */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool md_sent, send_pending, send_ok;
    grpc_byte_buffer *stream_buf;
    grpc_byte_buffer *final_buf;

    /* Bidirectional methods: the client's next message; mu guards these. */
    grpc_byte_buffer *more_buf;
    bool recv_pending, recv_ok;

    /* Health Watch streams. */
    bool watcher, watch_closed, watch_dirty, watch_has_sent;
    int watch_last;
    char *watch_service;
    call *watch_next;

    int64_t started_ns;
    size_t bytes_in, bytes_out; /* request and response messages, for the access log */
    grpc_metadata reply_md;     /* x-request-id, sent with the initial metadata */
    uint8_t *status_bin;        /* a failure's google.rpc.Status, in the trailer */
    bool not_leader;            /* refused as a follower: the trailer names the leader (replicate.h) */
    char leader[256];
    char log_index[24];         /* a write's log entry, in the trailer (replicate.h) */
    grpc_metadata trailer[2];
    tag t_new, t_recv, t_close, t_send, t_status, t_more;
};

struct svc_grpc {
    svc_app *app;
    grpc_server *server;
    cq_thread *cqs;
    int n_cqs;
    grpc_completion_queue *shutdown_cq;
    svc_pool *pool;
    _Atomic bool stopping;
    _Atomic int live; /* call objects allocated */
    pthread_mutex_t live_mu;
    pthread_cond_t live_cv;
    pthread_mutex_t watch_mu;
    call *watchers;
    _Atomic uint64_t tls_gen; /* the certificate generation gRPC has last been given */
    _Atomic int bidi;         /* bidirectional streams running */
    int bidi_max;
};

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* ---- call objects ---------------------------------------------------- */

static void call_unref(call *c)
{
    if (atomic_fetch_sub(&c->refs, 1) != 1)
        return;
    svc_grpc *g = c->g;
    if (c->call != NULL)
        grpc_call_unref(c->call);
    grpc_call_details_destroy(&c->details);
    grpc_metadata_array_destroy(&c->md);
    if (c->recv_buf != NULL)
        grpc_byte_buffer_destroy(c->recv_buf);
    if (c->more_buf != NULL)
        grpc_byte_buffer_destroy(c->more_buf);
    free(c->status_bin);
    svc_ctx_release(&c->ctx);
    pthread_mutex_destroy(&c->mu);
    pthread_cond_destroy(&c->cv);
    free(c->watch_service);
    free(c);
    pthread_mutex_lock(&g->live_mu);
    if (atomic_fetch_sub(&g->live, 1) == 1)
        pthread_cond_broadcast(&g->live_cv);
    pthread_mutex_unlock(&g->live_mu);
}

/* Arms one request for a new call on w's queue. */
static void request_call(cq_thread *w)
{
    svc_grpc *g = w->g;
    call *c = calloc(1, sizeof *c);
    if (c == NULL) {
        SVC_LOG(SVC_LOG_ERROR, "out of memory arming a gRPC call");
        return;
    }
    c->g = g;
    c->w = w;
    atomic_init(&c->refs, 1);
    grpc_call_details_init(&c->details);
    grpc_metadata_array_init(&c->md);
    pthread_mutex_init(&c->mu, NULL);
    pthread_condattr_t ca; /* CLOCK_MONOTONIC: stream_recv waits against deadlines on that clock */
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&c->cv, &ca);
    pthread_condattr_destroy(&ca);
    svc_ctx_init(&c->ctx, g->app, INT64_MAX);
    c->ctx.transport = c;
    c->t_new = (tag){TAG_NEW, c};
    c->t_recv = (tag){TAG_RECV, c};
    c->t_close = (tag){TAG_CLOSE, c};
    c->t_send = (tag){TAG_SEND, c};
    c->t_status = (tag){TAG_STATUS, c};
    c->t_more = (tag){TAG_MORE, c};
    atomic_fetch_add(&g->live, 1);
    grpc_call_error e = grpc_server_request_call(g->server, &c->call, &c->details, &c->md, w->cq, w->cq, &c->t_new);
    if (e != GRPC_CALL_OK) {
        SVC_LOG(SVC_LOG_ERROR, "grpc_server_request_call failed", LOG_INT("error", e));
        call_unref(c);
    }
}

/* Packs m into a byte buffer; NULL with *code set when too big or out of memory. */
static grpc_byte_buffer *pack(const svc_grpc *g, const ProtobufCMessage *m, grpc_status_code *code,
                              ndb_errmsg *msg)
{
    size_t size = protobuf_c_message_get_packed_size(m);
    if ((int64_t)size > g->app->cfg->max_message_bytes) {
        *code = GRPC_STATUS_RESOURCE_EXHAUSTED;
        ndb_errmsg_set(msg, NDB_ETOOBIG, "response of %zu bytes exceeds the %lld-byte message limit; ask for fewer results",
                       size, (long long)g->app->cfg->max_message_bytes);
        return NULL;
    }
    grpc_slice s = grpc_slice_malloc(size);
    protobuf_c_message_pack(m, GRPC_SLICE_START_PTR(s));
    grpc_byte_buffer *bb = grpc_raw_byte_buffer_create(&s, 1);
    grpc_slice_unref(s);
    return bb;
}

/* Ends the call: optional response message, then the status (with google.rpc.Status details
 * when it failed and they say more: status_details.h). Drops the owner reference. */
static void finish(call *c, const ProtobufCMessage *resp, grpc_status_code code, const char *details, bool retry)
{
    ndb_errmsg m;
    if (resp != NULL) {
        c->final_buf = pack(c->g, resp, &code, &m);
        if (c->final_buf == NULL)
            details = m.text;
        else
            c->bytes_out += grpc_byte_buffer_length(c->final_buf);
    }
    /* Counted before the status goes out, so a client that reads /metrics next sees this call. */
    svc_metrics_end(SVC_TRANSPORT_GRPC, c->route, (int)code, now_ns() - c->started_ns);
    grpc_op ops[3];
    size_t n = 0;
    pthread_mutex_lock(&c->mu);
    if (!c->md_sent) {
        ops[n++] = (grpc_op){.op = GRPC_OP_SEND_INITIAL_METADATA,
                             .data.send_initial_metadata = {.count = 1, .metadata = &c->reply_md}};
        c->md_sent = true;
    }
    if (c->final_buf != NULL)
        ops[n++] = (grpc_op){.op = GRPC_OP_SEND_MESSAGE, .data.send_message.send_message = c->final_buf};
    grpc_slice det = grpc_slice_from_copied_string(details != NULL ? details : "");
    ops[n] = (grpc_op){.op = GRPC_OP_SEND_STATUS_FROM_SERVER};
    ops[n].data.send_status_from_server.status = code;
    ops[n].data.send_status_from_server.status_details = details != NULL && *details ? &det : NULL;
    size_t bin_len = 0, nt = 0;
    if (code != GRPC_STATUS_OK && (c->status_bin = svc_status_details_pack((int)code, details, retry, &bin_len)) != NULL)
        c->trailer[nt++] = (grpc_metadata){.key = grpc_slice_from_static_string("grpc-status-details-bin"),
                                           .value = grpc_slice_from_static_buffer(c->status_bin, bin_len)};
    if (c->not_leader) {
        svc_cluster_leader(c->g->app, c->leader, sizeof c->leader);
        c->trailer[nt++] = (grpc_metadata){.key = grpc_slice_from_static_string(SVC_LEADER_HEADER),
                                           .value = grpc_slice_from_static_string(c->leader)};
    } else if (code == GRPC_STATUS_OK && c->ctx.log_index != 0) {
        snprintf(c->log_index, sizeof c->log_index, "%llu", (unsigned long long)c->ctx.log_index);
        c->trailer[nt++] = (grpc_metadata){.key = grpc_slice_from_static_string(SVC_LOG_INDEX_HEADER),
                                           .value = grpc_slice_from_static_string(c->log_index)};
    }
    ops[n].data.send_status_from_server.trailing_metadata_count = nt;
    ops[n].data.send_status_from_server.trailing_metadata = nt ? c->trailer : NULL;
    n++;
    atomic_fetch_add(&c->refs, 1);
    grpc_call_error e = grpc_call_start_batch(c->call, ops, n, &c->t_status, NULL);
    pthread_mutex_unlock(&c->mu);
    grpc_slice_unref(det);
    if (e != GRPC_CALL_OK) {
        SVC_LOG(SVC_LOG_ERROR, "sending status failed", LOG_STR("method", c->ctx.method), LOG_INT("error", e));
        atomic_fetch_sub(&c->refs, 1);
    }
    svc_log_bind_request(c->ctx.request_id);
    if (code != GRPC_STATUS_OK) {
        svc_log_level lvl = code == GRPC_STATUS_INTERNAL || code == GRPC_STATUS_UNKNOWN ? SVC_LOG_ERROR : SVC_LOG_DEBUG;
        SVC_LOG(lvl, "call failed", LOG_STR("method", c->ctx.method), LOG_INT("code", code),
                LOG_STR("message", details));
    }
    svc_log_access("grpc", c->ctx.method, svc_code_name((int)code), now_ns() - c->started_ns, c->bytes_in,
                   c->bytes_out, c->ctx.request_id);
    svc_log_bind_request(NULL);
    call_unref(c); /* the owner reference */
}

static void finish_status(call *c, ndb_status st, const char *details)
{
    c->not_leader = st == NDB_ENOTLEADER;
    finish(c, NULL, svc_status_code(st), details, svc_status_retryable(st));
}

/* Decodes a received message (bb, destroyed here) of the route's input type into alloc's memory. */
static ndb_status decode(call *c, grpc_byte_buffer *bb, ProtobufCAllocator *alloc, ProtobufCMessage **out,
                         ndb_errmsg *m)
{
    *out = NULL;
    grpc_byte_buffer_reader reader;
    if (!grpc_byte_buffer_reader_init(&reader, bb)) {
        grpc_byte_buffer_destroy(bb);
        return ndb_errmsg_set(m, NDB_EINVAL, "the request message could not be read");
    }
    grpc_slice s = grpc_byte_buffer_reader_readall(&reader);
    grpc_byte_buffer_reader_destroy(&reader);
    grpc_byte_buffer_destroy(bb);
    c->bytes_in += GRPC_SLICE_LENGTH(s);
    const ProtobufCMessageDescriptor *in = c->route->md->input;
    ndb_status st = svc_pb_check(in, GRPC_SLICE_START_PTR(s), GRPC_SLICE_LENGTH(s), SVC_PB_MAX_DEPTH, m);
    if (st == NDB_OK) {
        *out = protobuf_c_message_unpack(in, alloc, GRPC_SLICE_LENGTH(s), GRPC_SLICE_START_PTR(s));
        if (*out == NULL)
            st = ndb_errmsg_set(m, NDB_EINVAL, "the request is not a valid %s message", in->name);
    }
    grpc_slice_unref(s);
    return st;
}

/* ---- streaming ------------------------------------------------------- */

/* Starts one send; caller holds c->mu and has checked !send_pending. */
static bool start_send(call *c, grpc_byte_buffer *bb)
{
    grpc_op ops[2];
    size_t n = 0;
    if (!c->md_sent)
        ops[n++] = (grpc_op){.op = GRPC_OP_SEND_INITIAL_METADATA,
                             .data.send_initial_metadata = {.count = 1, .metadata = &c->reply_md}};
    ops[n++] = (grpc_op){.op = GRPC_OP_SEND_MESSAGE, .data.send_message.send_message = bb};
    c->bytes_out += grpc_byte_buffer_length(bb);
    atomic_fetch_add(&c->refs, 1);
    c->stream_buf = bb;
    c->send_pending = true;
    if (grpc_call_start_batch(c->call, ops, n, &c->t_send, NULL) != GRPC_CALL_OK) {
        atomic_fetch_sub(&c->refs, 1);
        c->stream_buf = NULL;
        c->send_pending = false;
        grpc_byte_buffer_destroy(bb);
        return false;
    }
    c->md_sent = true;
    return true;
}

static ndb_status stream_send(svc_ctx *ctx, const ProtobufCMessage *m, ndb_errmsg *msg)
{
    call *c = ctx->transport;
    grpc_status_code code;
    grpc_byte_buffer *bb = pack(c->g, m, &code, msg);
    if (bb == NULL)
        return NDB_ETOOBIG;
    pthread_mutex_lock(&c->mu);
    bool ok = start_send(c, bb);
    while (ok && c->send_pending)
        pthread_cond_wait(&c->cv, &c->mu);
    ok = ok && c->send_ok;
    pthread_mutex_unlock(&c->mu);
    return ok ? NDB_OK : ndb_errmsg_set(msg, NDB_ECANCELED, "the client went away");
}

/* A bidirectional method's next message: one RECV_MESSAGE at a time, waited for here. */
static ndb_status stream_recv(svc_ctx *ctx, ProtobufCMessage **out, ndb_errmsg *msg)
{
    call *c = ctx->transport;
    *out = NULL;
    grpc_op op = {.op = GRPC_OP_RECV_MESSAGE};
    op.data.recv_message.recv_message = &c->more_buf;
    pthread_mutex_lock(&c->mu);
    c->recv_pending = true;
    atomic_fetch_add(&c->refs, 1);
    if (grpc_call_start_batch(c->call, &op, 1, &c->t_more, NULL) != GRPC_CALL_OK) {
        atomic_fetch_sub(&c->refs, 1);
        c->recv_pending = false;
        pthread_mutex_unlock(&c->mu);
        return ndb_errmsg_set(msg, NDB_EIO, "could not receive the next message");
    }
    /* Until the message, the deadline, or BIDI_IDLE_NS; past either limit the call is cancelled,
     * which completes the receive. */
    int64_t limit = now_ns() + BIDI_IDLE_NS;
    if (ctx->deadline_ns < limit)
        limit = ctx->deadline_ns;
    bool expired = false;
    while (c->recv_pending) {
        struct timespec at;
        clock_gettime(CLOCK_MONOTONIC, &at);
        int64_t left = limit - ((int64_t)at.tv_sec * 1000000000 + at.tv_nsec);
        if (left <= 0 && !expired) {
            expired = true;
            grpc_call_cancel_with_status(c->call, GRPC_STATUS_DEADLINE_EXCEEDED,
                                         "no message before the deadline or in 60 s", NULL);
            continue;
        }
        if (expired) {
            pthread_cond_wait(&c->cv, &c->mu);
            continue;
        }
        at.tv_sec += left / 1000000000;
        at.tv_nsec += left % 1000000000;
        if (at.tv_nsec >= 1000000000) {
            at.tv_sec++;
            at.tv_nsec -= 1000000000;
        }
        pthread_cond_timedwait(&c->cv, &c->mu, &at);
    }
    bool ok = c->recv_ok;
    grpc_byte_buffer *bb = c->more_buf;
    c->more_buf = NULL;
    pthread_mutex_unlock(&c->mu);
    if (!ok) {
        if (bb != NULL)
            grpc_byte_buffer_destroy(bb);
        return ndb_errmsg_set(msg, NDB_ECANCELED, "the client went away");
    }
    if (bb == NULL) /* the client has finished sending */
        return NDB_OK;
    return decode(c, bb, &ctx->page_arena.pb, out, msg);
}

/* ---- health Watch ---------------------------------------------------- */

/* Sends the watcher its current status if it changed; caller holds c->mu. */
static void watch_send(call *c)
{
    if (c->watch_closed)
        return;
    if (c->send_pending) {
        c->watch_dirty = true;
        return;
    }
    int s = (int)svc_health_status(c->g->app, c->watch_service);
    if (c->watch_has_sent && s == c->watch_last)
        return;
    Grpc__Health__V1__HealthCheckResponse r = GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__INIT;
    r.status = (Grpc__Health__V1__HealthCheckResponse__ServingStatus)s;
    grpc_status_code code;
    ndb_errmsg m;
    grpc_byte_buffer *bb = pack(c->g, &r.base, &code, &m);
    if (bb != NULL && start_send(c, bb)) {
        c->watch_has_sent = true;
        c->watch_last = s;
    }
}

static void watch_state_changed(void *arg)
{
    svc_grpc *g = arg;
    pthread_mutex_lock(&g->watch_mu);
    for (call *c = g->watchers; c != NULL; c = c->watch_next) {
        pthread_mutex_lock(&c->mu);
        watch_send(c);
        pthread_mutex_unlock(&c->mu);
    }
    pthread_mutex_unlock(&g->watch_mu);
}

static void watch_start(call *c)
{
    const Grpc__Health__V1__HealthCheckRequest *r = (const void *)c->req;
    if (c->closed) { /* the client left before the watch began */
        finish_status(c, NDB_ECANCELED, "cancelled");
        return;
    }
    c->watch_service = strdup(r->service);
    if (c->watch_service == NULL) {
        finish_status(c, NDB_ENOMEM, "out of memory");
        return;
    }
    svc_grpc *g = c->g;
    pthread_mutex_lock(&g->watch_mu);
    c->watcher = true;
    c->watch_next = g->watchers;
    g->watchers = c;
    pthread_mutex_lock(&c->mu);
    watch_send(c);
    pthread_mutex_unlock(&c->mu);
    pthread_mutex_unlock(&g->watch_mu);
    /* The owner reference stays until the client or the shutdown closes the call. */
}

static void watch_remove(call *c)
{
    svc_grpc *g = c->g;
    pthread_mutex_lock(&g->watch_mu);
    for (call **p = &g->watchers; *p != NULL; p = &(*p)->watch_next) {
        if (*p == c) {
            *p = c->watch_next;
            break;
        }
    }
    pthread_mutex_lock(&c->mu);
    c->watch_closed = true;
    pthread_mutex_unlock(&c->mu);
    pthread_mutex_unlock(&g->watch_mu);
}

/* ---- running handlers ------------------------------------------------ */

/* Runs the call's handler and answers. Returns false, having answered
 * nothing, when a nowait attempt (ctx.nowait) found the engine busy. */
static bool handle(call *c)
{
    const svc_method *m = c->route->m;
    ProtobufCMessage *resp = NULL;
    ndb_errmsg msg = {{0}};
    if (m->flags & (SVC_M_STREAM | SVC_M_BIDI))
        c->ctx.send = stream_send;
    if (m->flags & SVC_M_BIDI)
        c->ctx.recv = stream_recv;
    svc_log_bind_request(c->ctx.request_id);
    ndb_status st = svc_call(&c->ctx, c->route, c->req, &resp, &msg);
    svc_log_bind_request(NULL);
    if (m->flags & SVC_M_BIDI)
        atomic_fetch_sub(&c->g->bidi, 1);
    if (st == NDB_EBUSY && c->ctx.nowait)
        return false;
    if (st != NDB_OK)
        finish_status(c, st, msg.text[0] ? msg.text : ndb_strerror(st));
    else if (!(m->flags & (SVC_M_STREAM | SVC_M_BIDI)) && resp == NULL)
        finish_status(c, NDB_EIO, "handler returned no response");
    else
        finish(c, (m->flags & (SVC_M_STREAM | SVC_M_BIDI)) ? NULL : resp, GRPC_STATUS_OK, NULL, false);
    return true;
}

static void run_handler(void *arg) { handle(arg); }

static void run_held(void *arg)
{
    call *c = arg;
    svc_app *app = c->g->app; /* the call may be freed once it has answered */
    handle(c);
    svc_held_done(app);
}

/* The request message has arrived (or not). */
static void on_recv(call *c, bool ok)
{
    if (!ok || c->recv_buf == NULL) {
        finish_status(c, NDB_EINVAL, "the call carried no request message");
        return;
    }
    grpc_byte_buffer *bb = c->recv_buf;
    c->recv_buf = NULL;
    ndb_errmsg m;
    if (decode(c, bb, &c->ctx.arena.pb, &c->req, &m) != NDB_OK) {
        finish_status(c, NDB_EINVAL, m.text);
        return;
    }
    unsigned flags = c->route->m->flags;
    if (flags & SVC_M_WATCH) {
        watch_start(c);
    } else if (flags & SVC_M_INLINE) {
        handle(c);
    } else if (flags & SVC_M_HELD) {
        ndb_errmsg hm;
        ndb_status st = svc_held_start(c->g->app, run_held, c, &hm);
        if (st != NDB_OK)
            finish_status(c, st, hm.text);
    } else if ((flags & SVC_M_BIDI) && atomic_fetch_add(&c->g->bidi, 1) >= c->g->bidi_max) {
        atomic_fetch_sub(&c->g->bidi, 1);
        finish_status(c, NDB_ELIMIT, "too many bidirectional streams open; retry with backoff");
    } else {
        if (flags & SVC_M_TRY_INLINE) {
            c->ctx.nowait = true;
            bool done = handle(c);
            c->ctx.nowait = false;
            if (done)
                return;
        }
        ndb_status st = svc_pool_submit(c->g->pool, run_handler, c);
        if (st != NDB_OK)
            finish_status(c, st == NDB_ELIMIT ? NDB_ELIMIT : NDB_ECLOSED,
                          st == NDB_ELIMIT ? "server overloaded: too many calls waiting; retry with backoff"
                                           : "server is shutting down");
    }
}

/* The value of metadata key (lower case), or NULL. */
static const char *find_md(const grpc_metadata_array *md, const char *key, size_t *len)
{
    size_t n = strlen(key);
    for (size_t i = 0; i < md->count; i++) {
        const grpc_slice *k = &md->metadata[i].key;
        if (GRPC_SLICE_LENGTH(*k) == n && memcmp(GRPC_SLICE_START_PTR(*k), key, n) == 0) {
            *len = GRPC_SLICE_LENGTH(md->metadata[i].value);
            return (const char *)GRPC_SLICE_START_PTR(md->metadata[i].value);
        }
    }
    return NULL;
}

/* Finds the API key in the call's metadata: x-api-key, or authorization: Bearer. */
static const char *find_key(const grpc_metadata_array *md, size_t *len)
{
    const char *v = find_md(md, "x-api-key", len);
    if (v != NULL)
        return v;
    v = find_md(md, "authorization", len);
    if (v != NULL && *len > 7 && strncasecmp(v, "bearer ", 7) == 0) {
        *len -= 7;
        return v + 7;
    }
    return NULL;
}

/* A new call has arrived on w. */
static void on_new(call *c, bool ok)
{
    svc_grpc *g = c->g;
    if (!ok) { /* the server is shutting down */
        call_unref(c);
        return;
    }
    if (!atomic_load(&g->stopping))
        request_call(c->w);
    c->started_ns = now_ns();
    svc_metrics_begin(SVC_TRANSPORT_GRPC);
    size_t idlen = 0;
    const char *id = find_md(&c->md, "x-request-id", &idlen);
    svc_request_id(c->ctx.request_id, id, idlen);
    size_t rclen = 0;
    const char *rc = find_md(&c->md, "nexadb-read-concern", &rclen);
    c->ctx.read_local = rc != NULL && rclen == 5 && memcmp(rc, "local", 5) == 0;
    c->ctx.forwarded = find_md(&c->md, "nexadb-forwarded", &rclen) != NULL;
    c->reply_md.key = grpc_slice_from_static_string("x-request-id");
    c->reply_md.value = grpc_slice_from_static_buffer(c->ctx.request_id, strlen(c->ctx.request_id));

    gpr_timespec left = gpr_time_sub(c->details.deadline, gpr_now(c->details.deadline.clock_type));
    if (gpr_time_cmp(c->details.deadline, gpr_inf_future(c->details.deadline.clock_type)) != 0)
        c->ctx.deadline_ns = c->started_ns + (int64_t)left.tv_sec * 1000000000 + left.tv_nsec;

    /* Learn when the call ends, whatever happens. */
    grpc_op close_op = {.op = GRPC_OP_RECV_CLOSE_ON_SERVER};
    close_op.data.recv_close_on_server.cancelled = &c->close_cancelled;
    atomic_fetch_add(&c->refs, 1);
    if (grpc_call_start_batch(c->call, &close_op, 1, &c->t_close, NULL) != GRPC_CALL_OK)
        atomic_fetch_sub(&c->refs, 1);

    const char *path = (const char *)GRPC_SLICE_START_PTR(c->details.method);
    size_t plen = GRPC_SLICE_LENGTH(c->details.method);
    c->route = svc_dispatch_lookup(path, plen);
    if (c->route == NULL) {
        char det[300];
        snprintf(det, sizeof det, "unknown method %.*s", (int)(plen > 200 ? 200 : plen), path);
        c->ctx.method = "(unknown)";
        finish(c, NULL, GRPC_STATUS_UNIMPLEMENTED, det, false);
        return;
    }
    c->ctx.method = c->route->path;
    size_t klen = 0;
    const char *key = find_key(&c->md, &klen);
    ndb_errmsg msg;
    ndb_status st = svc_authorize(g->app, c->route, key, klen, &c->ctx.role, &msg);
    size_t ralen = 0;
    const char *ra = find_md(&c->md, SVC_READ_AFTER_HEADER, &ralen);
    if (st == NDB_OK && ra != NULL)
        st = svc_read_after(&c->ctx, ra, ralen, &msg);
    if (st != NDB_OK) {
        finish_status(c, st, msg.text);
        return;
    }
    grpc_op recv_op = {.op = GRPC_OP_RECV_MESSAGE};
    recv_op.data.recv_message.recv_message = &c->recv_buf;
    atomic_fetch_add(&c->refs, 1);
    if (grpc_call_start_batch(c->call, &recv_op, 1, &c->t_recv, NULL) != GRPC_CALL_OK) {
        atomic_fetch_sub(&c->refs, 1);
        finish_status(c, NDB_EIO, "could not receive the request");
    }
}

static void on_event(tag *t, bool ok)
{
    call *c = t->c;
    switch (t->kind) {
    case TAG_NEW:
        on_new(c, ok);
        return; /* on_new manages its own references */
    case TAG_RECV:
        on_recv(c, ok);
        break;
    case TAG_CLOSE:
        c->closed = true;
        if (c->close_cancelled)
            atomic_store(&c->ctx.cancelled, true);
        if (c->watcher) {
            watch_remove(c);
            svc_metrics_end(SVC_TRANSPORT_GRPC, c->route, GRPC_STATUS_CANCELLED, now_ns() - c->started_ns);
            svc_log_access("grpc", c->ctx.method, svc_code_name(GRPC_STATUS_CANCELLED), now_ns() - c->started_ns,
                           c->bytes_in, c->bytes_out, c->ctx.request_id);
            call_unref(c); /* the watcher's owner reference */
        }
        pthread_mutex_lock(&c->mu);
        pthread_cond_broadcast(&c->cv);
        pthread_mutex_unlock(&c->mu);
        break;
    case TAG_SEND:
        pthread_mutex_lock(&c->mu);
        c->send_pending = false;
        c->send_ok = ok;
        grpc_byte_buffer_destroy(c->stream_buf);
        c->stream_buf = NULL;
        if (c->watcher && ok && c->watch_dirty) {
            c->watch_dirty = false;
            watch_send(c);
        }
        pthread_cond_broadcast(&c->cv);
        pthread_mutex_unlock(&c->mu);
        break;
    case TAG_MORE:
        pthread_mutex_lock(&c->mu);
        c->recv_pending = false;
        c->recv_ok = ok;
        pthread_cond_broadcast(&c->cv);
        pthread_mutex_unlock(&c->mu);
        break;
    case TAG_STATUS:
        if (c->final_buf != NULL) {
            grpc_byte_buffer_destroy(c->final_buf);
            c->final_buf = NULL;
        }
        break;
    }
    call_unref(c); /* the reference the finished operation held */
}

static void *cq_loop(void *arg)
{
    cq_thread *w = arg;
    for (;;) {
        grpc_event ev = grpc_completion_queue_next(w->cq, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
        if (ev.type == GRPC_QUEUE_SHUTDOWN)
            break;
        if (ev.type == GRPC_OP_COMPLETE)
            on_event(ev.tag, ev.success != 0);
    }
    return NULL;
}

/* ---- TLS and keepalive ----------------------------------------------- */

/* gRPC asks before each handshake: a new config when the files were reloaded. */
static grpc_ssl_certificate_config_reload_status fetch_cert_config(void *arg, grpc_ssl_server_certificate_config **out)
{
    svc_grpc *g = arg;
    const svc_tls_pem *p = svc_tls_get(g->app->tls);
    uint64_t last = atomic_load(&g->tls_gen);
    if (p->gen == last || !atomic_compare_exchange_strong(&g->tls_gen, &last, p->gen))
        return GRPC_SSL_CERTIFICATE_CONFIG_RELOAD_UNCHANGED;
    grpc_ssl_pem_key_cert_pair pair = {.private_key = p->key, .cert_chain = p->cert};
    /* The core (1.51) asserts that a fetched config has roots even when client certificates
     * are not requested (and then unused): give it the server's own chain. */
    *out = grpc_ssl_server_certificate_config_create(p->ca != NULL ? p->ca : p->cert, &pair, 1);
    if (*out == NULL) {
        atomic_store(&g->tls_gen, last);
        return GRPC_SSL_CERTIFICATE_CONFIG_RELOAD_FAIL;
    }
    return GRPC_SSL_CERTIFICATE_CONFIG_RELOAD_NEW;
}

static grpc_server_credentials *server_credentials(svc_grpc *g)
{
    if (g->app->tls == NULL)
        return grpc_insecure_server_credentials_create();
    grpc_ssl_client_certificate_request_type req = svc_tls_mutual(g->app->tls)
                                                       ? GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY
                                                       : GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE;
    grpc_ssl_server_credentials_options *o =
        grpc_ssl_server_credentials_create_options_using_config_fetcher(req, fetch_cert_config, g);
    return o != NULL ? grpc_ssl_server_credentials_create_with_options(o) : NULL;
}

/* ---- start and stop -------------------------------------------------- */

ndb_status svc_grpc_start(svc_app *app, svc_grpc **out, int *port, ndb_errmsg *msg)
{
    svc_grpc *g = calloc(1, sizeof *g);
    if (g == NULL)
        return ndb_errmsg_set(msg, NDB_ENOMEM, "out of memory starting the gRPC server");
    g->app = app;
    pthread_mutex_init(&g->live_mu, NULL);
    pthread_cond_init(&g->live_cv, NULL);
    pthread_mutex_init(&g->watch_mu, NULL);
    const svc_config *cfg = app->cfg;
    g->n_cqs = cfg->cq_threads > 0 ? cfg->cq_threads : (int)sysconf(_SC_NPROCESSORS_ONLN);
    if (g->n_cqs < 1)
        g->n_cqs = 1;

    g->bidi_max = cfg->workers / 4 > 1 ? cfg->workers / 4 : 1;
    ndb_status st = svc_pool_start(cfg->workers, WORKER_QUEUE, &g->pool, msg);
    if (st != NDB_OK) {
        free(g);
        return st;
    }
    grpc_init();
    grpc_arg args[] = {
        {.type = GRPC_ARG_INTEGER, .key = GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH,
         .value.integer = (int)cfg->max_message_bytes},
        {.type = GRPC_ARG_INTEGER, .key = GRPC_ARG_MAX_SEND_MESSAGE_LENGTH,
         .value.integer = (int)cfg->max_message_bytes},
        /* Keepalive (service/README.md): ping a connection idle keepalive_time, close it when the
         * ping goes unanswered, and keep pinging however long it stays idle (0: no limit)... */
        {.type = GRPC_ARG_INTEGER, .key = GRPC_ARG_KEEPALIVE_TIME_MS, .value.integer = cfg->keepalive_time_s * 1000},
        {.type = GRPC_ARG_INTEGER, .key = GRPC_ARG_KEEPALIVE_TIMEOUT_MS,
         .value.integer = cfg->keepalive_timeout_s * 1000},
        {.type = GRPC_ARG_INTEGER, .key = GRPC_ARG_HTTP2_MAX_PINGS_WITHOUT_DATA, .value.integer = 0},
        /* ...and accept clients' pings every keepalive_min_ping, with or without calls (the core's
         * defaults: 5 minutes, and 2 hours without calls, after which three pings mean GOAWAY). */
        {.type = GRPC_ARG_INTEGER, .key = GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, .value.integer = 1},
        {.type = GRPC_ARG_INTEGER, .key = GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS,
         .value.integer = cfg->keepalive_min_ping_s * 1000},
        {.type = GRPC_ARG_INTEGER, .key = GRPC_ARG_HTTP2_MAX_PING_STRIKES, .value.integer = 2},
        /* Connections that hold a descriptor for nothing (service/README.md, "Connections and
         * descriptors"): one that has not finished its handshake (TLS, then the client's HTTP/2
         * preface and settings) is closed after handshake_timeout; one without calls for
         * idle_timeout gets a GOAWAY (INT_MAX: never, the core's default). */
        {.type = GRPC_ARG_INTEGER, .key = GRPC_ARG_SERVER_HANDSHAKE_TIMEOUT_MS,
         .value.integer = cfg->handshake_timeout_s * 1000},
        {.type = GRPC_ARG_INTEGER, .key = GRPC_ARG_MAX_CONNECTION_IDLE_MS,
         .value.integer = cfg->idle_timeout_s > 0 ? cfg->idle_timeout_s * 1000 : INT_MAX},
    };
    grpc_channel_args chargs = {.num_args = sizeof args / sizeof args[0], .args = args};
    g->server = grpc_server_create(&chargs, NULL);
    g->cqs = calloc((size_t)g->n_cqs, sizeof *g->cqs);
    if (g->server == NULL || g->cqs == NULL) {
        st = ndb_errmsg_set(msg, NDB_ENOMEM, "could not create the gRPC server");
        goto fail;
    }
    for (int i = 0; i < g->n_cqs; i++) {
        g->cqs[i].g = g;
        g->cqs[i].cq = grpc_completion_queue_create_for_next(NULL);
        grpc_server_register_completion_queue(g->server, g->cqs[i].cq, NULL);
    }
    g->shutdown_cq = grpc_completion_queue_create_for_pluck(NULL);
    grpc_server_register_completion_queue(g->server, g->shutdown_cq, NULL);

    grpc_server_credentials *creds = server_credentials(g);
    *port = creds != NULL ? grpc_server_add_http2_port(g->server, cfg->grpc_addr, creds) : 0;
    if (creds != NULL)
        grpc_server_credentials_release(creds);
    if (*port == 0) {
        st = ndb_errmsg_set(msg, NDB_EIO, "cannot listen for gRPC on %s (address in use or invalid?)",
                            cfg->grpc_addr);
        goto fail;
    }
    /* The core has no connection limit: conn_gate.c keeps one at accept. */
    if ((st = svc_gate_watch(*port, msg)) != NDB_OK)
        goto fail;
    grpc_server_start(g->server);
    for (int i = 0; i < g->n_cqs; i++)
        for (int k = 0; k < REQUESTS_PER_CQ; k++)
            request_call(&g->cqs[i]);
    for (int i = 0; i < g->n_cqs; i++) {
        int e = pthread_create(&g->cqs[i].thread, NULL, cq_loop, &g->cqs[i]);
        if (e != 0) {
            st = ndb_errmsg_set(msg, NDB_EIO, "starting gRPC thread: %s", strerror(e));
            svc_grpc_stop(g, 0);
            return st;
        }
        g->cqs[i].started = 1;
    }
    app->on_state_change = watch_state_changed;
    app->on_state_arg = g;
    *out = g;
    return NDB_OK;

fail:
    if (g->server != NULL) {
        grpc_server_shutdown_and_notify(g->server, g->shutdown_cq, NULL);
        grpc_server_cancel_all_calls(g->server);
        grpc_completion_queue_pluck(g->shutdown_cq, NULL, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
        /* pending request_call tags complete with ok=false; free their objects */
        for (int i = 0; g->cqs != NULL && i < g->n_cqs; i++) {
            grpc_completion_queue_shutdown(g->cqs[i].cq);
            grpc_event ev;
            while ((ev = grpc_completion_queue_next(g->cqs[i].cq, gpr_inf_future(GPR_CLOCK_REALTIME), NULL)).type !=
                   GRPC_QUEUE_SHUTDOWN)
                if (ev.type == GRPC_OP_COMPLETE)
                    on_event(ev.tag, false);
            grpc_completion_queue_destroy(g->cqs[i].cq);
        }
        grpc_server_destroy(g->server);
        grpc_completion_queue_shutdown(g->shutdown_cq);
        grpc_completion_queue_destroy(g->shutdown_cq);
    }
    free(g->cqs);
    svc_pool_stop(g->pool);
    grpc_shutdown();
    free(g);
    return st;
}

static gpr_timespec in_seconds(int s)
{
    return gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC), gpr_time_from_seconds(s, GPR_TIMESPAN));
}

void svc_grpc_stop(svc_grpc *g, int grace_s)
{
    atomic_store(&g->stopping, true);
    g->app->on_state_change = NULL;
    int tag_shutdown;
    grpc_server_shutdown_and_notify(g->server, g->shutdown_cq, &tag_shutdown);

    /* Health watchers never end by themselves: let each receive NOT_SERVING
     * (sent when the state changed), for up to a second, then end them. */
    for (int i = 0; i < 100; i++) {
        bool pending = false;
        pthread_mutex_lock(&g->watch_mu);
        for (call *c = g->watchers; c != NULL; c = c->watch_next) {
            pthread_mutex_lock(&c->mu);
            pending = pending || c->send_pending || c->watch_dirty;
            pthread_mutex_unlock(&c->mu);
        }
        pthread_mutex_unlock(&g->watch_mu);
        if (!pending)
            break;
        usleep(10000);
    }
    pthread_mutex_lock(&g->watch_mu);
    for (call *c = g->watchers; c != NULL; c = c->watch_next)
        grpc_call_cancel(c->call, NULL);
    pthread_mutex_unlock(&g->watch_mu);

    grpc_event ev = grpc_completion_queue_pluck(g->shutdown_cq, &tag_shutdown, in_seconds(grace_s), NULL);
    if (ev.type != GRPC_OP_COMPLETE) {
        SVC_LOG(SVC_LOG_WARN, "calls still running after the grace period; cancelling them",
                LOG_INT("grace_seconds", grace_s));
        grpc_server_cancel_all_calls(g->server);
        grpc_completion_queue_pluck(g->shutdown_cq, &tag_shutdown, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
    }
    /* Handlers already running finish (they see cancellation); wait until every call object is freed. */
    pthread_mutex_lock(&g->live_mu);
    while (atomic_load(&g->live) > 0)
        pthread_cond_wait(&g->live_cv, &g->live_mu);
    pthread_mutex_unlock(&g->live_mu);

    for (int i = 0; i < g->n_cqs; i++)
        grpc_completion_queue_shutdown(g->cqs[i].cq);
    for (int i = 0; i < g->n_cqs; i++)
        if (g->cqs[i].started)
            pthread_join(g->cqs[i].thread, NULL);
    svc_pool_stop(g->pool);
    grpc_server_destroy(g->server);
    for (int i = 0; i < g->n_cqs; i++)
        grpc_completion_queue_destroy(g->cqs[i].cq);
    grpc_completion_queue_shutdown(g->shutdown_cq);
    while (grpc_completion_queue_pluck(g->shutdown_cq, NULL, gpr_inf_future(GPR_CLOCK_REALTIME), NULL).type !=
           GRPC_QUEUE_SHUTDOWN)
        ;
    grpc_completion_queue_destroy(g->shutdown_cq);
    free(g->cqs);
    pthread_mutex_destroy(&g->live_mu);
    pthread_cond_destroy(&g->live_cv);
    pthread_mutex_destroy(&g->watch_mu);
    free(g);
    grpc_shutdown();
}
