/*
 * Backups (engine/kv/backup.c, restore.c, bkformat.c): directory and archive
 * backups restore to exactly the state at their sequence, also while writers,
 * flushes and compactions run (checked against the engine's own snapshot at
 * that sequence and against a model of acknowledged writes); incremental
 * backups; damaged, partial and foreign backups refused with the file named;
 * a backup killed with SIGKILL leaves a database that opens with everything
 * and a directory that verify and restore refuse.
 *
 * NDB_KV_BACKUP_KILLS sets the number of kills (default 5; more for a long run).
 */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>

#include "ndb_kv.h"
#include "testutil.h"

static ndb_kv_options small_opts(void)
{
    ndb_kv_options o;
    ndb_kv_options_init(&o);
    o.memtable_bytes = 64 * 1024; /* flushes and compactions during the backups */
    o.sst_target_bytes = 64 * 1024;
    o.l1_max_bytes = 256 * 1024;
    o.wal_segment_bytes = 16 * 1024;
    o.block_cache_bytes = 1 << 20;
    return o;
}

static char *path_in(const char *dir, const char *name)
{
    char *p = malloc(4096);
    snprintf(p, 4096, "%s/%s", dir, name);
    return p;
}

/* n keys <prefix>-<i>, 50 to a batch (one fsync each). */
static void fill(ndb_kv *kv, const char *prefix, int n, int vlen)
{
    char k[64], v[512];
    ndb_kv_batch *b;
    cr_assert_eq(ndb_kv_batch_new(&b), NDB_OK);
    for (int i = 0; i < n; i++) {
        snprintf(k, sizeof k, "%s-%06d", prefix, i);
        for (int j = 0; j < vlen; j++) v[j] = (char)('a' + (i + j) % 26);
        cr_assert_eq(ndb_kv_batch_put(b, k, strlen(k), v, (size_t)vlen), NDB_OK);
        if (ndb_kv_batch_count(b) == 50 || i == n - 1) {
            cr_assert_eq(ndb_kv_write(kv, b), NDB_OK);
            ndb_kv_batch_clear(b);
        }
    }
    ndb_kv_batch_free(b);
}

/* Every key and value of a at snap equals b's latest state: same keys, same values. */
static void assert_same(ndb_kv *a, const ndb_kv_snapshot *snap, ndb_kv *b)
{
    ndb_kv_iter *ia, *ib;
    cr_assert_eq(ndb_kv_iter_new(a, snap, NULL, 0, NULL, 0, &ia), NDB_OK);
    cr_assert_eq(ndb_kv_iter_new(b, NULL, NULL, 0, NULL, 0, &ib), NDB_OK);
    ndb_kv_iter_seek_first(ia);
    ndb_kv_iter_seek_first(ib);
    size_t n = 0;
    while (ndb_kv_iter_valid(ia) && ndb_kv_iter_valid(ib)) {
        size_t kl1, kl2, vl1, vl2;
        const void *k1 = ndb_kv_iter_key(ia, &kl1), *k2 = ndb_kv_iter_key(ib, &kl2);
        cr_assert(kl1 == kl2 && memcmp(k1, k2, kl1) == 0, "key %zu differs: %.*s vs %.*s", n, (int)kl1,
                  (const char *)k1, (int)kl2, (const char *)k2);
        const void *v1 = ndb_kv_iter_value(ia, &vl1), *v2 = ndb_kv_iter_value(ib, &vl2);
        cr_assert(vl1 == vl2 && memcmp(v1, v2, vl1) == 0, "value of %.*s differs", (int)kl1, (const char *)k1);
        ndb_kv_iter_next(ia);
        ndb_kv_iter_next(ib);
        n++;
    }
    cr_assert_eq(ndb_kv_iter_status(ia), NDB_OK);
    cr_assert_eq(ndb_kv_iter_status(ib), NDB_OK);
    cr_assert(!ndb_kv_iter_valid(ia), "the source has more keys than the restored copy (%zu alike)", n);
    cr_assert(!ndb_kv_iter_valid(ib), "the restored copy has more keys than the source (%zu alike)", n);
    ndb_kv_iter_free(ia);
    ndb_kv_iter_free(ib);
}

/* Restores backup (with bases) into a fresh directory and opens it. */
static ndb_kv *restore_open(const char *backup, const char *const *bases, size_t nbases, char **dir_out)
{
    char *base = tu_tmpdir("restore");
    char *dir = path_in(base, "kv");
    ndb_errmsg msg = {{0}};
    ndb_kv_backup_info info;
    ndb_status st = ndb_kv_restore(backup, bases, nbases, dir, NULL, NULL, &info, &msg);
    cr_assert_eq(st, NDB_OK, "restore: %s", msg.text);
    ndb_kv *kv;
    ndb_kv_options o = small_opts();
    cr_assert_eq(ndb_kv_open(dir, &o, &kv, &msg), NDB_OK, "open restored: %s", msg.text);
    ndb_kv_stats s;
    ndb_kv_stats_get(kv, &s);
    cr_assert_eq(s.last_seq, info.sequence, "restored at %llu, backup says %llu", (unsigned long long)s.last_seq,
                 (unsigned long long)info.sequence);
    free(dir);
    *dir_out = base;
    return kv;
}

/* Restores backup, checks it equals kv at snap (then released), and removes the copy. */
static void assert_restores(ndb_kv *kv, ndb_kv_snapshot *snap, const char *backup, const char *const *bases,
                            size_t nbases)
{
    char *rdir;
    ndb_kv *r = restore_open(backup, bases, nbases, &rdir);
    assert_same(kv, snap, r);
    cr_assert_eq(ndb_kv_close(r), NDB_OK);
    ndb_kv_snapshot_release(kv, snap);
    tu_rmdir(rdir);
}

/* An archive written to a file. */
typedef struct file_sink {
    FILE *f;
    size_t chunks, max_chunk;
} file_sink;

static ndb_status to_file(void *arg, const void *buf, size_t n)
{
    file_sink *s = arg;
    s->chunks++;
    if (n > s->max_chunk) s->max_chunk = n;
    return fwrite(buf, 1, n, s->f) == n ? NDB_OK : NDB_EIO;
}

static ndb_status archive_to(ndb_kv *kv, const char *path, const ndb_kv_backup_options *o, ndb_kv_backup_info *info,
                             ndb_errmsg *msg)
{
    file_sink s = {fopen(path, "wb"), 0, 0};
    cr_assert_not_null(s.f);
    ndb_status st = ndb_kv_backup_archive(kv, to_file, &s, o, info, msg);
    cr_assert_eq(fclose(s.f), 0);
    if (st == NDB_OK) cr_assert_leq(s.max_chunk, (1u << 20) + 1024);
    return st;
}

/* Flips one byte of a file at off (from the end when off < 0). */
static void flip(const char *path, long off)
{
    int fd = open(path, O_RDWR);
    cr_assert_geq(fd, 0, "open %s", path);
    struct stat sb;
    fstat(fd, &sb);
    off_t at = off >= 0 ? off : sb.st_size + off;
    unsigned char c;
    cr_assert_eq(pread(fd, &c, 1, at), 1);
    c ^= 0x40;
    cr_assert_eq(pwrite(fd, &c, 1, at), 1);
    close(fd);
}

/* The first table file in dir. */
static char *some_table(const char *dir)
{
    char cmd[4200];
    snprintf(cmd, sizeof cmd, "ls '%s' | grep '\\.sst$' | head -1", dir);
    FILE *p = popen(cmd, "r");
    char name[256] = {0};
    cr_assert_not_null(fgets(name, sizeof name, p), "no table in %s", dir);
    pclose(p);
    name[strcspn(name, "\n")] = 0;
    return path_in(dir, name);
}

/* The BACKUP listing inside an archive (its last entry), read as tar. */
static char *archive_listing(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    cr_assert_not_null(f);
    char h[512];
    char *out = NULL;
    while (fread(h, 1, 512, f) == 512 && h[0] != 0) {
        size_t size = strtoull(h + 124, NULL, 8);
        char *data = malloc(size + 1);
        cr_assert_eq(fread(data, 1, size, f), size);
        fseek(f, (long)((512 - size % 512) % 512), SEEK_CUR);
        if (strcmp(h, "BACKUP") == 0) {
            free(out);
            out = data;
            *len = size;
        } else {
            free(data);
        }
    }
    fclose(f);
    cr_assert_not_null(out, "no listing in %s", path);
    return out;
}

Test(backup, directory_backup_restores_tables_and_log_tail)
{
    char *src = tu_tmpdir("bsrc"), *bk = tu_tmpdir("bk");
    char *bdir = path_in(bk, "b1");
    ndb_kv_options o = small_opts();
    ndb_kv *kv;
    ndb_errmsg msg = {{0}};
    cr_assert_eq(ndb_kv_open(src, &o, &kv, &msg), NDB_OK);
    fill(kv, "a", 3000, 100); /* tables */
    fill(kv, "b", 50, 20);    /* and some in the log only */
    cr_assert_eq(ndb_kv_delete(kv, "a-000007", 8), NDB_OK);
    ndb_kv_snapshot *snap = NULL;
    ndb_kv_backup_options bo = {.snapshot = &snap};
    ndb_kv_backup_info info;
    cr_assert_eq(ndb_kv_backup(kv, bdir, &bo, &info, &msg), NDB_OK, "%s", msg.text);
    cr_assert_not_null(snap);
    cr_assert_eq(info.sequence, ndb_kv_snapshot_seq(snap));
    cr_assert_eq(info.sequence, 3051);
    cr_assert_gt(info.files, 3);
    cr_assert_eq(strlen(info.identity), 32);
    fill(kv, "c", 100, 20); /* after the backup: not in it */

    ndb_kv_backup_info vinfo;
    cr_assert_eq(ndb_kv_backup_verify(bdir, NULL, 0, &vinfo, &msg), NDB_OK, "%s", msg.text);
    cr_assert_eq(vinfo.sequence, info.sequence);
    cr_assert_eq(vinfo.files, info.files);
    cr_assert_eq(vinfo.bytes, info.bytes);
    char *rdir;
    ndb_kv *r = restore_open(bdir, NULL, 0, &rdir);
    assert_same(kv, snap, r);
    void *v;
    size_t vl;
    cr_assert_eq(ndb_kv_get(r, NULL, "a-000007", 8, &v, &vl), NDB_ENOTFOUND);
    cr_assert_eq(ndb_kv_get(r, NULL, "c-000001", 8, &v, &vl), NDB_ENOTFOUND);
    /* the restored database takes writes and reopens */
    fill(r, "d", 100, 10);
    cr_assert_eq(ndb_kv_close(r), NDB_OK);
    /* files and the directory private */
    struct stat sb;
    char *listing = path_in(bdir, "BACKUP");
    cr_assert_eq(stat(listing, &sb), 0);
    cr_assert_eq(sb.st_mode & 077, 0);
    cr_assert_eq(stat(bdir, &sb), 0);
    cr_assert_eq(sb.st_mode & 077, 0);
    free(listing);
    /* a second backup into the same directory is refused */
    cr_assert_eq(ndb_kv_backup(kv, bdir, NULL, NULL, &msg), NDB_EEXIST);
    ndb_kv_snapshot_release(kv, snap);
    cr_assert_eq(ndb_kv_close(kv), NDB_OK);
    tu_rmdir(rdir);
    free(bdir);
    tu_rmdir(bk);
    tu_rmdir(src);
}

Test(backup, a_linked_restore_shares_the_tables_and_copies_the_rest)
{
    char *src = tu_tmpdir("lsrc"), *bk = tu_tmpdir("lbk"), *out = tu_tmpdir("lout");
    char *bdir = path_in(bk, "b1"), *rdir = path_in(out, "kv");
    ndb_kv_options o = small_opts();
    ndb_kv *kv;
    ndb_errmsg msg = {{0}};
    cr_assert_eq(ndb_kv_open(src, &o, &kv, &msg), NDB_OK);
    fill(kv, "a", 3000, 100); /* tables */
    fill(kv, "b", 50, 20);    /* and some in the log only */
    ndb_kv_snapshot *snap = NULL;
    ndb_kv_backup_options bo = {.snapshot = &snap};
    ndb_kv_backup_info info, rinfo;
    cr_assert_eq(ndb_kv_backup(kv, bdir, &bo, &info, &msg), NDB_OK, "%s", msg.text);
    cr_assert_eq(ndb_kv_restore_linked(bdir, rdir, &rinfo, &msg), NDB_OK, "%s", msg.text);
    cr_assert_eq(rinfo.sequence, info.sequence);
    /* every table is the backup's own file; nothing else is */
    char *t = some_table(bdir);
    char *rt = path_in(rdir, strrchr(t, '/') + 1);
    struct stat a, b;
    cr_assert_eq(stat(t, &a), 0);
    cr_assert_eq(stat(rt, &b), 0);
    cr_assert(a.st_ino == b.st_ino && a.st_dev == b.st_dev, "the table was copied, not linked");
    char *bl = path_in(bdir, "CURRENT"), *rl = path_in(rdir, "CURRENT");
    cr_assert_eq(stat(bl, &a), 0);
    cr_assert_eq(stat(rl, &b), 0);
    cr_assert_neq(a.st_ino, b.st_ino, "CURRENT is shared with the backup");
    /* the same contents; writes and compactions there leave the backup whole */
    ndb_kv *r;
    cr_assert_eq(ndb_kv_open(rdir, &o, &r, &msg), NDB_OK, "open restored: %s", msg.text);
    assert_same(kv, snap, r);
    fill(r, "a", 3000, 120);
    cr_assert_eq(ndb_kv_compact_range(r, NULL, 0, NULL, 0), NDB_OK);
    cr_assert_eq(ndb_kv_close(r), NDB_OK);
    cr_assert_eq(ndb_kv_backup_verify(bdir, NULL, 0, NULL, &msg), NDB_OK, "the backup changed: %s", msg.text);
    /* a table missing from the backup is still refused, and nothing is left behind */
    char *rdir2 = path_in(out, "kv2");
    cr_assert_eq(unlink(t), 0);
    cr_assert_eq(ndb_kv_restore_linked(bdir, rdir2, NULL, &msg), NDB_ECORRUPT);
    cr_assert(strstr(msg.text, strrchr(t, '/') + 1) != NULL, "%s", msg.text);
    cr_assert_neq(access(rdir2, F_OK), 0);
    ndb_kv_snapshot_release(kv, snap);
    cr_assert_eq(ndb_kv_close(kv), NDB_OK);
    free(t);
    free(rt);
    free(bl);
    free(rl);
    free(bdir);
    free(rdir);
    free(rdir2);
    tu_rmdir(out);
    tu_rmdir(bk);
    tu_rmdir(src);
}

Test(backup, across_file_systems_tables_are_copied)
{
    struct stat a, b;
    char *src = tu_tmpdir("xsrc");
    if (stat("/dev/shm", &b) != 0 || stat(src, &a) != 0 || a.st_dev == b.st_dev || access("/dev/shm", W_OK) != 0) {
        tu_rmdir(src);
        cr_skip_test("no second file system at /dev/shm");
    }
    char shm[] = "/dev/shm/ndbkv-xbk-XXXXXX";
    cr_assert_not_null(mkdtemp(shm));
    char *bdir = path_in(shm, "b");
    ndb_kv_options o = small_opts();
    ndb_kv *kv;
    ndb_errmsg msg = {{0}};
    cr_assert_eq(ndb_kv_open(src, &o, &kv, &msg), NDB_OK);
    fill(kv, "a", 2000, 100);
    ndb_kv_snapshot *snap;
    ndb_kv_backup_options bo = {.snapshot = &snap};
    cr_assert_eq(ndb_kv_backup(kv, bdir, &bo, NULL, &msg), NDB_OK, "%s", msg.text);
    char *t = some_table(bdir);
    struct stat sb;
    cr_assert_eq(stat(t, &sb), 0);
    cr_assert_eq(sb.st_nlink, 1, "a copy, not a link");
    cr_assert_eq(sb.st_mode & 077, 0);
    assert_restores(kv, snap, bdir, NULL, 0);
    cr_assert_eq(ndb_kv_close(kv), NDB_OK);
    free(t);
    free(bdir);
    tu_rmdir(strdup(shm));
    tu_rmdir(src);
}

Test(backup, archive_restores_and_verifies)
{
    char *src = tu_tmpdir("asrc"), *bk = tu_tmpdir("ark");
    char *arch = path_in(bk, "full.tar");
    ndb_kv_options o = small_opts();
    ndb_kv *kv;
    ndb_errmsg msg = {{0}};
    cr_assert_eq(ndb_kv_open(src, &o, &kv, &msg), NDB_OK);
    fill(kv, "a", 4000, 300); /* over a MiB: several chunks */
    ndb_kv_snapshot *snap = NULL;
    ndb_kv_backup_options bo = {.snapshot = &snap};
    ndb_kv_backup_info info;
    cr_assert_eq(archive_to(kv, arch, &bo, &info, &msg), NDB_OK, "%s", msg.text);
    fill(kv, "z", 10, 10);
    /* a stock tar reads it */
    char cmd[4300];
    snprintf(cmd, sizeof cmd, "tar -tf '%s' | tail -1 | grep -qx BACKUP", arch);
    cr_assert_eq(system(cmd), 0, "tar does not list BACKUP last");
    assert_restores(kv, snap, arch, NULL, 0);
    cr_assert_eq(ndb_kv_close(kv), NDB_OK);
    free(arch);
    tu_rmdir(bk);
    tu_rmdir(src);
}

/* ---- under concurrent writes */

#define WRITERS 4

typedef struct writer {
    ndb_kv *kv;
    int id;
    volatile int *stop;
    uint32_t acked;       /* batches acknowledged */
    uint32_t acked_at_start; /* when the backup call began */
    uint32_t started_at_end; /* batches begun before the backup call returned */
} writer;

static volatile int backup_running, backup_done;

/* Batch n of writer w: w/<n> and the writer's counter key w/count = n, and
 * every 7th batch deletes w/<n-5>. */
static void *write_loop(void *p)
{
    writer *w = p;
    ndb_kv_batch *b;
    cr_assert_eq(ndb_kv_batch_new(&b), NDB_OK);
    char k[64], v[64];
    for (uint32_t n = 1; !*w->stop; n++) {
        ndb_kv_batch_clear(b);
        snprintf(k, sizeof k, "w%d/%08u", w->id, n);
        int vl = snprintf(v, sizeof v, "value-%d-%u-%0*d", w->id, n, (int)(n % 40), 0);
        ndb_kv_batch_put(b, k, strlen(k), v, (size_t)vl);
        snprintf(k, sizeof k, "w%d/count", w->id);
        vl = snprintf(v, sizeof v, "%u", n);
        ndb_kv_batch_put(b, k, strlen(k), v, (size_t)vl);
        if (n % 7 == 0 && n > 5) {
            snprintf(k, sizeof k, "w%d/%08u", w->id, n - 5);
            ndb_kv_batch_delete(b, k, strlen(k));
        }
        if (!__atomic_load_n(&backup_done, __ATOMIC_ACQUIRE)) w->started_at_end = n;
        cr_assert_eq(ndb_kv_write(w->kv, b), NDB_OK);
        __atomic_store_n(&w->acked, n, __ATOMIC_RELEASE);
    }
    ndb_kv_batch_free(b);
    return NULL;
}

typedef struct slow {
    int calls;
    ndb_kv *kv;                        /* NULL: only sleep */
    uint64_t flushes0, compactions0;   /* when the backup began */
    int waited;
} slow;

/* Slows the backup down, and after its first file waits (up to 20 s) until
 * the writers have made the engine flush twice and compact once, so that
 * compactions drop tables the backup still holds. */
static ndb_status slow_progress(void *arg, const ndb_kv_backup_progress *p)
{
    slow *s = arg;
    s->calls++;
    cr_assert_leq(p->bytes_done, p->bytes_total);
    cr_assert_leq(p->files_done, p->files_total);
    struct timespec ts = {0, 2 * 1000 * 1000};
    nanosleep(&ts, NULL);
    if (s->kv != NULL && p->files_done >= 1 && !s->waited) {
        s->waited = 1;
        for (int i = 0; i < 4000; i++) {
            ndb_kv_stats st;
            ndb_kv_stats_get(s->kv, &st);
            if (st.flushes >= s->flushes0 + 2 && st.compactions > s->compactions0) break;
            nanosleep(&ts, NULL);
        }
    }
    return NDB_OK;
}

/* How many tables the listing text names that dir no longer holds. */
static int tables_gone(const char *listing, const char *dir)
{
    int gone = 0;
    for (const char *l = listing; (l = strstr(l, "file ")) != NULL; l += 5) {
        char name[64];
        if (sscanf(l, "file %63s", name) != 1 || strstr(name, ".sst") == NULL) continue;
        char *path = path_in(dir, name);
        struct stat sb;
        gone += stat(path, &sb) != 0;
        free(path);
    }
    return gone;
}

/* The model: in the restored copy, writer w's counter says how many of its
 * batches it holds, c; that must be at least what was acknowledged before
 * the backup began and at most what had begun before it ended, and its keys
 * must be exactly those of batches 1..c (less the deleted ones). */
static void check_model(ndb_kv *r, writer *ws)
{
    for (int w = 0; w < WRITERS; w++) {
        char k[64];
        snprintf(k, sizeof k, "w%d/count", w);
        void *v;
        size_t vl;
        uint32_t c = 0;
        if (ndb_kv_get(r, NULL, k, strlen(k), &v, &vl) == NDB_OK) {
            char t[32] = {0};
            memcpy(t, v, vl < 31 ? vl : 31);
            c = (uint32_t)strtoul(t, NULL, 10);
            free(v);
        }
        cr_assert_geq(c, ws[w].acked_at_start, "writer %d: %u batches restored, %u acknowledged before the backup", w,
                      c, ws[w].acked_at_start);
        cr_assert_leq(c, ws[w].started_at_end, "writer %d: %u batches restored, only %u begun before it ended", w, c,
                      ws[w].started_at_end);
        uint32_t hi = c + 20;
        for (uint32_t n = 1; n <= hi; n++) {
            snprintf(k, sizeof k, "w%d/%08u", w, n);
            int want = n <= c && !((n + 5) % 7 == 0 && n + 5 <= c && n + 5 > 5);
            ndb_status st = ndb_kv_get(r, NULL, k, strlen(k), &v, &vl);
            cr_assert_eq(st == NDB_OK, want, "writer %d key %u: present %d, model says %d (count %u)", w, n,
                         st == NDB_OK, want, c);
            if (st == NDB_OK) free(v);
        }
    }
}

static void concurrent(int archive)
{
    char *src = tu_tmpdir("csrc"), *bk = tu_tmpdir("cbk");
    char *target = path_in(bk, archive ? "b.tar" : "b");
    ndb_kv_options o = small_opts();
    ndb_kv *kv;
    ndb_errmsg msg = {{0}};
    cr_assert_eq(ndb_kv_open(src, &o, &kv, &msg), NDB_OK);
    fill(kv, "base", 3000, 200);
    volatile int stop = 0;
    writer ws[WRITERS];
    pthread_t th[WRITERS];
    backup_done = 0;
    for (int i = 0; i < WRITERS; i++) {
        ws[i] = (writer){.kv = kv, .id = i, .stop = &stop};
        pthread_create(&th[i], NULL, write_loop, &ws[i]);
    }
    /* until the writers' keys are in tables (which later flushes overlap) */
    ndb_kv_stats before, start;
    ndb_kv_stats_get(kv, &start);
    struct timespec ts = {0, 50 * 1000 * 1000};
    for (int i = 0; i < 400; i++) {
        nanosleep(&ts, NULL);
        ndb_kv_stats_get(kv, &before);
        if (before.flushes >= start.flushes + 3) break;
    }
    for (int i = 0; i < WRITERS; i++) ws[i].acked_at_start = __atomic_load_n(&ws[i].acked, __ATOMIC_ACQUIRE);
    slow sl = {.kv = kv, .flushes0 = before.flushes, .compactions0 = before.compactions};
    ndb_kv_snapshot *snap = NULL;
    ndb_kv_backup_options bo = {.progress = slow_progress, .progress_arg = &sl, .snapshot = &snap};
    ndb_kv_backup_info info;
    ndb_status st = archive ? archive_to(kv, target, &bo, &info, &msg) : ndb_kv_backup(kv, target, &bo, &info, &msg);
    __atomic_store_n(&backup_done, 1, __ATOMIC_RELEASE);
    cr_assert_eq(st, NDB_OK, "%s", msg.text);
    nanosleep(&ts, NULL);
    stop = 1;
    for (int i = 0; i < WRITERS; i++) pthread_join(th[i], NULL);
    ndb_kv_stats after;
    ndb_kv_stats_get(kv, &after);
    cr_assert_gt(sl.calls, (int)info.files);
    cr_assert_gt(after.last_seq, info.sequence, "writes went on during the backup");
    cr_assert_gt(after.flushes, before.flushes, "flushes ran during the backup");
    cr_assert_gt(after.compactions, before.compactions, "compactions ran during the backup");
    /* compactions dropped tables the backup was reading: kept until it ended, deleted since */
    size_t llen;
    char *listing;
    if (archive) {
        listing = archive_listing(target, &llen);
    } else {
        char *lp = path_in(target, "BACKUP");
        FILE *f = fopen(lp, "rb");
        cr_assert_not_null(f);
        listing = calloc(1, 1 << 20);
        llen = fread(listing, 1, (1 << 20) - 1, f);
        fclose(f);
        free(lp);
    }
    cr_assert_gt(tables_gone(listing, src), 0, "no table of the backup was compacted away meanwhile");
    free(listing);
    char *rdir;
    ndb_kv *r = restore_open(target, NULL, 0, &rdir);
    assert_same(kv, snap, r);
    check_model(r, ws);
    cr_assert_eq(ndb_kv_close(r), NDB_OK);
    ndb_kv_snapshot_release(kv, snap);
    cr_assert_eq(ndb_kv_close(kv), NDB_OK);
    tu_rmdir(rdir);
    free(target);
    tu_rmdir(bk);
    tu_rmdir(src);
}

Test(backup, directory_under_concurrent_writes_is_the_state_at_its_sequence, .timeout = 120) { concurrent(0); }
Test(backup, archive_under_concurrent_writes_is_the_state_at_its_sequence, .timeout = 120) { concurrent(1); }

/* ---- incremental */

/* Options that keep the first tables as they are (no L0 compaction). */
static ndb_kv_options steady_opts(void)
{
    ndb_kv_options o = small_opts();
    o.l0_compaction_trigger = 100;
    o.l0_slowdown_trigger = 200;
    o.l0_stop_trigger = 300;
    return o;
}

/* A database in src with 2,000 keys a-*, in tables that stay. */
static ndb_kv *steady_db(const char *src, const ndb_kv_options *o)
{
    ndb_kv *kv;
    ndb_errmsg msg = {{0}};
    cr_assert_eq(ndb_kv_open(src, o, &kv, &msg), NDB_OK, "%s", msg.text);
    fill(kv, "a", 2000, 100);
    return kv;
}

Test(backup, incremental_directory_links_what_the_previous_one_holds)
{
    char *src = tu_tmpdir("isrc"), *bk = tu_tmpdir("ibk");
    char *b1 = path_in(bk, "b1"), *b2 = path_in(bk, "b2");
    ndb_kv_options o = steady_opts();
    ndb_errmsg msg = {{0}};
    ndb_kv *kv = steady_db(src, &o);
    ndb_kv_backup_info i1, i2;
    cr_assert_eq(ndb_kv_backup(kv, b1, NULL, &i1, &msg), NDB_OK, "%s", msg.text);
    fill(kv, "b", 500, 100);
    ndb_kv_snapshot *snap;
    ndb_kv_backup_options bo = {.previous_dir = b1, .snapshot = &snap};
    cr_assert_eq(ndb_kv_backup(kv, b2, &bo, &i2, &msg), NDB_OK, "%s", msg.text);
    cr_assert_gt(i2.files_reused, 0);
    cr_assert_lt(i2.files_reused, i2.files);
    cr_assert_gt(i2.bytes_reused, 0);
    /* b2 is whole by itself */
    assert_restores(kv, snap, b2, NULL, 0);
    /* a previous backup of another database is refused */
    char *other = tu_tmpdir("iother"), *b3 = path_in(bk, "b3");
    ndb_kv *kv2;
    cr_assert_eq(ndb_kv_open(other, &o, &kv2, &msg), NDB_OK);
    fill(kv2, "x", 10, 10);
    ndb_kv_backup_options bo3 = {.previous_dir = b1};
    cr_assert_eq(ndb_kv_backup(kv2, b3, &bo3, NULL, &msg), NDB_EINVAL);
    cr_assert(strstr(msg.text, "another database") != NULL, "%s", msg.text);
    cr_assert_eq(ndb_kv_close(kv2), NDB_OK);
    cr_assert_eq(ndb_kv_close(kv), NDB_OK);
    tu_rmdir(other);
    free(b1);
    free(b2);
    free(b3);
    tu_rmdir(bk);
    tu_rmdir(src);
}

Test(backup, incremental_archive_needs_its_base)
{
    char *src = tu_tmpdir("iasrc"), *bk = tu_tmpdir("iabk");
    char *a1 = path_in(bk, "a1.tar"), *a2 = path_in(bk, "a2.tar");
    ndb_kv_options o = steady_opts();
    ndb_errmsg msg = {{0}};
    ndb_kv *kv = steady_db(src, &o);
    ndb_kv_backup_info i1, i2;
    cr_assert_eq(archive_to(kv, a1, NULL, &i1, &msg), NDB_OK, "%s", msg.text);
    fill(kv, "b", 500, 100);
    size_t llen;
    char *listing = archive_listing(a1, &llen);
    ndb_kv_snapshot *snap;
    ndb_kv_backup_options bo = {.previous_listing = listing, .previous_listing_len = llen, .snapshot = &snap};
    cr_assert_eq(archive_to(kv, a2, &bo, &i2, &msg), NDB_OK, "%s", msg.text);
    cr_assert_gt(i2.files_reused, 0);
    struct stat s1, s2;
    stat(a1, &s1);
    stat(a2, &s2);
    cr_assert_lt(s2.st_size, s1.st_size, "the incremental archive (%lld bytes) holds only what is new",
                 (long long)s2.st_size);
    /* alone it is refused, naming a file it lacks */
    cr_assert_eq(ndb_kv_backup_verify(a2, NULL, 0, NULL, &msg), NDB_ECORRUPT);
    cr_assert(strstr(msg.text, ".sst") != NULL && strstr(msg.text, "base") != NULL, "%s", msg.text);
    const char *bases[] = {a1};
    cr_assert_eq(ndb_kv_backup_verify(a2, bases, 1, NULL, &msg), NDB_OK, "%s", msg.text);
    assert_restores(kv, snap, a2, bases, 1);
    cr_assert_eq(ndb_kv_close(kv), NDB_OK);
    free(listing);
    free(a1);
    free(a2);
    tu_rmdir(bk);
    tu_rmdir(src);
}

/* ---- damage */

/* restore must refuse with a message naming what, and leave target absent. */
static void assert_refused(const char *backup, const char *what)
{
    char *base = tu_tmpdir("refused");
    char *dir = path_in(base, "kv");
    ndb_errmsg msg = {{0}};
    cr_assert_eq(ndb_kv_backup_verify(backup, NULL, 0, NULL, &msg), NDB_ECORRUPT, "verify passed %s", backup);
    cr_assert(strstr(msg.text, what) != NULL, "verify's message does not name %s: %s", what, msg.text);
    cr_assert_eq(ndb_kv_restore(backup, NULL, 0, dir, NULL, NULL, NULL, &msg), NDB_ECORRUPT);
    cr_assert(strstr(msg.text, what) != NULL, "restore's message does not name %s: %s", what, msg.text);
    struct stat sb;
    cr_assert_neq(stat(dir, &sb), 0, "restore wrote into the target");
    char staging[4200];
    snprintf(staging, sizeof staging, "%s.restoring", dir);
    cr_assert_neq(stat(staging, &sb), 0, "restore left its staging directory");
    free(dir);
    tu_rmdir(base);
}

static ndb_kv *small_db(char **src)
{
    *src = tu_tmpdir("dsrc");
    ndb_kv_options o = small_opts();
    ndb_kv *kv;
    ndb_errmsg msg = {{0}};
    cr_assert_eq(ndb_kv_open(*src, &o, &kv, &msg), NDB_OK);
    fill(kv, "a", 1500, 100);
    fill(kv, "b", 20, 10);
    return kv;
}

Test(backup, a_flipped_byte_is_refused_naming_the_file)
{
    char *src, *bk = tu_tmpdir("dbk");
    ndb_kv *kv = small_db(&src);
    ndb_errmsg msg = {{0}};
    /* in a table (a copy, not a link: the source must stay whole) */
    char *b1 = path_in(bk, "b1");
    cr_assert_eq(ndb_kv_backup(kv, b1, NULL, NULL, &msg), NDB_OK, "%s", msg.text);
    char *t = some_table(b1);
    char copy[4300];
    snprintf(copy, sizeof copy, "cp '%s' '%s.x' && mv '%s.x' '%s'", t, t, t, t);
    cr_assert_eq(system(copy), 0);
    flip(t, 100);
    assert_refused(b1, strrchr(t, '/') + 1);
    /* in the log tail */
    char *b2 = path_in(bk, "b2");
    cr_assert_eq(ndb_kv_backup(kv, b2, NULL, NULL, &msg), NDB_OK, "%s", msg.text);
    char cmd[4200], name[64] = {0};
    snprintf(cmd, sizeof cmd, "ls -S '%s' | grep '\\.wal$' | head -1", b2);
    FILE *p = popen(cmd, "r");
    cr_assert_not_null(fgets(name, sizeof name, p));
    pclose(p);
    name[strcspn(name, "\n")] = 0;
    char *w = path_in(b2, name);
    flip(w, -3);
    assert_refused(b2, name);
    /* in the listing itself */
    char *b3 = path_in(bk, "b3");
    cr_assert_eq(ndb_kv_backup(kv, b3, NULL, NULL, &msg), NDB_OK, "%s", msg.text);
    char *l = path_in(b3, "BACKUP");
    flip(l, 60);
    assert_refused(b3, "BACKUP");
    /* in an archive: each file's bytes */
    char *a = path_in(bk, "a.tar");
    cr_assert_eq(archive_to(kv, a, NULL, NULL, &msg), NDB_OK, "%s", msg.text);
    flip(a, 512 + 700); /* inside the first entry, a table */
    assert_refused(a, ".sst");
    /* a missing file */
    char *b4 = path_in(bk, "b4");
    cr_assert_eq(ndb_kv_backup(kv, b4, NULL, NULL, &msg), NDB_OK, "%s", msg.text);
    char *t4 = some_table(b4);
    cr_assert_eq(unlink(t4), 0);
    assert_refused(b4, strrchr(t4, '/') + 1);
    cr_assert_eq(ndb_kv_close(kv), NDB_OK);
    free(t);
    free(t4);
    free(w);
    free(l);
    free(a);
    free(b1);
    free(b2);
    free(b3);
    free(b4);
    tu_rmdir(bk);
    tu_rmdir(src);
}

static ndb_status stop_after_two(void *arg, const ndb_kv_backup_progress *p)
{
    (void)arg;
    return p->files_done >= 2 ? NDB_ECANCELED : NDB_OK;
}

Test(backup, an_incomplete_backup_is_never_taken_for_complete)
{
    char *src, *bk = tu_tmpdir("pbk");
    ndb_kv *kv = small_db(&src);
    ndb_errmsg msg = {{0}};
    /* stopped half-way: removed; a listing taken away leaves an incomplete backup */
    char *b1 = path_in(bk, "b1");
    ndb_kv_backup_options bo = {.progress = stop_after_two};
    cr_assert_eq(ndb_kv_backup(kv, b1, &bo, NULL, &msg), NDB_ECANCELED);
    struct stat sb;
    cr_assert_neq(stat(b1, &sb), 0, "a stopped backup left its directory");
    cr_assert_eq(ndb_kv_backup(kv, b1, NULL, NULL, &msg), NDB_OK, "%s", msg.text);
    char *l1 = path_in(b1, "BACKUP");
    cr_assert_eq(unlink(l1), 0);
    free(l1);
    assert_refused(b1, "incomplete");
    /* an archive cut short, at a header, inside an entry, and before its listing */
    char *a = path_in(bk, "a.tar");
    cr_assert_eq(archive_to(kv, a, NULL, NULL, &msg), NDB_OK, "%s", msg.text);
    stat(a, &sb);
    long cuts[] = {512, 512 + 300, sb.st_size - 2048 - 512};
    for (size_t i = 0; i < sizeof cuts / sizeof cuts[0]; i++) {
        char *c = path_in(bk, "cut.tar");
        char cmd[8400];
        snprintf(cmd, sizeof cmd, "head -c %ld '%s' > '%s'", cuts[i], a, c);
        cr_assert_eq(system(cmd), 0);
        assert_refused(c, "incomplete");
        unlink(c);
        free(c);
    }
    /* not empty targets */
    ndb_kv_options o = small_opts();
    (void)o;
    cr_assert_eq(ndb_kv_backup(kv, b1, NULL, NULL, &msg), NDB_EEXIST);
    char *full = path_in(bk, "full");
    cr_assert_eq(ndb_kv_backup(kv, full, NULL, NULL, &msg), NDB_OK, "%s", msg.text);
    cr_assert_eq(ndb_kv_restore(full, NULL, 0, src, NULL, NULL, NULL, &msg), NDB_EEXIST);
    cr_assert(strstr(msg.text, "not empty") != NULL, "%s", msg.text);
    cr_assert_eq(ndb_kv_close(kv), NDB_OK);
    free(full);
    free(a);
    free(b1);
    tu_rmdir(bk);
    tu_rmdir(src);
}

/* ---- SIGKILL during a backup */

Test(backup, sigkill_during_a_backup_leaves_both_recognisable, .timeout = 1000)
{
    const char *env = getenv("NDB_KV_BACKUP_KILLS");
    int kills = env ? atoi(env) : 5;
    char *src = tu_tmpdir("ksrc"), *bk = tu_tmpdir("kbk");
    ndb_kv_options o = small_opts();
    ndb_errmsg msg = {{0}};
    srand((unsigned)time(NULL));
    for (int k = 0; k < kills; k++) {
        char *b = malloc(4096);
        snprintf(b, 4096, "%s/b%d", bk, k);
        int fds[2];
        cr_assert_eq(pipe(fds), 0);
        pid_t pid = fork();
        cr_assert_geq(pid, 0);
        if (pid == 0) { /* writes, says so, then backs up slowly */
            close(fds[0]);
            ndb_kv *kv;
            if (ndb_kv_open(src, &o, &kv, NULL) != NDB_OK) _exit(3);
            char key[64];
            for (int i = 0; i < 500; i++) {
                snprintf(key, sizeof key, "k%d-%05d", k, i);
                if (ndb_kv_put(kv, key, strlen(key), key, strlen(key)) != NDB_OK) _exit(4);
            }
            if (write(fds[1], "w", 1) != 1) _exit(5);
            slow sl = {0};
            ndb_kv_backup_options bo = {.progress = slow_progress, .progress_arg = &sl};
            ndb_kv_backup(kv, b, &bo, NULL, NULL);
            _exit(0);
        }
        close(fds[1]);
        char c;
        cr_assert_eq(read(fds[0], &c, 1), 1, "the child died before its writes were acknowledged");
        close(fds[0]);
        struct timespec ts = {0, (long)(rand() % 60) * 1000 * 1000};
        nanosleep(&ts, NULL);
        kill(pid, SIGKILL);
        int status;
        waitpid(pid, &status, 0);
        if (WIFEXITED(status)) cr_assert_eq(WEXITSTATUS(status), 0, "child failed with %d", WEXITSTATUS(status));
        /* the database opens with everything written before the backup */
        ndb_kv *kv;
        cr_assert_eq(ndb_kv_open(src, &o, &kv, &msg), NDB_OK, "%s", msg.text);
        ndb_kv_close(kv);
        struct stat sb;
        char listing[4200];
        snprintf(listing, sizeof listing, "%s/BACKUP", b);
        if (stat(listing, &sb) == 0) { /* it finished before the kill: whole */
            cr_assert_eq(ndb_kv_backup_verify(b, NULL, 0, NULL, &msg), NDB_OK, "%s", msg.text);
        } else if (stat(b, &sb) == 0) {
            cr_assert_eq(ndb_kv_backup_verify(b, NULL, 0, NULL, &msg), NDB_ECORRUPT, "a partial backup passed");
            cr_assert(strstr(msg.text, "incomplete") != NULL, "%s", msg.text);
        }
        free(b);
    }
    /* every key of every round is there */
    ndb_kv *kv;
    cr_assert_eq(ndb_kv_open(src, &o, &kv, &msg), NDB_OK, "%s", msg.text);
    for (int k = 0; k < kills; k++)
        for (int i = 0; i < 500; i += 37) {
            char key[64];
            snprintf(key, sizeof key, "k%d-%05d", k, i);
            void *v;
            size_t vl;
            cr_assert_eq(ndb_kv_get(kv, NULL, key, strlen(key), &v, &vl), NDB_OK, "%s lost", key);
            free(v);
        }
    ndb_kv_close(kv);
    tu_rmdir(bk);
    tu_rmdir(src);
}
