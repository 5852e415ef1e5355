/*
 * test_concurrency.c — vector collections under concurrent use: writers
 * (insert_many, upsert, delete), searchers (single, batched, filtered) with
 * seals and merges happening underneath, and a collection dropped while it
 * is being searched. Checks that every result is internally consistent
 * (sorted, no duplicate ids, each score equal to the query against the
 * returned vector) and that the final state equals what the writers did.
 * Labelled `concurrency` so the TSan run picks it up.
 */
#include <criterion/criterion.h>
#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ndb_vec.h"

#define D 12
#define WRITERS 2
#define IDS_PER_WRITER 400
#define OPS 600

static ndb_vec_store *store;
static int stop_flag; /* atomic */

typedef struct writer {
    int w;
    float v[IDS_PER_WRITER][D];
    int live[IDS_PER_WRITER];
    uint64_t rng;
} writer;

static writer writers[WRITERS];

static float frand(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return (float)((*s >> 40) % 2001) / 1000.0f - 1.0f;
}

static void *writer_main(void *arg)
{
    writer *wr = arg;
    ndb_errmsg m;
    char id[32];
    for (int op = 0; op < OPS; op++) {
        int i = (int)((wr->rng >> 20) % IDS_PER_WRITER);
        frand(&wr->rng);
        snprintf(id, sizeof id, "w%d-%d", wr->w, i);
        int kind = op % 5;
        if (kind == 4 && wr->live[i]) {
            cr_assert_eq(ndb_vec_delete(store, "c", id, &m), NDB_OK, "%s", m.text);
            wr->live[i] = 0;
        } else if (kind == 3) {
            /* insert_many of 8 fresh-or-replaced ids via upsert */
            char ids[8][32];
            ndb_vec_item items[8];
            int idx[8];
            for (int t = 0; t < 8; t++) {
                idx[t] = (i + t * 37) % IDS_PER_WRITER;
                snprintf(ids[t], sizeof ids[t], "w%d-%d", wr->w, idx[t]);
                for (int j = 0; j < D; j++)
                    wr->v[idx[t]][j] = frand(&wr->rng);
                wr->v[idx[t]][0] = 2.0f; /* never zero */
                items[t] = (ndb_vec_item){ids[t], wr->v[idx[t]]};
            }
            cr_assert_eq(ndb_vec_insert_many(store, "c", items, 8, D, 1, &m), NDB_OK, "%s", m.text);
            for (int t = 0; t < 8; t++)
                wr->live[idx[t]] = 1;
        } else {
            for (int j = 0; j < D; j++)
                wr->v[i][j] = frand(&wr->rng);
            wr->v[i][0] = 2.0f;
            cr_assert_eq(ndb_vec_upsert(store, "c", id, wr->v[i], D, &m), NDB_OK, "%s", m.text);
            wr->live[i] = 1;
        }
    }
    return NULL;
}

static void check_consistent(const ndb_vec_result *r, const float *q, uint32_t k)
{
    cr_assert(r->n <= k);
    for (size_t i = 0; i < r->n; i++) {
        if (i > 0)
            cr_assert(r->hits[i - 1].score >= r->hits[i].score, "results not sorted");
        double s = 0;
        for (int j = 0; j < D; j++)
            s += (double)q[j] * r->hits[i].vector[j];
        cr_assert(fabs(s - r->hits[i].score) < 1e-4, "score %g does not match its vector (%g)", r->hits[i].score, s);
        for (size_t t = 0; t < i; t++)
            cr_assert(strcmp(r->hits[t].id, r->hits[i].id) != 0, "duplicate id %s", r->hits[i].id);
    }
}

static int keep_w0(void *ctx, const char *id, size_t len)
{
    (void)ctx;
    return len > 2 && id[1] == '0';
}

static void *searcher_main(void *arg)
{
    uint64_t rng = (uint64_t)(uintptr_t)arg * 7919 + 1;
    ndb_errmsg m;
    float q[8 * D];
    int rounds = 0;
    while (!__atomic_load_n(&stop_flag, __ATOMIC_ACQUIRE) || rounds < 5) {
        for (int i = 0; i < 8 * D; i++)
            q[i] = frand(&rng);
        ndb_vec_query qq = {.k = 15, .with_vectors = 1};
        if (rounds % 3 == 2) {
            qq.filter = keep_w0;
        }
        ndb_vec_result *r;
        if (rounds % 2) {
            cr_assert_eq(ndb_vec_search_batch(store, "c", q, 8, D, &qq, &r, &m), NDB_OK, "%s", m.text);
            for (int t = 0; t < 8; t++)
                check_consistent(&r[t], q + t * D, 15);
            ndb_vec_results_free(r, 8);
        } else {
            cr_assert_eq(ndb_vec_search(store, "c", q, D, &qq, &r, &m), NDB_OK, "%s", m.text);
            check_consistent(r, q, 15);
            if (qq.filter)
                for (size_t i = 0; i < r->n; i++)
                    cr_assert(r->hits[i].id[1] == '0');
            ndb_vec_results_free(r, 1);
        }
        rounds++;
    }
    return NULL;
}

static void *merger_main(void *arg)
{
    (void)arg;
    ndb_errmsg m;
    while (!__atomic_load_n(&stop_flag, __ATOMIC_ACQUIRE)) {
        cr_assert_eq(ndb_vec_merge(store, "c", &m), NDB_OK, "%s", m.text);
        usleep(20000);
    }
    return NULL;
}

static void *dropper_main(void *arg)
{
    (void)arg;
    ndb_errmsg m;
    float v[D] = {1};
    for (int round = 0; round < 20; round++) {
        cr_assert_eq(ndb_vec_create(store, "tmp", D, NDB_VEC_DOT, &m), NDB_OK, "%s", m.text);
        for (int i = 0; i < 20; i++) {
            char id[16];
            snprintf(id, sizeof id, "t%d", i);
            ndb_status st = ndb_vec_insert(store, "tmp", id, v, D, &m);
            cr_assert(st == NDB_OK, "%s", m.text);
        }
        cr_assert_eq(ndb_vec_drop(store, "tmp", &m), NDB_OK, "%s", m.text);
    }
    return NULL;
}

static void *tmp_searcher_main(void *arg)
{
    (void)arg;
    ndb_errmsg m;
    float q[D] = {1};
    while (!__atomic_load_n(&stop_flag, __ATOMIC_ACQUIRE)) {
        ndb_vec_query qq = {.k = 5};
        ndb_vec_result *r;
        ndb_status st = ndb_vec_search(store, "tmp", q, D, &qq, &r, &m);
        cr_assert(st == NDB_OK || st == NDB_ENOTFOUND, "status %d: %s", st, m.text);
        if (st == NDB_OK)
            ndb_vec_results_free(r, 1);
    }
    return NULL;
}

Test(concurrency, writers_searchers_merges_and_drops, .timeout = 180)
{
    char dir[] = "/tmp/ndbvec-conc-XXXXXX";
    cr_assert(mkdtemp(dir));
    ndb_vec_options o;
    ndb_vec_options_default(&o);
    o.threads = 2;
    o.segment_bytes = 64 * 100; /* seals every 100 rows */
    o.sync = 0;                 /* the fsync path is covered elsewhere; keep this fast */
    ndb_errmsg m;
    cr_assert_eq(ndb_vec_open(dir, &o, &store, &m), NDB_OK, "%s", m.text);
    cr_assert_eq(ndb_vec_create(store, "c", D, NDB_VEC_DOT, &m), NDB_OK);
    pthread_t wt[WRITERS], st[2], mt, dt, ts;
    for (int w = 0; w < WRITERS; w++) {
        writers[w].w = w;
        writers[w].rng = 0x9E3779B97F4A7C15ull * (uint64_t)(w + 1);
        pthread_create(&wt[w], NULL, writer_main, &writers[w]);
    }
    for (int i = 0; i < 2; i++)
        pthread_create(&st[i], NULL, searcher_main, (void *)(uintptr_t)(i + 1));
    pthread_create(&mt, NULL, merger_main, NULL);
    pthread_create(&dt, NULL, dropper_main, NULL);
    pthread_create(&ts, NULL, tmp_searcher_main, NULL);
    for (int w = 0; w < WRITERS; w++)
        pthread_join(wt[w], NULL);
    pthread_join(dt, NULL);
    __atomic_store_n(&stop_flag, 1, __ATOMIC_RELEASE);
    for (int i = 0; i < 2; i++)
        pthread_join(st[i], NULL);
    pthread_join(mt, NULL);
    pthread_join(ts, NULL);

    /* the final state is exactly what the writers did, before and after reopen */
    for (int pass = 0; pass < 2; pass++) {
        size_t live = 0;
        for (int w = 0; w < WRITERS; w++)
            for (int i = 0; i < IDS_PER_WRITER; i++) {
                char id[32];
                float got[D];
                snprintf(id, sizeof id, "w%d-%d", w, i);
                ndb_status s = ndb_vec_get(store, "c", id, got, D, NULL, &m);
                if (writers[w].live[i]) {
                    live++;
                    cr_assert_eq(s, NDB_OK, "%s missing (pass %d)", id, pass);
                    cr_assert(memcmp(got, writers[w].v[i], sizeof got) == 0, "%s has a stale vector", id);
                } else {
                    cr_assert_eq(s, NDB_ENOTFOUND, "%s should be deleted (pass %d)", id, pass);
                }
            }
        ndb_vec_info info;
        cr_assert_eq(ndb_vec_stats(store, "c", &info, &m), NDB_OK);
        cr_assert_eq(info.rows, live);
        ndb_vec_info *list;
        size_t n;
        cr_assert_eq(ndb_vec_list(store, &list, &n), NDB_OK);
        cr_assert_eq(n, 1, "the dropped collection is still listed");
        free(list);
        ndb_vec_close(store);
        cr_assert_eq(ndb_vec_open(dir, &o, &store, &m), NDB_OK, "%s", m.text);
    }
    ndb_vec_close(store);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    cr_assert_eq(system(cmd), 0);
}

/* Concurrent single-vector inserts with fsync on: all must be durable and
 * present; they should share fsyncs (group commit). The sharing ratio is
 * logged, not asserted (it depends on timing). */
#include "vio.h"

typedef struct gc_arg {
    int t;
} gc_arg;

static void *gc_writer(void *va)
{
    gc_arg *a = va;
    ndb_errmsg m;
    for (int i = 0; i < 60; i++) {
        char id[32];
        float v[D] = {0};
        v[0] = 1.0f + (float)a->t;
        v[1] = (float)i;
        snprintf(id, sizeof id, "g%d-%d", a->t, i);
        cr_assert_eq(ndb_vec_insert(store, "g", id, v, D, &m), NDB_OK, "%s", m.text);
    }
    return NULL;
}

Test(concurrency, group_commit_shares_fsyncs, .timeout = 120)
{
    char dir[] = "/tmp/ndbvec-gc-XXXXXX";
    cr_assert(mkdtemp(dir));
    ndb_vec_options o;
    ndb_vec_options_default(&o);
    ndb_errmsg m;
    cr_assert_eq(ndb_vec_open(dir, &o, &store, &m), NDB_OK, "%s", m.text);
    cr_assert_eq(ndb_vec_create(store, "g", D, NDB_VEC_L2, &m), NDB_OK);
    long before = vio_sync_count();
    enum { T = 4 };
    pthread_t th[T];
    gc_arg args[T];
    for (int t = 0; t < T; t++) {
        args[t].t = t;
        pthread_create(&th[t], NULL, gc_writer, &args[t]);
    }
    for (int t = 0; t < T; t++)
        pthread_join(th[t], NULL);
    long syncs = vio_sync_count() - before;
    cr_log_info("group commit: %d inserts, %ld fsyncs", T * 60, syncs);
    cr_assert(syncs >= 1 && syncs <= T * 60, "%ld fsyncs for %d inserts", syncs, T * 60);
    ndb_vec_close(store);
    cr_assert_eq(ndb_vec_open(dir, &o, &store, &m), NDB_OK, "%s", m.text);
    ndb_vec_info info;
    cr_assert_eq(ndb_vec_stats(store, "g", &info, &m), NDB_OK);
    cr_assert_eq(info.rows, T * 60);
    for (int t = 0; t < T; t++)
        for (int i = 0; i < 60; i++) {
            char id[32];
            float got[D];
            snprintf(id, sizeof id, "g%d-%d", t, i);
            cr_assert_eq(ndb_vec_get(store, "g", id, got, D, NULL, &m), NDB_OK, "%s lost", id);
            cr_assert(got[0] == 1.0f + (float)t && got[1] == (float)i);
        }
    ndb_vec_close(store);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    cr_assert_eq(system(cmd), 0);
}
