/* health.h — the serving status health checks report. */
#ifndef SVC_HEALTH_H
#define SVC_HEALTH_H

#include "app.h"
#include "grpc/health/v1/health.pb-c.h"
#include "periodic.h"

/* SERVING, NOT_SERVING (starting or draining; and for the readiness services,
 * DocumentService and VectorService, while the storage engine refuses writes),
 * or SERVICE_UNKNOWN for a name we do not serve. "" (liveness) and
 * AdminService stay SERVING while writes are stopped: restarting would not help,
 * and Status says why. */
Grpc__Health__V1__HealthCheckResponse__ServingStatus svc_health_status(const svc_app *app,
                                                                       const char *service);

/* Why readiness says NOT_SERVING, into buf ("" while SERVING). */
void svc_health_reason(svc_app *app, char *buf, size_t n);

/*
 * The storage watch: a thread that reads the storage engine's health every
 * second. When the engine refuses writes it sets app->writes_stopped (and the
 * reason), which makes readiness NOT_SERVING, and tells health watchers; when
 * the cause can clear by itself (a full disk, descriptors exhausted) it calls
 * ndb_kv_resume each second until writes resume, then readiness is SERVING
 * again. Started once the engines are open; stopped before they close.
 */
ndb_status svc_storage_watch_start(svc_app *app, svc_periodic **out, ndb_errmsg *msg); /* svc_periodic_stop */

#endif /* SVC_HEALTH_H */
