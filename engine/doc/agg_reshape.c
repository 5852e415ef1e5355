/*
 * agg_reshape.c — the stages that reshape each document: $project (0/1
 * fields through shape.c's projection, other values computed), $addFields
 * and its alias $set (dotted names set along their path), $unset (an
 * exclusion projection) and $replaceRoot/$replaceWith (an expression that
 * must give an object).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agg_stages.h"

static const char *stage_name(reshape_kind k)
{
    switch (k) {
    case RS_PROJECT: return "$project";
    case RS_ADDFIELDS: return "$addFields";
    case RS_UNSET: return "$unset";
    case RS_REPLACEROOT: return "$replaceRoot";
    case RS_REPLACEWITH: return "$replaceWith";
    }
    return "?";
}

/* Finishes the projection document sb into r->spec and compiles it. */
static ndb_status compile_spec(reshape *r, ndb_doc_builder *sb, ndb_errmsg *msg)
{
    const void *d;
    size_t dl;
    ndb_status st = ndb_doc_builder_finish(sb, &d, &dl);
    if (st == NDB_OK && !dbuf_put(&r->spec, d, dl))
        st = NDB_ENOMEM;
    if (st != NDB_OK)
        return st;
    ndb_doc_val pv;
    ndb_doc_root(r->spec.data, r->spec.len, &pv);
    return prj_compile(&pv, &r->prj, msg);
}

/* $project and $addFields: 0/1 parts go through a prj_spec, other values
 * are computed. */
static ndb_status compile_fields(reshape *r, const ndb_doc_val *v, ndb_doc_builder *sb, ndb_errmsg *msg)
{
    bool addfields = r->kind == RS_ADDFIELDS;
    const char *sname = stage_name(r->kind);
    if (v->type != NDB_DOC_OBJECT || (!addfields && v->u.c.count == 0))
        return ndb_errmsg_set(msg, NDB_EINVAL, "%s needs a non-empty object", sname);
    uint32_t n = v->u.c.count ? v->u.c.count : 1;
    r->cexpr = calloc(n, sizeof *r->cexpr);
    r->cname = calloc(n, sizeof *r->cname);
    r->cnlen = calloc(n, sizeof *r->cnlen);
    r->cpath = calloc(n, sizeof *r->cpath);
    if (!r->cexpr || !r->cname || !r->cnlen || !r->cpath || ndb_doc_builder_new(&r->tmp) != NDB_OK)
        return NDB_ENOMEM;
    ndb_doc_begin_object(sb);
    int inc = 0, exc = 0;
    ndb_doc_iter it;
    ndb_doc_iter_init(&it, v);
    const char *k;
    size_t kl;
    ndb_doc_val e;
    ndb_status st = NDB_OK;
    while (st == NDB_OK && ndb_doc_iter_next(&it, &k, &kl, &e)) {
        if (!addfields && (e.type == NDB_DOC_BOOL || val_is_num(&e))) {
            bool on = e.type == NDB_DOC_BOOL ? e.u.b : ndb_doc_num(&e) != 0;
            if (key_is(k, kl, "_id"))
                r->id_excluded = !on;
            else
                on ? inc++ : exc++;
            ndb_doc_key(sb, k, kl);
            ndb_doc_int(sb, on);
            continue;
        }
        if (addfields) {
            bool bad = path_split(k, kl, &r->cpath[r->ncomp]) != NDB_OK;
            for (int c = 0; !bad && c < r->cpath[r->ncomp].n; c++)
                bad = r->cpath[r->ncomp].c[c][0] == '$';
            if (bad) {
                st = ndb_errmsg_set(msg, NDB_EINVAL, "%s: bad field path '%.*s'", sname, (int)kl, k);
                break;
            }
        } else if ((st = agg_need_name(k, kl, sname, msg)) != NDB_OK) {
            break;
        }
        char where[96];
        snprintf(where, sizeof where, "%s.%.*s", sname, (int)(kl > 64 ? 64 : kl), k);
        r->cname[r->ncomp] = k;
        r->cnlen[r->ncomp] = kl;
        st = expr_compile(&e, where, &r->cexpr[r->ncomp], 0, msg);
        r->ncomp++;
    }
    ndb_doc_end_object(sb);
    if (st == NDB_OK && exc && (inc || r->ncomp))
        st = ndb_errmsg_set(msg, NDB_EINVAL, "$project cannot mix exclusion with inclusion or "
                            "computed fields");
    if (st != NDB_OK || addfields)
        return st;
    if (inc || exc || r->ncomp == 0)
        return compile_spec(r, sb, msg);
    r->prj_empty = true;
    return NDB_OK;
}

/* $unset: a field name or an array of them, as an exclusion projection. */
static ndb_status compile_unset(reshape *r, const ndb_doc_val *v, ndb_doc_builder *sb, ndb_errmsg *msg)
{
    ndb_doc_begin_object(sb);
    if (v->type == NDB_DOC_STRING) {
        ndb_doc_key(sb, v->u.s.ptr, v->u.s.len);
        ndb_doc_int(sb, 0);
    } else if (v->type == NDB_DOC_ARRAY && v->u.c.count > 0) {
        ndb_doc_iter ui;
        ndb_doc_iter_init(&ui, v);
        ndb_doc_val e;
        while (ndb_doc_iter_next(&ui, NULL, NULL, &e)) {
            if (e.type != NDB_DOC_STRING)
                return ndb_errmsg_set(msg, NDB_EINVAL, "$unset takes field names");
            ndb_doc_key(sb, e.u.s.ptr, e.u.s.len);
            ndb_doc_int(sb, 0);
        }
    } else {
        return ndb_errmsg_set(msg, NDB_EINVAL, "$unset takes a field name or an array of them");
    }
    ndb_doc_end_object(sb);
    return compile_spec(r, sb, msg);
}

ndb_status reshape_compile(reshape *r, reshape_kind kind, const ndb_doc_val *v, ndb_errmsg *msg)
{
    r->kind = kind;
    if (ndb_doc_builder_new(&r->out) != NDB_OK)
        return NDB_ENOMEM;
    if (kind == RS_REPLACEROOT || kind == RS_REPLACEWITH) {
        ndb_doc_val root = *v; /* $replaceRoot: {"newRoot": e}; $replaceWith: e */
        if (kind == RS_REPLACEROOT &&
            (v->type != NDB_DOC_OBJECT || ndb_doc_get_field(v, "newRoot", 7, &root) != NDB_OK))
            return ndb_errmsg_set(msg, NDB_EINVAL, "$replaceRoot needs {\"newRoot\": <expression>}");
        return expr_compile(&root, kind == RS_REPLACEROOT ? "$replaceRoot.newRoot" : "$replaceWith", &r->root, 0,
                            msg);
    }
    ndb_doc_builder *sb;
    if (ndb_doc_builder_new(&sb) != NDB_OK)
        return NDB_ENOMEM;
    ndb_status st = kind == RS_UNSET ? compile_unset(r, v, sb, msg) : compile_fields(r, v, sb, msg);
    ndb_doc_builder_free(sb);
    return st;
}

void reshape_free(reshape *r)
{
    prj_free(r->prj);
    for (int i = 0; i < r->ncomp; i++)
        expr_clear(&r->cexpr[i]);
    free(r->cexpr);
    free(r->cname);
    free(r->cnlen);
    free(r->cpath);
    expr_clear(&r->root);
    ndb_doc_builder_free(r->out);
    ndb_doc_builder_free(r->tmp);
    dbuf_free(&r->spec);
}

static int finish(ndb_doc_builder *b, const uint8_t **d, size_t *dl, ndb_errmsg *msg)
{
    const void *o;
    ndb_status st = ndb_doc_builder_finish(b, &o, dl);
    if (st != NDB_OK)
        return ndb_errmsg_set(msg, st, "pipeline result: %s", ndb_strerror(st));
    *d = o;
    return 1;
}

/* Writes the fields of base into b, each computed one (by name) evaluated
 * over root instead, marking it in done. */
static int base_fields(reshape *r, const ndb_doc_val *root, const ndb_doc_val *base, bool *done,
                       ndb_doc_builder *b, ndb_errmsg *msg)
{
    ndb_doc_iter it;
    ndb_doc_iter_init(&it, base);
    const char *k;
    size_t kl;
    ndb_doc_val e;
    while (ndb_doc_iter_next(&it, &k, &kl, &e)) {
        int x;
        for (x = 0; x < r->ncomp; x++)
            if (r->cnlen[x] == kl && memcmp(r->cname[x], k, kl) == 0)
                break;
        ndb_doc_key(b, k, kl);
        if (x == r->ncomp) {
            ndb_doc_value(b, &e);
            continue;
        }
        ndb_doc_val v;
        int er = expr_eval(&r->cexpr[x], root, &v, msg);
        if (er < 0)
            return er;
        done[x] = true;
        if (er)
            ndb_doc_value(b, &v);
        else
            ndb_doc_null(b);
    }
    return 0;
}

/* $project with computed fields and $addFields. */
static int compute(reshape *r, const ndb_doc_val *root, bool *done, const uint8_t **d, size_t *dl,
                   ndb_errmsg *msg)
{
    ndb_doc_builder *b = r->out;
    /* the base: projected fields, the whole document, or just _id */
    ndb_doc_val base = *root;
    if (r->kind == RS_PROJECT && !r->prj_empty) {
        ndb_doc_builder_reset(r->tmp);
        prj_apply(r->prj, root, r->tmp);
        const void *td;
        size_t tl;
        ndb_doc_builder_finish(r->tmp, &td, &tl);
        ndb_doc_root(td, tl, &base);
    }
    ndb_doc_begin_object(b);
    if (r->kind == RS_PROJECT && r->prj_empty) {
        ndb_doc_val idv;
        if (!r->id_excluded && ndb_doc_get_field(root, "_id", 3, &idv) == NDB_OK) {
            bool computed = false;
            for (int x = 0; x < r->ncomp; x++)
                computed |= key_is(r->cname[x], r->cnlen[x], "_id");
            if (!computed) {
                ndb_doc_key(b, "_id", 3);
                ndb_doc_value(b, &idv);
            }
        }
    } else {
        int er = base_fields(r, root, &base, done, b, msg);
        if (er < 0)
            return er;
    }
    bool dotted = false;
    for (int x = 0; x < r->ncomp; x++) {
        if (done[x])
            continue;
        if (r->kind == RS_ADDFIELDS && r->cpath[x].n > 1) {
            dotted = true;
            continue;
        }
        ndb_doc_val v;
        int er = expr_eval(&r->cexpr[x], root, &v, msg);
        if (er < 0)
            return er;
        if (er == 0)
            continue; /* a missing value adds no field */
        ndb_doc_key(b, r->cname[x], r->cnlen[x]);
        ndb_doc_value(b, &v);
    }
    ndb_doc_end_object(b);
    /* dotted $addFields names: rewrite along the path, ping-ponging between
     * the two builders */
    ndb_doc_builder *from = b, *to = r->tmp;
    for (int x = 0; dotted && x < r->ncomp; x++) {
        if (r->cpath[x].n < 2)
            continue;
        ndb_doc_val v;
        int er = expr_eval(&r->cexpr[x], root, &v, msg);
        if (er < 0)
            return er;
        if (er == 0)
            continue;
        const void *cd;
        size_t cl;
        if (ndb_doc_builder_finish(from, &cd, &cl) != NDB_OK)
            break;
        ndb_doc_val cur;
        ndb_doc_root(cd, cl, &cur);
        ndb_doc_builder_reset(to);
        doc_set_path(&cur, &r->cpath[x], 0, &v, to);
        ndb_doc_builder *t = from;
        from = to;
        to = t;
    }
    return finish(from, d, dl, msg);
}

int reshape_apply(reshape *r, const ndb_doc_val *root, const uint8_t **d, size_t *dl, ndb_errmsg *msg)
{
    ndb_doc_builder *b = r->out;
    ndb_doc_builder_reset(b);
    if (r->kind == RS_REPLACEROOT || r->kind == RS_REPLACEWITH) {
        ndb_doc_val nr;
        int er = expr_eval(&r->root, root, &nr, msg);
        if (er < 0)
            return er;
        if (er == 0 || nr.type != NDB_DOC_OBJECT)
            return ndb_errmsg_set(msg, NDB_EINVAL, "%s's new root must evaluate to an object, not %s",
                                  stage_name(r->kind), er == 0 ? "a missing value" : "another type");
        ndb_doc_value(b, &nr);
        return finish(b, d, dl, msg);
    }
    if (r->kind == RS_UNSET || (r->kind == RS_PROJECT && r->ncomp == 0)) {
        prj_apply(r->prj, root, b);
        return finish(b, d, dl, msg);
    }
    bool small[64] = {false};
    bool *done = r->ncomp <= 64 ? small : calloc((size_t)r->ncomp, sizeof *done);
    if (done == NULL)
        return NDB_ENOMEM;
    int res = compute(r, root, done, d, dl, msg);
    if (done != small)
        free(done);
    return res;
}
