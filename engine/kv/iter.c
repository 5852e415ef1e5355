#include "iter.h"

#include <stdlib.h>

#include "dbformat.h"

/* ---- empty */

typedef struct empty_iter {
    kv_iter base;
    ndb_status st;
} empty_iter;

static void ei_nop(kv_iter *it) { (void)it; }
static void ei_seek(kv_iter *it, kv_slice t)
{
    (void)it;
    (void)t;
}
static kv_slice ei_value(kv_iter *it)
{
    (void)it;
    return (kv_slice){"", 0};
}
static ndb_status ei_status(kv_iter *it) { return ((empty_iter *)it)->st; }
static void ei_destroy(kv_iter *it) { free(it); }
static const kv_iter_vtbl empty_vtbl = {ei_nop, ei_nop, ei_seek, ei_nop, ei_nop, ei_value, ei_status, ei_destroy};

kv_iter *kv_iter_empty(ndb_status st)
{
    empty_iter *e = malloc(sizeof *e);
    if (e == NULL) return NULL;
    kv_iter_init(&e->base, &empty_vtbl);
    e->st = st;
    return &e->base;
}

/* ---- merge: a linear scan over few children (memtables, L0 files, one per level).
 * Going forward it remembers the child with the second smallest key: while
 * the current child's next key stays below that one (a run of keys from one
 * table, as after compaction most runs are), a step costs one comparison
 * instead of a scan of every child. */

typedef struct merge_iter {
    kv_iter base;
    int n;
    int cur; /* -1 when invalid */
    int runner; /* forward: the child with the second smallest key; -1 none */
    int forward;
    kv_iter *c[];
} merge_iter;

static void find_smallest(merge_iter *m)
{
    int best = -1, second = -1;
    kv_slice bk = {0}, sk = {0};
    for (int i = 0; i < m->n; i++) {
        if (!it_valid(m->c[i])) continue;
        kv_slice k = it_key(m->c[i]);
        if (best < 0 || ikey_cmp(k, bk) < 0) {
            second = best;
            sk = bk;
            best = i;
            bk = k;
        } else if (second < 0 || ikey_cmp(k, sk) < 0) {
            second = i;
            sk = k;
        }
    }
    m->cur = best;
    m->runner = second;
    kv_iter_publish(&m->base, best >= 0, bk);
}

static void find_largest(merge_iter *m)
{
    int best = -1;
    kv_slice bk = {0};
    for (int i = m->n - 1; i >= 0; i--) {
        if (!it_valid(m->c[i])) continue;
        kv_slice k = it_key(m->c[i]);
        if (best < 0 || ikey_cmp(k, bk) > 0) {
            best = i;
            bk = k;
        }
    }
    m->cur = best;
    kv_iter_publish(&m->base, best >= 0, bk);
}

static void mg_seek_first(kv_iter *it)
{
    merge_iter *m = (merge_iter *)it;
    for (int i = 0; i < m->n; i++) it_seek_first(m->c[i]);
    find_smallest(m);
    m->forward = 1;
}
static void mg_seek_last(kv_iter *it)
{
    merge_iter *m = (merge_iter *)it;
    for (int i = 0; i < m->n; i++) it_seek_last(m->c[i]);
    find_largest(m);
    m->forward = 0;
}
static void mg_seek(kv_iter *it, kv_slice t)
{
    merge_iter *m = (merge_iter *)it;
    for (int i = 0; i < m->n; i++) it_seek(m->c[i], t);
    find_smallest(m);
    m->forward = 1;
}
static void mg_next(kv_iter *it)
{
    merge_iter *m = (merge_iter *)it;
    kv_iter *cur = m->c[m->cur];
    if (!m->forward) {
        /* Every other child must move to the first entry after key(). */
        kv_slice k = it_key(cur);
        for (int i = 0; i < m->n; i++) {
            if (i == m->cur) continue;
            it_seek(m->c[i], k);
            if (it_valid(m->c[i]) && ikey_cmp(k, it_key(m->c[i])) == 0) it_next(m->c[i]);
        }
        m->forward = 1;
        it_next(cur);
        find_smallest(m);
        return;
    }
    it_next(cur);
    /* the runner-up has not moved: cur is still the smallest while below it */
    if (it_valid(cur) && (m->runner < 0 || ikey_cmp(it_key(cur), it_key(m->c[m->runner])) < 0)) {
        kv_iter_publish(&m->base, 1, it_key(cur));
        return;
    }
    find_smallest(m);
}
static void mg_prev(kv_iter *it)
{
    merge_iter *m = (merge_iter *)it;
    kv_iter *cur = m->c[m->cur];
    if (m->forward) {
        kv_slice k = it_key(cur);
        for (int i = 0; i < m->n; i++) {
            if (i == m->cur) continue;
            it_seek(m->c[i], k);
            if (it_valid(m->c[i]))
                it_prev(m->c[i]); /* first entry >= k: step before it */
            else
                it_seek_last(m->c[i]);
        }
        m->forward = 0;
    }
    it_prev(cur);
    find_largest(m);
}
static kv_slice mg_value(kv_iter *it)
{
    merge_iter *m = (merge_iter *)it;
    return it_value(m->c[m->cur]);
}
static ndb_status mg_status(kv_iter *it)
{
    merge_iter *m = (merge_iter *)it;
    for (int i = 0; i < m->n; i++) {
        ndb_status st = it_status(m->c[i]);
        if (st != NDB_OK) return st;
    }
    return NDB_OK;
}
static void mg_destroy(kv_iter *it)
{
    merge_iter *m = (merge_iter *)it;
    for (int i = 0; i < m->n; i++) it_destroy(m->c[i]);
    free(m);
}
static const kv_iter_vtbl merge_vtbl = {mg_seek_first, mg_seek_last, mg_seek,   mg_next,
                                        mg_prev,       mg_value,     mg_status, mg_destroy};

kv_iter *kv_iter_merge(kv_iter **children, int n)
{
    if (n == 0) return kv_iter_empty(NDB_OK);
    if (n == 1) return children[0];
    merge_iter *m = malloc(sizeof *m + (size_t)n * sizeof(kv_iter *));
    if (m == NULL) {
        for (int i = 0; i < n; i++) it_destroy(children[i]);
        return NULL;
    }
    kv_iter_init(&m->base, &merge_vtbl);
    m->n = n;
    m->cur = -1;
    m->forward = 1;
    for (int i = 0; i < n; i++) m->c[i] = children[i];
    return &m->base;
}
