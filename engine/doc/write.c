/*
 * write.c — document writes: each request (insert, update, update-many,
 * delete, delete-many) is one atomic kv batch holding the documents, their
 * index entries and the collection's stats, built and committed while the
 * collection's writer lock is held (so unique checks and read-modify-write
 * updates are exact). Generated ids and timestamps.
 */
#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "doc_int.h"

/* --------------------------------------------------------- ids and time */

int64_t doc_now_ms(const ndb_doc_db *db)
{
    if (db->fixed_ms != 0)
        return db->fixed_ms;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void ndb_doc_set_clock(ndb_doc_db *db, int64_t wall_ms, uint64_t id_prefix)
{
    if (wall_ms != 0 && id_prefix != db->fixed_prefix) { /* the counter goes on across calls with the same prefix */
        db->fixed_counter = 0;
        db->fixed_prefix = id_prefix;
    }
    db->fixed_ms = wall_ms;
}

/* An ObjectId: 4 bytes of seconds, 5 of this process's random value, a
 * 3-byte counter; under a fixed clock, its seconds, the caller's prefix
 * and a counter from 0. */
static void gen_id(ndb_doc_db *db, char out[25])
{
    static const char hex[] = "0123456789abcdef";
    uint8_t raw[12];
    uint32_t secs, ctr;
    if (db->fixed_ms != 0) {
        secs = (uint32_t)(db->fixed_ms / 1000);
        ctr = db->fixed_counter++ & 0xFFFFFF;
        for (int i = 0; i < 5; i++)
            raw[4 + i] = (uint8_t)(db->fixed_prefix >> (8 * (4 - i)));
    } else {
        secs = (uint32_t)time(NULL);
        ctr = __atomic_fetch_add(&db->id_counter, 1, __ATOMIC_RELAXED) & 0xFFFFFF;
        memcpy(raw + 4, db->id_rand, 5);
    }
    raw[0] = (uint8_t)(secs >> 24);
    raw[1] = (uint8_t)(secs >> 16);
    raw[2] = (uint8_t)(secs >> 8);
    raw[3] = (uint8_t)secs;
    raw[9] = (uint8_t)(ctr >> 16);
    raw[10] = (uint8_t)(ctr >> 8);
    raw[11] = (uint8_t)ctr;
    for (int i = 0; i < 12; i++) {
        out[2 * i] = hex[raw[i] >> 4];
        out[2 * i + 1] = hex[raw[i] & 15];
    }
    out[24] = 0;
}

static void now_iso(const ndb_doc_db *db, char out[64])
{
    int64_t ms = doc_now_ms(db);
    time_t secs = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&secs, &tm);
    snprintf(out, 64, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1,
             tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(ms % 1000));
}

/* ------------------------------------------------------ write requests */


static ndb_status wput(wctx *w, const void *k, size_t kl, const void *v, size_t vl)
{
    ndb_status st = ndb_kv_batch_put(w->b, k, kl, v, vl);
    if (st == NDB_ETOOBIG || st == NDB_ELIMIT)
        w->batch_full = true;
    return st;
}

static ndb_status wdel(wctx *w, const void *k, size_t kl)
{
    ndb_status st = ndb_kv_batch_delete(w->b, k, kl);
    if (st == NDB_ETOOBIG || st == NDB_ELIMIT)
        w->batch_full = true;
    return st;
}

/* The message for a request whose writes do not fit one atomic batch. */
static ndb_status batch_full_msg(const wctx *w, ndb_status st, ndb_errmsg *msg)
{
    if (w->batch_full)
        return ndb_errmsg_set(msg, NDB_ELIMIT,
                              "the request's writes exceed one atomic batch (256 MiB); split it "
                              "or narrow the filter");
    return st;
}

ndb_status wctx_init(wctx *w, ndb_doc_db *db, coll *c)
{
    memset(w, 0, sizeof *w);
    w->db = db;
    w->c = c;
    now_iso(db, w->now);
    w->keys = calloc(1, sizeof *w->keys);
    if (w->keys == NULL || ndb_kv_batch_new(&w->b) != NDB_OK ||
        ndb_doc_builder_new(&w->b1) != NDB_OK || ndb_doc_builder_new(&w->b2) != NDB_OK)
        return NDB_ENOMEM;
    ndb_doc_builder_set_limit(w->b1, db->opt.max_doc_bytes);
    ndb_doc_builder_set_limit(w->b2, db->opt.max_doc_bytes);
    if (db->chg != NULL && ndb_doc_builder_new(&w->bchg) != NDB_OK)
        return NDB_ENOMEM;
    return NDB_OK;
}

void wctx_free(wctx *w)
{
    idx_set_unref(w->ix);
    if (w->b)
        ndb_kv_batch_free(w->b);
    bmap_free(&w->uniq);
    bmap_free(&w->ids);
    dbuf_free(&w->uniq_ids);
    idx_keys_free(w->keys);
    dbuf_free(&w->key);
    dbuf_free(&w->side_key);
    ndb_doc_builder_free(w->b1);
    ndb_doc_builder_free(w->b2);
    ndb_doc_builder_free(w->bchg);
    chg_recs_free(&w->chg);
    free(w->ext);
}

ndb_status wctx_lock(wctx *w, ndb_errmsg *msg)
{
    pthread_mutex_lock(&w->c->wlock);
    if (w->c->dropped) {
        pthread_mutex_unlock(&w->c->wlock);
        return ndb_errmsg_set(msg, NDB_ENOTFOUND, "collection '%s' was dropped", w->c->name);
    }
    w->ix = coll_ix(w->c);
    w->side = w->c->build_side;
    return NDB_OK;
}

ndb_status wctx_begin(wctx *w, ndb_doc_db *db, coll *c, const ndb_interrupt *intr, ndb_errmsg *msg)
{
    ndb_status st = wctx_init(w, db, c);
    w->intr = intr;
    if (st == NDB_OK)
        st = wctx_lock(w, msg);
    if (st != NDB_OK)
        wctx_free(w);
    return st;
}

/* While an index builds, notes in its side log that document id was
 * written (ixbuild.c brings the document's entries up to date from it). */
static ndb_status side_note(wctx *w, const uint8_t *id, size_t idlen)
{
    if (w->side == 0)
        return NDB_OK;
    w->side_key.len = 0;
    if (!key_prefix(&w->side_key, w->side) || !dbuf_put(&w->side_key, id, idlen))
        return NDB_ENOMEM;
    return wput(w, w->side_key.data, w->side_key.len, "", 0);
}

ndb_status idx_remove(wctx *w, const ndb_doc_val *doc, const uint8_t *id, size_t idlen)
{
    ndb_status st = side_note(w, id, idlen);
    if (st != NDB_OK)
        return st;
    for (int i = 0; w->ix && i < w->ix->n; i++) {
        const idx_def *d = &w->ix->defs[i];
        bool multi;
        if (idx_doc_keys(d, doc, (const char *)id, idlen, w->keys, &multi, NULL) != NDB_OK)
            continue; /* it could not have been indexed either */
        for (int k = 0; k < w->keys->n; k++) {
            const uint8_t *kp = w->keys->buf.data + w->keys->off[k];
            size_t kl = w->keys->off[k + 1] - w->keys->off[k];
            if ((st = wdel(w, kp, kl)) != NDB_OK)
                return st;
            if (d->unique) {
                uint64_t *v = bmap_upsert(&w->uniq, kp, kl, 0, NULL);
                if (v == NULL)
                    return NDB_ENOMEM;
                *v = 0;
            }
        }
    }
    return NDB_OK;
}

ndb_status idx_add(wctx *w, const ndb_doc_val *doc, const uint8_t *id, size_t idlen,
                          ndb_errmsg *msg)
{
    ndb_status st = side_note(w, id, idlen);
    if (st != NDB_OK)
        return st;
    for (int i = 0; w->ix && i < w->ix->n; i++) {
        const idx_def *d = &w->ix->defs[i];
        bool multi;
        st = idx_doc_keys(d, doc, (const char *)id, idlen, w->keys, &multi, msg);
        if (st != NDB_OK)
            return st;
        if (multi && !d->multikey && i < 64 && !w->mk[i]) {
            w->mk[i] = true;
            w->mk_any = true;
        }
        for (int k = 0; k < w->keys->n; k++) {
            const uint8_t *kp = w->keys->buf.data + w->keys->off[k];
            size_t kl = w->keys->off[k + 1] - w->keys->off[k];
            if (d->unique) {
                uint64_t *v = bmap_find(&w->uniq, kp, kl);
                bool clash = false;
                if (v && *v) {
                    size_t off = (size_t)(*v >> 16) - 1, len = *v & 0xFFFF;
                    clash = len != idlen || memcmp(w->uniq_ids.data + off, id, idlen) != 0;
                } else if (!v) {
                    void *old;
                    size_t ol;
                    st = wctx_get(w, kp, kl, &old, &ol);
                    if (st == NDB_OK) {
                        clash = ol != idlen || memcmp(old, id, idlen) != 0;
                        free(old);
                    } else if (st != NDB_ENOTFOUND) {
                        return db_kvfail(w->db, msg, st, "unique index check");
                    }
                }
                if (clash)
                    return ndb_errmsg_set(msg, NDB_EEXIST,
                                          "duplicate key in unique index %s (document _id %.*s)",
                                          d->name, (int)(idlen > 64 ? 64 : idlen), (const char *)id);
                size_t off = w->uniq_ids.len;
                if (!dbuf_put(&w->uniq_ids, id, idlen))
                    return NDB_ENOMEM;
                v = bmap_upsert(&w->uniq, kp, kl, 0, NULL);
                if (v == NULL)
                    return NDB_ENOMEM;
                *v = ((uint64_t)(off + 1) << 16) | idlen;
                st = wput(w, kp, kl, id, idlen);
            } else {
                st = wput(w, kp, kl, "", 0);
            }
            if (st != NDB_OK)
                return st;
        }
    }
    return NDB_OK;
}

/* Exchanges the collection's metadata of the layer above with w's (the
 * writer lock held; ixlock for ndb_doc_collection_ext, which reads it without
 * the writer lock). */
static void swap_ext(coll *c, wctx *w)
{
    pthread_mutex_lock(&c->ixlock);
    uint8_t *m = c->ext_meta;
    size_t ml = c->ext_meta_len;
    c->ext_meta = w->ext;
    c->ext_meta_len = w->ext_len;
    w->ext = m;
    w->ext_len = ml;
    pthread_mutex_unlock(&c->ixlock);
}

ndb_status wctx_commit(wctx *w, ndb_errmsg *msg)
{
    /* the last point where the request may stop: from the append on, the
     * write is applied and reported so */
    ndb_status st = ndb_interrupt_check_commit(w->intr);
    if (st != NDB_OK)
        return ndb_interrupt_msg(msg, st, "not written (nothing was applied)");
    coll *c = w->c;
    uint64_t count = (uint64_t)((int64_t)c->count + w->dcount);
    uint64_t bytes = (uint64_t)((int64_t)c->bytes + w->dbytes);
    st = cat_write_stats(w->db, w->b, c, count, bytes);
    idx_set *ns = NULL;
    bool swapped = false;
    if (st == NDB_OK && w->ext) { /* the catalog entry below carries it; readers see it once committed */
        swap_ext(c, w);
        swapped = true;
        if (!w->mk_any)
            st = cat_write_meta(w->db, w->b, c, w->ix);
    }
    if (st == NDB_OK && w->mk_any) {
        ns = calloc(1, sizeof *ns);
        if (ns == NULL || (ns->defs = malloc((size_t)w->ix->n * sizeof *ns->defs)) == NULL) {
            free(ns);
            return NDB_ENOMEM;
        }
        ns->refs = 1;
        ns->n = w->ix->n;
        memcpy(ns->defs, w->ix->defs, (size_t)ns->n * sizeof *ns->defs);
        for (int i = 0; i < ns->n; i++) {
            if (i < 64 && w->mk[i])
                ns->defs[i].multikey = true;
            idx_def_finish(&ns->defs[i]); /* re-point paths at the copy's strings */
        }
        st = cat_write_meta(w->db, w->b, c, ns);
    }
    if (st == NDB_OK && (st = chg_append(w->db, &w->chg, w->b, &w->ticket)) != NDB_OK) {
        if (st == NDB_ETOOBIG || st == NDB_ELIMIT)
            w->batch_full = true;
        else
            db_kvfail(w->db, msg, st, "writing batch");
    }
    if (st != NDB_OK) {
        if (swapped)
            swap_ext(c, w);
        idx_set_unref(ns);
        return st;
    }
    if (swapped) { /* w held the replaced metadata */
        free(w->ext);
        w->ext = NULL;
    }
    if (w->ticket)
        c->pending = w->ticket;
    __atomic_store_n(&c->count, count, __ATOMIC_RELAXED);
    __atomic_store_n(&c->bytes, bytes, __ATOMIC_RELAXED);
    if (ns)
        coll_set_ix(c, ns);
    return NDB_OK;
}

ndb_status wctx_durable(wctx *w, ndb_errmsg *msg)
{
    ndb_status st = ndb_kv_write_wait(w->db->kv, w->ticket);
    if (st != NDB_OK)
        return db_kvfail(w->db, msg, st, "writing batch");
    chg_published(w->db, &w->chg);
    return NDB_OK;
}

ndb_status wctx_settle(wctx *w)
{
    return ndb_kv_write_wait(w->db->kv, w->c->pending);
}

ndb_status wctx_get(wctx *w, const void *key, size_t klen, void **val, size_t *vlen)
{
    ndb_status st = wctx_settle(w);
    return st == NDB_OK ? ndb_kv_get(w->db->kv, NULL, key, klen, val, vlen) : st;
}

/* Builds the stored form of doc into w->b1: _id, _created_at (created, or
 * now), _updated_at, then doc's other fields in order, copied in runs
 * between the reserved fields doc may hold (usually one run: the whole body).
 * doc is validated. index numbers the document in messages. */
static ndb_status build_stored(wctx *w, const char *id, size_t idlen, const ndb_doc_val *created,
                               const ndb_doc_val *doc, size_t index, const void **out, size_t *olen,
                               ndb_errmsg *msg)
{
    ndb_doc_builder *b = w->b1;
    ndb_doc_builder_reset(b);
    ndb_doc_begin_object(b);
    ndb_doc_key(b, "_id", 3);
    ndb_doc_string(b, id, idlen);
    ndb_doc_key(b, "_created_at", 11);
    if (created)
        ndb_doc_value(b, created);
    else
        ndb_doc_string(b, w->now, strlen(w->now));
    ndb_doc_key(b, "_updated_at", 11);
    ndb_doc_string(b, w->now, strlen(w->now));
    ndb_doc_iter it;
    ndb_doc_iter_init(&it, doc);
    const uint8_t *run = it.p, *field = it.p;
    uint32_t count = 0;
    const char *k;
    size_t kl;
    ndb_doc_val e;
    while (ndb_doc_iter_next(&it, &k, &kl, &e)) {
        if (key_is(k, kl, "_id") || key_is(k, kl, "_created_at") || key_is(k, kl, "_updated_at")) {
            cod_builder_fields(b, run, (size_t)(field - run), count);
            run = it.p;
            count = 0;
        } else {
            count++;
        }
        field = it.p;
    }
    assert(it.st == NDB_OK); /* doc is validated */
    cod_builder_fields(b, run, (size_t)(field - run), count);
    ndb_doc_end_object(b);
    ndb_status st = ndb_doc_builder_finish(b, out, olen);
    if (st == NDB_ETOOBIG)
        return ndb_errmsg_set(msg, st, "document %zu exceeds the %zu-byte limit", index,
                              w->db->opt.max_doc_bytes);
    if (st != NDB_OK)
        return ndb_errmsg_set(msg, st, "document %zu: %s", index, ndb_strerror(st));
    return NDB_OK;
}

/* Builds the stored form of a new document into w->b1 and adds it to the
 * batch. doc is validated. id_out receives the _id (NUL-terminated). */
static ndb_status insert_doc(wctx *w, const ndb_doc_val *doc, size_t index, char *id_out, bool known_new,
                             ndb_errmsg *msg)
{
    char gen[25];
    const char *id;
    size_t idlen;
    ndb_doc_val idv;
    if (ndb_doc_get_field(doc, "_id", 3, &idv) == NDB_OK) {
        if (idv.type != NDB_DOC_STRING || idv.u.s.len == 0 || idv.u.s.len > NDB_DOC_MAX_ID)
            return ndb_errmsg_set(msg, NDB_EINVAL,
                                  "document %zu: _id must be a string of 1..%d bytes", index,
                                  NDB_DOC_MAX_ID);
        id = idv.u.s.ptr;
        idlen = idv.u.s.len;
    } else {
        gen_id(w->db, gen);
        id = gen;
        idlen = 24;
    }
    const void *out;
    size_t olen;
    ndb_status st = build_stored(w, id, idlen, NULL, doc, index, &out, &olen, msg);
    if (st != NDB_OK)
        return st;
    /* a generated id is unique by construction (seconds, per-process random
     * bytes, counter): only a client's own _id needs the duplicate check */
    bool fresh = true;
    if (id != gen && bmap_upsert(&w->ids, id, idlen, 0, &fresh) == NULL)
        return NDB_ENOMEM;
    key_doc(&w->key, w->c, id, idlen);
    if (fresh && id != gen && !known_new) {
        void *old;
        size_t ol;
        st = wctx_get(w, w->key.data, w->key.len, &old, &ol);
        if (st == NDB_OK) {
            free(old);
            fresh = false;
        } else if (st != NDB_ENOTFOUND) {
            return db_kvfail(w->db, msg, st, "checking _id");
        }
    }
    if (!fresh)
        return ndb_errmsg_set(msg, NDB_EEXIST, "duplicate _id '%.*s' in collection %s",
                              (int)(idlen > 64 ? 64 : idlen), id, w->c->name);
    ndb_doc_val nd;
    ndb_doc_root(out, olen, &nd);
    st = idx_add(w, &nd, (const uint8_t *)id, idlen, msg);
    if (st != NDB_OK)
        return st;
    st = wput(w, w->key.data, w->key.len, out, olen);
    if (st == NDB_OK)
        st = chg_note(w->db, &w->chg, CHG_INSERT, w->c->name, id, idlen, out, olen);
    if (st != NDB_OK)
        return st;
    w->dcount++;
    w->dbytes += (int64_t)olen;
    if (id_out) {
        memcpy(id_out, id, idlen);
        id_out[idlen] = 0;
    }
    return NDB_OK;
}

void ndb_doc_ids_free(char **ids, size_t n)
{
    if (ids == NULL)
        return;
    for (size_t i = 0; i < n; i++)
        free(ids[i]);
    free(ids);
}

/* Checks a client's document: size, encoding (unless built: made by an
 * ndb_doc_builder, which checked it as it wrote), an object at the top. */
static ndb_status check_doc_as(ndb_doc_db *db, const void *doc, size_t len, size_t i, bool built,
                               ndb_doc_val *root, ndb_errmsg *msg)
{
    if (len > db->opt.max_doc_bytes)
        return ndb_errmsg_set(msg, NDB_ETOOBIG, "document %zu of %zu bytes exceeds the %zu-byte limit", i, len,
                              db->opt.max_doc_bytes);
    assert(!built || ndb_doc_validate(doc, len, NULL) == NDB_OK);
    if (!built && ndb_doc_validate(doc, len, msg) != NDB_OK)
        return ndb_errmsg_set(msg, NDB_EINVAL, "document %zu is not a valid encoding", i);
    if (!doc_root_obj(doc, len, root))
        return ndb_errmsg_set(msg, NDB_EINVAL, "document %zu is not an object", i);
    return NDB_OK;
}

static ndb_status check_doc(ndb_doc_db *db, const void *doc, size_t len, size_t i, ndb_doc_val *root,
                            ndb_errmsg *msg)
{
    return check_doc_as(db, doc, len, i, false, root, msg);
}

static ndb_status insert_docs(ndb_doc_db *db, const char *cname, const void *const *docs, const size_t *lens,
                              size_t n, bool built, const ndb_interrupt *intr, char ***ids, ndb_errmsg *msg)
{
    if (n == 0)
        return ndb_errmsg_set(msg, NDB_EINVAL, "no documents to insert");
    /* validate before taking any lock */
    for (size_t i = 0; i < n; i++) {
        ndb_doc_val r;
        ndb_status st = check_doc_as(db, docs[i], lens[i], i, built, &r, msg);
        if (st != NDB_OK)
            return st;
    }
    coll *c;
    ndb_status st = cat_coll_open(db, cname, true, false, &c, msg);
    if (st != NDB_OK)
        return st;
    char **out = NULL;
    if (ids && (out = calloc(n, sizeof *out)) == NULL)
        return NDB_ENOMEM;
    wctx w;
    st = wctx_init(&w, db, c);
    w.intr = intr;
    if (st == NDB_OK)
        st = wctx_lock(&w, msg);
    else
        goto done;
    if (st == NDB_ENOTFOUND) { /* wctx_lock: the collection was dropped */
        /* dropped between lookup and lock: insert creates it again, once */
        if ((st = cat_coll_open(db, cname, true, false, &c, msg)) == NDB_OK) {
            w.c = c;
            st = wctx_lock(&w, msg);
        }
    }
    if (st != NDB_OK)
        goto done;
    char idbuf[NDB_DOC_MAX_ID + 1];
    uint32_t tick = 0;
    for (size_t i = 0; st == NDB_OK && i < n; i++) {
        if ((st = ndb_interrupt_poll(intr, &tick)) != NDB_OK) {
            ndb_interrupt_msg(msg, st, "insert stopped (nothing was applied)");
            break;
        }
        ndb_doc_val r;
        ndb_doc_root(docs[i], lens[i], &r);
        st = insert_doc(&w, &r, i, idbuf, false, msg);
        if (st == NDB_OK && out && (out[i] = strdup(idbuf)) == NULL)
            st = NDB_ENOMEM;
    }
    if (st == NDB_OK)
        st = wctx_commit(&w, msg);
    st = st == NDB_OK ? st : batch_full_msg(&w, st, msg);
    pthread_mutex_unlock(&c->wlock);
    if (st == NDB_OK)
        st = wctx_durable(&w, msg);
done:
    wctx_free(&w);
    if (st != NDB_OK) {
        ndb_doc_ids_free(out, n);
        return st;
    }
    if (ids)
        *ids = out;
    return NDB_OK;
}

ndb_status ndb_doc_insert(ndb_doc_db *db, const char *cname, const void *const *docs, const size_t *lens,
                          size_t n, const ndb_interrupt *intr, char ***ids, ndb_errmsg *msg)
{
    return insert_docs(db, cname, docs, lens, n, false, intr, ids, msg);
}

ndb_status ndb_doc_insert_built(ndb_doc_db *db, const char *cname, const void *const *docs, const size_t *lens,
                                size_t n, const ndb_interrupt *intr, char ***ids, ndb_errmsg *msg)
{
    return insert_docs(db, cname, docs, lens, n, true, intr, ids, msg);
}

/* Applies a compiled update to one stored document (key/bytes) in the batch. */
static ndb_status update_one(wctx *w, upd_spec *u, const uint8_t *id, size_t idlen,
                             const void *old, size_t oldlen, bool *modified, ndb_errmsg *msg)
{
    ndb_doc_val od;
    *modified = false;
    if (!doc_root_obj(old, oldlen, &od))
        return ndb_errmsg_set(msg, NDB_ECORRUPT, "stored document is corrupt");
    bool changed;
    ndb_status st = upd_apply(u, &od, false, w->b2, &changed, msg);
    if (st != NDB_OK)
        return st;
    *modified = changed;
    if (!changed)
        return NDB_OK;
    const void *mid;
    size_t midlen;
    ndb_doc_builder_finish(w->b2, &mid, &midlen);
    ndb_doc_val md;
    ndb_doc_root(mid, midlen, &md);
    uint8_t tsb[40];
    size_t tl = strlen(w->now);
    tsb[0] = TAG_STRING;
    tsb[1] = (uint8_t)tl;
    memcpy(tsb + 2, w->now, tl);
    ndb_doc_val ts;
    cod_read(tsb, tsb + 2 + tl, &ts);
    ndb_doc_builder_reset(w->b1);
    st = doc_set_top(&md, "_updated_at", 11, &ts, w->b1);
    const void *nd;
    size_t ndl;
    if (st == NDB_OK)
        st = ndb_doc_builder_finish(w->b1, &nd, &ndl);
    if (st == NDB_ETOOBIG)
        return ndb_errmsg_set(msg, st, "updated document exceeds the %zu-byte limit",
                              w->db->opt.max_doc_bytes);
    if (st != NDB_OK)
        return st;
    ndb_doc_val nv;
    ndb_doc_root(nd, ndl, &nv);
    if ((st = idx_remove(w, &od, id, idlen)) != NDB_OK || (st = idx_add(w, &nv, id, idlen, msg)) != NDB_OK)
        return st;
    key_doc(&w->key, w->c, id, idlen);
    st = wput(w, w->key.data, w->key.len, nd, ndl);
    w->dbytes += (int64_t)ndl - (int64_t)oldlen;
    if (st == NDB_OK && w->bchg != NULL) {
        const void *desc;
        size_t dl;
        if ((st = chg_describe(&od, &nv, w->bchg)) == NDB_OK &&
            (st = ndb_doc_builder_finish(w->bchg, &desc, &dl)) == NDB_OK)
            st = chg_note(w->db, &w->chg, CHG_UPDATE, w->c->name, id, idlen, desc, dl);
    }
    return st;
}

static ndb_status compile_update(const void *update, size_t len, upd_spec **u, ndb_errmsg *msg)
{
    ndb_doc_val uv;
    if (ndb_doc_validate(update, len, NULL) != NDB_OK || ndb_doc_root(update, len, &uv) != NDB_OK)
        return ndb_errmsg_set(msg, NDB_EINVAL, "update is not a valid document");
    return upd_compile(&uv, u, msg);
}

ndb_status ndb_doc_update(ndb_doc_db *db, const char *cname, const char *id, size_t idlen,
                          const void *update, size_t len, const ndb_interrupt *intr, ndb_errmsg *msg)
{
    coll *c;
    ndb_status st = db_get_coll(db, cname, &c, msg);
    if (st != NDB_OK)
        return st;
    upd_spec *u;
    if ((st = compile_update(update, len, &u, msg)) != NDB_OK)
        return st;
    wctx w;
    if ((st = wctx_begin(&w, db, c, intr, msg)) != NDB_OK) {
        upd_free(u);
        return st;
    }
    void *old = NULL;
    size_t oldlen;
    key_doc(&w.key, c, id, idlen);
    st = idlen && idlen <= NDB_DOC_MAX_ID ? wctx_get(&w, w.key.data, w.key.len, &old, &oldlen)
                                          : NDB_ENOTFOUND;
    if (st == NDB_ENOTFOUND)
        ndb_errmsg_set(msg, st, "no document with _id '%.*s' in %s", (int)(idlen > 64 ? 64 : idlen),
                       id, cname);
    else if (st != NDB_OK)
        db_kvfail(db, msg, st, "reading document");
    bool modified = false;
    if (st == NDB_OK)
        st = update_one(&w, u, (const uint8_t *)id, idlen, old, oldlen, &modified, msg);
    if (st == NDB_OK && modified)
        st = wctx_commit(&w, msg);
    pthread_mutex_unlock(&c->wlock);
    if (st == NDB_OK)
        st = wctx_durable(&w, msg);
    free(old);
    wctx_free(&w);
    upd_free(u);
    return st;
}

/* A document for an upsert: the filter's top-level equality fields. */
static ndb_status upsert_base(const ndb_doc_filter *f, ndb_doc_builder *b)
{
    ndb_doc_builder_reset(b);
    ndb_doc_begin_object(b);
    const flt_node *n = f->root;
    for (int i = 0; n && n->kind == FN_AND && i < n->nkids; i++) {
        const flt_node *k = n->kids[i];
        if (k->kind != FN_FIELD || k->path.n != 1)
            continue;
        for (int j = 0; j < k->npreds; j++) {
            if (k->preds[j].op == OP_EQ) {
                ndb_doc_key(b, k->path.c[0], k->path.l[0]);
                ndb_doc_value(b, &k->preds[j].arg);
                break;
            }
        }
    }
    return ndb_doc_end_object(b);
}

/* Calls visit(w, id, doc, arg) for every document of w's collection that f
 * matches, from one cursor; stops at the first error. The caller holds the
 * collection's writer lock, so the documents visited are the ones it changes. */
typedef ndb_status (*match_visitor)(wctx *w, const uint8_t *id, size_t idlen, const uint8_t *doc, size_t len,
                                    void *arg, ndb_errmsg *msg);

/* Calls visit for every document matching f, or for the first limit of them
 * (0: no limit), through the index named hint (NULL: the planner's choice),
 * from and to position (NULL: from the start; doc_delete_spec says how). */
static ndb_status for_each_match(wctx *w, ndb_doc_filter *f, uint64_t limit, const char *hint, dbuf *position,
                                 match_visitor visit, void *arg, ndb_errmsg *msg)
{
    ndb_doc_cursor *cur = NULL;
    ndb_status st = wctx_settle(w);
    if (st != NDB_OK)
        return db_kvfail(w->db, msg, st, "waiting for the collection's earlier writes");
    st = cur_open(w->db, w->c, f, NULL, hint, NULL, w->intr, &cur, msg);
    if (st == NDB_OK && position != NULL && position->len > 0)
        st = cur_resume(cur, position->data, position->len, msg);
    const uint8_t *d;
    size_t dl;
    int got;
    uint64_t seen = 0;
    while (st == NDB_OK && (limit == 0 || seen++ < limit) && (got = cur_src_next(cur, &d, &dl, msg)) != 0) {
        if (got < 0) {
            st = (ndb_status)got;
            break;
        }
        ndb_doc_val dv, idv;
        if (!doc_root_obj(d, dl, &dv) || ndb_doc_get_field(&dv, "_id", 3, &idv) != NDB_OK ||
            idv.type != NDB_DOC_STRING) {
            st = ndb_errmsg_set(msg, NDB_ECORRUPT, "stored document without a string _id");
            break;
        }
        st = visit(w, (const uint8_t *)idv.u.s.ptr, idv.u.s.len, d, dl, arg, msg);
    }
    if (st == NDB_OK && position != NULL) {
        void *tok = NULL;
        size_t tl = 0;
        position->len = 0;
        if ((st = ndb_doc_cursor_page_token(cur, &tok, &tl)) == NDB_OK && tl > 0 && !dbuf_put(position, tok, tl))
            st = NDB_ENOMEM;
        free(tok);
    }
    ndb_doc_cursor_free(cur);
    return st;
}

typedef struct update_visit {
    upd_spec *u;
    ndb_doc_update_result *r;
} update_visit;

static ndb_status update_visitor(wctx *w, const uint8_t *id, size_t idlen, const uint8_t *doc, size_t len, void *arg,
                                 ndb_errmsg *msg)
{
    update_visit *uv = arg;
    bool modified = false;
    uv->r->matched++;
    ndb_status st = update_one(w, uv->u, id, idlen, doc, len, &modified, msg);
    if (modified)
        uv->r->modified++;
    return st;
}

ndb_status ndb_doc_update_many(ndb_doc_db *db, const char *cname, const void *filter, size_t flen,
                               const void *update, size_t ulen, int upsert, const ndb_interrupt *intr,
                               ndb_doc_update_result *res, ndb_errmsg *msg)
{
    ndb_doc_update_result r = {0};
    coll *c;
    ndb_status st = cat_check_name(cname, msg);
    if (st != NDB_OK)
        return st;
    ndb_doc_filter *f = NULL;
    upd_spec *u = NULL;
    if ((st = ndb_doc_filter_compile(filter, flen, &f, msg)) != NDB_OK)
        return st;
    if ((st = compile_update(update, ulen, &u, msg)) != NDB_OK) {
        ndb_doc_filter_free(f);
        return st;
    }
    st = cat_coll_open(db, cname, upsert != 0, false, &c, msg);
    if (st != NDB_OK) {
        ndb_doc_filter_free(f);
        upd_free(u);
        if (st == NDB_ENOTFOUND && res) {
            *res = r; /* nothing to match in a collection that does not exist */
            return NDB_OK;
        }
        return st;
    }
    wctx w;
    if ((st = wctx_begin(&w, db, c, intr, msg)) != NDB_OK) {
        ndb_doc_filter_free(f);
        upd_free(u);
        return st;
    }
    update_visit uv = {u, &r};
    st = for_each_match(&w, f, 0, NULL, NULL, update_visitor, &uv, msg);
    if (st == NDB_OK && r.matched == 0 && upsert) {
        ndb_doc_val base;
        void *bd;
        size_t bl;
        st = upsert_base(f, w.b2);
        if (st == NDB_OK)
            st = ndb_doc_builder_take(w.b2, &bd, &bl);
        if (st == NDB_OK) {
            ndb_doc_root(bd, bl, &base);
            bool changed;
            st = upd_apply(u, &base, true, w.b2, &changed, msg);
            void *nd;
            size_t ndl;
            if (st == NDB_OK)
                st = ndb_doc_builder_take(w.b2, &nd, &ndl);
            if (st == NDB_OK) {
                ndb_doc_val nv;
                ndb_doc_root(nd, ndl, &nv);
                st = insert_doc(&w, &nv, 0, r.upserted_id, false, msg);
                free(nd);
            }
            free(bd);
        }
    }
    if (st == NDB_OK && (r.modified || r.upserted_id[0]))
        st = wctx_commit(&w, msg);
    st = st == NDB_OK ? st : batch_full_msg(&w, st, msg);
    pthread_mutex_unlock(&c->wlock);
    if (st == NDB_OK)
        st = wctx_durable(&w, msg);
    wctx_free(&w);
    upd_free(u);
    ndb_doc_filter_free(f);
    if (st == NDB_OK && res)
        *res = r;
    return st;
}

static ndb_status delete_one(wctx *w, const uint8_t *id, size_t idlen, const void *old, size_t oldlen)
{
    ndb_doc_val od;
    if (doc_root_obj(old, oldlen, &od)) {
        ndb_status st = idx_remove(w, &od, id, idlen);
        if (st != NDB_OK)
            return st;
    }
    key_doc(&w->key, w->c, id, idlen);
    w->dcount--;
    w->dbytes -= (int64_t)oldlen;
    ndb_status st = wdel(w, w->key.data, w->key.len);
    return st == NDB_OK ? chg_note(w->db, &w->chg, CHG_DELETE, w->c->name, id, idlen, NULL, 0) : st;
}

ndb_status ndb_doc_delete(ndb_doc_db *db, const char *cname, const char *id, size_t idlen,
                          const ndb_interrupt *intr, ndb_errmsg *msg)
{
    ndb_doc_txn *t = NULL;
    ndb_status st = ndb_doc_txn_begin(db, cname, intr, &t, msg);
    if (st == NDB_OK && (st = ndb_doc_txn_delete(t, id, idlen, msg)) == NDB_OK)
        st = ndb_doc_txn_commit(t, msg);
    ndb_status e = ndb_doc_txn_end(t, st == NDB_OK ? msg : NULL);
    return st == NDB_OK ? e : st;
}

static ndb_status delete_visitor(wctx *w, const uint8_t *id, size_t idlen, const uint8_t *doc, size_t len, void *arg,
                                 ndb_errmsg *msg)
{
    (void)msg;
    ++*(uint64_t *)arg;
    return delete_one(w, id, idlen, doc, len);
}

ndb_status doc_delete_matching(ndb_doc_db *db, const char *cname, const doc_delete_spec *spec,
                               const ndb_interrupt *intr, uint64_t *deleted, ndb_errmsg *msg)
{
    uint64_t n = 0;
    if (deleted)
        *deleted = 0;
    coll *c;
    ndb_status st = db_get_coll(db, cname, &c, msg);
    if (st == NDB_ENOTFOUND)
        return NDB_OK;
    if (st != NDB_OK)
        return st;
    ndb_doc_filter *f;
    if ((st = ndb_doc_filter_compile(spec->filter, spec->flen, &f, msg)) != NDB_OK)
        return st;
    wctx w;
    if ((st = wctx_begin(&w, db, c, intr, msg)) != NDB_OK) {
        ndb_doc_filter_free(f);
        return st;
    }
    st = for_each_match(&w, f, spec->limit, spec->hint, spec->position, delete_visitor, &n, msg);
    if (st == NDB_OK && n)
        st = wctx_commit(&w, msg);
    st = st == NDB_OK ? st : batch_full_msg(&w, st, msg);
    pthread_mutex_unlock(&c->wlock);
    if (st == NDB_OK)
        st = wctx_durable(&w, msg);
    wctx_free(&w);
    ndb_doc_filter_free(f);
    if (st == NDB_OK && deleted)
        *deleted = n;
    return st;
}

ndb_status ndb_doc_delete_many(ndb_doc_db *db, const char *cname, const void *filter, size_t flen,
                               const ndb_interrupt *intr, uint64_t *deleted, ndb_errmsg *msg)
{
    doc_delete_spec spec = {.filter = filter, .flen = flen};
    return doc_delete_matching(db, cname, &spec, intr, deleted, msg);
}

/* --------------------------------------------------------------- cursors */

/* ------------------------------------------------------ transactions */

struct ndb_doc_txn {
    wctx w;
    bool locked;
    bool committed;
};

ndb_status ndb_doc_txn_begin(ndb_doc_db *db, const char *cname, const ndb_interrupt *intr, ndb_doc_txn **out,
                             ndb_errmsg *msg)
{
    coll *c;
    ndb_status st = db_get_coll(db, cname, &c, msg);
    if (st != NDB_OK)
        return st;
    ndb_doc_txn *t = calloc(1, sizeof *t);
    if (t == NULL)
        return NDB_ENOMEM;
    if ((st = wctx_begin(&t->w, db, c, intr, msg)) != NDB_OK) {
        free(t);
        return st;
    }
    t->locked = true;
    *out = t;
    return NDB_OK;
}

ndb_status ndb_doc_txn_insert(ndb_doc_txn *t, const void *doc, size_t len, char *id, ndb_errmsg *msg)
{
    ndb_doc_val r;
    ndb_status st = check_doc(t->w.db, doc, len, 0, &r, msg);
    return st != NDB_OK ? st : insert_doc(&t->w, &r, 0, id, false, msg);
}

ndb_status ndb_doc_txn_insert_new(ndb_doc_txn *t, const void *doc, size_t len, char *id, ndb_errmsg *msg)
{
    ndb_doc_val r;
    ndb_status st = check_doc(t->w.db, doc, len, 0, &r, msg);
    return st != NDB_OK ? st : insert_doc(&t->w, &r, 0, id, true, msg);
}

ndb_status ndb_doc_txn_replace(ndb_doc_txn *t, const char *id, size_t idlen, const void *doc, size_t len,
                               int *inserted, ndb_errmsg *msg)
{
    wctx *w = &t->w;
    ndb_doc_val r, idv, od, created;
    ndb_status st = check_doc(w->db, doc, len, 0, &r, msg);
    if (st != NDB_OK)
        return st;
    if (idlen == 0 || idlen > NDB_DOC_MAX_ID)
        return ndb_errmsg_set(msg, NDB_EINVAL, "_id must be a string of 1..%d bytes", NDB_DOC_MAX_ID);
    if (ndb_doc_get_field(&r, "_id", 3, &idv) == NDB_OK &&
        (idv.type != NDB_DOC_STRING || idv.u.s.len != idlen || memcmp(idv.u.s.ptr, id, idlen) != 0))
        return ndb_errmsg_set(msg, NDB_EINVAL, "the document's _id differs from the id it replaces");
    void *old = NULL;
    size_t oldlen = 0;
    key_doc(&w->key, w->c, id, idlen);
    st = wctx_get(w, w->key.data, w->key.len, &old, &oldlen);
    if (st != NDB_OK && st != NDB_ENOTFOUND)
        return db_kvfail(w->db, msg, st, "reading document");
    bool had = st == NDB_OK && doc_root_obj(old, oldlen, &od);
    const void *out;
    size_t olen;
    st = build_stored(w, id, idlen, had && ndb_doc_get_field(&od, "_created_at", 11, &created) == NDB_OK ? &created : NULL,
                      &r, 0, &out, &olen, msg);
    ndb_doc_val nd;
    if (st == NDB_OK && had)
        st = idx_remove(w, &od, (const uint8_t *)id, idlen);
    if (st == NDB_OK) {
        ndb_doc_root(out, olen, &nd);
        st = idx_add(w, &nd, (const uint8_t *)id, idlen, msg);
    }
    if (st == NDB_OK) {
        key_doc(&w->key, w->c, id, idlen);
        st = wput(w, w->key.data, w->key.len, out, olen);
    }
    if (st == NDB_OK)
        st = chg_note(w->db, &w->chg, old == NULL ? CHG_INSERT : CHG_REPLACE, w->c->name, id, idlen, out, olen);
    if (st == NDB_OK) {
        w->dcount += old == NULL;
        w->dbytes += (int64_t)olen - (int64_t)oldlen;
        if (inserted)
            *inserted = old == NULL;
    }
    free(old);
    return st;
}

ndb_status ndb_doc_txn_find(ndb_doc_txn *t, const ndb_doc_find_opts *opts, ndb_doc_cursor **out, ndb_errmsg *msg)
{
    ndb_status st = wctx_settle(&t->w);
    if (st != NDB_OK)
        return db_kvfail(t->w.db, msg, st, "waiting for earlier writes");
    return ndb_doc_find(t->w.db, t->w.c->name, opts, out, msg);
}

ndb_status ndb_doc_txn_delete(ndb_doc_txn *t, const char *id, size_t idlen, ndb_errmsg *msg)
{
    wctx *w = &t->w;
    void *old = NULL;
    size_t oldlen;
    key_doc(&w->key, w->c, id, idlen);
    ndb_status st = idlen && idlen <= NDB_DOC_MAX_ID ? wctx_get(w, w->key.data, w->key.len, &old, &oldlen)
                                                     : NDB_ENOTFOUND;
    if (st == NDB_ENOTFOUND)
        return ndb_errmsg_set(msg, st, "no document with _id '%.*s' in %s", (int)(idlen > 64 ? 64 : idlen), id,
                              w->c->name);
    if (st != NDB_OK)
        return db_kvfail(w->db, msg, st, "reading document");
    st = delete_one(w, (const uint8_t *)id, idlen, old, oldlen);
    free(old);
    return st;
}

ndb_status ndb_doc_txn_put(ndb_doc_txn *t, const void *key, size_t klen, const void *val, size_t vlen)
{
    return wput(&t->w, key, klen, val, vlen);
}

ndb_status ndb_doc_txn_del(ndb_doc_txn *t, const void *key, size_t klen)
{
    return wdel(&t->w, key, klen);
}

ndb_status ndb_doc_txn_set_meta(ndb_doc_txn *t, const void *meta, size_t len, ndb_errmsg *msg)
{
    ndb_doc_val r;
    if (t->w.c->ext_meta == NULL)
        return ndb_errmsg_set(msg, NDB_EINVAL, "collection '%s' has no metadata of another layer", t->w.c->name);
    if (meta == NULL || ndb_doc_validate(meta, len, NULL) != NDB_OK || !doc_root_obj(meta, len, &r))
        return ndb_errmsg_set(msg, NDB_EINVAL, "collection metadata must be an encoded object");
    uint8_t *m = malloc(len);
    if (m == NULL)
        return NDB_ENOMEM;
    memcpy(m, meta, len);
    free(t->w.ext);
    t->w.ext = m;
    t->w.ext_len = len;
    return NDB_OK;
}

ndb_status ndb_doc_txn_commit(ndb_doc_txn *t, ndb_errmsg *msg)
{
    if (t->committed)
        return ndb_errmsg_set(msg, NDB_EINVAL, "transaction already committed");
    ndb_status st = wctx_commit(&t->w, msg);
    t->committed = st == NDB_OK;
    return st == NDB_OK ? st : batch_full_msg(&t->w, st, msg);
}

ndb_status ndb_doc_txn_end(ndb_doc_txn *t, ndb_errmsg *msg)
{
    if (t == NULL)
        return NDB_OK;
    if (t->locked)
        pthread_mutex_unlock(&t->w.c->wlock);
    ndb_status st = t->committed ? wctx_durable(&t->w, msg) : NDB_OK;
    wctx_free(&t->w);
    free(t);
    return st;
}
