/*
 * bmap.c — an open-addressing hash map from byte strings to uint64, used for
 * duplicate detection in write batches, multikey de-duplication in cursors,
 * and $group keys. Linear probing, capacity a power of two, load <= 1/2.
 */
#include <stdlib.h>
#include <string.h>

#include "doc_int.h"

struct bmap_slot {
    uint64_t hash; /* 0: empty */
    size_t off, len;
    uint64_t val;
};

uint64_t bytes_hash(const void *p, size_t n)
{
    /* FNV-1a over 8-byte words, then a finaliser (fast for short keys) */
    const uint8_t *s = p;
    uint64_t h = 0xcbf29ce484222325ull ^ n;
    while (n >= 8) {
        uint64_t w;
        memcpy(&w, s, 8);
        h = (h ^ w) * 0x100000001b3ull;
        h ^= h >> 29;
        s += 8;
        n -= 8;
    }
    while (n--) {
        h ^= *s++;
        h *= 0x100000001b3ull;
    }
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdull;
    h ^= h >> 33;
    return h ? h : 1;
}

static bool grow(bmap *m)
{
    size_t cap = m->cap ? m->cap * 2 : 64;
    struct bmap_slot *s = calloc(cap, sizeof *s);
    if (s == NULL)
        return false;
    for (size_t i = 0; i < m->cap; i++) {
        if (!m->slots[i].hash)
            continue;
        size_t j = m->slots[i].hash & (cap - 1);
        while (s[j].hash)
            j = (j + 1) & (cap - 1);
        s[j] = m->slots[i];
    }
    free(m->slots);
    m->slots = s;
    m->cap = cap;
    return true;
}

uint64_t *bmap_find(const bmap *m, const void *key, size_t klen)
{
    if (m->cap == 0)
        return NULL;
    uint64_t h = bytes_hash(key, klen);
    for (size_t j = h & (m->cap - 1);; j = (j + 1) & (m->cap - 1)) {
        struct bmap_slot *s = &m->slots[j];
        if (!s->hash)
            return NULL;
        if (s->hash == h && s->len == klen && memcmp(m->keys.data + s->off, key, klen) == 0)
            return &s->val;
    }
}

uint64_t *bmap_upsert(bmap *m, const void *key, size_t klen, uint64_t init, bool *inserted)
{
    if ((m->n + 1) * 2 > m->cap && !grow(m))
        return NULL;
    uint64_t h = bytes_hash(key, klen);
    size_t j = h & (m->cap - 1);
    for (;; j = (j + 1) & (m->cap - 1)) {
        struct bmap_slot *s = &m->slots[j];
        if (!s->hash)
            break;
        if (s->hash == h && s->len == klen && memcmp(m->keys.data + s->off, key, klen) == 0) {
            if (inserted)
                *inserted = false;
            return &s->val;
        }
    }
    size_t off = m->keys.len;
    if (!dbuf_put(&m->keys, key, klen))
        return NULL;
    struct bmap_slot *s = &m->slots[j];
    s->hash = h;
    s->off = off;
    s->len = klen;
    s->val = init;
    m->n++;
    if (inserted)
        *inserted = true;
    return &s->val;
}

void bmap_clear(bmap *m)
{
    if (m->cap)
        memset(m->slots, 0, m->cap * sizeof *m->slots);
    m->n = 0;
    m->keys.len = 0;
}

void bmap_free(bmap *m)
{
    free(m->slots);
    dbuf_free(&m->keys);
    memset(m, 0, sizeof *m);
}

size_t bmap_bytes(const bmap *m) { return m->cap * sizeof(struct bmap_slot) + m->keys.cap; }
