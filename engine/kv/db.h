/*
 * db.h — the engine handle's internals, shared by db.c, write.c and
 * db_iter.c (internal). Calls go one way: db_iter.c calls db.c's functions
 * below, db.c and db_iter.c call write.c's; write.c calls nothing in them.
 *
 * Thread safety: each field says what guards it. Three locks, always taken
 * in this order: wmu (the write path's append order), mu (the engine:
 * memtables, versions, snapshots, background state), smu (WAL sync state).
 * "atomic" fields are read without a lock with __atomic loads. Readers take
 * mu only to reference mem, imm and the current version.
 *
 * Invariants:
 * - every sequence <= appended_seq is in the WAL and in mem or imm (or a
 *   table); sequences are appended in order, one WAL record per batch;
 * - synced_seq <= appended_seq, last_seq <= appended_seq; in sync mode
 *   last_seq == synced_seq (a batch is visible only once fsync'd), otherwise
 *   last_seq == appended_seq;
 * - at most one fsync of the WAL runs at a time (syncing), and it covers
 *   every sequence appended before it started;
 * - writers sleeping on sync_done wait for sequences above synced_seq; while
 *   any sleeps, an fsync is running (or its runner gathers writers before
 *   starting it), or the last one's end has woken the waiter that claimed
 *   the next one (sync_next_claimed) to run it;
 * - once sync_error is set no fsync starts and no write is acknowledged, and
 *   the poison stays until the handle is closed (fsyncgate: after a failed
 *   fsync the page cache no longer says what is on disk);
 * - while deferred_open, wal is NULL, mem holds every replayed write, the
 *   manifest and the WAL segments are those the open found, and poisoned is set.
 */
#ifndef KV_DB_H
#define KV_DB_H

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <time.h>

#include "cache.h"
#include "env.h"
#include "iter.h"
#include "memtable.h"
#include "ndb_kv.h"
#include "table.h"
#include "version.h"
#include "wal.h"

struct ndb_kv_snapshot {
    uint64_t seq;
    struct ndb_kv_snapshot *prev, *next;
};

/* A version a backup in progress holds (backup.c): its tables stay on disk
 * until the backup lets go, whatever compactions and resumes delete. */
typedef struct kv_pin {
    kv_version *v; /* referenced */
    struct kv_pin *prev, *next;
} kv_pin;

struct ndb_kv {
    kv_env *env;
    char *dir;
    ndb_kv_options opt;
    kv_table_opts topts;
    kv_file *lockf;
    kv_cache *cache;
    kv_vset *vs; /* mu */

    pthread_mutex_t mu;
    pthread_cond_t bg_cv; /* background state changed (flush/compaction/poison) */

    kv_mem *mem;             /* wmu and mu to change, either to read */
    kv_mem *imm;             /* mu */
    size_t arena_block;
    size_t mem_filter_bytes; /* each memtable's bloom filter (kv_mem_new) */
    uint64_t imm_next_log;   /* mu: log number to record once imm is on disk */
    ndb_kv_snapshot snaps;   /* sentinel of the list sorted by sequence; mu */
    kv_pin pins;             /* sentinel of the versions backups hold; mu */
    uint64_t version_gen;    /* atomic, written under mu: bumped at every version installed */
    kv_fmeta *seek_victim;   /* mu: a table reads paid for too often, to compact (referenced) */
    int seek_victim_level;   /* mu */

    /* The write path (write.c). */
    pthread_mutex_t wmu;   /* held to append, and to switch mem or the WAL segment */
    kv_wal_writer *wal;    /* appended to under wmu; wmu and smu to replace */
    uint64_t wal_number;   /* wmu */
    uint64_t appended_seq; /* atomic; written under wmu */
    uint64_t last_seq;     /* atomic: last sequence visible to readers */
    pthread_mutex_t smu;
    pthread_cond_t interval_cv;       /* smu: wakes the interval-sync thread */
    uint64_t synced_seq;              /* atomic, written under smu: every sequence <= it is fsync'd */
    int syncing;                      /* smu: an fsync of the WAL is running (or gathering, see write.c) */
    uint64_t sync_count;              /* smu: fsyncs started; the running one is number sync_count */
    uint64_t sync_target;             /* smu: what the running fsync covers (UINT64_MAX while gathering) */
    int sync_next_claimed;            /* smu: a waiter sleeps on sync_handoff to run the next fsync */
    uint32_t sync_handoff;            /* futex word, bumped under smu: wakes the claimed next runner */
    uint32_t sync_done[2];            /* futex words, bumped under smu: fsync n's end bumps sync_done[n & 1] */
    uint32_t sync_joined;             /* smu: writers sleeping until the running (or gathering) fsync ends */
    uint32_t sync_joined_next;        /* smu: writers sleeping until the one after it ends */
    uint32_t sync_gather;             /* futex word, bumped under smu: a writer took over the gathered fsync */
    uint32_t sync_gather_goal;        /* smu: writers the gathering runner waits for (0: not gathering) */
    uint32_t sync_released;           /* smu: writers the last fsync released (sleepers and its runner) */
    uint64_t sync_last_micros;        /* smu: the last fsync's duration */
    ndb_status sync_error;            /* atomic, written under smu: a failed fsync's status */
    uint64_t sync_failed_upto;        /* smu: what the failed fsync covered */
    pthread_t interval_thr;
    int interval_running;

    pthread_t flush_thr, compact_thr;
    int threads;
    int shutting_down; /* atomic reads outside mu */
    int compacting;    /* mu: a compaction (background or manual) runs */
    int compact_out;   /* mu: the level the running compaction writes to, or -1 */
    int flushing;      /* mu: the flush thread is writing imm (mu released meanwhile) */
    int deferred_open; /* wmu and mu: the open could not write the replayed WAL out (see invariants) */
    ndb_kv_partition_fn partition; /* atomic: ndb_kv_set_partition */
    int poisoned;      /* written under mu; atomic reads outside it */
    ndb_status bg_error; /* mu: the poison's cause */
    ndb_errmsg poison_msg; /* mu: what failed, while poisoned */
    ndb_status compact_error;
    ndb_errmsg err; /* mu */

    /* stats */
    uint64_t st_flushes, st_compactions, st_stall_count, st_stall_micros; /* mu */
    uint64_t st_wal_syncs, st_wal_bytes, st_user_bytes, st_sst_bytes;     /* atomic */
};

static inline uint64_t kv_now_micros(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static inline void kv_file_path(const ndb_kv *kv, char *buf, size_t n, uint64_t num, const char *ext)
{
    snprintf(buf, n, "%s/%06llu.%s", kv->dir, (unsigned long long)num, ext);
}

/* A kv_batch_fn that inserts into the memtable arg (the single writer). */
static inline ndb_status kv_mem_insert_fn(void *arg, uint64_t seq, int type, const char *key, size_t klen,
                                          const char *val, size_t vlen)
{
    return kv_mem_add(arg, seq, type, key, klen, val, vlen);
}

/* ---- db.c, for db_iter.c */

/* Links s into the snapshot list at seq / unlinks it. mu held. */
void kv_snapshot_link(ndb_kv *kv, ndb_kv_snapshot *s, uint64_t seq);
void kv_snapshot_unlink(ndb_kv_snapshot *s);
/* Asks for a compaction of f (at level), whose read allowance ran out
 * (kv_fmeta_charge), when no level is over its budget. Takes mu. */
void kv_seek_victim(ndb_kv *kv, kv_fmeta *f, int level);

/* ---- write.c */

/* Records the first write/background error and stops every later write,
 * flush and compaction (NDB_EPOISONED). A later error replaces it only when
 * it makes the poison permanent (a failed WAL fsync after a full disk).
 * mu held. */
void kv_poison(ndb_kv *kv, ndb_status st, const char *what);
/* kv_poison for an ndb_kv_resume that failed with another cause than the
 * one recorded: st and what replace it. mu held. */
void kv_poison_again(ndb_kv *kv, ndb_status st, const char *what);
/* 1 when ndb_kv_resume can lift the poison: its cause is NDB_ENOSPC or
 * NDB_EMFILE and no WAL fsync failed. mu held. */
int kv_poison_recoverable(ndb_kv *kv);
/* For ndb_kv_resume, wmu and mu held, no flush or compaction running: fsyncs
 * what was appended, cuts the current WAL segment back to its last whole
 * record (a write cut short may have left part of one) and opens a fresh
 * segment, so only the last segment can ever end in a torn record. A failed
 * fsync here is a failed WAL fsync (permanent). */
ndb_status kv_write_reopen_wal(ndb_kv *kv, ndb_errmsg *msg);
/* Opens WAL segment *num (a new file number), its directory entry durable. mu held. */
ndb_status kv_segment_new(ndb_kv *kv, kv_wal_writer **w, uint64_t *num);
/* Makes what the WAL replay found durable without the replayed segments:
 * mem (NULL: nothing left) to L0 tables added to e, then a fresh WAL segment,
 * then e logged with that segment as the log number (the replayed ones become
 * obsolete: the caller deletes them). On success the new segment is the WAL;
 * on failure it is removed, and so are the tables, and nothing is installed.
 * mu held, released while the tables are written. (db.c) */
ndb_status kv_write_out_recovered(ndb_kv *kv, kv_mem *mem, kv_edit *e, ndb_errmsg *msg);
/* Deletes the files of the directory the current version and manifest do not
 * name, nor a backup's pinned version: leftovers of failed flushes,
 * compactions and manifest switches. mu held. (db.c) */
void kv_delete_obsolete(ndb_kv *kv);
/* Logs e to the manifest and installs the new version (mu held). */
ndb_status kv_install(ndb_kv *kv, kv_edit *e, ndb_errmsg *msg);
/* The numbers of the WAL segments in the directory from lo to hi, ascending:
 * caller frees *out with free(). */
ndb_status kv_segments_list(ndb_kv *kv, uint64_t lo, uint64_t hi, uint64_t **out, size_t *n);
/* Deletes WAL segments numbered below log_number. mu held. */
void kv_segments_delete_below(ndb_kv *kv, uint64_t log_number);
/* After recovery set last_seq and opened the WAL: starts the write path (and
 * the interval-sync thread in interval mode). */
ndb_status kv_write_start(ndb_kv *kv);
/* Stops the interval-sync thread (shutting_down already set). */
void kv_write_stop(ndb_kv *kv);
/* Makes the memtable immutable (if it holds anything) and rolls the WAL,
 * waiting for room, so a flush can write it. */
ndb_status kv_write_switch_memtable(ndb_kv *kv);

#endif /* KV_DB_H */
