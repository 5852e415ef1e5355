/* seg.c — see seg.h and FORMAT.md. */
#include "seg.h"

#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "crc32c.h"
#include "ndb_vec.h"
#include "vio.h"

static void put32(unsigned char *p, uint32_t v) { memcpy(p, &v, 4); } /* little-endian hosts */
static void put64(unsigned char *p, uint64_t v) { memcpy(p, &v, 8); }
static uint32_t get32(const unsigned char *p)
{
    uint32_t v;
    memcpy(&v, p, 4);
    return v;
}
static uint64_t get64(const unsigned char *p)
{
    uint64_t v;
    memcpy(&v, p, 8);
    return v;
}

#define WBUF (1u << 20)

typedef struct wbuf {
    int fd;
    const char *path;
    unsigned char *buf;
    size_t n;
    uint32_t crc;
} wbuf;

static ndb_status wb_flush(wbuf *w, ndb_errmsg *msg)
{
    ndb_status st = vio_write_all(w->fd, w->buf, w->n, w->path, msg);
    w->n = 0;
    return st;
}

static ndb_status wb_put(wbuf *w, const void *p, size_t n, ndb_errmsg *msg)
{
    w->crc = crc32c_extend(w->crc, p, n);
    const unsigned char *c = p;
    while (n > 0) {
        if (w->n == WBUF) {
            ndb_status st = wb_flush(w, msg);
            if (st != NDB_OK)
                return st;
        }
        size_t m = WBUF - w->n < n ? WBUF - w->n : n;
        memcpy(w->buf + w->n, c, m);
        w->n += m;
        c += m;
        n -= m;
    }
    return NDB_OK;
}

ndb_status seg_write(const char *path, uint32_t dims, uint32_t metric, uint64_t nrows, seg_row_fn fn,
                     void *ctx, ndb_errmsg *msg)
{
    if (nrows > SEG_MAX_ROWS)
        return ndb_errmsg_set(msg, NDB_ELIMIT, "segment %s: %llu rows exceed the limit", path,
                              (unsigned long long)nrows);
    size_t stride = seg_stride(dims);
    int fd;
    ndb_status st = vio_open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644, &fd, msg);
    if (st != NDB_OK)
        return st;
    wbuf w = {fd, path, malloc(WBUF), 0, 0};
    unsigned char *rowbuf = calloc(1, stride);
    uint32_t *offs = malloc((nrows + 1) * sizeof(uint32_t));
    if (!w.buf || !rowbuf || !offs) {
        st = ndb_errmsg_set(msg, NDB_ENOMEM, "segment %s: out of memory", path);
        goto out;
    }
    unsigned char hdr[SEG_HEADER] = {0};
    st = vio_write_all(fd, hdr, SEG_HEADER, path, msg); /* placeholder, rewritten last */
    if (st != NDB_OK)
        goto out;
    uint64_t idbytes = 0;
    offs[0] = 0;
    for (uint64_t i = 0; i < nrows; i++) {
        const float *row;
        const char *id;
        size_t idlen;
        fn(ctx, i, &row, &id, &idlen);
        memcpy(rowbuf, row, (size_t)dims * 4); /* padding stays zero */
        if ((st = wb_put(&w, rowbuf, stride, msg)) != NDB_OK)
            goto out;
        idbytes += idlen;
        if (idbytes > UINT32_MAX) {
            st = ndb_errmsg_set(msg, NDB_ELIMIT, "segment %s: id table over 4 GiB", path);
            goto out;
        }
        offs[i + 1] = (uint32_t)idbytes;
    }
    if ((st = wb_put(&w, offs, (nrows + 1) * sizeof(uint32_t), msg)) != NDB_OK)
        goto out;
    for (uint64_t i = 0; i < nrows; i++) {
        const float *row;
        const char *id;
        size_t idlen;
        fn(ctx, i, &row, &id, &idlen);
        if ((st = wb_put(&w, id, idlen, msg)) != NDB_OK)
            goto out;
    }
    if ((st = wb_flush(&w, msg)) != NDB_OK)
        goto out;
    memcpy(hdr, SEG_MAGIC, 8);
    put32(hdr + 8, SEG_VERSION);
    put32(hdr + 12, dims);
    put32(hdr + 16, metric);
    put32(hdr + 20, (uint32_t)stride);
    put64(hdr + 24, nrows);
    put64(hdr + 32, SEG_HEADER + nrows * stride);
    put64(hdr + 40, (nrows + 1) * 4 + idbytes);
    put32(hdr + 48, w.crc);
    put32(hdr + 60, crc32c(hdr, 60));
    if ((st = vio_pwrite_all(fd, hdr, SEG_HEADER, 0, path, msg)) != NDB_OK)
        goto out;
    st = vio_fsync(fd, path, msg);
out:
    free(w.buf);
    free(rowbuf);
    free(offs);
    if (vio_close(fd) != NDB_OK && st == NDB_OK)
        st = ndb_errmsg_set(msg, NDB_EIO, "close %s failed", path);
    return st;
}

#define BAD(...) ndb_errmsg_set(msg, NDB_ECORRUPT, __VA_ARGS__)

ndb_status seg_open(const char *path, uint32_t no, uint32_t dims, uint32_t metric, seg **out, ndb_errmsg *msg)
{
    int fd;
    ndb_status st = vio_open(path, O_RDONLY, 0, &fd, msg);
    if (st != NDB_OK)
        return st;
    seg *s = NULL;
    void *map = NULL;
    uint64_t size;
    unsigned char hdr[SEG_HEADER];
    if ((st = vio_size(fd, &size, path, msg)) != NDB_OK)
        goto fail;
    if (size < SEG_HEADER) {
        st = BAD("segment %s: truncated (%llu bytes, header needs %u)", path, (unsigned long long)size,
                 SEG_HEADER);
        goto fail;
    }
    if ((st = vio_pread_exact(fd, hdr, SEG_HEADER, 0, path, msg)) != NDB_OK)
        goto fail;
    if (memcmp(hdr, SEG_MAGIC, 8) != 0) {
        st = BAD("segment %s: bad magic", path);
        goto fail;
    }
    if (get32(hdr + 60) != crc32c(hdr, 60)) {
        st = BAD("segment %s: header checksum mismatch", path);
        goto fail;
    }
    if (get32(hdr + 8) != SEG_VERSION) {
        st = BAD("segment %s: unsupported version %u", path, get32(hdr + 8));
        goto fail;
    }
    if (get32(hdr + 12) != dims || get32(hdr + 16) != metric) {
        st = BAD("segment %s: dims/metric %u/%u do not match the collection's %u/%u", path, get32(hdr + 12),
                 get32(hdr + 16), dims, metric);
        goto fail;
    }
    size_t stride = seg_stride(dims);
    uint64_t nrows = get64(hdr + 24), ids_off = get64(hdr + 32), ids_len = get64(hdr + 40);
    if (get32(hdr + 20) != stride || nrows > SEG_MAX_ROWS) {
        st = BAD("segment %s: bad stride or row count", path);
        goto fail;
    }
    /* nrows <= 2^30 and stride <= 64 KiB + 64: no overflow in 64 bits */
    if (ids_off != SEG_HEADER + nrows * stride || ids_len < (nrows + 1) * 4 || ids_len > UINT32_MAX ||
        size != ids_off + ids_len) {
        st = BAD("segment %s: truncated or wrong size (%llu bytes, header implies %llu)", path,
                 (unsigned long long)size, (unsigned long long)(ids_off + ids_len));
        goto fail;
    }
    if ((st = vio_mmap_ro(fd, size, &map, path, msg)) != NDB_OK)
        goto fail;
    const unsigned char *base = map;
    if (crc32c(base + SEG_HEADER, size - SEG_HEADER) != get32(hdr + 48)) {
        st = BAD("segment %s: data checksum mismatch", path);
        goto fail;
    }
    const uint32_t *off = (const uint32_t *)(base + ids_off); /* ids_off is a multiple of 64 */
    uint64_t idbytes = ids_len - (nrows + 1) * 4;
    if (off[0] != 0 || off[nrows] != idbytes) {
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
    s->dims = dims;
    s->nrows = nrows;
    s->stride = stride;
    s->rows = (const float *)(base + SEG_HEADER);
    s->id_off = off;
    s->id_bytes = (const char *)(off + nrows + 1);
    s->map = map;
    s->map_len = size;
    close(fd);
    *out = s;
    return NDB_OK;
fail:
    if (s)
        free(s->dead);
    free(s);
    if (map)
        munmap(map, size);
    close(fd);
    return st;
}

void seg_close(seg *s)
{
    if (!s)
        return;
    munmap(s->map, s->map_len);
    free(s->dead);
    free(s);
}
