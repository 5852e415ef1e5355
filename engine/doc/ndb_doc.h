/*
 * ndb_doc.h — NexaDB's document layer, the public edge.
 *
 * Three parts:
 *   1. The document codec: a builder that writes the compact binary encoding
 *      (engine/doc/FORMAT.md) and a reader that walks it in place, plus JSON
 *      conversion. Filters, updates, projections, sorts and pipelines are
 *      documents in this same encoding.
 *   2. The query language, usable on its own (vector search filters):
 *      ndb_doc_filter_compile / ndb_doc_filter_match.
 *   3. The database: collections of documents over an ndb_kv engine, with
 *      find/count/update/delete, aggregation pipelines and secondary indexes.
 *
 * Thread safety: an ndb_doc_db handle may be used by any number of threads at
 * once. A builder, a compiled filter and a cursor belong to one thread at a
 * time. The reader functions are pure and take no locks.
 *
 * Errors: every fallible call returns an ndb_status; calls that can fail on
 * user input also take an ndb_errmsg (may be NULL) that names the offending
 * part, e.g. "unknown operator $foo at filter.age".
 */
#ifndef NDB_DOC_H
#define NDB_DOC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ndb_interrupt.h"
#include "ndb_status.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------------ limits */

#define NDB_DOC_MAX_BYTES (16u * 1024u * 1024u) /* one encoded document */
#define NDB_DOC_MAX_DEPTH 100                   /* nesting of arrays/objects */
#define NDB_DOC_MAX_ID 512                      /* bytes in an _id string */
#define NDB_DOC_MAX_COLL_NAME 64

/* ------------------------------------------------------------- the reader */

typedef enum ndb_doc_type {
    NDB_DOC_NULL = 1,
    NDB_DOC_BOOL = 2,
    NDB_DOC_INT = 3,    /* a 64-bit integer */
    NDB_DOC_DOUBLE = 4, /* any other number */
    NDB_DOC_STRING = 5, /* UTF-8 bytes, not NUL-terminated */
    NDB_DOC_ARRAY = 6,
    NDB_DOC_OBJECT = 7,
    NDB_DOC_DATE = 8,   /* milliseconds since the Unix epoch, UTC (u.i) */
    NDB_DOC_BINARY = 9, /* bytes with a BSON subtype (u.bin) */
} ndb_doc_type;

/*
 * A view of one encoded value. Every pointer in it is borrowed from the
 * document bytes it was read from and valid as long as they are.
 */
typedef struct ndb_doc_val {
    ndb_doc_type type;
    union {
        int b;      /* NDB_DOC_BOOL: 0 or 1 */
        int64_t i;  /* NDB_DOC_INT, NDB_DOC_DATE */
        double d;   /* NDB_DOC_DOUBLE */
        struct {
            const char *ptr;
            size_t len;
        } s; /* NDB_DOC_STRING */
        struct {
            const uint8_t *ptr;
            size_t len;
            uint8_t subtype; /* BSON's binary subtype: 0 generic, 4 UUID, ... */
        } bin; /* NDB_DOC_BINARY */
        struct {
            const uint8_t *body; /* first element/field */
            size_t len;          /* body bytes */
            uint32_t count;      /* elements/fields */
        } c; /* NDB_DOC_ARRAY, NDB_DOC_OBJECT */
    } u;
    const uint8_t *raw; /* the value's encoding, type tag first */
    size_t raw_len;
} ndb_doc_val;

/*
 * Reads the top-level value of an encoded document (checks the header and the
 * outer bounds only; O(1)). NDB_ECORRUPT on bad bytes.
 */
ndb_status ndb_doc_root(const void *doc, size_t len, ndb_doc_val *out);

/*
 * Checks every byte of an encoded document: header, tags, lengths, counts,
 * UTF-8, nesting depth, size limit. Call it on bytes from an untrusted source.
 * NDB_ECORRUPT (with the offset in msg) on failure.
 */
ndb_status ndb_doc_validate(const void *doc, size_t len, ndb_errmsg *msg);

/* Iterates an object's fields in stored order or an array's elements. */
typedef struct ndb_doc_iter {
    const uint8_t *p, *end;
    uint32_t left;
    int is_object;
    ndb_status st; /* NDB_ECORRUPT if iteration stopped on bad bytes */
} ndb_doc_iter;

/* container must be NDB_DOC_ARRAY or NDB_DOC_OBJECT (else the iterator is empty). */
void ndb_doc_iter_init(ndb_doc_iter *it, const ndb_doc_val *container);
/* 1 and the next field (key/klen are NULL/0 for arrays), or 0 at the end or
 * on corruption (then it->st != NDB_OK). key is borrowed like the value. */
int ndb_doc_iter_next(ndb_doc_iter *it, const char **key, size_t *klen, ndb_doc_val *out);

/* One field of an object by name: NDB_OK, NDB_ENOTFOUND, or NDB_ECORRUPT.
 * Skips other fields without decoding them. */
ndb_status ndb_doc_get_field(const ndb_doc_val *obj, const char *key, size_t klen,
                             ndb_doc_val *out);
/* The i-th array element: NDB_OK, NDB_ENOTFOUND, or NDB_ECORRUPT. */
ndb_status ndb_doc_get_index(const ndb_doc_val *arr, uint32_t i, ndb_doc_val *out);
/*
 * A dotted path ("profile.location", "tags.1") from a value: each component is
 * an object field, or a decimal index into an array. No implicit traversal of
 * arrays of objects (the query matcher does that). NDB_ENOTFOUND if absent.
 */
ndb_status ndb_doc_get_path(const ndb_doc_val *root, const char *path, size_t plen,
                            ndb_doc_val *out);

/* The number as a double (INT or DOUBLE); 0 for other types. */
double ndb_doc_num(const ndb_doc_val *v);

/* ------------------------------------------------------------ the builder */

/*
 * Writes one encoded document. Calls are checked as they come (a key is
 * needed before each object value, containers must balance, depth <=
 * NDB_DOC_MAX_DEPTH, size <= the builder's limit); the first error sticks and
 * is returned by ndb_doc_builder_finish, so callers may chain calls and check
 * once. A builder is reused with ndb_doc_builder_reset, which keeps its
 * buffers (allocation-light). Caller frees with ndb_doc_builder_free().
 */
typedef struct ndb_doc_builder ndb_doc_builder;

ndb_status ndb_doc_builder_new(ndb_doc_builder **out);
void ndb_doc_builder_free(ndb_doc_builder *b);
void ndb_doc_builder_reset(ndb_doc_builder *b);
/* Largest document this builder will produce (default NDB_DOC_MAX_BYTES). */
void ndb_doc_builder_set_limit(ndb_doc_builder *b, size_t max_bytes);

ndb_status ndb_doc_begin_object(ndb_doc_builder *b);
ndb_status ndb_doc_end_object(ndb_doc_builder *b);
ndb_status ndb_doc_begin_array(ndb_doc_builder *b);
ndb_status ndb_doc_end_array(ndb_doc_builder *b);
/* Inside an object, before each value. Bytes are copied. */
ndb_status ndb_doc_key(ndb_doc_builder *b, const char *key, size_t klen);
ndb_status ndb_doc_null(ndb_doc_builder *b);
ndb_status ndb_doc_bool(ndb_doc_builder *b, int v);
/* Any 64-bit integer, stored exactly. */
ndb_status ndb_doc_int(ndb_doc_builder *b, int64_t v);
/* Integral doubles within +-2^53 are stored as integers; NaN is refused. */
ndb_status ndb_doc_double(ndb_doc_builder *b, double v);
ndb_status ndb_doc_string(ndb_doc_builder *b, const char *s, size_t len);
/* A date: milliseconds since 1970-01-01T00:00:00Z (negative before). */
ndb_status ndb_doc_date(ndb_doc_builder *b, int64_t ms);
/* Binary data with BSON's subtype byte; bytes are copied. */
ndb_status ndb_doc_binary(ndb_doc_builder *b, uint8_t subtype, const void *p, size_t len);
/* Copies a value read from another document (any type). */
ndb_status ndb_doc_value(ndb_doc_builder *b, const ndb_doc_val *v);

/*
 * Ends the document: exactly one top-level value must have been written.
 * *doc is borrowed until the next reset/free of the builder.
 */
ndb_status ndb_doc_builder_finish(ndb_doc_builder *b, const void **doc, size_t *len);
/* As finish, but the caller owns *doc and frees it with free(). */
ndb_status ndb_doc_builder_take(ndb_doc_builder *b, void **doc, size_t *len);

/* ------------------------------------------------------------------- JSON */

/* Parses JSON text (any value at the top). On NDB_OK the caller frees *doc
 * with free(). Malformed JSON is NDB_EINVAL with line/column in msg. */
ndb_status ndb_doc_from_json(const char *json, size_t len, void **doc, size_t *doc_len,
                             ndb_errmsg *msg);
/* Writes compact JSON (key order kept, doubles in shortest round-trip form).
 * On NDB_OK *json is NUL-terminated; caller frees it with free(). */
ndb_status ndb_doc_to_json(const void *doc, size_t len, char **json, size_t *json_len);

/* ------------------------------------------------------------------- BSON */

/*
 * Appends a BSON document (bsonspec.org; the gRPC API's wire form) to b as an
 * object value, keeping key order. The bytes are checked as they are read
 * (lengths, UTF-8, nesting <= NDB_DOC_MAX_DEPTH). int32 and int64 become int,
 * datetime a date; a type NexaDB does not store (ObjectId, Decimal128, regex,
 * timestamp, ...) is NDB_EINVAL naming the field and the type.
 */
ndb_status ndb_doc_append_bson(ndb_doc_builder *b, const void *bson, size_t len, ndb_errmsg *msg);
/* An object value as a BSON document: integers within int32 as int32, others
 * as int64. The caller frees *out with free(). NDB_EINVAL if the value is not
 * an object or a key holds a NUL byte (a BSON key cannot). */
ndb_status ndb_doc_to_bson(const ndb_doc_val *obj, uint8_t **out, size_t *out_len);

/* ------------------------------------------------------ values and filters */

/* MongoDB's cross-type order (null < numbers < strings < objects < arrays <
 * binary < bools < dates; numbers compared numerically and exactly, binary
 * by length, then subtype, then bytes). <0, 0, >0. */
int ndb_doc_compare(const ndb_doc_val *a, const ndb_doc_val *b);

/*
 * A compiled query filter ({"age": {"$gt": 25}}, {"$or": [...]}, ...). The
 * filter keeps its own copy of what it needs. A compiled filter belongs to
 * one thread at a time. Caller frees with ndb_doc_filter_free().
 */
typedef struct ndb_doc_filter ndb_doc_filter;

/* filter may be NULL/0 (matches everything). NDB_EINVAL names the bad part. */
ndb_status ndb_doc_filter_compile(const void *filter, size_t len, ndb_doc_filter **out,
                                  ndb_errmsg *msg);
/* 1 if the document matches, 0 if not; a corrupt document never matches.
 * NDB_ELIMIT (negative) when a $regex hit PCRE2's match or heap limit on it
 * (a pattern that backtracks exponentially): that is no answer, not "no". */
int ndb_doc_filter_match(ndb_doc_filter *f, const void *doc, size_t len);
void ndb_doc_filter_free(ndb_doc_filter *f);

/* --------------------------------------------------------------- database */

typedef struct ndb_kv ndb_kv;
typedef struct ndb_kv_snapshot ndb_kv_snapshot;
typedef struct ndb_doc_db ndb_doc_db;
typedef struct ndb_doc_cursor ndb_doc_cursor;

typedef struct ndb_doc_options {
    size_t max_doc_bytes;   /* default NDB_DOC_MAX_BYTES */
    size_t agg_mem_bytes;   /* memory bound of one blocking pipeline stage / sort; default 100 MiB */
    /* Directory for sort and $group spill files beyond agg_mem_bytes (borrowed;
     * must exist, private to the server); NULL: beyond the bound is NDB_ELIMIT.
     * Spill files are unlinked as soon as they are made; ndb_doc_open removes
     * any a crash left. */
    const char *spill_dir;
    /* Log sink for progress (index builds); NULL: stderr. */
    void (*log)(void *ctx, const char *line);
    void *log_ctx;
    /* Keep the change log (change streams, below): every write to a document
     * collection records its changes in the same atomic batch. Off by
     * default; whoever turns it on trims it (ndb_doc_changes_trim). */
    bool change_log;
} ndb_doc_options;

void ndb_doc_options_init(ndb_doc_options *opt);

/*
 * Opens the document layer over kv (borrowed: must outlive the handle; the
 * document layer's catalog hands out every key prefix in it). The handle sees
 * the document collections. Caller closes with ndb_doc_close() after freeing
 * every cursor and transaction.
 */
ndb_status ndb_doc_open(ndb_kv *kv, const ndb_doc_options *opt, ndb_doc_db **out,
                        ndb_errmsg *msg);
void ndb_doc_close(ndb_doc_db *db);

/*
 * Replicated writes (service/, cluster mode): while wall_ms != 0, what db
 * writes takes its times (_created_at, _updated_at, change events' wallTime)
 * from wall_ms, and the ids it generates are <wall_ms in seconds><the low 5
 * bytes of id_prefix><a counter from 0, reset when id_prefix changes>, so
 * nodes that execute the same writes in the same order write the same bytes.
 * wall_ms 0 returns to the system clock and random ids; the counter goes on
 * when the same id_prefix is set again (one log entry's commands, each
 * between a call with wall_ms and one with 0, take distinct ids). Only for a db whose
 * writes all come from the calling thread.
 */
void ndb_doc_set_clock(ndb_doc_db *db, int64_t wall_ms, uint64_t id_prefix);

/*
 * Namespaces. The collections a handle sees are one namespace; a handle on
 * another namespace over the same store sees collections that never meet the
 * first's (one name in two namespaces is two collections, and dropping one
 * leaves the other alone). vector/ keeps the documents of vector collections
 * in NDB_DOC_NS_VECTORS.
 */
typedef enum ndb_doc_ns {
    NDB_DOC_NS_DOCUMENTS = 0, /* what ndb_doc_open's handle sees */
    NDB_DOC_NS_VECTORS = 1,
} ndb_doc_ns;
/* A handle on namespace ns over db's store, with db's options; it shares
 * db's key prefix counter. Caller closes it with ndb_doc_close() before db. */
ndb_status ndb_doc_open_ns(ndb_doc_db *db, ndb_doc_ns ns, ndb_doc_db **out, ndb_errmsg *msg);

/* Collections. Names are [A-Za-z0-9_.-]{1,64}, not starting with '.' (NDB_EINVAL otherwise). */
ndb_status ndb_doc_create_collection(ndb_doc_db *db, const char *name, ndb_errmsg *msg);
ndb_status ndb_doc_drop_collection(ndb_doc_db *db, const char *name, ndb_errmsg *msg);

/*
 * A collection made by a layer above (vector/) keeps that layer's metadata (an
 * encoded object, stored as is in the catalog entry) and up to
 * NDB_DOC_MAX_EXT_PREFIXES kv key prefixes of its own: allocated with the
 * collection, never used by anything else, and every key under them deleted
 * when the collection is dropped. The layer writes those keys through a
 * transaction (ndb_doc_txn_put), so they commit with the documents.
 */
#define NDB_DOC_MAX_EXT_PREFIXES 4
/* NDB_EEXIST if the name is taken in this namespace. */
ndb_status ndb_doc_create_collection_ext(ndb_doc_db *db, const char *name, const void *meta,
                                         size_t meta_len, uint32_t nprefixes, ndb_errmsg *msg);
typedef struct ndb_doc_ext {
    void *meta; /* the metadata given at creation: caller frees with free() */
    size_t meta_len;
    uint32_t nprefixes;
    uint64_t prefix_id[NDB_DOC_MAX_EXT_PREFIXES]; /* unique for the life of the store */
    uint8_t prefix[NDB_DOC_MAX_EXT_PREFIXES][10]; /* the same as key bytes (a varint) */
    uint8_t prefix_len[NDB_DOC_MAX_EXT_PREFIXES];
} ndb_doc_ext;
/* NDB_ENOTFOUND if there is no such collection; NDB_EINVAL if it was not
 * made by ndb_doc_create_collection_ext. */
ndb_status ndb_doc_collection_ext(ndb_doc_db *db, const char *name, ndb_doc_ext *out, ndb_errmsg *msg);

typedef struct ndb_doc_coll_info {
    char name[NDB_DOC_MAX_COLL_NAME + 1];
    uint64_t count; /* documents */
    uint64_t bytes; /* encoded document bytes */
    uint32_t indexes;
} ndb_doc_coll_info;
/* Sorted by name. Caller frees *out with free(). */
ndb_status ndb_doc_list_collections(ndb_doc_db *db, ndb_doc_coll_info **out, size_t *n,
                                    ndb_errmsg *msg);

/*
 * Interrupts. Reads, counts, pipelines and writes take an ndb_interrupt
 * (ndb_interrupt.h; NULL: never interrupted) and stop with NDB_ETIMEDOUT or
 * NDB_ECANCELED (msg says where) within a few milliseconds once it fires:
 * scans check it every NDB_INTERRUPT_EVERY documents examined, $regex
 * matching every few matches, sorts between merge steps. A write so stopped
 * has applied nothing; it checks last just before its kv append, and from
 * there on it completes and returns NDB_OK.
 *
 * $regex: every match runs under PCRE2 limits (backtracking steps, heap);
 * a document on which a pattern exceeds them fails the request with
 * NDB_ELIMIT naming the pattern.
 */

/*
 * Inserts documents (each an encoded object) in one atomic batch, in order; the
 * collection is created on first insert. Each document gets _id (its own
 * string _id if it has one, else a generated 24-hex-char time-ordered id),
 * _created_at and _updated_at (ISO-8601 UTC), in that order before its fields.
 * A duplicate _id or unique-index key fails the whole batch with NDB_EEXIST.
 * On NDB_OK, if ids is non-NULL, *ids is an array of n NUL-terminated ids:
 * caller frees with ndb_doc_ids_free(*ids, n).
 */
ndb_status ndb_doc_insert(ndb_doc_db *db, const char *coll, const void *const *docs,
                          const size_t *lens, size_t n, const ndb_interrupt *intr, char ***ids,
                          ndb_errmsg *msg);
/* ndb_doc_insert for documents made by ndb_doc_builder (finished or taken),
 * which checked every byte as it wrote them: their encoding is not walked
 * again (debug builds assert it is valid). The sizes and the object at the
 * top are still checked. Bytes from anywhere else go to ndb_doc_insert. */
ndb_status ndb_doc_insert_built(ndb_doc_db *db, const char *coll, const void *const *docs,
                                const size_t *lens, size_t n, const ndb_interrupt *intr, char ***ids,
                                ndb_errmsg *msg);
void ndb_doc_ids_free(char **ids, size_t n);

/* One document by _id. Caller frees *doc with free(). NDB_ENOTFOUND if absent. */
ndb_status ndb_doc_get(ndb_doc_db *db, const char *coll, const char *id, size_t idlen,
                       void **doc, size_t *len, ndb_errmsg *msg);
/* As ndb_doc_get, read at snap (NULL: the latest), so that it agrees with
 * other reads at the same snapshot. */
ndb_status ndb_doc_get_at(ndb_doc_db *db, const ndb_kv_snapshot *snap, const char *coll, const char *id,
                          size_t idlen, void **doc, size_t *len, ndb_errmsg *msg);
/* As ndb_doc_get, but NDB_EBUSY instead of waiting for a lock (the catalog
 * while a collection is created or dropped, the key-value engine's; see
 * ndb_kv_try_get). For threads that must not block. */
ndb_status ndb_doc_try_get(ndb_doc_db *db, const char *coll, const char *id, size_t idlen,
                           void **doc, size_t *len, ndb_errmsg *msg);

typedef struct ndb_doc_find_opts {
    const void *filter; size_t filter_len;         /* NULL: everything */
    const void *projection; size_t projection_len; /* {"a":1} or {"a":0}; NULL: whole doc */
    const void *sort; size_t sort_len;             /* {"a":1,"b":-1}; NULL: _id order */
    uint64_t skip;                                 /* ignored when resuming from a page token */
    uint64_t limit;                                /* 0: no limit; with a token: this page's size */
    const void *page_token; size_t page_token_len; /* from ndb_doc_cursor_page_token */
    const char *hint;                              /* index name to force, "_id" for a scan */
    const ndb_kv_snapshot *snapshot;               /* read view (borrowed until the cursor is freed); NULL: a new one */
    const ndb_interrupt *interrupt;                /* borrowed until the cursor is freed; NULL: none */
} ndb_doc_find_opts;

/* A streaming cursor over one snapshot. Caller frees with ndb_doc_cursor_free().
 * A collection that does not exist yields no documents (not an error). */
ndb_status ndb_doc_find(ndb_doc_db *db, const char *coll, const ndb_doc_find_opts *opts,
                        ndb_doc_cursor **out, ndb_errmsg *msg);
/*
 * The next document: NDB_OK with *doc set, or NDB_OK with *doc == NULL at the
 * end. *doc is borrowed until the next call on the cursor.
 */
ndb_status ndb_doc_cursor_next(ndb_doc_cursor *c, const void **doc, size_t *len,
                               ndb_errmsg *msg);
/*
 * An opaque token that resumes this find after the last document returned
 * (aggregation cursors give none)
 * (pass it back in ndb_doc_find_opts.page_token with the same filter/sort).
 * Caller frees *tok with free(). *len is 0 when the cursor is exhausted.
 */
ndb_status ndb_doc_cursor_page_token(ndb_doc_cursor *c, void **tok, size_t *len);

typedef struct ndb_doc_explain {
    char plan[160];       /* "COLLSCAN", "IXSCAN age_1", "IDHACK", "SORT", ... */
    char index[128];      /* index used, "" if none */
    uint64_t keys_examined;
    uint64_t docs_examined;
    uint64_t returned;
    int in_memory_sort;
    uint64_t spilled_bytes; /* written to spill files by sorts beyond agg_mem_bytes */
} ndb_doc_explain;
/* The plan and counters so far (complete once the cursor is exhausted). */
void ndb_doc_cursor_explain(const ndb_doc_cursor *c, ndb_doc_explain *out);
void ndb_doc_cursor_free(ndb_doc_cursor *c);

/* First match of a find (opts may carry sort/projection/skip). NDB_ENOTFOUND
 * if none. Caller frees *doc with free(). */
ndb_status ndb_doc_find_one(ndb_doc_db *db, const char *coll, const ndb_doc_find_opts *opts,
                            void **doc, size_t *len, ndb_errmsg *msg);
ndb_status ndb_doc_count(ndb_doc_db *db, const char *coll, const void *filter, size_t len,
                         const ndb_interrupt *intr, uint64_t *out, ndb_errmsg *msg);

/*
 * Updates one document by _id. update is either a merge document (the brief's
 * update(id, {"age": 29}): top-level fields replaced or added) or an operator
 * document ($set $unset $inc $mul $min $max $rename $push $pull $addToSet).
 * _updated_at is refreshed; _id and _created_at never change.
 * NDB_ENOTFOUND if there is no such document.
 */
ndb_status ndb_doc_update(ndb_doc_db *db, const char *coll, const char *id, size_t idlen,
                          const void *update, size_t len, const ndb_interrupt *intr, ndb_errmsg *msg);

typedef struct ndb_doc_update_result {
    uint64_t matched;
    uint64_t modified;
    char upserted_id[NDB_DOC_MAX_ID + 1]; /* "" unless an upsert inserted */
} ndb_doc_update_result;
/* Every match of filter, in one atomic batch. With upsert and no match, inserts
 * the filter's equality fields with the update applied. Interrupted, it has
 * updated nothing. */
ndb_status ndb_doc_update_many(ndb_doc_db *db, const char *coll, const void *filter,
                               size_t flen, const void *update, size_t ulen, int upsert,
                               const ndb_interrupt *intr, ndb_doc_update_result *res, ndb_errmsg *msg);

/* NDB_ENOTFOUND if there is no such document. */
ndb_status ndb_doc_delete(ndb_doc_db *db, const char *coll, const char *id, size_t idlen,
                          const ndb_interrupt *intr, ndb_errmsg *msg);
/* In one atomic batch; interrupted, it has deleted nothing. */
ndb_status ndb_doc_delete_many(ndb_doc_db *db, const char *coll, const void *filter,
                               size_t flen, const ndb_interrupt *intr, uint64_t *deleted, ndb_errmsg *msg);

/*
 * Transactions on one collection, for a layer above that writes documents
 * together with keys of its own (vector/: a document and its vector). begin
 * takes the collection's writer lock, which serialises its writers until end;
 * the operations build one kv batch; commit writes it atomically (all or
 * nothing across a crash) and end releases the lock. Checks (duplicate _id,
 * unique indexes) see the committed state and this transaction's inserts.
 * A transaction belongs to one thread. Caller ends it with ndb_doc_txn_end().
 */
typedef struct ndb_doc_txn ndb_doc_txn;
/* NDB_ENOTFOUND if the collection does not exist. intr (borrowed until end;
 * NULL: none) is checked by commit, which then writes nothing. */
ndb_status ndb_doc_txn_begin(ndb_doc_db *db, const char *coll, const ndb_interrupt *intr, ndb_doc_txn **out,
                             ndb_errmsg *msg);
/* Inserts doc (an encoded object) as ndb_doc_insert does one document; id
 * (NDB_DOC_MAX_ID + 1 bytes) receives its _id, NUL-terminated. */
ndb_status ndb_doc_txn_insert(ndb_doc_txn *t, const void *doc, size_t len, char *id, ndb_errmsg *msg);
/* ndb_doc_txn_insert for a caller that keeps its own index of the
 * collection's ids and checks the returned _id against it before committing:
 * the stored documents are not looked up, so the transaction need not wait
 * for the collection's earlier commits to be durable (a duplicate within the
 * transaction is still refused). */
ndb_status ndb_doc_txn_insert_new(ndb_doc_txn *t, const void *doc, size_t len, char *id, ndb_errmsg *msg);
/* The document with this _id becomes doc (whose own _id, if any, must equal
 * id): its fields in order after _id, _created_at (kept when it existed) and
 * _updated_at. *inserted (may be NULL): 1 if there was none. */
ndb_status ndb_doc_txn_replace(ndb_doc_txn *t, const char *id, size_t idlen, const void *doc, size_t len,
                               int *inserted, ndb_errmsg *msg);
/* NDB_ENOTFOUND if there is no such document. */
ndb_status ndb_doc_txn_delete(ndb_doc_txn *t, const char *id, size_t idlen, ndb_errmsg *msg);
/* ndb_doc_find as of the collection's latest state: once its earlier
 * writers' batches are durable (so visible), which nothing can change until
 * the transaction ends. For a delete of what matches a filter. */
ndb_status ndb_doc_txn_find(ndb_doc_txn *t, const ndb_doc_find_opts *opts, ndb_doc_cursor **out, ndb_errmsg *msg);
/* Keys of the caller's own (under its ndb_doc_ext prefixes), in the same batch. */
ndb_status ndb_doc_txn_put(ndb_doc_txn *t, const void *key, size_t klen, const void *val, size_t vlen);
ndb_status ndb_doc_txn_del(ndb_doc_txn *t, const void *key, size_t klen);
/* Replaces the metadata the layer above gave ndb_doc_create_collection_ext
 * (an encoded object, copied), in the same batch: ndb_doc_collection_ext
 * returns it once the commit is done. NDB_EINVAL for a collection without
 * such metadata or a meta that is not an encoded object. */
ndb_status ndb_doc_txn_set_meta(ndb_doc_txn *t, const void *meta, size_t len, ndb_errmsg *msg);
/* Writes the batch (one WAL record) and makes it the collection's latest
 * state for its next writers; it is durable, and visible to readers, once
 * ndb_doc_txn_end returns NDB_OK. At most once. */
ndb_status ndb_doc_txn_commit(ndb_doc_txn *t, ndb_errmsg *msg);
/* Releases the writer lock (what was not committed is discarded), then, after
 * a commit, waits until it is durable: the collection's next writer appends
 * meanwhile and shares the fsync. NDB_OK, or the commit's I/O error (the
 * commit is then not acknowledged; the engine refuses writes until reopened).
 * Frees t; NULL is a no-op. */
ndb_status ndb_doc_txn_end(ndb_doc_txn *t, ndb_errmsg *msg);

/*
 * Runs an aggregation pipeline (an encoded array of stage objects). Results
 * stream through the cursor; blocking stages ($group, $sort) refuse with
 * NDB_ELIMIT beyond ndb_doc_options.agg_mem_bytes.
 */
ndb_status ndb_doc_aggregate(ndb_doc_db *db, const char *coll, const void *pipeline,
                             size_t len, const ndb_interrupt *intr, ndb_doc_cursor **out, ndb_errmsg *msg);

/* How an index behaves beyond ordering its keys. Zero: neither. */
typedef struct ndb_doc_index_opts {
    int unique;
    /* A TTL index (MongoDB's expireAfterSeconds): one field; documents whose
     * field is a date (or an array holding one) more than
     * expire_after_seconds (0 .. NDB_DOC_MAX_TTL) before now are deleted by
     * ndb_doc_expire. Documents whose field is missing or holds no date
     * never expire. */
    int ttl;
    int64_t expire_after_seconds;
} ndb_doc_index_opts;

#define NDB_DOC_MAX_TTL (INT64_C(100) * 365 * 86400) /* a century, in seconds */

/*
 * Secondary indexes. spec is an encoded object {"field": 1, "other": -1}
 * (compound, in order); name NULL derives "field_1_other_-1". opts NULL: a
 * plain index. Existing documents are indexed before the call returns
 * (progress in the log and ndb_doc_build_stats_get); with a spill directory,
 * writes to the collection go on meanwhile (engine/doc/README.md, "Index
 * builds"). NDB_EEXIST if the name is taken or, for a unique index, if
 * documents collide.
 */
ndb_status ndb_doc_create_index(ndb_doc_db *db, const char *coll, const char *name,
                                const void *spec, size_t len, const ndb_doc_index_opts *opts, ndb_errmsg *msg);
ndb_status ndb_doc_drop_index(ndb_doc_db *db, const char *coll, const char *name,
                              ndb_errmsg *msg);

/* Index builds of every namespace over this kv store, for /metrics: the
 * running ones' documents (read from their snapshot, and in it) and entries
 * (sorted or written), and the builds ended since open. */
typedef struct ndb_doc_build_stats {
    uint64_t running;
    uint64_t docs_done, docs_total, entries;
    uint64_t ok, failed;
} ndb_doc_build_stats;
void ndb_doc_build_stats_get(ndb_doc_db *db, ndb_doc_build_stats *out);

typedef struct ndb_doc_index_info {
    char name[128];
    char fields[256]; /* "age:1,city:-1" */
    int unique;
    int multikey;
    int ttl;                      /* a TTL index: expire_after_seconds is set */
    int64_t expire_after_seconds;
} ndb_doc_index_info;
/* Caller frees *out with free(). */
ndb_status ndb_doc_list_indexes(ndb_doc_db *db, const char *coll, ndb_doc_index_info **out,
                                size_t *n, ndb_errmsg *msg);

/*
 * One pass of TTL expiry: for every TTL index of every collection, deletes
 * the documents whose indexed date is more than its expire_after_seconds
 * before now_ms (milliseconds since the epoch), in batches of at most batch
 * documents, each batch one atomic write that checks the condition again
 * (a document updated meanwhile is not deleted). Stops after max documents in
 * all (0: no limit). *deleted (may be NULL) receives the count. A collection
 * dropped meanwhile is skipped.
 */
ndb_status ndb_doc_expire(ndb_doc_db *db, int64_t now_ms, uint32_t batch, uint64_t max, uint64_t *deleted,
                          ndb_errmsg *msg);
/* How a layer above deletes one batch of what a TTL index expires (vector/:
 * documents with their vectors): at most limit documents of coll matching
 * filter (found through the index named), each checked again as it is when
 * deleted; *n receives the count. */
typedef ndb_status (*ndb_doc_expire_fn)(void *arg, const char *coll, const char *index, const void *filter,
                                        size_t flen, uint32_t limit, uint64_t *n, ndb_errmsg *msg);
/* ndb_doc_expire with each batch deleted by fn(arg, ...). */
ndb_status ndb_doc_expire_by(ndb_doc_db *db, int64_t now_ms, uint32_t batch, uint64_t max, ndb_doc_expire_fn fn,
                             void *arg, uint64_t *deleted, ndb_errmsg *msg);

/* ---------------------------------------------------------- change streams */

/*
 * The change log (ndb_doc_options.change_log; document collections only):
 * each write request appends records of what it changed — insert (the
 * stored document), update (the update description), replace (the stored
 * document), delete, drop — in the same kv batch as the change, keyed by a
 * sequence number given in commit order. A watch reads them back as
 * MongoDB-shaped change events, only once committed (visible in the kv: in
 * NDB_KV_SYNC mode, durable), in commit order, each with a resume token; a
 * watch opened after a token delivers every later event exactly once, also
 * after a restart, while the log still holds it (trimmed by age and size).
 */

/* A resume token: a version byte, the record's sequence number and the
 * event's index in it. Clients see it as 26 lowercase hex digits. */
#define NDB_DOC_TOKEN_LEN 13

typedef struct ndb_doc_watch ndb_doc_watch;

typedef struct ndb_doc_watch_opts {
    const char *collection; /* NULL: every document collection */
    /* An encoded array of $match, $project, $addFields, $set, $unset,
     * $replaceRoot and $replaceWith stages applied to each event; NULL: none. */
    const void *pipeline;
    size_t pipeline_len;
    /* A token from an event (or ndb_doc_watch_token): start after it. NULL:
     * start after the last event committed at open. */
    const void *resume_after;
    size_t resume_len;
    /* Update events also carry fullDocument: the document as it is when the
     * event is read (null once deleted), as MongoDB's "updateLookup". */
    bool update_lookup;
} ndb_doc_watch_opts;

/* NDB_EINVAL for a bad pipeline or token, NDB_EUNIMPL without a change log,
 * NDB_ERANGE when the log no longer holds the events after the token. The
 * caller frees the watch with ndb_doc_watch_close() before ndb_doc_close(). */
ndb_status ndb_doc_watch_open(ndb_doc_db *db, const ndb_doc_watch_opts *o, ndb_doc_watch **out, ndb_errmsg *msg);
/*
 * The next event that passes the pipeline, waiting at most wait_ns for one
 * to commit: NDB_OK with the encoded event in *ev and *len (borrowed until the
 * next call), NDB_ETIMEDOUT when none came (wait_ns 0: none is committed
 * now), NDB_ECLOSED after a watched collection's drop and the "invalidate"
 * event that follows it, NDB_ERANGE when the log was trimmed past the watch
 * (it fell behind the retention).
 */
ndb_status ndb_doc_watch_next(ndb_doc_watch *w, int64_t wait_ns, const void **ev, size_t *len, ndb_errmsg *msg);
/* Where the watch stands: after the last event returned, or later when
 * events the pipeline dropped came after it (a token to resume from). */
void ndb_doc_watch_token(const ndb_doc_watch *w, uint8_t tok[NDB_DOC_TOKEN_LEN]);
void ndb_doc_watch_close(ndb_doc_watch *w);

typedef struct ndb_doc_changes_info {
    uint64_t first_seq; /* the oldest record kept */
    uint64_t next_seq;  /* the next record's sequence number */
    uint64_t bytes;     /* the records' encoded bytes */
    uint32_t watchers;  /* watches open */
} ndb_doc_changes_info;
void ndb_doc_changes_info_get(ndb_doc_db *db, ndb_doc_changes_info *out);

/*
 * Deletes the oldest records while they are older than keep_ms before now_ms
 * or the log holds more than keep_bytes (0: no bound of that kind), at most
 * max records, in one atomic batch; *trimmed (may be NULL) gets the count. A
 * watch standing before them then fails with NDB_ERANGE.
 */
ndb_status ndb_doc_changes_trim(ndb_doc_db *db, int64_t now_ms, int64_t keep_ms, uint64_t keep_bytes,
                                uint32_t max, uint64_t *trimmed, ndb_errmsg *msg);

#ifdef __cplusplus
}
#endif

#endif /* NDB_DOC_H */
