/*
 * app.h — the server's shared state: configuration, keys, engines, health.
 *
 * Thread safety: fields are set before the transports start and only read
 * afterwards, except `state`, `writes_stopped`, the `ttl_` and `backup` fields, which
 * are atomic, and `storage_reason`, under `storage_mu`.
 */
#ifndef SVC_APP_H
#define SVC_APP_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include "auth.h"
#include "config.h"
#include "conn_gate.h"
#include "ndb_doc.h"
#include "ndb_cluster.h"
#include "ndb_kv.h"
#include "ndb_vec.h"
#include "tls.h"

typedef enum svc_state {
    SVC_STARTING = 0, /* opening engines, replaying the WAL: NOT_SERVING */
    SVC_SERVING = 1,
    SVC_DRAINING = 2, /* shutting down: NOT_SERVING */
} svc_state;

typedef struct svc_app {
    const svc_config *cfg;
    svc_auth *auth;
    svc_tls *tls; /* NULL: plaintext on both ports */
    _Atomic svc_state state;
    int64_t started_at_ns; /* CLOCK_MONOTONIC */
    const char *version;
    ndb_kv *kv;      /* the storage engine, under <data-dir>/kv */
    ndb_doc_db *doc; /* document collections, over kv */
    char spill_dir[4200]; /* <data-dir>/spill: sorts' and $group's files beyond --query-memory-bytes */
    ndb_vec_db *vec; /* vector collections, over kv and doc; derived segments in <data-dir>/vseg */
    ndb_cluster *cluster; /* cluster mode (--node-id, --peers): writes go through its log; NULL: one node */
    /* Where the engines live and how they were opened (engines.c), so a
     * cluster node can replace them by a snapshot; the lock calls hold
     * (shared) while they use them, and the flag that ends change streams
     * while a snapshot is loaded. */
    char engines_base[4200];
    bool engines_cluster;
    uint32_t max_open_tables;
    pthread_rwlock_t engines_lock;
    _Atomic int reloading;
    char cluster_client[300]; /* cluster mode: the address clients reach this node at */
    /* Cluster mode: the channel a follower forwards calls to the leader on (forward.c). */
    pthread_mutex_t fwd_mu;
    char fwd_address[300];
    struct grpc_channel *fwd_channel;
    /* The descriptor budget main.c derives from RLIMIT_NOFILE (service/README.md). */
    svc_gate_config gate;
    /* The storage engine refuses writes (storage.c): readiness is NOT_SERVING. */
    _Atomic int writes_stopped;
    pthread_mutex_t storage_mu;
    char storage_reason[384]; /* why, while writes_stopped; under storage_mu */
    /* The TTL pass (ttl.h): documents it deleted, passes run, passes failed. */
    _Atomic uint64_t ttl_deleted, ttl_passes, ttl_failures;
    /* Backups (backup.h): one at a time; the running (or last) one's progress, counts. */
    _Atomic int backup_running;
    _Atomic uint64_t backup_files_done, backup_files_total, backup_bytes_done, backup_bytes_total;
    _Atomic uint64_t backups_ok, backups_failed, backup_last_sequence;
    _Atomic int64_t backup_last_ok_time; /* Unix seconds of the last complete backup, 0: none */
    /* Change streams (h_watch.c): the threads that run them, how many are
     * open, events sent; the change log's trims (change_log.c). */
    struct svc_pool *streams;
    _Atomic int watches;
    _Atomic uint64_t change_events_sent, change_trimmed, change_trim_failures;
    /* Called after each state change (the gRPC server wakes health watchers). */
    void (*on_state_change)(void *arg);
    void *on_state_arg;
} svc_app;

/* Moves the server to a new state and tells health watchers. */
void svc_app_set_state(svc_app *app, svc_state st);

#endif /* SVC_APP_H */
