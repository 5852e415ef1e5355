/*
 * coll.c — the database: a catalog of collections over ndb_kv, document
 * writes (one atomic kv batch per request, index entries included), reads
 * through streaming cursors over one kv snapshot, page tokens, index builds.
 *
 * Thread safety: db->lock (rwlock) guards the catalog array. Each collection
 * has a writer mutex held for the whole of a write request (read, check,
 * batch, commit), so unique checks and read-modify-write updates are exact;
 * readers never take it (they read a kv snapshot). A collection's index set
 * is an immutable, refcounted idx_set swapped under ixlock. Dropped
 * collections stay allocated (graveyard) until ndb_doc_close, so a cursor's
 * pointer never dangles.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "doc_int.h"

#define CAT_COLL 'c'  /* 0x00 'c' name -> collection metadata document */
#define CAT_STATS 's' /* 0x00 's' name -> u64 count, u64 bytes */
#define CAT_NEXT 'n'  /* 0x00 'n' -> u64 next prefix id */
#define BUILD_CHUNK 10000

/* ---------------------------------------------------------------- utils */

static void dlog(ndb_doc_db *db, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void dlog(ndb_doc_db *db, const char *fmt, ...)
{
    char line[300];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    if (db->opt.log)
        db->opt.log(db->opt.log_ctx, line);
    else
        fprintf(stderr, "nexadb doc: %s\n", line);
}

static ndb_status kvfail(ndb_doc_db *db, ndb_errmsg *msg, ndb_status st, const char *what)
{
    return ndb_errmsg_set(msg, st, "%s: %s (%s)", what, ndb_strerror(st), ndb_kv_last_error(db->kv));
}

static bool name_ok(const char *n)
{
    size_t l = n ? strlen(n) : 0;
    if (l == 0 || l > NDB_DOC_MAX_COLL_NAME)
        return false;
    for (size_t i = 0; i < l; i++) {
        char ch = n[i];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
              ch == '_' || ch == '-'))
            return false;
    }
    return true;
}

static ndb_status check_name(const char *n, ndb_errmsg *msg)
{
    if (!name_ok(n))
        return ndb_errmsg_set(msg, NDB_EINVAL,
                              "invalid collection name '%.70s': use [A-Za-z0-9_-]{1,64}",
                              n ? n : "(null)");
    return NDB_OK;
}

static void cat_key(dbuf *k, char kind, const char *name)
{
    k->len = 0;
    dbuf_byte(k, 0);
    dbuf_byte(k, (uint8_t)kind);
    if (name)
        dbuf_put(k, name, strlen(name));
}

static void doc_key(dbuf *k, const coll *c, const void *id, size_t idlen)
{
    k->len = 0;
    key_prefix(k, c->prefix);
    dbuf_put(k, id, idlen);
}

static bool prefix_range(uint64_t prefix, dbuf *lo, dbuf *hi)
{
    lo->len = hi->len = 0;
    key_prefix(lo, prefix);
    key_prefix(hi, prefix);
    hi->data[hi->len - 1]++; /* the last varint byte is < 0x80 */
    return !lo->oom && !hi->oom;
}

static void put_u64(uint8_t *p, uint64_t v)
{
    wr32(p, (uint32_t)v);
    wr32(p + 4, (uint32_t)(v >> 32));
}
static uint64_t get_u64(const uint8_t *p) { return (uint64_t)rd32(p) | (uint64_t)rd32(p + 4) << 32; }

void ndb_doc_options_init(ndb_doc_options *opt)
{
    memset(opt, 0, sizeof *opt);
    opt->max_doc_bytes = NDB_DOC_MAX_BYTES;
    opt->agg_mem_bytes = 100u << 20;
}

/* ------------------------------------------------------------- metadata */

/* {"prefix":n,"indexes":[{"name":s,"prefix":n,"fields":[{"f":path,"d":1|-1}],
 *   "unique":b,"multikey":b}]} */
static ndb_status meta_encode(const coll *c, const idx_set *s, ndb_doc_builder *b)
{
    ndb_doc_builder_reset(b);
    ndb_doc_begin_object(b);
    ndb_doc_key(b, "prefix", 6);
    ndb_doc_int(b, (int64_t)c->prefix);
    ndb_doc_key(b, "indexes", 7);
    ndb_doc_begin_array(b);
    for (int i = 0; s && i < s->n; i++) {
        const idx_def *d = &s->defs[i];
        ndb_doc_begin_object(b);
        ndb_doc_key(b, "name", 4);
        ndb_doc_string(b, d->name, strlen(d->name));
        ndb_doc_key(b, "prefix", 6);
        ndb_doc_int(b, (int64_t)d->prefix);
        ndb_doc_key(b, "fields", 6);
        ndb_doc_begin_array(b);
        for (int f = 0; f < d->nfields; f++) {
            ndb_doc_begin_object(b);
            ndb_doc_key(b, "f", 1);
            ndb_doc_string(b, d->field[f], strlen(d->field[f]));
            ndb_doc_key(b, "d", 1);
            ndb_doc_int(b, d->desc[f] ? -1 : 1);
            ndb_doc_end_object(b);
        }
        ndb_doc_end_array(b);
        ndb_doc_key(b, "unique", 6);
        ndb_doc_bool(b, d->unique);
        ndb_doc_key(b, "multikey", 8);
        ndb_doc_bool(b, d->multikey);
        ndb_doc_end_object(b);
    }
    ndb_doc_end_array(b);
    return ndb_doc_end_object(b);
}

static bool get_str(const ndb_doc_val *o, const char *k, char *out, size_t cap)
{
    ndb_doc_val v;
    if (ndb_doc_get_field(o, k, strlen(k), &v) != NDB_OK || v.type != NDB_DOC_STRING ||
        v.u.s.len == 0 || v.u.s.len >= cap)
        return false;
    memcpy(out, v.u.s.ptr, v.u.s.len);
    out[v.u.s.len] = 0;
    return true;
}

static bool get_int(const ndb_doc_val *o, const char *k, int64_t *out)
{
    ndb_doc_val v;
    if (ndb_doc_get_field(o, k, strlen(k), &v) != NDB_OK || v.type != NDB_DOC_INT)
        return false;
    *out = v.u.i;
    return true;
}

static bool get_bool(const ndb_doc_val *o, const char *k)
{
    ndb_doc_val v;
    return ndb_doc_get_field(o, k, strlen(k), &v) == NDB_OK && v.type == NDB_DOC_BOOL && v.u.b;
}

static bool idx_def_finish(idx_def *d)
{
    for (int f = 0; f < d->nfields; f++)
        if (path_split(d->field[f], strlen(d->field[f]), &d->path[f]) != NDB_OK)
            return false;
    return true;
}

static ndb_status meta_decode(const void *bytes, size_t len, coll *c, idx_set **out)
{
    ndb_doc_val root, arr, e;
    if (ndb_doc_validate(bytes, len, NULL) != NDB_OK || !doc_root_obj(bytes, len, &root))
        return NDB_ECORRUPT;
    int64_t pre;
    if (!get_int(&root, "prefix", &pre) || pre <= 0)
        return NDB_ECORRUPT;
    c->prefix = (uint64_t)pre;
    idx_set *s = calloc(1, sizeof *s);
    if (s == NULL)
        return NDB_ENOMEM;
    s->refs = 1;
    if (ndb_doc_get_field(&root, "indexes", 7, &arr) != NDB_OK || arr.type != NDB_DOC_ARRAY)
        goto bad;
    s->defs = calloc(arr.u.c.count ? arr.u.c.count : 1, sizeof *s->defs);
    if (s->defs == NULL) {
        free(s);
        return NDB_ENOMEM;
    }
    ndb_doc_iter it;
    ndb_doc_iter_init(&it, &arr);
    while (ndb_doc_iter_next(&it, NULL, NULL, &e)) {
        idx_def *d = &s->defs[s->n];
        ndb_doc_val fields, fe;
        if (e.type != NDB_DOC_OBJECT || !get_str(&e, "name", d->name, sizeof d->name) ||
            !get_int(&e, "prefix", &pre) || pre <= 0 ||
            ndb_doc_get_field(&e, "fields", 6, &fields) != NDB_OK ||
            fields.type != NDB_DOC_ARRAY || fields.u.c.count == 0 || fields.u.c.count > 4)
            goto bad;
        d->prefix = (uint64_t)pre;
        ndb_doc_iter fi;
        ndb_doc_iter_init(&fi, &fields);
        while (ndb_doc_iter_next(&fi, NULL, NULL, &fe)) {
            int64_t dir;
            if (fe.type != NDB_DOC_OBJECT ||
                !get_str(&fe, "f", d->field[d->nfields], sizeof d->field[0]) ||
                !get_int(&fe, "d", &dir))
                goto bad;
            d->desc[d->nfields++] = dir < 0;
        }
        d->unique = get_bool(&e, "unique");
        d->multikey = get_bool(&e, "multikey");
        if (!idx_def_finish(d))
            goto bad;
        s->n++;
    }
    *out = s;
    return NDB_OK;
bad:
    free(s->defs);
    free(s);
    return NDB_ECORRUPT;
}

/* ------------------------------------------------------------- catalog */

static idx_set *coll_ix(coll *c)
{
    pthread_mutex_lock(&c->ixlock);
    idx_set *s = c->ix;
    idx_set_ref(s);
    pthread_mutex_unlock(&c->ixlock);
    return s;
}

static void coll_set_ix(coll *c, idx_set *s)
{
    pthread_mutex_lock(&c->ixlock);
    idx_set *old = c->ix;
    c->ix = s;
    pthread_mutex_unlock(&c->ixlock);
    idx_set_unref(old);
}

static coll *coll_new(const char *name)
{
    coll *c = calloc(1, sizeof *c);
    if (c == NULL)
        return NULL;
    snprintf(c->name, sizeof c->name, "%s", name);
    pthread_mutex_init(&c->wlock, NULL);
    pthread_mutex_init(&c->ixlock, NULL);
    c->ix = calloc(1, sizeof *c->ix);
    if (c->ix == NULL) {
        free(c);
        return NULL;
    }
    c->ix->refs = 1;
    return c;
}

static void coll_free(coll *c)
{
    pthread_mutex_destroy(&c->wlock);
    pthread_mutex_destroy(&c->ixlock);
    idx_set_unref(c->ix);
    free(c);
}

/* Position of name in the sorted array (or where it would go). */
static size_t cat_pos(ndb_doc_db *db, const char *name, bool *found)
{
    size_t lo = 0, hi = db->ncolls;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        int r = strcmp(db->colls[mid]->name, name);
        if (r == 0) {
            *found = true;
            return mid;
        }
        if (r < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    *found = false;
    return lo;
}

static bool cat_insert(ndb_doc_db *db, coll *c)
{
    bool found;
    size_t pos = cat_pos(db, c->name, &found);
    if (db->ncolls == db->cap) {
        size_t cap = db->cap ? db->cap * 2 : 16;
        coll **a = realloc(db->colls, cap * sizeof *a);
        if (a == NULL)
            return false;
        db->colls = a;
        db->cap = cap;
    }
    memmove(db->colls + pos + 1, db->colls + pos, (db->ncolls - pos) * sizeof *db->colls);
    db->colls[pos] = c;
    db->ncolls++;
    return true;
}

/* The collection named name, or NULL. With nowait, NULL and *busy set
 * instead of waiting while the catalog is being changed. */
static coll *find_coll(ndb_doc_db *db, const char *name, bool nowait, bool *busy)
{
    *busy = false;
    if (!nowait) {
        pthread_rwlock_rdlock(&db->lock);
    } else if (pthread_rwlock_tryrdlock(&db->lock) != 0) {
        *busy = true;
        return NULL;
    }
    bool found;
    size_t pos = cat_pos(db, name, &found);
    coll *c = found ? db->colls[pos] : NULL;
    pthread_rwlock_unlock(&db->lock);
    return c;
}

coll *db_find_coll(ndb_doc_db *db, const char *name)
{
    bool busy;
    return find_coll(db, name, false, &busy);
}

/* As db_get_coll; with nowait, NDB_EBUSY instead of waiting for the catalog. */
static ndb_status get_coll(ndb_doc_db *db, const char *name, bool nowait, coll **out, ndb_errmsg *msg)
{
    ndb_status st = check_name(name, msg);
    if (st != NDB_OK)
        return st;
    bool busy;
    *out = find_coll(db, name, nowait, &busy);
    if (busy)
        return NDB_EBUSY;
    if (*out == NULL)
        return ndb_errmsg_set(msg, NDB_ENOTFOUND, "collection '%s' does not exist", name);
    return NDB_OK;
}

ndb_status db_get_coll(ndb_doc_db *db, const char *name, coll **out, ndb_errmsg *msg)
{
    return get_coll(db, name, false, out, msg);
}

/* Allocates a prefix id and persists the counter (caller holds db->lock for writing). */
static ndb_status alloc_prefix(ndb_doc_db *db, ndb_kv_batch *b, uint64_t *out)
{
    *out = db->next_prefix++;
    uint8_t v[8];
    put_u64(v, db->next_prefix);
    uint8_t k[2] = {0, CAT_NEXT};
    return ndb_kv_batch_put(b, k, 2, v, 8);
}

static ndb_status write_meta(ndb_doc_db *db, ndb_kv_batch *b, const coll *c, const idx_set *s)
{
    ndb_doc_builder *mb;
    ndb_status st = ndb_doc_builder_new(&mb);
    if (st != NDB_OK)
        return st;
    st = meta_encode(c, s, mb);
    const void *m;
    size_t ml;
    if (st == NDB_OK)
        st = ndb_doc_builder_finish(mb, &m, &ml);
    dbuf k = {0};
    cat_key(&k, CAT_COLL, c->name);
    if (st == NDB_OK)
        st = k.oom ? NDB_ENOMEM : ndb_kv_batch_put(b, k.data, k.len, m, ml);
    dbuf_free(&k);
    ndb_doc_builder_free(mb);
    (void)db;
    return st;
}

static ndb_status write_stats(ndb_kv_batch *b, const coll *c, uint64_t count, uint64_t bytes)
{
    uint8_t v[16];
    put_u64(v, count);
    put_u64(v + 8, bytes);
    dbuf k = {0};
    cat_key(&k, CAT_STATS, c->name);
    ndb_status st = k.oom ? NDB_ENOMEM : ndb_kv_batch_put(b, k.data, k.len, v, 16);
    dbuf_free(&k);
    return st;
}

/* Finds or (create) makes a collection. */
static ndb_status coll_open(ndb_doc_db *db, const char *name, bool create, bool excl, coll **out,
                            ndb_errmsg *msg)
{
    ndb_status st = check_name(name, msg);
    if (st != NDB_OK)
        return st;
    if (!excl && (*out = db_find_coll(db, name)) != NULL)
        return NDB_OK;
    if (!create)
        return ndb_errmsg_set(msg, NDB_ENOTFOUND, "collection '%s' does not exist", name);
    pthread_rwlock_wrlock(&db->lock);
    bool found;
    size_t pos = cat_pos(db, name, &found);
    if (found) {
        *out = db->colls[pos];
        pthread_rwlock_unlock(&db->lock);
        return excl ? ndb_errmsg_set(msg, NDB_EEXIST, "collection '%s' already exists", name)
                    : NDB_OK;
    }
    coll *c = coll_new(name);
    ndb_kv_batch *b = NULL;
    if (c == NULL || ndb_kv_batch_new(&b) != NDB_OK) {
        st = NDB_ENOMEM;
        goto fail;
    }
    uint64_t saved = db->next_prefix;
    st = alloc_prefix(db, b, &c->prefix);
    if (st == NDB_OK)
        st = write_meta(db, b, c, c->ix);
    if (st == NDB_OK)
        st = write_stats(b, c, 0, 0);
    if (st == NDB_OK && (st = ndb_kv_write(db->kv, b)) != NDB_OK)
        kvfail(db, msg, st, "creating collection");
    if (st == NDB_OK && !cat_insert(db, c))
        st = NDB_ENOMEM;
    if (st != NDB_OK) {
        db->next_prefix = saved;
        goto fail;
    }
    ndb_kv_batch_free(b);
    pthread_rwlock_unlock(&db->lock);
    *out = c;
    return NDB_OK;
fail:
    ndb_kv_batch_free(b);
    if (c)
        coll_free(c);
    pthread_rwlock_unlock(&db->lock);
    return st;
}

ndb_status ndb_doc_open(ndb_kv *kv, const ndb_doc_options *opt, ndb_doc_db **out, ndb_errmsg *msg)
{
    ndb_doc_db *db = calloc(1, sizeof *db);
    if (db == NULL)
        return NDB_ENOMEM;
    db->kv = kv;
    if (opt)
        db->opt = *opt;
    else
        ndb_doc_options_init(&db->opt);
    if (db->opt.max_doc_bytes == 0 || db->opt.max_doc_bytes > NDB_DOC_MAX_BYTES)
        db->opt.max_doc_bytes = NDB_DOC_MAX_BYTES;
    if (db->opt.agg_mem_bytes == 0)
        db->opt.agg_mem_bytes = 100u << 20;
    pthread_rwlock_init(&db->lock, NULL);
    if (getrandom(db->id_rand, sizeof db->id_rand, 0) != (ssize_t)sizeof db->id_rand) {
        uint64_t t = (uint64_t)time(NULL) ^ (uint64_t)(uintptr_t)db;
        memcpy(db->id_rand, &t, sizeof db->id_rand);
    }
    uint32_t ctr;
    if (getrandom(&ctr, sizeof ctr, 0) != (ssize_t)sizeof ctr)
        ctr = (uint32_t)time(NULL);
    db->id_counter = ctr & 0xFFFFFF;
    db->next_prefix = 1;
    ndb_status st;
    /* next prefix */
    uint8_t nk[2] = {0, CAT_NEXT};
    void *v;
    size_t vl;
    st = ndb_kv_get(kv, NULL, nk, 2, &v, &vl);
    if (st == NDB_OK) {
        if (vl == 8)
            db->next_prefix = get_u64(v);
        free(v);
        if (vl != 8) {
            st = ndb_errmsg_set(msg, NDB_ECORRUPT, "bad catalog counter");
            goto fail;
        }
    } else if (st != NDB_ENOTFOUND) {
        kvfail(db, msg, st, "reading catalog");
        goto fail;
    }
    /* collections */
    uint8_t lo[2] = {0, CAT_COLL}, hi[2] = {0, CAT_COLL + 1};
    ndb_kv_iter *it;
    st = ndb_kv_iter_new(kv, NULL, lo, 2, hi, 2, &it);
    if (st != NDB_OK)
        goto fail;
    for (ndb_kv_iter_seek_first(it); ndb_kv_iter_valid(it); ndb_kv_iter_next(it)) {
        size_t kl, ml;
        const uint8_t *k = ndb_kv_iter_key(it, &kl);
        const void *m = ndb_kv_iter_value(it, &ml);
        char name[NDB_DOC_MAX_COLL_NAME + 1];
        if (kl - 2 > NDB_DOC_MAX_COLL_NAME) {
            st = ndb_errmsg_set(msg, NDB_ECORRUPT, "bad catalog key");
            break;
        }
        memcpy(name, k + 2, kl - 2);
        name[kl - 2] = 0;
        coll *c = coll_new(name);
        if (c == NULL) {
            st = NDB_ENOMEM;
            break;
        }
        idx_set *s;
        st = meta_decode(m, ml, c, &s);
        if (st != NDB_OK) {
            coll_free(c);
            ndb_errmsg_set(msg, st, "bad catalog entry for collection '%s'", name);
            break;
        }
        coll_set_ix(c, s);
        dbuf sk = {0};
        cat_key(&sk, CAT_STATS, name);
        void *sv;
        size_t svl;
        if (ndb_kv_get(kv, NULL, sk.data, sk.len, &sv, &svl) == NDB_OK) {
            if (svl == 16) {
                c->count = get_u64(sv);
                c->bytes = get_u64((uint8_t *)sv + 8);
            }
            free(sv);
        }
        dbuf_free(&sk);
        if (!cat_insert(db, c)) {
            coll_free(c);
            st = NDB_ENOMEM;
            break;
        }
    }
    if (st == NDB_OK)
        st = ndb_kv_iter_status(it);
    ndb_kv_iter_free(it);
    if (st != NDB_OK)
        goto fail;
    *out = db;
    return NDB_OK;
fail:
    ndb_doc_close(db);
    return st;
}

void ndb_doc_close(ndb_doc_db *db)
{
    if (db == NULL)
        return;
    for (size_t i = 0; i < db->ncolls; i++)
        coll_free(db->colls[i]);
    free(db->colls);
    while (db->dead) {
        coll *n = db->dead->next_dead;
        coll_free(db->dead);
        db->dead = n;
    }
    pthread_rwlock_destroy(&db->lock);
    free(db);
}

ndb_status ndb_doc_create_collection(ndb_doc_db *db, const char *name, ndb_errmsg *msg)
{
    coll *c;
    return coll_open(db, name, true, true, &c, msg);
}

/* Deletes every key in [lo, hi) in bounded batches. */
static ndb_status delete_range(ndb_doc_db *db, const dbuf *lo, const dbuf *hi)
{
    ndb_kv_batch *b;
    ndb_status st = ndb_kv_batch_new(&b);
    if (st != NDB_OK)
        return st;
    for (;;) {
        ndb_kv_iter *it;
        st = ndb_kv_iter_new(db->kv, NULL, lo->data, lo->len, hi->data, hi->len, &it);
        if (st != NDB_OK)
            break;
        ndb_kv_batch_clear(b);
        for (ndb_kv_iter_seek_first(it); ndb_kv_iter_valid(it) && ndb_kv_batch_count(b) < BUILD_CHUNK;
             ndb_kv_iter_next(it)) {
            size_t kl;
            const void *k = ndb_kv_iter_key(it, &kl);
            if ((st = ndb_kv_batch_delete(b, k, kl)) != NDB_OK)
                break;
        }
        if (st == NDB_OK)
            st = ndb_kv_iter_status(it);
        ndb_kv_iter_free(it);
        if (st != NDB_OK || ndb_kv_batch_count(b) == 0)
            break;
        if ((st = ndb_kv_write(db->kv, b)) != NDB_OK)
            break;
    }
    ndb_kv_batch_free(b);
    return st;
}

static ndb_status delete_prefix(ndb_doc_db *db, uint64_t prefix)
{
    dbuf lo = {0}, hi = {0};
    ndb_status st = prefix_range(prefix, &lo, &hi) ? delete_range(db, &lo, &hi) : NDB_ENOMEM;
    dbuf_free(&lo);
    dbuf_free(&hi);
    return st;
}

ndb_status ndb_doc_drop_collection(ndb_doc_db *db, const char *name, ndb_errmsg *msg)
{
    ndb_status st = check_name(name, msg);
    if (st != NDB_OK)
        return st;
    pthread_rwlock_wrlock(&db->lock);
    bool found;
    size_t pos = cat_pos(db, name, &found);
    if (!found) {
        pthread_rwlock_unlock(&db->lock);
        return ndb_errmsg_set(msg, NDB_ENOTFOUND, "collection '%s' does not exist", name);
    }
    coll *c = db->colls[pos];
    pthread_mutex_lock(&c->wlock); /* wait for in-flight writers */
    ndb_kv_batch *b;
    st = ndb_kv_batch_new(&b);
    dbuf k = {0};
    if (st == NDB_OK) {
        cat_key(&k, CAT_COLL, name);
        st = ndb_kv_batch_delete(b, k.data, k.len);
        cat_key(&k, CAT_STATS, name);
        if (st == NDB_OK)
            st = ndb_kv_batch_delete(b, k.data, k.len);
        if (st == NDB_OK && (st = ndb_kv_write(db->kv, b)) != NDB_OK)
            kvfail(db, msg, st, "dropping collection");
        ndb_kv_batch_free(b);
    }
    dbuf_free(&k);
    if (st == NDB_OK) {
        memmove(db->colls + pos, db->colls + pos + 1, (db->ncolls - pos - 1) * sizeof *db->colls);
        db->ncolls--;
        c->dropped = true;
        c->next_dead = db->dead;
        db->dead = c;
    }
    pthread_rwlock_unlock(&db->lock);
    if (st == NDB_OK) {
        /* the catalog no longer names these prefixes; reclaim their keys */
        idx_set *s = coll_ix(c);
        st = delete_prefix(db, c->prefix);
        for (int i = 0; st == NDB_OK && s && i < s->n; i++)
            st = delete_prefix(db, s->defs[i].prefix);
        idx_set_unref(s);
        if (st != NDB_OK)
            dlog(db, "drop of '%s': reclaiming keys failed (%s); they are unreachable", name,
                 ndb_strerror(st));
        st = NDB_OK;
    }
    pthread_mutex_unlock(&c->wlock);
    return st;
}

ndb_status ndb_doc_list_collections(ndb_doc_db *db, ndb_doc_coll_info **out, size_t *n,
                                    ndb_errmsg *msg)
{
    (void)msg;
    pthread_rwlock_rdlock(&db->lock);
    ndb_doc_coll_info *a = calloc(db->ncolls ? db->ncolls : 1, sizeof *a);
    if (a == NULL) {
        pthread_rwlock_unlock(&db->lock);
        return NDB_ENOMEM;
    }
    for (size_t i = 0; i < db->ncolls; i++) {
        coll *c = db->colls[i];
        snprintf(a[i].name, sizeof a[i].name, "%s", c->name);
        a[i].count = __atomic_load_n(&c->count, __ATOMIC_RELAXED);
        a[i].bytes = __atomic_load_n(&c->bytes, __ATOMIC_RELAXED);
        idx_set *s = coll_ix(c);
        a[i].indexes = s ? (uint32_t)s->n : 0;
        idx_set_unref(s);
    }
    *n = db->ncolls;
    pthread_rwlock_unlock(&db->lock);
    *out = a;
    return NDB_OK;
}

/* --------------------------------------------------------- ids and time */

static void gen_id(ndb_doc_db *db, char out[25])
{
    static const char hex[] = "0123456789abcdef";
    uint8_t raw[12];
    uint32_t secs = (uint32_t)time(NULL);
    uint32_t ctr = __atomic_fetch_add(&db->id_counter, 1, __ATOMIC_RELAXED) & 0xFFFFFF;
    raw[0] = (uint8_t)(secs >> 24);
    raw[1] = (uint8_t)(secs >> 16);
    raw[2] = (uint8_t)(secs >> 8);
    raw[3] = (uint8_t)secs;
    memcpy(raw + 4, db->id_rand, 5);
    raw[9] = (uint8_t)(ctr >> 16);
    raw[10] = (uint8_t)(ctr >> 8);
    raw[11] = (uint8_t)ctr;
    for (int i = 0; i < 12; i++) {
        out[2 * i] = hex[raw[i] >> 4];
        out[2 * i + 1] = hex[raw[i] & 15];
    }
    out[24] = 0;
}

static void now_iso(char out[64])
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    snprintf(out, 64, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ", tm.tm_year + 1900, tm.tm_mon + 1,
             tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000);
}

/* ------------------------------------------------------ write requests */

typedef struct wctx {
    ndb_doc_db *db;
    coll *c;
    idx_set *ix;
    ndb_kv_batch *b;
    bmap uniq;    /* unique-index key -> 0 (deleted in this batch) or id ref */
    dbuf uniq_ids;
    bmap ids;     /* _ids inserted in this batch */
    idx_keys *keys;
    bool mk[64];  /* index i became multikey */
    bool mk_any;
    int64_t dcount, dbytes;
    dbuf key;
    ndb_doc_builder *b1, *b2;
    char now[64];
    bool batch_full; /* the kv refused to grow the batch (256 MiB WAL record) */
} wctx;

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

static ndb_status wctx_init(wctx *w, ndb_doc_db *db, coll *c)
{
    memset(w, 0, sizeof *w);
    w->db = db;
    w->c = c;
    now_iso(w->now);
    w->keys = calloc(1, sizeof *w->keys);
    if (w->keys == NULL || ndb_kv_batch_new(&w->b) != NDB_OK ||
        ndb_doc_builder_new(&w->b1) != NDB_OK || ndb_doc_builder_new(&w->b2) != NDB_OK)
        return NDB_ENOMEM;
    ndb_doc_builder_set_limit(w->b1, db->opt.max_doc_bytes);
    ndb_doc_builder_set_limit(w->b2, db->opt.max_doc_bytes);
    return NDB_OK;
}

static void wctx_free(wctx *w)
{
    idx_set_unref(w->ix);
    if (w->b)
        ndb_kv_batch_free(w->b);
    bmap_free(&w->uniq);
    bmap_free(&w->ids);
    dbuf_free(&w->uniq_ids);
    idx_keys_free(w->keys);
    dbuf_free(&w->key);
    ndb_doc_builder_free(w->b1);
    ndb_doc_builder_free(w->b2);
}

/* Takes the collection's writer lock and a stable view of its indexes. */
static ndb_status wctx_lock(wctx *w, ndb_errmsg *msg)
{
    pthread_mutex_lock(&w->c->wlock);
    if (w->c->dropped) {
        pthread_mutex_unlock(&w->c->wlock);
        return ndb_errmsg_set(msg, NDB_ENOTFOUND, "collection '%s' was dropped", w->c->name);
    }
    w->ix = coll_ix(w->c);
    return NDB_OK;
}

static ndb_status idx_remove(wctx *w, const ndb_doc_val *doc, const uint8_t *id, size_t idlen)
{
    for (int i = 0; w->ix && i < w->ix->n; i++) {
        const idx_def *d = &w->ix->defs[i];
        bool multi;
        if (idx_doc_keys(d, doc, (const char *)id, idlen, w->keys, &multi, NULL) != NDB_OK)
            continue; /* it could not have been indexed either */
        for (int k = 0; k < w->keys->n; k++) {
            const uint8_t *kp = w->keys->buf.data + w->keys->off[k];
            size_t kl = w->keys->off[k + 1] - w->keys->off[k];
            ndb_status st = wdel(w, kp, kl);
            if (st != NDB_OK)
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

static ndb_status idx_add(wctx *w, const ndb_doc_val *doc, const uint8_t *id, size_t idlen,
                          ndb_errmsg *msg)
{
    for (int i = 0; w->ix && i < w->ix->n; i++) {
        const idx_def *d = &w->ix->defs[i];
        bool multi;
        ndb_status st = idx_doc_keys(d, doc, (const char *)id, idlen, w->keys, &multi, msg);
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
                    st = ndb_kv_get(w->db->kv, NULL, kp, kl, &old, &ol);
                    if (st == NDB_OK) {
                        clash = ol != idlen || memcmp(old, id, idlen) != 0;
                        free(old);
                    } else if (st != NDB_ENOTFOUND) {
                        return kvfail(w->db, msg, st, "unique index check");
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

/* Writes stats (and index metadata if an index became multikey), commits the
 * batch, and publishes the new counters. Caller holds the writer lock. */
static ndb_status wctx_commit(wctx *w, ndb_errmsg *msg)
{
    coll *c = w->c;
    uint64_t count = (uint64_t)((int64_t)c->count + w->dcount);
    uint64_t bytes = (uint64_t)((int64_t)c->bytes + w->dbytes);
    ndb_status st = write_stats(w->b, c, count, bytes);
    idx_set *ns = NULL;
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
        st = write_meta(w->db, w->b, c, ns);
    }
    if (st == NDB_OK && (st = ndb_kv_write(w->db->kv, w->b)) != NDB_OK)
        kvfail(w->db, msg, st, "writing batch");
    if (st != NDB_OK) {
        idx_set_unref(ns);
        return st;
    }
    __atomic_store_n(&c->count, count, __ATOMIC_RELAXED);
    __atomic_store_n(&c->bytes, bytes, __ATOMIC_RELAXED);
    if (ns)
        coll_set_ix(c, ns);
    return NDB_OK;
}

static bool is_key(const char *k, size_t kl, const char *want)
{
    return kl == strlen(want) && memcmp(k, want, kl) == 0;
}

/* Builds the stored form of a new document into w->b1 and adds it to the
 * batch. doc is validated. id_out receives the _id (NUL-terminated). */
static ndb_status insert_doc(wctx *w, const ndb_doc_val *doc, size_t index, char *id_out,
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
    ndb_doc_builder *b = w->b1;
    ndb_doc_builder_reset(b);
    ndb_doc_begin_object(b);
    ndb_doc_key(b, "_id", 3);
    ndb_doc_string(b, id, idlen);
    ndb_doc_key(b, "_created_at", 11);
    ndb_doc_string(b, w->now, strlen(w->now));
    ndb_doc_key(b, "_updated_at", 11);
    ndb_doc_string(b, w->now, strlen(w->now));
    ndb_doc_iter it;
    ndb_doc_iter_init(&it, doc);
    const char *k;
    size_t kl;
    ndb_doc_val e;
    while (ndb_doc_iter_next(&it, &k, &kl, &e)) {
        if (is_key(k, kl, "_id") || is_key(k, kl, "_created_at") || is_key(k, kl, "_updated_at"))
            continue;
        ndb_doc_key(b, k, kl);
        ndb_doc_value(b, &e);
    }
    ndb_doc_end_object(b);
    const void *out;
    size_t olen;
    ndb_status st = ndb_doc_builder_finish(b, &out, &olen);
    if (st == NDB_ETOOBIG)
        return ndb_errmsg_set(msg, st, "document %zu exceeds the %zu-byte limit", index,
                              w->db->opt.max_doc_bytes);
    if (st != NDB_OK)
        return ndb_errmsg_set(msg, st, "document %zu: %s", index, ndb_strerror(st));
    /* a generated id is unique by construction (seconds, per-process random
     * bytes, counter): only a client's own _id needs the duplicate check */
    bool fresh = true;
    if (id != gen && bmap_upsert(&w->ids, id, idlen, 0, &fresh) == NULL)
        return NDB_ENOMEM;
    doc_key(&w->key, w->c, id, idlen);
    if (fresh && id != gen) {
        void *old;
        size_t ol;
        st = ndb_kv_get(w->db->kv, NULL, w->key.data, w->key.len, &old, &ol);
        if (st == NDB_OK) {
            free(old);
            fresh = false;
        } else if (st != NDB_ENOTFOUND) {
            return kvfail(w->db, msg, st, "checking _id");
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

ndb_status ndb_doc_insert(ndb_doc_db *db, const char *cname, const void *const *docs,
                          const size_t *lens, size_t n, char ***ids, ndb_errmsg *msg)
{
    if (n == 0)
        return ndb_errmsg_set(msg, NDB_EINVAL, "no documents to insert");
    /* validate before taking any lock */
    for (size_t i = 0; i < n; i++) {
        ndb_doc_val r;
        if (lens[i] > db->opt.max_doc_bytes)
            return ndb_errmsg_set(msg, NDB_ETOOBIG, "document %zu of %zu bytes exceeds the %zu-byte limit",
                                  i, lens[i], db->opt.max_doc_bytes);
        ndb_status st = ndb_doc_validate(docs[i], lens[i], msg);
        if (st != NDB_OK)
            return ndb_errmsg_set(msg, NDB_EINVAL, "document %zu is not a valid encoding", i);
        if (!doc_root_obj(docs[i], lens[i], &r))
            return ndb_errmsg_set(msg, NDB_EINVAL, "document %zu is not an object", i);
    }
    coll *c;
    ndb_status st = coll_open(db, cname, true, false, &c, msg);
    if (st != NDB_OK)
        return st;
    char **out = NULL;
    if (ids && (out = calloc(n, sizeof *out)) == NULL)
        return NDB_ENOMEM;
    wctx w;
    st = wctx_init(&w, db, c);
    if (st == NDB_OK)
        st = wctx_lock(&w, msg);
    else
        goto done;
    if (st == NDB_ENOTFOUND) { /* wctx_lock: the collection was dropped */
        /* dropped between lookup and lock: insert creates it again, once */
        if ((st = coll_open(db, cname, true, false, &c, msg)) == NDB_OK) {
            w.c = c;
            st = wctx_lock(&w, msg);
        }
    }
    if (st != NDB_OK)
        goto done;
    char idbuf[NDB_DOC_MAX_ID + 1];
    for (size_t i = 0; st == NDB_OK && i < n; i++) {
        ndb_doc_val r;
        ndb_doc_root(docs[i], lens[i], &r);
        st = insert_doc(&w, &r, i, idbuf, msg);
        if (st == NDB_OK && out && (out[i] = strdup(idbuf)) == NULL)
            st = NDB_ENOMEM;
    }
    if (st == NDB_OK)
        st = wctx_commit(&w, msg);
    st = st == NDB_OK ? st : batch_full_msg(&w, st, msg);
    pthread_mutex_unlock(&c->wlock);
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

static ndb_status get_doc(ndb_doc_db *db, bool nowait, const char *cname, const char *id, size_t idlen,
                          void **doc, size_t *len, ndb_errmsg *msg)
{
    coll *c;
    ndb_status st = get_coll(db, cname, nowait, &c, msg);
    if (st != NDB_OK)
        return st;
    if (idlen == 0 || idlen > NDB_DOC_MAX_ID)
        return ndb_errmsg_set(msg, NDB_ENOTFOUND, "no document with that _id");
    dbuf k = {0};
    doc_key(&k, c, id, idlen);
    if (k.oom)
        return NDB_ENOMEM;
    st = (nowait ? ndb_kv_try_get : ndb_kv_get)(db->kv, NULL, k.data, k.len, doc, len);
    dbuf_free(&k);
    if (st == NDB_EBUSY)
        return st;
    if (st == NDB_ENOTFOUND)
        return ndb_errmsg_set(msg, st, "no document with _id '%.*s' in %s",
                              (int)(idlen > 64 ? 64 : idlen), id, cname);
    if (st != NDB_OK)
        return kvfail(db, msg, st, "reading document");
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
    return get_doc(db, false, cname, id, idlen, doc, len, msg);
}

ndb_status ndb_doc_try_get(ndb_doc_db *db, const char *cname, const char *id, size_t idlen, void **doc,
                           size_t *len, ndb_errmsg *msg)
{
    return get_doc(db, true, cname, id, idlen, doc, len, msg);
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
    st = upd_set_top(&md, "_updated_at", 11, &ts, w->b1);
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
    doc_key(&w->key, w->c, id, idlen);
    st = wput(w, w->key.data, w->key.len, nd, ndl);
    w->dbytes += (int64_t)ndl - (int64_t)oldlen;
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
                          const void *update, size_t len, ndb_errmsg *msg)
{
    coll *c;
    ndb_status st = db_get_coll(db, cname, &c, msg);
    if (st != NDB_OK)
        return st;
    upd_spec *u;
    if ((st = compile_update(update, len, &u, msg)) != NDB_OK)
        return st;
    wctx w;
    if ((st = wctx_init(&w, db, c)) != NDB_OK || (st = wctx_lock(&w, msg)) != NDB_OK) {
        wctx_free(&w);
        upd_free(u);
        return st;
    }
    void *old = NULL;
    size_t oldlen;
    doc_key(&w.key, c, id, idlen);
    st = idlen && idlen <= NDB_DOC_MAX_ID ? ndb_kv_get(db->kv, NULL, w.key.data, w.key.len, &old, &oldlen)
                                          : NDB_ENOTFOUND;
    if (st == NDB_ENOTFOUND)
        ndb_errmsg_set(msg, st, "no document with _id '%.*s' in %s", (int)(idlen > 64 ? 64 : idlen),
                       id, cname);
    else if (st != NDB_OK)
        kvfail(db, msg, st, "reading document");
    bool modified = false;
    if (st == NDB_OK)
        st = update_one(&w, u, (const uint8_t *)id, idlen, old, oldlen, &modified, msg);
    if (st == NDB_OK && modified)
        st = wctx_commit(&w, msg);
    pthread_mutex_unlock(&c->wlock);
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

static ndb_status for_each_match(wctx *w, ndb_doc_filter *f, match_visitor visit, void *arg, ndb_errmsg *msg)
{
    ndb_doc_cursor *cur = NULL;
    ndb_status st = cur_open(w->db, w->c, f, NULL, NULL, &cur, msg);
    const uint8_t *d;
    size_t dl;
    int got;
    while (st == NDB_OK && (got = cur_src_next(cur, &d, &dl, msg)) != 0) {
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
                               const void *update, size_t ulen, int upsert,
                               ndb_doc_update_result *res, ndb_errmsg *msg)
{
    ndb_doc_update_result r = {0};
    coll *c;
    ndb_status st = check_name(cname, msg);
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
    st = coll_open(db, cname, upsert != 0, false, &c, msg);
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
    if ((st = wctx_init(&w, db, c)) != NDB_OK || (st = wctx_lock(&w, msg)) != NDB_OK) {
        wctx_free(&w);
        ndb_doc_filter_free(f);
        upd_free(u);
        return st;
    }
    update_visit uv = {u, &r};
    st = for_each_match(&w, f, update_visitor, &uv, msg);
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
                st = insert_doc(&w, &nv, 0, r.upserted_id, msg);
                free(nd);
            }
            free(bd);
        }
    }
    if (st == NDB_OK && (r.modified || r.upserted_id[0]))
        st = wctx_commit(&w, msg);
    st = st == NDB_OK ? st : batch_full_msg(&w, st, msg);
    pthread_mutex_unlock(&c->wlock);
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
    doc_key(&w->key, w->c, id, idlen);
    w->dcount--;
    w->dbytes -= (int64_t)oldlen;
    return wdel(w, w->key.data, w->key.len);
}

ndb_status ndb_doc_delete(ndb_doc_db *db, const char *cname, const char *id, size_t idlen,
                          ndb_errmsg *msg)
{
    coll *c;
    ndb_status st = db_get_coll(db, cname, &c, msg);
    if (st != NDB_OK)
        return st;
    wctx w;
    if ((st = wctx_init(&w, db, c)) != NDB_OK || (st = wctx_lock(&w, msg)) != NDB_OK) {
        wctx_free(&w);
        return st;
    }
    void *old = NULL;
    size_t oldlen;
    doc_key(&w.key, c, id, idlen);
    st = idlen && idlen <= NDB_DOC_MAX_ID ? ndb_kv_get(db->kv, NULL, w.key.data, w.key.len, &old, &oldlen)
                                          : NDB_ENOTFOUND;
    if (st == NDB_ENOTFOUND)
        ndb_errmsg_set(msg, st, "no document with _id '%.*s' in %s", (int)(idlen > 64 ? 64 : idlen),
                       id, cname);
    if (st == NDB_OK)
        st = delete_one(&w, (const uint8_t *)id, idlen, old, oldlen);
    if (st == NDB_OK)
        st = wctx_commit(&w, msg);
    pthread_mutex_unlock(&c->wlock);
    free(old);
    wctx_free(&w);
    return st;
}

static ndb_status delete_visitor(wctx *w, const uint8_t *id, size_t idlen, const uint8_t *doc, size_t len, void *arg,
                                 ndb_errmsg *msg)
{
    (void)msg;
    ++*(uint64_t *)arg;
    return delete_one(w, id, idlen, doc, len);
}

ndb_status ndb_doc_delete_many(ndb_doc_db *db, const char *cname, const void *filter, size_t flen,
                               uint64_t *deleted, ndb_errmsg *msg)
{
    uint64_t n = 0;
    coll *c;
    ndb_status st = db_get_coll(db, cname, &c, msg);
    if (st == NDB_ENOTFOUND) {
        if (deleted)
            *deleted = 0;
        return NDB_OK;
    }
    if (st != NDB_OK)
        return st;
    ndb_doc_filter *f;
    if ((st = ndb_doc_filter_compile(filter, flen, &f, msg)) != NDB_OK)
        return st;
    wctx w;
    if ((st = wctx_init(&w, db, c)) != NDB_OK || (st = wctx_lock(&w, msg)) != NDB_OK) {
        wctx_free(&w);
        ndb_doc_filter_free(f);
        return st;
    }
    st = for_each_match(&w, f, delete_visitor, &n, msg);
    if (st == NDB_OK && n)
        st = wctx_commit(&w, msg);
    st = st == NDB_OK ? st : batch_full_msg(&w, st, msg);
    pthread_mutex_unlock(&c->wlock);
    wctx_free(&w);
    ndb_doc_filter_free(f);
    if (st == NDB_OK && deleted)
        *deleted = n;
    return st;
}

/* --------------------------------------------------------------- cursors */

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
            doc_key(&k, cl, p->arg.u.s.ptr, p->arg.u.s.len);
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
                    ndb_doc_cursor **out, ndb_errmsg *msg)
{
    ndb_doc_cursor *c = calloc(1, sizeof *c);
    if (c == NULL)
        return NDB_ENOMEM;
    c->db = db;
    c->c = cl;
    c->flt = f;
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
    if ((st = ndb_kv_snapshot_acquire(db->kv, &c->snap)) != NDB_OK) {
        kvfail(db, msg, st, "snapshot");
        goto fail;
    }
    dbuf lo = {0}, hi = {0};
    switch (c->pl.kind) {
    case PLAN_COLLSCAN:
        c->src_mode = M_SCAN;
        prefix_range(cl->prefix, &lo, &hi);
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
        prefix_range(c->pl.idx->prefix, &lo, &hi);
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
                return st == NDB_OK ? 0 : kvfail(db, msg, st, "scanning");
            }
            size_t kl, vl;
            const void *k = ndb_kv_iter_key(c->it, &kl);
            const uint8_t *v = ndb_kv_iter_value(c->it, &vl);
            c->ex.docs_examined++;
            ndb_doc_val root;
            if (!doc_root_obj(v, vl, &root))
                return ndb_errmsg_set(msg, NDB_ECORRUPT, "corrupt document in %s", c->c->name);
            if (c->flt && !flt_match_val(c->flt, &root))
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
        doc_key(&k, c->c, c->pl.id.u.s.ptr, c->pl.id.u.s.len);
        void *v;
        size_t vl;
        ndb_status st = k.oom ? NDB_ENOMEM : ndb_kv_get(db->kv, c->snap, k.data, k.len, &v, &vl);
        dbuf_free(&k);
        if (st == NDB_ENOTFOUND)
            return 0;
        if (st != NDB_OK)
            return kvfail(db, msg, st, "reading document");
        c->fetched = v;
        c->ex.docs_examined++;
        ndb_doc_val root;
        if (!doc_root_obj(v, vl, &root))
            return ndb_errmsg_set(msg, NDB_ECORRUPT, "corrupt document in %s", c->c->name);
        if (c->flt && !flt_match_val(c->flt, &root))
            return 0;
        *doc = v;
        *len = vl;
        return 1;
    }
    case M_IX:
        for (;;) {
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
                        return kvfail(db, msg, st, "index scan");
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
            dbuf dk = {0};
            doc_key(&dk, c->c, id, idlen);
            void *dv;
            size_t dvl;
            ndb_status st = dk.oom ? NDB_ENOMEM : ndb_kv_get(db->kv, c->snap, dk.data, dk.len, &dv, &dvl);
            dbuf_free(&dk);
            if (st == NDB_ENOTFOUND)
                continue; /* an index entry without its document: skip it */
            if (st != NDB_OK)
                return kvfail(db, msg, st, "reading document");
            c->ex.docs_examined++;
            ndb_doc_val root;
            if (!doc_root_obj(dv, dvl, &root)) {
                free(dv);
                return ndb_errmsg_set(msg, NDB_ECORRUPT, "corrupt document in %s", c->c->name);
            }
            if (c->flt && !flt_match_val(c->flt, &root)) {
                free(dv);
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

static int memdoc_cmp(const void *a, const void *b)
{
    const memdoc *x = a, *y = b;
    size_t m = x->klen < y->klen ? x->klen : y->klen;
    int r = memcmp(x->key, y->key, m);
    if (r)
        return r;
    if (x->klen != y->klen)
        return x->klen < y->klen ? -1 : 1;
    return (x->seq > y->seq) - (x->seq < y->seq);
}

/* Max-heap on memdoc_cmp: the root is the largest kept document. */
static void heap_down(memdoc *h, size_t n, size_t i)
{
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < n && memdoc_cmp(&h[l], &h[m]) > 0)
            m = l;
        if (r < n && memdoc_cmp(&h[r], &h[m]) > 0)
            m = r;
        if (m == i)
            return;
        memdoc t = h[i];
        h[i] = h[m];
        h[m] = t;
        i = m;
    }
}

static void heap_up(memdoc *h, size_t i)
{
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (memdoc_cmp(&h[i], &h[p]) <= 0)
            return;
        memdoc t = h[i];
        h[i] = h[p];
        h[p] = t;
        i = p;
    }
}

ndb_status cur_sort_all(ndb_doc_cursor *c, ndb_errmsg *msg)
{
    size_t cap = 0, used = 0;
    uint64_t seq = 0;
    bool bounded = c->topk > 0 && c->topk <= 100000;
    dbuf key = {0};
    const uint8_t *d;
    size_t dl;
    int got;
    ndb_status st = NDB_OK;
    while ((got = cur_src_next(c, &d, &dl, msg)) > 0) {
        ndb_doc_val root;
        ndb_doc_root(d, dl, &root);
        key.len = 0;
        if (!srt_key_of(&c->sort, &root, &key)) {
            st = NDB_ENOMEM;
            break;
        }
        memdoc probe = {.key = key.data, .klen = key.len, .seq = seq++};
        if (bounded && c->nmem == c->topk) {
            /* full: keep it only if it sorts before the current largest */
            if (memdoc_cmp(&probe, &c->mem[0]) >= 0)
                continue;
            used -= c->mem[0].klen + c->mem[0].dlen + sizeof(memdoc);
            free(c->mem[0].key);
            c->mem[0] = c->mem[--c->nmem];
            heap_down(c->mem, c->nmem, 0);
        }
        used += dl + key.len + sizeof(memdoc);
        if (used > c->db->opt.agg_mem_bytes) {
            st = ndb_errmsg_set(msg, NDB_ELIMIT,
                                "sort exceeded the memory limit of %zu bytes; add an index on the "
                                "sort fields, a limit, or a narrower filter",
                                c->db->opt.agg_mem_bytes);
            break;
        }
        if (c->nmem == cap) {
            size_t ncap = cap ? cap * 2 : 256;
            memdoc *m = realloc(c->mem, ncap * sizeof *m);
            if (m == NULL) {
                st = NDB_ENOMEM;
                break;
            }
            c->mem = m;
            cap = ncap;
        }
        memdoc *m = &c->mem[c->nmem];
        m->key = malloc(key.len + dl);
        if (m->key == NULL) {
            st = NDB_ENOMEM;
            break;
        }
        memcpy(m->key, key.data, key.len);
        m->klen = key.len;
        m->doc = m->key + key.len;
        memcpy(m->doc, d, dl);
        m->dlen = dl;
        m->seq = probe.seq;
        c->nmem++;
        if (bounded)
            heap_up(c->mem, c->nmem - 1);
    }
    dbuf_free(&key);
    if (got < 0)
        st = (ndb_status)got;
    if (st != NDB_OK)
        return st;
    if (c->nmem)
        qsort(c->mem, c->nmem, sizeof *c->mem, memdoc_cmp);
    return NDB_OK;
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
    if (n < 10 || t[0] != 1 || get_u64(t + 2) != c->qhash)
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
    if (cl == NULL) {
        /* like MongoDB: a collection that does not exist has no documents */
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
    ndb_doc_cursor *c;
    st = cur_open(db, cl, f, &s, o->hint, &c, msg);
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
    c->skip = o->skip;
    c->limit = o->limit;
    bool resumed = o->page_token && o->page_token_len;
    if (resumed)
        st = token_parse(c, o->page_token, o->page_token_len, msg);
    if (st == NDB_OK && c->mode == M_MEM) {
        size_t start = resumed ? c->mem_i : (size_t)c->skip;
        c->topk = c->limit ? start + c->limit : 0; /* keep only what this page needs */
        st = cur_sort_all(c, msg);
        c->mem_i = start < c->nmem ? start : c->nmem;
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
        return agg_next(c, doc, len, msg);
    if (c->mode == M_DONE)
        return NDB_OK;
    if (c->limit && c->returned >= c->limit)
        return NDB_OK; /* the page is full; the source may have more (page token) */
    const uint8_t *d;
    size_t dl;
    if (c->mode == M_MEM) {
        if (c->mem_i >= c->nmem) {
            c->mode = M_DONE;
            return NDB_OK;
        }
        d = c->mem[c->mem_i].doc;
        dl = c->mem[c->mem_i].dlen;
        c->mem_i++;
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
    if (c->prj) {
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

ndb_status ndb_doc_cursor_page_token(ndb_doc_cursor *c, void **tok, size_t *len)
{
    *tok = NULL;
    *len = 0;
    if (c->mode == M_DONE || c->mode == M_AGG)
        return NDB_OK;
    dbuf t = {0};
    uint8_t h[10];
    h[0] = 1;
    h[1] = (uint8_t)(c->mode == M_MEM ? M_MEM : c->src_mode);
    put_u64(h + 2, c->qhash);
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
        agg_free(c->agg);
    free(c->fetched);
    if (c->it)
        ndb_kv_iter_free(c->it);
    if (c->snap)
        ndb_kv_snapshot_release(c->db->kv, c->snap);
    idx_set_unref(c->ix);
    plan_free(&c->pl);
    for (size_t i = 0; i < c->nmem; i++)
        free(c->mem[i].key);
    free(c->mem);
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
                         uint64_t *out, ndb_errmsg *msg)
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
    st = cur_open(db, cl, f, NULL, NULL, &c, msg);
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

ndb_status ndb_doc_aggregate(ndb_doc_db *db, const char *cname, const void *pipeline, size_t len,
                             ndb_doc_cursor **out, ndb_errmsg *msg)
{
    coll *cl;
    ndb_status st = check_name(cname, msg);
    if (st != NDB_OK)
        return st;
    ndb_doc_val pv;
    if (ndb_doc_validate(pipeline, len, NULL) != NDB_OK || ndb_doc_root(pipeline, len, &pv) != NDB_OK ||
        pv.type != NDB_DOC_ARRAY)
        return ndb_errmsg_set(msg, NDB_EINVAL, "pipeline must be an array of stage objects");
    st = db_get_coll(db, cname, &cl, msg);
    if (st == NDB_ENOTFOUND)
        cl = NULL; /* aggregating a missing collection yields nothing (or $lookup-free results) */
    else if (st != NDB_OK)
        return st;
    return agg_open(db, cl, &pv, out, msg);
}

/* --------------------------------------------------------------- indexes */

static ndb_status parse_index_spec(const void *spec, size_t len, const char *name, int unique,
                                   idx_def *d, ndb_errmsg *msg)
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
    d->unique = unique != 0;
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

ndb_status ndb_doc_create_index(ndb_doc_db *db, const char *cname, const char *name,
                                const void *spec, size_t len, int unique, ndb_errmsg *msg)
{
    idx_def d;
    ndb_status st = parse_index_spec(spec, len, name, unique, &d, msg);
    if (st != NDB_OK)
        return st;
    coll *c;
    if ((st = coll_open(db, cname, true, false, &c, msg)) != NDB_OK)
        return st;
    /* the entries' prefix, taken before the writer lock: the catalog lock
     * is always taken before a collection's writer lock, never after */
    pthread_rwlock_wrlock(&db->lock);
    ndb_kv_batch *pb;
    st = ndb_kv_batch_new(&pb);
    if (st == NDB_OK) {
        uint64_t saved = db->next_prefix;
        st = alloc_prefix(db, pb, &d.prefix);
        if (st == NDB_OK)
            st = ndb_kv_write(db->kv, pb);
        if (st != NDB_OK)
            db->next_prefix = saved;
        ndb_kv_batch_free(pb);
    }
    pthread_rwlock_unlock(&db->lock);
    if (st != NDB_OK)
        return kvfail(db, msg, st, "allocating index prefix");
    wctx w;
    if ((st = wctx_init(&w, db, c)) != NDB_OK || (st = wctx_lock(&w, msg)) != NDB_OK) {
        wctx_free(&w);
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
    if (st != NDB_OK)
        goto out;
    /* build over existing documents in bounded batches */
    idx_set one = {.refs = 1, .n = 1, .defs = &d};
    idx_set *saved = w.ix;
    w.ix = &one;
    dbuf lo = {0}, hi = {0};
    prefix_range(c->prefix, &lo, &hi);
    ndb_kv_iter *it = NULL;
    st = ndb_kv_iter_new(db->kv, NULL, lo.data, lo.len, hi.data, hi.len, &it);
    uint64_t done = 0;
    dlog(db, "building index %s on %s (%llu documents)", d.name, cname,
         (unsigned long long)c->count);
    for (ndb_kv_iter_seek_first(it); st == NDB_OK && ndb_kv_iter_valid(it); ndb_kv_iter_next(it)) {
        size_t kl, vl;
        const uint8_t *k = ndb_kv_iter_key(it, &kl);
        const void *v = ndb_kv_iter_value(it, &vl);
        ndb_doc_val dv;
        if (!doc_root_obj(v, vl, &dv)) {
            st = ndb_errmsg_set(msg, NDB_ECORRUPT, "corrupt document while building %s", d.name);
            break;
        }
        size_t pl = lo.len;
        st = idx_add(&w, &dv, k + pl, kl - pl, msg);
        if (w.mk[0])
            d.multikey = true;
        if (st == NDB_OK && ndb_kv_batch_count(w.b) >= BUILD_CHUNK) {
            if ((st = ndb_kv_write(db->kv, w.b)) != NDB_OK)
                kvfail(db, msg, st, "writing index entries");
            ndb_kv_batch_clear(w.b);
        }
        if (++done % 100000 == 0)
            dlog(db, "index %s on %s: %llu of %llu documents", d.name, cname,
                 (unsigned long long)done, (unsigned long long)c->count);
    }
    if (st == NDB_OK && it)
        st = ndb_kv_iter_status(it);
    if (it)
        ndb_kv_iter_free(it);
    w.ix = saved;
    /* publish: the catalog names the index only once every entry is written */
    idx_set *ns = NULL;
    if (st == NDB_OK) {
        ns = calloc(1, sizeof *ns);
        if (ns == NULL || (ns->defs = calloc((size_t)w.ix->n + 1, sizeof *ns->defs)) == NULL) {
            free(ns);
            ns = NULL;
            st = NDB_ENOMEM;
        } else {
            ns->refs = 1;
            ns->n = w.ix->n + 1;
            if (w.ix->n)
                memcpy(ns->defs, w.ix->defs, (size_t)w.ix->n * sizeof *ns->defs);
            ns->defs[w.ix->n] = d;
            for (int i = 0; i < ns->n; i++)
                idx_def_finish(&ns->defs[i]);
            st = write_meta(db, w.b, c, ns);
            if (st == NDB_OK && (st = ndb_kv_write(db->kv, w.b)) != NDB_OK)
                kvfail(db, msg, st, "publishing index");
        }
    }
    if (st == NDB_OK) {
        coll_set_ix(c, ns);
        dlog(db, "index %s on %s built: %llu documents", d.name, cname, (unsigned long long)done);
        /* a large build's entries went into the memtable in index order, not
         * insertion order: write them out so scans read them sequentially
         * from an SSTable (and WAL replay after a crash stays short) */
        if (done >= BUILD_CHUNK) {
            ndb_status fst = ndb_kv_flush(db->kv);
            if (fst != NDB_OK)
                dlog(db, "flush after building %s: %s", d.name, ndb_strerror(fst));
        }
    } else {
        idx_set_unref(ns);
        delete_prefix(db, d.prefix); /* reclaim the partial entries */
    }
    dbuf_free(&lo);
    dbuf_free(&hi);
out:
    pthread_mutex_unlock(&c->wlock);
    wctx_free(&w);
    return st;
}

ndb_status ndb_doc_drop_index(ndb_doc_db *db, const char *cname, const char *name, ndb_errmsg *msg)
{
    coll *c;
    ndb_status st = db_get_coll(db, cname, &c, msg);
    if (st != NDB_OK)
        return st;
    wctx w;
    if ((st = wctx_init(&w, db, c)) != NDB_OK || (st = wctx_lock(&w, msg)) != NDB_OK) {
        wctx_free(&w);
        return st;
    }
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
            st = write_meta(db, w.b, c, ns);
            if (st == NDB_OK && (st = ndb_kv_write(db->kv, w.b)) != NDB_OK)
                kvfail(db, msg, st, "dropping index");
        }
    }
    if (st == NDB_OK) {
        coll_set_ix(c, ns);
        delete_prefix(db, prefix);
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
    }
    *n = (size_t)s->n;
    idx_set_unref(s);
    *out = a;
    return NDB_OK;
}
