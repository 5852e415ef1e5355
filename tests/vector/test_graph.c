/*
 * test_graph.c — HNSW collections through the public API (vector/ndb_vec.h):
 * recall against the exact search on seeded clustered data, fresh rows,
 * deletes and upserts seen at once, filters at 50%, 10%, 1% and 0.1% giving
 * k hits whenever k match, min_score, the graph file reopened as it was and
 * rebuilt identically when damaged, churn keeping the graph bounded, changes
 * of index, and kill -9 while the graph is built or written.
 */
#include <math.h>
#include <signal.h>
#include <sys/wait.h>
#include <time.h>

#include "vtest.h"

#define D 64       /* 20,000 rows of 256 bytes: above NDB_VEC_EXACT_BYTES, so searches use the graph */
#define N 20000
#define NC 64      /* clusters */
#define NOISE 1.0f
#define Q 100
#define K 10
#define TARGET 0.95 /* recall@10 the defaults must reach (measured here: see the asserts' messages) */

static uint64_t rs;
static double gauss(void)
{
    rs ^= rs << 13;
    rs ^= rs >> 7;
    rs ^= rs << 17;
    double u = ((double)(rs >> 11) + 0.5) / 9007199254740992.0;
    rs ^= rs << 13;
    rs ^= rs >> 7;
    rs ^= rs << 17;
    double v = ((double)(rs >> 11) + 0.5) / 9007199254740992.0;
    return sqrt(-2 * log(u)) * cos(6.283185307179586 * v);
}

/* n vectors around NC centres, from seed. */
static float *data(uint64_t seed, size_t n)
{
    rs = seed;
    float *c = malloc(sizeof(float) * NC * D), *v = malloc(sizeof(float) * n * D);
    for (size_t i = 0; i < NC * D; i++)
        c[i] = (float)gauss();
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < D; j++)
            v[i * D + j] = c[(i % NC) * D + j] + NOISE * (float)gauss();
    free(c);
    return v;
}

/* Inserts vectors [from, to) as documents d<i> with g = i % 1000 and c = i %
 * NC (the vector's cluster). */
static void load(tv *t, const char *coll, const float *v, size_t from, size_t to)
{
    ndb_errmsg m = {{0}};
    for (size_t i = from; i < to;) {
        ndb_vec_item items[256];
        void *docs[256];
        size_t b = to - i < 256 ? to - i : 256;
        for (size_t x = 0; x < b; x++) {
            char json[80];
            snprintf(json, sizeof json, "{\"_id\":\"d%zu\",\"g\":%zu,\"c\":%zu}", i + x, (i + x) % 1000,
                     (i + x) % NC);
            docs[x] = tv_doc(json, &items[x].doc_len);
            items[x].doc = docs[x];
            items[x].vector = v + (i + x) * D;
        }
        cr_assert_eq(ndb_vec_insert(t->vec, coll, items, b, D, NULL, &m), NDB_OK, "%s", m.text);
        for (size_t x = 0; x < b; x++)
            free(docs[x]);
        i += b;
    }
}

static ndb_vec_info stats(tv *t, const char *coll)
{
    ndb_vec_info info;
    ndb_errmsg m = {{0}};
    cr_assert_eq(ndb_vec_stats(t->vec, coll, &info, &m), NDB_OK, "%s", m.text);
    return info;
}

/* Waits (up to 5 minutes) until the graph holds every row. */
static ndb_vec_info wait_indexed(tv *t, const char *coll)
{
    for (int i = 0; i < 30000; i++) {
        ndb_vec_info s = stats(t, coll);
        if (!s.building && s.indexed == s.rows)
            return s;
        struct timespec ts = {0, 10000000};
        nanosleep(&ts, NULL);
    }
    cr_assert_fail("the graph of %s was not built in 5 minutes", coll);
    return stats(t, coll);
}

static ndb_vec_result *search(tv *t, const char *coll, const float *q, uint32_t k, const char *filter, int exact)
{
    ndb_vec_query qq = {.k = k, .exact = exact};
    size_t fl = 0;
    void *f = filter ? tv_doc(filter, &fl) : NULL;
    qq.filter = f;
    qq.filter_len = fl;
    ndb_vec_result *r;
    ndb_errmsg m = {{0}};
    cr_assert_eq(ndb_vec_search(t->vec, coll, q, D, &qq, &r, &m), NDB_OK, "%s", m.text);
    free(f);
    return r;
}

/* The query for i: data point i*37 % n, perturbed. */
static void query(const float *v, size_t n, int i, float *q)
{
    memcpy(q, v + (size_t)(i * 37 % (int)n) * D, sizeof(float) * D);
    for (int j = 0; j < D; j++)
        q[j] += NOISE * (float)gauss(); /* a new point of the distribution, not a copy of one */
}

/* Recall@K over Q queries against the exact search, with the same filter;
 * every hit must be one the exact search could return (k hits whenever the
 * exact search has k). Checks the plan's path when path is not NULL. */
static double recall(tv *t, const char *coll, const float *v, size_t n, const char *filter, const char *path)
{
    size_t found = 0, total = 0;
    float q[D];
    rs = 99;
    for (int i = 0; i < Q; i++) {
        query(v, n, i, q);
        ndb_vec_result *a = search(t, coll, q, K, filter, 0), *e = search(t, coll, q, K, filter, 1);
        cr_assert(strncmp(e->plan.path, "exact", 5) == 0, "exact search ran as %s", e->plan.path);
        cr_assert_eq(a->n, e->n, "query %d: %zu hits through the graph, %zu exact", i, a->n, e->n);
        if (path)
            cr_assert_str_eq(a->plan.path, path, "query %d", i);
        for (size_t x = 0; x < e->n; x++)
            for (size_t y = 0; y < a->n; y++)
                found += strcmp(e->hits[x].id, a->hits[y].id) == 0;
        total += e->n;
        ndb_vec_results_free(a, 1);
        ndb_vec_results_free(e, 1);
    }
    double r = total ? (double)found / (double)total : 1.0;
    cr_log_info("%s %s: recall@10 %.4f", coll, filter ? filter : "(no filter)", r);
    return r;
}

static const ndb_vec_index hnsw_default = {.kind = NDB_VEC_INDEX_HNSW};

static void recall_for(ndb_vec_metric metric)
{
    tv t;
    tv_init(&t, 0);
    tv_open(&t);
    ndb_errmsg m = {{0}};
    cr_assert_eq(ndb_vec_create(t.vec, "c", D, metric, &hnsw_default, &m), NDB_OK, "%s", m.text);
    float *v = data(7, N);
    load(&t, "c", v, 0, N);
    ndb_vec_info s = wait_indexed(&t, "c");
    cr_assert_eq(s.index.kind, NDB_VEC_INDEX_HNSW);
    cr_assert_eq(s.index.m, NDB_VEC_HNSW_M);
    cr_assert_eq(s.index.ef_construction, NDB_VEC_HNSW_EF_CONSTRUCTION);
    cr_assert_eq(s.graph_nodes, N);
    cr_assert_gt(s.graph_bytes, (uint64_t)N * D * 4);
    double r = recall(&t, "c", v, N, NULL, "hnsw");
    cr_assert_geq(r, TARGET, "recall@10 %.3f under %s", r, ndb_vec_metric_name(metric));
    float q[D];
    query(v, N, 3, q);
    ndb_vec_result *a = search(&t, "c", q, K, NULL, 0);
    cr_assert_eq(a->plan.graph_nodes, N);
    cr_assert_eq(a->plan.exact_rows, 0, "every row is in the graph");
    cr_assert_eq(a->plan.ef, NDB_VEC_EF);
    ndb_vec_results_free(a, 1);
    tv_close(&t);
    tv_rm(&t);
    free(v);
}

Test(graph, recall_cosine, .timeout = 600) { recall_for(NDB_VEC_COSINE); }

/* An int8 graph: its vectors take a quarter of the bytes, and its hits,
 * rescored with the float32 rows, carry exact scores and the same recall. */
static void quant_rescored(ndb_vec_quant quant)
{
    const char *qn = ndb_vec_quant_name(quant);
    tv t;
    tv_init(&t, 0);
    tv_open(&t);
    ndb_errmsg m = {{0}};
    ndb_vec_index ix = {.kind = NDB_VEC_INDEX_HNSW, .quantization = quant};
    cr_assert_eq(ndb_vec_create(t.vec, "c", D, NDB_VEC_L2, &ix, &m), NDB_OK, "%s", m.text);
    float *v = data(43, N);
    load(&t, "c", v, 0, N);
    ndb_vec_info s = wait_indexed(&t, "c");
    cr_assert(s.index.quantization == quant && s.index.oversample == NDB_VEC_OVERSAMPLE);
    /* records: 64 codes (int8) or 128 bytes of halves (float16) + 16 + 33 links + label, where float32
     * vectors and level-0 links alone take 256 + 132 */
    cr_assert_lt(s.graph_bytes, (uint64_t)N * (quant == NDB_VEC_QUANT_INT8 ? D * 4 : D * 4 + 4 * (2 * NDB_VEC_HNSW_M + 1)),
                 "%s: %llu bytes", qn, (unsigned long long)s.graph_bytes);
    double r = recall(&t, "c", v, N, NULL, "hnsw");
    cr_assert_geq(r, TARGET, "recall@10 %.3f with %s, rescored", r, qn);
    float q[D];
    rs = 8;
    for (int i = 0; i < 20; i++) {
        query(v, N, i, q);
        ndb_vec_result *a = search(&t, "c", q, K, NULL, 0), *e = search(&t, "c", q, K, NULL, 1);
        for (size_t x = 0; x < a->n; x++)
            for (size_t y = 0; y < e->n; y++)
                if (strcmp(a->hits[x].id, e->hits[y].id) == 0)
                    cr_assert_eq(a->hits[x].score, e->hits[y].score, "%s: rescored %g, exact %g", a->hits[x].id,
                                 a->hits[x].score, e->hits[y].score);
        ndb_vec_results_free(a, 1);
        ndb_vec_results_free(e, 1);
    }
    /* the graph's file reopens quantized as it was */
    tv_close(&t);
    tv_open(&t);
    s = stats(&t, "c");
    cr_assert(!s.building && s.indexed == N && s.index.quantization == quant, "%s: building %d, %llu indexed", qn,
              s.building, (unsigned long long)s.indexed);
    r = recall(&t, "c", v, N, NULL, "hnsw");
    cr_assert_geq(r, TARGET, "recall@10 %.3f after a reopen", r);
    ix.oversample = 101;
    cr_assert_eq(ndb_vec_set_index(t.vec, "c", &ix, &m), NDB_EINVAL);
    cr_assert(strstr(m.text, "oversample"), "%s", m.text);
    tv_close(&t);
    tv_rm(&t);
    free(v);
}
Test(graph, recall_int8_rescored, .timeout = 600) { quant_rescored(NDB_VEC_QUANT_INT8); }
Test(graph, recall_float16_rescored, .timeout = 600) { quant_rescored(NDB_VEC_QUANT_F16); }
Test(graph, recall_l2, .timeout = 600) { recall_for(NDB_VEC_L2); }

/* Rows written after the graph caught up are found before it takes them in;
 * deleted and replaced rows are never returned. */
Test(graph, fresh_deleted_and_replaced_rows_are_seen_at_once, .timeout = 600)
{
    tv t;
    tv_init(&t, 0);
    tv_open(&t);
    ndb_errmsg m = {{0}};
    cr_assert_eq(ndb_vec_create(t.vec, "c", D, NDB_VEC_COSINE, &hnsw_default, &m), NDB_OK, "%s", m.text);
    float *v = data(11, N + 200);
    load(&t, "c", v, 0, N);
    wait_indexed(&t, "c");
    for (size_t i = N; i < N + 200; i++) {
        load(&t, "c", v, i, i + 1);
        ndb_vec_result *r = search(&t, "c", v + i * D, 1, NULL, 0);
        char id[16];
        snprintf(id, sizeof id, "d%zu", i);
        cr_assert(r->n == 1 && strcmp(r->hits[0].id, id) == 0, "a fresh row %s is not its own nearest (%s)", id,
                  r->n ? r->hits[0].id : "none");
        ndb_vec_results_free(r, 1);
    }
    for (size_t i = 0; i < 300; i += 3) {
        char id[16];
        snprintf(id, sizeof id, "d%zu", i);
        cr_assert_eq(ndb_vec_delete(t.vec, "c", id, &m), NDB_OK, "%s", m.text);
        ndb_vec_result *r = search(&t, "c", v + i * D, K, NULL, 0);
        cr_assert_eq(r->n, K);
        for (size_t h = 0; h < r->n; h++)
            cr_assert_str_neq(r->hits[h].id, id, "deleted %s returned", id);
        ndb_vec_results_free(r, 1);
        /* d(i+1) takes d(i+2)'s vector: searching for it finds both */
        snprintf(id, sizeof id, "d%zu", i + 1);
        size_t l;
        void *doc = tv_doc("{\"g\":1}", &l);
        ndb_vec_item it = {doc, l, v + (i + 2) * D};
        cr_assert_eq(ndb_vec_upsert(t.vec, "c", id, &it, D, NULL, &m), NDB_OK, "%s", m.text);
        free(doc);
        r = search(&t, "c", v + (i + 1) * D, 1, NULL, 0);
        cr_assert(r->n == 1 && strcmp(r->hits[0].id, id) != 0, "%s found by its old vector", id);
        ndb_vec_results_free(r, 1);
        r = search(&t, "c", v + (i + 2) * D, 2, NULL, 0);
        cr_assert_eq(r->n, 2);
        cr_assert(strcmp(r->hits[0].id, id) == 0 || strcmp(r->hits[1].id, id) == 0, "%s not found by its new vector",
                  id);
        ndb_vec_results_free(r, 1);
    }
    tv_close(&t);
    tv_rm(&t);
    free(v);
}

/* Filters keeping 50%, 10%, 1% and 0.1% of the documents (g = i % 1000,
 * independent of the clusters): k hits whenever k match, recall against the
 * exact filtered search, and the path the rule documents. */
Test(graph, filters_keep_k_hits_and_their_recall, .timeout = 600)
{
    tv t;
    tv_init(&t, 0);
    tv_open(&t);
    ndb_errmsg m = {{0}};
    cr_assert_eq(ndb_vec_create(t.vec, "c", D, NDB_VEC_L2, &hnsw_default, &m), NDB_OK, "%s", m.text);
    float *v = data(13, N);
    load(&t, "c", v, 0, N);
    wait_indexed(&t, "c");
    static const struct {
        const char *filter, *path;
    } cases[] = {
        {"{\"g\":{\"$lt\":500}}", "hnsw_postfiltered"}, /* 1/4 or more: post-filtered */
        {"{\"g\":{\"$lt\":100}}", "hnsw_filtered"},
        {"{\"g\":{\"$lt\":10}}", "hnsw_exact_filtered"}, /* below 1/16 of the nodes */
        {"{\"g\":{\"$lt\":1}}", "hnsw_exact_filtered"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        double r = recall(&t, "c", v, N, cases[i].filter, cases[i].path);
        cr_assert_geq(r, TARGET, "recall@10 %.3f with %s", r, cases[i].filter);
    }
    /* fewer matches than k: all of them */
    float q[D];
    query(v, N, 1, q);
    ndb_vec_result *r = search(&t, "c", q, K, "{\"_id\":{\"$in\":[\"d1\",\"d2\",\"d3\"]}}", 0);
    cr_assert_eq(r->n, 3);
    cr_assert_eq(r->plan.candidates, 3);
    ndb_vec_results_free(r, 1);
    tv_close(&t);
    tv_rm(&t);
    free(v);
}

/* With an index on g, the filters take the same paths: at 50% the index is
 * not used to find the half of the collection that matches (issue 15: 720
 * searches/s without the index, 175 with it, through the server on 5,000
 * rows), the graph is searched and its hits tested (post-filtered), and the
 * plan's candidates are the sample's estimate. */
Test(graph, filters_with_an_index_take_the_rule_paths, .timeout = 600)
{
    tv t;
    tv_init(&t, 0);
    tv_open(&t);
    ndb_errmsg m = {{0}};
    cr_assert_eq(ndb_vec_create(t.vec, "c", D, NDB_VEC_COSINE, &hnsw_default, &m), NDB_OK, "%s", m.text);
    float *v = data(19, N);
    load(&t, "c", v, 0, N);
    size_t sl;
    void *spec = tv_doc("{\"g\":1}", &sl);
    cr_assert_eq(ndb_doc_create_index(ndb_vec_documents(t.vec), "c", NULL, spec, sl, NULL, &m), NDB_OK, "%s",
                 m.text);
    free(spec);
    wait_indexed(&t, "c");
    static const struct {
        const char *filter, *path;
    } cases[] = {
        {"{\"g\":{\"$lt\":500}}", "hnsw_postfiltered"},
        {"{\"g\":{\"$gte\":300}}", "hnsw_postfiltered"},
        {"{\"g\":{\"$lt\":100}}", "hnsw_filtered"},
        {"{\"g\":{\"$lt\":10}}", "hnsw_exact_filtered"},
        {"{\"g\":{\"$lt\":1}}", "hnsw_exact_filtered"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        double r = recall(&t, "c", v, N, cases[i].filter, cases[i].path);
        cr_assert_geq(r, TARGET, "recall@10 %.3f with %s", r, cases[i].filter);
    }
    float q[D];
    query(v, N, 2, q);
    ndb_vec_result *r = search(&t, "c", q, K, "{\"g\":{\"$lt\":500}}", 0);
    cr_assert_str_eq(r->plan.path, "hnsw_postfiltered");
    cr_assert(r->plan.candidates >= N / 4 && r->plan.candidates <= 3 * N / 4, "estimated %llu of %d",
              (unsigned long long)r->plan.candidates, N / 2);
    cr_assert_eq(r->plan.ef, 2 * NDB_VEC_EF, "ef / share: about ef of the candidates match");
    ndb_vec_results_free(r, 1);
    tv_close(&t);
    tv_rm(&t);
    free(v);
}

/* A filter keeping half the collection, but the half far from the query (the
 * clusters 0 .. NC/2-1, moved 30 away along the first axis): the
 * post-filtered search finds none of its hits matching and the query runs
 * again filtered first, so k hits come back, all of them matching. */
Test(graph, post_filter_short_runs_again_filtered_first, .timeout = 600)
{
    tv t;
    tv_init(&t, 0);
    tv_open(&t);
    ndb_errmsg m = {{0}};
    cr_assert_eq(ndb_vec_create(t.vec, "c", D, NDB_VEC_L2, &hnsw_default, &m), NDB_OK, "%s", m.text);
    float *v = data(23, N);
    for (size_t i = 0; i < N; i++)
        v[i * D] += i % NC < NC / 2 ? 30.0f : 0.0f;
    load(&t, "c", v, 0, N);
    wait_indexed(&t, "c");
    size_t found = 0, total = 0;
    rs = 5;
    for (int i = 0; i < 20; i++) {
        float q[D];
        int from = i * 64 + 32 + i % 32; /* a row of one of the clusters NC/2 .. NC-1 */
        memcpy(q, v + (size_t)from * D, sizeof q);
        for (int j = 0; j < D; j++)
            q[j] += NOISE * (float)gauss();
        ndb_vec_result *a = search(&t, "c", q, K, "{\"c\":{\"$lt\":32}}", 0);
        ndb_vec_result *e = search(&t, "c", q, K, "{\"c\":{\"$lt\":32}}", 1);
        ndb_vec_result *u = search(&t, "c", q, 4 * K, NULL, 0);
        for (size_t x = 0; x < u->n; x++) /* so the first pass did come back short */
            cr_assert_geq(atoi(u->hits[x].id + 1) % NC, 32, "query %d: unfiltered hit %s", i, u->hits[x].id);
        cr_assert_eq(a->n, K, "query %d: %zu hits", i, a->n);
        cr_assert(strncmp(a->plan.path, "hnsw_filtered", 13) == 0, "query %d: the second run's plan, not %s", i,
                  a->plan.path);
        for (size_t x = 0; x < a->n; x++)
            cr_assert_lt(atoi(a->hits[x].id + 1) % NC, 32, "query %d: hit %s does not match", i, a->hits[x].id);
        for (size_t x = 0; x < e->n; x++)
            for (size_t y = 0; y < a->n; y++)
                found += strcmp(e->hits[x].id, a->hits[y].id) == 0;
        total += e->n;
        ndb_vec_results_free(a, 1);
        ndb_vec_results_free(e, 1);
        ndb_vec_results_free(u, 1);
    }
    cr_log_info("far half: recall@10 %.4f", (double)found / (double)total);
    cr_assert_geq((double)found / (double)total, TARGET, "recall@10 %.3f", (double)found / (double)total);
    tv_close(&t);
    tv_rm(&t);
    free(v);
}

/* min_score holds for every hit through the graph, as for the exact search. */
Test(graph, min_score_bounds_approximate_hits, .timeout = 600)
{
    tv t;
    tv_init(&t, 0);
    tv_open(&t);
    ndb_errmsg m = {{0}};
    cr_assert_eq(ndb_vec_create(t.vec, "c", D, NDB_VEC_COSINE, &hnsw_default, &m), NDB_OK, "%s", m.text);
    float *v = data(17, N);
    load(&t, "c", v, 0, N);
    wait_indexed(&t, "c");
    float q[D];
    rs = 5;
    for (int i = 0; i < 20; i++) {
        query(v, N, i, q);
        ndb_vec_query qq = {.k = 50, .exact = 1};
        ndb_vec_result *e, *a;
        cr_assert_eq(ndb_vec_search(t.vec, "c", q, D, &qq, &e, &m), NDB_OK);
        qq.has_min_score = 1;
        qq.min_score = e->hits[5].score; /* about six pass */
        qq.exact = 0;
        cr_assert_eq(ndb_vec_search(t.vec, "c", q, D, &qq, &a, &m), NDB_OK);
        cr_assert_str_eq(a->plan.path, "hnsw");
        cr_assert(a->n >= 1 && a->n <= 6 + 1, "%zu hits above the sixth best score", a->n);
        for (size_t h = 0; h < a->n; h++)
            cr_assert_geq(a->hits[h].score, qq.min_score);
        ndb_vec_results_free(a, 1);
        ndb_vec_results_free(e, 1);
    }
    tv_close(&t);
    tv_rm(&t);
    free(v);
}

typedef struct lines {
    char text[64][256];
    int n;
} lines;

static void keep_line(void *ctx, const char *line)
{
    lines *l = ctx;
    if (l->n < 64)
        snprintf(l->text[l->n++], sizeof l->text[0], "%s", line);
}

static bool logged(const lines *l, const char *part)
{
    for (int i = 0; i < l->n; i++)
        if (strstr(l->text[i], part))
            return true;
    return false;
}

/* The ids of the hits of Q queries, concatenated. */
static char *answers(tv *t, const float *v)
{
    size_t cap = (size_t)Q * K * 16, len = 0;
    char *out = malloc(cap);
    float q[D];
    rs = 3;
    for (int i = 0; i < Q; i++) {
        query(v, N, i, q);
        ndb_vec_result *r = search(t, "c", q, K, NULL, 0);
        cr_assert_str_eq(r->plan.path, "hnsw");
        for (size_t h = 0; h < r->n; h++)
            len += (size_t)snprintf(out + len, cap - len, "%s,", r->hits[h].id);
        ndb_vec_results_free(r, 1);
    }
    return out;
}

static void graph_file(const tv *t, char *out, size_t cap)
{
    char cmd[256];
    snprintf(cmd, sizeof cmd, "ls %s/*/graph.hnsw 2>/dev/null", t->segdir);
    FILE *p = popen(cmd, "r");
    cr_assert_not_null(p);
    out[0] = 0;
    if (!fgets(out, (int)cap, p))
        out[0] = 0;
    pclose(p);
    out[strcspn(out, "\n")] = 0;
}

/* Reopened, the graph is loaded from its file and answers as before; a
 * flipped byte or a truncation makes the next open rebuild it from the rows,
 * and the rebuilt graph answers exactly as the original did (the same rows
 * in the same order give the same graph). */
Test(graph, the_graph_file_reopens_and_damage_rebuilds_the_same, .timeout = 600)
{
    tv t;
    tv_init(&t, 0);
    lines log = {0};
    t.log = keep_line;
    t.log_ctx = &log;
    tv_open(&t);
    ndb_errmsg m = {{0}};
    cr_assert_eq(ndb_vec_create(t.vec, "c", D, NDB_VEC_COSINE, &hnsw_default, &m), NDB_OK, "%s", m.text);
    float *v = data(19, N);
    load(&t, "c", v, 0, N);
    wait_indexed(&t, "c");
    char *before = answers(&t, v);
    tv_close(&t);
    char path[256];
    graph_file(&t, path, sizeof path);
    cr_assert(path[0], "no graph file was written");
    log.n = 0;
    tv_open(&t);
    cr_assert(logged(&log, "graph loaded (20000 nodes"), "the graph was not loaded: %s", log.n ? log.text[0] : "");
    ndb_vec_info s = stats(&t, "c");
    cr_assert(!s.building && s.indexed == N, "a loaded graph needs no work");
    char *after = answers(&t, v);
    cr_assert_str_eq(after, before, "answers changed across a reopen");
    free(after);
    tv_close(&t);
    for (int damage = 0; damage < 2; damage++) {
        FILE *f = fopen(path, "r+b");
        cr_assert_not_null(f);
        if (damage == 0) { /* a flipped byte in the middle of the records */
            fseek(f, 0, SEEK_END);
            long size = ftell(f);
            fseek(f, size / 2, SEEK_SET);
            int ch = fgetc(f);
            fseek(f, size / 2, SEEK_SET);
            fputc(ch ^ 0x10, f);
            fclose(f);
        } else {
            fclose(f);
            cr_assert_eq(truncate(path, 1000), 0);
        }
        log.n = 0;
        tv_open(&t);
        cr_assert(logged(&log, "rebuilt from the rows"), "damage %d: no rebuild logged", damage);
        wait_indexed(&t, "c");
        after = answers(&t, v);
        cr_assert_str_eq(after, before, "damage %d: the rebuilt graph answers otherwise", damage);
        free(after);
        tv_close(&t);
    }
    free(before);
    tv_rm(&t);
    free(v);
}

/* Every document replaced three times: the graph is rebuilt without its dead
 * nodes rather than growing with every version. */
Test(graph, churn_keeps_the_graph_bounded, .timeout = 600)
{
    tv t;
    tv_init(&t, 0);
    tv_open(&t);
    ndb_errmsg m = {{0}};
    cr_assert_eq(ndb_vec_create(t.vec, "c", D, NDB_VEC_COSINE, &hnsw_default, &m), NDB_OK, "%s", m.text);
    float *v = data(23, N);
    load(&t, "c", v, 0, N);
    wait_indexed(&t, "c");
    float *w = data(29, N);
    for (int round = 0; round < 3; round++) {
        const float *src = round % 2 ? v : w;
        for (size_t i = 0; i < N; i++) {
            char id[16], json[32];
            snprintf(id, sizeof id, "d%zu", i);
            snprintf(json, sizeof json, "{\"g\":%zu}", i % 1000);
            size_t l;
            void *doc = tv_doc(json, &l);
            ndb_vec_item it = {doc, l, src + i * D};
            cr_assert_eq(ndb_vec_upsert(t.vec, "c", id, &it, D, NULL, &m), NDB_OK, "%s", m.text);
            free(doc);
        }
    }
    ndb_vec_info s = wait_indexed(&t, "c");
    cr_assert_leq(s.graph_nodes, 2 * (uint64_t)N, "%llu nodes for %d rows after rewriting them three times",
                  (unsigned long long)s.graph_nodes, N);
    double r = recall(&t, "c", w, N, NULL, "hnsw"); /* the last round wrote w */
    cr_assert_geq(r, TARGET, "recall@10 %.3f after churn", r);
    tv_close(&t);
    tv_rm(&t);
    free(v);
    free(w);
}

/* An exact collection becomes HNSW and back; the choice survives a reopen;
 * parameters out of range are refused with a message. */
Test(graph, set_index_switches_and_persists, .timeout = 600)
{
    tv t;
    tv_init(&t, 0);
    tv_open(&t);
    ndb_errmsg m = {{0}};
    cr_assert_eq(ndb_vec_create(t.vec, "c", D, NDB_VEC_COSINE, NULL, &m), NDB_OK, "%s", m.text);
    float *v = data(31, N);
    load(&t, "c", v, 0, N);
    float q[D];
    query(v, N, 0, q);
    ndb_vec_result *r = search(&t, "c", q, K, NULL, 0);
    cr_assert_str_eq(r->plan.path, "exact");
    ndb_vec_results_free(r, 1);
    const ndb_vec_index bad[] = {{.kind = NDB_VEC_INDEX_HNSW, .m = 1}, {.kind = NDB_VEC_INDEX_HNSW, .m = 65},
                                 {.kind = NDB_VEC_INDEX_HNSW, .m = 16, .ef_construction = 8}, {.kind = (ndb_vec_index_kind)7}};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        m.text[0] = 0;
        cr_assert_eq(ndb_vec_set_index(t.vec, "c", &bad[i], &m), NDB_EINVAL);
        cr_assert(strstr(m.text, "index") || strstr(m.text, "m must"), "message: %s", m.text);
    }
    ndb_vec_index ix = {.kind = NDB_VEC_INDEX_HNSW, .m = 12, .ef_construction = 100};
    cr_assert_eq(ndb_vec_set_index(t.vec, "c", &ix, &m), NDB_OK, "%s", m.text);
    ndb_vec_info s = wait_indexed(&t, "c");
    cr_assert(s.index.kind == NDB_VEC_INDEX_HNSW && s.index.m == 12 && s.index.ef_construction == 100);
    tv_close(&t);
    tv_open(&t);
    s = stats(&t, "c");
    cr_assert(s.index.kind == NDB_VEC_INDEX_HNSW && s.index.m == 12, "the index is not kept across a reopen");
    r = search(&t, "c", q, K, NULL, 0);
    cr_assert_str_eq(r->plan.path, "hnsw");
    ndb_vec_results_free(r, 1);
    /* new parameters: rebuilt in the background */
    ix.m = 8;
    cr_assert_eq(ndb_vec_set_index(t.vec, "c", &ix, &m), NDB_OK, "%s", m.text);
    s = wait_indexed(&t, "c");
    cr_assert_eq(s.index.m, 8);
    double rc = recall(&t, "c", v, N, NULL, "hnsw");
    cr_assert_geq(rc, 0.9, "recall@10 %.3f with m 8, ef_construction 100", rc);
    /* back to exact: the graph and its file go */
    ix = (ndb_vec_index){.kind = NDB_VEC_INDEX_EXACT};
    cr_assert_eq(ndb_vec_set_index(t.vec, "c", &ix, &m), NDB_OK, "%s", m.text);
    r = search(&t, "c", q, K, NULL, 0);
    cr_assert_str_eq(r->plan.path, "exact");
    ndb_vec_results_free(r, 1);
    char path[256] = "x";
    for (int i = 0; i < 1000 && path[0]; i++) {
        graph_file(&t, path, sizeof path);
        struct timespec ts = {0, 10000000};
        nanosleep(&ts, NULL);
    }
    cr_assert(!path[0], "the graph file %s is still there", path);
    s = stats(&t, "c");
    cr_assert(s.index.kind == NDB_VEC_INDEX_EXACT && s.graph_nodes == 0 && !s.building);
    cr_assert_eq(ndb_vec_set_index(t.vec, "nope", &ix, &m), NDB_ENOTFOUND);
    tv_close(&t);
    tv_rm(&t);
    free(v);
}

/* kill -9 of a process building the graph (or writing its file) at varied
 * moments: each restart carries on, and the graph finally built answers
 * exactly as one built without interruption. */
Test(graph, kill9_while_building_gives_the_same_graph, .timeout = 900)
{
    tv t;
    tv_init(&t, 0);
    tv_open(&t);
    ndb_errmsg m = {{0}};
    cr_assert_eq(ndb_vec_create(t.vec, "c", D, NDB_VEC_COSINE, NULL, &m), NDB_OK, "%s", m.text);
    float *v = data(37, N);
    load(&t, "c", v, 0, N);
    tv_close(&t);
    char cmd[512];
    tv ref;
    tv_init(&ref, 0);
    snprintf(cmd, sizeof cmd, "cp -a %s/. %s/", t.dir, ref.dir);
    cr_assert_eq(system(cmd), 0);
    /* the reference: built in one go */
    tv_open(&ref);
    ndb_vec_index ix = {.kind = NDB_VEC_INDEX_HNSW};
    cr_assert_eq(ndb_vec_set_index(ref.vec, "c", &ix, &m), NDB_OK, "%s", m.text);
    wait_indexed(&ref, "c");
    char *want = answers(&ref, v);
    tv_close(&ref);
    tv_rm(&ref);
    /* interrupted: the index is set, then the process is killed at moments
     * spread over the build (the last ones while the file is written) */
    tv_open(&t);
    cr_assert_eq(ndb_vec_set_index(t.vec, "c", &ix, &m), NDB_OK, "%s", m.text);
    tv_close(&t);
    const int waits_ms[] = {5, 150, 400, 700, 1000, 1400, 2000, 3000};
    for (size_t i = 0; i < sizeof waits_ms / sizeof waits_ms[0]; i++) {
        fflush(NULL);
        pid_t pid = fork();
        cr_assert_geq(pid, 0);
        if (pid == 0) {
            tv_open(&t); /* the index thread carries on from the file, if any */
            for (;;)
                pause();
        }
        struct timespec ts = {waits_ms[i] / 1000, (long)(waits_ms[i] % 1000) * 1000000};
        nanosleep(&ts, NULL);
        kill(pid, SIGKILL);
        int wst;
        waitpid(pid, &wst, 0);
        cr_assert(WIFSIGNALED(wst), "the child exited with %d", WEXITSTATUS(wst));
    }
    tv_open(&t);
    wait_indexed(&t, "c");
    char *got = answers(&t, v);
    cr_assert_str_eq(got, want, "the graph built across kills answers otherwise");
    free(got);
    free(want);
    tv_close(&t);
    tv_rm(&t);
    free(v);
}
