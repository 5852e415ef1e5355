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

#include "hnsw.h"
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

struct vqueue;
struct vcoll;

/* The handle's background threads, each working through a queue of
 * collections (vdb.c): one writes frozen row sets out as segment files, one
 * builds graphs. */
enum { VQ_BUILD, VQ_INDEX, VQ_COUNT };

/* Search scratch for graphs, reused across searches (a visited mark per node
 * is too large to allocate per search). */
typedef struct vscratch_pool {
    pthread_mutex_t mu;
    hnsw_scratch **free;
    size_t n, cap;
} vscratch_pool;

/* What every collection of one handle shares. Read-only after open. */
typedef struct venv {
    ndb_kv *kv;
    struct kv_env *fs;   /* the kv's file interface: segment files go through it */
    ndb_doc_db *docs;    /* NDB_DOC_NS_VECTORS: the collections' documents */
    void *ids_only;      /* the projection {"_id": 1}, encoded: filters ask for the ids alone */
    size_t ids_only_len;
    const char *dir;     /* segment files: <dir>/<collection id>/seg-<no>.vseg */
    pool *pool;
    uint64_t segment_bytes;
    uint64_t exact_bytes;  /* HNSW collections with fewer bytes of rows are searched exactly */
    void (*log)(void *ctx, const char *line);
    void *log_ctx;
    /* Queues a collection for one of the background threads (VQ_BUILD: a
     * frozen row set to write out; VQ_INDEX: graph work). vdb.c provides it;
     * coll.c and graph.c call it without depending on vdb.c. */
    void (*later)(const struct venv *env, int queue, struct vcoll *c);
    struct vqueue *queues;
    int *closing;       /* atomic: the handle is closing (long background work stops) */
    vscratch_pool *scratch;
} venv;

/* Rows in memory, in the order they were written (row numbers ascending):
 * `rows` holds cap rows of the collection's stride, 64-byte aligned. */
typedef struct rowset {
    float *rows;
    uint64_t cap, n;
    char **ids;      /* owned NUL-terminated copies */
    uint32_t *idlen;
    uint64_t *rowno;
    uint64_t *dead;  /* cap bits */
    uint64_t ndead;
    uint64_t high;   /* the most rows it has held: rows' pages stay resident once written */
    uint64_t idbytes; /* the ids' copies, together */
} rowset;

void vlog(const venv *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/*
 * One collection's searchable rows: segments, a frozen row set being written
 * out as the next segment (imm, by the builder thread), and the rows written
 * since (act).
 *
 * Thread safety
 *   wmu (mutex)   serialises writes (held inside the document layer's
 *                 transaction, so in commit order), freezing act and merges.
 *   bmu (mutex)   `building`, with the condition variable `built`.
 *   rw (rwlock)   searches and id lookups hold it shared; a writer takes it
 *                 exclusively only to apply an already-durable change to
 *                 memory, to freeze act, or to swap in segments, so searches
 *                 never wait on the disk.
 *   grw (rwlock)  taken only inside rw: searches of the graph shared, the
 *                 index thread exclusively while it adds rows.
 *   gmu (mutex)   held by the index thread for a turn (a drop waits for it).
 *   Lock order: the document layer's collection lock, then wmu, then bmu;
 *   gmu, then rw, then grw; rw is never held while taking another lock but
 *   grw.
 * Invariants
 *   - Row numbers are never reused. Every row the kv holds (FORMAT.md, "Keys")
 *     is in exactly one of segs[], imm or act, and the id map points at it;
 *     replaced and deleted rows have their dead bit set and no map entry.
 *   - segs[] are sorted by lo with disjoint [lo, hi); imm covers [imm_lo,
 *     imm_hi) = [its covered, covered at the freeze); act's row numbers are
 *     >= covered.
 *   - A location (idmap_loc.seg) is a segment's file number; imm's rows use
 *     imm_no, the number its segment file gets, so its rows keep their
 *     locations when it becomes a segment; act's use next_no, which no
 *     segment has.
 *   - imm's rows, ids and row numbers never change (only dead bits); the
 *     builder reads them without a lock.
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
    int dropped;       /* set under wmu, read atomically by the builder */

    pthread_mutex_t wmu;
    pthread_rwlock_t rw;
    pthread_mutex_t bmu;
    pthread_cond_t built;
    int building;      /* bmu: imm is queued for, or in, a build */

    seg **segs;
    size_t nsegs;
    uint32_t next_no;  /* act's number; no segment has it */
    uint64_t covered;  /* row numbers below this are in segments or imm */
    uint64_t next_row; /* under wmu */

    rowset act;        /* rows written since imm was frozen */
    rowset imm;        /* frozen (n > 0) while its segment is built */
    uint32_t imm_no;
    uint64_t imm_lo, imm_hi;
    struct vcoll *qnext[VQ_COUNT]; /* the background queues (vdb.c); in each at most once */

    idmap map;

    /* The approximate index (graph.c). index changes under wmu and rw
     * exclusively; g and gnext are created, replaced and freed only by the
     * index thread (and coll_free), under rw exclusively. */
    ndb_vec_index index;
    struct vgraph *g;     /* searched: rows below g->hi through it, the rest exactly */
    struct vgraph *gnext; /* being built to replace g (churn, new parameters); not searched */
    pthread_rwlock_t grw; /* taken inside rw: searches shared, the index thread exclusively to add */
    int gwaiting;         /* atomic: searches waiting for grw */
    pthread_mutex_t gmu;  /* held by the index thread for a turn (a drop waits for it) */
    int indexing;         /* bmu: queued for, or in, graph work */
    int gdirty;           /* bmu: a write since the index thread's turn began */
    uint64_t glogged;     /* the index thread's: when progress was last logged */
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
 * cosine) to dst. Messages name the vector `name`, or `name[index].vector`
 * when index is not VEC_ONE (one of a list). */
#define VEC_ONE SIZE_MAX
ndb_status coll_check_vector(const vcoll *c, const float *v, uint32_t dims, const char *name, size_t index,
                             float *dst, ndb_errmsg *msg);
/* Makes room in act and the id map for n more rows (wmu held), so that
 * applying cannot fail after a commit; act is frozen first if they would not
 * fit. */
ndb_status coll_reserve(vcoll *c, uint64_t n);
/* Applies a durable write (wmu held, coll_reserve done): id's row becomes row
 * with vector vec (the stored form), the collection taking aid and key (two
 * malloc'd NUL-terminated copies of id); or, with vec NULL, id has no row.
 * Cannot fail. Takes rw exclusively. */
void coll_apply(vcoll *c, const char *id, size_t idlen, uint64_t row, const float *vec, char *aid, char *key);
/* Row number of id's row, or UINT64_MAX (wmu held: takes rw shared). */
uint64_t coll_row_of(vcoll *c, const char *id, size_t idlen);
/* The row at loc: its vector, id and row number (rw held). */
const float *coll_row_at(const vcoll *c, idmap_loc loc, const char **id, size_t *idlen, uint64_t *row);
/* After a write (wmu held): freezes act for the builder when it fills a
 * segment, and merges the segments once dead rows are at least half of them
 * (after waiting for a build in progress). Failures are logged: the rows stay
 * where they are and kv holds them anyway. */
void coll_maybe_seal(vcoll *c);
/* Writes act out as a segment on this thread (wmu held, or single-threaded
 * at open). */
ndb_status coll_seal(vcoll *c, ndb_errmsg *msg);
/* Writes act out as a segment and waits for it, then rewrites every segment
 * without dead rows (wmu held). */
ndb_status coll_merge(vcoll *c, ndb_errmsg *msg);
/* The builder thread's job: writes imm as segment imm_no, swaps it in, and
 * wakes writers waiting for it. */
void coll_build_frozen(vcoll *c);
/* Waits until no build of c is queued or running (wmu held). */
void coll_wait_built(vcoll *c);
/* Writes rows as segment number no covering [lo, hi) and opens it. */
ndb_status coll_write_segment(vcoll *c, uint32_t no, uint64_t lo, uint64_t hi, const seg_rows *rows, seg **out,
                              ndb_errmsg *msg);
/* Grows r to hold want rows (the caller excludes readers). */
ndb_status rowset_grow(const vcoll *c, rowset *r, uint64_t want);
void rowset_free(rowset *r);
/* As coll_apply for a row being loaded at open (single-threaded): copies id. */
ndb_status coll_append(vcoll *c, const char *id, size_t idlen, uint64_t row, const float *vec);
void coll_info(vcoll *c, ndb_vec_info *out);



/* The collection's runs of rows in row-number order (segments, imm, act):
 * where each run's rows, row numbers and dead bits are (rw held). */
typedef struct vrun {
    uint32_t no;           /* location number (idmap_loc.seg) */
    const float *rows;
    const uint64_t *rowno; /* ascending */
    const uint64_t *dead;
    uint64_t n, ndead;
} vrun;
/* Fills out (nsegs + 2 slots) and returns the count of non-empty runs. */
size_t coll_runs(const vcoll *c, vrun *out);
/* First index of r with row number >= row (r->n if none). */
uint64_t run_lower(const vrun *r, uint64_t row);
/* The run and index of row number row among runs, or false. */
bool runs_find(const vrun *runs, size_t n, uint64_t row, size_t *run, uint64_t *at);

/* ---- graph.c: the approximate index over a collection's rows */
/* An int8 graph's quantizer is trained on up to VEC_TRAIN_ROWS live rows
 * spread over the collection; one is not started before it has
 * VEC_MIN_TRAIN_ROWS (the collection stays exact until then). */
#define VEC_TRAIN_ROWS 16384u
#define VEC_MIN_TRAIN_ROWS 1024u
/* A graph over the rows with numbers below hi: each live row when it was
 * added is a node labelled with its row number, added in row order (so the
 * labels ascend with the node numbers); dead marks the nodes whose rows were
 * replaced or deleted since. */
typedef struct vgraph {
    hnsw *h;
    uint64_t hi;     /* rows below hi have been added, or skipped as dead */
    uint64_t *dead;  /* node bits; set under rw exclusively */
    uint64_t dcap;   /* bits dead has room for */
    uint64_t ndead;
    uint32_t saved;  /* nodes in the graph file (0: none written by this graph) */
} vgraph;
/* Parses the index of a catalog entry's metadata ({"index": {"kind", "m",
 * "ef_construction"}}; absent: exact). */
ndb_status graph_read_meta(const ndb_doc_val *root, ndb_vec_index *out);
/* Checks an index configuration and fills in its defaults. */
ndb_status graph_check_index(const ndb_vec_index *in, ndb_vec_index *out, ndb_errmsg *msg);
/* Appends "index": {...} to an object being built. */
void graph_write_meta(ndb_doc_builder *b, const ndb_vec_index *ix);
/* At open, after recovery: loads the graph file of an HNSW collection
 * (marking the nodes whose rows are no longer live) or starts an empty
 * graph, and queues the rest of the work. Failures are logged: the graph is
 * rebuilt. */
void graph_open(vcoll *c);
/* The row number row died (rw held exclusively): its node, if any, is masked. */
void graph_kill(vcoll *c, uint64_t row);
/* After a write or a change of index (wmu held): queues graph work for an
 * HNSW collection, or for any with always (a change to exact drops the
 * graph). */
void graph_wake(vcoll *c, bool always);
/* The index thread's job: adds rows for a bounded time, saves the graph
 * file, swaps a finished rebuild in. True if more work remains. */
bool graph_work(vcoll *c, hnsw_scratch *s);
/* At close, after the index thread stopped: saves c's graph if it grew
 * since it was last saved, so the next open resumes from it. */
void graph_close(vcoll *c);
void graph_free(vgraph *g);
/* Whether g's dead nodes call for a rebuild without them (REBUILD_DEAD or
 * more, and half its nodes). */
bool graph_rebuild_due(const vgraph *g);
/* Removes the graph file of c. */
void graph_remove_file(vcoll *c);
/* Scratch from the handle's pool (NULL: out of memory); give it back. */
hnsw_scratch *vscratch_get(const venv *e);
void vscratch_put(const venv *e, hnsw_scratch *s);
/* Node of row number row in g, or UINT32_MAX. */
uint32_t graph_node_of(const vgraph *g, uint64_t row);

/* ---- recover.c */
/* Loads c's rows: segment files checked against kv (rebuilt from it where
 * missing, damaged or out of date) and the rows after them. */
ndb_status coll_recover(vcoll *c, ndb_errmsg *msg);

/* ---- write.c, search.c, read.c: the public calls, over a referenced collection */
ndb_status vdb_acquire(ndb_vec_db *db, const char *name, vcoll **out, ndb_errmsg *msg);
const venv *vdb_env(const ndb_vec_db *db);
/* One batch of a TTL pass over vector collections (an ndb_doc_expire_fn whose
 * arg is the ndb_vec_db): at most limit documents of name matching filter,
 * found through index as the collection is now, deleted with their vectors
 * in one write. A collection dropped meanwhile has nothing to delete. */
ndb_status vwrite_delete_matching(void *arg, const char *name, const char *index, const void *filter, size_t flen,
                                  uint32_t limit, uint64_t *n, ndb_errmsg *msg);

#endif /* NDB_VEC_INT_H */
