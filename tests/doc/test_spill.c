/* Sorts beyond the memory bound spill sorted runs to files and merge them
 * (sortbuf.c): the same order as in memory, stable, within the bound, and no
 * file left behind; without a spill directory the bound is a clear error. */
#include <dirent.h>
#include <sys/stat.h>

#include "helpers.h"

static tdb T;
static char spill[96];

static void open_with(size_t mem, const char *dir)
{
    ndb_kv_options ko;
    ndb_kv_options_init(&ko);
    ko.durability = NDB_KV_NONE;
    ndb_errmsg m = {{0}};
    cr_assert_eq(ndb_kv_open(T.dir, &ko, &T.kv, &m), NDB_OK, "kv open: %s", m.text);
    ndb_doc_options o;
    ndb_doc_options_init(&o);
    o.log = quiet_log;
    o.agg_mem_bytes = mem;
    o.spill_dir = dir;
    cr_assert_eq(ndb_doc_open(T.kv, &o, &T.db, &m), NDB_OK, "doc open: %s", m.text);
}

static int files_in(const char *dir)
{
    int n = 0;
    DIR *d = opendir(dir);
    cr_assert_not_null(d);
    for (struct dirent *e; (e = readdir(d)) != NULL;)
        n += e->d_name[0] != '.';
    closedir(d);
    return n;
}

/* 4,000 documents of ~200 bytes (~1 MiB) against a 64 KiB bound: ~16 runs. */
static void setup(void)
{
    snprintf(T.dir, sizeof T.dir, "/tmp/ndbdoc-sp-XXXXXX");
    cr_assert_not_null(mkdtemp(T.dir));
    snprintf(spill, sizeof spill, "%s-spill", T.dir);
    cr_assert_eq(mkdir(spill, 0700), 0);
    open_with(64 << 10, spill);
    char pad[160];
    memset(pad, 'x', sizeof pad - 1);
    pad[sizeof pad - 1] = 0;
    for (int b = 0; b < 40; b++) {
        char docs[40000] = "[";
        for (int i = b * 100; i < (b + 1) * 100; i++)
            snprintf(docs + strlen(docs), sizeof docs - strlen(docs), "%s{\"_id\":\"d%05d\",\"k\":%d,\"g\":%d,\"pad\":\"%s\"}",
                     i % 100 ? "," : "", i, (i * 7919) % 1000, i % 7, pad);
        strcat(docs, "]");
        ndb_errmsg m = {{0}};
        cr_assert_eq(ins(&T, "big", docs, &m), NDB_OK, "%s", m.text);
    }
}

static void teardown(void)
{
    tdb_close(&T);
    rmdir(spill);
}

TestSuite(spill, .init = setup, .fini = teardown);

/* Reads a cursor to its end: k in order (desc or not), every one of the 4,000
 * documents once, and ties (each k appears 4 times) in _id (arrival) order. */
static void check_sorted(ndb_doc_cursor *c, int desc)
{
    int prev = desc ? 1000 : -1, prev_id = -1, seen = 0;
    ndb_errmsg m = {{0}};
    for (;;) {
        const void *d;
        size_t dl;
        cr_assert_eq(ndb_doc_cursor_next(c, &d, &dl, &m), NDB_OK, "%s", m.text);
        if (d == NULL)
            break;
        ndb_doc_val root, k, id;
        cr_assert_eq(ndb_doc_root(d, dl, &root), NDB_OK);
        cr_assert_eq(ndb_doc_get_field(&root, "k", 1, &k), NDB_OK);
        cr_assert_eq(ndb_doc_get_field(&root, "_id", 3, &id), NDB_OK);
        int idn = atoi(id.u.s.ptr + 1);
        cr_assert(desc ? k.u.i <= prev : k.u.i >= prev, "out of order at d%05d", idn);
        if (k.u.i == prev)
            cr_assert_gt(idn, prev_id, "a tie out of arrival order at d%05d", idn);
        prev = (int)k.u.i;
        prev_id = idn;
        seen++;
    }
    cr_assert_eq(seen, 4000);
}

static ndb_doc_cursor *find_sorted(const char *sort)
{
    size_t sl;
    void *s = J(sort, &sl);
    ndb_doc_find_opts o = {.sort = s, .sort_len = sl};
    ndb_doc_cursor *c;
    ndb_errmsg m = {{0}};
    cr_assert_eq(ndb_doc_find(T.db, "big", &o, &c, &m), NDB_OK, "%s", m.text);
    free(s);
    return c;
}

Test(spill, find_sort_spills_merges_and_cleans_up)
{
    ndb_doc_cursor *c = find_sorted("{\"k\":1}");
    check_sorted(c, 0);
    ndb_doc_explain ex;
    ndb_doc_cursor_explain(c, &ex);
    cr_assert_gt(ex.spilled_bytes, 500000, "spilled %llu bytes", (unsigned long long)ex.spilled_bytes);
    ndb_doc_cursor_free(c);
    c = find_sorted("{\"k\":-1}");
    check_sorted(c, 1);
    cr_assert_eq(files_in(spill), 0, "spill files are unlinked as they are made");
    ndb_doc_cursor_free(c);
}

Test(spill, pipeline_sort_spills)
{
    size_t pl;
    void *p = J("[{\"$match\":{}},{\"$project\":{\"k\":1}},{\"$sort\":{\"k\":1}}]", &pl);
    ndb_doc_cursor *c;
    ndb_errmsg m = {{0}};
    cr_assert_eq(ndb_doc_aggregate(T.db, "big", p, pl, NULL, &c, &m), NDB_OK, "%s", m.text);
    free(p);
    check_sorted(c, 0);
    ndb_doc_cursor_free(c);
    cr_assert_eq(files_in(spill), 0);
}

Test(spill, without_a_spill_directory_the_bound_is_an_error)
{
    tdb_close_only(&T);
    open_with(64 << 10, NULL);
    cr_assert(strstr(find_json(&T, "big", (fq){.sort = "{\"k\":1}"}, NULL), "exceeded the memory limit") != NULL);
    cr_assert(strstr(agg_json(&T, "big", "[{\"$sort\":{\"k\":1}}]"), "exceeded the memory limit") != NULL);
}

Test(spill, leftover_spill_files_are_removed_at_open)
{
    tdb_close_only(&T);
    char path[128];
    snprintf(path, sizeof path, "%s/nexadb-spill-crash1", spill);
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f);
    fputs("a crash left this", f);
    fclose(f);
    snprintf(path, sizeof path, "%s/keep-me", spill);
    f = fopen(path, "w");
    fclose(f);
    open_with(64 << 10, spill);
    cr_assert_eq(files_in(spill), 1, "only the spill file goes");
    unlink(path);
}

/* The pipeline's whole output as JSON lines (caller frees), and what it spilled. */
static char *run_all(const char *pipeline, uint64_t *spilled)
{
    size_t pl;
    void *p = J(pipeline, &pl);
    ndb_doc_cursor *c;
    ndb_errmsg m = {{0}};
    cr_assert_eq(ndb_doc_aggregate(T.db, "big", p, pl, NULL, &c, &m), NDB_OK, "%s", m.text);
    free(p);
    dbuf out = {0};
    for (;;) {
        const void *d;
        size_t dl;
        cr_assert_eq(ndb_doc_cursor_next(c, &d, &dl, &m), NDB_OK, "%s", m.text);
        if (d == NULL)
            break;
        char *js;
        size_t jl;
        cr_assert_eq(ndb_doc_to_json(d, dl, &js, &jl), NDB_OK);
        dbuf_put(&out, js, jl);
        dbuf_byte(&out, '\n');
        free(js);
    }
    dbuf_byte(&out, 0);
    ndb_doc_explain ex;
    ndb_doc_cursor_explain(c, &ex);
    *spilled = ex.spilled_bytes;
    ndb_doc_cursor_free(c);
    return (char *)out.data;
}

/* A $group over many groups spills partial states and merges them: the same
 * groups and values as in memory, $first/$last/$push in input order. */
Test(spill, group_spills_and_merges_partial_states)
{
    const char *pipe = "[{\"$group\":{\"_id\":\"$k\",\"n\":{\"$sum\":1},\"ids\":{\"$push\":\"$_id\"},"
                       "\"first\":{\"$first\":\"$_id\"},\"last\":{\"$last\":\"$_id\"},\"gs\":{\"$addToSet\":\"$g\"},"
                       "\"mn\":{\"$min\":\"$g\"},\"mx\":{\"$max\":\"$g\"},\"avg\":{\"$avg\":\"$g\"},\"c\":{\"$count\":{}}}},"
                       "{\"$sort\":{\"_id\":1}}]";
    uint64_t spilled, none;
    char *small = run_all(pipe, &spilled);
    cr_assert_gt(spilled, 0);
    cr_assert_eq(files_in(spill), 0);
    tdb_close_only(&T);
    open_with(256 << 20, spill);
    char *big = run_all(pipe, &none);
    cr_assert_eq(none, 0);
    cr_assert_str_eq(small, big);
    cr_assert(strstr(big, "{\"_id\":0,\"n\":4,\"ids\":[\"d00000\",\"d01000\",\"d02000\",\"d03000\"],"
                          "\"first\":\"d00000\",\"last\":\"d03000\"") != NULL, "%.300s", big);
    free(small);
    free(big);
    /* without a spill directory it is the old error */
    tdb_close_only(&T);
    open_with(64 << 10, NULL);
    cr_assert(strstr(agg_json(&T, "big", pipe), "$group exceeded the memory limit") != NULL);
}

/* $sample is a sort on a random key: a sample larger than the bound spills
 * and still holds size distinct documents of the input; a small one stays
 * in its top-n heap. */
Test(spill, sample_spills_beyond_the_bound)
{
    size_t pl;
    void *p = J("[{\"$sample\":{\"size\":3000}}]", &pl);
    ndb_doc_cursor *c;
    ndb_errmsg m = {{0}};
    cr_assert_eq(ndb_doc_aggregate(T.db, "big", p, pl, NULL, &c, &m), NDB_OK, "%s", m.text);
    free(p);
    static bool seen[4000];
    int n = 0, in_order = 0, prev = -1;
    for (;;) {
        const void *d;
        size_t dl;
        cr_assert_eq(ndb_doc_cursor_next(c, &d, &dl, &m), NDB_OK, "%s", m.text);
        if (d == NULL)
            break;
        ndb_doc_val root, id;
        cr_assert_eq(ndb_doc_root(d, dl, &root), NDB_OK);
        cr_assert_eq(ndb_doc_get_field(&root, "_id", 3, &id), NDB_OK);
        int idn = atoi(id.u.s.ptr + 1);
        cr_assert(idn >= 0 && idn < 4000 && !seen[idn], "d%05d twice or unknown", idn);
        seen[idn] = true;
        in_order += idn > prev;
        prev = idn;
        n++;
    }
    cr_assert_eq(n, 3000);
    cr_assert_lt(in_order, 2000, "%d of 3000 in _id order: not shuffled", in_order);
    ndb_doc_explain ex;
    ndb_doc_cursor_explain(c, &ex);
    cr_assert_gt(ex.spilled_bytes, 100000, "spilled %llu bytes", (unsigned long long)ex.spilled_bytes);
    ndb_doc_cursor_free(c);
    cr_assert_eq(files_in(spill), 0);
    cr_assert_str_eq(agg_json(&T, "big", "[{\"$sample\":{\"size\":5}},{\"$count\":\"n\"}]"), "[{\"n\":5}]");
}

/* A find with a sort and a limit whose kept documents outgrow the bound
 * spills instead of failing, and still returns the first documents. */
Test(spill, sort_with_a_large_limit_spills)
{
    size_t sl;
    void *s = J("{\"k\":1}", &sl);
    ndb_doc_find_opts o = {.sort = s, .sort_len = sl, .limit = 3000};
    ndb_doc_cursor *c;
    ndb_errmsg m = {{0}};
    cr_assert_eq(ndb_doc_find(T.db, "big", &o, &c, &m), NDB_OK, "%s", m.text);
    free(s);
    int n = 0, prev = -1;
    for (;;) {
        const void *d;
        size_t dl;
        cr_assert_eq(ndb_doc_cursor_next(c, &d, &dl, &m), NDB_OK, "%s", m.text);
        if (d == NULL)
            break;
        ndb_doc_val root, k;
        cr_assert_eq(ndb_doc_root(d, dl, &root), NDB_OK);
        cr_assert_eq(ndb_doc_get_field(&root, "k", 1, &k), NDB_OK);
        cr_assert_geq(k.u.i, prev);
        prev = (int)k.u.i;
        n++;
    }
    cr_assert_eq(n, 3000);
    cr_assert_eq(prev, 749, "the 3000 smallest of k (4 of each value 0..999) end at 749");
    ndb_doc_explain ex;
    ndb_doc_cursor_explain(c, &ex);
    cr_assert_gt(ex.spilled_bytes, 0);
    ndb_doc_cursor_free(c);
    cr_assert_eq(files_in(spill), 0);
}

/* Counts matches of filter on coll: through whatever the planner picks, and
 * with a forced collection scan (hint _id); both must agree. */
static uint64_t count_both(const char *coll, const char *filter, const char **plan)
{
    static char planbuf[sizeof((ndb_doc_explain *)0)->plan];
    fq q = {.filter = filter, .proj = "{\"_id\":1}", .sort = "{\"_id\":1}"};
    ndb_doc_explain ex, ex2;
    char a[1 << 16];
    snprintf(a, sizeof a, "%s", find_json(&T, coll, q, &ex));
    q.hint = "_id";
    const char *b = find_json(&T, coll, q, &ex2);
    cr_assert_str_eq(a, b, "filter %s", filter);
    snprintf(planbuf, sizeof planbuf, "%s", ex.plan);
    *plan = planbuf;
    uint64_t n = 0;
    for (const char *p = a; (p = strstr(p, "\"_id\"")) != NULL; p++)
        n++;
    return n;
}

/* With a spill directory an index is built by sorting its entries (here
 * through many spilled runs: 64 KiB of memory) and ingesting them as tables:
 * every range query through it finds what a scan finds, arrays (one value
 * twice in a document, too) and missing fields included; a unique index over
 * a duplicate is refused and leaves no index; writes after the build keep it
 * exact. */
Test(spill, index_built_by_sorting_matches_a_scan)
{
    ndb_errmsg m = {{0}};
    for (int b = 0; b < 30; b++) {
        char docs[20000] = "[";
        for (int i = b * 100; i < (b + 1) * 100; i++) {
            int v = (i * 7919) % 997;
            if (i % 13 == 0) /* no field */
                snprintf(docs + strlen(docs), sizeof docs - strlen(docs), "%s{\"_id\":\"e%05d\",\"u\":%d}", i % 100 ? "," : "", i, i);
            else if (i % 11 == 0) /* an array holding one value twice */
                snprintf(docs + strlen(docs), sizeof docs - strlen(docs), "%s{\"_id\":\"e%05d\",\"v\":[%d,%d,%d],\"u\":%d}",
                         i % 100 ? "," : "", i, v, v + 1, v, i);
            else
                snprintf(docs + strlen(docs), sizeof docs - strlen(docs), "%s{\"_id\":\"e%05d\",\"v\":%d,\"u\":%d}",
                         i % 100 ? "," : "", i, v, i);
        }
        strcat(docs, "]");
        cr_assert_eq(ins(&T, "ix", docs, &m), NDB_OK, "%s", m.text);
    }
    size_t sl;
    void *spec = J("{\"v\":1}", &sl);
    cr_assert_eq(ndb_doc_create_index(T.db, "ix", NULL, spec, sl, NULL, &m), NDB_OK, "%s", m.text);
    free(spec);
    cr_assert_eq(files_in(spill), 0);
    ndb_kv_stats ks; /* the entries went to the deepest level as tables of their own */
    cr_assert_eq(ndb_kv_stats_get(T.kv, &ks), NDB_OK);
    cr_assert_gt(ks.levels[NDB_KV_LEVELS - 1].files, 0);
    const char *plan;
    const char *filters[] = {"{\"v\":{\"$gte\":100,\"$lt\":400}}", "{\"v\":{\"$gt\":990}}", "{\"v\":17}",
                             "{\"v\":{\"$lte\":3}}", "{\"v\":{\"$in\":[5,500,996]}}"};
    for (size_t i = 0; i < sizeof filters / sizeof *filters; i++) {
        uint64_t n = count_both("ix", filters[i], &plan);
        cr_assert(strstr(plan, "IXSCAN") != NULL, "%s: %s", filters[i], plan);
        cr_assert_gt(n, 0, "%s", filters[i]);
    }
    ndb_doc_index_info *ii;
    size_t ni;
    cr_assert_eq(ndb_doc_list_indexes(T.db, "ix", &ii, &ni, &m), NDB_OK);
    cr_assert_eq(ni, 1);
    cr_assert(ii[0].multikey, "the arrays made it multikey");
    free(ii);
    /* writes after the build maintain it */
    cr_assert_eq(ins(&T, "ix", "[{\"_id\":\"late\",\"v\":17}]", &m), NDB_OK, "%s", m.text);
    cr_assert_eq(ndb_doc_delete(T.db, "ix", "e00001", 6, NULL, &m), NDB_OK, "%s", m.text);
    count_both("ix", "{\"v\":17}", &plan);
    count_both("ix", "{\"v\":{\"$gte\":0}}", &plan);
    /* unique: u is unique (every document has one); v is not */
    spec = J("{\"u\":1}", &sl);
    ndb_doc_index_opts uo = {.unique = 1};
    cr_assert_eq(ndb_doc_create_index(T.db, "ix", NULL, spec, sl, &uo, &m), NDB_OK, "%s", m.text);
    free(spec);
    cr_assert_eq(count_both("ix", "{\"u\":{\"$gte\":2000}}", &plan), 1000);
    cr_assert(strstr(plan, "IXSCAN") != NULL, "%s", plan);
    spec = J("{\"v\":-1}", &sl);
    cr_assert_eq(ndb_doc_create_index(T.db, "ix", "vu", spec, sl, &uo, &m), NDB_EEXIST);
    cr_assert(strstr(m.text, "duplicate key in unique index vu") != NULL, "%s", m.text);
    free(spec);
    cr_assert_eq(ndb_doc_list_indexes(T.db, "ix", &ii, &ni, &m), NDB_OK);
    cr_assert_eq(ni, 2);
    free(ii);
    cr_assert_eq(files_in(spill), 0);
}

/* Random keys over {0x00, 0x01, 0x7f, 0xff} with a shared prefix of `common`
 * bytes and up to 40 more, many equal, many a prefix of another: the word
 * sort's ties and ends. */
static void random_keys(uint8_t *buf, size_t *len, int n, size_t common, unsigned *seed)
{
    static const uint8_t alpha[] = {0x00, 0x01, 0x7f, 0xff};
    for (int i = 0; i < n; i++) {
        uint8_t *k = buf + (size_t)i * 64;
        memset(k, 0xab, common);
        len[i] = common + (size_t)(rand_r(seed) % 41);
        for (size_t j = common; j < len[i]; j++)
            k[j] = alpha[rand_r(seed) % (j < common + 12 ? 2 : 4)];
    }
}

/* memdoc_sort orders as memdoc_cmp does (qsort as the reference): key
 * bytes, a prefix first, then arrival; from depth 0 and from the shared
 * prefix's end. */
Test(spill, memdoc_sort_matches_memdoc_cmp)
{
    enum { N = 20000 };
    uint8_t *buf = malloc((size_t)N * 64);
    size_t *len = malloc(N * sizeof *len);
    memdoc *a = malloc(N * sizeof *a), *ref = malloc(N * sizeof *ref);
    cr_assert(buf && len && a && ref);
    unsigned seed = 7;
    for (size_t common = 0; common <= 9; common += 9) {
        random_keys(buf, len, N, common, &seed);
        for (int i = 0; i < N; i++)
            a[i] = (memdoc){.key = buf + (size_t)i * 64, .klen = len[i], .seq = (uint64_t)i};
        memcpy(ref, a, N * sizeof *a);
        qsort(ref, N, sizeof *ref, memdoc_cmp);
        for (size_t depth = 0; depth <= common; depth += common ? common : 1) {
            memdoc *t = malloc(N * sizeof *t);
            cr_assert_not_null(t);
            memcpy(t, a, N * sizeof *a);
            ndb_errmsg m = {{0}};
            cr_assert_eq(memdoc_sort(t, N, depth, NULL, &m), NDB_OK, "%s", m.text);
            for (int i = 0; i < N; i++)
                cr_assert_eq(t[i].seq, ref[i].seq, "common %zu depth %zu: position %d", common, depth, i);
            free(t);
        }
    }
    free(buf);
    free(len);
    free(a);
    free(ref);
}

/* The sort buffer hands the same keys out in the same order (key, then
 * arrival) whether it sorts in memory or merges spilled runs. */
Test(spill, sortbuf_in_memory_and_spilled_agree)
{
    enum { N = 20000 };
    uint8_t *buf = malloc((size_t)N * 64);
    size_t *len = malloc(N * sizeof *len);
    memdoc *ref = malloc(N * sizeof *ref);
    cr_assert(buf && len && ref);
    unsigned seed = 11;
    random_keys(buf, len, N, 5, &seed);
    for (int i = 0; i < N; i++)
        ref[i] = (memdoc){.key = buf + (size_t)i * 64, .klen = len[i], .seq = (uint64_t)i};
    qsort(ref, N, sizeof *ref, memdoc_cmp);
    for (int spilled = 0; spilled < 2; spilled++) {
        sortbuf sb;
        sortbuf_init(&sb, spilled ? 32 << 10 : 64 << 20, 0, spill, NULL, "test");
        ndb_errmsg m = {{0}};
        for (uint32_t i = 0; i < N; i++) {
            dbuf k = {.data = buf + (size_t)i * 64, .len = len[i]};
            cr_assert_eq(sortbuf_add(&sb, &k, &i, sizeof i, &m), NDB_OK, "%s", m.text);
        }
        cr_assert_eq(sortbuf_finish(&sb, &m), NDB_OK, "%s", m.text);
        cr_assert_eq(sb.nruns > 1, spilled);
        const uint8_t *k, *p;
        size_t kl, pl;
        for (int i = 0; i < N; i++) {
            cr_assert_eq(sortbuf_next(&sb, &k, &kl, &p, &pl, &m), 1, "%s", m.text);
            uint32_t at;
            cr_assert_eq(pl, sizeof at);
            memcpy(&at, p, sizeof at);
            cr_assert_eq(at, ref[i].seq, "spilled %d: position %d", spilled, i);
        }
        cr_assert_eq(sortbuf_next(&sb, &k, &kl, &p, &pl, &m), 0);
        sortbuf_free(&sb);
    }
    cr_assert_eq(files_in(spill), 0);
    free(buf);
    free(len);
    free(ref);
}

static uint64_t kv_keys(void)
{
    ndb_kv_iter *it;
    cr_assert_eq(ndb_kv_iter_new(T.kv, NULL, NULL, 0, NULL, 0, &it), NDB_OK);
    uint64_t n = 0;
    for (ndb_kv_iter_seek_first(it); ndb_kv_iter_valid(it); ndb_kv_iter_next(it))
        n++;
    ndb_kv_iter_free(it);
    return n;
}

/* Dropping an index reclaims every one of its entries, batch after batch
 * (here three of 10,000 and a last one). */
Test(spill, dropping_an_index_reclaims_all_its_entries)
{
    ndb_errmsg m = {{0}};
    for (int b = 0; b < 8; b++) { /* 4,000 more documents with 8 array values each: 32,000 + 4,000 entries */
        char docs[60000] = "[";
        for (int i = b * 500; i < (b + 1) * 500; i++)
            snprintf(docs + strlen(docs), sizeof docs - strlen(docs), "%s{\"_id\":\"a%05d\",\"t\":[%d,%d,%d,%d,%d,%d,%d,%d]}",
                     i % 500 ? "," : "", i, i, i + 1, i + 2, i + 3, i + 4, i + 5, i + 6, i + 7);
        strcat(docs, "]");
        cr_assert_eq(ins(&T, "big", docs, &m), NDB_OK, "%s", m.text);
    }
    uint64_t before = kv_keys();
    size_t sl;
    void *spec = J("{\"t\":1}", &sl);
    cr_assert_eq(ndb_doc_create_index(T.db, "big", "t1", spec, sl, NULL, &m), NDB_OK, "%s", m.text);
    free(spec);
    cr_assert_eq(kv_keys(), before + 4000 * 8 + 4000); /* the others have no t: null */
    cr_assert_eq(ndb_doc_drop_index(T.db, "big", "t1", &m), NDB_OK, "%s", m.text);
    cr_assert_eq(kv_keys(), before);
}
