/*
 * agg_expand.c — pipeline stages that are shorthands for others, written out
 * before the pipeline is compiled (MongoDB's manual defines them so):
 *
 *   {"$sortByCount": e}  ->  {"$group": {"_id": e, "count": {"$sum": 1}}},
 *                            {"$sort": {"count": -1}}
 *   {"$bucket": {"groupBy": e, "boundaries": [b0, ..., bn], "default": d,
 *                "output": {...}}}
 *                        ->  {"$group": {"_id": {"$switch": {"branches": [
 *                                {"case": {"$and": [{"$gte": [e, b0]}, {"$lt": [e, b1]}]},
 *                                 "then": b0}, ...], "default": d}},
 *                            ...output, or "count": {"$sum": 1}}},
 *                            {"$sort": {"_id": 1}}
 *
 * Without a default, an input outside the boundaries fails the pipeline
 * ($switch finds no branch), as MongoDB's $bucket does.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "doc_int.h"

static void count_acc(ndb_doc_builder *b)
{
    ndb_doc_key(b, "count", 5);
    ndb_doc_begin_object(b);
    ndb_doc_key(b, "$sum", 4);
    ndb_doc_int(b, 1);
    ndb_doc_end_object(b);
}

static void sort_stage(ndb_doc_builder *b, const char *field, int dir)
{
    ndb_doc_begin_object(b);
    ndb_doc_key(b, "$sort", 5);
    ndb_doc_begin_object(b);
    ndb_doc_key(b, field, strlen(field));
    ndb_doc_int(b, dir);
    ndb_doc_end_object(b);
    ndb_doc_end_object(b);
}

static void sort_by_count(ndb_doc_builder *b, const ndb_doc_val *e)
{
    ndb_doc_begin_object(b);
    ndb_doc_key(b, "$group", 6);
    ndb_doc_begin_object(b);
    ndb_doc_key(b, "_id", 3);
    ndb_doc_value(b, e);
    count_acc(b);
    ndb_doc_end_object(b);
    ndb_doc_end_object(b);
    sort_stage(b, "count", -1);
}

/* {"$op": [a, b]} */
static void binary_op(ndb_doc_builder *b, const char *op, const ndb_doc_val *x, const ndb_doc_val *y)
{
    ndb_doc_begin_object(b);
    ndb_doc_key(b, op, strlen(op));
    ndb_doc_begin_array(b);
    ndb_doc_value(b, x);
    ndb_doc_value(b, y);
    ndb_doc_end_array(b);
    ndb_doc_end_object(b);
}

static ndb_status bucket(ndb_doc_builder *b, const ndb_doc_val *spec, int idx, ndb_errmsg *msg)
{
    ndb_doc_val by, bounds, def, out;
    if (spec->type != NDB_DOC_OBJECT || ndb_doc_get_field(spec, "groupBy", 7, &by) != NDB_OK ||
        ndb_doc_get_field(spec, "boundaries", 10, &bounds) != NDB_OK || bounds.type != NDB_DOC_ARRAY ||
        bounds.u.c.count < 2)
        return ndb_errmsg_set(msg, NDB_EINVAL, "$bucket at pipeline.%d needs groupBy and at least two "
                              "boundaries", idx);
    bool has_def = ndb_doc_get_field(spec, "default", 7, &def) == NDB_OK;
    bool has_out = ndb_doc_get_field(spec, "output", 6, &out) == NDB_OK;
    if (has_out && out.type != NDB_DOC_OBJECT)
        return ndb_errmsg_set(msg, NDB_EINVAL, "$bucket.output at pipeline.%d must be an object", idx);
    ndb_doc_val prev, cur;
    ndb_doc_iter it;
    ndb_doc_iter_init(&it, &bounds);
    for (uint32_t i = 0; ndb_doc_iter_next(&it, NULL, NULL, &cur); i++, prev = cur)
        if (i > 0 && (val_rank(prev.type) != val_rank(cur.type) || ndb_doc_compare(&prev, &cur) >= 0))
            return ndb_errmsg_set(msg, NDB_EINVAL, "$bucket.boundaries at pipeline.%d must be ascending "
                                  "values of one type", idx);
    if (has_def) {
        ndb_doc_val lo, hi;
        ndb_doc_get_index(&bounds, 0, &lo);
        ndb_doc_get_index(&bounds, bounds.u.c.count - 1, &hi);
        if (val_rank(def.type) == val_rank(lo.type) && ndb_doc_compare(&def, &lo) >= 0 &&
            ndb_doc_compare(&def, &hi) < 0)
            return ndb_errmsg_set(msg, NDB_EINVAL, "$bucket.default at pipeline.%d must lie outside the "
                                  "boundaries", idx);
    }
    ndb_doc_begin_object(b);
    ndb_doc_key(b, "$group", 6);
    ndb_doc_begin_object(b);
    ndb_doc_key(b, "_id", 3);
    ndb_doc_begin_object(b);
    ndb_doc_key(b, "$switch", 7);
    ndb_doc_begin_object(b);
    ndb_doc_key(b, "branches", 8);
    ndb_doc_begin_array(b);
    ndb_doc_iter_init(&it, &bounds);
    ndb_doc_iter_next(&it, NULL, NULL, &prev);
    while (ndb_doc_iter_next(&it, NULL, NULL, &cur)) {
        ndb_doc_begin_object(b);
        ndb_doc_key(b, "case", 4);
        ndb_doc_begin_object(b);
        ndb_doc_key(b, "$and", 4);
        ndb_doc_begin_array(b);
        binary_op(b, "$gte", &by, &prev);
        binary_op(b, "$lt", &by, &cur);
        ndb_doc_end_array(b);
        ndb_doc_end_object(b);
        ndb_doc_key(b, "then", 4);
        ndb_doc_begin_object(b); /* the boundary as a literal, never read as a path */
        ndb_doc_key(b, "$literal", 8);
        ndb_doc_value(b, &prev);
        ndb_doc_end_object(b);
        ndb_doc_end_object(b);
        prev = cur;
    }
    ndb_doc_end_array(b);
    if (has_def) {
        ndb_doc_key(b, "default", 7);
        ndb_doc_begin_object(b);
        ndb_doc_key(b, "$literal", 8);
        ndb_doc_value(b, &def);
        ndb_doc_end_object(b);
    }
    ndb_doc_end_object(b);
    ndb_doc_end_object(b);
    if (has_out) {
        const char *k;
        size_t kl;
        ndb_doc_val a;
        ndb_doc_iter_init(&it, &out);
        while (ndb_doc_iter_next(&it, &k, &kl, &a)) {
            ndb_doc_key(b, k, kl);
            ndb_doc_value(b, &a);
        }
    } else {
        count_acc(b);
    }
    ndb_doc_end_object(b);
    ndb_doc_end_object(b);
    sort_stage(b, "_id", 1);
    return NDB_OK;
}

ndb_status agg_expand(const ndb_doc_val *pipeline, void **out, size_t *len, ndb_errmsg *msg)
{
    ndb_doc_builder *b;
    ndb_status st = ndb_doc_builder_new(&b);
    if (st != NDB_OK)
        return st;
    ndb_doc_begin_array(b);
    ndb_doc_iter it;
    ndb_doc_iter_init(&it, pipeline);
    ndb_doc_val sv;
    for (int idx = 0; st == NDB_OK && ndb_doc_iter_next(&it, NULL, NULL, &sv); idx++) {
        const char *k;
        size_t kl;
        ndb_doc_val arg;
        ndb_doc_iter one;
        ndb_doc_iter_init(&one, &sv);
        if (sv.type != NDB_DOC_OBJECT || sv.u.c.count != 1 || !ndb_doc_iter_next(&one, &k, &kl, &arg))
            st = ndb_doc_value(b, &sv); /* compile_stage names what is wrong */
        else if (key_is(k, kl, "$sortByCount"))
            sort_by_count(b, &arg);
        else if (key_is(k, kl, "$bucket"))
            st = bucket(b, &arg, idx, msg);
        else
            st = ndb_doc_value(b, &sv);
    }
    ndb_doc_end_array(b);
    if (st == NDB_OK && (st = ndb_doc_builder_take(b, out, len)) != NDB_OK)
        ndb_errmsg_set(msg, st, "pipeline too large once written out");
    ndb_doc_builder_free(b);
    return st;
}
