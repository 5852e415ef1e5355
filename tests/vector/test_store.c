/*
 * test_store.c — vector collections through the public API (vector/ndb_vec.h):
 * writes and validation, exact search against a brute-force model across
 * sealed segments, the active segment and tombstones, filters, persistence
 * across reopen and merge, corrupt and truncated files, torn logs, a failed
 * fsync, and kill -9 during writes.
 */
#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "ndb_vec.h"
#include "vio.h"

static char tmpl[64];

static const char *fresh_dir(void)
{
    snprintf(tmpl, sizeof tmpl, "/tmp/ndbvec-test-XXXXXX");
    cr_assert(mkdtemp(tmpl));
    return tmpl;
}

static void rm_rf(const char *dir)
{
    char cmd[256];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        cr_log_warn("cleanup of %s failed", dir);
}

static int no_sync; /* the search suites skip fsync (durability has its own tests) */

static ndb_vec_store *open_store(const char *dir, uint64_t segment_bytes)
{
    ndb_vec_options o;
    ndb_vec_options_default(&o);
    o.sync = !no_sync;
    o.threads = 2;
    o.segment_bytes = segment_bytes;
    ndb_vec_store *s = NULL;
    ndb_errmsg m = {{0}};
    ndb_status st = ndb_vec_open(dir, &o, &s, &m);
    cr_assert_eq(st, NDB_OK, "open %s: %s", dir, m.text);
    return s;
}

/* ---- a model of the live rows --------------------------------------------- */

#define D 8
typedef struct model {
    size_t n;
    char ids[4096][16];
    float v[4096][D];
    int live[4096];
} model;

static uint64_t rs = 0x2545F4914F6CDD1Dull;
static uint64_t rnd(void)
{
    rs ^= rs << 13;
    rs ^= rs >> 7;
    rs ^= rs << 17;
    return rs;
}

static void rand_int_vec(float *v)
{
    for (int j = 0; j < D; j++)
        v[j] = (float)((int)(rnd() % 7) - 3);
    if (v[0] == 0 && v[1] == 0)
        v[0] = 1; /* never all zero */
}

static double score_of(ndb_vec_metric m, const float *a, const float *b)
{
    double s = 0;
    for (int j = 0; j < D; j++)
        s += m == NDB_VEC_L2 ? -((double)a[j] - b[j]) * ((double)a[j] - b[j]) : (double)a[j] * b[j];
    return s;
}

static int cmp_desc(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x > y ? -1 : x < y;
}

typedef struct keep_ctx {
    int parity;
    int calls;
} keep_ctx;

static int keep_parity(void *ctx, const char *id, size_t len)
{
    keep_ctx *k = ctx;
    k->calls++;
    int num = atoi(id + 1);
    (void)len;
    return (num & 1) == k->parity;
}

/* Checks one result against the model: exact scores (integer data), every
 * hit live, distinct and (if parity >= 0) of that parity. */
static void check_result(const model *md, ndb_vec_metric metric, const float *q, const ndb_vec_result *r, uint32_t k,
                         int parity, const char *ctx)
{
    double *all = malloc(md->n * sizeof(double));
    size_t m = 0;
    for (size_t i = 0; i < md->n; i++)
        if (md->live[i] && (parity < 0 || (atoi(md->ids[i] + 1) & 1) == parity))
            all[m++] = score_of(metric, md->v[i], q);
    qsort(all, m, sizeof(double), cmp_desc);
    size_t want = m < k ? m : k;
    cr_assert_eq(r->n, want, "%s: %zu results, want %zu", ctx, r->n, want);
    for (size_t i = 0; i < r->n; i++) {
        cr_assert_eq((double)r->hits[i].score, all[i], "%s: rank %zu score %g want %g", ctx, i, r->hits[i].score,
                     all[i]);
        int idx = atoi(r->hits[i].id + 1);
        cr_assert(idx >= 0 && (size_t)idx < md->n && md->live[idx], "%s: hit %s is not live", ctx, r->hits[i].id);
        cr_assert_eq(score_of(metric, md->v[idx], q), (double)r->hits[i].score, "%s: score of %s", ctx,
                     r->hits[i].id);
        for (size_t j = 0; j < i; j++)
            cr_assert(strcmp(r->hits[i].id, r->hits[j].id) != 0, "%s: duplicate hit", ctx);
    }
    free(all);
}

static void fill_model(ndb_vec_store *s, const char *name, model *md, size_t n, int batch)
{
    ndb_errmsg m;
    size_t base = md->n;
    for (size_t i = base; i < base + n;) {
        ndb_vec_item items[64];
        size_t b = batch ? (base + n - i < 64 ? base + n - i : 64) : 1;
        for (size_t t = 0; t < b; t++) {
            snprintf(md->ids[i + t], 16, "d%zu", i + t);
            rand_int_vec(md->v[i + t]);
            md->live[i + t] = 1;
            items[t] = (ndb_vec_item){md->ids[i + t], md->v[i + t]};
        }
        cr_assert_eq(ndb_vec_insert_many(s, name, items, b, D, 0, &m), NDB_OK, "%s", m.text);
        i += b;
    }
    md->n = base + n;
}

static void mutate_model(ndb_vec_store *s, const char *name, model *md)
{
    ndb_errmsg m;
    for (int t = 0; t < 300; t++) {
        size_t i = rnd() % md->n;
        if (rnd() % 2) {
            if (md->live[i]) {
                cr_assert_eq(ndb_vec_delete(s, name, md->ids[i], &m), NDB_OK, "%s", m.text);
                md->live[i] = 0;
            } else {
                cr_assert_eq(ndb_vec_delete(s, name, md->ids[i], &m), NDB_ENOTFOUND);
            }
        } else {
            rand_int_vec(md->v[i]);
            cr_assert_eq(ndb_vec_upsert(s, name, md->ids[i], md->v[i], D, &m), NDB_OK, "%s", m.text);
            md->live[i] = 1;
        }
    }
}

static void check_searches(ndb_vec_store *s, const char *name, ndb_vec_metric metric, const model *md,
                           const char *phase)
{
    ndb_errmsg m;
    float qs[40 * D];
    for (int i = 0; i < 40; i++)
        rand_int_vec(qs + i * D);
    static const uint32_t ks[] = {1, 7, 50, 5000};
    for (size_t ki = 0; ki < 4; ki++) {
        ndb_vec_query q = {.k = ks[ki]};
        char ctx[96];
        for (int i = 0; i < 3; i++) {
            ndb_vec_result *r;
            cr_assert_eq(ndb_vec_search(s, name, qs + i * D, D, &q, &r, &m), NDB_OK, "%s", m.text);
            snprintf(ctx, sizeof ctx, "%s %s k=%u single q%d", phase, ndb_vec_metric_name(metric), ks[ki], i);
            check_result(md, metric, qs + i * D, r, ks[ki], -1, ctx);
            ndb_vec_results_free(r, 1);
        }
        ndb_vec_result *rb;
        cr_assert_eq(ndb_vec_search_batch(s, name, qs, 40, D, &q, &rb, &m), NDB_OK, "%s", m.text);
        for (int i = 0; i < 40; i++) {
            snprintf(ctx, sizeof ctx, "%s %s k=%u batch q%d", phase, ndb_vec_metric_name(metric), ks[ki], i);
            check_result(md, metric, qs + i * D, &rb[i], ks[ki], -1, ctx);
        }
        ndb_vec_results_free(rb, 40);
        /* filtered: odd ids only, single and batched */
        keep_ctx kc = {1, 0};
        ndb_vec_query fq = {.k = ks[ki], .filter = keep_parity, .filter_ctx = &kc};
        ndb_vec_result *rf;
        cr_assert_eq(ndb_vec_search(s, name, qs, D, &fq, &rf, &m), NDB_OK, "%s", m.text);
        snprintf(ctx, sizeof ctx, "%s %s k=%u filtered", phase, ndb_vec_metric_name(metric), ks[ki]);
        check_result(md, metric, qs, rf, ks[ki], 1, ctx);
        cr_assert(kc.calls > 0);
        ndb_vec_results_free(rf, 1);
        cr_assert_eq(ndb_vec_search_batch(s, name, qs, 40, D, &fq, &rb, &m), NDB_OK, "%s", m.text);
        for (int i = 0; i < 40; i++)
            check_result(md, metric, qs + i * D, &rb[i], ks[ki], 1, ctx);
        ndb_vec_results_free(rb, 40);
    }
}

static void search_suite(ndb_vec_metric metric)
{
    const char *dir = fresh_dir();
    no_sync = 1;
    ndb_vec_store *s = open_store(dir, 4096); /* 128 rows of 32 bytes per segment */
    ndb_errmsg m;
    cr_assert_eq(ndb_vec_create(s, "c", D, metric, &m), NDB_OK, "%s", m.text);
    static model md;
    memset(&md, 0, sizeof md);
    fill_model(s, "c", &md, 300, 1);
    fill_model(s, "c", &md, 1400, 0);
    mutate_model(s, "c", &md);
    ndb_vec_info info;
    cr_assert_eq(ndb_vec_stats(s, "c", &info, &m), NDB_OK);
    cr_assert(info.segments > 5, "only %u segments", info.segments);
    cr_assert(info.dead > 0);
    check_searches(s, "c", metric, &md, "live");
    ndb_vec_close(s);
    s = open_store(dir, 4096);
    check_searches(s, "c", metric, &md, "reopened");
    cr_assert_eq(ndb_vec_merge(s, "c", &m), NDB_OK, "%s", m.text);
    cr_assert_eq(ndb_vec_stats(s, "c", &info, &m), NDB_OK);
    cr_assert_eq(info.dead, 0);
    check_searches(s, "c", metric, &md, "merged");
    mutate_model(s, "c", &md);
    ndb_vec_close(s);
    s = open_store(dir, 4096);
    check_searches(s, "c", metric, &md, "merged+reopened");
    ndb_vec_close(s);
    rm_rf(dir);
}

/* cosine is checked separately (scores are not exact integers there) */
Test(store, search_dot_matches_model) { search_suite(NDB_VEC_DOT); }
Test(store, search_l2_matches_model) { search_suite(NDB_VEC_L2); }

Test(store, cosine_normalises_and_ranks)
{
    const char *dir = fresh_dir();
    ndb_vec_store *s = open_store(dir, 0);
    ndb_errmsg m;
    cr_assert_eq(ndb_vec_create(s, "docs", 3, NDB_VEC_COSINE, &m), NDB_OK);
    float a[3] = {3, 0, 0}, b[3] = {1, 1, 0}, c[3] = {0, 0, 5}, q[3] = {10, 1, 0};
    cr_assert_eq(ndb_vec_insert(s, "docs", "a", a, 3, &m), NDB_OK);
    cr_assert_eq(ndb_vec_insert(s, "docs", "b", b, 3, &m), NDB_OK);
    cr_assert_eq(ndb_vec_insert(s, "docs", "c", c, 3, &m), NDB_OK);
    float got[3];
    uint32_t dims;
    cr_assert_eq(ndb_vec_get(s, "docs", "a", got, 3, &dims, &m), NDB_OK);
    cr_assert_eq(dims, 3);
    cr_assert_float_eq(got[0], 1.0f, 1e-6);
    ndb_vec_query qq = {.k = 3, .with_vectors = 1};
    ndb_vec_result *r;
    cr_assert_eq(ndb_vec_search(s, "docs", q, 3, &qq, &r, &m), NDB_OK);
    cr_assert_eq(r->n, 3);
    cr_assert_str_eq(r->hits[0].id, "a");
    cr_assert_str_eq(r->hits[1].id, "b");
    cr_assert_str_eq(r->hits[2].id, "c");
    cr_assert_float_eq(r->hits[0].score, 10 / sqrt(101), 1e-6);
    cr_assert_float_eq(r->hits[1].score, 11 / sqrt(101) / sqrt(2), 1e-6);
    cr_assert_float_eq(r->hits[2].score, 0, 1e-6);
    cr_assert_float_eq(r->hits[1].vector[0], 1 / sqrt(2), 1e-6);
    ndb_vec_results_free(r, 1);
    qq.has_min_score = 1;
    qq.min_score = 0.5f;
    cr_assert_eq(ndb_vec_search(s, "docs", q, 3, &qq, &r, &m), NDB_OK);
    cr_assert_eq(r->n, 2);
    ndb_vec_results_free(r, 1);
    /* an allow-list (as an index would give): only those ids */
    const char *allow[] = {"c", "nope", "b"};
    ndb_vec_query aq = {.k = 10, .allow_ids = allow, .n_allow = 3};
    cr_assert_eq(ndb_vec_search(s, "docs", q, 3, &aq, &r, &m), NDB_OK);
    cr_assert_eq(r->n, 2);
    cr_assert_str_eq(r->hits[0].id, "b");
    cr_assert_str_eq(r->hits[1].id, "c");
    ndb_vec_results_free(r, 1);
    ndb_vec_close(s);
    rm_rf(dir);
}

Test(store, validation_errors_name_the_problem)
{
    const char *dir = fresh_dir();
    ndb_vec_store *s = open_store(dir, 0);
    ndb_errmsg m;
    cr_assert_eq(ndb_vec_create(s, "v", 4, NDB_VEC_COSINE, &m), NDB_OK);
    cr_assert_eq(ndb_vec_create(s, "v", 4, NDB_VEC_COSINE, &m), NDB_EEXIST);
    cr_assert_eq(ndb_vec_create(s, "w", 0, NDB_VEC_COSINE, &m), NDB_EINVAL);
    cr_assert_eq(ndb_vec_create(s, "w", 16385, NDB_VEC_COSINE, &m), NDB_EINVAL);
    cr_assert_eq(ndb_vec_create(s, "big", 16384, NDB_VEC_DOT, &m), NDB_OK, "%s", m.text);
    cr_assert_eq(ndb_vec_create(s, "../x", 4, NDB_VEC_COSINE, &m), NDB_EINVAL);
    cr_assert_eq(ndb_vec_create(s, ".hidden", 4, NDB_VEC_COSINE, &m), NDB_EINVAL);
    cr_assert_eq(ndb_vec_create(s, "", 4, NDB_VEC_COSINE, &m), NDB_EINVAL);
    cr_assert_eq(ndb_vec_create(s, "m", 4, (ndb_vec_metric)7, &m), NDB_EINVAL);
    float v[5] = {1, 2, 3, 4, 5};
    cr_assert_eq(ndb_vec_insert(s, "v", "x", v, 5, &m), NDB_EINVAL);
    cr_assert(strstr(m.text, "5 dimensions") && strstr(m.text, "expects 4"), "%s", m.text);
    v[2] = NAN;
    cr_assert_eq(ndb_vec_insert(s, "v", "x", v, 4, &m), NDB_EINVAL);
    cr_assert(strstr(m.text, "NaN"), "%s", m.text);
    v[2] = INFINITY;
    cr_assert_eq(ndb_vec_insert(s, "v", "x", v, 4, &m), NDB_EINVAL);
    cr_assert(strstr(m.text, "infinite"), "%s", m.text);
    float z[4] = {0, 0, 0, 0};
    cr_assert_eq(ndb_vec_insert(s, "v", "x", z, 4, &m), NDB_EINVAL);
    cr_assert(strstr(m.text, "zero vector"), "%s", m.text);
    cr_assert_eq(ndb_vec_insert(s, "nope", "x", z, 4, &m), NDB_ENOTFOUND);
    cr_assert_eq(ndb_vec_insert(s, "v", "", v, 4, &m), NDB_EINVAL);
    cr_assert_eq(ndb_vec_insert(s, "v", NULL, v, 4, &m), NDB_EINVAL);
    char longid[600];
    memset(longid, 'a', sizeof longid - 1);
    longid[599] = 0;
    float ok[4] = {1, 0, 0, 0};
    cr_assert_eq(ndb_vec_insert(s, "v", longid, ok, 4, &m), NDB_EINVAL);
    cr_assert_eq(ndb_vec_insert(s, "v", "x", ok, 4, &m), NDB_OK);
    cr_assert_eq(ndb_vec_insert(s, "v", "x", ok, 4, &m), NDB_EEXIST);
    /* insert_many is all or nothing */
    ndb_vec_item items[3] = {{"p", ok}, {"q", z}, {"r", ok}};
    cr_assert_eq(ndb_vec_insert_many(s, "v", items, 3, 4, 0, &m), NDB_EINVAL);
    cr_assert(strstr(m.text, "document q"), "%s", m.text);
    cr_assert_eq(ndb_vec_get(s, "v", "p", NULL, 0, NULL, &m), NDB_ENOTFOUND);
    ndb_vec_item dup[2] = {{"p", ok}, {"p", ok}};
    cr_assert_eq(ndb_vec_insert_many(s, "v", dup, 2, 4, 0, &m), NDB_EINVAL);
    cr_assert_eq(ndb_vec_insert_many(s, "v", dup, 2, 4, 1, &m), NDB_OK); /* upsert: the last wins */
    /* zero vectors are fine under dot */
    cr_assert_eq(ndb_vec_create(s, "d", 4, NDB_VEC_DOT, &m), NDB_OK);
    cr_assert_eq(ndb_vec_insert(s, "d", "zero", z, 4, &m), NDB_OK);
    /* search argument checks */
    ndb_vec_result *r;
    ndb_vec_query q0 = {.k = 0};
    cr_assert_eq(ndb_vec_search(s, "v", ok, 4, &q0, &r, &m), NDB_EINVAL);
    ndb_vec_query q1 = {.k = 1};
    cr_assert_eq(ndb_vec_search(s, "v", ok, 3, &q1, &r, &m), NDB_EINVAL);
    cr_assert_eq(ndb_vec_search(s, "v", z, 4, &q1, &r, &m), NDB_EINVAL);
    float small[4];
    cr_assert_eq(ndb_vec_get(s, "v", "x", small, 3, NULL, &m), NDB_EINVAL);
    /* list and stats */
    ndb_vec_info *list;
    size_t n;
    cr_assert_eq(ndb_vec_list(s, &list, &n), NDB_OK);
    cr_assert_eq(n, 3);
    cr_assert_str_eq(list[0].name, "big");
    cr_assert_str_eq(list[1].name, "d");
    cr_assert_str_eq(list[2].name, "v");
    cr_assert_eq(list[2].rows, 2);
    free(list);
    /* the directory is locked against a second opener */
    ndb_vec_store *s2;
    cr_assert_eq(ndb_vec_open(dir, NULL, &s2, &m), NDB_EBUSY);
    /* drop, recreate, reopen */
    cr_assert_eq(ndb_vec_drop(s, "v", &m), NDB_OK, "%s", m.text);
    cr_assert_eq(ndb_vec_drop(s, "v", &m), NDB_ENOTFOUND);
    cr_assert_eq(ndb_vec_get(s, "v", "x", NULL, 0, NULL, &m), NDB_ENOTFOUND);
    cr_assert_eq(ndb_vec_create(s, "v", 2, NDB_VEC_L2, &m), NDB_OK, "%s", m.text);
    ndb_vec_close(s);
    s = open_store(dir, 0);
    cr_assert_eq(ndb_vec_list(s, &list, &n), NDB_OK);
    cr_assert_eq(n, 3);
    cr_assert_str_eq(list[2].name, "v");
    cr_assert_eq(list[2].dims, 2);
    cr_assert_eq(list[2].rows, 0);
    free(list);
    ndb_vec_close(s);
    rm_rf(dir);
}

/* ---- damaged files ---------------------------------------------------------- */

static void make_sealed(const char *dir)
{
    ndb_vec_store *s = open_store(dir, 0);
    ndb_errmsg m;
    cr_assert_eq(ndb_vec_create(s, "c", 16, NDB_VEC_DOT, &m), NDB_OK);
    static float v[100][16];
    static char ids[100][16];
    ndb_vec_item items[100];
    for (int i = 0; i < 100; i++) {
        snprintf(ids[i], sizeof ids[i], "r%d", i);
        for (int j = 0; j < 16; j++)
            v[i][j] = (float)(i * 16 + j);
        items[i] = (ndb_vec_item){ids[i], v[i]};
    }
    cr_assert_eq(ndb_vec_insert_many(s, "c", items, 100, 16, 0, &m), NDB_OK, "%s", m.text);
    cr_assert_eq(ndb_vec_merge(s, "c", &m), NDB_OK, "%s", m.text); /* seals into one segment */
    ndb_vec_close(s);
}

static void segment_path(const char *dir, char *out, size_t n)
{
    snprintf(out, n, "%s/c/seg-00000001.vseg", dir);
    struct stat st;
    cr_assert_eq(stat(out, &st), 0, "no segment at %s", out);
}

static void expect_open_fails(const char *dir, const char *needle)
{
    ndb_vec_store *s = NULL;
    ndb_errmsg m = {{0}};
    ndb_status st = ndb_vec_open(dir, NULL, &s, &m);
    cr_assert_eq(st, NDB_ECORRUPT, "status %d (%s)", st, m.text);
    cr_assert(strstr(m.text, needle), "message '%s' lacks '%s'", m.text, needle);
    cr_assert_null(s);
}

static void flip_byte(const char *path, long off)
{
    FILE *f = fopen(path, "r+b");
    cr_assert(f);
    if (off < 0) {
        fseek(f, 0, SEEK_END);
        off += ftell(f);
    }
    fseek(f, off, SEEK_SET);
    int ch = fgetc(f);
    fseek(f, off, SEEK_SET);
    fputc(ch ^ 0x10, f);
    fclose(f);
}

Test(store, truncated_segment_rejected)
{
    const char *dir = fresh_dir();
    make_sealed(dir);
    char p[256];
    segment_path(dir, p, sizeof p);
    struct stat st;
    stat(p, &st);
    static const long cuts[] = {1, 100, 1000};
    for (int i = 0; i < 3; i++) {
        cr_assert_eq(truncate(p, st.st_size - cuts[i]), 0);
        expect_open_fails(dir, "seg-00000001.vseg");
    }
    cr_assert_eq(truncate(p, 10), 0);
    expect_open_fails(dir, "truncated");
    cr_assert_eq(truncate(p, 0), 0);
    expect_open_fails(dir, "truncated");
    unlink(p);
    expect_open_fails(dir, "missing");
    rm_rf(dir);
}

Test(store, bit_flips_rejected)
{
    static const long offs[] = {0, 13, 30, 61, 64, 64 + 16 * 4 * 50 + 3, -1, -200};
    static const char *needles[] = {"magic", "header checksum", "header checksum", "header checksum",
                                    "data checksum", "data checksum", "data checksum", "data checksum"};
    for (int i = 0; i < 8; i++) {
        const char *dir = fresh_dir();
        make_sealed(dir);
        char p[256];
        segment_path(dir, p, sizeof p);
        flip_byte(p, offs[i]);
        expect_open_fails(dir, needles[i]);
        flip_byte(p, offs[i]); /* restored: opens again */
        ndb_vec_store *s = open_store(dir, 0);
        ndb_vec_close(s);
        char mp[256];
        snprintf(mp, sizeof mp, "%s/c/MANIFEST", dir);
        flip_byte(mp, i == 0 ? 0 : 20 + i);
        expect_open_fails(dir, "MANIFEST");
        rm_rf(dir);
    }
}

Test(store, torn_log_tail_is_cut)
{
    const char *dir = fresh_dir();
    ndb_vec_store *s = open_store(dir, 0);
    ndb_errmsg m;
    cr_assert_eq(ndb_vec_create(s, "c", 4, NDB_VEC_DOT, &m), NDB_OK);
    float v[4] = {1, 2, 3, 4};
    cr_assert_eq(ndb_vec_insert(s, "c", "a", v, 4, &m), NDB_OK);
    cr_assert_eq(ndb_vec_insert(s, "c", "b", v, 4, &m), NDB_OK);
    ndb_vec_close(s);
    char p[256];
    snprintf(p, sizeof p, "%s/c/wal.log", dir);
    struct stat st;
    stat(p, &st);
    /* cut the last record in half, as a crash mid-write would */
    cr_assert_eq(truncate(p, st.st_size - 9), 0);
    s = open_store(dir, 0);
    cr_assert_eq(ndb_vec_get(s, "c", "a", NULL, 0, NULL, &m), NDB_OK);
    cr_assert_eq(ndb_vec_get(s, "c", "b", NULL, 0, NULL, &m), NDB_ENOTFOUND);
    cr_assert_eq(ndb_vec_insert(s, "c", "c", v, 4, &m), NDB_OK); /* appends after the cut */
    ndb_vec_close(s);
    /* garbage appended after valid records */
    FILE *f = fopen(p, "ab");
    fputs("garbage that is not a record, long enough to look like a header", f);
    fclose(f);
    s = open_store(dir, 0);
    cr_assert_eq(ndb_vec_get(s, "c", "a", NULL, 0, NULL, &m), NDB_OK);
    cr_assert_eq(ndb_vec_get(s, "c", "c", NULL, 0, NULL, &m), NDB_OK);
    ndb_vec_info info;
    ndb_vec_stats(s, "c", &info, &m);
    cr_assert_eq(info.rows, 2);
    ndb_vec_close(s);
    rm_rf(dir);
}

Test(store, failed_fsync_poisons)
{
    const char *dir = fresh_dir();
    ndb_vec_store *s = open_store(dir, 0);
    ndb_errmsg m;
    cr_assert_eq(ndb_vec_create(s, "c", 4, NDB_VEC_DOT, &m), NDB_OK);
    float v[4] = {1, 2, 3, 4};
    cr_assert_eq(ndb_vec_insert(s, "c", "a", v, 4, &m), NDB_OK);
    vio_fault_sync(1);
    cr_assert_eq(ndb_vec_insert(s, "c", "b", v, 4, &m), NDB_EIO);
    cr_assert(strstr(m.text, "fsync"), "%s", m.text);
    cr_assert_eq(ndb_vec_insert(s, "c", "c", v, 4, &m), NDB_EPOISONED);
    cr_assert_eq(ndb_vec_delete(s, "c", "a", &m), NDB_EPOISONED);
    /* reads still work */
    cr_assert_eq(ndb_vec_get(s, "c", "a", NULL, 0, NULL, &m), NDB_OK);
    ndb_vec_close(s);
    s = open_store(dir, 0); /* reopening recovers */
    cr_assert_eq(ndb_vec_get(s, "c", "a", NULL, 0, NULL, &m), NDB_OK);
    cr_assert_eq(ndb_vec_insert(s, "c", "d", v, 4, &m), NDB_OK);
    ndb_vec_close(s);
    rm_rf(dir);
}

/* ---- kill -9 ---------------------------------------------------------------- */

static void vec_for(uint64_t n, float *v, int d)
{
    for (int j = 0; j < d; j++)
        v[j] = (float)((n * 31 + (uint64_t)j * 7) % 101) - 50.0f;
    v[0] = (float)(n % 1000) + 1.0f;
}

static void crash_round(const char *dir, int round, long run_us)
{
    int fds[2];
    cr_assert_eq(pipe(fds), 0);
    pid_t pid = fork();
    cr_assert(pid >= 0);
    enum { DIMS = 24 };
    if (pid == 0) {
        close(fds[0]);
        ndb_vec_options o;
        ndb_vec_options_default(&o);
        o.threads = 1;
        o.segment_bytes = 8192; /* seals (and crashes mid-seal) happen often */
        ndb_vec_store *s;
        ndb_errmsg m;
        if (ndb_vec_open(dir, &o, &s, &m) != NDB_OK)
            _exit(2);
        if (round == 0 && ndb_vec_create(s, "c", DIMS, NDB_VEC_DOT, &m) != NDB_OK)
            _exit(3);
        for (uint64_t n = (uint64_t)round * 1000000;; n += 8) {
            char ids[8][24];
            float v[8][DIMS];
            ndb_vec_item items[8];
            for (int t = 0; t < 8; t++) {
                snprintf(ids[t], sizeof ids[t], "k%llu", (unsigned long long)(n + (uint64_t)t));
                vec_for(n + (uint64_t)t, v[t], DIMS);
                items[t] = (ndb_vec_item){ids[t], v[t]};
            }
            if (ndb_vec_insert_many(s, "c", items, 8, DIMS, 0, &m) != NDB_OK)
                _exit(4);
            if (n % 24 == 0) { /* delete one of the batch: tombstones cross the crash too */
                if (ndb_vec_delete(s, "c", ids[3], &m) != NDB_OK)
                    _exit(5);
            }
            uint64_t acked = n + 8;
            if (write(fds[1], &acked, sizeof acked) != sizeof acked)
                _exit(6);
        }
    }
    close(fds[1]);
    /* wait for the first acknowledgement (a loaded machine can be slow to
     * start), then let the child run a while longer and kill it */
    uint64_t acked = (uint64_t)round * 1000000, x;
    if (read(fds[0], &x, sizeof x) == sizeof x)
        acked = x;
    struct timespec ts = {0, run_us * 1000};
    nanosleep(&ts, NULL);
    kill(pid, SIGKILL);
    int wst;
    waitpid(pid, &wst, 0);
    cr_assert(WIFSIGNALED(wst), "child exited with %d before the kill", WEXITSTATUS(wst));
    while (read(fds[0], &x, sizeof x) == sizeof x)
        acked = x;
    close(fds[0]);
    cr_assert(acked > (uint64_t)round * 1000000, "round %d: nothing acknowledged", round);
    ndb_vec_store *s = open_store(dir, 8192);
    ndb_errmsg m;
    float got[DIMS], want[DIMS];
    for (uint64_t n = (uint64_t)round * 1000000; n < acked; n++) {
        char id[24];
        snprintf(id, sizeof id, "k%llu", (unsigned long long)n);
        ndb_status st = ndb_vec_get(s, "c", id, got, DIMS, NULL, &m);
        uint64_t base = n - n % 8;
        int deleted = base % 24 == 0 && n % 8 == 3;
        if (deleted) {
            /* the delete of the last acknowledged batch may or may not have made it */
            if (base + 8 < acked)
                cr_assert_eq(st, NDB_ENOTFOUND, "round %d: deleted %s is back", round, id);
            continue;
        }
        cr_assert_eq(st, NDB_OK, "round %d: acknowledged %s lost (acked up to %llu): %s", round, id,
                     (unsigned long long)acked, m.text);
        vec_for(n, want, DIMS);
        cr_assert(memcmp(got, want, sizeof want) == 0, "round %d: %s has the wrong vector", round, id);
    }
    /* search still works and finds an exact match */
    float q[DIMS];
    vec_for(acked - 1, q, DIMS);
    ndb_vec_query qq = {.k = 3};
    ndb_vec_result *r;
    cr_assert_eq(ndb_vec_search(s, "c", q, DIMS, &qq, &r, &m), NDB_OK, "%s", m.text);
    cr_assert(r->n == 3);
    ndb_vec_results_free(r, 1);
    ndb_vec_close(s);
}

Test(store, kill9_keeps_acknowledged_writes, .timeout = 120)
{
    const char *dir = fresh_dir();
    static const long run_us[] = {150000, 300000, 80000, 220000};
    for (int round = 0; round < 4; round++)
        crash_round(dir, round, run_us[round]);
    rm_rf(dir);
}

Test(store, updates_are_reclaimed_automatically)
{
    const char *dir = fresh_dir();
    no_sync = 1;
    ndb_vec_store *s = open_store(dir, 64 * 50); /* 50 rows of 64 bytes per segment */
    ndb_errmsg m;
    cr_assert_eq(ndb_vec_create(s, "u", 4, NDB_VEC_DOT, &m), NDB_OK);
    static char ids[100][8];
    float v[100][4];
    ndb_vec_item items[100];
    for (int round = 0; round < 40; round++) {
        for (int i = 0; i < 100; i++) {
            snprintf(ids[i], sizeof ids[i], "u%d", i);
            v[i][0] = (float)round;
            v[i][1] = (float)i;
            v[i][2] = v[i][3] = 1;
            items[i] = (ndb_vec_item){ids[i], v[i]};
        }
        cr_assert_eq(ndb_vec_insert_many(s, "u", items, 100, 4, 1, &m), NDB_OK, "%s", m.text);
    }
    ndb_vec_info info;
    cr_assert_eq(ndb_vec_stats(s, "u", &info, &m), NDB_OK);
    cr_assert_eq(info.rows, 100);
    /* 4000 rows were written; without merging 3900 would be dead */
    cr_assert(info.dead <= 300, "dead rows not reclaimed: %llu", (unsigned long long)info.dead);
    cr_assert(info.bytes < 64u * 1000, "%llu bytes on disk", (unsigned long long)info.bytes);
    float got[4];
    cr_assert_eq(ndb_vec_get(s, "u", "u7", got, 4, NULL, &m), NDB_OK);
    cr_assert(got[0] == 39.0f && got[1] == 7.0f);
    ndb_vec_close(s);
    rm_rf(dir);
}

Test(store, interrupted_create_and_drop_are_cleaned_up)
{
    const char *dir = fresh_dir();
    char p[256];
    snprintf(p, sizeof p, "%s/.creating-x", dir);
    cr_assert_eq(mkdir(p, 0755), 0);
    snprintf(p, sizeof p, "%s/.creating-x/MANIFEST", dir);
    FILE *f = fopen(p, "w");
    fputs("half-written", f);
    fclose(f);
    snprintf(p, sizeof p, "%s/.trash-y-1", dir);
    cr_assert_eq(mkdir(p, 0755), 0);
    ndb_vec_store *s = open_store(dir, 0);
    ndb_vec_info *list;
    size_t n;
    cr_assert_eq(ndb_vec_list(s, &list, &n), NDB_OK);
    cr_assert_eq(n, 0);
    free(list);
    struct stat st;
    snprintf(p, sizeof p, "%s/.creating-x", dir);
    cr_assert_neq(stat(p, &st), 0, "staging directory left behind");
    snprintf(p, sizeof p, "%s/.trash-y-1", dir);
    cr_assert_neq(stat(p, &st), 0, "trash directory left behind");
    ndb_errmsg m;
    cr_assert_eq(ndb_vec_create(s, "x", 3, NDB_VEC_COSINE, &m), NDB_OK, "%s", m.text);
    ndb_vec_close(s);
    rm_rf(dir);
}

/* Random single-byte damage anywhere in any file: opening must either
 * succeed (damage in a part the format tolerates, e.g. the log's torn tail)
 * or fail with NDB_ECORRUPT; never crash. After a successful open, searches
 * and gets must work. Run under ASan this also checks every bound. */
Test(store, random_damage_never_crashes, .timeout = 120)
{
    const char *dir = fresh_dir();
    {
        ndb_vec_store *s = open_store(dir, 64 * 40);
        ndb_errmsg m;
        cr_assert_eq(ndb_vec_create(s, "c", 5, NDB_VEC_COSINE, &m), NDB_OK);
        static char ids[200][12];
        float v[200][5];
        ndb_vec_item items[200];
        for (int i = 0; i < 200; i++) {
            snprintf(ids[i], sizeof ids[i], "id%d", i);
            for (int j = 0; j < 5; j++)
                v[i][j] = (float)((i * 7 + j * 3) % 11) - 5.0f;
            v[i][4] = 9.0f;
            items[i] = (ndb_vec_item){ids[i], v[i]};
        }
        cr_assert_eq(ndb_vec_insert_many(s, "c", items, 150, 5, 0, &m), NDB_OK, "%s", m.text);
        for (int i = 0; i < 20; i++)
            cr_assert_eq(ndb_vec_delete(s, "c", ids[i * 3], &m), NDB_OK);
        cr_assert_eq(ndb_vec_insert_many(s, "c", items + 150, 10, 5, 0, &m), NDB_OK, "%s", m.text); /* stays in the log */
        ndb_vec_close(s);
    }
    char pristine[128], cmd[512];
    snprintf(pristine, sizeof pristine, "%s-pristine", dir);
    snprintf(cmd, sizeof cmd, "cp -a '%s' '%s'", dir, pristine);
    cr_assert_eq(system(cmd), 0);
    /* the files to damage */
    char files[64][512];
    int nf = 0;
    char cdir[200];
    snprintf(cdir, sizeof cdir, "%s/c", dir);
    DIR *d = opendir(cdir);
    cr_assert(d);
    struct dirent *e;
    while ((e = readdir(d)) && nf < 64)
        if (e->d_name[0] != '.')
            snprintf(files[nf++], sizeof files[0], "%s/%s", cdir, e->d_name);
    closedir(d);
    cr_assert(nf >= 3, "expected segments, manifest and log, got %d files", nf);
    int ok = 0, corrupt = 0;
    for (int it = 0; it < 150; it++) {
        snprintf(cmd, sizeof cmd, "rm -rf '%s' && cp -a '%s' '%s'", dir, pristine, dir);
        cr_assert_eq(system(cmd), 0);
        const char *f = files[rnd() % (uint64_t)nf];
        struct stat st;
        if (stat(f, &st) != 0 || st.st_size == 0)
            continue;
        long off = (long)(rnd() % (uint64_t)st.st_size);
        if (rnd() % 4 == 0)
            cr_assert_eq(truncate(f, off), 0);
        else
            flip_byte(f, off);
        ndb_vec_store *s = NULL;
        ndb_errmsg m = {{0}};
        ndb_status rc = ndb_vec_open(dir, NULL, &s, &m);
        cr_assert(rc == NDB_OK || rc == NDB_ECORRUPT, "damage at %s+%ld: status %d (%s)", f, off, rc, m.text);
        if (rc != NDB_OK) {
            corrupt++;
            continue;
        }
        ok++;
        float q[5] = {1, 2, 3, 4, 5};
        ndb_vec_query qq = {.k = 300, .with_vectors = 1};
        ndb_vec_result *r;
        cr_assert_eq(ndb_vec_search(s, "c", q, 5, &qq, &r, &m), NDB_OK, "%s", m.text);
        for (size_t i = 0; i < r->n; i++)
            cr_assert(isfinite(r->hits[i].score));
        ndb_vec_results_free(r, 1);
        float got[5];
        (void)ndb_vec_get(s, "c", "id159", got, 5, NULL, &m);
        ndb_vec_close(s);
    }
    cr_log_info("random damage: %d opened, %d rejected", ok, corrupt);
    cr_assert(corrupt > 0);
    rm_rf(dir);
    rm_rf(pristine);
}

Test(store, deletes_alone_checkpoint_the_log_and_reclaim_space)
{
    const char *dir = fresh_dir();
    no_sync = 1;
    ndb_vec_store *s = open_store(dir, 64 * 64); /* 64 rows of 64 bytes per segment */
    ndb_errmsg m;
    cr_assert_eq(ndb_vec_create(s, "x", 4, NDB_VEC_DOT, &m), NDB_OK);
    static char ids[1000][8];
    float v[1000][4];
    ndb_vec_item items[1000];
    for (int i = 0; i < 1000; i++) {
        snprintf(ids[i], sizeof ids[i], "x%d", i);
        v[i][0] = (float)i;
        v[i][1] = v[i][2] = v[i][3] = 1;
        items[i] = (ndb_vec_item){ids[i], v[i]};
    }
    cr_assert_eq(ndb_vec_insert_many(s, "x", items, 1000, 4, 0, &m), NDB_OK, "%s", m.text);
    for (int i = 0; i < 900; i++)
        cr_assert_eq(ndb_vec_delete(s, "x", ids[i], &m), NDB_OK, "%s", m.text);
    ndb_vec_info info;
    cr_assert_eq(ndb_vec_stats(s, "x", &info, &m), NDB_OK);
    cr_assert_eq(info.rows, 100);
    cr_assert(info.dead < 450, "dead rows not reclaimed: %llu", (unsigned long long)info.dead);
    ndb_vec_close(s);
    s = open_store(dir, 64 * 64);
    cr_assert_eq(ndb_vec_stats(s, "x", &info, &m), NDB_OK);
    cr_assert_eq(info.rows, 100);
    cr_assert_eq(ndb_vec_get(s, "x", "x899", NULL, 0, NULL, &m), NDB_ENOTFOUND);
    cr_assert_eq(ndb_vec_get(s, "x", "x900", NULL, 0, NULL, &m), NDB_OK);
    ndb_vec_close(s);
    rm_rf(dir);
}
