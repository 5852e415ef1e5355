/*
 * rest.h — the HTTP/JSON shim: libmicrohttpd serving the routes generated
 * from the protos' google.api.http annotations, transcoding each request to
 * the protobuf message the gRPC handlers take and calling the same handler
 * in-process (no network hop). Also serves GET /metrics, GET /openapi.json and the
 * browser console at /console (console.h).
 *
 * Thread safety: start and stop from the main thread; requests run on
 * libmicrohttpd's pool threads, each handler synchronously on the thread
 * that read its request.
 */
#ifndef SVC_REST_H
#define SVC_REST_H

#include "app.h"
#include "ndb_status.h"

typedef struct svc_rest svc_rest;

/* Listens on cfg->http_addr (port 0: a free port, returned in *port).
 * Needs svc_dispatch_init and svc_metrics_init done. Caller stops with svc_rest_stop. */
ndb_status svc_rest_start(svc_app *app, svc_rest **out, int *port, ndb_errmsg *msg);

/* Stops accepting connections; requests already running finish. */
void svc_rest_quiesce(svc_rest *r);

/* Waits for running requests, closes every connection and frees r. */
void svc_rest_stop(svc_rest *r);

#endif /* SVC_REST_H */
