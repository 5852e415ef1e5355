/*
 * Randomized model test: long random sequences of put / delete / batch /
 * get / snapshot / iterate (both directions, bounds, zig-zag) / flush /
 * compact / reopen, checked against an in-memory model. NDB_KV_MODEL_OPS
 * sets the operations per seed (default 10000).
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ndb_kv.h"
#include "testutil.h"

#define NKEYS 400
#define MAXSNAP 3

typedef struct model {
    int present[NKEYS];
    char val[NKEYS][48];
} model;

typedef struct snapm {
    ndb_kv_snapshot *s;
    model m;
} snapm;

static uint64_t rng;
static uint32_t rnd(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (uint32_t)(rng >> 11);
}

static void key_of(char *k, int i) { sprintf(k, "k%04d", i); }

/* Partitions of 100 keys ("k00", "k01", ...) for some seeds. */
static size_t three_bytes(const void *key, size_t len)
{
    (void)key;
    return len < 3 ? len : 3;
}

static ndb_kv *open_model_db(const char *dir)
{
    ndb_kv_options o;
    ndb_kv_options_init(&o);
    o.durability = NDB_KV_NONE;
    o.memtable_bytes = 32 * 1024;
    o.sst_target_bytes = 8 * 1024;
    o.l1_max_bytes = 32 * 1024;
    o.block_bytes = 512;
    o.block_cache_bytes = 64 * 1024;
    o.compression = (rng & 1) ? NDB_KV_COMPRESS_LZ4 : NDB_KV_COMPRESS_NONE;
    ndb_kv *kv;
    ndb_errmsg msg;
    ndb_status st = ndb_kv_open(dir, &o, &kv, &msg);
    cr_assert_eq(st, NDB_OK, "%s", msg.text);
    if (rng & 2)
        ndb_kv_set_partition(kv, three_bytes);
    return kv;
}

static void check_get(ndb_kv *kv, const ndb_kv_snapshot *s, const model *m, int i, long op)
{
    char k[16];
    key_of(k, i);
    void *v;
    size_t n;
    ndb_status st = ndb_kv_get(kv, s, k, strlen(k), &v, &n);
    if (!m->present[i]) {
        cr_assert_eq(st, NDB_ENOTFOUND, "op %ld: %s should be absent (%s)", op, k, ndb_strerror(st));
        return;
    }
    cr_assert_eq(st, NDB_OK, "op %ld: %s missing (%s)", op, k, ndb_strerror(st));
    cr_assert(n == strlen(m->val[i]) && memcmp(v, m->val[i], n) == 0, "op %ld: %s wrong value", op, k);
    free(v);
}

static void check_iter(ndb_kv *kv, const ndb_kv_snapshot *s, const model *m, long op)
{
    int lo = (rnd() % 3 == 0) ? -1 : (int)(rnd() % NKEYS);
    int hi = (rnd() % 3 == 0) ? -1 : (int)(rnd() % (NKEYS + 1));
    char lk[16], hk[16];
    if (lo >= 0) key_of(lk, lo);
    if (hi >= 0) key_of(hk, hi);
    ndb_kv_iter *it;
    cr_assert_eq(ndb_kv_iter_new(kv, s, lo >= 0 ? lk : NULL, lo >= 0 ? strlen(lk) : 0, hi >= 0 ? hk : NULL,
                                 hi >= 0 ? strlen(hk) : 0, &it),
                 NDB_OK);
    int exp[NKEYS], ne = 0;
    for (int i = (lo < 0 ? 0 : lo); i < (hi < 0 ? NKEYS : hi); i++)
        if (m->present[i]) exp[ne++] = i;
    int pos, mode = (int)(rnd() % 3);
    if (mode == 0) {
        ndb_kv_iter_seek_first(it);
        pos = 0;
    } else if (mode == 1) {
        ndb_kv_iter_seek_last(it);
        pos = ne - 1;
    } else {
        int t = (int)(rnd() % NKEYS);
        char tk[16];
        key_of(tk, t);
        ndb_kv_iter_seek(it, tk, strlen(tk));
        pos = 0;
        while (pos < ne && exp[pos] < t) pos++;
    }
    for (int step = 0; step < 60; step++) {
        if (pos < 0 || pos >= ne) {
            cr_assert(!ndb_kv_iter_valid(it), "op %ld: iterator valid past the end (pos %d of %d)", op, pos, ne);
            break;
        }
        cr_assert(ndb_kv_iter_valid(it), "op %ld: iterator ended early at %d of %d", op, pos, ne);
        size_t kl, vl;
        const char *key = ndb_kv_iter_key(it, &kl);
        const char *val = ndb_kv_iter_value(it, &vl);
        char want[16];
        key_of(want, exp[pos]);
        cr_assert(kl == strlen(want) && memcmp(key, want, kl) == 0, "op %ld step %d: got %.*s want %s", op, step,
                  (int)kl, key, want);
        cr_assert(vl == strlen(m->val[exp[pos]]) && memcmp(val, m->val[exp[pos]], vl) == 0);
        if (rnd() % 4 == 0) {
            ndb_kv_iter_prev(it);
            pos--;
        } else {
            ndb_kv_iter_next(it);
            pos++;
        }
    }
    cr_assert_eq(ndb_kv_iter_status(it), NDB_OK);
    ndb_kv_iter_free(it);
}

static void run_seed(uint64_t seed, long ops)
{
    rng = seed * 0x9e3779b97f4a7c15ull + 1;
    char *dir = tu_tmpdir("model");
    ndb_kv *kv = open_model_db(dir);
    static model m;
    static snapm snaps[MAXSNAP];
    memset(&m, 0, sizeof m);
    int nsnap = 0;
    ndb_kv_batch *b;
    ndb_kv_batch_new(&b);
    char k[16];
    for (long op = 0; op < ops; op++) {
        uint32_t r = rnd() % 1000;
        int i = (int)(rnd() % NKEYS);
        key_of(k, i);
        if (r < 400) {
            char v[48];
            int n = snprintf(v, sizeof v, "v%ld-%u", op, rnd() % 100000);
            cr_assert_eq(ndb_kv_put(kv, k, strlen(k), v, (size_t)n), NDB_OK);
            m.present[i] = 1;
            strcpy(m.val[i], v);
        } else if (r < 550) {
            cr_assert_eq(ndb_kv_delete(kv, k, strlen(k)), NDB_OK);
            m.present[i] = 0;
        } else if (r < 650) {
            ndb_kv_batch_clear(b);
            model nm = m;
            int cnt = 1 + (int)(rnd() % 5);
            for (int j = 0; j < cnt; j++) {
                int x = (int)(rnd() % NKEYS);
                char kk[16];
                key_of(kk, x);
                if (rnd() % 3 == 0) {
                    ndb_kv_batch_delete(b, kk, strlen(kk));
                    nm.present[x] = 0;
                } else {
                    char v[48];
                    int n = snprintf(v, sizeof v, "b%ld-%d", op, j);
                    ndb_kv_batch_put(b, kk, strlen(kk), v, (size_t)n);
                    nm.present[x] = 1;
                    strcpy(nm.val[x], v);
                }
            }
            cr_assert_eq(ndb_kv_write(kv, b), NDB_OK);
            m = nm;
        } else if (r < 850) {
            check_get(kv, NULL, &m, i, op);
        } else if (r < 900) {
            check_iter(kv, NULL, &m, op);
        } else if (r < 950) {
            if (nsnap < MAXSNAP && rnd() % 2) {
                cr_assert_eq(ndb_kv_snapshot_acquire(kv, &snaps[nsnap].s), NDB_OK);
                snaps[nsnap].m = m;
                nsnap++;
            } else if (nsnap > 0) {
                int s = (int)(rnd() % (unsigned)nsnap);
                for (int t = 0; t < 5; t++) check_get(kv, snaps[s].s, &snaps[s].m, (int)(rnd() % NKEYS), op);
                check_iter(kv, snaps[s].s, &snaps[s].m, op);
                if (rnd() % 2) {
                    ndb_kv_snapshot_release(kv, snaps[s].s);
                    snaps[s] = snaps[--nsnap];
                }
            }
        } else if (r < 970) {
            cr_assert_eq(ndb_kv_flush(kv), NDB_OK);
        } else if (r < 975) {
            int a = (int)(rnd() % NKEYS), z = a + (int)(rnd() % 100);
            char ak[16], zk[16];
            key_of(ak, a);
            key_of(zk, z);
            cr_assert_eq(ndb_kv_compact_range(kv, ak, strlen(ak), zk, strlen(zk)), NDB_OK);
        } else if (r < 980) {
            while (nsnap > 0) ndb_kv_snapshot_release(kv, snaps[--nsnap].s);
            cr_assert_eq(ndb_kv_close(kv), NDB_OK);
            kv = open_model_db(dir);
        }
    }
    for (int i = 0; i < NKEYS; i++) check_get(kv, NULL, &m, i, ops);
    ndb_kv_stats st;
    ndb_kv_stats_get(kv, &st);
    cr_assert_gt(st.flushes + st.levels[0].files + st.levels[1].files, 0);
    while (nsnap > 0) ndb_kv_snapshot_release(kv, snaps[--nsnap].s);
    ndb_kv_batch_free(b);
    cr_assert_eq(ndb_kv_close(kv), NDB_OK);
    tu_rmdir(dir);
}

Test(model, random_ops_match_model, .timeout = 300)
{
    const char *e = getenv("NDB_KV_MODEL_OPS");
    long ops = e ? atol(e) : 10000;
    for (uint64_t seed = 1; seed <= 3; seed++) run_seed(seed, ops);
}
