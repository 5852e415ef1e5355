/* Tests for engine/doc/index.c and the index parts of coll.c: index builds,
 * maintenance in the same batch as the document, unique and multikey indexes,
 * the planner's choices and explain. Every indexed query is compared with the
 * same query forced to a collection scan (hint "_id"). */
#include "helpers.h"

static tdb T;

static void setup(void)
{
    tdb_open(&T);
    ndb_errmsg m = {{0}};
    char docs[1 << 15] = "[";
    const char *cities[] = {"SF", "NY", "LA", "Austin"};
    for (int i = 0; i < 200; i++)
        snprintf(docs + strlen(docs), sizeof docs - strlen(docs),
                 "%s{\"_id\":\"d%03d\",\"age\":%d,\"city\":\"%s\",\"score\":%d.5,\"tags\":[\"t%d\",\"t%d\"]%s}",
                 i ? "," : "", i, 18 + i % 50, cities[i % 4], i % 7, i % 3, i % 5,
                 i % 10 == 0 ? ",\"nested\":{\"k\":1}" : "");
    strcat(docs, "]");
    cr_assert_eq(ins(&T, "users", docs, &m), NDB_OK, "%s", m.text);
}

static void teardown(void) { tdb_close(&T); }

TestSuite(index, .init = setup, .fini = teardown);

static void mkindex(const char *spec, const char *name, int unique, ndb_status want)
{
    size_t l;
    void *s = J(spec, &l);
    ndb_errmsg m = {{0}};
    ndb_status st = ndb_doc_create_index(T.db, "users", name, s, l, &(ndb_doc_index_opts){.unique = unique}, &m);
    cr_assert_eq(st, want, "create_index %s: %d %s", spec, st, m.text);
    free(s);
}

/* Runs q with the planner and with a forced collection scan; the results
 * must agree (as sets, when unsorted). Returns the planner's explain. */
static ndb_doc_explain same(fq q)
{
    ndb_doc_explain ex, ex2;
    char a[1 << 16];
    snprintf(a, sizeof a, "%s", find_json(&T, "users", q, &ex));
    fq scan = q;
    scan.hint = "_id";
    const char *b = find_json(&T, "users", scan, &ex2);
    cr_assert_str_eq(ex2.plan, q.sort ? "COLLSCAN + SORT" : "COLLSCAN");
    if (q.sort) {
        cr_assert_str_eq(a, b, "filter %s sort %s", q.filter, q.sort);
    } else {
        /* same documents, maybe in another order: compare sorted by _id */
        fq qa = q, qb = scan;
        qa.sort = qb.sort = "{\"_id\":1}";
        char a2[1 << 16];
        snprintf(a2, sizeof a2, "%s", find_json(&T, "users", qa, NULL));
        cr_assert_str_eq(a2, find_json(&T, "users", qb, NULL), "filter %s", q.filter);
        cr_assert(strncmp(a, "ERR", 3) != 0, "%s", a);
    }
    return ex;
}

Test(index, planner_choices_and_results)
{
    mkindex("{\"age\":1}", NULL, 0, NDB_OK);
    mkindex("{\"city\":1,\"age\":-1}", "city_age", 0, NDB_OK);
    mkindex("{\"tags\":1}", NULL, 0, NDB_OK);
    ndb_doc_explain ex;
    ex = same((fq){.filter = "{\"age\":30}"});
    cr_assert_str_eq(ex.plan, "IXSCAN age_1");
    cr_assert_eq(ex.keys_examined, 4);
    cr_assert_eq(ex.docs_examined, 4);
    cr_assert_eq(ex.returned, 4);
    ex = same((fq){.filter = "{\"age\":{\"$gt\":60}}"});
    cr_assert_str_eq(ex.plan, "IXSCAN age_1");
    cr_assert_eq(ex.docs_examined, 28, "%llu", (unsigned long long)ex.docs_examined);
    /* count over an exact plan reads keys only; it must agree with a scan */
    const char *counts[][2] = {{"{\"age\":{\"$gt\":60}}", "28"}, {"{\"age\":{\"$gte\":20,\"$lt\":22}}", "8"},
                               {"{\"age\":{\"$in\":[19,25]}}", "8"}, {"{\"age\":null}", "0"},
                               {"{\"age\":{\"$gt\":60},\"score\":{\"$lt\":1}}", "4"},
                               {"{\"age\":{\"$gt\":20,\"$lt\":\"x\"}}", "0"}};
    for (size_t i = 0; i < sizeof counts / sizeof counts[0]; i++) {
        size_t fl;
        void *f = J(counts[i][0], &fl);
        uint64_t cnt;
        ndb_errmsg cm = {{0}};
        cr_assert_eq(ndb_doc_count(T.db, "users", f, fl, NULL, &cnt, &cm), NDB_OK);
        char got[32];
        snprintf(got, sizeof got, "%llu", (unsigned long long)cnt);
        cr_assert_str_eq(got, counts[i][1], "count %s", counts[i][0]);
        free(f);
    }
    ex = same((fq){.filter = "{\"age\":{\"$gte\":20,\"$lt\":22}}"});
    cr_assert_eq(ex.docs_examined, 8);
    ex = same((fq){.filter = "{\"age\":{\"$in\":[19,25,25,200]}}"});
    cr_assert_str_eq(ex.plan, "IXSCAN age_1");
    cr_assert_eq(ex.returned, 8);
    ex = same((fq){.filter = "{\"age\":{\"$lte\":\"zz\"}}"}); /* strings: none */
    cr_assert_eq(ex.docs_examined, 0);
    /* compound: equality on city then a range on age */
    ex = same((fq){.filter = "{\"city\":\"SF\",\"age\":{\"$lt\":30}}"});
    cr_assert_str_eq(ex.plan, "IXSCAN city_age");
    cr_assert_eq(ex.docs_examined, ex.returned);
    ex = same((fq){.filter = "{\"city\":{\"$in\":[\"NY\",\"LA\"]},\"age\":{\"$gt\":60}}"});
    cr_assert_str_eq(ex.plan, "IXSCAN city_age");
    /* sort served by the index (no in-memory sort), both directions; ties
     * may come in another order than a scan's, so compare without _id */
    ex = same((fq){.filter = "{\"city\":\"LA\"}", .sort = "{\"age\":-1}", .proj = "{\"age\":1,\"_id\":0}"});
    cr_assert_str_eq(ex.plan, "IXSCAN city_age");
    cr_assert_eq(ex.in_memory_sort, 0);
    ex = same((fq){.filter = "{\"city\":\"LA\"}", .sort = "{\"age\":1}", .limit = 5, .proj = "{\"age\":1,\"_id\":0}"});
    cr_assert_str_eq(ex.plan, "IXSCAN city_age (backward)");
    ex = same((fq){.sort = "{\"age\":1}", .limit = 7, .proj = "{\"age\":1,\"_id\":0}"});
    cr_assert_str_eq(ex.plan, "IXSCAN age_1");
    ex = same((fq){.sort = "{\"age\":-1}", .skip = 3, .limit = 7, .proj = "{\"age\":1,\"_id\":0}"});
    cr_assert_str_eq(ex.plan, "IXSCAN age_1 (backward)");
    cr_assert_eq(ex.docs_examined, 10);
    /* sort on a field with no index: in memory */
    ex = same((fq){.filter = "{\"age\":{\"$gt\":50}}", .sort = "{\"score\":-1,\"_id\":1}"});
    cr_assert_str_eq(ex.plan, "IXSCAN age_1 + SORT");
    /* multikey: tags arrays */
    ex = same((fq){.filter = "{\"tags\":\"t4\"}"});
    cr_assert_str_eq(ex.plan, "IXSCAN tags_1");
    ex = same((fq){.filter = "{\"tags\":{\"$in\":[\"t0\",\"t1\"]}}"});
    cr_assert_str_eq(ex.plan, "IXSCAN tags_1");
    ex = same((fq){.filter = "{\"tags\":{\"$gt\":\"t3\",\"$lt\":\"t1\"}}"}); /* per-element semantics */
    /* _id equality */
    ex = same((fq){.filter = "{\"_id\":\"d007\",\"age\":25}"});
    cr_assert_str_eq(ex.plan, "IDHACK");
    /* an unindexed filter scans */
    ex = same((fq){.filter = "{\"score\":{\"$gt\":3}}"});
    cr_assert_str_eq(ex.plan, "COLLSCAN");
    cr_assert_eq(ex.docs_examined, 200);
    /* a bad hint */
    const char *r = find_json(&T, "users", (fq){.hint = "nope"}, NULL);
    cr_assert(strstr(r, "hint names no index") != NULL, "%s", r);
    ndb_doc_index_info *info;
    size_t n;
    ndb_errmsg m = {{0}};
    cr_assert_eq(ndb_doc_list_indexes(T.db, "users", &info, &n, &m), NDB_OK);
    cr_assert_eq(n, 3);
    cr_assert_str_eq(info[1].fields, "city:1,age:-1");
    cr_assert_eq(info[2].multikey, 1);
    cr_assert_eq(info[0].multikey, 0);
    free(info);
}

/* The _id of every document a covered find returns, page by page (limit 7),
 * resuming from each page's token; appended to out as "id,". */
static void covered_pages(const char *filter, char *out, size_t cap)
{
    size_t fl, pl;
    void *f = J(filter, &fl), *p = J("{\"_id\":1}", &pl);
    void *tok = NULL;
    size_t tl = 0;
    out[0] = 0;
    for (int page = 0; page < 100; page++) {
        ndb_doc_find_opts o = {.filter = f, .filter_len = fl, .projection = p, .projection_len = pl, .limit = 7,
                               .page_token = tok, .page_token_len = tl};
        ndb_doc_cursor *c;
        ndb_errmsg m = {{0}};
        cr_assert_eq(ndb_doc_find(T.db, "users", &o, &c, &m), NDB_OK, "%s", m.text);
        const void *d;
        size_t dl;
        for (;;) {
            cr_assert_eq(ndb_doc_cursor_next(c, &d, &dl, &m), NDB_OK, "%s", m.text);
            if (d == NULL)
                break;
            ndb_doc_val root, id;
            ndb_doc_root(d, dl, &root);
            cr_assert_eq(ndb_doc_get_field(&root, "_id", 3, &id), NDB_OK);
            snprintf(out + strlen(out), cap - strlen(out), "%.*s,", (int)id.u.s.len, id.u.s.ptr);
        }
        ndb_doc_explain ex;
        ndb_doc_cursor_explain(c, &ex);
        cr_assert_eq(ex.docs_examined, 0);
        free(tok);
        cr_assert_eq(ndb_doc_cursor_page_token(c, &tok, &tl), NDB_OK);
        ndb_doc_cursor_free(c);
        if (tl == 0)
            break;
    }
    free(tok);
    free(f);
    free(p);
}

Test(index, an_id_projection_the_index_answers_reads_no_document)
{
    mkindex("{\"age\":1}", NULL, 0, NDB_OK);
    mkindex("{\"tags\":1}", NULL, 0, NDB_OK);
    ndb_doc_explain ex = same((fq){.filter = "{\"age\":{\"$gt\":60}}", .proj = "{\"_id\":1}"});
    cr_assert_str_eq(ex.plan, "IXSCAN age_1");
    cr_assert_eq(ex.returned, 28);
    cr_assert_eq(ex.keys_examined, 28);
    cr_assert_eq(ex.docs_examined, 0);
    ex = same((fq){.filter = "{\"age\":{\"$in\":[19,25]}}", .proj = "{\"_id\":true}", .skip = 3});
    cr_assert_eq(ex.returned, 5);
    cr_assert_eq(ex.docs_examined, 0);
    /* a condition the index does not answer, another field kept, a multikey
     * index: the documents are read, as before */
    ex = same((fq){.filter = "{\"age\":{\"$gt\":60},\"score\":{\"$lt\":1}}", .proj = "{\"_id\":1}"});
    cr_assert_str_eq(ex.plan, "IXSCAN age_1");
    cr_assert_eq(ex.returned, 4);
    cr_assert_eq(ex.docs_examined, 28);
    ex = same((fq){.filter = "{\"age\":{\"$gt\":60}}", .proj = "{\"_id\":1,\"city\":1}"});
    cr_assert_eq(ex.docs_examined, 28);
    ex = same((fq){.filter = "{\"tags\":\"t1\"}", .proj = "{\"_id\":1}"});
    cr_assert_eq(ex.docs_examined, ex.returned);
    /* pages of a covered find resume after their last entry: every match once */
    char paged[4096], want[4096] = "";
    covered_pages("{\"age\":{\"$gte\":40}}", paged, sizeof paged);
    for (int age = 40; age < 68; age++) /* in index order: by age, then _id */
        for (int i = 0; i < 200; i++)
            if (18 + i % 50 == age)
                snprintf(want + strlen(want), sizeof want - strlen(want), "d%03d,", i);
    cr_assert_str_eq(paged, want);
}

Test(index, maintained_by_writes)
{
    mkindex("{\"age\":1}", NULL, 0, NDB_OK);
    ndb_errmsg m = {{0}};
    ndb_doc_explain ex;
    cr_assert_eq(ins(&T, "users", "[{\"_id\":\"new1\",\"age\":1000},{\"_id\":\"new2\"}]", &m), NDB_OK);
    ex = same((fq){.filter = "{\"age\":1000}"});
    cr_assert_eq(ex.returned, 1);
    ex = same((fq){.filter = "{\"age\":null}"}); /* missing is indexed as null */
    cr_assert_str_eq(ex.plan, "IXSCAN age_1");
    cr_assert_eq(ex.returned, 1);
    size_t ul;
    void *u = J("{\"$set\":{\"age\":2000}}", &ul);
    cr_assert_eq(ndb_doc_update(T.db, "users", "new1", 4, u, ul, NULL, &m), NDB_OK);
    free(u);
    cr_assert_eq(same((fq){.filter = "{\"age\":1000}"}).returned, 0);
    cr_assert_eq(same((fq){.filter = "{\"age\":2000}"}).returned, 1);
    size_t fl;
    void *f = J("{\"age\":{\"$lt\":20}}", &fl);
    u = J("{\"$inc\":{\"age\":100}}", &ul);
    ndb_doc_update_result r;
    cr_assert_eq(ndb_doc_update_many(T.db, "users", f, fl, u, ul, 0, NULL, &r, &m), NDB_OK, "%s", m.text);
    cr_assert_eq(r.modified, 8);
    cr_assert_eq(same((fq){.filter = "{\"age\":{\"$lt\":20}}"}).returned, 0);
    cr_assert_eq(same((fq){.filter = "{\"age\":{\"$gte\":118,\"$lt\":120}}"}).returned, 8);
    free(f);
    free(u);
    cr_assert_eq(ndb_doc_delete(T.db, "users", "new1", 4, NULL, &m), NDB_OK);
    cr_assert_eq(same((fq){.filter = "{\"age\":2000}"}).returned, 0);
    f = J("{\"city\":\"SF\"}", &fl);
    uint64_t del;
    cr_assert_eq(ndb_doc_delete_many(T.db, "users", f, fl, NULL, &del, &m), NDB_OK);
    cr_assert_eq(del, 50);
    free(f);
    ex = same((fq){.filter = "{\"age\":{\"$gte\":0}}"});
    cr_assert_eq(ex.keys_examined, ex.returned); /* no stale entries left behind */
    cr_assert_eq(ex.returned, 150);
    /* drop the index: queries scan again */
    cr_assert_eq(ndb_doc_drop_index(T.db, "users", "age_1", &m), NDB_OK);
    cr_assert_eq(ndb_doc_drop_index(T.db, "users", "age_1", &m), NDB_ENOTFOUND);
    cr_assert_str_eq(same((fq){.filter = "{\"age\":30}"}).plan, "COLLSCAN");
    /* indexes survive a reopen */
    mkindex("{\"city\":1}", NULL, 0, NDB_OK);
    tdb_close_only(&T);
    tdb_open_dir(&T);
    cr_assert_str_eq(same((fq){.filter = "{\"city\":\"NY\"}"}).plan, "IXSCAN city_1");
}

Test(index, unique)
{
    ndb_errmsg m = {{0}};
    /* existing duplicates refuse the build, and leave no index behind */
    mkindex("{\"city\":1}", "u_city", 1, NDB_EEXIST);
    ndb_doc_index_info *info;
    size_t n;
    cr_assert_eq(ndb_doc_list_indexes(T.db, "users", &info, &n, &m), NDB_OK);
    cr_assert_eq(n, 0);
    free(info);
    cr_assert_eq(ins(&T, "people", "[{\"_id\":\"a\",\"email\":\"x@y\"},{\"_id\":\"b\",\"email\":\"z@y\"}]", &m), NDB_OK);
    size_t l;
    void *s = J("{\"email\":1}", &l);
    cr_assert_eq(ndb_doc_create_index(T.db, "people", NULL, s, l, &(ndb_doc_index_opts){.unique = 1}, &m), NDB_OK, "%s", m.text);
    cr_assert_eq(ndb_doc_create_index(T.db, "people", NULL, s, l, &(ndb_doc_index_opts){.unique = 1}, &m), NDB_EEXIST);
    cr_assert_eq(ndb_doc_create_index(T.db, "people", "other", s, l, NULL, &m), NDB_EEXIST);
    free(s);
    cr_assert_eq(ins(&T, "people", "[{\"_id\":\"c\",\"email\":\"x@y\"}]", &m), NDB_EEXIST);
    cr_assert(strstr(m.text, "duplicate key in unique index email_1") != NULL, "%s", m.text);
    /* within one batch */
    cr_assert_eq(ins(&T, "people", "[{\"_id\":\"c\",\"email\":\"q@y\"},{\"_id\":\"d\",\"email\":\"q@y\"}]", &m), NDB_EEXIST);
    uint64_t cnt;
    ndb_doc_count(T.db, "people", NULL, 0, NULL, &cnt, &m);
    cr_assert_eq(cnt, 2);
    /* an update into a taken key fails; moving a key frees it in the same batch */
    size_t ul;
    void *u = J("{\"email\":\"x@y\"}", &ul);
    cr_assert_eq(ndb_doc_update(T.db, "people", "b", 1, u, ul, NULL, &m), NDB_EEXIST);
    free(u);
    u = J("{\"email\":\"new@y\"}", &ul);
    cr_assert_eq(ndb_doc_update(T.db, "people", "a", 1, u, ul, NULL, &m), NDB_OK);
    free(u);
    cr_assert_eq(ins(&T, "people", "[{\"_id\":\"c\",\"email\":\"x@y\"}]", &m), NDB_OK, "%s", m.text);
    /* updating a document without changing its key is fine */
    u = J("{\"name\":\"C\"}", &ul);
    cr_assert_eq(ndb_doc_update(T.db, "people", "c", 1, u, ul, NULL, &m), NDB_OK, "%s", m.text);
    free(u);
    ndb_doc_explain ex;
    const char *r = find_json(&T, "people", (fq){.filter = "{\"email\":\"x@y\"}", .proj = "{\"_id\":1}"}, &ex);
    cr_assert_str_eq(r, "[{\"_id\":\"c\"}]");
    cr_assert_str_eq(ex.plan, "IXSCAN email_1");
    /* bad specs */
    void *bad = J("{\"a\":2}", &l);
    cr_assert_eq(ndb_doc_create_index(T.db, "people", NULL, bad, l, NULL, &m), NDB_EINVAL);
    free(bad);
    bad = J("{}", &l);
    cr_assert_eq(ndb_doc_create_index(T.db, "people", NULL, bad, l, NULL, &m), NDB_EINVAL);
    free(bad);
}

Test(index, parallel_arrays_refused)
{
    ndb_errmsg m = {{0}};
    cr_assert_eq(ins(&T, "pa", "[{\"_id\":\"a\",\"x\":[1,2],\"y\":[3,4]}]", &m), NDB_OK);
    size_t l;
    void *s = J("{\"x\":1,\"y\":1}", &l);
    cr_assert_eq(ndb_doc_create_index(T.db, "pa", NULL, s, l, NULL, &m), NDB_EINVAL);
    cr_assert(strstr(m.text, "parallel arrays") != NULL, "%s", m.text);
    free(s);
    s = J("{\"x\":1}", &l);
    cr_assert_eq(ndb_doc_create_index(T.db, "pa", NULL, s, l, NULL, &m), NDB_OK);
    free(s);
    s = J("{\"x\":1,\"z\":1}", &l);
    cr_assert_eq(ndb_doc_create_index(T.db, "pa", NULL, s, l, NULL, &m), NDB_OK);
    free(s);
    /* a later insert with two arrays in the compound index fails atomically */
    cr_assert_eq(ins(&T, "pa", "[{\"_id\":\"b\",\"x\":[1],\"z\":[2,3]}]", &m), NDB_EINVAL);
    uint64_t cnt;
    ndb_doc_count(T.db, "pa", NULL, 0, NULL, &cnt, &m);
    cr_assert_eq(cnt, 1);
}

/* Damaged index entries and a damaged catalog entry: errors, never crashes. */
Test(index, damaged_entries_and_catalog)
{
    mkindex("{\"age\":1,\"city\":-1}", "ac", 0, NDB_OK);
    ndb_errmsg m = {{0}};
    /* find the index's prefix: the catalog's metadata names it */
    ndb_doc_index_info *info;
    size_t n;
    cr_assert_eq(ndb_doc_list_indexes(T.db, "users", &info, &n, &m), NDB_OK);
    cr_assert_eq(n, 1);
    free(info);
    /* index entries live after the collection's own prefix (1): prefix 2 */
    ndb_kv_iter *it;
    cr_assert_eq(ndb_kv_iter_new(T.kv, NULL, "\x02", 1, "\x03", 1, &it), NDB_OK);
    uint8_t keys[20][96];
    size_t kls[20];
    int k = 0;
    for (ndb_kv_iter_seek_first(it); ndb_kv_iter_valid(it) && k < 20; ndb_kv_iter_next(it)) {
        const void *key = ndb_kv_iter_key(it, &kls[k]);
        cr_assert(kls[k] <= sizeof keys[0]);
        memcpy(keys[k], key, kls[k]);
        k++;
    }
    ndb_kv_iter_free(it);
    cr_assert_eq(k, 20);
    unsigned seed = 3;
    for (int i = 0; i < 20; i++) {
        uint8_t bad[96];
        memcpy(bad, keys[i], kls[i]);
        seed = seed * 1103515245 + 12345;
        size_t at = 1 + (seed >> 8) % (kls[i] - 1);
        bad[at] ^= (uint8_t)(1 + (seed >> 20) % 255);
        cr_assert_eq(ndb_kv_delete(T.kv, keys[i], kls[i]), NDB_OK);
        cr_assert_eq(ndb_kv_put(T.kv, bad, kls[i] - (i % 3 == 0), "", 0), NDB_OK);
    }
    for (int q = 0; q < 3; q++) {
        const char *filters[] = {"{\"age\":{\"$gte\":18}}", "{\"age\":{\"$in\":[18,19,20]},\"city\":\"SF\"}",
                                 "{\"age\":19}"};
        (void)find_json(&T, "users", (fq){.filter = filters[q]}, NULL);
        size_t fl;
        void *f = J(filters[q], &fl);
        uint64_t cnt;
        (void)ndb_doc_count(T.db, "users", f, fl, NULL, &cnt, &m);
        free(f);
    }
    (void)find_json(&T, "users", (fq){.sort = "{\"age\":-1,\"city\":1}", .limit = 5}, NULL);
    /* a damaged catalog entry fails the open cleanly */
    uint8_t ck[] = {0, 'c', 'u', 's', 'e', 'r', 's'};
    uint8_t junk[] = {0xD1, 0x08, 0x05, 0, 0, 0, 0x01, 0, 0, 0, 0x06, 0x70};
    cr_assert_eq(ndb_kv_put(T.kv, ck, sizeof ck, junk, sizeof junk), NDB_OK);
    ndb_doc_close(T.db);
    ndb_doc_options o;
    ndb_doc_options_init(&o);
    o.log = quiet_log;
    cr_assert_eq(ndb_doc_open(T.kv, &o, &T.db, &m), NDB_ECORRUPT);
    cr_assert(strstr(m.text, "users") != NULL, "%s", m.text);
    /* put the database back so teardown can close it */
    cr_assert_eq(ndb_kv_delete(T.kv, ck, sizeof ck), NDB_OK);
    cr_assert_eq(ndb_doc_open(T.kv, &o, &T.db, &m), NDB_OK, "%s", m.text);
}

/* One walk of dotted paths (path_walk) for the matcher, sort keys and index
 * keys: an array element lacking the indexed field is indexed as null, so an
 * indexed {"x.v": null} finds the documents the matcher says match. */
Test(index, null_for_an_array_element_lacking_the_field)
{
    ndb_errmsg m = {{0}};
    cr_assert_eq(ins(&T, "users", "[{\"_id\":\"n1\",\"x\":[{\"v\":1},{\"w\":2}]},{\"_id\":\"n2\",\"x\":[{\"v\":3}]},"
                                  "{\"_id\":\"n3\",\"x\":[1,2]},{\"_id\":\"n4\",\"x\":{\"w\":1}}]", &m), NDB_OK, "%s", m.text);
    mkindex("{\"x.v\":1}", "xv", 0, NDB_OK);
    ndb_doc_explain ex = same((fq){.filter = "{\"x.v\":null}"});
    cr_assert_str_eq(ex.index, "xv");
    /* n1 (an element without v), n3 (scalars only), n4 (no v), and every user without x */
    cr_assert_str_eq(find_json(&T, "users", (fq){.filter = "{\"x.v\":null,\"_id\":{\"$gte\":\"n\"}}",
                                                  .proj = "{\"_id\":1}", .sort = "{\"_id\":1}"}, NULL),
                     "[{\"_id\":\"n1\"},{\"_id\":\"n3\"},{\"_id\":\"n4\"}]");
    same((fq){.filter = "{\"x.v\":{\"$gte\":1}}", .sort = "{\"x.v\":1}"});
}
