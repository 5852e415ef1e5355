/*
 * cache.h — the block cache: a sharded LRU (CLOCK-style second chance: a hit
 * sets a bit instead of relinking) of decompressed SSTable blocks,
 * keyed by (table id, block offset), bounded by bytes (internal).
 *
 * Thread safety: all calls are thread-safe; each of 16 shards has its own
 * mutex. Invariants: an entry is freed only when it is out of the table and
 * no handle pins it; charge totals never exceed capacity except by entries
 * currently pinned.
 */
#ifndef KV_CACHE_H
#define KV_CACHE_H

#include <stddef.h>
#include <stdint.h>

typedef struct kv_cache kv_cache;
typedef struct kv_cache_entry kv_cache_entry;

/* Caller frees with kv_cache_free() once no handle is pinned. NULL on failure. */
kv_cache *kv_cache_new(size_t capacity_bytes);
void kv_cache_free(kv_cache *c);

/* Pinned entry or NULL. Release with kv_cache_release(). */
kv_cache_entry *kv_cache_lookup(kv_cache *c, uint64_t id, uint64_t off);
/* Inserts data (malloc'd; ownership passes to the cache, freed with free())
 * and returns it pinned. On allocation failure frees data and returns NULL.
 * If the key exists, the new entry replaces it. */
kv_cache_entry *kv_cache_insert(kv_cache *c, uint64_t id, uint64_t off, char *data, size_t size);
/* As kv_cache_insert for bytes the cache must not free (e.g. inside a
 * table's mmap, which outlives every entry of that table). */
kv_cache_entry *kv_cache_insert_borrowed(kv_cache *c, uint64_t id, uint64_t off, const char *data, size_t size);
void kv_cache_release(kv_cache *c, kv_cache_entry *e);
const char *kv_cache_data(const kv_cache_entry *e);
size_t kv_cache_size(const kv_cache_entry *e);
/* A fresh id for a table (so reopened files never hit stale entries). */
uint64_t kv_cache_new_id(kv_cache *c);
/* Drops unpinned entries of table id (called when a table is closed). */
void kv_cache_erase_id(kv_cache *c, uint64_t id);
size_t kv_cache_usage(kv_cache *c);
/* Lookups since kv_cache_new that found their entry (*hits) or did not
 * (*misses), summed over the shards (each counted under its shard's lock). */
void kv_cache_counters(kv_cache *c, uint64_t *hits, uint64_t *misses);

#endif /* KV_CACHE_H */
