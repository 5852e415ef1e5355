#include "version.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bloom.h"
#include "dbformat.h"

/* ------------------------------------------------------------------ files */

kv_fmeta *kv_fmeta_new(kv_vset *vs, uint64_t number, uint64_t size, kv_slice smallest, kv_slice largest)
{
    kv_fmeta *f = calloc(1, sizeof *f);
    if (f == NULL) return NULL;
    f->smallest = malloc(smallest.len ? smallest.len : 1);
    f->largest = malloc(largest.len ? largest.len : 1);
    if (f->smallest == NULL || f->largest == NULL) {
        free(f->smallest);
        free(f->largest);
        free(f);
        return NULL;
    }
    memcpy(f->smallest, smallest.data, smallest.len);
    memcpy(f->largest, largest.data, largest.len);
    f->slen = smallest.len;
    f->llen = largest.len;
    f->number = number;
    f->size = size;
    f->refs = 1;
    f->vs = vs;
    f->allowed_seeks = (int64_t)(size / (16 * 1024));
    if (f->allowed_seeks < 100) f->allowed_seeks = 100;
    return f;
}

int kv_fmeta_charge(kv_fmeta *f) { return __atomic_sub_fetch(&f->allowed_seeks, 1, __ATOMIC_RELAXED) == 0; }

void kv_fmeta_ref(kv_fmeta *f) { __atomic_add_fetch(&f->refs, 1, __ATOMIC_RELAXED); }

static kv_tcache_shard *shard_of(kv_fmeta *f) { return &f->vs->tcache[f->number % TCACHE_SHARDS]; }

static void lru_unlink(kv_fmeta *f)
{
    f->lru_prev->lru_next = f->lru_next;
    f->lru_next->lru_prev = f->lru_prev;
    f->lru_prev = f->lru_next = NULL;
}

static void lru_push_front(kv_tcache_shard *sh, kv_fmeta *f)
{
    f->lru_next = sh->lru.lru_next;
    f->lru_prev = &sh->lru;
    f->lru_next->lru_prev = f;
    sh->lru.lru_next = f;
}

void kv_fmeta_unref(kv_fmeta *f)
{
    if (f == NULL || __atomic_sub_fetch(&f->refs, 1, __ATOMIC_ACQ_REL) != 0) return;
    if (f->vs) {
        kv_tcache_shard *sh = shard_of(f);
        pthread_mutex_lock(&sh->mu);
        if (f->lru_prev) {
            lru_unlink(f);
            sh->open--;
        }
        pthread_mutex_unlock(&sh->mu);
    }
    kv_table_close(f->table);
    if (__atomic_load_n(&f->obsolete, __ATOMIC_ACQUIRE)) {
        char path[4096];
        snprintf(path, sizeof path, "%s/%06llu.sst", f->vs->dir, (unsigned long long)f->number);
        f->vs->env->v->remove(f->vs->env, path); /* a leftover is removed at the next open */
    }
    free(f->smallest);
    free(f->largest);
    free(f);
}

/* Unlinks up to 8 least recently used unpinned tables while the shard is
 * over its bound; returns them for closing outside the lock. */
static int evict_locked(kv_tcache_shard *sh, kv_table **victims)
{
    int nv = 0;
    kv_fmeta *v = sh->lru.lru_prev;
    while (sh->open > sh->cap && v != &sh->lru && nv < 8) {
        kv_fmeta *prev = v->lru_prev;
        if (v->pins == 0) {
            lru_unlink(v);
            sh->open--;
            victims[nv++] = v->table;
            v->table = NULL;
        }
        v = prev;
    }
    return nv;
}

ndb_status kv_fmeta_table(kv_fmeta *f, kv_table **out, ndb_errmsg *msg)
{
    kv_vset *vs = f->vs;
    kv_tcache_shard *sh = shard_of(f);
    ndb_status st = NDB_OK;
    kv_table *victims[8];
    int nv = 0;
    pthread_mutex_lock(&sh->mu);
    if (f->table == NULL) {
        char path[4096];
        snprintf(path, sizeof path, "%s/%06llu.sst", vs->dir, (unsigned long long)f->number);
        st = kv_table_open(vs->env, path, f->size, vs->cache, &f->table, msg);
        if (st == NDB_OK) {
            lru_push_front(sh, f);
            sh->open++;
        }
    } else if (sh->lru.lru_next != f) {
        lru_unlink(f);
        lru_push_front(sh, f);
    }
    if (st == NDB_OK) {
        f->pins++;
        *out = f->table;
        nv = evict_locked(sh, victims);
    }
    pthread_mutex_unlock(&sh->mu);
    for (int i = 0; i < nv; i++) kv_table_close(victims[i]); /* outside the lock */
    return st;
}

void kv_fmeta_table_release(kv_fmeta *f)
{
    kv_tcache_shard *sh = shard_of(f);
    kv_table *victims[8];
    int nv = 0;
    pthread_mutex_lock(&sh->mu);
    if (--f->pins == 0 && sh->open > sh->cap) nv = evict_locked(sh, victims);
    pthread_mutex_unlock(&sh->mu);
    for (int i = 0; i < nv; i++) kv_table_close(victims[i]);
}

size_t kv_vset_open_tables(kv_vset *vs)
{
    size_t n = 0;
    for (int i = 0; i < TCACHE_SHARDS; i++) {
        pthread_mutex_lock(&vs->tcache[i].mu);
        n += vs->tcache[i].open;
        pthread_mutex_unlock(&vs->tcache[i].mu);
    }
    return n;
}

static inline kv_slice f_small(const kv_fmeta *f) { return (kv_slice){f->smallest, f->slen}; }
static inline kv_slice f_large(const kv_fmeta *f) { return (kv_slice){f->largest, f->llen}; }

/* ------------------------------------------------------------------ versions */

static kv_version *version_new(void)
{
    kv_version *v = calloc(1, sizeof *v);
    if (v) v->refs = 1;
    return v;
}

void kv_version_ref(kv_version *v) { __atomic_add_fetch(&v->refs, 1, __ATOMIC_RELAXED); }

void kv_version_unref(kv_version *v)
{
    if (v == NULL || __atomic_sub_fetch(&v->refs, 1, __ATOMIC_ACQ_REL) != 0) return;
    for (int l = 0; l < NDB_KV_LEVELS; l++) {
        for (size_t i = 0; i < v->nfiles[l]; i++) kv_fmeta_unref(v->files[l][i]);
        free(v->files[l]);
    }
    free(v);
}

uint64_t kv_level_max_bytes(const kv_vset *vs, int level)
{
    uint64_t b = vs->l1_max_bytes;
    for (int l = 1; l < level; l++) b *= 10;
    return b;
}

/* In a sorted level: index of the first file whose largest >= ikey. */
static size_t find_file(kv_fmeta **files, size_t n, kv_slice ikey)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (ikey_cmp(f_large(files[mid]), ikey) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

static ndb_status table_get(kv_fmeta *f, kv_slice lookup, uint64_t h, int *result, void **val,
                            size_t *vlen, int *skip, ndb_errmsg *msg)
{
    kv_table *t;
    *skip = 0;
    ndb_status st = kv_fmeta_table(f, &t, msg);
    if (st != NDB_OK) return st;
    st = kv_table_get(t, lookup, h, result, val, vlen, skip);
    kv_fmeta_table_release(f);
    if (st != NDB_OK)
        ndb_errmsg_set(msg, st, "table %06llu: %s", (unsigned long long)f->number, ndb_strerror(st));
    return st;
}

/* Notes that the lookup read f at level (its filter did not rule the key
 * out); the first of two or more tables read is the one charged. */
static void consulted(kv_fmeta *f, int level, int skip, kv_fmeta **first, int *first_level, int *count,
                      kv_fmeta **charged, int *charged_level)
{
    if (skip) return;
    if (++*count == 1) {
        *first = f;
        *first_level = level;
    } else if (*count == 2) {
        *charged = *first;
        *charged_level = *first_level;
    }
}

ndb_status kv_version_get(kv_version *v, kv_slice lookup, uint64_t h, int *result, void **val,
                          size_t *vlen, kv_fmeta **charged, int *charged_level, ndb_errmsg *msg)
{
    kv_slice uk = ikey_user(lookup);
    *result = TABLE_GET_MISS;
    *charged = NULL;
    kv_fmeta *first = NULL;
    int first_level = 0, count = 0;
    for (size_t i = 0; i < v->nfiles[0]; i++) {
        kv_fmeta *f = v->files[0][i];
        if (slice_cmp(uk, ikey_user(f_small(f))) < 0 || slice_cmp(uk, ikey_user(f_large(f))) > 0) continue;
        int skip;
        ndb_status st = table_get(f, lookup, h, result, val, vlen, &skip, msg);
        consulted(f, 0, skip, &first, &first_level, &count, charged, charged_level);
        if (st != NDB_OK || *result != TABLE_GET_MISS) return st;
    }
    for (int l = 1; l < NDB_KV_LEVELS; l++) {
        size_t n = v->nfiles[l];
        if (n == 0) continue;
        size_t i = find_file(v->files[l], n, lookup);
        if (i >= n) continue;
        kv_fmeta *f = v->files[l][i];
        if (slice_cmp(uk, ikey_user(f_small(f))) < 0) continue;
        int skip;
        ndb_status st = table_get(f, lookup, h, result, val, vlen, &skip, msg);
        consulted(f, l, skip, &first, &first_level, &count, charged, charged_level);
        if (st != NDB_OK || *result != TABLE_GET_MISS) return st;
    }
    return NDB_OK;
}

ndb_status kv_version_overlaps(kv_version *v, int level, const kv_slice *b, const kv_slice *e,
                               kv_fmeta ***out, size_t *n)
{
    kv_fmeta **r = malloc((v->nfiles[level] + 1) * sizeof *r);
    if (r == NULL) return NDB_ENOMEM;
    size_t k = 0;
    for (size_t i = 0; i < v->nfiles[level]; i++) {
        kv_fmeta *f = v->files[level][i];
        if (b && slice_cmp(ikey_user(f_large(f)), *b) < 0) continue;
        if (e && slice_cmp(ikey_user(f_small(f)), *e) > 0) continue;
        r[k++] = f;
    }
    *out = r;
    *n = k;
    return NDB_OK;
}

int kv_version_is_base(kv_version *v, int level, kv_slice ukey)
{
    for (int l = level + 1; l < NDB_KV_LEVELS; l++) {
        for (size_t i = 0; i < v->nfiles[l]; i++) {
            kv_fmeta *f = v->files[l][i];
            if (slice_cmp(ukey, ikey_user(f_small(f))) >= 0 && slice_cmp(ukey, ikey_user(f_large(f))) <= 0)
                return 0;
        }
    }
    return 1;
}

/* ---- level iterator: concatenates a sorted level's files */

typedef struct level_iter {
    kv_iter base;
    kv_version *v; /* referenced */
    int level;
    size_t idx; /* current file; == n when invalid */
    kv_iter *cur;
    ndb_status st;
} level_iter;

static void li_close(level_iter *li)
{
    if (li->cur) {
        it_destroy(li->cur);
        kv_fmeta_table_release(li->v->files[li->level][li->idx]);
        li->cur = NULL;
    }
}

static void li_open(level_iter *li, size_t idx)
{
    li_close(li);
    li->idx = idx;
    if (idx >= li->v->nfiles[li->level]) return;
    kv_table *t;
    ndb_status st = kv_fmeta_table(li->v->files[li->level][idx], &t, NULL);
    if (st != NDB_OK) {
        li->st = st;
        li->idx = li->v->nfiles[li->level];
        return;
    }
    li->cur = kv_table_iter(t, NULL, NULL);
    if (li->cur == NULL) {
        kv_fmeta_table_release(li->v->files[li->level][idx]);
        li->st = NDB_ENOMEM;
        li->idx = li->v->nfiles[li->level];
    }
}

static void li_check(level_iter *li)
{
    if (li->cur && it_status(li->cur) != NDB_OK) {
        li->st = it_status(li->cur);
        li_close(li);
        li->idx = li->v->nfiles[li->level];
    }
}

/* A table iterator that fails turns invalid, so only an invalid one is
 * asked for its status (a call through two iterators' tables, once a key
 * before: a tenth of an index scan's time). */
static void li_fwd(level_iter *li)
{
    while (li->cur && !it_valid(li->cur)) {
        li_check(li);
        if (li->cur == NULL)
            break;
        li_open(li, li->idx + 1);
        if (li->cur) it_seek_first(li->cur);
    }
}

static void li_back(level_iter *li)
{
    while (li->cur && !it_valid(li->cur)) {
        li_check(li);
        if (li->cur == NULL)
            break;
        if (li->idx == 0) {
            li_close(li);
            li->idx = li->v->nfiles[li->level];
            return;
        }
        li_open(li, li->idx - 1);
        if (li->cur) it_seek_last(li->cur);
    }
}

static void li_publish(level_iter *li)
{
    int ok = li->cur != NULL && it_valid(li->cur);
    kv_iter_publish(&li->base, ok, ok ? it_key(li->cur) : (kv_slice){"", 0});
}
static void li_seek_first(kv_iter *it)
{
    level_iter *li = (level_iter *)it;
    li_open(li, 0);
    if (li->cur) it_seek_first(li->cur);
    li_fwd(li);
    li_publish(li);
}
static void li_seek_last(kv_iter *it)
{
    level_iter *li = (level_iter *)it;
    size_t n = li->v->nfiles[li->level];
    if (n > 0) {
        li_open(li, n - 1);
        if (li->cur) it_seek_last(li->cur);
        li_back(li);
    }
    li_publish(li);
}
static void li_seek(kv_iter *it, kv_slice t)
{
    level_iter *li = (level_iter *)it;
    size_t idx = find_file(li->v->files[li->level], li->v->nfiles[li->level], t);
    if (idx != li->idx || li->cur == NULL) li_open(li, idx); /* same file: reuse its iterator */
    if (li->cur) it_seek(li->cur, t);
    li_fwd(li);
    li_publish(li);
}
static void li_next(kv_iter *it)
{
    level_iter *li = (level_iter *)it;
    it_next(li->cur);
    li_fwd(li);
    li_publish(li);
}
static void li_prev(kv_iter *it)
{
    level_iter *li = (level_iter *)it;
    it_prev(li->cur);
    li_back(li);
    li_publish(li);
}
static kv_slice li_value(kv_iter *it) { return it_value(((level_iter *)it)->cur); }
static ndb_status li_status(kv_iter *it)
{
    level_iter *li = (level_iter *)it;
    if (li->st != NDB_OK) return li->st;
    return li->cur ? it_status(li->cur) : NDB_OK;
}
static void li_destroy(kv_iter *it)
{
    level_iter *li = (level_iter *)it;
    li_close(li);
    kv_version_unref(li->v);
    free(li);
}
static const kv_iter_vtbl level_vtbl = {li_seek_first, li_seek_last, li_seek,   li_next,
                                        li_prev,       li_value,     li_status, li_destroy};

/* Drops what an L0 table iterator holds on its file. */
static void file_release(void *arg)
{
    kv_fmeta *f = arg;
    kv_fmeta_table_release(f);
    kv_fmeta_unref(f);
}

/* An iterator over one table file that keeps the file referenced. */
static kv_iter *file_iter_new(kv_fmeta *f)
{
    kv_table *t;
    ndb_status st = kv_fmeta_table(f, &t, NULL);
    if (st != NDB_OK) return kv_iter_empty(st);
    kv_fmeta_ref(f);
    kv_iter *it = kv_table_iter(t, file_release, f);
    if (it == NULL) file_release(f);
    return it;
}

/* May f hold a user key in [lower, upper)? */
static int file_in_range(const kv_fmeta *f, const kv_slice *lower, const kv_slice *upper)
{
    if (lower && slice_cmp(ikey_user((kv_slice){f->largest, f->llen}), *lower) < 0) return 0;
    if (upper && slice_cmp(ikey_user((kv_slice){f->smallest, f->slen}), *upper) >= 0) return 0;
    return 1;
}

int kv_version_iters(kv_version *v, const kv_slice *lower, const kv_slice *upper, kv_iter **out, kv_fmeta **newest_l0)
{
    int n = 0;
    *newest_l0 = NULL;
    for (size_t i = 0; i < v->nfiles[0]; i++) {
        if (!file_in_range(v->files[0][i], lower, upper)) continue;
        if (*newest_l0 == NULL) *newest_l0 = v->files[0][i];
        kv_iter *it = file_iter_new(v->files[0][i]);
        if (it == NULL) goto fail;
        out[n++] = it;
    }
    for (int l = 1; l < NDB_KV_LEVELS; l++) {
        int any = 0;
        for (size_t i = 0; i < v->nfiles[l] && !any; i++) any = file_in_range(v->files[l][i], lower, upper);
        if (!any) continue;
        level_iter *li = calloc(1, sizeof *li);
        if (li == NULL) goto fail;
        kv_iter_init(&li->base, &level_vtbl);
        kv_version_ref(v);
        li->v = v;
        li->level = l;
        li->idx = v->nfiles[l];
        out[n++] = &li->base;
    }
    return n;
fail:
    while (n > 0) it_destroy(out[--n]);
    return -1;
}

/* ------------------------------------------------------------------ edits */

void kv_edit_init(kv_edit *e) { memset(e, 0, sizeof *e); }

void kv_edit_destroy(kv_edit *e)
{
    for (size_t i = 0; i < e->nadd; i++) kv_fmeta_unref(e->add[i].f);
    free(e->add);
    free(e->del);
    memset(e, 0, sizeof *e);
}

ndb_status kv_edit_add_file(kv_edit *e, int level, kv_fmeta *f)
{
    if (e->nadd == e->capadd) {
        size_t nc = e->capadd ? e->capadd * 2 : 8;
        void *na = realloc(e->add, nc * sizeof *e->add);
        if (na == NULL) return NDB_ENOMEM;
        e->add = na;
        e->capadd = nc;
    }
    kv_fmeta_ref(f);
    e->add[e->nadd].level = level;
    e->add[e->nadd].f = f;
    e->nadd++;
    return NDB_OK;
}

ndb_status kv_edit_del_file(kv_edit *e, int level, uint64_t number)
{
    if (e->ndel == e->capdel) {
        size_t nc = e->capdel ? e->capdel * 2 : 8;
        void *na = realloc(e->del, nc * sizeof *e->del);
        if (na == NULL) return NDB_ENOMEM;
        e->del = na;
        e->capdel = nc;
    }
    e->del[e->ndel].level = level;
    e->del[e->ndel].number = number;
    e->ndel++;
    return NDB_OK;
}

enum { TAG_LOG = 1, TAG_NEXT = 2, TAG_SEQ = 3, TAG_DEL = 4, TAG_ADD = 5 };

ndb_status kv_edit_encode(const kv_edit *e, char **out, size_t *n)
{
    size_t cap = 64 + e->ndel * 24;
    for (size_t i = 0; i < e->nadd; i++) cap += 50 + e->add[i].f->slen + e->add[i].f->llen;
    char *buf = malloc(cap), *p = buf;
    if (buf == NULL) return NDB_ENOMEM;
    if (e->has_log) p = put_varint64(put_varint64(p, TAG_LOG), e->log_number);
    if (e->has_next) p = put_varint64(put_varint64(p, TAG_NEXT), e->next_file);
    if (e->has_seq) p = put_varint64(put_varint64(p, TAG_SEQ), e->last_seq);
    for (size_t i = 0; i < e->ndel; i++) {
        p = put_varint64(p, TAG_DEL);
        p = put_varint64(p, (uint64_t)e->del[i].level);
        p = put_varint64(p, e->del[i].number);
    }
    for (size_t i = 0; i < e->nadd; i++) {
        kv_fmeta *f = e->add[i].f;
        p = put_varint64(p, TAG_ADD);
        p = put_varint64(p, (uint64_t)e->add[i].level);
        p = put_varint64(p, f->number);
        p = put_varint64(p, f->size);
        p = put_varint64(p, f->slen);
        memcpy(p, f->smallest, f->slen);
        p += f->slen;
        p = put_varint64(p, f->llen);
        memcpy(p, f->largest, f->llen);
        p += f->llen;
    }
    *out = buf;
    *n = (size_t)(p - buf);
    return NDB_OK;
}

static const char *get_key(const char *p, const char *end, kv_slice *k)
{
    uint64_t len;
    p = get_varint64(p, end, &len);
    if (p == NULL || len < 8 || len > NDB_KV_MAX_KEY + 8 || len > (uint64_t)(end - p)) return NULL;
    *k = (kv_slice){p, len};
    return p + len;
}

ndb_status kv_edit_decode(kv_vset *vs, const char *p, size_t n, kv_edit *e)
{
    const char *end = p + n;
    kv_edit_init(e);
    while (p < end) {
        uint64_t tag, a, b, c;
        if ((p = get_varint64(p, end, &tag)) == NULL) goto bad;
        switch (tag) {
        case TAG_LOG:
            if ((p = get_varint64(p, end, &e->log_number)) == NULL) goto bad;
            e->has_log = 1;
            break;
        case TAG_NEXT:
            if ((p = get_varint64(p, end, &e->next_file)) == NULL) goto bad;
            e->has_next = 1;
            break;
        case TAG_SEQ:
            if ((p = get_varint64(p, end, &e->last_seq)) == NULL || e->last_seq > KV_MAX_SEQ) goto bad;
            e->has_seq = 1;
            break;
        case TAG_DEL:
            if ((p = get_varint64(p, end, &a)) == NULL || (p = get_varint64(p, end, &b)) == NULL ||
                a >= NDB_KV_LEVELS)
                goto bad;
            if (kv_edit_del_file(e, (int)a, b) != NDB_OK) goto nomem;
            break;
        case TAG_ADD: {
            kv_slice s, l;
            if ((p = get_varint64(p, end, &a)) == NULL || (p = get_varint64(p, end, &b)) == NULL ||
                (p = get_varint64(p, end, &c)) == NULL || (p = get_key(p, end, &s)) == NULL ||
                (p = get_key(p, end, &l)) == NULL || a >= NDB_KV_LEVELS)
                goto bad;
            kv_fmeta *f = kv_fmeta_new(vs, b, c, s, l);
            if (f == NULL) goto nomem;
            ndb_status st = kv_edit_add_file(e, (int)a, f);
            kv_fmeta_unref(f);
            if (st != NDB_OK) goto nomem;
            break;
        }
        default:
            goto bad;
        }
    }
    return NDB_OK;
bad:
    kv_edit_destroy(e);
    return NDB_ECORRUPT;
nomem:
    kv_edit_destroy(e);
    return NDB_ENOMEM;
}

/* ------------------------------------------------------------------ version set */

ndb_status kv_vset_new(kv_env *env, const char *dir, kv_cache *cache, const kv_table_opts *topts,
                       uint64_t l1_max_bytes, uint32_t l0_trigger, uint32_t max_open_tables, kv_vset **out)
{
    kv_vset *vs = calloc(1, sizeof *vs);
    if (vs == NULL) return NDB_ENOMEM;
    vs->dir = strdup(dir);
    vs->current = version_new();
    if (vs->dir == NULL || vs->current == NULL) {
        free(vs->dir);
        free(vs->current);
        free(vs);
        return NDB_ENOMEM;
    }
    vs->env = env;
    vs->cache = cache;
    vs->topts = *topts;
    vs->next_file = 2;
    vs->l1_max_bytes = l1_max_bytes;
    vs->l0_trigger = l0_trigger;
    for (int i = 0; i < TCACHE_SHARDS; i++) {
        pthread_mutex_init(&vs->tcache[i].mu, NULL);
        vs->tcache[i].lru.lru_next = vs->tcache[i].lru.lru_prev = &vs->tcache[i].lru;
        vs->tcache[i].cap = max_open_tables / TCACHE_SHARDS ? max_open_tables / TCACHE_SHARDS : 1;
    }
    *out = vs;
    return NDB_OK;
}

void kv_vset_free(kv_vset *vs)
{
    if (vs == NULL) return;
    kv_version_unref(vs->current);
    kv_wal_close(vs->manifest);
    for (int l = 0; l < NDB_KV_LEVELS; l++) free(vs->compact_ptr[l]);
    for (int i = 0; i < TCACHE_SHARDS; i++) pthread_mutex_destroy(&vs->tcache[i].mu);
    free(vs->dir);
    free(vs);
}

static int cmp_l0(const void *a, const void *b)
{
    const kv_fmeta *x = *(kv_fmeta *const *)a, *y = *(kv_fmeta *const *)b;
    return x->number > y->number ? -1 : x->number < y->number; /* newest first */
}
static int cmp_sorted(const void *a, const void *b)
{
    const kv_fmeta *x = *(kv_fmeta *const *)a, *y = *(kv_fmeta *const *)b;
    int r = ikey_cmp(f_small(x), f_small(y));
    return r ? r : (x->number < y->number ? -1 : x->number > y->number);
}

/* The most L0 files whose user-key ranges share a point: the deepest overlap
 * is at some file's smallest key. */
static size_t l0_depth(const kv_version *v)
{
    size_t best = 0;
    for (size_t i = 0; i < v->nfiles[0]; i++) {
        kv_slice k = ikey_user(f_small(v->files[0][i]));
        size_t d = 0;
        for (size_t j = 0; j < v->nfiles[0]; j++)
            if (slice_cmp(ikey_user(f_small(v->files[0][j])), k) <= 0 &&
                slice_cmp(ikey_user(f_large(v->files[0][j])), k) >= 0)
                d++;
        if (d > best) best = d;
    }
    return best;
}

/* Builds base + e into a new version (refs every file it holds). */
static ndb_status apply(kv_version *base, const kv_edit *e, kv_version **out)
{
    kv_version *v = version_new();
    if (v == NULL) return NDB_ENOMEM;
    for (int l = 0; l < NDB_KV_LEVELS; l++) {
        size_t cap = base->nfiles[l];
        for (size_t i = 0; i < e->nadd; i++)
            if (e->add[i].level == l) cap++;
        if (cap == 0) continue;
        v->files[l] = malloc(cap * sizeof(kv_fmeta *));
        if (v->files[l] == NULL) {
            kv_version_unref(v);
            return NDB_ENOMEM;
        }
        for (size_t i = 0; i < base->nfiles[l]; i++) {
            kv_fmeta *f = base->files[l][i];
            int deleted = 0;
            for (size_t d = 0; d < e->ndel; d++)
                if (e->del[d].level == l && e->del[d].number == f->number) deleted = 1;
            if (deleted) continue;
            kv_fmeta_ref(f);
            v->files[l][v->nfiles[l]++] = f;
            v->bytes[l] += f->size;
        }
        for (size_t i = 0; i < e->nadd; i++) {
            if (e->add[i].level != l) continue;
            kv_fmeta *f = e->add[i].f;
            kv_fmeta_ref(f);
            v->files[l][v->nfiles[l]++] = f;
            v->bytes[l] += f->size;
        }
        qsort(v->files[l], v->nfiles[l], sizeof(kv_fmeta *), l == 0 ? cmp_l0 : cmp_sorted);
        if (l > 0) /* sorted levels must not overlap */
            for (size_t i = 1; i < v->nfiles[l]; i++)
                if (slice_cmp(ikey_user(f_large(v->files[l][i - 1])), ikey_user(f_small(v->files[l][i]))) >= 0) {
                    kv_version_unref(v);
                    return NDB_ECORRUPT;
                }
    }
    v->l0_depth = l0_depth(v);
    *out = v;
    return NDB_OK;
}

/* Marks files that e removes from base as obsolete. */
static void mark_obsolete(kv_version *base, const kv_version *next)
{
    for (int l = 0; l < NDB_KV_LEVELS; l++)
        for (size_t i = 0; i < base->nfiles[l]; i++) {
            kv_fmeta *f = base->files[l][i];
            int live = 0;
            for (int m = 0; m < NDB_KV_LEVELS && !live; m++)
                for (size_t j = 0; j < next->nfiles[m]; j++)
                    if (next->files[m][j] == f) {
                        live = 1;
                        break;
                    }
            if (!live) __atomic_store_n(&f->obsolete, 1, __ATOMIC_RELEASE);
        }
}

static void apply_scalars(kv_vset *vs, const kv_edit *e)
{
    if (e->has_log) vs->log_number = e->log_number;
    if (e->has_next && e->next_file > vs->next_file) vs->next_file = e->next_file;
    if (e->has_seq && e->last_seq > vs->last_seq) vs->last_seq = e->last_seq;
}

ndb_status kv_vset_recover(kv_vset *vs, ndb_errmsg *msg)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/CURRENT", vs->dir);
    char *cur;
    size_t len;
    ndb_status st = kv_env_read_file(vs->env, path, 4096, &cur, &len);
    if (st == NDB_ENOTFOUND) return st;
    if (st != NDB_OK) return ndb_errmsg_set(msg, st, "reading %s failed", path);
    unsigned long long mnum;
    char tail;
    if (len < 2 || cur[len - 1] != '\n' || sscanf(cur, "MANIFEST-%llu%c", &mnum, &tail) != 2 || tail != '\n') {
        free(cur);
        return ndb_errmsg_set(msg, NDB_ECORRUPT, "%s: malformed", path);
    }
    free(cur);
    snprintf(path, sizeof path, "%s/MANIFEST-%06llu", vs->dir, mnum);
    kv_wal_reader *r;
    st = kv_wal_reader_open(vs->env, path, &r);
    if (st != NDB_OK) return ndb_errmsg_set(msg, st == NDB_ENOTFOUND ? NDB_ECORRUPT : st, "%s: cannot open", path);
    int type;
    const char *payload;
    size_t n;
    uint64_t records = 0;
    while ((st = kv_wal_read(r, &type, &payload, &n)) == NDB_OK) {
        kv_edit e;
        if (type != WAL_EDIT) {
            st = NDB_ECORRUPT;
            break;
        }
        st = kv_edit_decode(vs, payload, n, &e);
        if (st != NDB_OK) break;
        kv_version *v;
        st = apply(vs->current, &e, &v);
        if (st == NDB_OK) {
            kv_version_unref(vs->current);
            vs->current = v;
            apply_scalars(vs, &e);
        }
        kv_edit_destroy(&e);
        if (st != NDB_OK) break;
        records++;
    }
    int torn = st == NDB_ECORRUPT && kv_wal_reader_torn(r);
    kv_wal_reader_free(r);
    /* A last record cut short is an edit that was never acknowledged (the
     * manifest is fsync'd before a version is installed): ignore it. A
     * complete record that fails its checksum is damage: refuse to guess. */
    if (st == NDB_ENOTFOUND || (torn && records > 0)) st = NDB_OK;
    if (st != NDB_OK) return ndb_errmsg_set(msg, st, "%s: bad manifest (%s)", path, ndb_strerror(st));
    if (vs->next_file <= mnum) vs->next_file = mnum + 1;
    vs->manifest_number = mnum;
    return NDB_OK;
}

ndb_status kv_version_encode_snapshot(kv_version *v, uint64_t log_number, uint64_t next_file, uint64_t last_seq,
                                      char **out, size_t *n)
{
    kv_edit snap;
    kv_edit_init(&snap);
    snap.has_log = snap.has_next = snap.has_seq = 1;
    snap.log_number = log_number;
    snap.next_file = next_file;
    snap.last_seq = last_seq;
    ndb_status st = NDB_OK;
    for (int l = 0; l < NDB_KV_LEVELS && st == NDB_OK; l++)
        for (size_t i = 0; i < v->nfiles[l] && st == NDB_OK; i++) st = kv_edit_add_file(&snap, l, v->files[l][i]);
    if (st == NDB_OK) st = kv_edit_encode(&snap, out, n);
    kv_edit_destroy(&snap);
    return st;
}

ndb_status kv_vset_new_manifest(kv_vset *vs, ndb_errmsg *msg)
{
    uint64_t num = vs->next_file++;
    char path[4096];
    snprintf(path, sizeof path, "%s/MANIFEST-%06llu", vs->dir, (unsigned long long)num);
    kv_wal_writer *w;
    ndb_status st = kv_wal_create(vs->env, path, &w);
    if (st != NDB_OK) return ndb_errmsg_set(msg, st, "%s: create failed", path);
    char *buf = NULL;
    size_t n;
    st = kv_version_encode_snapshot(vs->current, vs->log_number, vs->next_file, vs->last_seq, &buf, &n);
    if (st == NDB_OK) st = kv_wal_add(w, WAL_EDIT, buf, n);
    if (st == NDB_OK) st = kv_wal_sync(w);
    free(buf);
    if (st != NDB_OK) {
        kv_wal_close(w);
        vs->env->v->remove(vs->env, path);
        return ndb_errmsg_set(msg, st, "writing manifest %s failed", path);
    }
    char cur[64];
    int cl = snprintf(cur, sizeof cur, "MANIFEST-%06llu\n", (unsigned long long)num);
    st = kv_env_write_file_atomic(vs->env, vs->dir, "CURRENT", cur, (size_t)cl);
    if (st != NDB_OK) {
        /* CURRENT may name the new manifest already (the rename happened and only the directory's
         * fsync failed): keep the file. If CURRENT still names the old one, the next open deletes
         * this one as a stray. */
        kv_wal_close(w);
        return ndb_errmsg_set(msg, st, "pointing CURRENT at manifest %s failed", path);
    }
    uint64_t old = vs->manifest_number;
    kv_wal_close(vs->manifest);
    vs->manifest = w;
    vs->manifest_number = num;
    if (old && old != num) {
        snprintf(path, sizeof path, "%s/MANIFEST-%06llu", vs->dir, (unsigned long long)old);
        vs->env->v->remove(vs->env, path);
    }
    return NDB_OK;
}

ndb_status kv_vset_log_and_apply(kv_vset *vs, kv_edit *e, ndb_errmsg *msg)
{
    kv_version *v;
    ndb_status st = apply(vs->current, e, &v);
    if (st != NDB_OK) return ndb_errmsg_set(msg, st, "applying a version edit failed (%s)", ndb_strerror(st));
    if (!e->has_next || e->next_file < vs->next_file) {
        e->has_next = 1;
        e->next_file = vs->next_file;
    }
    if (!e->has_seq || e->last_seq < vs->last_seq) {
        e->has_seq = 1;
        e->last_seq = vs->last_seq;
    }
    if (vs->manifest == NULL || kv_wal_size(vs->manifest) > 64u * 1024u * 1024u) {
        /* the snapshot must include this edit: install scalars first, then
         * write it from the new version */
        kv_version *oldv = vs->current;
        uint64_t ol = vs->log_number, on = vs->next_file, os = vs->last_seq;
        vs->current = v;
        apply_scalars(vs, e);
        st = kv_vset_new_manifest(vs, msg);
        if (st != NDB_OK) {
            vs->current = oldv;
            vs->log_number = ol;
            vs->next_file = on;
            vs->last_seq = os;
            kv_version_unref(v);
            return st;
        }
        mark_obsolete(oldv, v);
        kv_version_unref(oldv);
        return NDB_OK;
    }
    char *buf;
    size_t n;
    st = kv_edit_encode(e, &buf, &n);
    if (st == NDB_OK) {
        st = kv_wal_add(vs->manifest, WAL_EDIT, buf, n);
        free(buf);
    }
    if (st == NDB_OK) st = kv_wal_sync(vs->manifest);
    if (st != NDB_OK) {
        kv_version_unref(v);
        return ndb_errmsg_set(msg, st, "writing MANIFEST-%06llu failed", (unsigned long long)vs->manifest_number);
    }
    mark_obsolete(vs->current, v);
    kv_version_unref(vs->current);
    vs->current = v;
    apply_scalars(vs, e);
    return NDB_OK;
}

int kv_vset_max_level(const kv_vset *vs)
{
    for (int l = NDB_KV_LEVELS - 1; l >= 0; l--)
        if (vs->current->nfiles[l]) return l;
    return -1;
}
