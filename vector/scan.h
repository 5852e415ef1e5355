/*
 * scan.h — fused scoring + top-k over runs of padded rows.
 *
 * The kernels score KERN_BLOCK rows into a small buffer that stays in L1;
 * each score is then compared with the heap's threshold (one compare, rarely
 * taken), so scores are never materialised for the whole collection.
 * Exclusion bitmaps (dead rows, rows a filter rejected) are consulted only
 * for rows that pass the threshold.
 *
 * Thread safety: the functions are pure over their arguments; callers give
 * each thread its own heaps and scratch.
 */
#ifndef NDB_VEC_SCAN_H
#define NDB_VEC_SCAN_H

#include <stddef.h>
#include <stdint.h>

#include "kern.h"
#include "topk.h"

typedef struct scan_chunk {
    const float *rows;     /* row 0 of the chunk; n rows of dpad floats */
    size_t n;
    uint64_t key0;         /* row i has key key0 + i */
    const uint64_t *skip;  /* optional: bit (skip_bit0 + i) set = row i is no candidate */
    size_t skip_bit0;
    const uint32_t *sel;   /* optional: score only rows sel[0..nsel), ascending */
    size_t nsel;
} scan_chunk;

static inline int scan_bit(const uint64_t *bm, size_t i) { return (int)((bm[i >> 6] >> (i & 63)) & 1u); }

/* One query q (dpad floats, zero padded; normalised for cosine). l2 selects
 * the l2 kernel, else dot. */
void scan_one(const kern_ops *k, int l2, const float *q, size_t dpad, const scan_chunk *c, topk *h);

/* Scratch floats scan_batch needs. */
#define SCAN_BATCH_SCRATCH (KERN_BLOCK * KERN_QBLOCK + KERN_BLOCK)

/* Up to KERN_QBLOCK queries, transposed into qt (see kern.h). For l2, qn2[c]
 * is |query c|^2 and the scores are 2 q.x - |x|^2 - |q|^2. heaps[c] receives
 * query c's candidates. scratch holds SCAN_BATCH_SCRATCH floats. */
void scan_batch(const kern_ops *k, int l2, const float *qt, const float *qn2, unsigned nq, size_t dpad,
                const scan_chunk *c, topk *heaps, float *scratch);

#endif /* NDB_VEC_SCAN_H */
