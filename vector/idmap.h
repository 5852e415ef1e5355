/*
 * idmap.h — document id -> row location (segment number, row), in memory.
 *
 * Open addressing with linear probing and backward-shift deletion; keys are
 * owned copies of the id bytes. Rebuilt on open from the segments' id
 * tables and the log.
 *
 * Thread safety: none; the collection changes it only under its write lock
 * and reads it under its read lock (or the writer mutex).
 * Invariants: count < cap * 3/4; cap is a power of two; every live row of the
 * collection has exactly one entry and vice versa.
 */
#ifndef NDB_VEC_IDMAP_H
#define NDB_VEC_IDMAP_H

#include <stddef.h>
#include <stdint.h>

#include "ndb_status.h"

typedef struct idmap_loc {
    uint32_t seg; /* segment number (the active segment's number too) */
    uint32_t row;
} idmap_loc;

typedef struct idmap_slot {
    char *key; /* NULL = empty */
    uint32_t len;
    uint32_t hash;
    idmap_loc loc;
} idmap_slot;

typedef struct idmap {
    idmap_slot *slots;
    size_t cap, count;
    size_t key_bytes; /* the keys' copies, together */
} idmap;

void idmap_init(idmap *m);
void idmap_free(idmap *m);
/* Pointer to the location of id, or NULL. Valid until the next put/del. */
idmap_loc *idmap_get(const idmap *m, const char *id, size_t len);
/* Inserts or overwrites. NDB_ENOMEM leaves the map unchanged. */
ndb_status idmap_put(idmap *m, const char *id, size_t len, idmap_loc loc);
/* Like idmap_put, but takes ownership of key (malloc'd, len bytes) and
 * cannot fail once idmap_reserve(m, 1) succeeded: the key is freed if id was
 * already present. */
void idmap_put_owned(idmap *m, char *key, size_t len, idmap_loc loc);
/* Removes id; returns 1 if it was present. */
int idmap_del(idmap *m, const char *id, size_t len);
/* Makes room for n more entries without rehashing later (best effort). */
ndb_status idmap_reserve(idmap *m, size_t n);

#endif /* NDB_VEC_IDMAP_H */
