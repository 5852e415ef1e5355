/*
 * forward.c — a cluster follower passing a data call (unary, or a server
 * stream, whose pages it relays as they come) on to the leader (forward.h),
 * so a client that reached any node (a Kubernetes Service, a load balancer,
 * curl) is answered without following the leader itself.
 *
 * The request goes as it came (the decoded message packed again) to the
 * leader's client address, with the caller's remaining deadline and request
 * id, presenting this node's first read-write key: the caller was authorised
 * here already, for this very method. The call is marked nexadb-forwarded, and
 * a forwarded call is never forwarded again (a leader that changed meanwhile
 * answers UNAVAILABLE naming the next one). One channel to the current leader
 * is kept and replaced when the leader changes.
 *
 * A write sent on whose answer never came back (the leader died, the
 * connection broke) may have been applied: the caller gets UNKNOWN, not
 * UNAVAILABLE, which clients take as "not run, send it again".
 */
#include <grpc/byte_buffer_reader.h>
#include <grpc/grpc.h>
#include <grpc/grpc_security.h>
#include <grpc/support/alloc.h>
#include <grpc/support/time.h>
#include <stdio.h>
#include <stdbool.h>
#include <string.h>
#include <time.h>

#include "forward.h"
#include "log.h"
#include "peer.h"
#include "replicate.h"
#include "tls.h"

static grpc_channel *channel_to(svc_app *app, const char *address, ndb_errmsg *msg)
{
    pthread_mutex_lock(&app->fwd_mu);
    if (app->fwd_channel == NULL || strcmp(app->fwd_address, address) != 0) {
        if (app->fwd_channel != NULL)
            grpc_channel_destroy(app->fwd_channel); /* calls on it hold their own reference */
        else
            grpc_init(); /* this file's own reference, while it keeps a channel: svc_forward_close */
        if (svc_peer_channel(app, address, (int)app->cfg->max_message_bytes, &app->fwd_channel, msg) == NDB_OK)
            snprintf(app->fwd_address, sizeof app->fwd_address, "%s", address);
        else
            grpc_shutdown();
    }
    grpc_channel *ch = app->fwd_channel;
    pthread_mutex_unlock(&app->fwd_mu);
    return ch;
}

/* One batch of the call, waited for. */
static bool batch(grpc_call *call, grpc_completion_queue *cq, const grpc_op *ops, size_t n)
{
    if (grpc_call_start_batch(call, ops, n, (void *)ops, NULL) != GRPC_CALL_OK)
        return false;
    grpc_event ev = grpc_completion_queue_pluck(cq, (void *)ops, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
    return ev.type == GRPC_OP_COMPLETE && ev.success;
}

/* The value of key in md, or NULL. */
static const grpc_slice *find_key(const grpc_metadata_array *md, const char *key)
{
    for (size_t i = 0; i < md->count; i++)
        if (grpc_slice_str_cmp(md->metadata[i].key, key) == 0)
            return &md->metadata[i].value;
    return NULL;
}

ndb_status svc_forward(svc_ctx *ctx, const svc_route *route, const ProtobufCMessage *req, ProtobufCMessage **resp,
                       const char *leader, ndb_errmsg *msg)
{
    svc_app *app = ctx->app;
    char key[SVC_AUTH_MAX_KEY + 1];
    if ((app->tls != NULL && svc_tls_get(app->tls)->peer_ca == NULL) || !svc_auth_write_key(app->auth, key, sizeof key))
        return NDB_ENOTLEADER; /* the caller keeps the redirect it had */
    ndb_errmsg cm;
    grpc_channel *ch = channel_to(app, leader, &cm);
    if (ch == NULL) {
        explicit_bzero(key, sizeof key);
        return ndb_errmsg_set(msg, NDB_ENOTLEADER, "cannot pass the call on to the leader at %s: %s", leader, cm.text);
    }
    if (grpc_channel_check_connectivity_state(ch, 1) == GRPC_CHANNEL_TRANSIENT_FAILURE) {
        explicit_bzero(key, sizeof key); /* nothing sent: the caller may send it to the leader itself */
        return ndb_errmsg_set(msg, NDB_ENOTLEADER, "cannot reach the leader at %s", leader);
    }
    /* Once sent, a write whose answer does not come back may or may not have been applied. */
    ndb_status lost = (route->m->flags & SVC_M_WRITE) ? NDB_EUNKNOWN : NDB_ENOTLEADER;
    int64_t left = svc_ctx_left_ns(ctx);
    gpr_timespec deadline = left == INT64_MAX ? gpr_inf_future(GPR_CLOCK_REALTIME)
                                              : gpr_time_add(gpr_now(GPR_CLOCK_REALTIME),
                                                             gpr_time_from_nanos(left, GPR_TIMESPAN));
    size_t n = protobuf_c_message_get_packed_size(req);
    uint8_t *buf = svc_alloc(ctx, n ? n : 1);
    if (buf == NULL) {
        explicit_bzero(key, sizeof key);
        return svc_oom(msg);
    }
    protobuf_c_message_pack(req, buf);
    grpc_slice s = grpc_slice_from_copied_buffer((const char *)buf, n);
    grpc_byte_buffer *out = grpc_raw_byte_buffer_create(&s, 1);
    grpc_slice_unref(s);
    grpc_metadata md[3] = {
        {.key = grpc_slice_from_static_string("x-api-key"), .value = grpc_slice_from_copied_string(key)},
        {.key = grpc_slice_from_static_string("x-request-id"), .value = grpc_slice_from_copied_string(ctx->request_id)},
        {.key = grpc_slice_from_static_string("nexadb-forwarded"), .value = grpc_slice_from_static_string("1")},
    };
    explicit_bzero(key, sizeof key);
    grpc_completion_queue *cq = grpc_completion_queue_create_for_pluck(NULL);
    grpc_call *call = cq == NULL ? NULL
                                 : grpc_channel_create_call(ch, NULL, GRPC_PROPAGATE_DEFAULTS, cq,
                                                            grpc_slice_from_static_string(route->path), NULL, deadline,
                                                            NULL);
    if (call == NULL) {
        grpc_byte_buffer_destroy(out);
        grpc_slice_unref(md[0].value);
        grpc_slice_unref(md[1].value);
        if (cq != NULL)
            grpc_completion_queue_destroy(cq);
        return ndb_errmsg_set(msg, NDB_ENOTLEADER, "cannot call the leader at %s", leader);
    }
    grpc_metadata_array initial, trailing;
    grpc_metadata_array_init(&initial);
    grpc_metadata_array_init(&trailing);
    grpc_status_code code = GRPC_STATUS_UNKNOWN;
    grpc_slice details = grpc_empty_slice();
    grpc_op ops[4];
    memset(ops, 0, sizeof ops);
    ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
    ops[0].data.send_initial_metadata.count = 3;
    ops[0].data.send_initial_metadata.metadata = md;
    ops[1].op = GRPC_OP_SEND_MESSAGE;
    ops[1].data.send_message.send_message = out;
    ops[2].op = GRPC_OP_SEND_CLOSE_FROM_CLIENT;
    ops[3].op = GRPC_OP_RECV_INITIAL_METADATA;
    ops[3].data.recv_initial_metadata.recv_initial_metadata = &initial;
    bool stream = (route->m->flags & SVC_M_STREAM) != 0;
    ndb_status st = NDB_OK;
    size_t got = 0;
    if (!batch(call, cq, ops, 4)) {
        st = ndb_errmsg_set(msg, lost, "the leader at %s did not answer%s", leader,
                            lost == NDB_EUNKNOWN ? ": the write may or may not have been applied" : "");
    } else {
        /* the answers: one for a unary call, every page of a stream, each passed on as it comes */
        for (;;) {
            grpc_byte_buffer *in = NULL;
            grpc_op rm = {.op = GRPC_OP_RECV_MESSAGE};
            rm.data.recv_message.recv_message = &in;
            if (!batch(call, cq, &rm, 1) || in == NULL)
                break;
            ProtobufCMessage *m = NULL;
            grpc_byte_buffer_reader rd;
            if (grpc_byte_buffer_reader_init(&rd, in)) {
                grpc_slice all = grpc_byte_buffer_reader_readall(&rd);
                grpc_byte_buffer_reader_destroy(&rd);
                m = protobuf_c_message_unpack(route->md->output, stream ? &ctx->page_arena.pb : &ctx->arena.pb,
                                              GRPC_SLICE_LENGTH(all), GRPC_SLICE_START_PTR(all));
                grpc_slice_unref(all);
            }
            grpc_byte_buffer_destroy(in);
            if (m == NULL) {
                st = ndb_errmsg_set(msg, NDB_EIO, "the leader's answer did not decode");
                break;
            }
            got++;
            if (!stream) {
                *resp = m;
                continue;
            }
            if ((st = svc_send(ctx, m, msg)) != NDB_OK)
                break;
        }
        if (st != NDB_OK)
            grpc_call_cancel(call, NULL);
        grpc_op fin = {.op = GRPC_OP_RECV_STATUS_ON_CLIENT};
        fin.data.recv_status_on_client.status = &code;
        fin.data.recv_status_on_client.status_details = &details;
        fin.data.recv_status_on_client.trailing_metadata = &trailing;
        bool done = batch(call, cq, &fin, 1);
        if (st == NDB_OK && (!done || code != GRPC_STATUS_OK)) {
            /* UNAVAILABLE is the leader's refusal when it names a leader itself (replicate.h), else
             * the transport's, which may have lost the answer */
            bool no_answer = !done || (code == GRPC_STATUS_UNAVAILABLE && find_key(&trailing, SVC_LEADER_HEADER) == NULL);
            ndb_status got_st = no_answer ? lost : svc_status_from_code(code);
            char *d = grpc_slice_to_c_string(details);
            st = ndb_errmsg_set(msg, got_st, "%s%s", d && *d ? d : "the call to the leader did not complete",
                                no_answer && got_st == NDB_EUNKNOWN ? " (the write may or may not have been applied)"
                                                                    : "");
            gpr_free(d);
        } else if (st == NDB_OK && !stream && got != 1) {
            st = ndb_errmsg_set(msg, NDB_EIO, "the leader at %s answered %zu messages", leader, got);
        }
        const grpc_slice *idx = st == NDB_OK ? find_key(&trailing, SVC_LOG_INDEX_HEADER) : NULL;
        if (idx != NULL) /* the write's log entry, for the client's read-after */
            svc_log_index_parse((const char *)GRPC_SLICE_START_PTR(*idx), GRPC_SLICE_LENGTH(*idx), &ctx->log_index);
    }
    grpc_byte_buffer_destroy(out);
    grpc_slice_unref(md[0].value);
    grpc_slice_unref(md[1].value);
    grpc_slice_unref(details);
    grpc_metadata_array_destroy(&initial);
    grpc_metadata_array_destroy(&trailing);
    grpc_call_unref(call);
    grpc_completion_queue_shutdown(cq);
    grpc_completion_queue_destroy(cq);
    return st;
}

void svc_forward_close(svc_app *app)
{
    pthread_mutex_lock(&app->fwd_mu);
    if (app->fwd_channel != NULL) {
        grpc_channel_destroy(app->fwd_channel);
        app->fwd_channel = NULL;
        grpc_shutdown();
    }
    pthread_mutex_unlock(&app->fwd_mu);
}
