/*
 * Concurrency stress without Criterion (Criterion cannot start under TSan on
 * this platform): 3 writers (puts and deletes), 3 readers (gets, snapshot
 * iterators, stats) and a maintenance thread (flush + compact_range) on one
 * handle in interval mode with tiny memtables, so flushes, compactions,
 * table-cache evictions and interval fsyncs all run at once. Then every
 * writer's last value is checked. Exit status 0 = pass. Labelled
 * "concurrency" for the TSan run.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ndb_kv.h"

#define WRITES 6000
#define KEYS 1500

static ndb_kv *kv;
static int failed;

static void fail(const char *what)
{
    fprintf(stderr, "stress: %s (%s)\n", what, ndb_kv_last_error(kv));
    __atomic_store_n(&failed, 1, __ATOMIC_RELAXED);
}

static void *writer(void *p)
{
    long id = (long)p;
    char k[32], v[128];
    for (int i = 0; i < WRITES; i++) {
        snprintf(k, sizeof k, "k%ld-%05d", id, i % KEYS);
        int n = snprintf(v, sizeof v, "v%ld-%d-%040d", id, i, i);
        if (ndb_kv_put(kv, k, strlen(k), v, (size_t)n) != NDB_OK) fail("put");
        if (i % 7 == 0 && i + KEYS < WRITES && ndb_kv_delete(kv, k, strlen(k)) != NDB_OK) fail("delete");
    }
    return NULL;
}

static void *reader(void *p)
{
    (void)p;
    char k[32];
    for (int i = 0; i < 4000; i++) {
        snprintf(k, sizeof k, "k%d-%05d", i % 3, i % KEYS);
        void *g;
        size_t n;
        ndb_status st = ndb_kv_get(kv, NULL, k, strlen(k), &g, &n);
        if (st == NDB_OK) {
            if (n < 2 || memcmp(g, "v", 1) != 0) fail("bad value");
            free(g);
        } else if (st != NDB_ENOTFOUND) {
            fail("get");
        }
        if (i % 400 == 0) {
            ndb_kv_snapshot *s;
            ndb_kv_iter *it;
            if (ndb_kv_snapshot_acquire(kv, &s) != NDB_OK) fail("snapshot");
            if (ndb_kv_iter_new(kv, s, NULL, 0, NULL, 0, &it) != NDB_OK) fail("iter");
            size_t pl = 0;
            char prev[64];
            for (ndb_kv_iter_seek_first(it); ndb_kv_iter_valid(it); ndb_kv_iter_next(it)) {
                size_t kl;
                const char *key = ndb_kv_iter_key(it, &kl);
                if (kl >= sizeof prev) fail("long key");
                if (pl) {
                    size_t m = pl < kl ? pl : kl;
                    int c = memcmp(prev, key, m);
                    if (c > 0 || (c == 0 && pl >= kl)) fail("iterator out of order");
                }
                memcpy(prev, key, kl);
                pl = kl;
            }
            if (ndb_kv_iter_status(it) != NDB_OK) fail("iter status");
            ndb_kv_iter_free(it);
            ndb_kv_snapshot_release(kv, s);
        }
        if (i % 1000 == 999) {
            ndb_kv_stats st2;
            ndb_kv_stats_get(kv, &st2);
        }
    }
    return NULL;
}

static void *maint(void *p)
{
    (void)p;
    for (int i = 0; i < 4; i++) {
        if (ndb_kv_flush(kv) != NDB_OK) fail("flush");
        if (ndb_kv_compact_range(kv, NULL, 0, NULL, 0) != NDB_OK) fail("compact");
    }
    return NULL;
}

int main(int argc, char **argv)
{
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/ndbkv-stress-%d", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp", (int)getpid());
    (void)argc;
    (void)argv;
    ndb_kv_options o;
    ndb_kv_options_init(&o);
    o.durability = NDB_KV_INTERVAL;
    o.interval_ms = 5;
    o.memtable_bytes = 32 * 1024;
    o.sst_target_bytes = 32 * 1024;
    o.l1_max_bytes = 64 * 1024;
    o.max_open_tables = 16;
    ndb_errmsg msg;
    if (ndb_kv_open(dir, &o, &kv, &msg) != NDB_OK) {
        fprintf(stderr, "open: %s\n", msg.text);
        return 1;
    }
    pthread_t t[7];
    for (long i = 0; i < 3; i++) pthread_create(&t[i], NULL, writer, (void *)i);
    for (long i = 3; i < 6; i++) pthread_create(&t[i], NULL, reader, NULL);
    pthread_create(&t[6], NULL, maint, NULL);
    for (int i = 0; i < 7; i++) pthread_join(t[i], NULL);
    /* every key's last write wins */
    for (long id = 0; id < 3; id++)
        for (int j = 0; j < KEYS; j++) {
            int last = WRITES - KEYS + j;
            char k[32], want[128];
            snprintf(k, sizeof k, "k%ld-%05d", id, j);
            int n = snprintf(want, sizeof want, "v%ld-%d-%040d", id, last, last);
            void *g;
            size_t gl;
            if (ndb_kv_get(kv, NULL, k, strlen(k), &g, &gl) != NDB_OK) {
                fail("final get");
                continue;
            }
            if (gl != (size_t)n || memcmp(g, want, gl) != 0) fail("final value");
            free(g);
        }
    ndb_kv_stats st;
    ndb_kv_stats_get(kv, &st);
    printf("stress: flushes %llu compactions %llu wal syncs %llu\n", (unsigned long long)st.flushes,
           (unsigned long long)st.compactions, (unsigned long long)st.wal_syncs);
    if (st.flushes == 0 || st.compactions == 0) fail("no background work happened");
    if (ndb_kv_close(kv) != NDB_OK) fail("close");
    char cmd[4200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0) fprintf(stderr, "cleanup failed\n");
    return failed ? 1 : 0;
}
