/* h_health.c — grpc.health.v1.Health: Check here; Watch is event-driven in the gRPC server. */
#include <stdio.h>
#include <string.h>

#include "grpc/health/v1/health.pb-c.h"
#include "handler.h"
#include "health.h"
#include "replicate.h"

Grpc__Health__V1__HealthCheckResponse__ServingStatus svc_health_status(const svc_app *app,
                                                                       const char *service)
{
    static const struct {
        const char *name;
        int writes; /* readiness: also NOT_SERVING while the engine refuses writes */
    } known[] = {
        {"", 0}, {"nexadb.v1.DocumentService", 1}, {"nexadb.v1.VectorService", 1}, {"nexadb.v1.AdminService", 0},
    };
    svc_app *a = (svc_app *)app;
    for (size_t i = 0; i < sizeof known / sizeof known[0]; i++)
        if (strcmp(service, known[i].name) == 0)
            return atomic_load(&a->state) == SVC_SERVING &&
                           !(known[i].writes && (atomic_load(&a->writes_stopped) || !svc_cluster_ready(a, NULL, 0)))
                       ? GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVING
                       : GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__NOT_SERVING;
    return GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVICE_UNKNOWN;
}

void svc_health_reason(svc_app *app, char *buf, size_t n)
{
    switch (atomic_load(&app->state)) {
    case SVC_STARTING: snprintf(buf, n, "starting: opening the data (replaying the WAL)"); return;
    case SVC_DRAINING: snprintf(buf, n, "draining: shutting down"); return;
    case SVC_SERVING: break;
    }
    pthread_mutex_lock(&app->storage_mu);
    snprintf(buf, n, "%s", atomic_load(&app->writes_stopped) ? app->storage_reason : "");
    pthread_mutex_unlock(&app->storage_mu);
    if (buf[0] == '\0')
        svc_cluster_ready(app, buf, n);
}

static ndb_status health_check(svc_ctx *ctx, const ProtobufCMessage *req, ProtobufCMessage **resp,
                               ndb_errmsg *msg)
{
    const Grpc__Health__V1__HealthCheckRequest *r = (const void *)req;
    Grpc__Health__V1__HealthCheckResponse__ServingStatus s = svc_health_status(ctx->app, r->service);
    if (s == GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVICE_UNKNOWN)
        return ndb_errmsg_set(msg, NDB_ENOTFOUND, "unknown service '%s'", r->service);
    Grpc__Health__V1__HealthCheckResponse *out = svc_alloc(ctx, sizeof *out);
    if (out == NULL)
        return ndb_errmsg_set(msg, NDB_ENOMEM, "out of memory");
    grpc__health__v1__health_check_response__init(out);
    out->status = s;
    *resp = &out->base;
    return NDB_OK;
}

static const svc_method methods[] = {
    {"Check", health_check, SVC_M_OPEN | SVC_M_INLINE},
    {"Watch", NULL, SVC_M_OPEN | SVC_M_STREAM | SVC_M_WATCH},
};

const svc_service svc_health_service = {&grpc__health__v1__health__descriptor, methods,
                                        sizeof methods / sizeof methods[0]};
