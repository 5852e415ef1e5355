/* change_log.c — the change log's retention (change_log.h). */
#include "change_log.h"

#include <time.h>

#include "engines.h"
#include "log.h"

static void trim_tick(void *arg)
{
    svc_app *app = arg;
    if (atomic_load(&app->writes_stopped))
        return;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    int64_t now_ms = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
    const svc_config *cfg = app->cfg;
    uint64_t n, total = 0;
    ndb_errmsg msg = {{0}};
    ndb_status st;
    svc_engines_hold(app);
    do {
        st = ndb_doc_changes_trim(app->doc, now_ms, cfg->change_retention_s * 1000,
                                  (uint64_t)cfg->change_retention_bytes, SVC_CHANGE_TRIM_BATCH, &n, &msg);
        total += n;
        atomic_fetch_add_explicit(&app->change_trimmed, n, memory_order_relaxed);
    } while (st == NDB_OK && n == SVC_CHANGE_TRIM_BATCH && !atomic_load(&app->writes_stopped));
    svc_engines_release(app);
    if (st != NDB_OK) {
        atomic_fetch_add_explicit(&app->change_trim_failures, 1, memory_order_relaxed);
        SVC_LOG(SVC_LOG_WARN, "trimming the change log failed; the next turn retries", LOG_STR("error", msg.text),
                LOG_INT("trimmed", (int64_t)total));
    }
}

ndb_status svc_change_log_start(svc_app *app, svc_periodic **out, ndb_errmsg *msg)
{
    *out = NULL;
    if (app->cfg->change_retention_s == 0)
        return NDB_OK;
    return svc_periodic_start("change log", SVC_CHANGE_TRIM_S * 1000, trim_tick, app, out, msg);
}
