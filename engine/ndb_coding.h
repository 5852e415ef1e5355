/*
 * ndb_coding.h — the one integer codec: LEB128 varints (7 bits a byte, low
 * group first, high bit = more follows) and little-endian fixed-width
 * integers, as every on-disk and wire format of NexaDB writes them (kv's
 * tables, WAL and manifest; the document encoding; page tokens; the server's
 * protobuf checks). Decoders take an end pointer and return NULL when the
 * input is short or longer than maxbytes: every byte they read may be
 * hostile.
 */
#ifndef NDB_CODING_H
#define NDB_CODING_H

#include <stddef.h>
#include <stdint.h>

/* Bytes v takes as a varint (1..10). */
static inline size_t ndb_varint_len(uint64_t v)
{
    size_t n = 1;
    while (v >= 0x80) {
        v >>= 7;
        n++;
    }
    return n;
}

/* Writes v at p (room for ndb_varint_len(v) bytes); returns the end. */
static inline uint8_t *ndb_varint_put(uint8_t *p, uint64_t v)
{
    while (v >= 0x80) {
        *p++ = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    *p++ = (uint8_t)v;
    return p;
}

/* Reads a varint of at most maxbytes (<= 10) from [p, end): the byte after
 * it, or NULL when it is cut short or longer. */
static inline const uint8_t *ndb_varint_get(const uint8_t *p, const uint8_t *end, uint64_t *v, int maxbytes)
{
    uint64_t r = 0;
    for (int i = 0; i < maxbytes && p < end; i++) {
        uint8_t c = *p++;
        r |= (uint64_t)(c & 0x7f) << (7 * i);
        if (!(c & 0x80)) {
            *v = r;
            return p;
        }
    }
    return NULL;
}

static inline uint32_t ndb_get_le32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static inline uint64_t ndb_get_le64(const uint8_t *p) { return (uint64_t)ndb_get_le32(p) | (uint64_t)ndb_get_le32(p + 4) << 32; }
static inline void ndb_put_le32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
}
static inline void ndb_put_le64(uint8_t *p, uint64_t v)
{
    ndb_put_le32(p, (uint32_t)v);
    ndb_put_le32(p + 4, (uint32_t)(v >> 32));
}

#endif /* NDB_CODING_H */
