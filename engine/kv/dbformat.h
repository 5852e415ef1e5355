/*
 * dbformat.h — internal keys (internal).
 *
 * An internal key is the user key followed by an 8-byte little-endian trailer
 * (seq << 8 | type). Internal keys order by user key ascending (memcmp), then
 * by trailer descending, so the newest version of a key comes first.
 */
#ifndef KV_DBFORMAT_H
#define KV_DBFORMAT_H

#include <stdint.h>
#include <string.h>

#include "coding.h"

enum { KV_TYPE_DELETE = 0, KV_TYPE_VALUE = 1 };
#define KV_MAX_SEQ ((((uint64_t)1) << 56) - 1)
/* The type used in seek keys: the highest, so a seek lands on the newest
 * entry with seq <= the given one. */
#define KV_TYPE_SEEK KV_TYPE_VALUE

static inline uint64_t ikey_pack(uint64_t seq, int type) { return (seq << 8) | (uint64_t)type; }

/* The user-key part of an internal key (ikey.len >= 8 is checked by decoders). */
static inline kv_slice ikey_user(kv_slice ikey) { return (kv_slice){ikey.data, ikey.len - 8}; }
static inline uint64_t ikey_trailer(kv_slice ikey) { return get_fixed64(ikey.data + ikey.len - 8); }
static inline uint64_t ikey_seq(kv_slice ikey) { return ikey_trailer(ikey) >> 8; }
static inline int ikey_type(kv_slice ikey) { return (int)(ikey_trailer(ikey) & 0xff); }

static inline int ikey_cmp(kv_slice a, kv_slice b)
{
    int r = slice_cmp(ikey_user(a), ikey_user(b));
    if (r) return r;
    uint64_t ta = ikey_trailer(a), tb = ikey_trailer(b);
    return ta > tb ? -1 : ta < tb ? 1 : 0;
}

#endif /* KV_DBFORMAT_H */
