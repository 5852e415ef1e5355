/*
 * metrics.h — request counters and latency histograms for both transports,
 * rendered with engine and process figures as Prometheus text (GET /metrics).
 *
 * Series:
 *   nexadb_requests_total{transport,method,code}            counter
 *   nexadb_request_duration_seconds{transport,method,code}  histogram
 *   nexadb_requests_in_flight{transport}                    gauge
 *   nexadb_http_responses_total{status}                     counter (REST only, by HTTP status)
 *   nexadb_ttl_deleted_documents_total, nexadb_ttl_passes_total,
 *   nexadb_ttl_failures_total                                counters (the TTL pass, ttl.h)
 *   nexadb_backup_running, nexadb_backup_files{state},
 *   nexadb_backup_bytes{state}, nexadb_backup_last_sequence,
 *   nexadb_backup_last_success_timestamp_seconds            gauges, and
 *   nexadb_backups_total{result}                            counter (h_backup.c)
 *   engine figures from AdminService/Stats (memtable bytes, files and bytes
 *   per level, compactions, WAL syncs, write stalls, block cache hits and
 *   misses, documents and bytes per collection, vector rows per vector
 *   collection), uptime, build info, and the standard process_* series
 *   (CPU seconds, resident and virtual memory, start time, threads, open and
 *   maximum file descriptors; procstat.h).
 * method is the gRPC method path ("/nexadb.v1.DocumentService/Get"), one of
 * the REST server's own endpoints ("/metrics", "/openapi.json", "OPTIONS"),
 * or "unknown" for calls that matched nothing; code is the gRPC status name.
 *
 * Thread safety: every counter is a relaxed atomic; observe from any thread.
 * Invariants: svc_metrics_init runs after svc_dispatch_init and before either
 * transport starts; the method table does not change afterwards.
 */
#ifndef SVC_METRICS_H
#define SVC_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "app.h"
#include "dispatch.h"
#include "ndb_status.h"

typedef enum svc_transport {
    SVC_TRANSPORT_GRPC = 0,
    SVC_TRANSPORT_HTTP = 1,
} svc_transport;

/* Sizes the tables from the dispatch table. */
ndb_status svc_metrics_init(ndb_errmsg *msg);

/* A call has started (in-flight gauge up). */
void svc_metrics_begin(svc_transport t);

/* A call has ended: in-flight down, counted under route (NULL: unknown
 * method) and its gRPC status code, with its duration in nanoseconds. */
void svc_metrics_end(svc_transport t, const svc_route *route, int grpc_code, int64_t ns);

/* Endpoints of the REST server that are not gRPC methods. */
typedef enum svc_metrics_endpoint {
    SVC_METRICS_UNKNOWN = 0,  /* method="unknown": matched nothing */
    SVC_METRICS_METRICS = 1,  /* method="/metrics" */
    SVC_METRICS_OPENAPI = 2,  /* method="/openapi.json" */
    SVC_METRICS_PREFLIGHT = 3, /* method="OPTIONS": CORS preflights */
    SVC_METRICS_CONSOLE = 4    /* method="/console": the console's files */
} svc_metrics_endpoint;

/* The method label of an endpoint ("/metrics"). */
const char *svc_metrics_endpoint_name(svc_metrics_endpoint e);

/* As svc_metrics_end, for a call to one of those endpoints. */
void svc_metrics_end_endpoint(svc_transport t, svc_metrics_endpoint e, int grpc_code, int64_t ns);

/* Counts one REST response by HTTP status (100..599). */
void svc_metrics_http_status(unsigned status);

/* The Prometheus text exposition (format 0.0.4). *out is malloc'd: caller
 * frees with free(). Calls the Stats handler for the engine figures. */
ndb_status svc_metrics_render(svc_app *app, char **out, size_t *len, ndb_errmsg *msg);

#endif /* SVC_METRICS_H */
