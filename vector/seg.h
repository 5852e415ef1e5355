/*
 * seg.h — segment files: rows built from what the kv log made durable,
 * written once, then memory-mapped read-only. Derived data: never the only
 * copy of anything, so they are not fsync'd; a damaged one is rebuilt.
 *
 * Layout (byte tables in FORMAT.md): nrows rows of `stride` bytes from
 * offset 0 (dims float32 zero-padded to a multiple of 64 bytes, so every row
 * is 64-byte aligned in the mapping); then the row numbers (u64, ascending,
 * within [lo, hi)), the id offsets (u32[nrows + 1]) and the id bytes; then a
 * 128-byte footer naming the collection incarnation, dims, metric and the row
 * numbers [lo, hi) the file covers, with a CRC-32C over everything before it
 * and one of its own. The file is written front to back in one pass.
 *
 * seg_open validates the footer, the exact file size implied by it, both
 * checksums, the row numbers and every id offset before any row is used: a
 * truncated or corrupt file is NDB_ECORRUPT naming the file and the failed
 * check, never a SIGBUS later.
 *
 * Thread safety: a seg is immutable once opened except `dead`, which the
 * owning collection changes under its write lock.
 */
#ifndef NDB_VEC_SEG_H
#define NDB_VEC_SEG_H

#include <stddef.h>
#include <stdint.h>

#include "ndb_status.h"

struct kv_env;

#define SEG_MAGIC "NDBVSEG" /* 8 bytes with the NUL */
#define SEG_VERSION 2u
#define SEG_FOOTER 128u
#define SEG_MAX_ROWS (1u << 30)

typedef struct seg {
    uint32_t no;            /* file number: seg-<no>.vseg */
    uint32_t dims;
    uint64_t lo, hi;        /* row numbers covered */
    uint64_t nrows;
    size_t stride;          /* bytes per row, multiple of 64 */
    const float *rows;      /* in the mapping; row i at rows + i*stride/4 */
    const uint64_t *rowno;  /* nrows ascending row numbers, in the mapping */
    const uint32_t *id_off; /* nrows + 1 entries, in the mapping */
    const char *id_bytes;
    struct kv_env *fs;
    const void *map;
    uint64_t map_len;
    uint64_t *dead;         /* bitmap, nrows bits; owned (malloc) */
    uint64_t ndead;
} seg;

/* What a segment file must say about itself to belong to a collection. */
typedef struct seg_identity {
    uint64_t coll;   /* the collection incarnation (its rows key prefix id) */
    uint32_t dims;
    uint32_t metric;
} seg_identity;

/* Bytes per row for dims. */
static inline size_t seg_stride(uint32_t dims) { return ((size_t)dims * 4 + 63) & ~(size_t)63; }

/* Rows to write, in the memory layout: n rows of stride bytes one after the
 * other (padding zeroed), their ids and their row numbers (ascending). */
typedef struct seg_rows {
    const float *rows;
    char *const *ids;
    const uint32_t *idlen;
    const uint64_t *rowno;
    uint64_t n;
} seg_rows;

/* Writes path (created or truncated) through fs; row numbers must ascend
 * within [lo, hi). Neither renames nor syncs: the caller renames a finished
 * file into place. */
ndb_status seg_write(struct kv_env *fs, const char *path, const seg_identity *id, uint64_t lo, uint64_t hi,
                     const seg_rows *rows, ndb_errmsg *msg);
/* Opens and validates path against id. On success *out is the segment (dead
 * bitmap all clear); caller frees with seg_close. */
ndb_status seg_open(struct kv_env *fs, const char *path, uint32_t no, const seg_identity *id, seg **out,
                    ndb_errmsg *msg);
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
/* Index of row number r in s, or -1. */
int64_t seg_find_row(const seg *s, uint64_t r);

#endif /* NDB_VEC_SEG_H */
