/* scan.c — see scan.h. */
#include "scan.h"

static inline int excluded(const scan_chunk *c, size_t i)
{
    return c->skip && scan_bit(c->skip, c->skip_bit0 + i);
}

void scan_one(const kern_ops *k, int l2, const float *q, size_t dpad, const scan_chunk *c, topk *h)
{
    float sc[KERN_BLOCK];
    void (*scan)(const float *, const float *, size_t, size_t, float *) = l2 ? k->scan_l2 : k->scan_dot;
    if (c->sel) {
        for (size_t s = 0; s < c->nsel; s++) {
            size_t i = c->sel[s];
            scan(q, c->rows + i * dpad, 1, dpad, sc);
            if (!excluded(c, i))
                topk_offer(h, sc[0], c->key0 + i);
        }
        return;
    }
    for (size_t b = 0; b < c->n; b += KERN_BLOCK) {
        size_t m = c->n - b < KERN_BLOCK ? c->n - b : KERN_BLOCK;
        scan(q, c->rows + b * dpad, m, dpad, sc);
        for (size_t i = 0; i < m; i++) {
            if (__builtin_expect(sc[i] >= h->thresh, 0) && !excluded(c, b + i))
                topk_push(h, sc[i], c->key0 + b + i);
        }
    }
}

static void offer_block(const kern_ops *k, int l2, const float *qn2, unsigned nq, size_t dpad,
                        const scan_chunk *c, size_t first, size_t m, const float *rows, topk *heaps,
                        float *out, float *xn2, float *thr)
{
    if (l2) {
        for (size_t i = 0; i < m; i++)
            xn2[i] = k->dot(rows + i * dpad, rows + i * dpad, dpad);
        for (size_t i = 0; i < m; i++) {
            size_t row = c->sel ? c->sel[first + i] : first + i;
            if (excluded(c, row))
                continue;
            const float *o = out + i * KERN_QBLOCK;
            for (unsigned qi = 0; qi < nq; qi++)
                topk_offer(&heaps[qi], 2.0f * o[qi] - xn2[i] - qn2[qi], c->key0 + row);
        }
        return;
    }
    /* dot: one SIMD compare of 32 scores against the 32 thresholds per row;
     * thr[] mirrors heaps[].thresh (+inf for unused query columns) */
    for (size_t i = 0; i < m; i++) {
        const float *o = out + i * KERN_QBLOCK;
        uint32_t mask = k->ge_mask(o, thr);
        if (__builtin_expect(mask == 0, 1))
            continue;
        size_t row = c->sel ? c->sel[first + i] : first + i;
        if (excluded(c, row))
            continue;
        do {
            unsigned qi = (unsigned)__builtin_ctz(mask);
            mask &= mask - 1;
            topk_push(&heaps[qi], o[qi], c->key0 + row);
            thr[qi] = heaps[qi].thresh;
        } while (mask);
    }
}

void scan_batch(const kern_ops *k, int l2, const float *qt, const float *qn2, unsigned nq, size_t dpad,
                const scan_chunk *c, topk *heaps, float *scratch)
{
    float *out = scratch, *xn2 = scratch + KERN_BLOCK * KERN_QBLOCK;
    float thr[KERN_QBLOCK];
    for (unsigned qi = 0; qi < KERN_QBLOCK; qi++)
        thr[qi] = qi < nq ? heaps[qi].thresh : INFINITY;
    if (c->sel) {
        for (size_t s = 0; s < c->nsel; s++) {
            const float *row = c->rows + (size_t)c->sel[s] * dpad;
            k->scan_dot_qblock(qt, row, 1, dpad, out);
            offer_block(k, l2, qn2, nq, dpad, c, s, 1, row, heaps, out, xn2, thr);
        }
        return;
    }
    for (size_t b = 0; b < c->n; b += KERN_BLOCK) {
        size_t m = c->n - b < KERN_BLOCK ? c->n - b : KERN_BLOCK;
        const float *rows = c->rows + b * dpad;
        k->scan_dot_qblock(qt, rows, m, dpad, out);
        offer_block(k, l2, qn2, nq, dpad, c, b, m, rows, heaps, out, xn2, thr);
    }
}
