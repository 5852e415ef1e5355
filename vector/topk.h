/*
 * topk.h — bounded heap of the k best (score, key) pairs.
 *
 * "Better" means a higher score, or an equal score and a lower key (keys are
 * row keys in insertion order, so ties go to the earlier row). The heap is a
 * min-heap on "better": the root is the worst kept item, so a candidate is
 * compared with one float (`thresh`) in the common case and only touches the
 * heap when it beats the root.
 *
 * Thread safety: none; each scanning thread owns its heaps and they are
 * merged afterwards (topk_merge).
 * Invariants: n <= k; when n == k, thresh == items[0].score; when n < k,
 * thresh == floor (the min_score, or -INFINITY).
 */
#ifndef NDB_VEC_TOPK_H
#define NDB_VEC_TOPK_H

#include <math.h>
#include <stddef.h>
#include <stdint.h>

typedef struct topk_item {
    float score;
    uint64_t key;
} topk_item;

typedef struct topk {
    float thresh;      /* candidates scoring below this are rejected */
    float floor;       /* min_score, or -INFINITY */
    uint32_t k, n;
    topk_item *items;  /* k slots; borrowed from the caller */
} topk;

static inline void topk_init(topk *h, topk_item *buf, uint32_t k, float floor)
{
    h->thresh = floor;
    h->floor = floor;
    h->k = k;
    h->n = 0;
    h->items = buf;
}

/* a is worse than b */
static inline int topk_worse(const topk_item *a, const topk_item *b)
{
    return a->score < b->score || (a->score == b->score && a->key > b->key);
}

static inline void topk_sift_down(topk *h, uint32_t i)
{
    topk_item *it = h->items;
    const uint32_t n = h->n;
    topk_item x = it[i];
    for (;;) {
        uint32_t c = 2 * i + 1;
        if (c >= n)
            break;
        if (c + 1 < n && topk_worse(&it[c + 1], &it[c]))
            c++;
        if (!topk_worse(&it[c], &x))
            break;
        it[i] = it[c];
        i = c;
    }
    it[i] = x;
}

/* Slow path of topk_offer: the candidate passed the float threshold. */
static inline void topk_push(topk *h, float score, uint64_t key)
{
    topk_item x = {score, key};
    if (h->n < h->k) {
        /* sift up */
        uint32_t i = h->n++;
        while (i > 0) {
            uint32_t p = (i - 1) / 2;
            if (!topk_worse(&x, &h->items[p]))
                break;
            h->items[i] = h->items[p];
            i = p;
        }
        h->items[i] = x;
        if (h->n == h->k)
            h->thresh = h->items[0].score;
        return;
    }
    if (!topk_worse(&h->items[0], &x))
        return; /* equal score, larger key */
    h->items[0] = x;
    topk_sift_down(h, 0);
    h->thresh = h->items[0].score;
}

static inline void topk_offer(topk *h, float score, uint64_t key)
{
    if (__builtin_expect(score >= h->thresh, 0))
        topk_push(h, score, key);
}

/* Adds src's items to dst. */
void topk_merge(topk *dst, const topk *src);
/* Sorts h->items[0..n) best first (the heap property is lost). */
void topk_sort(topk *h);

#endif /* NDB_VEC_TOPK_H */
