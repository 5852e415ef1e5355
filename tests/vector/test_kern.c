/*
 * test_kern.c — every compiled kernel variant against the scalar reference
 * and a double-precision bound: dims 1..4096 (every length, so all
 * remainders of 4, 8, 16 and 64 are covered), zeros, denormals, large
 * values; the padded scan kernels and the batched (transposed) kernel.
 *
 * Error bound: recursive float summation of d products errs by at most
 * about d*eps*sum|a_i b_i| (Higham's gamma_d); any reordering the SIMD
 * variants do stays inside it. Denormal results get an absolute slack of one
 * denormal ulp per operation.
 */
#include <criterion/criterion.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kern.h"

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;
static uint64_t rnd64(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}
static float rndf(void) { return (float)((double)(rnd64() >> 11) / 9007199254740992.0 * 2.0 - 1.0); }

typedef enum { K_RANDOM, K_ZEROS, K_DENORMAL, K_LARGE, K_MIXED } kind;

static void fill(float *v, size_t d, kind k)
{
    for (size_t j = 0; j < d; j++) {
        switch (k) {
        case K_RANDOM: v[j] = rndf(); break;
        case K_ZEROS: v[j] = 0.0f; break;
        case K_DENORMAL: v[j] = rndf() * 1e-39f; break;       /* below FLT_MIN */
        case K_LARGE: v[j] = rndf() * 1e15f; break;           /* products ~1e30 */
        case K_MIXED: v[j] = (j % 3 == 0) ? rndf() * 1e-39f : (j % 3 == 1 ? rndf() * 1e6f : 0.0f); break;
        }
    }
}

static void check_close(const char *what, const char *variant, size_t d, double got, double ref, double mag)
{
    double tol = ((double)d + 4.0) * 1.2e-7 * mag + ((double)d + 4.0) * 1.5e-45;
    cr_assert(fabs(got - ref) <= tol, "%s %s d=%zu: got %.9g want %.9g (tol %.3g)", variant, what, d, got, ref,
              tol);
}

static void plain_case(const kern_ops *k, size_t d, kind ka, kind kb, float *a, float *b)
{
    fill(a, d, ka);
    fill(b, d, kb);
    double dref = 0, dmag = 0, lref = 0, lmag = 0;
    for (size_t j = 0; j < d; j++) {
        dref += (double)a[j] * b[j];
        dmag += fabs((double)a[j] * b[j]);
        double t = (double)a[j] - b[j];
        lref += t * t;
        lmag += t * t + fabs((double)a[j]) * 2.4e-7 * fabs(t); /* the rounded subtraction */
    }
    float gd = k->dot(a, b, d), gl = k->l2sq(a, b, d);
    check_close("dot", k->name, d, gd, dref, dmag);
    check_close("l2sq", k->name, d, gl, lref, lmag);
    /* and against the scalar reference, with the same bound doubled */
    float sd = kern_scalar_ops.dot(a, b, d), sl = kern_scalar_ops.l2sq(a, b, d);
    check_close("dot-vs-scalar", k->name, d, gd, sd, 2 * dmag);
    check_close("l2sq-vs-scalar", k->name, d, gl, sl, 2 * lmag);
    cr_assert(isfinite(gd) && isfinite(gl));
}

Test(kern, every_variant_every_dim_1_to_4096)
{
    const size_t maxd = 4096;
    float *a = malloc(maxd * sizeof(float)), *b = malloc(maxd * sizeof(float));
    cr_assert(a && b);
    int tested = 0;
    for (const kern_ops *const *kp = kern_all(); *kp; kp++) {
        const kern_ops *k = kern_lookup((*kp)->name);
        if (!k)
            continue; /* not runnable on this CPU */
        tested++;
        /* offset by one float so loads are unaligned as well */
        for (size_t d = 1; d <= maxd; d++)
            plain_case(k, d, K_RANDOM, K_RANDOM, a, b);
        static const size_t dims[] = {1, 3, 7, 8, 9, 15, 16, 17, 31, 33, 63, 64, 65, 127, 384, 385, 1536, 4095, 4096};
        for (size_t i = 0; i < sizeof dims / sizeof dims[0]; i++) {
            size_t d = dims[i];
            plain_case(k, d, K_ZEROS, K_RANDOM, a, b);
            plain_case(k, d, K_ZEROS, K_ZEROS, a, b);
            plain_case(k, d, K_DENORMAL, K_RANDOM, a, b);
            plain_case(k, d, K_DENORMAL, K_DENORMAL, a, b);
            plain_case(k, d, K_LARGE, K_RANDOM, a, b);
            plain_case(k, d, K_LARGE, K_LARGE, a, b);
            plain_case(k, d, K_MIXED, K_RANDOM, a, b);
            plain_case(k, d, K_MIXED, K_LARGE, a, b);
        }
    }
    /* scalar plus at least one SIMD variant must have run */
    cr_assert(tested >= 2, "only %d variants runnable", tested);
    free(a);
    free(b);
}

Test(kern, denormal_products_are_kept)
{
    /* a denormal times 1.0 must not be flushed to zero (no FTZ/DAZ) */
    float a[40], b[40];
    for (int j = 0; j < 40; j++) {
        a[j] = 1e-40f;
        b[j] = 1.0f;
    }
    for (const kern_ops *const *kp = kern_all(); *kp; kp++) {
        const kern_ops *k = kern_lookup((*kp)->name);
        if (!k)
            continue;
        float got = k->dot(a, b, 40);
        cr_assert(got > 0.0f && fabsf(got - 40e-40f) <= 40 * 1.5e-45f, "%s: %g", k->name, got);
    }
}

static size_t pad16(size_t d) { return (d + 15) & ~(size_t)15; }

Test(kern, scan_kernels_match_reference)
{
    static const size_t dims[] = {1, 5, 16, 17, 100, 128, 384, 385, 768, 1536};
    static const size_t ns[] = {1, 2, 3, 4, 5, 7, 8, 9, 63, 64};
    for (size_t di = 0; di < sizeof dims / sizeof dims[0]; di++) {
        size_t d = dims[di], dp = pad16(d);
        size_t nmax = 64;
        float *rows = aligned_alloc(64, nmax * dp * sizeof(float));
        float *q = aligned_alloc(64, dp * sizeof(float));
        float *qt = aligned_alloc(64, dp * KERN_QBLOCK * sizeof(float));
        float *qs = malloc(KERN_QBLOCK * dp * sizeof(float));
        float out[64], outb[64 * KERN_QBLOCK];
        cr_assert(rows && q && qt && qs);
        memset(rows, 0, nmax * dp * sizeof(float));
        memset(q, 0, dp * sizeof(float));
        memset(qs, 0, KERN_QBLOCK * dp * sizeof(float));
        for (size_t i = 0; i < nmax; i++)
            fill(rows + i * dp, d, (i % 7 == 3) ? K_LARGE : K_RANDOM);
        fill(q, d, K_RANDOM);
        for (size_t c = 0; c < KERN_QBLOCK; c++)
            fill(qs + c * dp, d, K_RANDOM);
        for (size_t j = 0; j < dp; j++)
            for (size_t c = 0; c < KERN_QBLOCK; c++)
                qt[j * KERN_QBLOCK + c] = qs[c * dp + j];
        for (const kern_ops *const *kp = kern_all(); *kp; kp++) {
            const kern_ops *k = kern_lookup((*kp)->name);
            if (!k)
                continue;
            for (size_t ni = 0; ni < sizeof ns / sizeof ns[0]; ni++) {
                size_t n = ns[ni];
                k->scan_dot(q, rows, n, dp, out);
                for (size_t i = 0; i < n; i++) {
                    double ref = 0, mag = 0;
                    for (size_t j = 0; j < d; j++) {
                        ref += (double)q[j] * rows[i * dp + j];
                        mag += fabs((double)q[j] * rows[i * dp + j]);
                    }
                    check_close("scan_dot", k->name, d, out[i], ref, mag);
                }
                k->scan_l2(q, rows, n, dp, out);
                for (size_t i = 0; i < n; i++) {
                    double ref = 0, mag = 0;
                    for (size_t j = 0; j < d; j++) {
                        double t = (double)q[j] - rows[i * dp + j];
                        ref += t * t;
                        mag += t * t + 2.4e-7 * fabs(t) * fabs((double)rows[i * dp + j]);
                    }
                    check_close("scan_l2", k->name, d, -out[i], ref, mag);
                }
                memset(outb, 0xff, sizeof outb);
                k->scan_dot_qblock(qt, rows, n, dp, outb);
                for (size_t i = 0; i < n; i++)
                    for (size_t c = 0; c < KERN_QBLOCK; c++) {
                        double ref = 0, mag = 0;
                        for (size_t j = 0; j < d; j++) {
                            ref += (double)qs[c * dp + j] * rows[i * dp + j];
                            mag += fabs((double)qs[c * dp + j] * rows[i * dp + j]);
                        }
                        check_close("scan_dot_qblock", k->name, d, outb[i * KERN_QBLOCK + c], ref, mag);
                    }
            }
        }
        free(rows);
        free(q);
        free(qt);
        free(qs);
    }
}

Test(kern, dispatch_picks_and_forces)
{
    const kern_ops *k = kern_get();
    cr_assert(k && k->name);
    cr_assert(kern_lookup(k->name) == k);
    cr_assert(kern_lookup("no-such-variant") == NULL);
    cr_assert(kern_lookup(NULL) == NULL);
    cr_assert(kern_force("scalar") == 0);
    cr_assert_str_eq(kern_get()->name, "scalar");
    cr_assert(kern_force("bogus") == -1);
    cr_assert_str_eq(kern_get()->name, "scalar");
#if defined(__x86_64__)
    /* on x86 the default must be a native x86 variant when the CPU has one */
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f")) {
        cr_assert(kern_force("avx512") == 0);
        cr_assert_str_eq(kern_get()->name, "avx512");
    }
#endif
}

Test(kern, ge_mask_matches_scalar)
{
    float s[KERN_QBLOCK], t[KERN_QBLOCK];
    for (int round = 0; round < 2000; round++) {
        for (int c = 0; c < KERN_QBLOCK; c++) {
            s[c] = (float)(rnd64() % 7) - 3.0f;
            switch (rnd64() % 5) {
            case 0: t[c] = s[c]; break; /* equal counts as >= */
            case 1: t[c] = INFINITY; break;
            case 2: t[c] = -INFINITY; break;
            default: t[c] = (float)(rnd64() % 7) - 3.0f; break;
            }
        }
        uint32_t want = 0;
        for (int c = 0; c < KERN_QBLOCK; c++)
            want |= (uint32_t)(s[c] >= t[c]) << c;
        for (const kern_ops *const *kp = kern_all(); *kp; kp++) {
            const kern_ops *k = kern_lookup((*kp)->name);
            if (k)
                cr_assert_eq(k->ge_mask(s, t), want, "%s: %08x want %08x", k->name, k->ge_mask(s, t), want);
        }
    }
}

/* The int8 kernel is exact: every variant equals a 64-bit sum, at the extremes
 * (255 x -128 in every lane) and on random codes, for every length 16 .. 4096. */
Test(kern, dot_u8i8_is_exact)
{
    uint8_t a[4096];
    int8_t b[4096];
    for (size_t n = 16; n <= 4096; n += 16) {
        for (size_t j = 0; j < n; j++) {
            a[j] = n % 256 == 0 ? 255 : (uint8_t)rnd64();
            b[j] = n % 256 == 0 ? -128 : (int8_t)rnd64();
        }
        int64_t want = 0;
        for (size_t j = 0; j < n; j++)
            want += (int64_t)a[j] * b[j];
        for (const kern_ops *const *kp = kern_all(); *kp; kp++) {
            const kern_ops *k = kern_lookup((*kp)->name);
            if (k)
                cr_assert_eq(k->dot_u8i8(a, b, n), want, "%s, n %zu: %d want %lld", k->name, n,
                             k->dot_u8i8(a, b, n), (long long)want);
        }
    }
}

/* The float16 kernel: every variant decodes binary16 as IEEE does (1.0, -2.0,
 * the largest half 65504, the smallest subnormal 2^-24) and sums as float32
 * does (within 1e-5 of the magnitude, against a double sum), for every length
 * 16 .. 4096. */
Test(kern, dot_f16_decodes_halves)
{
    static const struct { uint16_t h; double v; } known[] = {
        {0x3c00, 1.0}, {0xc000, -2.0}, {0x7bff, 65504.0}, {0x0001, 0x1p-24}, {0x3555, 0x1.554p-2}, {0x0000, 0.0}};
    float a[4096];
    uint16_t b[4096];
    for (size_t n = 16; n <= 4096; n += 16) {
        double want = 0, mag = 0;
        for (size_t j = 0; j < n; j++) {
            a[j] = rndf();
            size_t x = rnd64() % (2 * sizeof known / sizeof known[0]);
            /* half the lanes a known pattern, half a random half-precision value in [-8, 8) */
            double v;
            if (x < sizeof known / sizeof known[0]) {
                b[j] = known[x].h;
                v = known[x].v;
            } else {
                int m = (int)(rnd64() % 2048) - 1024; /* m / 128: exact in binary16 */
                v = m / 128.0;
                /* sign, exponent and 10-bit mantissa of m/128 */
                unsigned am = (unsigned)(m < 0 ? -m : m);
                if (am == 0) {
                    b[j] = 0;
                } else {
                    int e = 0;
                    while ((am >> e) > 1)
                        e++;
                    unsigned mant = (unsigned)((am << 10) >> e) & 0x3ff;
                    b[j] = (uint16_t)((m < 0 ? 0x8000u : 0) | (unsigned)(e - 7 + 15) << 10 | mant);
                }
            }
            want += (double)a[j] * v;
            mag += fabs((double)a[j] * v);
        }
        for (const kern_ops *const *kp = kern_all(); *kp; kp++) {
            const kern_ops *k = kern_lookup((*kp)->name);
            if (k) {
                float got = k->dot_f16(a, b, n);
                cr_assert(fabs(got - want) <= 1e-5 * mag + 1e-30, "%s, n %zu: %.9g want %.9g", k->name, n, got,
                          want);
            }
        }
    }
}
