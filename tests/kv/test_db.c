/* End-to-end API tests of engine/kv (ndb_kv.h). */
#include <criterion/criterion.h>
#include <dirent.h>
#include <pthread.h>
#include <sys/stat.h>
#include <unistd.h>

#include "db.h" /* the engine's mutex, for try_get */
#include "ndb_kv.h"
#include "testutil.h"

static char *dir;
static ndb_kv *kv;

static void small_opts(ndb_kv_options *o)
{
    ndb_kv_options_init(o);
    o->durability = NDB_KV_NONE;
    o->memtable_bytes = 64 * 1024;
    o->sst_target_bytes = 64 * 1024;
    o->l1_max_bytes = 256 * 1024;
    o->block_cache_bytes = 1 << 20;
}

static void open_db(const ndb_kv_options *o)
{
    ndb_errmsg msg = {{0}};
    ndb_status st = ndb_kv_open(dir, o, &kv, &msg);
    cr_assert_eq(st, NDB_OK, "open: %s %s", ndb_strerror(st), msg.text);
}

static void setup(void)
{
    dir = tu_tmpdir("db");
    cr_assert_not_null(dir);
    ndb_kv_options o;
    small_opts(&o);
    open_db(&o);
}
static void teardown(void)
{
    ndb_kv_close(kv);
    tu_rmdir(dir);
}

static void expect(const char *k, const char *v)
{
    void *got = NULL;
    size_t n = 0;
    ndb_status st = ndb_kv_get(kv, NULL, k, strlen(k), &got, &n);
    if (v == NULL) {
        cr_assert_eq(st, NDB_ENOTFOUND, "key %s: expected absent, got %s", k, ndb_strerror(st));
        return;
    }
    cr_assert_eq(st, NDB_OK, "key %s: %s", k, ndb_strerror(st));
    cr_assert_eq(n, strlen(v));
    cr_assert(memcmp(got, v, n) == 0);
    free(got);
}

TestSuite(db, .init = setup, .fini = teardown, .timeout = 60);

/* Keys of one iteration joined by ',' into buf. */
static void collect(ndb_kv_iter *it, char *buf, size_t cap)
{
    size_t n = 0;
    buf[0] = 0;
    for (ndb_kv_iter_seek_first(it); ndb_kv_iter_valid(it); ndb_kv_iter_next(it)) {
        size_t kl;
        const char *k = ndb_kv_iter_key(it, &kl);
        cr_assert(n + kl + 2 < cap);
        if (n) buf[n++] = ',';
        memcpy(buf + n, k, kl);
        n += kl;
        buf[n] = 0;
    }
    cr_assert_eq(ndb_kv_iter_status(it), NDB_OK);
}

/* A bounded iterator leaves out tables wholly outside its bounds and an
 * empty memtable; what it sees must not change. */
Test(db, bounded_iter_over_disjoint_tables)
{
    const char *groups[] = {"a", "b", "c"};
    for (int g = 0; g < 3; g++) { /* one L0 file per prefix */
        for (int i = 0; i < 5; i++) {
            char k[8];
            snprintf(k, sizeof k, "%s%d", groups[g], i);
            cr_assert_eq(ndb_kv_put(kv, k, strlen(k), "v", 1), NDB_OK);
        }
        cr_assert_eq(ndb_kv_flush(kv), NDB_OK);
    }
    cr_assert_eq(ndb_kv_delete(kv, "b2", 2), NDB_OK); /* a tombstone in a newer file */
    cr_assert_eq(ndb_kv_flush(kv), NDB_OK);           /* memtable now empty */
    ndb_kv_iter *it;
    char got[256];
    cr_assert_eq(ndb_kv_iter_new(kv, NULL, "b", 1, "c", 1, &it), NDB_OK);
    collect(it, got, sizeof got);
    cr_assert_str_eq(got, "b0,b1,b3,b4");
    /* created over an empty memtable: later writes stay invisible */
    cr_assert_eq(ndb_kv_put(kv, "b5", 2, "v", 1), NDB_OK);
    collect(it, got, sizeof got);
    cr_assert_str_eq(got, "b0,b1,b3,b4");
    ndb_kv_iter_free(it);
    cr_assert_eq(ndb_kv_iter_new(kv, NULL, "a3", 2, "b1", 2, &it), NDB_OK);
    collect(it, got, sizeof got);
    cr_assert_str_eq(got, "a3,a4,b0");
    ndb_kv_iter_free(it);
    cr_assert_eq(ndb_kv_iter_new(kv, NULL, "c9", 2, "d", 1, &it), NDB_OK); /* past every file */
    collect(it, got, sizeof got);
    cr_assert_str_eq(got, "");
    ndb_kv_iter_free(it);
    cr_assert_eq(ndb_kv_compact_range(kv, NULL, 0, NULL, 0), NDB_OK); /* now in L1+ */
    cr_assert_eq(ndb_kv_iter_new(kv, NULL, "b", 1, "b5", 2, &it), NDB_OK);
    collect(it, got, sizeof got);
    cr_assert_str_eq(got, "b0,b1,b3,b4");
    ndb_kv_iter_free(it);
}

Test(db, put_get_delete)
{
    cr_assert_eq(ndb_kv_put(kv, "a", 1, "1", 1), NDB_OK);
    cr_assert_eq(ndb_kv_put(kv, "b", 1, "2", 1), NDB_OK);
    cr_assert_eq(ndb_kv_put(kv, "", 0, "empty", 5), NDB_OK);
    expect("a", "1");
    expect("b", "2");
    expect("", "empty");
    expect("c", NULL);
    cr_assert_eq(ndb_kv_put(kv, "a", 1, "3", 1), NDB_OK);
    expect("a", "3");
    cr_assert_eq(ndb_kv_delete(kv, "a", 1), NDB_OK);
    expect("a", NULL);
    cr_assert_eq(ndb_kv_put(kv, "e", 1, "", 0), NDB_OK);
    expect("e", "");
}

/* try_get answers like get, except that it will not wait for the engine's
 * lock: while another thread holds it, NDB_EBUSY and nothing returned. */
Test(db, try_get_never_waits)
{
    cr_assert_eq(ndb_kv_put(kv, "k", 1, "v", 1), NDB_OK);
    void *v = NULL;
    size_t n = 0;
    cr_assert_eq(ndb_kv_try_get(kv, NULL, "k", 1, &v, &n), NDB_OK);
    cr_assert(n == 1 && memcmp(v, "v", 1) == 0);
    free(v);
    cr_assert_eq(ndb_kv_try_get(kv, NULL, "absent", 6, &v, &n), NDB_ENOTFOUND);
    pthread_mutex_lock(&kv->mu);
    v = NULL;
    cr_assert_eq(ndb_kv_try_get(kv, NULL, "k", 1, &v, &n), NDB_EBUSY);
    cr_assert_null(v);
    pthread_mutex_unlock(&kv->mu);
    cr_assert_eq(ndb_kv_try_get(kv, NULL, "k", 1, &v, &n), NDB_OK);
    free(v);
}

Test(db, bad_args)
{
    void *v;
    size_t n;
    cr_assert_eq(ndb_kv_put(NULL, "a", 1, "1", 1), NDB_EINVAL);
    cr_assert_eq(ndb_kv_put(kv, NULL, 3, "1", 1), NDB_EINVAL);
    cr_assert_eq(ndb_kv_get(kv, NULL, "a", 1, NULL, &n), NDB_EINVAL);
    char *big = calloc(1, NDB_KV_MAX_KEY + 1);
    cr_assert_eq(ndb_kv_put(kv, big, NDB_KV_MAX_KEY + 1, "1", 1), NDB_ETOOBIG);
    cr_assert_eq(ndb_kv_get(kv, NULL, big, NDB_KV_MAX_KEY + 1, &v, &n), NDB_ENOTFOUND);
    free(big);
}

Test(db, reopen_recovers_from_wal_and_tables)
{
    char k[32], v[64];
    for (int i = 0; i < 5000; i++) {
        snprintf(k, sizeof k, "key%06d", i);
        snprintf(v, sizeof v, "value-%d-xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx", i);
        cr_assert_eq(ndb_kv_put(kv, k, strlen(k), v, strlen(v)), NDB_OK);
    }
    for (int i = 0; i < 5000; i += 7) {
        snprintf(k, sizeof k, "key%06d", i);
        cr_assert_eq(ndb_kv_delete(kv, k, strlen(k)), NDB_OK);
    }
    ndb_kv_stats s;
    ndb_kv_stats_get(kv, &s);
    cr_assert_gt(s.flushes, 0, "small memtable must have flushed");
    cr_assert_eq(ndb_kv_close(kv), NDB_OK);
    ndb_kv_options o;
    small_opts(&o);
    open_db(&o);
    for (int i = 0; i < 5000; i++) {
        snprintf(k, sizeof k, "key%06d", i);
        snprintf(v, sizeof v, "value-%d-xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx", i);
        expect(k, i % 7 == 0 ? NULL : v);
    }
}

Test(db, batch_is_atomic_and_ordered)
{
    ndb_kv_batch *b;
    cr_assert_eq(ndb_kv_batch_new(&b), NDB_OK);
    ndb_kv_batch_put(b, "x", 1, "1", 1);
    ndb_kv_batch_put(b, "y", 1, "2", 1);
    ndb_kv_batch_delete(b, "x", 1);
    ndb_kv_batch_put(b, "z", 1, "3", 1);
    cr_assert_eq(ndb_kv_batch_count(b), 4);
    cr_assert_eq(ndb_kv_write(kv, b), NDB_OK);
    expect("x", NULL);
    expect("y", "2");
    expect("z", "3");
    ndb_kv_batch_clear(b);
    cr_assert_eq(ndb_kv_batch_count(b), 0);
    cr_assert_eq(ndb_kv_write(kv, b), NDB_OK);
    ndb_kv_batch_free(b);
}

Test(db, snapshot_isolation)
{
    ndb_kv_put(kv, "k", 1, "old", 3);
    ndb_kv_snapshot *s;
    cr_assert_eq(ndb_kv_snapshot_acquire(kv, &s), NDB_OK);
    ndb_kv_put(kv, "k", 1, "new", 3);
    ndb_kv_put(kv, "k2", 2, "x", 1);
    void *v;
    size_t n;
    cr_assert_eq(ndb_kv_get(kv, s, "k", 1, &v, &n), NDB_OK);
    cr_assert(n == 3 && memcmp(v, "old", 3) == 0);
    free(v);
    cr_assert_eq(ndb_kv_get(kv, s, "k2", 2, &v, &n), NDB_ENOTFOUND);
    /* survives flush and compaction */
    cr_assert_eq(ndb_kv_compact_range(kv, NULL, 0, NULL, 0), NDB_OK);
    cr_assert_eq(ndb_kv_get(kv, s, "k", 1, &v, &n), NDB_OK);
    cr_assert(n == 3 && memcmp(v, "old", 3) == 0);
    free(v);
    expect("k", "new");
    ndb_kv_snapshot_release(kv, s);
}

Test(db, iterate_with_bounds_both_directions)
{
    char k[16];
    for (int i = 0; i < 100; i++) {
        snprintf(k, sizeof k, "k%03d", i);
        ndb_kv_put(kv, k, strlen(k), k, strlen(k));
    }
    for (int i = 0; i < 100; i += 10) {
        snprintf(k, sizeof k, "k%03d", i);
        ndb_kv_delete(kv, k, strlen(k));
    }
    ndb_kv_flush(kv);
    for (int i = 1; i < 100; i += 10) { /* newer versions in the memtable */
        snprintf(k, sizeof k, "k%03d", i);
        ndb_kv_put(kv, k, strlen(k), "new", 3);
    }
    ndb_kv_iter *it;
    cr_assert_eq(ndb_kv_iter_new(kv, NULL, "k020", 4, "k050", 4, &it), NDB_OK);
    int count = 0;
    char prev[16] = "";
    for (ndb_kv_iter_seek_first(it); ndb_kv_iter_valid(it); ndb_kv_iter_next(it)) {
        size_t kl, vl;
        const char *key = ndb_kv_iter_key(it, &kl);
        const char *val = ndb_kv_iter_value(it, &vl);
        char kk[16];
        memcpy(kk, key, kl);
        kk[kl] = 0;
        cr_assert(strcmp(kk, "k020") > 0 && strcmp(kk, "k050") < 0, "key %s out of bounds", kk);
        cr_assert(strcmp(kk, prev) > 0);
        int i = atoi(kk + 1);
        cr_assert(i % 10 != 0);
        if (i % 10 == 1)
            cr_assert(vl == 3 && memcmp(val, "new", 3) == 0);
        else
            cr_assert(vl == kl && memcmp(val, key, kl) == 0);
        strcpy(prev, kk);
        count++;
    }
    cr_assert_eq(count, 27);
    cr_assert_eq(ndb_kv_iter_status(it), NDB_OK);
    count = 0;
    strcpy(prev, "zzz");
    for (ndb_kv_iter_seek_last(it); ndb_kv_iter_valid(it); ndb_kv_iter_prev(it)) {
        size_t kl;
        const char *key = ndb_kv_iter_key(it, &kl);
        char kk[16];
        memcpy(kk, key, kl);
        kk[kl] = 0;
        cr_assert(strcmp(kk, prev) < 0);
        cr_assert(strcmp(kk, "k020") > 0 && strcmp(kk, "k050") < 0);
        strcpy(prev, kk);
        count++;
    }
    cr_assert_eq(count, 27);
    /* direction changes */
    ndb_kv_iter_seek(it, "k033", 4);
    cr_assert(ndb_kv_iter_valid(it));
    ndb_kv_iter_next(it);
    ndb_kv_iter_prev(it);
    size_t kl;
    const char *key = ndb_kv_iter_key(it, &kl);
    cr_assert(kl == 4 && memcmp(key, "k033", 4) == 0);
    ndb_kv_iter_prev(it);
    ndb_kv_iter_prev(it);
    key = ndb_kv_iter_key(it, &kl);
    cr_assert(kl == 4 && memcmp(key, "k031", 4) == 0, "got %.*s", (int)kl, key);
    ndb_kv_iter_prev(it); /* k030 deleted -> k029 */
    key = ndb_kv_iter_key(it, &kl);
    cr_assert(kl == 4 && memcmp(key, "k029", 4) == 0, "got %.*s", (int)kl, key);
    ndb_kv_iter_next(it);
    key = ndb_kv_iter_key(it, &kl);
    cr_assert(kl == 4 && memcmp(key, "k031", 4) == 0, "got %.*s", (int)kl, key);
    ndb_kv_iter_seek_for_prev(it, "k030", 4);
    key = ndb_kv_iter_key(it, &kl);
    cr_assert(kl == 4 && memcmp(key, "k029", 4) == 0, "got %.*s", (int)kl, key);
    ndb_kv_iter_free(it);
}

Test(db, compaction_drops_overwrites_and_tombstones)
{
    char k[32], v[128];
    memset(v, 'v', sizeof v);
    for (int round = 0; round < 5; round++)
        for (int i = 0; i < 2000; i++) {
            snprintf(k, sizeof k, "key%06d", i);
            cr_assert_eq(ndb_kv_put(kv, k, strlen(k), v, 100), NDB_OK);
        }
    for (int i = 0; i < 2000; i++) {
        snprintf(k, sizeof k, "key%06d", i);
        cr_assert_eq(ndb_kv_delete(kv, k, strlen(k)), NDB_OK);
    }
    cr_assert_eq(ndb_kv_compact_range(kv, NULL, 0, NULL, 0), NDB_OK);
    ndb_kv_stats s;
    ndb_kv_stats_get(kv, &s);
    uint64_t total = 0;
    for (int l = 0; l < NDB_KV_LEVELS; l++) total += s.levels[l].files;
    cr_assert_eq(total, 0, "everything deleted: no table may remain (have %llu)", (unsigned long long)total);
    cr_assert_gt(s.compactions, 0);
    cr_assert_gt(s.write_amplification, 1.0);
    expect("key000001", NULL);
}

typedef struct thr_arg {
    int id;
} thr_arg;

static void *writer_thr(void *p)
{
    thr_arg *a = p;
    char k[32], v[32];
    for (int i = 0; i < 2000; i++) {
        snprintf(k, sizeof k, "t%d-%05d", a->id, i);
        snprintf(v, sizeof v, "v%d", i);
        if (ndb_kv_put(kv, k, strlen(k), v, strlen(v)) != NDB_OK) return (void *)1;
        void *got;
        size_t n;
        if (ndb_kv_get(kv, NULL, k, strlen(k), &got, &n) != NDB_OK) return (void *)2;
        free(got);
    }
    return NULL;
}

Test(db, concurrent_writers_and_readers)
{
    pthread_t t[4];
    thr_arg a[4];
    for (int i = 0; i < 4; i++) {
        a[i].id = i;
        pthread_create(&t[i], NULL, writer_thr, &a[i]);
    }
    for (int i = 0; i < 4; i++) {
        void *r;
        pthread_join(t[i], &r);
        cr_assert_null(r, "thread %d failed: %p", i, r);
    }
    char k[32], v[32];
    for (int id = 0; id < 4; id++)
        for (int i = 0; i < 2000; i += 13) {
            snprintf(k, sizeof k, "t%d-%05d", id, i);
            snprintf(v, sizeof v, "v%d", i);
            expect(k, v);
        }
}

Test(db, lock_excludes_second_handle)
{
    ndb_kv *other = NULL;
    ndb_errmsg msg;
    ndb_kv_options o;
    small_opts(&o);
    cr_assert_eq(ndb_kv_open(dir, &o, &other, &msg), NDB_EBUSY);
}

Test(db, sync_mode_counts_group_commits)
{
    ndb_kv_close(kv);
    ndb_kv_options o;
    small_opts(&o);
    o.durability = NDB_KV_SYNC;
    open_db(&o);
    ndb_kv_stats before, after;
    ndb_kv_stats_get(kv, &before);
    for (int i = 0; i < 20; i++) cr_assert_eq(ndb_kv_put(kv, "k", 1, "v", 1), NDB_OK);
    ndb_kv_stats_get(kv, &after);
    cr_assert_geq(after.wal_syncs - before.wal_syncs, 20, "sequential sync writes each fsync");
}

/* Regression: the manifest must carry the last sequence, or a database whose
 * WAL was entirely flushed reopens at sequence 0 and hides every key. */
Test(db, reopen_after_full_flush_keeps_sequence)
{
    cr_assert_eq(ndb_kv_put(kv, "a", 1, "1", 1), NDB_OK);
    cr_assert_eq(ndb_kv_flush(kv), NDB_OK);
    cr_assert_eq(ndb_kv_close(kv), NDB_OK);
    ndb_kv_options o;
    small_opts(&o);
    open_db(&o);
    expect("a", "1");
    cr_assert_eq(ndb_kv_put(kv, "a", 1, "2", 1), NDB_OK);
    expect("a", "2");
}

Test(db, interval_mode_syncs_in_the_background)
{
    ndb_kv_close(kv);
    ndb_kv_options o;
    small_opts(&o);
    o.durability = NDB_KV_INTERVAL;
    o.interval_ms = 20;
    open_db(&o);
    ndb_kv_stats before, after;
    ndb_kv_stats_get(kv, &before);
    for (int i = 0; i < 50; i++) cr_assert_eq(ndb_kv_put(kv, "k", 1, "v", 1), NDB_OK);
    ndb_kv_stats_get(kv, &after);
    cr_assert_lt(after.wal_syncs - before.wal_syncs, 50, "interval writes do not fsync each");
    for (int t = 0; t < 100 && after.wal_syncs == before.wal_syncs; t++) {
        usleep(10000);
        ndb_kv_stats_get(kv, &after);
    }
    cr_assert_gt(after.wal_syncs, before.wal_syncs, "the interval thread must fsync pending WAL bytes");
    expect("k", "v");
}

Test(db, stats_report_levels_and_memtable)
{
    char k[32], v[200];
    memset(v, 'x', sizeof v);
    for (int i = 0; i < 3000; i++) {
        snprintf(k, sizeof k, "s%06d", i);
        cr_assert_eq(ndb_kv_put(kv, k, strlen(k), v, sizeof v), NDB_OK);
    }
    cr_assert_eq(ndb_kv_flush(kv), NDB_OK);
    ndb_kv_stats s;
    cr_assert_eq(ndb_kv_stats_get(kv, &s), NDB_OK);
    uint64_t files = 0, bytes = 0;
    for (int l = 0; l < NDB_KV_LEVELS; l++) {
        files += s.levels[l].files;
        bytes += s.levels[l].bytes;
    }
    cr_assert_gt(files, 0);
    cr_assert_gt(bytes, 3000 * 200 / 2);
    cr_assert_geq(s.last_seq, 3000);
    cr_assert_gt(s.user_bytes_written, 3000 * 200);
    cr_assert_gt(s.sst_bytes_written, 0);
    cr_assert_eq(s.poisoned, 0);
}

/* Compressed blocks go through the block cache: the first read of a key
 * misses, reading it again hits, and the stats say so. */
Test(db, stats_count_block_cache_hits_and_misses)
{
    ndb_kv_close(kv);
    ndb_kv_options o;
    small_opts(&o);
    o.compression = NDB_KV_COMPRESS_LZ4;
    open_db(&o);
    char k[32], v[200];
    memset(v, 'x', sizeof v); /* compresses: its blocks are cached, not read in place */
    for (int i = 0; i < 1000; i++) {
        snprintf(k, sizeof k, "c%06d", i);
        cr_assert_eq(ndb_kv_put(kv, k, strlen(k), v, sizeof v), NDB_OK);
    }
    /* one sorted run: each get reads one block of one table */
    cr_assert_eq(ndb_kv_compact_range(kv, NULL, 0, NULL, 0), NDB_OK);
    ndb_kv_stats s0, s1, s2;
    cr_assert_eq(ndb_kv_stats_get(kv, &s0), NDB_OK);
    for (int pass = 0; pass < 2; pass++) {
        for (int i = 0; i < 1000; i += 10) {
            snprintf(k, sizeof k, "c%06d", i);
            void *got = NULL;
            size_t n = 0;
            cr_assert_eq(ndb_kv_get(kv, NULL, k, strlen(k), &got, &n), NDB_OK);
            cr_assert_eq(n, sizeof v);
            free(got);
        }
        cr_assert_eq(ndb_kv_stats_get(kv, pass == 0 ? &s1 : &s2), NDB_OK);
    }
    cr_assert_gt(s1.block_cache_misses, s0.block_cache_misses, "the first reads load blocks");
    cr_assert_eq(s2.block_cache_hits - s1.block_cache_hits, 100, "every second read hits");
    cr_assert_eq(s2.block_cache_misses, s1.block_cache_misses, "and none misses");
}

/* The table cache closes least recently used tables beyond max_open_tables
 * (16 shards: at least one table per shard stays open). */
Test(db, table_cache_is_bounded)
{
    ndb_kv_close(kv);
    ndb_kv_options o;
    small_opts(&o);
    o.max_open_tables = 16;
    o.l0_compaction_trigger = 1000; /* keep many L0 files */
    o.l0_slowdown_trigger = 1000;
    o.l0_stop_trigger = 1000;
    open_db(&o);
    char k[32], v[64];
    for (int f = 0; f < 40; f++) {
        for (int i = 0; i < 20; i++) { /* every flush spans the same range: its table stays in L0 */
            snprintf(k, sizeof k, "%03d-f%02d", i, f);
            snprintf(v, sizeof v, "v%d-%d", f, i);
            cr_assert_eq(ndb_kv_put(kv, k, strlen(k), v, strlen(v)), NDB_OK);
        }
        cr_assert_eq(ndb_kv_flush(kv), NDB_OK);
    }
    for (int round = 0; round < 2; round++)
        for (int f = 0; f < 40; f++) {
            snprintf(k, sizeof k, "%03d-f%02d", 7, f);
            snprintf(v, sizeof v, "v%d-%d", f, 7);
            expect(k, v);
        }
    ndb_kv_iter *it;
    cr_assert_eq(ndb_kv_iter_new(kv, NULL, NULL, 0, NULL, 0, &it), NDB_OK);
    int n = 0;
    for (ndb_kv_iter_seek_first(it); ndb_kv_iter_valid(it); ndb_kv_iter_next(it)) n++;
    cr_assert_eq(n, 800);
    ndb_kv_iter_free(it);
    ndb_kv_stats s;
    ndb_kv_stats_get(kv, &s);
    uint32_t tables = 0;
    for (int l = 0; l < NDB_KV_LEVELS; l++) tables += s.levels[l].files;
    cr_assert_geq(tables, 40);
    cr_assert_geq(s.levels[0].files, 39, "the first flush went to the empty L1, the rest stay in L0");
    cr_assert_leq(s.open_tables, 16, "open tables %llu over the bound", (unsigned long long)s.open_tables);
}

Test(db, large_values_survive_flush_compaction_and_reopen)
{
    size_t n = 10u << 20;
    char *big = malloc(n);
    for (size_t i = 0; i < n; i++) big[i] = (char)(i * 131 + (i >> 13));
    cr_assert_eq(ndb_kv_put(kv, "big", 3, big, n), NDB_OK);
    cr_assert_eq(ndb_kv_put(kv, "small", 5, "s", 1), NDB_OK);
    cr_assert_eq(ndb_kv_compact_range(kv, NULL, 0, NULL, 0), NDB_OK);
    cr_assert_eq(ndb_kv_close(kv), NDB_OK);
    ndb_kv_options o;
    small_opts(&o);
    open_db(&o);
    void *got;
    size_t gl;
    cr_assert_eq(ndb_kv_get(kv, NULL, "big", 3, &got, &gl), NDB_OK);
    cr_assert(gl == n && memcmp(got, big, n) == 0);
    free(got);
    expect("small", "s");
    char *huge = malloc(NDB_KV_MAX_VALUE + 1u);
    cr_assert_eq(ndb_kv_put(kv, "huge", 4, huge, NDB_KV_MAX_VALUE + 1u), NDB_ETOOBIG);
    free(huge);
    free(big);
}

/* .sst files in dir. */
static int count_tables(void)
{
    char cmd[4300];
    snprintf(cmd, sizeof cmd, "ls '%s' | grep -c '\\.sst$'", dir);
    FILE *p = popen(cmd, "r");
    cr_assert_not_null(p);
    int n = -1;
    cr_assert_eq(fscanf(p, "%d", &n), 1);
    pclose(p);
    return n;
}

static int live_tables(void)
{
    ndb_kv_stats s;
    cr_assert_eq(ndb_kv_stats_get(kv, &s), NDB_OK);
    int n = 0;
    for (int l = 0; l < NDB_KV_LEVELS; l++) n += (int)s.levels[l].files;
    return n;
}

/* A long-lived iterator: after a compaction, its next seek moves it onto the
 * compacted tables (the old ones are deleted at once) and its view stays the
 * one it was created with, although the compaction ran after it. */
Test(db, iterator_moves_onto_compacted_tables_keeping_its_view)
{
    char k[32];
    for (int i = 0; i < 1000; i++) {
        snprintf(k, sizeof k, "it%04d", i);
        cr_assert_eq(ndb_kv_put(kv, k, strlen(k), "old", 3), NDB_OK);
    }
    cr_assert_eq(ndb_kv_flush(kv), NDB_OK);
    ndb_kv_iter *it;
    cr_assert_eq(ndb_kv_iter_new(kv, NULL, NULL, 0, NULL, 0, &it), NDB_OK);
    for (int i = 0; i < 1000; i++) {
        snprintf(k, sizeof k, "it%04d", i);
        if (i % 3 == 0)
            cr_assert_eq(ndb_kv_delete(kv, k, strlen(k)), NDB_OK);
        else
            cr_assert_eq(ndb_kv_put(kv, k, strlen(k), "new", 3), NDB_OK);
    }
    cr_assert_eq(ndb_kv_compact_range(kv, NULL, 0, NULL, 0), NDB_OK);
    cr_assert_gt(count_tables(), live_tables(), "the iterator keeps the tables it reads until it moves on");
    size_t n = 0;
    for (ndb_kv_iter_seek_first(it); ndb_kv_iter_valid(it); ndb_kv_iter_next(it)) {
        size_t vl;
        const char *v = ndb_kv_iter_value(it, &vl);
        cr_assert(vl == 3 && memcmp(v, "old", 3) == 0, "the iterator's view changed");
        n++;
    }
    cr_assert_eq(ndb_kv_iter_status(it), NDB_OK);
    cr_assert_eq(n, 1000);
    cr_assert_eq(count_tables(), live_tables(), "after its seek the iterator holds no compacted table");
    ndb_kv_iter_free(it);
    expect("it0000", NULL);
    expect("it0001", "new");
}

/* An L0 table below the compaction trigger that reads keep paying for is
 * compacted: here seeks (each reads it and the L1 table). */
Test(db, seeks_that_pay_for_an_l0_table_compact_it)
{
    char k[32];
    for (int i = 0; i < 3000; i++) {
        snprintf(k, sizeof k, "sk%05d", i);
        cr_assert_eq(ndb_kv_put(kv, k, strlen(k), "v", 1), NDB_OK);
    }
    cr_assert_eq(ndb_kv_compact_range(kv, NULL, 0, NULL, 0), NDB_OK);
    for (int i = 0; i < 3000; i += 10) {
        snprintf(k, sizeof k, "sk%05d", i);
        cr_assert_eq(ndb_kv_put(kv, k, strlen(k), "w", 1), NDB_OK);
    }
    cr_assert_eq(ndb_kv_flush(kv), NDB_OK);
    ndb_kv_stats s;
    ndb_kv_stats_get(kv, &s);
    cr_assert_eq(s.levels[0].files, 1, "one L0 table, below the trigger");
    uint64_t before = s.compactions;
    ndb_kv_iter *it;
    cr_assert_eq(ndb_kv_iter_new(kv, NULL, NULL, 0, NULL, 0, &it), NDB_OK);
    for (int i = 0; i < 300; i++) { /* a table's allowance is at least 100 reads */
        snprintf(k, sizeof k, "sk%05d", (i * 7) % 3000);
        ndb_kv_iter_seek(it, k, strlen(k));
        cr_assert(ndb_kv_iter_valid(it));
    }
    ndb_kv_iter_free(it);
    do { /* no deadline: the suite's timeout is the backstop */
        usleep(1000);
        ndb_kv_stats_get(kv, &s);
    } while (s.levels[0].files != 0);
    cr_assert_gt(s.compactions, before);
    expect("sk00010", "w");
    expect("sk00011", "v");
}

/* The same for gets that read the L0 table before finding their key in L1
 * (no filters, so every get reads it). */
Test(db, gets_that_pay_for_an_l0_table_compact_it)
{
    ndb_kv_close(kv);
    ndb_kv_options o;
    small_opts(&o);
    o.bloom_bits_per_key = 0;
    open_db(&o);
    char k[32];
    for (int i = 0; i < 3000; i++) {
        snprintf(k, sizeof k, "gk%05d", i);
        cr_assert_eq(ndb_kv_put(kv, k, strlen(k), "v", 1), NDB_OK);
    }
    cr_assert_eq(ndb_kv_compact_range(kv, NULL, 0, NULL, 0), NDB_OK);
    cr_assert_eq(ndb_kv_put(kv, "gk00000", 7, "w", 1), NDB_OK);
    cr_assert_eq(ndb_kv_put(kv, "gk02999", 7, "w", 1), NDB_OK); /* the L0 table spans every key */
    cr_assert_eq(ndb_kv_flush(kv), NDB_OK);
    ndb_kv_stats s;
    ndb_kv_stats_get(kv, &s);
    cr_assert_eq(s.levels[0].files, 1);
    for (int i = 1; i < 301; i++) {
        snprintf(k, sizeof k, "gk%05d", i);
        expect(k, "v");
    }
    do {
        usleep(1000);
        ndb_kv_stats_get(kv, &s);
    } while (s.levels[0].files != 0);
    expect("gk00000", "w");
    expect("gk00001", "v");
}

/* Partitions (ndb_kv_set_partition): here the first byte of the key. */
static size_t first_byte(const void *key, size_t len)
{
    (void)key;
    return len ? 1 : 0;
}

/* Writes rows appended in key order ("a"), keys in random order with
 * overwrites and deletes ("b", whose final state goes to live) and a few
 * catalog-like keys ("c"), flushing as the small memtable fills; returns the
 * bytes written to tables. */
static uint64_t partition_workload(bool live[1000])
{
    char k[32], v[256];
    memset(v, 'x', sizeof v);
    memset(live, 0, 1000 * sizeof *live);
    for (unsigned i = 0; i < 4000; i++) {
        snprintf(k, sizeof k, "a%08u", i);
        cr_assert_eq(ndb_kv_put(kv, k, strlen(k), v, 200), NDB_OK);
        unsigned b = (i * 2654435761u) % 1000;
        snprintf(k, sizeof k, "b%08u", b);
        cr_assert_eq(ndb_kv_put(kv, k, strlen(k), v, 20), NDB_OK);
        live[b] = true;
        if (i % 7 == 0) {
            b = (i * 40503u) % 1000;
            snprintf(k, sizeof k, "b%08u", b);
            cr_assert_eq(ndb_kv_delete(kv, k, strlen(k)), NDB_OK);
            live[b] = false;
        }
        snprintf(k, sizeof k, "c%u", i % 5);
        cr_assert_eq(ndb_kv_put(kv, k, strlen(k), v, 8), NDB_OK);
    }
    cr_assert_eq(ndb_kv_flush(kv), NDB_OK);
    ndb_kv_stats s;
    ndb_kv_stats_get(kv, &s);
    return s.sst_bytes_written;
}

/* No table holds keys of two partitions, nothing is lost, and rows written
 * in key order reach the deeper levels by moving tables, not rewriting them. */
Test(db, partitions_keep_tables_apart_and_move_rows_written_in_order)
{
    bool live[1000];
    uint64_t whole = partition_workload(live);
    ndb_kv_close(kv);
    tu_rmdir(dir);
    dir = tu_tmpdir("db");
    ndb_kv_options o;
    small_opts(&o);
    open_db(&o);
    ndb_kv_set_partition(kv, first_byte);
    uint64_t parted = partition_workload(live);
    cr_assert_lt(parted * 10, whole * 7, "tables written: %llu with partitions, %llu without",
                 (unsigned long long)parted, (unsigned long long)whole);

    pthread_mutex_lock(&kv->mu);
    kv_version *cur = kv->vs->current;
    for (int l = 0; l < NDB_KV_LEVELS; l++)
        for (size_t i = 0; i < cur->nfiles[l]; i++) {
            const kv_fmeta *f = cur->files[l][i];
            cr_assert_eq(f->smallest[0], f->largest[0], "level %d table %llu spans partitions %c..%c", l,
                         (unsigned long long)f->number, f->smallest[0], f->largest[0]);
        }
    pthread_mutex_unlock(&kv->mu);

    for (int round = 0; round < 2; round++) { /* before and after a reopen */
        char k[32], v[256];
        ndb_kv_iter *it;
        cr_assert_eq(ndb_kv_iter_new(kv, NULL, "a", 1, "b", 1, &it), NDB_OK);
        unsigned n = 0;
        for (ndb_kv_iter_seek_first(it); ndb_kv_iter_valid(it); ndb_kv_iter_next(it)) {
            size_t kl, vl;
            const char *key = ndb_kv_iter_key(it, &kl);
            ndb_kv_iter_value(it, &vl);
            snprintf(k, sizeof k, "a%08u", n++);
            cr_assert(kl == strlen(k) && memcmp(key, k, kl) == 0 && vl == 200, "row %u", n - 1);
        }
        cr_assert_eq(n, 4000);
        ndb_kv_iter_free(it);
        memset(v, 'x', sizeof v);
        v[20] = 0;
        for (unsigned b = 0; b < 1000; b++) {
            snprintf(k, sizeof k, "b%08u", b);
            expect(k, live[b] ? v : NULL);
        }
        ndb_kv_close(kv);
        open_db(&o);
        ndb_kv_set_partition(kv, first_byte);
    }
}

/* Data files hold every document: the engine creates its directory 0700 and
 * its files 0600, whatever the umask lets through (issue 16). */
Test(db, files_are_private_to_the_owner)
{
    char sub[4200];
    snprintf(sub, sizeof sub, "%s/private", dir);
    mode_t old = umask(022);
    ndb_kv_options o;
    small_opts(&o);
    ndb_kv *k2 = NULL;
    ndb_errmsg msg = {{0}};
    ndb_status st = ndb_kv_open(sub, &o, &k2, &msg);
    cr_assert_eq(st, NDB_OK, "open: %s %s", ndb_strerror(st), msg.text);
    for (int i = 0; i < 200; i++) {
        char key[32];
        snprintf(key, sizeof key, "k%05d", i);
        cr_assert_eq(ndb_kv_put(k2, key, strlen(key), "value", 5), NDB_OK);
    }
    cr_assert_eq(ndb_kv_flush(k2), NDB_OK);
    cr_assert_eq(ndb_kv_close(k2), NDB_OK);
    umask(old);

    struct stat sb;
    cr_assert_eq(stat(sub, &sb), 0);
    cr_assert_eq(sb.st_mode & 0777, 0700, "directory mode %o", (unsigned)(sb.st_mode & 0777));
    DIR *d = opendir(sub);
    cr_assert_not_null(d);
    int files = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        char p[8400];
        snprintf(p, sizeof p, "%s/%s", sub, e->d_name);
        cr_assert_eq(stat(p, &sb), 0);
        cr_assert_eq(sb.st_mode & 077, 0, "%s has mode %o", e->d_name, (unsigned)(sb.st_mode & 0777));
        files++;
    }
    closedir(d);
    cr_assert_geq(files, 2, "expected a log and a table, found %d files", files);
}

static void ingest_keys(ndb_kv_ingest *g, const char *prefix, int from, int to)
{
    for (int i = from; i < to; i++) {
        char k[32], v[32];
        snprintf(k, sizeof k, "%s%06d", prefix, i);
        snprintf(v, sizeof v, "v%d", i);
        cr_assert_eq(ndb_kv_ingest_add(g, k, strlen(k), v, strlen(v)), NDB_OK, "%s", k);
    }
}

/* One whole ingestion of ingest_keys(prefix, from, to): finish's status. */
static ndb_status ingest_range(const char *prefix, int from, int to, ndb_errmsg *msg)
{
    ndb_kv_ingest *g;
    cr_assert_eq(ndb_kv_ingest_begin(kv, &g), NDB_OK);
    ingest_keys(g, prefix, from, to);
    ndb_status st = ndb_kv_ingest_finish(g, msg);
    ndb_kv_ingest_free(g);
    return st;
}

/* Bulk ingestion: a new key range goes into tables at the deepest level,
 * readable at once and after a reopen; a range that holds data is refused
 * with nothing left behind; keys out of order are refused; an abandoned
 * ingestion leaves no file. */
Test(db, ingest_a_new_range_at_the_deepest_level)
{
    for (int i = 0; i < 3000; i++) { /* other data, in tables and the memtable */
        char k[32];
        snprintf(k, sizeof k, "a%06d", i);
        cr_assert_eq(ndb_kv_put(kv, k, strlen(k), "x", 1), NDB_OK);
    }
    ndb_kv_snapshot *before;
    cr_assert_eq(ndb_kv_snapshot_acquire(kv, &before), NDB_OK);
    ndb_kv_ingest *g;
    ndb_errmsg msg = {{0}};
    cr_assert_eq(ndb_kv_ingest_begin(kv, &g), NDB_OK);
    ingest_keys(g, "m", 0, 20000); /* several 64 KiB tables */
    cr_assert_eq(ndb_kv_ingest_add(g, "m000005", 7, "", 0), NDB_EINVAL); /* out of order: sticks */
    cr_assert_eq(ndb_kv_ingest_finish(g, &msg), NDB_EINVAL);
    ndb_kv_ingest_free(g);
    cr_assert_eq(ingest_range("m", 0, 20000, &msg), NDB_OK, "%s", msg.text);
    ndb_kv_stats s;
    cr_assert_eq(ndb_kv_stats_get(kv, &s), NDB_OK);
    cr_assert_geq(s.levels[NDB_KV_LEVELS - 1].files, 3);
    expect("m000000", "v0");
    expect("m019999", "v19999");
    expect("a002999", "x");
    ndb_kv_iter *it;
    cr_assert_eq(ndb_kv_iter_new(kv, NULL, "m", 1, "n", 1, &it), NDB_OK);
    int n = 0;
    for (ndb_kv_iter_seek_first(it); ndb_kv_iter_valid(it); ndb_kv_iter_next(it)) {
        size_t kl;
        const char *k = ndb_kv_iter_key(it, &kl);
        char want[32];
        snprintf(want, sizeof want, "m%06d", n);
        cr_assert(kl == 7 && memcmp(k, want, 7) == 0, "at %d", n);
        n++;
    }
    cr_assert_eq(n, 20000);
    ndb_kv_iter_free(it);
    ndb_kv_snapshot_release(kv, before);
    /* writes over ingested keys win, as over any other */
    cr_assert_eq(ndb_kv_put(kv, "m000007", 7, "new", 3), NDB_OK);
    cr_assert_eq(ndb_kv_delete(kv, "m000008", 7), NDB_OK);
    expect("m000007", "new");
    expect("m000008", NULL);

    /* a range some key already holds (the memtable's, then a table's) */
    int tables = count_tables();
    cr_assert_eq(ndb_kv_put(kv, "q000500", 7, "x", 1), NDB_OK);
    cr_assert_eq(ingest_range("q", 0, 3000, &msg), NDB_EBUSY);
    cr_assert_eq(count_tables(), tables);
    expect("q000499", NULL);
    cr_assert_eq(ndb_kv_flush(kv), NDB_OK);
    tables = count_tables();
    cr_assert_eq(ingest_range("q", 0, 3000, &msg), NDB_EBUSY);
    cr_assert_eq(count_tables(), tables);
    /* abandoned before finish */
    cr_assert_eq(ndb_kv_ingest_begin(kv, &g), NDB_OK);
    ingest_keys(g, "r", 0, 5000);
    ndb_kv_ingest_free(g);
    cr_assert_eq(count_tables(), tables);

    /* after a reopen */
    ndb_kv_close(kv);
    ndb_kv_options o;
    small_opts(&o);
    open_db(&o);
    expect("m000000", "v0");
    expect("m010000", "v10000");
    expect("m000007", "new");
    expect("m000008", NULL);
    expect("r000001", NULL);
    cr_assert_eq(ndb_kv_compact_range(kv, NULL, 0, NULL, 0), NDB_OK); /* and through compactions */
    expect("m019999", "v19999");
    expect("m000008", NULL);
}

/* Ingested keys and their level, read back in order: n keys from prefix, and
 * the two around them. */
static void expect_ingested(const char *prefix, int n)
{
    ndb_kv_iter *it;
    cr_assert_eq(ndb_kv_iter_new(kv, NULL, NULL, 0, NULL, 0, &it), NDB_OK);
    int i = 0, others = 0;
    for (ndb_kv_iter_seek_first(it); ndb_kv_iter_valid(it); ndb_kv_iter_next(it)) {
        size_t kl;
        const char *k = ndb_kv_iter_key(it, &kl);
        if (kl < strlen(prefix) || memcmp(k, prefix, strlen(prefix)) != 0) {
            others++;
            continue;
        }
        char want[32];
        snprintf(want, sizeof want, "%s%06d", prefix, i);
        cr_assert(kl == strlen(want) && memcmp(k, want, kl) == 0, "at %d", i);
        i++;
    }
    cr_assert_eq(ndb_kv_iter_status(it), NDB_OK);
    ndb_kv_iter_free(it);
    cr_assert_eq(i, n);
    cr_assert_eq(others, 2);
}

/* A table whose range spans the ingested keys without holding any of them (a
 * flush puts small neighbouring partitions in one table) does not refuse an
 * ingestion: only a key in the range does. The tables go to the deepest level
 * none of whose files' ranges meets theirs. */
Test(db, ingest_inside_the_range_of_a_table_without_its_keys)
{
    cr_assert_eq(ndb_kv_put(kv, "k", 1, "x", 1), NDB_OK);
    cr_assert_eq(ndb_kv_put(kv, "z", 1, "x", 1), NDB_OK);
    cr_assert_eq(ndb_kv_flush(kv), NDB_OK); /* one table, k to z */
    ndb_errmsg msg = {{0}};
    cr_assert_eq(ingest_range("m", 0, 5000, &msg), NDB_OK, "%s", msg.text);
    ndb_kv_stats s;
    cr_assert_eq(ndb_kv_stats_get(kv, &s), NDB_OK);
    cr_assert_gt(s.levels[NDB_KV_LEVELS - 1].files, 0);
    expect_ingested("m", 5000);
    /* all of it compacted into the last level: the next range goes above it */
    cr_assert_eq(ndb_kv_compact_range(kv, NULL, 0, NULL, 0), NDB_OK);
    cr_assert_eq(ndb_kv_stats_get(kv, &s), NDB_OK);
    uint64_t last = s.levels[NDB_KV_LEVELS - 1].files;
    cr_assert_eq(ingest_range("p", 0, 3000, &msg), NDB_OK, "%s", msg.text);
    cr_assert_eq(ndb_kv_stats_get(kv, &s), NDB_OK);
    cr_assert_eq(s.levels[NDB_KV_LEVELS - 1].files, last);
    cr_assert_gt(s.levels[NDB_KV_LEVELS - 2].files, 0);
    expect("p000000", "v0");
    expect("p002999", "v2999");
    expect("m004999", "v4999");
    cr_assert_eq(ndb_kv_compact_range(kv, NULL, 0, NULL, 0), NDB_OK);
    expect("p001234", "v1234");
    expect("m000042", "v42");
    expect("k", "x");
    expect("z", "x");
}
