/*
 * replicate.c — cluster mode (README.md "Running a cluster"): every write
 * request to a document or vector collection becomes a command of the
 * replicated log (cluster/), and each node runs it through the same handler
 * when the log commits it; reads run on the leader after a read fence.
 *
 * A command is the request as the client sent it (protobuf), with the
 * method and the caller's role:
 *
 *   u8 version (1) | u8 role | u16 path length | path | the request's bytes
 *
 * Executing it is deterministic: the handler runs with no deadline, and the
 * document layer takes its clock and its generated ids from the entry
 * (ndb_doc_set_clock), so every node writes the same bytes.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "replicate.h"

#define CMD_VERSION 1

/* Methods that run through the log, or after a read fence: the data services. */
static bool data_method(const svc_route *route)
{
    return strncmp(route->path, "/nexadb.v1.DocumentService/", 27) == 0 ||
           strncmp(route->path, "/nexadb.v1.VectorService/", 25) == 0;
}

/* A failure of this node rather than of the command: going on would leave it
 * with other contents than its peers. */
static bool node_failure(ndb_status st)
{
    return st == NDB_EIO || st == NDB_ENOSPC || st == NDB_EMFILE || st == NDB_ENOMEM || st == NDB_EPOISONED ||
           st == NDB_ECORRUPT || st == NDB_ECLOSED;
}

static ndb_status propose(svc_ctx *ctx, const svc_route *route, const ProtobufCMessage *req, ProtobufCMessage **resp,
                          ndb_errmsg *msg)
{
    size_t plen = strlen(route->path);
    size_t rlen = protobuf_c_message_get_packed_size(req);
    size_t len = 4 + plen + rlen;
    uint8_t *cmd = malloc(len);
    if (cmd == NULL)
        return ndb_errmsg_set(msg, NDB_ENOMEM, "out of memory for a request of %zu bytes", rlen);
    cmd[0] = CMD_VERSION;
    cmd[1] = (uint8_t)ctx->role;
    cmd[2] = (uint8_t)plen;
    cmd[3] = (uint8_t)(plen >> 8);
    memcpy(cmd + 4, route->path, plen);
    protobuf_c_message_pack(req, cmd + 4 + plen);
    ndb_cluster_reply r;
    ndb_status st = ndb_cluster_propose(ctx->app->cluster, cmd, len, &r, msg);
    free(cmd);
    if (st != NDB_OK)
        return st;
    if (r.status != NDB_OK) {
        if (msg != NULL)
            *msg = r.msg;
        free(r.data);
        return r.status;
    }
    *resp = protobuf_c_message_unpack(route->md->output, &ctx->arena.pb, r.len, r.data);
    free(r.data);
    if (*resp == NULL)
        return ndb_errmsg_set(msg, NDB_EIO, "the replicated write's answer (%zu bytes) did not decode", r.len);
    return NDB_OK;
}

ndb_status svc_call(svc_ctx *ctx, const svc_route *route, const ProtobufCMessage *req, ProtobufCMessage **resp,
                    ndb_errmsg *msg)
{
    unsigned f = route->m->flags;
    if (ctx->app->cluster == NULL || !data_method(route) || (f & SVC_M_HELD))
        return route->m->fn(ctx, req, resp, msg);
    if ((f & SVC_M_WRITE) && !(f & (SVC_M_STREAM | SVC_M_BIDI)))
        return propose(ctx, route, req, resp, msg);
    if (ctx->read_local) /* the client takes this node's state as it is */
        return route->m->fn(ctx, req, resp, msg);
    if (ctx->nowait)
        return NDB_EBUSY; /* the fence waits: run on the worker pool */
    ndb_status st = ndb_cluster_read_fence(ctx->app->cluster, msg);
    return st == NDB_OK ? route->m->fn(ctx, req, resp, msg) : st;
}

/* Entries a node may trail the commit index by and still count as caught up. */
#define READY_LAG 64

bool svc_cluster_ready(svc_app *app, char *reason, size_t n)
{
    if (app->cluster == NULL)
        return true;
    ndb_cluster_status s;
    ndb_cluster_status_get(app->cluster, &s);
    if (s.apply_failed)
        snprintf(reason, n, "cluster: this node stopped applying the log (%s); restart it", s.apply_error);
    else if (s.leader_id == 0)
        snprintf(reason, n, "cluster: no leader known (an election is under way, or no majority is reachable)");
    else if (s.applied_index + READY_LAG < s.commit_index)
        snprintf(reason, n, "cluster: catching up: applied %llu of %llu committed entries",
                 (unsigned long long)s.applied_index, (unsigned long long)s.commit_index);
    else
        return true;
    return false;
}

ndb_status svc_cluster_apply(void *arg, const ndb_cluster_cmd *cmd, void **reply, size_t *reply_len, bool *fatal,
                             ndb_errmsg *msg)
{
    svc_app *app = arg;
    const uint8_t *p = cmd->data;
    size_t plen = cmd->len >= 4 ? (size_t)p[2] | (size_t)p[3] << 8 : 0;
    if (cmd->len < 4 || p[0] != CMD_VERSION || cmd->len - 4 < plen) {
        *fatal = true; /* a log this version cannot read: stop rather than skip a write */
        return ndb_errmsg_set(msg, NDB_ECORRUPT, "command %u of entry %llu is not a version-%d request (%zu bytes)",
                              cmd->ordinal, (unsigned long long)cmd->index, CMD_VERSION, cmd->len);
    }
    const svc_route *route = svc_dispatch_lookup((const char *)p + 4, plen);
    if (route == NULL || !data_method(route) || !(route->m->flags & SVC_M_WRITE)) {
        *fatal = true;
        return ndb_errmsg_set(msg, NDB_ECORRUPT, "entry %llu names method %.*s, which this version cannot write",
                              (unsigned long long)cmd->index, (int)(plen > 128 ? 128 : plen), (const char *)p + 4);
    }
    svc_ctx ctx;
    svc_ctx_init(&ctx, app, INT64_MAX);
    ctx.method = route->path;
    ctx.role = (svc_role)p[1];
    ndb_status st;
    ProtobufCMessage *req = protobuf_c_message_unpack(route->md->input, &ctx.arena.pb, cmd->len - 4 - plen, p + 4 + plen);
    if (req == NULL) {
        st = ndb_errmsg_set(msg, NDB_EINVAL, "the request did not decode");
    } else {
        ndb_doc_set_clock(app->doc, cmd->wall_ms, cmd->index);
        ndb_doc_set_clock(ndb_vec_documents(app->vec), cmd->wall_ms, cmd->index);
        ProtobufCMessage *resp = NULL;
        st = route->m->fn(&ctx, req, &resp, msg);
        ndb_doc_set_clock(app->doc, 0, 0);
        ndb_doc_set_clock(ndb_vec_documents(app->vec), 0, 0);
        if (st == NDB_OK && cmd->mine && resp != NULL) {
            size_t n = protobuf_c_message_get_packed_size(resp);
            uint8_t *out = malloc(n ? n : 1);
            if (out == NULL) {
                st = ndb_errmsg_set(msg, NDB_ENOMEM, "out of memory for an answer of %zu bytes", n);
            } else {
                protobuf_c_message_pack(resp, out);
                *reply = out;
                *reply_len = n;
            }
        } else if (st != NDB_OK) {
            *fatal = node_failure(st);
        }
    }
    svc_ctx_release(&ctx);
    return st;
}
