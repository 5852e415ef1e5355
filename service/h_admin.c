/* h_admin.c — AdminService: status, statistics and the caller's key (backups: h_backup.c). */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "h_backup.h"
#include "h_vector.h"
#include "handler.h"
#include "health.h"
#include "log.h"
#include "nexadb/v1/admin.pb-c.h"
#include "procstat.h"
#include "snapshot_xfer.h"

static int64_t uptime_seconds(const svc_app *app)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ((int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec - app->started_at_ns) / 1000000000;
}

/* Resident set size, or 0 where it cannot be read. */
static int64_t rss_bytes(void)
{
    svc_proc_stat ps;
    return svc_proc_stat_read(&ps) == NDB_OK ? (int64_t)ps.rss_bytes : 0;
}

static char *dup(svc_ctx *ctx, const char *s) { return svc_arena_strndup(&ctx->arena, s, strlen(s)); }

/* The cluster part of Status; NULL when out of call memory. */
static Nexadb__V1__ClusterStatus *cluster_status(svc_ctx *ctx)
{
    ndb_cluster_status s;
    ndb_cluster_status_get(ctx->app->cluster, &s);
    Nexadb__V1__ClusterStatus *c = SVC_NEW(ctx, Nexadb__V1__ClusterStatus, nexadb__v1__cluster_status__init);
    if (c == NULL || (c->peers = svc_alloc(ctx, (s.npeers + 1) * sizeof *c->peers)) == NULL)
        return NULL;
    c->node_id = (int64_t)s.id;
    c->role = (char *)ndb_cluster_role_name(s.role);
    c->term = (int64_t)s.term;
    c->leader_id = (int64_t)s.leader_id;
    c->leader_address = dup(ctx, s.leader_client_address[0] ? s.leader_client_address : s.leader_address);
    c->commit_index = (int64_t)s.commit_index;
    c->applied_index = (int64_t)s.applied_index;
    c->last_index = (int64_t)s.last_index;
    c->apply_error = dup(ctx, s.apply_failed ? s.apply_error : "");
    if (c->leader_address == NULL || c->apply_error == NULL)
        return NULL;
    for (size_t i = 0; i < s.npeers; i++) {
        Nexadb__V1__ClusterPeer *p = SVC_NEW(ctx, Nexadb__V1__ClusterPeer, nexadb__v1__cluster_peer__init);
        if (p == NULL || (p->raft_address = dup(ctx, s.peers[i].address)) == NULL ||
            (p->client_address = dup(ctx, s.peers[i].client_address)) == NULL)
            return NULL;
        p->id = (int64_t)s.peers[i].id;
        p->voter = s.peers[i].voter;
        p->match_index = (int64_t)s.peers[i].match_index;
        p->lag = s.role == NDB_CLUSTER_LEADER && s.last_index > s.peers[i].match_index
                     ? (int64_t)(s.last_index - s.peers[i].match_index)
                     : 0;
        c->peers[c->n_peers++] = p;
    }
    return c;
}

static ndb_status status(svc_ctx *ctx, const ProtobufCMessage *req, ProtobufCMessage **resp, ndb_errmsg *msg)
{
    (void)req;
    Nexadb__V1__StatusResponse *out = svc_alloc(ctx, sizeof *out);
    if (out == NULL)
        return ndb_errmsg_set(msg, NDB_ENOMEM, "out of memory");
    nexadb__v1__status_response__init(out);
    switch (atomic_load(&ctx->app->state)) {
    case SVC_STARTING: out->status = "starting"; break;
    case SVC_SERVING: out->status = "ok"; break;
    case SVC_DRAINING: out->status = "draining"; break;
    }
    out->version = (char *)ctx->app->version;
    out->uptime_seconds = uptime_seconds(ctx->app);
    /* readiness's answer, and why when it is not SERVING */
    out->health = svc_health_status(ctx->app, "nexadb.v1.DocumentService") ==
                          GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVING
                      ? "SERVING"
                      : "NOT_SERVING";
    char reason[sizeof ctx->app->storage_reason];
    svc_health_reason(ctx->app, reason, sizeof reason);
    out->reason = svc_arena_strndup(&ctx->arena, reason, strlen(reason));
    if (out->reason == NULL)
        return ndb_errmsg_set(msg, NDB_ENOMEM, "out of memory");
    if (ctx->app->cluster != NULL && (out->cluster = cluster_status(ctx)) == NULL)
        return ndb_errmsg_set(msg, NDB_ENOMEM, "out of memory");
    *resp = &out->base;
    return NDB_OK;
}

static ndb_status stats(svc_ctx *ctx, const ProtobufCMessage *req, ProtobufCMessage **resp, ndb_errmsg *msg)
{
    (void)req;
    Nexadb__V1__StatsResponse *out = svc_alloc(ctx, sizeof *out);
    if (out == NULL)
        return ndb_errmsg_set(msg, NDB_ENOMEM, "out of memory");
    nexadb__v1__stats_response__init(out);
    out->uptime_seconds = uptime_seconds(ctx->app);
    out->rss_bytes = rss_bytes();

    ndb_doc_coll_info *infos = NULL;
    size_t n = 0;
    ndb_status st = ndb_doc_list_collections(ctx->app->doc, &infos, &n, msg);
    if (st != NDB_OK)
        return st;
    ndb_vec_info *vinfos = NULL;
    size_t nv = 0;
    if ((st = ndb_vec_list(ctx->app->vec, &vinfos, &nv)) != NDB_OK) {
        free(infos);
        return ndb_errmsg_set(msg, st, "listing vector collections: %s", ndb_strerror(st));
    }
    out->collections = n + nv ? svc_alloc(ctx, (n + nv) * sizeof *out->collections) : NULL;
    for (size_t i = 0; i < nv && (out->collections != NULL); i++) {
        Nexadb__V1__CollectionInfo *ci = svc_vec_collection_info(ctx, &vinfos[i]);
        if (ci == NULL)
            break;
        out->collections[out->n_collections++] = ci;
        out->total_documents += ci->count;
    }
    free(vinfos);
    for (size_t i = 0; i < n && (out->collections != NULL); i++) {
        Nexadb__V1__CollectionInfo *ci = svc_alloc(ctx, sizeof *ci);
        if (ci == NULL)
            break;
        nexadb__v1__collection_info__init(ci);
        ci->name = svc_arena_strndup(&ctx->arena, infos[i].name, strlen(infos[i].name));
        ci->count = (int64_t)infos[i].count;
        ci->size_bytes = (int64_t)infos[i].bytes;
        ci->kind = NEXADB__V1__COLLECTION_INFO__KIND__KIND_DOCUMENTS;
        out->collections[out->n_collections++] = ci;
        out->total_documents += ci->count;
    }
    free(infos);
    if (out->n_collections != n + nv)
        return ndb_errmsg_set(msg, NDB_ELIMIT, "response over the call's memory bound");

    ndb_kv_stats ks;
    if ((st = ndb_kv_stats_get(ctx->app->kv, &ks)) != NDB_OK)
        return ndb_errmsg_set(msg, st, "engine statistics unavailable");
    Nexadb__V1__EngineStats *es = svc_alloc(ctx, sizeof *es);
    Nexadb__V1__LevelStats *lv = svc_alloc(ctx, NDB_KV_LEVELS * sizeof *lv);
    Nexadb__V1__LevelStats **lvp = svc_alloc(ctx, NDB_KV_LEVELS * sizeof *lvp);
    if (es == NULL || lv == NULL || lvp == NULL)
        return ndb_errmsg_set(msg, NDB_ELIMIT, "response over the call's memory bound");
    nexadb__v1__engine_stats__init(es);
    es->levels = lvp;
    es->memtable_bytes = (int64_t)(ks.memtable_bytes + ks.imm_memtable_bytes);
    for (int l = 0; l < NDB_KV_LEVELS; l++) {
        nexadb__v1__level_stats__init(&lv[l]);
        lv[l].level = l;
        lv[l].files = (int64_t)ks.levels[l].files;
        lv[l].bytes = (int64_t)ks.levels[l].bytes;
        es->levels[es->n_levels++] = &lv[l];
    }
    es->compactions = (int64_t)ks.compactions;
    es->wal_syncs = (int64_t)ks.wal_syncs;
    es->write_amplification = ks.write_amplification;
    es->write_stalls = (int64_t)ks.stall_count;
    es->block_cache_hits = (int64_t)ks.block_cache_hits;
    es->block_cache_misses = (int64_t)ks.block_cache_misses;
    out->engine = es;
    out->vector_kernel = (char *)ndb_vec_kernel_name();
    Nexadb__V1__MemoryStats *ms = SVC_NEW(ctx, Nexadb__V1__MemoryStats, nexadb__v1__memory_stats__init);
    if (ms == NULL)
        return svc_oom(msg);
    svc_proc_memory pm;
    if (svc_proc_memory_read(&pm) == NDB_OK) {
        ms->resident_anonymous = (int64_t)pm.anonymous;
        ms->resident_file = (int64_t)pm.file;
        ms->resident_shared = (int64_t)pm.shared;
    }
    ms->memtables = es->memtable_bytes;
    ms->block_cache = (int64_t)ks.block_cache_bytes;
    ms->block_cache_capacity = (int64_t)ks.block_cache_capacity;
    for (size_t i = 0; i < out->n_collections; i++) {
        ms->vector_graphs += out->collections[i]->index_bytes;
        ms->vector_rows += out->collections[i]->memory_bytes;
    }
    out->memory = ms;
    *resp = &out->base;
    return NDB_OK;
}

/* The caller's key's role (the transport has authorised it: any valid key gets here). */
static ndb_status api_key_info(svc_ctx *ctx, const ProtobufCMessage *req, ProtobufCMessage **resp, ndb_errmsg *msg)
{
    (void)req;
    Nexadb__V1__GetApiKeyInfoResponse *out = svc_alloc(ctx, sizeof *out);
    if (out == NULL)
        return ndb_errmsg_set(msg, NDB_ENOMEM, "out of memory");
    nexadb__v1__get_api_key_info_response__init(out);
    out->read_only = ctx->role < SVC_ROLE_WRITE;
    *resp = &out->base;
    return NDB_OK;
}

static ndb_status not_clustered(ndb_errmsg *msg)
{
    return ndb_errmsg_set(msg, NDB_EINVAL, "this server is not a cluster node (start it with --node-id and --peers)");
}

static ndb_status add_cluster_node(svc_ctx *ctx, const ProtobufCMessage *req, ProtobufCMessage **resp,
                                   ndb_errmsg *msg)
{
    const Nexadb__V1__AddClusterNodeRequest *r = (const void *)req;
    if (ctx->app->cluster == NULL)
        return not_clustered(msg);
    if (r->id <= 0)
        return ndb_errmsg_set(msg, NDB_EINVAL, "id: a node id from 1");
    ndb_status st = ndb_cluster_add(ctx->app->cluster, (uint64_t)r->id, r->raft_address, msg);
    if (st != NDB_OK)
        return st;
    SVC_LOG(SVC_LOG_INFO, "cluster node added", LOG_INT("id", r->id), LOG_STR("raft_address", r->raft_address));
    Nexadb__V1__AddClusterNodeResponse *out =
        SVC_NEW(ctx, Nexadb__V1__AddClusterNodeResponse, nexadb__v1__add_cluster_node_response__init);
    if (out == NULL || (out->cluster = cluster_status(ctx)) == NULL)
        return svc_oom(msg);
    *resp = &out->base;
    return NDB_OK;
}

static ndb_status remove_cluster_node(svc_ctx *ctx, const ProtobufCMessage *req, ProtobufCMessage **resp,
                                      ndb_errmsg *msg)
{
    const Nexadb__V1__RemoveClusterNodeRequest *r = (const void *)req;
    if (ctx->app->cluster == NULL)
        return not_clustered(msg);
    if (r->id <= 0)
        return ndb_errmsg_set(msg, NDB_EINVAL, "id: a node id from 1");
    ndb_status st = ndb_cluster_remove(ctx->app->cluster, (uint64_t)r->id, msg);
    if (st != NDB_OK)
        return st;
    SVC_LOG(SVC_LOG_INFO, "cluster node removed", LOG_INT("id", r->id));
    Nexadb__V1__RemoveClusterNodeResponse *out =
        SVC_NEW(ctx, Nexadb__V1__RemoveClusterNodeResponse, nexadb__v1__remove_cluster_node_response__init);
    if (out == NULL || (out->cluster = cluster_status(ctx)) == NULL)
        return svc_oom(msg);
    *resp = &out->base;
    return NDB_OK;
}

static const svc_method methods[] = {
    {"Status", status, SVC_M_OPEN | SVC_M_INLINE},
    {"Stats", stats, 0},
    {"GetApiKeyInfo", api_key_info, SVC_M_INLINE},
    {"Backup", svc_backup, SVC_M_STREAM | SVC_M_WRITE},
    {"ReadSnapshot", svc_read_snapshot, SVC_M_STREAM | SVC_M_WRITE},
    {"AddClusterNode", add_cluster_node, SVC_M_WRITE},
    {"RemoveClusterNode", remove_cluster_node, SVC_M_WRITE},
};

const svc_service svc_admin_service = {&nexadb__v1__admin_service__descriptor, methods,
                                       sizeof methods / sizeof methods[0]};
