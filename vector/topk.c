/* topk.c — merging and sorting the bounded heaps of topk.h. */
#include "topk.h"

#include <stdlib.h>

void topk_merge(topk *dst, const topk *src)
{
    for (uint32_t i = 0; i < src->n; i++)
        topk_offer(dst, src->items[i].score, src->items[i].key);
}

static int cmp_better_first(const void *pa, const void *pb)
{
    const topk_item *a = pa, *b = pb;
    if (a->score != b->score)
        return a->score > b->score ? -1 : 1;
    return a->key < b->key ? -1 : (a->key > b->key);
}

void topk_sort(topk *h)
{
    qsort(h->items, h->n, sizeof(topk_item), cmp_better_first);
}
