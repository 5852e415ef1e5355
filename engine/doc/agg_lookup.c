/*
 * agg_lookup.c — $lookup's equality join: for each document, a find on the
 * collection `from` with {foreignField: {$eq: <localField's value>}} ($in
 * for an array value; a missing one is null) whose matches, in that find's
 * order, become the array `as`. A collection that does not exist matches
 * nothing. The array is bounded by the document size limit.
 */
#include <stdlib.h>
#include <string.h>

#include "agg_stages.h"

ndb_status lookup_compile(lookup *l, const ndb_doc_val *v, ndb_errmsg *msg)
{
    if (ndb_doc_builder_new(&l->filter) != NDB_OK || ndb_doc_builder_new(&l->arr) != NDB_OK ||
        ndb_doc_builder_new(&l->out) != NDB_OK)
        return NDB_ENOMEM;
    ndb_doc_val f, lf, ff, as;
    if (v->type != NDB_DOC_OBJECT || ndb_doc_get_field(v, "from", 4, &f) != NDB_OK ||
        ndb_doc_get_field(v, "localField", 10, &lf) != NDB_OK ||
        ndb_doc_get_field(v, "foreignField", 12, &ff) != NDB_OK || ndb_doc_get_field(v, "as", 2, &as) != NDB_OK ||
        f.type != NDB_DOC_STRING || lf.type != NDB_DOC_STRING || ff.type != NDB_DOC_STRING ||
        as.type != NDB_DOC_STRING || f.u.s.len == 0 || f.u.s.len > NDB_DOC_MAX_COLL_NAME || lf.u.s.len == 0 ||
        ff.u.s.len == 0 || agg_need_name(as.u.s.ptr, as.u.s.len, "$lookup", NULL) != NDB_OK)
        return ndb_errmsg_set(msg, NDB_EINVAL, "$lookup needs string from, localField, foreignField and as");
    memcpy(l->from, f.u.s.ptr, f.u.s.len);
    l->from[f.u.s.len] = 0;
    l->lf = lf.u.s.ptr;
    l->lfl = lf.u.s.len;
    l->ff = ff.u.s.ptr;
    l->ffl = ff.u.s.len;
    l->as = as.u.s.ptr;
    l->asl = as.u.s.len;
    return NDB_OK;
}

void lookup_free(lookup *l)
{
    ndb_doc_builder_free(l->filter);
    ndb_doc_builder_free(l->arr);
    ndb_doc_builder_free(l->out);
}

/* The inner find's filter for root, in l->filter. */
static ndb_status build_filter(lookup *l, const ndb_doc_val *root, const void **fd, size_t *fl, ndb_errmsg *msg)
{
    ndb_doc_val lv;
    uint8_t nullb[2];
    if (ndb_doc_get_path(root, l->lf, l->lfl, &lv) != NDB_OK)
        val_make_null(&lv, nullb);
    ndb_doc_builder *fb = l->filter;
    ndb_doc_builder_reset(fb);
    ndb_doc_begin_object(fb);
    ndb_doc_key(fb, l->ff, l->ffl);
    ndb_doc_begin_object(fb);
    ndb_doc_key(fb, lv.type == NDB_DOC_ARRAY ? "$in" : "$eq", 3);
    ndb_doc_value(fb, &lv);
    ndb_doc_end_object(fb);
    ndb_doc_end_object(fb);
    ndb_status st = ndb_doc_builder_finish(fb, fd, fl);
    return st == NDB_OK ? NDB_OK : ndb_errmsg_set(msg, st, "$lookup filter: %s", ndb_strerror(st));
}

/* The matches of the inner find, as an array in l->arr. */
static ndb_status matches(lookup *l, ndb_doc_db *db, const ndb_interrupt *intr, const void *fd, size_t fl,
                          ndb_doc_val *arr, ndb_errmsg *msg)
{
    ndb_doc_builder *ab = l->arr;
    ndb_doc_builder_reset(ab);
    ndb_doc_builder_set_limit(ab, NDB_DOC_MAX_BYTES);
    ndb_doc_begin_array(ab);
    ndb_doc_cursor *fc = NULL;
    ndb_doc_find_opts o = {.filter = fd, .filter_len = fl, .interrupt = intr};
    ndb_status st = ndb_doc_find(db, l->from, &o, &fc, msg);
    if (st == NDB_ENOTFOUND) {
        st = NDB_OK; /* no such collection: no matches */
    } else if (st == NDB_OK) {
        for (;;) {
            const void *m;
            size_t ml;
            st = ndb_doc_cursor_next(fc, &m, &ml, msg);
            if (st != NDB_OK || m == NULL)
                break;
            ndb_doc_val mv;
            ndb_doc_root(m, ml, &mv);
            if (ndb_doc_value(ab, &mv) != NDB_OK)
                break; /* the builder's error: finish reports it */
        }
        ndb_doc_cursor_free(fc);
    }
    if (st != NDB_OK)
        return st;
    ndb_doc_end_array(ab);
    const void *ad;
    size_t al;
    if ((st = ndb_doc_builder_finish(ab, &ad, &al)) != NDB_OK)
        return ndb_errmsg_set(msg, st, "$lookup result exceeds the document size limit");
    ndb_doc_root(ad, al, arr);
    return NDB_OK;
}

int lookup_apply(lookup *l, ndb_doc_db *db, const ndb_interrupt *intr, const ndb_doc_val *root,
                 const uint8_t **d, size_t *dl, ndb_errmsg *msg)
{
    const void *fd;
    size_t fl;
    ndb_doc_val arr;
    ndb_status st = build_filter(l, root, &fd, &fl, msg);
    if (st == NDB_OK)
        st = matches(l, db, intr, fd, fl, &arr, msg);
    if (st != NDB_OK)
        return st;
    ndb_doc_builder_reset(l->out);
    doc_set_top(root, l->as, l->asl, &arr, l->out);
    const void *od;
    if ((st = ndb_doc_builder_finish(l->out, &od, dl)) != NDB_OK)
        return ndb_errmsg_set(msg, st, "pipeline result: %s", ndb_strerror(st));
    *d = od;
    return 1;
}
