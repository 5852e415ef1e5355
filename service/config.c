#include "config.h"

#include "log.h"
#include "ndb_kv.h"
#include "version.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

/* One row per setting: the flag, its variable, where it goes, and its help. */
typedef enum { OPT_STR, OPT_INT, OPT_I64, OPT_BOOL } opt_kind; /* OPT_BOOL: a flag without a value */

typedef struct opt_def {
    const char *flag;
    const char *env;
    opt_kind kind;
    size_t offset;
    size_t size; /* buffer size for OPT_STR */
    int64_t min, max;
    const char *help;
} opt_def;

#define STR_OPT(f, e, field, h) {f, e, OPT_STR, offsetof(svc_config, field), sizeof(((svc_config *)0)->field), 0, 0, h}
#define NUM_OPT(f, e, k, field, lo, hi, h) {f, e, k, offsetof(svc_config, field), 0, lo, hi, h}
#define BOOL_OPT(f, e, field, h) {f, e, OPT_BOOL, offsetof(svc_config, field), 0, 0, 1, h}

static const opt_def opts[] = {
    STR_OPT("data-dir", "NEXADB_DATA_DIR", data_dir, "directory for all data (default ./nexadb_data)"),
    STR_OPT("grpc-addr", "NEXADB_GRPC_ADDR", grpc_addr, "gRPC listen address host:port (default 127.0.0.1:6970)"),
    STR_OPT("http-addr", "NEXADB_HTTP_ADDR", http_addr, "HTTP/JSON listen address host:port (default 127.0.0.1:6969)"),
    STR_OPT("api-key", "NEXADB_API_KEY", api_key, "an API key with full access"),
    STR_OPT("api-key-file", "NEXADB_API_KEY_FILE", api_key_file,
            "file of API keys, one per line: <key> [rw|ro] (default <data-dir>/api_key)"),
    STR_OPT("log-level", "NEXADB_LOG_LEVEL", log_level, "debug, info, warn or error (default info)"),
    STR_OPT("cors-origins", "NEXADB_CORS_ORIGINS", cors_origins,
            "comma-separated origins allowed by CORS, or * (default: none)"),
    NUM_OPT("shutdown-grace", "NEXADB_SHUTDOWN_GRACE", OPT_INT, shutdown_grace_s, 0, 3600,
            "seconds to drain in-flight calls on SIGTERM (default 20)"),
    NUM_OPT("cq-threads", "NEXADB_CQ_THREADS", OPT_INT, cq_threads, 0, 256,
            "gRPC completion-queue threads (default: one per core)"),
    NUM_OPT("workers", "NEXADB_WORKERS", OPT_INT, workers, 1, 1024,
            "threads running calls that may block (default 16; 64 in cluster mode, where each write waits for a "
            "majority)"),
    NUM_OPT("max-message-bytes", "NEXADB_MAX_MESSAGE_BYTES", OPT_I64, max_message_bytes, 1024,
            INT32_MAX, "largest gRPC message received or sent (default 67108864)"),
    NUM_OPT("max-body-bytes", "NEXADB_MAX_BODY_BYTES", OPT_I64, max_body_bytes, 1024, INT32_MAX,
            "largest HTTP request body (default 67108864)"),
    NUM_OPT("query-memory-bytes", "NEXADB_QUERY_MEMORY_BYTES", OPT_I64, query_memory_bytes, 65536, INT64_MAX / 4,
            "memory of one sort or $group before it spills to files in <data-dir>/spill (default 104857600)"),
    NUM_OPT("memtable-bytes", "NEXADB_MEMTABLE_BYTES", OPT_I64, memtable_bytes, 1 << 20, INT64_C(1) << 36,
            "storage engine memtable size that triggers a flush; up to two are in memory (default 67108864)"),
    NUM_OPT("block-cache-bytes", "NEXADB_BLOCK_CACHE_BYTES", OPT_I64, block_cache_bytes, 0, INT64_C(1) << 40,
            "storage engine block cache bound; 0 disables it (default 67108864)"),
    STR_OPT("compression", "NEXADB_COMPRESSION", compression,
            "compression of the table blocks written from now on: none, lz4 or zstd; compressed blocks are read "
            "through the block cache (default none: tables are read in place)"),
    NUM_OPT("ttl-interval-seconds", "NEXADB_TTL_INTERVAL_SECONDS", OPT_INT, ttl_interval_s, 1, 86400,
            "seconds between passes deleting documents past their TTL index's limit (default 60)"),
    NUM_OPT("change-retention-seconds", "NEXADB_CHANGE_RETENTION_SECONDS", OPT_I64, change_retention_s, 0,
            INT64_C(100) * 365 * 86400,
            "seconds the change log keeps changes for change streams to resume from; 0 keeps no change log "
            "(default 86400)"),
    NUM_OPT("change-retention-bytes", "NEXADB_CHANGE_RETENTION_BYTES", OPT_I64, change_retention_bytes, 0,
            INT64_MAX / 4, "bytes the change log may hold before its oldest changes go; 0: no bound (default 1073741824)"),
    NUM_OPT("max-watches", "NEXADB_MAX_WATCHES", OPT_INT, max_watches, 1, 4096,
            "change streams open at once, over gRPC and HTTP together (default 32)"),
    NUM_OPT("http-threads", "NEXADB_HTTP_THREADS", OPT_INT, http_threads, 0, 1024,
            "HTTP server threads, each running its requests' handlers (default: two per core)"),
    NUM_OPT("http-timeout", "NEXADB_HTTP_TIMEOUT", OPT_INT, http_timeout_s, 1, 3600,
            "seconds before an idle or stalled HTTP connection is closed (default 30)"),
    BOOL_OPT("allow-insecure-key-file", "NEXADB_ALLOW_INSECURE_KEY_FILE", allow_insecure_key_file,
             "load an API key file that others may read (logs a warning; default: refuse to start)"),
    BOOL_OPT("no-access-log", "NEXADB_NO_ACCESS_LOG", no_access_log,
             "no \"call\" line per call at info level (default: one, with method, code, time, bytes, request id)"),
    BOOL_OPT("metrics-no-auth", "NEXADB_METRICS_NO_AUTH", metrics_no_auth,
             "serve GET /metrics without an API key (default: any valid key, ro included)"),
    STR_OPT("tls-cert", "NEXADB_TLS_CERT", tls_cert,
            "PEM certificate chain: both ports speak TLS (default: none: plaintext, on loopback only unless --plaintext)"),
    STR_OPT("tls-key", "NEXADB_TLS_KEY", tls_key, "PEM private key of --tls-cert"),
    BOOL_OPT("plaintext", "NEXADB_PLAINTEXT", plaintext,
             "without --tls-cert, listen in plaintext on addresses other than loopback too (logs a warning)"),
    STR_OPT("tls-client-ca", "NEXADB_TLS_CLIENT_CA", tls_client_ca,
            "PEM CA bundle: clients must present a certificate it signed (mTLS; default: none)"),
    STR_OPT("tls-peer-ca", "NEXADB_TLS_PEER_CA", tls_peer_ca,
            "cluster mode with TLS: PEM CA bundle that signed the other nodes' certificates; given, a follower "
            "passes calls on to the leader and fetches snapshots over TLS, presenting --tls-cert (default: none, "
            "followers answer with the redirect)"),
    NUM_OPT("keepalive-time", "NEXADB_KEEPALIVE_TIME", OPT_INT, keepalive_time_s, 1, 86400,
            "seconds a gRPC connection may idle before the server pings it (default 30)"),
    NUM_OPT("keepalive-timeout", "NEXADB_KEEPALIVE_TIMEOUT", OPT_INT, keepalive_timeout_s, 1, 3600,
            "seconds to wait for that ping's answer before closing the connection (default 10)"),
    NUM_OPT("keepalive-min-ping", "NEXADB_KEEPALIVE_MIN_PING", OPT_INT, keepalive_min_ping_s, 1, 86400,
            "seconds clients' keepalive pings may come apart, with or without calls (default 5)"),
    NUM_OPT("max-connections", "NEXADB_MAX_CONNECTIONS", OPT_INT, max_connections, 0, 1 << 24,
            "open connections per port, beyond which new ones are closed (default 0: from the descriptor limit)"),
    NUM_OPT("idle-timeout", "NEXADB_IDLE_TIMEOUT", OPT_INT, idle_timeout_s, 0, 86400,
            "seconds a gRPC connection without calls is kept before it is closed, 0 never (default 300)"),
    NUM_OPT("handshake-timeout", "NEXADB_HANDSHAKE_TIMEOUT", OPT_INT, handshake_timeout_s, 1, 3600,
            "seconds a new gRPC connection has to finish its TLS and HTTP/2 handshake (default 10)"),
    STR_OPT("backup-dir", "NEXADB_BACKUP_DIR", backup_dir,
            "directory AdminService/Backup writes named backups into; hard links need the data's file system "
            "(default <data-dir>/backups)"),
    STR_OPT("restore", "NEXADB_RESTORE", restore,
            "restore this backup (a directory or archive; an incremental archive's bases after it, comma-separated) "
            "into an empty --data-dir, verifying every checksum first, and exit"),
    NUM_OPT("node-id", "NEXADB_NODE_ID", OPT_I64, node_id, 0, INT64_C(1) << 53,
            "cluster mode: this node's id, one of --peers (default 0: a single node, no cluster)"),
    BOOL_OPT("node-id-from-hostname", "NEXADB_NODE_ID_FROM_HOSTNAME", node_id_from_hostname,
             "cluster mode: this node's id is 1 + the number that ends the host name (a Kubernetes StatefulSet "
             "pod's ordinal: nexadb-0 is node 1)"),
    STR_OPT("peers", "NEXADB_PEERS", peers,
            "cluster mode: every member as id=host:port of its Raft transport, comma-separated, this node "
            "included (e.g. 1=nexadb-0.nexadb:6971,2=nexadb-1.nexadb:6971,3=nexadb-2.nexadb:6971)"),
    STR_OPT("raft-bind-addr", "NEXADB_RAFT_BIND_ADDR", raft_bind_addr,
            "cluster mode: host:port the Raft transport listens on (default: this node's --peers address; "
            "0.0.0.0:6971 in a pod, whose DNS name may not resolve yet at start)"),
    NUM_OPT("snapshot-entries", "NEXADB_SNAPSHOT_ENTRIES", OPT_INT, snapshot_entries, 16, 1 << 30,
            "cluster mode: log entries between snapshots, after which the log before them is dropped (default 4096)"),
    STR_OPT("verify-backup", "NEXADB_VERIFY_BACKUP", verify_backup,
            "check every checksum of this backup (bases after it, comma-separated) and exit: 0 whole, 1 not"),
};
#define N_OPTS (sizeof opts / sizeof opts[0])

/* --node-id-from-hostname: "nexadb-2" is node 3. */
static ndb_status node_id_from_hostname(svc_config *cfg, ndb_errmsg *msg)
{
    if (!cfg->node_id_from_hostname)
        return NDB_OK;
    if (cfg->node_id != 0)
        return ndb_errmsg_set(msg, NDB_EINVAL, "--node-id and --node-id-from-hostname: give one");
    char host[256];
    if (gethostname(host, sizeof host) != 0)
        return ndb_errmsg_set(msg, NDB_EIO, "--node-id-from-hostname: gethostname: %s", strerror(errno));
    host[sizeof host - 1] = 0;
    const char *dash = strrchr(host, '-');
    char *end;
    errno = 0;
    long long ord = dash != NULL ? strtoll(dash + 1, &end, 10) : -1;
    if (dash == NULL || dash[1] < '0' || dash[1] > '9' || *end != 0 || errno != 0 || ord < 0 || ord > 1000000)
        return ndb_errmsg_set(msg, NDB_EINVAL, "--node-id-from-hostname: host name \"%.64s\" does not end in -<number>",
                              host);
    cfg->node_id = ord + 1;
    return NDB_OK;
}

static ndb_status set_opt(svc_config *cfg, const opt_def *o, const char *val, const char *source,
                          ndb_errmsg *msg)
{
    char *dst = (char *)cfg + o->offset;
    if (o->kind == OPT_BOOL) { /* from the environment: 1/true/yes or 0/false/no; a flag passes "1" */
        if (strcmp(val, "1") == 0 || strcasecmp(val, "true") == 0 || strcasecmp(val, "yes") == 0)
            *(bool *)dst = true;
        else if (strcmp(val, "0") == 0 || strcasecmp(val, "false") == 0 || strcasecmp(val, "no") == 0)
            *(bool *)dst = false;
        else
            return ndb_errmsg_set(msg, NDB_EINVAL, "%s: expected true or false, got '%s'", source, val);
        return NDB_OK;
    }
    if (o->kind == OPT_STR) {
        size_t n = strlen(val);
        if (n >= o->size)
            return ndb_errmsg_set(msg, NDB_EINVAL, "%s: value longer than %zu bytes", source,
                                  o->size - 1);
        memcpy(dst, val, n + 1);
        return NDB_OK;
    }
    errno = 0;
    char *end;
    long long v = strtoll(val, &end, 10);
    if (errno != 0 || end == val || *end != '\0' || v < o->min || v > o->max)
        return ndb_errmsg_set(msg, NDB_EINVAL, "%s: expected a whole number from %lld to %lld, got '%s'",
                              source, (long long)o->min, (long long)o->max, val);
    if (o->kind == OPT_INT)
        *(int *)dst = (int)v;
    else
        *(int64_t *)dst = (int64_t)v;
    return NDB_OK;
}

static void usage(const char *prog)
{
    printf("Usage: %s [options]\n\nNexaDB server: documents and vectors over gRPC and HTTP/JSON.\n"
           "Every option can also be set by the environment variable shown.\n\n",
           prog);
    for (size_t i = 0; i < N_OPTS; i++)
        printf("  --%-24s %-31s %s\n", opts[i].flag, opts[i].env, opts[i].help);
    printf("  --%-24s %-31s %s\n", "version", "", "print the version and source revision and exit");
    printf("  --%-24s %-31s %s\n", "help", "", "print this and exit");
}

ndb_status svc_config_load(svc_config *cfg, int argc, char **argv, ndb_errmsg *msg)
{
    memset(cfg, 0, sizeof *cfg);
    strcpy(cfg->data_dir, "./nexadb_data");
    strcpy(cfg->grpc_addr, "127.0.0.1:6970");
    strcpy(cfg->http_addr, "127.0.0.1:6969");
    strcpy(cfg->log_level, "info");
    strcpy(cfg->compression, "none");
    cfg->shutdown_grace_s = 20;
    cfg->max_message_bytes = 64 << 20;
    cfg->max_body_bytes = 64 << 20;
    cfg->query_memory_bytes = 100 << 20;
    cfg->ttl_interval_s = 60;
    cfg->memtable_bytes = INT64_C(64) << 20;
    cfg->block_cache_bytes = INT64_C(64) << 20;
    cfg->change_retention_s = 86400;
    cfg->change_retention_bytes = INT64_C(1) << 30;
    cfg->max_watches = 32;
    cfg->snapshot_entries = 4096;
    cfg->http_timeout_s = 30;
    cfg->keepalive_time_s = 30;
    cfg->keepalive_timeout_s = 10;
    cfg->keepalive_min_ping_s = 5;
    cfg->idle_timeout_s = 300;
    cfg->handshake_timeout_s = 10;

    for (size_t i = 0; i < N_OPTS; i++) {
        const char *v = getenv(opts[i].env);
        if (v != NULL && *v != '\0') {
            ndb_status st = set_opt(cfg, &opts[i], v, opts[i].env, msg);
            if (st != NDB_OK)
                return st;
        }
    }

    struct option longopts[N_OPTS + 3];
    for (size_t i = 0; i < N_OPTS; i++)
        longopts[i] = (struct option){opts[i].flag, opts[i].kind == OPT_BOOL ? no_argument : required_argument,
                                      NULL, (int)i};
    longopts[N_OPTS] = (struct option){"help", no_argument, NULL, 'h'};
    longopts[N_OPTS + 1] = (struct option){"version", no_argument, NULL, 'V'};
    longopts[N_OPTS + 2] = (struct option){NULL, 0, NULL, 0};

    optind = 1;
    opterr = 0;
    for (;;) {
        int idx = 0;
        int c = getopt_long(argc, argv, "h", longopts, &idx);
        if (c == -1)
            break;
        if (c == 'h') {
            usage(argv[0]);
            return NDB_ECANCELED;
        }
        if (c == 'V') {
            printf("nexadb-server %s (revision %s)\n", svc_version, svc_revision);
            return NDB_ECANCELED;
        }
        if (c == '?' || c == ':')
            return ndb_errmsg_set(msg, NDB_EINVAL, "unknown option or missing value: %s (see --help)",
                                  argv[optind - 1]);
        char source[64];
        snprintf(source, sizeof source, "--%s", opts[c].flag);
        ndb_status st = set_opt(cfg, &opts[c], opts[c].kind == OPT_BOOL ? "1" : optarg, source, msg);
        if (st != NDB_OK)
            return st;
    }
    if (optind < argc)
        return ndb_errmsg_set(msg, NDB_EINVAL, "unexpected argument '%s' (see --help)", argv[optind]);
    if (svc_log_parse_level(cfg->log_level) < 0)
        return ndb_errmsg_set(msg, NDB_EINVAL, "--log-level: expected debug, info, warn or error, got '%s'",
                              cfg->log_level);
    static const char *const kinds[] = {[NDB_KV_COMPRESS_NONE] = "none", [NDB_KV_COMPRESS_LZ4] = "lz4",
                                        [NDB_KV_COMPRESS_ZSTD] = "zstd"};
    cfg->compression_kind = -1;
    for (int k = 0; k < (int)(sizeof kinds / sizeof kinds[0]); k++)
        if (strcmp(cfg->compression, kinds[k]) == 0)
            cfg->compression_kind = k;
    if (cfg->compression_kind < 0)
        return ndb_errmsg_set(msg, NDB_EINVAL, "--compression: expected none, lz4 or zstd, got '%s'",
                              cfg->compression);
    ndb_status st = node_id_from_hostname(cfg, msg);
    if (cfg->workers == 0) /* unset: a worker running a write waits for its entry's commit */
        cfg->workers = cfg->node_id != 0 ? 64 : 16;
    return st;
}
