#include "arena.h"

#include <stdint.h>
#include <stdlib.h>

#include "populate.h"

typedef struct arena_block {
    struct arena_block *next;
    /* data follows, 8-byte aligned (the header is 8 bytes) */
} arena_block;

struct kv_arena {
    size_t block_bytes;
    char *ptr;
    size_t left;
    arena_block *blocks;
    size_t usage; /* written by the owner, read atomically by others */
};

kv_arena *kv_arena_new(size_t block_bytes)
{
    kv_arena *a = calloc(1, sizeof *a);
    if (a == NULL) return NULL;
    a->block_bytes = block_bytes < 1024 ? 1024 : block_bytes;
    __atomic_store_n(&a->usage, sizeof *a, __ATOMIC_RELAXED);
    return a;
}

void kv_arena_free(kv_arena *a)
{
    if (a == NULL) return;
    arena_block *b = a->blocks;
    while (b) {
        arena_block *n = b->next;
        free(b);
        b = n;
    }
    free(a);
}

static void *new_block(kv_arena *a, size_t n)
{
    if (n > SIZE_MAX - sizeof(arena_block)) return NULL;
    arena_block *b = malloc(sizeof *b + n);
    if (b == NULL) return NULL;
    ndb_populate(b, sizeof *b + n); /* the block fills soon: back it now rather than a fault per page */
    b->next = a->blocks;
    a->blocks = b;
    __atomic_store_n(&a->usage, a->usage + sizeof *b + n, __ATOMIC_RELAXED);
    return b + 1;
}

void *kv_arena_alloc(kv_arena *a, size_t n)
{
    n = (n + 7) & ~(size_t)7;
    if (n == 0) n = 8;
    if (n <= a->left) {
        void *p = a->ptr;
        a->ptr += n;
        a->left -= n;
        return p;
    }
    if (n > a->block_bytes / 4) return new_block(a, n); /* big: its own block, keep the tail */
    char *p = new_block(a, a->block_bytes);
    if (p == NULL) return NULL;
    a->ptr = p + n;
    a->left = a->block_bytes - n;
    return p;
}

size_t kv_arena_usage(const kv_arena *a) { return __atomic_load_n(&a->usage, __ATOMIC_RELAXED); }
