/*
 * catalog.c — the database's catalog: collection names and metadata over
 * ndb_kv, key prefixes, open/close, create/drop/list collections.
 *
 * Thread safety: db->lock (rwlock) guards the catalog array. Each collection
 * has a writer mutex held for the whole of a write request (write.c); readers
 * never take it (they read a kv snapshot, cursor.c). A collection's index set
 * is an immutable, refcounted idx_set swapped under ixlock. Dropped
 * collections stay allocated (graveyard) until ndb_doc_close, so a cursor's
 * pointer never dangles. Lock order: the catalog lock, then a collection's
 * writer lock, never the reverse.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "doc_int.h"

/* Catalog keys (FORMAT.md section 3): 0x00 kind [name]. */
#define CAT_NEXT 'n' /* 0x00 'n' -> u64 next prefix id, shared by every namespace */
#define CAT_BUILD 'b' /* 0x00 'b' u64 LE index prefix -> u64 LE side-log prefix: an index build running */
static const uint8_t ns_kinds[][2] = {
    [NDB_DOC_NS_DOCUMENTS] = {'c', 's'}, /* name -> collection metadata; name -> u64 count, u64 bytes */
    [NDB_DOC_NS_VECTORS] = {'v', 't'},
};

/* ---------------------------------------------------------------- utils */

void db_log(ndb_doc_db *db, const char *fmt, ...)
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

ndb_status db_kvfail(ndb_doc_db *db, ndb_errmsg *msg, ndb_status st, const char *what)
{
    return ndb_errmsg_set(msg, st, "%s: %s (%s)", what, ndb_strerror(st), ndb_kv_last_error(db->kv));
}

static bool name_ok(const char *n)
{
    size_t l = n ? strlen(n) : 0;
    if (l == 0 || l > NDB_DOC_MAX_COLL_NAME || n[0] == '.')
        return false;
    for (size_t i = 0; i < l; i++) {
        char ch = n[i];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
              ch == '_' || ch == '-' || ch == '.'))
            return false;
    }
    return true;
}

ndb_status cat_check_name(const char *n, ndb_errmsg *msg)
{
    if (!name_ok(n))
        return ndb_errmsg_set(msg, NDB_EINVAL,
                              "invalid collection name '%.70s': use [A-Za-z0-9_.-]{1,64}, not starting with '.'",
                              n ? n : "(null)");
    return NDB_OK;
}

static void cat_key(dbuf *k, uint8_t kind, const char *name)
{
    k->len = 0;
    dbuf_byte(k, 0);
    dbuf_byte(k, kind);
    if (name)
        dbuf_put(k, name, strlen(name));
}

void key_doc(dbuf *k, const coll *c, const void *id, size_t idlen)
{
    k->len = 0;
    key_prefix(k, c->prefix);
    dbuf_put(k, id, idlen);
}

bool key_prefix_range(uint64_t prefix, dbuf *lo, dbuf *hi)
{
    lo->len = hi->len = 0;
    key_prefix(lo, prefix);
    key_prefix(hi, prefix);
    hi->data[hi->len - 1]++; /* the last varint byte is < 0x80 */
    return !lo->oom && !hi->oom;
}

/* The kv partition of a key (ndb_kv_set_partition): its varint prefix, so
 * the catalog, each collection's documents, each index and each prefix of
 * another layer get tables of their own, and one written in key order (a
 * vector collection's rows) reaches the deeper levels without rewrites; so do
 * the change log's records, apart from the rest of the catalog. */
static size_t key_partition(const void *key, size_t len)
{
    const uint8_t *k = key;
    if (len > 2 && k[0] == 0 && k[1] == 'e') /* the change log's records (changes.c), in sequence order */
        return 2;
    size_t n = 0;
    while (n < len && n < 9 && (k[n] & 0x80))
        n++;
    return n < len ? n + 1 : len;
}

void ndb_doc_options_init(ndb_doc_options *opt)
{
    memset(opt, 0, sizeof *opt);
    opt->max_doc_bytes = NDB_DOC_MAX_BYTES;
    opt->agg_mem_bytes = 100u << 20;
}

/* ------------------------------------------------------------- metadata */

/* {"prefix":n,"indexes":[{"name":s,"prefix":n,"fields":[{"f":path,"d":1|-1}],
 *   "unique":b,"multikey":b,"kv":n[,"ttl":seconds]}]} (kv: the key encoding's version; ttl: a TTL index's
 *   expire_after_seconds), then for a collection made by a layer above
 *   "ext_prefixes":[n,...] and "ext":{...} (ndb_doc_ext). */
static ndb_status meta_encode(const coll *c, const idx_set *s, ndb_doc_builder *b)
{
    ndb_doc_builder_reset(b);
    ndb_doc_begin_object(b);
    ndb_doc_key(b, "prefix", 6);
    ndb_doc_int(b, (int64_t)c->prefix);
    if (c->ext_meta != NULL) {
        ndb_doc_key(b, "ext_prefixes", 12);
        ndb_doc_begin_array(b);
        for (uint32_t i = 0; i < c->n_ext; i++)
            ndb_doc_int(b, (int64_t)c->ext_prefix[i]);
        ndb_doc_end_array(b);
        ndb_doc_val ext;
        if (ndb_doc_root(c->ext_meta, c->ext_meta_len, &ext) != NDB_OK)
            return NDB_ECORRUPT;
        ndb_doc_key(b, "ext", 3);
        ndb_doc_value(b, &ext);
    }
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
        ndb_doc_key(b, "kv", 2);
        ndb_doc_int(b, d->kver);
        if (d->ttl) {
            ndb_doc_key(b, "ttl", 3);
            ndb_doc_int(b, d->expire_s);
        }
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

bool idx_def_finish(idx_def *d)
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
    ndb_doc_val ext, pa, pe;
    if (ndb_doc_get_field(&root, "ext", 3, &ext) == NDB_OK) {
        if (ext.type != NDB_DOC_OBJECT || ndb_doc_get_field(&root, "ext_prefixes", 12, &pa) != NDB_OK ||
            pa.type != NDB_DOC_ARRAY || pa.u.c.count > NDB_DOC_MAX_EXT_PREFIXES)
            return NDB_ECORRUPT;
        ndb_doc_iter pit;
        ndb_doc_iter_init(&pit, &pa);
        while (ndb_doc_iter_next(&pit, NULL, NULL, &pe)) {
            if (pe.type != NDB_DOC_INT || pe.u.i <= 0)
                return NDB_ECORRUPT;
            c->ext_prefix[c->n_ext++] = (uint64_t)pe.u.i;
        }
        if ((c->ext_meta = malloc(ext.raw_len + 1)) == NULL)
            return NDB_ENOMEM;
        c->ext_meta[0] = DOC_HDR;
        memcpy(c->ext_meta + 1, ext.raw, ext.raw_len);
        c->ext_meta_len = ext.raw_len + 1;
    }
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
        int64_t kv = 1; /* written before "kv" existed: version 1 */
        if (ndb_doc_get_field(&e, "kv", 2, &fe) == NDB_OK && (!get_int(&e, "kv", &kv) || kv < 1 || kv > KENC_VERSION))
            goto bad;
        d->kver = (int)kv;
        if (ndb_doc_get_field(&e, "ttl", 3, &fe) == NDB_OK) { /* absent: written before TTL, or not one */
            if (!get_int(&e, "ttl", &d->expire_s) || d->expire_s < 0 || d->expire_s > NDB_DOC_MAX_TTL ||
                d->nfields != 1)
                goto bad;
            d->ttl = true;
        }
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

idx_set *coll_ix(coll *c)
{
    pthread_mutex_lock(&c->ixlock);
    idx_set *s = c->ix;
    idx_set_ref(s);
    pthread_mutex_unlock(&c->ixlock);
    return s;
}

void coll_set_ix(coll *c, idx_set *s)
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
    pthread_mutex_init(&c->buildlock, NULL);
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
    pthread_mutex_destroy(&c->buildlock);
    idx_set_unref(c->ix);
    free(c->ext_meta);
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
ndb_status cat_get_coll(ndb_doc_db *db, const char *name, bool nowait, coll **out, ndb_errmsg *msg)
{
    ndb_status st = cat_check_name(name, msg);
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
    return cat_get_coll(db, name, false, out, msg);
}

ndb_status cat_alloc_prefixes(ndb_doc_db *db, uint32_t n, uint64_t *out, ndb_errmsg *msg)
{
    doc_prefixes *px = db->px;
    pthread_mutex_lock(&px->mu);
    uint8_t v[8], k[2] = {0, CAT_NEXT};
    wr64(v, px->next + n);
    ndb_status st = ndb_kv_put(db->kv, k, 2, v, 8);
    if (st == NDB_OK) {
        for (uint32_t i = 0; i < n; i++)
            out[i] = px->next + i;
        px->next += n;
    }
    pthread_mutex_unlock(&px->mu);
    return st == NDB_OK ? NDB_OK : db_kvfail(db, msg, st, "allocating key prefixes");
}

ndb_status cat_write_meta(ndb_doc_db *db, ndb_kv_batch *b, const coll *c, const idx_set *s)
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
    cat_key(&k, db->kmeta, c->name);
    if (st == NDB_OK)
        st = k.oom ? NDB_ENOMEM : ndb_kv_batch_put(b, k.data, k.len, m, ml);
    dbuf_free(&k);
    ndb_doc_builder_free(mb);
    return st;
}

ndb_status cat_write_stats(ndb_doc_db *db, ndb_kv_batch *b, const coll *c, uint64_t count, uint64_t bytes)
{
    uint8_t v[16];
    wr64(v, count);
    wr64(v + 8, bytes);
    dbuf k = {0};
    cat_key(&k, db->kstats, c->name);
    ndb_status st = k.oom ? NDB_ENOMEM : ndb_kv_batch_put(b, k.data, k.len, v, 16);
    dbuf_free(&k);
    return st;
}

/* Makes a collection (the catalog lock held for writing, name not taken):
 * with ext, the owning layer's metadata and n_ext prefixes of its own. */
static ndb_status coll_create(ndb_doc_db *db, const char *name, const void *ext, size_t ext_len, uint32_t n_ext,
                              coll **out, ndb_errmsg *msg)
{
    coll *c = coll_new(name);
    ndb_kv_batch *b = NULL;
    ndb_status st = NDB_OK;
    if (c == NULL || ndb_kv_batch_new(&b) != NDB_OK ||
        (ext != NULL && (c->ext_meta = malloc(ext_len)) == NULL)) {
        st = NDB_ENOMEM;
        goto out;
    }
    uint64_t px[1 + NDB_DOC_MAX_EXT_PREFIXES];
    if ((st = cat_alloc_prefixes(db, 1 + n_ext, px, msg)) != NDB_OK)
        goto out;
    c->prefix = px[0];
    if (ext != NULL) {
        memcpy(c->ext_meta, ext, ext_len);
        c->ext_meta_len = ext_len;
        c->n_ext = n_ext;
        memcpy(c->ext_prefix, px + 1, n_ext * sizeof *px);
    }
    if ((st = cat_write_meta(db, b, c, c->ix)) == NDB_OK && (st = cat_write_stats(db, b, c, 0, 0)) == NDB_OK &&
        (st = ndb_kv_write(db->kv, b)) != NDB_OK)
        db_kvfail(db, msg, st, "creating collection");
    if (st == NDB_OK && !cat_insert(db, c))
        st = NDB_ENOMEM;
out:
    ndb_kv_batch_free(b);
    if (st != NDB_OK) {
        if (c)
            coll_free(c);
        return st;
    }
    *out = c;
    return NDB_OK;
}

/* Finds or (create) makes a collection. */
ndb_status cat_coll_open(ndb_doc_db *db, const char *name, bool create, bool excl, coll **out, ndb_errmsg *msg)
{
    ndb_status st = cat_check_name(name, msg);
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
        st = excl ? ndb_errmsg_set(msg, NDB_EEXIST, "collection '%s' already exists", name) : NDB_OK;
    } else {
        st = coll_create(db, name, NULL, 0, 0, out, msg);
    }
    pthread_rwlock_unlock(&db->lock);
    return st;
}

/* A handle on namespace ns with an empty catalog (not yet loaded). */
static ndb_doc_db *db_new(ndb_kv *kv, const ndb_doc_options *opt, ndb_doc_ns ns)
{
    ndb_doc_db *db = calloc(1, sizeof *db);
    if (db == NULL)
        return NULL;
    db->kv = kv;
    db->opt = *opt;
    db->kmeta = ns_kinds[ns][0];
    db->kstats = ns_kinds[ns][1];
    pthread_rwlock_init(&db->lock, NULL);
    if (getrandom(db->id_rand, sizeof db->id_rand, 0) != (ssize_t)sizeof db->id_rand) {
        uint64_t t = (uint64_t)time(NULL) ^ (uint64_t)(uintptr_t)db;
        memcpy(db->id_rand, &t, sizeof db->id_rand);
    }
    uint32_t ctr;
    if (getrandom(&ctr, sizeof ctr, 0) != (ssize_t)sizeof ctr)
        ctr = (uint32_t)time(NULL);
    db->id_counter = ctr & 0xFFFFFF;
    return db;
}

/* Reads the namespace's collections from the catalog. */
static ndb_status db_load(ndb_doc_db *db, ndb_errmsg *msg)
{
    uint8_t lo[2] = {0, db->kmeta}, hi[2] = {0, (uint8_t)(db->kmeta + 1)};
    ndb_kv_iter *it;
    ndb_status st = ndb_kv_iter_new(db->kv, NULL, lo, 2, hi, 2, &it);
    if (st != NDB_OK)
        return db_kvfail(db, msg, st, "reading catalog");
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
        cat_key(&sk, db->kstats, name);
        void *sv;
        size_t svl;
        if (ndb_kv_get(db->kv, NULL, sk.data, sk.len, &sv, &svl) == NDB_OK) {
            if (svl == 16) {
                c->count = rd64(sv);
                c->bytes = rd64((uint8_t *)sv + 8);
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
    if (st == NDB_OK && (st = ndb_kv_iter_status(it)) != NDB_OK)
        db_kvfail(db, msg, st, "reading catalog");
    ndb_kv_iter_free(it);
    return st;
}

ndb_status ndb_doc_open(ndb_kv *kv, const ndb_doc_options *opt, ndb_doc_db **out, ndb_errmsg *msg)
{
    ndb_doc_options o;
    if (opt)
        o = *opt;
    else
        ndb_doc_options_init(&o);
    if (o.max_doc_bytes == 0 || o.max_doc_bytes > NDB_DOC_MAX_BYTES)
        o.max_doc_bytes = NDB_DOC_MAX_BYTES;
    if (o.agg_mem_bytes == 0)
        o.agg_mem_bytes = 100u << 20;
    if (o.spill_dir != NULL)
        sortbuf_clean_dir(o.spill_dir);
    ndb_doc_db *db = db_new(kv, &o, NDB_DOC_NS_DOCUMENTS);
    if (db == NULL || (db->px = calloc(1, sizeof *db->px)) == NULL) {
        ndb_doc_close(db);
        return NDB_ENOMEM;
    }
    db->own_px = true;
    pthread_mutex_init(&db->px->mu, NULL);
    db->px->next = 1;
    uint8_t nk[2] = {0, CAT_NEXT};
    void *v;
    size_t vl;
    ndb_status st = ndb_kv_get(kv, NULL, nk, 2, &v, &vl);
    if (st == NDB_OK) {
        if (vl == 8)
            db->px->next = rd64(v);
        free(v);
        if (vl != 8)
            st = ndb_errmsg_set(msg, NDB_ECORRUPT, "bad catalog counter");
    } else if (st == NDB_ENOTFOUND) {
        st = NDB_OK;
    } else {
        db_kvfail(db, msg, st, "reading catalog");
    }
    if (st == NDB_OK)
        st = db_load(db, msg);
    if (st == NDB_OK)
        st = cat_build_reclaim(db, msg);
    if (st == NDB_OK && o.change_log)
        st = chg_open(db, msg);
    if (st == NDB_OK) {
        ndb_kv_set_partition(kv, key_partition);
        st = ix_upgrade(db, msg);
    }
    if (st != NDB_OK) {
        ndb_doc_close(db);
        return st;
    }
    *out = db;
    return NDB_OK;
}

ndb_status ndb_doc_open_ns(ndb_doc_db *parent, ndb_doc_ns ns, ndb_doc_db **out, ndb_errmsg *msg)
{
    if (ns != NDB_DOC_NS_DOCUMENTS && ns != NDB_DOC_NS_VECTORS)
        return ndb_errmsg_set(msg, NDB_EINVAL, "unknown namespace %d", (int)ns);
    ndb_doc_db *db = db_new(parent->kv, &parent->opt, ns);
    if (db == NULL)
        return NDB_ENOMEM;
    db->px = parent->px;
    ndb_status st = db_load(db, msg);
    if (st == NDB_OK)
        st = ix_upgrade(db, msg);
    if (st != NDB_OK) {
        ndb_doc_close(db);
        return st;
    }
    *out = db;
    return NDB_OK;
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
    chg_close(db);
    if (db->own_px && db->px != NULL) {
        pthread_mutex_destroy(&db->px->mu);
        free(db->px);
    }
    free(db);
}

ndb_status ndb_doc_create_collection(ndb_doc_db *db, const char *name, ndb_errmsg *msg)
{
    coll *c;
    return cat_coll_open(db, name, true, true, &c, msg);
}

ndb_status ndb_doc_create_collection_ext(ndb_doc_db *db, const char *name, const void *meta, size_t meta_len,
                                         uint32_t nprefixes, ndb_errmsg *msg)
{
    ndb_status st = cat_check_name(name, msg);
    if (st != NDB_OK)
        return st;
    ndb_doc_val r;
    if (nprefixes > NDB_DOC_MAX_EXT_PREFIXES)
        return ndb_errmsg_set(msg, NDB_EINVAL, "at most %d key prefixes per collection", NDB_DOC_MAX_EXT_PREFIXES);
    if (meta == NULL || ndb_doc_validate(meta, meta_len, NULL) != NDB_OK || !doc_root_obj(meta, meta_len, &r))
        return ndb_errmsg_set(msg, NDB_EINVAL, "collection metadata must be an encoded object");
    pthread_rwlock_wrlock(&db->lock);
    bool found;
    cat_pos(db, name, &found);
    coll *c;
    st = found ? ndb_errmsg_set(msg, NDB_EEXIST, "collection '%s' already exists", name)
               : coll_create(db, name, meta, meta_len, nprefixes, &c, msg);
    pthread_rwlock_unlock(&db->lock);
    return st;
}

ndb_status ndb_doc_collection_ext(ndb_doc_db *db, const char *name, ndb_doc_ext *out, ndb_errmsg *msg)
{
    coll *c;
    ndb_status st = db_get_coll(db, name, &c, msg);
    if (st != NDB_OK)
        return st;
    memset(out, 0, sizeof *out);
    if (c->ext_meta == NULL) /* set at creation (or load) only: never NULL after */
        return ndb_errmsg_set(msg, NDB_EINVAL, "collection '%s' has no metadata of another layer", name);
    pthread_mutex_lock(&c->ixlock); /* a transaction's commit may replace it (ndb_doc_txn_set_meta) */
    if ((out->meta = malloc(c->ext_meta_len)) != NULL) {
        memcpy(out->meta, c->ext_meta, c->ext_meta_len);
        out->meta_len = c->ext_meta_len;
    }
    pthread_mutex_unlock(&c->ixlock);
    if (out->meta == NULL)
        return NDB_ENOMEM;
    out->nprefixes = c->n_ext;
    for (uint32_t i = 0; i < c->n_ext; i++) {
        dbuf k = {0};
        if (!key_prefix(&k, c->ext_prefix[i]) || k.len > sizeof out->prefix[i]) {
            dbuf_free(&k);
            free(out->meta);
            out->meta = NULL;
            return NDB_ENOMEM;
        }
        memcpy(out->prefix[i], k.data, k.len);
        out->prefix_len[i] = (uint8_t)k.len;
        out->prefix_id[i] = c->ext_prefix[i];
        dbuf_free(&k);
    }
    return NDB_OK;
}

/* Deletes every key in [lo, hi) in bounded batches, each starting just
 * after the last key the one before deleted (starting from lo again would
 * step over all the tombstones written so far: quadratic in the range's
 * size, hours for an index of ten million entries). */
static ndb_status delete_range(ndb_doc_db *db, const dbuf *lo, const dbuf *hi)
{
    ndb_kv_batch *b;
    ndb_status st = ndb_kv_batch_new(&b);
    if (st != NDB_OK)
        return st;
    dbuf from = {0};
    if (!dbuf_put(&from, lo->data, lo->len))
        st = NDB_ENOMEM;
    while (st == NDB_OK) {
        ndb_kv_iter *it;
        st = ndb_kv_iter_new(db->kv, NULL, from.data, from.len, hi->data, hi->len, &it);
        if (st != NDB_OK)
            break;
        ndb_kv_batch_clear(b);
        bool more = false;
        for (ndb_kv_iter_seek_first(it); ndb_kv_iter_valid(it); ndb_kv_iter_next(it)) {
            size_t kl;
            const void *k = ndb_kv_iter_key(it, &kl);
            if ((st = ndb_kv_batch_delete(b, k, kl)) != NDB_OK)
                break;
            if (ndb_kv_batch_count(b) >= DOC_BUILD_CHUNK) { /* the next batch starts after k: k + 0x00 */
                from.len = 0;
                if (!dbuf_put(&from, k, kl) || !dbuf_byte(&from, 0))
                    st = NDB_ENOMEM;
                more = true;
                break;
            }
        }
        if (st == NDB_OK)
            st = ndb_kv_iter_status(it);
        ndb_kv_iter_free(it);
        if (st == NDB_OK && ndb_kv_batch_count(b) > 0)
            st = ndb_kv_write(db->kv, b);
        if (!more)
            break;
    }
    dbuf_free(&from);
    ndb_kv_batch_free(b);
    return st;
}

ndb_status cat_delete_prefix(ndb_doc_db *db, uint64_t prefix)
{
    dbuf lo = {0}, hi = {0};
    ndb_status st = key_prefix_range(prefix, &lo, &hi) ? delete_range(db, &lo, &hi) : NDB_ENOMEM;
    dbuf_free(&lo);
    dbuf_free(&hi);
    return st;
}

ndb_status cat_build_mark(ndb_kv_batch *b, uint64_t ix, uint64_t side)
{
    uint8_t k[10] = {0, CAT_BUILD}, v[8];
    wr64(k + 2, ix);
    wr64(v, side);
    return side ? ndb_kv_batch_put(b, k, sizeof k, v, sizeof v) : ndb_kv_batch_delete(b, k, sizeof k);
}

ndb_status cat_build_reclaim(ndb_doc_db *db, ndb_errmsg *msg)
{
    uint8_t lo[2] = {0, CAT_BUILD}, hi[2] = {0, CAT_BUILD + 1};
    ndb_kv_iter *it;
    ndb_status st = ndb_kv_iter_new(db->kv, NULL, lo, 2, hi, 2, &it);
    if (st != NDB_OK)
        return db_kvfail(db, msg, st, "reading catalog");
    ndb_kv_batch *b = NULL;
    if ((st = ndb_kv_batch_new(&b)) != NDB_OK) {
        ndb_kv_iter_free(it);
        return st;
    }
    for (ndb_kv_iter_seek_first(it); st == NDB_OK && ndb_kv_iter_valid(it); ndb_kv_iter_next(it)) {
        size_t kl, vl;
        const uint8_t *k = ndb_kv_iter_key(it, &kl);
        const uint8_t *v = ndb_kv_iter_value(it, &vl);
        if (kl != 10 || vl != 8) {
            st = ndb_errmsg_set(msg, NDB_ECORRUPT, "bad index build marker in the catalog");
            break;
        }
        uint64_t ix = rd64(k + 2), side = rd64(v);
        db_log(db, "reclaiming the entries of an index build that did not finish (prefixes %llu and %llu)",
               (unsigned long long)ix, (unsigned long long)side);
        ndb_kv_batch_clear(b);
        if ((st = cat_delete_prefix(db, ix)) != NDB_OK || (st = cat_delete_prefix(db, side)) != NDB_OK ||
            (st = cat_build_mark(b, ix, 0)) != NDB_OK || (st = ndb_kv_write(db->kv, b)) != NDB_OK)
            db_kvfail(db, msg, st, "reclaiming an unfinished index build");
    }
    if (st == NDB_OK && (st = ndb_kv_iter_status(it)) != NDB_OK)
        db_kvfail(db, msg, st, "reading catalog");
    ndb_kv_iter_free(it);
    ndb_kv_batch_free(b);
    return st;
}

ndb_status ndb_doc_drop_collection(ndb_doc_db *db, const char *name, ndb_errmsg *msg)
{
    ndb_status st = cat_check_name(name, msg);
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
    chg_recs r = {0};
    if (st == NDB_OK) {
        cat_key(&k, db->kmeta, name);
        st = ndb_kv_batch_delete(b, k.data, k.len);
        cat_key(&k, db->kstats, name);
        if (st == NDB_OK)
            st = ndb_kv_batch_delete(b, k.data, k.len);
        if (st == NDB_OK)
            st = chg_note(db, &r, CHG_DROP, name, NULL, 0, NULL, 0);
        uint64_t ticket = 0;
        if (st == NDB_OK && ((st = chg_append(db, &r, b, &ticket)) != NDB_OK ||
                             (st = ndb_kv_write_wait(db->kv, ticket)) != NDB_OK))
            db_kvfail(db, msg, st, "dropping collection");
        if (st == NDB_OK)
            chg_published(db, &r);
        ndb_kv_batch_free(b);
    }
    chg_recs_free(&r);
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
        st = cat_delete_prefix(db, c->prefix);
        for (int i = 0; st == NDB_OK && s && i < s->n; i++)
            st = cat_delete_prefix(db, s->defs[i].prefix);
        for (uint32_t i = 0; st == NDB_OK && i < c->n_ext; i++)
            st = cat_delete_prefix(db, c->ext_prefix[i]);
        idx_set_unref(s);
        if (st != NDB_OK)
            db_log(db, "drop of '%s': reclaiming keys failed (%s); they are unreachable", name,
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

