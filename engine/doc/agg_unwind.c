/*
 * agg_unwind.c — $unwind: one output document per element of the array at
 * a path, the element in the array's place; includeArrayIndex adds the
 * element's index. A missing field, null or an empty array gives nothing,
 * or with preserveNullAndEmptyArrays the document itself (an empty array's
 * field removed, as MongoDB does) with a null index; a scalar is treated as
 * a one-element array with a null index.
 */
#include <stdlib.h>
#include <string.h>

#include "agg_stages.h"

ndb_status unwind_compile(unwind *u, const ndb_doc_val *v, ndb_errmsg *msg)
{
    if (ndb_doc_builder_new(&u->out) != NDB_OK || ndb_doc_builder_new(&u->tmp) != NDB_OK)
        return NDB_ENOMEM;
    ndb_doc_val pv = *v;
    if (v->type == NDB_DOC_OBJECT) {
        ndb_doc_val o;
        if (ndb_doc_get_field(v, "path", 4, &pv) != NDB_OK)
            return ndb_errmsg_set(msg, NDB_EINVAL, "$unwind needs a path");
        if (ndb_doc_get_field(v, "preserveNullAndEmptyArrays", 26, &o) == NDB_OK)
            u->preserve = o.type == NDB_DOC_BOOL && o.u.b;
        if (ndb_doc_get_field(v, "includeArrayIndex", 17, &o) == NDB_OK) {
            if (o.type != NDB_DOC_STRING || agg_need_name(o.u.s.ptr, o.u.s.len, "$unwind", msg))
                return ndb_errmsg_set(msg, NDB_EINVAL, "$unwind.includeArrayIndex needs a field name");
            u->idxname = o.u.s.ptr;
            u->idxlen = o.u.s.len;
        }
    }
    if (pv.type != NDB_DOC_STRING || pv.u.s.len < 2 || pv.u.s.ptr[0] != '$' ||
        path_split(pv.u.s.ptr + 1, pv.u.s.len - 1, &u->path) != NDB_OK)
        return ndb_errmsg_set(msg, NDB_EINVAL, "$unwind path must be a \"$field\" path");
    return NDB_OK;
}

void unwind_free(unwind *u)
{
    ndb_doc_builder_free(u->out);
    ndb_doc_builder_free(u->tmp);
}

void unwind_start(unwind *u, const uint8_t *d, size_t dl)
{
    u->cur = d;
    u->curlen = dl;
    u->ui = 0;
    u->have_cur = true;
}

/* The document in u->out, with the index field set to iv when the stage
 * names one. */
static int output(unwind *u, const ndb_doc_val *iv, const uint8_t **d, size_t *dl, ndb_errmsg *msg)
{
    const void *od;
    ndb_status st = ndb_doc_builder_finish(u->out, &od, dl);
    if (st == NDB_OK && u->idxname != NULL) {
        ndb_doc_val t;
        ndb_doc_root(od, *dl, &t);
        ndb_doc_builder_reset(u->tmp);
        doc_set_top(&t, u->idxname, u->idxlen, iv, u->tmp);
        st = ndb_doc_builder_finish(u->tmp, &od, dl);
    }
    if (st != NDB_OK)
        return ndb_errmsg_set(msg, st, "pipeline result: %s", ndb_strerror(st));
    *d = od;
    return 1;
}

int unwind_next(unwind *u, const uint8_t **d, size_t *dl, ndb_errmsg *msg)
{
    if (!u->have_cur)
        return 0;
    ndb_doc_val root, arr;
    ndb_doc_root(u->cur, u->curlen, &root);
    const dpath *p = &u->path;
    bool found = ndb_doc_get_path(&root, p->c[0], (size_t)(p->c[p->n - 1] + p->l[p->n - 1] - p->c[0]), &arr) ==
                 NDB_OK;
    if (found && arr.type == NDB_DOC_ARRAY && arr.u.c.count > 0) {
        if (u->ui >= arr.u.c.count) {
            u->have_cur = false;
            return 0;
        }
        ndb_doc_val e;
        if (ndb_doc_get_index(&arr, u->ui, &e) != NDB_OK) {
            u->have_cur = false;
            return ndb_errmsg_set(msg, NDB_ECORRUPT, "$unwind: corrupt array in a stored document");
        }
        ndb_doc_builder_reset(u->out);
        doc_replace_path(&root, p, 0, &e, u->out);
        uint8_t ib[16];
        ndb_doc_val iv;
        val_make_int(&iv, ib, u->ui++);
        return output(u, &iv, d, dl, msg);
    }
    u->have_cur = false;
    bool scalar = found && arr.type != NDB_DOC_ARRAY && arr.type != NDB_DOC_NULL;
    if (!scalar && !u->preserve)
        return 0;
    if (!(found && arr.type == NDB_DOC_ARRAY) && u->idxname == NULL) {
        *d = u->cur; /* passes through unchanged */
        *dl = u->curlen;
        return 1;
    }
    ndb_doc_builder_reset(u->out);
    if (found && arr.type == NDB_DOC_ARRAY)
        doc_replace_path(&root, p, 0, NULL, u->out);
    else
        ndb_doc_value(u->out, &root);
    uint8_t nb[2];
    ndb_doc_val nullv;
    val_make_null(&nullv, nb);
    return output(u, &nullv, d, dl, msg);
}
