/*
 * Group commit under concurrency, without Criterion (so it also runs under
 * TSan, label "concurrency"). Exit status 0 = pass. Every check counts or
 * orders events; none measures a time.
 *
 *  1. Shared fsyncs: the fault env holds the first fsync (one writer's)
 *     while WRITERS-1 more writers append in sync mode; once it is released,
 *     one more fsync covers all of them: exactly 2 fsyncs for WRITERS writes.
 *  2. A failed fsync: the same, with the second fsync failing: every writer
 *     waiting on it gets NDB_EIO and its write is never visible, the first
 *     writer's write stays, later writes get NDB_EPOISONED, and a reopen
 *     finds every acknowledged write.
 *  3. Ordering and visibility, in each durability mode: writers (puts and
 *     two-key batches) with tiny memtables, so memtable switches, WAL rolls,
 *     flushes and compactions run among them, plus a reader and a thread
 *     that flushes. A writer reads its own write back as soon as it is
 *     acknowledged; the reader sees each batch whole and never sees a key's
 *     value go back.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "env.h"
#include "ndb_kv.h"
#include "testutil.h"

#define WRITERS 8

static int failed;

static void fail(const char *what, const char *detail)
{
    fprintf(stderr, "group_commit: %s: %s\n", what, detail);
    __atomic_store_n(&failed, 1, __ATOMIC_RELAXED);
}

static ndb_kv *open_kv(const char *dir, ndb_kv_durability d, kv_fault_env *fe, size_t memtable)
{
    ndb_kv_options o;
    ndb_kv_options_init(&o);
    o.durability = d;
    o.interval_ms = 2;
    o.memtable_bytes = memtable;
    o.sst_target_bytes = 32 * 1024;
    o.l1_max_bytes = 64 * 1024;
    o.env = fe ? kv_env_fault_env(fe) : NULL;
    ndb_kv *kv = NULL;
    ndb_errmsg msg;
    if (ndb_kv_open(dir, &o, &kv, &msg) != NDB_OK) {
        fprintf(stderr, "group_commit: open %s: %s\n", dir, msg.text);
        exit(1);
    }
    return kv;
}

/* Waits (without a deadline: ctest's timeout is the backstop) until cond(arg). */
static void await(int (*cond)(void *), void *arg)
{
    while (!cond(arg)) usleep(1000);
}

/* ------------------------------------------------------------------ 1 and 2 */

typedef struct one_put {
    ndb_kv *kv;
    int id;
    ndb_status st;
    pthread_t t;
} one_put;

static void key_of(char *k, size_t n, int id) { snprintf(k, n, "writer-%02d", id); }

static void *put_main(void *p)
{
    one_put *w = p;
    char k[32];
    key_of(k, sizeof k, w->id);
    w->st = ndb_kv_put(w->kv, k, strlen(k), k, strlen(k));
    return NULL;
}

typedef struct gate_state {
    kv_fault_env *fe;
    uint64_t appends0, appends;
} gate_state;

static int one_held(void *p) { return kv_env_fault_held_syncs(((gate_state *)p)->fe) == 1; }
static int all_appended(void *p)
{
    gate_state *g = p;
    return kv_env_fault_appends(g->fe) - g->appends0 >= g->appends && kv_env_fault_held_syncs(g->fe) == 1;
}

/* Writer 0 puts and its fsync is held; then writers 1.. put and wait; then
 * the fsync is released. fail_second arms the fsync after it to fail. */
static void run_held_round(ndb_kv *kv, kv_fault_env *fe, one_put *w, int fail_second)
{
    gate_state g = {fe, kv_env_fault_appends(fe), WRITERS};
    kv_env_fault_hold_syncs(fe, 1);
    if (fail_second) kv_env_fault_fail_sync_after(fe, 2);
    for (int i = 0; i < WRITERS; i++) {
        w[i] = (one_put){kv, i, NDB_OK, 0};
        pthread_create(&w[i].t, NULL, put_main, &w[i]);
        if (i == 0) await(one_held, &g); /* writer 0's fsync started: it covers writer 0 alone */
    }
    await(all_appended, &g); /* every writer appended while that fsync was held */
    kv_env_fault_hold_syncs(fe, 0);
    for (int i = 0; i < WRITERS; i++) pthread_join(w[i].t, NULL);
}

static int visible(ndb_kv *kv, int id)
{
    char k[32];
    key_of(k, sizeof k, id);
    void *v;
    size_t vl;
    ndb_status st = ndb_kv_get(kv, NULL, k, strlen(k), &v, &vl);
    if (st == NDB_OK) free(v);
    else if (st != NDB_ENOTFOUND) fail("get", ndb_strerror(st));
    return st == NDB_OK;
}

static void check_shared_fsyncs(void)
{
    char *dir = tu_tmpdir("gc-shared");
    kv_fault_env *fe = kv_env_fault_new(kv_env_posix());
    ndb_kv *kv = open_kv(dir, NDB_KV_SYNC, fe, 1 << 20);
    ndb_kv_stats s0, s1;
    ndb_kv_stats_get(kv, &s0);
    uint64_t syncs0 = kv_env_fault_syncs(fe);
    one_put w[WRITERS];
    run_held_round(kv, fe, w, 0);
    uint64_t syncs = kv_env_fault_syncs(fe) - syncs0;
    ndb_kv_stats_get(kv, &s1);
    char d[128];
    snprintf(d, sizeof d, "%llu fsyncs (wal_syncs %llu) for %d writers", (unsigned long long)syncs,
             (unsigned long long)(s1.wal_syncs - s0.wal_syncs), WRITERS);
    if (syncs != 2 || s1.wal_syncs - s0.wal_syncs != 2) fail("the writers waiting on a fsync did not share the next", d);
    for (int i = 0; i < WRITERS; i++) {
        if (w[i].st != NDB_OK) fail("put", ndb_strerror(w[i].st));
        if (!visible(kv, i)) fail("an acknowledged write is not visible", "");
    }
    if (ndb_kv_close(kv) != NDB_OK) fail("close", "");
    kv_env_fault_free(fe);
    tu_rmdir(dir);
    printf("group_commit: shared fsyncs: %s\n", d);
}

static void check_failed_fsync(void)
{
    char *dir = tu_tmpdir("gc-failed");
    kv_fault_env *fe = kv_env_fault_new(kv_env_posix());
    ndb_kv *kv = open_kv(dir, NDB_KV_SYNC, fe, 1 << 20);
    one_put w[WRITERS];
    run_held_round(kv, fe, w, 1);
    if (w[0].st != NDB_OK) fail("the writer of the fsync that succeeded", ndb_strerror(w[0].st));
    if (!visible(kv, 0)) fail("the write the good fsync covered is not visible", "");
    for (int i = 1; i < WRITERS; i++) {
        if (w[i].st != NDB_EIO) fail("a writer waiting on the failed fsync did not get its error", ndb_strerror(w[i].st));
        if (visible(kv, i)) fail("a write whose fsync failed is visible", "");
    }
    ndb_status st = ndb_kv_put(kv, "later", 5, "x", 1);
    if (st != NDB_EPOISONED) fail("a write after the failed fsync", ndb_strerror(st));
    if (strstr(ndb_kv_last_error(kv), "poisoned") == NULL) fail("last error", ndb_kv_last_error(kv));
    if (ndb_kv_close(kv) != NDB_EPOISONED) fail("close of a poisoned engine", "not NDB_EPOISONED");
    kv_env_fault_free(fe);
    kv = open_kv(dir, NDB_KV_SYNC, NULL, 1 << 20);
    if (!visible(kv, 0)) fail("an acknowledged write was lost across the reopen", "");
    if (ndb_kv_put(kv, "later", 5, "x", 1) != NDB_OK) fail("a reopen recovers", "");
    if (ndb_kv_close(kv) != NDB_OK) fail("close", "");
    tu_rmdir(dir);
    printf("group_commit: a failed fsync failed the %d writers waiting on it\n", WRITERS - 1);
}

/* ------------------------------------------------------------------ 3 */

#define ROUNDS 250

static ndb_kv *kv3;
static int writers_done;

static void *ordered_writer(void *p)
{
    int id = (int)(long)p;
    char k[32], a[32], b[32], v[64];
    snprintf(k, sizeof k, "k%d", id);
    snprintf(a, sizeof a, "pa%d", id);
    snprintf(b, sizeof b, "pb%d", id);
    ndb_kv_batch *batch;
    if (ndb_kv_batch_new(&batch) != NDB_OK) {
        fail("batch", "");
        return NULL;
    }
    for (int i = 1; i <= ROUNDS; i++) {
        int n = snprintf(v, sizeof v, "%08d-%040d", i, id);
        ndb_status st;
        if (i % 3 == 0) {
            ndb_kv_batch_clear(batch);
            ndb_kv_batch_put(batch, a, strlen(a), v, (size_t)n);
            ndb_kv_batch_put(batch, k, strlen(k), v, (size_t)n);
            ndb_kv_batch_put(batch, b, strlen(b), v, (size_t)n);
            st = ndb_kv_write(kv3, batch);
        } else {
            st = ndb_kv_put(kv3, k, strlen(k), v, (size_t)n);
        }
        if (st != NDB_OK) {
            fail("write", ndb_strerror(st));
            break;
        }
        void *got;
        size_t gl;
        st = ndb_kv_get(kv3, NULL, k, strlen(k), &got, &gl);
        if (st != NDB_OK || gl != (size_t)n || memcmp(got, v, gl) != 0)
            fail("a writer does not read back its acknowledged write", ndb_strerror(st));
        if (st == NDB_OK) free(got);
    }
    ndb_kv_batch_free(batch);
    __atomic_add_fetch(&writers_done, 1, __ATOMIC_RELEASE);
    return NULL;
}

/* The counter a value starts with, or 0 when absent. */
static int read_counter(const ndb_kv_snapshot *s, const char *key, char *val, size_t cap)
{
    void *got;
    size_t gl;
    ndb_status st = ndb_kv_get(kv3, s, key, strlen(key), &got, &gl);
    if (st == NDB_ENOTFOUND) {
        val[0] = 0;
        return 0;
    }
    if (st != NDB_OK) {
        fail("reader get", ndb_strerror(st));
        return 0;
    }
    size_t n = gl < cap - 1 ? gl : cap - 1;
    memcpy(val, got, n);
    val[n] = 0;
    free(got);
    return atoi(val);
}

static void *ordered_reader(void *p)
{
    int writers = (int)(long)p;
    int last[64] = {0};
    while (__atomic_load_n(&writers_done, __ATOMIC_ACQUIRE) < writers) {
        ndb_kv_snapshot *s;
        if (ndb_kv_snapshot_acquire(kv3, &s) != NDB_OK) {
            fail("snapshot", "");
            return NULL;
        }
        for (int id = 0; id < writers; id++) {
            char key[32], va[128], vb[128], vk[128];
            snprintf(key, sizeof key, "pa%d", id);
            read_counter(s, key, va, sizeof va);
            snprintf(key, sizeof key, "pb%d", id);
            read_counter(s, key, vb, sizeof vb);
            if (strcmp(va, vb) != 0) fail("a batch seen in part", va);
            snprintf(key, sizeof key, "k%d", id);
            int c = read_counter(s, key, vk, sizeof vk);
            if (c < last[id]) fail("a key's value went back", vk);
            last[id] = c;
        }
        ndb_kv_snapshot_release(kv3, s);
    }
    return NULL;
}

static void *flusher(void *p)
{
    int writers = (int)(long)p;
    while (__atomic_load_n(&writers_done, __ATOMIC_ACQUIRE) < writers) {
        if (ndb_kv_flush(kv3) != NDB_OK) fail("flush", ndb_kv_last_error(kv3));
        usleep(2000);
    }
    return NULL;
}

static void check_ordering(ndb_kv_durability d, const char *name)
{
    char *dir = tu_tmpdir("gc-order");
    kv3 = open_kv(dir, d, NULL, 16 * 1024);
    __atomic_store_n(&writers_done, 0, __ATOMIC_RELAXED);
    int writers = 6;
    pthread_t t[8];
    for (long i = 0; i < writers; i++) pthread_create(&t[i], NULL, ordered_writer, (void *)i);
    pthread_create(&t[writers], NULL, ordered_reader, (void *)(long)writers);
    pthread_create(&t[writers + 1], NULL, flusher, (void *)(long)writers);
    for (int i = 0; i < writers + 2; i++) pthread_join(t[i], NULL);
    ndb_kv_stats s;
    ndb_kv_stats_get(kv3, &s);
    if (s.flushes == 0) fail("no memtable switch happened among the writers", name);
    if (ndb_kv_close(kv3) != NDB_OK) fail("close", name);
    /* every acknowledged write is there after a reopen */
    kv3 = open_kv(dir, d, NULL, 16 * 1024);
    for (int id = 0; id < writers; id++) {
        char key[32], v[128];
        snprintf(key, sizeof key, "k%d", id);
        if (read_counter(NULL, key, v, sizeof v) != ROUNDS) fail("the last write is missing after a reopen", name);
    }
    if (ndb_kv_close(kv3) != NDB_OK) fail("close", name);
    tu_rmdir(dir);
    printf("group_commit: ordering (%s): %d writers x %d, %llu flushes, %llu wal syncs\n", name, writers, ROUNDS,
           (unsigned long long)s.flushes, (unsigned long long)s.wal_syncs);
}

int main(void)
{
    check_shared_fsyncs();
    check_failed_fsync();
    check_ordering(NDB_KV_SYNC, "sync");
    check_ordering(NDB_KV_INTERVAL, "interval");
    check_ordering(NDB_KV_NONE, "none");
    return failed ? 1 : 0;
}
