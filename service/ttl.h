/*
 * ttl.h — the server's TTL pass: every --ttl-interval-seconds a thread runs
 * ndb_doc_expire over every TTL index of the document collections
 * (engine/doc/ttl.c) and ndb_vec_expire over those of the vector
 * collections' documents (each deleted with its vector), deleting expired
 * documents in batches of SVC_TTL_BATCH, each one atomic write holding its
 * collection's writer lock only for that batch, so foreground writes wait at
 * most one batch. It skips its turn while the storage engine refuses writes.
 * Counts go to app->ttl_* (metrics: nexadb_ttl_*), a pass that deleted
 * something logs an info line, a failed one a warning.
 */
#ifndef SVC_TTL_H
#define SVC_TTL_H

#include "app.h"
#include "periodic.h"

#define SVC_TTL_BATCH 100

/* Started once the engines are open; stopped (svc_periodic_stop) before they close. */
ndb_status svc_ttl_start(svc_app *app, svc_periodic **out, ndb_errmsg *msg);

#endif /* SVC_TTL_H */
