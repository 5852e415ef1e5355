/*
 * ndb_kv.h — NexaDB's LSM key-value engine, the public edge.
 *
 * Keys are byte strings ordered by memcmp; values are opaque bytes. Writes go
 * to a write-ahead log (WAL), then to an in-memory skiplist (memtable); full
 * memtables are written to sorted tables (SSTables) by a background thread
 * and merged by leveled compaction. See engine/kv/README.md and FORMAT.md.
 *
 * Thread safety: an ndb_kv handle may be used by any number of threads at
 * once (put/get/delete/write/iterate/snapshot/flush/compact/stats). A batch
 * and an iterator belong to one thread at a time. ndb_kv_close() must not race
 * with other calls on the same handle; free iterators and release snapshots
 * before closing.
 *
 * Errors: every call returns an ndb_status. After a failed write or fsync of
 * the WAL, a table or the manifest the engine is poisoned: every later write
 * (and flush/compact) returns NDB_EPOISONED; reads keep working.
 * ndb_kv_health_get() says why and whether ndb_kv_resume() can lift it (a full
 * disk or descriptor exhaustion met by a write: yes, once the cause is
 * cleared; a failed fsync or any other I/O error: no, close and reopen).
 * ndb_kv_last_error() gives a human-readable detail for the most recent error
 * the engine recorded.
 *
 * Ownership: keys and values passed in are copied before the call returns
 * (the caller keeps its buffers). Values returned by ndb_kv_get are malloc'd:
 * caller frees with free(). Keys and values returned by an iterator are
 * borrowed until the iterator's next move (seek/next/prev) or free.
 */
#ifndef NDB_KV_H
#define NDB_KV_H

#include <stddef.h>
#include <stdint.h>

#include "ndb_status.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct ndb_kv ndb_kv;
typedef struct ndb_kv_batch ndb_kv_batch;
typedef struct ndb_kv_snapshot ndb_kv_snapshot;
typedef struct ndb_kv_iter ndb_kv_iter;

/* Largest key and value the engine accepts (NDB_ETOOBIG beyond). */
#define NDB_KV_MAX_KEY (64u * 1024u)
#define NDB_KV_MAX_VALUE (64u * 1024u * 1024u)
/* Number of LSM levels (L0 .. L6). */
#define NDB_KV_LEVELS 7

/* What an acknowledged write risks. */
typedef enum ndb_kv_durability {
    NDB_KV_SYNC = 0,     /* default: acked after its WAL record is fsync'd (group commit) */
    NDB_KV_INTERVAL = 1, /* WAL fsync'd every interval_ms: a crash loses up to that window */
    NDB_KV_NONE = 2,     /* WAL written per write, fsync'd only when a segment rolls or at close: an OS crash loses the page cache */
} ndb_kv_durability;

typedef enum ndb_kv_compression {
    NDB_KV_COMPRESS_NONE = 0,
    NDB_KV_COMPRESS_LZ4 = 1,
    NDB_KV_COMPRESS_ZSTD = 2,
} ndb_kv_compression;

typedef struct ndb_kv_options {
    ndb_kv_durability durability; /* default NDB_KV_SYNC */
    uint32_t interval_ms;         /* for NDB_KV_INTERVAL; default 100 */
    size_t memtable_bytes;        /* memtable size that triggers a flush; default 64 MiB */
    size_t block_cache_bytes;     /* sharded LRU block cache; default 64 MiB; 0 disables */
    size_t block_bytes;           /* target uncompressed SSTable block size; default 4096 */
    size_t sst_target_bytes;      /* target SSTable size; default 64 MiB */
    uint32_t max_open_tables;     /* table cache capacity (open SSTables, 16 shards); default 1000 */
    ndb_kv_compression compression; /* default NDB_KV_COMPRESS_NONE */
    uint32_t bloom_bits_per_key;  /* default 10; 0 disables bloom filters */
    /* L0's load: the most L0 tables one key may be in, or a quarter of L0's
     * tables if more (flushes into partitions write several disjoint ones). */
    uint32_t l0_compaction_trigger; /* L0 load that starts a compaction; default 4 */
    uint32_t l0_slowdown_trigger;   /* L0 load that delays writes by 1 ms; default 12 */
    uint32_t l0_stop_trigger;       /* L0 load that stops writes until compaction; default 20 */
    uint64_t l1_max_bytes;        /* L1 size budget; each deeper level x10; default 256 MiB */
    size_t wal_segment_bytes;     /* WAL segment roll size (within one memtable); default 64 MiB */
    int create_if_missing;        /* default 1 */
    int error_if_exists;          /* default 0 */
    int paranoid_checks;          /* default 1: a corrupt WAL tail mid-log fails open */
    /* File I/O interface (engine/kv/env.h); NULL means the POSIX one. Borrowed:
     * must outlive the handle. Tests pass a fault-injecting env here. */
    struct kv_env *env;
} ndb_kv_options;

/* Fills *opt with the defaults above. */
void ndb_kv_options_init(ndb_kv_options *opt);

/* What recovery found when ndb_kv_open replayed the WAL. */
typedef struct ndb_kv_recovery_info {
    uint64_t wal_records;       /* records replayed */
    uint64_t wal_bytes_skipped; /* bytes of a torn or corrupt tail that were ignored (counting
                                   the zeros reserved after it, up to 1 MiB: FORMAT.md) */
    uint32_t wal_segments;      /* segments read */
    int tail_corrupt;           /* 1 if the last segment ended in a bad record */
} ndb_kv_recovery_info;

/*
 * Opens (or creates) the database in directory dir. On success *out is a
 * handle the caller closes with ndb_kv_close(). Takes an exclusive lock on
 * the directory (NDB_EBUSY if another handle holds it). msg may be NULL.
 * When writing out what the WAL replay found fails for want of space or
 * descriptors (NDB_ENOSPC, NDB_EMFILE), the open still succeeds, poisoned:
 * reads see every replayed write, and ndb_kv_resume() finishes the open.
 */
ndb_status ndb_kv_open(const char *dir, const ndb_kv_options *opt, ndb_kv **out, ndb_errmsg *msg);

/* As ndb_kv_open; if info is non-NULL it receives what WAL recovery found. */
ndb_status ndb_kv_open_ex(const char *dir, const ndb_kv_options *opt, ndb_kv **out,
                          ndb_kv_recovery_info *info, ndb_errmsg *msg);

/*
 * Stops background work, fsyncs the WAL (in every durability mode) and frees
 * the handle. Does not flush the memtable: the WAL is replayed on the next
 * open. Returns the first error met (the handle is freed regardless).
 * NULL is a no-op.
 */
ndb_status ndb_kv_close(ndb_kv *kv);

/* The file interface the engine does all its I/O through (engine/kv/env.h:
 * the POSIX one, or the one ndb_kv_options.env named). Other layers write
 * their derived files through it too, so tests can inject faults there.
 * Borrowed for the life of the handle. */
struct kv_env *ndb_kv_env(ndb_kv *kv);

/* Detail of the last error the engine recorded, whichever thread met it
 * (a write's, a read's or a background flush's or compaction's). Never NULL.
 * Returns a copy made for the calling thread: borrowed until this thread's
 * next call of ndb_kv_last_error (on any handle). */
const char *ndb_kv_last_error(ndb_kv *kv);

/* Whether the engine accepts writes, and if not, why. */
typedef struct ndb_kv_health {
    int poisoned;      /* 1: writes, flushes and compactions are refused */
    ndb_status cause;  /* the error that poisoned it (NDB_OK when not poisoned) */
    int recoverable;   /* 1: ndb_kv_resume() lifts it once the cause is cleared */
    char reason[256];  /* what failed, on which file, and the remedy ("" when not poisoned) */
} ndb_kv_health;

void ndb_kv_health_get(ndb_kv *kv, ndb_kv_health *out);

/*
 * Lifts a recoverable poison (NDB_ENOSPC or NDB_EMFILE met by a write, never
 * by a WAL fsync): waits for a flush or compaction still running, makes
 * everything appended durable, cuts the WAL segment back to its last whole
 * record and moves to a new segment (or, after an open that could not write,
 * finishes that open), writes a fresh manifest, deletes the files a failed
 * flush or compaction left, then accepts writes again. Every step that needs
 * space or descriptors is retried here, so NDB_OK means they are back.
 * NDB_OK when not poisoned; NDB_EPOISONED when the poison is not recoverable
 * (msg says why); otherwise the status of the step that failed again (the
 * engine stays poisoned, with that cause). msg may be NULL.
 */
ndb_status ndb_kv_resume(ndb_kv *kv, ndb_errmsg *msg);

/* Single-key writes. An empty key (klen 0) is allowed. */
ndb_status ndb_kv_put(ndb_kv *kv, const void *key, size_t klen, const void *val, size_t vlen);
ndb_status ndb_kv_delete(ndb_kv *kv, const void *key, size_t klen);

/*
 * Point read at snap (NULL: latest). On NDB_OK *val is malloc'd (never NULL,
 * even for an empty value) and *vlen is its length: caller frees with free().
 * NDB_ENOTFOUND when absent or deleted.
 */
ndb_status ndb_kv_get(ndb_kv *kv, const ndb_kv_snapshot *snap, const void *key, size_t klen,
                      void **val, size_t *vlen);

/*
 * As ndb_kv_get, but never waits for the engine's lock: NDB_EBUSY (and
 * nothing else done) while another thread holds it, e.g. to record a
 * finished flush or compaction. For threads that must not block.
 */
ndb_status ndb_kv_try_get(ndb_kv *kv, const ndb_kv_snapshot *snap, const void *key, size_t klen,
                          void **val, size_t *vlen);

/* ---- Atomic write batches: all operations apply, or none, across a crash. */

/* Caller frees with ndb_kv_batch_free(). */
ndb_status ndb_kv_batch_new(ndb_kv_batch **out);
ndb_status ndb_kv_batch_put(ndb_kv_batch *b, const void *key, size_t klen, const void *val,
                            size_t vlen);
ndb_status ndb_kv_batch_delete(ndb_kv_batch *b, const void *key, size_t klen);
void ndb_kv_batch_clear(ndb_kv_batch *b);
uint32_t ndb_kv_batch_count(const ndb_kv_batch *b);
void ndb_kv_batch_free(ndb_kv_batch *b);
/* Applies the batch atomically, in order (later ops on the same key win).
 * The batch is not consumed; the caller may clear and reuse it. */
ndb_status ndb_kv_write(ndb_kv *kv, const ndb_kv_batch *b);
/* ndb_kv_write in its two steps, so a caller can release its own locks in
 * between: append puts the batch in the WAL and the memtable and returns a
 * ticket for it (0 for an empty batch); wait returns once the batch is
 * durable (an fsync that others' waits share, NDB_KV_SYNC) and visible to
 * readers, or with the fsync's error. Until then readers do not see it
 * (NDB_KV_SYNC); later appends are ordered after it, and the next fsync
 * (anyone's wait, a WAL roll, close) covers it whether waited for or not. */
ndb_status ndb_kv_write_append(ndb_kv *kv, const ndb_kv_batch *b, uint64_t *ticket);
ndb_status ndb_kv_write_wait(ndb_kv *kv, uint64_t ticket);

/* ---- Bulk ingestion: sorted keys written straight into tables and installed
 * at the deepest level free for them in one manifest edit (no WAL, memtable
 * or compaction), for a key range in which nothing else holds a key: a new
 * index's prefix.
 * Entries carry the sequence current at begin (once installed, reads at it or
 * later see them). Durable once finish returns
 * NDB_OK; a crash before leaves nothing (the next open removes the files). */
typedef struct ndb_kv_ingest ndb_kv_ingest;
ndb_status ndb_kv_ingest_begin(ndb_kv *kv, ndb_kv_ingest **out);
/* Keys strictly increasing (NDB_EINVAL otherwise); the first failure sticks. */
ndb_status ndb_kv_ingest_add(ndb_kv_ingest *g, const void *key, size_t klen, const void *val, size_t vlen);
/* Syncs the tables and installs them, unless a memtable or table holds a key
 * in their range (NDB_EBUSY: nothing installed, the tables removed). Nothing
 * added: nothing done. */
ndb_status ndb_kv_ingest_finish(ndb_kv_ingest *g, ndb_errmsg *msg);
/* Frees g; tables of an unfinished ingestion are removed. */
void ndb_kv_ingest_free(ndb_kv_ingest *g);

/* ---- Snapshots: a read view at the sequence number current at acquire. */

/* Caller releases with ndb_kv_snapshot_release() before ndb_kv_close(). */
ndb_status ndb_kv_snapshot_acquire(ndb_kv *kv, ndb_kv_snapshot **out);
void ndb_kv_snapshot_release(ndb_kv *kv, ndb_kv_snapshot *snap);
uint64_t ndb_kv_snapshot_seq(const ndb_kv_snapshot *snap);

/* ---- Iterators over [lower, upper): lower inclusive, upper exclusive;
 * a NULL bound is unbounded. Bounds are copied. The view is the snapshot
 * (NULL: the state at creation; later writes are not seen). Like a
 * snapshot, a live iterator keeps compaction from dropping the versions it
 * can see; a seek moves it onto tables compacted since its last seek. */

/* Caller frees with ndb_kv_iter_free() before ndb_kv_close(). */
ndb_status ndb_kv_iter_new(ndb_kv *kv, const ndb_kv_snapshot *snap, const void *lower,
                           size_t lower_len, const void *upper, size_t upper_len,
                           ndb_kv_iter **out);
void ndb_kv_iter_seek_first(ndb_kv_iter *it);
void ndb_kv_iter_seek_last(ndb_kv_iter *it);
/* Positions at the first key >= key (within bounds). */
void ndb_kv_iter_seek(ndb_kv_iter *it, const void *key, size_t klen);
/* Positions at the last key <= key (within bounds). */
void ndb_kv_iter_seek_for_prev(ndb_kv_iter *it, const void *key, size_t klen);
void ndb_kv_iter_next(ndb_kv_iter *it);
void ndb_kv_iter_prev(ndb_kv_iter *it);
int ndb_kv_iter_valid(const ndb_kv_iter *it);
/* Borrowed until the next move or free. Only when valid. */
const void *ndb_kv_iter_key(const ndb_kv_iter *it, size_t *klen);
const void *ndb_kv_iter_value(const ndb_kv_iter *it, size_t *vlen);
/* NDB_OK, or the error (e.g. NDB_ECORRUPT) that made the iterator invalid. */
ndb_status ndb_kv_iter_status(const ndb_kv_iter *it);
void ndb_kv_iter_free(ndb_kv_iter *it);

/* ---- Maintenance. */

/* Writes the current memtable to an SSTable and waits for it (and for any
 * queued flush) to be on disk. */
ndb_status ndb_kv_flush(ndb_kv *kv);
/* Flushes, then compacts every level's files that overlap [begin, end]
 * (NULL: unbounded) down to the deepest level holding data, waiting. */
ndb_status ndb_kv_compact_range(ndb_kv *kv, const void *begin, size_t blen, const void *end,
                                size_t elen);

/* How the caller's keys group: returns the length (0..len) of key's
 * partition prefix. Tables written by flushes and compactions never hold keys
 * of two partitions, so a partition written in key order (row numbers,
 * time-ordered ids) reaches the deeper levels by moving whole tables instead
 * of being merged into its neighbours' tables again at every level. Must be
 * a pure function of the key, fast and thread-safe; NULL (the default) makes
 * the whole key space one partition. May be set at any time (engine/doc sets
 * it when it opens the store); tables already written stay as they are. */
typedef size_t (*ndb_kv_partition_fn)(const void *key, size_t len);
void ndb_kv_set_partition(ndb_kv *kv, ndb_kv_partition_fn fn);

typedef struct ndb_kv_level_stats {
    uint32_t files;
    uint64_t bytes;
} ndb_kv_level_stats;

typedef struct ndb_kv_stats {
    ndb_kv_level_stats levels[NDB_KV_LEVELS];
    uint64_t memtable_bytes;    /* active memtable arena bytes */
    uint64_t imm_memtable_bytes; /* immutable memtable awaiting flush (0 if none) */
    uint64_t last_seq;          /* last sequence number assigned */
    uint64_t flushes;           /* memtables written to tables */
    uint64_t compactions;       /* compaction steps completed */
    uint64_t wal_syncs;         /* WAL fsyncs (one covers every write appended before it started) */
    uint64_t wal_bytes;         /* bytes appended to the WAL */
    uint64_t user_bytes_written; /* key+value bytes accepted from callers */
    uint64_t sst_bytes_written; /* bytes written to SSTables by flush and compaction */
    double write_amplification; /* (wal_bytes + sst_bytes_written) / user_bytes_written */
    uint64_t stall_count;       /* times a writer was delayed (1 ms) or waited for flush/compaction */
    uint64_t stall_micros;      /* total time writers spent stalled */
    uint64_t block_cache_hits;   /* block cache lookups that found the block (0 without a cache) */
    uint64_t block_cache_misses; /* ... that did not: the block was read and checked. A mapped
                                  * uncompressed block is looked up once; later reads use it in
                                  * place (see README, table.c) and count neither */
    uint64_t bloom_useful;      /* table reads avoided by a bloom filter */
    uint64_t open_tables;       /* SSTables open in the table cache */
    uint64_t block_cache_bytes;    /* blocks the block cache holds now */
    uint64_t block_cache_capacity; /* its bound (ndb_kv_options.block_cache_bytes) */
    int poisoned;               /* 1 after a failed fsync/write */
} ndb_kv_stats;

ndb_status ndb_kv_stats_get(ndb_kv *kv, ndb_kv_stats *out);

/* ---- Online backup and restore (README.md "Backup and restore"; FORMAT.md
 * "Backups"). A backup is a consistent copy of the database as of one
 * sequence (its log point): the tables of the version current when it
 * started, hard-linked where the file system allows and copied where not,
 * the WAL up to that sequence, a manifest naming exactly those, and last a
 * listing (BACKUP) of every file with its size and CRC-32C. Writes go on
 * meanwhile; the tables the backup still needs are kept from deletion until
 * it ends. A backup without its listing is incomplete and never restored. */

typedef struct ndb_kv_backup_progress {
    uint64_t files_done, files_total;
    uint64_t bytes_done, bytes_total;
    uint64_t files_reused, bytes_reused; /* of those done: taken from the previous backup */
    uint64_t sequence;                   /* the backup's log point */
} ndb_kv_backup_progress;

/* Told of progress after every MiB and every file; a status other than
 * NDB_OK stops the backup (or restore) with that status. */
typedef ndb_status (*ndb_kv_backup_progress_fn)(void *arg, const ndb_kv_backup_progress *p);
/* Takes the next n bytes of an archive, in order (n <= 1 MiB + 1 KiB). */
typedef ndb_status (*ndb_kv_backup_write_fn)(void *arg, const void *buf, size_t n);

typedef struct ndb_kv_backup_options {
    /* Incremental: a previous complete backup of the same database. A
     * directory backup links the tables that backup holds (same name and
     * size) from it instead of reading them; an archive leaves them out and
     * lists them as "base" (restore then needs that backup too). Either a
     * directory (previous_dir) or the BACKUP listing itself (previous_listing,
     * previous_listing_len bytes: what a client kept of an archive). NULL: full. */
    const char *previous_dir;
    const void *previous_listing;
    size_t previous_listing_len;
    ndb_kv_backup_progress_fn progress; /* may be NULL */
    void *progress_arg;
    /* Non-NULL: receives a snapshot at the backup's sequence, a read view of
     * exactly what it holds (the caller releases it with
     * ndb_kv_snapshot_release); set only on success. */
    ndb_kv_snapshot **snapshot;
} ndb_kv_backup_options;

typedef struct ndb_kv_backup_info {
    uint64_t sequence;                   /* the log point */
    uint64_t files, bytes;               /* the kv files the backup describes */
    uint64_t files_reused, bytes_reused; /* linked from, or left to, the previous backup */
    int64_t created;                     /* Unix seconds */
    char identity[33];                   /* the database's identity (kv/IDENTITY) */
} ndb_kv_backup_info;

/* Writes a backup into directory dir, which must not exist or be empty (its
 * parent must exist). opt and info may be NULL. On failure (a progress
 * callback's status included) dir and what was written into it are removed;
 * a process killed meanwhile leaves dir without its BACKUP listing, which
 * verify and restore refuse. NDB_EPOISONED while the engine refuses writes. */
ndb_status ndb_kv_backup(ndb_kv *kv, const char *dir, const ndb_kv_backup_options *opt, ndb_kv_backup_info *info,
                         ndb_errmsg *msg);

/* Streams a backup as a tar archive through write: the same files, the
 * listing last, then the end-of-archive blocks. An archive cut short has no
 * listing and is refused by verify and restore. */
ndb_status ndb_kv_backup_archive(ndb_kv *kv, ndb_kv_backup_write_fn write, void *write_arg,
                                 const ndb_kv_backup_options *opt, ndb_kv_backup_info *info, ndb_errmsg *msg);

/* Reads a backup (a directory or an archive file) and checks its listing's
 * checksum and every file's size and CRC-32C; with bases (nbases backups,
 * directories or archives), also the files an incremental archive left to
 * them. NDB_ECORRUPT with msg naming the first file that fails; info may be
 * NULL. Writes nothing. */
ndb_status ndb_kv_backup_verify(const char *path, const char *const *bases, size_t nbases, ndb_kv_backup_info *info,
                                ndb_errmsg *msg);

/* Restores a backup into dir, which must not exist or be empty, for
 * ndb_kv_open: verifies everything first (as ndb_kv_backup_verify), then
 * copies the files into "<dir>.restoring", checking every CRC again, syncs
 * them and renames that directory to dir. A damaged or incomplete backup is
 * refused before anything is written. progress (may be NULL) is told of the
 * copy. The restored database gets a new identity when first backed up. */
ndb_status ndb_kv_restore(const char *path, const char *const *bases, size_t nbases, const char *dir,
                          ndb_kv_backup_progress_fn progress, void *progress_arg, ndb_kv_backup_info *info,
                          ndb_errmsg *msg);

/* ndb_kv_restore of a directory backup that is trusted (this process wrote
 * it, or checked it as it arrived) on dir's file system, in time that does not
 * grow with the data: its tables, which nothing writes again, are hard-linked
 * after a check of their sizes, not read; the other files (the log tail, the
 * manifest) are copied and checked as ndb_kv_restore does. Where a link is
 * refused, the table is copied and checked instead. */
ndb_status ndb_kv_restore_linked(const char *path, const char *dir, ndb_kv_backup_info *info, ndb_errmsg *msg);

#ifdef __cplusplus
}
#endif

#endif /* NDB_KV_H */
