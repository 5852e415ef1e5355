/*
 * ixbuild.c — secondary index definitions: create (build over existing
 * documents in bounded batches, then publish in the catalog), drop, list.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "doc_int.h"

static ndb_status parse_index_spec(const void *spec, size_t len, const char *name,
                                   const ndb_doc_index_opts *opts, idx_def *d, ndb_errmsg *msg)
{
    memset(d, 0, sizeof *d);
    ndb_doc_val sv;
    if (ndb_doc_validate(spec, len, NULL) != NDB_OK || !doc_root_obj(spec, len, &sv) ||
        sv.u.c.count == 0)
        return ndb_errmsg_set(msg, NDB_EINVAL, "index spec must be a non-empty object");
    if (sv.u.c.count > 4)
        return ndb_errmsg_set(msg, NDB_EINVAL, "an index has at most 4 fields");
    ndb_doc_iter it;
    ndb_doc_iter_init(&it, &sv);
    const char *k;
    size_t kl;
    ndb_doc_val e;
    char gen[128] = "";
    while (ndb_doc_iter_next(&it, &k, &kl, &e)) {
        if (kl == 0 || kl >= sizeof d->field[0] || k[0] == '$' || memchr(k, 0, kl))
            return ndb_errmsg_set(msg, NDB_EINVAL, "bad index field '%.*s'", (int)(kl > 64 ? 64 : kl), k);
        if (e.type != NDB_DOC_INT || (e.u.i != 1 && e.u.i != -1))
            return ndb_errmsg_set(msg, NDB_EINVAL, "index field %.*s must be 1 or -1", (int)kl, k);
        memcpy(d->field[d->nfields], k, kl);
        d->field[d->nfields][kl] = 0;
        d->desc[d->nfields] = e.u.i == -1;
        size_t gl = strlen(gen);
        snprintf(gen + gl, sizeof gen - gl, "%s%.*s_%d", gl ? "_" : "", (int)kl, k, (int)e.u.i);
        d->nfields++;
    }
    if (!idx_def_finish(d))
        return ndb_errmsg_set(msg, NDB_EINVAL, "bad index field path");
    const char *nm = name && *name ? name : gen;
    if (strlen(nm) >= sizeof d->name)
        return ndb_errmsg_set(msg, NDB_EINVAL, "index name too long");
    snprintf(d->name, sizeof d->name, "%s", nm);
    if (opts != NULL && opts->ttl) {
        if (d->nfields != 1) /* as MongoDB: a compound index cannot be a TTL index */
            return ndb_errmsg_set(msg, NDB_EINVAL, "a TTL index has one field, not %d", d->nfields);
        if (strcmp(d->field[0], "_id") == 0)
            return ndb_errmsg_set(msg, NDB_EINVAL, "_id is a string: it cannot expire");
        if (opts->expire_after_seconds < 0 || opts->expire_after_seconds > NDB_DOC_MAX_TTL)
            return ndb_errmsg_set(msg, NDB_EINVAL, "expire_after_seconds must be 0..%lld, not %lld",
                                  (long long)NDB_DOC_MAX_TTL, (long long)opts->expire_after_seconds);
        d->ttl = true;
        d->expire_s = opts->expire_after_seconds;
    }
    d->unique = opts != NULL && opts->unique;
    d->kver = KENC_VERSION;
    return NDB_OK;
}

static bool same_fields(const idx_def *a, const idx_def *b)
{
    if (a->nfields != b->nfields)
        return false;
    for (int i = 0; i < a->nfields; i++)
        if (strcmp(a->field[i], b->field[i]) != 0 || a->desc[i] != b->desc[i])
            return false;
    return true;
}

/* Hands the sorted entries to the kv's bulk ingestion, dropping a
 * multikey document's repeated entry and refusing a unique index's
 * duplicate key. */
static ndb_status ix_ingest(ndb_doc_db *db, sortbuf *sb, const idx_def *d, ndb_errmsg *msg)
{
    ndb_kv_ingest *g;
    ndb_status st = ndb_kv_ingest_begin(db->kv, &g);
    if (st != NDB_OK)
        return st;
    dbuf prev = {0}, prevpay = {0};
    bool any = false;
    const uint8_t *k, *pay;
    size_t kl, pl;
    int got;
    while ((got = sortbuf_next(sb, &k, &kl, &pay, &pl, msg)) > 0) {
        if (any && prev.len == kl && memcmp(prev.data, k, kl) == 0) {
            if (prevpay.len == pl && memcmp(prevpay.data, pay, pl) == 0)
                continue; /* one document's array holds the value twice */
            st = ndb_errmsg_set(msg, NDB_EEXIST, "duplicate key in unique index %s (document _id %.*s)", d->name,
                                (int)(pl > 64 ? 64 : pl), (const char *)pay);
            break;
        }
        if ((st = ndb_kv_ingest_add(g, k, kl, pay, pl)) != NDB_OK) {
            db_kvfail(db, msg, st, "writing index tables");
            break;
        }
        prev.len = prevpay.len = 0;
        if (!dbuf_put(&prev, k, kl) || !dbuf_put(&prevpay, pay, pl)) {
            st = NDB_ENOMEM;
            break;
        }
        any = true;
    }
    if (got < 0)
        st = (ndb_status)got;
    if (st == NDB_OK && (st = ndb_kv_ingest_finish(g, msg)) != NDB_OK && st != NDB_EBUSY)
        db_kvfail(db, msg, st, "installing index tables");
    ndb_kv_ingest_free(g);
    dbuf_free(&prev);
    dbuf_free(&prevpay);
    return st;
}

/* ix_build by sorting: every entry (key, and the _id for a unique index) goes
 * to the sort buffer, spilling to db's spill directory beyond
 * agg_mem_bytes, and the sorted run becomes tables at the kv's deepest level
 * (ndb_kv_ingest): no memtable insert, no compaction. */
static ndb_status ix_build_sorted(ndb_doc_db *db, wctx *w, coll *c, idx_def *d, ndb_errmsg *msg)
{
    dbuf lo = {0}, hi = {0};
    key_prefix_range(c->prefix, &lo, &hi);
    ndb_kv_iter *it = NULL;
    ndb_status st = wctx_settle(w);
    if (st != NDB_OK)
        db_kvfail(db, msg, st, "waiting for the collection's earlier writes");
    else if ((st = ndb_kv_iter_new(db->kv, NULL, lo.data, lo.len, hi.data, hi.len, &it)) != NDB_OK)
        db_kvfail(db, msg, st, "scanning the collection");
    sortbuf sb;
    sortbuf_init(&sb, db->opt.agg_mem_bytes, 0, db->opt.spill_dir, NULL, "index build");
    uint64_t done = 0;
    db_log(db, "building index %s on %s (%llu documents, sorting)", d->name, c->name, (unsigned long long)c->count);
    for (ndb_kv_iter_seek_first(it); st == NDB_OK && ndb_kv_iter_valid(it); ndb_kv_iter_next(it)) {
        size_t kl, vl;
        const uint8_t *k = ndb_kv_iter_key(it, &kl);
        const void *v = ndb_kv_iter_value(it, &vl);
        ndb_doc_val dv;
        if (!doc_root_obj(v, vl, &dv)) {
            st = ndb_errmsg_set(msg, NDB_ECORRUPT, "corrupt document while building %s", d->name);
            break;
        }
        const char *id = (const char *)k + lo.len;
        size_t idlen = kl - lo.len;
        bool multi;
        if ((st = idx_doc_keys(d, &dv, id, idlen, w->keys, &multi, msg)) != NDB_OK)
            break;
        if (multi)
            d->multikey = true;
        for (int i = 0; i < w->keys->n && st == NDB_OK; i++) {
            dbuf key = {.data = w->keys->buf.data + w->keys->off[i], .len = w->keys->off[i + 1] - w->keys->off[i]};
            st = sortbuf_add(&sb, &key, d->unique ? id : "", d->unique ? idlen : 0, msg);
        }
        if (++done % 1000000 == 0)
            db_log(db, "index %s on %s: %llu of %llu documents read", d->name, c->name, (unsigned long long)done,
                   (unsigned long long)c->count);
    }
    if (st == NDB_OK && it && (st = ndb_kv_iter_status(it)) != NDB_OK)
        db_kvfail(db, msg, st, "scanning the collection");
    if (it)
        ndb_kv_iter_free(it);
    dbuf_free(&lo);
    dbuf_free(&hi);
    if (st == NDB_OK && (st = sortbuf_finish(&sb, msg)) == NDB_OK) {
        if (sb.spilled_bytes)
            db_log(db, "index %s on %s: sorted, %llu MiB through spill files; writing its tables", d->name,
                   c->name, (unsigned long long)(sb.spilled_bytes >> 20));
        st = ix_ingest(db, &sb, d, msg);
    }
    sortbuf_free(&sb);
    if (st == NDB_OK)
        db_log(db, "index %s on %s built: %llu documents", d->name, c->name, (unsigned long long)done);
    return st;
}

/* Writes d's entries for every document of c (w holds c's writer lock),
 * setting d->multikey. Nothing names d yet. With a spill directory the
 * entries are sorted and ingested (ix_build_sorted); without one, or when
 * the kv refuses the ingestion, they are written in bounded batches. */
static ndb_status ix_build(ndb_doc_db *db, wctx *w, coll *c, idx_def *d, ndb_errmsg *msg)
{
    if (db->opt.spill_dir != NULL) {
        ndb_status st = ix_build_sorted(db, w, c, d, msg);
        if (st != NDB_EBUSY)
            return st;
        db_log(db, "index %s on %s: its key range was not empty; writing the entries in batches instead", d->name,
               c->name);
        d->multikey = false;
    }
    idx_set one = {.refs = 1, .n = 1, .defs = d};
    idx_set *saved = w->ix;
    w->ix = &one;
    dbuf lo = {0}, hi = {0};
    key_prefix_range(c->prefix, &lo, &hi);
    ndb_kv_iter *it = NULL;
    ndb_status st = wctx_settle(w);
    if (st != NDB_OK)
        db_kvfail(db, msg, st, "waiting for the collection's earlier writes");
    else
        st = ndb_kv_iter_new(db->kv, NULL, lo.data, lo.len, hi.data, hi.len, &it);
    uint64_t done = 0;
    db_log(db, "building index %s on %s (%llu documents)", d->name, c->name,
           (unsigned long long)c->count);
    for (ndb_kv_iter_seek_first(it); st == NDB_OK && ndb_kv_iter_valid(it); ndb_kv_iter_next(it)) {
        size_t kl, vl;
        const uint8_t *k = ndb_kv_iter_key(it, &kl);
        const void *v = ndb_kv_iter_value(it, &vl);
        ndb_doc_val dv;
        if (!doc_root_obj(v, vl, &dv)) {
            st = ndb_errmsg_set(msg, NDB_ECORRUPT, "corrupt document while building %s", d->name);
            break;
        }
        size_t pl = lo.len;
        st = idx_add(w, &dv, k + pl, kl - pl, msg);
        if (w->mk[0])
            d->multikey = true;
        if (st == NDB_OK && ndb_kv_batch_count(w->b) >= DOC_BUILD_CHUNK) {
            if ((st = ndb_kv_write(db->kv, w->b)) != NDB_OK)
                db_kvfail(db, msg, st, "writing index entries");
            ndb_kv_batch_clear(w->b);
        }
        if (++done % 100000 == 0)
            db_log(db, "index %s on %s: %llu of %llu documents", d->name, c->name,
                   (unsigned long long)done, (unsigned long long)c->count);
    }
    if (st == NDB_OK && it)
        st = ndb_kv_iter_status(it);
    if (it)
        ndb_kv_iter_free(it);
    w->ix = saved;
    dbuf_free(&lo);
    dbuf_free(&hi);
    if (st == NDB_OK) {
        db_log(db, "index %s on %s built: %llu documents", d->name, c->name, (unsigned long long)done);
        /* a large build's entries went into the memtable in index order, not
         * insertion order: write them out so scans read them sequentially
         * from an SSTable (and WAL replay after a crash stays short) */
        if (done >= DOC_BUILD_CHUNK) {
            ndb_status fst = ndb_kv_flush(db->kv);
            if (fst != NDB_OK)
                db_log(db, "flush after building %s: %s", d->name, ndb_strerror(fst));
        }
    }
    return st;
}

/* Publishes c's index set: w->ix's definitions with the one at `at`
 * replaced by d (at == w->ix->n: d added). The catalog names an index only
 * once every entry is written. */
static ndb_status ix_publish(ndb_doc_db *db, wctx *w, coll *c, int at, const idx_def *d, ndb_errmsg *msg)
{
    int n = at == w->ix->n ? w->ix->n + 1 : w->ix->n;
    idx_set *ns = calloc(1, sizeof *ns);
    if (ns == NULL || (ns->defs = calloc((size_t)n, sizeof *ns->defs)) == NULL) {
        free(ns);
        return NDB_ENOMEM;
    }
    ns->refs = 1;
    ns->n = n;
    if (w->ix->n)
        memcpy(ns->defs, w->ix->defs, (size_t)w->ix->n * sizeof *ns->defs);
    ns->defs[at] = *d;
    for (int i = 0; i < ns->n; i++)
        idx_def_finish(&ns->defs[i]);
    ndb_status st = cat_write_meta(db, w->b, c, ns);
    if (st == NDB_OK && (st = ndb_kv_write(db->kv, w->b)) != NDB_OK)
        db_kvfail(db, msg, st, "publishing index");
    if (st != NDB_OK) {
        idx_set_unref(ns);
        return st;
    }
    coll_set_ix(c, ns);
    return NDB_OK;
}

ndb_status ndb_doc_create_index(ndb_doc_db *db, const char *cname, const char *name,
                                const void *spec, size_t len, const ndb_doc_index_opts *opts, ndb_errmsg *msg)
{
    idx_def d;
    ndb_status st = parse_index_spec(spec, len, name, opts, &d, msg);
    if (st != NDB_OK)
        return st;
    coll *c;
    if ((st = cat_coll_open(db, cname, true, false, &c, msg)) != NDB_OK)
        return st;
    if ((st = cat_alloc_prefixes(db, 1, &d.prefix, msg)) != NDB_OK)
        return st;
    wctx w;
    if ((st = wctx_begin(&w, db, c, NULL, msg)) != NDB_OK)
        return st;
    for (int i = 0; i < w.ix->n; i++) {
        if (strcmp(w.ix->defs[i].name, d.name) == 0)
            st = ndb_errmsg_set(msg, NDB_EEXIST, "index %s already exists on %s", d.name, cname);
        else if (same_fields(&w.ix->defs[i], &d))
            st = ndb_errmsg_set(msg, NDB_EEXIST, "index %s already covers these fields",
                                w.ix->defs[i].name);
    }
    if (st == NDB_OK && w.ix->n >= 64)
        st = ndb_errmsg_set(msg, NDB_ELIMIT, "a collection has at most 64 indexes");
    if (st == NDB_OK && (st = ix_build(db, &w, c, &d, msg)) == NDB_OK)
        st = ix_publish(db, &w, c, w.ix->n, &d, msg);
    if (st != NDB_OK)
        cat_delete_prefix(db, d.prefix); /* reclaim the partial entries */
    pthread_mutex_unlock(&c->wlock);
    wctx_free(&w);
    return st;
}

/* Rebuilds c's index `at` in the current key encoding under a new prefix,
 * then reclaims the old entries. */
static ndb_status ix_rebuild(ndb_doc_db *db, coll *c, int at, ndb_errmsg *msg)
{
    wctx w;
    ndb_status st = wctx_begin(&w, db, c, NULL, msg);
    if (st != NDB_OK)
        return st;
    idx_def d = w.ix->defs[at];
    uint64_t old = d.prefix;
    d.multikey = false;
    d.kver = KENC_VERSION;
    db_log(db, "index %s on %s: key encoding %d -> %d, rebuilding", d.name, c->name, w.ix->defs[at].kver,
           KENC_VERSION);
    if ((st = cat_alloc_prefixes(db, 1, &d.prefix, msg)) == NDB_OK &&
        (st = ix_build(db, &w, c, &d, msg)) == NDB_OK)
        st = ix_publish(db, &w, c, at, &d, msg);
    if (st == NDB_OK)
        cat_delete_prefix(db, old);
    else if (d.prefix != old)
        cat_delete_prefix(db, d.prefix);
    pthread_mutex_unlock(&c->wlock);
    wctx_free(&w);
    return st;
}

ndb_status ix_upgrade(ndb_doc_db *db, ndb_errmsg *msg)
{
    for (size_t i = 0; i < db->ncolls; i++) {
        coll *c = db->colls[i];
        for (int at = 0;; at++) {
            idx_set *s = coll_ix(c);
            bool more = at < s->n, old = more && s->defs[at].kver < KENC_VERSION;
            idx_set_unref(s);
            if (!more)
                break;
            ndb_status st = old ? ix_rebuild(db, c, at, msg) : NDB_OK;
            if (st != NDB_OK)
                return st;
        }
    }
    return NDB_OK;
}

ndb_status ndb_doc_drop_index(ndb_doc_db *db, const char *cname, const char *name, ndb_errmsg *msg)
{
    coll *c;
    ndb_status st = db_get_coll(db, cname, &c, msg);
    if (st != NDB_OK)
        return st;
    wctx w;
    if ((st = wctx_begin(&w, db, c, NULL, msg)) != NDB_OK)
        return st;
    int at = -1;
    for (int i = 0; i < w.ix->n; i++)
        if (strcmp(w.ix->defs[i].name, name) == 0)
            at = i;
    idx_set *ns = NULL;
    uint64_t prefix = 0;
    if (at < 0) {
        st = ndb_errmsg_set(msg, NDB_ENOTFOUND, "no index %s on %s", name, cname);
    } else {
        prefix = w.ix->defs[at].prefix;
        ns = calloc(1, sizeof *ns);
        if (ns == NULL || (ns->defs = calloc((size_t)w.ix->n, sizeof *ns->defs)) == NULL) {
            free(ns);
            ns = NULL;
            st = NDB_ENOMEM;
        } else {
            ns->refs = 1;
            for (int i = 0; i < w.ix->n; i++)
                if (i != at)
                    ns->defs[ns->n++] = w.ix->defs[i];
            for (int i = 0; i < ns->n; i++)
                idx_def_finish(&ns->defs[i]);
            st = cat_write_meta(db, w.b, c, ns);
            if (st == NDB_OK && (st = ndb_kv_write(db->kv, w.b)) != NDB_OK)
                db_kvfail(db, msg, st, "dropping index");
        }
    }
    if (st == NDB_OK) {
        coll_set_ix(c, ns);
        cat_delete_prefix(db, prefix);
    } else {
        idx_set_unref(ns);
    }
    pthread_mutex_unlock(&c->wlock);
    wctx_free(&w);
    return st;
}

ndb_status ndb_doc_list_indexes(ndb_doc_db *db, const char *cname, ndb_doc_index_info **out,
                                size_t *n, ndb_errmsg *msg)
{
    coll *c;
    ndb_status st = db_get_coll(db, cname, &c, msg);
    if (st != NDB_OK)
        return st;
    idx_set *s = coll_ix(c);
    ndb_doc_index_info *a = calloc(s->n ? (size_t)s->n : 1, sizeof *a);
    if (a == NULL) {
        idx_set_unref(s);
        return NDB_ENOMEM;
    }
    for (int i = 0; i < s->n; i++) {
        const idx_def *d = &s->defs[i];
        snprintf(a[i].name, sizeof a[i].name, "%s", d->name);
        for (int f = 0; f < d->nfields; f++) {
            size_t l = strlen(a[i].fields);
            snprintf(a[i].fields + l, sizeof a[i].fields - l, "%s%s:%d", f ? "," : "", d->field[f],
                     d->desc[f] ? -1 : 1);
        }
        a[i].unique = d->unique;
        a[i].multikey = d->multikey;
        a[i].ttl = d->ttl;
        a[i].expire_after_seconds = d->ttl ? d->expire_s : 0;
    }
    *n = (size_t)s->n;
    idx_set_unref(s);
    *out = a;
    return NDB_OK;
}
