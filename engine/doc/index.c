/*
 * index.c — secondary index keys and the query planner.
 *
 * Entry layout (FORMAT.md "Key layout"): non-unique
 *   varint(index prefix) | kenc(v1) | ... | kenc(vn) | id     -> empty value
 * unique
 *   varint(index prefix) | kenc(v1) | ... | kenc(vn)          -> id
 * A descending field's kenc bytes are inverted. A missing field indexes as
 * null; an array field indexes each element (multikey); an empty array
 * indexes as the empty array.
 *
 * The planner looks at the filter's top-level AND: for each index it binds
 * equality/$in on a prefix of the index's fields, then one range
 * ($gt/$gte/$lt/$lte) on the next field, and scores the candidates. Index
 * bounds may be looser than the filter (e.g. a multikey range uses one side);
 * every fetched document is re-checked against the full filter, so a plan
 * only changes speed, never results.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "doc_int.h"

void idx_set_ref(idx_set *s)
{
    if (s)
        __atomic_add_fetch(&s->refs, 1, __ATOMIC_RELAXED);
}

void idx_set_unref(idx_set *s)
{
    if (s && __atomic_sub_fetch(&s->refs, 1, __ATOMIC_ACQ_REL) == 0) {
        free(s->defs);
        free(s);
    }
}

bool key_prefix(dbuf *out, uint64_t prefix) { return dbuf_varint(out, prefix); }

void idx_keys_free(idx_keys *k)
{
    if (k == NULL)
        return;
    dbuf_free(&k->buf);
    free(k->scratch);
    free(k);
}

/* ------------------------------------------------------- document keys */

typedef struct vals {
    ndb_doc_val v[1024];
    int n;
    bool from_array;
    bool overflow;
} vals;

static void add_val(vals *o, const ndb_doc_val *v)
{
    if (o->n == (int)(sizeof o->v / sizeof o->v[0])) {
        o->overflow = true;
        return;
    }
    o->v[o->n++] = *v;
}

/* path_walk's leaf for index keys: every element of an array at the path's
 * end (an empty one is indexed as itself), and null where the path is missing
 * (an array element lacking the field included, so {"a.b": null} finds it). */
static bool collect(void *ctx, const ndb_doc_val *v, bool in_array)
{
    vals *o = ctx;
    uint8_t nb[2];
    ndb_doc_val nv;
    o->from_array |= in_array;
    if (v == NULL) {
        val_make_null(&nv, nb);
        v = &nv;
    }
    if (v->type == NDB_DOC_ARRAY && v->u.c.count > 0) {
        o->from_array = true;
        ndb_doc_iter it;
        ndb_doc_iter_init(&it, v);
        ndb_doc_val e;
        while (ndb_doc_iter_next(&it, NULL, NULL, &e))
            add_val(o, &e);
    } else {
        add_val(o, v);
    }
    return false;
}

static bool keys_has(const idx_keys *k, const uint8_t *p, size_t n)
{
    for (int i = 0; i < k->n; i++)
        if (k->off[i + 1] - k->off[i] == n && memcmp(k->buf.data + k->off[i], p, n) == 0)
            return true;
    return false;
}

ndb_status idx_doc_keys(const idx_def *d, const ndb_doc_val *doc, const char *id, size_t idlen,
                        idx_keys *out, bool *multi, ndb_errmsg *msg)
{
    if (out->scratch == NULL && (out->scratch = calloc(4, sizeof(vals))) == NULL)
        return NDB_ENOMEM;
    vals *fv = out->scratch; /* per-field values; large, so on the heap */
    out->buf.len = 0;
    out->n = 0;
    out->off[0] = 0;
    *multi = false;
    int arrays = 0, which = -1;
    if (d->nfields > 4)
        return ndb_errmsg_set(msg, NDB_EINVAL, "index %s has more than 4 fields", d->name);
    for (int f = 0; f < d->nfields; f++) {
        vals *o = &fv[f];
        o->n = 0;
        o->from_array = false;
        o->overflow = false;
        path_walk(doc, &d->path[f], 0, false, collect, o); /* a missing field yields null */
        if (o->overflow)
            return ndb_errmsg_set(msg, NDB_EINVAL, "field %s yields too many index keys",
                                  d->field[f]);
        if (o->from_array || o->n > 1) {
            *multi = true;
            arrays++;
            which = f;
        }
    }
    if (arrays > 1)
        return ndb_errmsg_set(msg, NDB_EINVAL, "cannot index parallel arrays in index %s", d->name);
    int nkeys = which >= 0 ? fv[which].n : 1;
    dbuf tmp = {0};
    for (int k = 0; k < nkeys; k++) {
        tmp.len = 0;
        key_prefix(&tmp, d->prefix);
        for (int f = 0; f < d->nfields; f++) {
            const ndb_doc_val *v = f == which ? &fv[f].v[k] : &fv[f].v[0];
            if (!kenc_value(&tmp, v, d->desc[f])) {
                dbuf_free(&tmp);
                return tmp.oom ? NDB_ENOMEM : ndb_errmsg_set(msg, NDB_EINVAL, "value too deep to index");
            }
        }
        if (!d->unique)
            dbuf_put(&tmp, id, idlen);
        if (tmp.oom) {
            dbuf_free(&tmp);
            return NDB_ENOMEM;
        }
        if (keys_has(out, tmp.data, tmp.len))
            continue;
        if (out->n + 1 >= (int)(sizeof out->off / sizeof out->off[0])) {
            dbuf_free(&tmp);
            return ndb_errmsg_set(msg, NDB_EINVAL, "document yields too many keys for index %s",
                                  d->name);
        }
        if (!dbuf_put(&out->buf, tmp.data, tmp.len)) {
            dbuf_free(&tmp);
            return NDB_ENOMEM;
        }
        out->n++;
        out->off[out->n] = out->buf.len;
    }
    dbuf_free(&tmp);
    return NDB_OK;
}

bool idx_entry_id(const idx_def *d, const uint8_t *key, size_t klen, const uint8_t *val,
                  size_t vlen, const uint8_t **id, size_t *idlen)
{
    if (d->unique) {
        *id = val;
        *idlen = vlen;
        return vlen > 0;
    }
    const uint8_t *p = key, *end = key + klen;
    uint64_t pre;
    p = varint_get(p, end, &pre, 10);
    if (p == NULL)
        return false;
    for (int f = 0; f < d->nfields; f++) {
        p = kenc_skip(p, end, d->desc[f]);
        if (p == NULL)
            return false;
    }
    *id = p;
    *idlen = (size_t)(end - p);
    return *idlen > 0;
}

/* --------------------------------------------------------------- planner */

/* The smallest byte string greater than every string starting with p. */
static bool prefix_succ(dbuf *b, size_t from)
{
    while (b->len > from && b->data[b->len - 1] == 0xFF)
        b->len--;
    if (b->len == from)
        return false; /* all 0xFF: unbounded */
    b->data[b->len - 1]++;
    return true;
}

/* Conditions on one path from the filter's top-level AND. */
typedef struct fconds {
    const flt_pred *eq;  /* $eq with an indexable argument */
    const flt_pred *in;  /* $in */
    const flt_pred *lo, *hi; /* range sides */
} fconds;

static bool indexable_arg(const ndb_doc_val *v) { return v->type != NDB_DOC_ARRAY; }

static void gather_node(const flt_node *n, const dpath *path, fconds *c)
{
    if (n == NULL)
        return;
    if (n->kind == FN_AND) {
        for (int i = 0; i < n->nkids; i++)
            gather_node(n->kids[i], path, c);
        return;
    }
    if (n->kind != FN_FIELD || n->path.n != path->n)
        return;
    for (int i = 0; i < path->n; i++)
        if (n->path.l[i] != path->l[i] || memcmp(n->path.c[i], path->c[i], path->l[i]) != 0)
            return;
    for (int i = 0; i < n->npreds; i++) {
        const flt_pred *p = &n->preds[i];
        switch (p->op) {
        case OP_EQ:
            if (indexable_arg(&p->arg) && !c->eq)
                c->eq = p;
            break;
        case OP_IN: {
            bool ok = p->arg.u.c.count > 0 && p->arg.u.c.count <= 1000;
            ndb_doc_iter it;
            ndb_doc_iter_init(&it, &p->arg);
            ndb_doc_val e;
            while (ok && ndb_doc_iter_next(&it, NULL, NULL, &e))
                ok = indexable_arg(&e);
            if (ok && !c->in)
                c->in = p;
            break;
        }
        case OP_GT: case OP_GTE:
            if (indexable_arg(&p->arg) && !c->lo)
                c->lo = p;
            break;
        case OP_LT: case OP_LTE:
            if (indexable_arg(&p->arg) && !c->hi)
                c->hi = p;
            break;
        default:
            break;
        }
    }
}

static bool find_id_eq(const flt_node *n, ndb_doc_val *id)
{
    if (n == NULL)
        return false;
    if (n->kind == FN_AND) {
        for (int i = 0; i < n->nkids; i++)
            if (find_id_eq(n->kids[i], id))
                return true;
        return false;
    }
    if (n->kind != FN_FIELD || n->path.n != 1 || n->path.l[0] != 3 ||
        memcmp(n->path.c[0], "_id", 3) != 0)
        return false;
    for (int i = 0; i < n->npreds; i++)
        if (n->preds[i].op == OP_EQ && n->preds[i].arg.type == NDB_DOC_STRING) {
            *id = n->preds[i].arg;
            return true;
        }
    return false;
}

void plan_free(plan *p)
{
    for (int i = 0; i < p->nranges; i++) {
        dbuf_free(&p->ranges[i].lo);
        dbuf_free(&p->ranges[i].hi);
    }
    free(p->ranges);
    p->ranges = NULL;
    p->nranges = 0;
}

/* Builds the ranges of one index for the bound conditions; returns a score
 * (higher is better), or -1 if the index is of no use. */
typedef struct cand {
    int neq;        /* fields bound by equality/$in */
    bool range;     /* a range on the next field */
    int npoints;    /* cartesian size of the equality prefix */
    fconds c[PATH_MAX_COMP];
} cand;

static int rate(const idx_def *d, const ndb_doc_filter *f, cand *cd)
{
    memset(cd, 0, sizeof *cd);
    cd->npoints = 1;
    for (int i = 0; i < d->nfields; i++) {
        gather_node(f ? f->root : NULL, &d->path[i], &cd->c[i]);
        fconds *c = &cd->c[i];
        if (c->eq) {
            cd->neq++;
            continue;
        }
        if (c->in && cd->npoints * (int)c->in->arg.u.c.count <= 1000) {
            cd->npoints *= (int)c->in->arg.u.c.count;
            cd->neq++;
            continue;
        }
        if (c->lo || c->hi)
            cd->range = true;
        break;
    }
    if (cd->neq == 0 && !cd->range)
        return -1;
    return cd->neq * 4 + (cd->range ? 2 : 0) + (d->unique && cd->neq == d->nfields ? 1 : 0);
}

/* The prefix bytes of each point of the equality prefix (cartesian). */
static ndb_status points(const idx_def *d, const cand *cd, dbuf **out, int *n)
{
    int cnt = 1;
    dbuf *pts = calloc(1, sizeof *pts);
    if (pts == NULL)
        return NDB_ENOMEM;
    key_prefix(&pts[0], d->prefix);
    for (int i = 0; i < cd->neq; i++) {
        const fconds *c = &cd->c[i];
        if (c->eq) {
            for (int k = 0; k < cnt; k++)
                kenc_value(&pts[k], &c->eq->arg, d->desc[i]);
            continue;
        }
        int m = (int)c->in->arg.u.c.count;
        dbuf *np = calloc((size_t)(cnt * m), sizeof *np);
        if (np == NULL)
            goto oom;
        for (int k = 0; k < cnt; k++) {
            ndb_doc_iter it;
            ndb_doc_iter_init(&it, &c->in->arg);
            ndb_doc_val e;
            int j = 0;
            while (ndb_doc_iter_next(&it, NULL, NULL, &e)) {
                dbuf *t = &np[k * m + j++];
                dbuf_put(t, pts[k].data, pts[k].len);
                kenc_value(t, &e, d->desc[i]);
            }
        }
        for (int k = 0; k < cnt; k++)
            dbuf_free(&pts[k]);
        free(pts);
        pts = np;
        cnt *= m;
    }
    for (int k = 0; k < cnt; k++)
        if (pts[k].oom)
            goto oom;
    *out = pts;
    *n = cnt;
    return NDB_OK;
oom:
    for (int k = 0; k < cnt; k++)
        dbuf_free(&pts[k]);
    free(pts);
    return NDB_ENOMEM;
}

static int range_cmp(const void *a, const void *b)
{
    const plan_range *x = a, *y = b;
    size_t m = x->lo.len < y->lo.len ? x->lo.len : y->lo.len;
    int r = memcmp(x->lo.data, y->lo.data, m);
    return r ? r : (x->lo.len > y->lo.len) - (x->lo.len < y->lo.len);
}

static ndb_status build_ranges(const idx_def *d, const cand *cd, plan *p)
{
    dbuf *pts;
    int n;
    ndb_status st = points(d, cd, &pts, &n);
    if (st != NDB_OK)
        return st;
    if (n < 1)
        n = 1; /* points() always yields at least the bare prefix */
    p->ranges = calloc((size_t)n, sizeof *p->ranges);
    if (p->ranges == NULL) {
        for (int k = 0; k < n; k++)
            dbuf_free(&pts[k]);
        free(pts);
        return NDB_ENOMEM;
    }
    const fconds *rc = cd->range ? &cd->c[cd->neq] : NULL;
    for (int k = 0; k < n; k++) {
        plan_range *r = &p->ranges[k];
        dbuf_put(&r->lo, pts[k].data, pts[k].len);
        dbuf_put(&r->hi, pts[k].data, pts[k].len);
        size_t base = pts[k].len;
        if (rc) {
            /* a multikey index cannot intersect two sides: keep one */
            const flt_pred *lo = rc->lo, *hi = rc->hi;
            if (d->multikey && lo && hi)
                hi = NULL;
            if (lo && hi && val_rank(lo->arg.type) != val_rank(hi->arg.type))
                hi = NULL;
            const ndb_doc_val *bv = lo ? &lo->arg : &hi->arg;
            dbuf br = {0};
            kenc_value(&br, bv, false);
            uint8_t bracket = br.len ? br.data[0] : KT_NULL;
            dbuf_free(&br);
            if (!d->desc[cd->neq]) {
                if (lo) {
                    kenc_value(&r->lo, &lo->arg, false);
                    if (lo->op == OP_GT)
                        prefix_succ(&r->lo, base);
                } else {
                    dbuf_byte(&r->lo, bracket);
                }
                if (hi) {
                    kenc_value(&r->hi, &hi->arg, false);
                    if (hi->op == OP_LTE)
                        prefix_succ(&r->hi, base);
                } else {
                    dbuf_byte(&r->hi, (uint8_t)(bracket + 1));
                }
            } else {
                /* inverted bytes: the upper value bounds the low end */
                if (hi) {
                    kenc_value(&r->lo, &hi->arg, true);
                    if (hi->op == OP_LT)
                        prefix_succ(&r->lo, base);
                } else {
                    dbuf_byte(&r->lo, (uint8_t)~bracket);
                }
                if (lo) {
                    kenc_value(&r->hi, &lo->arg, true);
                    if (lo->op == OP_GTE)
                        prefix_succ(&r->hi, base);
                } else {
                    dbuf_byte(&r->hi, (uint8_t)(~bracket + 1));
                }
            }
        } else if (!prefix_succ(&r->hi, 0)) {
            r->hi.len = 0; /* unbounded */
        }
        dbuf_free(&pts[k]);
        p->nranges++;
        if (r->lo.oom || r->hi.oom) {
            free(pts);
            return NDB_ENOMEM;
        }
    }
    free(pts);
    qsort(p->ranges, (size_t)p->nranges, sizeof *p->ranges, range_cmp);
    /* $in may repeat a value: identical ranges would return documents twice */
    int w = 0;
    for (int i = 0; i < p->nranges; i++) {
        if (w > 0 && range_cmp(&p->ranges[w - 1], &p->ranges[i]) == 0) {
            dbuf_free(&p->ranges[i].lo);
            dbuf_free(&p->ranges[i].hi);
            continue;
        }
        p->ranges[w++] = p->ranges[i];
    }
    p->nranges = w;
    return NDB_OK;
}

/* Does scanning d (after neq bound fields, in one range) give sort order s? */
static int sort_dir(const idx_def *d, int neq, const srt_spec *s)
{
    if (s == NULL || s->n == 0 || d->multikey)
        return 0;
    if (neq + s->n > d->nfields)
        return 0;
    int dir = 0;
    for (int i = 0; i < s->n; i++) {
        const dpath *a = &d->path[neq + i], *b = &s->k[i].path;
        if (a->n != b->n)
            return 0;
        for (int j = 0; j < a->n; j++)
            if (a->l[j] != b->l[j] || memcmp(a->c[j], b->c[j], a->l[j]) != 0)
                return 0;
        int dd = d->desc[neq + i] == s->k[i].desc ? 1 : -1;
        if (dir && dd != dir)
            return 0;
        dir = dd;
    }
    return dir;
}

static bool same_path(const dpath *a, const dpath *b)
{
    if (a->n != b->n)
        return false;
    for (int i = 0; i < a->n; i++)
        if (a->l[i] != b->l[i] || memcmp(a->c[i], b->c[i], a->l[i]) != 0)
            return false;
    return true;
}

/* Do the ranges built from cd select exactly the documents f matches? True
 * when the filter is a plain AND of conditions that all became bounds. */
static bool plan_exact(const idx_def *d, const ndb_doc_filter *f, const cand *cd)
{
    if (d->multikey || f == NULL || f->root == NULL || f->root->kind != FN_AND)
        return false;
    int used = cd->neq + (cd->range ? 1 : 0);
    if (f->root->nkids != used)
        return false;
    for (int k = 0; k < f->root->nkids; k++) {
        const flt_node *n = f->root->kids[k];
        if (n->kind != FN_FIELD)
            return false;
        int j;
        for (j = 0; j < used; j++)
            if (same_path(&n->path, &d->path[j]))
                break;
        if (j == used)
            return false;
        const fconds *c = &cd->c[j];
        for (int p = 0; p < n->npreds; p++) {
            const flt_pred *pr = &n->preds[p];
            if (j < cd->neq) {
                if (n->npreds != 1 || (pr != c->eq && pr != c->in))
                    return false;
            } else {
                if (pr != c->lo && pr != c->hi)
                    return false;
                if (c->lo && c->hi && val_rank(c->lo->arg.type) != val_rank(c->hi->arg.type))
                    return false; /* one side was dropped */
            }
        }
    }
    return true;
}

ndb_status plan_choose(const ndb_doc_filter *f, const srt_spec *s, const idx_set *set,
                       const char *hint, plan *out, ndb_errmsg *msg)
{
    memset(out, 0, sizeof *out);
    out->kind = PLAN_COLLSCAN;
    bool scan_only = hint && strcmp(hint, "_id") == 0;
    if (!hint && f && find_id_eq(f->root, &out->id)) {
        out->kind = PLAN_IDHACK;
        return NDB_OK;
    }
    if (scan_only)
        return NDB_OK;
    int best = -1, best_score = -1, best_dir = 0;
    cand cd, best_cd;
    for (int i = 0; set && i < set->n; i++) {
        const idx_def *d = &set->defs[i];
        if (hint && strcmp(hint, d->name) != 0)
            continue;
        int score = rate(d, f, &cd);
        int dir = 0;
        if (score >= 0 && cd.npoints == 1)
            dir = sort_dir(d, cd.neq, s);
        else if (score < 0)
            dir = sort_dir(d, 0, s);
        if (score < 0 && dir == 0 && !hint)
            continue;
        int total = (score < 0 ? 0 : score * 2) + (dir ? 1 : 0);
        if (total > best_score) {
            best = i;
            best_score = total;
            best_cd = cd;
            best_dir = dir;
        }
    }
    if (hint && best < 0)
        return ndb_errmsg_set(msg, NDB_EINVAL, "hint names no index: %s", hint);
    if (best < 0)
        return NDB_OK;
    const idx_def *d = &set->defs[best];
    out->kind = PLAN_IXSCAN;
    out->idx = d;
    if (best_cd.neq == 0 && !best_cd.range) {
        /* whole-index scan for the sort order (or a hint) */
        memset(&best_cd, 0, sizeof best_cd);
        best_cd.npoints = 1;
    }
    ndb_status st = build_ranges(d, &best_cd, out);
    if (st != NDB_OK) {
        plan_free(out);
        return st;
    }
    out->exact = plan_exact(d, f, &best_cd);
    out->sort_covered = best_dir != 0 && out->nranges == 1;
    out->reverse = best_dir < 0 && out->sort_covered;
    return NDB_OK;
}
