/*
 * wal.h — the per-collection log of acknowledged writes not yet in a sealed
 * segment (wal.log; record format in FORMAT.md).
 *
 * Each record carries a CRC32C, its length and a log sequence number (LSN).
 * Replay stops at the first record that is short, fails its checksum or is
 * malformed (a torn tail from a crash), reports where the valid prefix ends
 * so the caller can truncate there, and skips records whose LSN is at or
 * below the manifest's checkpoint (already in segments).
 *
 * Thread safety: none; the collection's writer mutex serialises use.
 */
#ifndef NDB_VEC_WAL_H
#define NDB_VEC_WAL_H

#include <stddef.h>
#include <stdint.h>

#include "ndb_status.h"

#define WAL_PUT 1
#define WAL_DEL 2
#define WAL_HDR 8u   /* crc32c, length */
#define WAL_FIXED 11u /* type, lsn, id length */

static inline size_t wal_rec_size(int type, size_t id_len, uint32_t dims)
{
    return WAL_HDR + WAL_FIXED + id_len + (type == WAL_PUT ? (size_t)dims * 4 : 0);
}

/* Encodes one record at dst (wal_rec_size bytes). vec is dims floats for PUT. */
void wal_encode(unsigned char *dst, int type, uint64_t lsn, const char *id, size_t id_len, const float *vec,
                uint32_t dims);

/* Called per valid record with lsn > after_lsn; vec (PUT only) is dims floats,
 * unaligned, borrowed for the call. A non-OK return stops replay with it. */
typedef ndb_status (*wal_apply_fn)(void *ctx, int type, uint64_t lsn, const char *id, size_t id_len,
                                   const unsigned char *vec);

/* Replays the log open at fd. *valid_end gets the length of the valid prefix,
 * *last_lsn the highest LSN seen (or after_lsn). */
ndb_status wal_replay(int fd, const char *path, uint32_t dims, uint64_t after_lsn, wal_apply_fn fn, void *ctx,
                      uint64_t *valid_end, uint64_t *last_lsn, ndb_errmsg *msg);

#endif /* NDB_VEC_WAL_H */
