/*
 * json.c — JSON text to and from the document encoding, in MongoDB's relaxed
 * Extended JSON for what plain JSON cannot say.
 *
 * Parsing uses jansson (objects iterate in insertion order, so key order is
 * kept). An integer literal within int64 is an integer; a fraction, an
 * exponent or an integer beyond int64 is a double, normalised by the builder
 * (integral within +-2^53 becomes an integer). These one-key objects are
 * values, not subdocuments: {"$date": "2024-01-02T03:04:05.678Z"} or
 * {"$date": {"$numberLong": "<ms>"}} or {"$date": <ms>}, {"$numberLong":
 * "<int64>"}, {"$numberInt": "<int32>"}, {"$numberDouble": "<double>"},
 * {"$binary": {"base64": "...", "subType": "<hex>"}} (and the legacy
 * {"$binary": "...", "$type": "<hex>"}); other Extended JSON types are
 * refused by name. Writing walks the encoding directly: doubles in the
 * shortest form that round-trips, integers beyond +-2^53 as $numberLong (a
 * JavaScript number would round them), dates from 1970 to 9999 as ISO-8601
 * $date, others as $date of $numberLong, binary as $binary.
 */
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "doc_int.h"
#include "json_text.h"

/* Where parsing stopped on a bad Extended JSON value (for the message). */
typedef struct jctx {
    ndb_errmsg *msg;
    bool said; /* msg names the bad value */
} jctx;

static ndb_status from_j(jctx *cx, ndb_doc_builder *b, json_t *j, int depth);

static ndb_status bad(jctx *cx, const char *fmt, const char *what)
{
    cx->said = true;
    return ndb_errmsg_set(cx->msg, NDB_EINVAL, fmt, what);
}

static bool parse_i64(const char *s, int64_t *out)
{
    if (*s == 0 || (*s != '-' && (*s < '0' || *s > '9')))
        return false;
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || *end)
        return false;
    *out = v;
    return true;
}

static bool hex_byte(const char *s, uint8_t *out)
{
    size_t n = strlen(s);
    if (n < 1 || n > 2)
        return false;
    unsigned v = 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        v = v * 16 + (unsigned)(c >= '0' && c <= '9' ? c - '0'
                                : c >= 'a' && c <= 'f' ? c - 'a' + 10
                                : c >= 'A' && c <= 'F' ? c - 'A' + 10 : 99);
        if (v > 255)
            return false;
    }
    *out = (uint8_t)v;
    return true;
}

static ndb_status binary_from_b64(jctx *cx, ndb_doc_builder *b, const char *b64, size_t n,
                                  const char *subtype)
{
    uint8_t st;
    if (!hex_byte(subtype, &st))
        return bad(cx, "$binary subType must be one or two hex digits, not '%.20s'", subtype);
    if (n % 4 != 0 || n / 4 * 3 > NDB_DOC_MAX_BYTES)
        return bad(cx, "$binary base64 %s", n % 4 ? "length must be a multiple of 4" : "too large");
    for (size_t i = 0; i < n; i++) {
        char c = b64[i];
        bool pad = c == '=' && i + 2 >= n && (i + 1 == n || b64[i + 1] == '=');
        if (!pad && !((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                      c == '+' || c == '/'))
            return bad(cx, "$binary base64 has a character outside the alphabet%s", "");
    }
    uint8_t *raw = malloc(n / 4 * 3 + 1);
    if (raw == NULL)
        return NDB_ENOMEM;
    int len = n ? EVP_DecodeBlock(raw, (const unsigned char *)b64, (int)n) : 0;
    ndb_status res = len < 0 ? bad(cx, "$binary base64 does not decode%s", "") : NDB_OK;
    if (res == NDB_OK) { /* EVP_DecodeBlock counts the padding as zero bytes */
        len -= (n && b64[n - 1] == '=') + (n > 1 && b64[n - 2] == '=');
        res = ndb_doc_binary(b, st, raw, (size_t)len);
    }
    free(raw);
    return res;
}

/* One Extended JSON value ({"$date": ...} and the rest), or 0 with *done
 * false when j is an ordinary object. */
static ndb_status ejson(jctx *cx, ndb_doc_builder *b, json_t *j, bool *done)
{
    size_t n = json_object_size(j);
    *done = false;
    if (n == 0 || n > 2)
        return NDB_OK;
    void *it = json_object_iter(j);
    const char *k = json_object_iter_key(it);
    json_t *v = json_object_iter_value(it);
    if (k[0] != '$')
        return NDB_OK;
    if (n == 2) { /* only the legacy {"$binary": "<base64>", "$type": "<hex>"} */
        json_t *t = json_object_get(j, "$type");
        json_t *d = json_object_get(j, "$binary");
        if (t == NULL || d == NULL || !json_is_string(t) || !json_is_string(d))
            return NDB_OK;
        *done = true;
        return binary_from_b64(cx, b, json_string_value(d), json_string_length(d), json_string_value(t));
    }
    int64_t i;
    if (strcmp(k, "$numberLong") == 0 || strcmp(k, "$numberInt") == 0) {
        *done = true;
        if (!json_is_string(v) || !parse_i64(json_string_value(v), &i) ||
            (k[7] == 'I' && (i > INT32_MAX || i < INT32_MIN)))
            return bad(cx, "%s takes a decimal string of an integer in its range", k);
        return ndb_doc_int(b, i);
    }
    if (strcmp(k, "$numberDouble") == 0) {
        *done = true;
        char *end;
        double d = json_is_string(v) ? strtod(json_string_value(v), &end) : NAN;
        if (!json_is_string(v) || *end || !isfinite(d) || json_string_length(v) == 0)
            return bad(cx, "%s takes a decimal string of a finite number (NaN and infinities cannot be stored)", k);
        return ndb_doc_double(b, d);
    }
    if (strcmp(k, "$date") == 0) {
        *done = true;
        json_t *nl = json_is_object(v) && json_object_size(v) == 1 ? json_object_get(v, "$numberLong") : NULL;
        if (json_is_string(v) && date_parse_iso(json_string_value(v), json_string_length(v), &i))
            return ndb_doc_date(b, i);
        if (json_is_integer(v) || (json_is_real(v) && json_real_value(v) == floor(json_real_value(v)) &&
                                   fabs(json_real_value(v)) < 9.2e18))
            return ndb_doc_date(b, json_is_integer(v) ? (int64_t)json_integer_value(v) : (int64_t)json_real_value(v));
        if (nl && json_is_string(nl) && parse_i64(json_string_value(nl), &i))
            return ndb_doc_date(b, i);
        return bad(cx, "%s takes an ISO-8601 date-time with a zone (\"2024-01-31T12:00:00Z\"), "
                       "milliseconds since 1970, or {\"$numberLong\": \"<ms>\"}", k);
    }
    if (strcmp(k, "$binary") == 0 && json_is_object(v)) {
        *done = true;
        json_t *d = json_object_get(v, "base64"), *t = json_object_get(v, "subType");
        if (json_object_size(v) != 2 || !json_is_string(d) || !json_is_string(t))
            return bad(cx, "%s takes {\"base64\": \"...\", \"subType\": \"<hex>\"}", k);
        return binary_from_b64(cx, b, json_string_value(d), json_string_length(d), json_string_value(t));
    }
    static const char *const refused[] = {"$oid", "$numberDecimal", "$timestamp", "$regularExpression",
                                          "$symbol", "$code", "$minKey", "$maxKey", "$undefined",
                                          "$dbPointer", "$uuid"};
    for (size_t r = 0; r < sizeof refused / sizeof *refused; r++)
        if (strcmp(k, refused[r]) == 0) {
            *done = true;
            return bad(cx, "Extended JSON %s is a type NexaDB does not store "
                           "(it stores null, bool, int64, double, string, date, binary, array, object)", k);
        }
    return NDB_OK;
}

static ndb_status from_j(jctx *cx, ndb_doc_builder *b, json_t *j, int depth)
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
                st = from_j(cx, b, e, depth + 1);
        }
        return st == NDB_OK ? ndb_doc_end_array(b) : st;
    }
    case JSON_OBJECT: {
        bool done;
        ndb_status st = ejson(cx, b, j, &done);
        if (done || st != NDB_OK)
            return st;
        st = ndb_doc_begin_object(b);
        const char *k;
        size_t kl;
        json_t *e;
        void *tmp;
        json_object_keylen_foreach_safe(j, tmp, k, kl, e)
        {
            if (st == NDB_OK)
                st = ndb_doc_key(b, k, kl);
            if (st == NDB_OK)
                st = from_j(cx, b, e, depth + 1);
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
    json_t *j = json_loadb(json, len, JSON_DECODE_ANY | JSON_ALLOW_NUL, &jerr);
    if (j == NULL && json_error_code(&jerr) == json_error_numeric_overflow)
        /* an integer literal beyond int64: every number is read as a double
         * (the builder restores integers within +-2^53), as JSON parsers do */
        j = json_loadb(json, len, JSON_DECODE_ANY | JSON_DECODE_INT_AS_REAL | JSON_ALLOW_NUL, &jerr);
    if (j == NULL)
        return ndb_errmsg_set(msg, NDB_EINVAL, "bad JSON at line %d column %d: %s", jerr.line,
                              jerr.column, jerr.text);
    ndb_doc_builder *b;
    ndb_status st = ndb_doc_builder_new(&b);
    if (st != NDB_OK) {
        json_decref(j);
        return st;
    }
    jctx cx = {.msg = msg};
    st = from_j(&cx, b, j, 0);
    json_decref(j);
    if (cx.said) {
        ndb_doc_builder_free(b);
        return st;
    }
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
    char tmp[64]; /* the longest: {"$date":{"$numberLong":"-9223372036854775808"}} */
    switch (v->type) {
    case NDB_DOC_NULL: return dbuf_put(o, "null", 4);
    case NDB_DOC_BOOL: return v->u.b ? dbuf_put(o, "true", 4) : dbuf_put(o, "false", 5);
    case NDB_DOC_INT: {
        bool wide = v->u.i > DOC_INT_MAX || v->u.i < -DOC_INT_MAX;
        int k = snprintf(tmp, sizeof tmp, wide ? "{\"$numberLong\":\"%lld\"}" : "%lld", (long long)v->u.i);
        return dbuf_put(o, tmp, (size_t)k);
    }
    case NDB_DOC_DATE: {
        char iso[DATE_ISO_MAX];
        /* relaxed Extended JSON: ISO-8601 for years 1970..9999 */
        if (v->u.i >= 0 && v->u.i <= 253402300799999LL && date_format_iso(v->u.i, iso)) {
            dbuf_put(o, "{\"$date\":\"", 10);
            dbuf_put(o, iso, strlen(iso));
            return dbuf_put(o, "\"}", 2);
        }
        int k = snprintf(tmp, sizeof tmp, "{\"$date\":{\"$numberLong\":\"%lld\"}}", (long long)v->u.i);
        return dbuf_put(o, tmp, (size_t)k);
    }
    case NDB_DOC_BINARY: {
        size_t n = v->u.bin.len, cap = (n + 2) / 3 * 4 + 1;
        if (n > INT32_MAX / 2 || !dbuf_put(o, "{\"$binary\":{\"base64\":\"", 22) || !dbuf_reserve(o, cap))
            return false;
        o->len += n ? (size_t)EVP_EncodeBlock(o->data + o->len, v->u.bin.ptr, (int)n) : 0;
        int k = snprintf(tmp, sizeof tmp, "\",\"subType\":\"%02x\"}}", v->u.bin.subtype);
        return dbuf_put(o, tmp, (size_t)k);
    }
    case NDB_DOC_DOUBLE: {
        int k = ndb_json_shortest(tmp, sizeof tmp, v->u.d, false);
        /* an integral double (beyond +-2^53: smaller ones are ints) keeps a
         * fraction, or it would read back as an integer */
        if (!memchr(tmp, '.', (size_t)k) && !memchr(tmp, 'e', (size_t)k)) {
            tmp[k++] = '.';
            tmp[k++] = '0';
        }
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
