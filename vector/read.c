/*
 * read.c — one document with its vector (get), and cursors over a
 * collection's documents with their vectors (export). Both read the document
 * and the vector at one kv snapshot, so a reader never pairs a document with
 * another version's vector.
 */
#include <stdlib.h>
#include <string.h>

#include "vec_int.h"

/* id's vector at snap into vec (dims floats, the stored form). */
static ndb_status vector_at(vcoll *c, const ndb_kv_snapshot *snap, const char *id, size_t idlen, float *vec,
                            ndb_errmsg *msg)
{
    uint8_t k[24 + NDB_VEC_MAX_ID];
    memcpy(k, c->ikey, c->iklen);
    memcpy(k + c->iklen, id, idlen);
    void *v = NULL;
    size_t vl;
    uint64_t row = 0;
    ndb_status st = ndb_kv_get(c->env->kv, snap, k, c->iklen + idlen, &v, &vl);
    if (st == NDB_OK && vl == 8)
        memcpy(&row, v, 8);
    else if (st == NDB_OK)
        st = NDB_ECORRUPT;
    free(v);
    v = NULL;
    if (st == NDB_OK)
        st = ndb_kv_get(c->env->kv, snap, k, key_row(c, row, k), &v, &vl);
    const char *rid;
    size_t rl;
    const float *src;
    if (st == NDB_OK && (row_value_parse(c, v, vl, &rid, &rl, &src) != NDB_OK || rl != idlen ||
                         memcmp(rid, id, idlen) != 0))
        st = NDB_ECORRUPT;
    if (st == NDB_OK)
        memcpy(vec, src, (size_t)c->dims * 4);
    free(v);
    if (st == NDB_ENOTFOUND || st == NDB_ECORRUPT)
        return ndb_errmsg_set(msg, NDB_ECORRUPT, "document '%.*s' in %s has no readable vector",
                              (int)(idlen > 64 ? 64 : idlen), id, c->name);
    return st == NDB_OK ? st
                        : ndb_errmsg_set(msg, st, "reading the vector of '%.*s': %s", (int)(idlen > 64 ? 64 : idlen),
                                         id, ndb_strerror(st));
}

ndb_status ndb_vec_get(ndb_vec_db *db, const char *name, const char *id, void **doc, size_t *doc_len, float **vector,
                       uint32_t *dims, ndb_errmsg *msg)
{
    vcoll *c;
    ndb_status st = vdb_acquire(db, name, &c, msg);
    if (st != NDB_OK)
        return st;
    size_t idlen = id ? strnlen(id, NDB_VEC_MAX_ID + 1) : 0;
    ndb_kv_snapshot *snap = NULL;
    void *d = NULL;
    size_t dl = 0;
    float *vec = NULL;
    if (dims)
        *dims = c->dims;
    if (idlen == 0 || idlen > NDB_VEC_MAX_ID)
        st = ndb_errmsg_set(msg, NDB_ENOTFOUND, "no document with that id in %s", c->name);
    else if (vector && (vec = malloc((size_t)c->dims * 4)) == NULL)
        st = ndb_errmsg_set(msg, NDB_ENOMEM, "reading from %s: out of memory", c->name);
    else if ((st = ndb_kv_snapshot_acquire(c->env->kv, &snap)) == NDB_OK &&
             (st = ndb_doc_get_at(c->env->docs, snap, c->name, id, idlen, &d, &dl, msg)) == NDB_OK && vec)
        st = vector_at(c, snap, id, idlen, vec, msg);
    if (snap)
        ndb_kv_snapshot_release(c->env->kv, snap);
    coll_unref(c);
    if (st != NDB_OK) {
        free(d);
        free(vec);
        return st;
    }
    if (doc) {
        *doc = d;
        *doc_len = dl;
    } else {
        free(d);
    }
    if (vector)
        *vector = vec;
    return NDB_OK;
}

struct ndb_vec_cursor {
    vcoll *c;
    ndb_kv_snapshot *snap;
    ndb_doc_cursor *docs;
    float *vec;
};

ndb_status ndb_vec_find(ndb_vec_db *db, const char *name, const ndb_vec_find_opts *o, ndb_vec_cursor **out,
                        ndb_errmsg *msg)
{
    ndb_vec_cursor *cur = calloc(1, sizeof *cur);
    if (!cur)
        return ndb_errmsg_set(msg, NDB_ENOMEM, "find in %s: out of memory", name ? name : "");
    ndb_status st = vdb_acquire(db, name, &cur->c, msg);
    if (st != NDB_OK) {
        free(cur);
        return st;
    }
    ndb_vec_find_opts none = {0};
    if (!o)
        o = &none;
    if ((cur->vec = malloc((size_t)cur->c->dims * 4)) == NULL)
        st = ndb_errmsg_set(msg, NDB_ENOMEM, "find in %s: out of memory", cur->c->name);
    else if ((st = ndb_kv_snapshot_acquire(cur->c->env->kv, &cur->snap)) == NDB_OK) {
        ndb_doc_find_opts fo = {.filter = o->filter,
                                .filter_len = o->filter_len,
                                .limit = o->limit,
                                .page_token = o->page_token,
                                .page_token_len = o->page_token_len,
                                .snapshot = cur->snap,
                                .interrupt = o->interrupt};
        st = ndb_doc_find(cur->c->env->docs, cur->c->name, &fo, &cur->docs, msg);
    }
    if (st != NDB_OK) {
        ndb_vec_cursor_free(cur);
        return st;
    }
    *out = cur;
    return NDB_OK;
}

ndb_status ndb_vec_cursor_next(ndb_vec_cursor *cur, const void **doc, size_t *doc_len, const float **vector,
                               ndb_errmsg *msg)
{
    *vector = NULL;
    ndb_status st = ndb_doc_cursor_next(cur->docs, doc, doc_len, msg);
    if (st != NDB_OK || *doc == NULL)
        return st;
    ndb_doc_val root, idv;
    if (ndb_doc_root(*doc, *doc_len, &root) != NDB_OK || ndb_doc_get_field(&root, "_id", 3, &idv) != NDB_OK ||
        idv.type != NDB_DOC_STRING)
        return ndb_errmsg_set(msg, NDB_ECORRUPT, "a stored document in %s has no string _id", cur->c->name);
    if ((st = vector_at(cur->c, cur->snap, idv.u.s.ptr, idv.u.s.len, cur->vec, msg)) != NDB_OK)
        return st;
    *vector = cur->vec;
    return NDB_OK;
}

uint32_t ndb_vec_cursor_dims(const ndb_vec_cursor *cur) { return cur->c->dims; }

ndb_status ndb_vec_cursor_page_token(ndb_vec_cursor *cur, void **tok, size_t *len)
{
    return ndb_doc_cursor_page_token(cur->docs, tok, len);
}

void ndb_vec_cursor_free(ndb_vec_cursor *cur)
{
    if (!cur)
        return;
    ndb_doc_cursor_free(cur->docs);
    if (cur->snap)
        ndb_kv_snapshot_release(cur->c->env->kv, cur->snap);
    coll_unref(cur->c);
    free(cur->vec);
    free(cur);
}
