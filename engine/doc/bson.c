/*
 * bson.c — BSON (bsonspec.org) to and from the document encoding: the wire
 * form of documents, filters, updates and pipelines in the gRPC API. libbson
 * reads and writes the bytes; this file maps the types.
 *
 * BSON in: double, string, document, array, binary, bool, date, null, int32
 * and int64 map to their own kinds (int32 and int64 both to int). Types
 * NexaDB does not store (ObjectId, Decimal128, regex, timestamp, code,
 * symbol, min/max key, undefined, DBPointer) are refused by name and path.
 * Nesting is bounded by the builder (NDB_DOC_MAX_DEPTH), which refuses the
 * level past it before this file recurses into it, and every string and key
 * is checked as UTF-8 (the builder's own checks).
 *
 * BSON out: integers within int32 as int32, others as int64 (as the MongoDB
 * drivers write a native integer), dates as UTC datetime, binary with its
 * subtype.
 */
#include <assert.h>
#include <bson/bson.h>
#include <stdio.h>
#include <stdlib.h>

#include "doc_int.h"

static const char *bson_type_name(bson_type_t t)
{
    switch (t) {
    case BSON_TYPE_OID: return "ObjectId";
    case BSON_TYPE_DECIMAL128: return "Decimal128";
    case BSON_TYPE_REGEX: return "regular expression";
    case BSON_TYPE_TIMESTAMP: return "timestamp";
    case BSON_TYPE_CODE: case BSON_TYPE_CODEWSCOPE: return "JavaScript code";
    case BSON_TYPE_SYMBOL: return "symbol";
    case BSON_TYPE_MINKEY: return "MinKey";
    case BSON_TYPE_MAXKEY: return "MaxKey";
    case BSON_TYPE_UNDEFINED: return "undefined";
    case BSON_TYPE_DBPOINTER: return "DBPointer";
    default: return "unknown";
    }
}

/* Where the walk is, kept as borrowed keys and formatted only for an error
 * message: formatting it per element cost ~15% of an InsertMany. */
typedef struct bctx {
    ndb_doc_builder *b;
    ndb_errmsg *msg;
    int depth;
    const char *key[NDB_DOC_MAX_DEPTH + 1];
    size_t klen[NDB_DOC_MAX_DEPTH + 1];
} bctx;

static ndb_status from_iter(bctx *cx, bson_iter_t *it, bool is_array);

static ndb_status bad_at(bctx *cx, ndb_status st, const char *what)
{
    char path[160] = "";
    size_t n = 0;
    for (int i = 0; i < cx->depth && n < sizeof path; i++) {
        size_t kl = cx->klen[i] > 64 ? 64 : cx->klen[i];
        int w = snprintf(path + n, sizeof path - n, "%s%.*s", i ? "." : "", (int)kl, cx->key[i]);
        n += w > 0 ? (size_t)w : 0;
    }
    if (cx->depth == 0)
        return ndb_errmsg_set(cx->msg, st, "BSON document: %s", what);
    return ndb_errmsg_set(cx->msg, st, "BSON field '%s': %s", path, what);
}

static ndb_status one(bctx *cx, bson_iter_t *it)
{
    ndb_doc_builder *b = cx->b;
    ndb_status st;
    switch (bson_iter_type(it)) {
    case BSON_TYPE_DOUBLE:
        st = ndb_doc_double(b, bson_iter_double(it));
        return st == NDB_EINVAL ? bad_at(cx, st, "NaN and infinities cannot be stored") : st;
    case BSON_TYPE_UTF8: {
        uint32_t n;
        const char *s = bson_iter_utf8(it, &n);
        st = ndb_doc_string(b, s, n);
        return st == NDB_EINVAL ? bad_at(cx, st, "string is not UTF-8") : st;
    }
    case BSON_TYPE_DOCUMENT:
    case BSON_TYPE_ARRAY: {
        bson_iter_t child; /* the builder's depth limit stops the recursion */
        if (!bson_iter_recurse(it, &child))
            return bad_at(cx, NDB_EINVAL, "malformed");
        return from_iter(cx, &child, bson_iter_type(it) == BSON_TYPE_ARRAY);
    }
    case BSON_TYPE_BINARY: {
        bson_subtype_t sub;
        uint32_t n;
        const uint8_t *p;
        bson_iter_binary(it, &sub, &n, &p);
        if (p == NULL && n != 0)
            return bad_at(cx, NDB_EINVAL, "malformed binary");
        return ndb_doc_binary(b, (uint8_t)sub, p, n);
    }
    case BSON_TYPE_BOOL: return ndb_doc_bool(b, bson_iter_bool(it));
    case BSON_TYPE_DATE_TIME: return ndb_doc_date(b, bson_iter_date_time(it));
    case BSON_TYPE_NULL: return ndb_doc_null(b);
    case BSON_TYPE_INT32: return ndb_doc_int(b, bson_iter_int32(it));
    case BSON_TYPE_INT64: return ndb_doc_int(b, bson_iter_int64(it));
    default: {
        char what[200];
        snprintf(what, sizeof what, "%s is a type NexaDB does not store (null, bool, int32, "
                 "int64, double, string, date, binary, array, document)", bson_type_name(bson_iter_type(it)));
        return bad_at(cx, NDB_EINVAL, what);
    }
    }
}

static ndb_status from_iter(bctx *cx, bson_iter_t *it, bool is_array)
{
    if (cod_builder_depth(cx->b) >= NDB_DOC_MAX_DEPTH) /* bad input, not a resource limit */
        return bad_at(cx, NDB_EINVAL, "nested deeper than 100 levels");
    ndb_status st = is_array ? ndb_doc_begin_array(cx->b) : ndb_doc_begin_object(cx->b);
    if (st != NDB_OK)
        return bad_at(cx, st, st == NDB_ETOOBIG ? "document too large" : ndb_strerror(st));
    int d = cx->depth++; /* the builder's depth limit keeps d within the arrays */
    assert(d <= NDB_DOC_MAX_DEPTH);
    while (bson_iter_next(it)) {
        const char *k = bson_iter_key(it);
        size_t kl = bson_iter_key_len(it);
        cx->key[d] = k;
        cx->klen[d] = kl;
        if (!is_array && (st = ndb_doc_key(cx->b, k, kl)) != NDB_OK)
            return bad_at(cx, st, "key is not UTF-8");
        if ((st = one(cx, it)) != NDB_OK)
            return st;
    }
    cx->depth = d;
    if (it->err_off != 0)
        return bad_at(cx, NDB_EINVAL, "malformed (a length or a type byte is wrong)");
    st = is_array ? ndb_doc_end_array(cx->b) : ndb_doc_end_object(cx->b);
    return st == NDB_OK ? NDB_OK : bad_at(cx, st, "document too large");
}

ndb_status ndb_doc_append_bson(ndb_doc_builder *b, const void *data, size_t len, ndb_errmsg *msg)
{
    bctx cx = {.b = b, .msg = msg};
    bson_iter_t it;
    if (data == NULL || len < 5 || !bson_iter_init_from_data(&it, data, len))
        return ndb_errmsg_set(msg, NDB_EINVAL, "BSON document malformed (its length prefix does not "
                              "match its %zu bytes, or it is shorter than 5)", len);
    return from_iter(&cx, &it, false);
}

/* ------------------------------------------------------------------ out */

static bool to_bson(bson_t *out, const ndb_doc_val *c, int depth);

static bool put(bson_t *out, const char *k, int kl, const ndb_doc_val *v, int depth)
{
    switch (v->type) {
    case NDB_DOC_NULL: return bson_append_null(out, k, kl);
    case NDB_DOC_BOOL: return bson_append_bool(out, k, kl, v->u.b != 0);
    case NDB_DOC_INT:
        return v->u.i >= INT32_MIN && v->u.i <= INT32_MAX ? bson_append_int32(out, k, kl, (int32_t)v->u.i)
                                                          : bson_append_int64(out, k, kl, v->u.i);
    case NDB_DOC_DOUBLE: return bson_append_double(out, k, kl, v->u.d);
    case NDB_DOC_STRING:
        return v->u.s.len <= INT32_MAX && bson_append_utf8(out, k, kl, v->u.s.ptr, (int)v->u.s.len);
    case NDB_DOC_DATE: return bson_append_date_time(out, k, kl, v->u.i);
    case NDB_DOC_BINARY:
        return v->u.bin.len <= INT32_MAX &&
               bson_append_binary(out, k, kl, (bson_subtype_t)v->u.bin.subtype, v->u.bin.ptr, (uint32_t)v->u.bin.len);
    case NDB_DOC_ARRAY:
    case NDB_DOC_OBJECT: {
        bson_t child;
        if (depth > NDB_DOC_MAX_DEPTH)
            return false;
        bool ok = v->type == NDB_DOC_ARRAY ? bson_append_array_begin(out, k, kl, &child)
                                          : bson_append_document_begin(out, k, kl, &child);
        if (!ok)
            return false;
        ok = to_bson(&child, v, depth + 1);
        return (v->type == NDB_DOC_ARRAY ? bson_append_array_end(out, &child)
                                         : bson_append_document_end(out, &child)) && ok;
    }
    }
    return false;
}

static bool to_bson(bson_t *out, const ndb_doc_val *c, int depth)
{
    ndb_doc_iter it;
    ndb_doc_iter_init(&it, c);
    const char *k;
    size_t kl;
    ndb_doc_val e;
    uint32_t i = 0;
    while (ndb_doc_iter_next(&it, &k, &kl, &e)) {
        char num[16];
        const char *key = k;
        if (c->type == NDB_DOC_ARRAY) {
            kl = bson_uint32_to_string(i, &key, num, sizeof num);
        } else if (kl > INT32_MAX || memchr(k, 0, kl) != NULL) {
            return false; /* a BSON key is a C string */
        }
        if (!put(out, key, (int)kl, &e, depth))
            return false;
        i++;
    }
    return it.st == NDB_OK;
}

ndb_status ndb_doc_to_bson(const ndb_doc_val *obj, uint8_t **out, size_t *out_len)
{
    if (obj->type != NDB_DOC_OBJECT)
        return NDB_EINVAL;
    bson_t b;
    bson_init(&b);
    if (!to_bson(&b, obj, 0)) {
        bson_destroy(&b);
        return NDB_EINVAL;
    }
    uint32_t n;
    uint8_t *data = bson_destroy_with_steal(&b, true, &n);
    if (data == NULL)
        return NDB_ENOMEM;
    /* the caller frees with free(): hand over a malloc'd copy, not libbson's */
    uint8_t *copy = malloc(n);
    if (copy != NULL)
        memcpy(copy, data, n);
    bson_free(data);
    if (copy == NULL)
        return NDB_ENOMEM;
    *out = copy;
    *out_len = n;
    return NDB_OK;
}
