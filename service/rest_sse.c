/* rest_sse.c — held streams over HTTP as server-sent events (rest_sse.h). */
#include "rest_sse.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dispatch.h"
#include "json_pb.h"
#include "log.h"
#include "nexadb/v1/document.pb-c.h"
#include "pool.h"
#include "replicate.h"

/* Text the handler may get ahead of the client before svc_send waits. */
#define SSE_BUFFER_BYTES ((size_t)1 << 20)

typedef struct sse sse;

struct svc_sse_hub {
    pthread_mutex_t mu;
    pthread_cond_t cv; /* signalled when the last stream goes */
    sse *head;     /* streams whose handler or response is alive */
    bool stopping; /* svc_sse_hub_end_all ran: no new streams */
};

struct sse {
    svc_sse_hub *hub;
    sse *prev, *next;
    svc_ctx ctx; /* the call's: req lives in its arena */
    const svc_route *route;
    ProtobufCMessage *req;
    struct MHD_Connection *conn;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    json_pb_buf text; /* events not yet handed to libmicrohttpd, from `taken` on */
    size_t taken;
    bool done;      /* the handler has returned; any error is in text */
    bool gone;      /* the response is finished, or the server stops: the handler must stop */
    bool suspended; /* the connection waits for text (MHD_suspend_connection) */
    int refs;       /* the handler and the response */
    bool linked;    /* in hub's list */
};

ndb_status svc_sse_hub_new(svc_sse_hub **out)
{
    svc_sse_hub *h = calloc(1, sizeof *h);
    if (h == NULL)
        return NDB_ENOMEM;
    pthread_mutex_init(&h->mu, NULL);
    pthread_cond_init(&h->cv, NULL);
    *out = h;
    return NDB_OK;
}

/* Resumes the connection if it waits (s->mu held). */
static void wake_conn(sse *s)
{
    if (s->suspended) {
        s->suspended = false;
        MHD_resume_connection(s->conn);
    }
}

/* Tells the handler to stop and the connection to finish (s->mu held). */
static void end_locked(sse *s)
{
    s->gone = true;
    atomic_store(&s->ctx.cancelled, true);
    pthread_cond_broadcast(&s->cv);
    wake_conn(s);
}

void svc_sse_hub_end_all(svc_sse_hub *h)
{
    if (h == NULL)
        return;
    pthread_mutex_lock(&h->mu);
    h->stopping = true;
    for (sse *s = h->head; s != NULL; s = s->next) {
        pthread_mutex_lock(&s->mu);
        end_locked(s);
        pthread_mutex_unlock(&s->mu);
    }
    pthread_mutex_unlock(&h->mu);
}

void svc_sse_hub_free(svc_sse_hub *h)
{
    if (h == NULL)
        return;
    pthread_mutex_lock(&h->mu); /* the handlers, cancelled, end within a poll */
    while (h->head != NULL)
        pthread_cond_wait(&h->cv, &h->mu);
    pthread_mutex_unlock(&h->mu);
    pthread_cond_destroy(&h->cv);
    pthread_mutex_destroy(&h->mu);
    free(h);
}

static void unref(sse *s)
{
    svc_sse_hub *h = s->hub;
    pthread_mutex_lock(&h->mu);
    pthread_mutex_lock(&s->mu);
    bool last = --s->refs == 0;
    pthread_mutex_unlock(&s->mu);
    if (last && s->linked) {
        if (s->prev)
            s->prev->next = s->next;
        else
            h->head = s->next;
        if (s->next)
            s->next->prev = s->prev;
        if (h->head == NULL)
            pthread_cond_broadcast(&h->cv);
    }
    pthread_mutex_unlock(&h->mu);
    if (!last)
        return;
    svc_ctx_release(&s->ctx);
    free(s->text.p);
    pthread_mutex_destroy(&s->mu);
    pthread_cond_destroy(&s->cv);
    free(s);
}

/* One message as SSE text: an event per change ("id: <token>", "data:
 * <the event as JSON>"), then "id: <resume_token>" alone, which moves an
 * EventSource's Last-Event-ID without dispatching anything. */
static ndb_status sse_send(svc_ctx *ctx, const ProtobufCMessage *m, ndb_errmsg *msg)
{
    sse *s = ctx->transport;
    const Nexadb__V1__WatchResponse *w = (const void *)m;
    const ProtobufCFieldDescriptor *fd =
        protobuf_c_message_descriptor_get_field_by_name(&nexadb__v1__change_event__descriptor, "event");
    json_pb_buf b = {0};
    for (size_t i = 0; i < w->n_events; i++) {
        json_pb_puts(&b, "id: ");
        json_pb_puts(&b, w->events[i]->token);
        json_pb_puts(&b, "\ndata: ");
        json_pb_write_field(&b, &w->events[i]->base, fd);
        json_pb_puts(&b, "\n\n");
    }
    json_pb_puts(&b, "id: ");
    json_pb_puts(&b, w->resume_token);
    json_pb_puts(&b, "\n\n");
    if (b.err != NDB_OK) {
        free(b.p);
        return ndb_errmsg_set(msg, b.err, "out of memory writing an event");
    }
    pthread_mutex_lock(&s->mu);
    while (!s->gone && s->text.len - s->taken > SSE_BUFFER_BYTES)
        pthread_cond_wait(&s->cv, &s->mu);
    if (!s->gone) {
        if (s->taken > 0) { /* drop what libmicrohttpd took */
            memmove(s->text.p, s->text.p + s->taken, s->text.len - s->taken);
            s->text.len -= s->taken;
            s->taken = 0;
        }
        json_pb_put(&s->text, b.p, b.len);
        wake_conn(s);
    }
    bool gone = s->gone;
    ndb_status err = s->text.err;
    pthread_mutex_unlock(&s->mu);
    free(b.p);
    if (gone)
        return ndb_errmsg_set(msg, NDB_ECANCELED, "the client went away");
    return err == NDB_OK ? NDB_OK : ndb_errmsg_set(msg, err, "out of memory buffering events");
}

static void run(void *arg)
{
    sse *s = arg;
    svc_app *app = s->ctx.app;
    ProtobufCMessage *resp = NULL;
    ndb_errmsg msg = {{0}};
    svc_log_bind_request(s->ctx.request_id);
    ndb_status st = svc_call(&s->ctx, s->route, s->req, &resp, &msg);
    svc_log_bind_request(NULL);
    pthread_mutex_lock(&s->mu);
    if (st != NDB_OK && !s->gone) { /* the stream's end, as an "error" event */
        json_pb_buf e = {0};
        json_pb_puts(&e, "event: error\ndata: {\"code\":");
        char num[16];
        snprintf(num, sizeof num, "%d", (int)svc_status_code(st));
        json_pb_puts(&e, num);
        json_pb_puts(&e, ",\"message\":");
        const char *text = msg.text[0] ? msg.text : ndb_strerror(st);
        json_pb_put_string(&e, text, strlen(text));
        json_pb_puts(&e, "}\n\n");
        if (e.err == NDB_OK)
            json_pb_put(&s->text, e.p, e.len);
        free(e.p);
    }
    s->done = true;
    wake_conn(s);
    pthread_mutex_unlock(&s->mu);
    svc_held_done(app);
    unref(s);
}

static ssize_t reader(void *cls, uint64_t pos, char *buf, size_t max)
{
    (void)pos;
    sse *s = cls;
    pthread_mutex_lock(&s->mu);
    ssize_t n = 0;
    if (s->text.len > s->taken) {
        n = (ssize_t)(s->text.len - s->taken < max ? s->text.len - s->taken : max);
        memcpy(buf, s->text.p + s->taken, (size_t)n);
        s->taken += (size_t)n;
        pthread_cond_broadcast(&s->cv);
    } else if (s->done || s->gone) {
        n = MHD_CONTENT_READER_END_OF_STREAM;
    } else {
        s->suspended = true;
        MHD_suspend_connection(s->conn);
    }
    pthread_mutex_unlock(&s->mu);
    return n;
}

static void response_done(void *cls)
{
    sse *s = cls;
    pthread_mutex_lock(&s->mu);
    end_locked(s);
    pthread_mutex_unlock(&s->mu);
    unref(s);
}

struct MHD_Response *svc_sse_start(svc_sse_hub *h, struct MHD_Connection *conn, const svc_route *route, svc_ctx *ctx,
                                   ProtobufCMessage *req, ndb_status *st, ndb_errmsg *msg)
{
    sse *s = calloc(1, sizeof *s);
    if (s == NULL) {
        *st = NDB_ENOMEM;
        return NULL;
    }
    s->hub = h;
    s->route = route;
    s->req = req;
    s->conn = conn;
    s->ctx = *ctx; /* the arenas move with it */
    s->ctx.deadline_ns = INT64_MAX; /* it lasts as long as the client wants */
    s->ctx.send = sse_send;
    s->ctx.transport = s;
    s->refs = 2;
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->cv, NULL);
    struct MHD_Response *resp =
        MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 16 * 1024, reader, s, response_done);
    pthread_mutex_lock(&h->mu);
    *st = h->stopping ? ndb_errmsg_set(msg, NDB_ECLOSED, "server is shutting down")
          : resp == NULL ? NDB_ENOMEM
                         : svc_held_start(s->ctx.app, run, s, msg);
    if (*st == NDB_OK) {
        s->linked = true;
        s->next = h->head;
        if (h->head)
            h->head->prev = s;
        h->head = s;
    }
    pthread_mutex_unlock(&h->mu);
    memset(ctx, 0, sizeof *ctx); /* s owns the call's memory now, or frees it below */
    if (*st != NDB_OK) {
        if (resp != NULL) {
            s->refs = 1; /* destroying the response calls response_done */
            MHD_destroy_response(resp);
        } else {
            s->refs = 1;
            unref(s);
        }
        return NULL;
    }
    return resp;
}
