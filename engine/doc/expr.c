/* expr.c — aggregation expressions; see expr.h. */
#include "expr.h"

#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const struct {
    const char *name;
    ekind kind;
    int minargs, maxargs;
} eops[] = {
    {"$add", E_ADD, 0, 64},        {"$subtract", E_SUB, 2, 2}, {"$multiply", E_MUL, 0, 64},
    {"$divide", E_DIV, 2, 2},      {"$mod", E_MOD, 2, 2},      {"$concat", E_CONCAT, 0, 64},
    {"$toUpper", E_UPPER, 1, 1},   {"$toLower", E_LOWER, 1, 1}, {"$ifNull", E_IFNULL, 2, 2},
    {"$size", E_SIZE, 1, 1},       {"$cond", E_COND, 3, 3},    {"$eq", E_EQ, 2, 2},
    {"$ne", E_NE, 2, 2},           {"$gt", E_GT, 2, 2},        {"$gte", E_GTE, 2, 2},
    {"$lt", E_LT, 2, 2},           {"$lte", E_LTE, 2, 2},
};

void expr_clear(expr *e)
{
    for (int i = 0; i < e->nargs; i++)
        expr_clear(&e->args[i]);
    free(e->args);
    free(e->names);
    free(e->nlens);
    ndb_doc_builder_free(e->scratch);
    memset(e, 0, sizeof *e);
}

static ndb_status expr_args(const ndb_doc_val *v, const char *where, expr *e, int depth,
                            ndb_errmsg *msg)
{
    uint32_t n = v->type == NDB_DOC_ARRAY ? v->u.c.count : 1;
    e->args = calloc(n ? n : 1, sizeof *e->args);
    if (e->args == NULL)
        return NDB_ENOMEM;
    if (v->type != NDB_DOC_ARRAY) {
        e->nargs = 1;
        return expr_compile(v, where, &e->args[0], depth + 1, msg);
    }
    ndb_doc_iter it;
    ndb_doc_iter_init(&it, v);
    ndb_doc_val a;
    while (ndb_doc_iter_next(&it, NULL, NULL, &a)) {
        ndb_status st = expr_compile(&a, where, &e->args[e->nargs], depth + 1, msg);
        e->nargs++;
        if (st != NDB_OK)
            return st;
    }
    return NDB_OK;
}

ndb_status expr_compile(const ndb_doc_val *v, const char *where, expr *e, int depth, ndb_errmsg *msg)
{
    memset(e, 0, sizeof *e);
    if (depth > 50)
        return ndb_errmsg_set(msg, NDB_EINVAL, "expression nested too deeply at %s", where);
    if (v->type == NDB_DOC_STRING && v->u.s.len > 0 && v->u.s.ptr[0] == '$') {
        if (v->u.s.len >= 2 && v->u.s.ptr[1] == '$') {
            if ((v->u.s.len == 6 && memcmp(v->u.s.ptr, "$$ROOT", 6) == 0) ||
                (v->u.s.len == 9 && memcmp(v->u.s.ptr, "$$CURRENT", 9) == 0)) {
                e->kind = E_ROOT;
                return NDB_OK;
            }
            return ndb_errmsg_set(msg, NDB_EINVAL, "unknown variable %.*s at %s", (int)v->u.s.len,
                                  v->u.s.ptr, where);
        }
        e->kind = E_PATH;
        if (path_split(v->u.s.ptr + 1, v->u.s.len - 1, &e->path) != NDB_OK)
            return ndb_errmsg_set(msg, NDB_EINVAL, "bad field path '%.*s' at %s", (int)v->u.s.len,
                                  v->u.s.ptr, where);
        return ndb_doc_builder_new(&e->scratch);
    }
    if (v->type == NDB_DOC_OBJECT && v->u.c.count >= 1) {
        ndb_doc_iter it;
        ndb_doc_iter_init(&it, v);
        const char *k;
        size_t kl;
        ndb_doc_val a;
        ndb_doc_iter_next(&it, &k, &kl, &a);
        if (kl > 0 && k[0] == '$') {
            if (v->u.c.count != 1)
                return ndb_errmsg_set(msg, NDB_EINVAL,
                                      "an expression object takes exactly one operator at %s", where);
            if (kl == 8 && memcmp(k, "$literal", 8) == 0) {
                e->kind = E_LIT;
                e->lit = a;
                return NDB_OK;
            }
            size_t i;
            for (i = 0; i < sizeof eops / sizeof eops[0]; i++)
                if (strlen(eops[i].name) == kl && memcmp(eops[i].name, k, kl) == 0)
                    break;
            if (i == sizeof eops / sizeof eops[0])
                return ndb_errmsg_set(msg, NDB_EINVAL, "unknown expression operator %.*s at %s",
                                      (int)kl, k, where);
            e->kind = eops[i].kind;
            ndb_status st;
            if (e->kind == E_COND && a.type == NDB_DOC_OBJECT) {
                /* {"if":..,"then":..,"else":..} */
                e->args = calloc(3, sizeof *e->args);
                if (e->args == NULL)
                    return NDB_ENOMEM;
                static const char *parts[] = {"if", "then", "else"};
                for (int p = 0; p < 3; p++) {
                    ndb_doc_val pv;
                    if (ndb_doc_get_field(&a, parts[p], strlen(parts[p]), &pv) != NDB_OK)
                        return ndb_errmsg_set(msg, NDB_EINVAL, "$cond needs if/then/else at %s", where);
                    st = expr_compile(&pv, where, &e->args[p], depth + 1, msg);
                    e->nargs++;
                    if (st != NDB_OK)
                        return st;
                }
            } else if ((st = expr_args(&a, where, e, depth, msg)) != NDB_OK) {
                return st;
            }
            if (e->nargs < eops[i].minargs || e->nargs > eops[i].maxargs)
                return ndb_errmsg_set(msg, NDB_EINVAL, "%s takes %d..%d arguments at %s",
                                      eops[i].name, eops[i].minargs, eops[i].maxargs, where);
            return ndb_doc_builder_new(&e->scratch);
        }
        /* an object of expressions */
        e->kind = E_OBJ;
        uint32_t n = v->u.c.count;
        e->args = calloc(n, sizeof *e->args);
        e->names = calloc(n, sizeof *e->names);
        e->nlens = calloc(n, sizeof *e->nlens);
        if (!e->args || !e->names || !e->nlens)
            return NDB_ENOMEM;
        ndb_doc_iter_init(&it, v);
        while (ndb_doc_iter_next(&it, &k, &kl, &a)) {
            if (kl > 0 && k[0] == '$')
                return ndb_errmsg_set(msg, NDB_EINVAL, "operator %.*s mixed with fields at %s",
                                      (int)kl, k, where);
            e->names[e->nargs] = k;
            e->nlens[e->nargs] = kl;
            ndb_status st = expr_compile(&a, where, &e->args[e->nargs], depth + 1, msg);
            e->nargs++;
            if (st != NDB_OK)
                return st;
        }
        return ndb_doc_builder_new(&e->scratch);
    }
    if (v->type == NDB_DOC_ARRAY) {
        e->kind = E_ARR;
        ndb_status st = expr_args(v, where, e, depth, msg);
        if (st != NDB_OK)
            return st;
        return ndb_doc_builder_new(&e->scratch);
    }
    e->kind = E_LIT;
    e->lit = *v;
    return NDB_OK;
}

/* Writes the values at path components i.. of v; arrays fan out. Returns
 * true if something was written. */
static bool path_emit(const ndb_doc_val *v, const dpath *p, int i, ndb_doc_builder *b)
{
    if (i == p->n) {
        ndb_doc_value(b, v);
        return true;
    }
    ndb_doc_val nx;
    if (v->type == NDB_DOC_OBJECT) {
        if (ndb_doc_get_field(v, p->c[i], p->l[i], &nx) != NDB_OK)
            return false;
        return path_emit(&nx, p, i + 1, b);
    }
    if (v->type == NDB_DOC_ARRAY) {
        ndb_doc_begin_array(b);
        ndb_doc_iter it;
        ndb_doc_iter_init(&it, v);
        while (ndb_doc_iter_next(&it, NULL, NULL, &nx))
            if (nx.type == NDB_DOC_OBJECT || nx.type == NDB_DOC_ARRAY)
                path_emit(&nx, p, i, b);
        ndb_doc_end_array(b);
        return true;
    }
    return false;
}

/* Finishes e->scratch into *out. */
static int scratch_out(expr *e, ndb_doc_val *out, ndb_errmsg *msg)
{
    const void *d;
    size_t n;
    ndb_status st = ndb_doc_builder_finish(e->scratch, &d, &n);
    if (st != NDB_OK)
        return ndb_errmsg_set(msg, st, "expression result: %s", ndb_strerror(st));
    ndb_doc_root(d, n, out);
    return 1;
}

static bool truthy(const ndb_doc_val *v, int have)
{
    if (!have)
        return false;
    switch (v->type) {
    case NDB_DOC_NULL: return false;
    case NDB_DOC_BOOL: return v->u.b;
    case NDB_DOC_INT: return v->u.i != 0;
    case NDB_DOC_DOUBLE: return v->u.d != 0;
    default: return true;
    }
}

static int arith(expr *e, const ndb_doc_val *root, ndb_doc_val *out, ndb_errmsg *msg)
{
    int64_t ia = e->kind == E_MUL ? 1 : 0;
    double da = (double)ia;
    bool dbl = false;
    for (int i = 0; i < e->nargs; i++) {
        ndb_doc_val a;
        int r = expr_eval(&e->args[i], root, &a, msg);
        if (r < 0)
            return r;
        ndb_doc_builder_reset(e->scratch);
        if (r == 0 || a.type == NDB_DOC_NULL) {
            ndb_doc_null(e->scratch);
            return scratch_out(e, out, msg);
        }
        if (!val_is_num(&a))
            return ndb_errmsg_set(msg, NDB_EINVAL, "arithmetic on a non-number");
        double x = ndb_doc_num(&a);
        if (i == 0 && (e->kind == E_SUB || e->kind == E_DIV || e->kind == E_MOD)) {
            dbl = a.type == NDB_DOC_DOUBLE;
            ia = a.type == NDB_DOC_INT ? a.u.i : 0;
            da = x;
            continue;
        }
        switch (e->kind) {
        case E_ADD:
            if (!dbl && a.type == NDB_DOC_INT && !__builtin_add_overflow(ia, a.u.i, &ia)) {
                da += x;
                break;
            }
            if (!dbl)
                da = (double)ia;
            dbl = true;
            da += x;
            break;
        case E_MUL:
            if (!dbl && a.type == NDB_DOC_INT && !__builtin_mul_overflow(ia, a.u.i, &ia)) {
                da *= x;
                break;
            }
            if (!dbl)
                da = (double)ia;
            dbl = true;
            da *= x;
            break;
        case E_SUB:
            if (!dbl && a.type == NDB_DOC_INT && !__builtin_sub_overflow(ia, a.u.i, &ia)) {
                da = (double)ia;
                break;
            }
            dbl = true;
            da -= x;
            break;
        case E_DIV:
            if (x == 0)
                return ndb_errmsg_set(msg, NDB_EINVAL, "$divide by zero");
            dbl = true;
            da /= x;
            break;
        case E_MOD:
            if (x == 0)
                return ndb_errmsg_set(msg, NDB_EINVAL, "$mod by zero");
            da = fmod(da, x);
            dbl = true;
            break;
        default:
            break;
        }
    }
    ndb_doc_builder_reset(e->scratch);
    if (dbl)
        ndb_doc_double(e->scratch, da);
    else
        ndb_doc_int(e->scratch, ia);
    return scratch_out(e, out, msg);
}

int expr_eval(expr *e, const ndb_doc_val *root, ndb_doc_val *out, ndb_errmsg *msg)
{
    switch (e->kind) {
    case E_LIT:
        *out = e->lit;
        return 1;
    case E_ROOT:
        *out = *root;
        return 1;
    case E_PATH: {
        /* fast path: no arrays before the last component */
        ndb_doc_val cur = *root;
        int i;
        for (i = 0; i < e->path.n; i++) {
            if (cur.type != NDB_DOC_OBJECT)
                break;
            if (ndb_doc_get_field(&cur, e->path.c[i], e->path.l[i], &cur) != NDB_OK)
                return 0;
        }
        if (i == e->path.n) {
            *out = cur;
            return 1;
        }
        if (cur.type != NDB_DOC_ARRAY)
            return 0;
        ndb_doc_builder_reset(e->scratch);
        path_emit(&cur, &e->path, i, e->scratch);
        return scratch_out(e, out, msg);
    }
    case E_OBJ: {
        /* evaluate children first (their scratch is separate), then build */
        ndb_doc_builder *b = e->scratch;
        ndb_doc_builder_reset(b);
        ndb_doc_begin_object(b);
        for (int i = 0; i < e->nargs; i++) {
            ndb_doc_val a;
            int r = expr_eval(&e->args[i], root, &a, msg);
            if (r < 0)
                return r;
            if (r == 0)
                continue;
            ndb_doc_key(b, e->names[i], e->nlens[i]);
            ndb_doc_value(b, &a);
        }
        ndb_doc_end_object(b);
        return scratch_out(e, out, msg);
    }
    case E_ARR: {
        ndb_doc_builder *b = e->scratch;
        ndb_doc_builder_reset(b);
        ndb_doc_begin_array(b);
        for (int i = 0; i < e->nargs; i++) {
            ndb_doc_val a;
            int r = expr_eval(&e->args[i], root, &a, msg);
            if (r < 0)
                return r;
            if (r == 0)
                ndb_doc_null(b);
            else
                ndb_doc_value(b, &a);
        }
        ndb_doc_end_array(b);
        return scratch_out(e, out, msg);
    }
    case E_ADD: case E_SUB: case E_MUL: case E_DIV: case E_MOD:
        return arith(e, root, out, msg);
    case E_CONCAT: {
        dbuf s = {0};
        bool null = false;
        for (int i = 0; i < e->nargs && !null; i++) {
            ndb_doc_val a;
            int r = expr_eval(&e->args[i], root, &a, msg);
            if (r < 0) {
                dbuf_free(&s);
                return r;
            }
            if (r == 0 || a.type == NDB_DOC_NULL) {
                null = true;
            } else if (a.type != NDB_DOC_STRING) {
                dbuf_free(&s);
                return ndb_errmsg_set(msg, NDB_EINVAL, "$concat only supports strings");
            } else {
                dbuf_put(&s, a.u.s.ptr, a.u.s.len);
            }
        }
        ndb_doc_builder_reset(e->scratch);
        if (null)
            ndb_doc_null(e->scratch);
        else
            ndb_doc_string(e->scratch, s.len ? (const char *)s.data : "", s.len);
        dbuf_free(&s);
        return scratch_out(e, out, msg);
    }
    case E_UPPER: case E_LOWER: {
        ndb_doc_val a;
        int r = expr_eval(&e->args[0], root, &a, msg);
        if (r < 0)
            return r;
        dbuf s = {0};
        if (r && a.type == NDB_DOC_STRING) {
            dbuf_put(&s, a.u.s.ptr, a.u.s.len);
            for (size_t i = 0; i < s.len; i++)
                s.data[i] = (uint8_t)(e->kind == E_UPPER ? toupper(s.data[i]) : tolower(s.data[i]));
        } else if (r && a.type != NDB_DOC_NULL) {
            return ndb_errmsg_set(msg, NDB_EINVAL, "%s needs a string",
                                  e->kind == E_UPPER ? "$toUpper" : "$toLower");
        }
        ndb_doc_builder_reset(e->scratch);
        ndb_doc_string(e->scratch, s.len ? (const char *)s.data : "", s.len);
        dbuf_free(&s);
        return scratch_out(e, out, msg);
    }
    case E_IFNULL: {
        int r = expr_eval(&e->args[0], root, out, msg);
        if (r < 0)
            return r;
        if (r && out->type != NDB_DOC_NULL)
            return 1;
        return expr_eval(&e->args[1], root, out, msg);
    }
    case E_SIZE: {
        ndb_doc_val a;
        int r = expr_eval(&e->args[0], root, &a, msg);
        if (r < 0)
            return r;
        if (r == 0 || a.type != NDB_DOC_ARRAY)
            return ndb_errmsg_set(msg, NDB_EINVAL, "$size needs an array");
        ndb_doc_builder_reset(e->scratch);
        ndb_doc_int(e->scratch, a.u.c.count);
        return scratch_out(e, out, msg);
    }
    case E_COND: {
        ndb_doc_val a;
        int r = expr_eval(&e->args[0], root, &a, msg);
        if (r < 0)
            return r;
        return expr_eval(&e->args[truthy(&a, r) ? 1 : 2], root, out, msg);
    }
    case E_EQ: case E_NE: case E_GT: case E_GTE: case E_LT: case E_LTE: {
        ndb_doc_val a, b;
        uint8_t nb1[2], nb2[2];
        int r = expr_eval(&e->args[0], root, &a, msg);
        if (r < 0)
            return r;
        if (r == 0)
            val_make_null(&a, nb1);
        /* a's storage may be e->args[0]'s scratch, separate from args[1]'s */
        r = expr_eval(&e->args[1], root, &b, msg);
        if (r < 0)
            return r;
        if (r == 0)
            val_make_null(&b, nb2);
        int c = ndb_doc_compare(&a, &b);
        bool res = e->kind == E_EQ ? c == 0 : e->kind == E_NE ? c != 0 : e->kind == E_GT ? c > 0
                 : e->kind == E_GTE ? c >= 0 : e->kind == E_LT ? c < 0 : c <= 0;
        ndb_doc_builder_reset(e->scratch);
        ndb_doc_bool(e->scratch, res);
        return scratch_out(e, out, msg);
    }
    }
    return ndb_errmsg_set(msg, NDB_EINVAL, "bad expression");
}
