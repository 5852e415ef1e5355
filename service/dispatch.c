#include "dispatch.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const svc_service *const services[] = {
    &svc_health_service,
    &svc_admin_service,
    &svc_document_service,
    &svc_vector_service,
    &svc_reflection_service,
    &svc_reflection_v1alpha_service,
};

#define MAX_ROUTES 64
static svc_route routes[MAX_ROUTES];
static size_t n_routes;

ndb_status svc_dispatch_init(ndb_errmsg *msg)
{
    n_routes = 0;
    for (size_t s = 0; s < sizeof services / sizeof services[0]; s++) {
        const svc_service *svc = services[s];
        if (svc->n_methods != svc->desc->n_methods)
            return ndb_errmsg_set(msg, NDB_EINVAL, "%s: %zu handlers for %u methods", svc->desc->name,
                                  svc->n_methods, svc->desc->n_methods);
        for (unsigned i = 0; i < svc->desc->n_methods; i++) {
            const ProtobufCMethodDescriptor *md = &svc->desc->methods[i];
            if (strcmp(md->name, svc->methods[i].name) != 0)
                return ndb_errmsg_set(msg, NDB_EINVAL, "%s: handler %u is %s, descriptor says %s",
                                      svc->desc->name, i, svc->methods[i].name, md->name);
            if (n_routes == MAX_ROUTES)
                return ndb_errmsg_set(msg, NDB_ELIMIT, "more than %d methods", MAX_ROUTES);
            svc_route *r = &routes[n_routes++];
            int n = snprintf(r->path, sizeof r->path, "/%s/%s", svc->desc->name, md->name);
            if (n < 0 || (size_t)n >= sizeof r->path)
                return ndb_errmsg_set(msg, NDB_EINVAL, "method path too long: %s", md->name);
            r->md = md;
            r->m = &svc->methods[i];
        }
    }
    return NDB_OK;
}

const svc_route *svc_dispatch_lookup(const char *path, size_t len)
{
    /* A few dozen routes: a linear scan over short strings beats a hash here. */
    for (size_t i = 0; i < n_routes; i++)
        if (strlen(routes[i].path) == len && memcmp(routes[i].path, path, len) == 0)
            return &routes[i];
    return NULL;
}

const svc_route *svc_dispatch_routes(size_t *n)
{
    *n = n_routes;
    return routes;
}

ndb_status svc_authorize(const svc_app *app, const svc_route *route, const char *key, size_t len,
                         svc_role *role, ndb_errmsg *msg)
{
    *role = SVC_ROLE_NONE;
    if (route->m->flags & SVC_M_OPEN)
        return NDB_OK;
    *role = key != NULL ? svc_auth_check(app->auth, key, len) : SVC_ROLE_NONE;
    if (*role == SVC_ROLE_NONE)
        return ndb_errmsg_set(msg, NDB_EAUTH,
                              key == NULL ? "missing API key: send x-api-key or authorization: Bearer <key>"
                                          : "invalid API key");
    if ((route->m->flags & SVC_M_WRITE) && *role < SVC_ROLE_WRITE)
        return ndb_errmsg_set(msg, NDB_EPERM, "%s writes data; this API key is read-only", route->path);
    svc_state st = atomic_load(&((svc_app *)app)->state);
    if (st == SVC_STARTING)
        return ndb_errmsg_set(msg, NDB_ECLOSED, "server is starting (recovering data); retry shortly");
    return NDB_OK;
}

grpc_status_code svc_status_code(ndb_status st)
{
    switch (st) {
    case NDB_OK: return GRPC_STATUS_OK;
    case NDB_EINVAL: return GRPC_STATUS_INVALID_ARGUMENT;
    case NDB_ENOTFOUND: return GRPC_STATUS_NOT_FOUND;
    case NDB_EEXIST: return GRPC_STATUS_ALREADY_EXISTS;
    case NDB_ETOOBIG:
    case NDB_ELIMIT:
    case NDB_ENOMEM:
    case NDB_ENOSPC: /* gRPC: "perhaps the entire file system is out of space" */
    case NDB_EMFILE: return GRPC_STATUS_RESOURCE_EXHAUSTED;
    case NDB_EAUTH: return GRPC_STATUS_UNAUTHENTICATED;
    case NDB_EPERM: return GRPC_STATUS_PERMISSION_DENIED;
    case NDB_ECLOSED:
    case NDB_EBUSY:
    case NDB_ENOTLEADER: /* the message names the leader */
    case NDB_EPOISONED: return GRPC_STATUS_UNAVAILABLE;
    case NDB_EUNKNOWN: return GRPC_STATUS_UNKNOWN;
    case NDB_EUNIMPL: return GRPC_STATUS_UNIMPLEMENTED;
    case NDB_ECANCELED: return GRPC_STATUS_CANCELLED;
    case NDB_ETIMEDOUT: return GRPC_STATUS_DEADLINE_EXCEEDED;
    case NDB_ERANGE: return GRPC_STATUS_OUT_OF_RANGE;
    case NDB_ECORRUPT:
    case NDB_EIO: return GRPC_STATUS_INTERNAL;
    }
    return GRPC_STATUS_UNKNOWN;
}

ndb_status svc_status_from_code(grpc_status_code c)
{
    switch (c) {
    case GRPC_STATUS_OK: return NDB_OK;
    case GRPC_STATUS_INVALID_ARGUMENT: return NDB_EINVAL;
    case GRPC_STATUS_NOT_FOUND: return NDB_ENOTFOUND;
    case GRPC_STATUS_ALREADY_EXISTS: return NDB_EEXIST;
    case GRPC_STATUS_RESOURCE_EXHAUSTED: return NDB_ELIMIT;
    case GRPC_STATUS_UNAUTHENTICATED: return NDB_EAUTH;
    case GRPC_STATUS_PERMISSION_DENIED: return NDB_EPERM;
    case GRPC_STATUS_UNAVAILABLE: return NDB_ENOTLEADER;
    case GRPC_STATUS_UNIMPLEMENTED: return NDB_EUNIMPL;
    case GRPC_STATUS_CANCELLED: return NDB_ECANCELED;
    case GRPC_STATUS_DEADLINE_EXCEEDED: return NDB_ETIMEDOUT;
    case GRPC_STATUS_OUT_OF_RANGE: return NDB_ERANGE;
    case GRPC_STATUS_UNKNOWN: return NDB_EUNKNOWN;
    default: return NDB_EIO;
    }
}

const char *svc_code_name(int code)
{
    static const char *const names[] = {
        "OK",           "CANCELLED",          "UNKNOWN",           "INVALID_ARGUMENT",
        "DEADLINE_EXCEEDED", "NOT_FOUND",     "ALREADY_EXISTS",    "PERMISSION_DENIED",
        "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION", "ABORTED",    "OUT_OF_RANGE",
        "UNIMPLEMENTED", "INTERNAL",          "UNAVAILABLE",       "DATA_LOSS",
        "UNAUTHENTICATED",
    };
    return code >= 0 && (size_t)code < sizeof names / sizeof names[0] ? names[code] : "UNKNOWN";
}
