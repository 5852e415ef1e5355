/* seg.c — segment files; see seg.h and FORMAT.md. */
#include "ndb_coding.h"
#include "seg.h"

#include <stdlib.h>
#include <string.h>

#include "crc32c.h"
#include "env.h"
#include "ndb_vec.h"
#include "vfile.h"


/* Footer fields (FORMAT.md). */
enum {
    F_MAGIC = 0, F_VERSION = 8, F_DIMS = 12, F_METRIC = 16, F_STRIDE = 20, F_COLL = 24, F_LO = 32, F_HI = 40,
    F_NROWS = 48, F_IDBYTES = 56, F_DATA_CRC = 64, F_CRC = SEG_FOOTER - 4,
};

ndb_status seg_write(kv_env *fs, const char *path, const seg_identity *sid, uint64_t lo, uint64_t hi, const seg_rows *r,
                     ndb_errmsg *msg)
{
    if (r->n > SEG_MAX_ROWS)
        return ndb_errmsg_set(msg, NDB_ELIMIT, "segment %s: %llu rows exceed the limit", path,
                              (unsigned long long)r->n);
    size_t stride = seg_stride(sid->dims);
    uint64_t idbytes = 0;
    for (uint64_t i = 0; i < r->n; i++)
        idbytes += r->idlen[i];
    if (idbytes > UINT32_MAX)
        return ndb_errmsg_set(msg, NDB_ELIMIT, "segment %s: id table over 4 GiB", path);
    vfile_w w;
    ndb_status st = vfile_create(fs, path, &w);
    if (st != NDB_OK)
        return ndb_errmsg_set(msg, st, "segment %s: cannot create (%s)", path, ndb_strerror(st));
    /* the rows go out in one append, straight from memory */
    vfile_put_direct(&w, r->rows, (size_t)r->n * stride);
    vfile_put(&w, r->rowno, (size_t)r->n * 8);
    uint32_t off = 0;
    vfile_put(&w, &off, 4);
    for (uint64_t i = 0; i < r->n; i++) {
        off += r->idlen[i];
        vfile_put(&w, &off, 4);
    }
    for (uint64_t i = 0; i < r->n; i++)
        vfile_put(&w, r->ids[i], r->idlen[i]);
    unsigned char ft[SEG_FOOTER] = {0};
    memcpy(ft + F_MAGIC, SEG_MAGIC, 8);
    ndb_put_le32(ft + F_VERSION, SEG_VERSION);
    ndb_put_le32(ft + F_DIMS, sid->dims);
    ndb_put_le32(ft + F_METRIC, sid->metric);
    ndb_put_le32(ft + F_STRIDE, (uint32_t)stride);
    ndb_put_le64(ft + F_COLL, sid->coll);
    ndb_put_le64(ft + F_LO, lo);
    ndb_put_le64(ft + F_HI, hi);
    ndb_put_le64(ft + F_NROWS, r->n);
    ndb_put_le64(ft + F_IDBYTES, idbytes);
    ndb_put_le32(ft + F_DATA_CRC, w.crc);
    ndb_put_le32(ft + F_CRC, crc32c(ft, F_CRC));
    vfile_put(&w, ft, SEG_FOOTER);
    if (vfile_close(&w) != NDB_OK)
        return ndb_errmsg_set(msg, NDB_EIO, "segment %s: write failed", path);
    return NDB_OK;
}

#define BAD(...) ndb_errmsg_set(msg, NDB_ECORRUPT, __VA_ARGS__)

/* Reads and checks the footer of a size-byte file against sid; on success the
 * layout it implies fits the file exactly. */
static ndb_status read_footer(kv_env *fs, const char *path, const seg_identity *sid, uint64_t *size,
                              unsigned char *ft, ndb_errmsg *msg)
{
    kv_file *f;
    ndb_status st = fs->v->open_read(fs, path, &f);
    if (st != NDB_OK)
        return ndb_errmsg_set(msg, st == NDB_ENOTFOUND ? NDB_ECORRUPT : st, "segment %s: cannot open", path);
    size_t got = 0;
    if ((st = kv_file_size(f, size)) == NDB_OK && *size >= SEG_FOOTER)
        st = kv_file_pread(f, *size - SEG_FOOTER, ft, SEG_FOOTER, &got);
    kv_file_close(f);
    if (st != NDB_OK)
        return ndb_errmsg_set(msg, st, "segment %s: read failed", path);
    if (*size < SEG_FOOTER || got != SEG_FOOTER)
        return BAD("segment %s: truncated (%llu bytes)", path, (unsigned long long)*size);
    if (memcmp(ft + F_MAGIC, SEG_MAGIC, 8) != 0)
        return BAD("segment %s: bad magic", path);
    if (ndb_get_le32(ft + F_CRC) != crc32c(ft, F_CRC))
        return BAD("segment %s: footer checksum mismatch", path);
    if (ndb_get_le32(ft + F_VERSION) != SEG_VERSION)
        return BAD("segment %s: unsupported version %u", path, ndb_get_le32(ft + F_VERSION));
    if (ndb_get_le64(ft + F_COLL) != sid->coll || ndb_get_le32(ft + F_DIMS) != sid->dims || ndb_get_le32(ft + F_METRIC) != sid->metric)
        return BAD("segment %s: belongs to another collection (or dims/metric differ)", path);
    uint64_t nrows = ndb_get_le64(ft + F_NROWS), idbytes = ndb_get_le64(ft + F_IDBYTES);
    if (ndb_get_le32(ft + F_STRIDE) != seg_stride(sid->dims) || nrows > SEG_MAX_ROWS || idbytes > UINT32_MAX ||
        ndb_get_le64(ft + F_LO) > ndb_get_le64(ft + F_HI))
        return BAD("segment %s: bad stride, row count or range", path);
    /* nrows <= 2^30 and stride <= 64 KiB + 64: no overflow in 64 bits */
    uint64_t want = nrows * seg_stride(sid->dims) + nrows * 8 + (nrows + 1) * 4 + idbytes + SEG_FOOTER;
    if (*size != want)
        return BAD("segment %s: truncated or wrong size (%llu bytes, footer implies %llu)", path,
                   (unsigned long long)*size, (unsigned long long)want);
    return NDB_OK;
}

ndb_status seg_open(kv_env *fs, const char *path, uint32_t no, const seg_identity *sid, seg **out, ndb_errmsg *msg)
{
    unsigned char ft[SEG_FOOTER];
    uint64_t size;
    ndb_status st = read_footer(fs, path, sid, &size, ft, msg);
    if (st != NDB_OK)
        return st;
    const void *map;
    if ((st = fs->v->map(fs, path, size, &map)) != NDB_OK)
        return ndb_errmsg_set(msg, st, "segment %s: cannot map", path);
    const unsigned char *base = map;
    uint64_t nrows = ndb_get_le64(ft + F_NROWS), lo = ndb_get_le64(ft + F_LO), hi = ndb_get_le64(ft + F_HI);
    size_t stride = seg_stride(sid->dims);
    const uint64_t *rowno = (const uint64_t *)(base + nrows * stride); /* a multiple of 64 */
    const uint32_t *off = (const uint32_t *)(rowno + nrows);
    seg *s = NULL;
    if (crc32c(base, size - SEG_FOOTER) != ndb_get_le32(ft + F_DATA_CRC)) {
        st = BAD("segment %s: data checksum mismatch", path);
        goto fail;
    }
    for (uint64_t i = 0; i < nrows; i++) {
        if (rowno[i] < lo || rowno[i] >= hi || (i && rowno[i] <= rowno[i - 1])) {
            st = BAD("segment %s: row numbers out of order or range at row %llu", path, (unsigned long long)i);
            goto fail;
        }
    }
    if (off[0] != 0 || off[nrows] != ndb_get_le64(ft + F_IDBYTES)) {
        st = BAD("segment %s: id table bounds", path);
        goto fail;
    }
    for (uint64_t i = 0; i < nrows; i++) {
        uint32_t l = off[i + 1] - off[i];
        if (off[i + 1] < off[i] || l == 0 || l > NDB_VEC_MAX_ID) {
            st = BAD("segment %s: bad id length at row %llu", path, (unsigned long long)i);
            goto fail;
        }
    }
    s = calloc(1, sizeof *s);
    if (!s || !(s->dead = calloc((nrows + 63) / 64 + 1, 8))) {
        st = ndb_errmsg_set(msg, NDB_ENOMEM, "segment %s: out of memory", path);
        goto fail;
    }
    s->no = no;
    s->dims = sid->dims;
    s->lo = lo;
    s->hi = hi;
    s->nrows = nrows;
    s->stride = stride;
    s->rows = (const float *)base;
    s->rowno = rowno;
    s->id_off = off;
    s->id_bytes = (const char *)(off + nrows + 1);
    s->fs = fs;
    s->map = map;
    s->map_len = size;
    *out = s;
    return NDB_OK;
fail:
    free(s);
    fs->v->unmap(fs, map, size);
    return st;
}

void seg_close(seg *s)
{
    if (!s)
        return;
    s->fs->v->unmap(s->fs, s->map, s->map_len);
    free(s->dead);
    free(s);
}

int64_t seg_find_row(const seg *s, uint64_t r)
{
    uint64_t lo = 0, hi = s->nrows;
    while (lo < hi) {
        uint64_t mid = lo + (hi - lo) / 2;
        if (s->rowno[mid] < r)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < s->nrows && s->rowno[lo] == r ? (int64_t)lo : -1;
}
