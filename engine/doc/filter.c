/*
 * filter.c — the query language: compile a filter document into a tree,
 * match documents against it in place (no decoding).
 *
 * Semantics follow MongoDB: implicit AND of fields and of operators on one
 * field; dotted paths through objects and arrays (a path step over an array
 * applies to each element that is an object, and a numeric step also indexes
 * the array); a condition on an array value matches if the array itself or
 * any element matches; comparison operators only match values of the
 * operand's type bracket (numbers together); {"f": null} also matches a
 * missing field; $ne/$nin/$not are the negations of $eq/$in/the inner
 * condition (so they match missing fields).
 */
#define PCRE2_CODE_UNIT_WIDTH 8
#include <math.h>
#include <pcre2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "doc_int.h"
#include "expr.h"

/* ----------------------------------------------------------------- free */

static void node_free(flt_node *n);

static void preds_free(flt_pred *p, int n)
{
    for (int i = 0; i < n; i++) {
        if (p[i].re)
            pcre2_code_free(p[i].re);
        if (p[i].md)
            pcre2_match_data_free(p[i].md);
        node_free(p[i].sub);
        preds_free(p[i].inner, p[i].ninner);
    }
    free(p);
}

static void node_free(flt_node *n)
{
    if (n == NULL)
        return;
    if (n->ex) {
        expr_clear(n->ex);
        free(n->ex);
    }
    for (int i = 0; i < n->nkids; i++)
        node_free(n->kids[i]);
    free(n->kids);
    preds_free(n->preds, n->npreds);
    free(n);
}

void ndb_doc_filter_free(ndb_doc_filter *f)
{
    if (f == NULL)
        return;
    node_free(f->root);
    pcre2_match_context_free(f->run.mctx);
    free(f->bytes);
    free(f);
}

/* -------------------------------------------------------------- compile */

typedef struct cctx {
    ndb_errmsg *msg;
    flt_run *run; /* the filter's, for its $regex conditions */
    char where[200]; /* "filter.$and.0.age" */
    int depth;
} cctx;

static size_t where_push(cctx *c, const char *s, size_t n)
{
    size_t old = strlen(c->where);
    snprintf(c->where + old, sizeof c->where - old, "%s%.*s", old ? "." : "", (int)n, s);
    return old;
}
static void where_pop(cctx *c, size_t old) { c->where[old] = 0; }

static ndb_status compile_node(cctx *c, const ndb_doc_val *obj, flt_node **out);
static ndb_status compile_ops(cctx *c, const ndb_doc_val *ops, flt_pred **preds, int *npreds,
                              bool in_not);

static bool is_op_object(const ndb_doc_val *v)
{
    if (v->type != NDB_DOC_OBJECT || v->u.c.count == 0)
        return false;
    ndb_doc_iter it;
    ndb_doc_iter_init(&it, v);
    const char *k;
    size_t kl;
    ndb_doc_val e;
    return ndb_doc_iter_next(&it, &k, &kl, &e) && kl > 0 && k[0] == '$';
}

static const struct {
    const char *name;
    flt_op op;
} op_names[] = {
    {"$eq", OP_EQ},     {"$ne", OP_NE},       {"$gt", OP_GT},         {"$gte", OP_GTE},
    {"$lt", OP_LT},     {"$lte", OP_LTE},     {"$in", OP_IN},         {"$nin", OP_NIN},
    {"$exists", OP_EXISTS}, {"$regex", OP_REGEX}, {"$all", OP_ALL},
    {"$elemMatch", OP_ELEMMATCH}, {"$size", OP_SIZE}, {"$type", OP_TYPE}, {"$not", OP_NOT},
    {"$mod", OP_MOD},
};

/* $type's bit for a value: one per ndb_doc_type, and integers split as BSON
 * would carry them: within int32 ("int", 16), beyond it ("long", 18). */
#define TYPE_BIT_LONG (1u << 12)
static uint32_t type_bit(const ndb_doc_val *v)
{
    if (v->type == NDB_DOC_INT && (v->u.i > INT32_MAX || v->u.i < INT32_MIN))
        return TYPE_BIT_LONG;
    return 1u << v->type;
}

/* Adds the types a $type argument names to *mask: 0, or -1 for an unknown
 * name or code. BSON types NexaDB does not store (decimal, objectId, regex,
 * ...) are known names that match nothing. */
static int type_alias(const ndb_doc_val *v, uint32_t *mask)
{
#define B(t) (1u << (t))
    static const struct {
        const char *n;
        int code;
        uint32_t m;
    } names[] = {
        {"double", 1, B(NDB_DOC_DOUBLE)},  {"string", 2, B(NDB_DOC_STRING)},
        {"object", 3, B(NDB_DOC_OBJECT)},  {"array", 4, B(NDB_DOC_ARRAY)},
        {"binData", 5, B(NDB_DOC_BINARY)}, {"undefined", 6, 0},
        {"objectId", 7, 0},                {"bool", 8, B(NDB_DOC_BOOL)},
        {"date", 9, B(NDB_DOC_DATE)},      {"null", 10, B(NDB_DOC_NULL)},
        {"regex", 11, 0},                  {"dbPointer", 12, 0},
        {"javascript", 13, 0},             {"symbol", 14, 0},
        {"int", 16, B(NDB_DOC_INT)},       {"timestamp", 17, 0},
        {"long", 18, TYPE_BIT_LONG},       {"decimal", 19, 0},
        {"minKey", -1, 0},                 {"maxKey", 127, 0},
        {"number", 0, B(NDB_DOC_INT) | B(NDB_DOC_DOUBLE) | TYPE_BIT_LONG},
    };
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        bool hit = v->type == NDB_DOC_STRING ? key_is(v->u.s.ptr, v->u.s.len, names[i].n)
                   : v->type == NDB_DOC_INT  ? names[i].code != 0 && v->u.i == names[i].code
                   : v->type == NDB_DOC_DOUBLE && names[i].code != 0 && v->u.d == names[i].code;
        if (hit) {
            *mask |= names[i].m;
            return 0;
        }
    }
    return -1;
#undef B
}

static ndb_status compile_regex(cctx *c, flt_pred *p, const ndb_doc_val *pat,
                                const ndb_doc_val *opts)
{
    if (pat->type != NDB_DOC_STRING)
        return ndb_errmsg_set(c->msg, NDB_EINVAL, "$regex needs a string at %s", c->where);
    uint32_t flags = PCRE2_UTF;
    if (opts) {
        if (opts->type != NDB_DOC_STRING)
            return ndb_errmsg_set(c->msg, NDB_EINVAL, "$options needs a string at %s", c->where);
        for (size_t i = 0; i < opts->u.s.len; i++) {
            switch (opts->u.s.ptr[i]) {
            case 'i': flags |= PCRE2_CASELESS; break;
            case 'm': flags |= PCRE2_MULTILINE; break;
            case 's': flags |= PCRE2_DOTALL; break;
            case 'x': flags |= PCRE2_EXTENDED; break;
            case 'u': break;
            default:
                return ndb_errmsg_set(c->msg, NDB_EINVAL, "unknown $regex option '%c' at %s",
                                      opts->u.s.ptr[i], c->where);
            }
        }
    }
    int err;
    PCRE2_SIZE off;
    p->re = pcre2_compile((PCRE2_SPTR)pat->u.s.ptr, pat->u.s.len, flags, &err, &off, NULL);
    if (p->re == NULL) {
        PCRE2_UCHAR buf[120];
        pcre2_get_error_message(err, buf, sizeof buf);
        return ndb_errmsg_set(c->msg, NDB_EINVAL, "bad $regex at %s (offset %zu): %s", c->where,
                              (size_t)off, (const char *)buf);
    }
    (void)pcre2_jit_compile(p->re, PCRE2_JIT_COMPLETE); /* optional speed-up */
    p->md = pcre2_match_data_create_from_pattern(p->re, NULL);
    if (p->md == NULL)
        return NDB_ENOMEM;
    if (c->run->mctx == NULL) {
        if ((c->run->mctx = pcre2_match_context_create(NULL)) == NULL)
            return NDB_ENOMEM;
        pcre2_set_match_limit(c->run->mctx, FLT_REGEX_MATCH_LIMIT);
        pcre2_set_depth_limit(c->run->mctx, FLT_REGEX_DEPTH_LIMIT);
        pcre2_set_heap_limit(c->run->mctx, FLT_REGEX_HEAP_LIMIT_KIB);
    }
    p->run = c->run;
    p->op = OP_REGEX;
    p->arg = *pat;
    return NDB_OK;
}

static ndb_status compile_one_op(cctx *c, flt_pred *p, flt_op op, const ndb_doc_val *v)
{
    p->op = op;
    p->arg = *v;
    switch (op) {
    case OP_EQ: case OP_NE: case OP_GT: case OP_GTE: case OP_LT: case OP_LTE:
        return NDB_OK;
    case OP_IN: case OP_NIN: case OP_ALL: {
        const char *name = op == OP_IN ? "$in" : op == OP_NIN ? "$nin" : "$all";
        if (v->type != NDB_DOC_ARRAY)
            return ndb_errmsg_set(c->msg, NDB_EINVAL, "%s needs an array at %s", name, c->where);
        if (op == OP_ALL)
            return NDB_OK; /* [{"$elemMatch": ...}] is $all's own form */
        ndb_doc_iter it;
        ndb_doc_iter_init(&it, v);
        ndb_doc_val e;
        while (ndb_doc_iter_next(&it, NULL, NULL, &e)) /* MongoDB: "cannot nest $ under $in" */
            if (is_op_object(&e))
                return ndb_errmsg_set(c->msg, NDB_EINVAL, "cannot nest an operator object under %s at %s (its "
                                      "elements are values)", name, c->where);
        return NDB_OK;
    }
    case OP_MOD: {
        ndb_doc_val d, r;
        if (v->type != NDB_DOC_ARRAY || v->u.c.count != 2 || ndb_doc_get_index(v, 0, &d) != NDB_OK ||
            ndb_doc_get_index(v, 1, &r) != NDB_OK || !val_is_num(&d) || !val_is_num(&r))
            return ndb_errmsg_set(c->msg, NDB_EINVAL, "$mod needs an array of two numbers [divisor, remainder] "
                                  "at %s", c->where);
        /* MongoDB truncates both toward zero */
        double dd = ndb_doc_num(&d), rr = ndb_doc_num(&r);
        if (!(fabs(dd) < 9.2e18 && fabs(rr) < 9.2e18))
            return ndb_errmsg_set(c->msg, NDB_EINVAL, "$mod's divisor and remainder must fit 64 bits at %s", c->where);
        p->mod[0] = d.type == NDB_DOC_INT ? d.u.i : (int64_t)dd;
        p->mod[1] = r.type == NDB_DOC_INT ? r.u.i : (int64_t)rr;
        if (p->mod[0] == 0)
            return ndb_errmsg_set(c->msg, NDB_EINVAL, "$mod's divisor cannot be 0 at %s", c->where);
        return NDB_OK;
    }
    case OP_EXISTS:
        p->exists = !(v->type == NDB_DOC_NULL || (v->type == NDB_DOC_BOOL && !v->u.b) ||
                      (v->type == NDB_DOC_INT && v->u.i == 0));
        return NDB_OK;
    case OP_SIZE:
        if (v->type != NDB_DOC_INT || v->u.i < 0)
            return ndb_errmsg_set(c->msg, NDB_EINVAL, "$size needs a non-negative integer at %s",
                                  c->where);
        p->size = v->u.i;
        return NDB_OK;
    case OP_TYPE: {
        if (v->type == NDB_DOC_ARRAY) {
            ndb_doc_iter it;
            ndb_doc_iter_init(&it, v);
            ndb_doc_val e;
            while (ndb_doc_iter_next(&it, NULL, NULL, &e))
                if (type_alias(&e, &p->type_mask) < 0)
                    goto badtype;
            if (it.st == NDB_OK && v->u.c.count > 0)
                return NDB_OK;
        } else if (type_alias(v, &p->type_mask) == 0) {
            return NDB_OK;
        }
    badtype:
        return ndb_errmsg_set(c->msg, NDB_EINVAL, "unknown $type at %s", c->where);
    }
    case OP_ELEMMATCH:
        if (v->type != NDB_DOC_OBJECT)
            return ndb_errmsg_set(c->msg, NDB_EINVAL, "$elemMatch needs an object at %s",
                                  c->where);
        if (is_op_object(v)) {
            /* value form: {"$elemMatch": {"$gt": 1, "$lt": 5}}; a logical
             * operator first means document form */
            ndb_doc_iter it;
            ndb_doc_iter_init(&it, v);
            const char *k;
            size_t kl;
            ndb_doc_val e;
            ndb_doc_iter_next(&it, &k, &kl, &e);
            bool logical = (kl == 4 && memcmp(k, "$and", 4) == 0) ||
                           (kl == 3 && memcmp(k, "$or", 3) == 0) ||
                           (kl == 4 && memcmp(k, "$nor", 4) == 0);
            if (!logical)
                return compile_ops(c, v, &p->inner, &p->ninner, false);
        }
        return compile_node(c, v, &p->sub);
    case OP_NOT:
        if (v->type != NDB_DOC_OBJECT || !is_op_object(v))
            return ndb_errmsg_set(c->msg, NDB_EINVAL, "$not needs an operator object at %s",
                                  c->where);
        return compile_ops(c, v, &p->inner, &p->ninner, true);
    case OP_REGEX:
        break;
    }
    return NDB_EINVAL;
}

static ndb_status compile_ops(cctx *c, const ndb_doc_val *ops, flt_pred **preds, int *npreds,
                              bool in_not)
{
    (void)in_not;
    if (++c->depth > NDB_DOC_MAX_DEPTH)
        return ndb_errmsg_set(c->msg, NDB_EINVAL, "filter nested too deeply at %s", c->where);
    uint32_t n = ops->u.c.count;
    flt_pred *p = calloc(n ? n : 1, sizeof *p);
    if (p == NULL)
        return NDB_ENOMEM;
    int np = 0;
    ndb_status st = NDB_OK;
    ndb_doc_val options;
    bool have_options = ndb_doc_get_field(ops, "$options", 8, &options) == NDB_OK;
    ndb_doc_iter it;
    ndb_doc_iter_init(&it, ops);
    const char *k;
    size_t kl;
    ndb_doc_val v;
    while (st == NDB_OK && ndb_doc_iter_next(&it, &k, &kl, &v)) {
        if (kl == 8 && memcmp(k, "$options", 8) == 0) {
            ndb_doc_val tmp;
            if (ndb_doc_get_field(ops, "$regex", 6, &tmp) != NDB_OK)
                st = ndb_errmsg_set(c->msg, NDB_EINVAL, "$options without $regex at %s",
                                    c->where);
            continue;
        }
        if (kl == 6 && memcmp(k, "$regex", 6) == 0) {
            st = compile_regex(c, &p[np++], &v, have_options ? &options : NULL);
            continue;
        }
        size_t i;
        for (i = 0; i < sizeof op_names / sizeof op_names[0]; i++)
            if (strlen(op_names[i].name) == kl && memcmp(op_names[i].name, k, kl) == 0)
                break;
        if (i == sizeof op_names / sizeof op_names[0]) {
            if (kl == 0 || k[0] != '$')
                st = ndb_errmsg_set(c->msg, NDB_EINVAL,
                                    "field '%.*s' mixed with operators at %s", (int)kl, k,
                                    c->where);
            else
                st = ndb_errmsg_set(c->msg, NDB_EINVAL, "unknown operator %.*s at %s", (int)kl,
                                    k, c->where[0] ? c->where : "filter");
            break;
        }
        st = compile_one_op(c, &p[np++], op_names[i].op, &v);
    }
    if (st == NDB_OK && it.st != NDB_OK)
        st = ndb_errmsg_set(c->msg, NDB_ECORRUPT, "corrupt filter at %s", c->where);
    c->depth--;
    if (st != NDB_OK) {
        preds_free(p, np);
        return st;
    }
    *preds = p;
    *npreds = np;
    return NDB_OK;
}

static ndb_status compile_logical(cctx *c, flt_kind kind, const ndb_doc_val *arr, flt_node **out)
{
    if (arr->type != NDB_DOC_ARRAY || arr->u.c.count == 0)
        return ndb_errmsg_set(c->msg, NDB_EINVAL, "%s needs a non-empty array at %s",
                              kind == FN_AND ? "$and" : kind == FN_OR ? "$or" : "$nor",
                              c->where[0] ? c->where : "filter");
    flt_node *n = calloc(1, sizeof *n);
    if (n == NULL)
        return NDB_ENOMEM;
    n->kind = kind;
    n->kids = calloc(arr->u.c.count, sizeof *n->kids);
    if (n->kids == NULL) {
        free(n);
        return NDB_ENOMEM;
    }
    ndb_doc_iter it;
    ndb_doc_iter_init(&it, arr);
    ndb_doc_val e;
    ndb_status st = NDB_OK;
    int i = 0;
    while (st == NDB_OK && ndb_doc_iter_next(&it, NULL, NULL, &e)) {
        char idx[16];
        int il = snprintf(idx, sizeof idx, "%d", i);
        size_t old = where_push(c, idx, (size_t)il);
        if (e.type != NDB_DOC_OBJECT)
            st = ndb_errmsg_set(c->msg, NDB_EINVAL, "expected an object at %s", c->where);
        else
            st = compile_node(c, &e, &n->kids[i]);
        where_pop(c, old);
        if (st == NDB_OK)
            n->nkids = ++i;
    }
    if (st != NDB_OK) {
        node_free(n);
        return st;
    }
    *out = n;
    return NDB_OK;
}

/* {"$expr": <aggregation expression>}: matches where it is truthy. */
static ndb_status compile_expr(cctx *c, const ndb_doc_val *v, flt_node **out)
{
    flt_node *n = calloc(1, sizeof *n);
    if (n == NULL || (n->ex = calloc(1, sizeof *n->ex)) == NULL) {
        free(n);
        return NDB_ENOMEM;
    }
    n->kind = FN_EXPR;
    n->run = c->run;
    ndb_status st = expr_compile(v, c->where, n->ex, 0, c->msg);
    if (st != NDB_OK) {
        node_free(n);
        return st;
    }
    *out = n;
    return NDB_OK;
}

/* An object of field conditions and logical operators: an implicit AND. */
static ndb_status compile_node(cctx *c, const ndb_doc_val *obj, flt_node **out)
{
    if (++c->depth > NDB_DOC_MAX_DEPTH)
        return ndb_errmsg_set(c->msg, NDB_EINVAL, "filter nested too deeply at %s", c->where);
    flt_node *n = calloc(1, sizeof *n);
    if (n == NULL)
        return NDB_ENOMEM;
    n->kind = FN_AND;
    n->kids = calloc(obj->u.c.count ? obj->u.c.count : 1, sizeof *n->kids);
    if (n->kids == NULL) {
        free(n);
        return NDB_ENOMEM;
    }
    ndb_doc_iter it;
    ndb_doc_iter_init(&it, obj);
    const char *k;
    size_t kl;
    ndb_doc_val v;
    ndb_status st = NDB_OK;
    while (st == NDB_OK && ndb_doc_iter_next(&it, &k, &kl, &v)) {
        flt_node *kid = NULL;
        size_t old = where_push(c, k, kl);
        if (kl > 0 && k[0] == '$') {
            if (kl == 4 && memcmp(k, "$and", 4) == 0)
                st = compile_logical(c, FN_AND, &v, &kid);
            else if (kl == 3 && memcmp(k, "$or", 3) == 0)
                st = compile_logical(c, FN_OR, &v, &kid);
            else if (kl == 4 && memcmp(k, "$nor", 4) == 0)
                st = compile_logical(c, FN_NOR, &v, &kid);
            else if (kl == 8 && memcmp(k, "$comment", 8) == 0)
                ; /* ignored, as MongoDB does */
            else if (key_is(k, kl, "$expr"))
                st = compile_expr(c, &v, &kid);
            else
                st = ndb_errmsg_set(c->msg, NDB_EINVAL, "unknown top-level operator %.*s at %s",
                                    (int)kl, k, c->where);
        } else {
            kid = calloc(1, sizeof *kid);
            if (kid == NULL) {
                st = NDB_ENOMEM;
            } else {
                kid->kind = FN_FIELD;
                if (path_split(k, kl, &kid->path) != NDB_OK)
                    st = ndb_errmsg_set(c->msg, NDB_EINVAL, "bad field path '%.*s' at %s",
                                        (int)kl, k, c->where);
                for (int i = 0; st == NDB_OK && i < kid->path.n; i++)
                    if (kid->path.c[i][0] == '$')
                        st = ndb_errmsg_set(c->msg, NDB_EINVAL,
                                            "field path component starts with '$' at %s",
                                            c->where);
                if (st == NDB_OK) {
                    if (is_op_object(&v)) {
                        st = compile_ops(c, &v, &kid->preds, &kid->npreds, false);
                    } else {
                        kid->preds = calloc(1, sizeof *kid->preds);
                        if (kid->preds == NULL) {
                            st = NDB_ENOMEM;
                        } else {
                            kid->preds[0].op = OP_EQ;
                            kid->preds[0].arg = v;
                            kid->npreds = 1;
                        }
                    }
                }
            }
        }
        where_pop(c, old);
        if (kid) {
            n->kids[n->nkids++] = kid;
        }
    }
    if (st == NDB_OK && it.st != NDB_OK)
        st = ndb_errmsg_set(c->msg, NDB_ECORRUPT, "corrupt filter document");
    c->depth--;
    if (st != NDB_OK) {
        node_free(n);
        return st;
    }
    *out = n;
    return NDB_OK;
}

ndb_status flt_compile_val(const ndb_doc_val *v, const char *ctx, ndb_doc_filter **out,
                           ndb_errmsg *msg)
{
    cctx c = {.msg = msg};
    snprintf(c.where, sizeof c.where, "%s", ctx);
    if (v->type != NDB_DOC_OBJECT)
        return ndb_errmsg_set(msg, NDB_EINVAL, "%s must be an object", ctx);
    ndb_doc_filter *f = calloc(1, sizeof *f);
    if (f == NULL)
        return NDB_ENOMEM;
    c.run = &f->run;
    ndb_status st = v->u.c.count ? compile_node(&c, v, &f->root) : NDB_OK;
    if (st != NDB_OK) {
        ndb_doc_filter_free(f);
        return st;
    }
    *out = f;
    return NDB_OK;
}

ndb_status ndb_doc_filter_compile(const void *filter, size_t len, ndb_doc_filter **out,
                                  ndb_errmsg *msg)
{
    if (filter == NULL || len == 0) {
        *out = calloc(1, sizeof **out);
        return *out ? NDB_OK : NDB_ENOMEM;
    }
    ndb_status st = ndb_doc_validate(filter, len, msg);
    if (st != NDB_OK)
        return ndb_errmsg_set(msg, NDB_EINVAL, "filter is not a valid document");
    uint8_t *copy = malloc(len);
    if (copy == NULL)
        return NDB_ENOMEM;
    memcpy(copy, filter, len);
    ndb_doc_val root;
    ndb_doc_root(copy, len, &root);
    st = flt_compile_val(&root, "filter", out, msg);
    if (st != NDB_OK) {
        free(copy);
        return st;
    }
    (*out)->bytes = copy;
    (*out)->len = len;
    return NDB_OK;
}

ndb_status flt_compile_value_cond(const ndb_doc_val *v, const char *ctx, ndb_doc_filter **out,
                                  ndb_errmsg *msg)
{
    cctx c = {.msg = msg};
    snprintf(c.where, sizeof c.where, "%s", ctx);
    ndb_doc_filter *f = calloc(1, sizeof *f);
    flt_node *n = calloc(1, sizeof *n);
    if (f == NULL || n == NULL) {
        free(f);
        free(n);
        return NDB_ENOMEM;
    }
    c.run = &f->run;
    n->kind = FN_FIELD;
    f->root = n;
    ndb_status st;
    if (is_op_object(v)) {
        st = compile_ops(&c, v, &n->preds, &n->npreds, false);
    } else if (v->type == NDB_DOC_OBJECT) {
        /* $pull with a document: elements that are objects matching it as a query */
        n->preds = calloc(1, sizeof *n->preds);
        if (n->preds == NULL) {
            st = NDB_ENOMEM;
        } else {
            n->npreds = 1;
            n->preds[0].op = OP_ELEMMATCH; /* marker: sub-document query */
            st = compile_node(&c, v, &n->preds[0].sub);
        }
    } else {
        n->preds = calloc(1, sizeof *n->preds);
        st = n->preds ? NDB_OK : NDB_ENOMEM;
        if (st == NDB_OK) {
            n->npreds = 1;
            n->preds[0].op = OP_EQ;
            n->preds[0].arg = *v;
        }
    }
    if (st != NDB_OK) {
        ndb_doc_filter_free(f);
        return st;
    }
    *out = f;
    return NDB_OK;
}

/* ---------------------------------------------------------------- match */

static bool node_match(const flt_node *n, const ndb_doc_val *root);

/* Compare with MongoDB's type bracketing: values of other types never match. */
static inline int bracket_cmp(const ndb_doc_val *v, const ndb_doc_val *arg, bool *ok)
{
    if (v->type == NDB_DOC_INT && arg->type == NDB_DOC_INT) {
        *ok = true;
        return (v->u.i > arg->u.i) - (v->u.i < arg->u.i);
    }
    if (val_rank(v->type) != val_rank(arg->type)) {
        *ok = false;
        return 0;
    }
    *ok = true;
    return ndb_doc_compare(v, arg);
}

static bool cmp_op(flt_op op, const ndb_doc_val *v, const ndb_doc_val *arg)
{
    bool ok;
    int r = bracket_cmp(v, arg, &ok);
    if (!ok)
        return false;
    switch (op) {
    case OP_GT: return r > 0;
    case OP_GTE: return r >= 0;
    case OP_LT: return r < 0;
    case OP_LTE: return r <= 0;
    default: return false;
    }
}

static bool in_array(const ndb_doc_val *v, const ndb_doc_val *arr)
{
    ndb_doc_iter it;
    ndb_doc_iter_init(&it, arr);
    ndb_doc_val e;
    while (ndb_doc_iter_next(&it, NULL, NULL, &e))
        if (val_equal(v, &e))
            return true;
    return false;
}

static bool preds_hold(const flt_pred *p, int n, const ndb_doc_val *v, bool expand);

/* A $regex on one string, within the limits; a failure (a limit, the
 * interrupt) is kept in the filter's run state and reads as no match, and
 * once failed the filter matches nothing more (the caller stops). */
static bool regex_match(const flt_pred *p, const ndb_doc_val *v)
{
    flt_run *r = p->run;
    if (r->st != NDB_OK)
        return false;
    if (r->intr != NULL && ++r->tick % FLT_REGEX_CHECK_EVERY == 0 && (r->st = ndb_interrupt_check(r->intr)) != NDB_OK)
        return false;
    int rc = pcre2_match(p->re, (PCRE2_SPTR)v->u.s.ptr, v->u.s.len, 0, PCRE2_NO_UTF_CHECK, p->md, r->mctx);
    if (rc >= 0)
        return true;
    if (rc != PCRE2_ERROR_NOMATCH) {
        r->st = rc == PCRE2_ERROR_NOMEMORY ? NDB_ENOMEM : NDB_ELIMIT;
        r->pcre_rc = rc;
        r->pattern = &p->arg;
    }
    return false;
}

/* $mod on a number: the value truncated toward zero, % divisor == remainder. */
static bool mod_match(const flt_pred *p, const ndb_doc_val *v)
{
    int64_t x;
    if (v->type == NDB_DOC_INT)
        x = v->u.i;
    else if (v->type == NDB_DOC_DOUBLE && isfinite(v->u.d) && fabs(v->u.d) < 9.2e18)
        x = (int64_t)v->u.d;
    else
        return false;
    if (p->mod[0] == -1) /* INT64_MIN % -1 overflows; every integer is 0 modulo -1 */
        return p->mod[1] == 0;
    return x % p->mod[0] == p->mod[1];
}

/* A comparison, $regex, $type or $mod on one value, itself (not its elements). */
static bool value_match(const flt_pred *p, const ndb_doc_val *v)
{
    switch (p->op) {
    case OP_REGEX: return v->type == NDB_DOC_STRING && regex_match(p, v);
    case OP_TYPE: return (p->type_mask & type_bit(v)) != 0;
    case OP_MOD: return mod_match(p, v);
    default: return cmp_op(p->op, v, &p->arg);
    }
}

/* value_match on any element of an array (MongoDB: a condition on an array
 * field holds when it holds for the array or for one of its elements). */
static bool element_match(const flt_pred *p, const ndb_doc_val *arr)
{
    ndb_doc_iter it;
    ndb_doc_iter_init(&it, arr);
    ndb_doc_val e;
    while (ndb_doc_iter_next(&it, NULL, NULL, &e))
        if (value_match(p, &e))
            return true;
    return false;
}

/* One positive condition on one value reached by the path (NULL: missing).
 * expand: a condition on an array also tries its elements. */
static bool pred_leaf(const flt_pred *p, const ndb_doc_val *v, bool expand)
{
    if (v == NULL) {
        switch (p->op) {
        case OP_EQ: return p->arg.type == NDB_DOC_NULL;
        case OP_GTE: case OP_LTE: return p->arg.type == NDB_DOC_NULL;
        case OP_IN: {
            uint8_t nb[2];
            ndb_doc_val nv;
            val_make_null(&nv, nb);
            return in_array(&nv, &p->arg);
        }
        case OP_ALL: { /* {"$all": [null]} is {"$eq": null}, which a missing field matches */
            ndb_doc_iter it;
            ndb_doc_iter_init(&it, &p->arg);
            ndb_doc_val a;
            bool all_null = p->arg.u.c.count > 0;
            while (all_null && ndb_doc_iter_next(&it, NULL, NULL, &a))
                all_null = a.type == NDB_DOC_NULL;
            return all_null;
        }
        default: return false;
        }
    }
    bool arr = expand && v->type == NDB_DOC_ARRAY;
    switch (p->op) {
    case OP_EQ:
        if (val_equal(v, &p->arg))
            return true;
        return arr && in_array(&p->arg, v);
    case OP_GT: case OP_GTE: case OP_LT: case OP_LTE: case OP_REGEX: case OP_TYPE: case OP_MOD:
        return value_match(p, v) || (arr && element_match(p, v));
    case OP_IN: {
        ndb_doc_iter it;
        ndb_doc_iter_init(&it, &p->arg);
        ndb_doc_val a;
        while (ndb_doc_iter_next(&it, NULL, NULL, &a)) {
            if (val_equal(v, &a) || (arr && in_array(&a, v)))
                return true;
        }
        return false;
    }
    case OP_EXISTS: return true;
    case OP_SIZE: return v->type == NDB_DOC_ARRAY && v->u.c.count == (uint64_t)p->size;
    case OP_ALL: {
        if (p->arg.u.c.count == 0)
            return false;
        ndb_doc_iter it;
        ndb_doc_iter_init(&it, &p->arg);
        ndb_doc_val a;
        while (ndb_doc_iter_next(&it, NULL, NULL, &a)) {
            if (!(val_equal(v, &a) || (v->type == NDB_DOC_ARRAY && in_array(&a, v))))
                return false;
        }
        return true;
    }
    case OP_ELEMMATCH: {
        if (v->type != NDB_DOC_ARRAY)
            return false;
        ndb_doc_iter it;
        ndb_doc_iter_init(&it, v);
        ndb_doc_val e;
        while (ndb_doc_iter_next(&it, NULL, NULL, &e)) {
            if (p->sub) {
                if (e.type == NDB_DOC_OBJECT && node_match(p->sub, &e))
                    return true;
            } else if (preds_hold(p->inner, p->ninner, &e, false)) {
                return true;
            }
        }
        return false;
    }
    case OP_NE: case OP_NIN: case OP_NOT:
        break; /* negations are handled by pred_eval */
    }
    return false;
}

/* Positive form of a negated operator. */
static flt_op positive(flt_op op) { return op == OP_NE ? OP_EQ : op == OP_NIN ? OP_IN : op; }

typedef struct walk {
    const flt_pred *p; /* a positive condition */
    flt_pred pos;      /* storage for the positive form of $ne/$nin */
    bool hit;
} walk;

/* path_walk's leaf: the positive condition on one value the path reaches. */
static bool reach(void *ctx, const ndb_doc_val *v, bool in_array)
{
    (void)in_array;
    walk *w = ctx;
    w->hit = pred_leaf(w->p, v, true);
    return w->hit;
}

/* One condition (positive or negated) on a path from the root. */
static bool pred_eval(const flt_pred *p, const ndb_doc_val *root, const dpath *path)
{
    /* fast path: a top-level field holding a non-array, for the comparisons */
    if (path->n == 1 && root->type == NDB_DOC_OBJECT &&
        (p->op == OP_EQ || p->op == OP_GT || p->op == OP_GTE || p->op == OP_LT || p->op == OP_LTE)) {
        ndb_doc_val v;
        ndb_status st = ndb_doc_get_field(root, path->c[0], path->l[0], &v);
        if (st == NDB_ENOTFOUND)
            return pred_leaf(p, NULL, true);
        if (st == NDB_OK && v.type != NDB_DOC_ARRAY)
            return pred_leaf(p, &v, true);
    }
    walk w = {.p = p, .hit = false};
    bool neg = false;
    if (p->op == OP_NE || p->op == OP_NIN) {
        w.pos = *p;
        w.pos.op = positive(p->op);
        w.p = &w.pos;
        neg = true;
    } else if (p->op == OP_NOT) {
        /* all inner conditions hold, negated */
        for (int i = 0; i < p->ninner; i++)
            if (!pred_eval(&p->inner[i], root, path))
                return true;
        return false;
    } else if (p->op == OP_EXISTS && !p->exists) {
        w.pos = *p;
        w.pos.exists = true;
        w.p = &w.pos;
        neg = true;
    }
    path_walk(root, path, 0, false, reach, &w);
    return neg ? !w.hit : w.hit;
}

/* Conditions tested on one value directly ($elemMatch value form, $pull). */
static bool preds_hold(const flt_pred *p, int n, const ndb_doc_val *v, bool expand)
{
    for (int i = 0; i < n; i++) {
        bool r;
        switch (p[i].op) {
        case OP_NE: case OP_NIN: {
            flt_pred q = p[i];
            q.op = positive(p[i].op);
            r = !pred_leaf(&q, v, expand);
            break;
        }
        case OP_NOT: r = !preds_hold(p[i].inner, p[i].ninner, v, expand); break;
        case OP_EXISTS: r = p[i].exists; break;
        default: r = pred_leaf(&p[i], v, expand);
        }
        if (!r)
            return false;
    }
    return true;
}

static bool node_match(const flt_node *n, const ndb_doc_val *root)
{
    switch (n->kind) {
    case FN_AND:
        for (int i = 0; i < n->nkids; i++)
            if (!node_match(n->kids[i], root))
                return false;
        return true;
    case FN_OR:
        for (int i = 0; i < n->nkids; i++)
            if (node_match(n->kids[i], root))
                return true;
        return false;
    case FN_NOR:
        for (int i = 0; i < n->nkids; i++)
            if (node_match(n->kids[i], root))
                return false;
        return true;
    case FN_FIELD:
        for (int i = 0; i < n->npreds; i++)
            if (!pred_eval(&n->preds[i], root, &n->path))
                return false;
        return true;
    case FN_EXPR: {
        if (n->run->st != NDB_OK)
            return false;
        ndb_doc_val v;
        int r = expr_eval(n->ex, root, &v, &n->run->expr_msg);
        if (r < 0) {
            n->run->st = (ndb_status)r;
            if (!n->run->expr_msg.text[0])
                ndb_errmsg_set(&n->run->expr_msg, n->run->st, "%s", ndb_strerror(n->run->st));
            return false;
        }
        return expr_truthy(&v, r);
    }
    }
    return false;
}

void flt_set_interrupt(ndb_doc_filter *f, const ndb_interrupt *intr)
{
    f->run.intr = intr;
    f->run.tick = 0;
    f->run.st = NDB_OK;
    f->run.expr_msg.text[0] = 0;
}

/* The result of a match, or the failure kept in the run state. */
static int run_result(const flt_run *r, bool hit, ndb_errmsg *msg)
{
    if (r->st == NDB_OK)
        return hit;
    if (r->expr_msg.text[0]) /* a $expr failed on a document */
        return ndb_errmsg_set(msg, r->st, "$expr: %s", r->expr_msg.text);
    if (r->st != NDB_ELIMIT && r->st != NDB_ENOMEM)
        return ndb_interrupt_msg(msg, r->st, "$regex matching stopped");
    PCRE2_UCHAR why[120];
    pcre2_get_error_message(r->pcre_rc, why, sizeof why);
    size_t n = r->pattern->u.s.len;
    return ndb_errmsg_set(msg, r->st,
                          "$regex /%.*s%s/ stopped on a document: %s (limits: %u steps, %u KiB per match); "
                          "nested quantifiers such as (a+)+ backtrack exponentially, simplify the pattern",
                          (int)(n > 80 ? 80 : n), r->pattern->u.s.ptr, n > 80 ? "..." : "", (const char *)why,
                          FLT_REGEX_MATCH_LIMIT, FLT_REGEX_HEAP_LIMIT_KIB);
}

int flt_match(ndb_doc_filter *f, const ndb_doc_val *root, ndb_errmsg *msg)
{
    if (f->root == NULL)
        return 1;
    bool hit = node_match(f->root, root);
    return run_result(&f->run, hit, msg);
}

int flt_match_value_cond(ndb_doc_filter *f, const ndb_doc_val *v, ndb_errmsg *msg)
{
    const flt_node *n = f->root;
    bool hit;
    if (n->npreds == 1 && n->preds[0].op == OP_ELEMMATCH && n->preds[0].sub)
        hit = v->type == NDB_DOC_OBJECT && node_match(n->preds[0].sub, v);
    else
        hit = preds_hold(n->preds, n->npreds, v, false);
    return run_result(&f->run, hit, msg);
}

int ndb_doc_filter_match(ndb_doc_filter *f, const void *doc, size_t len)
{
    ndb_doc_val root;
    if (ndb_doc_root(doc, len, &root) != NDB_OK)
        return 0;
    f->run.st = NDB_OK;
    f->run.expr_msg.text[0] = 0;
    return flt_match(f, &root, NULL);
}
