/*
 * change_log.h — the change log's retention: every SVC_CHANGE_TRIM_S seconds
 * a thread deletes its oldest records while they are older than
 * --change-retention-seconds or the log holds more than
 * --change-retention-bytes (ndb_doc_changes_trim), SVC_CHANGE_TRIM_BATCH
 * records per atomic batch until neither holds. A change stream standing
 * before them then ends with OUT_OF_RANGE. Counts go to app->change_*
 * (metrics: nexadb_change_*); a failed trim logs a warning and the next
 * turn retries. It skips its turn while the storage engine refuses writes.
 */
#ifndef SVC_CHANGE_LOG_H
#define SVC_CHANGE_LOG_H

#include "app.h"
#include "periodic.h"

#define SVC_CHANGE_TRIM_S 10
#define SVC_CHANGE_TRIM_BATCH 1000

/* Started once the engines are open (nothing when the server keeps no change
 * log: *out NULL); stopped (svc_periodic_stop) before they close. */
ndb_status svc_change_log_start(svc_app *app, svc_periodic **out, ndb_errmsg *msg);

#endif /* SVC_CHANGE_LOG_H */
