/*
 * stress_concurrency.c — vector collections under concurrent use, as a plain
 * program (no Criterion) so that `make tsan-test` runs it under TSan.
 *
 * 1. Writers (inserts, upserts, deletes of documents with vectors), searchers
 *    (single, batched, filtered), explicit merges, changes of index (the
 *    collection is HNSW and searched through its graph, rebuilt with other
 *    parameters, exact for a while) and a collection created, filled and
 *    dropped while it is searched (and, every other time, indexed). Every result must be internally
 *    consistent (sorted, no duplicate ids, each score equal to the query
 *    against the returned vector, each document the version of that vector);
 *    the final state, before and after a reopen, is exactly what the writers
 *    did.
 * 2. Concurrent upserts of one id from several threads while readers get it
 *    and search for it: every call succeeds and every reader sees one complete
 *    version (the document's "v" and the vector agree), never an error.
 */
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ndb_doc.h"
#include "ndb_kv.h"
#include "ndb_vec.h"

static void fail(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "vec_stress: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    exit(1);
}
#define CHECK(cond, ...)                                                                                            \
    do {                                                                                                            \
        if (!(cond))                                                                                                \
            fail(__VA_ARGS__);                                                                                      \
    } while (0)

#define D 12
#define WRITERS 2
#define IDS_PER_WRITER 300
#define OPS 400

static char dir[] = "/tmp/ndbvec-stress-XXXXXX";
static ndb_kv *kv;
static ndb_doc_db *docs;
static ndb_vec_db *vdb;
static int stop_flag; /* atomic */

static void quiet(void *ctx, const char *line)
{
    (void)ctx;
    (void)line;
}

static void open_all(void)
{
    char p[128];
    ndb_errmsg m = {{0}};
    ndb_kv_options ko;
    ndb_kv_options_init(&ko);
    ko.memtable_bytes = 1u << 20;
    snprintf(p, sizeof p, "%s/kv", dir);
    CHECK(ndb_kv_open(p, &ko, &kv, &m) == NDB_OK, "kv open: %s", m.text);
    ndb_doc_options dopt;
    ndb_doc_options_init(&dopt);
    dopt.log = quiet;
    CHECK(ndb_doc_open(kv, &dopt, &docs, &m) == NDB_OK, "doc open: %s", m.text);
    ndb_vec_options o;
    ndb_vec_options_default(&o);
    o.threads = 2;
    o.segment_bytes = 64 * 100; /* a segment every 100 rows */
    o.exact_bytes = 64 * 50;    /* HNSW collections use their graph from 50 rows */
    o.log = quiet;
    snprintf(p, sizeof p, "%s/vseg", dir);
    CHECK(ndb_vec_open(kv, docs, p, &o, &vdb, &m) == NDB_OK, "vec open: %s", m.text);
}

/* HNSW with small parameters, so the graph is built quickly and rebuilt often */
static const ndb_vec_index hnsw_ix = {.kind = NDB_VEC_INDEX_HNSW, .m = 4, .ef_construction = 32};

static void close_all(void)
{
    ndb_vec_close(vdb);
    ndb_doc_close(docs);
    CHECK(ndb_kv_close(kv) == NDB_OK, "kv close");
}

static float frand(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return (float)((*s >> 40) % 2001) / 1000.0f - 1.0f;
}

/* An encoded {"w": w, "v": version}: caller frees. */
static void *doc_of(int w, int version, size_t *len)
{
    char json[64];
    snprintf(json, sizeof json, "{\"w\":%d,\"v\":%d}", w, version);
    void *d;
    ndb_errmsg m = {{0}};
    CHECK(ndb_doc_from_json(json, strlen(json), &d, len, &m) == NDB_OK, "json: %s", m.text);
    return d;
}

static int64_t field(const void *doc, size_t len, const char *f)
{
    ndb_doc_val r, v;
    if (ndb_doc_root(doc, len, &r) != NDB_OK || ndb_doc_get_field(&r, f, strlen(f), &v) != NDB_OK ||
        v.type != NDB_DOC_INT)
        return -1;
    return v.u.i;
}

/* ---- 1. writers, searchers, merges and drops ------------------------------- */

typedef struct writer {
    int w;
    float v[IDS_PER_WRITER][D];
    int version[IDS_PER_WRITER];
    int live[IDS_PER_WRITER];
    uint64_t rng;
} writer;

static writer writers[WRITERS];

static void set_vec(writer *wr, int i, int version)
{
    for (int j = 0; j < D; j++)
        wr->v[i][j] = frand(&wr->rng);
    wr->v[i][0] = 2.0f; /* never zero */
    wr->version[i] = version;
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
        size_t dl;
        if (kind == 4 && wr->live[i]) {
            CHECK(ndb_vec_delete(vdb, "c", id, &m) == NDB_OK, "delete %s: %s", id, m.text);
            wr->live[i] = 0;
        } else if (kind == 3 && !wr->live[i]) {
            char json[64];
            set_vec(wr, i, op);
            snprintf(json, sizeof json, "{\"_id\":\"%s\",\"w\":%d,\"v\":%d}", id, wr->w, op);
            void *d;
            CHECK(ndb_doc_from_json(json, strlen(json), &d, &dl, &m) == NDB_OK, "json");
            ndb_vec_item it = {d, dl, wr->v[i]};
            CHECK(ndb_vec_insert(vdb, "c", &it, 1, D, NULL, &m) == NDB_OK, "insert %s: %s", id, m.text);
            free(d);
            wr->live[i] = 1;
        } else {
            set_vec(wr, i, op);
            void *d = doc_of(wr->w, op, &dl);
            ndb_vec_item it = {d, dl, wr->v[i]};
            CHECK(ndb_vec_upsert(vdb, "c", id, &it, D, NULL, &m) == NDB_OK, "upsert %s: %s", id, m.text);
            free(d);
            wr->live[i] = 1;
        }
    }
    return NULL;
}

static int graph_searches; /* atomic: results that came through a graph */

static void check_consistent(const ndb_vec_result *r, const float *q, uint32_t k, int only_w0)
{
    CHECK(r->n <= k, "too many results");
    if (strncmp(r->plan.path, "hnsw", 4) == 0)
        __atomic_add_fetch(&graph_searches, 1, __ATOMIC_RELAXED);
    for (size_t i = 0; i < r->n; i++) {
        const ndb_vec_hit *h = &r->hits[i];
        if (i > 0)
            CHECK(r->hits[i - 1].score >= h->score, "results not sorted");
        double s = 0;
        for (int j = 0; j < D; j++)
            s += (double)q[j] * h->vector[j];
        CHECK(fabs(s - h->score) < 1e-4, "score %g does not match its vector (%g)", h->score, s);
        CHECK(h->doc != NULL, "hit %s without its document", h->id);
        CHECK(field(h->doc, h->doc_len, "w") == h->id[1] - '0', "hit %s carries another document", h->id);
        CHECK(!only_w0 || h->id[1] == '0', "the filter let %s through", h->id);
        for (size_t t = 0; t < i; t++)
            CHECK(strcmp(r->hits[t].id, h->id) != 0, "duplicate id %s", h->id);
    }
}

static void *searcher_main(void *arg)
{
    uint64_t rng = (uint64_t)(uintptr_t)arg * 7919 + 1;
    ndb_errmsg m;
    float q[8 * D];
    size_t fl;
    void *flt = NULL;
    CHECK(ndb_doc_from_json("{\"w\":0}", 7, &flt, &fl, &m) == NDB_OK, "json");
    int rounds = 0;
    while (!__atomic_load_n(&stop_flag, __ATOMIC_ACQUIRE) || rounds < 5) {
        for (int i = 0; i < 8 * D; i++)
            q[i] = frand(&rng);
        ndb_vec_query qq = {.k = 15, .with_vectors = 1, .with_documents = 1};
        int filtered = rounds % 3 == 2;
        if (filtered) {
            qq.filter = flt;
            qq.filter_len = fl;
        }
        ndb_vec_result *r;
        if (rounds % 2) {
            CHECK(ndb_vec_search_batch(vdb, "c", q, 8, D, &qq, &r, &m) == NDB_OK, "batch: %s", m.text);
            for (int t = 0; t < 8; t++)
                check_consistent(&r[t], q + t * D, 15, filtered);
            ndb_vec_results_free(r, 8);
        } else {
            CHECK(ndb_vec_search(vdb, "c", q, D, &qq, &r, &m) == NDB_OK, "search: %s", m.text);
            check_consistent(r, q, 15, filtered);
            ndb_vec_results_free(r, 1);
        }
        rounds++;
    }
    free(flt);
    return NULL;
}

/* The index of c changed under load: rebuilds with other parameters and
 * quantizations, a stretch exact and back (the graph dropped and built again). */
static void *indexer_main(void *arg)
{
    (void)arg;
    ndb_errmsg m;
    for (int round = 0; !__atomic_load_n(&stop_flag, __ATOMIC_ACQUIRE); round++) {
        ndb_vec_index ix = {round % 5 == 4 ? NDB_VEC_INDEX_EXACT : NDB_VEC_INDEX_HNSW, 4 + round % 3 * 2, 32,
                            (ndb_vec_quant)(round % 3), 0}; /* none, int8, float16 */
        CHECK(ndb_vec_set_index(vdb, "c", &ix, &m) == NDB_OK, "set_index: %s", m.text);
        usleep(50000);
    }
    return NULL;
}

static void *merger_main(void *arg)
{
    (void)arg;
    ndb_errmsg m;
    while (!__atomic_load_n(&stop_flag, __ATOMIC_ACQUIRE)) {
        CHECK(ndb_vec_merge(vdb, "c", &m) == NDB_OK, "merge: %s", m.text);
        usleep(20000);
    }
    return NULL;
}

static void *dropper_main(void *arg)
{
    (void)arg;
    ndb_errmsg m;
    float v[D] = {1};
    ndb_vec_item items[50];
    for (int i = 0; i < 50; i++)
        items[i] = (ndb_vec_item){NULL, 0, v};
    for (int round = 0; round < 15; round++) {
        CHECK(ndb_vec_create(vdb, "tmp", D, NDB_VEC_DOT, round % 2 ? &hnsw_ix : NULL, &m) == NDB_OK,
              "create tmp: %s", m.text);
        /* 50 to 300 rows at 100 per segment: dropped while segments are queued or being written */
        for (int i = 0; i <= round % 6; i++)
            CHECK(ndb_vec_insert(vdb, "tmp", items, 50, D, NULL, &m) == NDB_OK, "insert tmp: %s", m.text);
        CHECK(ndb_vec_drop(vdb, "tmp", &m) == NDB_OK, "drop tmp: %s", m.text);
    }
    return NULL;
}

static void *tmp_searcher_main(void *arg)
{
    (void)arg;
    ndb_errmsg m;
    float q[D] = {1};
    while (!__atomic_load_n(&stop_flag, __ATOMIC_ACQUIRE)) {
        ndb_vec_query qq = {.k = 5, .with_documents = 1};
        ndb_vec_result *r;
        ndb_status st = ndb_vec_search(vdb, "tmp", q, D, &qq, &r, &m);
        CHECK(st == NDB_OK || st == NDB_ENOTFOUND, "tmp search: status %d: %s", st, m.text);
        if (st == NDB_OK)
            ndb_vec_results_free(r, 1);
    }
    return NULL;
}

static void check_final(int pass)
{
    ndb_errmsg m;
    size_t live = 0;
    for (int w = 0; w < WRITERS; w++)
        for (int i = 0; i < IDS_PER_WRITER; i++) {
            char id[32];
            void *doc;
            size_t dl;
            snprintf(id, sizeof id, "w%d-%d", w, i);
            float *got;
            ndb_status s = ndb_vec_get(vdb, "c", id, &doc, &dl, &got, NULL, &m);
            if (writers[w].live[i]) {
                live++;
                CHECK(s == NDB_OK, "%s missing (pass %d): %s", id, pass, m.text);
                CHECK(memcmp(got, writers[w].v[i], sizeof writers[w].v[i]) == 0, "%s has a stale vector", id);
                free(got);
                CHECK(field(doc, dl, "v") == writers[w].version[i], "%s has a stale document", id);
                free(doc);
            } else {
                CHECK(s == NDB_ENOTFOUND, "%s should be deleted (pass %d)", id, pass);
            }
        }
    ndb_vec_info info;
    CHECK(ndb_vec_stats(vdb, "c", &info, &m) == NDB_OK, "stats");
    CHECK(info.rows == live, "%llu rows, %zu live", (unsigned long long)info.rows, live);
    ndb_vec_info *list;
    size_t n;
    CHECK(ndb_vec_list(vdb, &list, &n) == NDB_OK, "list");
    CHECK(n == 2, "%zu vector collections listed, want c and one", n);
    free(list);
}

static void writers_searchers_merges_and_drops(void)
{
    ndb_errmsg m;
    CHECK(ndb_vec_create(vdb, "c", D, NDB_VEC_DOT, &hnsw_ix, &m) == NDB_OK, "create: %s", m.text);
    pthread_t wt[WRITERS], st[2], mt, dt, ts, it;
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
    pthread_create(&it, NULL, indexer_main, NULL);
    for (int w = 0; w < WRITERS; w++)
        pthread_join(wt[w], NULL);
    pthread_join(dt, NULL);
    __atomic_store_n(&stop_flag, 1, __ATOMIC_RELEASE);
    for (int i = 0; i < 2; i++)
        pthread_join(st[i], NULL);
    pthread_join(mt, NULL);
    pthread_join(ts, NULL);
    pthread_join(it, NULL);
    CHECK(graph_searches > 0, "no search went through the graph");
}

/* ---- 2. concurrent upserts of one id ------------------------------------------ */

#define UPSERTERS 4
#define UPSERTS 150
static int readers_stop; /* atomic */

static void *upserter_main(void *arg)
{
    int t = (int)(uintptr_t)arg;
    ndb_errmsg m;
    for (int i = 0; i < UPSERTS; i++) {
        int v = t * 100000 + i + 1;
        float vec[D] = {(float)v, 1};
        size_t dl;
        void *d = doc_of(t, v, &dl);
        ndb_vec_item it = {d, dl, vec};
        CHECK(ndb_vec_upsert(vdb, "one", "the-id", &it, D, NULL, &m) == NDB_OK, "upsert: %s", m.text);
        free(d);
    }
    return NULL;
}

static void *reader_main(void *arg)
{
    (void)arg;
    ndb_errmsg m;
    long reads = 0;
    while (!__atomic_load_n(&readers_stop, __ATOMIC_ACQUIRE) || reads < 10) {
        float *got;
        void *doc;
        size_t dl;
        CHECK(ndb_vec_get(vdb, "one", "the-id", &doc, &dl, &got, NULL, &m) == NDB_OK, "get: %s", m.text);
        CHECK((float)field(doc, dl, "v") == got[0], "document v=%lld with the vector of %g",
              (long long)field(doc, dl, "v"), got[0]);
        free(doc);
        free(got);
        float q[D] = {0, 1};
        ndb_vec_query qq = {.k = 5, .with_vectors = 1, .with_documents = 1};
        ndb_vec_result *r;
        CHECK(ndb_vec_search(vdb, "one", q, D, &qq, &r, &m) == NDB_OK, "search: %s", m.text);
        CHECK(r->n <= 1, "one id, %zu hits", r->n);
        if (r->n)
            CHECK((float)field(r->hits[0].doc, r->hits[0].doc_len, "v") == r->hits[0].vector[0],
                  "a hit with another version's document");
        ndb_vec_results_free(r, 1);
        reads++;
    }
    return NULL;
}

static void concurrent_upserts_of_one_id(void)
{
    ndb_errmsg m;
    CHECK(ndb_vec_create(vdb, "one", D, NDB_VEC_DOT, NULL, &m) == NDB_OK, "create: %s", m.text);
    float vec[D] = {1, 1};
    size_t dl;
    void *d = doc_of(0, 1, &dl);
    ndb_vec_item it = {d, dl, vec};
    CHECK(ndb_vec_upsert(vdb, "one", "the-id", &it, D, NULL, &m) == NDB_OK, "first upsert: %s", m.text);
    free(d);
    pthread_t up[UPSERTERS], rd[2];
    for (int t = 0; t < UPSERTERS; t++)
        pthread_create(&up[t], NULL, upserter_main, (void *)(uintptr_t)t);
    for (int t = 0; t < 2; t++)
        pthread_create(&rd[t], NULL, reader_main, NULL);
    for (int t = 0; t < UPSERTERS; t++)
        pthread_join(up[t], NULL);
    __atomic_store_n(&readers_stop, 1, __ATOMIC_RELEASE);
    for (int t = 0; t < 2; t++)
        pthread_join(rd[t], NULL);
    ndb_vec_info info;
    CHECK(ndb_vec_stats(vdb, "one", &info, &m) == NDB_OK && info.rows == 1, "one id, %llu rows",
          (unsigned long long)info.rows);
}

int main(void)
{
    CHECK(mkdtemp(dir) != NULL, "mkdtemp");
    open_all();
    writers_searchers_merges_and_drops();
    concurrent_upserts_of_one_id();
    check_final(0);
    close_all();
    open_all();
    check_final(1);
    close_all();
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    CHECK(system(cmd) == 0, "cleanup");
    printf("vec_stress: ok\n");
    return 0;
}
