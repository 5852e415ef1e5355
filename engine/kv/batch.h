/*
 * batch.h — write batch encoding shared by the public batch API, the WAL
 * payload and recovery (internal). Layout: FORMAT.md "Batch payload".
 *
 *   seq fixed64 | count fixed32 | count x (type u8, varint klen, key,
 *                                          [varint vlen, value if type=VALUE])
 */
#ifndef KV_BATCH_H
#define KV_BATCH_H

#include <stddef.h>
#include <stdint.h>

#include <string.h>

#include "ndb_kv.h"

#define BATCH_HEADER 12

struct ndb_kv_batch {
    char *rep;
    size_t len, cap;
    uint64_t user_bytes; /* key + value bytes, for stats */
};

/* Room one operation's encoding needs at most (type, key, value, two varints). */
#define BATCH_OP_MAX(klen, vlen) (1 + 10 + (size_t)(klen) + 10 + (size_t)(vlen))
/* Encodes one operation (type KV_TYPE_VALUE or KV_TYPE_DELETE; a delete
 * has no value) at p, which has BATCH_OP_MAX(klen, vlen) bytes of room;
 * returns the end of the encoding. */
char *kv_batch_encode_op(char *p, int type, const void *key, size_t klen, const void *val, size_t vlen);

/* Calls fn for every record of rep[0..len) in order, after validating all of
 * it first (so nothing is applied from a malformed batch): NDB_ECORRUPT if
 * malformed, else the first non-OK return of fn. */
typedef ndb_status (*kv_batch_fn)(void *arg, uint64_t seq, int type, const char *key, size_t klen,
                                  const char *val, size_t vlen);
ndb_status kv_batch_iterate(const char *rep, size_t len, kv_batch_fn fn, void *arg);
/* As kv_batch_iterate without the validation pass, numbering the records
 * from seq (rep's own sequence field is not read): only for encodings this
 * process built itself (the write path). */
ndb_status kv_batch_apply_trusted(const char *rep, size_t len, uint64_t seq, kv_batch_fn fn, void *arg);
/* Validates rep (bounds, types, count). */
ndb_status kv_batch_check(const char *rep, size_t len);

static inline uint32_t kv_batch_rep_count(const char *rep)
{
    uint32_t c;
    memcpy(&c, rep + 8, 4);
    return c;
}

#endif /* KV_BATCH_H */
