/* storage_watch.c — the storage engine's health as readiness; resumes writes
 * after a full disk once space is freed (see health.h). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "health.h"
#include "log.h"

/* How often the engine's health is read, and a recoverable poison retried. */
#define WATCH_PERIOD_MS 1000

struct svc_storage_watch {
    svc_app *app;
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int stop; /* mu */
};

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

static void *watch_main(void *arg)
{
    svc_storage_watch *w = arg;
    pthread_mutex_lock(&w->mu);
    while (!w->stop) {
        pthread_mutex_unlock(&w->mu);
        ndb_kv_health h;
        ndb_kv_health_get(w->app->kv, &h);
        if (h.poisoned && h.recoverable) {
            ndb_errmsg msg = {{0}};
            if (ndb_kv_resume(w->app->kv, &msg) != NDB_OK)
                SVC_LOG(SVC_LOG_DEBUG, "resuming writes failed; retrying in a second", LOG_STR("error", msg.text));
            ndb_kv_health_get(w->app->kv, &h);
        }
        publish(w->app, &h);
        pthread_mutex_lock(&w->mu);
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        ts.tv_nsec += (long)WATCH_PERIOD_MS % 1000 * 1000000;
        ts.tv_sec += WATCH_PERIOD_MS / 1000 + ts.tv_nsec / 1000000000;
        ts.tv_nsec %= 1000000000;
        while (!w->stop && pthread_cond_timedwait(&w->cv, &w->mu, &ts) != ETIMEDOUT) {
        }
    }
    pthread_mutex_unlock(&w->mu);
    return NULL;
}

ndb_status svc_storage_watch_start(svc_app *app, svc_storage_watch **out, ndb_errmsg *msg)
{
    svc_storage_watch *w = calloc(1, sizeof *w);
    if (w == NULL)
        return ndb_errmsg_set(msg, NDB_ENOMEM, "out of memory");
    w->app = app;
    pthread_mutex_init(&w->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&w->cv, &ca);
    pthread_condattr_destroy(&ca);
    int e = pthread_create(&w->thread, NULL, watch_main, w);
    if (e != 0) {
        pthread_cond_destroy(&w->cv);
        pthread_mutex_destroy(&w->mu);
        free(w);
        return ndb_errmsg_set(msg, NDB_ENOMEM, "cannot start the storage watch thread: %s", strerror(e));
    }
    *out = w;
    return NDB_OK;
}

void svc_storage_watch_stop(svc_storage_watch *w)
{
    if (w == NULL)
        return;
    pthread_mutex_lock(&w->mu);
    w->stop = 1;
    pthread_cond_signal(&w->cv);
    pthread_mutex_unlock(&w->mu);
    pthread_join(w->thread, NULL);
    pthread_cond_destroy(&w->cv);
    pthread_mutex_destroy(&w->mu);
    free(w);
}
