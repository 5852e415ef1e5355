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
 * (ndb_doc_set_clock), so every node writes the same bytes. One command
 * names no method of the API: the leader's TTL pass (TTL_PATH).
 */
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "engines.h"
#include "forward.h"
#include "log.h"
#include "replicate.h"
#include "snapshot_xfer.h"
#include "ttl.h"

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

/* Proposes a command (path, the caller's role, req packed; nothing for NULL)
 * and waits for this node's run of it: its reply in *r, which the caller
 * frees, when it succeeded. */
static ndb_status propose_cmd(svc_app *app, svc_role role, const char *path, const ProtobufCMessage *req,
                              ndb_cluster_reply *r, ndb_errmsg *msg)
{
    size_t plen = strlen(path);
    size_t rlen = req != NULL ? protobuf_c_message_get_packed_size(req) : 0;
    size_t len = 4 + plen + rlen;
    uint8_t *cmd = malloc(len);
    if (cmd == NULL)
        return ndb_errmsg_set(msg, NDB_ENOMEM, "out of memory for a request of %zu bytes", rlen);
    cmd[0] = CMD_VERSION;
    cmd[1] = (uint8_t)role;
    cmd[2] = (uint8_t)plen;
    cmd[3] = (uint8_t)(plen >> 8);
    memcpy(cmd + 4, path, plen);
    if (req != NULL)
        protobuf_c_message_pack(req, cmd + 4 + plen);
    ndb_status st = ndb_cluster_propose(app->cluster, cmd, len, r, msg);
    free(cmd);
    if (st == NDB_OK && r->status != NDB_OK) {
        st = r->status;
        if (msg != NULL)
            *msg = r->msg;
        free(r->data);
    }
    return st;
}

static ndb_status propose(svc_ctx *ctx, const svc_route *route, const ProtobufCMessage *req, ProtobufCMessage **resp,
                          ndb_errmsg *msg)
{
    ndb_cluster_reply r;
    ndb_status st = propose_cmd(ctx->app, ctx->role, route->path, req, &r, msg);
    if (st != NDB_OK)
        return st;
    ctx->log_index = r.index;
    *resp = protobuf_c_message_unpack(route->md->output, &ctx->arena.pb, r.len, r.data);
    free(r.data);
    if (*resp == NULL)
        return ndb_errmsg_set(msg, NDB_EIO, "the replicated write's answer (%zu bytes) did not decode", r.len);
    return NDB_OK;
}

/* The TTL pass's command (ttl.h), which names no route and carries nothing:
 * each node runs it with the entry's time as now, deleting at most
 * TTL_ENTRY_MAX documents, so one entry holds the applier only so long. */
#define TTL_PATH "/nexadb.internal/ExpirePass"
#define TTL_ENTRY_MAX 1000

ndb_status svc_cluster_expire(svc_app *app, uint64_t *deleted, ndb_errmsg *msg)
{
    *deleted = 0;
    while (atomic_load(&app->state) != SVC_DRAINING) {
        ndb_cluster_status s;
        ndb_cluster_status_get(app->cluster, &s);
        if (s.role != NDB_CLUSTER_LEADER)
            return NDB_OK; /* the leader's pass deletes for every node */
        ndb_cluster_reply r;
        ndb_status st = propose_cmd(app, SVC_ROLE_WRITE, TTL_PATH, NULL, &r, msg);
        if (st == NDB_ENOTLEADER || st == NDB_EUNKNOWN || st == NDB_ECLOSED)
            return NDB_OK; /* leadership moved on: the next leader's pass goes on from here */
        if (st != NDB_OK)
            return st;
        uint64_t n = 0;
        for (size_t i = 0; i < 8 && i < r.len; i++)
            n |= (uint64_t)((const uint8_t *)r.data)[i] << (8 * i);
        free(r.data);
        *deleted += n;
        if (n < TTL_ENTRY_MAX)
            break;
    }
    return NDB_OK;
}

/* Runs a TTL pass's command (TTL_PATH); the count deleted is the reply. */
static ndb_status apply_expire(svc_app *app, const ndb_cluster_cmd *cmd, void **reply, size_t *reply_len, bool *fatal,
                               ndb_errmsg *msg)
{
    uint64_t n = 0;
    ndb_doc_set_clock(app->doc, cmd->wall_ms, cmd->index);
    ndb_doc_set_clock(ndb_vec_documents(app->vec), cmd->wall_ms, cmd->index);
    ndb_status st = svc_ttl_pass(app, cmd->wall_ms, TTL_ENTRY_MAX, &n, msg);
    ndb_doc_set_clock(app->doc, 0, 0);
    ndb_doc_set_clock(ndb_vec_documents(app->vec), 0, 0);
    if (st != NDB_OK) {
        *fatal = node_failure(st);
        return st;
    }
    if (cmd->mine) {
        uint8_t *out = malloc(8);
        if (out == NULL)
            return ndb_errmsg_set(msg, NDB_ENOMEM, "out of memory");
        for (int i = 0; i < 8; i++)
            out[i] = (uint8_t)(n >> (8 * i));
        *reply = out;
        *reply_len = 8;
    }
    return NDB_OK;
}

/* Runs the handler holding the engines, which a snapshot being loaded would
 * otherwise close under it. Never held while waiting on the log: the applier
 * that loads a snapshot is what the wait waits for. */
static ndb_status run(svc_ctx *ctx, const svc_route *route, const ProtobufCMessage *req, ProtobufCMessage **resp,
                      ndb_errmsg *msg)
{
    if (route->m->flags & SVC_M_INLINE) /* health, Status, the key's role: they use no engine */
        return route->m->fn(ctx, req, resp, msg);
    if (ctx->nowait) { /* on a transport thread, which must not wait for a snapshot being loaded */
        if (!svc_engines_try_hold(ctx->app))
            return NDB_EBUSY;
    } else {
        svc_engines_hold(ctx->app);
    }
    ndb_status st = route->m->fn(ctx, req, resp, msg);
    svc_engines_release(ctx->app);
    return st;
}

bool svc_log_index_parse(const char *v, size_t len, uint64_t *out)
{
    uint64_t n = 0;
    size_t i = 0;
    for (; i < len && i < 19 && v[i] >= '0' && v[i] <= '9'; i++)
        n = n * 10 + (uint64_t)(v[i] - '0');
    if (i == 0 || i != len || n == 0)
        return false;
    *out = n;
    return true;
}

ndb_status svc_read_after(svc_ctx *ctx, const char *v, size_t len, ndb_errmsg *msg)
{
    if (!svc_log_index_parse(v, len, &ctx->read_after))
        return ndb_errmsg_set(msg, NDB_EINVAL, "%s: expected the log index a write answered with (a whole number from "
                              "1), got \"%.*s\"", SVC_READ_AFTER_HEADER, (int)(len > 40 ? 40 : len), v);
    return NDB_OK;
}

/* How long a read-after waits for this node to apply the entry, without a deadline of its own. */
#define READ_AFTER_WAIT_MS 10000

/* The milliseconds left before ctx's deadline, at most cap. */
static unsigned wait_left(const svc_ctx *ctx, unsigned cap)
{
    int64_t ms = svc_ctx_left_ns(ctx) / 1000000;
    return ms < cap ? (unsigned)ms : cap;
}

/* A read with read_after: on this node, once it has applied that entry. */
static ndb_status read_after(svc_ctx *ctx, const svc_route *route, const ProtobufCMessage *req,
                             ProtobufCMessage **resp, ndb_errmsg *msg)
{
    ndb_cluster_status s;
    ndb_cluster_status_get(ctx->app->cluster, &s);
    if (s.applied_index < ctx->read_after) {
        if (ctx->nowait)
            return NDB_EBUSY; /* the wait goes to the worker pool */
        ndb_status st = ndb_cluster_wait_applied(ctx->app->cluster, ctx->read_after, wait_left(ctx, READ_AFTER_WAIT_MS),
                                                 msg);
        if (st != NDB_OK)
            return st;
    }
    return run(ctx, route, req, resp, msg);
}

/* How long a call a follower refused waits for an election, or for a new
 * leader's announcement of its client address, before it is answered. */
#define LEADER_WAIT_MS 3000

/* A follower's answer st (NDB_ENOTLEADER) to a call: once the leader's client
 * address is known (waiting up to LEADER_WAIT_MS, or the call's deadline),
 * passed on to it (unless already passed on once, or a bidirectional
 * stream), or refused naming it. */
static ndb_status to_leader(svc_ctx *ctx, const svc_route *route, const ProtobufCMessage *req,
                            ProtobufCMessage **resp, ndb_status st, ndb_errmsg *msg)
{
    if (st != NDB_ENOTLEADER)
        return st;
    ndb_cluster_status s;
    if (!ndb_cluster_wait_leader(ctx->app->cluster, wait_left(ctx, LEADER_WAIT_MS), &s) || strcmp(s.leader_client_address, ctx->app->cluster_client) == 0)
        return st; /* none in time (or this node leads again: the client may call it again) */
    ndb_errmsg_set(msg, NDB_ENOTLEADER, "node %lld is not the leader; the leader is node %llu at %s",
                   (long long)ctx->app->cfg->node_id, (unsigned long long)s.leader_id, s.leader_client_address);
    if (ctx->forwarded || (route->m->flags & SVC_M_BIDI))
        return NDB_ENOTLEADER;
    return svc_forward(ctx, route, req, resp, s.leader_client_address, msg); /* or that refusal */
}

ndb_status svc_call(svc_ctx *ctx, const svc_route *route, const ProtobufCMessage *req, ProtobufCMessage **resp,
                    ndb_errmsg *msg)
{
    unsigned f = route->m->flags;
    if (ctx->app->cluster == NULL)
        return route->m->fn(ctx, req, resp, msg);
    if (!data_method(route) || (f & SVC_M_HELD))
        return run(ctx, route, req, resp, msg);
    if ((f & SVC_M_WRITE) && !(f & (SVC_M_STREAM | SVC_M_BIDI)))
        return to_leader(ctx, route, req, resp, propose(ctx, route, req, resp, msg), msg);
    if (ctx->read_local) /* the client takes this node's state as it is */
        return run(ctx, route, req, resp, msg);
    if (ctx->read_after != 0) /* any node, once it has what the client wrote */
        return read_after(ctx, route, req, resp, msg);
    if (ctx->nowait)
        return NDB_EBUSY; /* the fence waits: run on the worker pool */
    ndb_status st = ndb_cluster_read_fence(ctx->app->cluster, msg);
    return st == NDB_OK ? run(ctx, route, req, resp, msg) : to_leader(ctx, route, req, resp, st, msg);
}

void svc_cluster_leader(svc_app *app, char *out, size_t n)
{
    out[0] = '\0';
    if (app->cluster == NULL)
        return;
    ndb_cluster_status s;
    ndb_cluster_status_get(app->cluster, &s);
    if (strcmp(s.leader_client_address, app->cluster_client) != 0)
        snprintf(out, n, "%s", s.leader_client_address);
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
    if (plen == strlen(TTL_PATH) && memcmp(p + 4, TTL_PATH, plen) == 0)
        return apply_expire(app, cmd, reply, reply_len, fatal, msg);
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

/* ------------------------------------------------------- snapshots */

/* A snapshot is a kv backup in <data-dir>/cluster/snapshots/<index, 20
 * digits>, incremental over the one before (shared tables are links). Its
 * description in Raft: "NDBS", version 1 (u32), then the client address of
 * the node that took it, where one that lacks it would fetch it. */
#define SNAP_MAGIC "NDBS"
#define SNAP_KEEP 2
#define FETCH_ATTEMPTS 30 /* a second apart */

static int newest_first(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? 1 : x > y ? -1 : 0;
}

/* The snapshots on disk, newest first (the first cap found). */
static size_t snap_list(const svc_app *app, uint64_t *out, size_t cap)
{
    char dir[4200];
    snprintf(dir, sizeof dir, "%s/cluster/snapshots", app->cfg->data_dir);
    DIR *d = opendir(dir);
    if (d == NULL)
        return 0;
    size_t n = 0;
    for (struct dirent *de; n < cap && (de = readdir(d)) != NULL;) {
        char *end;
        uint64_t idx = strtoull(de->d_name, &end, 10);
        if (strlen(de->d_name) == 20 && *end == 0)
            out[n++] = idx;
    }
    closedir(d);
    qsort(out, n, sizeof *out, newest_first);
    return n;
}

ndb_status svc_cluster_snapshot(void *arg, uint64_t index, void **payload, size_t *len, ndb_errmsg *msg)
{
    svc_app *app = arg;
    char dir[4300], prev[4300] = "";
    ndb_status st = svc_snapshot_dir(app, index, dir, sizeof dir, msg);
    if (st != NDB_OK)
        return st;
    uint64_t have[64];
    size_t n = snap_list(app, have, 64);
    for (size_t i = 0; i < n && prev[0] == 0; i++)
        if (have[i] < index && svc_snapshot_dir(app, have[i], prev, sizeof prev, NULL) == NDB_OK &&
            !svc_snapshot_complete(prev))
            prev[0] = 0;
    if ((st = svc_remove_dir(dir, msg)) != NDB_OK)
        return st;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    ndb_kv_backup_options o = {.previous_dir = prev[0] ? prev : NULL};
    ndb_kv_backup_info info;
    if ((st = ndb_kv_backup(app->kv, dir, &o, &info, msg)) != NDB_OK)
        return st;
    /* the vector segments and graphs beside it, linked (nothing writes while the applier is idle);
     * kept on this node only: one that fetches the snapshot rebuilds them from kv */
    ndb_errmsg lm;
    if (svc_link_segments(app->engines_base, dir, &lm) != NDB_OK)
        SVC_LOG(SVC_LOG_WARN, "vector segments not all kept with the snapshot; a node loading it rebuilds the rest",
                LOG_STR("error", lm.text));
    clock_gettime(CLOCK_MONOTONIC, &t1);
    /* older ones go: Raft keeps the last two snapshots, and so do we */
    n = snap_list(app, have, 64);
    for (size_t i = SNAP_KEEP; i < n; i++) {
        char old[4300];
        if (svc_snapshot_dir(app, have[i], old, sizeof old, NULL) == NDB_OK)
            svc_remove_dir(old, NULL);
    }
    const char *client = app->cluster_client;
    size_t clen = strlen(client);
    uint8_t *p = malloc(8 + clen);
    if (p == NULL)
        return ndb_errmsg_set(msg, NDB_ENOMEM, "out of memory");
    memcpy(p, SNAP_MAGIC, 4);
    p[4] = 1, p[5] = p[6] = p[7] = 0;
    memcpy(p + 8, client, clen);
    *payload = p;
    *len = 8 + clen;
    SVC_LOG(SVC_LOG_INFO, "cluster snapshot taken", LOG_INT("index", (int64_t)index), LOG_STR("dir", dir),
            LOG_INT("files", (int64_t)info.files), LOG_INT("bytes", (int64_t)info.bytes),
            LOG_INT("files_linked_from_previous", (int64_t)info.files_reused),
            LOG_DBL("ms", (double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6));
    return NDB_OK;
}

ndb_status svc_cluster_restore(void *arg, uint64_t index, const void *payload, size_t len, ndb_errmsg *msg)
{
    svc_app *app = arg;
    const uint8_t *p = payload;
    if (len < 8 || memcmp(p, SNAP_MAGIC, 4) != 0 || p[4] != 1)
        return ndb_errmsg_set(msg, NDB_ECORRUPT, "snapshot %" PRIu64 ": not a version-1 NexaDB snapshot", index);
    char dir[4300];
    ndb_status st = svc_snapshot_dir(app, index, dir, sizeof dir, msg);
    if (st != NDB_OK)
        return st;
    char taker[300];
    snprintf(taker, sizeof taker, "%.*s", (int)(len - 8 < sizeof taker ? len - 8 : sizeof taker - 1),
             (const char *)p + 8);
    /* A snapshot this node lacks (it was emptied, or is back after the log moved on) is on the leader, which sent
     * it (it took it, or fetched it itself), at the address it announced; or on the node that took it, at the
     * address it had then (a restarted node may listen elsewhere now). Each attempt asks one, in turn. */
    for (int attempt = 1; !svc_snapshot_complete(dir); attempt++) {
        ndb_cluster_status s = {0};
        if (app->cluster != NULL) /* NULL while the node starts: its own last snapshot is being restored */
            ndb_cluster_status_get(app->cluster, &s);
        const char *from = attempt % 2 && s.leader_client_address[0] ? s.leader_client_address : taker;
        if (strcmp(from, app->cluster_client) == 0)
            return ndb_errmsg_set(msg, NDB_ENOTFOUND, "this node's own snapshot %" PRIu64 " is gone from %s", index,
                                  dir);
        ndb_status st = svc_snapshot_fetch(app, from, index, dir, msg);
        if (st == NDB_OK)
            break;
        if (attempt == FETCH_ATTEMPTS)
            return st;
        SVC_LOG(SVC_LOG_WARN, "fetching a cluster snapshot failed; trying again", LOG_INT("index", (int64_t)index),
                LOG_STR("from", from), LOG_STR("error", msg->text), LOG_INT("attempt", attempt));
        sleep(1);
    }
    return svc_engines_load(app, dir, msg);
}

/* ---------------------------------------------------------- start */

ndb_status svc_cluster_dirs(const svc_config *cfg, char *state, size_t cap, ndb_errmsg *msg)
{
    char dir[4200];
    struct stat sb;
    if (snprintf(dir, sizeof dir, "%s/kv", cfg->data_dir) >= (int)sizeof dir)
        return ndb_errmsg_set(msg, NDB_EINVAL, "--data-dir: path too long");
    if (stat(dir, &sb) == 0)
        return ndb_errmsg_set(msg, NDB_EEXIST, "%s holds a single node's database: a cluster node starts from an "
                              "empty --data-dir (load the data through a cluster's API)", cfg->data_dir);
    if ((size_t)snprintf(dir, sizeof dir, "%s/cluster", cfg->data_dir) >= sizeof dir ||
        (size_t)snprintf(state, cap, "%s/cluster/state", cfg->data_dir) >= cap)
        return ndb_errmsg_set(msg, NDB_EINVAL, "--data-dir: path too long");
    if (mkdir(dir, 0700) != 0 && errno != EEXIST)
        return ndb_errmsg_set(msg, NDB_EIO, "cannot create %s: %s", dir, strerror(errno));
    snprintf(dir, sizeof dir, "%s/cluster/snapshots", cfg->data_dir);
    if (mkdir(dir, 0700) != 0 && errno != EEXIST)
        return ndb_errmsg_set(msg, NDB_EIO, "cannot create %s: %s", dir, strerror(errno));
    return svc_empty_dir(state, msg);
}

ndb_status svc_cluster_start(svc_app *app, int grpc_port, ndb_errmsg *msg)
{
    ndb_cluster_peer peers[NDB_CLUSTER_MAX_PEERS];
    size_t n = 0;
    ndb_status st = ndb_cluster_parse_peers(app->cfg->peers, peers, NDB_CLUSTER_MAX_PEERS, &n, msg);
    if (st != NDB_OK)
        return st;
    char dir[4200];
    if (snprintf(dir, sizeof dir, "%s/cluster/raft", app->cfg->data_dir) >= (int)sizeof dir)
        return ndb_errmsg_set(msg, NDB_EINVAL, "--data-dir: path too long");
    for (size_t i = 0; i < n; i++) {
        const char *colon = strrchr(peers[i].address, ':');
        if (peers[i].id == (uint64_t)app->cfg->node_id && colon != NULL)
            snprintf(app->cluster_client, sizeof app->cluster_client, "%.*s:%d", (int)(colon - peers[i].address),
                     peers[i].address, grpc_port);
    }
    ndb_cluster_options o = {.id = (uint64_t)app->cfg->node_id, .dir = dir, .peers = peers, .npeers = n,
                             .client_address = app->cluster_client,
                             .bind_address = app->cfg->raft_bind_addr[0] ? app->cfg->raft_bind_addr : NULL,
                             .apply = svc_cluster_apply, .apply_arg = app,
                             .snapshot = svc_cluster_snapshot, .restore = svc_cluster_restore,
                             .snapshot_entries = (unsigned)app->cfg->snapshot_entries};
    if ((st = ndb_cluster_open(&o, &app->cluster, msg)) != NDB_OK)
        return st;
    SVC_LOG(SVC_LOG_INFO, "cluster node started", LOG_INT("node_id", app->cfg->node_id), LOG_INT("peers", (int64_t)n),
            LOG_STR("raft_log", dir), LOG_STR("client_address", app->cluster_client));
    if (app->tls != NULL && app->cfg->tls_peer_ca[0] == '\0')
        SVC_LOG(SVC_LOG_WARN, "TLS without --tls-peer-ca: this node cannot call the others, so it answers calls for "
                              "the leader with the redirect, and cannot fetch a snapshot it lacks");
    return NDB_OK;
}
