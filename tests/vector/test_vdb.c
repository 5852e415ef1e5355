/*
 * test_vdb.c — vector collections through the public API (vector/ndb_vec.h)
 * over a real kv and document layer: writes and validation, exact search
 * against a brute-force model across segments, memory rows and dead rows,
 * filters in the Find language, reopen and merge, documents with their
 * vectors, the separate namespace, cursors and an export/import round trip.
 */
#include <math.h>

#include "vtest.h"

/* ---- a model of the live rows --------------------------------------------- */

#define D 8
#define MAXN 4096
typedef struct model {
    size_t n;
    char ids[MAXN][16];
    float v[MAXN][D];
    int live[MAXN];
    int tag[MAXN]; /* the document's "p" field */
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

/* Checks one result against the model: exact scores (integer data), every
 * hit live, distinct, of tag `tag` when tag >= 0, and carrying its document. */
static void check_result(const model *md, ndb_vec_metric metric, const float *q, const ndb_vec_result *r, uint32_t k,
                         int tag, const char *ctx)
{
    double *all = malloc((md->n + 1) * sizeof(double));
    size_t m = 0;
    for (size_t i = 0; i < md->n; i++)
        if (md->live[i] && (tag < 0 || md->tag[i] == tag))
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
        cr_assert_eq(tv_field_int(r->hits[i].doc, r->hits[i].doc_len, "p"), md->tag[idx], "%s: %s has another "
                     "version's document", ctx, r->hits[i].id);
        for (size_t j = 0; j < i; j++)
            cr_assert(strcmp(r->hits[i].id, r->hits[j].id) != 0, "%s: duplicate hit", ctx);
    }
    free(all);
}

static void *model_doc(const model *md, size_t i, size_t *len)
{
    char json[64];
    snprintf(json, sizeof json, "{\"_id\":\"%s\",\"p\":%d}", md->ids[i], md->tag[i]);
    return tv_doc(json, len);
}

static void fill_model(tv *t, const char *name, model *md, size_t n, size_t batch)
{
    ndb_errmsg m;
    size_t base = md->n;
    for (size_t i = base; i < base + n;) {
        ndb_vec_item items[64];
        void *docs[64];
        size_t b = base + n - i < batch ? base + n - i : batch;
        for (size_t x = 0; x < b; x++) {
            snprintf(md->ids[i + x], 16, "d%zu", i + x);
            rand_int_vec(md->v[i + x]);
            md->live[i + x] = 1;
            md->tag[i + x] = (int)(rnd() % 3);
            docs[x] = model_doc(md, i + x, &items[x].doc_len);
            items[x].doc = docs[x];
            items[x].vector = md->v[i + x];
        }
        char **ids;
        cr_assert_eq(ndb_vec_insert(t->vec, name, items, b, D, &ids, &m), NDB_OK, "%s", m.text);
        for (size_t x = 0; x < b; x++) {
            cr_assert_str_eq(ids[x], md->ids[i + x]);
            free(docs[x]);
        }
        ndb_doc_ids_free(ids, b);
        i += b;
    }
    md->n = base + n;
}

static void mutate_model(tv *t, const char *name, model *md)
{
    ndb_errmsg m;
    for (int x = 0; x < 300; x++) {
        size_t i = rnd() % md->n;
        if (rnd() % 2) {
            if (md->live[i]) {
                cr_assert_eq(ndb_vec_delete(t->vec, name, md->ids[i], &m), NDB_OK, "%s", m.text);
                md->live[i] = 0;
            } else {
                cr_assert_eq(ndb_vec_delete(t->vec, name, md->ids[i], &m), NDB_ENOTFOUND);
            }
        } else {
            rand_int_vec(md->v[i]);
            md->tag[i] = (int)(rnd() % 3);
            size_t l;
            void *d = model_doc(md, i, &l);
            ndb_vec_item it = {d, l, md->v[i]};
            int inserted = -1;
            cr_assert_eq(ndb_vec_upsert(t->vec, name, md->ids[i], &it, D, &inserted, &m), NDB_OK, "%s", m.text);
            cr_assert_eq(inserted, !md->live[i]);
            md->live[i] = 1;
            free(d);
        }
    }
}

static void check_searches(tv *t, const char *name, ndb_vec_metric metric, const model *md, const char *phase)
{
    ndb_errmsg m;
    float qs[40 * D];
    for (int i = 0; i < 40; i++)
        rand_int_vec(qs + i * D);
    size_t fl;
    void *flt = tv_doc("{\"p\":1}", &fl);
    static const uint32_t ks[] = {1, 7, 50, 5000};
    for (size_t ki = 0; ki < 4; ki++) {
        char ctx[96];
        for (int filtered = 0; filtered < 2; filtered++) {
            ndb_vec_query q = {.k = ks[ki], .with_documents = 1};
            if (filtered) {
                q.filter = flt;
                q.filter_len = fl;
            }
            for (int i = 0; i < 3; i++) {
                ndb_vec_result *r;
                cr_assert_eq(ndb_vec_search(t->vec, name, qs + i * D, D, &q, &r, &m), NDB_OK, "%s", m.text);
                snprintf(ctx, sizeof ctx, "%s %s k=%u single q%d%s", phase, ndb_vec_metric_name(metric), ks[ki], i,
                         filtered ? " filtered" : "");
                check_result(md, metric, qs + i * D, r, ks[ki], filtered ? 1 : -1, ctx);
                ndb_vec_results_free(r, 1);
            }
            ndb_vec_result *rb;
            cr_assert_eq(ndb_vec_search_batch(t->vec, name, qs, 40, D, &q, &rb, &m), NDB_OK, "%s", m.text);
            for (int i = 0; i < 40; i++) {
                snprintf(ctx, sizeof ctx, "%s %s k=%u batch q%d%s", phase, ndb_vec_metric_name(metric), ks[ki], i,
                         filtered ? " filtered" : "");
                check_result(md, metric, qs + i * D, &rb[i], ks[ki], filtered ? 1 : -1, ctx);
            }
            ndb_vec_results_free(rb, 40);
        }
    }
    free(flt);
}

static void search_suite(ndb_vec_metric metric)
{
    tv t;
    tv_init(&t, 4096); /* 128 rows of 32 bytes per segment */
    tv_open(&t);
    ndb_errmsg m;
    cr_assert_eq(ndb_vec_create(t.vec, "c", D, metric, NULL, &m), NDB_OK, "%s", m.text);
    static model md;
    memset(&md, 0, sizeof md);
    fill_model(&t, "c", &md, 300, 1);
    fill_model(&t, "c", &md, 1400, 64);
    mutate_model(&t, "c", &md);
    ndb_vec_info info;
    cr_assert_eq(ndb_vec_stats(t.vec, "c", &info, &m), NDB_OK);
    cr_assert(info.segments > 5, "only %u segments", info.segments);
    cr_assert(info.dead > 0);
    check_searches(&t, "c", metric, &md, "live");
    tv_close(&t);
    tv_open(&t);
    check_searches(&t, "c", metric, &md, "reopened");
    cr_assert_eq(ndb_vec_merge(t.vec, "c", &m), NDB_OK, "%s", m.text);
    cr_assert_eq(ndb_vec_stats(t.vec, "c", &info, &m), NDB_OK);
    cr_assert_eq(info.dead, 0);
    check_searches(&t, "c", metric, &md, "merged");
    mutate_model(&t, "c", &md);
    tv_close(&t);
    tv_open(&t);
    check_searches(&t, "c", metric, &md, "merged+reopened");
    tv_close(&t);
    tv_rm(&t);
}

/* cosine is checked separately (scores are not exact integers there) */
Test(vdb, search_dot_matches_model, .timeout = 120) { search_suite(NDB_VEC_DOT); }
Test(vdb, search_l2_matches_model, .timeout = 120) { search_suite(NDB_VEC_L2); }

Test(vdb, cosine_normalises_and_ranks)
{
    tv t;
    tv_init(&t, 0);
    tv_open(&t);
    ndb_errmsg m;
    cr_assert_eq(ndb_vec_create(t.vec, "docs", 3, NDB_VEC_COSINE, NULL, &m), NDB_OK);
    float a[3] = {3, 0, 0}, b[3] = {1, 1, 0}, c[3] = {0, 0, 5}, q[3] = {10, 1, 0};
    cr_assert_eq(tv_insert(&t, "docs", "{\"_id\":\"a\",\"name\":\"A\"}", a, 3, &m), NDB_OK, "%s", m.text);
    cr_assert_eq(tv_insert(&t, "docs", "{\"_id\":\"b\"}", b, 3, &m), NDB_OK);
    cr_assert_eq(tv_insert(&t, "docs", "{\"_id\":\"c\"}", c, 3, &m), NDB_OK);
    float got[3];
    void *doc;
    size_t dl;
    cr_assert_eq(tv_get(&t, "docs", "a", &doc, &dl, got, 3, &m), NDB_OK, "%s", m.text);
    cr_assert_float_eq(got[0], 1.0f, 1e-6);
    char *json;
    size_t jl;
    cr_assert_eq(ndb_doc_to_json(doc, dl, &json, &jl), NDB_OK);
    cr_assert(strstr(json, "\"name\":\"A\"") && strstr(json, "\"_created_at\""), "%s", json);
    free(json);
    free(doc);
    ndb_vec_query qq = {.k = 3, .with_vectors = 1};
    ndb_vec_result *r;
    cr_assert_eq(ndb_vec_search(t.vec, "docs", q, 3, &qq, &r, &m), NDB_OK);
    cr_assert_eq(r->n, 3);
    cr_assert_str_eq(r->hits[0].id, "a");
    cr_assert_str_eq(r->hits[1].id, "b");
    cr_assert_str_eq(r->hits[2].id, "c");
    cr_assert_null(r->hits[0].doc, "documents only when asked for");
    cr_assert_float_eq(r->hits[0].score, 10 / sqrt(101), 1e-6);
    cr_assert_float_eq(r->hits[1].score, 11 / sqrt(101) / sqrt(2), 1e-6);
    cr_assert_float_eq(r->hits[2].score, 0, 1e-6);
    cr_assert_float_eq(r->hits[1].vector[0], 1 / sqrt(2), 1e-6);
    ndb_vec_results_free(r, 1);
    qq.has_min_score = 1;
    qq.min_score = 0.5f;
    cr_assert_eq(ndb_vec_search(t.vec, "docs", q, 3, &qq, &r, &m), NDB_OK);
    cr_assert_eq(r->n, 2);
    ndb_vec_results_free(r, 1);
    /* a unit vector is stored exactly as given: what get returns goes back in unchanged */
    float unit[3];
    cr_assert_eq(tv_get(&t, "docs", "b", NULL, NULL, unit, 3, &m), NDB_OK);
    cr_assert_eq(tv_insert(&t, "docs", "{\"_id\":\"b2\"}", unit, 3, &m), NDB_OK);
    cr_assert_eq(tv_get(&t, "docs", "b2", NULL, NULL, got, 3, &m), NDB_OK);
    cr_assert_eq(memcmp(got, unit, sizeof got), 0);
    tv_close(&t);
    tv_rm(&t);
}

Test(vdb, validation_errors_name_the_problem)
{
    tv t;
    tv_init(&t, 0);
    tv_open(&t);
    ndb_errmsg m;
    cr_assert_eq(ndb_vec_create(t.vec, "v", 4, NDB_VEC_COSINE, NULL, &m), NDB_OK);
    cr_assert_eq(ndb_vec_create(t.vec, "v", 4, NDB_VEC_COSINE, NULL, &m), NDB_EEXIST);
    cr_assert(strstr(m.text, "already exists"), "%s", m.text);
    cr_assert_eq(ndb_vec_create(t.vec, "w", 0, NDB_VEC_COSINE, NULL, &m), NDB_EINVAL);
    cr_assert_eq(ndb_vec_create(t.vec, "w", 16385, NDB_VEC_COSINE, NULL, &m), NDB_EINVAL);
    cr_assert_eq(ndb_vec_create(t.vec, "big", 16384, NDB_VEC_DOT, NULL, &m), NDB_OK, "%s", m.text);
    cr_assert_eq(ndb_vec_create(t.vec, "../x", 4, NDB_VEC_COSINE, NULL, &m), NDB_EINVAL);
    cr_assert_eq(ndb_vec_create(t.vec, ".hidden", 4, NDB_VEC_COSINE, NULL, &m), NDB_EINVAL);
    cr_assert_eq(ndb_vec_create(t.vec, "", 4, NDB_VEC_COSINE, NULL, &m), NDB_EINVAL);
    cr_assert_eq(ndb_vec_create(t.vec, "m", 4, (ndb_vec_metric)7, NULL, &m), NDB_EINVAL);
    float v[5] = {1, 2, 3, 4, 5};
    cr_assert_eq(tv_insert(&t, "v", "{}", v, 5, &m), NDB_EINVAL);
    cr_assert(strstr(m.text, "5 dimensions") && strstr(m.text, "has 4"), "%s", m.text);
    v[2] = NAN;
    cr_assert_eq(tv_insert(&t, "v", "{}", v, 4, &m), NDB_EINVAL);
    cr_assert(strstr(m.text, "NaN"), "%s", m.text);
    v[2] = INFINITY;
    cr_assert_eq(tv_insert(&t, "v", "{}", v, 4, &m), NDB_EINVAL);
    cr_assert(strstr(m.text, "infinite"), "%s", m.text);
    float z[4] = {0, 0, 0, 0}, ok[4] = {1, 0, 0, 0};
    cr_assert_eq(tv_insert(&t, "v", "{}", z, 4, &m), NDB_EINVAL);
    cr_assert(strstr(m.text, "zero vector"), "%s", m.text);
    cr_assert_eq(tv_insert(&t, "nope", "{}", ok, 4, &m), NDB_ENOTFOUND);
    cr_assert_eq(tv_insert(&t, "v", "{\"_id\":\"\"}", ok, 4, &m), NDB_EINVAL);
    cr_assert_eq(tv_insert(&t, "v", "{\"_id\":\"x\"}", ok, 4, &m), NDB_OK);
    cr_assert_eq(tv_insert(&t, "v", "{\"_id\":\"x\"}", ok, 4, &m), NDB_EEXIST);
    ndb_vec_item none = {NULL, 0, ok};
    char **ids;
    cr_assert_eq(ndb_vec_insert(t.vec, "v", &none, 1, 4, &ids, &m), NDB_OK, "%s", m.text);
    cr_assert_eq(strlen(ids[0]), 24, "a generated id");
    ndb_doc_ids_free(ids, 1);
    /* a batch is all or nothing: a bad vector, or a duplicate id */
    size_t l1, l2, l3;
    void *p = tv_doc("{\"_id\":\"p\"}", &l1), *q = tv_doc("{\"_id\":\"q\"}", &l2), *dupx = tv_doc("{\"_id\":\"x\"}", &l3);
    ndb_vec_item items[3] = {{p, l1, ok}, {q, l2, z}, {p, l1, ok}};
    cr_assert_eq(ndb_vec_insert(t.vec, "v", items, 3, 4, NULL, &m), NDB_EINVAL);
    cr_assert(strstr(m.text, "documents[1].vector"), "%s", m.text);
    cr_assert_eq(tv_get(&t, "v", "p", NULL, NULL, NULL, 0, &m), NDB_ENOTFOUND);
    items[1] = (ndb_vec_item){dupx, l3, ok};
    cr_assert_eq(ndb_vec_insert(t.vec, "v", items, 2, 4, NULL, &m), NDB_EEXIST);
    cr_assert_eq(ndb_vec_insert(t.vec, "v", (ndb_vec_item[]){{p, l1, ok}, {p, l1, ok}}, 2, 4, NULL, &m), NDB_EEXIST);
    cr_assert_eq(tv_get(&t, "v", "p", NULL, NULL, NULL, 0, &m), NDB_ENOTFOUND);
    ndb_vec_info info;
    cr_assert_eq(ndb_vec_stats(t.vec, "v", &info, &m), NDB_OK);
    cr_assert_eq(info.rows, 2);
    /* upsert: an id in the document must match */
    ndb_vec_item upd = {dupx, l3, ok};
    cr_assert_eq(ndb_vec_upsert(t.vec, "v", "y", &upd, 4, NULL, &m), NDB_EINVAL);
    cr_assert_eq(ndb_vec_upsert(t.vec, "v", "", &upd, 4, NULL, &m), NDB_EINVAL);
    cr_assert_eq(ndb_vec_delete(t.vec, "v", "nope", &m), NDB_ENOTFOUND);
    /* zero vectors are fine under dot */
    cr_assert_eq(ndb_vec_create(t.vec, "d", 4, NDB_VEC_DOT, NULL, &m), NDB_OK);
    cr_assert_eq(tv_insert(&t, "d", "{}", z, 4, &m), NDB_OK);
    /* search argument checks */
    ndb_vec_result *r;
    ndb_vec_query q0 = {.k = 0}, q1 = {.k = 1};
    cr_assert_eq(ndb_vec_search(t.vec, "v", ok, 4, &q0, &r, &m), NDB_EINVAL);
    cr_assert_eq(ndb_vec_search(t.vec, "v", ok, 3, &q1, &r, &m), NDB_EINVAL);
    cr_assert_eq(ndb_vec_search(t.vec, "v", z, 4, &q1, &r, &m), NDB_EINVAL);
    size_t bl;
    void *badf = tv_doc("{\"$bogus\":1}", &bl);
    ndb_vec_query qf = {.k = 1, .filter = badf, .filter_len = bl};
    cr_assert_eq(ndb_vec_search(t.vec, "v", ok, 4, &qf, &r, &m), NDB_EINVAL);
    cr_assert(strstr(m.text, "$bogus"), "%s", m.text);
    /* list */
    ndb_vec_info *list;
    size_t n;
    cr_assert_eq(ndb_vec_list(t.vec, &list, &n), NDB_OK);
    cr_assert_eq(n, 3);
    cr_assert_str_eq(list[0].name, "big");
    cr_assert_str_eq(list[1].name, "d");
    cr_assert_str_eq(list[2].name, "v");
    cr_assert_eq(list[2].rows, 2);
    free(list);
    /* drop, recreate, reopen */
    cr_assert_eq(ndb_vec_drop(t.vec, "v", &m), NDB_OK, "%s", m.text);
    cr_assert_eq(ndb_vec_drop(t.vec, "v", &m), NDB_ENOTFOUND);
    cr_assert_eq(tv_get(&t, "v", "x", NULL, NULL, NULL, 0, &m), NDB_ENOTFOUND);
    cr_assert_eq(ndb_vec_create(t.vec, "v", 2, NDB_VEC_L2, NULL, &m), NDB_OK, "%s", m.text);
    tv_close(&t);
    tv_open(&t);
    cr_assert_eq(ndb_vec_list(t.vec, &list, &n), NDB_OK);
    cr_assert_eq(n, 3);
    cr_assert_str_eq(list[2].name, "v");
    cr_assert_eq(list[2].dims, 2);
    cr_assert_eq(list[2].rows, 0);
    free(list);
    free(p);
    free(q);
    free(dupx);
    free(badf);
    tv_close(&t);
    tv_rm(&t);
}

/* The brief's Example 1 (documents in `products`) and Example 2 (a vector
 * collection `products`) in one database: separate collections; dropping
 * either leaves the other intact. */
Test(vdb, documents_and_vectors_are_separate_namespaces)
{
    tv t;
    tv_init(&t, 0);
    tv_open(&t);
    ndb_errmsg m;
    size_t l;
    void *d = tv_doc("{\"name\":\"Laptop\",\"price\":999}", &l);
    const void *docs[1] = {d};
    cr_assert_eq(ndb_doc_insert(t.doc, "products", docs, &l, 1, NULL, NULL, &m), NDB_OK, "%s", m.text);
    free(d);
    cr_assert_eq(ndb_vec_create(t.vec, "products", 4, NDB_VEC_COSINE, NULL, &m), NDB_OK, "%s", m.text);
    float v[4] = {0.1f, 0.2f, 0.3f, 0.4f};
    cr_assert_eq(tv_insert(&t, "products", "{\"name\":\"Wireless Mouse\"}", v, 4, &m), NDB_OK);
    cr_assert_eq(tv_insert(&t, "products", "{\"name\":\"Keyboard\"}", v, 4, &m), NDB_OK);
    uint64_t cnt;
    cr_assert_eq(ndb_doc_count(t.doc, "products", NULL, 0, NULL, &cnt, &m), NDB_OK);
    cr_assert_eq(cnt, 1, "the vector collection's documents are not in the document collection");
    ndb_doc_coll_info *dl;
    size_t nd;
    cr_assert_eq(ndb_doc_list_collections(t.doc, &dl, &nd, &m), NDB_OK);
    cr_assert_eq(nd, 1);
    free(dl);
    cr_assert_eq(ndb_vec_drop(t.vec, "products", &m), NDB_OK);
    cr_assert_eq(ndb_doc_count(t.doc, "products", NULL, 0, NULL, &cnt, &m), NDB_OK);
    cr_assert_eq(cnt, 1, "dropping the vector collection left the documents alone");
    cr_assert_eq(ndb_vec_create(t.vec, "products", 4, NDB_VEC_COSINE, NULL, &m), NDB_OK);
    cr_assert_eq(tv_insert(&t, "products", "{\"name\":\"Mouse\"}", v, 4, &m), NDB_OK);
    cr_assert_eq(ndb_doc_drop_collection(t.doc, "products", &m), NDB_OK);
    ndb_vec_info info;
    cr_assert_eq(ndb_vec_stats(t.vec, "products", &info, &m), NDB_OK);
    cr_assert_eq(info.rows, 1, "dropping the document collection left the vectors alone");
    ndb_vec_query q = {.k = 5, .with_documents = 1};
    ndb_vec_result *r;
    cr_assert_eq(ndb_vec_search(t.vec, "products", v, 4, &q, &r, &m), NDB_OK);
    cr_assert_eq(r->n, 1);
    cr_assert_not_null(r->hits[0].doc);
    ndb_vec_results_free(r, 1);
    tv_close(&t);
    tv_rm(&t);
}

Test(vdb, upsert_replaces_document_and_vector_together)
{
    tv t;
    tv_init(&t, 0);
    tv_open(&t);
    ndb_errmsg m;
    cr_assert_eq(ndb_vec_create(t.vec, "u", 2, NDB_VEC_DOT, NULL, &m), NDB_OK);
    float v1[2] = {1, 0}, v2[2] = {0, 1};
    size_t l1, l2;
    void *d1 = tv_doc("{\"k\":1}", &l1), *d2 = tv_doc("{\"_id\":\"a\",\"k\":2}", &l2);
    int inserted;
    ndb_vec_item it1 = {d1, l1, v1}, it2 = {d2, l2, v2};
    cr_assert_eq(ndb_vec_upsert(t.vec, "u", "a", &it1, 2, &inserted, &m), NDB_OK, "%s", m.text);
    cr_assert_eq(inserted, 1);
    void *got;
    size_t gl;
    float gv[2];
    cr_assert_eq(tv_get(&t, "u", "a", &got, &gl, gv, 2, &m), NDB_OK);
    ndb_doc_val root, created1, created2;
    ndb_doc_root(got, gl, &root);
    cr_assert_eq(ndb_doc_get_field(&root, "_created_at", 11, &created1), NDB_OK);
    char c1[40];
    snprintf(c1, sizeof c1, "%.*s", (int)created1.u.s.len, created1.u.s.ptr);
    free(got);
    usleep(2000);
    cr_assert_eq(ndb_vec_upsert(t.vec, "u", "a", &it2, 2, &inserted, &m), NDB_OK, "%s", m.text);
    cr_assert_eq(inserted, 0);
    cr_assert_eq(tv_get(&t, "u", "a", &got, &gl, gv, 2, &m), NDB_OK);
    cr_assert_eq(tv_field_int(got, gl, "k"), 2);
    cr_assert(gv[0] == 0 && gv[1] == 1);
    ndb_doc_root(got, gl, &root);
    cr_assert_eq(ndb_doc_get_field(&root, "_created_at", 11, &created2), NDB_OK);
    cr_assert_eq(strncmp(c1, created2.u.s.ptr, created2.u.s.len), 0, "an upsert keeps _created_at");
    free(got);
    ndb_vec_info info;
    cr_assert_eq(ndb_vec_stats(t.vec, "u", &info, &m), NDB_OK);
    cr_assert_eq(info.rows, 1);
    cr_assert_eq(ndb_vec_delete(t.vec, "u", "a", &m), NDB_OK);
    cr_assert_eq(tv_get(&t, "u", "a", NULL, NULL, gv, 2, &m), NDB_ENOTFOUND);
    cr_assert_eq(ndb_vec_stats(t.vec, "u", &info, &m), NDB_OK);
    cr_assert_eq(info.rows, 0);
    free(d1);
    free(d2);
    tv_close(&t);
    tv_rm(&t);
}

/* Cursors page through documents with their vectors; what they give,
 * inserted into a new collection, searches exactly like the original. */
Test(vdb, export_import_round_trip_gives_identical_results)
{
    tv t;
    tv_init(&t, 64 * 100);
    tv_open(&t);
    ndb_errmsg m;
    enum { N = 700, DIMS = 16 };
    cr_assert_eq(ndb_vec_create(t.vec, "src", DIMS, NDB_VEC_COSINE, NULL, &m), NDB_OK);
    cr_assert_eq(ndb_vec_create(t.vec, "dst", DIMS, NDB_VEC_COSINE, NULL, &m), NDB_OK);
    for (int i = 0; i < N; i++) {
        float v[DIMS];
        for (int j = 0; j < DIMS; j++)
            v[j] = (float)((int)(rnd() % 2001) - 1000) / 7.0f;
        char json[64];
        snprintf(json, sizeof json, "{\"_id\":\"e%03d\",\"n\":%d}", i, i);
        cr_assert_eq(tv_insert(&t, "src", json, v, DIMS, &m), NDB_OK, "%s", m.text);
    }
    /* pages of 64 through page tokens */
    void *tok = NULL;
    size_t tl = 0;
    int copied = 0;
    for (;;) {
        ndb_vec_find_opts o = {.limit = 64, .page_token = tok, .page_token_len = tl};
        ndb_vec_cursor *c;
        cr_assert_eq(ndb_vec_find(t.vec, "src", &o, &c, &m), NDB_OK, "%s", m.text);
        const void *doc;
        size_t dl;
        const float *vec;
        int n = 0;
        while (ndb_vec_cursor_next(c, &doc, &dl, &vec, &m) == NDB_OK && doc) {
            ndb_vec_item it = {doc, dl, vec};
            cr_assert_eq(ndb_vec_insert(t.vec, "dst", &it, 1, DIMS, NULL, &m), NDB_OK, "%s", m.text);
            n++;
        }
        free(tok);
        cr_assert_eq(ndb_vec_cursor_page_token(c, &tok, &tl), NDB_OK);
        ndb_vec_cursor_free(c);
        copied += n;
        if (tl == 0 || n == 0)
            break;
    }
    free(tok);
    cr_assert_eq(copied, N);
    for (int i = 0; i < 20; i++) {
        float q[DIMS];
        for (int j = 0; j < DIMS; j++)
            q[j] = (float)((int)(rnd() % 2001) - 1000);
        ndb_vec_query qq = {.k = 25};
        ndb_vec_result *a, *b;
        cr_assert_eq(ndb_vec_search(t.vec, "src", q, DIMS, &qq, &a, &m), NDB_OK);
        cr_assert_eq(ndb_vec_search(t.vec, "dst", q, DIMS, &qq, &b, &m), NDB_OK);
        cr_assert_eq(a->n, b->n);
        for (size_t h = 0; h < a->n; h++) {
            cr_assert_str_eq(a->hits[h].id, b->hits[h].id);
            cr_assert_eq(a->hits[h].score, b->hits[h].score, "identical vectors give identical scores");
        }
        ndb_vec_results_free(a, 1);
        ndb_vec_results_free(b, 1);
    }
    /* a filtered cursor */
    size_t fl;
    void *f = tv_doc("{\"n\":{\"$lt\":10}}", &fl);
    ndb_vec_find_opts o = {.filter = f, .filter_len = fl};
    ndb_vec_cursor *c;
    cr_assert_eq(ndb_vec_find(t.vec, "dst", &o, &c, &m), NDB_OK);
    const void *doc;
    size_t dl;
    const float *vec;
    int n = 0;
    while (ndb_vec_cursor_next(c, &doc, &dl, &vec, &m) == NDB_OK && doc)
        n++;
    cr_assert_eq(n, 10);
    ndb_vec_cursor_free(c);
    cr_assert_eq(ndb_vec_find(t.vec, "nope", &o, &c, &m), NDB_ENOTFOUND);
    free(f);
    tv_close(&t);
    tv_rm(&t);
}

Test(vdb, updates_and_deletes_are_reclaimed)
{
    tv t;
    tv_init(&t, 64 * 50); /* 50 rows of 64 bytes per segment */
    tv_open(&t);
    ndb_errmsg m;
    cr_assert_eq(ndb_vec_create(t.vec, "u", 4, NDB_VEC_DOT, NULL, &m), NDB_OK);
    for (int round = 0; round < 40; round++) {
        for (int i = 0; i < 100; i++) {
            char id[8];
            snprintf(id, sizeof id, "u%d", i);
            float v[4] = {(float)round, (float)i, 1, 1};
            ndb_vec_item it = {NULL, 0, v};
            cr_assert_eq(ndb_vec_upsert(t.vec, "u", id, &it, 4, NULL, &m), NDB_OK, "%s", m.text);
        }
    }
    ndb_vec_info info;
    cr_assert_eq(ndb_vec_stats(t.vec, "u", &info, &m), NDB_OK);
    cr_assert_eq(info.rows, 100);
    /* 4000 rows were written; without merging 3900 would be dead */
    cr_assert(info.dead <= 300, "dead rows not reclaimed: %llu", (unsigned long long)info.dead);
    float got[4];
    cr_assert_eq(tv_get(&t, "u", "u7", NULL, NULL, got, 4, &m), NDB_OK);
    cr_assert(got[0] == 39.0f && got[1] == 7.0f);
    /* deletes alone merge too */
    cr_assert_eq(ndb_vec_merge(t.vec, "u", &m), NDB_OK);
    for (int i = 0; i < 90; i++) {
        char id[8];
        snprintf(id, sizeof id, "u%d", i);
        cr_assert_eq(ndb_vec_delete(t.vec, "u", id, &m), NDB_OK, "%s", m.text);
    }
    cr_assert_eq(ndb_vec_stats(t.vec, "u", &info, &m), NDB_OK);
    cr_assert_eq(info.rows, 10);
    cr_assert(info.dead < 50, "dead rows not reclaimed: %llu", (unsigned long long)info.dead);
    tv_close(&t);
    tv_open(&t);
    cr_assert_eq(ndb_vec_stats(t.vec, "u", &info, &m), NDB_OK);
    cr_assert_eq(info.rows, 10);
    cr_assert_eq(tv_get(&t, "u", "u89", NULL, NULL, got, 4, &m), NDB_ENOTFOUND);
    cr_assert_eq(tv_get(&t, "u", "u90", NULL, NULL, got, 4, &m), NDB_OK);
    tv_close(&t);
    tv_rm(&t);
}

/* A filter keeping a quarter or more of the documents is applied to the
 * hits (the sample's estimate decides), with or without an index: the path
 * says so, the hits are the true top k among the matches, and when the best
 * rows all fail the filter the query runs again filtered first and still
 * gets k hits. Through an index, finding half of the documents first cost
 * more than the search (issue 15). */
Test(vdb, filters_keeping_many_documents_are_applied_to_the_hits)
{
    tv t;
    tv_init(&t, 0);
    tv_open(&t);
    ndb_errmsg m = {{0}};
    cr_assert_eq(ndb_vec_create(t.vec, "v", 4, NDB_VEC_DOT, NULL, &m), NDB_OK, "%s", m.text);
    for (int i = 0; i < 400; i++) {
        float v[4] = {(float)i, 1, (float)(i % 5), 0};
        char doc[64];
        snprintf(doc, sizeof doc, "{\"_id\":\"d%03d\",\"i\":%d,\"h\":%d}", i, i, i % 2);
        cr_assert_eq(tv_insert(&t, "v", doc, v, 4, &m), NDB_OK, "%s", m.text);
    }
    for (int indexed = 0; indexed < 2; indexed++) {
        if (indexed) {
            size_t sl;
            void *spec = tv_doc("{\"i\":1}", &sl);
            cr_assert_eq(ndb_doc_create_index(ndb_vec_documents(t.vec), "v", NULL, spec, sl, NULL, &m), NDB_OK, "%s",
                         m.text);
            free(spec);
        }
        static const struct {
            const char *filter, *path, *first; /* the best hit for q = (1, 0, 0, 0): the highest i passing */
        } cases[] = {
            {"{\"h\":1}", "exact_postfiltered", "d399"},
            {"{\"i\":{\"$gte\":100}}", "exact_postfiltered", "d399"},
            {"{\"i\":{\"$lt\":200}}", "exact", "d199"}, /* the best 40 rows fail it: run again */
            {"{\"i\":{\"$lt\":20}}", "exact", "d019"},  /* 5%: filtered first */
        };
        float q[4] = {1, 0, 0, 0};
        for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
            size_t fl;
            void *f = tv_doc(cases[c].filter, &fl);
            ndb_vec_query qq = {.k = 10, .filter = f, .filter_len = fl};
            ndb_vec_result *r;
            cr_assert_eq(ndb_vec_search(t.vec, "v", q, 4, &qq, &r, &m), NDB_OK, "%s", m.text);
            cr_assert_str_eq(r->plan.path, cases[c].path, "%s (indexed %d)", cases[c].filter, indexed);
            cr_assert_eq(r->n, 10, "%s", cases[c].filter);
            cr_assert_str_eq(r->hits[0].id, cases[c].first, "%s", cases[c].filter);
            int step = strcmp(cases[c].filter, "{\"h\":1}") == 0 ? 2 : 1;
            for (size_t x = 1; x < r->n; x++) /* scores i: the next passing i down */
                cr_assert_eq(atoi(r->hits[x].id + 1), atoi(r->hits[x - 1].id + 1) - step, "%s: hit %zu is %s",
                             cases[c].filter, x, r->hits[x].id);
            if (strcmp(cases[c].path, "exact_postfiltered") == 0)
                cr_assert(r->plan.candidates >= 100 && r->plan.candidates <= 400, "estimated %llu",
                          (unsigned long long)r->plan.candidates);
            ndb_vec_results_free(r, 1);
            free(f);
        }
    }
    tv_close(&t);
    tv_rm(&t);
}

/* A search, a batch, a filtered search and an export stop when their
 * interrupt fires (NDB_ETIMEDOUT for a passed deadline, NDB_ECANCELED for a
 * cancelled call) and answer as before when it does not. */
Test(vdb, searches_stop_at_their_interrupt)
{
    tv t;
    tv_init(&t, 0);
    tv_open(&t);
    ndb_errmsg m = {{0}};
    cr_assert_eq(ndb_vec_create(t.vec, "v", 8, NDB_VEC_DOT, NULL, &m), NDB_OK, "%s", m.text);
    for (int i = 0; i < 300; i++) {
        float v[8] = {(float)i, 1, 2, 3, 4, 5, 6, (float)(i % 7)};
        char doc[64];
        snprintf(doc, sizeof doc, "{\"_id\":\"d%03d\",\"i\":%d}", i, i);
        cr_assert_eq(tv_insert(&t, "v", doc, v, 8, &m), NDB_OK, "%s", m.text);
    }
    float q[16] = {1, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0};
    size_t fl;
    void *filter = tv_doc("{\"i\":{\"$gte\":0}}", &fl);
    ndb_interrupt passed = {.deadline_ns = 0};
    atomic_bool gone = true;
    ndb_interrupt cancelled = {.deadline_ns = INT64_MAX, .cancelled = &gone};
    ndb_vec_query qq = {.k = 5, .interrupt = &passed};
    ndb_vec_result *r = NULL;
    cr_assert_eq(ndb_vec_search(t.vec, "v", q, 8, &qq, &r, &m), NDB_ETIMEDOUT);
    cr_assert(strstr(m.text, "vector search stopped") != NULL, "%s", m.text);
    qq.interrupt = &cancelled;
    cr_assert_eq(ndb_vec_search_batch(t.vec, "v", q, 2, 8, &qq, &r, &m), NDB_ECANCELED);
    qq.filter = filter; /* the pre-filter's document scan stops too */
    qq.filter_len = fl;
    cr_assert_eq(ndb_vec_search(t.vec, "v", q, 8, &qq, &r, &m), NDB_ECANCELED);
    ndb_vec_find_opts fo = {.interrupt = &cancelled};
    ndb_vec_cursor *cur;
    cr_assert_eq(ndb_vec_find(t.vec, "v", &fo, &cur, &m), NDB_OK, "%s", m.text);
    ndb_status st = NDB_OK;
    int seen = 0;
    for (const void *d = q; st == NDB_OK && d != NULL; seen++) {
        size_t dl;
        const float *vec;
        st = ndb_vec_cursor_next(cur, &d, &dl, &vec, &m);
    }
    cr_assert_eq(st, NDB_ECANCELED, "export: %d after %d documents", st, seen);
    ndb_vec_cursor_free(cur);
    gone = false; /* an interrupt that does not fire */
    cr_assert_eq(ndb_vec_search(t.vec, "v", q, 8, &qq, &r, &m), NDB_OK, "%s", m.text);
    cr_assert_eq(r->n, 5);
    cr_assert_str_eq(r->hits[0].id, "d299");
    ndb_vec_results_free(r, 1);
    free(filter);
    tv_close(&t);
    tv_rm(&t);
}

/* A TTL index on a vector collection's documents: ndb_vec_expire deletes
 * each expired document with its vector, in batches, and nothing else (a
 * fresh date, a missing field); searches never return them again, also
 * after a reopen. */
Test(vdb, ttl_expires_documents_with_their_vectors)
{
    const int64_t now = INT64_C(1800000000000); /* milliseconds */
    tv t;
    tv_init(&t, 0);
    tv_open(&t);
    ndb_errmsg m = {{0}};
    cr_assert_eq(ndb_vec_create(t.vec, "t", 2, NDB_VEC_DOT, NULL, &m), NDB_OK, "%s", m.text);
    size_t sl;
    void *spec = tv_doc("{\"exp\":1}", &sl);
    ndb_doc_index_opts o = {.ttl = 1, .expire_after_seconds = 60};
    cr_assert_eq(ndb_doc_create_index(ndb_vec_documents(t.vec), "t", NULL, spec, sl, &o, &m), NDB_OK, "%s", m.text);
    free(spec);
    for (int i = 0; i < 300; i++) { /* d<i>: i % 3 == 0 expired, 1 fresh, 2 without the field */
        char json[160];
        if (i % 3 == 2)
            snprintf(json, sizeof json, "{\"_id\":\"d%d\"}", i);
        else
            snprintf(json, sizeof json, "{\"_id\":\"d%d\",\"exp\":{\"$date\":{\"$numberLong\":\"%lld\"}}}", i,
                     (long long)(i % 3 ? now : now - 61000));
        size_t l;
        void *d = tv_doc(json, &l);
        float v[2] = {1, (float)i};
        ndb_vec_item it = {d, l, v};
        cr_assert_eq(ndb_vec_insert(t.vec, "t", &it, 1, 2, NULL, &m), NDB_OK, "%s", m.text);
        free(d);
    }
    uint64_t n = 0;
    cr_assert_eq(ndb_vec_expire(t.vec, now, 7, 0, &n, &m), NDB_OK, "%s", m.text);
    cr_assert_eq(n, 100);
    for (int round = 0; round < 2; round++) {
        ndb_vec_info info;
        cr_assert_eq(ndb_vec_stats(t.vec, "t", &info, &m), NDB_OK);
        cr_assert_eq(info.rows, 200, "round %d: %llu rows", round, (unsigned long long)info.rows);
        float q[2] = {0, 1}, gv[2];
        cr_assert_eq(tv_get(&t, "t", "d0", NULL, NULL, gv, 2, &m), NDB_ENOTFOUND);
        cr_assert_eq(tv_get(&t, "t", "d1", NULL, NULL, gv, 2, &m), NDB_OK);
        ndb_vec_query qq = {.k = 300};
        ndb_vec_result *r;
        cr_assert_eq(ndb_vec_search(t.vec, "t", q, 2, &qq, &r, &m), NDB_OK, "%s", m.text);
        cr_assert_eq(r->n, 200);
        for (size_t i = 0; i < r->n; i++)
            cr_assert_neq(atoi(r->hits[i].id + 1) % 3, 0, "%s expired but was found", r->hits[i].id);
        ndb_vec_results_free(r, 1);
        cr_assert_eq(ndb_vec_expire(t.vec, now, 7, 0, &n, &m), NDB_OK);
        cr_assert_eq(n, 0, "nothing more expires");
        tv_close(&t);
        tv_open(&t);
    }
    cr_assert_eq(ndb_vec_expire(t.vec, now + 61000, 1000, 0, &n, &m), NDB_OK);
    cr_assert_eq(n, 100, "the fresh ones, a minute later");
    tv_close(&t);
    tv_rm(&t);
}
