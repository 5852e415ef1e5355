/* metrics.c — counters, histograms and the Prometheus text exposition (see metrics.h). */
#include "metrics.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "engines.h"

#include "nexadb/v1/admin.pb-c.h"
#include "procstat.h"
#include "version.h"

#define N_CODES 17     /* gRPC status codes 0..16 */
#define N_TRANSPORTS 2
#define N_ENDPOINTS 5   /* svc_metrics_endpoint */
#define MAX_METHODS (64 + N_ENDPOINTS) /* the dispatch table's 64, then the endpoints */

/* Upper bounds of the latency buckets, in seconds; +Inf is implicit. */
static const double bucket_le[] = {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
                                   0.05,   0.1,     0.25,   0.5,   1,      2.5,   5,     10};
#define N_BUCKETS (sizeof bucket_le / sizeof bucket_le[0] + 1)
static int64_t bucket_ns[N_BUCKETS - 1];

typedef struct cell {
    _Atomic uint64_t count;
    _Atomic uint64_t sum_ns;
    _Atomic uint64_t buckets[N_BUCKETS]; /* not cumulative; summed when rendered */
} cell;

static cell cells[MAX_METHODS][N_CODES][N_TRANSPORTS];
static _Atomic int64_t in_flight[N_TRANSPORTS];
static _Atomic uint64_t http_status[600];
static const svc_route *routes;
static size_t n_routes;

static const char *const transport_names[N_TRANSPORTS] = {"grpc", "http"};

ndb_status svc_metrics_init(ndb_errmsg *msg)
{
    routes = svc_dispatch_routes(&n_routes);
    if (n_routes + N_ENDPOINTS > MAX_METHODS)
        return ndb_errmsg_set(msg, NDB_ELIMIT, "metrics: more than %d methods", MAX_METHODS - N_ENDPOINTS);
    for (size_t i = 0; i + 1 < N_BUCKETS; i++)
        bucket_ns[i] = (int64_t)(bucket_le[i] * 1e9 + 0.5);
    return NDB_OK;
}

void svc_metrics_begin(svc_transport t)
{
    atomic_fetch_add_explicit(&in_flight[t], 1, memory_order_relaxed);
}

static void observe(svc_transport t, size_t mi, int grpc_code, int64_t ns);

void svc_metrics_end(svc_transport t, const svc_route *route, int grpc_code, int64_t ns)
{
    size_t mi = n_routes + SVC_METRICS_UNKNOWN;
    if (route != NULL && routes != NULL && route >= routes && route < routes + n_routes)
        mi = (size_t)(route - routes);
    observe(t, mi, grpc_code, ns);
}

void svc_metrics_end_endpoint(svc_transport t, svc_metrics_endpoint e, int grpc_code, int64_t ns)
{
    observe(t, n_routes + (size_t)e, grpc_code, ns);
}

static const char *const endpoint_names[N_ENDPOINTS] = {"unknown", "/metrics", "/openapi.json", "OPTIONS", "/console"};

const char *svc_metrics_endpoint_name(svc_metrics_endpoint e)
{
    return (unsigned)e < N_ENDPOINTS ? endpoint_names[e] : "unknown";
}

static void observe(svc_transport t, size_t mi, int grpc_code, int64_t ns)
{
    atomic_fetch_sub_explicit(&in_flight[t], 1, memory_order_relaxed);
    if (grpc_code < 0 || grpc_code >= N_CODES)
        grpc_code = 2; /* UNKNOWN */
    if (ns < 0)
        ns = 0;
    size_t b = 0;
    while (b + 1 < N_BUCKETS && ns > bucket_ns[b])
        b++;
    cell *c = &cells[mi][grpc_code][t];
    atomic_fetch_add_explicit(&c->count, 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&c->sum_ns, (uint64_t)ns, memory_order_relaxed);
    atomic_fetch_add_explicit(&c->buckets[b], 1, memory_order_relaxed);
}

void svc_metrics_http_status(unsigned status)
{
    if (status < 600)
        atomic_fetch_add_explicit(&http_status[status], 1, memory_order_relaxed);
}

/* ---- rendering ------------------------------------------------------------ */

typedef struct out_buf {
    char *p;
    size_t len, cap;
    bool oom;
} out_buf;

static void outf(out_buf *o, const char *fmt, ...)
{
    if (o->oom)
        return;
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(o->p + o->len, o->cap - o->len, fmt, ap);
        va_end(ap);
        if (n < 0) {
            o->oom = true;
            return;
        }
        if ((size_t)n < o->cap - o->len) {
            o->len += (size_t)n;
            return;
        }
        size_t cap = o->cap * 2 + (size_t)n;
        char *p = realloc(o->p, cap);
        if (p == NULL) {
            o->oom = true;
            return;
        }
        o->p = p;
        o->cap = cap;
    }
}

/* A label value with \ " and newline escaped, into t (truncated to fit). */
static const char *esc(const char *s, char *t, size_t cap)
{
    size_t n = 0;
    for (; *s && n + 3 < cap; s++) {
        if (*s == '\\' || *s == '"') {
            t[n++] = '\\';
            t[n++] = *s;
        } else if (*s == '\n') {
            t[n++] = '\\';
            t[n++] = 'n';
        } else {
            t[n++] = *s;
        }
    }
    t[n] = '\0';
    return t;
}

static void family(out_buf *o, const char *name, const char *type, const char *help)
{
    outf(o, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* The process_* series Prometheus client libraries export, under their names
 * and help texts; a figure that cannot be read is left out. */
static void render_process(out_buf *o)
{
    svc_proc_stat ps;
    if (svc_proc_stat_read(&ps) == NDB_OK) {
        family(o, "process_cpu_seconds_total", "counter", "Total user and system CPU time spent in seconds.");
        outf(o, "process_cpu_seconds_total %.2f\n", ps.cpu_seconds);
        family(o, "process_resident_memory_bytes", "gauge", "Resident memory size in bytes.");
        outf(o, "process_resident_memory_bytes %" PRIu64 "\n", ps.rss_bytes);
        family(o, "process_virtual_memory_bytes", "gauge", "Virtual memory size in bytes.");
        outf(o, "process_virtual_memory_bytes %" PRIu64 "\n", ps.vm_bytes);
        family(o, "process_start_time_seconds", "gauge", "Start time of the process since unix epoch in seconds.");
        outf(o, "process_start_time_seconds %.2f\n", ps.start_time);
        family(o, "process_threads", "gauge", "Number of OS threads in the process.");
        outf(o, "process_threads %" PRIu64 "\n", ps.threads);
    }
    uint64_t n;
    if (svc_proc_open_fds(&n) == NDB_OK) {
        family(o, "process_open_fds", "gauge", "Number of open file descriptors.");
        outf(o, "process_open_fds %" PRIu64 "\n", n);
    }
    if (svc_proc_max_fds(&n) == NDB_OK) {
        family(o, "process_max_fds", "gauge", "Maximum number of open file descriptors.");
        outf(o, "process_max_fds %" PRIu64 "\n", n);
    }
}

/* Engine figures from the Stats handler, called in-process. */
static void render_engine(out_buf *o, svc_app *app)
{
    const svc_route *r = svc_dispatch_lookup("/nexadb.v1.AdminService/Stats", 29);
    if (r == NULL || r->m->fn == NULL)
        return;
    if (atomic_load(&app->state) == SVC_STARTING) {
        /* The engines are not open yet (WAL replay), or failed to open: the
         * handler is never called then, as svc_authorize refuses every call. */
        family(o, "nexadb_stats_up", "gauge", "1 when the engine statistics below could be read");
        outf(o, "nexadb_stats_up 0\n");
        return;
    }
    svc_ctx ctx;
    svc_ctx_init(&ctx, app, INT64_MAX);
    ctx.method = r->path;
    ctx.role = SVC_ROLE_READ;
    Nexadb__V1__StatsRequest req = NEXADB__V1__STATS_REQUEST__INIT;
    ProtobufCMessage *resp = NULL;
    ndb_errmsg msg = {{0}};
    ndb_status st = r->m->fn(&ctx, &req.base, &resp, &msg);
    family(o, "nexadb_stats_up", "gauge", "1 when the engine statistics below could be read");
    outf(o, "nexadb_stats_up %d\n", st == NDB_OK && resp != NULL);
    if (st != NDB_OK || resp == NULL) {
        svc_ctx_release(&ctx);
        return;
    }
    const Nexadb__V1__StatsResponse *s = (const void *)resp;
    char t[256];
    if (s->engine != NULL) {
        const Nexadb__V1__EngineStats *e = s->engine;
        family(o, "nexadb_memtable_bytes", "gauge", "bytes held in the storage engine's memtables");
        outf(o, "nexadb_memtable_bytes %" PRId64 "\n", e->memtable_bytes);
        family(o, "nexadb_level_files", "gauge", "SSTable files per LSM level");
        for (size_t i = 0; i < e->n_levels; i++)
            outf(o, "nexadb_level_files{level=\"%d\"} %" PRId64 "\n", e->levels[i]->level, e->levels[i]->files);
        family(o, "nexadb_level_bytes", "gauge", "SSTable bytes per LSM level");
        for (size_t i = 0; i < e->n_levels; i++)
            outf(o, "nexadb_level_bytes{level=\"%d\"} %" PRId64 "\n", e->levels[i]->level, e->levels[i]->bytes);
        family(o, "nexadb_compactions_total", "counter", "compactions run since start");
        outf(o, "nexadb_compactions_total %" PRId64 "\n", e->compactions);
        family(o, "nexadb_wal_syncs_total", "counter", "WAL fsyncs since start");
        outf(o, "nexadb_wal_syncs_total %" PRId64 "\n", e->wal_syncs);
        family(o, "nexadb_write_stalls_total", "counter", "writes delayed by compaction debt since start");
        outf(o, "nexadb_write_stalls_total %" PRId64 "\n", e->write_stalls);
        family(o, "nexadb_block_cache_hits_total", "counter",
               "block cache lookups that found their block (uncompressed tables are read in place once checked)");
        outf(o, "nexadb_block_cache_hits_total %" PRId64 "\n", e->block_cache_hits);
        family(o, "nexadb_block_cache_misses_total", "counter",
               "block cache lookups that did not: the block was read from its table and checked");
        outf(o, "nexadb_block_cache_misses_total %" PRId64 "\n", e->block_cache_misses);
        family(o, "nexadb_write_amplification", "gauge", "bytes written to disk per byte written by users");
        outf(o, "nexadb_write_amplification %.17g\n", e->write_amplification);
    }
    if (s->memory != NULL) {
        const Nexadb__V1__MemoryStats *m = s->memory;
        family(o, "nexadb_memory_bytes", "gauge",
               "resident memory by kind (anonymous, file: mapped pages, shared) and what the engines hold of it "
               "(memtables, block_cache and its block_cache_capacity, vector_graphs, vector_rows)");
        const struct {
            const char *kind;
            int64_t v;
        } kinds[] = {{"anonymous", m->resident_anonymous}, {"file", m->resident_file},
                     {"shared", m->resident_shared},       {"memtables", m->memtables},
                     {"block_cache", m->block_cache},      {"block_cache_capacity", m->block_cache_capacity},
                     {"vector_graphs", m->vector_graphs},  {"vector_rows", m->vector_rows}};
        for (size_t i = 0; i < sizeof kinds / sizeof *kinds; i++)
            outf(o, "nexadb_memory_bytes{kind=\"%s\"} %" PRId64 "\n", kinds[i].kind, kinds[i].v);
    }
    family(o, "nexadb_documents", "gauge", "documents stored, all collections");
    outf(o, "nexadb_documents %" PRId64 "\n", s->total_documents);
    family(o, "nexadb_collection_documents", "gauge", "documents (or vector rows) per collection");
    for (size_t i = 0; i < s->n_collections; i++) {
        const Nexadb__V1__CollectionInfo *c = s->collections[i];
        outf(o, "nexadb_collection_documents{collection=\"%s\",kind=\"%s\"} %" PRId64 "\n", esc(c->name, t, sizeof t),
             c->kind == NEXADB__V1__COLLECTION_INFO__KIND__KIND_VECTORS ? "vectors" : "documents", c->count);
    }
    family(o, "nexadb_collection_bytes", "gauge", "approximate bytes per collection");
    for (size_t i = 0; i < s->n_collections; i++) {
        const Nexadb__V1__CollectionInfo *c = s->collections[i];
        outf(o, "nexadb_collection_bytes{collection=\"%s\",kind=\"%s\"} %" PRId64 "\n", esc(c->name, t, sizeof t),
             c->kind == NEXADB__V1__COLLECTION_INFO__KIND__KIND_VECTORS ? "vectors" : "documents", c->size_bytes);
    }
    family(o, "nexadb_vector_rows", "gauge", "vectors stored per vector collection");
    for (size_t i = 0; i < s->n_collections; i++) {
        const Nexadb__V1__CollectionInfo *c = s->collections[i];
        if (c->kind == NEXADB__V1__COLLECTION_INFO__KIND__KIND_VECTORS)
            outf(o, "nexadb_vector_rows{collection=\"%s\",dimensions=\"%d\"} %" PRId64 "\n", esc(c->name, t, sizeof t),
                 c->dimensions, c->count);
    }
    family(o, "nexadb_vector_indexed_rows", "gauge",
           "rows an HNSW collection's searched graph holds (the rest are scored exactly until it catches up)");
    for (size_t i = 0; i < s->n_collections; i++) {
        const Nexadb__V1__CollectionInfo *c = s->collections[i];
        if (c->index && c->index->kind == NEXADB__V1__VECTOR_INDEX__KIND__KIND_HNSW)
            outf(o, "nexadb_vector_indexed_rows{collection=\"%s\"} %" PRId64 "\n", esc(c->name, t, sizeof t),
                 c->indexed);
    }
    family(o, "nexadb_vector_index_building", "gauge",
           "1 while an HNSW collection's graph has rows to add or is being rebuilt");
    for (size_t i = 0; i < s->n_collections; i++) {
        const Nexadb__V1__CollectionInfo *c = s->collections[i];
        if (c->index && c->index->kind == NEXADB__V1__VECTOR_INDEX__KIND__KIND_HNSW)
            outf(o, "nexadb_vector_index_building{collection=\"%s\"} %d\n", esc(c->name, t, sizeof t),
                 c->index_building ? 1 : 0);
    }
    family(o, "nexadb_vector_index_bytes", "gauge", "memory an HNSW collection's graph takes");
    for (size_t i = 0; i < s->n_collections; i++) {
        const Nexadb__V1__CollectionInfo *c = s->collections[i];
        if (c->index && c->index->kind == NEXADB__V1__VECTOR_INDEX__KIND__KIND_HNSW)
            outf(o, "nexadb_vector_index_bytes{collection=\"%s\"} %" PRId64 "\n", esc(c->name, t, sizeof t),
                 c->index_bytes);
    }
    svc_ctx_release(&ctx);
}

/* AdminService/Backup (h_backup.c): the running or last backup's progress, and counts. */
static void render_backup(out_buf *o, svc_app *app)
{
    family(o, "nexadb_backup_running", "gauge", "1 while a backup runs");
    outf(o, "nexadb_backup_running %d\n", atomic_load(&app->backup_running));
    family(o, "nexadb_backup_files", "gauge", "files of the running (or last) backup: done and total");
    outf(o, "nexadb_backup_files{state=\"done\"} %" PRIu64 "\n", atomic_load(&app->backup_files_done));
    outf(o, "nexadb_backup_files{state=\"total\"} %" PRIu64 "\n", atomic_load(&app->backup_files_total));
    family(o, "nexadb_backup_bytes", "gauge", "bytes of the running (or last) backup: done and total");
    outf(o, "nexadb_backup_bytes{state=\"done\"} %" PRIu64 "\n", atomic_load(&app->backup_bytes_done));
    outf(o, "nexadb_backup_bytes{state=\"total\"} %" PRIu64 "\n", atomic_load(&app->backup_bytes_total));
    family(o, "nexadb_backups_total", "counter", "backups ended since start, by result");
    outf(o, "nexadb_backups_total{result=\"ok\"} %" PRIu64 "\n", atomic_load(&app->backups_ok));
    outf(o, "nexadb_backups_total{result=\"failed\"} %" PRIu64 "\n", atomic_load(&app->backups_failed));
    family(o, "nexadb_backup_last_success_timestamp_seconds", "gauge",
           "Unix time the last complete backup ended (0: none since start)");
    outf(o, "nexadb_backup_last_success_timestamp_seconds %" PRId64 "\n", atomic_load(&app->backup_last_ok_time));
    family(o, "nexadb_backup_last_sequence", "gauge", "the log point of the last complete backup");
    outf(o, "nexadb_backup_last_sequence %" PRIu64 "\n", atomic_load(&app->backup_last_sequence));
}

/* Cluster mode: the node's role and log positions, and each peer's lag (on the leader). */
static void render_cluster(out_buf *o, svc_app *app)
{
    if (app->cluster == NULL)
        return;
    ndb_cluster_status s;
    ndb_cluster_status_get(app->cluster, &s);
    static const ndb_cluster_role roles[] = {NDB_CLUSTER_LEADER, NDB_CLUSTER_FOLLOWER, NDB_CLUSTER_CANDIDATE,
                                             NDB_CLUSTER_UNAVAILABLE};
    family(o, "nexadb_cluster_role", "gauge", "1 for this node's role in its cluster");
    for (size_t i = 0; i < sizeof roles / sizeof roles[0]; i++)
        outf(o, "nexadb_cluster_role{role=\"%s\"} %d\n", ndb_cluster_role_name(roles[i]), s.role == roles[i]);
    family(o, "nexadb_cluster_term", "gauge", "the Raft term this node is in");
    outf(o, "nexadb_cluster_term %" PRIu64 "\n", s.term);
    family(o, "nexadb_cluster_leader_id", "gauge", "the leader's node id (0: none known)");
    outf(o, "nexadb_cluster_leader_id %" PRIu64 "\n", s.leader_id);
    family(o, "nexadb_cluster_index", "gauge",
           "log positions: committed (held by a majority), applied by this node, last in its log");
    outf(o, "nexadb_cluster_index{kind=\"commit\"} %" PRIu64 "\n", s.commit_index);
    outf(o, "nexadb_cluster_index{kind=\"applied\"} %" PRIu64 "\n", s.applied_index);
    outf(o, "nexadb_cluster_index{kind=\"last\"} %" PRIu64 "\n", s.last_index);
    family(o, "nexadb_cluster_apply_failed", "gauge", "1 when this node stopped applying the log (see Status)");
    outf(o, "nexadb_cluster_apply_failed %d\n", s.apply_failed);
    if (s.role != NDB_CLUSTER_LEADER)
        return;
    family(o, "nexadb_cluster_peer_lag_entries", "gauge", "on the leader: entries each member is behind its log");
    for (size_t i = 0; i < s.npeers; i++)
        outf(o, "nexadb_cluster_peer_lag_entries{peer=\"%" PRIu64 "\"} %" PRIu64 "\n", s.peers[i].id,
             s.last_index > s.peers[i].match_index ? s.last_index - s.peers[i].match_index : 0);
}

ndb_status svc_metrics_render(svc_app *app, char **out, size_t *len, ndb_errmsg *msg)
{
    out_buf o = {.cap = 64 << 10};
    o.p = malloc(o.cap);
    if (o.p == NULL)
        return ndb_errmsg_set(msg, NDB_ENOMEM, "out of memory");
    char t[256];

    family(&o, "nexadb_requests_total", "counter", "calls finished, by transport, method and gRPC status");
    for (size_t m = 0; m < n_routes + N_ENDPOINTS; m++)
        for (int c = 0; c < N_CODES; c++)
            for (int tr = 0; tr < N_TRANSPORTS; tr++) {
                uint64_t n = atomic_load_explicit(&cells[m][c][tr].count, memory_order_relaxed);
                if (n > 0)
                    outf(&o, "nexadb_requests_total{transport=\"%s\",method=\"%s\",code=\"%s\"} %" PRIu64 "\n",
                         transport_names[tr], m < n_routes ? esc(routes[m].path, t, sizeof t) : endpoint_names[m - n_routes],
                         svc_code_name(c), n);
            }

    family(&o, "nexadb_request_duration_seconds", "histogram",
           "call latency from arrival to response, by transport, method and gRPC status");
    for (size_t m = 0; m < n_routes + N_ENDPOINTS; m++)
        for (int c = 0; c < N_CODES; c++)
            for (int tr = 0; tr < N_TRANSPORTS; tr++) {
                cell *cl = &cells[m][c][tr];
                if (atomic_load_explicit(&cl->count, memory_order_relaxed) == 0)
                    continue;
                char labels[400];
                snprintf(labels, sizeof labels, "transport=\"%s\",method=\"%s\",code=\"%s\"", transport_names[tr],
                         m < n_routes ? esc(routes[m].path, t, sizeof t) : endpoint_names[m - n_routes], svc_code_name(c));
                /* Read buckets first and derive the count from them, so count == +Inf bucket. */
                uint64_t cum = 0;
                for (size_t b = 0; b < N_BUCKETS; b++) {
                    cum += atomic_load_explicit(&cl->buckets[b], memory_order_relaxed);
                    if (b + 1 < N_BUCKETS)
                        outf(&o, "nexadb_request_duration_seconds_bucket{%s,le=\"%g\"} %" PRIu64 "\n", labels,
                             bucket_le[b], cum);
                    else
                        outf(&o, "nexadb_request_duration_seconds_bucket{%s,le=\"+Inf\"} %" PRIu64 "\n", labels, cum);
                }
                double sum = (double)atomic_load_explicit(&cl->sum_ns, memory_order_relaxed) / 1e9;
                outf(&o, "nexadb_request_duration_seconds_sum{%s} %.9f\n", labels, sum);
                outf(&o, "nexadb_request_duration_seconds_count{%s} %" PRIu64 "\n", labels, cum);
            }

    family(&o, "nexadb_requests_in_flight", "gauge", "calls started and not yet finished, by transport");
    for (int tr = 0; tr < N_TRANSPORTS; tr++)
        outf(&o, "nexadb_requests_in_flight{transport=\"%s\"} %" PRId64 "\n", transport_names[tr],
             atomic_load_explicit(&in_flight[tr], memory_order_relaxed));

    family(&o, "nexadb_http_responses_total", "counter", "REST responses by HTTP status");
    for (unsigned s = 100; s < 600; s++) {
        uint64_t n = atomic_load_explicit(&http_status[s], memory_order_relaxed);
        if (n > 0)
            outf(&o, "nexadb_http_responses_total{status=\"%u\"} %" PRIu64 "\n", s, n);
    }

    svc_engines_hold(app);
    render_engine(&o, app);
    svc_engines_release(app);
    render_cluster(&o, app);

    render_process(&o);
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    family(&o, "nexadb_uptime_seconds", "gauge", "seconds since the server started");
    outf(&o, "nexadb_uptime_seconds %.3f\n",
         (double)((int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec - app->started_at_ns) / 1e9);
    family(&o, "nexadb_ttl_deleted_documents_total", "counter", "documents the TTL pass deleted");
    outf(&o, "nexadb_ttl_deleted_documents_total %" PRIu64 "\n", atomic_load(&app->ttl_deleted));
    family(&o, "nexadb_ttl_passes_total", "counter", "TTL passes run (every --ttl-interval-seconds)");
    outf(&o, "nexadb_ttl_passes_total %" PRIu64 "\n", atomic_load(&app->ttl_passes));
    family(&o, "nexadb_ttl_failures_total", "counter", "TTL passes that stopped on an error (logged)");
    outf(&o, "nexadb_ttl_failures_total %" PRIu64 "\n", atomic_load(&app->ttl_failures));
    family(&o, "nexadb_change_streams", "gauge", "change streams open (Watch, over gRPC and HTTP; --max-watches)");
    outf(&o, "nexadb_change_streams %d\n", atomic_load(&app->watches));
    family(&o, "nexadb_change_events_sent_total", "counter", "change events sent to change streams");
    outf(&o, "nexadb_change_events_sent_total %" PRIu64 "\n", atomic_load(&app->change_events_sent));
    family(&o, "nexadb_change_log_trimmed_records_total", "counter",
           "change log records deleted by retention (--change-retention-seconds, -bytes)");
    outf(&o, "nexadb_change_log_trimmed_records_total %" PRIu64 "\n", atomic_load(&app->change_trimmed));
    family(&o, "nexadb_change_log_trim_failures_total", "counter", "change log trims that failed (logged)");
    outf(&o, "nexadb_change_log_trim_failures_total %" PRIu64 "\n", atomic_load(&app->change_trim_failures));
    svc_engines_hold(app);
    if (app->doc != NULL) {
        ndb_doc_changes_info ci;
        ndb_doc_changes_info_get(app->doc, &ci);
        family(&o, "nexadb_change_log_bytes", "gauge", "bytes of the change log's records");
        outf(&o, "nexadb_change_log_bytes %" PRIu64 "\n", ci.bytes);
        family(&o, "nexadb_change_log_records", "gauge", "records in the change log (one per write, or per MiB of one)");
        outf(&o, "nexadb_change_log_records %" PRIu64 "\n", ci.next_seq - ci.first_seq);
    }
    svc_engines_release(app);
    render_backup(&o, app);
    if (app->doc != NULL) { /* index builds of both namespaces (engine/doc/README.md, "Index builds") */
        ndb_doc_build_stats bs;
        ndb_doc_build_stats_get(app->doc, &bs);
        family(&o, "nexadb_index_builds_running", "gauge", "index builds running");
        outf(&o, "nexadb_index_builds_running %" PRIu64 "\n", bs.running);
        family(&o, "nexadb_index_build_documents", "gauge",
               "documents of the running index builds: read from their snapshots, and in them");
        outf(&o, "nexadb_index_build_documents{state=\"done\"} %" PRIu64 "\n", bs.docs_done);
        outf(&o, "nexadb_index_build_documents{state=\"total\"} %" PRIu64 "\n", bs.docs_total);
        family(&o, "nexadb_index_build_entries", "gauge", "index entries the running builds have sorted or written");
        outf(&o, "nexadb_index_build_entries %" PRIu64 "\n", bs.entries);
        family(&o, "nexadb_index_builds_total", "counter", "index builds ended since start, by result");
        outf(&o, "nexadb_index_builds_total{result=\"ok\"} %" PRIu64 "\n", bs.ok);
        outf(&o, "nexadb_index_builds_total{result=\"failed\"} %" PRIu64 "\n", bs.failed);
    }
    family(&o, "nexadb_build_info", "gauge", "the server's version and the source revision it was built from");
    outf(&o, "nexadb_build_info{version=\"%s\",", esc(app->version ? app->version : "", t, sizeof t));
    outf(&o, "revision=\"%s\"} 1\n", esc(svc_revision, t, sizeof t));

    if (o.oom) {
        free(o.p);
        return ndb_errmsg_set(msg, NDB_ENOMEM, "out of memory rendering metrics");
    }
    *out = o.p;
    *len = o.len;
    return NDB_OK;
}
