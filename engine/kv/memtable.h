/*
 * memtable.h — the in-memory write buffer: a skiplist of internal entries in
 * an arena (internal).
 *
 * Thread safety: one writer at a time (a writer holding the engine's wmu)
 * may call kv_mem_add; any number of readers may call get/iterate
 * concurrently with it and with each other, without locks (next pointers are
 * published with release stores and read with acquire loads; the filter's
 * bits are set before the node is linked, and a reader looks for an entry
 * only once the engine's release of its sequence number has published it).
 * The refcount is atomic.
 *
 * Invariants: entries are never removed or changed; each (user key, seq) is
 * added at most once; node heights are in [1, MEM_MAX_HEIGHT].
 */
#ifndef KV_MEMTABLE_H
#define KV_MEMTABLE_H

#include <stddef.h>
#include <stdint.h>

#include "iter.h"
#include "ndb_status.h"

typedef struct kv_mem kv_mem;

/* Refcount starts at 1. arena_block is the arena's block size (the unit
 * by which kv_mem_bytes grows). filter_bytes sizes a bloom filter over the
 * user keys that lets kv_mem_get answer "absent" without searching (0: no
 * filter; it is not counted in kv_mem_bytes). NULL on allocation failure. */
kv_mem *kv_mem_new(size_t arena_block, size_t filter_bytes);
void kv_mem_ref(kv_mem *m);
void kv_mem_unref(kv_mem *m); /* frees at zero */

/* Adds an entry (copied). type is KV_TYPE_VALUE or KV_TYPE_DELETE. */
ndb_status kv_mem_add(kv_mem *m, uint64_t seq, int type, const void *key, size_t klen,
                      const void *val, size_t vlen);

/* Looks up the newest entry for key with seq <= seq (hash: kv_bloom_hash of
 * key, for the filter). Returns 1 and sets *deleted (1 for a tombstone) and
 * *val, *vlen (borrowed while m is referenced) when an entry exists; 0
 * otherwise. */
int kv_mem_get(kv_mem *m, const void *key, size_t klen, uint64_t hash, uint64_t seq, const char **val,
               size_t *vlen, int *deleted);

size_t kv_mem_bytes(const kv_mem *m);
uint64_t kv_mem_entries(const kv_mem *m);

/* An iterator over internal keys; holds a reference to m until destroyed. */
kv_iter *kv_mem_iter(kv_mem *m);

#endif /* KV_MEMTABLE_H */
