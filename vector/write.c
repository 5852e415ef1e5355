/*
 * write.c — inserts, upserts and deletes of documents with their vectors.
 *
 * Each call is one document-layer transaction on the collection's documents
 * (NDB_DOC_NS_VECTORS): the documents, their index entries, the row keys and
 * the id keys (FORMAT.md, "Keys") go into one kv batch, committed with one
 * WAL record. The transaction holds the collection's writer lock from the
 * first check to the in-memory apply, so memory sees writes in commit order.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vec_int.h"

/* An encoded empty object: the document of an item that has none. */
static const uint8_t empty_doc[] = {0xD1, 0x08, 0, 0, 0, 0, 0, 0, 0, 0};

/* A write in progress: the collection, its transaction, and what applying
 * needs once the batch is durable. */
typedef struct vwrite {
    vcoll *c;
    ndb_doc_txn *t;
    bool locked;
    uint8_t *val; /* a row value being built */
} vwrite;

/* Takes the collection, checks nothing about the request yet. */
static ndb_status begin(ndb_vec_db *db, const char *name, vwrite *w, ndb_errmsg *msg)
{
    memset(w, 0, sizeof *w);
    ndb_status st = vdb_acquire(db, name, &w->c, msg);
    if (st != NDB_OK)
        return st;
    if ((w->val = malloc(row_value_len(w->c, NDB_VEC_MAX_ID))) == NULL)
        return ndb_errmsg_set(msg, NDB_ENOMEM, "write to %s: out of memory", w->c->name);
    return NDB_OK;
}

/* Opens the transaction and takes the collection's writer lock. */
static ndb_status lock(vwrite *w, ndb_errmsg *msg)
{
    ndb_status st = ndb_doc_txn_begin(w->c->env->docs, w->c->name, NULL, &w->t, msg);
    if (st == NDB_ENOTFOUND)
        return ndb_errmsg_set(msg, st, "vector collection '%s' was dropped", w->c->name);
    if (st != NDB_OK)
        return st;
    pthread_mutex_lock(&w->c->wmu);
    w->locked = true;
    if (w->c->dropped)
        return ndb_errmsg_set(msg, NDB_ENOTFOUND, "vector collection '%s' was dropped", w->c->name);
    return NDB_OK;
}

/* Releases the collection, then waits until a commit is durable (the
 * collection's next writer appends meanwhile): NDB_OK or the I/O error. */
static ndb_status end(vwrite *w, ndb_errmsg *msg)
{
    if (w->locked)
        pthread_mutex_unlock(&w->c->wmu);
    ndb_status st = ndb_doc_txn_end(w->t, msg);
    free(w->val);
    coll_unref(w->c);
    return st;
}

/* end() for a write whose status is st: the result. */
static ndb_status finish(vwrite *w, ndb_status st, ndb_errmsg *msg)
{
    ndb_status e = end(w, st == NDB_OK ? msg : NULL);
    return st == NDB_OK ? e : st;
}

/* Puts row `row` = (id, vec) and id -> row into the transaction. */
static ndb_status put_row(vwrite *w, const char *id, size_t idlen, uint64_t row, const float *vec)
{
    vcoll *c = w->c;
    uint8_t k[24];
    w->val[0] = (uint8_t)idlen;
    w->val[1] = (uint8_t)(idlen >> 8);
    memcpy(w->val + 2, id, idlen);
    memcpy(w->val + 2 + idlen, vec, (size_t)c->dims * 4);
    ndb_status st = ndb_doc_txn_put(w->t, k, key_row(c, row, k), w->val, row_value_len(c, idlen));
    uint8_t ik[10 + NDB_VEC_MAX_ID];
    memcpy(ik, c->ikey, c->iklen);
    memcpy(ik + c->iklen, id, idlen);
    return st == NDB_OK ? ndb_doc_txn_put(w->t, ik, c->iklen + idlen, &row, 8) : st; /* u64 LE */
}

/* Deletes id's row (if it has one) and, with unmap, its id key. */
static ndb_status del_row(vwrite *w, const char *id, size_t idlen, bool unmap, uint64_t *old)
{
    vcoll *c = w->c;
    *old = coll_row_of(c, id, idlen); /* wmu held: only wmu holders change the map */
    ndb_status st = NDB_OK;
    if (*old != UINT64_MAX) {
        uint8_t k[24];
        st = ndb_doc_txn_del(w->t, k, key_row(c, *old, k));
    }
    if (st == NDB_OK && unmap) {
        uint8_t ik[10 + NDB_VEC_MAX_ID];
        memcpy(ik, c->ikey, c->iklen);
        memcpy(ik + c->iklen, id, idlen);
        st = ndb_doc_txn_del(w->t, ik, c->iklen + idlen);
    }
    return st;
}

/* Frees what was not handed to the collection. */
static void free_ids(char **a, size_t n)
{
    for (size_t i = 0; a && i < n; i++)
        free(a[i]);
    free(a);
}

ndb_status ndb_vec_insert(ndb_vec_db *db, const char *name, const ndb_vec_item *items, size_t n, uint32_t dims,
                          char ***ids, ndb_errmsg *msg)
{
    if (n == 0 || !items)
        return ndb_errmsg_set(msg, NDB_EINVAL, "no documents to insert");
    vwrite w;
    ndb_status st = begin(db, name, &w, msg);
    if (st != NDB_OK) {
        if (w.c)
            (void)end(&w, NULL);
        return st;
    }
    vcoll *c = w.c;
    float *vecs = NULL;
    char **aid = calloc(n, sizeof *aid), **key = calloc(n, sizeof *key), **out = NULL;
    if (dims == c->dims && n > SIZE_MAX / ((size_t)dims * 8))
        st = ndb_errmsg_set(msg, NDB_ETOOBIG, "%zu vectors in one call are too many", n);
    else if (!aid || !key || (ids && !(out = calloc(n, sizeof *out))) ||
             (dims == c->dims && !(vecs = malloc(n * (size_t)dims * 4))))
        st = ndb_errmsg_set(msg, NDB_ENOMEM, "insert into %s: out of memory", c->name);
    /* every vector is checked before anything is locked or written */
    for (size_t i = 0; st == NDB_OK && i < n; i++) {
        /* vecs is NULL when dims is wrong, which the check reports before any use */
        st = coll_check_vector(c, items[i].vector, dims, n == 1 ? "vector" : "documents", n == 1 ? VEC_ONE : i,
                               vecs ? vecs + i * (size_t)dims : NULL, msg);
    }
    if (st == NDB_OK && (st = lock(&w, msg)) == NDB_OK)
        st = coll_reserve(c, n);
    char id[NDB_DOC_MAX_ID + 1];
    for (size_t i = 0; st == NDB_OK && i < n; i++) {
        const void *doc = items[i].doc ? items[i].doc : empty_doc;
        size_t dl = items[i].doc ? items[i].doc_len : sizeof empty_doc;
        if ((st = ndb_doc_txn_insert_new(w.t, doc, dl, id, msg)) != NDB_OK)
            break;
        if (coll_row_of(c, id, strlen(id)) != UINT64_MAX) { /* wmu held: the map has every committed id */
            st = ndb_errmsg_set(msg, NDB_EEXIST, "duplicate _id '%.64s' in collection %s", id, c->name);
            break;
        }
        if (!(aid[i] = strdup(id)) || !(key[i] = strdup(id)) || (out && !(out[i] = strdup(id))))
            st = NDB_ENOMEM;
        else
            st = put_row(&w, id, strlen(id), c->next_row + i, vecs + i * (size_t)dims);
    }
    if (st == NDB_OK)
        st = ndb_doc_txn_commit(w.t, msg);
    if (st == NDB_OK) {
        for (size_t i = 0; i < n; i++) {
            coll_apply(c, aid[i], strlen(aid[i]), c->next_row + i, vecs + i * (size_t)dims, aid[i], key[i]);
            aid[i] = key[i] = NULL;
        }
        c->next_row += n;
        coll_maybe_seal(c);
    }
    st = finish(&w, st, msg);
    free(vecs);
    free_ids(aid, n);
    free_ids(key, n);
    if (st != NDB_OK) {
        free_ids(out, n);
        return st;
    }
    if (ids)
        *ids = out;
    return NDB_OK;
}

/* The id of an upsert or a delete: 1..NDB_VEC_MAX_ID bytes. */
static ndb_status check_id(const char *id, size_t *len, ndb_errmsg *msg)
{
    size_t l = id ? strnlen(id, NDB_VEC_MAX_ID + 1) : 0;
    if (l == 0 || l > NDB_VEC_MAX_ID)
        return ndb_errmsg_set(msg, NDB_EINVAL, "id must be 1 to %u bytes", NDB_VEC_MAX_ID);
    *len = l;
    return NDB_OK;
}

ndb_status ndb_vec_upsert(ndb_vec_db *db, const char *name, const char *id, const ndb_vec_item *item, uint32_t dims,
                          int *inserted, ndb_errmsg *msg)
{
    size_t idlen = 0;
    ndb_status st = check_id(id, &idlen, msg);
    if (st != NDB_OK)
        return st;
    if (!item)
        return ndb_errmsg_set(msg, NDB_EINVAL, "nothing to upsert");
    vwrite w;
    if ((st = begin(db, name, &w, msg)) != NDB_OK) {
        if (w.c)
            (void)end(&w, NULL);
        return st;
    }
    vcoll *c = w.c;
    float *vec = malloc((size_t)c->dims * 4);
    char *aid = strdup(id), *key = strdup(id);
    if (!vec || !aid || !key)
        st = NDB_ENOMEM;
    else if ((st = coll_check_vector(c, item->vector, dims, "vector", VEC_ONE, vec, msg)) == NDB_OK &&
             (st = lock(&w, msg)) == NDB_OK)
        st = coll_reserve(c, 1);
    uint64_t old;
    if (st == NDB_OK)
        st = ndb_doc_txn_replace(w.t, id, idlen, item->doc ? item->doc : empty_doc,
                                 item->doc ? item->doc_len : sizeof empty_doc, inserted, msg);
    if (st == NDB_OK && (st = del_row(&w, id, idlen, false, &old)) == NDB_OK &&
        (st = put_row(&w, id, idlen, c->next_row, vec)) == NDB_OK)
        st = ndb_doc_txn_commit(w.t, msg);
    if (st == NDB_OK) {
        coll_apply(c, id, idlen, c->next_row++, vec, aid, key);
        aid = key = NULL;
        coll_maybe_seal(c);
    }
    st = finish(&w, st, msg);
    free(vec);
    free(aid);
    free(key);
    return st;
}

ndb_status ndb_vec_delete(ndb_vec_db *db, const char *name, const char *id, ndb_errmsg *msg)
{
    size_t idlen = 0;
    ndb_status st = check_id(id, &idlen, msg);
    if (st != NDB_OK)
        return st;
    vwrite w;
    if ((st = begin(db, name, &w, msg)) != NDB_OK) {
        if (w.c)
            (void)end(&w, NULL);
        return st;
    }
    uint64_t old;
    if ((st = lock(&w, msg)) == NDB_OK && (st = ndb_doc_txn_delete(w.t, id, idlen, msg)) == NDB_OK &&
        (st = del_row(&w, id, idlen, true, &old)) == NDB_OK && (st = ndb_doc_txn_commit(w.t, msg)) == NDB_OK) {
        coll_apply(w.c, id, idlen, old, NULL, NULL, NULL);
        coll_maybe_seal(w.c);
    }
    st = finish(&w, st, msg);
    return st;
}

ndb_status vwrite_delete_matching(void *arg, const char *name, const char *index, const void *filter, size_t flen,
                                  uint32_t limit, uint64_t *n, ndb_errmsg *msg)
{
    *n = 0;
    vwrite w;
    ndb_status st = begin(arg, name, &w, msg);
    if (st != NDB_OK) {
        if (w.c)
            (void)end(&w, NULL);
        return st == NDB_ENOTFOUND ? NDB_OK : st; /* dropped since the pass listed it */
    }
    char **ids = calloc(limit ? limit : 1, sizeof *ids);
    uint64_t *olds = calloc(limit ? limit : 1, sizeof *olds);
    size_t k = 0;
    if (!ids || !olds)
        st = ndb_errmsg_set(msg, NDB_ENOMEM, "deleting from %s: out of memory", w.c->name);
    ndb_doc_cursor *cur = NULL;
    ndb_doc_find_opts o = {.filter = filter, .filter_len = flen, .hint = index, .limit = limit};
    if (st == NDB_OK && (st = lock(&w, msg)) == NDB_OK)
        st = ndb_doc_txn_find(w.t, &o, &cur, msg);
    while (st == NDB_OK && k < limit) {
        const void *doc;
        size_t len;
        ndb_doc_val root, idv;
        if ((st = ndb_doc_cursor_next(cur, &doc, &len, msg)) != NDB_OK || doc == NULL)
            break;
        if (ndb_doc_root(doc, len, &root) != NDB_OK || ndb_doc_get_field(&root, "_id", 3, &idv) != NDB_OK ||
            idv.type != NDB_DOC_STRING || idv.u.s.len == 0 || idv.u.s.len > NDB_VEC_MAX_ID)
            continue; /* every document written through ndb_vec has a string _id */
        if ((ids[k] = strndup(idv.u.s.ptr, idv.u.s.len)) == NULL) {
            st = NDB_ENOMEM;
            break;
        }
        if ((st = ndb_doc_txn_delete(w.t, ids[k], idv.u.s.len, msg)) == NDB_OK)
            st = del_row(&w, ids[k], idv.u.s.len, true, &olds[k]);
        k++;
    }
    ndb_doc_cursor_free(cur);
    if (st == NDB_OK && k > 0 && (st = ndb_doc_txn_commit(w.t, msg)) == NDB_OK) {
        for (size_t i = 0; i < k; i++)
            coll_apply(w.c, ids[i], strlen(ids[i]), olds[i], NULL, NULL, NULL);
        coll_maybe_seal(w.c);
    }
    st = finish(&w, st, msg);
    if (st == NDB_OK)
        *n = k;
    free_ids(ids, k);
    free(olds);
    return st;
}
