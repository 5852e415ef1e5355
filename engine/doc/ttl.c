/*
 * ttl.c — TTL expiry, as MongoDB's TTL monitor does it: for each TTL index,
 * the documents whose indexed field is a date earlier than now minus the
 * index's expire_after_seconds are deleted, found through that index's range
 * and deleted in bounded batches, each one atomic write that checks the
 * condition against the documents as they are then.
 *
 * The condition is the filter {field: {$lt: <cutoff date>}}: by MongoDB's
 * comparison rules it matches only dates (and arrays holding one earlier
 * than the cutoff, so an array expires with its earliest date); a missing
 * field, null, a string or a number never matches, so never expires.
 */
#include <sched.h>
#include <stdlib.h>
#include <string.h>

#include "doc_int.h"

/* The filter {field: {$lt: cutoff}} in b. */
static ndb_status cutoff_filter(ndb_doc_builder *b, const char *field, int64_t cutoff, const void **f, size_t *fl)
{
    ndb_doc_builder_reset(b);
    ndb_doc_begin_object(b);
    ndb_doc_key(b, field, strlen(field));
    ndb_doc_begin_object(b);
    ndb_doc_key(b, "$lt", 3);
    ndb_doc_date(b, cutoff);
    ndb_doc_end_object(b);
    ndb_doc_end_object(b);
    return ndb_doc_builder_finish(b, f, fl);
}

/* Expires what one TTL index covers, up to budget documents (0: all), in
 * batches deleted by fn, or by the document layer when fn is NULL: then each
 * batch scans the index from where the previous one stopped, not from the
 * start, which would step again over the deletion markers the earlier
 * batches left in the index's key range (quadratic in the backlog). */
static ndb_status expire_index(ndb_doc_db *db, const char *coll, const char *index, const char *field, int64_t cutoff,
                               uint32_t batch, uint64_t budget, ndb_doc_expire_fn fn, void *arg, ndb_doc_builder *b,
                               uint64_t *done, ndb_errmsg *msg)
{
    dbuf position = {0};
    doc_delete_spec spec = {.hint = index, .position = &position};
    ndb_status st = cutoff_filter(b, field, cutoff, &spec.filter, &spec.flen);
    if (st != NDB_OK)
        return ndb_errmsg_set(msg, st, "TTL filter on %s.%s: %s", coll, field, ndb_strerror(st));
    for (;;) {
        spec.limit = batch;
        if (budget && budget - *done < spec.limit)
            spec.limit = budget - *done;
        if (spec.limit == 0)
            break;
        uint64_t n = 0;
        st = fn ? fn(arg, coll, index, spec.filter, spec.flen, (uint32_t)spec.limit, &n, msg)
                : doc_delete_matching(db, coll, &spec, NULL, &n, msg);
        if (st != NDB_OK)
            break;
        *done += n;
        if (n < spec.limit || (!fn && position.len == 0))
            break;
        sched_yield(); /* a writer waiting for the collection's lock goes before the next batch */
    }
    dbuf_free(&position);
    return st;
}

ndb_status ndb_doc_expire(ndb_doc_db *db, int64_t now_ms, uint32_t batch, uint64_t max, uint64_t *deleted,
                          ndb_errmsg *msg)
{
    return ndb_doc_expire_by(db, now_ms, batch, max, NULL, NULL, deleted, msg);
}

ndb_status ndb_doc_expire_by(ndb_doc_db *db, int64_t now_ms, uint32_t batch, uint64_t max, ndb_doc_expire_fn fn,
                             void *arg, uint64_t *deleted, ndb_errmsg *msg)
{
    uint64_t done = 0;
    if (deleted)
        *deleted = 0;
    if (batch == 0)
        return ndb_errmsg_set(msg, NDB_EINVAL, "TTL batch size must be at least 1");
    ndb_doc_coll_info *colls = NULL;
    size_t nc = 0;
    ndb_status st = ndb_doc_list_collections(db, &colls, &nc, msg);
    if (st != NDB_OK)
        return st;
    ndb_doc_builder *b = NULL;
    if (ndb_doc_builder_new(&b) != NDB_OK) {
        free(colls);
        return NDB_ENOMEM;
    }
    for (size_t i = 0; st == NDB_OK && i < nc && (max == 0 || done < max); i++) {
        ndb_doc_index_info *ix = NULL;
        size_t ni = 0;
        st = ndb_doc_list_indexes(db, colls[i].name, &ix, &ni, msg);
        if (st == NDB_ENOTFOUND) { /* dropped since the list */
            st = NDB_OK;
            continue;
        }
        for (size_t j = 0; st == NDB_OK && j < ni && (max == 0 || done < max); j++) {
            if (!ix[j].ttl)
                continue;
            char *colon = strrchr(ix[j].fields, ':'); /* one field: "path:1" */
            if (colon != NULL)
                *colon = '\0';
            int64_t ms = ix[j].expire_after_seconds * 1000;
            int64_t cutoff = now_ms > INT64_MIN + ms ? now_ms - ms : INT64_MIN;
            st = expire_index(db, colls[i].name, ix[j].name, ix[j].fields, cutoff, batch, max, fn, arg, b, &done,
                              msg);
        }
        free(ix);
    }
    ndb_doc_builder_free(b);
    free(colls);
    if (deleted)
        *deleted = done;
    return st;
}
