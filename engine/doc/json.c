/*
 * json.c — JSON text to and from the document encoding.
 *
 * Parsing uses jansson (objects iterate in insertion order, so key order is
 * kept). Numbers are read as doubles and normalised by the builder (an
 * integral value within +-2^53 becomes an integer). Writing walks the
 * encoding directly and prints doubles in the shortest form that round-trips.
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "doc_int.h"
#include "json_text.h"

static ndb_status from_j(ndb_doc_builder *b, json_t *j, int depth)
{
    if (depth > NDB_DOC_MAX_DEPTH)
        return NDB_ETOOBIG;
    switch (json_typeof(j)) {
    case JSON_NULL: return ndb_doc_null(b);
    case JSON_TRUE: return ndb_doc_bool(b, 1);
    case JSON_FALSE: return ndb_doc_bool(b, 0);
    case JSON_INTEGER: return ndb_doc_int(b, (int64_t)json_integer_value(j));
    case JSON_REAL: return ndb_doc_double(b, json_real_value(j));
    case JSON_STRING: return ndb_doc_string(b, json_string_value(j), json_string_length(j));
    case JSON_ARRAY: {
        ndb_status st = ndb_doc_begin_array(b);
        size_t i;
        json_t *e;
        json_array_foreach(j, i, e)
        {
            if (st == NDB_OK)
                st = from_j(b, e, depth + 1);
        }
        return st == NDB_OK ? ndb_doc_end_array(b) : st;
    }
    case JSON_OBJECT: {
        ndb_status st = ndb_doc_begin_object(b);
        const char *k;
        size_t kl;
        json_t *e;
        void *tmp;
        json_object_keylen_foreach_safe(j, tmp, k, kl, e)
        {
            if (st == NDB_OK)
                st = ndb_doc_key(b, k, kl);
            if (st == NDB_OK)
                st = from_j(b, e, depth + 1);
        }
        return st == NDB_OK ? ndb_doc_end_object(b) : st;
    }
    }
    return NDB_EINVAL;
}

ndb_status ndb_doc_from_json(const char *json, size_t len, void **doc, size_t *doc_len,
                             ndb_errmsg *msg)
{
    json_error_t jerr;
    /* INT_AS_REAL: integers of any size parse; the builder restores integers. */
    json_t *j = json_loadb(json, len, JSON_DECODE_ANY | JSON_DECODE_INT_AS_REAL | JSON_ALLOW_NUL,
                           &jerr);
    if (j == NULL)
        return ndb_errmsg_set(msg, NDB_EINVAL, "bad JSON at line %d column %d: %s", jerr.line,
                              jerr.column, jerr.text);
    ndb_doc_builder *b;
    ndb_status st = ndb_doc_builder_new(&b);
    if (st != NDB_OK) {
        json_decref(j);
        return st;
    }
    st = from_j(b, j, 0);
    json_decref(j);
    if (st == NDB_OK)
        st = ndb_doc_builder_take(b, doc, doc_len);
    ndb_doc_builder_free(b);
    if (st == NDB_ETOOBIG)
        return ndb_errmsg_set(msg, st, "JSON document exceeds %u bytes or %d levels",
                              NDB_DOC_MAX_BYTES, NDB_DOC_MAX_DEPTH);
    if (st != NDB_OK)
        return ndb_errmsg_set(msg, st, "JSON value not representable: %s", ndb_strerror(st));
    return NDB_OK;
}

/* ---------------------------------------------------------------- writer */

static bool put_str(dbuf *o, const char *s, size_t n)
{
    dbuf_byte(o, '"');
    size_t run = 0;
    for (size_t i = 0; i < n; i++) {
        char e[6];
        size_t k = ndb_json_escape((unsigned char)s[i], e);
        if (k == 0)
            continue;
        dbuf_put(o, s + run, i - run);
        dbuf_put(o, e, k);
        run = i + 1;
    }
    dbuf_put(o, s + run, n - run);
    return dbuf_byte(o, '"');
}

bool json_write_val(dbuf *o, const ndb_doc_val *v, int depth)
{
    char tmp[40];
    switch (v->type) {
    case NDB_DOC_NULL: return dbuf_put(o, "null", 4);
    case NDB_DOC_BOOL: return v->u.b ? dbuf_put(o, "true", 4) : dbuf_put(o, "false", 5);
    case NDB_DOC_INT: {
        int k = snprintf(tmp, sizeof tmp, "%lld", (long long)v->u.i);
        return dbuf_put(o, tmp, (size_t)k);
    }
    case NDB_DOC_DOUBLE: {
        int k = ndb_json_shortest(tmp, sizeof tmp, v->u.d, false);
        return dbuf_put(o, tmp, (size_t)k);
    }
    case NDB_DOC_STRING: return put_str(o, v->u.s.ptr, v->u.s.len);
    case NDB_DOC_ARRAY:
    case NDB_DOC_OBJECT: {
        if (depth > NDB_DOC_MAX_DEPTH)
            return false;
        bool obj = v->type == NDB_DOC_OBJECT;
        dbuf_byte(o, obj ? '{' : '[');
        ndb_doc_iter it;
        ndb_doc_iter_init(&it, v);
        const char *k;
        size_t kl;
        ndb_doc_val e;
        bool first = true;
        while (ndb_doc_iter_next(&it, &k, &kl, &e)) {
            if (!first)
                dbuf_byte(o, ',');
            first = false;
            if (obj) {
                put_str(o, k, kl);
                dbuf_byte(o, ':');
            }
            if (!json_write_val(o, &e, depth + 1))
                return false;
        }
        if (it.st != NDB_OK)
            return false;
        return dbuf_byte(o, obj ? '}' : ']');
    }
    }
    return false;
}

ndb_status ndb_doc_to_json(const void *doc, size_t len, char **json, size_t *json_len)
{
    ndb_doc_val root;
    ndb_status st = ndb_doc_root(doc, len, &root);
    if (st != NDB_OK)
        return st;
    dbuf o = {0};
    dbuf_reserve(&o, len * 2 + 16);
    bool ok = json_write_val(&o, &root, 0);
    if (o.oom) {
        dbuf_free(&o);
        return NDB_ENOMEM;
    }
    if (!ok) {
        dbuf_free(&o);
        return NDB_ECORRUPT;
    }
    if (!dbuf_byte(&o, 0)) {
        dbuf_free(&o);
        return NDB_ENOMEM;
    }
    *json = (char *)o.data;
    *json_len = o.len - 1;
    return NDB_OK;
}
