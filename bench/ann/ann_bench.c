/*
 * ann_bench.c — the HNSW graph (vector/hnsw.c) on its own: build time,
 * bytes per vector, and recall@10 against QPS over a sweep of ef, on the same
 * data that peers.py gives hnswlib and FAISS.
 *
 *   ann_bench <workdir> <n> <dims> <queries> <m> <ef_construction> <max threads> [<dataset>]
 *
 * Generates n random-normal float32 vectors, L2-normalised (fixed seed, so
 * cosine is their dot product), and `queries` more the same way, and writes
 * them to <workdir> as data.f32 and queries.f32 for peers.py; or, given a
 * dataset name, reads those two files instead (datasets.py wrote them, rows of
 * unit length) and names the figures after the dataset instead of <n>x<dims>.
 * Then the same for both: computes the exact top 10 of every query by brute
 * force and writes truth.i32 for peers.py. Builds the graph on
 * one thread, then for 1 .. `threads` search threads and each ef runs every
 * query (split over the threads, each with its own scratch) and prints
 *   METRIC ann.<tag>.ours.build_s, .bytes_per_vector,
 *   METRIC ann.<tag>.ours.t<n>.ef<ef>.recall and .qps,
 *   METRIC ann.<tag>.ours.t<n>.qps_at_r90|r95|r99 (the QPS of the
 *   smallest ef that reaches that recall; 0 when none does),
 * then the filtered runs (filtered() below), then the same sweep with an int8
 * and a float16 graph whose OVERSAMPLE x 10 hits are rescored with the
 * float32 rows (METRIC ann.<tag>.ours_int8.* and ours_f16.*, as quantized
 * collections search).
 * Never asserts on time.
 */
#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench.h"
#include "hnsw.h"
#include "kern.h"

#define K 10
#define FQ 200         /* queries of the filtered runs */
#define FILTER_EF 128  /* their ef */

static const uint32_t efs[] = {10, 16, 24, 32, 48, 64, 96, 128, 192, 256, 384, 512, 768, 1024, 1536};
#define NEF (sizeof efs / sizeof efs[0])

/* n normalised gaussian vectors of d floats in rows of dpad (zero padded). */
static float *gen(size_t n, size_t d, size_t dpad)
{
    float *v = aligned_alloc(64, n * dpad * sizeof(float));
    if (v == NULL) {
        fprintf(stderr, "ann_bench: out of memory\n");
        exit(1);
    }
    memset(v, 0, n * dpad * sizeof(float));
    for (size_t i = 0; i < n; i++) {
        double s = 0;
        float *r = v + i * dpad;
        for (size_t j = 0; j < d; j++) {
            r[j] = (float)(sqrt(-2 * log(bench_uni())) * cos(6.283185307179586 * bench_uni()));
            s += (double)r[j] * r[j];
        }
        for (size_t j = 0; j < d; j++)
            r[j] = (float)(r[j] / sqrt(s));
    }
    return v;
}

/* n rows of d floats from <dir>/<name> (as datasets.py or write_rows wrote
 * them) in rows of dpad (zero padded); exits unless the file holds exactly
 * that many and every row is of unit length, as the generated ones are. */
static float *load(const char *dir, const char *name, size_t n, size_t d, size_t dpad)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "rb");
    float *v = aligned_alloc(64, n * dpad * sizeof(float));
    if (f == NULL || v == NULL) {
        fprintf(stderr, "ann_bench: %s: %s\n", path, f == NULL ? "cannot open" : "out of memory");
        exit(1);
    }
    memset(v, 0, n * dpad * sizeof(float));
    for (size_t i = 0; i < n; i++) {
        float *r = v + i * dpad;
        double s = 0;
        if (fread(r, sizeof(float), d, f) != d) {
            fprintf(stderr, "ann_bench: %s: fewer than %zu rows of %zu floats\n", path, n, d);
            exit(1);
        }
        for (size_t j = 0; j < d; j++)
            s += (double)r[j] * r[j];
        if (fabs(s - 1) > 1e-3) {
            fprintf(stderr, "ann_bench: %s: row %zu is not of unit length (squared norm %g)\n", path, i, s);
            exit(1);
        }
    }
    if (fgetc(f) != EOF) {
        fprintf(stderr, "ann_bench: %s: more than %zu rows of %zu floats\n", path, n, d);
        exit(1);
    }
    fclose(f);
    return v;
}

/* Rows of d floats (unpadded) for the peers. */
static void write_rows(const char *dir, const char *name, const float *v, size_t n, size_t d, size_t dpad)
{
    float *out = malloc(n * d * sizeof(float));
    if (out == NULL) {
        fprintf(stderr, "ann_bench: out of memory\n");
        exit(1);
    }
    for (size_t i = 0; i < n; i++)
        memcpy(out + i * d, v + i * dpad, d * sizeof(float));
    bench_write_file(dir, name, out, n * d * sizeof(float));
    free(out);
}

/* The exact top K of every query by brute force (kernel dot, then a sorted
 * insert), as int32 row numbers. */
static int32_t *truth(const float *data, size_t n, const float *qs, size_t nq, size_t dpad, const uint8_t *allow)
{
    const kern_ops *k = kern_get();
    int32_t *t = malloc(nq * K * sizeof *t);
    float *sc = malloc(n * sizeof *sc);
    if (t == NULL || sc == NULL) {
        fprintf(stderr, "ann_bench: out of memory\n");
        exit(1);
    }
    for (size_t q = 0; q < nq; q++) {
        for (int i = 0; i < K; i++)
            t[q * K + (size_t)i] = -1; /* a filter may leave fewer than K rows */
        k->scan_dot(qs + q * dpad, data, n, dpad, sc);
        float best[K];
        int nb = 0;
        for (size_t i = 0; i < n; i++) {
            if ((allow != NULL && !allow[i]) || (nb == K && sc[i] <= best[K - 1]))
                continue;
            int p = nb < K ? nb++ : K - 1;
            while (p > 0 && best[p - 1] < sc[i]) {
                best[p] = best[p - 1];
                t[q * K + (size_t)p] = t[q * K + (size_t)p - 1];
                p--;
            }
            best[p] = sc[i];
            t[q * K + (size_t)p] = (int32_t)i;
        }
    }
    free(sc);
    return t;
}

/* recall@10 of found against the exact answers t, over the answers that
 * exist (-1 where a filter left fewer than K rows). */
static double recall_of(const uint32_t *found, const int32_t *t, size_t nq)
{
    size_t hit = 0, want = 0;
    for (size_t q = 0; q < nq; q++)
        for (int j = 0; j < K; j++) {
            int32_t r = t[q * K + (size_t)j];
            if (r < 0)
                continue;
            want++;
            for (int i = 0; i < K; i++)
                hit += found[q * K + (size_t)i] == (uint32_t)r;
        }
    return want ? (double)hit / (double)want : 1.0;
}

#define OVERSAMPLE 4 /* a quantized graph's hits rescored per hit wanted, as a collection's default */

typedef struct job {
    const hnsw *h;
    const float *qs;
    size_t from, to, dpad;
    uint32_t ef;
    uint32_t *found;       /* K per query */
    const uint64_t *allow; /* NULL: no filter */
    const float *data;     /* a quantized graph's: the float32 rows its hits are rescored with */
} job;

static int by_score_desc(const void *a, const void *b)
{
    float x = ((const hnsw_hit *)a)->score, y = ((const hnsw_hit *)b)->score;
    return x < y ? 1 : x > y ? -1 : 0;
}

static void *run(void *va)
{
    job *j = va;
    hnsw_scratch s = {0};
    hnsw_hit hits[K * OVERSAMPLE];
    const kern_ops *k = kern_get();
    for (size_t q = j->from; q < j->to; q++) {
        uint32_t n;
        hnsw_path path;
        const float *qv = j->qs + q * j->dpad;
        uint32_t want = j->data ? K * OVERSAMPLE : K;
        if (hnsw_search(j->h, qv, want, j->ef, j->allow, NULL, &s, hits, &n, &path) != NDB_OK) {
            fprintf(stderr, "ann_bench: search failed\n");
            exit(1);
        }
        if (j->data) { /* rescoring, as a collection does */
            for (uint32_t i = 0; i < n; i++)
                hits[i].score = k->dot(qv, j->data + hnsw_label(j->h, hits[i].node) * j->dpad, j->dpad);
            qsort(hits, n, sizeof *hits, by_score_desc);
            n = n < K ? n : K;
        }
        for (uint32_t i = 0; i < K; i++)
            j->found[q * K + i] = i < n ? (uint32_t)hnsw_label(j->h, hits[i].node) : UINT32_MAX;
    }
    hnsw_scratch_free(&s);
    return NULL;
}

/* Runs every query at each ef on nt threads; prints recall and QPS as lib
 * ("ours", or "ours_int8"/"ours_f16" whose hits are rescored with data). */
static void sweep(const hnsw *h, const float *qs, size_t nq, size_t dpad, const int32_t *t, uint32_t *found, int nt,
                  const char *tag, const char *lib, const float *data)
{
    double at[3] = {0, 0, 0};
    const double target[3] = {0.90, 0.95, 0.99};
    for (size_t e = 0; e < NEF; e++) {
        job jobs[64];
        pthread_t th[64];
        double t1 = bench_now();
        for (int i = 0; i < nt; i++) {
            jobs[i] = (job){h, qs, nq * (size_t)i / (size_t)nt, nq * (size_t)(i + 1) / (size_t)nt, dpad, efs[e], found,
                            NULL, data};
            if (i > 0 && pthread_create(&th[i], NULL, run, &jobs[i]) != 0) {
                fprintf(stderr, "ann_bench: pthread_create failed\n");
                exit(1);
            }
        }
        run(&jobs[0]);
        for (int i = 1; i < nt; i++)
            pthread_join(th[i], NULL);
        double qps = (double)nq / (bench_now() - t1);
        double recall = recall_of(found, t, nq);
        printf("METRIC ann.%s.%s.t%d.ef%u.recall %.4f\n", tag, lib, nt, efs[e], recall);
        printf("METRIC ann.%s.%s.t%d.ef%u.qps %.0f q/s\n", tag, lib, nt, efs[e], qps);
        for (int r = 0; r < 3; r++)
            if (at[r] == 0 && recall >= target[r])
                at[r] = qps;
        fflush(stdout);
    }
    for (int r = 0; r < 3; r++)
        printf("METRIC ann.%s.%s.t%d.qps_at_r%d %.0f q/s\n", tag, lib, nt, (int)(target[r] * 100 + 0.5), at[r]);
}

/* Filters keeping 50%, 10%, 1% and 0.1% of the rows (chosen by a hash of the
 * row number, independent of the vectors): for each, allow_<name>.u8 (a byte
 * per row) and truth_<name>.i32 (the exact top 10 among allowed rows) for
 * peers.py, then recall@10 and QPS of the first `nq` queries at ef FILTER_EF
 * on one thread: METRIC ann.<tag>.ours.t1.f<name>.recall and .qps. */
static void filtered(const hnsw *h, const char *dir, const float *data, size_t n, const float *qs, size_t nq,
                     size_t dpad, const char *tag)
{
    static const struct { const char *name; uint32_t ppm; } sel[] = {
        {"50", 500000}, {"10", 100000}, {"1", 10000}, {"0.1", 1000}};
    uint8_t *allow = malloc(n);
    uint64_t *bm = calloc((n + 63) / 64, sizeof *bm);
    uint32_t *found = malloc(nq * K * sizeof *found);
    if (allow == NULL || bm == NULL || found == NULL) {
        fprintf(stderr, "ann_bench: out of memory\n");
        exit(1);
    }
    for (size_t f = 0; f < sizeof sel / sizeof sel[0]; f++) {
        memset(bm, 0, (n + 63) / 64 * sizeof *bm);
        for (size_t i = 0; i < n; i++) {
            allow[i] = ((uint32_t)i * 2654435761u >> 5) % 1000000 < sel[f].ppm; /* 32-bit, as grpc/main.go */
            if (allow[i])
                bm[i >> 6] |= 1ull << (i & 63); /* node i is row i: added in order */
        }
        int32_t *t = truth(data, n, qs, nq, dpad, allow);
        char name[64];
        snprintf(name, sizeof name, "allow_%s.u8", sel[f].name);
        bench_write_file(dir, name, allow, n);
        snprintf(name, sizeof name, "truth_%s.i32", sel[f].name);
        bench_write_file(dir, name, t, nq * K * sizeof *t);
        job j = {h, qs, 0, nq, dpad, FILTER_EF, found, bm, NULL};
        double t1 = bench_now();
        run(&j);
        double qps = (double)nq / (bench_now() - t1);
        printf("METRIC ann.%s.ours.t1.f%s.recall %.4f\n", tag, sel[f].name, recall_of(found, t, nq));
        printf("METRIC ann.%s.ours.t1.f%s.qps %.0f q/s\n", tag, sel[f].name, qps);
        fflush(stdout);
        free(t);
    }
    free(allow);
    free(bm);
    free(found);
}

/* Builds a graph of the n rows on one thread (int8: trained on all of them
 * first); prints lib's build_s and bytes_per_vector. */
static hnsw *build(const float *data, size_t n, size_t d, size_t dpad, uint32_t m, uint32_t efc, hnsw_quant quant,
                   const char *tag, const char *lib)
{
    hnsw *h;
    ndb_errmsg msg = {{0}};
    hnsw_params p = {.m = m, .ef_construction = efc, .seed = 42, .quant = quant};
    if (hnsw_new((uint32_t)d, (uint32_t)dpad, NDB_VEC_COSINE, &p, &h, &msg) != NDB_OK) {
        fprintf(stderr, "ann_bench: %s\n", msg.text);
        exit(1);
    }
    hnsw_scratch s = {0};
    double t0 = bench_now();
    if (hnsw_train(h, data, n, dpad) != NDB_OK) {
        fprintf(stderr, "ann_bench: train failed\n");
        exit(1);
    }
    for (size_t i = 0; i < n; i++) {
        uint32_t node;
        if (hnsw_add(h, i, data + i * dpad, &s, &node) != NDB_OK) {
            fprintf(stderr, "ann_bench: add failed\n");
            exit(1);
        }
    }
    double secs = bench_now() - t0;
    hnsw_scratch_free(&s);
    printf("METRIC ann.%s.%s.build_s %.3f s\n", tag, lib, secs);
    printf("METRIC ann.%s.%s.bytes_per_vector %.1f bytes\n", tag, lib, (double)hnsw_bytes(h) / (double)n);
    fflush(stdout);
    return h;
}

int main(int argc, char **argv)
{
    if (argc != 8 && argc != 9) {
        fprintf(stderr,
                "usage: ann_bench <workdir> <n> <dims> <queries> <m> <ef_construction> <max threads> [<dataset>]\n");
        return 2;
    }
    const char *dir = argv[1];
    size_t n = strtoull(argv[2], NULL, 10), d = strtoull(argv[3], NULL, 10), nq = strtoull(argv[4], NULL, 10);
    uint32_t m = (uint32_t)strtoul(argv[5], NULL, 10), efc = (uint32_t)strtoul(argv[6], NULL, 10);
    int threads = atoi(argv[7]);
    if (n < K || d == 0 || d > NDB_VEC_MAX_DIMS || nq == 0 || threads < 1 || threads > 64 || n > UINT32_MAX) {
        fprintf(stderr, "ann_bench: bad arguments\n");
        return 2;
    }
    size_t dpad = (d + 15) / 16 * 16;
    char tag[64];
    float *data, *qs;
    if (argc == 9) { /* a dataset datasets.py wrote */
        snprintf(tag, sizeof tag, "%s", argv[8]);
        data = load(dir, "data.f32", n, d, dpad);
        qs = load(dir, "queries.f32", nq, d, dpad);
    } else {
        snprintf(tag, sizeof tag, "%zux%zu", n, d);
        data = gen(n, d, dpad);
        qs = gen(nq, d, dpad);
        write_rows(dir, "data.f32", data, n, d, dpad);
        write_rows(dir, "queries.f32", qs, nq, d, dpad);
    }
    int32_t *t = truth(data, n, qs, nq, dpad, NULL);
    bench_write_file(dir, "truth.i32", t, nq * K * sizeof *t);

    uint32_t *found = malloc(nq * K * sizeof *found);
    if (found == NULL)
        return 1;
    hnsw *h = build(data, n, d, dpad, m, efc, HNSW_QUANT_NONE, tag, "ours");
    for (int nt = 1; nt <= threads; nt++)
        sweep(h, qs, nq, dpad, t, found, nt, tag, "ours", NULL);
    filtered(h, dir, data, n, qs, nq < FQ ? nq : FQ, dpad, tag);
    hnsw_free(h);
    static const struct { hnsw_quant q; const char *name; } quantized[] = {{HNSW_QUANT_INT8, "ours_int8"},
                                                                            {HNSW_QUANT_F16, "ours_f16"}};
    for (size_t i = 0; i < sizeof quantized / sizeof quantized[0]; i++) {
        h = build(data, n, d, dpad, m, efc, quantized[i].q, tag, quantized[i].name);
        for (int nt = 1; nt <= threads; nt++)
            sweep(h, qs, nq, dpad, t, found, nt, tag, quantized[i].name, data);
        hnsw_free(h);
    }
    free(found);
    free(t);
    free(data);
    free(qs);
    return 0;
}
