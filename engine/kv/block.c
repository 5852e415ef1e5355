#include "block.h"

#include <stdlib.h>
#include <string.h>

#include "coding.h"
#include "dbformat.h"

static int grow(char **buf, size_t *cap, size_t need)
{
    if (need <= *cap) return 1;
    size_t nc = *cap ? *cap : 4096;
    while (nc < need) nc *= 2;
    char *nb = realloc(*buf, nc);
    if (nb == NULL) return 0;
    *buf = nb;
    *cap = nc;
    return 1;
}

void kv_block_builder_init(kv_block_builder *b, int interval)
{
    memset(b, 0, sizeof *b);
    b->interval = interval < 1 ? 1 : interval;
    kv_block_builder_reset(b);
}

void kv_block_builder_destroy(kv_block_builder *b)
{
    free(b->buf);
    free(b->restarts);
    free(b->last);
    memset(b, 0, sizeof *b);
}

static void add_restart(kv_block_builder *b, uint32_t off)
{
    if (b->nrestarts == b->caprestarts) {
        size_t nc = b->caprestarts ? b->caprestarts * 2 : 64;
        uint32_t *nr = realloc(b->restarts, nc * sizeof *nr);
        if (nr == NULL) {
            b->failed = 1;
            return;
        }
        b->restarts = nr;
        b->caprestarts = nc;
    }
    b->restarts[b->nrestarts++] = off;
}

void kv_block_builder_reset(kv_block_builder *b)
{
    b->len = 0;
    b->nrestarts = 0;
    b->counter = 0;
    b->last_len = 0;
    b->failed = 0;
    add_restart(b, 0);
}

size_t kv_block_builder_size(const kv_block_builder *b) { return b->len + b->nrestarts * 4 + 4; }

void kv_block_builder_add(kv_block_builder *b, kv_slice key, kv_slice val)
{
    if (b->failed) return;
    size_t shared = 0;
    if (b->counter < b->interval) {
        size_t n = key.len < b->last_len ? key.len : b->last_len;
        while (shared < n && b->last[shared] == key.data[shared]) shared++;
    } else {
        add_restart(b, (uint32_t)b->len);
        b->counter = 0;
    }
    size_t unshared = key.len - shared;
    if (!grow(&b->buf, &b->cap, b->len + 30 + unshared + val.len) ||
        !grow(&b->last, &b->last_cap, key.len ? key.len : 1)) {
        b->failed = 1;
        return;
    }
    char *p = b->buf + b->len;
    p = put_varint64(p, shared);
    p = put_varint64(p, unshared);
    p = put_varint64(p, val.len);
    memcpy(p, key.data + shared, unshared);
    p += unshared;
    if (val.len) memcpy(p, val.data, val.len);
    p += val.len;
    b->len = (size_t)(p - b->buf);
    memcpy(b->last, key.data, key.len);
    b->last_len = key.len;
    b->counter++;
}

kv_slice kv_block_builder_finish(kv_block_builder *b)
{
    if (b->failed || !grow(&b->buf, &b->cap, b->len + b->nrestarts * 4 + 4)) return (kv_slice){NULL, 0};
    char *p = b->buf + b->len;
    for (size_t i = 0; i < b->nrestarts; i++, p += 4) put_fixed32(p, b->restarts[i]);
    put_fixed32(p, (uint32_t)b->nrestarts);
    b->len += b->nrestarts * 4 + 4;
    return (kv_slice){b->buf, b->len};
}

/* ---- reading */

ndb_status kv_block_check(const char *data, size_t size)
{
    if (size < 4) return NDB_ECORRUPT;
    uint32_t n = get_fixed32(data + size - 4);
    if (n == 0 || n > (size - 4) / 4) return NDB_ECORRUPT;
    return NDB_OK;
}

ndb_status kv_block_find(const char *data, size_t size, kv_slice target, char *keybuf, size_t keycap,
                         int *found, kv_slice *key, kv_slice *val)
{
    uint32_t ord;
    return kv_block_find_at(data, size, target, keybuf, keycap, found, key, val, &ord);
}

ndb_status kv_block_find_at(const char *data, size_t size, kv_slice target, char *keybuf, size_t keycap,
                            int *found, kv_slice *key, kv_slice *val, uint32_t *ordinal)
{
    *found = 0;
    if (kv_block_check(data, size) != NDB_OK || size > UINT32_MAX) return NDB_ECORRUPT;
    uint32_t nr = get_fixed32(data + size - 4);
    const char *rs = data + size - 4 - (size_t)nr * 4, *end = rs;
    /* binary search: last restart whose key < target */
    uint32_t lo = 0, hi = nr - 1;
    while (lo < hi) {
        uint32_t mid = (lo + hi + 1) / 2;
        uint32_t off = get_fixed32(rs + (size_t)mid * 4);
        const char *p = data + off;
        uint32_t shared, unshared, vlen;
        if (data + off >= end || (p = get_varint32(p, end, &shared)) == NULL ||
            (p = get_varint32(p, end, &unshared)) == NULL || (p = get_varint32(p, end, &vlen)) == NULL ||
            shared != 0 || unshared < 8 || unshared > (size_t)(end - p))
            return NDB_ECORRUPT;
        if (ikey_cmp((kv_slice){p, unshared}, target) < 0)
            lo = mid;
        else
            hi = mid - 1;
    }
    uint32_t off = get_fixed32(rs + (size_t)lo * 4);
    if (data + off > end) return NDB_ECORRUPT;
    const char *p = data + off;
    size_t klen = 0;
    uint32_t k = 0;
    while (p < end) {
        uint32_t shared, unshared, vlen;
        if ((p = get_varint32(p, end, &shared)) == NULL || (p = get_varint32(p, end, &unshared)) == NULL ||
            (p = get_varint32(p, end, &vlen)) == NULL || shared > klen ||
            (uint64_t)unshared + vlen > (uint64_t)(end - p))
            return NDB_ECORRUPT;
        if ((size_t)shared + unshared > keycap) return NDB_ETOOBIG;
        memcpy(keybuf + shared, p, unshared);
        klen = (size_t)shared + unshared;
        if (klen < 8) return NDB_ECORRUPT;
        p += unshared;
        if (ikey_cmp((kv_slice){keybuf, klen}, target) >= 0) {
            *found = 1;
            *key = (kv_slice){keybuf, klen};
            *val = (kv_slice){p, vlen};
            *ordinal = lo + k;
            return NDB_OK;
        }
        p += vlen;
        k++;
    }
    return NDB_OK;
}

typedef struct block_iter {
    kv_iter base;
    const char *data;
    uint32_t restarts; /* offset of the restart array = end of entries */
    uint32_t nrestarts;
    uint32_t cur;      /* offset of the current entry; == restarts when invalid */
    uint32_t next_off; /* offset just past the current entry */
    uint32_t ridx;         /* restart block holding cur */
    uint32_t next_restart; /* offset of restart ridx + 1 (restarts if none) */
    char *key;
    size_t key_len, key_cap;
    kv_slice val;
    ndb_status st;
    void (*release)(void *);
    void *arg;
} block_iter;

static inline uint32_t restart_at(block_iter *b, uint32_t i) { return get_fixed32(b->data + b->restarts + i * 4); }

static void set_ridx(block_iter *b, uint32_t i)
{
    b->ridx = i;
    b->next_restart = i + 1 < b->nrestarts ? restart_at(b, i + 1) : b->restarts;
}

static void bi_corrupt(block_iter *b)
{
    b->st = NDB_ECORRUPT;
    b->cur = b->next_off = b->restarts;
    b->key_len = 0;
}

/* Decodes the entry at next_off into key/val; returns 0 at end or on corruption. */
static int parse_next(block_iter *b)
{
    b->cur = b->next_off;
    if (b->cur >= b->restarts) {
        b->cur = b->next_off = b->restarts;
        return 0;
    }
    const char *p = b->data + b->cur, *end = b->data + b->restarts;
    uint32_t shared, unshared, vlen;
    if ((p = get_varint32(p, end, &shared)) == NULL || (p = get_varint32(p, end, &unshared)) == NULL ||
        (p = get_varint32(p, end, &vlen)) == NULL || shared > b->key_len ||
        (uint64_t)unshared + vlen > (uint64_t)(end - p)) {
        bi_corrupt(b);
        return 0;
    }
    size_t klen = (size_t)shared + unshared;
    if (klen > b->key_cap) {
        size_t nc = b->key_cap ? b->key_cap : 64;
        while (nc < klen) nc *= 2;
        char *nk = realloc(b->key, nc);
        if (nk == NULL) {
            b->st = NDB_ENOMEM;
            b->cur = b->next_off = b->restarts;
            return 0;
        }
        b->key = nk;
        b->key_cap = nc;
    }
    if (unshared != 0) /* b->key is NULL before the first key: no NULL + 0 */
        copy_short(b->key + shared, p, unshared);
    b->key_len = klen;
    if (klen < 8) { /* every key in a table is an internal key */
        bi_corrupt(b);
        return 0;
    }
    b->val = (kv_slice){p + unshared, vlen};
    b->next_off = (uint32_t)(p + unshared + vlen - b->data);
    while (b->cur >= b->next_restart) set_ridx(b, b->ridx + 1);
    return 1;
}

static void seek_restart(block_iter *b, uint32_t i)
{
    b->key_len = 0;
    set_ridx(b, i);
    uint32_t off = restart_at(b, i);
    if (off > b->restarts) {
        bi_corrupt(b);
        return;
    }
    b->next_off = off;
}

static void bi_publish(block_iter *b)
{
    kv_iter_publish(&b->base, b->cur < b->restarts, (kv_slice){b->key, b->key_len});
}
static void bi_seek_first(kv_iter *it)
{
    block_iter *b = (block_iter *)it;
    if (b->st == NDB_OK && b->nrestarts > 0) {
        seek_restart(b, 0);
        if (b->st == NDB_OK) parse_next(b);
    }
    bi_publish(b);
}
static void bi_seek_last(kv_iter *it)
{
    block_iter *b = (block_iter *)it;
    if (b->st == NDB_OK && b->nrestarts > 0) {
        seek_restart(b, b->nrestarts - 1);
        while (b->st == NDB_OK && parse_next(b) && b->next_off < b->restarts) {
        }
    }
    bi_publish(b);
}
static void seek_block(block_iter *b, kv_slice target)
{
    if (b->st || b->nrestarts == 0) return;
    /* binary search: last restart whose key < target */
    uint32_t lo = 0, hi = b->nrestarts - 1;
    while (lo < hi) {
        uint32_t mid = (lo + hi + 1) / 2;
        uint32_t off = restart_at(b, mid);
        const char *p = b->data + off, *end = b->data + b->restarts;
        uint32_t shared, unshared, vlen;
        if (off >= b->restarts || (p = get_varint32(p, end, &shared)) == NULL ||
            (p = get_varint32(p, end, &unshared)) == NULL || (p = get_varint32(p, end, &vlen)) == NULL ||
            shared != 0 || unshared < 8 || unshared > (size_t)(end - p)) {
            bi_corrupt(b);
            return;
        }
        if (ikey_cmp((kv_slice){p, unshared}, target) < 0)
            lo = mid;
        else
            hi = mid - 1;
    }
    seek_restart(b, lo);
    while (b->st == NDB_OK && parse_next(b)) {
        if (ikey_cmp((kv_slice){b->key, b->key_len}, target) >= 0) return;
    }
}
static void bi_seek(kv_iter *it, kv_slice target)
{
    block_iter *b = (block_iter *)it;
    seek_block(b, target);
    bi_publish(b);
}
static void bi_next(kv_iter *it)
{
    block_iter *b = (block_iter *)it;
    parse_next(b);
    bi_publish(b);
}
static void step_back(block_iter *b)
{
    uint32_t orig = b->cur;
    /* back up to a restart point strictly before orig */
    uint32_t r = b->ridx;
    while (restart_at(b, r) >= orig) {
        if (r == 0) { /* orig was the first entry */
            b->cur = b->next_off = b->restarts;
            b->key_len = 0;
            return;
        }
        r--;
    }
    seek_restart(b, r);
    while (b->st == NDB_OK && parse_next(b) && b->next_off < orig) {
    }
}
static void bi_prev(kv_iter *it)
{
    block_iter *b = (block_iter *)it;
    step_back(b);
    bi_publish(b);
}
static kv_slice bi_value(kv_iter *it) { return ((block_iter *)it)->val; }
static ndb_status bi_status(kv_iter *it) { return ((block_iter *)it)->st; }
static void bi_destroy(kv_iter *it)
{
    block_iter *b = (block_iter *)it;
    if (b->release) b->release(b->arg);
    free(b->key);
    free(b);
}
static const kv_iter_vtbl block_vtbl = {bi_seek_first, bi_seek_last, bi_seek,   bi_next,
                                        bi_prev,       bi_value,     bi_status, bi_destroy};

uint32_t kv_block_iter_restart(kv_iter *it) { return ((block_iter *)it)->ridx; }

kv_iter *kv_block_iter_blank(void)
{
    block_iter *b = calloc(1, sizeof *b);
    if (b == NULL) return NULL;
    kv_iter_init(&b->base, &block_vtbl);
    b->data = "";
    return &b->base;
}

void kv_block_iter_reset(kv_iter *it, const char *data, size_t size, void (*release)(void *), void *arg)
{
    block_iter *b = (block_iter *)it;
    if (b->release) b->release(b->arg);
    b->release = release;
    b->arg = arg;
    b->key_len = 0;
    b->ridx = b->next_restart = 0;
    if (kv_block_check(data, size) != NDB_OK || size > UINT32_MAX) {
        b->data = "";
        b->nrestarts = b->restarts = b->cur = b->next_off = 0;
        b->st = NDB_ECORRUPT;
        bi_publish(b);
        return;
    }
    b->st = NDB_OK;
    b->data = data;
    b->nrestarts = get_fixed32(data + size - 4);
    b->restarts = (uint32_t)(size - 4 - (size_t)b->nrestarts * 4);
    b->cur = b->next_off = b->restarts;
    set_ridx(b, 0);
    bi_publish(b);
}

kv_iter *kv_block_iter(const char *data, size_t size, void (*release)(void *), void *arg)
{
    if (kv_block_check(data, size) != NDB_OK) {
        if (release) release(arg);
        return kv_iter_empty(NDB_ECORRUPT);
    }
    block_iter *b = calloc(1, sizeof *b);
    if (b == NULL) {
        if (release) release(arg);
        return NULL;
    }
    kv_iter_init(&b->base, &block_vtbl);
    b->data = data;
    b->nrestarts = get_fixed32(data + size - 4);
    b->restarts = (uint32_t)(size - 4 - (size_t)b->nrestarts * 4);
    b->cur = b->next_off = b->restarts;
    set_ridx(b, 0);
    b->release = release;
    b->arg = arg;
    return &b->base;
}
