/*
 * ndb_vec.h — NexaDB vector collections (the public header of vector/).
 *
 * A vector collection holds documents, each with one float32 vector of the
 * collection's fixed dimension count (1..NDB_VEC_MAX_DIMS) and metric. The
 * documents live in the document layer (engine/doc), in a namespace of their
 * own: a document collection of the same name is a different collection, and
 * dropping either leaves the other alone. The vectors live in engine/kv beside
 * them. engine/kv is the only durability path: every write here (an insert, an
 * upsert or a delete of documents with their vectors) is one kv write batch,
 * one WAL record shared with concurrent writers by group commit, so after any
 * crash a document and its vector are both there or both absent.
 *
 * Search is exact (recall 1.0) by default: it scans 64-byte-aligned float32
 * rows with the SIMD kernels, in parallel on a worker pool, with an optional
 * pre-filter in the Find language (the result is the true top-k among
 * matching documents). A collection may also keep an HNSW graph (its index,
 * ndb_vec_index), searched approximately: see ndb_vec_query for what a
 * search through it promises. The rows are in segment files, memory-mapped, built from what
 * the kv log made durable (as an SSTable is built from a memtable), and in
 * memory for rows written since the newest segment. Segment files are derived
 * data: a missing, truncated or corrupt one is rebuilt from kv at open
 * (vector/README.md, "Recovery").
 *
 * Scores are "higher is better" for every metric:
 *   cosine  dot product of the L2-normalised vectors, in [-1, 1]
 *           (vectors are stored normalised; get returns the stored vector)
 *   dot     raw dot product
 *   l2      minus the squared Euclidean distance (0 is identical)
 * Ties are broken by the row key (vector/FORMAT.md): mostly the earlier row first.
 *
 * Thread safety: every function may be called from any thread concurrently
 * on one handle, except ndb_vec_close (no call may be in flight; free every
 * cursor first). Searches run concurrently with each other and with writes;
 * the writes to one collection are serialised.
 *
 * Errors: functions return ndb_status; those taking an ndb_errmsg fill it
 * (when non-NULL) with a message naming the problem. Bad vectors (wrong
 * dimension count, NaN/Inf, a zero vector under cosine) are NDB_EINVAL.
 */
#ifndef NDB_VEC_H
#define NDB_VEC_H

#include <stddef.h>
#include <stdint.h>

#include "ndb_interrupt.h"
#include "ndb_status.h"

#define NDB_VEC_MAX_DIMS 16384u
#define NDB_VEC_MAX_ID 512u   /* bytes in a document id, as NDB_DOC_MAX_ID */
#define NDB_VEC_MAX_K 100000u /* largest k a search accepts */

typedef struct ndb_kv ndb_kv;
typedef struct ndb_doc_db ndb_doc_db;
typedef struct ndb_vec_db ndb_vec_db;

typedef enum ndb_vec_metric {
    NDB_VEC_COSINE = 0, /* the default */
    NDB_VEC_DOT = 1,
    NDB_VEC_L2 = 2,
} ndb_vec_metric;

typedef struct ndb_vec_options {
    uint32_t threads;       /* search threads including the caller; 0 = cores */
    uint64_t segment_bytes; /* build a segment when memory rows reach this many bytes; 0 = 64 MiB */
    uint64_t exact_bytes;   /* HNSW collections with fewer bytes of rows are searched exactly;
                             * 0 = NDB_VEC_EXACT_BYTES */
    /* Progress lines (segments rebuilt at open, merges); NULL: stderr. */
    void (*log)(void *ctx, const char *line);
    void *log_ctx;
} ndb_vec_options;

/* Fills o with the defaults. */
void ndb_vec_options_default(ndb_vec_options *o);

/*
 * Opens the vector collections kept in kv (borrowed) and in docs' store
 * (borrowed: docs must be the document collections' handle over the same kv;
 * both must outlive this handle). dir holds the derived segment files (created
 * if missing; nothing in it is needed to recover data). Every collection is
 * recovered before this returns. Caller frees with ndb_vec_close.
 */
ndb_status ndb_vec_open(ndb_kv *kv, ndb_doc_db *docs, const char *dir, const ndb_vec_options *opt,
                        ndb_vec_db **out, ndb_errmsg *msg);
void ndb_vec_close(ndb_vec_db *db);

/*
 * Converts the previous release's vector store (v1: its own files in v1dir,
 * each collection's documents in the document collection of the same name)
 * into vector collections of db: each live vector with its document moves
 * into a vector collection of the same name, and leaves the document
 * collection (dropped if nothing else is in it). Then v1dir is renamed to
 * <v1dir>.converted. Every step can be repeated, so a conversion killed at
 * any point is finished by calling this again. A missing v1dir is NDB_OK.
 * Progress goes to the log.
 */
ndb_status ndb_vec_upgrade_v1(ndb_vec_db *db, ndb_doc_db *docs, const char *v1dir, ndb_errmsg *msg);

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

/*
 * How a collection finds nearest neighbours. EXACT scores every row. HNSW
 * also keeps a hierarchical navigable small world graph over the rows,
 * derived like the segments (saved beside them, rebuilt from kv when missing
 * or damaged) and built in the background: rows written since the graph last
 * caught up are scored exactly by every search, so a fresh vector is never
 * missed; replaced and deleted rows are masked at once, and the graph is
 * rebuilt once they are half of it. Searches use the graph once the
 * collection is larger than exact search is fast for (ndb_vec_options'
 * exact_bytes of rows, NDB_VEC_EXACT_BYTES by default); below that, and when
 * a query asks for it, they stay exact.
 */
typedef enum ndb_vec_index_kind {
    NDB_VEC_INDEX_EXACT = 0, /* the default */
    NDB_VEC_INDEX_HNSW = 1,
} ndb_vec_index_kind;
/* How an HNSW graph keeps its copy of each vector: float32; int8 codes (a
 * quarter of the bytes; per-dimension ranges from a sample of the rows when
 * the graph is started), searched with an integer kernel; or float16 (half
 * the bytes; components beyond +-65504 clamped), searched with a half-float
 * kernel. A quantized graph's searches rescore oversample x k of its hits
 * with the float32 rows, so the scores returned are exact. */
typedef enum ndb_vec_quant {
    NDB_VEC_QUANT_NONE = 0, /* the default */
    NDB_VEC_QUANT_INT8 = 1,
    NDB_VEC_QUANT_F16 = 2,
} ndb_vec_quant;
typedef struct ndb_vec_index {
    ndb_vec_index_kind kind;
    uint32_t m;               /* HNSW links per node above level 0 (twice that at level 0): 2..64; 0: 16 */
    uint32_t ef_construction; /* HNSW candidates kept while linking a node: m..10000; 0: 200 */
    ndb_vec_quant quantization;
    uint32_t oversample;      /* int8, float16: hits rescored per hit wanted, 1..100; 0: 4 */
} ndb_vec_index;
#define NDB_VEC_HNSW_M 16u
#define NDB_VEC_HNSW_EF_CONSTRUCTION 200u
#define NDB_VEC_OVERSAMPLE 4u
#define NDB_VEC_EF 128u                   /* a search's ef when it gives none (raised to k) */
#define NDB_VEC_EXACT_BYTES (4ull << 20) /* rows below this many bytes are searched exactly */
/* "exact", "hnsw"; static string. */
const char *ndb_vec_index_name(ndb_vec_index_kind k);
/* Parses an index name (NULL or "" gives exact). */
ndb_status ndb_vec_index_parse(const char *name, ndb_vec_index_kind *out);
/* "none", "int8", "float16"; static string. */
const char *ndb_vec_quant_name(ndb_vec_quant q);
/* Parses a quantization name (NULL or "" gives none). */
ndb_status ndb_vec_quant_parse(const char *name, ndb_vec_quant *out);

/* Collections. Names are [A-Za-z0-9_.-]{1,64}, not starting with '.'.
 * index NULL: exact. NDB_EEXIST if the name is taken. */
ndb_status ndb_vec_create(ndb_vec_db *db, const char *name, uint32_t dims, ndb_vec_metric metric,
                          const ndb_vec_index *index, ndb_errmsg *msg);
/* Changes a collection's index. To HNSW (or to other HNSW parameters): a
 * graph is built in the background while searches go on as before; to exact:
 * the graph and its file are dropped. Durable when this returns. */
ndb_status ndb_vec_set_index(ndb_vec_db *db, const char *name, const ndb_vec_index *index, ndb_errmsg *msg);
/* The document handle of the vector collections' namespace (borrowed; valid
 * until ndb_vec_close). Its secondary indexes (ndb_doc_create_index and
 * friends) index the collections' documents, are maintained by every
 * ndb_vec write and serve filtered searches; its queries read the
 * documents. Documents are written through ndb_vec only, and its TTL indexes
 * are served by ndb_vec_expire (which deletes the vectors too), never by
 * ndb_doc_expire. */
ndb_doc_db *ndb_vec_documents(ndb_vec_db *db);
/* One pass of TTL expiry over the vector collections: ndb_doc_expire's rules
 * for the TTL indexes of their documents, each expired document deleted
 * with its vector (batches of at most batch, each one atomic write; max in
 * all, 0: no limit). *deleted (may be NULL) receives the count. */
ndb_status ndb_vec_expire(ndb_vec_db *db, int64_t now_ms, uint32_t batch, uint64_t max, uint64_t *deleted,
                          ndb_errmsg *msg);
/* Drops the collection with its documents, vectors and segment files. */
ndb_status ndb_vec_drop(ndb_vec_db *db, const char *name, ndb_errmsg *msg);

typedef struct ndb_vec_info {
    char name[65];
    uint32_t dims;
    ndb_vec_metric metric;
    uint64_t rows;     /* documents with their vectors */
    uint64_t dead;     /* replaced or deleted rows still in segments (masked until a merge) */
    uint32_t segments; /* segment files */
    uint64_t bytes;    /* the documents' encoded bytes plus the vectors' row bytes */
    uint64_t memory_bytes; /* anonymous memory: rows not yet in a segment (up to two segments' worth,
                            * ndb_vec_options.segment_bytes each) and the map of ids to rows */
    ndb_vec_index index;  /* as configured (m, ef_construction filled in for HNSW) */
    uint64_t indexed;     /* HNSW: live rows the searched graph holds (the rest are scored exactly) */
    uint64_t graph_nodes; /* HNSW: nodes of the searched graph, dead ones included */
    uint64_t graph_bytes; /* HNSW: memory of the graphs (a rebuild's included) */
    int building;         /* HNSW: rows remain to add, or a rebuild is under way or due */
} ndb_vec_info;

/* All collections, sorted by name. *out is an array of *n infos; caller
 * frees with free(). */
ndb_status ndb_vec_list(ndb_vec_db *db, ndb_vec_info **out, size_t *n);
ndb_status ndb_vec_stats(ndb_vec_db *db, const char *name, ndb_vec_info *out, ndb_errmsg *msg);

/* A document with its vector; both borrowed for the call. */
typedef struct ndb_vec_item {
    const void *doc;      /* an encoded object (ndb_doc builder); NULL: an empty document */
    size_t doc_len;
    const float *vector;  /* dims floats */
} ndb_vec_item;

/*
 * Inserts n documents with their vectors, atomically (one kv batch): each
 * gets an _id as ndb_doc_insert gives one, and _created_at/_updated_at. Every
 * vector is checked before anything is written. NDB_EEXIST (nothing written)
 * if an _id is taken. On NDB_OK, if ids is non-NULL, *ids is an array of n
 * NUL-terminated ids: caller frees with ndb_doc_ids_free(*ids, n).
 */
ndb_status ndb_vec_insert(ndb_vec_db *db, const char *name, const ndb_vec_item *items, size_t n,
                          uint32_t dims, char ***ids, ndb_errmsg *msg);
/*
 * The document with _id id becomes item's document (its own _id, if any, must
 * equal id; _created_at is kept when it existed) with item's vector, in one kv
 * batch. *inserted (may be NULL): 1 if there was no such document.
 */
ndb_status ndb_vec_upsert(ndb_vec_db *db, const char *name, const char *id, const ndb_vec_item *item,
                          uint32_t dims, int *inserted, ndb_errmsg *msg);
/* Deletes a document and its vector in one kv batch; NDB_ENOTFOUND if absent. */
ndb_status ndb_vec_delete(ndb_vec_db *db, const char *name, const char *id, ndb_errmsg *msg);

/*
 * One document and its vector, read at one snapshot (so never a document with
 * another version's vector). doc may be NULL; else *doc is malloc'd: caller
 * frees with free(). vector may be NULL; else *vector is malloc'd, dims floats
 * (the stored form): caller frees with free(). dims (may be NULL) receives the
 * collection's dimension count. NDB_ENOTFOUND if there is no such document.
 */
ndb_status ndb_vec_get(ndb_vec_db *db, const char *name, const char *id, void **doc, size_t *doc_len,
                       float **vector, uint32_t *dims, ndb_errmsg *msg);

/* Rewrites the segments without their dead rows (after building a segment
 * from the rows in memory). Searches keep running; writers wait. */
ndb_status ndb_vec_merge(ndb_vec_db *db, const char *name, ndb_errmsg *msg);

typedef struct ndb_vec_query {
    uint32_t k;          /* results wanted, 1..NDB_VEC_MAX_K */
    int has_min_score;   /* if set, only scores >= min_score are returned */
    float min_score;
    int with_vectors;    /* return each hit's stored vector */
    int with_documents;  /* return each hit's document */
    /* Optional pre-filter: an encoded filter document in the Find language
     * (engine/doc), run through the document layer's indexes where one fits.
     * Borrowed for the call. */
    const void *filter;
    size_t filter_len;
    /* Optional (NULL: none; borrowed for the call): the search stops with
     * NDB_ETIMEDOUT or NDB_ECANCELED once it fires, checked while the filter
     * runs and before each chunk of rows (~1 MiB) every thread scores. */
    const ndb_interrupt *interrupt;
    /* HNSW collections: candidates kept while searching the graph (higher:
     * better recall, slower); 0: NDB_VEC_EF; raised to k. exact: score every
     * row (recall 1.0) as an EXACT collection does. Through the graph, hits
     * are approximate (recall@10 >= 0.95 at the defaults on the benchmarks
     * of bench/ann), min_score and the filter still hold for every hit, and
     * a filtered search returns k hits whenever k documents match: a filter
     * whose share of a sample of 32 documents is 1/4 or more is applied to
     * the hits (post-filtered, through the graph at ef / share; run again
     * as below if fewer than k pass), others find their documents first: a
     * filter that keeps fewer than 1/16 of the graph's nodes has them scored
     * exactly, others are searched through the graph honouring the filter
     * (and scored exactly if that comes back short). README.md, "Search". */
    uint32_t ef;
    int exact;
} ndb_vec_query;

typedef struct ndb_vec_hit {
    const char *id;      /* NUL-terminated */
    size_t id_len;
    float score;
    const float *vector; /* dims floats, or NULL unless with_vectors */
    const void *doc;     /* encoded document, or NULL unless with_documents */
    size_t doc_len;
} ndb_vec_hit;

/* How a search ran (its explain output). */
typedef struct ndb_vec_plan {
    /* "exact": every row (or candidate) scored; "exact_postfiltered": a
     * quarter or more of a sample of the documents matched the filter, which
     * was applied to the exact hits; "hnsw": the graph;
     * "hnsw_postfiltered": the same through the graph;
     * "hnsw_filtered": the graph honouring the filter; "hnsw_exact_filtered":
     * the filter kept fewer than 1/16 of the graph's nodes, which were scored
     * exactly; "hnsw_filtered_fallback": the filtered traversal came back
     * short and the matching nodes were scored exactly. A post-filtered
     * search that came back short ran again filtered first: its plan is that
     * run's. Static string. */
    const char *path;
    uint64_t graph_nodes; /* nodes of the graph searched (0 for exact) */
    uint64_t exact_rows;  /* rows scored exactly beside the graph (not yet in it), or every row for exact */
    uint64_t candidates;  /* with a filter: the documents matching it (post-filtered: estimated from the sample) */
    uint32_t ef;          /* through the graph: the ef used */
} ndb_vec_plan;

typedef struct ndb_vec_result {
    size_t n;            /* <= k, fewer only when fewer documents match */
    ndb_vec_hit *hits;   /* best first */
    ndb_vec_plan plan;
} ndb_vec_result;

/*
 * One query (dims floats). Hits are read back at one snapshot taken after
 * scoring: a document replaced or deleted by a write that committed during
 * the search is left out rather than shown with another version's vector.
 * *out is one result; caller frees with ndb_vec_results_free(*out, 1).
 */
ndb_status ndb_vec_search(ndb_vec_db *db, const char *name, const float *query, uint32_t dims,
                          const ndb_vec_query *q, ndb_vec_result **out, ndb_errmsg *msg);
/* nq queries, row-major nq x dims, scored in one pass over memory per block
 * of queries. *out is an array of nq results; caller frees with
 * ndb_vec_results_free(*out, nq). */
ndb_status ndb_vec_search_batch(ndb_vec_db *db, const char *name, const float *queries, size_t nq,
                                uint32_t dims, const ndb_vec_query *q, ndb_vec_result **out,
                                ndb_errmsg *msg);
void ndb_vec_results_free(ndb_vec_result *r, size_t n);

/*
 * Documents with their vectors in _id order, read at one snapshot (export).
 * The filter is the Find language; a page token from a previous cursor with
 * the same filter resumes after its last document.
 */
typedef struct ndb_vec_cursor ndb_vec_cursor;
typedef struct ndb_vec_find_opts {
    const void *filter;                            /* NULL: every document */
    size_t filter_len;
    uint64_t limit;                                /* 0: no limit */
    const void *page_token;                        /* from ndb_vec_cursor_page_token */
    size_t page_token_len;
    const ndb_interrupt *interrupt;                /* borrowed until the cursor is freed; NULL: none */
} ndb_vec_find_opts;
/* Caller frees with ndb_vec_cursor_free(). A collection that does not exist
 * is NDB_ENOTFOUND. */
ndb_status ndb_vec_find(ndb_vec_db *db, const char *name, const ndb_vec_find_opts *o,
                        ndb_vec_cursor **out, ndb_errmsg *msg);
/* The next document and its vector (dims floats): NDB_OK with *doc NULL at
 * the end. Both borrowed until the next call on the cursor. */
ndb_status ndb_vec_cursor_next(ndb_vec_cursor *c, const void **doc, size_t *doc_len,
                               const float **vector, ndb_errmsg *msg);
/* The dimensions of the cursor's vectors (its collection's, fixed when the
 * cursor was made, whatever happens to the name since). */
uint32_t ndb_vec_cursor_dims(const ndb_vec_cursor *c);
/* Resumes after the last document returned; *len 0 when exhausted. Caller
 * frees *tok with free(). */
ndb_status ndb_vec_cursor_page_token(ndb_vec_cursor *c, void **tok, size_t *len);
void ndb_vec_cursor_free(ndb_vec_cursor *c);

#endif /* NDB_VEC_H */
