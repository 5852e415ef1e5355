/*
 * backup.c — online backups (ndb_kv_backup, ndb_kv_backup_archive; README.md
 * "Backup and restore", FORMAT.md "Backups").
 *
 * A backup goes in three steps:
 *  1. Capture, holding wmu and mu for the time of a directory listing: the
 *     sequence appended last (the log point), the current version (pinned:
 *     kv->pins keeps its tables on disk whatever compaction or a resume
 *     deletes meanwhile), the log number, and the WAL segments from it up to
 *     the current one, opened there and then (a flush may delete them later;
 *     the open descriptors keep their bytes), the current one to be read only
 *     up to its size at that moment. Then, holding nothing, wait until that
 *     sequence is durable (sync mode), as a writer would.
 *  2. Copy, holding nothing: each table (hard-linked into a directory when
 *     the file system allows, else copied; left out when the previous backup
 *     holds it), the WAL tail, and a fresh manifest naming exactly the pinned
 *     tables with that log number and sequence, and CURRENT, each with its
 *     CRC-32C.
 *  3. The listing, BACKUP, last: in a directory written to BACKUP.tmp,
 *     fsync'd and renamed once every file and the directory are fsync'd; in
 *     an archive its last entry. Then the pin is dropped.
 *
 * Thread safety: any number of backups may run at once, beside every other
 * call; each holds the engine's locks only in step 1.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "backup.h"
#include "crc32c.h"
#include "db.h"

#define COPY_CHUNK ((size_t)1 << 20)

enum { SRC_TABLE, SRC_WAL, SRC_MEM };

typedef struct src {
    char name[BK_NAME_MAX + 1];
    int kind;
    uint64_t size;       /* bytes the backup takes */
    kv_file *f;          /* SRC_WAL: the segment, opened during the capture */
    int closed;          /* SRC_WAL: a segment before the current one, never written again */
    char *mem;           /* SRC_MEM: the bytes */
    const bk_file *prev; /* the previous backup's entry for the same table, or NULL */
} src;

typedef struct plan {
    ndb_kv *kv;
    const ndb_kv_backup_options *o;
    kv_pin pin;
    ndb_kv_snapshot *snap; /* at seq, for o->snapshot */
    uint64_t seq;
    src *s;
    size_t n;
    bk_listing prev; /* the previous backup's listing (prev.n 0 when none) */
    bk_listing out;
    ndb_kv_backup_progress prog;
    char *buf; /* COPY_CHUNK bytes */
} plan;

static ndb_status tell(plan *p)
{
    return p->o && p->o->progress ? p->o->progress(p->o->progress_arg, &p->prog) : NDB_OK;
}

static void plan_free(plan *p)
{
    ndb_kv *kv = p->kv;
    if (p->pin.v != NULL) {
        pthread_mutex_lock(&kv->mu);
        p->pin.prev->next = p->pin.next;
        p->pin.next->prev = p->pin.prev;
        pthread_mutex_unlock(&kv->mu);
        kv_version_unref(p->pin.v); /* tables compacted away meanwhile are deleted now */
    }
    if (p->snap) ndb_kv_snapshot_release(kv, p->snap);
    for (size_t i = 0; i < p->n; i++) {
        kv_file_close(p->s[i].f);
        free(p->s[i].mem);
    }
    free(p->s);
    bk_listing_free(&p->prev);
    bk_listing_free(&p->out);
    free(p->buf);
}

static src *add_src(plan *p, int kind, const char *name)
{
    src *ns = realloc(p->s, (p->n + 1) * sizeof *ns);
    if (ns == NULL) return NULL;
    p->s = ns;
    src *s = &p->s[p->n++];
    memset(s, 0, sizeof *s);
    s->kind = kind;
    snprintf(s->name, sizeof s->name, "%s", name);
    return s;
}

/* The database's identity, made on its first backup. Two first backups at
 * once must not make two; the engine's locks stay free meanwhile (the first
 * one writes and fsyncs the file). */
static pthread_mutex_t identity_mu = PTHREAD_MUTEX_INITIALIZER;

static ndb_status identity(ndb_kv *kv, char *id, ndb_errmsg *msg)
{
    pthread_mutex_lock(&identity_mu);
    ndb_status st = bk_identity_read(kv->env, kv->dir, id);
    if (st == NDB_ENOTFOUND) st = bk_identity_new(kv->env, kv->dir, id);
    pthread_mutex_unlock(&identity_mu);
    if (st != NDB_OK) return ndb_errmsg_set(msg, st, "%s/IDENTITY: cannot read or create it", kv->dir);
    return NDB_OK;
}

/* The WAL segments numbered lo..hi, opened (the last one, hi, counted up to
 * hi_size bytes). wmu and mu held. */
static ndb_status open_segments(plan *p, uint64_t lo, uint64_t hi, uint64_t hi_size, ndb_errmsg *msg)
{
    ndb_kv *kv = p->kv;
    uint64_t *nums;
    size_t k;
    ndb_status st = kv_segments_list(kv, lo, hi, &nums, &k);
    if (st != NDB_OK) return ndb_errmsg_set(msg, st, "listing %s failed", kv->dir);
    for (size_t i = 0; i < k && st == NDB_OK; i++) {
        char name[32], path[4096];
        snprintf(name, sizeof name, "%06llu.wal", (unsigned long long)nums[i]);
        kv_file_path(kv, path, sizeof path, nums[i], "wal");
        src *s = add_src(p, SRC_WAL, name);
        if (s == NULL) {
            st = NDB_ENOMEM;
            break;
        }
        st = kv->env->v->open_read(kv->env, path, &s->f);
        if (st == NDB_OK) {
            s->closed = nums[i] != hi; /* a roll closed it (trimmed, fsync'd) before we took wmu */
            if (s->closed) st = kv_file_size(s->f, &s->size);
            else s->size = hi_size;
        }
        if (st != NDB_OK) ndb_errmsg_set(msg, st, "%s: cannot open it for the backup", path);
    }
    free(nums);
    return st;
}

/* Step 1 (see the top of the file), and the list of what to copy. */
static ndb_status capture(plan *p, ndb_errmsg *msg)
{
    ndb_kv *kv = p->kv;
    ndb_status st = identity(kv, p->out.identity, msg);
    if (st != NDB_OK) return st;

    pthread_mutex_lock(&kv->wmu);
    pthread_mutex_lock(&kv->mu);
    if (kv->poisoned || kv->wal == NULL) {
        pthread_mutex_unlock(&kv->mu);
        pthread_mutex_unlock(&kv->wmu);
        return ndb_errmsg_set(msg, NDB_EPOISONED, "the engine refuses writes (%.150s): no backup until it resumes",
                              kv->poison_msg.text);
    }
    p->seq = __atomic_load_n(&kv->appended_seq, __ATOMIC_ACQUIRE);
    kv_version *v = kv->vs->current;
    uint64_t log_number = kv->vs->log_number, manifest = kv->vs->next_file;
    kv_version_ref(v);
    p->pin.v = v;
    p->pin.next = &kv->pins;
    p->pin.prev = kv->pins.prev;
    kv->pins.prev->next = &p->pin;
    kv->pins.prev = &p->pin;
    if (p->o && p->o->snapshot) {
        p->snap = malloc(sizeof *p->snap);
        if (p->snap == NULL) st = NDB_ENOMEM;
        else kv_snapshot_link(kv, p->snap, p->seq);
    }
    if (st == NDB_OK) st = open_segments(p, log_number, kv->wal_number, kv_wal_size(kv->wal), msg);
    pthread_mutex_unlock(&kv->mu);
    pthread_mutex_unlock(&kv->wmu);
    if (st != NDB_OK) return st;

    /* the log point is durable before the backup says it holds it */
    if (kv->opt.durability == NDB_KV_SYNC && (st = ndb_kv_write_wait(kv, p->seq)) != NDB_OK)
        return ndb_errmsg_set(msg, st, "making sequence %llu durable failed", (unsigned long long)p->seq);

    for (int l = 0; l < NDB_KV_LEVELS && st == NDB_OK; l++)
        for (size_t i = 0; i < v->nfiles[l] && st == NDB_OK; i++) {
            char name[32];
            snprintf(name, sizeof name, "%06llu.sst", (unsigned long long)v->files[l][i]->number);
            src *s = add_src(p, SRC_TABLE, name);
            if (s == NULL) st = NDB_ENOMEM;
            else s->size = v->files[l][i]->size;
        }
    /* tables first, then the WAL tail, as read in that order at open */
    size_t nt = 0;
    for (size_t i = 0; i < p->n; i++)
        if (p->s[i].kind == SRC_TABLE) {
            src t = p->s[i];
            memmove(&p->s[nt + 1], &p->s[nt], (i - nt) * sizeof t);
            p->s[nt++] = t;
        }

    char *edit = NULL;
    size_t elen = 0;
    if (st == NDB_OK) st = kv_version_encode_snapshot(v, log_number, manifest + 1, p->seq, &edit, &elen);
    if (st == NDB_OK && elen > WAL_MAX_RECORD) st = NDB_ETOOBIG;
    char name[32];
    snprintf(name, sizeof name, "MANIFEST-%06llu", (unsigned long long)manifest);
    src *s = st == NDB_OK ? add_src(p, SRC_MEM, name) : NULL;
    if (st == NDB_OK && (s == NULL || (s->mem = malloc(WAL_HEADER + elen)) == NULL)) st = NDB_ENOMEM;
    if (st == NDB_OK) {
        kv_wal_header(s->mem, WAL_EDIT, edit, elen);
        memcpy(s->mem + WAL_HEADER, edit, elen);
        s->size = WAL_HEADER + elen;
    }
    free(edit);
    if (st == NDB_OK && (s = add_src(p, SRC_MEM, "CURRENT")) == NULL) st = NDB_ENOMEM;
    if (st == NDB_OK && (s->mem = malloc(32)) == NULL) st = NDB_ENOMEM;
    if (st == NDB_OK) s->size = (uint64_t)snprintf(s->mem, 32, "%s\n", name);
    if (st != NDB_OK) return ndb_errmsg_set(msg, st, "planning the backup: %s", ndb_strerror(st));

    p->prog.sequence = p->seq;
    p->prog.files_total = p->n;
    for (size_t i = 0; i < p->n; i++) p->prog.bytes_total += p->s[i].size;
    return NDB_OK;
}

/* Reads the previous backup's listing and marks the tables it holds. */
static ndb_status load_previous(plan *p, ndb_errmsg *msg)
{
    const ndb_kv_backup_options *o = p->o;
    if (o == NULL || (o->previous_dir == NULL && o->previous_listing == NULL)) return NDB_OK;
    char *text = NULL;
    size_t len = o->previous_listing_len;
    ndb_status st = NDB_OK;
    if (o->previous_dir != NULL) {
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", o->previous_dir, BK_LISTING);
        st = kv_env_read_file(p->kv->env, path, BK_MAX_LISTING, &text, &len);
        if (st != NDB_OK)
            return ndb_errmsg_set(msg, st == NDB_ENOTFOUND ? NDB_EINVAL : st,
                                  "previous backup %s: %s", o->previous_dir,
                                  st == NDB_ENOTFOUND ? "no BACKUP listing (not a complete backup)" : ndb_strerror(st));
    }
    ndb_errmsg why;
    st = bk_listing_parse(text ? text : o->previous_listing, len, &p->prev, &why);
    free(text);
    if (st != NDB_OK) return ndb_errmsg_set(msg, NDB_EINVAL, "previous backup: %s", why.text);
    if (strcmp(p->prev.identity, p->out.identity) != 0)
        return ndb_errmsg_set(msg, NDB_EINVAL, "the previous backup is of another database (identity %s, this one %s)",
                              p->prev.identity, p->out.identity);
    for (size_t i = 0; i < p->n; i++) {
        const bk_file *f = bk_listing_find(&p->prev, p->s[i].name);
        /* tables never change under one name; a log segment may have grown */
        if (p->s[i].kind == SRC_TABLE && f != NULL && f->size == p->s[i].size) p->s[i].prev = f;
    }
    return NDB_OK;
}

/* Reads s's bytes in chunks, extending *crc and passing each chunk to put
 * (NULL: only the CRC); src_path names a table's file. */
typedef ndb_status (*put_fn)(void *arg, const char *buf, size_t n);

static ndb_status stream_src(plan *p, src *s, const char *src_path, uint32_t *crc, put_fn put, void *arg,
                             ndb_errmsg *msg)
{
    ndb_kv *kv = p->kv;
    kv_file *f = s->f;
    ndb_status st = NDB_OK;
    if (s->kind == SRC_TABLE && (st = kv->env->v->open_read(kv->env, src_path, &f)) != NDB_OK)
        return ndb_errmsg_set(msg, st, "%s: cannot open it", src_path);
    *crc = 0;
    for (uint64_t off = 0; off < s->size && st == NDB_OK;) {
        size_t want = s->size - off < COPY_CHUNK ? (size_t)(s->size - off) : COPY_CHUNK, got = want;
        const char *b = p->buf;
        if (s->kind == SRC_MEM) b = s->mem + off;
        else if ((st = kv_file_pread(f, off, p->buf, want, &got)) != NDB_OK) {
            ndb_errmsg_set(msg, st, "reading %s failed", s->name);
            break;
        }
        if (got < want) {
            st = ndb_errmsg_set(msg, NDB_ECORRUPT, "%s is shorter (%llu bytes) than the engine recorded (%llu)",
                                s->name, (unsigned long long)(off + got), (unsigned long long)s->size);
            break;
        }
        *crc = crc32c_extend(*crc, b, got);
        if (put != NULL && (st = put(arg, b, got)) != NDB_OK) break;
        off += got;
        p->prog.bytes_done += got;
        st = tell(p);
        if (st != NDB_OK) ndb_errmsg_set(msg, st, "backup stopped: %s", ndb_strerror(st));
    }
    if (s->kind == SRC_TABLE) kv_file_close(f);
    return st;
}

static ndb_status file_done(plan *p, src *s, uint32_t crc, int reused, ndb_errmsg *msg)
{
    p->prog.files_done++;
    if (reused) {
        p->prog.files_reused++;
        p->prog.bytes_reused += s->size;
    }
    ndb_status st = bk_listing_add(&p->out, s->name, s->size, crc, reused && p->o->previous_dir == NULL);
    if (st == NDB_OK) st = tell(p);
    if (st != NDB_OK) ndb_errmsg_set(msg, st, "backup stopped after %s: %s", s->name, ndb_strerror(st));
    return st;
}

static void fill_info(const plan *p, ndb_kv_backup_info *info)
{
    if (info == NULL) return;
    memset(info, 0, sizeof *info);
    info->sequence = p->seq;
    info->files = p->prog.files_done;
    info->bytes = p->prog.bytes_total;
    info->files_reused = p->prog.files_reused;
    info->bytes_reused = p->prog.bytes_reused;
    info->created = p->out.created;
    memcpy(info->identity, p->out.identity, sizeof info->identity);
}

static ndb_status begin(plan *p, ndb_kv *kv, const ndb_kv_backup_options *o, ndb_errmsg *msg)
{
    memset(p, 0, sizeof *p);
    p->kv = kv;
    p->o = o;
    p->out.created = (int64_t)time(NULL);
    if ((p->buf = malloc(COPY_CHUNK)) == NULL) return ndb_errmsg_set(msg, NDB_ENOMEM, "out of memory");
    ndb_status st = capture(p, msg);
    if (st == NDB_OK) st = load_previous(p, msg);
    p->out.sequence = p->seq;
    if (st == NDB_OK) st = tell(p);
    return st;
}

static ndb_status finish(plan *p, ndb_status st, ndb_kv_backup_info *info)
{
    if (st == NDB_OK) {
        fill_info(p, info);
        if (p->o && p->o->snapshot) {
            *p->o->snapshot = p->snap;
            p->snap = NULL;
        }
    }
    plan_free(p);
    return st;
}

/* ------------------------------------------------------------------ into a directory */

typedef struct dir_out {
    kv_file *f;
} dir_out;

static ndb_status put_file(void *arg, const char *buf, size_t n) { return kv_file_append(((dir_out *)arg)->f, buf, n); }

/* Copies s to path (0600), fsync'd. */
static ndb_status copy_to(plan *p, src *s, const char *src_path, const char *path, uint32_t *crc, ndb_errmsg *msg)
{
    kv_env *env = p->kv->env;
    dir_out d;
    ndb_status st = env->v->open_append(env, path, 0, &d.f);
    if (st != NDB_OK) return ndb_errmsg_set(msg, st, "%s: cannot create it", path);
    st = stream_src(p, s, src_path, crc, put_file, &d, msg);
    if (st == NDB_OK && (st = kv_file_sync(d.f)) != NDB_OK) ndb_errmsg_set(msg, st, "%s: fsync failed", path);
    ndb_status cs = kv_file_close(d.f);
    if (st == NDB_OK && cs != NDB_OK) st = ndb_errmsg_set(msg, cs, "%s: close failed", path);
    return st;
}

static ndb_status dir_put(plan *p, src *s, const char *dir, ndb_errmsg *msg)
{
    ndb_kv *kv = p->kv;
    kv_env *env = kv->env;
    char dst[4096], from[4096];
    snprintf(dst, sizeof dst, "%s/%s", dir, s->name);
    snprintf(from, sizeof from, "%s/%s", kv->dir, s->name);
    uint32_t crc = 0;
    ndb_status st;
    if (s->prev != NULL) { /* the previous backup's copy, as it is */
        char prev[4096];
        snprintf(prev, sizeof prev, "%s/%s", p->o->previous_dir, s->name);
        if (env->v->link(env, prev, dst) == NDB_OK) {
            p->prog.bytes_done += s->size;
            return file_done(p, s, s->prev->crc, 1, msg);
        }
    }
    /* tables and closed log segments never change: a link shares their bytes */
    if (s->kind == SRC_TABLE || s->closed) {
        st = env->v->link(env, from, dst);
        if (st != NDB_OK && st != NDB_EUNIMPL && !(st == NDB_ENOTFOUND && s->closed)) /* a flush deleted it: copy */
            return ndb_errmsg_set(msg, st, "linking %s to %s failed", from, dst);
    } else {
        st = NDB_EUNIMPL;
    }
    if (st == NDB_OK) {
        /* read the shared bytes for the listing */
        st = s->kind == SRC_TABLE ? stream_src(p, s, dst, &crc, NULL, NULL, msg)
                                  : stream_src(p, s, NULL, &crc, NULL, NULL, msg);
    } else {
        st = copy_to(p, s, from, dst, &crc, msg);
    }
    return st == NDB_OK ? file_done(p, s, crc, 0, msg) : st;
}

/* dir must not exist or be empty: a backup never mixes with other files. */
static ndb_status make_dir(kv_env *env, const char *dir, ndb_errmsg *msg)
{
    char **names;
    size_t n;
    ndb_status st = env->v->list(env, dir, &names, &n);
    if (st == NDB_OK) {
        kv_env_free_list(names, n);
        if (n > 0) return ndb_errmsg_set(msg, NDB_EEXIST, "%s exists and is not empty", dir);
        return NDB_OK;
    }
    if (st != NDB_ENOTFOUND) return ndb_errmsg_set(msg, st, "%s: cannot read it", dir);
    st = env->v->mkdir(env, dir);
    if (st != NDB_OK) return ndb_errmsg_set(msg, st, "cannot create %s", dir);
    return NDB_OK;
}

/* fsyncs the directory that holds path (its parent), so path's entry is durable. */
static ndb_status sync_parent(kv_env *env, const char *path)
{
    char parent[4096];
    snprintf(parent, sizeof parent, "%s", path);
    char *slash = strrchr(parent, '/');
    while (slash != NULL && slash > parent && slash[1] == 0) { /* "a/b/" */
        *slash = 0;
        slash = strrchr(parent, '/');
    }
    if (slash == NULL) snprintf(parent, sizeof parent, ".");
    else if (slash == parent) parent[1] = 0;
    else *slash = 0;
    return env->v->sync_dir(env, parent);
}

ndb_status ndb_kv_backup(ndb_kv *kv, const char *dir, const ndb_kv_backup_options *opt, ndb_kv_backup_info *info,
                         ndb_errmsg *msg)
{
    if (kv == NULL || dir == NULL) return ndb_errmsg_set(msg, NDB_EINVAL, "a handle and a directory are required");
    if (strlen(dir) > 3000) return ndb_errmsg_set(msg, NDB_EINVAL, "backup directory path too long");
    ndb_status st = make_dir(kv->env, dir, msg);
    if (st != NDB_OK) return st;
    plan p;
    st = begin(&p, kv, opt, msg);
    for (size_t i = 0; i < p.n && st == NDB_OK; i++) st = dir_put(&p, &p.s[i], dir, msg);
    if (st == NDB_OK && (st = kv->env->v->sync_dir(kv->env, dir)) != NDB_OK)
        ndb_errmsg_set(msg, st, "%s: fsync of the directory failed", dir);
    if (st == NDB_OK && (st = sync_parent(kv->env, dir)) != NDB_OK)
        ndb_errmsg_set(msg, st, "%s: fsync of its parent directory failed", dir);
    char *text = NULL;
    size_t len;
    if (st == NDB_OK) st = bk_listing_encode(&p.out, &text, &len);
    /* last: its presence says the backup is complete */
    if (st == NDB_OK && (st = kv_env_write_file_atomic(kv->env, dir, BK_LISTING, text, len)) != NDB_OK)
        ndb_errmsg_set(msg, st, "%s/%s: writing the listing failed", dir, BK_LISTING);
    free(text);
    if (st != NDB_OK) bk_remove_tree(kv->env, dir); /* only a kill leaves a partial backup behind */
    return finish(&p, st, info);
}

/* ------------------------------------------------------------------ as an archive */

typedef struct tar_out {
    ndb_kv_backup_write_fn write;
    void *arg;
    char *buf;
    size_t len;
} tar_out;

static ndb_status tar_put(void *arg, const char *b, size_t n)
{
    tar_out *t = arg;
    while (n > 0) {
        size_t room = COPY_CHUNK - t->len, k = n < room ? n : room;
        memcpy(t->buf + t->len, b, k);
        t->len += k;
        b += k;
        n -= k;
        if (t->len == COPY_CHUNK) {
            ndb_status st = t->write(t->arg, t->buf, t->len);
            t->len = 0;
            if (st != NDB_OK) return st;
        }
    }
    return NDB_OK;
}

static ndb_status tar_entry_head(tar_out *t, const char *name, uint64_t size, int64_t mtime)
{
    char h[BK_TAR_BLOCK];
    bk_tar_header(h, name, size, mtime);
    return tar_put(t, h, sizeof h);
}

static ndb_status tar_entry_pad(tar_out *t, uint64_t size)
{
    static const char zeros[BK_TAR_BLOCK];
    return tar_put(t, zeros, bk_tar_pad(size));
}

ndb_status ndb_kv_backup_archive(ndb_kv *kv, ndb_kv_backup_write_fn write, void *write_arg,
                                 const ndb_kv_backup_options *opt, ndb_kv_backup_info *info, ndb_errmsg *msg)
{
    if (kv == NULL || write == NULL) return ndb_errmsg_set(msg, NDB_EINVAL, "a handle and a writer are required");
    if (opt && opt->previous_dir) return ndb_errmsg_set(msg, NDB_EINVAL, "an archive's previous backup is its listing");
    tar_out t = {write, write_arg, malloc(COPY_CHUNK), 0};
    if (t.buf == NULL) return ndb_errmsg_set(msg, NDB_ENOMEM, "out of memory");
    plan p;
    ndb_status st = begin(&p, kv, opt, msg);
    for (size_t i = 0; i < p.n && st == NDB_OK; i++) {
        src *s = &p.s[i];
        if (s->prev != NULL) { /* the client has it already */
            p.prog.bytes_done += s->size;
            st = file_done(&p, s, s->prev->crc, 1, msg);
            continue;
        }
        char from[4096];
        snprintf(from, sizeof from, "%s/%s", kv->dir, s->name);
        uint32_t crc;
        if ((st = tar_entry_head(&t, s->name, s->size, p.out.created)) != NDB_OK)
            ndb_errmsg_set(msg, st, "sending %s: %s", s->name, ndb_strerror(st));
        if (st == NDB_OK) st = stream_src(&p, s, from, &crc, tar_put, &t, msg); /* says what failed */
        if (st == NDB_OK && (st = tar_entry_pad(&t, s->size)) != NDB_OK)
            ndb_errmsg_set(msg, st, "sending %s: %s", s->name, ndb_strerror(st));
        if (st == NDB_OK) st = file_done(&p, s, crc, 0, msg);
    }
    int failed = st != NDB_OK; /* msg says why */
    char *text = NULL;
    size_t len = 0;
    if (st == NDB_OK) st = bk_listing_encode(&p.out, &text, &len);
    if (st == NDB_OK) st = tar_entry_head(&t, BK_LISTING, len, p.out.created);
    if (st == NDB_OK) st = tar_put(&t, text, len);
    if (st == NDB_OK) st = tar_entry_pad(&t, len);
    free(text);
    static const char end[2 * BK_TAR_BLOCK];
    if (st == NDB_OK) st = tar_put(&t, end, sizeof end);
    if (st == NDB_OK && t.len > 0) st = write(write_arg, t.buf, t.len);
    if (st != NDB_OK && !failed) ndb_errmsg_set(msg, st, "sending the listing: %s", ndb_strerror(st));
    free(t.buf);
    return finish(&p, st, info);
}
