/*
 * version.h — the set of live SSTables per level (a version), the edits that
 * change it, the manifest that logs those edits, and the table cache
 * (internal). Manifest layout: FORMAT.md "Manifest".
 *
 * Thread safety: kv_vset fields are protected by the engine mutex (the
 * caller holds it for every kv_vset_* call that says "mu held"). A kv_version
 * is immutable once installed; its refcount and each file's refcount are
 * atomic, so readers ref a version under mu and use/unref it without.
 *
 * Invariants: in L0 files are ordered newest first (by file number) and may
 * overlap; in L1+ files are sorted by smallest key and do not overlap, and a
 * user key lives in at most one file per level (outputs never split a user
 * key). A file is deleted from disk when it has been removed by an edit and
 * the last version holding it is gone.
 */
#ifndef KV_VERSION_H
#define KV_VERSION_H

#include <pthread.h>
#include <stdint.h>

#include "cache.h"
#include "coding.h"
#include "env.h"
#include "iter.h"
#include "ndb_kv.h"
#include "table.h"
#include "wal.h"

typedef struct kv_vset kv_vset;

typedef struct kv_fmeta {
    int refs;
    int obsolete; /* removed by an edit: delete the file at refs 0 */
    uint64_t number, size;
    char *smallest, *largest; /* internal keys, owned */
    size_t slen, llen;
    kv_table *table; /* table cache slot: open while in the shard's LRU (shard mu) */
    int pins;        /* users of table right now (shard mu); evicted only at 0 */
    int64_t allowed_seeks; /* atomic: reads it may cost before it is compacted (kv_fmeta_charge) */
    struct kv_fmeta *lru_prev, *lru_next; /* shard LRU, newest at sentinel.next */
    kv_vset *vs;
} kv_fmeta;

/* The table cache: open tables in 16 shards (by file number), each an LRU
 * bounded by max_open_tables / 16; a pinned table is never closed. */
#define TCACHE_SHARDS 16
typedef struct kv_tcache_shard {
    pthread_mutex_t mu;
    kv_fmeta lru; /* sentinel */
    size_t open, cap;
} kv_tcache_shard;

typedef struct kv_version {
    int refs;
    kv_fmeta **files[NDB_KV_LEVELS];
    size_t nfiles[NDB_KV_LEVELS];
    uint64_t bytes[NDB_KV_LEVELS];
    size_t l0_depth; /* the most L0 files whose ranges hold one user key */
} kv_version;

/* What L0 costs reads, compared with the l0_*_trigger options: its depth, or
 * a quarter of its files when that is more (a flush into partitions writes
 * several tables that share no key, and each open table has a cost too). */
static inline size_t kv_version_l0_load(const kv_version *v)
{
    size_t q = (v->nfiles[0] + 3) / 4;
    return v->l0_depth > q ? v->l0_depth : q;
}

typedef struct kv_edit {
    int has_log, has_next, has_seq;
    uint64_t log_number, next_file, last_seq;
    struct {
        int level;
        uint64_t number;
    } *del;
    size_t ndel, capdel;
    struct {
        int level;
        kv_fmeta *f; /* referenced by the edit */
    } *add;
    size_t nadd, capadd;
} kv_edit;

struct kv_vset {
    kv_env *env;
    char *dir;
    kv_cache *cache;
    kv_table_opts topts;
    kv_version *current;
    uint64_t next_file, log_number, last_seq, manifest_number;
    kv_wal_writer *manifest;
    char *compact_ptr[NDB_KV_LEVELS]; /* user key after which the next Ln compaction starts */
    size_t compact_ptr_len[NDB_KV_LEVELS];
    kv_tcache_shard tcache[TCACHE_SHARDS];
    uint64_t l1_max_bytes;
    uint32_t l0_trigger;
};

/* ---- files */
kv_fmeta *kv_fmeta_new(kv_vset *vs, uint64_t number, uint64_t size, kv_slice smallest, kv_slice largest);
void kv_fmeta_ref(kv_fmeta *f);
void kv_fmeta_unref(kv_fmeta *f);
/* The open table for f from the table cache (opened if needed), pinned:
 * borrowed until kv_fmeta_table_release(f). */
ndb_status kv_fmeta_table(kv_fmeta *f, kv_table **out, ndb_errmsg *msg);
void kv_fmeta_table_release(kv_fmeta *f);
/* Charges f one read that consulted it without finding its answer there
 * when another table had to be consulted as well (LevelDB's seek
 * compaction: a table is worth compacting once reads have spent about as
 * much on it as compacting it costs, one read per 16 KiB, at least 100).
 * Returns 1 exactly once: when the allowance runs out. */
int kv_fmeta_charge(kv_fmeta *f);
/* Number of tables open in the table cache (for stats and tests). */
size_t kv_vset_open_tables(kv_vset *vs);

/* ---- versions */
void kv_version_ref(kv_version *v);
void kv_version_unref(kv_version *v);
/* Point lookup in the levels: *result is TABLE_GET_*; value malloc'd on VALUE.
 * hash is kv_bloom_hash of the user key. When the lookup read more than one
 * table (a table whose filter ruled the key out is not read), *charged is
 * the first one read (borrowed from v; the caller charges it with
 * kv_fmeta_charge) and *charged_level its level; otherwise NULL. */
ndb_status kv_version_get(kv_version *v, kv_slice lookup, uint64_t hash, int *result, void **val,
                          size_t *vlen, kv_fmeta **charged, int *charged_level, ndb_errmsg *msg);
/* Appends iterators for every L0 file and one per deeper level to out (room
 * for nfiles[0] + NDB_KV_LEVELS), leaving out files and levels with no user
 * key in [lower, upper) (NULL: unbounded). Returns the count or -1 on
 * allocation failure; *newest_l0 is the newest L0 file included (borrowed
 * from v) or NULL. */
int kv_version_iters(kv_version *v, const kv_slice *lower, const kv_slice *upper, kv_iter **out,
                     kv_fmeta **newest_l0);
/* Files of level that overlap user range [b, e] (NULL: unbounded) into a
 * malloc'd array (caller frees with free(); entries borrowed from v). */
ndb_status kv_version_overlaps(kv_version *v, int level, const kv_slice *b, const kv_slice *e,
                               kv_fmeta ***out, size_t *n);
/* 1 if no level deeper than level has a file that may hold ukey. */
int kv_version_is_base(kv_version *v, int level, kv_slice ukey);
uint64_t kv_level_max_bytes(const kv_vset *vs, int level);

/* ---- edits */
void kv_edit_init(kv_edit *e);
void kv_edit_destroy(kv_edit *e);
ndb_status kv_edit_add_file(kv_edit *e, int level, kv_fmeta *f); /* refs f */
ndb_status kv_edit_del_file(kv_edit *e, int level, uint64_t number);
/* Encoding (exposed for tests): malloc'd buffer, caller frees with free(). */
ndb_status kv_edit_encode(const kv_edit *e, char **out, size_t *n);
ndb_status kv_edit_decode(kv_vset *vs, const char *p, size_t n, kv_edit *e);

/* A manifest's first record for v: a full snapshot (every file of v) with
 * these counters, encoded. Caller frees *out with free(). */
ndb_status kv_version_encode_snapshot(kv_version *v, uint64_t log_number, uint64_t next_file, uint64_t last_seq,
                                      char **out, size_t *n);

/* ---- the version set */
ndb_status kv_vset_new(kv_env *env, const char *dir, kv_cache *cache, const kv_table_opts *topts,
                       uint64_t l1_max_bytes, uint32_t l0_trigger, uint32_t max_open_tables, kv_vset **out);
void kv_vset_free(kv_vset *vs);
/* Reads CURRENT and replays its manifest. NDB_ENOTFOUND if there is no CURRENT. */
ndb_status kv_vset_recover(kv_vset *vs, ndb_errmsg *msg);
/* Applies e to current, logs it (a fresh manifest with a full snapshot when
 * none is open; then CURRENT is switched by write, fsync, rename, fsync dir),
 * fsyncs, installs the new version. mu held. On failure nothing changes in
 * memory (the caller must poison: the manifest may be half-written). */
ndb_status kv_vset_log_and_apply(kv_vset *vs, kv_edit *e, ndb_errmsg *msg);
/* Writes a snapshot of the current state to a fresh manifest, fsyncs it,
 * points CURRENT at it (write, fsync, rename, fsync dir) and removes the
 * previous manifest, which a failed write may have left half-written. On
 * failure the fresh one is removed and nothing else changes. mu held. */
ndb_status kv_vset_new_manifest(kv_vset *vs, ndb_errmsg *msg);
/* The deepest level holding a file, or -1. */
int kv_vset_max_level(const kv_vset *vs);

#endif /* KV_VERSION_H */
