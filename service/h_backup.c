/*
 * h_backup.c — AdminService/Backup: a backup of the storage engine (the one
 * place every document, index and vector is) into a directory under
 * --backup-dir, or streamed to the caller as a tar archive
 * (engine/kv/README.md, "Backup and restore"). One runs at a time; its
 * progress is streamed to the caller and kept in svc_app for /metrics.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "h_backup.h"
#include "nexadb/v1/admin.pb-c.h"

/* A progress message at most this often while a directory backup runs. */
#define PROGRESS_EVERY_NS (250 * 1000000LL)
/* The largest archive chunk per message (less when --max-message-bytes is smaller). */
#define CHUNK_MAX ((size_t)1 << 20)

typedef struct bk_call {
    svc_ctx *ctx;
    svc_app *app;
    ndb_kv_backup_progress prog;
    int64_t last_sent_ns;
    size_t chunk_max;
    const char *path; /* a directory backup's, else NULL */
} bk_call;

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

bool svc_backup_dir(const svc_config *cfg, char *out, size_t cap)
{
    int n = cfg->backup_dir[0] != '\0' ? snprintf(out, cap, "%s", cfg->backup_dir)
                                        : snprintf(out, cap, "%s/backups", cfg->data_dir);
    return n >= 0 && (size_t)n < cap;
}

/* A backup's name: one path component of A-Z a-z 0-9 . _ -, not starting with '.'. */
static bool name_ok(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 100 || s[0] == '.')
        return false;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') || (s[i] >= '0' && s[i] <= '9') ||
              s[i] == '.' || s[i] == '_' || s[i] == '-'))
            return false;
    return true;
}

/* One message: progress, and the chunk, path and done flag when given (page memory). */
static ndb_status send_msg(bk_call *b, const void *chunk, size_t n, bool done, ndb_errmsg *msg)
{
    Nexadb__V1__BackupResponse *r = svc_page_alloc(b->ctx, sizeof *r);
    Nexadb__V1__BackupProgress *p = svc_page_alloc(b->ctx, sizeof *p);
    if (r == NULL || p == NULL)
        return ndb_errmsg_set(msg, NDB_ENOMEM, "out of memory");
    nexadb__v1__backup_response__init(r);
    nexadb__v1__backup_progress__init(p);
    p->files_done = (int64_t)b->prog.files_done;
    p->files_total = (int64_t)b->prog.files_total;
    p->bytes_done = (int64_t)b->prog.bytes_done;
    p->bytes_total = (int64_t)b->prog.bytes_total;
    p->files_reused = (int64_t)b->prog.files_reused;
    p->bytes_reused = (int64_t)b->prog.bytes_reused;
    r->progress = p;
    r->sequence = (int64_t)b->prog.sequence;
    r->done = done;
    if (done && b->path != NULL)
        r->path = (char *)b->path;
    if (n > 0) {
        r->archive_chunk.data = (uint8_t *)chunk; /* packed by svc_send before it returns */
        r->archive_chunk.len = n;
    }
    b->last_sent_ns = now_ns();
    return svc_send(b->ctx, &r->base, msg);
}

static ndb_status on_progress(void *arg, const ndb_kv_backup_progress *p)
{
    bk_call *b = arg;
    b->prog = *p;
    svc_app *app = b->app;
    atomic_store(&app->backup_files_done, p->files_done);
    atomic_store(&app->backup_files_total, p->files_total);
    atomic_store(&app->backup_bytes_done, p->bytes_done);
    atomic_store(&app->backup_bytes_total, p->bytes_total);
    ndb_status st = ndb_interrupt_check(svc_interrupt(b->ctx));
    if (st != NDB_OK || b->path == NULL || now_ns() - b->last_sent_ns < PROGRESS_EVERY_NS)
        return st; /* an archive's chunks carry its progress */
    ndb_errmsg msg;
    return send_msg(b, NULL, 0, false, &msg);
}

static ndb_status on_chunk(void *arg, const void *buf, size_t n)
{
    bk_call *b = arg;
    ndb_errmsg msg;
    for (size_t off = 0; off < n;) {
        size_t k = n - off < b->chunk_max ? n - off : b->chunk_max;
        ndb_status st = send_msg(b, (const char *)buf + off, k, false, &msg);
        if (st != NDB_OK)
            return st;
        off += k;
    }
    return NDB_OK;
}

static ndb_status run(svc_ctx *ctx, const Nexadb__V1__BackupRequest *r, bk_call *b, ndb_kv_backup_info *info,
                      char *path, size_t cap, ndb_errmsg *msg)
{
    const svc_config *cfg = ctx->app->cfg;
    ndb_kv_backup_options o = {.progress = on_progress, .progress_arg = b};
    if (r->archive) {
        if (r->previous_listing.len > 0) {
            o.previous_listing = r->previous_listing.data;
            o.previous_listing_len = r->previous_listing.len;
        }
        return ndb_kv_backup_archive(ctx->app->kv, on_chunk, b, &o, info, msg);
    }
    char root[4200], prev[4400];
    if (!svc_backup_dir(cfg, root, sizeof root))
        return ndb_errmsg_set(msg, NDB_EINVAL, "--backup-dir: path too long");
    if (mkdir(root, 0700) != 0 && errno != EEXIST)
        return ndb_errmsg_set(msg, NDB_EIO, "cannot create the backup directory %s: %s", root, strerror(errno));
    if ((size_t)snprintf(path, cap, "%s/%s", root, r->name) >= cap)
        return ndb_errmsg_set(msg, NDB_EINVAL, "--backup-dir: path too long");
    if (r->previous[0] != '\0') {
        snprintf(prev, sizeof prev, "%s/%s", root, r->previous);
        o.previous_dir = prev;
    }
    b->path = path;
    return ndb_kv_backup(ctx->app->kv, path, &o, info, msg);
}

ndb_status svc_backup(svc_ctx *ctx, const ProtobufCMessage *req, ProtobufCMessage **resp, ndb_errmsg *msg)
{
    (void)resp;
    const Nexadb__V1__BackupRequest *r = (const void *)req;
    svc_app *app = ctx->app;
    bool named = r->name[0] != '\0';
    if (named == r->archive)
        return ndb_errmsg_set(msg, NDB_EINVAL, "name: give a backup name (a directory under --backup-dir) or set "
                                               "archive, not both");
    if (r->archive && ctx->http)
        return ndb_errmsg_set(msg, NDB_EINVAL, "archive: archives stream over gRPC only (nexadb backup --archive "
                                               "FILE); over REST, name a directory backup");
    if (named && !name_ok(r->name))
        return ndb_errmsg_set(msg, NDB_EINVAL, "name: '%.100s' is not 1-100 of A-Z a-z 0-9 . _ - (not starting "
                                               "with '.')", r->name);
    if (r->previous[0] != '\0' && (!named || !name_ok(r->previous)))
        return ndb_errmsg_set(msg, NDB_EINVAL, "previous: '%.100s' is not the name of a directory backup",
                              r->previous);
    if (r->previous_listing.len > 0 && !r->archive)
        return ndb_errmsg_set(msg, NDB_EINVAL, "previous_listing: only for archives; a directory backup names "
                                               "its previous one");
    int idle = 0;
    if (!atomic_compare_exchange_strong(&app->backup_running, &idle, 1))
        return ndb_errmsg_set(msg, NDB_EBUSY, "another backup is running; one runs at a time");
    bk_call b = {.ctx = ctx, .app = app, .chunk_max = CHUNK_MAX};
    if ((size_t)app->cfg->max_message_bytes / 2 < b.chunk_max)
        b.chunk_max = (size_t)app->cfg->max_message_bytes / 2;
    atomic_store(&app->backup_files_done, 0);
    atomic_store(&app->backup_bytes_done, 0);
    atomic_store(&app->backup_files_total, 0);
    atomic_store(&app->backup_bytes_total, 0);
    SVC_LOG(SVC_LOG_INFO, "backup started", LOG_STR("kind", r->archive ? "archive" : "directory"),
            LOG_STR("name", r->name), LOG_BOOL("incremental", r->previous[0] != '\0' || r->previous_listing.len > 0));
    int64_t t0 = now_ns();
    char path[4400];
    ndb_kv_backup_info info;
    ndb_status st = run(ctx, r, &b, &info, path, sizeof path, msg);
    if (st == NDB_OK)
        st = send_msg(&b, NULL, 0, true, msg);
    double secs = (double)(now_ns() - t0) / 1e9;
    if (st == NDB_OK) {
        atomic_fetch_add(&app->backups_ok, 1);
        atomic_store(&app->backup_last_sequence, info.sequence);
        atomic_store(&app->backup_last_ok_time, (int64_t)time(NULL));
        SVC_LOG(SVC_LOG_INFO, "backup finished", LOG_STR("path", b.path ? b.path : "(archive)"),
                LOG_INT("sequence", (int64_t)info.sequence), LOG_INT("files", (int64_t)info.files),
                LOG_INT("bytes", (int64_t)info.bytes), LOG_INT("files_reused", (int64_t)info.files_reused),
                LOG_INT("bytes_reused", (int64_t)info.bytes_reused), LOG_DBL("seconds", secs));
    } else {
        atomic_fetch_add(&app->backups_failed, 1);
        SVC_LOG(SVC_LOG_WARN, "backup failed", LOG_STR("error", msg->text), LOG_STR("status", ndb_strerror(st)),
                LOG_STR("path", b.path ? b.path : "(archive)"), LOG_DBL("seconds", secs));
    }
    atomic_store(&app->backup_running, 0);
    return st;
}
