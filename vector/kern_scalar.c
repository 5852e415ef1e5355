/*
 * kern_scalar.c — the scalar reference kernels. Always compiled; every SIMD
 * variant is tested against these (tests/vector/test_kern.c), and they are
 * the fallback on CPUs without a SIMD variant.
 */
#include "kern.h"

#include <simde/simde-f16.h>

static float sc_dot(const float *a, const float *b, size_t d)
{
    float s = 0.0f;
    for (size_t j = 0; j < d; j++)
        s += a[j] * b[j];
    return s;
}

static float sc_l2sq(const float *a, const float *b, size_t d)
{
    float s = 0.0f;
    for (size_t j = 0; j < d; j++) {
        float t = a[j] - b[j];
        s += t * t;
    }
    return s;
}

static int32_t sc_dot_u8i8(const uint8_t *a, const int8_t *b, size_t n)
{
    int32_t s = 0;
    for (size_t j = 0; j < n; j++)
        s += (int32_t)a[j] * b[j];
    return s;
}

static float sc_dot_f16(const float *a, const uint16_t *b, size_t n)
{
    float s = 0.0f;
    for (size_t j = 0; j < n; j++)
        s += a[j] * simde_float16_to_float32(simde_uint16_as_float16(b[j]));
    return s;
}

static void sc_scan_dot(const float *q, const float *rows, size_t n, size_t dpad, float *out)
{
    for (size_t i = 0; i < n; i++)
        out[i] = sc_dot(q, rows + i * dpad, dpad);
}

static void sc_scan_l2(const float *q, const float *rows, size_t n, size_t dpad, float *out)
{
    for (size_t i = 0; i < n; i++)
        out[i] = -sc_l2sq(q, rows + i * dpad, dpad);
}

static void sc_scan_dot_qblock(const float *qt, const float *rows, size_t n, size_t dpad, float *out)
{
    for (size_t i = 0; i < n; i++) {
        float *o = out + i * KERN_QBLOCK;
        for (int c = 0; c < KERN_QBLOCK; c++)
            o[c] = 0.0f;
        const float *r = rows + i * dpad;
        for (size_t j = 0; j < dpad; j++) {
            const float x = r[j];
            const float *qj = qt + j * KERN_QBLOCK;
            for (int c = 0; c < KERN_QBLOCK; c++)
                o[c] += x * qj[c];
        }
    }
}

static uint32_t sc_ge_mask(const float *s, const float *t)
{
    uint32_t m = 0;
    for (int c = 0; c < KERN_QBLOCK; c++)
        m |= (uint32_t)(s[c] >= t[c]) << c;
    return m;
}

double kern_norm2_ref(const float *a, size_t d)
{
    double s = 0.0;
    for (size_t j = 0; j < d; j++)
        s += (double)a[j] * (double)a[j];
    return s;
}

const kern_ops kern_scalar_ops = {
    .name = "scalar",
    .dot = sc_dot,
    .l2sq = sc_l2sq,
    .dot_u8i8 = sc_dot_u8i8,
    .dot_f16 = sc_dot_f16,
    .scan_dot = sc_scan_dot,
    .scan_l2 = sc_scan_l2,
    .scan_dot_qblock = sc_scan_dot_qblock,
    .ge_mask = sc_ge_mask,
};
