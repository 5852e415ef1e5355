/*
 * kern_simd.c — the SIMD kernels, one source for every variant.
 *
 * Compiled once per variant with exactly one of KERN_AVX512, KERN_AVX2 or
 * KERN_NEON defined (and that variant's target flags, see CMakeLists.txt).
 * A small macro layer (V_*) maps the algorithms onto SIMDe's AVX-512, AVX2+FMA
 * or NEON intrinsics; SIMDe turns them into native instructions where the
 * target has them and into portable code elsewhere (or everywhere when
 * SIMDE_NO_NATIVE is defined, which the no-native test build does).
 */
#include "kern.h"

#if defined(KERN_AVX512)
#  include <simde/x86/avx512.h>
#  include <simde/x86/f16c.h>
typedef simde__m512 V;
#  define VW 16
#  define V_ZERO() simde_mm512_setzero_ps()
#  define V_LOAD(p) simde_mm512_loadu_ps(p)
#  define V_STORE(p, v) simde_mm512_storeu_ps((p), (v))
#  define V_SET1(x) simde_mm512_set1_ps(x)
#  define V_ADD(a, b) simde_mm512_add_ps((a), (b))
#  define V_SUB(a, b) simde_mm512_sub_ps((a), (b))
#  define V_FMA(a, b, c) simde_mm512_fmadd_ps((a), (b), (c)) /* a*b + c */
#  define QB_R 8 /* rows per tile in the batched kernel: 8 x 2 accumulators */
#  define V_GE_BITS(a, b) ((uint32_t)simde_mm512_cmp_ps_mask((a), (b), SIMDE_CMP_GE_OQ))
#  define KSUF(n) n##_avx512
#  define KNAME "avx512"
#  define KOPS kern_avx512_ops
static inline float v_hsum(V v)
{
    simde__m256 lo = simde_mm512_castps512_ps256(v);
    simde__m256 hi = simde_mm256_castpd_ps(simde_mm512_extractf64x4_pd(simde_mm512_castps_pd(v), 1));
    simde__m256 s = simde_mm256_add_ps(lo, hi);
    simde__m128 t = simde_mm_add_ps(simde_mm256_castps256_ps128(s), simde_mm256_extractf128_ps(s, 1));
    t = simde_mm_add_ps(t, simde_mm_movehl_ps(t, t));
    t = simde_mm_add_ss(t, simde_mm_shuffle_ps(t, t, 1));
    return simde_mm_cvtss_f32(t);
}
#elif defined(KERN_AVX2)
#  include <simde/x86/avx2.h>
#  include <simde/x86/f16c.h>
#  include <simde/x86/fma.h>
typedef simde__m256 V;
#  define VW 8
#  define V_ZERO() simde_mm256_setzero_ps()
#  define V_LOAD(p) simde_mm256_loadu_ps(p)
#  define V_STORE(p, v) simde_mm256_storeu_ps((p), (v))
#  define V_SET1(x) simde_mm256_set1_ps(x)
#  define V_ADD(a, b) simde_mm256_add_ps((a), (b))
#  define V_SUB(a, b) simde_mm256_sub_ps((a), (b))
#  define V_FMA(a, b, c) simde_mm256_fmadd_ps((a), (b), (c))
#  define QB_R 2 /* 2 rows x 4 accumulators: 16 ymm registers */
#  define V_GE_BITS(a, b) ((uint32_t)simde_mm256_movemask_ps(simde_mm256_cmp_ps((a), (b), SIMDE_CMP_GE_OQ)))
#  define KSUF(n) n##_avx2
#  define KNAME "avx2"
#  define KOPS kern_avx2_ops
static inline float v_hsum(V v)
{
    simde__m128 t = simde_mm_add_ps(simde_mm256_castps256_ps128(v), simde_mm256_extractf128_ps(v, 1));
    t = simde_mm_add_ps(t, simde_mm_movehl_ps(t, t));
    t = simde_mm_add_ss(t, simde_mm_shuffle_ps(t, t, 1));
    return simde_mm_cvtss_f32(t);
}
#elif defined(KERN_NEON)
#  include <simde/arm/neon.h>
typedef simde_float32x4_t V;
#  define VW 4
#  define V_ZERO() simde_vdupq_n_f32(0.0f)
#  define V_LOAD(p) simde_vld1q_f32(p)
#  define V_STORE(p, v) simde_vst1q_f32((p), (v))
#  define V_SET1(x) simde_vdupq_n_f32(x)
#  define V_ADD(a, b) simde_vaddq_f32((a), (b))
#  define V_SUB(a, b) simde_vsubq_f32((a), (b))
#  define V_FMA(a, b, c) simde_vfmaq_f32((c), (a), (b))
#  define QB_R 2 /* 2 rows x 8 accumulators */
static inline uint32_t v_ge_bits(V a, V b)
{
    static const uint32_t bit[4] = {1, 2, 4, 8};
    return simde_vaddvq_u32(simde_vandq_u32(simde_vcgeq_f32(a, b), simde_vld1q_u32(bit)));
}
#  define V_GE_BITS(a, b) v_ge_bits((a), (b))
#  define KSUF(n) n##_neon
#  define KNAME "neon"
#  define KOPS kern_neon_ops
static inline float v_hsum(V v) { return simde_vaddvq_f32(v); }
#else
#  error "define one of KERN_AVX512, KERN_AVX2, KERN_NEON"
#endif

#define QG (KERN_QBLOCK / VW) /* vectors per query group */
#define ALWAYS_INLINE inline __attribute__((always_inline))

static float KSUF(dot)(const float *a, const float *b, size_t d)
{
    V s0 = V_ZERO(), s1 = V_ZERO(), s2 = V_ZERO(), s3 = V_ZERO();
    size_t j = 0;
    for (; j + 4 * VW <= d; j += 4 * VW) {
        s0 = V_FMA(V_LOAD(a + j), V_LOAD(b + j), s0);
        s1 = V_FMA(V_LOAD(a + j + VW), V_LOAD(b + j + VW), s1);
        s2 = V_FMA(V_LOAD(a + j + 2 * VW), V_LOAD(b + j + 2 * VW), s2);
        s3 = V_FMA(V_LOAD(a + j + 3 * VW), V_LOAD(b + j + 3 * VW), s3);
    }
    for (; j + VW <= d; j += VW)
        s0 = V_FMA(V_LOAD(a + j), V_LOAD(b + j), s0);
    float s = v_hsum(V_ADD(V_ADD(s0, s1), V_ADD(s2, s3)));
    for (; j < d; j++)
        s += a[j] * b[j];
    return s;
}

static float KSUF(l2sq)(const float *a, const float *b, size_t d)
{
    V s0 = V_ZERO(), s1 = V_ZERO(), s2 = V_ZERO(), s3 = V_ZERO();
    size_t j = 0;
    for (; j + 4 * VW <= d; j += 4 * VW) {
        V d0 = V_SUB(V_LOAD(a + j), V_LOAD(b + j));
        V d1 = V_SUB(V_LOAD(a + j + VW), V_LOAD(b + j + VW));
        V d2 = V_SUB(V_LOAD(a + j + 2 * VW), V_LOAD(b + j + 2 * VW));
        V d3 = V_SUB(V_LOAD(a + j + 3 * VW), V_LOAD(b + j + 3 * VW));
        s0 = V_FMA(d0, d0, s0);
        s1 = V_FMA(d1, d1, s1);
        s2 = V_FMA(d2, d2, s2);
        s3 = V_FMA(d3, d3, s3);
    }
    for (; j + VW <= d; j += VW) {
        V d0 = V_SUB(V_LOAD(a + j), V_LOAD(b + j));
        s0 = V_FMA(d0, d0, s0);
    }
    float s = v_hsum(V_ADD(V_ADD(s0, s1), V_ADD(s2, s3)));
    for (; j < d; j++) {
        float t = a[j] - b[j];
        s += t * t;
    }
    return s;
}

/*
 * Single-query scan: one row at a time, front to back, four accumulators per
 * row. Rows are consecutive, so memory is read as one sequential stream,
 * which the hardware prefetchers follow best (interleaving four rows, 1.5 KiB
 * apart at 384 dims, halved the streaming rate on Zen 5).
 */
static void KSUF(scan_dot)(const float *q, const float *rows, size_t n, size_t dpad, float *out)
{
    for (size_t i = 0; i < n; i++)
        out[i] = KSUF(dot)(q, rows + i * dpad, dpad);
}

static void KSUF(scan_l2)(const float *q, const float *rows, size_t n, size_t dpad, float *out)
{
    for (size_t i = 0; i < n; i++)
        out[i] = -KSUF(l2sq)(q, rows + i * dpad, dpad);
}

/*
 * Batched scan, R rows x KERN_QBLOCK queries per tile. The queries are stored
 * transposed, so one broadcast row component times one vector of query
 * components accumulates W query scores at once: no horizontal reductions, and
 * every row byte is read from memory once per block of 32 queries.
 */
static ALWAYS_INLINE void KSUF(qtile)(const float *qt, const float *rows, size_t dpad, float *out,
                                      const int R)
{
    V acc[QB_R][QG];
#pragma GCC unroll 8
    for (int r = 0; r < R; r++)
#pragma GCC unroll 8
        for (int g = 0; g < QG; g++)
            acc[r][g] = V_ZERO();
    for (size_t j = 0; j < dpad; j++) {
        V qv[QG];
#pragma GCC unroll 8
        for (int g = 0; g < QG; g++)
            qv[g] = V_LOAD(qt + j * KERN_QBLOCK + g * VW);
#pragma GCC unroll 8
        for (int r = 0; r < R; r++) {
            V x = V_SET1(rows[(size_t)r * dpad + j]);
#pragma GCC unroll 8
            for (int g = 0; g < QG; g++)
                acc[r][g] = V_FMA(x, qv[g], acc[r][g]);
        }
    }
#pragma GCC unroll 8
    for (int r = 0; r < R; r++)
#pragma GCC unroll 8
        for (int g = 0; g < QG; g++)
            V_STORE(out + (size_t)r * KERN_QBLOCK + g * VW, acc[r][g]);
}

static void KSUF(scan_dot_qblock)(const float *qt, const float *rows, size_t n, size_t dpad, float *out)
{
    size_t i = 0;
    for (; i + QB_R <= n; i += QB_R)
        KSUF(qtile)(qt, rows + i * dpad, dpad, out + i * KERN_QBLOCK, QB_R);
    for (; i < n; i++)
        KSUF(qtile)(qt, rows + i * dpad, dpad, out + i * KERN_QBLOCK, 1);
}

/* Bit c set when s[c] >= t[c], c < KERN_QBLOCK. */
static uint32_t KSUF(ge_mask)(const float *s, const float *t)
{
    uint32_t m = 0;
#pragma GCC unroll 8
    for (int g = 0; g < QG; g++)
        m |= V_GE_BITS(V_LOAD(s + g * VW), V_LOAD(t + g * VW)) << (g * VW);
    return m;
}

/* The int8 graph's kernel: 16 codes at a time, widened to 16 bits and
 * multiplied pairwise into 32-bit sums (no saturation: 255 * 128 * 2 fits). */
#if defined(KERN_NEON)
static int32_t KSUF(dot_u8i8)(const uint8_t *a, const int8_t *b, size_t n)
{
    simde_int32x4_t acc = simde_vdupq_n_s32(0);
    for (size_t j = 0; j < n; j += 16) {
        simde_uint8x16_t x = simde_vld1q_u8(a + j);
        simde_int8x16_t y = simde_vld1q_s8(b + j);
        simde_int16x8_t xl = simde_vreinterpretq_s16_u16(simde_vmovl_u8(simde_vget_low_u8(x)));
        simde_int16x8_t xh = simde_vreinterpretq_s16_u16(simde_vmovl_u8(simde_vget_high_u8(x)));
        simde_int16x8_t yl = simde_vmovl_s8(simde_vget_low_s8(y)), yh = simde_vmovl_s8(simde_vget_high_s8(y));
        acc = simde_vmlal_s16(acc, simde_vget_low_s16(xl), simde_vget_low_s16(yl));
        acc = simde_vmlal_s16(acc, simde_vget_high_s16(xl), simde_vget_high_s16(yl));
        acc = simde_vmlal_s16(acc, simde_vget_low_s16(xh), simde_vget_low_s16(yh));
        acc = simde_vmlal_s16(acc, simde_vget_high_s16(xh), simde_vget_high_s16(yh));
    }
    return simde_vaddvq_s32(acc);
}
#else /* AVX2, and AVX-512 (which implies AVX2; 16-bit products need AVX-512BW at 512 bits) */
static int32_t KSUF(dot_u8i8)(const uint8_t *a, const int8_t *b, size_t n)
{
    simde__m256i acc = simde_mm256_setzero_si256();
    for (size_t j = 0; j < n; j += 16) {
        simde__m256i x = simde_mm256_cvtepu8_epi16(simde_mm_loadu_si128((const simde__m128i *)(a + j)));
        simde__m256i y = simde_mm256_cvtepi8_epi16(simde_mm_loadu_si128((const simde__m128i *)(b + j)));
        acc = simde_mm256_add_epi32(acc, simde_mm256_madd_epi16(x, y));
    }
    simde__m128i t = simde_mm_add_epi32(simde_mm256_castsi256_si128(acc), simde_mm256_extracti128_si256(acc, 1));
    t = simde_mm_add_epi32(t, simde_mm_shuffle_epi32(t, SIMDE_MM_SHUFFLE(1, 0, 3, 2)));
    t = simde_mm_add_epi32(t, simde_mm_shuffle_epi32(t, SIMDE_MM_SHUFFLE(2, 3, 0, 1)));
    return simde_mm_cvtsi128_si32(t);
}
#endif

/* The float16 graph's kernel: 16 halves at a time widened to floats (F16C's
 * vcvtph2ps on x86, vcvt_f32_f16 on Arm), two accumulators. */
#if defined(KERN_NEON)
static float KSUF(dot_f16)(const float *a, const uint16_t *b, size_t n)
{
    simde_float32x4_t s0 = simde_vdupq_n_f32(0.0f), s1 = simde_vdupq_n_f32(0.0f);
    for (size_t j = 0; j < n; j += 8) {
        simde_float32x4_t x0 = simde_vcvt_f32_f16(simde_vreinterpret_f16_u16(simde_vld1_u16(b + j)));
        simde_float32x4_t x1 = simde_vcvt_f32_f16(simde_vreinterpret_f16_u16(simde_vld1_u16(b + j + 4)));
        s0 = simde_vfmaq_f32(s0, simde_vld1q_f32(a + j), x0);
        s1 = simde_vfmaq_f32(s1, simde_vld1q_f32(a + j + 4), x1);
    }
    return simde_vaddvq_f32(simde_vaddq_f32(s0, s1));
}
#else
static float KSUF(dot_f16)(const float *a, const uint16_t *b, size_t n)
{
    simde__m256 s0 = simde_mm256_setzero_ps(), s1 = simde_mm256_setzero_ps();
    for (size_t j = 0; j < n; j += 16) {
        simde__m256 x0 = simde_mm256_cvtph_ps(simde_mm_loadu_si128((const simde__m128i *)(b + j)));
        simde__m256 x1 = simde_mm256_cvtph_ps(simde_mm_loadu_si128((const simde__m128i *)(b + j + 8)));
        s0 = simde_mm256_fmadd_ps(simde_mm256_loadu_ps(a + j), x0, s0);
        s1 = simde_mm256_fmadd_ps(simde_mm256_loadu_ps(a + j + 8), x1, s1);
    }
    simde__m256 v = simde_mm256_add_ps(s0, s1);
    simde__m128 t = simde_mm_add_ps(simde_mm256_castps256_ps128(v), simde_mm256_extractf128_ps(v, 1));
    t = simde_mm_add_ps(t, simde_mm_movehl_ps(t, t));
    t = simde_mm_add_ss(t, simde_mm_shuffle_ps(t, t, 1));
    return simde_mm_cvtss_f32(t);
}
#endif

const kern_ops KOPS = {
    .name = KNAME,
    .dot = KSUF(dot),
    .l2sq = KSUF(l2sq),
    .scan_dot = KSUF(scan_dot),
    .scan_l2 = KSUF(scan_l2),
    .scan_dot_qblock = KSUF(scan_dot_qblock),
    .ge_mask = KSUF(ge_mask),
    .dot_u8i8 = KSUF(dot_u8i8),
    .dot_f16 = KSUF(dot_f16),
};
