/*
 * dispatch.h — the method table shared by the gRPC server and the REST shim.
 *
 * Built once at start-up from the protobuf-c service descriptors and the
 * handler tables; every RPC in the protos must have a handler entry, so a
 * method cannot be forgotten. Thread safety: read-only after svc_dispatch_init.
 */
#ifndef SVC_DISPATCH_H
#define SVC_DISPATCH_H

#include <grpc/status.h>
#include <stddef.h>

#include "handler.h"

typedef struct svc_route {
    char path[128]; /* "/nexadb.v1.DocumentService/InsertOne" */
    const ProtobufCMethodDescriptor *md;
    const svc_method *m;
} svc_route;

/* Builds the table; NDB_EINVAL when a handler table disagrees with its descriptor. */
ndb_status svc_dispatch_init(ndb_errmsg *msg);

/* The route for a full method path (len bytes), or NULL. */
const svc_route *svc_dispatch_lookup(const char *path, size_t len);

/* Every route, for listings and tests. */
const svc_route *svc_dispatch_routes(size_t *n);

/* Whether a caller presenting key (len bytes; NULL when none) may call route;
 * sets *role. NDB_EAUTH without a valid key, NDB_EPERM for a read-only key on a
 * write method, NDB_ECLOSED (UNAVAILABLE) while the server is starting. */
ndb_status svc_authorize(const svc_app *app, const svc_route *route, const char *key, size_t len,
                         svc_role *role, ndb_errmsg *msg);

/* The gRPC status code for an engine status. */
grpc_status_code svc_status_code(ndb_status st);

/* The engine status for a gRPC code another node answered (svc_status_code's
 * inverse, UNAVAILABLE being a redirect: NDB_ENOTLEADER). */
ndb_status svc_status_from_code(grpc_status_code c);
/* A gRPC status code's name ("NOT_FOUND"); "UNKNOWN" outside 0..16. */
const char *svc_code_name(int code);

#endif /* SVC_DISPATCH_H */
