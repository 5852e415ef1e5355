/*
 * arena.h — bump allocator backing a memtable (internal).
 *
 * Thread safety: one allocating thread at a time; kv_arena_usage may be read
 * from any thread. Memory lives until kv_arena_free; nothing is freed early.
 * Invariants: every pointer returned is 8-byte aligned; usage counts every
 * block malloc'd (so it bounds the arena's real footprint).
 */
#ifndef KV_ARENA_H
#define KV_ARENA_H

#include <stddef.h>

typedef struct kv_arena kv_arena;

/* Caller frees with kv_arena_free(). NULL on allocation failure. */
kv_arena *kv_arena_new(size_t block_bytes);
void kv_arena_free(kv_arena *a);
/* 8-byte aligned memory, owned by the arena; NULL on allocation failure. */
void *kv_arena_alloc(kv_arena *a, size_t n);
size_t kv_arena_usage(const kv_arena *a);

#endif /* KV_ARENA_H */
