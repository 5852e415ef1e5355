/*
 * db.h — the engine handle's internals, shared by db.c and db_iter.c
 * (internal). See db.c for the locking rules.
 */
#ifndef KV_DB_H
#define KV_DB_H

#include <pthread.h>
#include <stdint.h>

#include "cache.h"
#include "env.h"
#include "iter.h"
#include "memtable.h"
#include "ndb_kv.h"
#include "table.h"
#include "version.h"
#include "wal.h"

/* One queued write (LevelDB's writer queue): the head is the group leader. */
typedef struct writer {
    const char *rep; /* batch encoding, or NULL for a sync-only / flush request */
    size_t len;
    uint64_t user_bytes;
    int sync;
    int force_flush;
    int done;
    ndb_status st;
    pthread_cond_t cv;
    struct writer *next;
} writer;

struct ndb_kv_snapshot {
    uint64_t seq;
    struct ndb_kv_snapshot *prev, *next;
};

struct ndb_kv {
    kv_env *env;
    char *dir;
    ndb_kv_options opt;
    kv_table_opts topts;
    kv_file *lockf;
    kv_cache *cache;
    kv_vset *vs; /* mu */

    pthread_mutex_t mu;
    pthread_cond_t bg_cv;       /* background state changed (flush/compaction/poison) */
    pthread_cond_t interval_cv; /* wakes the interval-sync thread */

    kv_mem *mem, *imm;     /* mu */
    size_t arena_block;
    size_t mem_filter_bytes; /* each memtable's bloom filter (kv_mem_new) */
    uint64_t imm_next_log; /* log number to record once imm is on disk */
    kv_wal_writer *wal;    /* written by the leader only */
    uint64_t wal_number;
    uint64_t wal_unsynced; /* atomic: bytes appended since the last fsync */
    uint64_t last_seq;     /* atomic: last sequence visible to readers */

    writer *wq_head, *wq_tail; /* mu */
    char *group_buf;           /* leader's scratch */
    size_t group_cap;

    ndb_kv_snapshot snaps; /* sentinel of the acquire-ordered list; mu */

    pthread_t flush_thr, compact_thr, interval_thr;
    int threads;
    int shutting_down; /* atomic reads outside mu */
    int compacting;    /* mu: a compaction (background or manual) runs */
    int poisoned;      /* mu */
    ndb_status bg_error;
    ndb_status compact_error;
    ndb_errmsg err; /* mu */

    /* stats */
    uint64_t st_flushes, st_compactions, st_stall_count, st_stall_micros; /* mu */
    uint64_t st_wal_syncs, st_wal_bytes, st_user_bytes, st_sst_bytes;     /* atomic */
};

#endif /* KV_DB_H */
