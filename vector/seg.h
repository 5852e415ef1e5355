/*
 * seg.h — sealed segment files: write once, then mmap read-only.
 *
 * Layout (byte tables in FORMAT.md): a 64-byte header, nrows rows of
 * `stride` bytes (dims float32 zero-padded to a multiple of 64 bytes, so
 * every row is 64-byte aligned in the mapping), then the id table
 * (u32 offsets[nrows + 1], then the id bytes). The header carries its own
 * CRC32C and one over everything after it.
 *
 * seg_open validates the header, the exact file size implied by it, every
 * id offset and both checksums before any row is used: a truncated or
 * corrupt file is NDB_ECORRUPT naming the file and the failed check, never a
 * SIGBUS later.
 *
 * Thread safety: a seg is immutable once opened except `dead`, which the
 * owning collection changes under its write lock.
 */
#ifndef NDB_VEC_SEG_H
#define NDB_VEC_SEG_H

#include <stddef.h>
#include <stdint.h>

#include "ndb_status.h"

#define SEG_MAGIC "NDBVSEG"  /* 8 bytes with the NUL */
#define SEG_VERSION 1u
#define SEG_HEADER 64u
#define SEG_MAX_ROWS (1u << 30)

typedef struct seg {
    uint32_t no;            /* file number: seg-<no>.vseg */
    uint32_t dims;
    uint64_t nrows;
    size_t stride;          /* bytes per row, multiple of 64 */
    const float *rows;      /* in the mapping; row i at rows + i*stride/4 */
    const uint32_t *id_off; /* nrows + 1 entries, in the mapping */
    const char *id_bytes;
    void *map;
    size_t map_len;
    uint64_t *dead;         /* bitmap, nrows bits; owned (malloc) */
    uint64_t ndead;
} seg;

/* Bytes per row for dims. */
static inline size_t seg_stride(uint32_t dims) { return ((size_t)dims * 4 + 63) & ~(size_t)63; }

/* Rows to write: row i's dims floats and its id. */
typedef void (*seg_row_fn)(void *ctx, uint64_t i, const float **row, const char **id, size_t *id_len);

/* Writes path (create/truncate), fsyncs it. Does not rename or fsync the
 * directory; the caller does. */
ndb_status seg_write(const char *path, uint32_t dims, uint32_t metric, uint64_t nrows, seg_row_fn fn,
                     void *ctx, ndb_errmsg *msg);

/* Opens and validates path for a collection of dims/metric. On success *out
 * is the segment (dead bitmap all clear); caller frees with seg_close. */
ndb_status seg_open(const char *path, uint32_t no, uint32_t dims, uint32_t metric, seg **out, ndb_errmsg *msg);
void seg_close(seg *s);

static inline const float *seg_row(const seg *s, uint64_t i)
{
    return (const float *)((const char *)s->rows + i * s->stride);
}
static inline const char *seg_id(const seg *s, uint64_t i, size_t *len)
{
    *len = s->id_off[i + 1] - s->id_off[i];
    return s->id_bytes + s->id_off[i];
}

#endif /* NDB_VEC_SEG_H */
