/*
 * iter.h — the internal iterator interface over internal keys, and the
 * merging iterator (internal).
 *
 * Every source (memtable, block, table, level, merge) exposes this vtable.
 * key()/value() are borrowed until the next move or destroy. A source that
 * meets an error becomes invalid and reports it through status().
 *
 * Every move publishes the new position in the base struct (valid, k), so a
 * stack of iterators reads its children's positions as plain loads instead
 * of a chain of indirect calls per layer (RocksDB's IteratorWrapper caches
 * the same two things). Each implementation sets both at the end of every
 * move; construct with kv_iter_init() so an unmoved iterator is invalid.
 *
 * Thread safety: an iterator belongs to one thread at a time.
 */
#ifndef KV_ITER_H
#define KV_ITER_H

#include "coding.h"
#include "ndb_status.h"

typedef struct kv_iter kv_iter;
typedef struct kv_iter_vtbl {
    void (*seek_first)(kv_iter *it);
    void (*seek_last)(kv_iter *it);
    void (*seek)(kv_iter *it, kv_slice target); /* first entry >= target */
    void (*next)(kv_iter *it);
    void (*prev)(kv_iter *it);
    kv_slice (*value)(kv_iter *it);
    ndb_status (*status)(kv_iter *it);
    void (*destroy)(kv_iter *it);
} kv_iter_vtbl;
struct kv_iter {
    const kv_iter_vtbl *v;
    int valid;  /* positioned on an entry */
    kv_slice k; /* its internal key when valid */
};

static inline void kv_iter_init(kv_iter *it, const kv_iter_vtbl *v)
{
    it->v = v;
    it->valid = 0;
    it->k = (kv_slice){"", 0};
}
/* What every move ends with. */
static inline void kv_iter_publish(kv_iter *it, int valid, kv_slice k)
{
    it->valid = valid;
    it->k = valid ? k : (kv_slice){"", 0};
}

static inline int it_valid(kv_iter *it) { return it->valid; }
static inline void it_seek_first(kv_iter *it) { it->v->seek_first(it); }
static inline void it_seek_last(kv_iter *it) { it->v->seek_last(it); }
static inline void it_seek(kv_iter *it, kv_slice t) { it->v->seek(it, t); }
static inline void it_next(kv_iter *it) { it->v->next(it); }
static inline void it_prev(kv_iter *it) { it->v->prev(it); }
static inline kv_slice it_key(kv_iter *it) { return it->k; }
static inline kv_slice it_value(kv_iter *it) { return it->v->value(it); }
static inline ndb_status it_status(kv_iter *it) { return it->v->status(it); }
static inline void it_destroy(kv_iter *it)
{
    if (it) it->v->destroy(it);
}

/* An iterator that is never valid and reports st. NULL on allocation failure. */
kv_iter *kv_iter_empty(ndb_status st);

/* Merges n children (ownership passes to the merge, even on failure) by
 * internal key. Caller destroys with it_destroy(). NULL on allocation failure. */
kv_iter *kv_iter_merge(kv_iter **children, int n);

#endif /* KV_ITER_H */
