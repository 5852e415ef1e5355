/*
 * db.c — the engine: open/recovery, memtable flushes, background leveled
 * compaction, point reads, snapshots and stats. The write path (WAL, group
 * commit, memtable switching) is write.c; the user iterator is db_iter.c.
 *
 * Thread safety: kv->mu guards the mem/imm pointers, the version set,
 * snapshots and background state; db.h lists every field's lock and the lock
 * order. Readers take mu only to reference mem, imm and the current version.
 */
#include "db.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "batch.h"
#include "bloom.h"
#include "dbformat.h"
#include "outputs.h"

struct kv_env *ndb_kv_env(ndb_kv *kv) { return kv->env; }

void ndb_kv_options_init(ndb_kv_options *o)
{
    memset(o, 0, sizeof *o);
    o->durability = NDB_KV_SYNC;
    o->interval_ms = 100;
    o->memtable_bytes = 64u << 20;
    o->block_cache_bytes = 64u << 20;
    o->block_bytes = 4096;
    o->sst_target_bytes = 64u << 20;
    o->max_open_tables = 1000;
    o->compression = NDB_KV_COMPRESS_NONE;
    o->bloom_bits_per_key = 10;
    o->l0_compaction_trigger = 4;
    o->l0_slowdown_trigger = 12;
    o->l0_stop_trigger = 20;
    o->l1_max_bytes = 256u << 20;
    o->wal_segment_bytes = 64u << 20;
    o->create_if_missing = 1;
    o->error_if_exists = 0;
    o->paranoid_checks = 1;
    o->env = NULL;
}

void ndb_kv_set_partition(ndb_kv *kv, ndb_kv_partition_fn fn)
{
    if (kv) __atomic_store_n(&kv->partition, fn, __ATOMIC_RELEASE);
}

/* ------------------------------------------------------------------ reads */

/* Takes mu if it comes free within a short spin (other readers hold it for
 * well under a microsecond); 0 if it stays held, e.g. across a manifest
 * fsync. */
static int try_lock_briefly(pthread_mutex_t *mu)
{
    for (int i = 0; i < 256; i++) {
        if (pthread_mutex_trylock(mu) == 0) return 1;
#if defined(__x86_64__) || defined(__i386__)
        __builtin_ia32_pause();
#elif defined(__aarch64__)
        __asm__ __volatile__("yield");
#endif
    }
    return 0;
}

static ndb_status get(ndb_kv *kv, const ndb_kv_snapshot *snap, int nowait, const void *key, size_t klen,
                      void **val, size_t *vlen)
{
    if (kv == NULL || val == NULL || vlen == NULL || (key == NULL && klen)) return NDB_EINVAL;
    if (klen > NDB_KV_MAX_KEY) return NDB_ENOTFOUND;
    if (!nowait)
        pthread_mutex_lock(&kv->mu);
    else if (!try_lock_briefly(&kv->mu))
        return NDB_EBUSY;
    kv_mem *mem = kv->mem, *imm = kv->imm;
    kv_version *v = kv->vs->current;
    kv_mem_ref(mem);
    if (imm) kv_mem_ref(imm);
    kv_version_ref(v);
    pthread_mutex_unlock(&kv->mu);
    uint64_t seq = snap ? snap->seq : __atomic_load_n(&kv->last_seq, __ATOMIC_ACQUIRE);

    ndb_status st = NDB_ENOTFOUND;
    const char *mv;
    size_t mvlen;
    uint64_t hash = kv_bloom_hash(key, klen); /* one hash for every filter on the way */
    int deleted, found = kv_mem_get(mem, key, klen, hash, seq, &mv, &mvlen, &deleted);
    if (!found && imm) found = kv_mem_get(imm, key, klen, hash, seq, &mv, &mvlen, &deleted);
    if (found) {
        if (deleted) {
            st = NDB_ENOTFOUND;
        } else {
            *val = malloc(mvlen ? mvlen : 1);
            if (*val == NULL)
                st = NDB_ENOMEM;
            else {
                if (mvlen) memcpy(*val, mv, mvlen);
                *vlen = mvlen;
                st = NDB_OK;
            }
        }
    } else {
        char stackbuf[256];
        char *lk = klen + 8 <= sizeof stackbuf ? stackbuf : malloc(klen + 8);
        if (lk == NULL) {
            st = NDB_ENOMEM;
        } else {
            if (klen) memcpy(lk, key, klen);
            put_fixed64(lk + klen, ikey_pack(seq, KV_TYPE_SEEK));
            int result, charged_level;
            kv_fmeta *charged;
            ndb_errmsg msg;
            msg.text[0] = 0;
            st = kv_version_get(v, (kv_slice){lk, klen + 8}, hash, &result, val, vlen, &charged, &charged_level,
                                &msg);
            /* a try_get never waits for mu, so it does not charge */
            if (charged && !nowait && kv_fmeta_charge(charged)) kv_seek_victim(kv, charged, charged_level);
            if (st == NDB_OK) st = result == TABLE_GET_VALUE ? NDB_OK : NDB_ENOTFOUND;
            else if (msg.text[0] && (nowait ? pthread_mutex_trylock(&kv->mu) : pthread_mutex_lock(&kv->mu)) == 0) {
                memcpy(kv->err.text, msg.text, sizeof msg.text); /* kept for ndb_kv_last_error */
                pthread_mutex_unlock(&kv->mu);
            }
            if (lk != stackbuf) free(lk);
        }
    }
    kv_mem_unref(mem);
    if (imm) kv_mem_unref(imm);
    kv_version_unref(v);
    return st;
}

ndb_status ndb_kv_get(ndb_kv *kv, const ndb_kv_snapshot *snap, const void *key, size_t klen, void **val,
                      size_t *vlen)
{
    return get(kv, snap, 0, key, klen, val, vlen);
}

ndb_status ndb_kv_try_get(ndb_kv *kv, const ndb_kv_snapshot *snap, const void *key, size_t klen, void **val,
                          size_t *vlen)
{
    return get(kv, snap, 1, key, klen, val, vlen);
}

/* ------------------------------------------------------------------ snapshots */

void kv_snapshot_link(ndb_kv *kv, ndb_kv_snapshot *s, uint64_t seq)
{
    s->seq = seq;
    ndb_kv_snapshot *after = kv->snaps.prev; /* the newest: found at once unless seq is older */
    while (after != &kv->snaps && after->seq > seq) after = after->prev;
    s->prev = after;
    s->next = after->next;
    after->next->prev = s;
    after->next = s;
}

void kv_snapshot_unlink(ndb_kv_snapshot *s)
{
    s->prev->next = s->next;
    s->next->prev = s->prev;
}

ndb_status ndb_kv_snapshot_acquire(ndb_kv *kv, ndb_kv_snapshot **out)
{
    if (kv == NULL || out == NULL) return NDB_EINVAL;
    ndb_kv_snapshot *s = malloc(sizeof *s);
    if (s == NULL) return NDB_ENOMEM;
    pthread_mutex_lock(&kv->mu);
    kv_snapshot_link(kv, s, __atomic_load_n(&kv->last_seq, __ATOMIC_ACQUIRE));
    pthread_mutex_unlock(&kv->mu);
    *out = s;
    return NDB_OK;
}

void ndb_kv_snapshot_release(ndb_kv *kv, ndb_kv_snapshot *s)
{
    if (kv == NULL || s == NULL) return;
    pthread_mutex_lock(&kv->mu);
    kv_snapshot_unlink(s);
    pthread_mutex_unlock(&kv->mu);
    free(s);
}

uint64_t ndb_kv_snapshot_seq(const ndb_kv_snapshot *s) { return s ? s->seq : 0; }

/* The oldest sequence a snapshot can still read. mu held. */
static uint64_t smallest_snapshot(ndb_kv *kv)
{
    if (kv->snaps.next != &kv->snaps) return kv->snaps.next->seq; /* the list is sorted by sequence */
    return __atomic_load_n(&kv->last_seq, __ATOMIC_ACQUIRE);
}

/* ------------------------------------------------------------------ flush */

/* Logs e to the manifest and installs the new version. The manifest records
 * the last sequence too, so that a database whose WAL is all flushed reopens
 * at the right sequence. Iterators see version_gen move and rebuild on
 * their next seek. mu held. */
ndb_status kv_install(ndb_kv *kv, kv_edit *e, ndb_errmsg *msg)
{
    uint64_t s = __atomic_load_n(&kv->last_seq, __ATOMIC_ACQUIRE);
    if (s > kv->vs->last_seq) kv->vs->last_seq = s;
    ndb_status st = kv_vset_log_and_apply(kv->vs, e, msg);
    if (st == NDB_OK) __atomic_add_fetch(&kv->version_gen, 1, __ATOMIC_RELEASE);
    return st;
}

/* Files of level overlapping user range [lo, hi]: how many (-1 when that
 * could not be worked out) and their bytes. */
static long overlapping(kv_version *v, int level, const kv_slice *lo, const kv_slice *hi, uint64_t *bytes)
{
    kv_fmeta **fs;
    size_t n;
    if (kv_version_overlaps(v, level, lo, hi, &fs, &n) != NDB_OK) return -1;
    *bytes = 0;
    for (size_t i = 0; i < n; i++) *bytes += fs[i]->size;
    free(fs);
    return (long)n;
}

/* The level a flushed table goes to: L1 when nothing in L0 or L1 overlaps it
 * and it overlaps at most ten target-size tables' bytes in L2; L2 on the
 * same terms when a compaction is writing to L1 (its outputs may span the
 * gap the table would fill); else L0. Data written in key order so skips the
 * L0 compaction and moves on down without being rewritten. LevelDB places
 * such tables as deep as L2 whenever it can; here that put the first flush
 * of an empty store (random keys) under everything written later, and every
 * seek read one more level. mu held. */
static int flush_level(ndb_kv *kv, const kv_fmeta *f)
{
    kv_version *v = kv->vs->current;
    kv_slice lo = ikey_user((kv_slice){f->smallest, f->slen}), hi = ikey_user((kv_slice){f->largest, f->llen});
    for (int l = 0; l <= 2 && l + 1 < NDB_KV_LEVELS; l++) {
        uint64_t bytes;
        if (overlapping(v, l, &lo, &hi, &bytes) != 0) break;
        if (l == 0) continue;
        if (overlapping(v, l + 1, &lo, &hi, &bytes) < 0 || bytes > 10 * (uint64_t)kv->opt.sst_target_bytes) break;
        if (l != kv->compact_out) return l;
    }
    return 0;
}

/* Writes imm to tables and installs them. mu held on entry and exit. */
static void flush_imm(ndb_kv *kv)
{
    kv_mem *imm = kv->imm;
    uint64_t next_log = kv->imm_next_log;
    kv->flushing = 1;
    pthread_mutex_unlock(&kv->mu);
    outputs o;
    ndb_errmsg msg;
    ndb_status st = mem_to_tables(kv, imm, &o, &msg);
    pthread_mutex_lock(&kv->mu);
    kv->flushing = 0;
    if (st == NDB_OK) {
        kv_edit e;
        kv_edit_init(&e);
        e.has_log = 1;
        e.log_number = next_log;
        for (size_t i = 0; i < o.n && st == NDB_OK; i++) st = kv_edit_add_file(&e, flush_level(kv, o.f[i]), o.f[i]);
        if (st == NDB_OK) st = kv_install(kv, &e, &msg);
        kv_edit_destroy(&e);
    }
    out_free(&o);
    if (st != NDB_OK) {
        kv_poison(kv, st, msg.text);
        return;
    }
    kv->imm = NULL;
    kv_mem_unref(imm);
    kv->st_flushes++;
    kv_segments_delete_below(kv, next_log);
    pthread_cond_broadcast(&kv->bg_cv);
}

static void *flush_main(void *arg)
{
    ndb_kv *kv = arg;
    pthread_mutex_lock(&kv->mu);
    while (!kv->shutting_down) {
        if (kv->imm != NULL && !kv->poisoned)
            flush_imm(kv);
        else
            pthread_cond_wait(&kv->bg_cv, &kv->mu);
    }
    pthread_mutex_unlock(&kv->mu);
    return NULL;
}

/* ------------------------------------------------------------------ compaction */

typedef struct compaction {
    int level; /* inputs from level and level+1; outputs to level+1 */
    kv_fmeta **in[2];
    size_t nin[2];
    kv_version *v; /* referenced */
} compaction;

static void compaction_free(compaction *c)
{
    free(c->in[0]);
    free(c->in[1]);
    kv_version_unref(c->v);
}

/* User-key range of fs[0..n), n > 0. */
static void range_of(kv_fmeta **fs, size_t n, kv_slice *lo, kv_slice *hi)
{
    assert(n > 0);
    *lo = ikey_user((kv_slice){fs[0]->smallest, fs[0]->slen});
    *hi = ikey_user((kv_slice){fs[0]->largest, fs[0]->llen});
    for (size_t i = 1; i < n; i++) {
        kv_slice s = ikey_user((kv_slice){fs[i]->smallest, fs[i]->slen});
        kv_slice l = ikey_user((kv_slice){fs[i]->largest, fs[i]->llen});
        if (slice_cmp(s, *lo) < 0) *lo = s;
        if (slice_cmp(l, *hi) > 0) *hi = l;
    }
}

/* 1 if f's user-key range meets that of one of fs[0..n). */
static int overlaps_any(const kv_fmeta *f, kv_fmeta *const *fs, size_t n)
{
    kv_slice s = ikey_user((kv_slice){f->smallest, f->slen}), l = ikey_user((kv_slice){f->largest, f->llen});
    for (size_t i = 0; i < n; i++)
        if (slice_cmp(ikey_user((kv_slice){fs[i]->smallest, fs[i]->slen}), l) <= 0 &&
            slice_cmp(ikey_user((kv_slice){fs[i]->largest, fs[i]->llen}), s) >= 0)
            return 1;
    return 0;
}

/* Completes c given in[0]: adds the files of level+1 that overlap one of
 * them. Several L0 inputs may be disjoint (tables of different partitions):
 * what lies between them below is left alone (fences, see run_compaction)
 * rather than rewritten. */
static ndb_status add_parents(compaction *c)
{
    kv_slice lo, hi;
    range_of(c->in[0], c->nin[0], &lo, &hi);
    kv_fmeta **fs;
    size_t n, k = 0;
    ndb_status st = kv_version_overlaps(c->v, c->level + 1, &lo, &hi, &fs, &n);
    if (st != NDB_OK) return st;
    for (size_t i = 0; i < n; i++)
        if (overlaps_any(fs[i], c->in[0], c->nin[0])) fs[k++] = fs[i];
    c->in[1] = fs;
    c->nin[1] = k;
    return NDB_OK;
}

/* The files of level+1 inside c's input range that c leaves alone, in key
 * order: no output may span one. Caller frees *out. */
static ndb_status fences_of(compaction *c, kv_fmeta ***out, size_t *n)
{
    kv_slice lo, hi;
    range_of(c->in[0], c->nin[0], &lo, &hi);
    ndb_status st = kv_version_overlaps(c->v, c->level + 1, &lo, &hi, out, n);
    if (st != NDB_OK) return st;
    size_t k = 0;
    for (size_t i = 0; i < *n; i++) {
        int input = 0;
        for (size_t j = 0; j < c->nin[1] && !input; j++) input = c->in[1][j] == (*out)[i];
        if (!input) (*out)[k++] = (*out)[i];
    }
    *n = k;
    return NDB_OK;
}

void kv_seek_victim(ndb_kv *kv, kv_fmeta *f, int level)
{
    pthread_mutex_lock(&kv->mu);
    if (kv->seek_victim == NULL && level < NDB_KV_LEVELS - 1) {
        kv_fmeta_ref(f);
        kv->seek_victim = f;
        kv->seek_victim_level = level;
        pthread_cond_broadcast(&kv->bg_cv);
    }
    pthread_mutex_unlock(&kv->mu);
}

/* Takes the seek victim (see kv_seek_victim): its position in the current
 * version's level, or -1 when it is no longer there. mu held. */
static long take_seek_victim(ndb_kv *kv, int *level)
{
    kv_fmeta *f = kv->seek_victim;
    kv_version *v = kv->vs->current;
    long at = -1;
    *level = kv->seek_victim_level;
    for (size_t i = 0; i < v->nfiles[*level] && at < 0; i++)
        if (v->files[*level][i] == f) at = (long)i;
    kv->seek_victim = NULL;
    kv_fmeta_unref(f);
    return at;
}

/* Picks the most urgent compaction, or returns 0. A level over its budget
 * comes first; otherwise a table that reads paid for too often (seek
 * victim) is compacted with what overlaps it below. mu held. */
static int pick_compaction(ndb_kv *kv, compaction *c)
{
    kv_version *v = kv->vs->current;
    double best = 0;
    int level = -1;
    for (int l = 0; l < NDB_KV_LEVELS - 1; l++) {
        double score = l == 0 ? (double)kv_version_l0_load(v) / kv->opt.l0_compaction_trigger
                              : (double)v->bytes[l] / (double)kv_level_max_bytes(kv->vs, l);
        if (score > best) {
            best = score;
            level = l;
        }
    }
    long victim = -1;
    if (best < 1.0 && kv->seek_victim) victim = take_seek_victim(kv, &level);
    if (best < 1.0 && victim < 0) return 0;
    memset(c, 0, sizeof *c);
    c->level = level;
    c->v = v;
    kv_version_ref(v);
    if (level == 0) {
        c->in[0] = malloc(v->nfiles[0] * sizeof(kv_fmeta *));
        if (c->in[0] == NULL) goto fail;
        memcpy(c->in[0], v->files[0], v->nfiles[0] * sizeof(kv_fmeta *));
        c->nin[0] = v->nfiles[0];
    } else {
        /* the seek victim, or round robin: the first file after the last compacted key */
        size_t n = v->nfiles[level], pick = victim >= 0 ? (size_t)victim : 0;
        if (victim < 0 && kv->vs->compact_ptr[level]) {
            kv_slice cp = {kv->vs->compact_ptr[level], kv->vs->compact_ptr_len[level]};
            for (pick = 0; pick < n; pick++)
                if (slice_cmp(ikey_user((kv_slice){v->files[level][pick]->largest, v->files[level][pick]->llen}),
                              cp) > 0)
                    break;
            if (pick == n) pick = 0;
        }
        c->in[0] = malloc(sizeof(kv_fmeta *));
        if (c->in[0] == NULL) goto fail;
        c->in[0][0] = v->files[level][pick];
        c->nin[0] = 1;
    }
    if (add_parents(c) != NDB_OK) goto fail;
    return 1;
fail:
    compaction_free(c);
    return 0;
}

static void set_compact_ptr(ndb_kv *kv, compaction *c)
{
    kv_slice lo, hi;
    range_of(c->in[0], c->nin[0], &lo, &hi);
    char *p = malloc(hi.len ? hi.len : 1);
    if (p == NULL) return;
    memcpy(p, hi.data, hi.len);
    free(kv->vs->compact_ptr[c->level]);
    kv->vs->compact_ptr[c->level] = p;
    kv->vs->compact_ptr_len[c->level] = hi.len;
}

/* Runs c. mu held on entry and exit (released while merging). */
static ndb_status run_compaction(ndb_kv *kv, compaction *c, ndb_errmsg *msg)
{
    kv_edit e;
    kv_edit_init(&e);
    ndb_status st = NDB_OK;
    int out_level = c->level + 1;
    if (c->nin[1] == 0 && c->nin[0] == 1 && (c->level > 0 || c->v->nfiles[0] == 1)) {
        /* trivial move: no overlap below, just relink the file */
        kv_fmeta *f = c->in[0][0];
        st = kv_edit_del_file(&e, c->level, f->number);
        if (st == NDB_OK) st = kv_edit_add_file(&e, out_level, f);
        if (st == NDB_OK) st = kv_install(kv, &e, msg);
        if (st == NDB_OK) {
            set_compact_ptr(kv, c);
            kv->st_compactions++;
        }
        kv_edit_destroy(&e);
        return st;
    }
    uint64_t smallest_snap = smallest_snapshot(kv);
    size_t nit = c->nin[0] + c->nin[1];
    kv_iter **its = malloc((nit + 1) * sizeof *its);
    kv_fmeta **pinned = malloc((nit + 1) * sizeof *pinned); /* its[i] reads pinned[i]'s table */
    if (its == NULL || pinned == NULL) {
        free(its);
        free(pinned);
        return NDB_ENOMEM;
    }
    kv->compact_out = out_level; /* flushes keep their tables out of it meanwhile */
    pthread_mutex_unlock(&kv->mu);

    size_t k = 0;
    for (int w = 0; w < 2 && st == NDB_OK; w++)
        for (size_t i = 0; i < c->nin[w] && st == NDB_OK; i++) {
            kv_table *t;
            st = kv_fmeta_table(c->in[w][i], &t, msg);
            if (st == NDB_OK) {
                its[k] = kv_table_iter(t, NULL, NULL);
                if (its[k] == NULL) {
                    kv_fmeta_table_release(c->in[w][i]);
                    st = NDB_ENOMEM;
                } else {
                    pinned[k++] = c->in[w][i];
                }
            }
        }
    kv_iter *in = NULL;
    if (st == NDB_OK) {
        in = kv_iter_merge(its, (int)k);
        if (in == NULL) st = NDB_ENOMEM;
    } else {
        for (size_t i = 0; i < k; i++) it_destroy(its[i]);
    }
    free(its);

    outputs o = {0};
    part_track pt = {.fn = __atomic_load_n(&kv->partition, __ATOMIC_ACQUIRE)};
    kv_fmeta **fence = NULL;
    size_t nfence = 0, fi = 0;
    if (st == NDB_OK) st = fences_of(c, &fence, &nfence);
    char *cur = NULL;
    size_t cur_len = 0, cur_cap = 0;
    int has_cur = 0;
    uint64_t last_seq_for_key = KV_MAX_SEQ;
    if (st == NDB_OK) it_seek_first(in);
    for (; st == NDB_OK && it_valid(in); it_next(in)) {
        if (__atomic_load_n(&kv->shutting_down, __ATOMIC_RELAXED)) {
            st = NDB_ECLOSED;
            break;
        }
        kv_slice ik = it_key(in);
        kv_slice uk = ikey_user(ik);
        int new_user_key = !has_cur || slice_cmp(uk, (kv_slice){cur, cur_len}) != 0;
        if (new_user_key) {
            if (!kv_slice_keep(&cur, &cur_cap, &cur_len, uk)) {
                st = NDB_ENOMEM;
                break;
            }
            has_cur = 1;
            last_seq_for_key = KV_MAX_SEQ;
        }
        uint64_t seq = ikey_seq(ik);
        int drop = 0;
        if (last_seq_for_key <= smallest_snap)
            drop = 1; /* a newer entry for this key is visible to every reader */
        else if (ikey_type(ik) == KV_TYPE_DELETE && seq <= smallest_snap &&
                 kv_version_is_base(c->v, out_level, uk))
            drop = 1; /* nothing older can remain below: the tombstone has no work left */
        last_seq_for_key = seq;
        if (drop) continue;
        /* cut outputs only between user keys, so a key lives in one file per level */
        int other = new_user_key ? part_changed(&pt, uk) : 0;
        if (other < 0) {
            st = NDB_ENOMEM;
            break;
        }
        /* a key past a fence's start jumps it (no input key lies inside one) */
        int jumped = 0;
        for (; fi < nfence && slice_cmp(ikey_user((kv_slice){fence[fi]->smallest, fence[fi]->slen}), uk) < 0; fi++)
            jumped = 1;
        if (o.b && (other || jumped || (new_user_key && kv_table_builder_size(o.b) >= kv->opt.sst_target_bytes))) {
            st = finish_output(kv, &o);
            if (st != NDB_OK) break;
        }
        st = out_add(kv, &o, ik, it_value(in));
    }
    if (st == NDB_OK && in) st = it_status(in);
    st = out_end(kv, &o, st);
    it_destroy(in);
    for (size_t i = 0; i < k; i++) kv_fmeta_table_release(pinned[i]);
    free(pinned);
    free(cur);
    free(pt.prev);
    free(fence);

    pthread_mutex_lock(&kv->mu);
    if (st == NDB_OK) {
        for (int w = 0; w < 2 && st == NDB_OK; w++)
            for (size_t i = 0; i < c->nin[w] && st == NDB_OK; i++)
                st = kv_edit_del_file(&e, c->level + w, c->in[w][i]->number);
        for (size_t i = 0; i < o.n && st == NDB_OK; i++) st = kv_edit_add_file(&e, out_level, o.f[i]);
        if (st == NDB_OK) st = kv_install(kv, &e, msg);
        if (st == NDB_OK) {
            set_compact_ptr(kv, c);
            kv->st_compactions++;
        }
    } else if (st != NDB_ECLOSED) {
        ndb_errmsg_set(msg, st, "compaction of level %d into table %06llu.sst failed", c->level, (unsigned long long)o.num);
    }
    /* Outputs that failed to be written were removed by out_end. Those of a
     * failed install stay: its manifest record may have reached the file
     * before its fsync failed, and then the next open needs them (it deletes
     * whatever the manifest does not name). */
    out_free(&o);
    kv_edit_destroy(&e);
    kv->compact_out = -1;
    return st;
}

static void *compact_main(void *arg)
{
    ndb_kv *kv = arg;
    pthread_mutex_lock(&kv->mu);
    while (!kv->shutting_down) {
        compaction c;
        if (kv->poisoned || kv->compacting || !pick_compaction(kv, &c)) {
            pthread_cond_wait(&kv->bg_cv, &kv->mu);
            continue;
        }
        kv->compacting = 1;
        ndb_errmsg msg;
        ndb_status st = run_compaction(kv, &c, &msg);
        compaction_free(&c);
        kv->compacting = 0;
        if (st != NDB_OK && st != NDB_ECLOSED) {
            /* A corrupt or unreadable input stops compaction; writes
             * continue until L0 fills, reads report the corruption. */
            if (st == NDB_ECORRUPT) {
                ndb_errmsg_set(&kv->err, st, "%.200s: %s", msg.text, ndb_strerror(st));
                kv->compact_error = st;
            } else {
                kv_poison(kv, st, msg.text);
            }
        }
        pthread_cond_broadcast(&kv->bg_cv);
        if (kv->compact_error) {
            while (!kv->shutting_down) pthread_cond_wait(&kv->bg_cv, &kv->mu);
        }
    }
    pthread_mutex_unlock(&kv->mu);
    return NULL;
}

/* ------------------------------------------------------------------ maintenance */

ndb_status ndb_kv_flush(ndb_kv *kv)
{
    if (kv == NULL) return NDB_EINVAL;
    ndb_status st = kv_write_switch_memtable(kv);
    if (st != NDB_OK) return st;
    pthread_mutex_lock(&kv->mu);
    while (kv->imm != NULL && !kv->poisoned && !kv->shutting_down) pthread_cond_wait(&kv->bg_cv, &kv->mu);
    st = kv->poisoned ? NDB_EPOISONED : NDB_OK;
    pthread_mutex_unlock(&kv->mu);
    return st;
}

ndb_status ndb_kv_compact_range(ndb_kv *kv, const void *begin, size_t blen, const void *end, size_t elen)
{
    if (kv == NULL) return NDB_EINVAL;
    ndb_status st = ndb_kv_flush(kv);
    if (st != NDB_OK) return st;
    kv_slice b = {begin, blen}, e = {end, elen};
    const kv_slice *bp = begin ? &b : NULL, *ep = end ? &e : NULL;
    pthread_mutex_lock(&kv->mu);
    while (kv->compacting && !kv->poisoned) pthread_cond_wait(&kv->bg_cv, &kv->mu);
    if (kv->poisoned) {
        pthread_mutex_unlock(&kv->mu);
        return NDB_EPOISONED;
    }
    kv->compacting = 1;
    int max = kv_vset_max_level(kv->vs);
    if (max < 1) max = 1;
    for (int level = 0; level < max && st == NDB_OK; level++) {
        for (;;) {
            compaction c;
            memset(&c, 0, sizeof c);
            c.level = level;
            c.v = kv->vs->current;
            kv_version_ref(c.v);
            kv_fmeta **ov;
            size_t n;
            st = kv_version_overlaps(c.v, level, bp, ep, &ov, &n);
            if (st != NDB_OK || n == 0) {
                if (st == NDB_OK) free(ov);
                compaction_free(&c);
                break;
            }
            if (level == 0) { /* L0 files overlap each other: take them all */
                free(ov);
                st = kv_version_overlaps(c.v, 0, NULL, NULL, &ov, &n);
                if (st != NDB_OK) {
                    compaction_free(&c);
                    break;
                }
            } else if (n > 4) {
                n = 4; /* bounded step */
            }
            c.in[0] = ov;
            c.nin[0] = n;
            st = add_parents(&c);
            ndb_errmsg msg;
            if (st == NDB_OK) st = run_compaction(kv, &c, &msg);
            compaction_free(&c);
            if (st != NDB_OK) {
                if (st != NDB_ECLOSED && st != NDB_ECORRUPT) kv_poison(kv, st, msg.text);
                break;
            }
        }
    }
    kv->compacting = 0;
    pthread_cond_broadcast(&kv->bg_cv);
    pthread_mutex_unlock(&kv->mu);
    return st;
}

ndb_status ndb_kv_stats_get(ndb_kv *kv, ndb_kv_stats *out)
{
    if (kv == NULL || out == NULL) return NDB_EINVAL;
    memset(out, 0, sizeof *out);
    pthread_mutex_lock(&kv->mu);
    kv_version *v = kv->vs->current;
    for (int l = 0; l < NDB_KV_LEVELS; l++) {
        out->levels[l].files = (uint32_t)v->nfiles[l];
        out->levels[l].bytes = v->bytes[l];
    }
    out->memtable_bytes = kv_mem_bytes(kv->mem);
    out->imm_memtable_bytes = kv->imm ? kv_mem_bytes(kv->imm) : 0;
    out->flushes = kv->st_flushes;
    out->compactions = kv->st_compactions;
    out->stall_count = kv->st_stall_count;
    out->stall_micros = kv->st_stall_micros;
    out->poisoned = kv->poisoned;
    pthread_mutex_unlock(&kv->mu);
    out->open_tables = kv_vset_open_tables(kv->vs);
    out->last_seq = __atomic_load_n(&kv->last_seq, __ATOMIC_ACQUIRE);
    out->wal_syncs = __atomic_load_n(&kv->st_wal_syncs, __ATOMIC_RELAXED);
    out->wal_bytes = __atomic_load_n(&kv->st_wal_bytes, __ATOMIC_RELAXED);
    out->user_bytes_written = __atomic_load_n(&kv->st_user_bytes, __ATOMIC_RELAXED);
    out->sst_bytes_written = __atomic_load_n(&kv->st_sst_bytes, __ATOMIC_RELAXED);
    out->write_amplification = out->user_bytes_written
                                   ? (double)(out->wal_bytes + out->sst_bytes_written) / (double)out->user_bytes_written
                                   : 0.0;
    kv_table_counters tc;
    kv_table_counters_get(&tc);
    out->bloom_useful = tc.bloom_useful;
    if (kv->cache) {
        kv_cache_counters(kv->cache, &out->block_cache_hits, &out->block_cache_misses);
        out->block_cache_bytes = kv_cache_usage(kv->cache);
        out->block_cache_capacity = kv->opt.block_cache_bytes;
    }
    return NDB_OK;
}

/* ------------------------------------------------------------------ open / close */


/* Writes a memtable rebuilt from the WAL to L0 tables added to e. */
static ndb_status recovered_to_l0(ndb_kv *kv, kv_mem *mem, kv_edit *e, ndb_errmsg *msg)
{
    outputs o;
    ndb_status st = mem_to_tables(kv, mem, &o, msg);
    for (size_t i = 0; i < o.n && st == NDB_OK; i++) st = kv_edit_add_file(e, 0, o.f[i]);
    out_free(&o);
    return st;
}

/* Replays WAL segments >= vs->log_number into memtables, writing full ones
 * to L0 tables added to e; *rest gets the last one (the caller unrefs it).
 * e NULL: writes nothing, every replayed write stays in *rest. */
static ndb_status recover_wal(ndb_kv *kv, kv_edit *e, ndb_kv_recovery_info *info, ndb_errmsg *msg, kv_mem **rest)
{
    *rest = NULL;
    char **names;
    size_t n;
    ndb_status st = kv->env->v->list(kv->env, kv->dir, &names, &n);
    if (st != NDB_OK) return ndb_errmsg_set(msg, st, "listing %s failed", kv->dir);
    for (size_t i = 0; i < n; i++) {
        unsigned long long num;
        char ext[8];
        int got = sscanf(names[i], "%llu.%7s", &num, ext);
        if (got != 2) got = sscanf(names[i], "MANIFEST-%llu", &num) == 1 ? 2 : 0;
        /* never hand out a number a file already has, whatever the manifest says */
        if (got == 2 && num >= kv->vs->next_file && num < UINT64_MAX / 2) kv->vs->next_file = num + 1;
    }
    kv_env_free_list(names, n);
    uint64_t *wals;
    size_t nw;
    if ((st = kv_segments_list(kv, kv->vs->log_number, UINT64_MAX, &wals, &nw)) != NDB_OK)
        return ndb_errmsg_set(msg, st, "listing %s failed", kv->dir);

    kv_mem *mem = kv_mem_new(kv->arena_block, kv->mem_filter_bytes);
    if (mem == NULL) {
        free(wals);
        return NDB_ENOMEM;
    }
    uint64_t max_seq = kv->vs->last_seq;
    int stop = 0;
    for (size_t i = 0; i < nw && st == NDB_OK && !stop; i++) {
        char path[4096];
        kv_file_path(kv, path, sizeof path, wals[i], "wal");
        if (wals[i] >= kv->vs->next_file) kv->vs->next_file = wals[i] + 1;
        kv_wal_reader *r;
        st = kv_wal_reader_open(kv->env, path, &r);
        if (st != NDB_OK) {
            ndb_errmsg_set(msg, st, "%s: open failed", path);
            break;
        }
        info->wal_segments++;
        int type;
        const char *p;
        size_t len;
        ndb_status rs;
        while ((rs = kv_wal_read(r, &type, &p, &len)) == NDB_OK) {
            if (type != WAL_BATCH || kv_batch_check(p, len) != NDB_OK) {
                rs = NDB_ECORRUPT;
                break;
            }
            uint64_t seq = get_fixed64(p);
            uint32_t cnt = get_fixed32(p + 8);
            if (seq == 0 || seq + cnt > KV_MAX_SEQ) {
                rs = NDB_ECORRUPT;
                break;
            }
            st = kv_batch_iterate(p, len, kv_mem_insert_fn, mem);
            if (st != NDB_OK) break;
            info->wal_records++;
            if (cnt && seq + cnt - 1 > max_seq) max_seq = seq + cnt - 1;
            if (e != NULL && kv_mem_bytes(mem) >= kv->opt.memtable_bytes) {
                st = recovered_to_l0(kv, mem, e, msg);
                kv_mem_unref(mem);
                mem = kv_mem_new(kv->arena_block, kv->mem_filter_bytes);
                if (mem == NULL && st == NDB_OK) st = NDB_ENOMEM;
                if (st != NDB_OK) break;
            }
        }
        if (st == NDB_OK && rs == NDB_ECORRUPT) {
            uint64_t skipped = kv_wal_reader_skipped(r);
            if (skipped == 0) { /* a record passed its CRC but its batch did not parse */
                uint64_t sz = 0;
                kv_file *f;
                if (kv->env->v->open_read(kv->env, path, &f) == NDB_OK) {
                    kv_file_size(f, &sz);
                    kv_file_close(f);
                }
                skipped = sz > kv_wal_reader_offset(r) ? sz - kv_wal_reader_offset(r) : 0;
            }
            info->wal_bytes_skipped += skipped;
            if (i + 1 < nw && kv->opt.paranoid_checks) {
                st = ndb_errmsg_set(msg, NDB_ECORRUPT,
                                    "%s: corrupt record at offset %llu before the last WAL segment", path,
                                    (unsigned long long)kv_wal_reader_offset(r));
            } else {
                /* point-in-time: stop at the last valid record */
                info->tail_corrupt = 1;
                stop = 1;
            }
        } else if (st == NDB_OK && rs != NDB_ENOTFOUND) {
            st = ndb_errmsg_set(msg, rs, "%s: read failed", path);
        }
        kv_wal_reader_free(r);
    }
    free(wals);
    if (st != NDB_OK) {
        kv_mem_unref(mem);
        return st;
    }
    *rest = mem;
    kv->vs->last_seq = max_seq;
    __atomic_store_n(&kv->last_seq, max_seq, __ATOMIC_RELEASE);
    return NDB_OK;
}

/* Removes the table files e adds, which no manifest names (an open or a
 * resume that failed after writing them). */
static void remove_added(ndb_kv *kv, const kv_edit *e)
{
    for (size_t i = 0; i < e->nadd; i++) {
        char path[4096];
        kv_file_path(kv, path, sizeof path, e->add[i].f->number, "sst");
        kv->env->v->remove(kv->env, path);
    }
}

/* db.h. A failed log_and_apply removes the fresh manifest it wrote: at open and while
 * deferred_open no other manifest is open for appends. */
ndb_status kv_write_out_recovered(ndb_kv *kv, kv_mem *mem, kv_edit *e, ndb_errmsg *msg)
{
    if (mem != NULL && kv_mem_entries(mem) > 0) {
        pthread_mutex_unlock(&kv->mu);
        ndb_status st = recovered_to_l0(kv, mem, e, msg);
        pthread_mutex_lock(&kv->mu);
        if (st != NDB_OK) {
            remove_added(kv, e); /* a memtable's worth written earlier in the replay */
            return st;
        }
    }
    kv_wal_writer *w;
    uint64_t num;
    ndb_status st = kv_segment_new(kv, &w, &num);
    if (st != NDB_OK) {
        remove_added(kv, e);
        return ndb_errmsg_set(msg, st, "creating WAL segment %06llu.wal failed", (unsigned long long)num);
    }
    e->has_log = 1;
    e->log_number = num;
    e->has_seq = 1;
    e->last_seq = kv->vs->last_seq;
    st = kv_vset_log_and_apply(kv->vs, e, msg);
    if (st != NDB_OK) {
        char path[4096];
        kv_file_path(kv, path, sizeof path, num, "wal");
        kv_wal_close(w);
        kv->env->v->remove(kv->env, path);
        remove_added(kv, e);
        return st;
    }
    pthread_mutex_lock(&kv->smu);
    kv->wal = w;
    pthread_mutex_unlock(&kv->smu);
    kv->wal_number = num;
    return NDB_OK;
}

static int in_version(const kv_version *v, uint64_t num)
{
    for (int l = 0; l < NDB_KV_LEVELS; l++)
        for (size_t j = 0; j < v->nfiles[l]; j++)
            if (v->files[l][j]->number == num) return 1;
    return 0;
}

/* Removes files no version needs: old WALs and manifests, unreferenced tables, temporaries. */
void kv_delete_obsolete(ndb_kv *kv)
{
    char **names;
    size_t n;
    if (kv->env->v->list(kv->env, kv->dir, &names, &n) != NDB_OK) return;
    kv_version *v = kv->vs->current;
    for (size_t i = 0; i < n; i++) {
        unsigned long long num;
        char ext[16];
        int del = 0;
        size_t L = strlen(names[i]);
        if (L > 4 && strcmp(names[i] + L - 4, ".tmp") == 0) {
            del = 1;
        } else if (sscanf(names[i], "MANIFEST-%llu", &num) == 1) {
            del = num != kv->vs->manifest_number;
        } else if (sscanf(names[i], "%llu.%15s", &num, ext) == 2) {
            if (strcmp(ext, "wal") == 0) {
                del = num < kv->vs->log_number;
            } else if (strcmp(ext, "sst") == 0) {
                int live = in_version(v, num);
                for (kv_pin *p = kv->pins.next; p != &kv->pins && !live; p = p->next) live = in_version(p->v, num);
                del = !live;
            }
        }
        if (del) {
            char path[4096];
            snprintf(path, sizeof path, "%s/%s", kv->dir, names[i]);
            kv->env->v->remove(kv->env, path);
        }
    }
    kv_env_free_list(names, n);
}

static void kv_free(ndb_kv *kv)
{
    kv_fmeta_unref(kv->seek_victim);
    kv_mem_unref(kv->mem);
    kv_mem_unref(kv->imm);
    kv_wal_close(kv->wal);
    kv_vset_free(kv->vs);
    kv_cache_free(kv->cache);
    kv_file_close(kv->lockf);
    while (kv->snaps.next != &kv->snaps) {
        ndb_kv_snapshot *s = kv->snaps.next;
        kv->snaps.next = s->next;
        free(s);
    }
    pthread_mutex_destroy(&kv->mu);
    pthread_cond_destroy(&kv->bg_cv);
    pthread_mutex_destroy(&kv->wmu);
    pthread_mutex_destroy(&kv->smu);
    pthread_cond_destroy(&kv->interval_cv);
    free(kv->dir);
    free(kv);
}

ndb_status ndb_kv_open(const char *dir, const ndb_kv_options *opt, ndb_kv **out, ndb_errmsg *msg)
{
    return ndb_kv_open_ex(dir, opt, out, NULL, msg);
}

ndb_status ndb_kv_open_ex(const char *dir, const ndb_kv_options *opt, ndb_kv **out, ndb_kv_recovery_info *info,
                          ndb_errmsg *msg)
{
    ndb_errmsg local = {{0}};
    if (msg == NULL) msg = &local; /* the open reads back what a failed step said */
    if (dir == NULL || out == NULL) return ndb_errmsg_set(msg, NDB_EINVAL, "dir and out are required");
    if (strlen(dir) > 3000) return ndb_errmsg_set(msg, NDB_EINVAL, "directory path too long");
    ndb_kv_options o;
    if (opt)
        o = *opt;
    else
        ndb_kv_options_init(&o);
    if (o.durability > NDB_KV_NONE || o.compression > NDB_KV_COMPRESS_ZSTD || o.memtable_bytes < 4096 ||
        o.block_bytes < 256 || o.block_bytes > (16u << 20) || o.bloom_bits_per_key > 30 ||
        o.l0_compaction_trigger < 1 || o.l0_slowdown_trigger < o.l0_compaction_trigger ||
        o.l0_stop_trigger < o.l0_slowdown_trigger || o.l1_max_bytes < 4096 || o.sst_target_bytes < 4096 ||
        (o.durability == NDB_KV_INTERVAL && o.interval_ms == 0))
        return ndb_errmsg_set(msg, NDB_EINVAL, "invalid options");
    ndb_kv_recovery_info dummy;
    if (info == NULL) info = &dummy;
    memset(info, 0, sizeof *info);

    ndb_kv *kv = calloc(1, sizeof *kv);
    if (kv == NULL) return ndb_errmsg_set(msg, NDB_ENOMEM, "out of memory");
    kv->opt = o;
    kv->env = o.env ? o.env : kv_env_posix();
    kv->dir = strdup(dir);
    snprintf(kv->err.text, sizeof kv->err.text, "no error");
    pthread_mutex_init(&kv->mu, NULL);
    pthread_cond_init(&kv->bg_cv, NULL);
    pthread_mutex_init(&kv->wmu, NULL);
    pthread_mutex_init(&kv->smu, NULL);
    pthread_cond_init(&kv->interval_cv, NULL);
    kv->snaps.next = kv->snaps.prev = &kv->snaps;
    kv->pins.next = kv->pins.prev = &kv->pins;
    kv->compact_out = -1;
    /* the memtable grows by arena blocks: keep them small against its budget */
    kv->mem_filter_bytes = o.memtable_bytes / 64; /* ~18 bits per 150-byte entry */
    kv->arena_block = o.memtable_bytes / 16;
    if (kv->arena_block > 256 * 1024) kv->arena_block = 256 * 1024;
    if (kv->arena_block < 4096) kv->arena_block = 4096;
    kv->topts.block_bytes = o.block_bytes;
    kv->topts.bloom_bits = (int)o.bloom_bits_per_key;
    kv->topts.compression = o.compression;
    ndb_status st = kv->dir ? NDB_OK : NDB_ENOMEM;
    if (st == NDB_OK) {
        st = kv->env->v->mkdir(kv->env, dir);
        if (st != NDB_OK) ndb_errmsg_set(msg, st, "%s: cannot create directory", dir);
    }
    if (st == NDB_OK) {
        char path[4096];
        snprintf(path, sizeof path, "%s/LOCK", dir);
        st = kv->env->v->lock(kv->env, path, &kv->lockf);
        if (st != NDB_OK) ndb_errmsg_set(msg, st, "%s: %s", path, st == NDB_EBUSY ? "locked by another handle" : "lock failed");
    }
    if (st == NDB_OK && o.block_cache_bytes > 0) {
        kv->cache = kv_cache_new(o.block_cache_bytes);
        if (kv->cache == NULL) st = NDB_ENOMEM;
    }
    if (st == NDB_OK)
        st = kv_vset_new(kv->env, dir, kv->cache, &kv->topts, o.l1_max_bytes, o.l0_compaction_trigger,
                         o.max_open_tables, &kv->vs);
    if (st == NDB_OK) {
        st = kv_vset_recover(kv->vs, msg);
        if (st == NDB_ENOTFOUND) {
            st = o.create_if_missing ? NDB_OK : ndb_errmsg_set(msg, NDB_ENOTFOUND, "%s: no database", dir);
        } else if (st == NDB_OK && o.error_if_exists) {
            st = ndb_errmsg_set(msg, NDB_EEXIST, "%s: database exists", dir);
        }
    }
    kv_edit e;
    kv_edit_init(&e);
    kv_mem *rest = NULL;
    int opened = st == NDB_OK; /* the directory, its lock and its manifest */
    if (st == NDB_OK) st = recover_wal(kv, &e, info, msg, &rest);
    if (st == NDB_OK) {
        pthread_mutex_lock(&kv->mu); /* no other thread yet: for kv_write_out_recovered's contract */
        st = kv_write_out_recovered(kv, rest, &e, msg);
        pthread_mutex_unlock(&kv->mu);
    }
    kv_mem_unref(rest);
    if (st != NDB_OK) remove_added(kv, &e); /* tables a replay cut short wrote */
    kv_edit_destroy(&e);
    if (opened && (st == NDB_ENOSPC || st == NDB_EMFILE)) {
        /* A full disk (or no descriptors) must not keep the data from being
         * read: replay again, keeping every write in memory, with the WAL
         * segments and the manifest as they are; ndb_kv_resume finishes. */
        ndb_errmsg why = *msg;
        ndb_status cause = st;
        memset(info, 0, sizeof *info);
        st = recover_wal(kv, NULL, info, msg, &kv->mem);
        if (st == NDB_OK) {
            kv->deferred_open = 1;
            char what[200];
            snprintf(what, sizeof what, "open: writing out the replayed WAL: %.150s", why.text);
            pthread_mutex_lock(&kv->mu);
            kv_poison(kv, cause, what);
            pthread_mutex_unlock(&kv->mu);
        }
    } else if (st == NDB_OK) {
        kv->mem = kv_mem_new(kv->arena_block, kv->mem_filter_bytes);
        if (kv->mem == NULL) st = NDB_ENOMEM;
        if (st == NDB_OK) kv_delete_obsolete(kv);
    }
    if (st == NDB_OK) {
        if (pthread_create(&kv->flush_thr, NULL, flush_main, kv) != 0) st = NDB_ENOMEM;
        else kv->threads = 1;
    }
    if (st == NDB_OK) {
        if (pthread_create(&kv->compact_thr, NULL, compact_main, kv) != 0) st = NDB_ENOMEM;
        else kv->threads = 2;
    }
    if (st == NDB_OK) st = kv_write_start(kv);
    if (st != NDB_OK) {
        if (msg && msg->text[0] == 0) ndb_errmsg_set(msg, st, "open failed: %s", ndb_strerror(st));
        ndb_kv_close(kv);
        return st;
    }
    *out = kv;
    return NDB_OK;
}

ndb_status ndb_kv_close(ndb_kv *kv)
{
    if (kv == NULL) return NDB_OK;
    pthread_mutex_lock(&kv->mu);
    __atomic_store_n(&kv->shutting_down, 1, __ATOMIC_RELAXED);
    pthread_cond_broadcast(&kv->bg_cv);
    pthread_mutex_unlock(&kv->mu);
    if (kv->threads >= 1) pthread_join(kv->flush_thr, NULL);
    if (kv->threads >= 2) pthread_join(kv->compact_thr, NULL);
    kv_write_stop(kv);
    ndb_status st = NDB_OK;
    /* a full disk poisons without making the WAL untrustworthy: what it
     * holds is fsync'd all the same (NDB_KV_INTERVAL and NONE ack before) */
    if (kv->wal && __atomic_load_n(&kv->sync_error, __ATOMIC_ACQUIRE) == NDB_OK) {
        st = kv_wal_sync(kv->wal);
        if (st == NDB_OK) __atomic_add_fetch(&kv->st_wal_syncs, 1, __ATOMIC_RELAXED);
    }
    if (kv->poisoned) st = NDB_EPOISONED;
    kv_free(kv);
    return st;
}
