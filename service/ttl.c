/* ttl.c — the server's TTL pass (ttl.h). */
#include "ttl.h"

#include <time.h>

#include "log.h"
#include "replicate.h"

ndb_status svc_ttl_pass(svc_app *app, int64_t now_ms, uint64_t max, uint64_t *deleted, ndb_errmsg *msg)
{
    uint64_t n = 0, nv = 0;
    ndb_status st = ndb_doc_expire(app->doc, now_ms, SVC_TTL_BATCH, max, &n, msg);
    if (st == NDB_OK && (max == 0 || n < max)) /* vector collections: each document with its vector */
        st = ndb_vec_expire(app->vec, now_ms, SVC_TTL_BATCH, max ? max - n : 0, &nv, msg);
    *deleted = n + nv;
    return st;
}

static void ttl_tick(void *arg)
{
    svc_app *app = arg;
    if (atomic_load(&app->writes_stopped))
        return;
    uint64_t n = 0;
    ndb_errmsg msg = {{0}};
    ndb_status st;
    if (app->cluster != NULL) {
        st = svc_cluster_expire(app, &n, &msg);
    } else {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        st = svc_ttl_pass(app, (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000, 0, &n, &msg);
    }
    atomic_fetch_add_explicit(&app->ttl_deleted, n, memory_order_relaxed);
    atomic_fetch_add_explicit(&app->ttl_passes, 1, memory_order_relaxed);
    if (st != NDB_OK) {
        atomic_fetch_add_explicit(&app->ttl_failures, 1, memory_order_relaxed);
        SVC_LOG(SVC_LOG_WARN, "TTL pass failed; the next one retries", LOG_STR("error", msg.text),
                LOG_INT("deleted", (int64_t)n));
    } else if (n > 0) {
        SVC_LOG(SVC_LOG_INFO, "TTL pass deleted expired documents", LOG_INT("deleted", (int64_t)n));
    }
}

ndb_status svc_ttl_start(svc_app *app, svc_periodic **out, ndb_errmsg *msg)
{
    return svc_periodic_start("TTL", app->cfg->ttl_interval_s * 1000, ttl_tick, app, out, msg);
}
