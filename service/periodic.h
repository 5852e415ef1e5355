/*
 * periodic.h — a thread that runs a job now and then every period until it
 * is stopped: the storage watch (health.h) and the TTL pass (ttl.h). Stopping
 * wakes the thread at once and waits for a job in progress to finish.
 */
#ifndef SVC_PERIODIC_H
#define SVC_PERIODIC_H

#include "ndb_status.h"

typedef struct svc_periodic svc_periodic;

/* Starts the thread; what names it in the error when it cannot start. */
ndb_status svc_periodic_start(const char *what, int period_ms, void (*job)(void *arg), void *arg,
                              svc_periodic **out, ndb_errmsg *msg);
void svc_periodic_stop(svc_periodic *p); /* NULL is a no-op */

#endif /* SVC_PERIODIC_H */
