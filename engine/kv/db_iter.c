/*
 * db_iter.c — the user iterator: merges memtables and tables by internal
 * key, hides entries newer than its sequence, collapses versions, skips
 * tombstones, and applies [lower, upper) bounds. Forward and backward moves
 * follow LevelDB's DBIter: moving backward, the internal iterator sits just
 * before the current user key's entries, and the key/value are saved copies.
 *
 * An iterator holds a snapshot at its sequence (pin), so compactions keep
 * what it can see; a seek after a newer version was installed rebuilds the
 * merge on that version (fewer, compacted tables: same view), and each seek
 * charges the newest L0 table it has to read (kv_fmeta_charge) when it reads
 * more than one table.
 */
#include <stdlib.h>
#include <string.h>

#include "db.h"
#include "dbformat.h"

struct ndb_kv_iter {
    ndb_kv *kv;
    kv_iter *in;
    uint64_t seq;
    ndb_kv_snapshot pin; /* linked while pinned */
    int pinned;
    uint64_t gen;     /* kv->version_gen that in was built on */
    kv_fmeta *charge; /* referenced: the table each seek charges, or NULL */
    char *lower, *upper;
    size_t llen, ulen;
    int has_lower, has_upper;
    int valid;
    int forward;
    char *skey; /* saved user key */
    size_t sklen, skcap;
    char *sval; /* saved value (backward) */
    size_t svlen, svcap;
    char *tmp; /* seek key scratch */
    size_t tmpcap;
    ndb_status st;
};

static void fail(ndb_kv_iter *it, ndb_status st)
{
    if (it->st == NDB_OK) it->st = st;
    it->valid = 0;
}

static kv_slice skey(const ndb_kv_iter *it) { return (kv_slice){it->skey, it->sklen}; }

/* Builds user key + trailer in it->tmp. */
static int seek_key(ndb_kv_iter *it, kv_slice uk, uint64_t trailer, kv_slice *out)
{
    if (uk.len + 8 > it->tmpcap) {
        size_t nc = uk.len + 8 + 64;
        char *nb = realloc(it->tmp, nc);
        if (nb == NULL) {
            fail(it, NDB_ENOMEM);
            return 0;
        }
        it->tmp = nb;
        it->tmpcap = nc;
    }
    if (uk.len) memcpy(it->tmp, uk.data, uk.len);
    put_fixed64(it->tmp + uk.len, trailer);
    *out = (kv_slice){it->tmp, uk.len + 8};
    return 1;
}

static void check_status(ndb_kv_iter *it)
{
    ndb_status st = it_status(it->in);
    if (st != NDB_OK) fail(it, st);
}

static void find_next_user_entry(ndb_kv_iter *it, int skipping)
{
    while (it_valid(it->in)) {
        kv_slice ik = it_key(it->in);
        if (ikey_seq(ik) <= it->seq) {
            kv_slice uk = ikey_user(ik);
            if (ikey_type(ik) == KV_TYPE_DELETE) {
                if (!kv_slice_keep(&it->skey, &it->skcap, &it->sklen, uk)) {
                    fail(it, NDB_ENOMEM);
                    return;
                }
                skipping = 1;
            } else if (skipping && slice_eq(uk, skey(it))) {
                /* hidden by a newer entry (moving forward, a key at or
                 * below the saved one can only be the same key) */
            } else {
                it->valid = 1;
                it->sklen = 0;
                return;
            }
        }
        it_next(it->in);
    }
    it->sklen = 0;
    it->valid = 0;
    check_status(it);
}

static void find_prev_user_entry(ndb_kv_iter *it)
{
    int vtype = KV_TYPE_DELETE;
    while (it_valid(it->in)) {
        kv_slice ik = it_key(it->in);
        if (ikey_seq(ik) <= it->seq) {
            kv_slice uk = ikey_user(ik);
            if (vtype != KV_TYPE_DELETE && slice_cmp(uk, skey(it)) < 0) break; /* passed the key */
            vtype = ikey_type(ik);
            if (vtype == KV_TYPE_DELETE) {
                it->sklen = 0;
                it->svlen = 0;
            } else if (!kv_slice_keep(&it->skey, &it->skcap, &it->sklen, uk) ||
                       !kv_slice_keep(&it->sval, &it->svcap, &it->svlen, it_value(it->in))) {
                fail(it, NDB_ENOMEM);
                return;
            }
        }
        it_prev(it->in);
    }
    if (vtype == KV_TYPE_DELETE) {
        it->valid = 0;
        it->sklen = it->svlen = 0;
        it->forward = 1;
        check_status(it);
    } else {
        it->valid = 1;
    }
}

static kv_slice cur_user_key(const ndb_kv_iter *it)
{
    return it->forward ? ikey_user(it_key(it->in)) : skey(it);
}

static void check_upper(ndb_kv_iter *it)
{
    if (it->valid && it->has_upper && slice_cmp(cur_user_key(it), (kv_slice){it->upper, it->ulen}) >= 0)
        it->valid = 0;
}
static void check_lower(ndb_kv_iter *it)
{
    if (it->valid && it->has_lower && slice_cmp(cur_user_key(it), (kv_slice){it->lower, it->llen}) < 0)
        it->valid = 0;
}

/* Builds in from kv's current memtables and version for it->seq; *old gets
 * the iterator it replaces (the caller destroys it without mu). mu held. */
static ndb_status build(ndb_kv_iter *it, kv_iter **old)
{
    ndb_kv *kv = it->kv;
    kv_version *v = kv->vs->current;
    *old = NULL;
    size_t cap = 2 + v->nfiles[0] + NDB_KV_LEVELS;
    kv_iter **kids = malloc(cap * sizeof *kids);
    if (kids == NULL) return NDB_ENOMEM;
    int n = 0, tables = 0;
    kv_fmeta *newest_l0 = NULL;
    ndb_status st = NDB_OK;
    /* every write at or below it->seq is in the memtable by now, so an empty
     * memtable can be left out */
    if (kv_mem_entries(kv->mem) > 0) {
        kids[n] = kv_mem_iter(kv->mem);
        if (kids[n]) n++;
        else st = NDB_ENOMEM;
    }
    if (st == NDB_OK && kv->imm) {
        kids[n] = kv_mem_iter(kv->imm);
        if (kids[n]) n++;
        else st = NDB_ENOMEM;
    }
    if (st == NDB_OK) {
        kv_slice lo = {it->lower, it->llen}, hi = {it->upper, it->ulen};
        tables = kv_version_iters(v, it->has_lower ? &lo : NULL, it->has_upper ? &hi : NULL, kids + n, &newest_l0);
        if (tables < 0) st = NDB_ENOMEM;
        else n += tables;
    }
    kv_iter *in = st == NDB_OK ? kv_iter_merge(kids, n) : NULL;
    if (in == NULL) {
        if (st == NDB_OK) st = NDB_ENOMEM;
        else
            for (int i = 0; i < n; i++) it_destroy(kids[i]);
        free(kids);
        return st;
    }
    free(kids);
    *old = it->in;
    it->in = in;
    it->gen = __atomic_load_n(&kv->version_gen, __ATOMIC_RELAXED);
    kv_fmeta_unref(it->charge);
    it->charge = tables >= 2 ? newest_l0 : NULL;
    if (it->charge) kv_fmeta_ref(it->charge);
    return NDB_OK;
}

/* Before a seek: rebuilds on a newer version if one was installed, and
 * charges the newest L0 table for the read. 0 if the iterator failed. */
static int prepare_seek(ndb_kv_iter *it)
{
    if (__atomic_load_n(&it->kv->version_gen, __ATOMIC_ACQUIRE) != it->gen) {
        kv_iter *old;
        pthread_mutex_lock(&it->kv->mu);
        ndb_status st = build(it, &old);
        pthread_mutex_unlock(&it->kv->mu);
        it_destroy(old);
        if (st != NDB_OK) {
            fail(it, st);
            return 0;
        }
    }
    if (it->charge && kv_fmeta_charge(it->charge)) kv_seek_victim(it->kv, it->charge, 0);
    return 1;
}

static void do_seek(ndb_kv_iter *it, kv_slice target)
{
    if (!prepare_seek(it)) return;
    it->forward = 1;
    it->sklen = 0;
    kv_slice lk;
    if (!seek_key(it, target, ikey_pack(it->seq, KV_TYPE_SEEK), &lk)) return;
    it_seek(it->in, lk);
    find_next_user_entry(it, 0);
    check_upper(it);
}

void ndb_kv_iter_seek(ndb_kv_iter *it, const void *key, size_t klen)
{
    if (it == NULL || it->st != NDB_OK) return;
    kv_slice t = {key, klen};
    if (it->has_lower && slice_cmp(t, (kv_slice){it->lower, it->llen}) < 0) t = (kv_slice){it->lower, it->llen};
    do_seek(it, t);
}

void ndb_kv_iter_seek_first(ndb_kv_iter *it)
{
    if (it == NULL || it->st != NDB_OK) return;
    if (it->has_lower) {
        do_seek(it, (kv_slice){it->lower, it->llen});
        return;
    }
    if (!prepare_seek(it)) return;
    it->forward = 1;
    it->sklen = 0;
    it_seek_first(it->in);
    find_next_user_entry(it, 0);
    check_upper(it);
}

/* Positions before-or-at the end of user keys < bound (exclusive) or all. */
static void seek_back_from(ndb_kv_iter *it, const kv_slice *excl_bound, const kv_slice *incl_key)
{
    if (!prepare_seek(it)) return;
    it->forward = 0;
    it->sklen = it->svlen = 0;
    kv_slice lk;
    if (excl_bound) {
        /* first entry of the bound key or after: everything before is < bound */
        if (!seek_key(it, *excl_bound, ikey_pack(KV_MAX_SEQ, KV_TYPE_SEEK), &lk)) return;
        it_seek(it->in, lk);
    } else if (incl_key) {
        /* trailer 0 sorts after every real entry of the key (sequences start at 1) */
        if (!seek_key(it, *incl_key, 0, &lk)) return;
        it_seek(it->in, lk);
    }
    if (excl_bound || incl_key) {
        if (it_valid(it->in))
            it_prev(it->in);
        else
            it_seek_last(it->in);
    } else {
        it_seek_last(it->in);
    }
    find_prev_user_entry(it);
    check_lower(it);
}

void ndb_kv_iter_seek_last(ndb_kv_iter *it)
{
    if (it == NULL || it->st != NDB_OK) return;
    kv_slice ub = {it->upper, it->ulen};
    seek_back_from(it, it->has_upper ? &ub : NULL, NULL);
}

void ndb_kv_iter_seek_for_prev(ndb_kv_iter *it, const void *key, size_t klen)
{
    if (it == NULL || it->st != NDB_OK) return;
    kv_slice k = {key, klen};
    if (it->has_upper && slice_cmp(k, (kv_slice){it->upper, it->ulen}) >= 0) {
        ndb_kv_iter_seek_last(it);
        return;
    }
    seek_back_from(it, NULL, &k);
}

void ndb_kv_iter_next(ndb_kv_iter *it)
{
    if (it == NULL || !it->valid) return;
    if (!it->forward) {
        /* in sits just before the current key's entries */
        it->forward = 1;
        if (!it_valid(it->in))
            it_seek_first(it->in);
        else
            it_next(it->in);
    } else {
        if (!kv_slice_keep(&it->skey, &it->skcap, &it->sklen, ikey_user(it_key(it->in)))) {
            fail(it, NDB_ENOMEM);
            return;
        }
        it_next(it->in);
    }
    /* skey holds the current key: skip every entry of it */
    find_next_user_entry(it, 1);
    check_upper(it);
}

void ndb_kv_iter_prev(ndb_kv_iter *it)
{
    if (it == NULL || !it->valid) return;
    if (it->forward) {
        if (!kv_slice_keep(&it->skey, &it->skcap, &it->sklen, ikey_user(it_key(it->in)))) {
            fail(it, NDB_ENOMEM);
            return;
        }
        for (;;) {
            it_prev(it->in);
            if (!it_valid(it->in)) {
                it->valid = 0;
                it->sklen = it->svlen = 0;
                check_status(it);
                return;
            }
            if (slice_cmp(ikey_user(it_key(it->in)), skey(it)) < 0) break;
        }
        it->forward = 0;
    }
    find_prev_user_entry(it);
    check_lower(it);
}

int ndb_kv_iter_valid(const ndb_kv_iter *it) { return it != NULL && it->valid && it->st == NDB_OK; }

const void *ndb_kv_iter_key(const ndb_kv_iter *it, size_t *klen)
{
    kv_slice k = cur_user_key(it);
    if (klen) *klen = k.len;
    return k.data;
}

const void *ndb_kv_iter_value(const ndb_kv_iter *it, size_t *vlen)
{
    if (it->forward) {
        kv_slice v = it_value(it->in);
        if (vlen) *vlen = v.len;
        return v.data;
    }
    if (vlen) *vlen = it->svlen;
    return it->sval ? it->sval : "";
}

ndb_status ndb_kv_iter_status(const ndb_kv_iter *it)
{
    if (it == NULL) return NDB_EINVAL;
    if (it->st != NDB_OK) return it->st;
    return it_status(it->in);
}

void ndb_kv_iter_free(ndb_kv_iter *it)
{
    if (it == NULL) return;
    if (it->pinned) {
        pthread_mutex_lock(&it->kv->mu);
        kv_snapshot_unlink(&it->pin);
        pthread_mutex_unlock(&it->kv->mu);
    }
    kv_fmeta_unref(it->charge);
    it_destroy(it->in);
    free(it->lower);
    free(it->upper);
    free(it->skey);
    free(it->sval);
    free(it->tmp);
    free(it);
}

static char *dup_bytes(const void *p, size_t n)
{
    char *d = malloc(n ? n : 1);
    if (d && n) memcpy(d, p, n);
    return d;
}

ndb_status ndb_kv_iter_new(ndb_kv *kv, const ndb_kv_snapshot *snap, const void *lower, size_t lower_len,
                           const void *upper, size_t upper_len, ndb_kv_iter **out)
{
    if (kv == NULL || out == NULL || (lower == NULL && lower_len) || (upper == NULL && upper_len))
        return NDB_EINVAL;
    ndb_kv_iter *it = calloc(1, sizeof *it);
    if (it == NULL) return NDB_ENOMEM;
    it->forward = 1;
    if (lower) {
        it->has_lower = 1;
        it->llen = lower_len;
        it->lower = dup_bytes(lower, lower_len);
    }
    if (upper) {
        it->has_upper = 1;
        it->ulen = upper_len;
        it->upper = dup_bytes(upper, upper_len);
    }
    if ((lower && it->lower == NULL) || (upper && it->upper == NULL)) {
        ndb_kv_iter_free(it);
        return NDB_ENOMEM;
    }
    it->kv = kv;
    pthread_mutex_lock(&kv->mu);
    it->seq = snap ? snap->seq : __atomic_load_n(&kv->last_seq, __ATOMIC_ACQUIRE);
    kv_iter *none;
    ndb_status st = build(it, &none);
    if (st == NDB_OK) {
        kv_snapshot_link(kv, &it->pin, it->seq);
        it->pinned = 1;
    }
    pthread_mutex_unlock(&kv->mu);
    if (st != NDB_OK) {
        ndb_kv_iter_free(it);
        return st;
    }
    *out = it;
    return NDB_OK;
}
