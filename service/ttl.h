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
 *
 * In a cluster only the leader's thread acts: it proposes passes to the log
 * (svc_cluster_expire), and every node runs each with the entry's time as
 * now, so all delete the same documents.
 */
#ifndef SVC_TTL_H
#define SVC_TTL_H

#include "app.h"
#include "periodic.h"

#define SVC_TTL_BATCH 100

/* One pass over the document and vector collections as of now_ms, stopping
 * after max deletes (0: no limit); the count in *deleted. */
ndb_status svc_ttl_pass(svc_app *app, int64_t now_ms, uint64_t max, uint64_t *deleted, ndb_errmsg *msg);

/* Started once the engines are open; stopped (svc_periodic_stop) before they close. */
ndb_status svc_ttl_start(svc_app *app, svc_periodic **out, ndb_errmsg *msg);

#endif /* SVC_TTL_H */
