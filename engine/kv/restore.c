/*
 * restore.c — checking and restoring backups (ndb_kv_backup_verify,
 * ndb_kv_restore; README.md "Backup and restore", FORMAT.md "Backups").
 *
 * A backup is a directory or a tar archive. Either way its listing (BACKUP)
 * says which files it holds, with their sizes and CRC-32C; an incremental
 * archive lists some files as "base": earlier backups given as bases hold
 * them. A restore reads everything twice: a first pass checks every file
 * against the listing and writes nothing; the second copies each file into
 * "<dir>.restoring", checking its CRC again on the way (the backup could
 * change between the passes), syncs them, and renames that directory to
 * dir. So a damaged backup never reaches dir, and a restore killed half-way
 * leaves "<dir>.restoring", never a dir that looks whole.
 * ndb_kv_restore_linked hard-links the tables of a directory backup instead,
 * reading only the other files, which it copies as above.
 *
 * Bytes read from a backup are hostile: the listing's own checksum, names
 * limited to a kv directory's files (bk_name_ok), sizes checked against
 * the bytes there are, every file's CRC.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backup.h"
#include "crc32c.h"
#include "ndb_kv.h"

#define CHUNK ((size_t)1 << 20)

typedef struct rs {
    kv_env *env;
    bk_listing l;
    unsigned char *done; /* per listing entry: read and checked */
    const char *dst;     /* the staging directory, or NULL: check only */
    int link_tables;     /* ndb_kv_restore_linked: tables are linked, their bytes not read */
    char *buf;           /* CHUNK bytes */
    ndb_kv_backup_progress prog;
    ndb_kv_backup_progress_fn progress;
    void *progress_arg;
} rs;

/* 1 if path is a directory, 0 if it is a file to read, else an error. */
static ndb_status kind_of(kv_env *env, const char *path, int *is_dir, ndb_errmsg *msg)
{
    char **names;
    size_t n;
    if (env->v->list(env, path, &names, &n) == NDB_OK) {
        kv_env_free_list(names, n);
        *is_dir = 1;
        return NDB_OK;
    }
    kv_file *f;
    ndb_status st = env->v->open_read(env, path, &f);
    if (st != NDB_OK) return ndb_errmsg_set(msg, st, "%s: cannot read it (%s)", path, ndb_strerror(st));
    kv_file_close(f);
    *is_dir = 0;
    return NDB_OK;
}

/* ------------------------------------------------------------------ one file's bytes */

/* Reads e->size bytes of f from off, checking them against e; writes them to
 * <dst>/<name> when copying. */
static ndb_status take(rs *r, kv_file *f, uint64_t off, const bk_file *e, const char *where, ndb_errmsg *msg)
{
    kv_file *out = NULL;
    char path[4096];
    ndb_status st = NDB_OK;
    if (r->dst != NULL) {
        snprintf(path, sizeof path, "%s/%s", r->dst, e->name);
        if ((st = r->env->v->open_append(r->env, path, 0, &out)) != NDB_OK)
            return ndb_errmsg_set(msg, st, "%s: cannot create it", path);
    }
    uint32_t crc = 0;
    for (uint64_t done = 0; done < e->size && st == NDB_OK;) {
        size_t want = e->size - done < CHUNK ? (size_t)(e->size - done) : CHUNK, got;
        if ((st = kv_file_pread(f, off + done, r->buf, want, &got)) != NDB_OK) {
            ndb_errmsg_set(msg, st, "%s: reading %s failed", where, e->name);
            break;
        }
        if (got < want) {
            st = ndb_errmsg_set(msg, NDB_ECORRUPT, "%s: %s is cut short (%llu of %llu bytes)", where, e->name,
                                (unsigned long long)(done + got), (unsigned long long)e->size);
            break;
        }
        crc = crc32c_extend(crc, r->buf, got);
        if (out != NULL && (st = kv_file_append(out, r->buf, got)) != NDB_OK) {
            ndb_errmsg_set(msg, st, "%s: write failed", path);
            break;
        }
        done += got;
        if (out != NULL) {
            r->prog.bytes_done += got;
            if (r->progress && (st = r->progress(r->progress_arg, &r->prog)) != NDB_OK)
                ndb_errmsg_set(msg, st, "restore stopped: %s", ndb_strerror(st));
        }
    }
    if (st == NDB_OK && crc != e->crc)
        st = ndb_errmsg_set(msg, NDB_ECORRUPT, "%s: %s fails its checksum (CRC-32C %08x, the listing says %08x): the "
                                               "backup is damaged", where, e->name, crc, e->crc);
    if (out != NULL) {
        if (st == NDB_OK && (st = kv_file_sync(out)) != NDB_OK) ndb_errmsg_set(msg, st, "%s: fsync failed", path);
        ndb_status cs = kv_file_close(out);
        if (st == NDB_OK && cs != NDB_OK) st = ndb_errmsg_set(msg, cs, "%s: close failed", path);
    }
    if (st == NDB_OK) {
        r->done[e - r->l.f] = 1;
        if (out != NULL) {
            r->prog.files_done++;
            if (r->progress && (st = r->progress(r->progress_arg, &r->prog)) != NDB_OK)
                ndb_errmsg_set(msg, st, "restore stopped: %s", ndb_strerror(st));
        }
    }
    return st;
}

/* A table (NNNNNN.sst): never written again once made, so a link may share it. */
static int is_table(const char *name)
{
    size_t n = strlen(name);
    return n > 4 && strcmp(name + n - 4, ".sst") == 0;
}

/* ndb_kv_restore_linked's way with a table of directory path: its size was
 * checked; linked into dst when copying (copied, CRC checked, where the file
 * system refuses the link). */
static ndb_status link_table(rs *r, kv_file *f, const char *path, const bk_file *e, ndb_errmsg *msg)
{
    if (r->dst != NULL) {
        char from[4096], to[4096];
        snprintf(from, sizeof from, "%s/%s", path, e->name);
        snprintf(to, sizeof to, "%s/%s", r->dst, e->name);
        if (r->env->v->link(r->env, from, to) != NDB_OK)
            return take(r, f, 0, e, path, msg);
        r->prog.bytes_done += e->size;
        r->prog.files_done++;
    }
    r->done[e - r->l.f] = 1;
    return NDB_OK;
}

/* The listing entry name stands for when this backup should hold it (in
 * the main backup a file it lists, in a base one the main lists as base),
 * not yet taken; else NULL. */
static const bk_file *wanted(rs *r, const char *name, int main)
{
    const bk_file *e = bk_listing_find(&r->l, name);
    if (e == NULL || r->done[e - r->l.f] || e->in_base == main) return NULL;
    return e;
}

/* ------------------------------------------------------------------ directories */

static ndb_status dir_listing(rs *r, const char *path, ndb_errmsg *msg)
{
    char p[4096];
    snprintf(p, sizeof p, "%s/%s", path, BK_LISTING);
    char *text;
    size_t len;
    ndb_status st = kv_env_read_file(r->env, p, BK_MAX_LISTING, &text, &len);
    if (st == NDB_ENOTFOUND)
        return ndb_errmsg_set(msg, NDB_ECORRUPT, "%s has no BACKUP listing: an incomplete backup (interrupted before "
                                                 "it finished) or not a backup", path);
    if (st == NDB_ETOOBIG) return ndb_errmsg_set(msg, NDB_ECORRUPT, "%s: larger than any listing", p);
    if (st != NDB_OK) return ndb_errmsg_set(msg, st, "%s: cannot read it", p);
    ndb_errmsg why;
    st = bk_listing_parse(text, len, &r->l, &why);
    free(text);
    if (st != NDB_OK) return ndb_errmsg_set(msg, st, "%s: %s", path, why.text);
    return NDB_OK;
}

static ndb_status dir_scan(rs *r, const char *path, int main, ndb_errmsg *msg)
{
    ndb_status st = NDB_OK;
    for (size_t i = 0; i < r->l.n && st == NDB_OK; i++) {
        const bk_file *e = wanted(r, r->l.f[i].name, main);
        if (e == NULL) continue;
        char p[4096];
        snprintf(p, sizeof p, "%s/%s", path, e->name);
        kv_file *f;
        st = r->env->v->open_read(r->env, p, &f);
        if (st == NDB_ENOTFOUND && !main) { /* perhaps in another base */
            st = NDB_OK;
            continue;
        }
        if (st == NDB_ENOTFOUND) return ndb_errmsg_set(msg, NDB_ECORRUPT, "%s: %s is missing", path, e->name);
        if (st != NDB_OK) return ndb_errmsg_set(msg, st, "%s: cannot open it", p);
        uint64_t size;
        st = kv_file_size(f, &size);
        if (st != NDB_OK) ndb_errmsg_set(msg, st, "%s: cannot read its size", p);
        else if (size != e->size)
            st = ndb_errmsg_set(msg, NDB_ECORRUPT, "%s: %s has %llu bytes, the listing says %llu: the backup is damaged",
                                path, e->name, (unsigned long long)size, (unsigned long long)e->size);
        else if (r->link_tables && is_table(e->name))
            st = link_table(r, f, path, e, msg);
        else
            st = take(r, f, 0, e, path, msg);
        kv_file_close(f);
    }
    return st;
}

/* ------------------------------------------------------------------ archives */

/* Walks an archive's entries: each regular file with its name, size and the
 * offset of its bytes goes to fn; stops at the end-of-archive block. */
typedef ndb_status (*entry_fn)(rs *r, kv_file *f, const char *path, const char *name, uint64_t off, uint64_t size,
                               void *arg, ndb_errmsg *msg);

static ndb_status walk(rs *r, const char *path, entry_fn fn, void *arg, ndb_errmsg *msg)
{
    kv_file *f;
    ndb_status st = r->env->v->open_read(r->env, path, &f);
    if (st != NDB_OK) return ndb_errmsg_set(msg, st, "%s: cannot open it", path);
    uint64_t fsize, off = 0;
    if ((st = kv_file_size(f, &fsize)) != NDB_OK) ndb_errmsg_set(msg, st, "%s: cannot read its size", path);
    while (st == NDB_OK) {
        char h[BK_TAR_BLOCK], name[101];
        size_t got;
        uint64_t size;
        int end;
        if ((st = kv_file_pread(f, off, h, sizeof h, &got)) != NDB_OK) {
            ndb_errmsg_set(msg, st, "%s: read failed", path);
            break;
        }
        if (got < sizeof h) {
            st = ndb_errmsg_set(msg, NDB_ECORRUPT, "%s: the archive is cut short at byte %llu (an incomplete backup)",
                                path, (unsigned long long)off);
            break;
        }
        if ((st = bk_tar_parse(h, name, &size, &end)) != NDB_OK) {
            ndb_errmsg_set(msg, st, "%s: a damaged archive header at byte %llu", path, (unsigned long long)off);
            break;
        }
        if (end) break;
        off += BK_TAR_BLOCK;
        if (size > fsize - off) {
            st = ndb_errmsg_set(msg, NDB_ECORRUPT, "%s: entry %s runs past the end of the archive (an incomplete "
                                                   "backup)", path, name);
            break;
        }
        st = fn(r, f, path, name, off, size, arg, msg);
        off += size + bk_tar_pad(size);
    }
    kv_file_close(f);
    return st;
}

typedef struct find_listing {
    int found;
    uint64_t entries_after;
} find_listing;

static ndb_status listing_entry(rs *r, kv_file *f, const char *path, const char *name, uint64_t off, uint64_t size,
                                void *arg, ndb_errmsg *msg)
{
    find_listing *fl = arg;
    if (fl->found) fl->entries_after++;
    if (strcmp(name, BK_LISTING) != 0) return NDB_OK;
    if (fl->found) return ndb_errmsg_set(msg, NDB_ECORRUPT, "%s holds two listings", path);
    if (size > BK_MAX_LISTING) return ndb_errmsg_set(msg, NDB_ECORRUPT, "%s: its listing is too large", path);
    char *text = malloc(size + 1);
    if (text == NULL) return ndb_errmsg_set(msg, NDB_ENOMEM, "out of memory");
    size_t got;
    ndb_status st = kv_file_pread(f, off, text, size, &got);
    if (st != NDB_OK || got < size) {
        free(text);
        return ndb_errmsg_set(msg, st ? st : NDB_ECORRUPT, "%s: reading its listing failed", path);
    }
    ndb_errmsg why;
    st = bk_listing_parse(text, size, &r->l, &why);
    free(text);
    if (st != NDB_OK) return ndb_errmsg_set(msg, st, "%s: %s", path, why.text);
    fl->found = 1;
    return NDB_OK;
}

static ndb_status archive_listing(rs *r, const char *path, ndb_errmsg *msg)
{
    find_listing fl = {0, 0};
    ndb_status st = walk(r, path, listing_entry, &fl, msg);
    if (st != NDB_OK) return st;
    if (!fl.found)
        return ndb_errmsg_set(msg, NDB_ECORRUPT, "%s has no BACKUP listing: an incomplete backup (cut short before "
                                                 "it finished) or not a backup", path);
    if (fl.entries_after)
        return ndb_errmsg_set(msg, NDB_ECORRUPT, "%s: entries follow its listing (not an archive NexaDB wrote)", path);
    return NDB_OK;
}

static ndb_status scan_entry(rs *r, kv_file *f, const char *path, const char *name, uint64_t off, uint64_t size,
                             void *arg, ndb_errmsg *msg)
{
    int main = *(int *)arg;
    if (strcmp(name, BK_LISTING) == 0) return NDB_OK;
    const bk_file *e = wanted(r, name, main);
    if (e == NULL) {
        if (main && (bk_listing_find(&r->l, name) == NULL || bk_listing_find(&r->l, name)->in_base))
            return ndb_errmsg_set(msg, NDB_ECORRUPT, "%s holds %.100s, which its listing does not", path, name);
        return NDB_OK; /* a base holds more than this backup takes from it */
    }
    if (size != e->size)
        return ndb_errmsg_set(msg, NDB_ECORRUPT, "%s: %s has %llu bytes, the listing says %llu: the backup is damaged",
                              path, name, (unsigned long long)size, (unsigned long long)e->size);
    return take(r, f, off, e, path, msg);
}

/* ------------------------------------------------------------------ both */

static ndb_status scan(rs *r, const char *path, int is_dir, int main, ndb_errmsg *msg)
{
    return is_dir ? dir_scan(r, path, main, msg) : walk(r, path, scan_entry, &main, msg);
}

/* Reads the main backup and its bases, checking (and when r->dst is set,
 * copying) every file the listing names. The listing is read first, unless
 * r->l holds it already. */
static ndb_status pass(rs *r, const char *path, const char *const *bases, size_t nbases, ndb_errmsg *msg)
{
    int is_dir;
    ndb_status st = kind_of(r->env, path, &is_dir, msg);
    if (st != NDB_OK) return st;
    if (r->l.n == 0 && r->l.identity[0] == 0) {
        st = is_dir ? dir_listing(r, path, msg) : archive_listing(r, path, msg);
        if (st != NDB_OK) return st;
        r->done = calloc(r->l.n + 1, 1);
        if (r->done == NULL) return ndb_errmsg_set(msg, NDB_ENOMEM, "out of memory");
    }
    memset(r->done, 0, r->l.n);
    if ((st = scan(r, path, is_dir, 1, msg)) != NDB_OK) return st;
    for (size_t i = 0; i < r->l.n; i++)
        if (!r->l.f[i].in_base && !r->done[i])
            return ndb_errmsg_set(msg, NDB_ECORRUPT, "%s: %s is listed but missing", path, r->l.f[i].name);
    for (size_t b = 0; b < nbases && st == NDB_OK; b++) {
        if ((st = kind_of(r->env, bases[b], &is_dir, msg)) == NDB_OK) st = scan(r, bases[b], is_dir, 0, msg);
    }
    if (st != NDB_OK) return st;
    for (size_t i = 0; i < r->l.n; i++)
        if (!r->done[i])
            return ndb_errmsg_set(msg, NDB_ECORRUPT, "%s: %s is in an earlier backup (an incremental archive), and none "
                                                     "of the base backups given holds it", path, r->l.f[i].name);
    /* it must be something ndb_kv_open can read */
    if (bk_listing_find(&r->l, "CURRENT") == NULL)
        return ndb_errmsg_set(msg, NDB_ECORRUPT, "%s: the listing names no CURRENT", path);
    return NDB_OK;
}

static void fill_info(const rs *r, ndb_kv_backup_info *info)
{
    if (info == NULL) return;
    memset(info, 0, sizeof *info);
    info->sequence = r->l.sequence;
    info->created = r->l.created;
    info->files = r->l.n;
    for (size_t i = 0; i < r->l.n; i++) {
        info->bytes += r->l.f[i].size;
        if (r->l.f[i].in_base) {
            info->files_reused++;
            info->bytes_reused += r->l.f[i].size;
        }
    }
    memcpy(info->identity, r->l.identity, sizeof info->identity);
}

static void rs_free(rs *r)
{
    bk_listing_free(&r->l);
    free(r->done);
    free(r->buf);
}

static ndb_status rs_init(rs *r, ndb_errmsg *msg)
{
    memset(r, 0, sizeof *r);
    r->env = kv_env_posix();
    if ((r->buf = malloc(CHUNK)) == NULL) return ndb_errmsg_set(msg, NDB_ENOMEM, "out of memory");
    return NDB_OK;
}

ndb_status ndb_kv_backup_verify(const char *path, const char *const *bases, size_t nbases, ndb_kv_backup_info *info,
                                ndb_errmsg *msg)
{
    if (path == NULL || (nbases && bases == NULL)) return ndb_errmsg_set(msg, NDB_EINVAL, "a backup path is required");
    rs r;
    ndb_status st = rs_init(&r, msg);
    if (st == NDB_OK) st = pass(&r, path, bases, nbases, msg);
    if (st == NDB_OK) fill_info(&r, info);
    rs_free(&r);
    return st;
}

/* The directory holding path, for its fsync. */
static void parent_of(const char *path, char *out, size_t cap)
{
    snprintf(out, cap, "%s", path);
    size_t n = strlen(out);
    while (n > 1 && out[n - 1] == '/') out[--n] = 0;
    char *slash = strrchr(out, '/');
    if (slash == NULL) snprintf(out, cap, ".");
    else if (slash == out) out[1] = 0;
    else *slash = 0;
}

static ndb_status restore(const char *path, const char *const *bases, size_t nbases, const char *dir, int link_tables,
                          ndb_kv_backup_progress_fn progress, void *progress_arg, ndb_kv_backup_info *info,
                          ndb_errmsg *msg)
{
    if (path == NULL || dir == NULL || (nbases && bases == NULL))
        return ndb_errmsg_set(msg, NDB_EINVAL, "a backup and a target directory are required");
    if (strlen(dir) > 3000) return ndb_errmsg_set(msg, NDB_EINVAL, "target directory path too long");
    char target[4096];
    snprintf(target, sizeof target, "%s", dir);
    for (size_t n = strlen(target); n > 1 && target[n - 1] == '/'; n--) target[n - 1] = 0; /* "kv/" is "kv" */
    dir = target;
    rs r;
    ndb_status st = rs_init(&r, msg);
    if (st != NDB_OK) return st;
    r.link_tables = link_tables;
    kv_env *env = r.env;
    char staging[4200];
    snprintf(staging, sizeof staging, "%s.restoring", dir);
    char **names;
    size_t n;
    int dir_exists = 0;
    if ((st = env->v->list(env, dir, &names, &n)) == NDB_OK) {
        kv_env_free_list(names, n);
        dir_exists = 1;
        if (n > 0) st = ndb_errmsg_set(msg, NDB_EEXIST, "%s is not empty: restore only into an empty directory", dir);
    } else if (st == NDB_ENOTFOUND) {
        st = NDB_OK;
    } else {
        ndb_errmsg_set(msg, st, "%s: cannot read it", dir);
    }
    if (st == NDB_OK && env->v->list(env, staging, &names, &n) == NDB_OK) {
        kv_env_free_list(names, n);
        st = ndb_errmsg_set(msg, NDB_EEXIST, "%s exists: an earlier restore was interrupted; remove it first", staging);
    }
    /* first everything checked, nothing written */
    if (st == NDB_OK) st = pass(&r, path, bases, nbases, msg);
    if (st == NDB_OK) {
        if ((st = env->v->mkdir(env, staging)) != NDB_OK) ndb_errmsg_set(msg, st, "cannot create %s", staging);
    }
    if (st == NDB_OK) {
        r.dst = staging;
        r.progress = progress;
        r.progress_arg = progress_arg;
        r.prog.sequence = r.l.sequence;
        r.prog.files_total = r.l.n;
        for (size_t i = 0; i < r.l.n; i++) r.prog.bytes_total += r.l.f[i].size;
        st = pass(&r, path, bases, nbases, msg); /* checks every CRC again on the way */
        if (st == NDB_OK && (st = env->v->sync_dir(env, staging)) != NDB_OK)
            ndb_errmsg_set(msg, st, "%s: fsync failed", staging);
        if (st == NDB_OK && dir_exists && (st = env->v->remove(env, dir)) != NDB_OK)
            ndb_errmsg_set(msg, st, "%s: cannot replace the empty directory", dir);
        if (st == NDB_OK && (st = env->v->rename(env, staging, dir)) != NDB_OK)
            ndb_errmsg_set(msg, st, "renaming %s to %s failed", staging, dir);
        char parent[4096];
        parent_of(dir, parent, sizeof parent);
        if (st == NDB_OK && (st = env->v->sync_dir(env, parent)) != NDB_OK)
            ndb_errmsg_set(msg, st, "%s: fsync failed", parent);
        if (st != NDB_OK) bk_remove_tree(env, staging);
    }
    if (st == NDB_OK) fill_info(&r, info);
    rs_free(&r);
    return st;
}

ndb_status ndb_kv_restore(const char *path, const char *const *bases, size_t nbases, const char *dir,
                          ndb_kv_backup_progress_fn progress, void *progress_arg, ndb_kv_backup_info *info,
                          ndb_errmsg *msg)
{
    return restore(path, bases, nbases, dir, 0, progress, progress_arg, info, msg);
}

ndb_status ndb_kv_restore_linked(const char *path, const char *dir, ndb_kv_backup_info *info, ndb_errmsg *msg)
{
    return restore(path, NULL, 0, dir, 1, NULL, NULL, info, msg);
}
