/*
 * vfile.h — writing vector/'s derived files (segments, graphs) front to back
 * through the kv's file interface (kv_env, with its fault injection): a
 * buffered appender that keeps the CRC-32C of everything written, the first
 * failure sticking until close reports it.
 */
#ifndef NDB_VEC_VFILE_H
#define NDB_VEC_VFILE_H

#include <stddef.h>
#include <stdint.h>

#include "env.h"
#include "ndb_status.h"

typedef struct vfile_w {
    kv_file *f;
    unsigned char *buf;
    size_t n;
    uint32_t crc;  /* of every byte put so far */
    ndb_status st; /* the first failure */
} vfile_w;

/* Creates (or truncates) path. */
ndb_status vfile_create(kv_env *fs, const char *path, vfile_w *w);
/* Appends n bytes through the buffer. */
void vfile_put(vfile_w *w, const void *p, size_t n);
/* Appends n bytes straight from p (large arrays), after what is buffered. */
void vfile_put_direct(vfile_w *w, const void *p, size_t n);
/* Writes out what is buffered, closes, frees: the first failure, or NDB_OK.
 * Neither syncs nor renames. */
ndb_status vfile_close(vfile_w *w);

#endif /* NDB_VEC_VFILE_H */
