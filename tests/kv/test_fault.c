/*
 * Fault tests: a torn or bit-flipped WAL tail, corrupted SSTable blocks,
 * failing fsync and write calls, and a simulated power cut that drops every
 * byte not fsync'd.
 */
#include <criterion/criterion.h>
#include <dirent.h>
#include <pthread.h>
#include <time.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "env.h"
#include "ndb_kv.h"
#include "testutil.h"

static char *dir;
static void setup(void) { dir = tu_tmpdir("fault"); }
static void teardown(void) { tu_rmdir(dir); }
TestSuite(fault, .init = setup, .fini = teardown, .timeout = 120);

static ndb_kv_options opts(ndb_kv_durability d)
{
    ndb_kv_options o;
    ndb_kv_options_init(&o);
    o.durability = d;
    o.memtable_bytes = 64 * 1024;
    o.sst_target_bytes = 64 * 1024;
    o.l1_max_bytes = 256 * 1024;
    return o;
}

static void kv_key(char *k, int i) { sprintf(k, "key%06d", i); }
static size_t kv_val(char *v, int i) { return (size_t)sprintf(v, "value-%d-%0*d", i, 20 + i % 30, i); }

static ndb_kv *open_or_die(const char *d, const ndb_kv_options *o, ndb_kv_recovery_info *info)
{
    ndb_kv *kv;
    ndb_errmsg msg = {{0}};
    ndb_status st = ndb_kv_open_ex(d, o, &kv, info, &msg);
    cr_assert_eq(st, NDB_OK, "open %s: %s %s", d, ndb_strerror(st), msg.text);
    return kv;
}

/* Returns the path of the only (or newest) file with extension ext. */
static void find_file(const char *d, const char *ext, char *out, size_t n)
{
    DIR *dd = opendir(d);
    struct dirent *de;
    unsigned long long best = 0;
    out[0] = 0;
    while ((de = readdir(dd)) != NULL) {
        unsigned long long num;
        char e[8];
        if (sscanf(de->d_name, "%llu.%7s", &num, e) == 2 && strcmp(e, ext) == 0 && num >= best) {
            best = num;
            snprintf(out, n, "%s/%s", d, de->d_name);
        }
    }
    closedir(dd);
}

static uint64_t file_size(const char *p)
{
    struct stat st;
    cr_assert_eq(stat(p, &st), 0);
    return (uint64_t)st.st_size;
}

/* Checks keys [0, n): a present key has its value; returns how many are present (a prefix). */
static int check_prefix(ndb_kv *kv, int n)
{
    char k[32], v[128];
    int present = 0, gap = 0;
    for (int i = 0; i < n; i++) {
        kv_key(k, i);
        void *got;
        size_t gl;
        ndb_status st = ndb_kv_get(kv, NULL, k, strlen(k), &got, &gl);
        if (st == NDB_ENOTFOUND) {
            gap = 1;
            continue;
        }
        cr_assert_eq(st, NDB_OK);
        cr_assert(!gap, "key %d present after a missing one: not point-in-time", i);
        size_t vl = kv_val(v, i);
        cr_assert(gl == vl && memcmp(got, v, vl) == 0, "key %d has a wrong value", i);
        free(got);
        present++;
    }
    return present;
}

#define NREC 50

/* Puts keys 0..n-1 (kv_key, kv_val), each acknowledged. */
static void put_first(ndb_kv *kv, int n)
{
    char k[32], v[128];
    for (int i = 0; i < n; i++) {
        kv_key(k, i);
        size_t vl = kv_val(v, i);
        cr_assert_eq(ndb_kv_put(kv, k, strlen(k), v, vl), NDB_OK);
    }
}

static void make_wal_db(char *pristine, char *wal, size_t n)
{
    ndb_kv_options o = opts(NDB_KV_NONE);
    o.memtable_bytes = 1 << 20;
    ndb_kv *kv = open_or_die(pristine, &o, NULL);
    put_first(kv, NREC);
    cr_assert_eq(ndb_kv_close(kv), NDB_OK);
    find_file(pristine, "wal", wal, n);
    cr_assert(wal[0]);
}

static void fresh_copy(const char *pristine, const char *work)
{
    char cmd[9000];
    snprintf(cmd, sizeof cmd, "rm -rf '%s' && cp -r '%s' '%s'", work, pristine, work);
    cr_assert_eq(system(cmd), 0, "%s", cmd);
}

Test(fault, wal_tail_truncated_at_every_offset)
{
    char pristine[4200], work[4200], wal[4400], wwal[8800];
    snprintf(pristine, sizeof pristine, "%s/pristine", dir);
    snprintf(work, sizeof work, "%s/work", dir);
    make_wal_db(pristine, wal, sizeof wal);
    uint64_t size = file_size(wal);
    char v[128];
    uint64_t last = 9 + 12 + 1 + 1 + 9 + 1 + kv_val(v, NREC - 1); /* header + batch of one put */
    for (uint64_t cut = size - last; cut < size; cut++) {
        fresh_copy(pristine, work);
        snprintf(wwal, sizeof wwal, "%s/%s", work, strrchr(wal, '/') + 1);
        cr_assert_eq(truncate(wwal, (off_t)cut), 0);
        ndb_kv_recovery_info info;
        ndb_kv_options o = opts(NDB_KV_NONE);
        ndb_kv *kv = open_or_die(work, &o, &info);
        int present = check_prefix(kv, NREC);
        cr_assert_eq(present, NREC - 1, "cut at %llu", (unsigned long long)cut);
        cr_assert_eq(info.tail_corrupt, cut != size - last);
        cr_assert_eq(info.wal_bytes_skipped, cut - (size - last));
        ndb_kv_close(kv);
    }
}

Test(fault, wal_bit_flips_never_return_wrong_data)
{
    char pristine[4200], work[4200], wal[4400], wwal[8800];
    snprintf(pristine, sizeof pristine, "%s/pristine", dir);
    snprintf(work, sizeof work, "%s/work", dir);
    make_wal_db(pristine, wal, sizeof wal);
    uint64_t size = file_size(wal);
    char v[128];
    uint64_t last = 9 + 12 + 1 + 1 + 9 + 1 + kv_val(v, NREC - 1);
    /* every byte of the last record, and some bytes of earlier records */
    for (uint64_t off = size - last * 3; off < size; off += (off < size - last ? 7 : 1)) {
        fresh_copy(pristine, work);
        snprintf(wwal, sizeof wwal, "%s/%s", work, strrchr(wal, '/') + 1);
        FILE *f = fopen(wwal, "r+b");
        fseek(f, (long)off, SEEK_SET);
        int c = fgetc(f);
        fseek(f, (long)off, SEEK_SET);
        fputc(c ^ (1 << (off % 8)), f);
        fclose(f);
        ndb_kv_recovery_info info;
        ndb_kv_options o = opts(NDB_KV_NONE);
        ndb_kv *kv = open_or_die(work, &o, &info);
        int present = check_prefix(kv, NREC);
        cr_assert_lt(present, NREC, "flip at %llu went unnoticed", (unsigned long long)off);
        cr_assert(info.tail_corrupt, "flip at %llu not reported", (unsigned long long)off);
        cr_assert_gt(info.wal_bytes_skipped, 0);
        ndb_kv_close(kv);
    }
}

Test(fault, corrupt_sstable_block_gives_ecorrupt)
{
    ndb_kv_options o = opts(NDB_KV_NONE);
    o.memtable_bytes = 1 << 20;
    o.block_cache_bytes = 0; /* every read goes to the file */
    ndb_kv *kv = open_or_die(dir, &o, NULL);
    char k[32];
    put_first(kv, 2000);
    cr_assert_eq(ndb_kv_flush(kv), NDB_OK);
    cr_assert_eq(ndb_kv_close(kv), NDB_OK);
    char sst[4400];
    find_file(dir, "sst", sst, sizeof sst);
    cr_assert(sst[0]);
    FILE *f = fopen(sst, "r+b");
    fseek(f, 50, SEEK_SET);
    fputc(0x5a ^ 0xff, f);
    fclose(f);
    kv = open_or_die(dir, &o, NULL);
    void *got;
    size_t gl;
    kv_key(k, 0);
    cr_assert_eq(ndb_kv_get(kv, NULL, k, strlen(k), &got, &gl), NDB_ECORRUPT);
    kv_key(k, 1999); /* a later block is intact */
    ndb_status gs = ndb_kv_get(kv, NULL, k, strlen(k), &got, &gl);
    cr_assert_eq(gs, NDB_OK, "%s: %s", ndb_strerror(gs), ndb_kv_last_error(kv));
    free(got);
    ndb_kv_iter *it;
    cr_assert_eq(ndb_kv_iter_new(kv, NULL, NULL, 0, NULL, 0, &it), NDB_OK);
    ndb_kv_iter_seek_first(it);
    cr_assert(!ndb_kv_iter_valid(it));
    cr_assert_eq(ndb_kv_iter_status(it), NDB_ECORRUPT);
    ndb_kv_iter_free(it);
    ndb_kv_close(kv);
}

static void poison_case(int fail_sync)
{
    kv_fault_env *fe = kv_env_fault_new(kv_env_posix());
    ndb_kv_options o = opts(NDB_KV_SYNC);
    o.env = kv_env_fault_env(fe);
    ndb_kv *kv = open_or_die(dir, &o, NULL);
    char k[32];
    put_first(kv, 100);
    if (fail_sync)
        kv_env_fault_fail_sync_after(fe, 1);
    else
        kv_env_fault_fail_append_after(fe, 1);
    kv_key(k, 100);
    ndb_status st = ndb_kv_put(kv, k, strlen(k), "x", 1);
    cr_assert_eq(st, NDB_EIO, "the failing write reports the I/O error (got %s)", ndb_strerror(st));
    kv_env_fault_fail_sync_after(fe, 0);
    kv_env_fault_fail_append_after(fe, 0);
    /* poisoned: the next fsync would succeed, but the engine never retries and pretends */
    kv_key(k, 101);
    cr_assert_eq(ndb_kv_put(kv, k, strlen(k), "x", 1), NDB_EPOISONED);
    cr_assert_eq(ndb_kv_delete(kv, k, strlen(k)), NDB_EPOISONED);
    cr_assert_eq(ndb_kv_flush(kv), NDB_EPOISONED);
    cr_assert(strstr(ndb_kv_last_error(kv), "poisoned") != NULL, "%s", ndb_kv_last_error(kv));
    ndb_kv_stats s;
    ndb_kv_stats_get(kv, &s);
    cr_assert_eq(s.poisoned, 1);
    cr_assert_eq(check_prefix(kv, 100), 100, "reads keep working");
    cr_assert_eq(ndb_kv_close(kv), NDB_EPOISONED);
    kv = open_or_die(dir, &o, NULL);
    cr_assert_eq(check_prefix(kv, 100), 100);
    kv_key(k, 101);
    cr_assert_eq(ndb_kv_put(kv, k, strlen(k), "x", 1), NDB_OK, "a reopen recovers");
    cr_assert_eq(ndb_kv_close(kv), NDB_OK);
    kv_env_fault_free(fe);
}

Test(fault, failed_fsync_poisons_until_reopen) { poison_case(1); }
Test(fault, failed_write_poisons_until_reopen) { poison_case(0); }

/* Child: writes with the fault env, then "loses power" while the engine's
 * background threads may still be flushing or compacting: every byte not
 * fsync'd is dropped and the disk is frozen from that instant. Reports how
 * many writes were acknowledged. */
static int power_cut_child(const char *d, ndb_kv_durability dur, int n, int pipefd)
{
    kv_fault_env *fe = kv_env_fault_new(kv_env_posix());
    ndb_kv_options o = opts(dur);
    o.env = kv_env_fault_env(fe);
    ndb_kv *kv;
    ndb_errmsg msg;
    if (ndb_kv_open(d, &o, &kv, &msg) != NDB_OK) return 2;
    char k[32], v[128];
    int acked = 0;
    for (int i = 0; i < n; i++) {
        kv_key(k, i);
        size_t vl = kv_val(v, i);
        if (ndb_kv_put(kv, k, strlen(k), v, vl) != NDB_OK) break;
        acked++;
    }
    if (write(pipefd, &acked, sizeof acked) != sizeof acked) return 3;
    if (kv_env_fault_power_cut(fe) != NDB_OK) return 4;
    return 0; /* exit without closing: the handle dies with the process */
}

static void power_cut_case(ndb_kv_durability dur)
{
    int p[2];
    cr_assert_eq(pipe(p), 0);
    pid_t pid = fork();
    if (pid == 0) _exit(power_cut_child(dir, dur, 3000, p[1]));
    close(p[1]);
    int acked = -1;
    ssize_t got = read(p[0], &acked, sizeof acked);
    int status;
    waitpid(pid, &status, 0);
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child status %d", status);
    cr_assert_eq(got, (ssize_t)sizeof acked);
    close(p[0]);
    ndb_kv_options o = opts(dur);
    ndb_kv *kv = open_or_die(dir, &o, NULL);
    int present = check_prefix(kv, 3000);
    if (dur == NDB_KV_SYNC) cr_assert_eq(present, acked, "sync mode lost acknowledged writes");
    ndb_kv_close(kv);
}

Test(fault, power_cut_sync_mode_keeps_every_ack) { power_cut_case(NDB_KV_SYNC); }
Test(fault, power_cut_none_mode_recovers_a_prefix) { power_cut_case(NDB_KV_NONE); }

static void find_manifest(const char *d, char *out, size_t n)
{
    DIR *dd = opendir(d);
    struct dirent *de;
    out[0] = 0;
    while ((de = readdir(dd)) != NULL)
        if (strncmp(de->d_name, "MANIFEST-", 9) == 0) snprintf(out, n, "%s/%s", d, de->d_name);
    closedir(dd);
}

Test(fault, corrupt_current_or_manifest_fails_open_cleanly)
{
    ndb_kv_options o = opts(NDB_KV_NONE);
    char db[4200];
    snprintf(db, sizeof db, "%s/db", dir);
    ndb_kv *kv = open_or_die(db, &o, NULL);
    put_first(kv, 500);
    cr_assert_eq(ndb_kv_flush(kv), NDB_OK);
    cr_assert_eq(ndb_kv_close(kv), NDB_OK);
    char work[4200], man[8800], cur[4400];
    snprintf(work, sizeof work, "%s/work", dir);
    /* A flipped byte in the manifest: inside its first (snapshot) record the
     * open must fail with NDB_ECORRUPT; in the last record a flipped length
     * is indistinguishable from an append cut short (then that edit is
     * dropped), so there the open may also succeed, but reads must never
     * return wrong data. */
    find_manifest(db, man, sizeof man);
    uint64_t msize = file_size(man);
    FILE *mf = fopen(man, "rb");
    unsigned char hdr[9];
    cr_assert_eq(fread(hdr, 1, 9, mf), 9);
    fclose(mf);
    uint64_t first = 9 + (uint64_t)(hdr[4] | hdr[5] << 8 | hdr[6] << 16 | (uint32_t)hdr[7] << 24);
    for (uint64_t off = 0; off < msize; off++) {
        char cmd[20000];
        snprintf(cmd, sizeof cmd, "rm -rf '%s' && mkdir '%s' && cp '%s'/* '%s'/", work, work, db, work);
        cr_assert_eq(system(cmd), 0);
        find_manifest(work, man, sizeof man);
        FILE *f = fopen(man, "r+b");
        fseek(f, (long)off, SEEK_SET);
        int c = fgetc(f);
        fseek(f, (long)off, SEEK_SET);
        fputc(c ^ 0x10, f);
        fclose(f);
        ndb_kv *bad = NULL;
        ndb_errmsg msg = {{0}};
        ndb_status st = ndb_kv_open(work, &o, &bad, &msg);
        if (off < first) cr_assert_eq(st, NDB_ECORRUPT, "flip at %llu: %s", (unsigned long long)off, ndb_strerror(st));
        if (st == NDB_OK) {
            check_prefix(bad, 500); /* present keys carry their own values */
            ndb_kv_close(bad);
        } else {
            cr_assert_eq(st, NDB_ECORRUPT);
            cr_assert(msg.text[0] != 0);
        }
    }
    /* garbage in CURRENT */
    snprintf(cur, sizeof cur, "%s/CURRENT", db);
    FILE *f = fopen(cur, "wb");
    fputs("MANIFEST-zz\n", f);
    fclose(f);
    ndb_kv *bad = NULL;
    ndb_errmsg msg = {{0}};
    cr_assert_eq(ndb_kv_open(db, &o, &bad, &msg), NDB_ECORRUPT);
}

/* Power cuts at random moments while a writer runs in sync mode with tiny
 * memtables (flushes, compactions and manifest edits in flight): after each
 * cut every acknowledged write must be there, across repeated cuts. */
typedef struct cut_arg {
    kv_fault_env *fe;
    int delay_us;
} cut_arg;

static void *cutter(void *p)
{
    cut_arg *a = p;
    usleep((useconds_t)a->delay_us);
    kv_env_fault_power_cut(a->fe);
    return NULL;
}

Test(fault, power_cuts_at_random_moments_keep_every_ack)
{
    srand((unsigned)time(NULL));
    int total = 0, acks[20];
    for (int round = 0; round < 20; round++) {
        int p[2];
        cr_assert_eq(pipe(p), 0);
        int delay = 5000 + rand() % 75000;
        pid_t pid = fork();
        if (pid == 0) {
            kv_fault_env *fe = kv_env_fault_new(kv_env_posix());
            ndb_kv_options o = opts(NDB_KV_SYNC);
            o.memtable_bytes = 16 * 1024;
            o.sst_target_bytes = 16 * 1024;
            o.l1_max_bytes = 32 * 1024;
            o.l0_compaction_trigger = 2;
            o.env = kv_env_fault_env(fe);
            ndb_kv *kv;
            ndb_errmsg msg;
            if (ndb_kv_open(dir, &o, &kv, &msg) != NDB_OK) _exit(2);
            cut_arg a = {fe, delay};
            pthread_t t;
            pthread_create(&t, NULL, cutter, &a);
            char k[32], v[128];
            int acked = 0;
            for (int i = round * 100000;; i++) { /* keys of this round; older rounds' keys stay */
                kv_key(k, i);
                size_t vl = kv_val(v, i);
                if (ndb_kv_put(kv, k, strlen(k), v, vl) != NDB_OK) break;
                acked++;
            }
            pthread_join(t, NULL);
            if (write(p[1], &acked, sizeof acked) != sizeof acked) _exit(3);
            _exit(0);
        }
        close(p[1]); /* so a child that dies early gives EOF, not a hang */
        int acked = -1;
        ssize_t got = read(p[0], &acked, sizeof acked);
        int status;
        waitpid(pid, &status, 0);
        close(p[0]);
        cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "round %d: child status %d (signal %d)", round,
                  status, WIFSIGNALED(status) ? WTERMSIG(status) : 0);
        cr_assert_eq(got, (ssize_t)sizeof acked);
        acks[round] = acked;
        ndb_kv_options o = opts(NDB_KV_SYNC);
        ndb_kv *kv = open_or_die(dir, &o, NULL);
        char k[32], v[128];
        for (int r = 0; r <= round; r++) { /* every round's acked prefix is still complete */
            int i = r * 100000;
            for (;; i++) {
                kv_key(k, i);
                void *got;
                size_t gl;
                ndb_status st = ndb_kv_get(kv, NULL, k, strlen(k), &got, &gl);
                if (st == NDB_ENOTFOUND) break;
                cr_assert_eq(st, NDB_OK, "round %d key %d: %s", round, i, ndb_strerror(st));
                size_t vl = kv_val(v, i);
                cr_assert(gl == vl && memcmp(got, v, vl) == 0, "round %d key %d: wrong value", round, i);
                free(got);
            }
            cr_assert_geq(i - r * 100000, acks[r], "after cut %d, round %d: %d acked, %d present", round, r, acks[r],
                          i - r * 100000);
        }
        total += acked;
        ndb_kv_close(kv);
    }
    cr_log_info("power cuts: %d acknowledged writes verified", total);
}

/* Each of the first fsyncs of a store that flushes and compacts fails in
 * turn (a table's, a directory's, the manifest's). Whatever was recording a
 * flush or a compaction then, the next open finds every table its manifest
 * names and every acknowledged write (NDB_KV_NONE, no power cut: the page
 * cache keeps the log). */
Test(fault, a_failed_fsync_anywhere_leaves_a_store_that_opens)
{
    char k[32], v[128];
    for (uint64_t n = 1; n <= 60; n++) {
        char sub[4200];
        snprintf(sub, sizeof sub, "%s/%llu", dir, (unsigned long long)n);
        kv_fault_env *fe = kv_env_fault_new(kv_env_posix());
        ndb_kv_options o = opts(NDB_KV_NONE);
        o.env = kv_env_fault_env(fe);
        ndb_kv *kv = open_or_die(sub, &o, NULL);
        kv_env_fault_fail_sync_after(fe, n);
        int acked = 0;
        for (int i = 0; i < 20000; i++) {
            kv_key(k, i);
            size_t vl = kv_val(v, i);
            if (ndb_kv_put(kv, k, strlen(k), v, vl) != NDB_OK)
                break;
            acked++;
        }
        ndb_kv_flush(kv); /* may fail: the engine is poisoned by then */
        ndb_kv_close(kv);
        kv_env_fault_free(fe);
        o.env = NULL;
        kv = open_or_die(sub, &o, NULL);
        cr_assert_geq(check_prefix(kv, 20000), acked, "fsync %llu failed: acknowledged writes lost",
                      (unsigned long long)n);
        cr_assert_eq(ndb_kv_close(kv), NDB_OK);
    }
}

/* An open writes a new manifest and points CURRENT at it (manifest fsync, CURRENT.tmp fsync,
 * rename, directory fsync). Whichever of those fsyncs fails, the open fails cleanly and the next
 * one finds every write: a failure after the rename must not delete the manifest CURRENT now
 * names. */
Test(fault, a_failed_fsync_while_switching_manifests_leaves_a_store_that_opens)
{
    ndb_kv_options o = opts(NDB_KV_SYNC);
    ndb_kv *kv = open_or_die(dir, &o, NULL);
    put_first(kv, 500);
    cr_assert_eq(ndb_kv_flush(kv), NDB_OK);
    cr_assert_eq(ndb_kv_close(kv), NDB_OK);
    int failed_opens = 0;
    for (uint64_t n = 1; n <= 12; n++) {
        kv_fault_env *fe = kv_env_fault_new(kv_env_posix());
        ndb_kv_options fo = opts(NDB_KV_SYNC);
        fo.env = kv_env_fault_env(fe);
        kv_env_fault_fail_sync_after(fe, n);
        ndb_errmsg msg = {{0}};
        if (ndb_kv_open(dir, &fo, &kv, &msg) == NDB_OK)
            ndb_kv_close(kv); /* the failed fsync came after the switch: closing may report it */
        else
            failed_opens++;
        kv_env_fault_free(fe);
        kv = open_or_die(dir, &o, NULL);
        cr_assert_eq(check_prefix(kv, 500), 500, "fsync %llu of an open failed: writes lost", (unsigned long long)n);
        cr_assert_eq(ndb_kv_close(kv), NDB_OK);
    }
    cr_assert_geq(failed_opens, 3, "the manifest switch's fsyncs were not among the failed ones");
}

/* ---- Health and resume after a full disk (ENOSPC) or a failed fsync (EIO). */

/* A failed fsync (EIO) poisons for good: the page cache no longer says what
 * is on disk (fsyncgate), so ndb_kv_resume refuses and the cause is named. */
Test(fault, fsync_eio_poison_is_permanent)
{
    kv_fault_env *fe = kv_env_fault_new(kv_env_posix());
    ndb_kv_options o = opts(NDB_KV_SYNC);
    o.env = kv_env_fault_env(fe);
    ndb_kv *kv = open_or_die(dir, &o, NULL);
    ndb_kv_health h;
    ndb_kv_health_get(kv, &h);
    cr_assert_eq(h.poisoned, 0);
    cr_assert_eq(h.cause, NDB_OK);
    cr_assert_str_empty(h.reason);
    cr_assert_eq(ndb_kv_put(kv, "a", 1, "1", 1), NDB_OK);
    kv_env_fault_fail_sync_after(fe, 1);
    cr_assert_eq(ndb_kv_put(kv, "b", 1, "2", 1), NDB_EIO);
    kv_env_fault_fail_sync_after(fe, 0);
    ndb_kv_health_get(kv, &h);
    cr_assert_eq(h.poisoned, 1);
    cr_assert_eq(h.cause, NDB_EIO);
    cr_assert_eq(h.recoverable, 0);
    cr_assert(strstr(h.reason, "WAL fsync failed") && strstr(h.reason, "EIO"), "%s", h.reason);
    cr_assert(strstr(ndb_kv_last_error(kv), "reopen"), "%s", ndb_kv_last_error(kv));
    ndb_errmsg msg = {{0}};
    cr_assert_eq(ndb_kv_resume(kv, &msg), NDB_EPOISONED);
    cr_assert(strstr(msg.text, "EIO"), "%s", msg.text);
    cr_assert_eq(ndb_kv_put(kv, "c", 1, "3", 1), NDB_EPOISONED);
    ndb_kv_health_get(kv, &h);
    cr_assert_eq(h.poisoned, 1);
    cr_assert_eq(ndb_kv_close(kv), NDB_EPOISONED);
    kv_env_fault_free(fe);
}

/* Key i of the full-disk tests is written by batch i / 4, four keys a batch. */
#define FULL_BATCH 4

/* Writes batch b (keys b*4 .. b*4+3); returns the write's status. */
static ndb_status write_batch(ndb_kv *kv, int b)
{
    ndb_kv_batch *batch;
    cr_assert_eq(ndb_kv_batch_new(&batch), NDB_OK);
    char k[32], v[128];
    for (int i = b * FULL_BATCH; i < (b + 1) * FULL_BATCH; i++) {
        kv_key(k, i);
        size_t vl = kv_val(v, i);
        cr_assert_eq(ndb_kv_batch_put(batch, k, strlen(k), v, vl), NDB_OK);
    }
    ndb_status st = ndb_kv_write(kv, batch);
    ndb_kv_batch_free(batch);
    return st;
}

/* Every key of every batch acked[b] != 0 is present with its value; every
 * batch written and not acknowledged is wholly absent. */
static void check_batches(ndb_kv *kv, const char *acked, int nbatches, const char *when)
{
    char k[32], v[128];
    for (int b = 0; b < nbatches; b++)
        for (int i = b * FULL_BATCH; i < (b + 1) * FULL_BATCH; i++) {
            kv_key(k, i);
            void *got;
            size_t gl;
            ndb_status st = ndb_kv_get(kv, NULL, k, strlen(k), &got, &gl);
            if (!acked[b]) {
                cr_assert_eq(st, NDB_ENOTFOUND, "%s: key %d of unacknowledged batch %d is there (%s)", when, i, b,
                             ndb_strerror(st));
                continue;
            }
            cr_assert_eq(st, NDB_OK, "%s: key %d of acknowledged batch %d: %s", when, i, b, ndb_strerror(st));
            size_t vl = kv_val(v, i);
            cr_assert(gl == vl && memcmp(got, v, vl) == 0, "%s: key %d has a wrong value", when, i);
            free(got);
        }
}

/* The disk fills mid-way (appends cut short with ENOSPC, in the WAL, a flush
 * or a compaction: the memtable is small), the engine is poisoned with a
 * recoverable ENOSPC and keeps serving reads, a resume while the disk is
 * still full fails and changes nothing, space is freed, a resume lifts the
 * poison, more writes go in; after a reopen and after a power cut every
 * acknowledged batch is there and no failed one, not even in part. */
static void full_disk_case(ndb_kv_durability d)
{
    kv_fault_env *fe = kv_env_fault_new(kv_env_posix());
    ndb_kv_options o = opts(d);
    o.env = kv_env_fault_env(fe);
    ndb_kv *kv = open_or_die(dir, &o, NULL);
    enum { NB = 1200, FILL_AT = 500, FREE_AT = 700 };
    static char acked[NB];
    memset(acked, 0, sizeof acked);
    int first_fail = -1;
    for (int b = 0; b < NB; b++) {
        if (b == FILL_AT) kv_env_fault_set_full(fe, 1);
        if (b == FREE_AT) {
            ndb_kv_health h;
            ndb_kv_health_get(kv, &h);
            cr_assert_eq(h.poisoned, 1, "the disk filled at batch %d", FILL_AT);
            cr_assert_eq(h.cause, NDB_ENOSPC, "%s", ndb_strerror(h.cause));
            cr_assert_eq(h.recoverable, 1);
            cr_assert(strstr(h.reason, "no space left on device (ENOSPC)"), "%s", h.reason);
            check_batches(kv, acked, b, "poisoned");
            ndb_errmsg msg = {{0}};
            cr_assert_eq(ndb_kv_resume(kv, &msg), NDB_ENOSPC, "resume on a full disk: %s", msg.text);
            ndb_kv_health_get(kv, &h);
            cr_assert_eq(h.poisoned, 1);
            cr_assert_eq(h.recoverable, 1);
            kv_env_fault_set_full(fe, 0);
            ndb_status rs = ndb_kv_resume(kv, &msg);
            cr_assert_eq(rs, NDB_OK, "resume once space is freed: %s %s", ndb_strerror(rs), msg.text);
            ndb_kv_health_get(kv, &h);
            cr_assert_eq(h.poisoned, 0, "%s", h.reason);
            cr_assert_eq(ndb_kv_resume(kv, NULL), NDB_OK, "a second resume has nothing to do");
        }
        if (b == FREE_AT + 3) {
            /* a crash (in sync mode a power cut) soon after: the segment the
             * full disk cut short is still needed, and must end in a whole record */
            cr_assert_eq(ndb_kv_close(kv), NDB_OK);
            if (d == NDB_KV_SYNC) cr_assert_eq(kv_env_fault_drop_unsynced(fe), NDB_OK);
            ndb_kv_recovery_info info;
            kv = open_or_die(dir, &o, &info);
            cr_assert_eq(info.tail_corrupt, 0, "no segment ends in half a record");
            check_batches(kv, acked, b, "reopened after resuming");
        }
        ndb_status st = write_batch(kv, b);
        if (b < FILL_AT || b >= FREE_AT) {
            cr_assert_eq(st, NDB_OK, "batch %d: %s (%s)", b, ndb_strerror(st), ndb_kv_last_error(kv));
        } else if (st != NDB_OK) {
            cr_assert(st == NDB_ENOSPC || st == NDB_EPOISONED, "batch %d: %s", b, ndb_strerror(st));
            if (first_fail < 0) first_fail = b;
        }
        acked[b] = st == NDB_OK;
    }
    cr_assert(first_fail >= FILL_AT, "no write failed on the full disk");
    check_batches(kv, acked, NB, "running");
    cr_assert_eq(ndb_kv_close(kv), NDB_OK);
    ndb_kv_recovery_info info;
    kv = open_or_die(dir, &o, &info);
    cr_assert_eq(info.tail_corrupt, 0, "no segment ends in half a record");
    check_batches(kv, acked, NB, "reopened");
    cr_assert_eq(ndb_kv_close(kv), NDB_OK);
    if (d == NDB_KV_SYNC) { /* acknowledged means fsync'd: a power cut keeps it all */
        cr_assert_eq(kv_env_fault_drop_unsynced(fe), NDB_OK);
        kv = open_or_die(dir, &o, NULL);
        check_batches(kv, acked, NB, "after a power cut");
        cr_assert_eq(ndb_kv_close(kv), NDB_OK);
    }
    kv_env_fault_free(fe);
}

Test(fault, full_disk_then_space_freed_sync) { full_disk_case(NDB_KV_SYNC); }
Test(fault, full_disk_then_space_freed_interval) { full_disk_case(NDB_KV_INTERVAL); }
Test(fault, full_disk_then_space_freed_none) { full_disk_case(NDB_KV_NONE); }

/* A disk that is full when the engine opens: the open must not need space.
 * It replays the WAL into memory, serves reads, refuses writes with a
 * recoverable ENOSPC, and finishes the open once space is freed. */
Test(fault, open_on_full_disk)
{
    kv_fault_env *fe = kv_env_fault_new(kv_env_posix());
    ndb_kv_options o = opts(NDB_KV_SYNC);
    o.memtable_bytes = 1 << 20; /* everything stays in the WAL */
    o.env = kv_env_fault_env(fe);
    ndb_kv *kv = open_or_die(dir, &o, NULL);
    enum { NB = 300 };
    static char acked[NB];
    memset(acked, 0, sizeof acked);
    for (int b = 0; b < NB / 2; b++) {
        cr_assert_eq(write_batch(kv, b), NDB_OK);
        acked[b] = 1;
    }
    cr_assert_eq(ndb_kv_close(kv), NDB_OK);
    kv_env_fault_set_full(fe, 1);
    ndb_kv_recovery_info info;
    kv = open_or_die(dir, &o, &info);
    cr_assert_eq(info.wal_records, NB / 2);
    ndb_kv_health h;
    ndb_kv_health_get(kv, &h);
    cr_assert_eq(h.poisoned, 1);
    cr_assert_eq(h.cause, NDB_ENOSPC);
    cr_assert_eq(h.recoverable, 1);
    cr_assert(strstr(h.reason, "open") && strstr(h.reason, "ENOSPC"), "%s", h.reason);
    check_batches(kv, acked, NB, "opened on a full disk");
    cr_assert_eq(write_batch(kv, NB / 2), NDB_EPOISONED);
    cr_assert_eq(ndb_kv_flush(kv), NDB_EPOISONED);
    cr_assert_eq(ndb_kv_resume(kv, NULL), NDB_ENOSPC);
    cr_assert_eq(ndb_kv_close(kv), NDB_EPOISONED, "closed before space came back");
    kv = open_or_die(dir, &o, NULL); /* and opened again, still full */
    check_batches(kv, acked, NB, "reopened on a full disk");
    kv_env_fault_set_full(fe, 0);
    ndb_errmsg msg = {{0}};
    cr_assert_eq(ndb_kv_resume(kv, &msg), NDB_OK, "%s", msg.text);
    ndb_kv_health_get(kv, &h);
    cr_assert_eq(h.poisoned, 0);
    check_batches(kv, acked, NB, "resumed");
    for (int b = NB / 2; b < NB; b++) {
        cr_assert_eq(write_batch(kv, b), NDB_OK);
        acked[b] = 1;
    }
    cr_assert_eq(ndb_kv_flush(kv), NDB_OK);
    cr_assert_eq(ndb_kv_close(kv), NDB_OK);
    cr_assert_eq(kv_env_fault_drop_unsynced(fe), NDB_OK);
    kv = open_or_die(dir, &o, &info);
    cr_assert_eq(info.tail_corrupt, 0);
    check_batches(kv, acked, NB, "reopened after resuming");
    cr_assert_eq(ndb_kv_close(kv), NDB_OK);
    kv_env_fault_free(fe);
}
