/*
 * update.c — update documents: the brief's merge update ({"age": 29} replaces
 * or adds top-level fields) and MongoDB's operators $set $unset $inc $mul $min
 * $max $rename $push $pull $addToSet $setOnInsert.
 *
 * Each operator rewrites the encoded document along one path into a builder;
 * operators apply in the order given, ping-ponging between two builders owned
 * by the spec (so a compiled spec belongs to one thread at a time).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "doc_int.h"

typedef enum uop {
    U_SET, U_UNSET, U_INC, U_MUL, U_MIN, U_MAX, U_RENAME, U_PUSH, U_PULL, U_ADDTOSET, U_POP,
    U_SETONINSERT,
} uop;

static const struct {
    const char *name;
    uop op;
} uop_names[] = {
    {"$set", U_SET},       {"$unset", U_UNSET},   {"$inc", U_INC},
    {"$mul", U_MUL},       {"$min", U_MIN},       {"$max", U_MAX},
    {"$rename", U_RENAME}, {"$push", U_PUSH},     {"$pull", U_PULL},
    {"$addToSet", U_ADDTOSET}, {"$setOnInsert", U_SETONINSERT}, {"$pop", U_POP},
};

typedef struct uitem {
    uop op;
    const char *name; /* operator name for messages */
    const char *pstr; /* the path as written */
    size_t plen;
    dpath path;
    ndb_doc_val arg;
    bool each;           /* $push/$addToSet with $each: arg is the array */
    bool has_slice, has_pos;
    int64_t slice, pos;  /* $push modifiers */
    int sort;            /* $push $sort: 0 none, 1 by value, 2 by fields */
    bool sort_desc;
    srt_spec *sspec;     /* owned; only for a by-fields $sort */
    dpath to;            /* $rename target */
    ndb_doc_filter *cond; /* $pull */
} uitem;

struct upd_spec {
    bool merge;
    bool has_id;        /* merge document carried an _id */
    int cap;            /* items allocated */
    ndb_doc_val merge_id;
    int n;
    uitem *items;
    ndb_doc_builder *b[2];
    dbuf tmp; /* $rename's moved value */
};

void upd_free(upd_spec *u)
{
    if (u == NULL)
        return;
    /* items[n] may hold the allocations of an item that failed to compile */
    for (int i = 0; i < u->n + 1 && i < u->cap; i++) {
        ndb_doc_filter_free(u->items[i].cond);
        free(u->items[i].sspec);
    }
    free(u->items);
    ndb_doc_builder_free(u->b[0]);
    ndb_doc_builder_free(u->b[1]);
    dbuf_free(&u->tmp);
    free(u);
}

bool upd_is_merge(const upd_spec *u) { return u->merge; }

static bool path_prefix(const dpath *a, const dpath *b)
{
    int n = a->n < b->n ? a->n : b->n;
    for (int i = 0; i < n; i++)
        if (a->l[i] != b->l[i] || memcmp(a->c[i], b->c[i], a->l[i]) != 0)
            return false;
    return true;
}

static ndb_status check_path(const char *p, size_t l, dpath *out, const char *op, ndb_errmsg *msg)
{
    if (path_split(p, l, out) != NDB_OK)
        return ndb_errmsg_set(msg, NDB_EINVAL, "bad field path '%.*s' in %s", (int)l, p, op);
    for (int i = 0; i < out->n; i++)
        if (out->c[i][0] == '$')
            return ndb_errmsg_set(msg, NDB_EINVAL,
                                  "field path '%.*s' in %s: positional and $ paths are not "
                                  "supported",
                                  (int)l, p, op);
    if (out->l[0] == 3 && memcmp(out->c[0], "_id", 3) == 0)
        return ndb_errmsg_set(msg, NDB_EINVAL, "%s may not change _id", op);
    return NDB_OK;
}

static ndb_status add_item(upd_spec *u, uop op, const char *opname, const char *k, size_t kl,
                           const ndb_doc_val *arg, ndb_errmsg *msg)
{
    uitem *it = &u->items[u->n];
    memset(it, 0, sizeof *it);
    it->op = op;
    it->name = opname;
    it->pstr = k;
    it->plen = kl;
    it->arg = *arg;
    ndb_status st = check_path(k, kl, &it->path, opname, msg);
    if (st != NDB_OK)
        return st;
    switch (op) {
    case U_INC:
    case U_MUL:
        if (!val_is_num(arg))
            return ndb_errmsg_set(msg, NDB_EINVAL, "%s.%.*s needs a number", opname, (int)kl, k);
        break;
    case U_RENAME:
        if (arg->type != NDB_DOC_STRING)
            return ndb_errmsg_set(msg, NDB_EINVAL, "$rename.%.*s needs a string target", (int)kl,
                                  k);
        st = check_path(arg->u.s.ptr, arg->u.s.len, &it->to, opname, msg);
        if (st != NDB_OK)
            return st;
        if (path_prefix(&it->path, &it->to))
            return ndb_errmsg_set(msg, NDB_EINVAL, "$rename.%.*s: source and target overlap",
                                  (int)kl, k);
        break;
    case U_PUSH:
    case U_ADDTOSET:
        if (arg->type == NDB_DOC_OBJECT) {
            ndb_doc_val each;
            if (ndb_doc_get_field(arg, "$each", 5, &each) == NDB_OK) {
                if (each.type != NDB_DOC_ARRAY)
                    return ndb_errmsg_set(msg, NDB_EINVAL, "%s.%.*s: $each needs an array",
                                          opname, (int)kl, k);
                ndb_doc_iter mi;
                ndb_doc_iter_init(&mi, arg);
                const char *mk;
                size_t mkl;
                ndb_doc_val mv;
                while (ndb_doc_iter_next(&mi, &mk, &mkl, &mv)) {
                    if (mkl == 5 && memcmp(mk, "$each", 5) == 0)
                        continue;
                    bool ok = op == U_PUSH;
                    if (ok && mkl == 6 && memcmp(mk, "$slice", 6) == 0) {
                        ok = mv.type == NDB_DOC_INT;
                        it->has_slice = true;
                        it->slice = mv.u.i;
                    } else if (ok && mkl == 9 && memcmp(mk, "$position", 9) == 0) {
                        ok = mv.type == NDB_DOC_INT;
                        it->has_pos = true;
                        it->pos = mv.u.i;
                    } else if (ok && mkl == 5 && memcmp(mk, "$sort", 5) == 0) {
                        if (mv.type == NDB_DOC_INT && (mv.u.i == 1 || mv.u.i == -1)) {
                            it->sort = 1;
                            it->sort_desc = mv.u.i < 0;
                        } else if (mv.type == NDB_DOC_OBJECT && mv.u.c.count > 0) {
                            it->sort = 2;
                            it->sspec = malloc(sizeof *it->sspec);
                            if (it->sspec == NULL)
                                return NDB_ENOMEM;
                            ok = srt_compile(&mv, it->sspec, NULL) == NDB_OK;
                        } else {
                            ok = false;
                        }
                    } else {
                        ok = false;
                    }
                    if (!ok)
                        return ndb_errmsg_set(msg, NDB_EINVAL,
                                              "%s.%.*s: bad or unsupported modifier %.*s", opname,
                                              (int)kl, k, (int)mkl, mk);
                }
                it->each = true;
                it->arg = each;
            }
        }
        break;
    case U_POP:
        if (!(arg->type == NDB_DOC_INT && (arg->u.i == 1 || arg->u.i == -1)))
            return ndb_errmsg_set(msg, NDB_EINVAL, "$pop.%.*s needs 1 (last) or -1 (first)", (int)kl, k);
        break;
    case U_PULL: {
        char ctx[100];
        snprintf(ctx, sizeof ctx, "$pull.%.*s", (int)(kl > 80 ? 80 : kl), k);
        st = flt_compile_value_cond(arg, ctx, &it->cond, msg);
        if (st != NDB_OK)
            return st;
        break;
    }
    default:
        break;
    }
    /* two operators on one path, or on a path and its parent, conflict */
    for (int i = 0; i < u->n; i++) {
        const uitem *o = &u->items[i];
        if (path_prefix(&o->path, &it->path) ||
            (o->op == U_RENAME && path_prefix(&o->to, &it->path)) ||
            (op == U_RENAME && path_prefix(&o->path, &it->to)))
            return ndb_errmsg_set(msg, NDB_EINVAL, "update paths conflict at '%.*s'", (int)kl, k);
    }
    u->n++;
    return NDB_OK;
}

ndb_status upd_compile(const ndb_doc_val *v, upd_spec **out, ndb_errmsg *msg)
{
    if (v->type != NDB_DOC_OBJECT)
        return ndb_errmsg_set(msg, NDB_EINVAL, "update must be an object");
    upd_spec *u = calloc(1, sizeof *u);
    if (u == NULL)
        return NDB_ENOMEM;
    ndb_status st = NDB_OK;
    /* count items to size the array */
    size_t total = 0;
    ndb_doc_iter it;
    ndb_doc_iter_init(&it, v);
    const char *k;
    size_t kl;
    ndb_doc_val e;
    int ops = 0, plain = 0;
    while (ndb_doc_iter_next(&it, &k, &kl, &e)) {
        if (kl && k[0] == '$') {
            ops++;
            total += e.type == NDB_DOC_OBJECT ? e.u.c.count : 0;
        } else {
            plain++;
            total++;
        }
    }
    if (it.st != NDB_OK) {
        st = ndb_errmsg_set(msg, NDB_ECORRUPT, "corrupt update document");
        goto out;
    }
    if (ops && plain) {
        st = ndb_errmsg_set(msg, NDB_EINVAL, "update mixes operators and plain fields");
        goto out;
    }
    u->merge = ops == 0;
    u->items = calloc(total ? total : 1, sizeof *u->items);
    u->cap = u->items ? (int)(total ? total : 1) : 0;
    if (u->items == NULL || ndb_doc_builder_new(&u->b[0]) != NDB_OK ||
        ndb_doc_builder_new(&u->b[1]) != NDB_OK) {
        st = NDB_ENOMEM;
        goto out;
    }
    ndb_doc_iter_init(&it, v);
    while (st == NDB_OK && ndb_doc_iter_next(&it, &k, &kl, &e)) {
        if (u->merge) {
            /* the database's own fields are not the client's to set */
            if ((kl == 11 && memcmp(k, "_created_at", 11) == 0) ||
                (kl == 11 && memcmp(k, "_updated_at", 11) == 0))
                continue;
            if (kl == 3 && memcmp(k, "_id", 3) == 0) {
                u->has_id = true; /* checked against the document at apply */
                u->merge_id = e;
                continue;
            }
            st = add_item(u, U_SET, "update", k, kl, &e, msg);
            continue;
        }
        size_t i;
        for (i = 0; i < sizeof uop_names / sizeof uop_names[0]; i++)
            if (strlen(uop_names[i].name) == kl && memcmp(uop_names[i].name, k, kl) == 0)
                break;
        if (i == sizeof uop_names / sizeof uop_names[0]) {
            st = ndb_errmsg_set(msg, NDB_EINVAL, "unknown update operator %.*s", (int)kl, k);
            break;
        }
        if (e.type != NDB_DOC_OBJECT) {
            st = ndb_errmsg_set(msg, NDB_EINVAL, "%s needs an object of fields", uop_names[i].name);
            break;
        }
        ndb_doc_iter fi;
        ndb_doc_iter_init(&fi, &e);
        const char *fk;
        size_t fkl;
        ndb_doc_val fv;
        while (st == NDB_OK && ndb_doc_iter_next(&fi, &fk, &fkl, &fv))
            st = add_item(u, uop_names[i].op, uop_names[i].name, fk, fkl, &fv, msg);
    }
out:
    if (st != NDB_OK) {
        upd_free(u);
        return st;
    }
    *out = u;
    return NDB_OK;
}

/* --------------------------------------------------------------- apply */

typedef struct actx {
    const uitem *it;
    const dpath *path;
    bool create; /* the op writes a value when the path is missing */
    ndb_doc_val moved; /* $rename: the value to write */
    ndb_errmsg *msg;
    bool inserting;
} actx;

enum { EMIT_VALUE = 1, EMIT_NOTHING = 0 };

static ndb_status num_result(ndb_doc_builder *b, const ndb_doc_val *x, const ndb_doc_val *y,
                             bool mul)
{
    if (x->type == NDB_DOC_INT && y->type == NDB_DOC_INT) {
        int64_t r;
        bool ovf = mul ? __builtin_mul_overflow(x->u.i, y->u.i, &r)
                       : __builtin_add_overflow(x->u.i, y->u.i, &r);
        if (!ovf)
            return ndb_doc_int(b, r);
    }
    double r = mul ? ndb_doc_num(x) * ndb_doc_num(y) : ndb_doc_num(x) + ndb_doc_num(y);
    return ndb_doc_double(b, r);
}

static bool arr_contains(const ndb_doc_val *arr, const ndb_doc_val *v)
{
    ndb_doc_iter it;
    ndb_doc_iter_init(&it, arr);
    ndb_doc_val e;
    while (ndb_doc_iter_next(&it, NULL, NULL, &e))
        if (val_equal(&e, v))
            return true;
    return false;
}

static int push_modified(const uitem *it, const ndb_doc_val *old, ndb_doc_builder *b);

/* Writes the new value for the leaf (old == NULL: missing). Returns
 * EMIT_VALUE after writing one value, EMIT_NOTHING to drop the field, or a
 * negative ndb_status. */
static int leaf(actx *a, const ndb_doc_val *old, ndb_doc_builder *b)
{
    const uitem *it = a->it;
    switch (it->op) {
    case U_SET:
    case U_SETONINSERT:
        return ndb_doc_value(b, &it->arg) ?: EMIT_VALUE;
    case U_RENAME:
        return ndb_doc_value(b, &a->moved) ?: EMIT_VALUE;
    case U_UNSET:
        return EMIT_NOTHING;
    case U_INC:
    case U_MUL: {
        if (old == NULL) {
            if (it->op == U_INC)
                return ndb_doc_value(b, &it->arg) ?: EMIT_VALUE;
            return ndb_doc_int(b, 0) ?: EMIT_VALUE;
        }
        if (!val_is_num(old))
            return ndb_errmsg_set(a->msg, NDB_EINVAL, "cannot apply %s to non-numeric field '%.*s'",
                                  it->name, (int)it->plen, it->pstr);
        ndb_status st = num_result(b, old, &it->arg, it->op == U_MUL);
        if (st == NDB_EINVAL)
            return ndb_errmsg_set(a->msg, NDB_EINVAL, "%s on '%.*s' overflows", it->name,
                                  (int)it->plen, it->pstr);
        return st ?: EMIT_VALUE;
    }
    case U_MIN:
    case U_MAX: {
        const ndb_doc_val *pick = &it->arg;
        if (old) {
            int r = ndb_doc_compare(&it->arg, old);
            if ((it->op == U_MIN && r >= 0) || (it->op == U_MAX && r <= 0))
                pick = old;
        }
        return ndb_doc_value(b, pick) ?: EMIT_VALUE;
    }
    case U_PUSH:
    case U_ADDTOSET: {
        if (old && old->type != NDB_DOC_ARRAY)
            return ndb_errmsg_set(a->msg, NDB_EINVAL, "cannot apply %s to non-array field '%.*s'",
                                  it->name, (int)it->plen, it->pstr);
        if (it->has_slice || it->has_pos || it->sort)
            return push_modified(it, old, b);
        ndb_doc_begin_array(b);
        if (old) {
            ndb_doc_iter oi;
            ndb_doc_iter_init(&oi, old);
            ndb_doc_val e;
            while (ndb_doc_iter_next(&oi, NULL, NULL, &e))
                ndb_doc_value(b, &e);
        }
        if (it->each) {
            ndb_doc_iter ei;
            ndb_doc_iter_init(&ei, &it->arg);
            ndb_doc_val e;
            uint32_t idx = 0;
            while (ndb_doc_iter_next(&ei, NULL, NULL, &e)) {
                bool dup = false;
                if (it->op == U_ADDTOSET) {
                    dup = old && arr_contains(old, &e);
                    /* also against earlier $each items */
                    ndb_doc_iter pi;
                    ndb_doc_iter_init(&pi, &it->arg);
                    ndb_doc_val pe;
                    for (uint32_t j = 0; !dup && j < idx && ndb_doc_iter_next(&pi, NULL, NULL, &pe); j++)
                        dup = val_equal(&pe, &e);
                }
                if (!dup)
                    ndb_doc_value(b, &e);
                idx++;
            }
        } else if (!(it->op == U_ADDTOSET && old && arr_contains(old, &it->arg))) {
            ndb_doc_value(b, &it->arg);
        }
        return ndb_doc_end_array(b) ?: EMIT_VALUE;
    }
    case U_POP: {
        if (old == NULL)
            return EMIT_NOTHING; /* not reached: $pop does not create */
        if (old->type != NDB_DOC_ARRAY)
            return ndb_errmsg_set(a->msg, NDB_EINVAL, "cannot apply $pop to non-array field '%.*s'",
                                  (int)it->plen, it->pstr);
        ndb_doc_begin_array(b);
        ndb_doc_iter oi;
        ndb_doc_iter_init(&oi, old);
        ndb_doc_val e;
        uint32_t skip = it->arg.u.i == -1 ? 0 : old->u.c.count - 1; /* the one left out */
        for (uint32_t i = 0; ndb_doc_iter_next(&oi, NULL, NULL, &e); i++)
            if (i != skip)
                ndb_doc_value(b, &e);
        return ndb_doc_end_array(b) ?: EMIT_VALUE;
    }
    case U_PULL: {
        if (old == NULL)
            return EMIT_NOTHING; /* not reached: $pull does not create */
        if (old->type != NDB_DOC_ARRAY)
            return ndb_errmsg_set(a->msg, NDB_EINVAL, "cannot apply $pull to non-array field '%.*s'",
                                  (int)it->plen, it->pstr);
        ndb_doc_begin_array(b);
        ndb_doc_iter oi;
        ndb_doc_iter_init(&oi, old);
        ndb_doc_val e;
        while (ndb_doc_iter_next(&oi, NULL, NULL, &e)) {
            int hit = flt_match_value_cond(it->cond, &e, a->msg);
            if (hit < 0)
                return hit;
            if (!hit)
                ndb_doc_value(b, &e);
        }
        return ndb_doc_end_array(b) ?: EMIT_VALUE;
    }
    }
    return NDB_EINVAL;
}

typedef struct pelem {
    ndb_doc_val v;
    dbuf key; /* sort key (by-fields sort) */
    size_t seq;
} pelem;

static int pelem_cmp(const void *x, const void *y, void *ctx)
{
    const uitem *it = ctx;
    const pelem *a = x, *b = y;
    int r;
    if (it->sort == 1) {
        r = ndb_doc_compare(&a->v, &b->v);
        if (it->sort_desc)
            r = -r;
    } else {
        size_t m = a->key.len < b->key.len ? a->key.len : b->key.len;
        r = memcmp(a->key.data, b->key.data, m);
        if (r == 0)
            r = (a->key.len > b->key.len) - (a->key.len < b->key.len);
    }
    return r ? r : (a->seq > b->seq) - (a->seq < b->seq);
}

/* $push with $each and $position / $sort / $slice (applied in that order). */
static int push_modified(const uitem *it, const ndb_doc_val *old, ndb_doc_builder *b)
{
    size_t nold = old ? old->u.c.count : 0, nnew = it->arg.u.c.count, n = nold + nnew;
    pelem *e = calloc(n ? n : 1, sizeof *e);
    if (e == NULL)
        return NDB_ENOMEM;
    int64_t pos = it->has_pos ? it->pos : (int64_t)nold;
    if (pos < 0)
        pos = (int64_t)nold + pos < 0 ? 0 : (int64_t)nold + pos;
    if (pos > (int64_t)nold)
        pos = (int64_t)nold;
    size_t k = 0;
    ndb_doc_iter oi, ei;
    ndb_doc_val v;
    if (old)
        ndb_doc_iter_init(&oi, old);
    for (int64_t i = 0; i < pos && old && ndb_doc_iter_next(&oi, NULL, NULL, &v); i++)
        e[k++].v = v;
    ndb_doc_iter_init(&ei, &it->arg);
    while (ndb_doc_iter_next(&ei, NULL, NULL, &v))
        e[k++].v = v;
    while (old && ndb_doc_iter_next(&oi, NULL, NULL, &v))
        e[k++].v = v;
    int rc = EMIT_VALUE;
    for (size_t i = 0; i < k; i++) {
        e[i].seq = i;
        if (it->sort == 2) {
            uint8_t nb[2];
            ndb_doc_val nul;
            val_make_null(&nul, nb);
            if (!srt_key_of(it->sspec, e[i].v.type == NDB_DOC_OBJECT ? &e[i].v : &nul, &e[i].key))
                rc = NDB_ENOMEM;
        }
    }
    if (it->sort && k > 1 && rc == EMIT_VALUE)
        qsort_r(e, k, sizeof *e, pelem_cmp, (void *)it);
    size_t from = 0, to = k;
    if (it->has_slice) {
        if (it->slice >= 0 && (uint64_t)it->slice < k)
            to = (size_t)it->slice;
        else if (it->slice < 0 && (uint64_t)(-it->slice) < k)
            from = k - (size_t)(-it->slice);
    }
    if (rc == EMIT_VALUE) {
        ndb_doc_begin_array(b);
        for (size_t i = from; i < to; i++)
            ndb_doc_value(b, &e[i].v);
        rc = ndb_doc_end_array(b) ?: EMIT_VALUE;
    }
    for (size_t i = 0; i < k; i++)
        dbuf_free(&e[i].key);
    free(e);
    return rc;
}

static int rewrite(actx *a, const ndb_doc_val *cur, int i, ndb_doc_builder *b);

/* Writes the chain of new objects for path components i.. (the path was
 * missing from component i on). */
static int create_chain(actx *a, int i, ndb_doc_builder *b)
{
    if (i == a->path->n)
        return leaf(a, NULL, b);
    ndb_doc_begin_object(b);
    ndb_doc_key(b, a->path->c[i], a->path->l[i]);
    int r = create_chain(a, i + 1, b);
    if (r < 0)
        return r;
    return ndb_doc_end_object(b) ?: EMIT_VALUE;
}

static int rewrite_object(actx *a, const ndb_doc_val *obj, int i, ndb_doc_builder *b)
{
    const char *want = a->path->c[i];
    size_t wl = a->path->l[i];
    ndb_doc_begin_object(b);
    ndb_doc_iter it;
    ndb_doc_iter_init(&it, obj);
    const char *k;
    size_t kl;
    ndb_doc_val e;
    bool found = false;
    while (ndb_doc_iter_next(&it, &k, &kl, &e)) {
        if (!found && kl == wl && memcmp(k, want, wl) == 0) {
            found = true;
            size_t mark = cod_builder_len(b);
            (void)mark;
            /* write the key only if a value follows: build key first, and on
             * EMIT_NOTHING the field is dropped by re-emitting nothing */
            if (i + 1 == a->path->n && a->it->op == U_UNSET)
                continue;
            if (i + 1 == a->path->n && a->it->op == U_RENAME && !a->create)
                continue; /* the rename's source */
            ndb_doc_key(b, k, kl);
            int r = i + 1 == a->path->n ? leaf(a, &e, b) : rewrite(a, &e, i + 1, b);
            if (r < 0)
                return r;
            if (r == EMIT_NOTHING)
                ndb_doc_value(b, &e); /* unreachable for UNSET/RENAME handled above */
            continue;
        }
        ndb_doc_key(b, k, kl);
        ndb_doc_value(b, &e);
    }
    if (it.st != NDB_OK)
        return NDB_ECORRUPT;
    if (!found && a->create) {
        ndb_doc_key(b, want, wl);
        int r = create_chain(a, i + 1, b);
        if (r < 0)
            return r;
    }
    return ndb_doc_end_object(b) ?: EMIT_VALUE;
}

static int rewrite_array(actx *a, const ndb_doc_val *arr, int i, ndb_doc_builder *b)
{
    int64_t ix = path_index(a->path->c[i], a->path->l[i]);
    if (ix < 0) {
        if (!a->create)
            return ndb_doc_value(b, arr) ?: EMIT_VALUE;
        return ndb_errmsg_set(a->msg, NDB_EINVAL, "%s: cannot use field '%.*s' in an array at '%.*s'",
                              a->it->name, (int)a->path->l[i], a->path->c[i], (int)a->it->plen,
                              a->it->pstr);
    }
    if (a->create && ix > 100000)
        return ndb_errmsg_set(a->msg, NDB_EINVAL, "%s: array index %lld too large", a->it->name,
                              (long long)ix);
    ndb_doc_begin_array(b);
    ndb_doc_iter it;
    ndb_doc_iter_init(&it, arr);
    ndb_doc_val e;
    int64_t n = 0;
    while (ndb_doc_iter_next(&it, NULL, NULL, &e)) {
        if (n == ix) {
            if (i + 1 == a->path->n && a->it->op == U_UNSET) {
                ndb_doc_null(b); /* MongoDB sets unset array elements to null */
            } else if (i + 1 == a->path->n && a->it->op == U_RENAME && !a->create) {
                ndb_doc_null(b);
            } else {
                int r = i + 1 == a->path->n ? leaf(a, &e, b) : rewrite(a, &e, i + 1, b);
                if (r < 0)
                    return r;
            }
        } else {
            ndb_doc_value(b, &e);
        }
        n++;
    }
    if (a->create && ix >= n) {
        for (; n < ix; n++)
            ndb_doc_null(b);
        int r = create_chain(a, i + 1, b);
        if (r < 0)
            return r;
    }
    return ndb_doc_end_array(b) ?: EMIT_VALUE;
}

static int rewrite(actx *a, const ndb_doc_val *cur, int i, ndb_doc_builder *b)
{
    if (cur->type == NDB_DOC_OBJECT)
        return rewrite_object(a, cur, i, b);
    if (cur->type == NDB_DOC_ARRAY)
        return rewrite_array(a, cur, i, b);
    if (a->create)
        return ndb_errmsg_set(a->msg, NDB_EINVAL, "%s: cannot create field '%.*s' in a %s at '%.*s'",
                              a->it->name, (int)a->path->l[i], a->path->c[i],
                              cur->type == NDB_DOC_STRING ? "string" : "scalar", (int)a->it->plen,
                              a->it->pstr);
    return ndb_doc_value(b, cur) ?: EMIT_VALUE;
}

static ndb_status apply_path(actx *a, const ndb_doc_val *doc, ndb_doc_builder *b)
{
    ndb_doc_builder_reset(b);
    int r = rewrite_object(a, doc, 0, b);
    if (r < 0)
        return (ndb_status)r;
    const void *d;
    size_t n;
    ndb_status st = ndb_doc_builder_finish(b, &d, &n);
    if (st == NDB_ETOOBIG)
        return ndb_errmsg_set(a->msg, st, "updated document exceeds the size limit");
    if (st != NDB_OK)
        return ndb_errmsg_set(a->msg, st, "%s on '%.*s' failed: %s", a->it->name, (int)a->it->plen,
                              a->it->pstr, ndb_strerror(st));
    return NDB_OK;
}

ndb_status upd_apply(upd_spec *u, const ndb_doc_val *doc, bool inserting, ndb_doc_builder *out,
                     bool *changed, ndb_errmsg *msg)
{
    if (doc->type != NDB_DOC_OBJECT)
        return ndb_errmsg_set(msg, NDB_ECORRUPT, "stored document is not an object");
    if (u->has_id) {
        /* merge with an _id: must be the document's own */
        ndb_doc_val id;
        if (ndb_doc_get_field(doc, "_id", 3, &id) != NDB_OK || !val_equal(&id, &u->merge_id))
            return ndb_errmsg_set(msg, NDB_EINVAL, "update may not change _id");
    }
    ndb_doc_val cur = *doc;
    int which = 0;
    bool any = false;
    for (int i = 0; i < u->n; i++) {
        uitem *it = &u->items[i];
        if (it->op == U_SETONINSERT && !inserting)
            continue;
        actx a = {.it = it, .path = &it->path, .msg = msg, .inserting = inserting};
        a.create = it->op != U_UNSET && it->op != U_PULL && it->op != U_RENAME && it->op != U_POP;
        ndb_doc_builder *b = u->b[which];
        ndb_status st;
        if (it->op == U_RENAME) {
            ndb_doc_val src;
            if (ndb_doc_get_path(&cur, it->pstr, it->plen, &src) != NDB_OK)
                continue; /* renaming a missing field is a no-op */
            u->tmp.len = 0;
            if (!dbuf_put(&u->tmp, src.raw, src.raw_len))
                return NDB_ENOMEM;
            cod_read(u->tmp.data, u->tmp.data + u->tmp.len, &a.moved);
            st = apply_path(&a, &cur, b); /* drop the source */
            if (st != NDB_OK)
                return st;
            const void *d;
            size_t n;
            ndb_doc_builder_finish(b, &d, &n);
            ndb_doc_root(d, n, &cur);
            which ^= 1;
            b = u->b[which];
            a.create = true;
            a.path = &it->to;
        }
        st = apply_path(&a, &cur, b);
        if (st != NDB_OK)
            return st;
        const void *d;
        size_t n;
        ndb_doc_builder_finish(b, &d, &n);
        ndb_doc_root(d, n, &cur);
        which ^= 1;
        any = true;
    }
    ndb_doc_builder_reset(out);
    ndb_status st = ndb_doc_value(out, &cur);
    if (st != NDB_OK)
        return st;
    *changed = any && !(cur.raw_len == doc->raw_len && memcmp(cur.raw, doc->raw, cur.raw_len) == 0);
    return NDB_OK;
}

