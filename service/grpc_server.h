/*
 * grpc_server.h — the gRPC transport on the C core.
 *
 * One completion queue per thread (one per core by default). Each queue keeps
 * a number of grpc_server_request_call requests outstanding and re-arms one as
 * a call arrives; a call stays on the queue that accepted it. Handlers marked
 * SVC_M_INLINE run on the queue's thread; the rest run on the worker pool, so
 * a handler waiting on fsync never stalls the queue. Streamed pages are sent
 * one at a time: the next send waits for the previous to complete (flow
 * control). All gRPC C-core calls of the project live in this file.
 */
#ifndef SVC_GRPC_SERVER_H
#define SVC_GRPC_SERVER_H

#include "app.h"
#include "ndb_status.h"

typedef struct svc_grpc svc_grpc;

/* Binds cfg->grpc_addr, starts the queue threads and the worker pool, and
 * stores the bound port in *port. Caller stops with svc_grpc_stop. */
ndb_status svc_grpc_start(svc_app *app, svc_grpc **out, int *port, ndb_errmsg *msg);

/* Stops accepting calls, lets in-flight calls finish for up to grace_s
 * seconds, cancels the rest, then frees everything. */
void svc_grpc_stop(svc_grpc *g, int grace_s);

#endif /* SVC_GRPC_SERVER_H */
