/*
 * h_watch.c — DocumentService/Watch: a change stream over engine/doc's
 * change log (ndb_doc_watch_*), the same handler for gRPC and for REST's
 * server-sent events.
 *
 * The first message carries no events, only the position: it is sent once
 * the stream is open, so a client that waits for it knows that every change
 * committed after that will come. A page holds the events committed by the
 * time it is sent: the handler
 * waits up to WATCH_POLL_NS at a time for the first (checking for the
 * client's departure and the deadline in between), then takes what else is
 * already committed, up to the page's bounds. With nothing to send for
 * WATCH_IDLE_NS it sends a message without events carrying its position,
 * which keeps proxies from closing an idle stream and lets a client whose
 * pipeline drops most events resume from where the stream really stands.
 *
 * The stream reads from the log at the client's pace: a client that reads
 * slowly holds no buffered events, it falls behind; once the log is trimmed
 * past its position (retention), the stream ends with OUT_OF_RANGE. A
 * client that stops reading altogether blocks the handler in svc_send until
 * the transport gives up on it.
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "convert.h"
#include "h_watch.h"
#include "nexadb/v1/document.pb-c.h"

#define WATCH_POLL_NS (250 * 1000000LL)
#define WATCH_IDLE_NS (5 * 1000000000LL)
#define WATCH_PAGE_EVENTS 1000

static int64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void hex_of(const uint8_t *b, size_t n, char *out)
{
    for (size_t i = 0; i < n; i++)
        snprintf(out + 2 * i, 3, "%02x", b[i]);
}

/* The page's position as hex, in page memory. */
static char *position(svc_ctx *ctx, const ndb_doc_watch *w)
{
    uint8_t tok[NDB_DOC_TOKEN_LEN];
    ndb_doc_watch_token(w, tok);
    char *hex = svc_page_alloc(ctx, 2 * NDB_DOC_TOKEN_LEN + 1);
    if (hex != NULL)
        hex_of(tok, sizeof tok, hex);
    return hex;
}

static ndb_status send_page(svc_ctx *ctx, const ndb_doc_watch *w, Nexadb__V1__ChangeEvent **evs, size_t n,
                            ndb_errmsg *msg)
{
    Nexadb__V1__WatchResponse *out = svc_page_alloc(ctx, sizeof *out);
    if (out == NULL)
        return svc_oom(msg);
    nexadb__v1__watch_response__init(out);
    out->events = evs;
    out->n_events = n;
    if ((out->resume_token = position(ctx, w)) == NULL)
        return svc_oom(msg);
    ndb_status st = svc_send(ctx, &out->base, msg);
    if (st == NDB_OK)
        atomic_fetch_add_explicit(&ctx->app->change_events_sent, n, memory_order_relaxed);
    return st;
}

/* Stops the stream when the client went away or its deadline passed, and
 * at once when the server starts shutting down (a stream would otherwise
 * hold the drain for its whole grace period): UNAVAILABLE, which the SDKs
 * answer by resuming after their last token once the server is back. */
static ndb_status still_wanted(svc_ctx *ctx, ndb_errmsg *msg)
{
    if (atomic_load(&ctx->cancelled))
        return ndb_errmsg_set(msg, NDB_ECANCELED, "the client went away");
    if (atomic_load(&ctx->app->state) == SVC_DRAINING)
        return ndb_errmsg_set(msg, NDB_ECLOSED, "the server is shutting down; resume after the last token");
    if (atomic_load(&ctx->app->reloading))
        return ndb_errmsg_set(msg, NDB_ECLOSED, "this cluster node is loading a snapshot; resume after the last token");
    if (mono_ns() >= ctx->deadline_ns)
        return ndb_errmsg_set(msg, NDB_ETIMEDOUT, "the stream reached its deadline");
    return NDB_OK;
}

static ndb_status stream(svc_ctx *ctx, ndb_doc_watch *w, size_t room, ndb_errmsg *msg)
{
    /* first, a message without events: the stream is in place, and every
     * change committed from now on will come (a client may wait for it) */
    ndb_status st0 = send_page(ctx, w, NULL, 0, msg);
    if (st0 != NDB_OK)
        return st0;
    int64_t last_sent = mono_ns();
    for (;;) {
        Nexadb__V1__ChangeEvent **evs = svc_page_alloc(ctx, room * sizeof *evs);
        if (evs == NULL)
            return svc_oom(msg);
        size_t n = 0, bytes = 0;
        bool ended = false;
        ndb_status st = NDB_OK;
        while (n < room && bytes < SVC_PAGE_BYTES) {
            if ((st = still_wanted(ctx, msg)) != NDB_OK)
                return st;
            const void *ev;
            size_t len;
            st = ndb_doc_watch_next(w, n == 0 ? WATCH_POLL_NS : 0, &ev, &len, msg);
            if (st == NDB_ETIMEDOUT) {
                st = NDB_OK;
                if (n > 0 || mono_ns() - last_sent >= WATCH_IDLE_NS)
                    break;
                continue;
            }
            if (st == NDB_ECLOSED) { /* the invalidate event came before */
                st = NDB_OK;
                ended = true;
                break;
            }
            if (st != NDB_OK)
                return st;
            Nexadb__V1__ChangeEvent *e = svc_page_alloc(ctx, sizeof *e);
            if (e == NULL)
                return svc_oom(msg);
            nexadb__v1__change_event__init(e);
            if ((e->token = position(ctx, w)) == NULL)
                return svc_oom(msg);
            if ((st = svc_doc_to_document(&ctx->page_arena, ev, len, &e->event, msg)) != NDB_OK)
                return st;
            evs[n++] = e;
            bytes += len;
        }
        if (n > 0 || !ended) {
            if ((st = send_page(ctx, w, evs, n, msg)) != NDB_OK)
                return st;
            last_sent = mono_ns();
        }
        if (ended)
            return NDB_OK;
    }
}

ndb_status svc_watch(svc_ctx *ctx, const ProtobufCMessage *req, ProtobufCMessage **resp, ndb_errmsg *msg)
{
    (void)resp;
    const Nexadb__V1__WatchRequest *r = (const void *)req;
    ndb_doc_watch_opts o = {.collection = r->collection[0] ? r->collection : NULL};
    ndb_status st = NDB_OK;
    if (r->n_pipeline > 0)
        st = svc_encode_array(&ctx->arena, r->pipeline, r->n_pipeline, "pipeline", &o.pipeline, &o.pipeline_len, msg);
    if (st == NDB_OK)
        st = svc_token_in(ctx, r->resume_after, "resume_after", &o.resume_after, &o.resume_len, msg);
    if (st != NDB_OK)
        return st;
    if (strcmp(r->full_document, "updateLookup") == 0)
        o.update_lookup = true;
    else if (r->full_document[0] && strcmp(r->full_document, "default") != 0)
        return ndb_errmsg_set(msg, NDB_EINVAL, "full_document: \"default\" or \"updateLookup\", not \"%.40s\"",
                              r->full_document);
    if (ctx->app->cfg->change_retention_s == 0)
        return ndb_errmsg_set(msg, NDB_EUNIMPL,
                              "this server keeps no change log (--change-retention-seconds 0): nothing to watch");
    ndb_doc_watch *w;
    if ((st = ndb_doc_watch_open(ctx->app->doc, &o, &w, msg)) != NDB_OK)
        return st;
    size_t room = r->page_size > 0 && r->page_size < WATCH_PAGE_EVENTS ? (size_t)r->page_size : WATCH_PAGE_EVENTS;
    st = stream(ctx, w, room, msg);
    ndb_doc_watch_close(w);
    return st;
}
