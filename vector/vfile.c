/* vfile.c — the buffered, checksummed appender of vector/'s files (vfile.h). */
#include "vfile.h"

#include <stdlib.h>
#include <string.h>

#include "crc32c.h"

#define WBUF (1u << 20)

ndb_status vfile_create(kv_env *fs, const char *path, vfile_w *w)
{
    memset(w, 0, sizeof *w);
    if ((w->buf = malloc(WBUF)) == NULL)
        return NDB_ENOMEM;
    ndb_status st = fs->v->open_append(fs, path, 0, &w->f);
    if (st != NDB_OK) {
        free(w->buf);
        w->buf = NULL;
    }
    return st;
}

static void flush(vfile_w *w)
{
    if (w->st == NDB_OK && w->n)
        w->st = kv_file_append(w->f, w->buf, w->n);
    w->n = 0;
}

void vfile_put(vfile_w *w, const void *p, size_t n)
{
    w->crc = crc32c_extend(w->crc, p, n);
    const unsigned char *c = p;
    while (n > 0 && w->st == NDB_OK) {
        if (w->n == WBUF)
            flush(w);
        size_t m = WBUF - w->n < n ? WBUF - w->n : n;
        memcpy(w->buf + w->n, c, m);
        w->n += m;
        c += m;
        n -= m;
    }
}

void vfile_put_direct(vfile_w *w, const void *p, size_t n)
{
    w->crc = crc32c_extend(w->crc, p, n);
    flush(w);
    if (n > 0 && w->st == NDB_OK)
        w->st = kv_file_append(w->f, p, n);
}

ndb_status vfile_close(vfile_w *w)
{
    flush(w);
    ndb_status cst = kv_file_close(w->f);
    free(w->buf);
    w->buf = NULL;
    return w->st != NDB_OK ? w->st : cst;
}
