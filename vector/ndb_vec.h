/*
 * ndb_vec.h — NexaDB vector collections (the public header of vector/).
 *
 * A vector store is a directory holding named collections. A collection has
 * a fixed dimension count (1..NDB_VEC_MAX_DIMS) and a metric, and maps
 * document ids (byte strings, the same ids engine/doc uses) to float32
 * vectors. Search is exact (recall 1.0) over every live row, in parallel on
 * a worker pool, with an optional pre-filter that keeps results the true
 * top-k among matching documents.
 *
 * Scores are "higher is better" for every metric:
 *   cosine  dot product of the L2-normalised vectors, in [-1, 1]
 *           (vectors are normalised at insert; get returns the normalised one)
 *   dot     raw dot product
 *   l2      minus the squared Euclidean distance (0 is identical)
 * Ties are broken by insertion order (the earlier row first).
 *
 * Durability: an acknowledged insert/upsert/delete is in an fsync'd log, so
 * it survives kill -9; concurrent calls on one collection are group-committed
 * (one write and one fsync for all of them) and one insert_many is always one
 * unit; see FORMAT.md.
 *
 * Thread safety: every function may be called from any thread concurrently
 * on one store, except ndb_vec_close (no call may be in flight). Searches
 * run concurrently with each other and with writes; writes to one collection
 * are serialised.
 *
 * Errors: functions return ndb_status; those taking an ndb_errmsg fill it
 * (when non-NULL) with a message naming the problem. Bad vectors (wrong
 * dimension count, NaN/Inf, a zero vector under cosine) are NDB_EINVAL.
 */
#ifndef NDB_VEC_H
#define NDB_VEC_H

#include <stddef.h>
#include <stdint.h>

#include "ndb_status.h"

#define NDB_VEC_MAX_DIMS 16384u
#define NDB_VEC_MAX_ID 512u    /* bytes in a document id (1..512, no NUL) */
#define NDB_VEC_MAX_NAME 64u   /* collection name: [A-Za-z0-9_.-], 1..64, not starting with '.' */
#define NDB_VEC_MAX_K 100000u  /* largest k a search accepts */

typedef struct ndb_vec_store ndb_vec_store;

typedef enum ndb_vec_metric {
    NDB_VEC_COSINE = 0, /* the default */
    NDB_VEC_DOT = 1,
    NDB_VEC_L2 = 2,
} ndb_vec_metric;

typedef struct ndb_vec_options {
    uint32_t threads;       /* search threads including the caller; 0 = cores */
    uint64_t segment_bytes; /* seal the active segment at this many row bytes; 0 = 64 MiB */
    int sync;               /* 1 (default): fsync before acknowledging a write.
                               0: "nosync", a crash may lose acknowledged writes */
} ndb_vec_options;

/* Fills o with the defaults. */
void ndb_vec_options_default(ndb_vec_options *o);

/* Opens (creating if needed) the store in directory dir. opt may be NULL for
 * defaults. Takes an exclusive lock on the directory (NDB_EBUSY if held).
 * Corrupt or truncated files are NDB_ECORRUPT with the file named in msg.
 * On success *out is the store; caller frees with ndb_vec_close. */
ndb_status ndb_vec_open(const char *dir, const ndb_vec_options *opt, ndb_vec_store **out,
                        ndb_errmsg *msg);
void ndb_vec_close(ndb_vec_store *s);

/* Kernel variant in use ("avx512", "avx2", "neon", "scalar"); static string.
 * The service logs it at start-up. */
const char *ndb_vec_kernel_name(void);
/* Forces a variant by name (tests, benchmarks). NDB_EINVAL if not compiled
 * in or not runnable on this CPU. */
ndb_status ndb_vec_kernel_force(const char *name);

/* "cosine", "dot", "l2"; static string. */
const char *ndb_vec_metric_name(ndb_vec_metric m);
/* Parses a metric name (NULL or "" gives cosine). */
ndb_status ndb_vec_metric_parse(const char *name, ndb_vec_metric *out);

/* Collections. */
ndb_status ndb_vec_create(ndb_vec_store *s, const char *name, uint32_t dims, ndb_vec_metric metric,
                          ndb_errmsg *msg); /* NDB_EEXIST if the name is taken */
ndb_status ndb_vec_drop(ndb_vec_store *s, const char *name, ndb_errmsg *msg);

typedef struct ndb_vec_info {
    char name[NDB_VEC_MAX_NAME + 1];
    uint32_t dims;
    ndb_vec_metric metric;
    uint64_t rows;      /* live vectors */
    uint64_t dead;      /* tombstoned rows not yet reclaimed by a merge */
    uint32_t segments;  /* sealed segments (the active one not counted) */
    uint64_t bytes;     /* bytes on disk: segments + log */
} ndb_vec_info;

/* All collections, sorted by name. *out is an array of *n infos; caller
 * frees with free(). */
ndb_status ndb_vec_list(ndb_vec_store *s, ndb_vec_info **out, size_t *n);
ndb_status ndb_vec_stats(ndb_vec_store *s, const char *name, ndb_vec_info *out, ndb_errmsg *msg);

/* Writes. vector holds dims floats (borrowed for the call). */
ndb_status ndb_vec_insert(ndb_vec_store *s, const char *name, const char *id, const float *vector,
                          uint32_t dims, ndb_errmsg *msg); /* NDB_EEXIST if id is live */
ndb_status ndb_vec_upsert(ndb_vec_store *s, const char *name, const char *id, const float *vector,
                          uint32_t dims, ndb_errmsg *msg);

typedef struct ndb_vec_item {
    const char *id;
    const float *vector; /* dims floats */
} ndb_vec_item;

/* Inserts (upsert=0) or upserts (upsert=1) n items as one unit: every item is
 * validated first (and, for insert, checked for duplicates within the call
 * and against live ids); on any error nothing is written. One fsync. */
ndb_status ndb_vec_insert_many(ndb_vec_store *s, const char *name, const ndb_vec_item *items,
                               size_t n, uint32_t dims, int upsert, ndb_errmsg *msg);

/* Looks up id. If vector is non-NULL it receives the stored vector (cap must
 * be >= dims). NDB_ENOTFOUND if absent. *dims_out (may be NULL) gets dims. */
ndb_status ndb_vec_get(ndb_vec_store *s, const char *name, const char *id, float *vector,
                       uint32_t cap, uint32_t *dims_out, ndb_errmsg *msg);
ndb_status ndb_vec_delete(ndb_vec_store *s, const char *name, const char *id, ndb_errmsg *msg);

/* Seals the active rows and rewrites the sealed segments without their dead
 * rows. Searches keep running meanwhile; writers wait. */
ndb_status ndb_vec_merge(ndb_vec_store *s, const char *name, ndb_errmsg *msg);

/*
 * Filter: return non-zero to keep the document. Called once per live row
 * before scoring (a pre-filter: the result is the true top-k among kept
 * rows), from the calling thread only, while the collection is read-locked:
 * the callback must not call into this store at all (a waiting writer would
 * deadlock it). id is not NUL-terminated and is borrowed for the call.
 */
typedef int (*ndb_vec_filter_fn)(void *ctx, const char *id, size_t id_len);

typedef struct ndb_vec_query {
    uint32_t k;             /* results wanted, 1..NDB_VEC_MAX_K */
    int has_min_score;      /* if set, only scores >= min_score are returned */
    float min_score;
    int with_vectors;       /* return each hit's stored vector */
    ndb_vec_filter_fn filter; /* optional */
    void *filter_ctx;
    /* Optional allow-list (e.g. from a secondary index): only these ids
     * are candidates. Combined with filter by AND. Borrowed for the call. */
    const char *const *allow_ids;
    size_t n_allow;
} ndb_vec_query;

typedef struct ndb_vec_hit {
    const char *id;       /* NUL-terminated */
    size_t id_len;
    float score;
    const float *vector;  /* dims floats, or NULL unless with_vectors */
} ndb_vec_hit;

typedef struct ndb_vec_result {
    size_t n;             /* <= k, fewer only when fewer rows match */
    ndb_vec_hit *hits;    /* best first */
} ndb_vec_result;

/* One query (dims floats). *out is one result; caller frees with
 * ndb_vec_results_free(*out, 1). */
ndb_status ndb_vec_search(ndb_vec_store *s, const char *name, const float *query, uint32_t dims,
                          const ndb_vec_query *q, ndb_vec_result **out, ndb_errmsg *msg);
/* nq queries, row-major nq x dims, scored in one pass over memory per block
 * of queries. *out is an array of nq results; caller frees with
 * ndb_vec_results_free(*out, nq). */
ndb_status ndb_vec_search_batch(ndb_vec_store *s, const char *name, const float *queries,
                                size_t nq, uint32_t dims, const ndb_vec_query *q,
                                ndb_vec_result **out, ndb_errmsg *msg);
void ndb_vec_results_free(ndb_vec_result *r, size_t n);

#endif /* NDB_VEC_H */
