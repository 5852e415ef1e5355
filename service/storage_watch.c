/* storage_watch.c — the storage engine's health as readiness; resumes writes
 * after a full disk once space is freed (see health.h). */
#include <stdio.h>
#include <string.h>

#include "engines.h"
#include "health.h"
#include "log.h"

/* How often the engine's health is read, and a recoverable poison retried. */
#define WATCH_PERIOD_MS 1000

/* Publishes the engine's health h: app->writes_stopped and the reason; logs
 * and tells health watchers when it changed. */
static void publish(svc_app *app, const ndb_kv_health *h)
{
    char reason[sizeof app->storage_reason] = "";
    if (h->poisoned)
        snprintf(reason, sizeof reason, "writes stopped: %s; %s", h->reason,
                 h->recoverable ? "they resume by themselves once space (or descriptors) is freed"
                                : "the engine does not trust the disk after this error: restart the server");
    pthread_mutex_lock(&app->storage_mu);
    int changed = strcmp(reason, app->storage_reason) != 0;
    memcpy(app->storage_reason, reason, sizeof reason);
    pthread_mutex_unlock(&app->storage_mu);
    int was = atomic_exchange(&app->writes_stopped, h->poisoned);
    if (!changed && was == h->poisoned)
        return;
    if (h->poisoned)
        SVC_LOG(h->recoverable ? SVC_LOG_WARN : SVC_LOG_ERROR, "storage engine refuses writes: readiness NOT_SERVING",
                LOG_STR("reason", reason), LOG_STR("cause", ndb_strerror(h->cause)),
                LOG_BOOL("resumes_by_itself", h->recoverable));
    else
        SVC_LOG(SVC_LOG_INFO, "storage engine accepts writes again: readiness SERVING");
    if (app->on_state_change != NULL)
        app->on_state_change(app->on_state_arg);
}

static void watch_tick(void *arg)
{
    svc_app *app = arg;
    ndb_kv_health h;
    svc_engines_hold(app);
    ndb_kv_health_get(app->kv, &h);
    if (h.poisoned && h.recoverable) {
        ndb_errmsg msg = {{0}};
        if (ndb_kv_resume(app->kv, &msg) != NDB_OK)
            SVC_LOG(SVC_LOG_DEBUG, "resuming writes failed; retrying in a second", LOG_STR("error", msg.text));
        ndb_kv_health_get(app->kv, &h);
    }
    svc_engines_release(app);
    publish(app, &h);
}

ndb_status svc_storage_watch_start(svc_app *app, svc_periodic **out, ndb_errmsg *msg)
{
    return svc_periodic_start("storage watch", WATCH_PERIOD_MS, watch_tick, app, out, msg);
}
