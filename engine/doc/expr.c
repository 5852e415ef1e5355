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
    {"$lt", E_LT, 2, 2},           {"$lte", E_LTE, 2, 2},      {"$abs", E_ABS, 1, 1},
    {"$floor", E_FLOOR, 1, 1},     {"$ceil", E_CEIL, 1, 1},    {"$arrayElemAt", E_ARRAYELEMAT, 2, 2},
    {"$concatArrays", E_CONCATARRAYS, 0, 64}, {"$in", E_IN, 2, 2}, {"$and", E_AND, 0, 64},
    {"$or", E_OR, 0, 64},          {"$not", E_NOT, 1, 1},      {"$type", E_TYPE, 1, 1},
    {"$switch", E_SWITCH, 1, 129}, {"$year", E_YEAR, 1, 1},    {"$month", E_MONTH, 1, 1},
    {"$dayOfMonth", E_DAYOFMONTH, 1, 1}, {"$hour", E_HOUR, 1, 1}, {"$minute", E_MINUTE, 1, 1},
    {"$second", E_SECOND, 1, 1},   {"$millisecond", E_MILLISECOND, 1, 1},
    {"$dayOfWeek", E_DAYOFWEEK, 1, 1}, {"$dayOfYear", E_DAYOFYEAR, 1, 1},
    {"$dateToString", E_DATETOSTRING, 1, 1},
};

static bool is_date_part(ekind k) { return k >= E_YEAR && k <= E_DAYOFYEAR; }

/* {"timezone": ...} is accepted only as UTC: the server keeps dates in UTC
 * and has no time zone database. */
static ndb_status utc_only(const ndb_doc_val *obj, const char *op, const char *where, ndb_errmsg *msg)
{
    ndb_doc_val tz;
    if (ndb_doc_get_field(obj, "timezone", 8, &tz) != NDB_OK)
        return NDB_OK;
    if (tz.type == NDB_DOC_STRING &&
        (key_is(tz.u.s.ptr, tz.u.s.len, "UTC") || key_is(tz.u.s.ptr, tz.u.s.len, "Z") ||
         key_is(tz.u.s.ptr, tz.u.s.len, "+00:00") || key_is(tz.u.s.ptr, tz.u.s.len, "GMT")))
        return NDB_OK;
    return ndb_errmsg_set(msg, NDB_EINVAL, "%s: only the UTC timezone is supported at %s", op, where);
}

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

/* {"branches": [{"case": e, "then": e}, ...], "default": e}: arguments case,
 * then, case, then, ... and the default last when there is one. */
static ndb_status compile_switch(const ndb_doc_val *a, const char *where, expr *e, int depth, ndb_errmsg *msg)
{
    ndb_doc_val br, dv;
    if (a->type != NDB_DOC_OBJECT || ndb_doc_get_field(a, "branches", 8, &br) != NDB_OK ||
        br.type != NDB_DOC_ARRAY || br.u.c.count == 0 || br.u.c.count > 64)
        return ndb_errmsg_set(msg, NDB_EINVAL, "$switch needs {\"branches\": [{\"case\", \"then\"}, ...]} at %s",
                              where);
    e->has_default = ndb_doc_get_field(a, "default", 7, &dv) == NDB_OK;
    if ((e->args = calloc(2 * br.u.c.count + 1, sizeof *e->args)) == NULL)
        return NDB_ENOMEM;
    ndb_doc_iter it;
    ndb_doc_iter_init(&it, &br);
    ndb_doc_val b;
    while (ndb_doc_iter_next(&it, NULL, NULL, &b)) {
        ndb_doc_val cs, th;
        if (b.type != NDB_DOC_OBJECT || b.u.c.count != 2 || ndb_doc_get_field(&b, "case", 4, &cs) != NDB_OK ||
            ndb_doc_get_field(&b, "then", 4, &th) != NDB_OK)
            return ndb_errmsg_set(msg, NDB_EINVAL, "each $switch branch is {\"case\": ..., \"then\": ...} at %s",
                                  where);
        ndb_status st = expr_compile(&cs, where, &e->args[e->nargs++], depth + 1, msg);
        if (st == NDB_OK)
            st = expr_compile(&th, where, &e->args[e->nargs++], depth + 1, msg);
        if (st != NDB_OK)
            return st;
    }
    return e->has_default ? expr_compile(&dv, where, &e->args[e->nargs++], depth + 1, msg) : NDB_OK;
}

static ndb_status compile_date_arg(const ndb_doc_val *dv, const char *where, expr *e, int depth, ndb_errmsg *msg)
{
    if ((e->args = calloc(1, sizeof *e->args)) == NULL)
        return NDB_ENOMEM;
    e->nargs = 1;
    return expr_compile(dv, where, &e->args[0], depth + 1, msg);
}

/* {"format": "%Y-%m-%d", "date": e}: the format is kept in e->lit; without
 * one (has_default), MongoDB's ISO-8601 default. */
static ndb_status compile_date_to_string(const ndb_doc_val *a, const char *where, expr *e, int depth,
                                         ndb_errmsg *msg)
{
    ndb_doc_val dv;
    if (a->type != NDB_DOC_OBJECT || ndb_doc_get_field(a, "date", 4, &dv) != NDB_OK)
        return ndb_errmsg_set(msg, NDB_EINVAL, "$dateToString needs {\"date\": ..., \"format\": ...} at %s", where);
    ndb_status st = utc_only(a, "$dateToString", where, msg);
    if (st != NDB_OK)
        return st;
    e->has_default = ndb_doc_get_field(a, "format", 6, &e->lit) != NDB_OK; /* the ISO default */
    if (e->has_default)
        return compile_date_arg(&dv, where, e, depth, msg);
    if (e->lit.type != NDB_DOC_STRING)
        return ndb_errmsg_set(msg, NDB_EINVAL, "$dateToString format must be a string at %s", where);
    for (size_t i = 0; i < e->lit.u.s.len; i++) {
        if (e->lit.u.s.ptr[i] != '%')
            continue;
        char c = i + 1 < e->lit.u.s.len ? e->lit.u.s.ptr[++i] : 0;
        if (!strchr("YmdHMSLjwu%", c) || c == 0)
            return ndb_errmsg_set(msg, NDB_EINVAL, "$dateToString: unknown format %%%c at %s (known: %%Y %%m %%d "
                                  "%%H %%M %%S %%L %%j %%w %%u %%%%)", c ? c : ' ', where);
    }
    return compile_date_arg(&dv, where, e, depth, msg);
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
            if (e->kind == E_SWITCH) {
                if ((st = compile_switch(&a, where, e, depth, msg)) != NDB_OK)
                    return st;
            } else if (e->kind == E_DATETOSTRING) {
                if ((st = compile_date_to_string(&a, where, e, depth, msg)) != NDB_OK)
                    return st;
            } else if (is_date_part(e->kind) && a.type == NDB_DOC_OBJECT) { /* {"date": ..., "timezone": "UTC"} */
                ndb_doc_val dv;
                if (ndb_doc_get_field(&a, "date", 4, &dv) != NDB_OK)
                    return ndb_errmsg_set(msg, NDB_EINVAL, "%s needs a date at %s", eops[i].name, where);
                if ((st = utc_only(&a, eops[i].name, where, msg)) != NDB_OK ||
                    (st = compile_date_arg(&dv, where, e, depth, msg)) != NDB_OK)
                    return st;
            } else if (e->kind == E_COND && a.type == NDB_DOC_OBJECT) {
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

bool expr_truthy(const ndb_doc_val *v, int have)
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

/* The one argument of e, evaluated: 1 with *a, 0 when missing or null
 * (the result is then null, as MongoDB's operators answer), or an error. */
static int eval_one(expr *e, const ndb_doc_val *root, ndb_doc_val *a, ndb_errmsg *msg)
{
    int r = expr_eval(&e->args[0], root, a, msg);
    return r <= 0 ? r : a->type == NDB_DOC_NULL ? 0 : 1;
}

static int null_out(expr *e, ndb_doc_val *out, ndb_errmsg *msg)
{
    ndb_doc_builder_reset(e->scratch);
    ndb_doc_null(e->scratch);
    return scratch_out(e, out, msg);
}

static int eval_rounding(expr *e, const ndb_doc_val *root, ndb_doc_val *out, ndb_errmsg *msg)
{
    static const char *names[] = {"$abs", "$floor", "$ceil"};
    const char *name = names[e->kind - E_ABS];
    ndb_doc_val a;
    int r = eval_one(e, root, &a, msg);
    if (r <= 0)
        return r < 0 ? r : null_out(e, out, msg);
    if (!val_is_num(&a))
        return ndb_errmsg_set(msg, NDB_EINVAL, "%s only supports numeric types", name);
    ndb_doc_builder_reset(e->scratch);
    if (a.type == NDB_DOC_INT) {
        if (e->kind == E_ABS && a.u.i == INT64_MIN) /* |INT64_MIN| is not an int64 */
            ndb_doc_double(e->scratch, 9223372036854775808.0);
        else
            ndb_doc_int(e->scratch, e->kind == E_ABS && a.u.i < 0 ? -a.u.i : a.u.i);
    } else {
        ndb_doc_double(e->scratch, e->kind == E_ABS ? fabs(a.u.d) : e->kind == E_FLOOR ? floor(a.u.d) : ceil(a.u.d));
    }
    return scratch_out(e, out, msg);
}

/* [array, index]: a negative index counts from the end; out of range is missing. */
static int eval_elem_at(expr *e, const ndb_doc_val *root, ndb_doc_val *out, ndb_errmsg *msg)
{
    ndb_doc_val arr, ix;
    int ra = expr_eval(&e->args[0], root, &arr, msg);
    if (ra < 0)
        return ra;
    int ri = expr_eval(&e->args[1], root, &ix, msg);
    if (ri < 0)
        return ri;
    if (ra == 0 || ri == 0 || arr.type == NDB_DOC_NULL || ix.type == NDB_DOC_NULL)
        return null_out(e, out, msg);
    if (arr.type != NDB_DOC_ARRAY)
        return ndb_errmsg_set(msg, NDB_EINVAL, "$arrayElemAt's first argument must be an array");
    if (!(ix.type == NDB_DOC_INT || (ix.type == NDB_DOC_DOUBLE && ix.u.d == floor(ix.u.d))))
        return ndb_errmsg_set(msg, NDB_EINVAL, "$arrayElemAt's second argument must be an integer");
    int64_t i = ix.type == NDB_DOC_INT ? ix.u.i : (int64_t)ix.u.d;
    if (i < 0)
        i += arr.u.c.count;
    if (i < 0 || i >= (int64_t)arr.u.c.count)
        return 0;
    return ndb_doc_get_index(&arr, (uint32_t)i, out) == NDB_OK ? 1 : ndb_errmsg_set(msg, NDB_ECORRUPT, "corrupt array");
}

static int eval_concat_arrays(expr *e, const ndb_doc_val *root, ndb_doc_val *out, ndb_errmsg *msg)
{
    /* arguments are evaluated one at a time into e->scratch, so each value is
     * copied before the next argument's evaluation can reuse its storage */
    dbuf acc = {0};
    uint32_t n = 0;
    for (int i = 0; i < e->nargs; i++) {
        ndb_doc_val a;
        int r = expr_eval(&e->args[i], root, &a, msg);
        if (r < 0 || r == 0 || a.type == NDB_DOC_NULL) {
            dbuf_free(&acc);
            return r < 0 ? r : null_out(e, out, msg);
        }
        if (a.type != NDB_DOC_ARRAY) {
            dbuf_free(&acc);
            return ndb_errmsg_set(msg, NDB_EINVAL, "$concatArrays only supports arrays");
        }
        dbuf_put(&acc, a.u.c.body, a.u.c.len);
        n += a.u.c.count;
    }
    if (acc.oom) {
        dbuf_free(&acc);
        return NDB_ENOMEM;
    }
    ndb_doc_builder_reset(e->scratch);
    ndb_doc_begin_array(e->scratch);
    const uint8_t *p = acc.data, *end = acc.data + acc.len;
    for (uint32_t k = 0; k < n && p; k++) {
        ndb_doc_val x;
        p = cod_read(p, end, &x);
        if (p)
            ndb_doc_value(e->scratch, &x);
    }
    ndb_doc_end_array(e->scratch);
    dbuf_free(&acc);
    return scratch_out(e, out, msg);
}

/* [value, array]: whether the array holds the value (missing is no value). */
static int eval_in(expr *e, const ndb_doc_val *root, ndb_doc_val *out, ndb_errmsg *msg)
{
    ndb_doc_val v, arr;
    int rv = expr_eval(&e->args[0], root, &v, msg);
    if (rv < 0)
        return rv;
    dbuf keep = {0}; /* v may live in a scratch the array's evaluation reuses */
    if (rv && !dbuf_put(&keep, v.raw, v.raw_len))
        return NDB_ENOMEM;
    int ra = expr_eval(&e->args[1], root, &arr, msg);
    if (ra < 0 || ra == 0 || arr.type != NDB_DOC_ARRAY) {
        dbuf_free(&keep);
        return ra < 0 ? ra : ndb_errmsg_set(msg, NDB_EINVAL, "$in requires an array as a second argument");
    }
    bool hit = false;
    if (rv) {
        cod_read(keep.data, keep.data + keep.len, &v);
        ndb_doc_iter it;
        ndb_doc_iter_init(&it, &arr);
        ndb_doc_val x;
        while (!hit && ndb_doc_iter_next(&it, NULL, NULL, &x))
            hit = val_equal(&x, &v);
    }
    dbuf_free(&keep);
    ndb_doc_builder_reset(e->scratch);
    ndb_doc_bool(e->scratch, hit);
    return scratch_out(e, out, msg);
}

static const char *type_name(const ndb_doc_val *v)
{
    switch (v->type) {
    case NDB_DOC_NULL: return "null";
    case NDB_DOC_BOOL: return "bool";
    case NDB_DOC_INT: return v->u.i >= INT32_MIN && v->u.i <= INT32_MAX ? "int" : "long";
    case NDB_DOC_DOUBLE: return "double";
    case NDB_DOC_STRING: return "string";
    case NDB_DOC_ARRAY: return "array";
    case NDB_DOC_OBJECT: return "object";
    case NDB_DOC_DATE: return "date";
    case NDB_DOC_BINARY: return "binData";
    }
    return "unknown";
}

/* $dateToString's format f (n bytes) over p into b (checked at compile). */
static void format_date(const char *f, size_t len, const date_parts *p, dbuf *b)
{
    for (size_t i = 0; i < len; i++) {
        char c = f[i], t[24];
        if (c != '%' || i + 1 >= len) {
            dbuf_byte(b, (uint8_t)c);
            continue;
        }
        int n = 0;
        switch (f[++i]) {
        case 'Y': n = snprintf(t, sizeof t, "%04lld", (long long)p->year); break;
        case 'm': n = snprintf(t, sizeof t, "%02d", p->month); break;
        case 'd': n = snprintf(t, sizeof t, "%02d", p->day); break;
        case 'H': n = snprintf(t, sizeof t, "%02d", p->hour); break;
        case 'M': n = snprintf(t, sizeof t, "%02d", p->minute); break;
        case 'S': n = snprintf(t, sizeof t, "%02d", p->second); break;
        case 'L': n = snprintf(t, sizeof t, "%03d", p->ms); break;
        case 'j': n = snprintf(t, sizeof t, "%03d", p->yday + 1); break;
        case 'w': n = snprintf(t, sizeof t, "%d", p->wday + 1); break; /* 1 Sunday .. 7 */
        case 'u': n = snprintf(t, sizeof t, "%d", p->wday == 0 ? 7 : p->wday); break; /* ISO: 1 Monday .. 7 */
        default: t[0] = '%'; n = 1; break;
        }
        dbuf_put(b, t, (size_t)n);
    }
}

static int eval_date(expr *e, const ndb_doc_val *root, ndb_doc_val *out, ndb_errmsg *msg)
{
    ndb_doc_val a;
    int r = eval_one(e, root, &a, msg);
    if (r <= 0)
        return r < 0 ? r : null_out(e, out, msg);
    if (a.type != NDB_DOC_DATE)
        return ndb_errmsg_set(msg, NDB_EINVAL, "can't convert from BSON type %s to Date", type_name(&a));
    date_parts p;
    date_civil(a.u.i, &p);
    ndb_doc_builder_reset(e->scratch);
    if (e->kind == E_DATETOSTRING) {
        static const char iso[] = "%Y-%m-%dT%H:%M:%S.%LZ";
        dbuf s = {0};
        if (e->has_default)
            format_date(iso, sizeof iso - 1, &p, &s);
        else
            format_date(e->lit.u.s.ptr, e->lit.u.s.len, &p, &s);
        ndb_doc_string(e->scratch, s.len ? (const char *)s.data : "", s.len);
        dbuf_free(&s);
        return scratch_out(e, out, msg);
    }
    int64_t v = e->kind == E_YEAR ? p.year : e->kind == E_MONTH ? p.month : e->kind == E_DAYOFMONTH ? p.day
              : e->kind == E_HOUR ? p.hour : e->kind == E_MINUTE ? p.minute : e->kind == E_SECOND ? p.second
              : e->kind == E_MILLISECOND ? p.ms : e->kind == E_DAYOFWEEK ? p.wday + 1 : p.yday + 1;
    ndb_doc_int(e->scratch, v);
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
        return expr_eval(&e->args[expr_truthy(&a, r) ? 1 : 2], root, out, msg);
    }
    case E_EQ: case E_NE: case E_GT: case E_GTE: case E_LT: case E_LTE: {
        ndb_doc_val a, b;
        int ha = expr_eval(&e->args[0], root, &a, msg);
        if (ha < 0)
            return ha;
        /* a's storage may be e->args[0]'s scratch, separate from args[1]'s */
        int hb = expr_eval(&e->args[1], root, &b, msg);
        if (hb < 0)
            return hb;
        /* missing sorts below null and equals only missing */
        int c = ha && hb ? ndb_doc_compare(&a, &b) : ha - hb;
        bool res = e->kind == E_EQ ? c == 0 : e->kind == E_NE ? c != 0 : e->kind == E_GT ? c > 0
                 : e->kind == E_GTE ? c >= 0 : e->kind == E_LT ? c < 0 : c <= 0;
        ndb_doc_builder_reset(e->scratch);
        ndb_doc_bool(e->scratch, res);
        return scratch_out(e, out, msg);
    }
    case E_ABS: case E_FLOOR: case E_CEIL: return eval_rounding(e, root, out, msg);
    case E_ARRAYELEMAT: return eval_elem_at(e, root, out, msg);
    case E_CONCATARRAYS: return eval_concat_arrays(e, root, out, msg);
    case E_IN: return eval_in(e, root, out, msg);
    case E_SWITCH: {
        int branches = e->nargs - (e->has_default ? 1 : 0);
        for (int i = 0; i + 1 < branches; i += 2) {
            ndb_doc_val c;
            int r = expr_eval(&e->args[i], root, &c, msg);
            if (r < 0)
                return r;
            if (expr_truthy(&c, r))
                return expr_eval(&e->args[i + 1], root, out, msg);
        }
        if (e->has_default)
            return expr_eval(&e->args[e->nargs - 1], root, out, msg);
        return ndb_errmsg_set(msg, NDB_EINVAL, "$switch could not find a matching branch for an input, and no "
                              "default was specified");
    }
    case E_AND: case E_OR: case E_NOT: {
        bool res = e->kind == E_AND;
        for (int i = 0; i < e->nargs; i++) {
            ndb_doc_val a;
            int r = expr_eval(&e->args[i], root, &a, msg);
            if (r < 0)
                return r;
            bool t = expr_truthy(&a, r);
            if (e->kind == E_NOT)
                res = !t;
            else if (e->kind == E_AND ? !t : t) {
                res = e->kind == E_OR;
                break;
            }
        }
        ndb_doc_builder_reset(e->scratch);
        ndb_doc_bool(e->scratch, res);
        return scratch_out(e, out, msg);
    }
    case E_TYPE: {
        ndb_doc_val a;
        int r = expr_eval(&e->args[0], root, &a, msg);
        if (r < 0)
            return r;
        const char *t = r == 0 ? "missing" : type_name(&a);
        ndb_doc_builder_reset(e->scratch);
        ndb_doc_string(e->scratch, t, strlen(t));
        return scratch_out(e, out, msg);
    }
    case E_YEAR: case E_MONTH: case E_DAYOFMONTH: case E_HOUR: case E_MINUTE: case E_SECOND:
    case E_MILLISECOND: case E_DAYOFWEEK: case E_DAYOFYEAR: case E_DATETOSTRING:
        return eval_date(e, root, out, msg);
    }
    return ndb_errmsg_set(msg, NDB_EINVAL, "bad expression");
}
