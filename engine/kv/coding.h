/*
 * coding.h — little-endian fixed integers and LEB128 varints (internal).
 *
 * Decoders take an end pointer and return NULL when the input is short or
 * malformed: every byte they read may come from disk and is hostile.
 */
#ifndef KV_CODING_H
#define KV_CODING_H

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ndb_coding.h"

/* kv's char-pointer spelling of engine/ndb_coding.h, the one integer codec. */
static inline void put_fixed32(char *p, uint32_t v) { ndb_put_le32((uint8_t *)p, v); }
static inline void put_fixed64(char *p, uint64_t v) { ndb_put_le64((uint8_t *)p, v); }
static inline uint32_t get_fixed32(const char *p) { return ndb_get_le32((const uint8_t *)p); }
static inline uint64_t get_fixed64(const char *p) { return ndb_get_le64((const uint8_t *)p); }

/* Writes v as a varint at p (room for 10 bytes needed); returns the end. */
static inline char *put_varint64(char *p, uint64_t v) { return (char *)ndb_varint_put((uint8_t *)p, v); }
static inline char *put_varint32(char *p, uint32_t v) { return put_varint64(p, v); }
static inline int varint_len(uint64_t v) { return (int)ndb_varint_len(v); }

/* Decodes a varint from [p, end); returns the byte after it, or NULL. */
static inline const char *get_varint64(const char *p, const char *end, uint64_t *v)
{
    return (const char *)ndb_varint_get((const uint8_t *)p, (const uint8_t *)end, v, 10);
}
static inline const char *get_varint32(const char *p, const char *end, uint32_t *v)
{
    if (p < end && !((unsigned char)*p & 0x80)) { /* fast path: one byte */
        *v = (unsigned char)*p;
        return p + 1;
    }
    uint64_t r;
    p = get_varint64(p, end, &r);
    if (p == NULL || r > UINT32_MAX) return NULL;
    *v = (uint32_t)r;
    return p;
}

/* A borrowed byte range. */
typedef struct kv_slice {
    const char *data;
    size_t len;
} kv_slice;

/* memcpy for the short, variable lengths of keys: two overlapping fixed-size
 * copies instead of a library call for up to 64 bytes. */
static inline void copy_short(char *dst, const char *src, size_t n)
{
    if (n > 32 && n <= 64) {
        memcpy(dst, src, 32);
        memcpy(dst + n - 32, src + n - 32, 32);
    } else if (n >= 16 && n <= 32) {
        memcpy(dst, src, 16);
        memcpy(dst + n - 16, src + n - 16, 16);
    } else if (n >= 8 && n < 16) {
        memcpy(dst, src, 8);
        memcpy(dst + n - 8, src + n - 8, 8);
    } else if (n < 8) {
        for (size_t i = 0; i < n; i++) dst[i] = src[i];
    } else {
        memcpy(dst, src, n);
    }
}

/* Copies s into the growable buffer *buf (capacity *cap), setting *len.
 * 0 when it could not grow (the buffer is left as it was). */
static inline int kv_slice_keep(char **buf, size_t *cap, size_t *len, kv_slice s)
{
    if (s.len > *cap) {
        size_t nc = *cap ? *cap * 2 : 64;
        while (nc < s.len) nc *= 2;
        char *nb = realloc(*buf, nc);
        if (nb == NULL) return 0;
        *buf = nb;
        *cap = nc;
    }
    copy_short(*buf, s.data, s.len);
    *len = s.len;
    return 1;
}

static inline int cmp8(const char *p, const char *q)
{
    uint64_t x, y;
    memcpy(&x, p, 8);
    memcpy(&y, q, 8);
    if (x == y) return 0;
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    x = __builtin_bswap64(x);
    y = __builtin_bswap64(y);
#endif
    return x < y ? -1 : 1;
}

/* Equal bytes? Keys that share a long prefix (a table's, an index's) differ
 * near the end, so the last 8 bytes are compared first. */
static inline int slice_eq(kv_slice a, kv_slice b)
{
    if (a.len != b.len) return 0;
    size_t n = a.len;
    if (n < 8) return memcmp(a.data, b.data, n) == 0;
    if (cmp8(a.data + n - 8, b.data + n - 8) != 0) return 0;
    for (size_t i = 0; i + 8 < n; i += 8)
        if (cmp8(a.data + i, b.data + i) != 0) return 0;
    return 1;
}

/* memcmp order, shorter first on a tie. Keys compare 8 bytes at a time
 * (big-endian loads) instead of calling memcmp; a tail of under 8 bytes is
 * one more load overlapping bytes already known equal. */
static inline int slice_cmp(kv_slice a, kv_slice b)
{
    size_t m = a.len < b.len ? a.len : b.len;
    const char *p = a.data, *q = b.data;
    int r = 0;
    if (m >= 8) {
        size_t i = 0;
        for (; i + 8 <= m && r == 0; i += 8) r = cmp8(p + i, q + i);
        if (r == 0 && i < m) r = cmp8(p + m - 8, q + m - 8);
    } else {
        for (size_t i = 0; i < m && r == 0; i++) r = (unsigned char)p[i] - (unsigned char)q[i];
    }
    if (r == 0) r = (a.len > b.len) - (a.len < b.len);
    return r;
}

#endif /* KV_CODING_H */
