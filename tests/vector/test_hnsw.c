/*
 * test_hnsw.c — the HNSW graph (vector/hnsw.c) against exact search on
 * seeded data: recall@10 for each metric, deleted nodes never returned, an
 * allow bitmap honoured with k results whenever k nodes are allowed, the
 * graph's invariants after every phase, parameters refused, and graph files
 * (the same answers after reopening; damaged ones refused).
 *
 * Thresholds leave a margin below what these seeds reach (recall ~0.99 at
 * ef 100), so a kernel variant's different rounding cannot make them flaky.
 */
#include <criterion/criterion.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "crc32c.h"
#include "env.h"
#include "hnsw.h"

#define N 4000
#define D 50    /* not a multiple of 16: float32 records hold the 50 floats unpadded (the kernels take any */
#define DPAD 64 /* length), the int8 codes and float16 halves the 64 of the row, zeros after the 50 */
#define Q 100
#define K 10

static uint64_t rs;
static double gauss(void)
{
    double uv[2];
    for (int i = 0; i < 2; i++) {
        rs ^= rs << 13;
        rs ^= rs >> 7;
        rs ^= rs << 17;
        uv[i] = ((double)(rs >> 11) + 0.5) / 9007199254740992.0;
    }
    return sqrt(-2 * log(uv[0])) * cos(6.283185307179586 * uv[1]);
}

/* n vectors around 20 centres (real embeddings cluster), normalised under cosine. */
static float *data(uint64_t seed, int n, ndb_vec_metric metric)
{
    rs = seed;
    static float centre[20][D];
    for (int c = 0; c < 20; c++)
        for (int j = 0; j < D; j++)
            centre[c][j] = (float)gauss();
    float *v = aligned_alloc(64, (size_t)n * DPAD * sizeof(float));
    cr_assert_not_null(v);
    memset(v, 0, (size_t)n * DPAD * sizeof(float)); /* rows are zero padded, as a collection's */
    for (int i = 0; i < n; i++) {
        double norm = 0;
        for (int j = 0; j < D; j++) {
            v[i * DPAD + j] = centre[i % 20][j] + 0.7f * (float)gauss();
            norm += (double)v[i * DPAD + j] * v[i * DPAD + j];
        }
        if (metric == NDB_VEC_COSINE)
            for (int j = 0; j < D; j++)
                v[i * DPAD + j] = (float)(v[i * DPAD + j] / sqrt(norm));
    }
    return v;
}

static double ref_score(ndb_vec_metric metric, const float *a, const float *b)
{
    double s = 0;
    for (int j = 0; j < D; j++)
        s += metric == NDB_VEC_L2 ? -((double)a[j] - b[j]) * ((double)a[j] - b[j]) : (double)a[j] * b[j];
    return s;
}

/* The exact top K among nodes not in skip (a bitmap, or NULL) into out. */
static void exact(ndb_vec_metric metric, const float *v, const float *q, const uint64_t *allow, uint32_t *out)
{
    double best[K];
    int n = 0;
    for (uint32_t i = 0; i < N; i++) {
        if (allow && !(allow[i >> 6] >> (i & 63) & 1))
            continue;
        double s = ref_score(metric, v + (size_t)i * DPAD, q);
        int p = n < K ? n++ : K;
        if (p == K && s <= best[K - 1])
            continue;
        if (p == K)
            p = K - 1;
        while (p > 0 && best[p - 1] < s) {
            best[p] = best[p - 1];
            out[p] = out[p - 1];
            p--;
        }
        best[p] = s;
        out[p] = i;
    }
}

static hnsw *build(ndb_vec_metric metric, const float *v, hnsw_scratch *s)
{
    hnsw *h;
    ndb_errmsg m = {{0}};
    hnsw_params p = {.m = 16, .ef_construction = 100, .seed = 42};
    cr_assert_eq(hnsw_new(D, DPAD, metric, &p, &h, &m), NDB_OK, "%s", m.text);
    for (uint32_t i = 0; i < N; i++) {
        uint32_t node;
        cr_assert_eq(hnsw_add(h, 1000 + i, v + (size_t)i * DPAD, s, &node), NDB_OK);
        cr_assert_eq(node, i);
    }
    cr_assert_eq(hnsw_check(h, &m), NDB_OK, "%s", m.text);
    /* Under dot (maximum inner product, not a metric) a short vector is
     * nobody's best neighbour, not even its own, so pruning leaves some
     * without incoming links; they are rarely anybody's answer either. */
    if (metric != NDB_VEC_DOT)
        cr_assert_leq(hnsw_unreachable(h), N / 1000, "%u nodes unreachable", hnsw_unreachable(h));
    return h;
}

/* Recall@K of the graph over Q queries (data points perturbed) against the
 * exact search among allowed, live nodes; every hit must be allowed and live. */
static double recall(const hnsw *h, ndb_vec_metric metric, const float *v, uint32_t ef, const uint64_t *allow,
                     const uint64_t *dead, hnsw_scratch *s, uint32_t want)
{
    uint64_t ok[(N + 63) / 64];
    for (int w = 0; w < (N + 63) / 64; w++)
        ok[w] = (allow ? allow[w] : ~0ull) & (dead ? ~dead[w] : ~0ull);
    int found = 0;
    float q[DPAD];
    for (int t = 0; t < Q; t++) {
        memcpy(q, v + (size_t)(t * 37 % N) * DPAD, sizeof q);
        for (int j = 0; j < D; j++)
            q[j] += 0.05f * (float)gauss();
        uint32_t truth[K];
        exact(metric, v, q, ok, truth);
        hnsw_hit hits[K];
        uint32_t n;
        hnsw_path path;
        cr_assert_eq(hnsw_search(h, q, K, ef, allow, dead, s, hits, &n, &path), NDB_OK);
        cr_assert_eq(n, want, "query %d: %u hits, want %u", t, n, want);
        for (uint32_t i = 0; i < n; i++) {
            cr_assert(ok[hits[i].node >> 6] >> (hits[i].node & 63) & 1, "node %u is deleted or filtered out",
                      hits[i].node);
            cr_assert(i == 0 || hits[i].score <= hits[i - 1].score, "hits out of order");
            for (int j = 0; j < K; j++)
                found += hits[i].node == truth[j];
        }
    }
    return (double)found / (Q * K);
}

static void recall_for(ndb_vec_metric metric)
{
    float *v = data(7, N, metric);
    hnsw_scratch s = {0};
    hnsw *h = build(metric, v, &s);
    double r = recall(h, metric, v, 100, NULL, NULL, &s, K);
    cr_assert_geq(r, 0.95, "recall@10 %.3f at ef 100", r);
    cr_assert_eq(hnsw_label(h, 5), 1005);
    cr_assert_gt(hnsw_bytes(h), (size_t)N * DPAD * sizeof(float));
    hnsw_free(h);
    hnsw_scratch_free(&s);
    free(v);
}

Test(hnsw, recall_cosine) { recall_for(NDB_VEC_COSINE); }
Test(hnsw, recall_dot) { recall_for(NDB_VEC_DOT); }
Test(hnsw, recall_l2) { recall_for(NDB_VEC_L2); }

Test(hnsw, deleted_nodes_are_never_returned)
{
    float *v = data(11, N, NDB_VEC_COSINE);
    hnsw_scratch s = {0};
    hnsw *h = build(NDB_VEC_COSINE, v, &s);
    uint64_t dead[(N + 63) / 64] = {0};
    for (uint32_t i = 0; i < N; i += 3)
        dead[i >> 6] |= 1ull << (i & 63);
    double r = recall(h, NDB_VEC_COSINE, v, 100, NULL, dead, &s, K);
    cr_assert_geq(r, 0.9, "recall@10 %.3f among live nodes", r);
    ndb_errmsg m = {{0}};
    cr_assert_eq(hnsw_check(h, &m), NDB_OK, "%s", m.text);
    hnsw_free(h);
    hnsw_scratch_free(&s);
    free(v);
}

/* Filters at 50%, 10% and 1% of the nodes, chosen independently of the
 * clusters, and one that keeps two whole clusters of twenty (a filter that
 * correlates with the vectors, as "category = x" does): k allowed results
 * every time, with recall against the exact filtered search. */
Test(hnsw, an_allow_bitmap_gives_k_allowed_results)
{
    float *v = data(13, N, NDB_VEC_L2);
    hnsw_scratch s = {0};
    hnsw *h = build(NDB_VEC_L2, v, &s);
    uint64_t allow[(N + 63) / 64];
    /* at ef 64, 50% and 10% traverse the graph; 1% (40 of 4,000) is scored exactly */
    cr_assert(!hnsw_prefers_exact(h, N / 10, 64) && hnsw_prefers_exact(h, N / 100, 64));
    const int pct[] = {50, 10, 1};
    for (size_t p = 0; p < sizeof pct / sizeof pct[0]; p++) {
        memset(allow, 0, sizeof allow);
        for (uint32_t i = 0; i < N; i++)
            if ((i * 2654435761u >> 7) % 100 < (uint32_t)pct[p])
                allow[i >> 6] |= 1ull << (i & 63);
        double r = recall(h, NDB_VEC_L2, v, 64, allow, NULL, &s, K);
        cr_assert_geq(r, 0.9, "recall@10 %.3f at %d%% selectivity", r, pct[p]);
    }
    memset(allow, 0, sizeof allow);
    for (uint32_t i = 0; i < N; i += 10) /* clusters 0 and 10 */
        allow[i >> 6] |= 1ull << (i & 63);
    double r = recall(h, NDB_VEC_L2, v, 64, allow, NULL, &s, K);
    cr_assert_geq(r, 0.9, "recall@10 %.3f with two clusters of twenty allowed", r);
    /* fewer allowed nodes than k: every one of them */
    memset(allow, 0, sizeof allow);
    allow[0] = 0x7; /* nodes 0, 1, 2 */
    hnsw_hit hits[K];
    uint32_t n;
    hnsw_path path;
    cr_assert_eq(hnsw_search(h, v, K, 50, allow, NULL, &s, hits, &n, &path), NDB_OK);
    cr_assert_eq(n, 3);
    cr_assert_eq(path, HNSW_PATH_EXACT, "three allowed nodes are scored exactly");
    cr_assert_eq(hits[0].node, 0, "the query is node 0's own vector");
    hnsw_free(h);
    hnsw_scratch_free(&s);
    free(v);
}

Test(hnsw, empty_single_and_bad_parameters)
{
    hnsw *h;
    ndb_errmsg m = {{0}};
    hnsw_params p = {.m = 16, .ef_construction = 100, .seed = 1};
    hnsw_scratch s = {0};
    cr_assert_eq(hnsw_new(D, DPAD, NDB_VEC_DOT, &p, &h, &m), NDB_OK);
    float v[DPAD] = {1, 2, 3};
    hnsw_hit hits[K];
    uint32_t n = 9;
    hnsw_path path;
    cr_assert_eq(hnsw_search(h, v, K, 10, NULL, NULL, &s, hits, &n, &path), NDB_OK);
    cr_assert_eq(n, 0);
    cr_assert_eq(hnsw_check(h, &m), NDB_OK);
    uint32_t node;
    cr_assert_eq(hnsw_add(h, 77, v, &s, &node), NDB_OK);
    cr_assert_eq(hnsw_search(h, v, K, 10, NULL, NULL, &s, hits, &n, &path), NDB_OK);
    cr_assert_eq(path, HNSW_PATH_GRAPH);
    cr_assert_eq(n, 1);
    cr_assert_eq(hnsw_label(h, hits[0].node), 77);
    cr_assert_float_eq(hits[0].score, 14.0f, 1e-5);
    uint64_t dead = 1ull << node;
    cr_assert_eq(hnsw_search(h, v, K, 10, NULL, &dead, &s, hits, &n, &path), NDB_OK);
    cr_assert_eq(n, 0, "the only node is deleted");
    hnsw_free(h);
    hnsw_scratch_free(&s);
    hnsw_params bad[] = {{.m = 1, .ef_construction = 10}, {.m = 65, .ef_construction = 100},
                         {.m = 16, .ef_construction = 8}};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        cr_assert_eq(hnsw_new(D, DPAD, NDB_VEC_DOT, &bad[i], &h, &m), NDB_EINVAL);
    cr_assert_eq(hnsw_new(D, 24, NDB_VEC_DOT, &p, &h, &m), NDB_EINVAL, "rows are padded to 16 floats");
    cr_assert_eq(hnsw_new(0, 16, NDB_VEC_DOT, &p, &h, &m), NDB_EINVAL);
}

static void put_file(const char *path, const void *p, size_t n)
{
    FILE *f = fopen(path, "wb");
    cr_assert_not_null(f);
    cr_assert_eq(fwrite(p, 1, n, f), n);
    cr_assert_eq(fclose(f), 0);
}

/* A graph written and opened again answers as the original did, and keeps
 * growing; a file for other rows, with a flipped byte anywhere, truncated or
 * missing is refused as corrupt (the caller rebuilds). */
Test(hnsw, a_graph_file_reopens_the_same_and_damage_is_refused)
{
    float *v = data(17, N, NDB_VEC_COSINE);
    hnsw_scratch s = {0};
    hnsw *h = build(NDB_VEC_COSINE, v, &s);
    uint64_t dead[(N + 63) / 64] = {0}; /* the caller's: not in the file */
    for (uint32_t i = 0; i < N; i += 7)
        dead[i >> 6] |= 1ull << (i & 63);
    char dir[] = "/tmp/ndbhnsw-XXXXXX";
    cr_assert_not_null(mkdtemp(dir));
    char path[64], bad[64];
    snprintf(path, sizeof path, "%s/g.hnsw", dir);
    snprintf(bad, sizeof bad, "%s/bad.hnsw", dir);
    kv_env *fs = kv_env_posix();
    ndb_errmsg m = {{0}};
    cr_assert_eq(hnsw_write(fs, path, h, 99, &m), NDB_OK, "%s", m.text);
    hnsw *g;
    cr_assert_eq(hnsw_open(fs, path, D, DPAD, NDB_VEC_COSINE, 99, &g, &m), NDB_OK, "%s", m.text);
    cr_assert_eq(hnsw_count(g), N);
    cr_assert_eq(hnsw_bytes(g), hnsw_bytes(h));
    for (int t = 0; t < Q; t++) {
        const float *q = v + (size_t)(t * 41 % N) * DPAD;
        hnsw_hit a[K], b[K];
        uint32_t na, nb;
        hnsw_path pa, pb;
        cr_assert_eq(hnsw_search(h, q, K, 50, NULL, dead, &s, a, &na, &pa), NDB_OK);
        cr_assert_eq(hnsw_search(g, q, K, 50, NULL, dead, &s, b, &nb, &pb), NDB_OK);
        cr_assert_eq(na, nb);
        for (uint32_t i = 0; i < na; i++)
            cr_assert(a[i].node == b[i].node && a[i].score == b[i].score && a[i].node % 7 != 0,
                      "query %d, hit %u differs after reopening", t, i);
    }
    uint32_t node;
    cr_assert_eq(hnsw_add(g, 77777, v, &s, &node), NDB_OK);
    cr_assert_eq(hnsw_label(g, node), 77777);
    hnsw_free(g);
    /* made for other rows */
    cr_assert_eq(hnsw_open(fs, path, D, DPAD, NDB_VEC_COSINE, 98, &g, &m), NDB_ECORRUPT);
    cr_assert(strstr(m.text, "other rows") != NULL, "%s", m.text);
    cr_assert_eq(hnsw_open(fs, path, D, DPAD, NDB_VEC_L2, 99, &g, &m), NDB_ECORRUPT);
    /* damage */
    FILE *f = fopen(path, "rb");
    cr_assert_not_null(f);
    cr_assert_eq(fseek(f, 0, SEEK_END), 0);
    size_t size = (size_t)ftell(f);
    rewind(f);
    unsigned char *bytes = malloc(size);
    cr_assert_eq(fread(bytes, 1, size, f), size);
    fclose(f);
    size_t at[] = {9, 40, HNSW_FILE_HEADER + 3, size / 2, size - 10, size - 1};
    for (size_t i = 0; i < sizeof at / sizeof at[0]; i++) {
        bytes[at[i]] ^= 0x10;
        put_file(bad, bytes, size);
        bytes[at[i]] ^= 0x10;
        cr_assert_eq(hnsw_open(fs, bad, D, DPAD, NDB_VEC_COSINE, 99, &g, &m), NDB_ECORRUPT, "byte %zu flipped",
                     at[i]);
    }
    size_t cut[] = {0, 100, HNSW_FILE_HEADER, size - 1};
    for (size_t i = 0; i < sizeof cut / sizeof cut[0]; i++) {
        put_file(bad, bytes, cut[i]);
        cr_assert_eq(hnsw_open(fs, bad, D, DPAD, NDB_VEC_COSINE, 99, &g, &m), NDB_ECORRUPT, "cut at %zu", cut[i]);
    }
    cr_assert_eq(hnsw_open(fs, "/nonexistent/g.hnsw", D, DPAD, NDB_VEC_COSINE, 99, &g, &m), NDB_ECORRUPT);
    /* a file of the previous version (records padded, a level and a start per node), its header
     * intact: refused by its version, so its owner rebuilds the graph */
    bytes[8] = 1;
    uint32_t hc = crc32c(bytes, HNSW_FILE_HEADER - 4);
    memcpy(bytes + HNSW_FILE_HEADER - 4, &hc, 4);
    put_file(bad, bytes, size);
    cr_assert_eq(hnsw_open(fs, bad, D, DPAD, NDB_VEC_COSINE, 99, &g, &m), NDB_ECORRUPT);
    cr_assert(strstr(m.text, "unsupported version 1") != NULL, "%s", m.text);
    free(bytes);
    unlink(path);
    unlink(bad);
    rmdir(dir);
    hnsw_free(h);
    hnsw_scratch_free(&s);
    free(v);
}

/* A quantized graph: an int8 one keeps a quarter of the vector bytes, a
 * float16 one half; its own ranking is close, and rescoring 4k of its hits
 * with the float32 vectors (what a collection does) reaches the float32
 * graph's recall; an untrained int8 one refuses adds; its file reopens with
 * the quantizer. Under every metric. */
static void quant_for(ndb_vec_metric metric, hnsw_quant quant)
{
    const bool i8 = quant == HNSW_QUANT_INT8;
    float *v = data(41, N, metric);
    hnsw *h, *f;
    ndb_errmsg m = {{0}};
    hnsw_params p = {.m = 16, .ef_construction = 100, .seed = 42, .quant = quant};
    cr_assert_eq(hnsw_new(D, DPAD, metric, &p, &h, &m), NDB_OK, "%s", m.text);
    hnsw_scratch s = {0};
    uint32_t node;
    if (i8)
        cr_assert_eq(hnsw_add(h, 1, v, &s, &node), NDB_EINVAL, "an untrained int8 graph takes no node");
    cr_assert_eq(hnsw_train(h, v, N, DPAD), NDB_OK);
    p.quant = HNSW_QUANT_NONE;
    cr_assert_eq(hnsw_new(D, DPAD, metric, &p, &f, &m), NDB_OK);
    for (uint32_t i = 0; i < N; i++) {
        cr_assert_eq(hnsw_add(h, i, v + (size_t)i * DPAD, &s, &node), NDB_OK);
        cr_assert_eq(hnsw_add(f, i, v + (size_t)i * DPAD, &s, &node), NDB_OK);
    }
    if (i8)
        cr_assert_eq(hnsw_train(h, v, N, DPAD), NDB_EINVAL, "trained once nodes exist");
    cr_assert_eq(hnsw_check(h, &m), NDB_OK, "%s", m.text);
    /* a vector takes dpad + 4 (int8, plus the quantizer's 8 dpad for the graph) or 2 dpad + 4
     * (float16) bytes instead of 4 dims; the rest of a record (links, label) and the upper levels
     * (the same seed draws the same levels) are the same */
    size_t qv = (i8 ? DPAD : 2 * DPAD) + 4, quantizer = i8 ? 8 * DPAD : 0;
    cr_assert_eq(hnsw_bytes(f) + quantizer - hnsw_bytes(h), (size_t)N * (4 * D - qv), "%s: %zu bytes, float32 %zu",
                 i8 ? "int8" : "float16", hnsw_bytes(h), hnsw_bytes(f));
    /* float32, m 16: a record of 4 dims + 4 (1 + 32) links + 8 label bytes; the levels above 0
     * (1/15 of a level per node, 17 words each) and their index (8 bytes per node above 0) add
     * about 5 */
    cr_assert(hnsw_bytes(f) > (size_t)N * (4 * D + 140) && hnsw_bytes(f) < (size_t)N * (4 * D + 140 + 7),
              "%.1f bytes per node", (double)hnsw_bytes(f) / N);
    char dir[] = "/tmp/ndbhnsw8-XXXXXX";
    cr_assert_not_null(mkdtemp(dir));
    char path[64];
    snprintf(path, sizeof path, "%s/g.hnsw", dir);
    kv_env *fs = kv_env_posix();
    cr_assert_eq(hnsw_write(fs, path, h, 7, &m), NDB_OK, "%s", m.text);
    hnsw *g;
    cr_assert_eq(hnsw_open(fs, path, D, DPAD, metric, 7, &g, &m), NDB_OK, "%s", m.text);
    cr_assert_eq(hnsw_get_params(g).quant, quant);
    size_t raw = 0, rescored = 0, ref = 0;
    float q[DPAD];
    for (int t = 0; t < Q; t++) {
        memcpy(q, v + (size_t)(t * 37 % N) * DPAD, sizeof q);
        for (int j = 0; j < D; j++)
            q[j] += 0.3f * (float)gauss();
        uint32_t truth[K];
        exact(metric, v, q, NULL, truth);
        hnsw_hit a[4 * K], b[4 * K], c[K];
        uint32_t na, nb, nc;
        hnsw_path path;
        cr_assert_eq(hnsw_search(h, q, 4 * K, 64, NULL, NULL, &s, a, &na, &path), NDB_OK);
        cr_assert_eq(hnsw_search(g, q, 4 * K, 64, NULL, NULL, &s, b, &nb, &path), NDB_OK);
        cr_assert_eq(hnsw_search(f, q, K, 64, NULL, NULL, &s, c, &nc, &path), NDB_OK);
        cr_assert_eq(na, nb);
        for (uint32_t i = 0; i < na; i++)
            cr_assert(a[i].node == b[i].node && a[i].score == b[i].score, "query %d differs after reopening", t);
        /* rescoring: the 4K hits by their exact scores */
        for (uint32_t i = 0; i < na; i++)
            a[i].score = (float)ref_score(metric, v + (size_t)a[i].node * DPAD, q);
        for (uint32_t i = 1; i < na; i++)
            for (uint32_t j = i; j > 0 && a[j].score > a[j - 1].score; j--) {
                hnsw_hit x = a[j];
                a[j] = a[j - 1];
                a[j - 1] = x;
            }
        for (int x = 0; x < K; x++)
            for (int y = 0; y < K; y++) {
                raw += b[x].node == truth[y];
                rescored += a[x].node == truth[y];
                ref += c[x].node == truth[y];
            }
    }
    double r_raw = (double)raw / (Q * K), r_res = (double)rescored / (Q * K), r_ref = (double)ref / (Q * K);
    cr_log_info("%s %s: recall@10 %.3f by codes, %.3f rescored; float32 graph %.3f", ndb_vec_metric_name(metric),
                i8 ? "int8" : "float16", r_raw, r_res, r_ref);
    /* halves rank almost as float32 does; int8 codes less closely */
    cr_assert_geq(r_raw, i8 ? 0.7 : r_ref - 0.02, "recall@10 %.3f by the codes alone", r_raw);
    cr_assert_geq(r_res, r_ref - 0.02, "rescored recall@10 %.3f, float32 graph's %.3f", r_res, r_ref);
    hnsw_free(g);
    hnsw_free(h);
    hnsw_free(f);
    hnsw_scratch_free(&s);
    unlink(path);
    rmdir(dir);
    free(v);
}

Test(hnsw, int8_cosine) { quant_for(NDB_VEC_COSINE, HNSW_QUANT_INT8); }
Test(hnsw, int8_dot) { quant_for(NDB_VEC_DOT, HNSW_QUANT_INT8); }
Test(hnsw, int8_l2) { quant_for(NDB_VEC_L2, HNSW_QUANT_INT8); }
Test(hnsw, float16_cosine) { quant_for(NDB_VEC_COSINE, HNSW_QUANT_F16); }
Test(hnsw, float16_dot) { quant_for(NDB_VEC_DOT, HNSW_QUANT_F16); }
Test(hnsw, float16_l2) { quant_for(NDB_VEC_L2, HNSW_QUANT_F16); }
