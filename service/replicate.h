/*
 * replicate.h — calling a handler, in cluster mode through the replicated
 * log (replicate.c).
 */
#ifndef SVC_REPLICATE_H
#define SVC_REPLICATE_H

#include "dispatch.h"
#include "ndb_cluster.h"

/* Runs route's handler for req. On a single node, directly. In a cluster:
 * a write to a document or vector collection is proposed to the log and
 * answered once this node has executed it; a read runs on the leader after a
 * read fence, or on any node as it stands when the client asked for read
 * concern "local". A follower passes either on to the leader (forward.h), or
 * answers NDB_ENOTLEADER naming it when it cannot. With ctx->nowait a read
 * that would wait returns NDB_EBUSY having done nothing. */
ndb_status svc_call(svc_ctx *ctx, const svc_route *route, const ProtobufCMessage *req, ProtobufCMessage **resp,
                    ndb_errmsg *msg);

/* The header (gRPC trailing metadata) that marks a call a node refused as not the leader,
 * having run nothing of it; its value is the leader's client address, "" while none is known.
 * A client may send the call there. */
#define SVC_LEADER_HEADER "nexadb-leader"

/* Read-your-writes: a write's answer carries the log entry it went into
 * (gRPC trailing metadata, HTTP response header NexaDB-Log-Index); a read
 * sent with that number (metadata nexadb-read-after, header
 * NexaDB-Read-After) is answered by any node once it has applied that entry. */
#define SVC_LOG_INDEX_HEADER "nexadb-log-index"
#define SVC_READ_AFTER_HEADER "nexadb-read-after"

/* A log index as those headers write it (len bytes, not NUL-terminated)
 * into *out: false unless a whole number from 1. */
bool svc_log_index_parse(const char *v, size_t len, uint64_t *out);

/* A read-after header's value into ctx->read_after, or NDB_EINVAL. */
ndb_status svc_read_after(svc_ctx *ctx, const char *v, size_t len, ndb_errmsg *msg);

/* Where clients reach the leader into out: "" on a single node, while no leader is known, or
 * when it is this node. */
void svc_cluster_leader(svc_app *app, char *out, size_t n);

/* Cluster mode's part of readiness: true when a leader is known, this node
 * still applies the log and has applied what was committed (within a few
 * entries); else false with why in reason. True on a single node. */
bool svc_cluster_ready(svc_app *app, char *reason, size_t n);

/* Cluster mode's snapshots (ndb_cluster_snapshot_fn, ndb_cluster_restore_fn):
 * a kv backup in <data-dir>/cluster/snapshots, loaded in place of the
 * engines' state. */
ndb_status svc_cluster_snapshot(void *arg, uint64_t index, void **payload, size_t *len, ndb_errmsg *msg);
ndb_status svc_cluster_restore(void *arg, uint64_t index, const void *payload, size_t len, ndb_errmsg *msg);

/* Cluster mode's directories: refuses a data directory holding a single
 * node's database; empties <data-dir>/cluster/state, where the engines open
 * (its path into state), which the last snapshot and the log then fill. */
ndb_status svc_cluster_dirs(const svc_config *cfg, char *state, size_t cap, ndb_errmsg *msg);

/* Starts the node's part of the cluster (app->cluster): its log in
 * <data-dir>/cluster/raft; its client address, announced when it leads, the
 * host of its --peers entry with grpc_port. Returns once the last snapshot
 * is loaded. */
ndb_status svc_cluster_start(svc_app *app, int grpc_port, ndb_errmsg *msg);

/* The leader's TTL pass (ttl.h): proposes passes to the log until one
 * deletes less than an entry's share, or this node stops leading or drains;
 * the count deleted here in *deleted. Does nothing on a follower. */
ndb_status svc_cluster_expire(svc_app *app, uint64_t *deleted, ndb_errmsg *msg);

/* The cluster's apply function (ndb_cluster_apply_fn); arg is the svc_app. */
ndb_status svc_cluster_apply(void *arg, const ndb_cluster_cmd *cmd, void **reply, size_t *reply_len, bool *fatal,
                             ndb_errmsg *msg);

#endif /* SVC_REPLICATE_H */
