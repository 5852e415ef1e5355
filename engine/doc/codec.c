/*
 * codec.c — the document encoding (FORMAT.md): builder, in-place reader,
 * path lookup and full validation of untrusted bytes.
 */
#include <assert.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "doc_int.h"

/* ------------------------------------------------------------------ dbuf */

bool dbuf_reserve(dbuf *b, size_t extra)
{
    if (b->oom)
        return false;
    if (b->cap - b->len >= extra)
        return true;
    size_t want = b->len + extra;
    if (want < b->len) {
        b->oom = true;
        return false;
    }
    size_t cap = b->cap ? b->cap : 64;
    while (cap < want)
        cap = cap * 2 > cap ? cap * 2 : want;
    uint8_t *d = realloc(b->data, cap);
    if (d == NULL) {
        b->oom = true;
        return false;
    }
    b->data = d;
    b->cap = cap;
    return true;
}

bool dbuf_varint_slow(dbuf *b, uint64_t v)
{
    uint8_t tmp[10];
    return dbuf_put(b, tmp, (size_t)(ndb_varint_put(tmp, v) - tmp));
}

void dbuf_free(dbuf *b)
{
    free(b->data);
    memset(b, 0, sizeof *b);
}

/* ---------------------------------------------------------------- reader */

static inline int64_t unzigzag(uint64_t u) { return (int64_t)(u >> 1) ^ -(int64_t)(u & 1); }
static inline uint64_t zigzag(int64_t v) { return ((uint64_t)v << 1) ^ (uint64_t)(v >> 63); }

const uint8_t *cod_read(const uint8_t *p, const uint8_t *end, ndb_doc_val *out)
{
    if (p >= end)
        return NULL;
    const uint8_t *start = p;
    uint8_t tag = *p++;
    switch (tag) {
    case TAG_NULL:
        out->type = NDB_DOC_NULL;
        break;
    case TAG_FALSE:
    case TAG_TRUE:
        out->type = NDB_DOC_BOOL;
        out->u.b = tag == TAG_TRUE;
        break;
    case TAG_INT: {
        uint64_t u;
        p = varint_get(p, end, &u, 10);
        if (p == NULL)
            return NULL;
        out->type = NDB_DOC_INT;
        out->u.i = unzigzag(u);
        break;
    }
    case TAG_DOUBLE: {
        if (end - p < 8)
            return NULL;
        uint64_t bits = (uint64_t)rd32(p) | (uint64_t)rd32(p + 4) << 32;
        memcpy(&out->u.d, &bits, 8);
        out->type = NDB_DOC_DOUBLE;
        p += 8;
        break;
    }
    case TAG_DATE: {
        if (end - p < 8)
            return NULL;
        out->u.i = (int64_t)rd64(p);
        out->type = NDB_DOC_DATE;
        p += 8;
        break;
    }
    case TAG_BINARY: {
        uint64_t n;
        if (p >= end)
            return NULL;
        out->u.bin.subtype = *p++;
        p = varint_get(p, end, &n, 5);
        if (p == NULL || n > (uint64_t)(end - p))
            return NULL;
        out->type = NDB_DOC_BINARY;
        out->u.bin.ptr = p;
        out->u.bin.len = (size_t)n;
        p += n;
        break;
    }
    case TAG_STRING: {
        uint64_t n;
        p = varint_get(p, end, &n, 5);
        if (p == NULL || n > (uint64_t)(end - p))
            return NULL;
        out->type = NDB_DOC_STRING;
        out->u.s.ptr = (const char *)p;
        out->u.s.len = (size_t)n;
        p += n;
        break;
    }
    case TAG_ARRAY:
    case TAG_OBJECT: {
        if (end - p < 8)
            return NULL;
        uint32_t blen = rd32(p), cnt = rd32(p + 4);
        p += 8;
        if (blen > (size_t)(end - p) || cnt > blen)
            return NULL;
        out->type = tag == TAG_ARRAY ? NDB_DOC_ARRAY : NDB_DOC_OBJECT;
        out->u.c.body = p;
        out->u.c.len = blen;
        out->u.c.count = cnt;
        p += blen;
        break;
    }
    default:
        return NULL;
    }
    out->raw = start;
    out->raw_len = (size_t)(p - start);
    return p;
}

ndb_status ndb_doc_root(const void *doc, size_t len, ndb_doc_val *out)
{
    const uint8_t *p = doc;
    if (p == NULL || len < 2 || p[0] != DOC_HDR)
        return NDB_ECORRUPT;
    const uint8_t *e = cod_read(p + 1, p + len, out);
    if (e == NULL || e != p + len)
        return NDB_ECORRUPT;
    return NDB_OK;
}

void ndb_doc_iter_init(ndb_doc_iter *it, const ndb_doc_val *c)
{
    it->st = NDB_OK;
    if (c->type == NDB_DOC_ARRAY || c->type == NDB_DOC_OBJECT) {
        it->p = c->u.c.body;
        it->end = c->u.c.body + c->u.c.len;
        it->left = c->u.c.count;
        it->is_object = c->type == NDB_DOC_OBJECT;
    } else {
        it->p = it->end = NULL;
        it->left = 0;
        it->is_object = 0;
    }
}

int ndb_doc_iter_next(ndb_doc_iter *it, const char **key, size_t *klen, ndb_doc_val *out)
{
    if (it->left == 0) {
        if (it->p != it->end && it->st == NDB_OK)
            it->st = NDB_ECORRUPT; /* count and length disagree */
        return 0;
    }
    const uint8_t *p = it->p;
    if (it->is_object) {
        uint64_t n;
        p = varint_get(p, it->end, &n, 5);
        if (p == NULL || n > (uint64_t)(it->end - p))
            goto bad;
        if (key) {
            *key = (const char *)p;
            *klen = (size_t)n;
        }
        p += n;
    } else if (key) {
        *key = NULL;
        *klen = 0;
    }
    p = cod_read(p, it->end, out);
    if (p == NULL)
        goto bad;
    it->p = p;
    it->left--;
    return 1;
bad:
    it->st = NDB_ECORRUPT;
    it->left = 0;
    it->p = it->end;
    return 0;
}

ndb_status ndb_doc_get_field(const ndb_doc_val *obj, const char *key, size_t klen,
                             ndb_doc_val *out)
{
    if (obj->type != NDB_DOC_OBJECT)
        return NDB_ENOTFOUND;
    const uint8_t *p = obj->u.c.body, *end = p + obj->u.c.len;
    for (uint32_t i = 0; i < obj->u.c.count; i++) {
        uint64_t n;
        if (p < end && *p < 0x80) { /* one-byte key length: the common case */
            n = *p++;
        } else {
            p = varint_get(p, end, &n, 5);
            if (p == NULL)
                return NDB_ECORRUPT;
        }
        if (n > (uint64_t)(end - p))
            return NDB_ECORRUPT;
        const uint8_t *k = p;
        p += n;
        if (n == klen && memcmp(k, key, klen) == 0)
            return cod_read(p, end, out) ? NDB_OK : NDB_ECORRUPT;
        /* skip the value without decoding it */
        if (p >= end)
            return NDB_ECORRUPT;
        switch (*p) {
        case TAG_NULL: case TAG_FALSE: case TAG_TRUE: p++; break;
        case TAG_DOUBLE: case TAG_DATE: p += 9; break;
        case TAG_INT:
            p++;
            while (p < end && (*p & 0x80))
                p++;
            p++;
            break;
        case TAG_STRING: {
            uint64_t sl;
            p++;
            if (p < end && *p < 0x80) {
                sl = *p++;
            } else {
                p = varint_get(p, end, &sl, 5);
                if (p == NULL)
                    return NDB_ECORRUPT;
            }
            if (sl > (uint64_t)(end - p))
                return NDB_ECORRUPT;
            p += sl;
            break;
        }
        case TAG_ARRAY: case TAG_OBJECT:
            if (end - p < 9)
                return NDB_ECORRUPT;
            p += 9 + (size_t)rd32(p + 1);
            break;
        default: {
            ndb_doc_val tmp;
            p = cod_read(p, end, &tmp);
            if (p == NULL)
                return NDB_ECORRUPT;
        }
        }
        if (p > end)
            return NDB_ECORRUPT;
    }
    return NDB_ENOTFOUND;
}

ndb_status ndb_doc_get_index(const ndb_doc_val *arr, uint32_t idx, ndb_doc_val *out)
{
    if (arr->type != NDB_DOC_ARRAY || idx >= arr->u.c.count)
        return NDB_ENOTFOUND;
    const uint8_t *p = arr->u.c.body, *end = p + arr->u.c.len;
    for (uint32_t i = 0; i <= idx; i++) {
        p = cod_read(p, end, out);
        if (p == NULL)
            return NDB_ECORRUPT;
    }
    return NDB_OK;
}

int64_t path_index(const char *c, size_t l)
{
    if (l == 0 || l > 9 || (l > 1 && c[0] == '0'))
        return -1;
    int64_t v = 0;
    for (size_t i = 0; i < l; i++) {
        if (c[i] < '0' || c[i] > '9')
            return -1;
        v = v * 10 + (c[i] - '0');
    }
    return v;
}

bool path_walk(const ndb_doc_val *v, const dpath *p, int i, bool in_array, path_leaf leaf, void *ctx)
{
    assert(i >= 0 && i <= p->n);
    if (i == p->n)
        return leaf(ctx, v, in_array);
    ndb_doc_val nx;
    if (v->type == NDB_DOC_OBJECT) {
        if (ndb_doc_get_field(v, p->c[i], p->l[i], &nx) == NDB_OK)
            return path_walk(&nx, p, i + 1, in_array, leaf, ctx);
        return leaf(ctx, NULL, in_array);
    }
    if (v->type != NDB_DOC_ARRAY)
        return leaf(ctx, NULL, in_array);
    int64_t ix = path_index(p->c[i], p->l[i]);
    if (ix >= 0 && ndb_doc_get_index(v, (uint32_t)ix, &nx) == NDB_OK &&
        path_walk(&nx, p, i + 1, true, leaf, ctx))
        return true;
    ndb_doc_iter it;
    ndb_doc_iter_init(&it, v);
    bool any = false;
    while (ndb_doc_iter_next(&it, NULL, NULL, &nx)) {
        if (nx.type != NDB_DOC_OBJECT)
            continue;
        any = true;
        if (path_walk(&nx, p, i, true, leaf, ctx))
            return true;
    }
    return !any && ix < 0 ? leaf(ctx, NULL, true) : false;
}

/* Writes doc with the value at path replaced by v (objects along the path),
 * or without that field when v is NULL. */
void doc_replace_path(const ndb_doc_val *obj, const dpath *p, int i, const ndb_doc_val *v,
                         ndb_doc_builder *b)
{
    ndb_doc_begin_object(b);
    ndb_doc_iter it;
    ndb_doc_iter_init(&it, obj);
    const char *k;
    size_t kl;
    ndb_doc_val e;
    while (ndb_doc_iter_next(&it, &k, &kl, &e)) {
        bool here = kl == p->l[i] && memcmp(k, p->c[i], kl) == 0;
        if (here && i + 1 == p->n && v == NULL)
            continue;
        ndb_doc_key(b, k, kl);
        if (here && i + 1 == p->n)
            ndb_doc_value(b, v);
        else if (here && e.type == NDB_DOC_OBJECT)
            doc_replace_path(&e, p, i + 1, v, b);
        else
            ndb_doc_value(b, &e);
    }
    ndb_doc_end_object(b);
}

static void set_chain(const dpath *p, int i, const ndb_doc_val *v, ndb_doc_builder *b)
{
    if (i == p->n) {
        ndb_doc_value(b, v);
        return;
    }
    ndb_doc_begin_object(b);
    ndb_doc_key(b, p->c[i], p->l[i]);
    set_chain(p, i + 1, v, b);
    ndb_doc_end_object(b);
}

/* Writes obj with the value at dotted path p (from component i) set to v:
 * objects along the way are descended, missing ones created, a scalar in the
 * way is replaced, and an array applies the rest of the path to each of its
 * objects. */
ndb_status doc_set_path(const ndb_doc_val *obj, const dpath *p, int i, const ndb_doc_val *v,
                        ndb_doc_builder *b)
{
    ndb_doc_begin_object(b);
    ndb_doc_iter it;
    ndb_doc_iter_init(&it, obj);
    const char *k;
    size_t kl;
    ndb_doc_val e;
    bool found = false;
    while (ndb_doc_iter_next(&it, &k, &kl, &e)) {
        ndb_doc_key(b, k, kl);
        if (found || kl != p->l[i] || memcmp(k, p->c[i], kl) != 0) {
            ndb_doc_value(b, &e);
            continue;
        }
        found = true;
        if (i + 1 == p->n) {
            ndb_doc_value(b, v);
        } else if (e.type == NDB_DOC_OBJECT) {
            doc_set_path(&e, p, i + 1, v, b);
        } else if (e.type == NDB_DOC_ARRAY) {
            ndb_doc_begin_array(b);
            ndb_doc_iter ai;
            ndb_doc_iter_init(&ai, &e);
            ndb_doc_val x;
            while (ndb_doc_iter_next(&ai, NULL, NULL, &x)) {
                if (x.type == NDB_DOC_OBJECT)
                    doc_set_path(&x, p, i + 1, v, b);
                else
                    ndb_doc_value(b, &x);
            }
            ndb_doc_end_array(b);
        } else {
            set_chain(p, i + 1, v, b);
        }
    }
    if (it.st != NDB_OK)
        return NDB_ECORRUPT;
    if (!found) {
        ndb_doc_key(b, p->c[i], p->l[i]);
        set_chain(p, i + 1, v, b);
    }
    return ndb_doc_end_object(b); /* the builder's first error sticks: this reports it */
}

ndb_status doc_set_top(const ndb_doc_val *obj, const char *key, size_t klen, const ndb_doc_val *v,
                       ndb_doc_builder *b)
{
    dpath p = {.n = 1};
    p.c[0] = key;
    p.l[0] = klen;
    return doc_set_path(obj, &p, 0, v, b);
}

ndb_status path_split(const char *p, size_t len, dpath *out)
{
    out->n = 0;
    size_t s = 0;
    for (size_t i = 0; i <= len; i++) {
        if (i == len || p[i] == '.') {
            if (i == s || out->n == PATH_MAX_COMP)
                return NDB_EINVAL;
            out->c[out->n] = p + s;
            out->l[out->n] = i - s;
            out->n++;
            s = i + 1;
        }
    }
    return NDB_OK;
}

ndb_status ndb_doc_get_path(const ndb_doc_val *root, const char *path, size_t plen,
                            ndb_doc_val *out)
{
    ndb_doc_val cur = *root;
    size_t s = 0;
    for (size_t i = 0; i <= plen; i++) {
        if (i < plen && path[i] != '.')
            continue;
        const char *c = path + s;
        size_t l = i - s;
        s = i + 1;
        ndb_doc_val nxt;
        ndb_status st;
        if (cur.type == NDB_DOC_OBJECT) {
            st = ndb_doc_get_field(&cur, c, l, &nxt);
        } else if (cur.type == NDB_DOC_ARRAY) {
            int64_t ix = path_index(c, l);
            if (ix < 0)
                return NDB_ENOTFOUND;
            st = ndb_doc_get_index(&cur, (uint32_t)ix, &nxt);
        } else {
            return NDB_ENOTFOUND;
        }
        if (st != NDB_OK)
            return st;
        cur = nxt;
    }
    *out = cur;
    return NDB_OK;
}

double ndb_doc_num(const ndb_doc_val *v)
{
    if (v->type == NDB_DOC_INT)
        return (double)v->u.i;
    if (v->type == NDB_DOC_DOUBLE)
        return v->u.d;
    return 0;
}

/* ------------------------------------------------------------ validation */

bool cod_utf8_ok(const uint8_t *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        /* fast path: 8 ASCII bytes at once */
        if (n - i >= 8) {
            uint64_t w;
            memcpy(&w, s + i, 8);
            if (!(w & 0x8080808080808080ull)) {
                i += 8;
                continue;
            }
        }
        uint8_t c = s[i];
        if (c < 0x80) {
            i++;
            continue;
        }
        size_t k;
        uint32_t cp;
        if (c >= 0xC2 && c <= 0xDF) {
            k = 1;
            cp = c & 0x1f;
        } else if (c >= 0xE0 && c <= 0xEF) {
            k = 2;
            cp = c & 0x0f;
        } else if (c >= 0xF0 && c <= 0xF4) {
            k = 3;
            cp = c & 0x07;
        } else {
            return false;
        }
        if (n - i <= k)
            return false;
        for (size_t j = 1; j <= k; j++) {
            if ((s[i + j] & 0xC0) != 0x80)
                return false;
            cp = cp << 6 | (s[i + j] & 0x3f);
        }
        if ((k == 2 && (cp < 0x800 || (cp >= 0xD800 && cp <= 0xDFFF))) ||
            (k == 3 && (cp < 0x10000 || cp > 0x10FFFF)))
            return false;
        i += k + 1;
    }
    return true;
}

static ndb_status val_check(const ndb_doc_val *v, const uint8_t *base, int depth, ndb_errmsg *msg)
{
    switch (v->type) {
    case NDB_DOC_DOUBLE:
        if (!isfinite(v->u.d))
            return ndb_errmsg_set(msg, NDB_ECORRUPT, "non-finite double at offset %zu",
                                  (size_t)(v->raw - base));
        if (v->u.d == floor(v->u.d) && fabs(v->u.d) <= (double)DOC_INT_MAX)
            return ndb_errmsg_set(msg, NDB_ECORRUPT, "integral double at offset %zu",
                                  (size_t)(v->raw - base));
        return NDB_OK;
    /* varints in their shortest form: equal values have equal bytes (value.c relies on it) */
    case NDB_DOC_INT:
        if (v->raw_len != 1 + ndb_varint_len(zigzag(v->u.i)))
            return ndb_errmsg_set(msg, NDB_ECORRUPT, "integer not in its shortest encoding at offset %zu",
                                  (size_t)(v->raw - base));
        return NDB_OK;
    case NDB_DOC_BINARY:
        if (v->raw_len != 2 + ndb_varint_len(v->u.bin.len) + v->u.bin.len)
            return ndb_errmsg_set(msg, NDB_ECORRUPT, "binary length not in its shortest encoding at offset %zu",
                                  (size_t)(v->raw - base));
        return NDB_OK;
    case NDB_DOC_STRING:
        if (v->raw_len != 1 + ndb_varint_len(v->u.s.len) + v->u.s.len)
            return ndb_errmsg_set(msg, NDB_ECORRUPT, "string length not in its shortest encoding at offset %zu",
                                  (size_t)(v->raw - base));
        if (!cod_utf8_ok((const uint8_t *)v->u.s.ptr, v->u.s.len))
            return ndb_errmsg_set(msg, NDB_ECORRUPT, "invalid UTF-8 at offset %zu",
                                  (size_t)(v->raw - base));
        return NDB_OK;
    case NDB_DOC_ARRAY:
    case NDB_DOC_OBJECT: {
        if (depth >= NDB_DOC_MAX_DEPTH)
            return ndb_errmsg_set(msg, NDB_ECORRUPT, "nesting deeper than %d at offset %zu",
                                  NDB_DOC_MAX_DEPTH, (size_t)(v->raw - base));
        ndb_doc_iter it;
        ndb_doc_iter_init(&it, v);
        const char *k;
        size_t kl;
        ndb_doc_val e;
        while (ndb_doc_iter_next(&it, &k, &kl, &e)) {
            if (k && !cod_utf8_ok((const uint8_t *)k, kl))
                return ndb_errmsg_set(msg, NDB_ECORRUPT, "invalid UTF-8 key at offset %zu",
                                      (size_t)((const uint8_t *)k - base));
            ndb_status st = val_check(&e, base, depth + 1, msg);
            if (st != NDB_OK)
                return st;
        }
        if (it.st != NDB_OK || it.p != it.end)
            return ndb_errmsg_set(msg, NDB_ECORRUPT, "bad container at offset %zu",
                                  (size_t)(v->raw - base));
        return NDB_OK;
    }
    default:
        return NDB_OK;
    }
}

ndb_status ndb_doc_validate(const void *doc, size_t len, ndb_errmsg *msg)
{
    if (len > NDB_DOC_MAX_BYTES)
        return ndb_errmsg_set(msg, NDB_ECORRUPT, "document of %zu bytes exceeds %u", len,
                              NDB_DOC_MAX_BYTES);
    const uint8_t *p = doc;
    if (p == NULL || len < 2)
        return ndb_errmsg_set(msg, NDB_ECORRUPT, "document too short (%zu bytes)", len);
    if (p[0] != DOC_HDR)
        return ndb_errmsg_set(msg, NDB_ECORRUPT, "bad document header 0x%02x", p[0]);
    ndb_doc_val v;
    const uint8_t *e = cod_read(p + 1, p + len, &v);
    if (e == NULL)
        return ndb_errmsg_set(msg, NDB_ECORRUPT, "bad value at offset 1");
    if (e != p + len)
        return ndb_errmsg_set(msg, NDB_ECORRUPT, "%zu trailing bytes", (size_t)(p + len - e));
    return val_check(&v, p, 0, msg);
}

/* --------------------------------------------------------------- builder */

typedef struct bframe {
    size_t start;   /* offset of the container's tag */
    uint32_t count; /* elements/fields so far */
    bool is_object;
    bool have_key;  /* object: a key was written, its value is due */
} bframe;

struct ndb_doc_builder {
    dbuf buf;
    size_t limit;
    int depth;
    bool done; /* the top-level value is complete */
    ndb_status err;
    bframe st[NDB_DOC_MAX_DEPTH + 1];
};

ndb_status ndb_doc_builder_new(ndb_doc_builder **out)
{
    ndb_doc_builder *b = calloc(1, sizeof *b);
    if (b == NULL)
        return NDB_ENOMEM;
    b->limit = NDB_DOC_MAX_BYTES;
    ndb_doc_builder_reset(b);
    if (b->err != NDB_OK) {
        ndb_doc_builder_free(b);
        return NDB_ENOMEM;
    }
    *out = b;
    return NDB_OK;
}

void ndb_doc_builder_free(ndb_doc_builder *b)
{
    if (b == NULL)
        return;
    dbuf_free(&b->buf);
    free(b);
}

void ndb_doc_builder_reset(ndb_doc_builder *b)
{
    b->buf.len = 0;
    b->buf.oom = false;
    b->depth = 0;
    b->done = false;
    b->err = NDB_OK;
    if (!dbuf_byte(&b->buf, DOC_HDR))
        b->err = NDB_ENOMEM;
}

void ndb_doc_builder_set_limit(ndb_doc_builder *b, size_t max_bytes) { b->limit = max_bytes; }

size_t cod_builder_len(const ndb_doc_builder *b) { return b->buf.len; }
int cod_builder_depth(const ndb_doc_builder *b) { return b->depth; }

/* Checks that a value may be written now and accounts for it. */
static inline ndb_status b_value(ndb_doc_builder *b)
{
    if (b->err != NDB_OK)
        return b->err;
    if (b->depth == 0) {
        if (b->done)
            return b->err = NDB_EINVAL;
        return NDB_OK;
    }
    bframe *f = &b->st[b->depth - 1];
    if (f->is_object) {
        if (!f->have_key)
            return b->err = NDB_EINVAL;
        f->have_key = false;
    } else {
        f->count++;
    }
    return NDB_OK;
}

static inline ndb_status b_after(ndb_doc_builder *b)
{
    if (b->buf.oom)
        return b->err = NDB_ENOMEM;
    if (b->buf.len > b->limit)
        return b->err = NDB_ETOOBIG;
    if (b->depth == 0)
        b->done = true;
    return NDB_OK;
}

static ndb_status b_begin(ndb_doc_builder *b, uint8_t tag)
{
    ndb_status st = b_value(b);
    if (st != NDB_OK)
        return st;
    if (b->depth >= NDB_DOC_MAX_DEPTH)
        return b->err = NDB_ETOOBIG;
    bframe *f = &b->st[b->depth++];
    f->start = b->buf.len;
    f->count = 0;
    f->is_object = tag == TAG_OBJECT;
    f->have_key = false;
    uint8_t hdr[9] = {tag};
    dbuf_put(&b->buf, hdr, 9);
    if (b->buf.oom)
        return b->err = NDB_ENOMEM;
    return NDB_OK;
}

static ndb_status b_end(ndb_doc_builder *b, bool object)
{
    if (b->err != NDB_OK)
        return b->err;
    if (b->depth == 0)
        return b->err = NDB_EINVAL;
    bframe *f = &b->st[b->depth - 1];
    if (f->is_object != object || (object && f->have_key))
        return b->err = NDB_EINVAL;
    size_t body = b->buf.len - f->start - 9;
    if (body > UINT32_MAX)
        return b->err = NDB_ETOOBIG;
    wr32(b->buf.data + f->start + 1, (uint32_t)body);
    wr32(b->buf.data + f->start + 5, f->count);
    b->depth--;
    return b_after(b);
}

ndb_status ndb_doc_begin_object(ndb_doc_builder *b) { return b_begin(b, TAG_OBJECT); }
ndb_status ndb_doc_begin_array(ndb_doc_builder *b) { return b_begin(b, TAG_ARRAY); }
ndb_status ndb_doc_end_object(ndb_doc_builder *b) { return b_end(b, true); }
ndb_status ndb_doc_end_array(ndb_doc_builder *b) { return b_end(b, false); }

ndb_status ndb_doc_key(ndb_doc_builder *b, const char *key, size_t klen)
{
    if (b->err != NDB_OK)
        return b->err;
    if (b->depth == 0)
        return b->err = NDB_EINVAL;
    bframe *f = &b->st[b->depth - 1];
    if (!f->is_object || f->have_key)
        return b->err = NDB_EINVAL;
    if (klen > b->limit || !cod_utf8_ok((const uint8_t *)key, klen))
        return b->err = NDB_EINVAL;
    f->have_key = true;
    f->count++;
    dbuf_varint(&b->buf, klen);
    dbuf_put(&b->buf, key, klen);
    return b->buf.oom ? (b->err = NDB_ENOMEM) : NDB_OK;
}

ndb_status ndb_doc_null(ndb_doc_builder *b)
{
    ndb_status st = b_value(b);
    if (st != NDB_OK)
        return st;
    dbuf_byte(&b->buf, TAG_NULL);
    return b_after(b);
}

ndb_status ndb_doc_bool(ndb_doc_builder *b, int v)
{
    ndb_status st = b_value(b);
    if (st != NDB_OK)
        return st;
    dbuf_byte(&b->buf, v ? TAG_TRUE : TAG_FALSE);
    return b_after(b);
}

static void put_double(dbuf *d, double v)
{
    uint8_t tmp[9];
    uint64_t bits;
    memcpy(&bits, &v, 8);
    tmp[0] = TAG_DOUBLE;
    wr32(tmp + 1, (uint32_t)bits);
    wr32(tmp + 5, (uint32_t)(bits >> 32));
    dbuf_put(d, tmp, 9);
}

ndb_status ndb_doc_int(ndb_doc_builder *b, int64_t v)
{
    ndb_status st = b_value(b);
    if (st != NDB_OK)
        return st;
    dbuf_byte(&b->buf, TAG_INT);
    dbuf_varint(&b->buf, zigzag(v));
    return b_after(b);
}

ndb_status ndb_doc_date(ndb_doc_builder *b, int64_t ms)
{
    ndb_status st = b_value(b);
    if (st != NDB_OK)
        return st;
    uint8_t tmp[9];
    tmp[0] = TAG_DATE;
    wr32(tmp + 1, (uint32_t)(uint64_t)ms);
    wr32(tmp + 5, (uint32_t)((uint64_t)ms >> 32));
    dbuf_put(&b->buf, tmp, 9);
    return b_after(b);
}

ndb_status ndb_doc_binary(ndb_doc_builder *b, uint8_t subtype, const void *p, size_t len)
{
    ndb_status st = b_value(b);
    if (st != NDB_OK)
        return st;
    if (len > b->limit)
        return b->err = NDB_ETOOBIG;
    dbuf_byte(&b->buf, TAG_BINARY);
    dbuf_byte(&b->buf, subtype);
    dbuf_varint(&b->buf, len);
    dbuf_put(&b->buf, p, len);
    return b_after(b);
}

ndb_status ndb_doc_double(ndb_doc_builder *b, double v)
{
    if (b->err == NDB_OK && !isfinite(v))
        return b->err = NDB_EINVAL;
    if (v == floor(v) && fabs(v) <= (double)DOC_INT_MAX)
        return ndb_doc_int(b, (int64_t)v);
    ndb_status st = b_value(b);
    if (st != NDB_OK)
        return st;
    put_double(&b->buf, v);
    return b_after(b);
}

ndb_status ndb_doc_string(ndb_doc_builder *b, const char *s, size_t len)
{
    ndb_status st = b_value(b);
    if (st != NDB_OK)
        return st;
    if (len > b->limit)
        return b->err = NDB_ETOOBIG;
    if (!cod_utf8_ok((const uint8_t *)s, len))
        return b->err = NDB_EINVAL;
    dbuf_byte(&b->buf, TAG_STRING);
    dbuf_varint(&b->buf, len);
    dbuf_put(&b->buf, s, len);
    return b_after(b);
}

/* Nesting depth of v (a scalar is 0), counting no further than limit + 1. */
static int val_depth(const ndb_doc_val *v, int limit)
{
    if (v->type != NDB_DOC_ARRAY && v->type != NDB_DOC_OBJECT)
        return 0;
    if (limit <= 0)
        return 1;
    int best = 1;
    ndb_doc_iter it;
    ndb_doc_iter_init(&it, v);
    ndb_doc_val e;
    const char *k;
    size_t kl;
    while (ndb_doc_iter_next(&it, &k, &kl, &e)) {
        if (e.type == NDB_DOC_ARRAY || e.type == NDB_DOC_OBJECT) {
            int d = 1 + val_depth(&e, limit - 1);
            if (d > best)
                best = d;
            if (best > limit)
                break;
        }
    }
    return best;
}

ndb_status ndb_doc_value(ndb_doc_builder *b, const ndb_doc_val *v)
{
    ndb_status st = b_value(b);
    if (st != NDB_OK)
        return st;
    if ((v->type == NDB_DOC_ARRAY || v->type == NDB_DOC_OBJECT) &&
        b->depth + val_depth(v, NDB_DOC_MAX_DEPTH - b->depth) > NDB_DOC_MAX_DEPTH)
        return b->err = NDB_ETOOBIG;
    dbuf_put(&b->buf, v->raw, v->raw_len);
    return b_after(b);
}

ndb_status cod_builder_fields(ndb_doc_builder *b, const uint8_t *p, size_t len, uint32_t count)
{
    if (b->err != NDB_OK)
        return b->err;
    /* fields of a top-level object nest no deeper here than they did there */
    assert(b->depth == 1 && b->st[0].is_object && !b->st[0].have_key);
    b->st[0].count += count;
    dbuf_put(&b->buf, p, len);
    return b_after(b);
}

ndb_status ndb_doc_builder_finish(ndb_doc_builder *b, const void **doc, size_t *len)
{
    if (b->err != NDB_OK)
        return b->err;
    if (b->depth != 0 || !b->done)
        return b->err = NDB_EINVAL;
    *doc = b->buf.data;
    *len = b->buf.len;
    return NDB_OK;
}

ndb_status ndb_doc_builder_take(ndb_doc_builder *b, void **doc, size_t *len)
{
    const void *d;
    size_t n;
    ndb_status st = ndb_doc_builder_finish(b, &d, &n);
    if (st != NDB_OK)
        return st;
    void *copy = malloc(n);
    if (copy == NULL)
        return NDB_ENOMEM;
    memcpy(copy, d, n);
    *doc = copy;
    *len = n;
    return NDB_OK;
}

/* ------------------------------------------------------------- constants */

void val_make_int(ndb_doc_val *v, uint8_t *store, int64_t i)
{
    dbuf d = {.data = store, .cap = 16};
    dbuf_byte(&d, TAG_INT);
    dbuf_varint(&d, zigzag(i));
    cod_read(store, store + d.len, v);
}

void val_make_double(ndb_doc_val *v, uint8_t *store, double x)
{
    if (x == floor(x) && fabs(x) <= (double)DOC_INT_MAX) {
        val_make_int(v, store, (int64_t)x);
        return;
    }
    dbuf d = {.data = store, .cap = 16};
    put_double(&d, x);
    cod_read(store, store + d.len, v);
}

void val_make_null(ndb_doc_val *v, uint8_t *store)
{
    store[0] = TAG_NULL;
    cod_read(store, store + 1, v);
}
