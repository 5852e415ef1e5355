/* h_admin.c — AdminService: status and statistics. */
#include <stdio.h>
#include <time.h>
#include <unistd.h>

#include "handler.h"
#include "nexadb/v1/admin.pb-c.h"

static int64_t uptime_seconds(const svc_app *app)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ((int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec - app->started_at_ns) / 1000000000;
}

/* Resident set size from /proc/self/statm, or 0 where it cannot be read. */
static int64_t rss_bytes(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    if (f == NULL)
        return 0;
    long long size = 0, resident = 0;
    int n = fscanf(f, "%lld %lld", &size, &resident);
    fclose(f);
    return n == 2 ? (int64_t)resident * sysconf(_SC_PAGESIZE) : 0;
}

static ndb_status status(svc_ctx *ctx, const ProtobufCMessage *req, ProtobufCMessage **resp, ndb_errmsg *msg)
{
    (void)req;
    Nexadb__V1__StatusResponse *out = svc_alloc(ctx, sizeof *out);
    if (out == NULL)
        return ndb_errmsg_set(msg, NDB_ENOMEM, "out of memory");
    nexadb__v1__status_response__init(out);
    switch (atomic_load(&ctx->app->state)) {
    case SVC_STARTING: out->status = "starting"; break;
    case SVC_SERVING: out->status = "ok"; break;
    case SVC_DRAINING: out->status = "draining"; break;
    }
    out->version = (char *)ctx->app->version;
    out->uptime_seconds = uptime_seconds(ctx->app);
    *resp = &out->base;
    return NDB_OK;
}

static ndb_status stats(svc_ctx *ctx, const ProtobufCMessage *req, ProtobufCMessage **resp, ndb_errmsg *msg)
{
    (void)req;
    Nexadb__V1__StatsResponse *out = svc_alloc(ctx, sizeof *out);
    if (out == NULL)
        return ndb_errmsg_set(msg, NDB_ENOMEM, "out of memory");
    nexadb__v1__stats_response__init(out);
    out->uptime_seconds = uptime_seconds(ctx->app);
    out->rss_bytes = rss_bytes();
    *resp = &out->base;
    return NDB_OK;
}

static const svc_method methods[] = {
    {"Status", status, SVC_M_OPEN | SVC_M_INLINE},
    {"Stats", stats, 0},
};

const svc_service svc_admin_service = {&nexadb__v1__admin_service__descriptor, methods,
                                       sizeof methods / sizeof methods[0]};
