/*
 * engines.c — the engines' lifecycle: the storage engine, then documents and
 * vectors over it, opened under the data directory (or a cluster node's
 * state directory), closed in reverse, and in cluster mode replaced by a
 * snapshot while the server runs.
 */
#include <dirent.h>
#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "engines.h"
#include "log.h"

/* The document and vector layers' progress lines (index builds, segment rebuilds) go to the log. */
static void engine_log(void *ctx, const char *line)
{
    (void)ctx;
    SVC_LOG(SVC_LOG_INFO, line);
}

ndb_status svc_engines_open(svc_app *app, const char *base, bool cluster, uint32_t max_open_tables,
                           ndb_errmsg *msg)
{
    if (base != app->engines_base) {
        if (strlen(base) >= sizeof app->engines_base)
            return ndb_errmsg_set(msg, NDB_EINVAL, "--data-dir: path too long");
        memcpy(app->engines_base, base, strlen(base) + 1);
    }
    app->engines_cluster = cluster;
    app->max_open_tables = max_open_tables;
    char dir[4200];
    ndb_status st;
    if (snprintf(dir, sizeof dir, "%s/kv", base) >= (int)sizeof dir)
        return ndb_errmsg_set(msg, NDB_EINVAL, "--data-dir: path too long");
    ndb_kv_options kopt;
    ndb_kv_options_init(&kopt);
    if (cluster)
        kopt.durability = NDB_KV_NONE;
    kopt.max_open_tables = max_open_tables;
    kopt.memtable_bytes = (size_t)app->cfg->memtable_bytes;
    kopt.block_cache_bytes = (size_t)app->cfg->block_cache_bytes;
    kopt.compression = (ndb_kv_compression)app->cfg->compression_kind;
    ndb_kv_recovery_info rec = {0};
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    if ((st = ndb_kv_open_ex(dir, &kopt, &app->kv, &rec, msg)) != NDB_OK)
        return st;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    SVC_LOG(rec.tail_corrupt ? SVC_LOG_WARN : SVC_LOG_INFO, "storage engine open", LOG_STR("dir", dir),
            LOG_INT("wal_records_replayed", rec.wal_records), LOG_INT("wal_bytes_skipped", rec.wal_bytes_skipped),
            LOG_BOOL("wal_tail_corrupt", rec.tail_corrupt),
            LOG_DBL("ms", (double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6));
    if (snprintf(app->spill_dir, sizeof app->spill_dir, "%s/spill", app->cfg->data_dir) >= (int)sizeof app->spill_dir)
        return ndb_errmsg_set(msg, NDB_EINVAL, "--data-dir: path too long");
    if (mkdir(app->spill_dir, 0700) != 0 && errno != EEXIST)
        return ndb_errmsg_set(msg, NDB_EIO, "cannot create %s: %s", app->spill_dir, strerror(errno));
    ndb_doc_options dopt;
    ndb_doc_options_init(&dopt);
    dopt.log = engine_log;
    dopt.agg_mem_bytes = (size_t)app->cfg->query_memory_bytes;
    dopt.spill_dir = app->spill_dir;
    dopt.change_log = app->cfg->change_retention_s > 0;
    if ((st = ndb_doc_open(app->kv, &dopt, &app->doc, msg)) != NDB_OK)
        return st;
    if (snprintf(dir, sizeof dir, "%s/vseg", base) >= (int)sizeof dir)
        return ndb_errmsg_set(msg, NDB_EINVAL, "--data-dir: path too long");
    ndb_vec_options vopt;
    ndb_vec_options_default(&vopt);
    vopt.log = engine_log;
    if ((st = ndb_vec_open(app->kv, app->doc, dir, &vopt, &app->vec, msg)) != NDB_OK)
        return st;
    SVC_LOG(SVC_LOG_INFO, "vector collections open", LOG_STR("segments", dir),
            LOG_STR("kernel", ndb_vec_kernel_name()));
    if (cluster)
        return NDB_OK;
    /* the previous release kept vectors in a store of their own: converted
     * once (progress in the log), and finished by the next start if killed */
    if (snprintf(dir, sizeof dir, "%s/vectors", app->cfg->data_dir) >= (int)sizeof dir)
        return ndb_errmsg_set(msg, NDB_EINVAL, "--data-dir: path too long");
    return ndb_vec_upgrade_v1(app->vec, app->doc, dir, msg);
}

void svc_engines_close(svc_app *app)
{
    if (app->vec != NULL)
        ndb_vec_close(app->vec);
    if (app->doc != NULL)
        ndb_doc_close(app->doc);
    if (app->kv != NULL) {
        ndb_status st = ndb_kv_close(app->kv);
        if (st != NDB_OK)
            SVC_LOG(SVC_LOG_ERROR, "closing the storage engine failed", LOG_STR("error", ndb_strerror(st)));
    }
    app->vec = NULL;
    app->doc = NULL;
    app->kv = NULL;
}

static int remove_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path) == 0 || errno == ENOENT ? 0 : -1;
}

ndb_status svc_remove_dir(const char *dir, ndb_errmsg *msg)
{
    if (nftw(dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS) != 0 && errno != ENOENT)
        return ndb_errmsg_set(msg, NDB_EIO, "cannot remove %s: %s", dir, strerror(errno));
    return NDB_OK;
}

ndb_status svc_empty_dir(const char *dir, ndb_errmsg *msg)
{
    ndb_status st = svc_remove_dir(dir, msg);
    if (st != NDB_OK)
        return st;
    if (mkdir(dir, 0700) != 0)
        return ndb_errmsg_set(msg, NDB_EIO, "cannot create %s: %s", dir, strerror(errno));
    return NDB_OK;
}

/* Whether name is a file a vector collection's directory keeps whole: a
 * segment or the graph, never one being written (".tmp"). */
static bool segment_file(const char *name)
{
    size_t n = strlen(name);
    return (n > 5 && strcmp(name + n - 5, ".vseg") == 0) || strcmp(name, "graph.hnsw") == 0;
}

ndb_status svc_link_segments(const char *from_base, const char *to_base, ndb_errmsg *msg)
{
    char from[4300], to[4300];
    snprintf(from, sizeof from, "%s/vseg", from_base);
    snprintf(to, sizeof to, "%s/vseg", to_base);
    DIR *d = opendir(from);
    if (d == NULL)
        return errno == ENOENT ? NDB_OK : ndb_errmsg_set(msg, NDB_EIO, "cannot read %s: %s", from, strerror(errno));
    ndb_status st = NDB_OK;
    if (mkdir(to, 0700) != 0 && errno != EEXIST)
        st = ndb_errmsg_set(msg, NDB_EIO, "cannot create %s: %s", to, strerror(errno));
    for (struct dirent *de; st == NDB_OK && (de = readdir(d)) != NULL;) {
        if (de->d_name[0] < '0' || de->d_name[0] > '9') /* a collection's directory is named by its id */
            continue;
        char src[4600], dst[4600];
        snprintf(src, sizeof src, "%s/%s", from, de->d_name);
        snprintf(dst, sizeof dst, "%s/%s", to, de->d_name);
        DIR *c = opendir(src);
        if (c == NULL)
            continue;
        if (mkdir(dst, 0700) != 0 && errno != EEXIST)
            st = ndb_errmsg_set(msg, NDB_EIO, "cannot create %s: %s", dst, strerror(errno));
        for (struct dirent *fe; st == NDB_OK && (fe = readdir(c)) != NULL;) {
            if (!segment_file(fe->d_name))
                continue;
            char a[4900], b[4900];
            snprintf(a, sizeof a, "%s/%s", src, fe->d_name);
            snprintf(b, sizeof b, "%s/%s", dst, fe->d_name);
            if (link(a, b) != 0 && errno != ENOENT) /* ENOENT: merged away meanwhile */
                st = ndb_errmsg_set(msg, NDB_EIO, "cannot link %s to %s: %s", a, b, strerror(errno));
        }
        closedir(c);
    }
    closedir(d);
    return st;
}

void svc_engines_hold(svc_app *app)
{
    if (app->cluster != NULL)
        pthread_rwlock_rdlock(&app->engines_lock);
}

bool svc_engines_try_hold(svc_app *app)
{
    return app->cluster == NULL || pthread_rwlock_tryrdlock(&app->engines_lock) == 0;
}

void svc_engines_release(svc_app *app)
{
    if (app->cluster != NULL)
        pthread_rwlock_unlock(&app->engines_lock);
}

ndb_status svc_engines_load(svc_app *app, const char *backup, ndb_errmsg *msg)
{
    char kv[4300];
    if (snprintf(kv, sizeof kv, "%s/kv", app->engines_base) >= (int)sizeof kv)
        return ndb_errmsg_set(msg, NDB_EINVAL, "--data-dir: path too long");
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    atomic_store(&app->reloading, 1); /* change streams end, so their calls let go */
    pthread_rwlock_wrlock(&app->engines_lock);
    svc_engines_close(app);
    ndb_kv_backup_info info;
    ndb_status st = svc_empty_dir(app->engines_base, msg);
    if (st == NDB_OK)
        st = ndb_kv_restore_linked(backup, kv, &info, msg); /* taken here, or checked as it was fetched */
    if (st == NDB_OK) { /* the vector segments and graphs taken with it, which opening checks against kv */
        ndb_errmsg lm;
        if (svc_link_segments(backup, app->engines_base, &lm) != NDB_OK) /* what is missing is rebuilt from kv */
            SVC_LOG(SVC_LOG_WARN, "a snapshot's vector segments were not all linked; the rest are rebuilt",
                    LOG_STR("error", lm.text));
    }
    if (st == NDB_OK)
        st = svc_engines_open(app, app->engines_base, app->engines_cluster, app->max_open_tables, msg);
    pthread_rwlock_unlock(&app->engines_lock);
    atomic_store(&app->reloading, 0);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    if (st == NDB_OK)
        SVC_LOG(SVC_LOG_INFO, "state loaded from a snapshot", LOG_STR("snapshot", backup),
                LOG_INT("files", (int64_t)info.files), LOG_INT("bytes", (int64_t)info.bytes),
                LOG_DBL("ms", (double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6));
    return st;
}
