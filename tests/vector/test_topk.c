/*
 * test_topk.c — the fused top-k scan (vector/scan.c, topk.h) and the worker
 * pool (vector/pool.c) against a double-precision brute-force reference.
 *
 * Integer-valued vectors make every float score exact, so the result must be
 * identical to the reference id for id, including ties (many rows are
 * duplicated), which go to the lower key. Gaussian vectors check the same
 * with a tolerance only where reference scores are closer than float error.
 */
#include <criterion/criterion.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kern.h"
#include "pool.h"
#include "scan.h"
#include "topk.h"

static uint64_t rs = 88172645463325252ull;
static uint64_t rnd(void)
{
    rs ^= rs << 13;
    rs ^= rs >> 7;
    rs ^= rs << 17;
    return rs;
}
static double gauss(void)
{
    double u = ((rnd() >> 11) + 0.5) / 9007199254740992.0, v = ((rnd() >> 11) + 0.5) / 9007199254740992.0;
    return sqrt(-2 * log(u)) * cos(6.283185307179586 * v);
}

typedef struct ref_item {
    double score;
    uint64_t key;
} ref_item;

static int ref_cmp(const void *pa, const void *pb)
{
    const ref_item *a = pa, *b = pb;
    if (a->score != b->score)
        return a->score > b->score ? -1 : 1;
    return a->key < b->key ? -1 : (a->key > b->key);
}

typedef struct dataset {
    size_t n, d, dp;
    float *rows; /* n x dp, zero padded */
    uint64_t *skip; /* bitmap or NULL */
} dataset;

static dataset make_data(size_t n, size_t d, int integer)
{
    dataset ds = {n, d, (d + 15) & ~(size_t)15, NULL, NULL};
    ds.rows = aligned_alloc(64, n * ds.dp * sizeof(float) + 64);
    cr_assert(ds.rows);
    memset(ds.rows, 0, n * ds.dp * sizeof(float));
    for (size_t i = 0; i < n; i++) {
        if (i > 0 && rnd() % 5 == 0) { /* a duplicate of an earlier row: exact ties */
            memcpy(ds.rows + i * ds.dp, ds.rows + (rnd() % i) * ds.dp, ds.dp * sizeof(float));
            continue;
        }
        for (size_t j = 0; j < d; j++)
            ds.rows[i * ds.dp + j] = integer ? (float)((int)(rnd() % 9) - 4) : (float)gauss();
    }
    return ds;
}

static size_t reference(const dataset *ds, const float *q, int l2, uint64_t key0, float floor, int has_floor,
                        ref_item *out)
{
    size_t m = 0;
    for (size_t i = 0; i < ds->n; i++) {
        if (ds->skip && scan_bit(ds->skip, i))
            continue;
        double s = 0;
        for (size_t j = 0; j < ds->d; j++) {
            double x = ds->rows[i * ds->dp + j], y = q[j];
            s += l2 ? -(x - y) * (x - y) : x * y;
        }
        if (has_floor && s < floor)
            continue;
        out[m].score = s;
        out[m].key = key0 + i;
        m++;
    }
    qsort(out, m, sizeof *out, ref_cmp);
    return m;
}

/* Compares a sorted heap with the reference; exact = integer data. */
static void compare(const topk *h, const ref_item *ref, size_t nref, uint32_t k, int exact, const char *ctx)
{
    size_t want = nref < k ? nref : k;
    cr_assert_eq(h->n, want, "%s: got %u results, want %zu", ctx, h->n, want);
    for (size_t i = 0; i < want; i++) {
        if (exact) {
            cr_assert_eq(h->items[i].key, ref[i].key, "%s: rank %zu key %llu want %llu (score %g vs %g)", ctx, i,
                         (unsigned long long)h->items[i].key, (unsigned long long)ref[i].key, h->items[i].score,
                         ref[i].score);
            cr_assert_eq((double)h->items[i].score, ref[i].score, "%s: rank %zu score", ctx, i);
        } else {
            double tol = 1e-4 * (1 + fabs(ref[i].score));
            cr_assert(fabs(h->items[i].score - ref[i].score) <= tol, "%s: rank %zu score %g want %g", ctx, i,
                      h->items[i].score, ref[i].score);
            if (h->items[i].key != ref[i].key) {
                /* only acceptable when the reference itself cannot separate them */
                int near = (i > 0 && fabs(ref[i].score - ref[i - 1].score) <= tol) ||
                           (i + 1 < nref && fabs(ref[i].score - ref[i + 1].score) <= tol);
                cr_assert(near, "%s: rank %zu key %llu want %llu", ctx, i, (unsigned long long)h->items[i].key,
                          (unsigned long long)ref[i].key);
            }
        }
    }
}

typedef struct par_ctx {
    const kern_ops *k;
    const dataset *ds;
    const float *q;
    int l2;
    size_t chunk;
    topk *heaps; /* per participant */
} par_ctx;

static void par_task(void *vctx, size_t t, unsigned who)
{
    par_ctx *c = vctx;
    size_t first = t * c->chunk, n = c->ds->n - first < c->chunk ? c->ds->n - first : c->chunk;
    scan_chunk ch = {.rows = c->ds->rows + first * c->ds->dp, .n = n, .key0 = 1000 + first,
                     .skip = c->ds->skip, .skip_bit0 = first};
    scan_one(c->k, c->l2, c->q, c->ds->dp, &ch, &c->heaps[who]);
}

static void run_single(const kern_ops *k, pool *p, const dataset *ds, const float *q, int l2, uint32_t k_,
                       float floor, int has_floor, int exact)
{
    unsigned w = pool_width(p);
    topk *heaps = calloc(w, sizeof *heaps);
    topk_item *buf = calloc((size_t)w * k_, sizeof *buf);
    ref_item *ref = calloc(ds->n, sizeof *ref);
    cr_assert(heaps && buf && ref);
    float fl = has_floor ? floor : -INFINITY;
    for (unsigned i = 0; i < w; i++)
        topk_init(&heaps[i], buf + (size_t)i * k_, k_, fl);
    par_ctx c = {k, ds, q, l2, 1 + rnd() % (ds->n / 3 + 1), heaps};
    pool_run(p, (ds->n + c.chunk - 1) / c.chunk, par_task, &c);
    for (unsigned i = 1; i < w; i++)
        topk_merge(&heaps[0], &heaps[i]);
    topk_sort(&heaps[0]);
    size_t nref = reference(ds, q, l2, 1000, floor, has_floor, ref);
    char ctx[128];
    snprintf(ctx, sizeof ctx, "%s single l2=%d d=%zu n=%zu k=%u floor=%d", k->name, l2, ds->d, ds->n, k_,
             has_floor);
    compare(&heaps[0], ref, nref, k_, exact, ctx);
    free(heaps);
    free(buf);
    free(ref);
}

static void run_batch(const kern_ops *k, const dataset *ds, const float *qs /* nq x dp */, unsigned nq, int l2,
                      uint32_t k_, int exact)
{
    float *qt = aligned_alloc(64, ds->dp * KERN_QBLOCK * sizeof(float));
    float qn2[KERN_QBLOCK] = {0};
    float *scratch = malloc(SCAN_BATCH_SCRATCH * sizeof(float));
    topk heaps[KERN_QBLOCK];
    topk_item *buf = calloc((size_t)KERN_QBLOCK * k_, sizeof *buf);
    ref_item *ref = calloc(ds->n, sizeof *ref);
    cr_assert(qt && scratch && buf && ref);
    memset(qt, 0, ds->dp * KERN_QBLOCK * sizeof(float));
    for (unsigned c = 0; c < nq; c++) {
        for (size_t j = 0; j < ds->dp; j++)
            qt[j * KERN_QBLOCK + c] = qs[c * ds->dp + j];
        qn2[c] = k->dot(qs + c * ds->dp, qs + c * ds->dp, ds->d);
        topk_init(&heaps[c], buf + (size_t)c * k_, k_, -INFINITY);
    }
    /* two chunks, to cover key0 and skip_bit0 offsets */
    size_t half = ds->n / 2;
    scan_chunk a = {.rows = ds->rows, .n = half, .key0 = 1000, .skip = ds->skip, .skip_bit0 = 0};
    scan_chunk b = {.rows = ds->rows + half * ds->dp, .n = ds->n - half, .key0 = 1000 + half, .skip = ds->skip,
                    .skip_bit0 = half};
    scan_batch(k, l2, qt, qn2, nq, ds->dp, &b, heaps, scratch);
    scan_batch(k, l2, qt, qn2, nq, ds->dp, &a, heaps, scratch);
    for (unsigned c = 0; c < nq; c++) {
        topk_sort(&heaps[c]);
        size_t nref = reference(ds, qs + c * ds->dp, l2, 1000, 0, 0, ref);
        char ctx[128];
        snprintf(ctx, sizeof ctx, "%s batch q%u l2=%d d=%zu n=%zu k=%u", k->name, c, l2, ds->d, ds->n, k_);
        compare(&heaps[c], ref, nref, k_, exact, ctx);
    }
    free(qt);
    free(scratch);
    free(buf);
    free(ref);
}

static void suite(int integer)
{
    static const size_t dims[] = {3, 16, 37, 128, 384};
    static const uint32_t ks[] = {1, 10, 100};
    pool *p;
    cr_assert_eq(pool_create(1, &p), NDB_OK);
    for (const kern_ops *const *kp = kern_all(); *kp; kp++) {
        const kern_ops *k = kern_lookup((*kp)->name);
        if (!k)
            continue;
        for (size_t di = 0; di < sizeof dims / sizeof dims[0]; di++) {
            size_t n = 300 + rnd() % 700;
            dataset ds = make_data(n, dims[di], integer);
            float *qs = aligned_alloc(64, KERN_QBLOCK * ds.dp * sizeof(float));
            cr_assert(qs);
            memset(qs, 0, KERN_QBLOCK * ds.dp * sizeof(float));
            for (size_t c = 0; c < KERN_QBLOCK; c++)
                for (size_t j = 0; j < ds.d; j++)
                    qs[c * ds.dp + j] = integer ? (float)((int)(rnd() % 9) - 4) : (float)gauss();
            for (int round = 0; round < 2; round++) {
                if (round == 1) { /* exclude about a third of the rows */
                    ds.skip = calloc((n + 63) / 64, 8);
                    cr_assert(ds.skip);
                    for (size_t i = 0; i < n; i++)
                        if (rnd() % 3 == 0)
                            ds.skip[i >> 6] |= 1ull << (i & 63);
                }
                for (int l2 = 0; l2 <= 1; l2++) {
                    for (size_t ki = 0; ki < sizeof ks / sizeof ks[0]; ki++)
                        run_single(k, p, &ds, qs, l2, ks[ki], 0, 0, integer);
                    run_single(k, p, &ds, qs + ds.dp, l2, (uint32_t)n + 5, 0, 0, integer); /* k > n */
                    run_single(k, p, &ds, qs, l2, 10, 1.0f, 1, integer);                   /* min_score */
                    run_batch(k, &ds, qs, KERN_QBLOCK, l2, 10, integer);
                    run_batch(k, &ds, qs, 5, l2, 3, integer);
                }
            }
            free(ds.skip);
            free(ds.rows);
            free(qs);
        }
    }
    pool_destroy(p);
}

Test(topk, exact_integer_data_identical_ids_ties_by_key) { suite(1); }
Test(topk, gaussian_data_matches_double_reference) { suite(0); }

Test(topk, heap_basics)
{
    topk_item buf[3];
    topk h;
    topk_init(&h, buf, 3, -INFINITY);
    topk_offer(&h, 1.0f, 5);
    topk_offer(&h, 1.0f, 2);
    topk_offer(&h, 1.0f, 9);
    topk_offer(&h, 1.0f, 1); /* evicts key 9 */
    topk_offer(&h, 0.5f, 0); /* rejected */
    topk_offer(&h, 2.0f, 7); /* evicts key 5 */
    topk_sort(&h);
    cr_assert_eq(h.n, 3);
    cr_assert_eq(h.items[0].key, 7);
    cr_assert_eq(h.items[1].key, 1);
    cr_assert_eq(h.items[2].key, 2);
}

static void count_task(void *ctx, size_t t, unsigned who)
{
    (void)who;
    __atomic_fetch_add((uint64_t *)ctx, t + 1, __ATOMIC_RELAXED);
}

Test(topk, pool_runs_every_task_once)
{
    pool *p;
    cr_assert_eq(pool_create(3, &p), NDB_OK);
    for (size_t n = 0; n < 200; n += 7) {
        uint64_t sum = 0;
        pool_run(p, n, count_task, &sum);
        cr_assert_eq(sum, (uint64_t)n * (n + 1) / 2);
    }
    pool_destroy(p);
}
