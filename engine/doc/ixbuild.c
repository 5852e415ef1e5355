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

/* ---- progress: this handle's share of every namespace's counters */

static void stat_add(uint64_t *f, uint64_t d)
{
    __atomic_add_fetch(f, d, __ATOMIC_RELAXED);
}

void ndb_doc_build_stats_get(ndb_doc_db *db, ndb_doc_build_stats *out)
{
    ndb_doc_build_stats *s = &db->px->builds;
    out->running = __atomic_load_n(&s->running, __ATOMIC_RELAXED);
    out->docs_done = __atomic_load_n(&s->docs_done, __ATOMIC_RELAXED);
    out->docs_total = __atomic_load_n(&s->docs_total, __ATOMIC_RELAXED);
    out->entries = __atomic_load_n(&s->entries, __ATOMIC_RELAXED);
    out->ok = __atomic_load_n(&s->ok, __ATOMIC_RELAXED);
    out->failed = __atomic_load_n(&s->failed, __ATOMIC_RELAXED);
}

/* One index build (README, "Index builds"): d's entries for c's documents
 * as of snap, while c's writers note each document they write in the side
 * log (prefix side). */
typedef struct ixb {
    ndb_doc_db *db;
    coll *c;
    idx_def *d;
    uint64_t side;
    ndb_kv_snapshot *snap;
    uint64_t done, total, entries;
    uint64_t done_shown, entries_shown; /* what the shared counters have of them */
} ixb;

/* Counts one document read (and its n entries): the shared counters every
 * 4096 documents, the log every million. */
static void ixb_progress(ixb *b, int n)
{
    b->entries += (uint64_t)n;
    if (++b->done % 4096 == 0) {
        stat_add(&b->db->px->builds.docs_done, b->done - b->done_shown);
        stat_add(&b->db->px->builds.entries, b->entries - b->entries_shown);
        b->done_shown = b->done;
        b->entries_shown = b->entries;
    }
    if (b->done % 1000000 == 0)
        db_log(b->db, "index %s on %s: %llu of %llu documents read", b->d->name, b->c->name,
               (unsigned long long)b->done, (unsigned long long)b->total);
}

/* Calls doc(b, w, document, id) for every document of c in b's snapshot. */
static ndb_status ixb_scan(ixb *b, wctx *w,
                           ndb_status (*doc)(ixb *, wctx *, const ndb_doc_val *, const uint8_t *, size_t, ndb_errmsg *),
                           ndb_errmsg *msg)
{
    dbuf lo = {0}, hi = {0};
    ndb_kv_iter *it = NULL;
    ndb_status st = key_prefix_range(b->c->prefix, &lo, &hi) ? NDB_OK : NDB_ENOMEM;
    if (st == NDB_OK && (st = ndb_kv_iter_new(b->db->kv, b->snap, lo.data, lo.len, hi.data, hi.len, &it)) != NDB_OK)
        db_kvfail(b->db, msg, st, "scanning the collection");
    for (ndb_kv_iter_seek_first(it); st == NDB_OK && ndb_kv_iter_valid(it); ndb_kv_iter_next(it)) {
        size_t kl, vl;
        const uint8_t *k = ndb_kv_iter_key(it, &kl);
        const void *v = ndb_kv_iter_value(it, &vl);
        ndb_doc_val dv;
        if (!doc_root_obj(v, vl, &dv))
            st = ndb_errmsg_set(msg, NDB_ECORRUPT, "corrupt document while building %s", b->d->name);
        else
            st = doc(b, w, &dv, k + lo.len, kl - lo.len, msg);
    }
    if (st == NDB_OK && it && (st = ndb_kv_iter_status(it)) != NDB_OK)
        db_kvfail(b->db, msg, st, "scanning the collection");
    ndb_kv_iter_free(it);
    dbuf_free(&lo);
    dbuf_free(&hi);
    return st;
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
    if (st == NDB_OK && (st = ndb_kv_ingest_finish(g, msg)) != NDB_OK && st != NDB_EBUSY) /* EBUSY: its own message */
        db_kvfail(db, msg, st, "installing index tables");
    ndb_kv_ingest_free(g);
    dbuf_free(&prev);
    dbuf_free(&prevpay);
    return st;
}

typedef struct sorted_arg {
    ixb b;
    sortbuf sb;
} sorted_arg;

static ndb_status sorted_doc(ixb *b, wctx *w, const ndb_doc_val *dv, const uint8_t *id, size_t idlen,
                             ndb_errmsg *msg)
{
    sorted_arg *a = (sorted_arg *)b;
    bool multi;
    ndb_status st = idx_doc_keys(b->d, dv, (const char *)id, idlen, w->keys, &multi, msg);
    if (multi)
        b->d->multikey = true;
    for (int i = 0; i < w->keys->n && st == NDB_OK; i++) {
        dbuf key = {.data = w->keys->buf.data + w->keys->off[i], .len = w->keys->off[i + 1] - w->keys->off[i]};
        st = sortbuf_add(&a->sb, &key, b->d->unique ? id : (const uint8_t *)"", b->d->unique ? idlen : 0, msg);
    }
    ixb_progress(b, w->keys->n);
    return st;
}

/* An index build sorts runs of at most this much (less when agg_mem_bytes
 * is less): at 3M entries, 8 MiB runs and their merge took about 2.0 s,
 * runs of 16, 32 or 100 MiB 2.9 to 3.2 s (bench/README.md): a larger run
 * no longer fits the caches while it is sorted. */
#define IXB_RUN_BYTES ((size_t)8 << 20)

/* Fills d's prefix by sorting: every entry (key, and the _id for a unique
 * index) goes to the sort buffer, spilling sorted runs to the spill
 * directory, and the merged runs become tables at the kv's deepest level
 * (ndb_kv_ingest): no memtable insert, no compaction. Runs without the
 * writer lock. */
static ndb_status fill_sorted(sorted_arg *a, wctx *w, ndb_errmsg *msg)
{
    ixb *b = &a->b;
    size_t bound = b->db->opt.agg_mem_bytes < IXB_RUN_BYTES ? b->db->opt.agg_mem_bytes : IXB_RUN_BYTES;
    sortbuf_init(&a->sb, bound, 0, b->db->opt.spill_dir, NULL, "index build");
    ndb_status st = ixb_scan(b, w, sorted_doc, msg);
    if (st == NDB_OK && (st = sortbuf_finish(&a->sb, msg)) == NDB_OK) {
        db_log(b->db, "index %s on %s: %llu entries sorted (%llu MiB through spill files); writing its tables",
               b->d->name, b->c->name, (unsigned long long)b->entries,
               (unsigned long long)(a->sb.spilled_bytes >> 20));
        st = ix_ingest(b->db, &a->sb, b->d, msg);
    }
    sortbuf_free(&a->sb);
    return st;
}

static ndb_status batched_doc(ixb *b, wctx *w, const ndb_doc_val *dv, const uint8_t *id, size_t idlen,
                              ndb_errmsg *msg)
{
    ndb_status st = idx_add(w, dv, id, idlen, msg);
    ixb_progress(b, w->keys->n);
    if (st == NDB_OK && ndb_kv_batch_count(w->b) >= DOC_BUILD_CHUNK) {
        if ((st = ndb_kv_write(b->db->kv, w->b)) != NDB_OK)
            db_kvfail(b->db, msg, st, "writing index entries");
        ndb_kv_batch_clear(w->b);
    }
    return st;
}

/* Fills d's prefix in batches of DOC_BUILD_CHUNK entries through the
 * memtable (no spill directory to sort through), holding the writer lock:
 * w->ix is d alone. */
static ndb_status fill_batched(ixb *b, wctx *w, ndb_errmsg *msg)
{
    ndb_status st = ixb_scan(b, w, batched_doc, msg);
    if (st == NDB_OK && ndb_kv_batch_count(w->b) > 0 && (st = ndb_kv_write(b->db->kv, w->b)) != NDB_OK)
        db_kvfail(b->db, msg, st, "writing index entries");
    ndb_kv_batch_clear(w->b);
    /* a large build's entries went into the memtable in index order, not
     * insertion order: write them out so scans read them sequentially from
     * an SSTable (and WAL replay after a crash stays short) */
    if (st == NDB_OK && b->done >= DOC_BUILD_CHUNK) {
        ndb_status fst = ndb_kv_flush(b->db->kv);
        if (fst != NDB_OK)
            db_log(b->db, "flush after building %s: %s", b->d->name, ndb_strerror(fst));
    }
    return st;
}

/* Brings d's entries up to date for every document the side log names,
 * holding the writer lock (no writer runs, and every write noted is
 * visible): first each one's entries as of the snapshot go, then its
 * current entries come (unique checks included) and its side-log key goes.
 * The snapshot's entries were all written before, so these later writes
 * win. In batches of DOC_BUILD_CHUNK; the last stays in w->b for the
 * publish. w->ix is d alone. */
static ndb_status drain(ixb *b, wctx *w, ndb_errmsg *msg)
{
    dbuf lo = {0}, hi = {0};
    ndb_status st = key_prefix_range(b->side, &lo, &hi) ? wctx_settle(w) : NDB_ENOMEM;
    uint64_t n = 0;
    for (int pass = 0; pass < 2 && st == NDB_OK; pass++) {
        ndb_kv_iter *it;
        if ((st = ndb_kv_iter_new(b->db->kv, NULL, lo.data, lo.len, hi.data, hi.len, &it)) != NDB_OK) {
            db_kvfail(b->db, msg, st, "reading the index build's side log");
            break;
        }
        for (ndb_kv_iter_seek_first(it); st == NDB_OK && ndb_kv_iter_valid(it); ndb_kv_iter_next(it)) {
            size_t kl, vl;
            const uint8_t *k = ndb_kv_iter_key(it, &kl), *id = k + lo.len;
            size_t idlen = kl - lo.len;
            void *v;
            key_doc(&w->key, b->c, id, idlen);
            if (w->key.oom) {
                st = NDB_ENOMEM;
                break;
            }
            st = ndb_kv_get(b->db->kv, pass == 0 ? b->snap : NULL, w->key.data, w->key.len, &v, &vl);
            if (st == NDB_OK) {
                ndb_doc_val dv;
                if (!doc_root_obj(v, vl, &dv))
                    st = ndb_errmsg_set(msg, NDB_ECORRUPT, "corrupt document while building %s", b->d->name);
                else
                    st = pass == 0 ? idx_remove(w, &dv, id, idlen) : idx_add(w, &dv, id, idlen, msg);
                free(v);
            } else if (st == NDB_ENOTFOUND) { /* not there yet / not any more */
                st = NDB_OK;
            } else {
                db_kvfail(b->db, msg, st, "reading a document written during the index build");
            }
            if (st == NDB_OK && pass == 1)
                st = ndb_kv_batch_delete(w->b, k, kl);
            if (st == NDB_OK && ndb_kv_batch_count(w->b) >= DOC_BUILD_CHUNK) {
                if ((st = ndb_kv_write(b->db->kv, w->b)) != NDB_OK)
                    db_kvfail(b->db, msg, st, "writing index entries");
                ndb_kv_batch_clear(w->b);
            }
            n += pass;
        }
        if (st == NDB_OK && (st = ndb_kv_iter_status(it)) != NDB_OK)
            db_kvfail(b->db, msg, st, "reading the index build's side log");
        ndb_kv_iter_free(it);
    }
    if (st == NDB_OK && n > 0)
        db_log(b->db, "index %s on %s: %llu documents written during the build brought up to date", b->d->name,
               b->c->name, (unsigned long long)n);
    dbuf_free(&lo);
    dbuf_free(&hi);
    return st;
}

/* Publishes c's index set: w->ix's definitions with the one at `at`
 * replaced by d (at == w->ix->n: d added), in w->b with what it holds. The
 * catalog names an index only once every entry is written. */
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

/* Builds d (its prefix new and empty) over c's documents and publishes it
 * at `at` of c's index set, or after the others when at < 0. w holds c's
 * writer lock and c->buildlock; the writer lock is released on return.
 * With a spill directory it is let go while the documents are read and
 * sorted, and writers go on (README, "Index builds"). On failure nothing
 * names d and its entries are reclaimed. */
static ndb_status ix_build(ndb_doc_db *db, wctx *w, coll *c, idx_def *d, int at, ndb_errmsg *msg)
{
    sorted_arg a = {.b = {.db = db, .c = c, .d = d}};
    ixb *b = &a.b;
    idx_set one = {.refs = 1, .n = 1, .defs = d}, *saved = w->ix;
    bool unlocked = db->opt.spill_dir != NULL;
    d->multikey = false;
    /* the marker is durable before any entry is written: a crash from here
     * on leaves it, and the next open reclaims both prefixes */
    ndb_status st = cat_alloc_prefixes(db, 1, &b->side, msg);
    ndb_kv_batch_clear(w->b);
    if (st == NDB_OK && (st = cat_build_mark(w->b, d->prefix, b->side)) == NDB_OK &&
        (st = ndb_kv_write(db->kv, w->b)) != NDB_OK)
        db_kvfail(db, msg, st, "recording the index build");
    ndb_kv_batch_clear(w->b);
    if (st == NDB_OK && (st = wctx_settle(w)) != NDB_OK)
        db_kvfail(db, msg, st, "waiting for the collection's earlier writes");
    if (st == NDB_OK && (st = ndb_kv_snapshot_acquire(db->kv, &b->snap)) != NDB_OK)
        db_kvfail(db, msg, st, "taking a snapshot");
    if (st == NDB_OK) {
        c->build_side = b->side; /* from the next writer on, every document written is noted */
        b->total = c->count;
        stat_add(&db->px->builds.running, 1);
        stat_add(&db->px->builds.docs_total, b->total);
        db_log(db, "building index %s on %s (%llu documents%s)", d->name, c->name, (unsigned long long)b->total,
               unlocked ? ", sorting; writes go on" : "");
        w->ix = &one;
        if (unlocked) {
            pthread_mutex_unlock(&c->wlock);
            st = fill_sorted(&a, w, msg);
            pthread_mutex_lock(&c->wlock);
            if (st == NDB_OK && c->dropped)
                st = ndb_errmsg_set(msg, NDB_ENOTFOUND, "collection '%s' was dropped", c->name);
        } else {
            st = fill_batched(b, w, msg);
        }
        if (st == NDB_OK)
            st = drain(b, w, msg);
        if (w->mk[0])
            d->multikey = true;
        idx_set_unref(saved); /* another index may have been dropped meanwhile */
        w->ix = saved = coll_ix(c);
        if (st == NDB_OK && (st = cat_build_mark(w->b, d->prefix, 0)) == NDB_OK)
            st = ix_publish(db, w, c, at < 0 ? w->ix->n : at, d, msg);
        c->build_side = 0;
        stat_add(&db->px->builds.running, (uint64_t)-1);
        stat_add(&db->px->builds.docs_done, -b->done_shown);
        stat_add(&db->px->builds.docs_total, -b->total);
        stat_add(&db->px->builds.entries, -b->entries_shown);
        ndb_kv_snapshot_release(db->kv, b->snap);
    }
    w->ix = saved;
    pthread_mutex_unlock(&c->wlock);
    stat_add(st == NDB_OK ? &db->px->builds.ok : &db->px->builds.failed, 1);
    if (st == NDB_OK) {
        db_log(db, "index %s on %s built: %llu documents, %llu entries", d->name, c->name,
               (unsigned long long)b->done, (unsigned long long)b->entries);
        return st;
    }
    /* reclaim the partial entries and the side log, then the marker: a
     * crash before that reclaims them at the next open */
    db_log(db, "building index %s on %s failed: %s", d->name, c->name,
           msg && msg->text[0] ? msg->text : ndb_strerror(st));
    ndb_kv_batch_clear(w->b);
    if (cat_delete_prefix(db, d->prefix) == NDB_OK && (b->side == 0 || cat_delete_prefix(db, b->side) == NDB_OK) &&
        cat_build_mark(w->b, d->prefix, 0) == NDB_OK)
        ndb_kv_write(db->kv, w->b);
    return st;
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
    pthread_mutex_lock(&c->buildlock);
    wctx w;
    if ((st = wctx_begin(&w, db, c, NULL, msg)) != NDB_OK) {
        pthread_mutex_unlock(&c->buildlock);
        return st;
    }
    for (int i = 0; i < w.ix->n; i++) {
        if (strcmp(w.ix->defs[i].name, d.name) == 0)
            st = ndb_errmsg_set(msg, NDB_EEXIST, "index %s already exists on %s", d.name, cname);
        else if (same_fields(&w.ix->defs[i], &d))
            st = ndb_errmsg_set(msg, NDB_EEXIST, "index %s already covers these fields",
                                w.ix->defs[i].name);
    }
    if (st == NDB_OK && w.ix->n >= 64)
        st = ndb_errmsg_set(msg, NDB_ELIMIT, "a collection has at most 64 indexes");
    if (st == NDB_OK)
        st = ix_build(db, &w, c, &d, -1, msg);
    else
        pthread_mutex_unlock(&c->wlock);
    pthread_mutex_unlock(&c->buildlock);
    wctx_free(&w);
    return st;
}

/* Rebuilds c's index `at` in the current key encoding under a new prefix,
 * then reclaims the old entries. */
static ndb_status ix_rebuild(ndb_doc_db *db, coll *c, int at, ndb_errmsg *msg)
{
    pthread_mutex_lock(&c->buildlock);
    wctx w;
    ndb_status st = wctx_begin(&w, db, c, NULL, msg);
    if (st != NDB_OK) {
        pthread_mutex_unlock(&c->buildlock);
        return st;
    }
    idx_def d = w.ix->defs[at];
    uint64_t old = d.prefix;
    d.kver = KENC_VERSION;
    db_log(db, "index %s on %s: key encoding %d -> %d, rebuilding", d.name, c->name, w.ix->defs[at].kver,
           KENC_VERSION);
    if ((st = cat_alloc_prefixes(db, 1, &d.prefix, msg)) == NDB_OK)
        st = ix_build(db, &w, c, &d, at, msg);
    else
        pthread_mutex_unlock(&c->wlock);
    if (st == NDB_OK)
        cat_delete_prefix(db, old);
    pthread_mutex_unlock(&c->buildlock);
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
