#include "batch.h"

#include <stdlib.h>
#include <string.h>

#include "coding.h"
#include "dbformat.h"
#include "wal.h"

ndb_status ndb_kv_batch_new(ndb_kv_batch **out)
{
    if (out == NULL) return NDB_EINVAL;
    ndb_kv_batch *b = calloc(1, sizeof *b);
    if (b == NULL) return NDB_ENOMEM;
    b->cap = 256;
    b->rep = calloc(1, b->cap);
    if (b->rep == NULL) {
        free(b);
        return NDB_ENOMEM;
    }
    b->len = BATCH_HEADER;
    *out = b;
    return NDB_OK;
}

void ndb_kv_batch_free(ndb_kv_batch *b)
{
    if (b == NULL) return;
    free(b->rep);
    free(b);
}

void ndb_kv_batch_clear(ndb_kv_batch *b)
{
    if (b == NULL) return;
    memset(b->rep, 0, BATCH_HEADER);
    b->len = BATCH_HEADER;
    b->user_bytes = 0;
}

uint32_t ndb_kv_batch_count(const ndb_kv_batch *b) { return b ? kv_batch_rep_count(b->rep) : 0; }

char *kv_batch_encode_op(char *p, int type, const void *key, size_t klen, const void *val, size_t vlen)
{
    *p++ = (char)type;
    p = put_varint64(p, klen);
    if (klen) memcpy(p, key, klen);
    p += klen;
    if (type == KV_TYPE_VALUE) {
        p = put_varint64(p, vlen);
        if (vlen) memcpy(p, val, vlen);
        p += vlen;
    }
    return p;
}

static ndb_status batch_add(ndb_kv_batch *b, int type, const void *key, size_t klen, const void *val,
                            size_t vlen)
{
    if (b == NULL || (key == NULL && klen) || (val == NULL && vlen)) return NDB_EINVAL;
    if (klen > NDB_KV_MAX_KEY || vlen > NDB_KV_MAX_VALUE) return NDB_ETOOBIG;
    uint32_t count = kv_batch_rep_count(b->rep);
    if (count == UINT32_MAX) return NDB_ELIMIT;
    size_t need = b->len + BATCH_OP_MAX(klen, vlen);
    if (need > (size_t)WAL_MAX_RECORD) return NDB_ETOOBIG;
    if (need > b->cap) {
        size_t nc = b->cap * 2;
        while (nc < need) nc *= 2;
        char *nr = realloc(b->rep, nc);
        if (nr == NULL) return NDB_ENOMEM;
        b->rep = nr;
        b->cap = nc;
    }
    char *p = kv_batch_encode_op(b->rep + b->len, type, key, klen, val, vlen);
    b->len = (size_t)(p - b->rep);
    count++;
    memcpy(b->rep + 8, &count, 4);
    b->user_bytes += klen + vlen;
    return NDB_OK;
}

ndb_status ndb_kv_batch_put(ndb_kv_batch *b, const void *key, size_t klen, const void *val,
                            size_t vlen)
{
    return batch_add(b, KV_TYPE_VALUE, key, klen, val, vlen);
}

ndb_status ndb_kv_batch_delete(ndb_kv_batch *b, const void *key, size_t klen)
{
    return batch_add(b, KV_TYPE_DELETE, key, klen, NULL, 0);
}

/* Validates rep and, when fn is set, calls it for each record numbered from seq. */
static ndb_status walk(const char *rep, size_t len, uint64_t seq, kv_batch_fn fn, void *arg)
{
    if (len < BATCH_HEADER) return NDB_ECORRUPT;
    uint32_t count = get_fixed32(rep + 8);
    const char *p = rep + BATCH_HEADER, *end = rep + len;
    for (uint32_t i = 0; i < count; i++) {
        if (p >= end) return NDB_ECORRUPT;
        int type = (unsigned char)*p++;
        if (type != KV_TYPE_VALUE && type != KV_TYPE_DELETE) return NDB_ECORRUPT;
        uint64_t klen, vlen = 0;
        p = get_varint64(p, end, &klen);
        if (p == NULL || klen > NDB_KV_MAX_KEY || klen > (uint64_t)(end - p)) return NDB_ECORRUPT;
        const char *key = p;
        p += klen;
        const char *val = "";
        if (type == KV_TYPE_VALUE) {
            p = get_varint64(p, end, &vlen);
            if (p == NULL || vlen > NDB_KV_MAX_VALUE || vlen > (uint64_t)(end - p)) return NDB_ECORRUPT;
            val = p;
            p += vlen;
        }
        if (fn) {
            ndb_status st = fn(arg, seq + i, type, key, klen, val, vlen);
            if (st != NDB_OK) return st;
        }
    }
    return p == end ? NDB_OK : NDB_ECORRUPT;
}

ndb_status kv_batch_check(const char *rep, size_t len) { return walk(rep, len, 0, NULL, NULL); }

ndb_status kv_batch_iterate(const char *rep, size_t len, kv_batch_fn fn, void *arg)
{
    ndb_status st = walk(rep, len, 0, NULL, NULL);
    if (st != NDB_OK) return st;
    return walk(rep, len, get_fixed64(rep), fn, arg);
}

ndb_status kv_batch_apply_trusted(const char *rep, size_t len, uint64_t seq, kv_batch_fn fn, void *arg)
{
    return walk(rep, len, seq, fn, arg);
}
