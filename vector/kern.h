/*
 * kern.h — similarity kernels over float32 (internal to vector/).
 *
 * One table of function pointers per instruction-set variant: the scalar
 * reference (always compiled) and the SIMDe variants built from the single
 * source kern_simd.c with per-variant target flags (avx2 = AVX2+FMA,
 * avx512 = AVX-512F, neon = Arm NEON; on x86 the neon table runs through
 * SIMDe's SSE translation so it can be tested here too).
 *
 * Conventions
 *   - `d` is the logical dimension count; vectors may be any length >= 1.
 *   - The scan kernels work on rows padded to `dpad` floats (a multiple of 16,
 *     the padding zero-filled, see seg.h), so they need no tail handling; the
 *     query passed to them must be padded the same way.
 *   - Scores are "higher is better": dot for cosine/dot, and minus the squared
 *     Euclidean distance for l2.
 *
 * Thread safety: every kernel is a pure function. kern_get()/kern_force() use
 *   an atomic pointer; forcing a variant while searches run is allowed (each
 *   search reads the table once).
 */
#ifndef NDB_VEC_KERN_H
#define NDB_VEC_KERN_H

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

/* Rows scored per call to the scan kernels (the top-k block size). */
#define KERN_BLOCK 64
/* Queries per group in the batched kernel: 32 (two 16-wide AVX-512 vectors,
 * four 8-wide AVX2 vectors, eight 4-wide NEON vectors). */
#define KERN_QBLOCK 32

typedef struct kern_ops {
    const char *name;
    /* Plain kernels over d floats, no padding required. */
    float (*dot)(const float *a, const float *b, size_t d);
    float (*l2sq)(const float *a, const float *b, size_t d);
    /* Scores n rows (rows[i*dpad ...]) against padded q into out[0..n). */
    void (*scan_dot)(const float *q, const float *rows, size_t n, size_t dpad, float *out);
    void (*scan_l2)(const float *q, const float *rows, size_t n, size_t dpad, float *out);
    /*
     * Batched dot: qt holds KERN_QBLOCK queries transposed, qt[j*KERN_QBLOCK + c]
     * = component j of query c (unused query columns zero). Writes
     * out[i*KERN_QBLOCK + c] = dot(row i, query c) for i < n.
     */
    void (*scan_dot_qblock)(const float *qt, const float *rows, size_t n, size_t dpad, float *out);
    /* Bit c (c < KERN_QBLOCK) set when s[c] >= t[c]: the batched top-k
     * check of 32 scores against 32 heap thresholds in a few instructions. */
    uint32_t (*ge_mask)(const float *s, const float *t);
    /* Exact integer dot product of n (a multiple of 16) unsigned codes with
     * n signed ones: the int8-quantized graph's kernel (|result| < 2^31 for
     * n <= 65536). */
    int32_t (*dot_u8i8)(const uint8_t *a, const int8_t *b, size_t n);
    /* Dot product of n (a multiple of 16) floats with n IEEE binary16 values
     * (the float16 graph's kernel), summed in float32. */
    float (*dot_f16)(const float *a, const uint16_t *b, size_t n);
} kern_ops;

/* Variant tables; NULL entries in kern_variants() are not compiled in. */
extern const kern_ops kern_scalar_ops;
extern const kern_ops kern_avx2_ops;
extern const kern_ops kern_avx512_ops;
extern const kern_ops kern_neon_ops;

/* The table in use (chosen at first call: widest the CPU supports, or the
 * NDB_VEC_KERNEL environment variable when it names a runnable variant). */
const kern_ops *kern_get(void);

/* Whether the named variant can run on this CPU (natively or through SIMDe's
 * translation). Returns its table, or NULL. */
const kern_ops *kern_lookup(const char *name);

/* Makes the named runnable variant current; 0, or -1 if not runnable. */
int kern_force(const char *name);

/* Every compiled variant, NULL-terminated; borrowed, static. */
const kern_ops *const *kern_all(void);

/* n bytes aligned to 64 for the kernels' loads (aligned_alloc needs a size
 * that is a multiple of the alignment: n is rounded up); free() them. NULL
 * when out of memory or n overflows. */
static inline void *kern_alloc(size_t n)
{
    return n > SIZE_MAX - 63 ? NULL : aligned_alloc(64, (n + 63) & ~(size_t)63);
}

/* Squared norm helper for l2 batching and normalisation (scalar, double acc). */
double kern_norm2_ref(const float *a, size_t d);

#endif /* NDB_VEC_KERN_H */
