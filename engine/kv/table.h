/*
 * table.h — SSTables: builder and reader (internal). Layout: FORMAT.md
 * "SSTable".
 *
 *   data blocks | filter block | index block | footer (48 bytes)
 *   each block followed by a 5-byte trailer: compression type, masked CRC32C
 *
 * Thread safety: a builder belongs to one thread. A kv_table is immutable
 * after open and may be read by any number of threads (pread + block cache).
 */
#ifndef KV_TABLE_H
#define KV_TABLE_H

#include <stddef.h>
#include <stdint.h>

#include "cache.h"
#include "env.h"
#include "iter.h"
#include "ndb_kv.h"

#define TABLE_MAGIC 0x3154535342444e4eull /* "NNDBSST1" little-endian */
#define TABLE_VERSION 1
#define TABLE_FOOTER 48
#define BLOCK_TRAILER 5
#define TABLE_MAX_BLOCK (64u * 1024u * 1024u + 1024u * 1024u) /* larger handles are corrupt */

typedef struct kv_table_builder kv_table_builder;

typedef struct kv_table_opts {
    size_t block_bytes;
    int bloom_bits; /* 0: no filter */
    ndb_kv_compression compression;
} kv_table_opts;

/* Creates path. Caller finishes with kv_table_builder_finish() or abandons
 * with kv_table_builder_abandon(); both free b. */
ndb_status kv_table_builder_new(kv_env *env, const char *path, const kv_table_opts *o,
                                kv_table_builder **out);
/* Internal keys in strictly increasing order. */
ndb_status kv_table_builder_add(kv_table_builder *b, kv_slice ikey, kv_slice val);
uint64_t kv_table_builder_entries(const kv_table_builder *b);
uint64_t kv_table_builder_size(const kv_table_builder *b); /* bytes so far (estimate) */
/* Writes filter, index, footer; fsyncs and closes. *size receives the file
 * size. b is freed in every case. */
ndb_status kv_table_builder_finish(kv_table_builder *b, uint64_t *size);
/* Closes and frees b; the caller removes the file. */
void kv_table_builder_abandon(kv_table_builder *b);

typedef struct kv_table kv_table;

/* Opens a table of the given size. cache may be NULL. Caller frees with
 * kv_table_close(). NDB_ECORRUPT for a bad footer/index/filter. */
ndb_status kv_table_open(kv_env *env, const char *path, uint64_t size, kv_cache *cache,
                         kv_table **out, ndb_errmsg *msg);
void kv_table_close(kv_table *t);

enum { TABLE_GET_MISS = 0, TABLE_GET_VALUE = 1, TABLE_GET_DELETED = 2 };
/* Looks up the newest entry for ukey with seq <= lookup's seq (lookup is the
 * seek internal key). On TABLE_GET_VALUE *val is malloc'd (caller frees with
 * free()) unless val is NULL. *result receives TABLE_GET_*. *bloom_skip is
 * set to 1 when the filter ruled the key out. */
ndb_status kv_table_get(kv_table *t, kv_slice lookup, uint64_t ukey_hash, int *result, void **val,
                        size_t *vlen, int *bloom_skip);

/* An iterator over the table; t must outlive it. release(arg), when given,
 * runs when the iterator is destroyed (it drops what keeps t alive). */
kv_iter *kv_table_iter(kv_table *t, void (*release)(void *), void *arg);

/* Counters (atomic, process-wide) for stats; the block cache counts its own
 * hits and misses (kv_cache_counters). */
typedef struct kv_table_counters {
    uint64_t bloom_useful;
} kv_table_counters;
void kv_table_counters_get(kv_table_counters *out);

#endif /* KV_TABLE_H */
