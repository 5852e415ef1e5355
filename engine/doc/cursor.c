/*
 * cursor.c — reads: one document by _id, streaming cursors over one kv
 * snapshot (collection scans, _id lookups, index scans, in-memory sorts),
 * page tokens, explain, find-one, count, and the entry to aggregation.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "doc_int.h"

static ndb_status get_doc(ndb_doc_db *db, bool nowait, const ndb_kv_snapshot *snap, const char *cname,
                          const char *id, size_t idlen, void **doc, size_t *len, ndb_errmsg *msg)
{
    coll *c;
    ndb_status st = cat_get_coll(db, cname, nowait, &c, msg);
    if (st != NDB_OK)
        return st;
    if (idlen == 0 || idlen > NDB_DOC_MAX_ID)
        return ndb_errmsg_set(msg, NDB_ENOTFOUND, "no document with that _id");
    dbuf k = {0};
    key_doc(&k, c, id, idlen);
    if (k.oom)
        return NDB_ENOMEM;
    st = (nowait ? ndb_kv_try_get : ndb_kv_get)(db->kv, snap, k.data, k.len, doc, len);
    dbuf_free(&k);
    if (st == NDB_EBUSY)
        return st;
    if (st == NDB_ENOTFOUND)
        return ndb_errmsg_set(msg, st, "no document with _id '%.*s' in %s",
                              (int)(idlen > 64 ? 64 : idlen), id, cname);
    if (st != NDB_OK)
        return db_kvfail(db, msg, st, "reading document");
    if (ndb_doc_validate(*doc, *len, NULL) != NDB_OK) {
        free(*doc);
        return ndb_errmsg_set(msg, NDB_ECORRUPT, "stored document '%.*s' is corrupt",
                              (int)(idlen > 64 ? 64 : idlen), id);
    }
    return NDB_OK;
}

ndb_status ndb_doc_get(ndb_doc_db *db, const char *cname, const char *id, size_t idlen, void **doc,
                       size_t *len, ndb_errmsg *msg)
{
    return get_doc(db, false, NULL, cname, id, idlen, doc, len, msg);
}

ndb_status ndb_doc_get_at(ndb_doc_db *db, const ndb_kv_snapshot *snap, const char *cname, const char *id,
                          size_t idlen, void **doc, size_t *len, ndb_errmsg *msg)
{
    return get_doc(db, false, snap, cname, id, idlen, doc, len, msg);
}

ndb_status ndb_doc_try_get(ndb_doc_db *db, const char *cname, const char *id, size_t idlen, void **doc,
                           size_t *len, ndb_errmsg *msg)
{
    return get_doc(db, true, NULL, cname, id, idlen, doc, len, msg);
}


static void explain_plan(ndb_doc_cursor *c)
{
    const char *sortnote = c->mode == M_MEM ? " + SORT" : "";
    switch (c->pl.kind) {
    case PLAN_COLLSCAN:
        snprintf(c->ex.plan, sizeof c->ex.plan, "COLLSCAN%s", sortnote);
        break;
    case PLAN_IDHACK:
        snprintf(c->ex.plan, sizeof c->ex.plan, "IDHACK%s", sortnote);
        break;
    case PLAN_IXSCAN:
        snprintf(c->ex.plan, sizeof c->ex.plan, "IXSCAN %s%s%s", c->pl.idx->name,
                 c->pl.reverse ? " (backward)" : "", sortnote);
        snprintf(c->ex.index, sizeof c->ex.index, "%s", c->pl.idx->name);
        break;
    }
    c->ex.in_memory_sort = c->mode == M_MEM;
}

/* Narrows a collection scan's [lo, hi) with the filter's top-level string
 * comparisons on _id (the filter is still applied to every document). */
static void scan_id_bounds(const ndb_doc_filter *f, const coll *cl, dbuf *lo, dbuf *hi)
{
    if (f == NULL || f->root == NULL || f->root->kind != FN_AND)
        return;
    for (int i = 0; i < f->root->nkids; i++) {
        const flt_node *n = f->root->kids[i];
        if (n->kind != FN_FIELD || n->path.n != 1 || n->path.l[0] != 3 ||
            memcmp(n->path.c[0], "_id", 3) != 0)
            continue;
        for (int j = 0; j < n->npreds; j++) {
            const flt_pred *p = &n->preds[j];
            if (p->arg.type != NDB_DOC_STRING)
                continue;
            dbuf k = {0};
            key_doc(&k, cl, p->arg.u.s.ptr, p->arg.u.s.len);
            if (p->op == OP_GT || p->op == OP_LTE)
                dbuf_byte(&k, 0); /* the next key after this _id */
            bool tighter = false;
            if (!k.oom && (p->op == OP_GT || p->op == OP_GTE)) {
                size_t m = k.len < lo->len ? k.len : lo->len;
                int r = memcmp(k.data, lo->data, m);
                tighter = r > 0 || (r == 0 && k.len > lo->len);
                if (tighter) {
                    lo->len = 0;
                    dbuf_put(lo, k.data, k.len);
                }
            } else if (!k.oom && (p->op == OP_LT || p->op == OP_LTE)) {
                size_t m = k.len < hi->len ? k.len : hi->len;
                int r = memcmp(k.data, hi->data, m);
                tighter = r < 0 || (r == 0 && k.len < hi->len);
                if (tighter) {
                    hi->len = 0;
                    dbuf_put(hi, k.data, k.len);
                }
            }
            dbuf_free(&k);
        }
    }
}

ndb_status cur_open(ndb_doc_db *db, coll *cl, ndb_doc_filter *f, const srt_spec *s, const char *hint,
                    const ndb_kv_snapshot *snap, const ndb_interrupt *intr, ndb_doc_cursor **out,
                    ndb_errmsg *msg)
{
    ndb_doc_cursor *c = calloc(1, sizeof *c);
    if (c == NULL)
        return NDB_ENOMEM;
    c->db = db;
    c->c = cl;
    c->flt = f;
    c->intr = intr;
    if (f != NULL)
        flt_set_interrupt(f, intr);
    if (s && s->n) {
        c->sort = *s;
        c->has_sort = true;
    }
    ndb_status st = ndb_doc_builder_new(&c->out);
    if (st != NDB_OK)
        goto fail;
    c->ix = coll_ix(cl);
    st = plan_choose(f, c->has_sort ? &c->sort : NULL, c->ix, hint, &c->pl, msg);
    if (st != NDB_OK)
        goto fail;
    if (snap != NULL) {
        c->snap = snap;
    } else if ((st = ndb_kv_snapshot_acquire(db->kv, &c->snap_owned)) == NDB_OK) {
        c->snap = c->snap_owned;
    } else {
        db_kvfail(db, msg, st, "snapshot");
        goto fail;
    }
    dbuf lo = {0}, hi = {0};
    switch (c->pl.kind) {
    case PLAN_COLLSCAN:
        c->src_mode = M_SCAN;
        key_prefix_range(cl->prefix, &lo, &hi);
        scan_id_bounds(f, cl, &lo, &hi);
        /* documents are stored in _id order: a sort on _id alone is free */
        if (c->has_sort && c->sort.n == 1 && c->sort.k[0].path.n == 1 &&
            c->sort.k[0].path.l[0] == 3 && memcmp(c->sort.k[0].path.c[0], "_id", 3) == 0) {
            c->pl.sort_covered = true;
            c->pl.reverse = c->sort.k[0].desc;
        }
        break;
    case PLAN_IDHACK:
        c->src_mode = M_ID;
        break;
    case PLAN_IXSCAN:
        c->src_mode = M_IX;
        key_prefix_range(c->pl.idx->prefix, &lo, &hi);
        /* bound the iterator by the outer ranges: with one range the
         * iterator alone keeps the scan inside it (see cur_src_next) */
        if (c->pl.nranges > 0) {
            const plan_range *first = &c->pl.ranges[0], *last = &c->pl.ranges[c->pl.nranges - 1];
            lo.len = 0;
            dbuf_put(&lo, first->lo.data, first->lo.len);
            if (last->hi.len) {
                hi.len = 0;
                dbuf_put(&hi, last->hi.data, last->hi.len);
            }
        }
        break;
    }
    if (c->src_mode != M_ID) {
        st = lo.oom || hi.oom ? NDB_ENOMEM
                              : ndb_kv_iter_new(db->kv, c->snap, lo.data, lo.len, hi.data, hi.len, &c->it);
    }
    dbuf_free(&lo);
    dbuf_free(&hi);
    if (st != NDB_OK)
        goto fail;
    c->mode = c->src_mode;
    if (c->has_sort && !c->pl.sort_covered)
        c->mode = M_MEM;
    explain_plan(c);
    *out = c;
    return NDB_OK;
fail:
    c->flt = NULL; /* borrowed */
    ndb_doc_cursor_free(c);
    return st;
}

static bool key_eq(const void *k, size_t kl, const dbuf *b)
{
    return kl == b->len && memcmp(k, b->data, kl) == 0;
}

/* Is the iterator valid and exactly at key b? */
static bool iter_at(ndb_kv_iter *it, const dbuf *b)
{
    if (!ndb_kv_iter_valid(it))
        return false;
    size_t kl;
    const void *k = ndb_kv_iter_key(it, &kl);
    return key_eq(k, kl, b);
}

static int key_cmp(const void *k, size_t kl, const dbuf *b)
{
    size_t m = kl < b->len ? kl : b->len;
    int r = memcmp(k, b->data, m);
    return r ? r : (kl > b->len) - (kl < b->len);
}

/* Positions the index iterator at the start of range c->range_i (or at the
 * resume key). Returns false when there are no more ranges. */
static bool ix_enter(ndb_doc_cursor *c, bool resume)
{
    if (c->range_i < 0 || c->range_i >= c->pl.nranges)
        return false;
    const plan_range *r = &c->pl.ranges[c->range_i];
    if (!c->pl.reverse) {
        if (resume) {
            ndb_kv_iter_seek(c->it, c->lastkey.data, c->lastkey.len);
            if (iter_at(c->it, &c->lastkey))
                ndb_kv_iter_next(c->it);
        } else {
            ndb_kv_iter_seek(c->it, r->lo.data, r->lo.len);
        }
    } else {
        if (resume) {
            ndb_kv_iter_seek_for_prev(c->it, c->lastkey.data, c->lastkey.len);
            if (iter_at(c->it, &c->lastkey))
                ndb_kv_iter_prev(c->it);
        } else if (r->hi.len) {
            ndb_kv_iter_seek_for_prev(c->it, r->hi.data, r->hi.len);
            if (iter_at(c->it, &r->hi))
                ndb_kv_iter_prev(c->it);
        } else {
            ndb_kv_iter_seek_last(c->it);
        }
    }
    return true;
}

/* Whether a document passes the cursor's filter: 1, 0, or a failure. */
static int cur_pass(ndb_doc_cursor *c, const ndb_doc_val *root, ndb_errmsg *msg)
{
    return c->flt ? flt_match(c->flt, root, msg) : 1;
}

/* NDB_OK, or the interrupt's status with msg set, every NDB_INTERRUPT_EVERY rows. */
static ndb_status cur_poll(ndb_doc_cursor *c, ndb_errmsg *msg)
{
    ndb_status st = ndb_interrupt_poll(c->intr, &c->tick);
    return st == NDB_OK ? st : ndb_interrupt_msg(msg, st, "scan stopped");
}

int cur_src_next(ndb_doc_cursor *c, const uint8_t **doc, size_t *len, ndb_errmsg *msg)
{
    if (c->fetched) {
        free(c->fetched);
        c->fetched = NULL;
    }
    ndb_doc_db *db = c->db;
    switch (c->src_mode) {
    case M_SCAN:
        for (;;) {
            ndb_status ist = cur_poll(c, msg);
            if (ist != NDB_OK)
                return ist;
            if (!c->started) {
                c->started = true;
                if (c->lastkey.len && c->pl.reverse) {
                    ndb_kv_iter_seek_for_prev(c->it, c->lastkey.data, c->lastkey.len);
                    if (iter_at(c->it, &c->lastkey))
                        ndb_kv_iter_prev(c->it);
                } else if (c->lastkey.len) {
                    ndb_kv_iter_seek(c->it, c->lastkey.data, c->lastkey.len);
                    if (iter_at(c->it, &c->lastkey))
                        ndb_kv_iter_next(c->it);
                } else if (c->pl.reverse) {
                    ndb_kv_iter_seek_last(c->it);
                } else {
                    ndb_kv_iter_seek_first(c->it);
                }
            } else if (c->pl.reverse) {
                ndb_kv_iter_prev(c->it);
            } else {
                ndb_kv_iter_next(c->it);
            }
            if (!ndb_kv_iter_valid(c->it)) {
                ndb_status st = ndb_kv_iter_status(c->it);
                return st == NDB_OK ? 0 : db_kvfail(db, msg, st, "scanning");
            }
            size_t kl, vl;
            const void *k = ndb_kv_iter_key(c->it, &kl);
            const uint8_t *v = ndb_kv_iter_value(c->it, &vl);
            c->ex.docs_examined++;
            ndb_doc_val root;
            if (!doc_root_obj(v, vl, &root))
                return ndb_errmsg_set(msg, NDB_ECORRUPT, "corrupt document in %s", c->c->name);
            int pass = cur_pass(c, &root, msg);
            if (pass < 0)
                return pass;
            if (!pass)
                continue;
            c->lastkey.len = 0;
            if (!dbuf_put(&c->lastkey, k, kl))
                return NDB_ENOMEM;
            *doc = v;
            *len = vl;
            return 1;
        }
    case M_ID: {
        if (c->id_done)
            return 0;
        c->id_done = true;
        dbuf k = {0};
        key_doc(&k, c->c, c->pl.id.u.s.ptr, c->pl.id.u.s.len);
        void *v;
        size_t vl;
        ndb_status st = k.oom ? NDB_ENOMEM : ndb_kv_get(db->kv, c->snap, k.data, k.len, &v, &vl);
        dbuf_free(&k);
        if (st == NDB_ENOTFOUND)
            return 0;
        if (st != NDB_OK)
            return db_kvfail(db, msg, st, "reading document");
        c->fetched = v;
        c->ex.docs_examined++;
        ndb_doc_val root;
        if (!doc_root_obj(v, vl, &root))
            return ndb_errmsg_set(msg, NDB_ECORRUPT, "corrupt document in %s", c->c->name);
        int pass = cur_pass(c, &root, msg);
        if (pass <= 0)
            return pass;
        *doc = v;
        *len = vl;
        return 1;
    }
    case M_IX:
        for (;;) {
            ndb_status ist = cur_poll(c, msg);
            if (ist != NDB_OK)
                return ist;
            if (!c->started) {
                c->started = true;
                bool resume = c->lastkey.len > 0;
                if (c->pl.reverse && !resume)
                    c->range_i = c->pl.nranges - 1;
                if (!ix_enter(c, resume))
                    return 0;
            } else if (c->pl.reverse) {
                ndb_kv_iter_prev(c->it);
            } else {
                ndb_kv_iter_next(c->it);
            }
            size_t kl = 0, vl;
            const void *k = NULL;
            for (;;) { /* settle on a key inside the current range */
                const plan_range *r = &c->pl.ranges[c->range_i];
                if (ndb_kv_iter_valid(c->it)) {
                    k = ndb_kv_iter_key(c->it, &kl);
                    bool in = c->pl.nranges == 1 || (c->pl.reverse ? key_cmp(k, kl, &r->lo) >= 0
                                                                   : (r->hi.len == 0 || key_cmp(k, kl, &r->hi) < 0));
                    if (in)
                        break;
                } else {
                    ndb_status st = ndb_kv_iter_status(c->it);
                    if (st != NDB_OK)
                        return db_kvfail(db, msg, st, "index scan");
                }
                c->range_i += c->pl.reverse ? -1 : 1;
                if (!ix_enter(c, false))
                    return 0;
            }
            c->ex.keys_examined++;
            if (c->keys_only) {
                *doc = NULL;
                *len = 0;
                return 1;
            }
            const uint8_t *v = ndb_kv_iter_value(c->it, &vl);
            const uint8_t *id;
            size_t idlen;
            if (!idx_entry_id(c->pl.idx, k, kl, v, vl, &id, &idlen))
                return ndb_errmsg_set(msg, NDB_ECORRUPT, "corrupt index entry in %s", c->pl.idx->name);
            if (c->pl.idx->multikey) {
                bool fresh;
                if (bmap_upsert(&c->seen, id, idlen, 0, &fresh) == NULL)
                    return NDB_ENOMEM;
                if (!fresh)
                    continue;
            }
            c->lastkey.len = 0;
            if (!dbuf_put(&c->lastkey, k, kl))
                return NDB_ENOMEM;
            if (c->ids) { /* covered: the entry holds all the answer needs */
                ndb_doc_builder_reset(c->ids);
                ndb_doc_begin_object(c->ids);
                ndb_doc_key(c->ids, "_id", 3);
                ndb_doc_string(c->ids, (const char *)id, idlen);
                ndb_doc_end_object(c->ids);
                const void *d;
                ndb_status st = ndb_doc_builder_finish(c->ids, &d, len);
                if (st != NDB_OK)
                    return ndb_errmsg_set(msg, st, "building {_id}: %s", ndb_strerror(st));
                *doc = d;
                return 1;
            }
            dbuf dk = {0};
            key_doc(&dk, c->c, id, idlen);
            void *dv;
            size_t dvl;
            ndb_status st = dk.oom ? NDB_ENOMEM : ndb_kv_get(db->kv, c->snap, dk.data, dk.len, &dv, &dvl);
            dbuf_free(&dk);
            if (st == NDB_ENOTFOUND)
                continue; /* an index entry without its document: skip it */
            if (st != NDB_OK)
                return db_kvfail(db, msg, st, "reading document");
            c->ex.docs_examined++;
            ndb_doc_val root;
            if (!doc_root_obj(dv, dvl, &root)) {
                free(dv);
                return ndb_errmsg_set(msg, NDB_ECORRUPT, "corrupt document in %s", c->c->name);
            }
            int pass = cur_pass(c, &root, msg);
            if (pass <= 0) {
                free(dv);
                if (pass < 0)
                    return pass;
                continue;
            }
            c->fetched = dv;
            *doc = dv;
            *len = dvl;
            return 1;
        }
    default:
        return 0;
    }
}

ndb_status cur_sort_all(ndb_doc_cursor *c, ndb_errmsg *msg)
{
    sortbuf_init(&c->sb, c->db->opt.agg_mem_bytes, c->topk, c->db->opt.spill_dir, c->intr, "sort");
    dbuf key = {0};
    const uint8_t *d;
    size_t dl;
    int got;
    ndb_status st = NDB_OK;
    while (st == NDB_OK && (got = cur_src_next(c, &d, &dl, msg)) > 0) {
        ndb_doc_val root;
        ndb_doc_root(d, dl, &root);
        key.len = 0;
        st = srt_key_of(&c->sort, &root, &key) ? sortbuf_add(&c->sb, &key, d, dl, msg) : NDB_ENOMEM;
    }
    dbuf_free(&key);
    if (st == NDB_OK && got < 0)
        st = (ndb_status)got;
    if (st == NDB_OK)
        st = sortbuf_finish(&c->sb, msg);
    c->ex.spilled_bytes = c->sb.spilled_bytes;
    return st;
}

int cur_sorted_next(ndb_doc_cursor *c, const uint8_t **d, size_t *dl, ndb_errmsg *msg)
{
    const uint8_t *k;
    size_t kl;
    int r = sortbuf_next(&c->sb, &k, &kl, d, dl, msg);
    if (r > 0)
        c->mem_i++;
    return r;
}

static uint64_t query_hash(const ndb_doc_find_opts *o)
{
    uint64_t h = bytes_hash(o->filter ? o->filter : "", o->filter ? o->filter_len : 0);
    h ^= bytes_hash(o->sort ? o->sort : "", o->sort ? o->sort_len : 0) * 31;
    if (o->hint)
        h ^= bytes_hash(o->hint, strlen(o->hint)) * 131;
    return h;
}

/* Token: [0x01][mode][u64 query hash][varint range or offset][last key...] */
static ndb_status token_parse(ndb_doc_cursor *c, const uint8_t *t, size_t n, ndb_errmsg *msg)
{
    if (n < 10 || t[0] != 1 || rd64(t + 2) != c->qhash)
        return ndb_errmsg_set(msg, NDB_EINVAL, "page token does not belong to this query");
    uint64_t v;
    const uint8_t *p = varint_get(t + 10, t + n, &v, 10);
    if (p == NULL)
        return ndb_errmsg_set(msg, NDB_EINVAL, "malformed page token");
    if (t[1] == M_MEM && c->mode == M_MEM) {
        c->mem_i = (size_t)v; /* applied after sorting */
        return NDB_OK;
    }
    if (t[1] != c->src_mode || c->mode == M_MEM)
        return ndb_errmsg_set(msg, NDB_EINVAL, "page token does not belong to this query plan");
    if (c->src_mode == M_IX && v >= (uint64_t)c->pl.nranges)
        return ndb_errmsg_set(msg, NDB_EINVAL, "malformed page token");
    c->range_i = (int)v;
    if (!dbuf_put(&c->lastkey, p, (size_t)(t + n - p)))
        return NDB_ENOMEM;
    if (c->src_mode == M_ID)
        c->id_done = true;
    c->skip = 0;
    return NDB_OK;
}

ndb_status ndb_doc_find(ndb_doc_db *db, const char *cname, const ndb_doc_find_opts *o,
                        ndb_doc_cursor **out, ndb_errmsg *msg)
{
    ndb_doc_find_opts none = {0};
    if (o == NULL)
        o = &none;
    coll *cl;
    ndb_status st = db_get_coll(db, cname, &cl, msg);
    if (st != NDB_OK && st != NDB_ENOTFOUND)
        return st;
    ndb_doc_filter *f;
    if ((st = ndb_doc_filter_compile(o->filter, o->filter_len, &f, msg)) != NDB_OK)
        return st;
    srt_spec s = {0};
    uint8_t *sortcopy = NULL;
    if (o->sort && o->sort_len) {
        ndb_doc_val sv;
        if (ndb_doc_validate(o->sort, o->sort_len, NULL) != NDB_OK ||
            ndb_doc_root(o->sort, o->sort_len, &sv) != NDB_OK) {
            ndb_doc_filter_free(f);
            return ndb_errmsg_set(msg, NDB_EINVAL, "sort is not a valid document");
        }
        /* the spec borrows its path strings: keep a copy with the cursor */
        sortcopy = malloc(o->sort_len);
        if (sortcopy == NULL) {
            ndb_doc_filter_free(f);
            return NDB_ENOMEM;
        }
        memcpy(sortcopy, o->sort, o->sort_len);
        ndb_doc_root(sortcopy, o->sort_len, &sv);
        if ((st = srt_compile(&sv, &s, msg)) != NDB_OK) {
            free(sortcopy);
            ndb_doc_filter_free(f);
            return st;
        }
    }
    prj_spec *p = NULL;
    uint8_t *prjcopy = NULL;
    if (o->projection && o->projection_len) {
        ndb_doc_val pv;
        if (ndb_doc_validate(o->projection, o->projection_len, NULL) != NDB_OK ||
            (prjcopy = malloc(o->projection_len)) == NULL) {
            free(sortcopy);
            ndb_doc_filter_free(f);
            return prjcopy ? NDB_ENOMEM : ndb_errmsg_set(msg, NDB_EINVAL, "projection is not a valid document");
        }
        memcpy(prjcopy, o->projection, o->projection_len);
        ndb_doc_root(prjcopy, o->projection_len, &pv);
        if ((st = prj_compile(&pv, &p, msg)) != NDB_OK) {
            free(prjcopy);
            free(sortcopy);
            ndb_doc_filter_free(f);
            return st;
        }
    }
    if (cl == NULL) {
        /* like MongoDB: a collection that does not exist has no documents (the
         * request was checked all the same) */
        prj_free(p);
        free(prjcopy);
        free(sortcopy);
        ndb_doc_filter_free(f);
        ndb_doc_cursor *c = calloc(1, sizeof *c);
        if (c == NULL)
            return NDB_ENOMEM;
        c->db = db;
        c->mode = M_DONE;
        snprintf(c->ex.plan, sizeof c->ex.plan, "EOF");
        *out = c;
        return NDB_OK;
    }
    ndb_doc_cursor *c;
    st = cur_open(db, cl, f, &s, o->hint, o->snapshot, o->interrupt, &c, msg);
    if (st != NDB_OK) {
        prj_free(p);
        free(prjcopy);
        free(sortcopy);
        ndb_doc_filter_free(f);
        return st;
    }
    /* the cursor owns the filter, the projection and the spec copies */
    c->own_flt = true;
    c->prj = p;
    c->sort_owned = sortcopy;
    c->prj_owned = prjcopy;
    c->qhash = query_hash(o);
    /* {"_id": 1} over an index that answers the filter alone: no document is read */
    if (p != NULL && prj_id_only(p) && c->mode == M_IX && c->pl.exact && (st = ndb_doc_builder_new(&c->ids)) != NDB_OK) {
        ndb_doc_cursor_free(c);
        return st;
    }
    c->skip = o->skip;
    c->limit = o->limit;
    bool resumed = o->page_token && o->page_token_len;
    if (resumed)
        st = token_parse(c, o->page_token, o->page_token_len, msg);
    if (st == NDB_OK && c->mode == M_MEM) {
        uint64_t start = resumed ? c->mem_i : c->skip;
        c->topk = c->limit ? start + c->limit : 0; /* keep only what this page needs */
        st = cur_sort_all(c, msg);
        c->mem_i = 0;
        const uint8_t *d;
        size_t dl;
        for (int r = 1; st == NDB_OK && r > 0 && c->mem_i < start;) /* skip, or resume after a page */
            if ((r = cur_sorted_next(c, &d, &dl, msg)) < 0)
                st = (ndb_status)r;
        c->skip = 0;
    }
    if (st != NDB_OK) {
        ndb_doc_cursor_free(c);
        return st;
    }
    *out = c;
    return NDB_OK;
}

ndb_status ndb_doc_cursor_next(ndb_doc_cursor *c, const void **doc, size_t *len, ndb_errmsg *msg)
{
    *doc = NULL;
    *len = 0;
    if (c->mode == M_AGG)
        return c->agg_next(c, doc, len, msg);
    if (c->mode == M_DONE)
        return NDB_OK;
    if (c->limit && c->returned >= c->limit)
        return NDB_OK; /* the page is full; the source may have more (page token) */
    const uint8_t *d;
    size_t dl;
    if (c->mode == M_MEM) {
        int r = cur_sorted_next(c, &d, &dl, msg);
        if (r < 0)
            return (ndb_status)r;
        if (r == 0) {
            c->mode = M_DONE;
            return NDB_OK;
        }
    } else {
        for (;;) {
            int got = cur_src_next(c, &d, &dl, msg);
            if (got < 0)
                return (ndb_status)got;
            if (got == 0) {
                c->mode = M_DONE;
                return NDB_OK;
            }
            if (c->skipped < c->skip) {
                c->skipped++;
                continue;
            }
            break;
        }
    }
    c->returned++;
    c->ex.returned++;
    if (c->prj && c->ids == NULL) { /* a covered {_id} is the projection's answer already */
        ndb_doc_val root;
        ndb_doc_root(d, dl, &root);
        ndb_doc_builder_reset(c->out);
        prj_apply(c->prj, &root, c->out);
        ndb_status st = ndb_doc_builder_finish(c->out, doc, len);
        if (st != NDB_OK)
            return ndb_errmsg_set(msg, st, "projection failed: %s", ndb_strerror(st));
        return NDB_OK;
    }
    *doc = d;
    *len = dl;
    return NDB_OK;
}

ndb_status cur_resume(ndb_doc_cursor *c, const void *tok, size_t len, ndb_errmsg *msg)
{
    return token_parse(c, tok, len, msg);
}

ndb_status ndb_doc_cursor_page_token(ndb_doc_cursor *c, void **tok, size_t *len)
{
    *tok = NULL;
    *len = 0;
    if (c->mode == M_DONE || c->mode == M_AGG)
        return NDB_OK;
    if (c->mode == M_MEM && sortbuf_drained(&c->sb))
        return NDB_OK; /* the sort kept everything that matched, and it was all returned */
    dbuf t = {0};
    uint8_t h[10];
    h[0] = 1;
    h[1] = (uint8_t)(c->mode == M_MEM ? M_MEM : c->src_mode);
    wr64(h + 2, c->qhash);
    dbuf_put(&t, h, 10);
    if (c->mode == M_MEM) {
        dbuf_varint(&t, c->mem_i);
    } else {
        dbuf_varint(&t, (uint64_t)(c->range_i < 0 ? 0 : c->range_i));
        dbuf_put(&t, c->lastkey.data, c->lastkey.len);
    }
    if (t.oom) {
        dbuf_free(&t);
        return NDB_ENOMEM;
    }
    *tok = t.data;
    *len = t.len;
    return NDB_OK;
}

void ndb_doc_cursor_explain(const ndb_doc_cursor *c, ndb_doc_explain *out) { *out = c->ex; }

void ndb_doc_cursor_free(ndb_doc_cursor *c)
{
    if (c == NULL)
        return;
    if (c->agg)
        c->agg_free(c->agg);
    free(c->fetched);
    ndb_doc_builder_free(c->ids);
    if (c->it)
        ndb_kv_iter_free(c->it);
    if (c->snap_owned)
        ndb_kv_snapshot_release(c->db->kv, c->snap_owned);
    idx_set_unref(c->ix);
    plan_free(&c->pl);
    sortbuf_free(&c->sb);
    bmap_free(&c->seen);
    ndb_doc_builder_free(c->out);
    dbuf_free(&c->lastkey);
    prj_free(c->prj);
    if (c->own_flt)
        ndb_doc_filter_free(c->flt);
    free(c->sort_owned);
    free(c->prj_owned);
    free(c);
}

ndb_status ndb_doc_find_one(ndb_doc_db *db, const char *cname, const ndb_doc_find_opts *opts,
                            void **doc, size_t *len, ndb_errmsg *msg)
{
    ndb_doc_find_opts o = opts ? *opts : (ndb_doc_find_opts){0};
    o.limit = 1;
    ndb_doc_cursor *c;
    ndb_status st = ndb_doc_find(db, cname, &o, &c, msg);
    if (st != NDB_OK)
        return st;
    const void *d;
    size_t dl;
    st = ndb_doc_cursor_next(c, &d, &dl, msg);
    if (st == NDB_OK && d == NULL)
        st = ndb_errmsg_set(msg, NDB_ENOTFOUND, "no matching document");
    if (st == NDB_OK) {
        *doc = malloc(dl);
        if (*doc == NULL)
            st = NDB_ENOMEM;
        else {
            memcpy(*doc, d, dl);
            *len = dl;
        }
    }
    ndb_doc_cursor_free(c);
    return st;
}

ndb_status ndb_doc_count(ndb_doc_db *db, const char *cname, const void *filter, size_t flen,
                         const ndb_interrupt *intr, uint64_t *out, ndb_errmsg *msg)
{
    coll *cl;
    ndb_status st = db_get_coll(db, cname, &cl, msg);
    if (st == NDB_ENOTFOUND) {
        *out = 0;
        return NDB_OK;
    }
    if (st != NDB_OK)
        return st;
    ndb_doc_filter *f;
    if ((st = ndb_doc_filter_compile(filter, flen, &f, msg)) != NDB_OK)
        return st;
    if (f->root == NULL) {
        *out = __atomic_load_n(&cl->count, __ATOMIC_RELAXED);
        ndb_doc_filter_free(f);
        return NDB_OK;
    }
    ndb_doc_cursor *c;
    st = cur_open(db, cl, f, NULL, NULL, NULL, intr, &c, msg);
    if (st != NDB_OK) {
        ndb_doc_filter_free(f);
        return st;
    }
    c->own_flt = true;
    c->keys_only = c->pl.kind == PLAN_IXSCAN && c->pl.exact;
    uint64_t n = 0;
    const uint8_t *d;
    size_t dl;
    int got;
    while ((got = cur_src_next(c, &d, &dl, msg)) > 0)
        n++;
    ndb_doc_cursor_free(c);
    if (got < 0)
        return (ndb_status)got;
    *out = n;
    return NDB_OK;
}


/* --------------------------------------------------------------- indexes */
