/*
 * hnsw.h — a hierarchical navigable small world graph over stored-form
 * vectors (Malkov and Yashunin, "Efficient and robust approximate nearest
 * neighbor search using Hierarchical Navigable Small World graphs", 2016):
 * the approximate index of issue 15, a structure derived from rows that kv
 * holds, so it can always be rebuilt.
 *
 * Nodes are numbered 0, 1, ... in the order they were added; each carries the
 * caller's 64-bit label (a row number). A node's vector is copied into the
 * graph beside its level-0 links, so a search reads one record per node it
 * visits. Vectors are the collection's stored form: rows of dpad floats, zero
 * padded, L2-normalised under cosine; a float32 graph keeps the first dims
 * floats of each (no padding: its kernels take any length), a quantized one
 * codes or halves for all dpad. Scores are higher-is-better as everywhere in
 * vector/: dot for cosine and dot, minus the squared distance for l2.
 *
 * Insertion follows the paper's algorithms 1, 2 and 4 (neighbour selection by
 * the heuristic, which keeps a neighbour only if it is closer to the new node
 * than to every neighbour already kept). Deletion is the caller's: a search
 * takes a bitmap of dead nodes (their rows were replaced or deleted), which
 * stay in the graph as waypoints and are never returned, and an allow bitmap
 * over node numbers (a filter): see hnsw_search for how it is honoured.
 *
 * Thread safety: an add needs the graph to itself; searches, hnsw_write and
 * the accessors only read it and may run together, each search with its own
 * scratch.
 * Invariants (hnsw_check): every node has at most m0 links at level 0 and m
 * above, each to a node that exists at that level and is not itself; the
 * entry point is a node of the highest level. Reachability is a property the
 * construction keeps with high probability, not a guarantee (pruning a full
 * neighbour list can drop a node's last incoming link): hnsw_unreachable
 * counts the nodes the entry point cannot reach at level 0.
 */
#ifndef NDB_VEC_HNSW_H
#define NDB_VEC_HNSW_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ndb_status.h"
#include "ndb_vec.h"

#define HNSW_MAX_M 64      /* links per node above level 0; twice that at level 0 */
#define HNSW_MAX_LEVEL 16  /* levels above 0: with m >= 2 the chance of more is below 2^-16 per node */

typedef struct hnsw hnsw;

/* How the graph keeps its copy of each vector: float32 as given, int8
 * codes (a quarter of the bytes; per-dimension offset and scale from
 * hnsw_train), scored with kern's integer kernel, or IEEE binary16 halves
 * (half the bytes; components beyond +-65504 clamped), scored with kern's
 * float16 kernel. Scores against codes or halves are approximate: a caller
 * wanting exact ones rescores the hits from its own float32 rows. */
typedef enum hnsw_quant { HNSW_QUANT_NONE = 0, HNSW_QUANT_INT8 = 1, HNSW_QUANT_F16 = 2 } hnsw_quant;

typedef struct hnsw_params {
    uint32_t m;               /* links per node above level 0 (2..HNSW_MAX_M); 2m at level 0 */
    uint32_t ef_construction; /* candidates kept while linking a new node (>= m) */
    uint64_t seed;            /* levels are drawn from it: the same adds give the same graph */
    hnsw_quant quant;
} hnsw_params;

/* A search's working memory (visited marks, heaps), reused across searches
 * by one thread. Zero-initialise; free with hnsw_scratch_free. */
typedef struct hnsw_scratch {
    uint32_t *mark;
    uint32_t mcap, epoch;
    struct hnsw_cand *cand, *res;
    uint32_t ccap, rcap;
    float *fv;  /* a decoded vector (dpad) */
    int8_t *qc; /* two int8 forms (2 dpad) */
    uint32_t vcap;
} hnsw_scratch;

typedef struct hnsw_hit {
    float score;
    uint32_t node;
} hnsw_hit;

/* A graph for vectors of dims floats stored in rows of dpad (a multiple of
 * 16, >= dims) under metric. NDB_EINVAL for parameters out of range. */
ndb_status hnsw_new(uint32_t dims, uint32_t dpad, ndb_vec_metric metric, const hnsw_params *p, hnsw **out,
                    ndb_errmsg *msg);
void hnsw_free(hnsw *h);
void hnsw_scratch_free(hnsw_scratch *s);

/* int8 graphs: sets each dimension's offset and scale from n sample rows
 * (row i at rows + i * stride floats, dpad used), before the first add;
 * components outside the sample's range are clamped to it. NDB_EINVAL once
 * nodes exist or for n 0. No-op for float32 graphs. */
ndb_status hnsw_train(hnsw *h, const float *rows, size_t n, size_t stride);

/* Adds vec (dpad floats, the stored form) with label; *node receives its
 * number. NDB_ENOMEM leaves the graph as it was; NDB_EINVAL for an int8
 * graph not trained. */
ndb_status hnsw_add(hnsw *h, uint64_t label, const float *vec, hnsw_scratch *s, uint32_t *node);

/* With an allow bitmap of `allowed` set bits, a search scores exactly the
 * allowed nodes when fewer than 1/HNSW_EXACT_BELOW of the nodes (or at most
 * 4 ef) are allowed: below that the allowed nodes are too sparse in the graph
 * for the filtered traversal to connect them (measured: 20,000 clustered
 * 32-dimensional vectors, ef 100, recall@10 0.99 at 3% allowed, 0.80 and
 * short answers at 1%), and the exact pass costs at most n/16 scores. */
#define HNSW_EXACT_BELOW 16
bool hnsw_prefers_exact(const hnsw *h, uint64_t allowed, uint32_t ef);

/* Which way a search went: the plain traversal; the filtered (ACORN-1)
 * traversal; exact scoring of the allowed nodes, chosen up front by
 * hnsw_prefers_exact; or exact scoring after a filtered traversal came back
 * short. */
typedef enum hnsw_path { HNSW_PATH_GRAPH, HNSW_PATH_FILTERED, HNSW_PATH_EXACT, HNSW_PATH_FALLBACK } hnsw_path;

/* The up to k best nodes for query q (dpad floats, stored form) that are not
 * set in dead (NULL: none is) and, when allow is not NULL, have their bit set
 * in it (bits at or past the node count are ignored in both); ef (>= k)
 * candidates are kept at level 0.
 * With allow, above the exact rule's threshold the traversal scores only
 * allowed nodes and crosses rejected ones to their neighbours (ACORN-1); when
 * it finds fewer than k though more are allowed (a filter that keeps a region
 * the query is far from), the allowed nodes are scored exactly, so k results
 * come back whenever k nodes are allowed and live.
 * out (k slots) is sorted best first; *n receives the count and *path the
 * way it went. NDB_ENOMEM when the scratch cannot grow. */
ndb_status hnsw_search(const hnsw *h, const float *q, uint32_t k, uint32_t ef, const uint64_t *allow,
                       const uint64_t *dead, hnsw_scratch *s, hnsw_hit *out, uint32_t *n, hnsw_path *path);

uint32_t hnsw_count(const hnsw *h);
/* m, ef_construction and quantization as made (seed: the level generator's
 * state now). */
hnsw_params hnsw_get_params(const hnsw *h);
uint64_t hnsw_label(const hnsw *h, uint32_t node);
/* Bytes the graph holds: vectors, links, labels, levels. */
size_t hnsw_bytes(const hnsw *h);
/*
 * Graph files (FORMAT.md, "Graph files"): a 128-byte header (parameters, the
 * caller's 64-bit tag naming the rows the graph was built from, its own
 * CRC-32C), the graph's arrays as they are in memory, and a CRC-32C of them.
 * Derived data like segments: written front to back through the kv's file
 * interface, never synced; hnsw_open checks the header against what the
 * caller expects, the exact size, the checksum, every offset and count, and
 * hnsw_check's invariants, and answers NDB_ECORRUPT naming what failed for a
 * missing, torn, damaged or foreign file (rebuild it), never a crash. The
 * file is mapped, read into the graph's own memory, and unmapped.
 */
#define HNSW_FILE_MAGIC "NDBHNSW" /* 8 bytes with the NUL */
#define HNSW_FILE_VERSION 2u
#define HNSW_FILE_HEADER 128u
struct kv_env;
ndb_status hnsw_write(struct kv_env *fs, const char *path, const hnsw *h, uint64_t tag, ndb_errmsg *msg);
ndb_status hnsw_open(struct kv_env *fs, const char *path, uint32_t dims, uint32_t dpad, ndb_vec_metric metric,
                     uint64_t tag, hnsw **out, ndb_errmsg *msg);

/* NDB_OK, or NDB_ECORRUPT with the first broken invariant in msg. */
ndb_status hnsw_check(const hnsw *h, ndb_errmsg *msg);
/* Nodes not reachable from the entry point at level 0 (UINT32_MAX: out of
 * memory). */
uint32_t hnsw_unreachable(const hnsw *h);

#endif
