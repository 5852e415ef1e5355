/* health.h — the serving status health checks report. */
#ifndef SVC_HEALTH_H
#define SVC_HEALTH_H

#include "app.h"
#include "grpc/health/v1/health.pb-c.h"

/* SERVING, NOT_SERVING (starting or draining), or SERVICE_UNKNOWN for a name we do not serve. */
Grpc__Health__V1__HealthCheckResponse__ServingStatus svc_health_status(const svc_app *app,
                                                                       const char *service);

#endif /* SVC_HEALTH_H */
