/*
 * config.h — the server's settings, from flags and matching environment
 * variables (--data-dir / NEXADB_DATA_DIR, ...). A flag wins over its
 * variable; both win over the default.
 */
#ifndef SVC_CONFIG_H
#define SVC_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ndb_status.h"

typedef struct svc_config {
    char data_dir[4096];
    char grpc_addr[256];        /* host:port; port 0 picks a free port */
    char http_addr[256];        /* host:port; port 0 picks a free port */
    char api_key[256];          /* a key given directly (admin role) */
    char api_key_file[4096];    /* a file of keys, one per line: "<key> [rw|ro]" */
    char log_level[16];
    char cors_origins[1024];    /* comma-separated allowed origins; empty: same-origin only */
    int shutdown_grace_s;       /* seconds to drain in-flight calls on SIGTERM */
    int cq_threads;             /* gRPC completion-queue threads; 0: one per core */
    int workers;                /* handler threads for calls that may block */
    int64_t max_message_bytes;  /* gRPC receive/send limit */
    int64_t max_body_bytes;     /* HTTP request body limit */
    int64_t query_memory_bytes; /* a sort's or $group's memory before it spills to <data-dir>/spill */
    int ttl_interval_s;         /* seconds between TTL passes (ttl.h) */
    int64_t memtable_bytes;     /* the storage engine's memtable size (flush trigger) */
    int64_t block_cache_bytes;  /* the storage engine's block cache bound; 0: none */
    char compression[8];        /* tables' blocks: "none", "lz4" or "zstd" */
    int compression_kind;       /* the same as an ndb_kv_compression, set by svc_config_load */
    int64_t change_retention_s; /* the change log's age bound; 0: no change log (change_log.h) */
    int64_t change_retention_bytes; /* its size bound; 0: none */
    int max_watches;            /* change streams open at once (h_watch.c) */
    int http_threads;           /* HTTP server threads; 0: two per core */
    int http_timeout_s;         /* seconds an idle or stalled HTTP connection is kept */
    bool allow_insecure_key_file; /* load a key file others can read (with a warning) */
    bool metrics_no_auth;       /* GET /metrics without a key */
    bool no_access_log;         /* no "call" line per call */
    char tls_cert[4096];        /* PEM certificate chain; empty: plaintext (with a warning) */
    char tls_key[4096];         /* PEM private key of tls_cert */
    bool plaintext;             /* without TLS, non-loopback addresses are allowed too */
    char tls_client_ca[4096];   /* PEM CA bundle; set: clients must present a certificate it signed */
    char tls_peer_ca[4096];     /* PEM CA bundle of the other cluster nodes' certificates; set: calls to them use TLS */
    int keepalive_time_s;       /* gRPC: ping a connection idle this long */
    int keepalive_timeout_s;    /* gRPC: close it when the ping is not answered in this time */
    int keepalive_min_ping_s;   /* gRPC: clients may ping this often, with or without calls */
    int max_connections;        /* open connections per port; 0: derived from the descriptor limit */
    int idle_timeout_s;         /* gRPC: close a connection without calls after this long; 0: never */
    int handshake_timeout_s;    /* gRPC: close a connection that has not finished its handshake by then */
    char backup_dir[4096];      /* where AdminService/Backup writes directory backups; empty: <data-dir>/backups */
    char restore[8192];         /* restore this backup (then its bases, comma-separated) into --data-dir and exit */
    char verify_backup[8192];   /* check this backup (then its bases) and exit */
    int64_t node_id;            /* cluster mode: this node's id among peers; 0: a single node */
    bool node_id_from_hostname; /* node_id = 1 + the number ending the host name (a StatefulSet pod's ordinal) */
    char peers[4096];           /* cluster mode: "1=host:port,2=host:port,..." (Raft addresses) */
    int snapshot_entries;       /* cluster mode: log entries between snapshots */
    char raft_bind_addr[256];   /* cluster mode: where the Raft transport listens; empty: its --peers entry */
} svc_config;

/* Fills cfg from defaults, then the environment, then argv. On --help (usage) or
 * --version prints to stdout and returns NDB_ECANCELED so main can exit 0. A bad flag or
 * value returns NDB_EINVAL with msg naming it. */
ndb_status svc_config_load(svc_config *cfg, int argc, char **argv, ndb_errmsg *msg);

#endif /* SVC_CONFIG_H */
