/*
 * value.c — comparing values (MongoDB's cross-type order), hashing, and the
 * order-preserving key encoding used by indexes (FORMAT.md "Index keys").
 *
 * Invariant used throughout: the builder normalises numbers (an integral
 * value within +-2^53 is always TAG_INT, every TAG_DOUBLE is non-integral or
 * beyond 2^53), so two values within that range are equal exactly when their
 * encodings are byte-equal. Equality and hashing work on raw bytes, except
 * for a double beyond 2^53 equal to a 64-bit integer, which is compared and
 * hashed as that integer.
 */
#include <assert.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "doc_int.h"

int val_rank(ndb_doc_type t)
{
    switch (t) {
    case NDB_DOC_NULL: return 1;
    case NDB_DOC_INT:
    case NDB_DOC_DOUBLE: return 2;
    case NDB_DOC_STRING: return 3;
    case NDB_DOC_OBJECT: return 4;
    case NDB_DOC_ARRAY: return 5;
    case NDB_DOC_BINARY: return 6;
    case NDB_DOC_BOOL: return 7;
    case NDB_DOC_DATE: return 8;
    }
    return 0;
}

/* 2^63 as a double: the first double above every int64. */
#define TWO63 9223372036854775808.0

/* An int64 against a double, exactly (converting the int could round). */
static int int_dbl_cmp(int64_t i, double d)
{
    if (d >= TWO63)
        return -1;
    if (d < -TWO63)
        return 1;
    double id = (double)i; /* may round, but never across d's integer part */
    if (id != d)
        return id < d ? -1 : 1;
    /* d is integral and within [-2^63, 2^63): compare as integers */
    int64_t di = (int64_t)d;
    return (i > di) - (i < di);
}

int val_numcmp(const ndb_doc_val *a, const ndb_doc_val *b)
{
    if (a->type == NDB_DOC_INT && b->type == NDB_DOC_INT)
        return (a->u.i > b->u.i) - (a->u.i < b->u.i);
    if (a->type == NDB_DOC_INT)
        return int_dbl_cmp(a->u.i, b->u.d);
    if (b->type == NDB_DOC_INT)
        return -int_dbl_cmp(b->u.i, a->u.d);
    return (a->u.d > b->u.d) - (a->u.d < b->u.d);
}

/* A double beyond 2^53 that equals an int64: that int64 (the only doubles a
 * byte comparison would tell apart from an equal integer). */
static bool dbl_as_int(const ndb_doc_val *v, int64_t *out)
{
    if (v->type != NDB_DOC_DOUBLE || v->u.d != floor(v->u.d) || v->u.d >= TWO63 || v->u.d < -TWO63)
        return false;
    *out = (int64_t)v->u.d;
    return true;
}

bool val_equal(const ndb_doc_val *a, const ndb_doc_val *b)
{
    if (a->raw_len == b->raw_len && memcmp(a->raw, b->raw, a->raw_len) == 0)
        return true;
    return val_is_num(a) && val_is_num(b) && (a->type == NDB_DOC_DOUBLE) != (b->type == NDB_DOC_DOUBLE) &&
           val_numcmp(a, b) == 0;
}

uint64_t val_hash(const ndb_doc_val *v)
{
    uint8_t store[16];
    ndb_doc_val iv;
    int64_t i;
    if (dbl_as_int(v, &i)) {
        val_make_int(&iv, store, i);
        v = &iv;
    }
    /* FNV-1a, 64-bit */
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t k = 0; k < v->raw_len; k++) {
        h ^= v->raw[k];
        h *= 0x100000001b3ull;
    }
    return h;
}

ndb_status val_emit_norm(ndb_doc_builder *b, const ndb_doc_val *v)
{
    int64_t i;
    return dbl_as_int(v, &i) ? ndb_doc_int(b, i) : ndb_doc_value(b, v);
}

static int cmp_depth(const ndb_doc_val *a, const ndb_doc_val *b, int depth);

static int cmp_containers(const ndb_doc_val *a, const ndb_doc_val *b, int depth)
{
    ndb_doc_iter ia, ib;
    ndb_doc_iter_init(&ia, a);
    ndb_doc_iter_init(&ib, b);
    for (;;) {
        const char *ka, *kb;
        size_t la, lb;
        ndb_doc_val ea, eb;
        int ha = ndb_doc_iter_next(&ia, &ka, &la, &ea);
        int hb = ndb_doc_iter_next(&ib, &kb, &lb, &eb);
        if (!ha || !hb)
            return ha - hb;
        if (a->type == NDB_DOC_OBJECT) {
            int r = val_rank(ea.type) - val_rank(eb.type);
            if (r)
                return r;
            size_t m = la < lb ? la : lb;
            r = memcmp(ka, kb, m);
            if (r)
                return r;
            if (la != lb)
                return la < lb ? -1 : 1;
        }
        int r = cmp_depth(&ea, &eb, depth + 1);
        if (r)
            return r;
    }
}

static int cmp_depth(const ndb_doc_val *a, const ndb_doc_val *b, int depth)
{
    int ra = val_rank(a->type), rb = val_rank(b->type);
    if (ra != rb)
        return ra < rb ? -1 : 1;
    switch (a->type) {
    case NDB_DOC_NULL: return 0;
    case NDB_DOC_BOOL: return a->u.b - b->u.b;
    case NDB_DOC_INT:
    case NDB_DOC_DOUBLE: return val_numcmp(a, b);
    case NDB_DOC_DATE: return (a->u.i > b->u.i) - (a->u.i < b->u.i);
    case NDB_DOC_STRING: {
        size_t m = a->u.s.len < b->u.s.len ? a->u.s.len : b->u.s.len;
        int r = memcmp(a->u.s.ptr, b->u.s.ptr, m);
        if (r)
            return r < 0 ? -1 : 1;
        return (a->u.s.len > b->u.s.len) - (a->u.s.len < b->u.s.len);
    }
    case NDB_DOC_BINARY: { /* MongoDB: length, then subtype, then bytes */
        if (a->u.bin.len != b->u.bin.len)
            return a->u.bin.len < b->u.bin.len ? -1 : 1;
        if (a->u.bin.subtype != b->u.bin.subtype)
            return a->u.bin.subtype < b->u.bin.subtype ? -1 : 1;
        int r = a->u.bin.len ? memcmp(a->u.bin.ptr, b->u.bin.ptr, a->u.bin.len) : 0;
        return (r > 0) - (r < 0);
    }
    case NDB_DOC_ARRAY:
    case NDB_DOC_OBJECT:
        if (depth > NDB_DOC_MAX_DEPTH)
            return 0;
        return cmp_containers(a, b, depth);
    }
    return 0;
}

int ndb_doc_compare(const ndb_doc_val *a, const ndb_doc_val *b) { return cmp_depth(a, b, 0); }

/* ------------------------------------------------------------ key encoding */

static bool kput(dbuf *o, uint8_t c, bool desc) { return dbuf_byte(o, desc ? (uint8_t)~c : c); }

static bool kenc_str(dbuf *o, const char *s, size_t n, bool desc)
{
    for (size_t i = 0; i < n; i++) {
        uint8_t c = (uint8_t)s[i];
        kput(o, c, desc);
        if (c == 0)
            kput(o, 0xFF, desc);
    }
    kput(o, 0, desc);
    return kput(o, 0, desc);
}

static uint8_t kt_of(ndb_doc_type t)
{
    switch (t) {
    case NDB_DOC_NULL: return KT_NULL;
    case NDB_DOC_INT: case NDB_DOC_DOUBLE: return KT_NUM;
    case NDB_DOC_STRING: return KT_STR;
    case NDB_DOC_OBJECT: return KT_OBJ;
    case NDB_DOC_ARRAY: return KT_ARR;
    case NDB_DOC_BOOL: return KT_BOOL;
    case NDB_DOC_BINARY: return KT_BIN;
    case NDB_DOC_DATE: return KT_DATE;
    }
    return 0;
}

static bool kput64(dbuf *o, uint64_t v, bool desc)
{
    for (int i = 7; i >= 0; i--)
        kput(o, (uint8_t)(v >> (8 * i)), desc);
    return !o->oom;
}

/*
 * A number: the order-preserving bits of lo, the largest double <= v, then
 * v - lo in two bytes. Doubles and integers within +-2^53 have lo == v; an
 * int64 beyond 2^53 lies between two doubles at most 2^11 apart.
 */
static bool kenc_num(dbuf *o, const ndb_doc_val *v, bool desc)
{
    double lo;
    uint64_t off = 0;
    if (v->type == NDB_DOC_INT) {
        int64_t i = v->u.i;
        lo = (double)i;
        if (lo >= TWO63 || int_dbl_cmp(i, lo) < 0)
            lo = nextafter(lo, -INFINITY);
        off = (uint64_t)i - (uint64_t)(int64_t)lo;
    } else {
        lo = v->u.d;
    }
    if (lo == 0)
        lo = 0; /* -0 and 0 encode alike */
    uint64_t bits;
    memcpy(&bits, &lo, 8);
    bits = bits >> 63 ? ~bits : bits | 1ull << 63;
    assert(off < 2048); /* doubles are at most 2^11 apart below 2^63 */
    kput(o, KT_NUM, desc);
    kput64(o, bits, desc);
    kput(o, (uint8_t)(off >> 8), desc);
    return kput(o, (uint8_t)off, desc);
}

static bool kenc_depth(dbuf *o, const ndb_doc_val *v, bool desc, int depth)
{
    switch (v->type) {
    case NDB_DOC_NULL: return kput(o, KT_NULL, desc);
    case NDB_DOC_BOOL:
        kput(o, KT_BOOL, desc);
        return kput(o, v->u.b ? 1 : 0, desc);
    case NDB_DOC_INT:
    case NDB_DOC_DOUBLE: return kenc_num(o, v, desc);
    case NDB_DOC_DATE:
        kput(o, KT_DATE, desc);
        return kput64(o, (uint64_t)v->u.i ^ 1ull << 63, desc);
    case NDB_DOC_BINARY: /* length first: MongoDB orders binary by length, subtype, bytes */
        kput(o, KT_BIN, desc);
        for (int i = 3; i >= 0; i--)
            kput(o, (uint8_t)(v->u.bin.len >> (8 * i)), desc);
        kput(o, v->u.bin.subtype, desc);
        for (size_t i = 0; i < v->u.bin.len; i++)
            kput(o, v->u.bin.ptr[i], desc);
        return !o->oom;
    case NDB_DOC_STRING:
        kput(o, KT_STR, desc);
        return kenc_str(o, v->u.s.ptr, v->u.s.len, desc);
    case NDB_DOC_ARRAY:
    case NDB_DOC_OBJECT: {
        if (depth > NDB_DOC_MAX_DEPTH)
            return false;
        kput(o, v->type == NDB_DOC_OBJECT ? KT_OBJ : KT_ARR, desc);
        ndb_doc_iter it;
        ndb_doc_iter_init(&it, v);
        const char *k;
        size_t kl;
        ndb_doc_val e;
        while (ndb_doc_iter_next(&it, &k, &kl, &e)) {
            kput(o, 1, desc);
            if (k) { /* MongoDB compares a field's value type, then its name */
                kput(o, kt_of(e.type), desc);
                kenc_str(o, k, kl, desc);
            }
            if (!kenc_depth(o, &e, desc, depth + 1))
                return false;
        }
        if (it.st != NDB_OK)
            return false;
        return kput(o, 0, desc);
    }
    }
    return false;
}

bool kenc_value(dbuf *out, const ndb_doc_val *v, bool desc)
{
    return kenc_depth(out, v, desc, 0) && !out->oom;
}

bool kenc_null(dbuf *out, bool desc) { return kput(out, KT_NULL, desc); }

static const uint8_t *kskip_str(const uint8_t *p, const uint8_t *end, uint8_t x)
{
    while (p < end) {
        uint8_t c = *p++ ^ x;
        if (c == 0) {
            if (p >= end)
                return NULL;
            uint8_t n = *p++ ^ x;
            if (n == 0)
                return p;
            if (n != 0xFF)
                return NULL;
        }
    }
    return NULL;
}

static const uint8_t *kskip(const uint8_t *p, const uint8_t *end, uint8_t x, int depth)
{
    if (p >= end || depth > NDB_DOC_MAX_DEPTH)
        return NULL;
    uint8_t t = *p++ ^ x;
    switch (t) {
    case KT_NULL: return p;
    case KT_BOOL: return p < end ? p + 1 : NULL;
    case KT_NUM: return end - p >= 10 ? p + 10 : NULL;
    case KT_DATE: return end - p >= 8 ? p + 8 : NULL;
    case KT_BIN: {
        if (end - p < 5)
            return NULL;
        uint32_t n = 0;
        for (int i = 0; i < 4; i++)
            n = n << 8 | (uint8_t)(p[i] ^ x);
        return (size_t)(end - p) - 5 >= n ? p + 5 + n : NULL;
    }
    case KT_STR: return kskip_str(p, end, x);
    case KT_OBJ:
    case KT_ARR:
        while (p < end) {
            uint8_t m = *p++ ^ x;
            if (m == 0)
                return p;
            if (m != 1)
                return NULL;
            if (t == KT_OBJ && (p >= end || (p = kskip_str(p + 1, end, x)) == NULL))
                return NULL;
            if ((p = kskip(p, end, x, depth + 1)) == NULL)
                return NULL;
        }
        return NULL;
    }
    return NULL;
}

const uint8_t *kenc_skip(const uint8_t *p, const uint8_t *end, bool desc)
{
    return kskip(p, end, desc ? 0xFF : 0, 0);
}

void val_brief(const ndb_doc_val *v, char *out, size_t n)
{
    dbuf d = {0};
    if (n == 0)
        return;
    if (!json_write_val(&d, v, 0) || d.len == 0) {
        snprintf(out, n, "?");
    } else if (d.len < n) {
        memcpy(out, d.data, d.len);
        out[d.len] = 0;
    } else {
        snprintf(out, n, "%.*s...", (int)(n > 4 ? n - 4 : 0), (const char *)d.data);
    }
    dbuf_free(&d);
}
