/* accum.c — $group's accumulators (see accum.h). */
#include "accum.h"

#include <stdio.h>
#include <string.h>

ndb_status accum_compile(accspec *a, const char *k, size_t kl, const ndb_doc_val *e, ndb_errmsg *msg)
{
    static const struct {
        const char *n;
        aop op;
    } names[] = {{"$sum", A_SUM},   {"$avg", A_AVG},     {"$min", A_MIN},
                 {"$max", A_MAX},   {"$count", A_COUNT}, {"$push", A_PUSH},
                 {"$addToSet", A_ADDTOSET}, {"$first", A_FIRST}, {"$last", A_LAST}};
    const char *ak;
    size_t akl;
    ndb_doc_val arg;
    ndb_doc_iter ai;
    ndb_doc_iter_init(&ai, e);
    if (e->type != NDB_DOC_OBJECT || e->u.c.count != 1 || !ndb_doc_iter_next(&ai, &ak, &akl, &arg))
        return ndb_errmsg_set(msg, NDB_EINVAL,
                              "$group.%.*s must be an object with one accumulator", (int)kl, k);
    size_t i;
    for (i = 0; i < sizeof names / sizeof names[0]; i++)
        if (key_is(ak, akl, names[i].n))
            break;
    if (i == sizeof names / sizeof names[0])
        return ndb_errmsg_set(msg, NDB_EINVAL, "unknown accumulator %.*s at $group.%.*s",
                              (int)akl, ak, (int)kl, k);
    a->op = names[i].op;
    a->name = k;
    a->nlen = kl;
    if (a->op == A_COUNT) {
        if (arg.type != NDB_DOC_OBJECT || arg.u.c.count != 0)
            return ndb_errmsg_set(msg, NDB_EINVAL, "$count accumulator takes {}");
        return NDB_OK;
    }
    char where[96];
    snprintf(where, sizeof where, "$group.%.*s", (int)(kl > 64 ? 64 : kl), k);
    return expr_compile(&arg, where, &a->ex, 0, msg);
}

/* Adds v (have: 0 when missing) to st. */
static void add_value(const accspec *as, accst *st, const ndb_doc_val *v, int have, size_t *mem)
{
    switch (as->op) {
    case A_COUNT:
        st->n++;
        return;
    case A_SUM:
    case A_AVG:
        if (!have || !val_is_num(v))
            return;
        st->n++;
        if (!st->dbl && v->type == NDB_DOC_INT && !__builtin_add_overflow(st->i, v->u.i, &st->i))
            return;
        if (!st->dbl) {
            st->d = (double)st->i;
            st->dbl = true;
        }
        st->d += ndb_doc_num(v);
        return;
    case A_MIN:
    case A_MAX:
        if (!have || v->type == NDB_DOC_NULL)
            return;
        if (st->has) {
            ndb_doc_val cur;
            cod_read(st->v.data, st->v.data + st->v.len, &cur);
            int r = ndb_doc_compare(v, &cur);
            if (as->op == A_MIN ? r >= 0 : r <= 0)
                return;
        }
        *mem -= st->v.cap;
        st->v.len = 0;
        dbuf_put(&st->v, v->raw, v->raw_len);
        *mem += st->v.cap;
        st->has = true;
        return;
    case A_FIRST:
        if (st->has)
            return;
        /* fall through */
    case A_LAST:
        *mem -= st->v.cap;
        st->v.len = 0;
        if (have)
            dbuf_put(&st->v, v->raw, v->raw_len);
        *mem += st->v.cap;
        st->has = true;
        return;
    case A_ADDTOSET:
        if (!have)
            return;
        {
            const uint8_t *p = st->v.data, *end = st->v.data + st->v.len;
            ndb_doc_val e;
            while (p && p < end) {
                p = cod_read(p, end, &e);
                if (p && val_equal(&e, v))
                    return;
            }
        }
        /* fall through */
    case A_PUSH:
        if (!have)
            return;
        *mem -= st->v.cap;
        dbuf_put(&st->v, v->raw, v->raw_len);
        *mem += st->v.cap;
        st->cnt++;
        return;
    }
}

int accum_add(accspec *a, accst *st, const ndb_doc_val *root, size_t *mem, ndb_errmsg *msg)
{
    ndb_doc_val v;
    int have = 1;
    if (a->op != A_COUNT) {
        have = expr_eval(&a->ex, root, &v, msg);
        if (have < 0)
            return have;
    }
    add_value(a, st, &v, have, mem);
    return 0;
}

void accum_out(const accspec *as, const accst *st, ndb_doc_builder *b)
{
    ndb_doc_val v;
    switch (as->op) {
    case A_COUNT:
        ndb_doc_int(b, (int64_t)st->n);
        return;
    case A_SUM:
        if (st->dbl)
            ndb_doc_double(b, st->d);
        else
            ndb_doc_int(b, st->i);
        return;
    case A_AVG:
        if (st->n == 0)
            ndb_doc_null(b);
        else
            ndb_doc_double(b, (st->dbl ? st->d : (double)st->i) / (double)st->n);
        return;
    case A_MIN: case A_MAX: case A_FIRST: case A_LAST:
        if (st->v.len && cod_read(st->v.data, st->v.data + st->v.len, &v))
            ndb_doc_value(b, &v);
        else
            ndb_doc_null(b);
        return;
    case A_PUSH: case A_ADDTOSET: {
        ndb_doc_begin_array(b);
        /* v.data is NULL when nothing was pushed: no NULL + 0 */
        const uint8_t *p = st->v.data, *end = p != NULL ? p + st->v.len : NULL;
        while (p && p < end) {
            p = cod_read(p, end, &v);
            if (p)
                ndb_doc_value(b, &v);
        }
        ndb_doc_end_array(b);
        return;
    }
    }
}

void accum_clear(accspec *a) { expr_clear(&a->ex); }

void accum_state_clear(accst *st) { dbuf_free(&st->v); }

void accum_state_put(const accst *st, dbuf *out)
{
    uint8_t fixed[17];
    uint64_t d;
    memcpy(&d, &st->d, 8);
    wr64(fixed, (uint64_t)st->i);
    wr64(fixed + 8, d);
    fixed[16] = (uint8_t)((st->dbl ? 1 : 0) | (st->has ? 2 : 0));
    dbuf_put(out, fixed, sizeof fixed);
    dbuf_varint(out, st->n);
    dbuf_varint(out, st->cnt);
    dbuf_varint(out, st->v.len);
    dbuf_put(out, st->v.data, st->v.len);
}

const uint8_t *accum_state_get(accst *st, const uint8_t *p, const uint8_t *end)
{
    uint64_t n, cnt, vl, d;
    if (end - p < 17)
        return NULL;
    st->i = (int64_t)rd64(p);
    d = rd64(p + 8);
    memcpy(&st->d, &d, 8);
    st->dbl = p[16] & 1;
    st->has = (p[16] & 2) != 0;
    p += 17;
    if ((p = varint_get(p, end, &n, 10)) == NULL || (p = varint_get(p, end, &cnt, 10)) == NULL ||
        (p = varint_get(p, end, &vl, 10)) == NULL || vl > (uint64_t)(end - p) || cnt > UINT32_MAX)
        return NULL;
    st->n = n;
    st->cnt = (uint32_t)cnt;
    st->v.len = 0;
    if (!dbuf_put(&st->v, p, (size_t)vl))
        return NULL;
    return p + vl;
}

void accum_merge(const accspec *a, accst *st, const accst *later)
{
    size_t mem = 0; /* the merge runs after the bound is checked */
    ndb_doc_val v;
    switch (a->op) {
    case A_COUNT:
        st->n += later->n;
        return;
    case A_SUM:
    case A_AVG:
        st->n += later->n;
        if (!st->dbl && !later->dbl && !__builtin_add_overflow(st->i, later->i, &st->i))
            return;
        st->d = (st->dbl ? st->d : (double)st->i) + (later->dbl ? later->d : (double)later->i);
        st->dbl = true;
        return;
    case A_MIN:
    case A_MAX: /* compared as one more value */
        if (later->has && later->v.len && cod_read(later->v.data, later->v.data + later->v.len, &v))
            add_value(a, st, &v, 1, &mem);
        return;
    case A_LAST:
        if (later->has) {
            st->v.len = 0;
            dbuf_put(&st->v, later->v.data, later->v.len);
            st->has = true;
        }
        return;
    case A_FIRST:
        if (!st->has && later->has) {
            st->v.len = 0;
            dbuf_put(&st->v, later->v.data, later->v.len);
            st->has = true;
        }
        return;
    case A_PUSH:
    case A_ADDTOSET: {
        const uint8_t *p = later->v.data, *end = p != NULL ? p + later->v.len : NULL;
        while (p && p < end && (p = cod_read(p, end, &v)) != NULL)
            add_value(a, st, &v, 1, &mem); /* $addToSet skips what st holds */
        return;
    }
    }
}
