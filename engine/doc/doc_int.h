/*
 * doc_int.h — internals shared by engine/doc's modules (not a public API).
 *
 * Modules and prefixes: codec.c (cod_), json.c, value.c (val_, key encoding
 * kenc_), filter.c (flt_), update.c (upd_), shape.c (projection prj_, sort
 * srt_), agg.c (agg_), index.c (idx_), and the database: catalog.c (cat_, key_),
 * write.c (wctx_), cursor.c (cur_), ixbuild.c.
 */
#ifndef NDB_DOC_INT_H
#define NDB_DOC_INT_H

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "ndb_coding.h"
#include "ndb_doc.h"

/* ---- encoding constants (FORMAT.md) */
#define DOC_HDR 0xD1 /* high nibble: magic 0xD; low nibble: format version 1 */
enum {
    TAG_NULL = 0x01,
    TAG_FALSE = 0x02,
    TAG_TRUE = 0x03,
    TAG_INT = 0x04,
    TAG_DOUBLE = 0x05,
    TAG_STRING = 0x06,
    TAG_ARRAY = 0x07,
    TAG_OBJECT = 0x08,
    TAG_DATE = 0x09,
    TAG_BINARY = 0x0A,
};
/* Doubles integral within +-DOC_INT_MAX are stored as TAG_INT (FORMAT.md). */
#define DOC_INT_MAX ((int64_t)1 << 53)

/* ---- a growable byte buffer. Owner frees data with free(). */
typedef struct dbuf {
    uint8_t *data;
    size_t len, cap;
    bool oom; /* sticky: an append failed */
} dbuf;

bool dbuf_reserve(dbuf *b, size_t extra);
static inline bool dbuf_put(dbuf *b, const void *p, size_t n)
{
    if (b->cap - b->len < n && !dbuf_reserve(b, n))
        return false;
    if (n)
        memcpy(b->data + b->len, p, n);
    b->len += n;
    return true;
}
static inline bool dbuf_byte(dbuf *b, uint8_t c) { return dbuf_put(b, &c, 1); }

/* Whether the kl bytes at k are the C string s (an operator or field name). */
static inline bool key_is(const char *k, size_t kl, const char *s) { return kl == strlen(s) && memcmp(k, s, kl) == 0; }
bool dbuf_varint_slow(dbuf *b, uint64_t v);
static inline bool dbuf_varint(dbuf *b, uint64_t v)
{
    if (v >= 0x80 || b->cap == b->len)
        return dbuf_varint_slow(b, v);
    b->data[b->len++] = (uint8_t)v; /* most lengths and counts are one byte */
    return true;
}
void dbuf_free(dbuf *b);

/* ---- integers: engine/ndb_coding.h's, under the names this layer uses */
static inline const uint8_t *varint_get(const uint8_t *p, const uint8_t *end, uint64_t *v, int maxbytes)
{
    return ndb_varint_get(p, end, v, maxbytes);
}
static inline uint32_t rd32(const uint8_t *p) { return ndb_get_le32(p); }
static inline void wr32(uint8_t *p, uint32_t v) { ndb_put_le32(p, v); }
static inline uint64_t rd64(const uint8_t *p) { return ndb_get_le64(p); }
static inline void wr64(uint8_t *p, uint64_t v) { ndb_put_le64(p, v); }

/* Reads one value at p (bounded by end) into *out; returns the byte after it,
 * or NULL on corrupt bytes. O(1): containers are skipped by their length. */
const uint8_t *cod_read(const uint8_t *p, const uint8_t *end, ndb_doc_val *out);
bool cod_utf8_ok(const uint8_t *s, size_t n);

/* An encoded standalone value (header + value) for a scalar: used to build
 * constants. buf must hold 32 bytes; strings not supported. */
static inline bool val_is_num(const ndb_doc_val *v)
{
    return v->type == NDB_DOC_INT || v->type == NDB_DOC_DOUBLE;
}
/* Canonical type order rank (MongoDB's): missing/null 1, numbers 2, string 3,
 * object 4, array 5, binary 6, bool 7, date 8. */
int val_rank(ndb_doc_type t);
/* Equality used by $eq/$in/$addToSet/$group keys: numbers numerically. */
bool val_equal(const ndb_doc_val *a, const ndb_doc_val *b);
/* Compares two numbers numerically (exact for int vs double). */
int val_numcmp(const ndb_doc_val *a, const ndb_doc_val *b);
/* Hash consistent with val_equal. */
uint64_t val_hash(const ndb_doc_val *v);
/* Appends v to the builder normalised so that val_equal values encode equal
 * (a double equal to a 64-bit integer becomes that integer). */
ndb_status val_emit_norm(ndb_doc_builder *b, const ndb_doc_val *v);

/* Order-preserving key encoding (FORMAT.md "Index keys"): memcmp order of the
 * encodings equals ndb_doc_compare order for scalars. desc inverts bytes. */
bool kenc_value(dbuf *out, const ndb_doc_val *v, bool desc);
bool kenc_null(dbuf *out, bool desc);
/* Key-encoding type-bracket bounds: the first byte of every number key, etc. */
enum {
    KT_NULL = 0x05, KT_NUM = 0x10, KT_STR = 0x20, KT_OBJ = 0x30, KT_ARR = 0x40, KT_BIN = 0x48,
    KT_BOOL = 0x50, KT_DATE = 0x60
};
/* The index key encoding's version (FORMAT.md); older indexes are rebuilt at open. */
#define KENC_VERSION 2
/* Skips one key-encoded value (ascending or descending); NULL on bad bytes. */
const uint8_t *kenc_skip(const uint8_t *p, const uint8_t *end, bool desc);

/* Builder internals used by other modules. */
size_t cod_builder_len(const ndb_doc_builder *b);
int cod_builder_depth(const ndb_doc_builder *b);
/* Appends count fields copied whole (key and value bytes, as an object body
 * holds them) from [p, p + len) of a validated top-level object to the
 * top-level object being built: one copy, no checks of the bytes. */
ndb_status cod_builder_fields(ndb_doc_builder *b, const uint8_t *p, size_t len, uint32_t count);

/* Split a dotted path into components (borrowed from path). */
#define PATH_MAX_COMP 32
typedef struct dpath {
    int n;
    const char *c[PATH_MAX_COMP];
    size_t l[PATH_MAX_COMP];
} dpath;
/* NDB_EINVAL on an empty component, a leading '$' or too many components. */
ndb_status path_split(const char *p, size_t len, dpath *out);
/* Component as an array index (decimal, no sign, no leading zeros); -1 if not. */
int64_t path_index(const char *c, size_t l);

/*
 * The one walk of a dotted path through a document, MongoDB's way, which the
 * matcher, sort keys and index keys share: a step into an object takes the
 * field; a step into an array takes the element at a numeric component and
 * goes on into every element that is an object; leaf() gets each value at
 * the path's end (an array there whole: the caller decides about its
 * elements), or NULL where the path is missing (a missing field, a scalar in
 * the way, an array with neither the index nor an object element).
 * in_array: an array was crossed on the way. leaf() returns true to stop;
 * path_walk then returns true too.
 */
typedef bool (*path_leaf)(void *ctx, const ndb_doc_val *v, bool in_array);
bool path_walk(const ndb_doc_val *v, const dpath *p, int i, bool in_array, path_leaf leaf, void *ctx);
/* Writes obj to b with the value at p (from component i) replaced by v, or
 * the field left out when v is NULL; objects along the path are descended,
 * anything else is left as it is ($unwind). */
void doc_replace_path(const ndb_doc_val *obj, const dpath *p, int i, const ndb_doc_val *v, ndb_doc_builder *b);
/* Writes obj to b with the value at p (from component i) set to v: objects
 * along the way descended, missing ones created, a scalar in the way
 * replaced, an array applying the rest of the path to each of its objects
 * ($addFields with a dotted name). */
ndb_status doc_set_path(const ndb_doc_val *obj, const dpath *p, int i, const ndb_doc_val *v, ndb_doc_builder *b);
/* doc_set_path of a top-level field (the key borrowed): replaced in place, or appended. */
ndb_status doc_set_top(const ndb_doc_val *obj, const char *key, size_t klen, const ndb_doc_val *v,
                       ndb_doc_builder *b);

/* Reads a value's root from a stored document, treating corruption as absent. */
static inline bool doc_root_obj(const void *doc, size_t len, ndb_doc_val *out)
{
    return ndb_doc_root(doc, len, out) == NDB_OK && out->type == NDB_DOC_OBJECT;
}

/* Scalars as standalone values (for constants in tests and ops). */
void val_make_int(ndb_doc_val *v, uint8_t *store, int64_t i);
void val_make_double(ndb_doc_val *v, uint8_t *store, double d);
void val_make_null(ndb_doc_val *v, uint8_t *store);

/* JSON writer of one value (used by ndb_doc_to_json and error messages). */
bool json_write_val(dbuf *out, const ndb_doc_val *v, int depth);

/* ---- dates (date.c): milliseconds since the Unix epoch, UTC */
typedef struct date_parts {
    int64_t year;
    int month, day, hour, minute, second, ms; /* month 1..12, day 1..31 */
    int wday;                                 /* 0 Sunday .. 6 Saturday */
    int yday;                                 /* 0..365 */
} date_parts;
#define DATE_ISO_MAX 40
void date_civil(int64_t ms, date_parts *out);
/* "YYYY-MM-DDTHH:MM:SS.mmmZ"; its length, 0 if it did not fit. */
size_t date_format_iso(int64_t ms, char out[DATE_ISO_MAX]);
/* ISO-8601: a date, or a date-time with Z or a +-HH:MM offset, seconds and
 * fractions optional (fractions beyond milliseconds truncated). */
bool date_parse_iso(const char *s, size_t n, int64_t *ms);
/* A short printable rendering of a value for messages ("{...}" beyond n). */
void val_brief(const ndb_doc_val *v, char *out, size_t n);

/* ---- compiled filters (filter.c); the planner reads this tree. */
typedef enum flt_op {
    OP_EQ, OP_NE, OP_GT, OP_GTE, OP_LT, OP_LTE, OP_IN, OP_NIN, OP_EXISTS, OP_REGEX,
    OP_ALL, OP_ELEMMATCH, OP_SIZE, OP_TYPE, OP_NOT, OP_MOD,
} flt_op;

typedef struct flt_node flt_node;

/* A filter's state while it matches; its $regex conditions point at it. */
typedef struct flt_run {
    const ndb_interrupt *intr;  /* checked every FLT_REGEX_CHECK_EVERY regex matches; NULL: never */
    uint32_t tick;
    ndb_status st;              /* the first failure: NDB_ELIMIT, or the interrupt's status */
    int pcre_rc;                /* PCRE2's error for NDB_ELIMIT */
    const ndb_doc_val *pattern; /* the $regex that failed */
    ndb_errmsg expr_msg;        /* a $expr that failed (st NDB_EINVAL): why */
    struct pcre2_real_match_context_8 *mctx; /* the match limits, shared by the filter's regexes */
} flt_run;

typedef struct flt_pred {
    flt_op op;
    ndb_doc_val arg;        /* borrowed from the filter's own copy */
    struct pcre2_real_code_8 *re;
    struct pcre2_real_match_data_8 *md;
    flt_run *run;           /* $regex: the filter's run state */
    flt_node *sub;          /* $elemMatch in document form */
    struct flt_pred *inner; /* $not, and $elemMatch in value form */
    int ninner;
    uint32_t type_mask;     /* $type: bit per ndb_doc_type */
    int64_t size;           /* $size */
    int64_t mod[2];         /* $mod: divisor, remainder */
    bool exists;            /* $exists */
} flt_pred;

typedef enum flt_kind { FN_AND, FN_OR, FN_NOR, FN_FIELD, FN_EXPR } flt_kind;
struct flt_node {
    flt_kind kind;
    struct expr *ex;  /* FN_EXPR: an aggregation expression, true when truthy */
    flt_run *run;     /* FN_EXPR: where an evaluation failure is kept */
    flt_node **kids;
    int nkids;
    dpath path;       /* FN_FIELD: components borrowed from the filter copy */
    flt_pred *preds;  /* FN_FIELD: all must hold */
    int npreds;
};

struct ndb_doc_filter {
    uint8_t *bytes; /* owned copy of the filter document */
    size_t len;
    flt_node *root; /* NULL: match everything */
    flt_run run;
};

/*
 * $regex bounds: PCRE2's match limit (backtracking steps; about 2 ms of JIT
 * matching on this machine kind) and heap limit (KiB) for one match. A match
 * over a limit fails the whole request with NDB_ELIMIT naming the pattern;
 * it never counts as "no match".
 */
#define FLT_REGEX_MATCH_LIMIT 1000000u
#define FLT_REGEX_DEPTH_LIMIT 1000000u
#define FLT_REGEX_HEAP_LIMIT_KIB (64u * 1024u)
/* Regex matches between two interrupt checks: each may take up to the match
 * limit, so they are checked more often than rows. */
#define FLT_REGEX_CHECK_EVERY 8

/* Makes the filter's $regex matching check intr (borrowed for as long as the
 * filter matches; NULL: never) and clears a previous failure. */
void flt_set_interrupt(ndb_doc_filter *f, const ndb_interrupt *intr);
/* Matches a value (an object) as the document root: 1, 0, or a failure
 * (a $regex over its limit: NDB_ELIMIT; the interrupt: NDB_ETIMEDOUT or
 * NDB_ECANCELED), with msg set. A failed filter keeps failing until
 * flt_set_interrupt. */
int flt_match(ndb_doc_filter *f, const ndb_doc_val *root, ndb_errmsg *msg);
/* Compiles a filter given as a value inside some document, borrowing it
 * (the caller keeps the bytes alive as long as the filter). ctx names the
 * location for errors ("filter", "$pull.tags"). */
ndb_status flt_compile_val(const ndb_doc_val *v, const char *ctx, ndb_doc_filter **out,
                           ndb_errmsg *msg);
/* Compiles the operator object or literal for one field ({"$gt":5} or 5)
 * into preds that test a single value (used by $pull). */
ndb_status flt_compile_value_cond(const ndb_doc_val *v, const char *ctx, ndb_doc_filter **out,
                                  ndb_errmsg *msg);
/* Tests a single value against a filter made by flt_compile_value_cond:
 * 1, 0, or a failure as flt_match's. */
int flt_match_value_cond(ndb_doc_filter *f, const ndb_doc_val *v, ndb_errmsg *msg);

/* ---- updates (update.c) */
typedef struct upd_spec upd_spec;
/* Compiles a merge document or an operator document. The spec borrows v's
 * bytes: keep them alive as long as the spec. Caller frees with upd_free(). */
ndb_status upd_compile(const ndb_doc_val *v, upd_spec **out, ndb_errmsg *msg);
void upd_free(upd_spec *u);
bool upd_is_merge(const upd_spec *u);
/*
 * Applies u to doc (an object) and writes the new document into out (reset
 * first). inserting: apply $setOnInsert too. *changed: the result differs.
 * NDB_EINVAL with msg when an operator cannot apply (e.g. $inc on a string).
 */
ndb_status upd_apply(upd_spec *u, const ndb_doc_val *doc, bool inserting, ndb_doc_builder *out,
                     bool *changed, ndb_errmsg *msg);


/* ---- projection and sort (shape.c) */
typedef struct prj_spec prj_spec;
/* {"a":1,"b.c":1} (inclusion, _id kept unless "_id":0) or {"a":0} (exclusion).
 * Borrows v's bytes. Caller frees with prj_free(). */
ndb_status prj_compile(const ndb_doc_val *v, prj_spec **out, ndb_errmsg *msg);
void prj_free(prj_spec *p);
/* Writes the projected document into out (appends one object value). */
ndb_status prj_apply(const prj_spec *p, const ndb_doc_val *doc, ndb_doc_builder *out);
/* Whether p keeps _id and nothing else ({"_id": 1}). */
bool prj_id_only(const prj_spec *p);

typedef struct srt_key {
    dpath path;
    bool desc;
} srt_key;
typedef struct srt_spec {
    int n;
    srt_key k[PATH_MAX_COMP];
} srt_spec;
/* {"a":1,"b":-1}. Borrows v's bytes. */
ndb_status srt_compile(const ndb_doc_val *v, srt_spec *out, ndb_errmsg *msg);
/* Appends doc's sort key (memcmp order = requested order) to out. */
bool srt_key_of(const srt_spec *s, const ndb_doc_val *doc, dbuf *out);

/* ---- secondary indexes (index.c) */
typedef struct idx_def {
    char name[128];
    uint64_t prefix;         /* key prefix id of its entries */
    int nfields;
    char field[PATH_MAX_COMP][128]; /* owned path strings */
    dpath path[PATH_MAX_COMP];      /* split from field[] */
    bool desc[PATH_MAX_COMP];
    bool unique;
    bool ttl;                /* a TTL index (one field): expire_s is set */
    int64_t expire_s;
    bool multikey;           /* some document indexed more than one value */
    int kver;                /* key encoding version of its entries (KENC_VERSION) */
} idx_def;

/* An immutable set of a collection's indexes, shared by readers (refcounted). */
typedef struct idx_set {
    int refs;   /* atomic */
    int n;
    idx_def *defs;
} idx_set;

void idx_set_ref(idx_set *s);
void idx_set_unref(idx_set *s);

/* Appends varint(prefix) to out. */
bool key_prefix(dbuf *out, uint64_t prefix);

/* The index keys of one document: each entry is a complete kv key (with the
 * index prefix; non-unique entries end with the id). Entries are deduplicated.
 * *multi: some field produced several values. NDB_EINVAL if two fields are
 * arrays ("parallel arrays"). */
typedef struct idx_keys {
    dbuf buf;          /* concatenated keys */
    size_t off[1025];  /* start of each key in buf; off[n] == buf.len */
    int n;
    void *scratch;     /* owned working memory */
} idx_keys;
/* idx_keys are calloc'd by the caller; free with idx_keys_free. */
void idx_keys_free(idx_keys *k);
ndb_status idx_doc_keys(const idx_def *d, const ndb_doc_val *doc, const char *id, size_t idlen,
                        idx_keys *out, bool *multi, ndb_errmsg *msg);

/* A query plan. */
typedef enum plan_kind { PLAN_COLLSCAN, PLAN_IDHACK, PLAN_IXSCAN } plan_kind;
typedef struct plan_range {
    dbuf lo, hi; /* [lo, hi) */
} plan_range;
typedef struct plan {
    plan_kind kind;
    const idx_def *idx;    /* PLAN_IXSCAN; borrowed from an idx_set the caller holds */
    int nranges;
    plan_range *ranges;    /* ascending order */
    bool reverse;          /* walk ranges and keys backwards (descending sort) */
    bool sort_covered;     /* the scan order is the requested sort */
    bool exact;            /* the key ranges match exactly the filter's documents */
    ndb_doc_val id;        /* PLAN_IDHACK: the _id value */
} plan;
/* Chooses a plan for filter f and sort s over set (may be NULL). hint: an index
 * name to force, "_id" for a collection scan, NULL to choose. */
ndb_status plan_choose(const ndb_doc_filter *f, const srt_spec *s, const idx_set *set,
                       const char *hint, plan *out, ndb_errmsg *msg);
void plan_free(plan *p);
/* Extracts the id from an index entry (key, value). */
bool idx_entry_id(const idx_def *d, const uint8_t *key, size_t klen, const uint8_t *val,
                  size_t vlen, const uint8_t **id, size_t *idlen);

/* ---- a byte-string -> uint64 hash map (bmap.c). Keys are copied into the
 * map's arena. Not thread-safe. */
typedef struct bmap {
    struct bmap_slot *slots;
    size_t cap, n;
    dbuf keys;
} bmap;
/* Returns the slot value pointer for key, inserting it with *val = init if
 * absent (*inserted says which); NULL on out of memory. Pointers into the map
 * are valid until the next insert. */
uint64_t *bmap_upsert(bmap *m, const void *key, size_t klen, uint64_t init, bool *inserted);
uint64_t *bmap_find(const bmap *m, const void *key, size_t klen);
void bmap_clear(bmap *m);
void bmap_free(bmap *m);
/* Bytes held by the map (for memory bounds). */
size_t bmap_bytes(const bmap *m);
uint64_t bytes_hash(const void *p, size_t n);

/* ---- the database (coll.c) */
#include <pthread.h>
#include "ndb_kv.h"

typedef struct coll {
    char name[NDB_DOC_MAX_COLL_NAME + 1];
    uint64_t prefix;        /* key prefix of its documents */
    uint64_t ext_prefix[NDB_DOC_MAX_EXT_PREFIXES]; /* the owning layer's (ndb_doc_ext) */
    uint32_t n_ext;
    uint8_t *ext_meta;      /* owned copy of the owning layer's metadata, or NULL */
    size_t ext_meta_len;
    pthread_mutex_t wlock;  /* serialises this collection's writers up to their kv append */
    uint64_t pending;       /* wlock: kv ticket of the last batch its writers appended */
    uint64_t count, bytes;  /* written under wlock, read relaxed */
    idx_set *ix;            /* current indexes; swap under ixlock */
    pthread_mutex_t ixlock;
    pthread_mutex_t buildlock; /* held by an index build from start to end: one at a time */
    uint64_t build_side;    /* wlock: the side-log prefix of the index build running, 0: none (ixbuild.c) */
    bool dropped;
    struct coll *next_dead; /* graveyard: freed at close */
} coll;

/* The key prefix counter every namespace over one kv store shares. */
/* ---- the change log (changes.c; FORMAT.md section 5) */
typedef struct chglog chglog;
/* One write's change records, built as it goes and keyed at its commit: a
 * record holds up to CHG_RECORD_BYTES of entries (more start another). */
#define CHG_RECORD_BYTES ((size_t)1 << 20)
typedef struct chg_recs {
    dbuf buf;     /* the records, back to back */
    size_t *starts; /* where each record starts in buf */
    size_t n, cap;
} chg_recs;
typedef enum chg_op { CHG_INSERT = 1, CHG_UPDATE = 2, CHG_REPLACE = 3, CHG_DELETE = 4, CHG_DROP = 5 } chg_op;
/* Opens the log of the NDB_DOC_NS_DOCUMENTS handle db (its sequence, floor
 * and size from the kv). */
ndb_status chg_open(ndb_doc_db *db, ndb_errmsg *msg);
void chg_close(ndb_doc_db *db);
/* Adds an entry to r (nothing when db keeps no log): payload is the stored
 * document (insert, replace), the update description (update) or nothing. */
ndb_status chg_note(ndb_doc_db *db, chg_recs *r, chg_op op, const char *coll, const void *id, size_t idlen,
                    const void *payload, size_t plen);
/* The update description of old -> new into b: {"updatedFields": {dotted
 * path: new value}, "removedFields": [dotted path]}, descending into objects
 * both sides hold. */
ndb_status chg_describe(const ndb_doc_val *old, const ndb_doc_val *nu, ndb_doc_builder *b);
/* Puts r's records (keyed by the next sequence numbers) and the log's state
 * into batch b and appends it to the kv, under the log's lock so that
 * sequence order is commit order; just the append when r is empty. */
ndb_status chg_append(ndb_doc_db *db, chg_recs *r, ndb_kv_batch *b, uint64_t *ticket);
/* After a batch with records is visible: wakes the watches. */
void chg_published(ndb_doc_db *db, const chg_recs *r);
void chg_recs_free(chg_recs *r);

typedef struct doc_prefixes {
    pthread_mutex_t mu; /* held from allocation until the counter is written */
    uint64_t next;
    ndb_doc_build_stats builds; /* every namespace's index builds; atomic fields */
} doc_prefixes;

struct ndb_doc_db {
    ndb_kv *kv;
    ndb_doc_options opt;
    doc_prefixes *px;      /* owned by the NDB_DOC_NS_DOCUMENTS handle */
    bool own_px;
    chglog *chg;           /* the change log (changes.c); NULL: none kept */
    uint8_t kmeta, kstats; /* this namespace's catalog key kinds (FORMAT.md) */
    pthread_rwlock_t lock; /* the catalog: colls[] */
    coll **colls;
    size_t ncolls, cap;
    coll *dead;
    uint8_t id_rand[5];
    uint32_t id_counter; /* atomic */
    /* ndb_doc_set_clock: when fixed_ms != 0, the writer's time and ids come
     * from here (one writing thread: the cluster's applier). */
    int64_t fixed_ms;
    uint64_t fixed_prefix;
    uint32_t fixed_counter;
};

typedef enum cur_mode { M_SCAN, M_ID, M_IX, M_MEM, M_AGG, M_DONE } cur_mode;

typedef struct memdoc {
    uint8_t *key; size_t klen;   /* sort key */
    uint8_t *doc; size_t dlen;   /* owned copy */
    uint64_t seq;
} memdoc;

/* Resumes a cursor cur_open made at a page token of an identical one
 * (ndb_doc_cursor_page_token). */
ndb_status cur_resume(ndb_doc_cursor *c, const void *tok, size_t len, ndb_errmsg *msg);

/* ---- write.c, for ttl.c */
typedef struct doc_delete_spec {
    const void *filter;
    size_t flen;
    uint64_t limit;   /* the first limit matches; 0: all */
    const char *hint; /* the index to scan, in its order; NULL: the planner's choice */
    /* NULL, or where the scan stands, as a page token: on entry (when not
     * empty) it resumes there, on return it is where it stopped (empty at the
     * end), so batch after batch never scans again what earlier ones deleted */
    dbuf *position;
} doc_delete_spec;
/* ndb_doc_delete_many as spec says, in one atomic write under the
 * collection's writer lock: the filter is checked against the documents as
 * they are then. */
ndb_status doc_delete_matching(ndb_doc_db *db, const char *cname, const doc_delete_spec *spec,
                               const ndb_interrupt *intr, uint64_t *deleted, ndb_errmsg *msg);

/* ---- the sort buffer (sortbuf.c): records sorted by key within a memory
 * bound, spilling sorted runs to files in spill_dir beyond it */
#define SORTBUF_TOPK_MAX 100000
#define SORTBUF_FILE_PREFIX "nexadb-spill-"
typedef struct sortbuf {
    memdoc *mem;
    size_t n, cap, used, i; /* in memory; i: next to hand out */
    size_t limit;
    uint64_t topk, seq;     /* topk: keep only the topk first (a heap, until it outgrows the bound) */
    const char *spill_dir;  /* NULL: beyond limit is NDB_ELIMIT */
    const ndb_interrupt *intr;
    const char *what;       /* "sort", "$sort": for messages */
    struct sbrun *runs;
    int nruns, nheap, last; /* last: the run whose record was handed out last */
    int *heap;
    bool merging;
    uint64_t spilled_bytes;
    dbuf first;             /* the first key added */
    size_t lcp;             /* how many leading bytes every key added shares with it */
    struct sbchunk *chunks; /* a plain buffer's records (sortbuf.c) */
} sortbuf;
void sortbuf_init(sortbuf *sb, size_t limit, uint64_t topk, const char *spill_dir, const ndb_interrupt *intr,
                  const char *what);
/* Copies the record in; NDB_ELIMIT beyond the bound without a spill
 * directory, or a spill file's failure (NDB_ENOSPC, NDB_EIO, ...). */
ndb_status sortbuf_add(sortbuf *sb, const dbuf *key, const void *pay, size_t plen, ndb_errmsg *msg);
/* Ends adding: sorts, or sets up the merge of the runs. */
ndb_status sortbuf_finish(sortbuf *sb, ndb_errmsg *msg);
/* The next record in key order: 1 (borrowed until the next call), 0 at the
 * end, or a negative ndb_status. */
int sortbuf_next(sortbuf *sb, const uint8_t **key, size_t *klen, const uint8_t **pay, size_t *plen,
                 ndb_errmsg *msg);
/* Every record was handed out (and a top-k buffer dropped none). */
bool sortbuf_drained(const sortbuf *sb);
void sortbuf_free(sortbuf *sb);
/* Removes spill files a crash left in dir (between creating and unlinking one). */
void sortbuf_clean_dir(const char *dir);
void heap_down(memdoc *h, size_t n, size_t i);
void heap_up(memdoc *h, size_t i);

struct agg_state;

struct ndb_doc_cursor {
    ndb_doc_db *db;
    coll *c;
    idx_set *ix;
    const ndb_kv_snapshot *snap; /* the read view: snap_owned, or the caller's */
    ndb_kv_snapshot *snap_owned;
    ndb_kv_iter *it;
    ndb_doc_filter *flt;
    prj_spec *prj;
    srt_spec sort;
    bool has_sort;
    plan pl;
    int range_i;
    bool started;
    cur_mode mode, src_mode;
    uint64_t skip, limit, skipped, returned;
    sortbuf sb;             /* M_MEM: the sorted documents */
    uint64_t mem_i;         /* M_MEM: documents handed out of sb (skipped ones included) */
    bmap seen;
    void *fetched; /* kv_get result (M_ID/M_IX); freed on the next move */
    ndb_doc_builder *out;
    dbuf lastkey;
    uint64_t qhash;
    ndb_doc_explain ex;
    /* M_AGG: the pipeline (agg.c), read and freed through these, so the
     * cursor never names the stages above it */
    struct agg_state *agg;
    ndb_status (*agg_next)(ndb_doc_cursor *c, const void **doc, size_t *len, ndb_errmsg *msg);
    void (*agg_free)(struct agg_state *a);
    bool id_done;
    bool own_flt;        /* free flt with the cursor */
    bool keys_only;      /* M_IX with an exact plan: count keys, fetch nothing */
    ndb_doc_builder *ids; /* M_IX with an exact plan and {"_id": 1}: each {_id} built from its index entry */
    uint64_t topk;       /* in-memory sort keeps only the first topk (0: all) */
    uint8_t *sort_owned; /* bytes the sort spec borrows */
    uint8_t *prj_owned;  /* bytes the projection borrows */
    const ndb_interrupt *intr; /* borrowed; NULL: never interrupted */
    uint32_t tick;             /* rows since the last interrupt check */
};

/* Documents per kv batch when a request walks a whole collection (index
 * builds, reclaiming a dropped collection's keys). */
#define DOC_BUILD_CHUNK 10000

/* ---- the catalog (catalog.c) */
/* A progress line to the options' log sink (stderr without one). */
void db_log(ndb_doc_db *db, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Sets msg to "what: error (the kv's detail)" and returns st. */
ndb_status db_kvfail(ndb_doc_db *db, ndb_errmsg *msg, ndb_status st, const char *what);
/* NDB_EINVAL naming the name unless it is [A-Za-z0-9_.-]{1,64}, not starting with '.'. */
ndb_status cat_check_name(const char *n, ndb_errmsg *msg);
/* k = varint(c->prefix) id: the key of a document. */
void key_doc(dbuf *k, const coll *c, const void *id, size_t idlen);
/* [lo, hi): every key with this prefix. false on out of memory. */
bool key_prefix_range(uint64_t prefix, dbuf *lo, dbuf *hi);
/* Re-points an index definition's split paths at its own field strings. */
bool idx_def_finish(idx_def *d);
/* The collection's current index set, referenced: caller unrefs. */
idx_set *coll_ix(coll *c);
/* Publishes s (the collection takes the caller's reference). */
void coll_set_ix(coll *c, idx_set *s);
/* Looks a collection up; with nowait, NDB_EBUSY instead of waiting for the catalog. */
ndb_status cat_get_coll(ndb_doc_db *db, const char *name, bool nowait, coll **out, ndb_errmsg *msg);
/* Finds, or with create makes, a collection; excl: NDB_EEXIST if it exists. */
ndb_status cat_coll_open(ndb_doc_db *db, const char *name, bool create, bool excl, coll **out,
                         ndb_errmsg *msg);
/* Takes n new key prefixes (never used before, never reused) and makes the
 * counter durable before returning them. */
ndb_status cat_alloc_prefixes(ndb_doc_db *db, uint32_t n, uint64_t *out, ndb_errmsg *msg);
/* Puts the collection's catalog entry (with index set s) / its stats in b. */
ndb_status cat_write_meta(ndb_doc_db *db, ndb_kv_batch *b, const coll *c, const idx_set *s);
ndb_status cat_write_stats(ndb_doc_db *db, ndb_kv_batch *b, const coll *c, uint64_t count, uint64_t bytes);
/* Deletes every key with this prefix, in bounded batches. */
ndb_status cat_delete_prefix(ndb_doc_db *db, uint64_t prefix);
/* The catalog's record of an index build running (FORMAT.md section 3): put
 * (side != 0) or delete (side == 0) the marker of the build writing index
 * prefix ix, in b. */
ndb_status cat_build_mark(ndb_kv_batch *b, uint64_t ix, uint64_t side);
/* At open: reclaims the prefixes of every build a crash interrupted and
 * deletes their markers. */
ndb_status cat_build_reclaim(ndb_doc_db *db, ndb_errmsg *msg);
/* ixbuild.c: rebuilds, at open, indexes written in an older key encoding. */
ndb_status ix_upgrade(ndb_doc_db *db, ndb_errmsg *msg);

/* ---- write requests (write.c) */
typedef struct wctx {
    ndb_doc_db *db;
    chg_recs chg;    /* this write's change records (changes.c) */
    coll *c;
    idx_set *ix;
    ndb_kv_batch *b;
    bmap uniq;    /* unique-index key -> 0 (deleted in this batch) or id ref */
    dbuf uniq_ids;
    bmap ids;     /* _ids inserted in this batch */
    idx_keys *keys;
    bool mk[64];  /* index i became multikey */
    bool mk_any;
    int64_t dcount, dbytes;
    dbuf key;
    ndb_doc_builder *b1, *b2;
    ndb_doc_builder *bchg; /* update descriptions, when the change log is kept */
    char now[64];
    bool batch_full; /* the kv refused to grow the batch (256 MiB WAL record) */
    uint64_t ticket; /* the committed batch's kv ticket, 0 before the commit */
    const ndb_interrupt *intr; /* the request's (borrowed); NULL: never interrupted */
    uint64_t side;   /* the collection's build_side when it locked: each document written is noted there */
    dbuf side_key;
    uint8_t *ext;    /* owned: the layer above's new metadata (ndb_doc_txn_set_meta), or NULL */
    size_t ext_len;
} wctx;
ndb_status wctx_init(wctx *w, ndb_doc_db *db, coll *c);
/* Milliseconds since the epoch for what db writes: its fixed clock, or the system's. */
int64_t doc_now_ms(const ndb_doc_db *db);
void wctx_free(wctx *w);
/* Takes the collection's writer lock and a stable view of its indexes
 * (NDB_ENOTFOUND if it was dropped meanwhile). */
ndb_status wctx_lock(wctx *w, ndb_errmsg *msg);
/* wctx_init then wctx_lock, for a request that stops when intr says so
 * (borrowed; NULL: never); on failure w is freed. */
ndb_status wctx_begin(wctx *w, ndb_doc_db *db, coll *c, const ndb_interrupt *intr, ndb_errmsg *msg);
/* Writes stats (and index metadata if an index became multikey), appends the
 * batch to the kv, and publishes the new counters; first, NDB_ETIMEDOUT or
 * NDB_ECANCELED (nothing written) when w->intr says the request must stop
 * (ndb_interrupt_check_commit). Caller holds the writer
 * lock. The batch is durable only after wctx_durable, which the caller calls
 * once it has released the lock, so the collection's next writer appends
 * while this one's fsync runs and both share the next. */
ndb_status wctx_commit(wctx *w, ndb_errmsg *msg);
/* Waits until w's committed batch is durable: NDB_OK, or the I/O error. */
ndb_status wctx_durable(wctx *w, ndb_errmsg *msg);
/* Before a writer reads the store: waits until its collection's earlier
 * batches are durable, and so visible to the read (the kv's status, which
 * callers report as they do a failed read). Writer lock held. */
ndb_status wctx_settle(wctx *w);
/* wctx_settle, then ndb_kv_get of key (NDB_ENOTFOUND if absent). */
ndb_status wctx_get(wctx *w, const void *key, size_t klen, void **val, size_t *vlen);
/* Adds / removes a document's entries in every index of w->ix to the batch
 * (idx_add checks unique indexes). */
ndb_status idx_add(wctx *w, const ndb_doc_val *doc, const uint8_t *id, size_t idlen, ndb_errmsg *msg);
ndb_status idx_remove(wctx *w, const ndb_doc_val *doc, const uint8_t *id, size_t idlen);

/* ---- cursors (cursor.c) */
/* Opens a document source for filter f (borrowed: the cursor does not free
 * it unless own_flt) in the requested order, reading at snap (borrowed; NULL:
 * a snapshot of its own), stopping when intr says so (borrowed until the
 * cursor is freed; NULL: never); used by find, count, aggregate and writes. */
ndb_status cur_open(ndb_doc_db *db, coll *c, ndb_doc_filter *f, const srt_spec *s, const char *hint,
                    const ndb_kv_snapshot *snap, const ndb_interrupt *intr, ndb_doc_cursor **out,
                    ndb_errmsg *msg);
/* The next matching raw document from the source: 1 (borrowed until the next
 * call), 0 at the end, or a negative ndb_status (NDB_ETIMEDOUT/NDB_ECANCELED
 * once the cursor's interrupt fires, checked every NDB_INTERRUPT_EVERY rows
 * examined). */
int cur_src_next(ndb_doc_cursor *c, const uint8_t **doc, size_t *len, ndb_errmsg *msg);
/* In-memory sorts (find's and $sort's): key order, then arrival (seq). */
int memdoc_cmp(const void *a, const void *b);
/* Appends a copy of key and doc to the growable array *arr. */
ndb_status memdoc_push(memdoc **arr, size_t *n, size_t *cap, const dbuf *key, const void *doc, size_t dl,
                       uint64_t seq);
/* Sorts a[0..n) by memdoc_cmp (sequence numbers below 2^60), every key
 * agreeing before byte depth, checking intr as it goes: NDB_ETIMEDOUT or
 * NDB_ECANCELED (a left as it was), or NDB_ENOMEM. */
ndb_status memdoc_sort(memdoc *a, size_t n, size_t depth, const ndb_interrupt *intr, ndb_errmsg *msg);
/* Drains the source into c->sb sorted by c->sort (agg_mem_bytes in memory,
 * spilling beyond it when the database has a spill directory). */
ndb_status cur_sort_all(ndb_doc_cursor *c, ndb_errmsg *msg);
/* The next document of a sorted cursor: 1, 0 at the end, or a failure. */
int cur_sorted_next(ndb_doc_cursor *c, const uint8_t **d, size_t *dl, ndb_errmsg *msg);
coll *db_find_coll(ndb_doc_db *db, const char *name);
/* Looks up an existing collection, validating the name. */
ndb_status db_get_coll(ndb_doc_db *db, const char *name, coll **out, ndb_errmsg *msg);

/* ---- aggregation (agg.c) */
/* agg_expand.c: the pipeline with $sortByCount and $bucket written out as the
 * stages they stand for; *out (a new array document) is the caller's to free. */
ndb_status agg_expand(const ndb_doc_val *pipeline, void **out, size_t *len, ndb_errmsg *msg);

#endif /* NDB_DOC_INT_H */
