/*
 * block.h — SSTable blocks: sorted entries with prefix-compressed keys and
 * restart points (internal). Layout: FORMAT.md "Block contents".
 *
 * Thread safety: a builder or iterator belongs to one thread; block bytes are
 * immutable and may be shared.
 */
#ifndef KV_BLOCK_H
#define KV_BLOCK_H

#include <stddef.h>
#include <stdint.h>

#include "iter.h"

#define BLOCK_RESTART_INTERVAL 16

typedef struct kv_block_builder {
    char *buf;
    size_t len, cap;
    uint32_t *restarts;
    size_t nrestarts, caprestarts;
    int counter; /* entries since the last restart */
    char *last;
    size_t last_len, last_cap;
    int failed; /* an allocation failed: finish() returns NULL */
    int interval; /* entries per restart point */
} kv_block_builder;

/* interval: entries between restart points (16 for data, 1 for the index). */
void kv_block_builder_init(kv_block_builder *b, int interval);
void kv_block_builder_destroy(kv_block_builder *b);
void kv_block_builder_reset(kv_block_builder *b);
/* Keys must be added in increasing order. */
void kv_block_builder_add(kv_block_builder *b, kv_slice key, kv_slice val);
/* Appends the restart array; returns the contents (borrowed until reset), or
 * {NULL,0} if an allocation failed. */
kv_slice kv_block_builder_finish(kv_block_builder *b);
size_t kv_block_builder_size(const kv_block_builder *b);
static inline int kv_block_builder_empty(const kv_block_builder *b) { return b->len == 0; }

/* An iterator over block contents [data, data+size) (internal keys).
 * release(arg) is called on destroy (may be NULL): it frees or unpins the
 * bytes. Bounds are checked: a malformed block gives NDB_ECORRUPT. */
kv_iter *kv_block_iter(const char *data, size_t size, void (*release)(void *), void *arg);

/*
 * Point lookup without allocating: finds the first entry >= target. On
 * NDB_OK, *found says whether one exists; *key is rebuilt in keybuf (keycap
 * bytes) and *val points into data. NDB_ETOOBIG when a key does not fit
 * keybuf (use an iterator then); NDB_ECORRUPT on a malformed block.
 */
ndb_status kv_block_find(const char *data, size_t size, kv_slice target, char *keybuf, size_t keycap,
                         int *found, kv_slice *key, kv_slice *val);
/* As kv_block_find; *ordinal receives the found entry's position in the
 * block, exact for blocks built with restart interval 1 (index blocks). */
ndb_status kv_block_find_at(const char *data, size_t size, kv_slice target, char *keybuf, size_t keycap,
                            int *found, kv_slice *key, kv_slice *val, uint32_t *ordinal);
/* The restart point holding the current entry of a block iterator; for an
 * interval-1 block, the entry's position. */
uint32_t kv_block_iter_restart(kv_iter *it);

/* A reusable block iterator with no contents yet (never valid until reset).
 * NULL on allocation failure. */
kv_iter *kv_block_iter_blank(void);
/* Re-points an iterator from kv_block_iter_blank/kv_block_iter at new
 * contents, releasing the old ones; keeps its key buffer. A malformed block
 * leaves it invalid with NDB_ECORRUPT. */
void kv_block_iter_reset(kv_iter *it, const char *data, size_t size, void (*release)(void *), void *arg);

/* Checks the restart array of a block; NDB_OK or NDB_ECORRUPT. */
ndb_status kv_block_check(const char *data, size_t size);

#endif /* KV_BLOCK_H */
