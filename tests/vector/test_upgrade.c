/*
 * test_upgrade.c — a data directory written by the previous release (the v1
 * vector store beside the kv; fixtures/README.md says how it was made) is
 * converted by ndb_vec_upgrade_v1: every live vector with its document lands
 * in a vector collection, the documents leave the document collection of the
 * same name (documents without a vector stay), other collections are
 * untouched, and a conversion stopped after any of its durable writes is
 * finished by the next run with the same result.
 */
#include <math.h>
#include <sys/stat.h>

#include "vtest.h"

#ifndef FIXTURE_DIR
#error "FIXTURE_DIR names tests/vector/fixtures"
#endif

/* The fixture's vectors (fixtures/README.md). */
static void pvec(int i, float *v)
{
    for (int j = 0; j < 4; j++)
        v[j] = (float)(((i + 1) * (j + 1)) % 7 + 1);
}
static void evec(int i, float *v)
{
    for (int j = 0; j < 8; j++)
        v[j] = (float)((i * 3 + j * 5) % 11) - 5.0f;
}

static void copy_fixture(tv *t)
{
    char cmd[512];
    snprintf(cmd, sizeof cmd, "cp -r '%s/v1-datadir/kv' '%s/v1-datadir/vectors' '%s/'", FIXTURE_DIR, FIXTURE_DIR,
             t->dir);
    cr_assert_eq(system(cmd), 0);
}

static void upgrade(tv *t)
{
    char v1[128];
    snprintf(v1, sizeof v1, "%s/vectors", t->dir);
    ndb_errmsg m = {{0}};
    cr_assert_eq(ndb_vec_upgrade_v1(t->vec, t->doc, v1, &m), NDB_OK, "%s", m.text);
}

static char *doc_json(const void *d, size_t l)
{
    char *j;
    size_t jl;
    cr_assert_eq(ndb_doc_to_json(d, l, &j, &jl), NDB_OK);
    return j;
}

static void expect_converted(tv *t)
{
    ndb_errmsg m;
    ndb_vec_info info;
    cr_assert_eq(ndb_vec_stats(t->vec, "products", &info, &m), NDB_OK, "%s", m.text);
    cr_assert_eq(info.dims, 4);
    cr_assert_eq(info.metric, NDB_VEC_COSINE);
    cr_assert_eq(info.rows, 29);
    for (int i = 0; i < 30; i++) {
        char id[8];
        snprintf(id, sizeof id, "p%02d", i);
        void *d;
        size_t dl;
        float got[4], want[4];
        ndb_status st = tv_get(t, "products", id, &d, &dl, got, 4, &m);
        if (i == 5) {
            cr_assert_eq(st, NDB_ENOTFOUND, "the deleted p05 came back");
            continue;
        }
        cr_assert_eq(st, NDB_OK, "%s: %s", id, m.text);
        char *j = doc_json(d, dl);
        char name[40];
        snprintf(name, sizeof name, i == 7 ? "\"product 7, updated\"" : "\"product %d\"", i);
        cr_assert(strstr(j, name) && strstr(j, "\"price\""), "%s: %s", id, j);
        free(j);
        free(d);
        if (i == 7) {
            want[0] = 9, want[1] = 0, want[2] = 0, want[3] = 1;
        } else {
            pvec(i, want);
        }
        double n = 0;
        for (int x = 0; x < 4; x++)
            n += (double)want[x] * want[x];
        for (int x = 0; x < 4; x++)
            cr_assert_float_eq(got[x], want[x] / sqrt(n), 1e-6, "%s component %d", id, x);
    }
    cr_assert_eq(ndb_vec_stats(t->vec, "emb", &info, &m), NDB_OK, "%s", m.text);
    cr_assert_eq(info.rows, 90);
    cr_assert_eq(info.metric, NDB_VEC_L2);
    for (int i = 0; i < 100; i++) {
        char id[8];
        snprintf(id, sizeof id, "e%03d", i);
        float got[8], want[8];
        ndb_status st = tv_get(t, "emb", id, NULL, NULL, got, 8, &m);
        if (i >= 10 && i < 20) {
            cr_assert_eq(st, NDB_ENOTFOUND, "deleted %s came back", id);
            continue;
        }
        cr_assert_eq(st, NDB_OK, "%s: %s", id, m.text);
        if (i == 42)
            for (int x = 0; x < 8; x++)
                want[x] = 1;
        else
            evec(i, want);
        cr_assert_eq(memcmp(got, want, sizeof got), 0, "%s", id);
    }
    /* the document collection keeps the document without a vector; others are untouched */
    uint64_t cnt;
    cr_assert_eq(ndb_doc_count(t->doc, "products", NULL, 0, NULL, &cnt, &m), NDB_OK);
    cr_assert_eq(cnt, 1);
    void *d;
    size_t dl;
    cr_assert_eq(ndb_doc_get(t->doc, "products", "only-doc", 8, &d, &dl, &m), NDB_OK);
    free(d);
    cr_assert_eq(ndb_doc_get(t->doc, "users", "u1", 2, &d, &dl, &m), NDB_OK);
    free(d);
    ndb_doc_coll_info *list;
    size_t n;
    cr_assert_eq(ndb_doc_list_collections(t->doc, &list, &n, &m), NDB_OK);
    cr_assert_eq(n, 2, "emb's document collection held nothing else and is gone");
    free(list);
    /* search works over the converted rows */
    float q[4] = {9, 0, 0, 1};
    ndb_vec_query qq = {.k = 3, .with_documents = 1};
    ndb_vec_result *r;
    cr_assert_eq(ndb_vec_search(t->vec, "products", q, 4, &qq, &r, &m), NDB_OK);
    cr_assert_eq(r->n, 3);
    cr_assert_str_eq(r->hits[0].id, "p07");
    ndb_vec_results_free(r, 1);
    struct stat st;
    char p[128];
    snprintf(p, sizeof p, "%s/vectors", t->dir);
    cr_assert_neq(stat(p, &st), 0, "the v1 directory is renamed once converted");
    snprintf(p, sizeof p, "%s/vectors.converted/products/MANIFEST", t->dir);
    cr_assert_eq(stat(p, &st), 0, "the v1 files are kept for the user to delete");
}

Test(upgrade, v1_data_directory_is_converted)
{
    tv t;
    tv_init(&t, 0);
    copy_fixture(&t);
    tv_open(&t);
    upgrade(&t);
    expect_converted(&t);
    upgrade(&t); /* nothing left to do */
    tv_close(&t);
    tv_open(&t);
    expect_converted(&t);
    tv_close(&t);
    tv_rm(&t);
}

/* A conversion stopped after each of its durable writes in turn (the n-th
 * fsync fails: the kv refuses every later write, as if the process had died
 * there), then run again to the end: the result is always the same. */
Test(upgrade, interrupted_conversion_is_finished_by_the_next_start, .timeout = 300)
{
    int stopped = 0;
    for (uint64_t n = 1;; n++) {
        tv t;
        tv_init(&t, 0);
        t.durability = NDB_KV_SYNC;
        copy_fixture(&t);
        t.fault = kv_env_fault_new(kv_env_posix());
        tv_open(&t);
        kv_env_fault_fail_sync_after(t.fault, n);
        char v1[128];
        snprintf(v1, sizeof v1, "%s/vectors", t.dir);
        ndb_errmsg m = {{0}};
        ndb_status st = ndb_vec_upgrade_v1(t.vec, t.doc, v1, &m);
        tv_reopen_clean(&t);
        if (st != NDB_OK) {
            stopped++;
            upgrade(&t);
        }
        expect_converted(&t);
        tv_close(&t);
        tv_rm(&t);
        if (st == NDB_OK)
            break; /* the n-th fsync came after the conversion: every point was tried */
    }
    cr_assert(stopped >= 5, "the conversion was stopped at only %d points", stopped);
    cr_log_info("conversion stopped at %d points and finished each time", stopped);
}
