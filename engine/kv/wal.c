#include "wal.h"

#include <stdlib.h>
#include <string.h>

#include "coding.h"
#include "crc32c.h"

struct kv_wal_writer {
    kv_file *f;
    uint64_t size;
    char *buf;
    size_t cap;
};

ndb_status kv_wal_create(kv_env *env, const char *path, kv_wal_writer **out)
{
    *out = NULL;
    kv_wal_writer *w = calloc(1, sizeof *w);
    if (w == NULL) return NDB_ENOMEM;
    ndb_status st = env->v->open_append(env, path, KV_APPEND_LOG, &w->f);
    if (st != NDB_OK) {
        free(w);
        return st;
    }
    *out = w;
    return NDB_OK;
}

ndb_status kv_wal_add_parts(kv_wal_writer *w, int type, const void *a, size_t alen, const void *b, size_t blen)
{
    if (alen > WAL_MAX_RECORD || blen > WAL_MAX_RECORD - alen) return NDB_ETOOBIG;
    size_t n = alen + blen;
    size_t need = WAL_HEADER + n;
    if (need > w->cap) {
        size_t nc = w->cap ? w->cap : 4096;
        while (nc < need) nc *= 2;
        char *nb = realloc(w->buf, nc);
        if (nb == NULL) return NDB_ENOMEM;
        w->buf = nb;
        w->cap = nc;
    }
    char *h = w->buf;
    put_fixed32(h + 4, (uint32_t)n);
    h[8] = (char)type;
    if (alen) memcpy(h + WAL_HEADER, a, alen);
    if (blen) memcpy(h + WAL_HEADER + alen, b, blen);
    put_fixed32(h, crc32c_mask(crc32c(h + 4, 5 + n)));
    ndb_status st = kv_file_append(w->f, h, need);
    if (st == NDB_OK) w->size += need;
    return st;
}

void kv_wal_header(char h[WAL_HEADER], int type, const void *payload, size_t n)
{
    put_fixed32(h + 4, (uint32_t)n);
    h[8] = (char)type;
    put_fixed32(h, crc32c_mask(crc32c_extend(crc32c(h + 4, 5), payload, n)));
}

ndb_status kv_wal_sync(kv_wal_writer *w) { return kv_file_sync(w->f); }
uint64_t kv_wal_size(const kv_wal_writer *w) { return w->size; }

ndb_status kv_wal_close(kv_wal_writer *w)
{
    if (w == NULL) return NDB_OK;
    ndb_status st = kv_file_close(w->f);
    free(w->buf);
    free(w);
    return st;
}

/* ---- reader: buffered sequential reads */

struct kv_wal_reader {
    kv_file *f;
    uint64_t fsize;
    uint64_t base;     /* file offset of buf[0] */
    uint64_t good_end; /* end of the last good record */
    uint64_t skipped;
    char *buf;
    size_t cap, pos, end; /* next record at buf[pos]; valid bytes buf[0, end) */
    int done;
    int torn; /* the bad record ran past the end of the file (an interrupted append) */
};

ndb_status kv_wal_reader_open(kv_env *env, const char *path, kv_wal_reader **out)
{
    kv_wal_reader *r = calloc(1, sizeof *r);
    if (r == NULL) return NDB_ENOMEM;
    ndb_status st = env->v->open_read(env, path, &r->f);
    if (st == NDB_OK) st = kv_file_size(r->f, &r->fsize);
    if (st == NDB_OK) {
        r->cap = 1 << 20;
        r->buf = malloc(r->cap);
        if (r->buf == NULL) st = NDB_ENOMEM;
    }
    if (st != NDB_OK) {
        kv_wal_reader_free(r);
        return st;
    }
    *out = r;
    return NDB_OK;
}

/* Makes n bytes available at buf[pos]; NDB_ENOTFOUND if the file ends first. */
static ndb_status ensure(kv_wal_reader *r, size_t n)
{
    if (r->end - r->pos >= n) return NDB_OK;
    if (r->pos > 0) {
        memmove(r->buf, r->buf + r->pos, r->end - r->pos);
        r->base += r->pos;
        r->end -= r->pos;
        r->pos = 0;
    }
    if (n > r->cap) {
        size_t nc = r->cap;
        while (nc < n) nc *= 2;
        char *nb = realloc(r->buf, nc);
        if (nb == NULL) return NDB_ENOMEM;
        r->buf = nb;
        r->cap = nc;
    }
    while (r->end < n) {
        size_t got;
        ndb_status st = kv_file_pread(r->f, r->base + r->end, r->buf + r->end, r->cap - r->end, &got);
        if (st != NDB_OK) return st;
        if (got == 0) return NDB_ENOTFOUND;
        r->end += got;
    }
    return NDB_OK;
}

static ndb_status corrupt(kv_wal_reader *r, int torn)
{
    r->done = 1;
    r->torn = torn;
    r->skipped = r->fsize > r->good_end ? r->fsize - r->good_end : 0;
    return NDB_ECORRUPT;
}

static int all_zero(const char *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i]) return 0;
    return 1;
}

/* At a header of zeros (never a record: types start at 1). A log is reserved
 * ahead of its data (env.h, KV_APPEND_LOG), so zeros to the end of the file
 * are the clean end of what was written; anything after them means appends
 * reached the disk out of order before a crash: a torn tail. */
static ndb_status zero_tail(kv_wal_reader *r)
{
    if (!all_zero(r->buf + r->pos, r->end - r->pos)) return corrupt(r, 1);
    uint64_t off = r->base + r->end;
    while (off < r->fsize) {
        size_t got;
        ndb_status st = kv_file_pread(r->f, off, r->buf, r->cap, &got);
        if (st != NDB_OK) return st;
        if (got == 0) break;
        if (!all_zero(r->buf, got)) {
            r->pos = r->end = 0; /* the buffer no longer holds the file at base */
            return corrupt(r, 1);
        }
        off += got;
    }
    r->pos = r->end = 0;
    r->done = 1;
    return NDB_ENOTFOUND;
}

ndb_status kv_wal_read(kv_wal_reader *r, int *type, const char **payload, size_t *n)
{
    if (r->done) return r->skipped ? NDB_ECORRUPT : NDB_ENOTFOUND;
    uint64_t at = r->base + r->pos;
    if (at >= r->fsize) {
        r->done = 1;
        return NDB_ENOTFOUND;
    }
    ndb_status st = ensure(r, WAL_HEADER);
    if (st == NDB_ENOTFOUND) return corrupt(r, 1); /* torn header */
    if (st != NDB_OK) return st;
    if (all_zero(r->buf + r->pos, WAL_HEADER)) return zero_tail(r);
    uint32_t len = get_fixed32(r->buf + r->pos + 4);
    if (len > WAL_MAX_RECORD) return corrupt(r, 0);
    if ((uint64_t)len + WAL_HEADER > r->fsize - at) return corrupt(r, 1);
    st = ensure(r, WAL_HEADER + (size_t)len);
    if (st == NDB_ENOTFOUND) return corrupt(r, 1);
    if (st != NDB_OK) return st;
    const char *h = r->buf + r->pos;
    uint32_t want = crc32c_unmask(get_fixed32(h));
    if (crc32c(h + 4, 5 + (size_t)len) != want) return corrupt(r, 0);
    *type = (unsigned char)h[8];
    *payload = h + WAL_HEADER;
    *n = len;
    r->pos += WAL_HEADER + (size_t)len;
    r->good_end = r->base + r->pos;
    return NDB_OK;
}

uint64_t kv_wal_reader_skipped(const kv_wal_reader *r) { return r->skipped; }
int kv_wal_reader_torn(const kv_wal_reader *r) { return r->torn; }
uint64_t kv_wal_reader_offset(const kv_wal_reader *r) { return r->good_end; }

void kv_wal_reader_free(kv_wal_reader *r)
{
    if (r == NULL) return;
    kv_file_close(r->f);
    free(r->buf);
    free(r);
}
