/*
 * vec_int.h — internals shared by vector/'s modules (not a public API).
 *
 * Modules, in the order data flows: vdb.c (the handle: collections by name,
 * create/drop/list), write.c (insert/upsert/delete through one document-layer
 * transaction), coll.c (a collection's searchable rows in memory: segments,
 * rows since the newest segment, the id map; applying writes, building and
 * merging segments), recover.c (a collection at open: segment files checked
 * against kv, rebuilt where they disagree), search.c (scoring, filters, hits
 * read back at a snapshot), read.c (get, cursors), seg.c (the segment file
 * format), with idmap.c, scan.c, topk.c, pool.c and the kernels below them.
 */
#ifndef NDB_VEC_INT_H
#define NDB_VEC_INT_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "idmap.h"
#include "ndb_doc.h"
#include "ndb_kv.h"
#include "ndb_vec.h"
#include "pool.h"
#include "seg.h"

struct kv_env;

/* Largest vector component magnitude accepted: keeps every score finite
 * (16384 * (2e15)^2 < FLT_MAX). */
#define VEC_MAX_ABS 1e15f

/* What every collection of one handle shares. Read-only after open. */
typedef struct venv {
    ndb_kv *kv;
    struct kv_env *fs;   /* the kv's file interface: segment files go through it */
    ndb_doc_db *docs;    /* NDB_DOC_NS_VECTORS: the collections' documents */
    const char *dir;     /* segment files: <dir>/<collection id>/seg-<no>.vseg */
    pool *pool;
    uint64_t segment_bytes;
    void (*log)(void *ctx, const char *line);
    void *log_ctx;
} venv;

void vlog(const venv *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/*
 * One collection's searchable rows.
 *
 * Thread safety
 *   wmu (mutex)   serialises writes (held inside the document layer's
 *                 transaction, so in commit order), segment builds and merges.
 *   rw (rwlock)   searches and id lookups hold it shared; a writer takes it
 *                 exclusively only to apply an already-durable change to
 *                 memory or to swap in segments, so searches never wait on disk.
 *   Lock order: the document layer's collection lock, then wmu, then rw.
 * Invariants
 *   - Row numbers are never reused. Every row the kv holds (FORMAT.md, "Keys")
 *     is in exactly one of segs[] or the memory rows, and the id map points at
 *     it; replaced and deleted rows have their dead bit set and no map entry.
 *   - segs[] are sorted by lo with disjoint [lo, hi); memory rows have row
 *     numbers >= covered (the largest hi) and ascend.
 *   - The memory rows' location number (idmap_loc.seg) is next_no; every
 *     segment's number is lower.
 */
typedef struct vcoll {
    char name[NDB_DOC_MAX_COLL_NAME + 1];
    uint32_t dims;
    ndb_vec_metric metric;
    size_t stride;     /* bytes per row */
    size_t dpad;       /* floats per row */
    uint64_t seal_rows;
    const venv *env;
    uint64_t id;       /* the rows prefix id: names the incarnation (segment directory, file headers) */
    uint8_t rkey[10], ikey[10]; /* key prefixes: rows by number, row numbers by document id */
    size_t rklen, iklen;
    char *dir;         /* segment files */
    int refs;          /* atomic; the handle's table holds one */
    int dropped;       /* under wmu */

    pthread_mutex_t wmu;
    pthread_rwlock_t rw;

    seg **segs;
    size_t nsegs;
    uint32_t next_no;  /* the memory rows' number; the next segment file's */
    uint64_t covered;  /* row numbers below this are in segments */
    uint64_t next_row; /* under wmu */

    float *arows;      /* memory rows, 64-byte aligned, acap rows */
    uint64_t acap, an;
    char **aids;       /* owned copies */
    uint32_t *aidlen;
    uint64_t *arowno;
    uint64_t *adead;   /* acap bits */
    uint64_t andead;

    idmap map;
} vcoll;

/* ---- keys and values in kv (FORMAT.md) */
/* rkey be64(row) and ikey id. */
static inline size_t key_row(const vcoll *c, uint64_t row, uint8_t *out)
{
    memcpy(out, c->rkey, c->rklen);
    for (int i = 0; i < 8; i++)
        out[c->rklen + (size_t)i] = (uint8_t)(row >> (56 - 8 * i));
    return c->rklen + 8;
}
static inline uint64_t key_row_number(const uint8_t *k) /* the 8 bytes after the prefix */
{
    uint64_t r = 0;
    for (int i = 0; i < 8; i++)
        r = r << 8 | k[i];
    return r;
}
/* A row value: u16 id length, the id, dims float32 (the stored form). */
static inline size_t row_value_len(const vcoll *c, size_t idlen) { return 2 + idlen + (size_t)c->dims * 4; }
/* Checks a row value read from kv; *id and *vec point into it. */
ndb_status row_value_parse(const vcoll *c, const void *v, size_t vlen, const char **id, size_t *idlen,
                           const float **vec);

/* ---- coll.c */
/* A collection for catalog entry name with its metadata (not yet recovered). */
ndb_status coll_new(const venv *env, const char *name, ndb_errmsg *msg, vcoll **out);
void coll_free(vcoll *c);
void coll_ref(vcoll *c);
void coll_unref(vcoll *c);
/* Validates v (dims floats) and writes the stored form (normalised under
 * cosine) to dst. what names the vector in messages. */
ndb_status coll_check_vector(const vcoll *c, const float *v, uint32_t dims, const char *what, float *dst,
                             ndb_errmsg *msg);
/* Grows the memory rows and the id map for n more rows (wmu held), so that
 * applying cannot fail after a commit. */
ndb_status coll_reserve(vcoll *c, uint64_t n);
/* Applies a durable write (wmu held, coll_reserve done): id's row becomes row
 * with vector vec (the stored form), the collection taking aid and key (two
 * malloc'd NUL-terminated copies of id); or, with vec NULL, id has no row.
 * Cannot fail. Takes rw exclusively. */
void coll_apply(vcoll *c, const char *id, size_t idlen, uint64_t row, const float *vec, char *aid, char *key);
/* Row number of id's row, or UINT64_MAX (wmu or rw held). */
uint64_t coll_row_of(const vcoll *c, const char *id, size_t idlen);
/* The row at loc: its vector, id and row number (rw held). */
const float *coll_row_at(const vcoll *c, idmap_loc loc, const char **id, size_t *idlen, uint64_t *row);
/* After a write (wmu held): builds a segment from the memory rows when they
 * fill one, and merges the segments once dead rows are at least half of them.
 * Failures are logged: the rows stay where they are and kv holds them anyway. */
void coll_maybe_seal(vcoll *c);
/* Builds a segment from the memory rows, then rewrites every segment
 * without dead rows (wmu held). */
ndb_status coll_merge(vcoll *c, ndb_errmsg *msg);
/* Writes rows[0..n) as segment number no covering [lo, hi) and opens it. */
typedef struct seg_src_row {
    const float *row;
    const char *id;
    size_t idlen;
    uint64_t rowno;
} seg_src_row;
ndb_status coll_write_segment(vcoll *c, uint32_t no, uint64_t lo, uint64_t hi, const seg_src_row *rows, uint64_t n,
                              seg **out, ndb_errmsg *msg);
/* As coll_apply for a row being loaded at open (single-threaded): copies id. */
ndb_status coll_append(vcoll *c, const char *id, size_t idlen, uint64_t row, const float *vec);
void coll_info(vcoll *c, ndb_vec_info *out);

/* ---- recover.c */
/* Loads c's rows: segment files checked against kv (rebuilt from it where
 * missing, damaged or out of date) and the rows after them. */
ndb_status coll_recover(vcoll *c, ndb_errmsg *msg);

/* ---- write.c, search.c, read.c: the public calls, over a referenced collection */
ndb_status vdb_acquire(ndb_vec_db *db, const char *name, vcoll **out, ndb_errmsg *msg);
const venv *vdb_env(const ndb_vec_db *db);

#endif /* NDB_VEC_INT_H */
