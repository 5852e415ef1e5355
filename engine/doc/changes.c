/*
 * changes.c — the change log and change streams (FORMAT.md section 5).
 *
 * Writers add entries to their request's records as they change documents
 * (chg_note) and key them at commit (chg_append): under the log's lock the
 * records take the next sequence numbers and the batch is appended, so
 * sequence order is the kv's commit order and a reader that finds record n
 * visible has every record before it visible too. A watch reads records by
 * point lookups in sequence order and turns their entries into
 * MongoDB-shaped events; when the next record is not visible yet it waits for
 * chg_published's wake-up (or its time limit).
 *
 * Thread safety: a watch belongs to one thread; the log is shared.
 */
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include <lz4.h>

#include "agg_stages.h"

#define CHG_REC_KIND 'e'   /* 00 'e' seq(8, big-endian): a record */
#define CHG_STATE_KIND 'E' /* 00 'E': u64 LE first seq kept, u64 LE bytes of records */
#define CHG_REC_VERSION 1  /* a record's entries as they are */
#define CHG_REC_LZ4 2      /* its entries' length (u32 LE), then the entries as one LZ4 block */
#define CHG_LZ4_HEADER (CHG_HEADER + 4)
#define CHG_LZ4_MIN 512              /* entries shorter than this are stored as they are */
#define CHG_LZ4_MAX ((size_t)64 << 20) /* and longer ones too; a record claiming more is damaged */
#define CHG_TOKEN_VERSION 1
#define CHG_HEADER 9       /* version byte, i64 LE wall time (ms) */
#define CHG_WHOLE UINT32_MAX /* a position after every entry of its record */

struct chglog {
    pthread_mutex_t mu;   /* appends and trims: sequence order is commit order */
    uint64_t next;        /* the next record's sequence number (mu) */
    _Atomic uint64_t first; /* the oldest record kept (written under mu) */
    uint64_t bytes;       /* encoded bytes of the records kept (mu) */
    pthread_mutex_t trim_mu; /* one trim at a time */
    _Atomic uint64_t gen; /* bumped when records become visible or are trimmed */
    _Atomic uint32_t watchers;
    pthread_mutex_t wmu;  /* watches wait on wcv (CLOCK_MONOTONIC) */
    pthread_cond_t wcv;
};

static void rec_key(uint8_t k[10], uint64_t seq)
{
    k[0] = 0;
    k[1] = CHG_REC_KIND;
    for (int i = 0; i < 8; i++)
        k[2 + i] = (uint8_t)(seq >> (56 - 8 * i));
}

static uint64_t rec_seq(const uint8_t *k)
{
    uint64_t s = 0;
    for (int i = 0; i < 8; i++)
        s = s << 8 | k[2 + i];
    return s;
}

static int64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* ------------------------------------------------------------- the log */

ndb_status chg_open(ndb_doc_db *db, ndb_errmsg *msg)
{
    chglog *L = calloc(1, sizeof *L);
    if (L == NULL)
        return NDB_ENOMEM;
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&L->wcv, &ca);
    pthread_condattr_destroy(&ca);
    pthread_mutex_init(&L->mu, NULL);
    pthread_mutex_init(&L->trim_mu, NULL);
    pthread_mutex_init(&L->wmu, NULL);
    db->chg = L;
    uint64_t first = 1;
    uint8_t sk[2] = {0, CHG_STATE_KIND};
    void *v;
    size_t vl;
    ndb_status st = ndb_kv_get(db->kv, NULL, sk, 2, &v, &vl);
    if (st == NDB_OK) {
        if (vl == 16) {
            first = rd64(v);
            L->bytes = rd64((uint8_t *)v + 8);
        }
        free(v);
        if (vl != 16 || first == 0)
            return ndb_errmsg_set(msg, NDB_ECORRUPT, "the change log's state key is damaged");
    } else if (st != NDB_ENOTFOUND) {
        return db_kvfail(db, msg, st, "reading the change log");
    }
    /* the newest record: the log continues after it */
    uint8_t lo[2] = {0, CHG_REC_KIND}, hi[2] = {0, CHG_REC_KIND + 1};
    ndb_kv_iter *it;
    if ((st = ndb_kv_iter_new(db->kv, NULL, lo, 2, hi, 2, &it)) != NDB_OK)
        return db_kvfail(db, msg, st, "reading the change log");
    ndb_kv_iter_seek_last(it);
    uint64_t next = first;
    if (ndb_kv_iter_valid(it)) {
        size_t kl;
        const uint8_t *k = ndb_kv_iter_key(it, &kl);
        if (kl != 10)
            st = ndb_errmsg_set(msg, NDB_ECORRUPT, "a change log key has %zu bytes, not 10", kl);
        else if (rec_seq(k) >= next)
            next = rec_seq(k) + 1;
    }
    if (st == NDB_OK && (st = ndb_kv_iter_status(it)) != NDB_OK)
        db_kvfail(db, msg, st, "reading the change log");
    ndb_kv_iter_free(it);
    atomic_store(&L->first, first);
    L->next = next;
    return st;
}

void chg_close(ndb_doc_db *db)
{
    chglog *L = db->chg;
    if (L == NULL)
        return;
    pthread_mutex_destroy(&L->mu);
    pthread_mutex_destroy(&L->trim_mu);
    pthread_mutex_destroy(&L->wmu);
    pthread_cond_destroy(&L->wcv);
    free(L);
    db->chg = NULL;
}

void chg_recs_free(chg_recs *r)
{
    dbuf_free(&r->buf);
    free(r->starts);
    memset(r, 0, sizeof *r);
}

static size_t rec_end(const chg_recs *r, size_t i)
{
    return i + 1 < r->n ? r->starts[i + 1] : r->buf.len;
}

ndb_status chg_note(ndb_doc_db *db, chg_recs *r, chg_op op, const char *coll, const void *id, size_t idlen,
                    const void *payload, size_t plen)
{
    if (db->chg == NULL)
        return NDB_OK;
    size_t clen = strlen(coll);
    size_t need = 1 + 10 + clen + 10 + idlen + 10 + plen;
    if (r->n == 0 || (r->buf.len - r->starts[r->n - 1] > CHG_HEADER &&
                      r->buf.len - r->starts[r->n - 1] + need > CHG_RECORD_BYTES)) {
        if (r->n == r->cap) {
            size_t cap = r->cap ? 2 * r->cap : 4;
            size_t *s = realloc(r->starts, cap * sizeof *s);
            if (s == NULL)
                return NDB_ENOMEM;
            r->starts = s;
            r->cap = cap;
        }
        r->starts[r->n++] = r->buf.len;
        uint8_t h[CHG_HEADER];
        h[0] = CHG_REC_VERSION;
        wr64(h + 1, (uint64_t)doc_now_ms(db));
        dbuf_put(&r->buf, h, sizeof h);
    }
    dbuf_byte(&r->buf, (uint8_t)op);
    dbuf_varint(&r->buf, clen);
    dbuf_put(&r->buf, coll, clen);
    dbuf_varint(&r->buf, idlen);
    dbuf_put(&r->buf, id, idlen);
    dbuf_varint(&r->buf, plen);
    dbuf_put(&r->buf, payload, plen);
    return r->buf.oom ? NDB_ENOMEM : NDB_OK;
}

/* Stores each record of r whose entries LZ4 shrinks by an eighth or more in
 * the compressed form (FORMAT.md section 5). A bulk write's entries hold its
 * documents a second time, and the record is written again by the WAL, the
 * flush and the compactions: compressing it once costs less than those
 * copies (bench/README.md, "change log records compressed"). */
static ndb_status seal(chg_recs *r)
{
    size_t i = 0;
    while (i < r->n && rec_end(r, i) - r->starts[i] < CHG_HEADER + CHG_LZ4_MIN)
        i++;
    if (i == r->n)
        return NDB_OK;
    dbuf z = {0};
    if (!dbuf_put(&z, r->buf.data, r->starts[i]))
        return NDB_ENOMEM;
    for (; i < r->n; i++) {
        const uint8_t *rec = r->buf.data + r->starts[i];
        size_t elen = rec_end(r, i) - r->starts[i] - CHG_HEADER, at = z.len;
        r->starts[i] = at; /* rec_end(r, i) above read the next start before it changes */
        if (elen >= CHG_LZ4_MIN && elen <= CHG_LZ4_MAX) {
            int bound = LZ4_compressBound((int)elen);
            if (!dbuf_reserve(&z, CHG_LZ4_HEADER + (size_t)bound)) {
                dbuf_free(&z);
                return NDB_ENOMEM;
            }
            uint8_t *h = z.data + at;
            int c = LZ4_compress_default((const char *)rec + CHG_HEADER, (char *)h + CHG_LZ4_HEADER, (int)elen,
                                         bound);
            if (c > 0 && (size_t)c + 4 <= elen - elen / 8) {
                h[0] = CHG_REC_LZ4;
                memcpy(h + 1, rec + 1, 8);
                wr32(h + CHG_HEADER, (uint32_t)elen);
                z.len = at + CHG_LZ4_HEADER + (size_t)c;
                continue;
            }
        }
        dbuf_put(&z, rec, CHG_HEADER + elen);
    }
    if (z.oom) {
        dbuf_free(&z);
        return NDB_ENOMEM;
    }
    dbuf_free(&r->buf);
    r->buf = z;
    return NDB_OK;
}

ndb_status chg_append(ndb_doc_db *db, chg_recs *r, ndb_kv_batch *b, uint64_t *ticket)
{
    chglog *L = db->chg;
    if (L == NULL || r->n == 0)
        return ndb_kv_write_append(db->kv, b, ticket);
    ndb_status zst = seal(r);
    if (zst != NDB_OK)
        return zst;
    pthread_mutex_lock(&L->mu);
    uint64_t seq = L->next, bytes = L->bytes;
    ndb_status st = NDB_OK;
    for (size_t i = 0; i < r->n && st == NDB_OK; i++) {
        uint8_t k[10];
        rec_key(k, seq + i);
        size_t len = rec_end(r, i) - r->starts[i];
        st = ndb_kv_batch_put(b, k, sizeof k, r->buf.data + r->starts[i], len);
        bytes += len;
    }
    uint8_t sk[2] = {0, CHG_STATE_KIND}, sv[16];
    wr64(sv, atomic_load(&L->first));
    wr64(sv + 8, bytes);
    if (st == NDB_OK)
        st = ndb_kv_batch_put(b, sk, 2, sv, sizeof sv);
    if (st == NDB_OK && (st = ndb_kv_write_append(db->kv, b, ticket)) == NDB_OK) {
        L->next = seq + r->n;
        L->bytes = bytes;
    }
    pthread_mutex_unlock(&L->mu);
    return st;
}

static void wake(chglog *L)
{
    atomic_fetch_add(&L->gen, 1);
    if (atomic_load(&L->watchers) > 0) {
        pthread_mutex_lock(&L->wmu);
        pthread_cond_broadcast(&L->wcv);
        pthread_mutex_unlock(&L->wmu);
    }
}

void chg_published(ndb_doc_db *db, const chg_recs *r)
{
    if (db->chg != NULL && r->n > 0)
        wake(db->chg);
}

/* ----------------------------------------------- update descriptions */

static ndb_status describe_updated(const ndb_doc_val *o, const ndb_doc_val *n, dbuf *path, ndb_doc_builder *b)
{
    ndb_doc_iter it;
    ndb_doc_iter_init(&it, n);
    const char *k;
    size_t kl;
    ndb_doc_val nv, ov;
    while (ndb_doc_iter_next(&it, &k, &kl, &nv)) {
        size_t at = path->len;
        dbuf_put(path, k, kl);
        ndb_status st = ndb_doc_get_field(o, k, kl, &ov);
        if (st == NDB_OK && ov.raw_len == nv.raw_len && memcmp(ov.raw, nv.raw, nv.raw_len) == 0) {
            st = NDB_OK; /* unchanged */
        } else if (st == NDB_OK && ov.type == NDB_DOC_OBJECT && nv.type == NDB_DOC_OBJECT && nv.u.c.count > 0) {
            dbuf_byte(path, '.');
            st = describe_updated(&ov, &nv, path, b);
        } else if (st == NDB_OK || st == NDB_ENOTFOUND) {
            ndb_doc_key(b, (const char *)path->data, path->len);
            st = ndb_doc_value(b, &nv);
        }
        path->len = at;
        if (st != NDB_OK)
            return st;
    }
    return path->oom ? NDB_ENOMEM : it.st;
}

static ndb_status describe_removed(const ndb_doc_val *o, const ndb_doc_val *n, dbuf *path, ndb_doc_builder *b)
{
    ndb_doc_iter it;
    ndb_doc_iter_init(&it, o);
    const char *k;
    size_t kl;
    ndb_doc_val ov, nv;
    while (ndb_doc_iter_next(&it, &k, &kl, &ov)) {
        size_t at = path->len;
        dbuf_put(path, k, kl);
        ndb_status st = ndb_doc_get_field(n, k, kl, &nv);
        if (st == NDB_ENOTFOUND) {
            st = ndb_doc_string(b, (const char *)path->data, path->len);
        } else if (st == NDB_OK && ov.type == NDB_DOC_OBJECT && nv.type == NDB_DOC_OBJECT && nv.u.c.count > 0 &&
                   (ov.raw_len != nv.raw_len || memcmp(ov.raw, nv.raw, nv.raw_len) != 0)) {
            dbuf_byte(path, '.');
            st = describe_removed(&ov, &nv, path, b);
        }
        path->len = at;
        if (st != NDB_OK)
            return st;
    }
    return path->oom ? NDB_ENOMEM : it.st;
}

ndb_status chg_describe(const ndb_doc_val *old, const ndb_doc_val *nu, ndb_doc_builder *b)
{
    dbuf path = {0};
    ndb_doc_builder_reset(b);
    ndb_doc_begin_object(b);
    ndb_doc_key(b, "updatedFields", 13);
    ndb_doc_begin_object(b);
    ndb_status st = describe_updated(old, nu, &path, b);
    ndb_doc_end_object(b);
    ndb_doc_key(b, "removedFields", 13);
    ndb_doc_begin_array(b);
    if (st == NDB_OK)
        st = describe_removed(old, nu, &path, b);
    ndb_doc_end_array(b);
    ndb_doc_end_object(b);
    dbuf_free(&path);
    return st;
}

/* ------------------------------------------------------------- watches */

typedef struct wstage {
    ndb_doc_filter *match; /* $match, or NULL for a reshaping stage */
    reshape rs;
} wstage;

struct ndb_doc_watch {
    ndb_doc_db *db;
    char coll[NDB_DOC_MAX_COLL_NAME + 1]; /* "" for every collection */
    bool update_lookup;
    uint64_t seq;     /* the position: after entry idx of record seq */
    uint32_t idx;     /* CHG_WHOLE: after the whole record */
    /* the record being read (record recseq); its entries below skip were
     * delivered before the stream resumed inside it */
    void *rec;
    uint64_t recseq;
    const uint8_t *p, *end;
    uint32_t ei;      /* the index of the entry at p */
    uint32_t skip;
    int64_t wall;
    bool invalidate, closed;
    uint8_t *pipeline; /* owned copy: the stages borrow it */
    wstage *stages;
    int nstages;
    ndb_doc_builder *ev;
    char hex[2 * NDB_DOC_TOKEN_LEN + 1];
};

static void token_of(uint64_t seq, uint32_t idx, uint8_t tok[NDB_DOC_TOKEN_LEN])
{
    tok[0] = CHG_TOKEN_VERSION;
    for (int i = 0; i < 8; i++)
        tok[1 + i] = (uint8_t)(seq >> (56 - 8 * i));
    for (int i = 0; i < 4; i++)
        tok[9 + i] = (uint8_t)(idx >> (24 - 8 * i));
}

void ndb_doc_watch_token(const ndb_doc_watch *w, uint8_t tok[NDB_DOC_TOKEN_LEN])
{
    token_of(w->seq, w->idx, tok);
}

static ndb_status compile_pipeline(ndb_doc_watch *w, const void *p, size_t len, ndb_errmsg *msg)
{
    ndb_doc_val arr, sv, v;
    if (ndb_doc_validate(p, len, msg) != NDB_OK || ndb_doc_root(p, len, &arr) != NDB_OK ||
        arr.type != NDB_DOC_ARRAY)
        return ndb_errmsg_set(msg, NDB_EINVAL, "a change stream's pipeline must be an array of stages");
    if ((w->pipeline = malloc(len)) == NULL ||
        (w->stages = calloc(arr.u.c.count ? arr.u.c.count : 1, sizeof *w->stages)) == NULL)
        return NDB_ENOMEM;
    memcpy(w->pipeline, p, len);
    ndb_doc_root(w->pipeline, len, &arr);
    ndb_doc_iter it;
    ndb_doc_iter_init(&it, &arr);
    for (int i = 0; ndb_doc_iter_next(&it, NULL, NULL, &sv); i++) {
        const char *k;
        size_t kl;
        ndb_doc_iter si;
        ndb_doc_iter_init(&si, &sv);
        if (sv.type != NDB_DOC_OBJECT || sv.u.c.count != 1 || !ndb_doc_iter_next(&si, &k, &kl, &v))
            return ndb_errmsg_set(msg, NDB_EINVAL, "pipeline[%d]: a stage is an object with one field", i);
        wstage *s = &w->stages[w->nstages];
        ndb_status st;
        if (key_is(k, kl, "$match")) {
            if (v.type != NDB_DOC_OBJECT)
                return ndb_errmsg_set(msg, NDB_EINVAL, "pipeline[%d]: $match takes an object", i);
            uint8_t *f = malloc(v.raw_len + 1); /* the filter as a document of its own */
            if (f == NULL)
                return NDB_ENOMEM;
            f[0] = DOC_HDR;
            memcpy(f + 1, v.raw, v.raw_len);
            st = ndb_doc_filter_compile(f, v.raw_len + 1, &s->match, msg);
            free(f);
        } else {
            static const struct {
                const char *name;
                reshape_kind kind;
            } kinds[] = {{"$project", RS_PROJECT},         {"$addFields", RS_ADDFIELDS},
                         {"$set", RS_ADDFIELDS},           {"$unset", RS_UNSET},
                         {"$replaceRoot", RS_REPLACEROOT}, {"$replaceWith", RS_REPLACEWITH}};
            size_t j = 0;
            while (j < sizeof kinds / sizeof *kinds && !key_is(k, kl, kinds[j].name))
                j++;
            if (j == sizeof kinds / sizeof *kinds)
                return ndb_errmsg_set(msg, NDB_EINVAL,
                                      "pipeline[%d]: a change stream takes only $match, $project, $addFields, "
                                      "$set, $unset, $replaceRoot and $replaceWith, not %.*s",
                                      i, (int)kl, k);
            st = reshape_compile(&s->rs, kinds[j].kind, &v, msg);
        }
        if (st != NDB_OK)
            return st;
        w->nstages++;
    }
    return it.st;
}

ndb_status ndb_doc_watch_open(ndb_doc_db *db, const ndb_doc_watch_opts *o, ndb_doc_watch **out, ndb_errmsg *msg)
{
    chglog *L = db->chg;
    if (L == NULL)
        return ndb_errmsg_set(msg, NDB_EUNIMPL, "this database keeps no change log");
    ndb_status st;
    if (o->collection != NULL && (st = cat_check_name(o->collection, msg)) != NDB_OK)
        return st;
    uint64_t seq;
    uint32_t idx = CHG_WHOLE;
    if (o->resume_after != NULL && o->resume_len > 0) {
        const uint8_t *t = o->resume_after;
        if (o->resume_len != NDB_DOC_TOKEN_LEN || t[0] != CHG_TOKEN_VERSION)
            return ndb_errmsg_set(msg, NDB_EINVAL, "resume_after: not a resume token of this server");
        seq = 0;
        for (int i = 0; i < 8; i++)
            seq = seq << 8 | t[1 + i];
        idx = (uint32_t)t[9] << 24 | (uint32_t)t[10] << 16 | (uint32_t)t[11] << 8 | t[12];
        pthread_mutex_lock(&L->mu);
        uint64_t next = L->next;
        pthread_mutex_unlock(&L->mu);
        uint64_t need = idx == CHG_WHOLE ? seq + 1 : seq;
        if (need >= next + 1)
            return ndb_errmsg_set(msg, NDB_EINVAL, "resume_after: the token is ahead of this database's change log");
        if (need < atomic_load(&L->first))
            return ndb_errmsg_set(msg, NDB_ERANGE,
                                  "the change log no longer holds the events after this resume token (it keeps "
                                  "sequence %llu on); start a new stream",
                                  (unsigned long long)atomic_load(&L->first));
    } else {
        pthread_mutex_lock(&L->mu);
        seq = L->next - 1;
        pthread_mutex_unlock(&L->mu);
    }
    ndb_doc_watch *w = calloc(1, sizeof *w);
    if (w == NULL)
        return NDB_ENOMEM;
    w->db = db;
    w->seq = seq;
    w->idx = idx;
    w->update_lookup = o->update_lookup;
    if (o->collection != NULL)
        snprintf(w->coll, sizeof w->coll, "%s", o->collection);
    st = ndb_doc_builder_new(&w->ev);
    if (st == NDB_OK && o->pipeline != NULL)
        st = compile_pipeline(w, o->pipeline, o->pipeline_len, msg);
    atomic_fetch_add(&L->watchers, 1);
    if (st != NDB_OK) {
        ndb_doc_watch_close(w);
        return st;
    }
    *out = w;
    return NDB_OK;
}

void ndb_doc_watch_close(ndb_doc_watch *w)
{
    if (w == NULL)
        return;
    atomic_fetch_sub(&w->db->chg->watchers, 1);
    for (int i = 0; i < w->nstages; i++) {
        if (w->stages[i].match)
            ndb_doc_filter_free(w->stages[i].match);
        else
            reshape_free(&w->stages[i].rs);
    }
    free(w->stages);
    free(w->pipeline);
    free(w->rec);
    ndb_doc_builder_free(w->ev);
    free(w);
}

/* Loads record seq into w: NDB_OK, NDB_ENOTFOUND (not visible yet), or an error. */
static ndb_status load_record(ndb_doc_watch *w, uint64_t seq, ndb_errmsg *msg)
{
    uint8_t k[10];
    rec_key(k, seq);
    void *v;
    size_t vl;
    ndb_status st = ndb_kv_get(w->db->kv, NULL, k, sizeof k, &v, &vl);
    if (st == NDB_ENOTFOUND)
        return st;
    if (st != NDB_OK)
        return db_kvfail(w->db, msg, st, "reading the change log");
    uint8_t *rec = v, *ents = NULL;
    size_t elen = 0;
    if (vl >= CHG_HEADER && rec[0] == CHG_REC_VERSION) {
        ents = rec + CHG_HEADER;
        elen = vl - CHG_HEADER;
    } else if (vl > CHG_LZ4_HEADER && rec[0] == CHG_REC_LZ4 && (elen = rd32(rec + CHG_HEADER)) <= CHG_LZ4_MAX &&
               vl - CHG_LZ4_HEADER <= INT_MAX) {
        if ((ents = malloc(elen ? elen : 1)) == NULL) {
            free(v);
            return ndb_errmsg_set(msg, NDB_ENOMEM, "reading the change log: out of memory");
        }
        int d = LZ4_decompress_safe((const char *)rec + CHG_LZ4_HEADER, (char *)ents, (int)(vl - CHG_LZ4_HEADER),
                                    (int)elen);
        if (d < 0 || (size_t)d != elen) {
            free(ents);
            ents = NULL;
        }
    }
    if (ents == NULL) {
        free(v);
        return ndb_errmsg_set(msg, NDB_ECORRUPT, "change log record %llu is damaged", (unsigned long long)seq);
    }
    w->wall = (int64_t)rd64(rec + 1);
    if (ents != rec + CHG_HEADER) {
        free(v);
        v = ents;
    }
    free(w->rec);
    w->rec = v;
    w->recseq = seq;
    w->p = ents;
    w->end = ents + elen;
    w->ei = 0;
    w->skip = seq == w->seq && w->idx != CHG_WHOLE ? w->idx + 1 : 0;
    return NDB_OK;
}

typedef struct chg_entry {
    chg_op op;
    const char *coll, *id;
    size_t clen, idlen;
    const uint8_t *payload;
    size_t plen;
} chg_entry;

static bool read_entry(ndb_doc_watch *w, chg_entry *e)
{
    const uint8_t *p = w->p, *end = w->end;
    uint64_t n;
    if (p >= end || p[0] < CHG_INSERT || p[0] > CHG_DROP)
        return false;
    e->op = (chg_op)*p++;
    if ((p = varint_get(p, end, &n, 10)) == NULL || n > (uint64_t)(end - p) || n > NDB_DOC_MAX_COLL_NAME)
        return false;
    e->coll = (const char *)p;
    e->clen = (size_t)n;
    p += n;
    if ((p = varint_get(p, end, &n, 10)) == NULL || n > (uint64_t)(end - p) || n > NDB_DOC_MAX_ID)
        return false;
    e->id = (const char *)p;
    e->idlen = (size_t)n;
    p += n;
    if ((p = varint_get(p, end, &n, 10)) == NULL || n > (uint64_t)(end - p))
        return false;
    e->payload = p;
    e->plen = (size_t)n;
    w->p = p + n;
    return true;
}

static const char *op_name(chg_op op)
{
    switch (op) {
    case CHG_INSERT: return "insert";
    case CHG_UPDATE: return "update";
    case CHG_REPLACE: return "replace";
    case CHG_DELETE: return "delete";
    case CHG_DROP: return "drop";
    }
    return "?";
}

/* The event's _id: {"_data": token as hex}, and its time. */
static void event_head(ndb_doc_watch *w, const char *op)
{
    uint8_t tok[NDB_DOC_TOKEN_LEN];
    token_of(w->seq, w->idx, tok);
    for (int i = 0; i < NDB_DOC_TOKEN_LEN; i++)
        snprintf(w->hex + 2 * i, 3, "%02x", tok[i]);
    ndb_doc_builder *b = w->ev;
    ndb_doc_builder_reset(b);
    ndb_doc_begin_object(b);
    ndb_doc_key(b, "_id", 3);
    ndb_doc_begin_object(b);
    ndb_doc_key(b, "_data", 5);
    ndb_doc_string(b, w->hex, 2 * NDB_DOC_TOKEN_LEN);
    ndb_doc_end_object(b);
    ndb_doc_key(b, "operationType", 13);
    ndb_doc_string(b, op, strlen(op));
    ndb_doc_key(b, "wallTime", 8);
    ndb_doc_date(b, w->wall);
}

static ndb_status build_event(ndb_doc_watch *w, const chg_entry *e, ndb_errmsg *msg)
{
    ndb_doc_builder *b = w->ev;
    event_head(w, op_name(e->op));
    ndb_doc_key(b, "ns", 2);
    ndb_doc_begin_object(b);
    ndb_doc_key(b, "db", 2);
    ndb_doc_string(b, "nexadb", 6);
    ndb_doc_key(b, "coll", 4);
    ndb_doc_string(b, e->coll, e->clen);
    ndb_doc_end_object(b);
    ndb_status st = NDB_OK;
    if (e->op != CHG_DROP) {
        ndb_doc_key(b, "documentKey", 11);
        ndb_doc_begin_object(b);
        ndb_doc_key(b, "_id", 3);
        ndb_doc_string(b, e->id, e->idlen);
        ndb_doc_end_object(b);
    }
    ndb_doc_val pv;
    if (e->op == CHG_INSERT || e->op == CHG_REPLACE || e->op == CHG_UPDATE) {
        if (ndb_doc_validate(e->payload, e->plen, NULL) != NDB_OK || !doc_root_obj(e->payload, e->plen, &pv))
            return ndb_errmsg_set(msg, NDB_ECORRUPT, "change log record %llu holds a damaged document",
                                  (unsigned long long)w->seq);
    }
    if (e->op == CHG_INSERT || e->op == CHG_REPLACE) {
        ndb_doc_key(b, "fullDocument", 12);
        ndb_doc_value(b, &pv);
    } else if (e->op == CHG_UPDATE) {
        ndb_doc_key(b, "updateDescription", 17);
        ndb_doc_value(b, &pv);
        if (w->update_lookup) {
            char cname[NDB_DOC_MAX_COLL_NAME + 1];
            memcpy(cname, e->coll, e->clen);
            cname[e->clen] = 0;
            void *d = NULL;
            size_t dl;
            ndb_doc_val dv;
            ndb_doc_key(b, "fullDocument", 12);
            st = ndb_doc_get(w->db, cname, e->id, e->idlen, &d, &dl, msg);
            if (st == NDB_OK && doc_root_obj(d, dl, &dv))
                ndb_doc_value(b, &dv);
            else if (st == NDB_OK || st == NDB_ENOTFOUND)
                ndb_doc_null(b);
            free(d);
            if (st == NDB_ENOTFOUND)
                st = NDB_OK;
        }
    }
    ndb_doc_end_object(b);
    return st;
}

/* Runs the finished event through the pipeline: 1 with the output, 0 when a
 * $match dropped it, or a negative status. */
static int run_pipeline(ndb_doc_watch *w, const void **ev, size_t *len, ndb_errmsg *msg)
{
    ndb_status st = ndb_doc_builder_finish(w->ev, ev, len);
    if (st != NDB_OK)
        return ndb_errmsg_set(msg, st, "a change event exceeds the document size limit");
    for (int i = 0; i < w->nstages; i++) {
        wstage *s = &w->stages[i];
        if (s->match) {
            int m = ndb_doc_filter_match(s->match, *ev, *len);
            if (m < 0)
                return ndb_errmsg_set(msg, (ndb_status)m, "pipeline[%d]: $match failed on an event", i);
            if (m == 0)
                return 0;
        } else {
            ndb_doc_val root;
            const uint8_t *d;
            size_t dl;
            ndb_doc_root(*ev, *len, &root);
            int r = reshape_apply(&s->rs, &root, &d, &dl, msg);
            if (r < 0)
                return r;
            *ev = d;
            *len = dl;
        }
    }
    return 1;
}

/* Waits until the log changes after gen g or until limit (CLOCK_MONOTONIC ns). */
static void wait_change(chglog *L, uint64_t g, int64_t limit)
{
    struct timespec ts = {.tv_sec = limit / 1000000000, .tv_nsec = limit % 1000000000};
    pthread_mutex_lock(&L->wmu);
    while (atomic_load(&L->gen) == g && mono_ns() < limit)
        pthread_cond_timedwait(&L->wcv, &L->wmu, &ts);
    pthread_mutex_unlock(&L->wmu);
}

ndb_status ndb_doc_watch_next(ndb_doc_watch *w, int64_t wait_ns, const void **ev, size_t *len, ndb_errmsg *msg)
{
    chglog *L = w->db->chg;
    int64_t limit = mono_ns() + (wait_ns > 0 ? wait_ns : 0);
    for (;;) {
        if (w->closed)
            return ndb_errmsg_set(msg, NDB_ECLOSED, "the watched collection was dropped");
        if (w->invalidate) {
            w->closed = true;
            event_head(w, "invalidate");
            ndb_doc_end_object(w->ev);
            return ndb_doc_builder_finish(w->ev, ev, len);
        }
        chg_entry e;
        if (w->rec != NULL && w->p < w->end) {
            if (!read_entry(w, &e))
                return ndb_errmsg_set(msg, NDB_ECORRUPT, "change log record %llu is damaged",
                                      (unsigned long long)w->recseq);
            uint32_t i = w->ei++;
            if (i >= w->skip || w->p >= w->end) { /* the position moves past it */
                w->seq = w->recseq;
                w->idx = w->p < w->end ? i : CHG_WHOLE;
            }
            if (i < w->skip)
                continue;
            if (w->coll[0] && !(e.clen == strlen(w->coll) && memcmp(e.coll, w->coll, e.clen) == 0))
                continue;
            if (w->coll[0] && e.op == CHG_DROP)
                w->invalidate = true;
            ndb_status st = build_event(w, &e, msg);
            if (st != NDB_OK)
                return st;
            int r = run_pipeline(w, ev, len, msg);
            if (r < 0)
                return (ndb_status)r;
            if (r == 1)
                return NDB_OK;
            continue;
        }
        uint64_t target = w->rec != NULL ? w->recseq + 1 : w->idx != CHG_WHOLE ? w->seq : w->seq + 1;
        uint64_t g = atomic_load(&L->gen);
        ndb_status st = load_record(w, target, msg);
        if (st == NDB_OK)
            continue;
        if (st != NDB_ENOTFOUND)
            return st;
        if (target < atomic_load(&L->first))
            return ndb_errmsg_set(msg, NDB_ERANGE,
                                  "the change log was trimmed past this stream's position (it keeps sequence "
                                  "%llu on); the stream fell behind the retention",
                                  (unsigned long long)atomic_load(&L->first));
        if (mono_ns() >= limit)
            return NDB_ETIMEDOUT;
        wait_change(L, g, limit);
    }
}

/* ------------------------------------------------------ retention, info */

void ndb_doc_changes_info_get(ndb_doc_db *db, ndb_doc_changes_info *out)
{
    memset(out, 0, sizeof *out);
    chglog *L = db->chg;
    if (L == NULL)
        return;
    pthread_mutex_lock(&L->mu);
    out->first_seq = atomic_load(&L->first);
    out->next_seq = L->next;
    out->bytes = L->bytes;
    pthread_mutex_unlock(&L->mu);
    out->watchers = atomic_load(&L->watchers);
}

ndb_status ndb_doc_changes_trim(ndb_doc_db *db, int64_t now_ms, int64_t keep_ms, uint64_t keep_bytes,
                                uint32_t max, uint64_t *trimmed, ndb_errmsg *msg)
{
    chglog *L = db->chg;
    if (trimmed)
        *trimmed = 0;
    if (L == NULL || max == 0)
        return NDB_OK;
    pthread_mutex_lock(&L->trim_mu);
    pthread_mutex_lock(&L->mu);
    uint64_t bytes = L->bytes;
    pthread_mutex_unlock(&L->mu);
    uint8_t lo[10], hi[2] = {0, CHG_REC_KIND + 1};
    rec_key(lo, atomic_load(&L->first));
    ndb_kv_iter *it;
    ndb_kv_batch *b = NULL;
    ndb_status st = ndb_kv_iter_new(db->kv, NULL, lo, sizeof lo, hi, sizeof hi, &it);
    if (st != NDB_OK) {
        pthread_mutex_unlock(&L->trim_mu);
        return db_kvfail(db, msg, st, "reading the change log");
    }
    if ((st = ndb_kv_batch_new(&b)) != NDB_OK)
        goto out;
    uint64_t n = 0, freed = 0, last = 0;
    for (ndb_kv_iter_seek_first(it); ndb_kv_iter_valid(it) && n < max; ndb_kv_iter_next(it)) {
        size_t kl, vl;
        const uint8_t *k = ndb_kv_iter_key(it, &kl);
        const uint8_t *v = ndb_kv_iter_value(it, &vl);
        int64_t wall = vl >= CHG_HEADER ? (int64_t)rd64(v + 1) : 0;
        bool old = keep_ms > 0 && wall < now_ms - keep_ms;
        bool over = keep_bytes > 0 && bytes - freed > keep_bytes;
        if (kl != 10 || (!old && !over))
            break;
        if ((st = ndb_kv_batch_delete(b, k, kl)) != NDB_OK)
            goto out;
        freed += vl;
        last = rec_seq(k);
        n++;
    }
    if ((st = ndb_kv_iter_status(it)) != NDB_OK) {
        db_kvfail(db, msg, st, "reading the change log");
        goto out;
    }
    if (n > 0) {
        uint64_t ticket = 0;
        uint8_t sk[2] = {0, CHG_STATE_KIND}, sv[16];
        pthread_mutex_lock(&L->mu);
        wr64(sv, last + 1);
        wr64(sv + 8, L->bytes - freed);
        st = ndb_kv_batch_put(b, sk, 2, sv, sizeof sv);
        if (st == NDB_OK && (st = ndb_kv_write_append(db->kv, b, &ticket)) == NDB_OK) {
            atomic_store(&L->first, last + 1);
            L->bytes -= freed;
        }
        pthread_mutex_unlock(&L->mu);
        if (st == NDB_OK)
            st = ndb_kv_write_wait(db->kv, ticket);
        if (st != NDB_OK) {
            db_kvfail(db, msg, st, "trimming the change log");
            goto out;
        }
        wake(L);
        if (trimmed)
            *trimmed = n;
    }
out:
    if (b)
        ndb_kv_batch_free(b);
    ndb_kv_iter_free(it);
    pthread_mutex_unlock(&L->trim_mu);
    return st;
}
