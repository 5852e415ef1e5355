/*
 * coll.h — one vector collection (internal): manifest, sealed segments, the
 * active segment, the id map and the log. store.c maps the public API onto
 * these functions.
 *
 * Thread safety
 *   qmu  (mutex)   the group-commit queue: concurrent write calls queue up;
 *                  the head (leader) commits the whole queue with one log
 *                  write and one fsync and wakes the rest.
 *   wmu  (mutex)   serialises commit groups, seal, merge and drop. Held while
 *                  the log is written and fsync'd, so searches never wait on disk.
 *   rw   (rwlock)  searches and gets hold it shared; a writer takes it
 *                  exclusively only to apply an already-durable change to
 *                  memory (append rows, set dead bits, swap segments).
 *   Lock order: store lock, then wmu, then rw; qmu is never held with another.
 * Invariants
 *   - Every live row is in exactly one of segs[] or the active rows, and the
 *     id map points at it; dead rows have their bit set and no map entry.
 *   - The active segment's number is next_no; every sealed number is lower.
 *   - Log records with lsn <= ckpt_lsn are reflected in the manifest's
 *     segments; the others are reflected in memory after replay.
 */
#ifndef NDB_VEC_COLL_H
#define NDB_VEC_COLL_H

#include <pthread.h>
#include <stdint.h>

#include "idmap.h"
#include "ndb_vec.h"
#include "pool.h"
#include "seg.h"

typedef struct coll_env {
    pool *pool;
    uint64_t segment_bytes;
    int sync;
} coll_env;

typedef struct coll {
    char *name;
    char *dir;
    uint32_t dims;
    uint32_t metric;
    size_t stride;   /* bytes per row */
    size_t dpad;     /* floats per row */
    uint64_t seal_rows;
    const coll_env *env;
    int refs;        /* atomic; the store's list holds one */
    int dropped;     /* set under wmu */
    int poisoned;    /* set under wmu: a failed fsync */

    pthread_mutex_t wmu;
    pthread_rwlock_t rw;
    pthread_mutex_t qmu;     /* guards the group-commit queue (coll.c) */
    struct wreq *qhead, *qtail;

    seg **segs;
    size_t nsegs;
    uint32_t next_no;

    float *arows;    /* active rows, 64-byte aligned, acap rows */
    uint64_t acap, an;
    char **aids;     /* owned copies */
    uint32_t *aidlen;
    uint64_t *adead; /* acap bits */
    uint64_t andead;

    idmap map;

    int wal_fd;
    char *wal_path;
    uint64_t lsn;
    uint64_t ckpt_lsn;
    uint64_t wal_bytes;
} coll;

/* Creates the collection's directory, manifest and log under root. */
ndb_status coll_create(const char *root, const char *name, uint32_t dims, uint32_t metric, const coll_env *env,
                       coll **out, ndb_errmsg *msg);
/* Opens root/name: validates the manifest and segments, replays the log. */
ndb_status coll_open(const char *root, const char *name, const coll_env *env, coll **out, ndb_errmsg *msg);
/* Frees memory and closes files (no I/O beyond that). */
void coll_free(coll *c);

ndb_status coll_write(coll *c, const ndb_vec_item *items, size_t n, uint32_t dims, int upsert, ndb_errmsg *msg);
ndb_status coll_delete(coll *c, const char *id, ndb_errmsg *msg);
ndb_status coll_get(coll *c, const char *id, float *vec, uint32_t cap, ndb_errmsg *msg);
ndb_status coll_merge(coll *c, ndb_errmsg *msg);
void coll_info(coll *c, ndb_vec_info *out);
ndb_status coll_search(coll *c, const float *queries, size_t nq, uint32_t dims, const ndb_vec_query *q,
                       ndb_vec_result **out, ndb_errmsg *msg);

#endif /* NDB_VEC_COLL_H */
