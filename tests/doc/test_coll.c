/* Tests for engine/doc/coll.c over a real ndb_kv: collections, inserts, ids,
 * find (filter, projection, sort, skip, limit, page tokens), count, updates,
 * deletes, reopen. */
#include "helpers.h"

#define USERS                                                                                    \
    "[{\"_id\":\"u1\",\"name\":\"Alice\",\"age\":28,\"city\":\"SF\",\"tags\":[\"py\",\"db\"]},"  \
    "{\"_id\":\"u2\",\"name\":\"Bob\",\"age\":35,\"city\":\"NY\",\"tags\":[\"go\"]},"            \
    "{\"_id\":\"u3\",\"name\":\"Carol\",\"age\":22,\"city\":\"SF\"},"                            \
    "{\"_id\":\"u4\",\"name\":\"Dan\",\"age\":41,\"city\":\"LA\",\"profile\":{\"age\":7}}]"

Test(coll, names_and_lifecycle)
{
    tdb t;
    tdb_open(&t);
    ndb_errmsg m = {{0}};
    cr_assert_eq(ndb_doc_create_collection(t.db, "bad name", &m), NDB_EINVAL);
    cr_assert(strstr(m.text, "invalid collection name") != NULL);
    cr_assert_eq(ndb_doc_create_collection(t.db, "", &m), NDB_EINVAL);
    char longname[80];
    memset(longname, 'a', 65);
    longname[65] = 0;
    cr_assert_eq(ndb_doc_create_collection(t.db, longname, &m), NDB_EINVAL);
    longname[64] = 0;
    cr_assert_eq(ndb_doc_create_collection(t.db, longname, &m), NDB_OK);
    cr_assert_eq(ndb_doc_create_collection(t.db, "Users_1-x", &m), NDB_OK);
    cr_assert_eq(ndb_doc_create_collection(t.db, "Users_1-x", &m), NDB_EEXIST);
    cr_assert_eq(ins(&t, "auto", USERS, &m), NDB_OK, "%s", m.text); /* created on insert */
    ndb_doc_coll_info *info;
    size_t n;
    cr_assert_eq(ndb_doc_list_collections(t.db, &info, &n, &m), NDB_OK);
    cr_assert_eq(n, 3);
    cr_assert_str_eq(info[0].name, "Users_1-x");
    cr_assert_str_eq(info[2].name, "auto");
    cr_assert_eq(info[2].count, 4);
    cr_assert(info[2].bytes > 100);
    free(info);
    cr_assert_eq(ndb_doc_drop_collection(t.db, "Users_1-x", &m), NDB_OK);
    cr_assert_eq(ndb_doc_drop_collection(t.db, "Users_1-x", &m), NDB_ENOTFOUND);
    /* reopen: catalog, counts and documents survive */
    tdb_close_only(&t);
    tdb_open_dir(&t);
    cr_assert_eq(ndb_doc_list_collections(t.db, &info, &n, &m), NDB_OK);
    cr_assert_eq(n, 2);
    cr_assert_str_eq(info[1].name, "auto");
    cr_assert_eq(info[1].count, 4);
    free(info);
    cr_assert_str_eq(find_json(&t, "auto", (fq){.filter = "{\"_id\":\"u2\"}"}, NULL),
                     "[{\"_id\":\"u2\",\"name\":\"Bob\",\"age\":35,\"city\":\"NY\",\"tags\":[\"go\"]}]");
    /* drop removes the data: a new collection of the same name is empty */
    cr_assert_eq(ndb_doc_drop_collection(t.db, "auto", &m), NDB_OK);
    cr_assert_eq(ins(&t, "auto", "[{\"x\":1}]", &m), NDB_OK);
    uint64_t cnt;
    cr_assert_eq(ndb_doc_count(t.db, "auto", NULL, 0, NULL, &cnt, &m), NDB_OK);
    cr_assert_eq(cnt, 1);
    cr_assert_str_eq(find_json(&t, "auto", (fq){.filter = "{\"_id\":\"u2\"}"}, NULL), "[]");
    tdb_close(&t);
}

Test(coll, replicated_writes_take_distinct_ids_within_one_entry)
{
    /* a cluster node runs an entry's commands each between set_clock(entry) and set_clock(0): the
     * ids go on counting within the entry and start again, as on every node, with the next */
    tdb t;
    tdb_open(&t);
    ndb_errmsg m = {{0}};
    size_t l;
    void *d = J("{\"v\":1}", &l);
    const void *docs[] = {d};
    char *got[3];
    uint64_t prefix[3] = {7, 7, 8};
    for (int i = 0; i < 3; i++) {
        char **ids;
        ndb_doc_set_clock(t.db, INT64_C(1700000000000), prefix[i]);
        cr_assert_eq(ndb_doc_insert(t.db, "c", docs, &l, 1, NULL, &ids, &m), NDB_OK, "%s", m.text);
        ndb_doc_set_clock(t.db, 0, 0);
        got[i] = strdup(ids[0]);
        ndb_doc_ids_free(ids, 1);
    }
    cr_assert_str_neq(got[0], got[1], "two commands of one entry took the same id");
    cr_assert_str_eq(got[0] + 18, "000000");
    cr_assert_str_eq(got[1] + 18, "000001");
    cr_assert_str_eq(got[2] + 18, "000000", "the next entry's counter starts at 0: %s", got[2]);
    uint64_t n = 0;
    cr_assert_eq(ndb_doc_count(t.db, "c", NULL, 0, NULL, &n, &m), NDB_OK, "%s", m.text);
    cr_assert_eq(n, 3);
    for (int i = 0; i < 3; i++)
        free(got[i]);
    free(d);
    tdb_close(&t);
}

Test(coll, insert_ids_and_timestamps)
{
    tdb t;
    tdb_open(&t);
    ndb_errmsg m = {{0}};
    size_t l1, l2;
    void *d1 = J("{\"name\":\"Alice\",\"age\":28}", &l1);
    void *d2 = J("{\"_id\":\"mine\",\"_created_at\":\"x\",\"v\":1}", &l2);
    const void *docs[] = {d1, d2};
    size_t lens[] = {l1, l2};
    char **ids;
    cr_assert_eq(ndb_doc_insert(t.db, "users", docs, lens, 2, NULL, &ids, &m), NDB_OK, "%s", m.text);
    cr_assert_eq(strlen(ids[0]), 24);
    for (int i = 0; i < 24; i++)
        cr_assert(strchr("0123456789abcdef", ids[0][i]) != NULL);
    cr_assert_str_eq(ids[1], "mine");
    void *g;
    size_t gl;
    cr_assert_eq(ndb_doc_get(t.db, "users", ids[0], 24, &g, &gl, &m), NDB_OK);
    char *js;
    size_t jl;
    ndb_doc_to_json(g, gl, &js, &jl);
    /* _id, _created_at, _updated_at first, then the fields in order */
    cr_assert(strncmp(js, "{\"_id\":\"", 8) == 0, "%s", js);
    char *ca = strstr(js, "\"_created_at\":\"");
    cr_assert_not_null(ca);
    cr_assert_eq(strlen(ca + 15) > 24 && ca[15 + 4] == '-' && ca[15 + 10] == 'T' && ca[15 + 23] == 'Z', 1,
                 "%s", js);
    cr_assert(strstr(js, "\"_updated_at\":") != NULL);
    cr_assert(strstr(js, ",\"name\":\"Alice\",\"age\":28}") != NULL, "%s", js);
    free(js);
    free(g);
    /* a second generated id sorts after the first (time-ordered) */
    char **ids2;
    cr_assert_eq(ndb_doc_insert(t.db, "users", docs, lens, 1, NULL, &ids2, &m), NDB_OK);
    cr_assert(strcmp(ids2[0], ids[0]) > 0);
    /* a duplicate _id fails the whole batch */
    size_t l3;
    void *d3 = J("{\"_id\":\"fresh\"}", &l3);
    const void *docs2[] = {d3, d2};
    size_t lens2[] = {l3, l2};
    cr_assert_eq(ndb_doc_insert(t.db, "users", docs2, lens2, 2, NULL, NULL, &m), NDB_EEXIST);
    cr_assert(strstr(m.text, "duplicate _id 'mine'") != NULL, "%s", m.text);
    cr_assert_eq(ndb_doc_get(t.db, "users", "fresh", 5, &g, &gl, &m), NDB_ENOTFOUND);
    /* duplicates inside one batch */
    const void *docs3[] = {d3, d3};
    cr_assert_eq(ndb_doc_insert(t.db, "users", docs3, lens2, 1, NULL, NULL, &m), NDB_OK);
    size_t l4;
    void *d4 = J("{\"_id\":\"twice\"}", &l4);
    const void *docs4[] = {d4, d4};
    size_t lens4[] = {l4, l4};
    cr_assert_eq(ndb_doc_insert(t.db, "users", docs4, lens4, 2, NULL, NULL, &m), NDB_EEXIST);
    /* bad _id, non-object, corrupt bytes, too big */
    size_t l5;
    void *d5 = J("{\"_id\":5}", &l5);
    cr_assert_eq(ndb_doc_insert(t.db, "users", (const void *const *)&d5, &l5, 1, NULL, NULL, &m), NDB_EINVAL);
    cr_assert(strstr(m.text, "_id must be a string") != NULL, "%s", m.text);
    size_t l6;
    void *d6 = J("[1]", &l6);
    cr_assert_eq(ndb_doc_insert(t.db, "users", (const void *const *)&d6, &l6, 1, NULL, NULL, &m), NDB_EINVAL);
    size_t bad = l1 - 1;
    cr_assert_eq(ndb_doc_insert(t.db, "users", (const void *const *)&d1, &bad, 1, NULL, NULL, &m), NDB_EINVAL);
    uint64_t cnt;
    cr_assert_eq(ndb_doc_count(t.db, "users", NULL, 0, NULL, &cnt, &m), NDB_OK);
    cr_assert_eq(cnt, 4);
    ndb_doc_ids_free(ids, 2);
    ndb_doc_ids_free(ids2, 1);
    free(d1); free(d2); free(d3); free(d4); free(d5); free(d6);
    tdb_close(&t);
}

/* Documents from a builder skip the second walk of their encoding, not the
 * rest: reserved fields anywhere among the others are replaced and the rest
 * keep their order, and the size and object-at-the-top checks still refuse. */
Test(coll, insert_built)
{
    tdb t;
    tdb_open(&t);
    ndb_errmsg m = {{0}};
    size_t l1, l2;
    void *d1 = J("{\"a\":1,\"_created_at\":\"x\",\"b\":[2,{\"c\":3}],\"_id\":\"k\",\"_updated_at\":0,\"d\":4}", &l1);
    void *d2 = J("{}", &l2);
    const void *docs[] = {d1, d2};
    size_t lens[] = {l1, l2};
    char **ids;
    cr_assert_eq(ndb_doc_insert_built(t.db, "c", docs, lens, 2, NULL, &ids, &m), NDB_OK, "%s", m.text);
    cr_assert_str_eq(ids[0], "k");
    cr_assert_eq(strlen(ids[1]), 24);
    void *g;
    size_t gl;
    cr_assert_eq(ndb_doc_get(t.db, "c", "k", 1, &g, &gl, &m), NDB_OK);
    cr_assert_eq(ndb_doc_validate(g, gl, &m), NDB_OK, "%s", m.text);
    char *js;
    size_t jl;
    cr_assert_eq(ndb_doc_to_json(g, gl, &js, &jl), NDB_OK);
    const char *head = "{\"_id\":\"k\",\"_created_at\":\"";
    cr_assert(strncmp(js, head, strlen(head)) == 0, "%s", js);
    cr_assert(strstr(js, "\"x\"") == NULL, "%s", js);
    cr_assert(strstr(js, "Z\",\"a\":1,\"b\":[2,{\"c\":3}],\"d\":4}") != NULL, "%s", js);
    free(js);
    free(g);
    ndb_doc_ids_free(ids, 2);
    /* an array at the top, and a document over the size limit, are refused */
    ndb_doc_builder *b;
    cr_assert_eq(ndb_doc_builder_new(&b), NDB_OK);
    ndb_doc_begin_array(b);
    ndb_doc_int(b, 1);
    ndb_doc_end_array(b);
    const void *arr;
    size_t al;
    cr_assert_eq(ndb_doc_builder_finish(b, &arr, &al), NDB_OK);
    cr_assert_eq(ndb_doc_insert_built(t.db, "c", &arr, &al, 1, NULL, NULL, &m), NDB_EINVAL);
    cr_assert(strstr(m.text, "is not an object") != NULL, "%s", m.text);
    size_t big = t.db->opt.max_doc_bytes;
    ndb_doc_builder_set_limit(b, big + 64);
    ndb_doc_builder_reset(b);
    ndb_doc_begin_object(b);
    ndb_doc_key(b, "s", 1);
    char *s = malloc(big);
    cr_assert_not_null(s);
    memset(s, 'x', big);
    ndb_doc_string(b, s, big);
    ndb_doc_end_object(b);
    const void *bd;
    size_t bl;
    cr_assert_eq(ndb_doc_builder_finish(b, &bd, &bl), NDB_OK);
    cr_assert_eq(ndb_doc_insert_built(t.db, "c", &bd, &bl, 1, NULL, NULL, &m), NDB_ETOOBIG);
    free(s);
    ndb_doc_builder_free(b);
    uint64_t cnt;
    cr_assert_eq(ndb_doc_count(t.db, "c", NULL, 0, NULL, &cnt, &m), NDB_OK);
    cr_assert_eq(cnt, 2);
    free(d1);
    free(d2);
    tdb_close(&t);
}

/* try_get finds what get finds, but answers NDB_EBUSY instead of waiting
 * while the catalog is being changed (create or drop holds its lock). */
Test(coll, try_get_never_waits)
{
    tdb t;
    tdb_open(&t);
    ndb_errmsg m = {{0}};
    size_t l;
    void *d = J("{\"_id\":\"a\",\"v\":1}", &l);
    const void *docs[] = {d};
    char **ids;
    cr_assert_eq(ndb_doc_insert(t.db, "c", docs, &l, 1, NULL, &ids, &m), NDB_OK, "%s", m.text);
    ndb_doc_ids_free(ids, 1);
    free(d);
    void *g;
    size_t gl;
    cr_assert_eq(ndb_doc_try_get(t.db, "c", "a", 1, &g, &gl, &m), NDB_OK);
    free(g);
    cr_assert_eq(ndb_doc_try_get(t.db, "c", "b", 1, &g, &gl, &m), NDB_ENOTFOUND);
    cr_assert_eq(ndb_doc_try_get(t.db, "nope", "a", 1, &g, &gl, &m), NDB_ENOTFOUND);
    pthread_rwlock_wrlock(&t.db->lock);
    cr_assert_eq(ndb_doc_try_get(t.db, "c", "a", 1, &g, &gl, &m), NDB_EBUSY);
    pthread_rwlock_unlock(&t.db->lock);
    cr_assert_eq(ndb_doc_get(t.db, "c", "a", 1, &g, &gl, &m), NDB_OK);
    free(g);
    tdb_close(&t);
}

Test(coll, size_limit)
{
    tdb t;
    tdb_open(&t);
    ndb_errmsg m = {{0}};
    size_t big = 17u << 20;
    char *js = malloc(big + 32);
    strcpy(js, "{\"s\":\"");
    memset(js + 6, 'x', big);
    strcpy(js + 6 + big, "\"}");
    void *d;
    size_t dl;
    ndb_status st = ndb_doc_from_json(js, strlen(js), &d, &dl, &m);
    cr_assert_eq(st, NDB_ETOOBIG, "%s", m.text);
    /* just under the limit works; a merge update past it is refused */
    js[6 + (15u << 20)] = 0;
    strcat(js, "\"}");
    cr_assert_eq(ndb_doc_from_json(js, strlen(js), &d, &dl, &m), NDB_OK);
    cr_assert_eq(ndb_doc_insert(t.db, "big", (const void *const *)&d, &dl, 1, NULL, NULL, &m), NDB_OK,
                 "%s", m.text);
    free(d);
    free(js);
    tdb_close(&t);
}

Test(coll, find_filter_sort_project)
{
    tdb t;
    tdb_open(&t);
    ndb_errmsg m = {{0}};
    cr_assert_eq(ins(&t, "users", USERS, &m), NDB_OK, "%s", m.text);
    cr_assert_str_eq(find_json(&t, "users", (fq){.filter = "{\"age\":{\"$gt\":25}}", .proj = "{\"name\":1,\"_id\":0}"}, NULL),
                     "[{\"name\":\"Alice\"},{\"name\":\"Bob\"},{\"name\":\"Dan\"}]");
    cr_assert_str_eq(find_json(&t, "users", (fq){.sort = "{\"age\":-1}", .proj = "{\"age\":1}"}, NULL),
                     "[{\"_id\":\"u4\",\"age\":41},{\"_id\":\"u2\",\"age\":35},"
                     "{\"_id\":\"u1\",\"age\":28},{\"_id\":\"u3\",\"age\":22}]");
    cr_assert_str_eq(find_json(&t, "users", (fq){.sort = "{\"city\":1,\"age\":-1}", .proj = "{\"_id\":1}"}, NULL),
                     "[{\"_id\":\"u4\"},{\"_id\":\"u2\"},{\"_id\":\"u1\"},{\"_id\":\"u3\"}]");
    cr_assert_str_eq(find_json(&t, "users", (fq){.sort = "{\"age\":1}", .skip = 1, .limit = 2, .proj = "{\"_id\":1}"}, NULL),
                     "[{\"_id\":\"u1\"},{\"_id\":\"u2\"}]");
    cr_assert_str_eq(find_json(&t, "users", (fq){.skip = 3, .proj = "{\"_id\":1}"}, NULL), "[{\"_id\":\"u4\"}]");
    cr_assert_str_eq(find_json(&t, "users", (fq){.filter = "{\"tags\":\"go\"}", .proj = "{\"_id\":1}"}, NULL),
                     "[{\"_id\":\"u2\"}]");
    cr_assert_str_eq(find_json(&t, "users", (fq){.filter = "{\"profile.age\":{\"$lt\":10}}", .proj = "{\"_id\":1}"}, NULL),
                     "[{\"_id\":\"u4\"}]");
    cr_assert_str_eq(find_json(&t, "users", (fq){.filter = "{\"$or\":[{\"city\":\"LA\"},{\"age\":22}]}", .proj = "{\"_id\":1}"}, NULL),
                     "[{\"_id\":\"u3\"},{\"_id\":\"u4\"}]");
    /* errors name the offending part */
    const char *r = find_json(&t, "users", (fq){.filter = "{\"age\":{\"$foo\":1}}"}, NULL);
    cr_assert(strstr(r, "unknown operator $foo at filter.age") != NULL, "%s", r);
    r = find_json(&t, "nope", (fq){0}, NULL); /* a missing collection is empty */
    cr_assert_str_eq(r, "[]");
    r = find_json(&t, "nope", (fq){.filter = "{\"a\":{\"$bad\":1}}"}, NULL);
    cr_assert(strstr(r, "unknown operator $bad") != NULL, "%s", r);
    r = find_json(&t, "bad name", (fq){0}, NULL);
    cr_assert(strstr(r, "invalid collection name") != NULL, "%s", r);
    r = find_json(&t, "users", (fq){.sort = "{\"age\":0}"}, NULL);
    cr_assert(strstr(r, "sort.age must be 1 or -1") != NULL, "%s", r);
    /* count, find_one, get */
    size_t fl;
    void *f = J("{\"city\":\"SF\"}", &fl);
    uint64_t n;
    cr_assert_eq(ndb_doc_count(t.db, "users", f, fl, NULL, &n, &m), NDB_OK);
    cr_assert_eq(n, 2);
    cr_assert_eq(ndb_doc_count(t.db, "users", NULL, 0, NULL, &n, &m), NDB_OK);
    cr_assert_eq(n, 4);
    cr_assert_eq(ndb_doc_count(t.db, "missing", NULL, 0, NULL, &n, &m), NDB_OK);
    cr_assert_eq(n, 0);
    void *d;
    size_t dl;
    ndb_doc_find_opts o = {.filter = f, .filter_len = fl};
    cr_assert_eq(ndb_doc_find_one(t.db, "users", &o, &d, &dl, &m), NDB_OK);
    ndb_doc_val root, v;
    ndb_doc_root(d, dl, &root);
    cr_assert_eq(ndb_doc_get_field(&root, "_id", 3, &v), NDB_OK);
    cr_assert_eq(memcmp(v.u.s.ptr, "u1", 2), 0);
    free(d);
    free(f);
    f = J("{\"city\":\"Paris\"}", &fl);
    o.filter = f;
    o.filter_len = fl;
    cr_assert_eq(ndb_doc_find_one(t.db, "users", &o, &d, &dl, &m), NDB_ENOTFOUND);
    free(f);
    tdb_close(&t);
}

static void page_through(tdb *t, const char *sort, const char *want_ids)
{
    size_t sl = 0;
    void *s = sort ? J(sort, &sl) : NULL;
    void *tok = NULL;
    size_t tl = 0;
    char got[512] = "";
    for (int page = 0; page < 10; page++) {
        ndb_doc_find_opts o = {.sort = s, .sort_len = sl, .limit = 2, .page_token = tok,
                               .page_token_len = tl};
        ndb_doc_cursor *c;
        ndb_errmsg m = {{0}};
        cr_assert_eq(ndb_doc_find(t->db, "users", &o, &c, &m), NDB_OK, "%s", m.text);
        int k = 0;
        for (;;) {
            const void *d;
            size_t dl;
            cr_assert_eq(ndb_doc_cursor_next(c, &d, &dl, &m), NDB_OK);
            if (d == NULL)
                break;
            ndb_doc_val root, v;
            ndb_doc_root(d, dl, &root);
            ndb_doc_get_field(&root, "_id", 3, &v);
            strncat(got, v.u.s.ptr, v.u.s.len);
            strcat(got, " ");
            k++;
        }
        free(tok);
        cr_assert_eq(ndb_doc_cursor_page_token(c, &tok, &tl), NDB_OK);
        ndb_doc_cursor_free(c);
        if (k < 2 || tl == 0)
            break;
    }
    free(tok);
    free(s);
    cr_assert_str_eq(got, want_ids);
}

Test(coll, page_tokens)
{
    tdb t;
    tdb_open(&t);
    ndb_errmsg m = {{0}};
    cr_assert_eq(ins(&t, "users", USERS, &m), NDB_OK);
    cr_assert_eq(ins(&t, "users", "[{\"_id\":\"u5\",\"age\":30}]", &m), NDB_OK);
    page_through(&t, NULL, "u1 u2 u3 u4 u5 ");
    page_through(&t, "{\"age\":1}", "u3 u1 u5 u2 u4 ");
    page_through(&t, "{\"_id\":-1}", "u5 u4 u3 u2 u1 "); /* scan backwards, no sort */
    ndb_doc_explain ex;
    cr_assert_str_eq(find_json(&t, "users", (fq){.sort = "{\"_id\":-1}", .proj = "{\"_id\":1}"}, &ex),
                     "[{\"_id\":\"u5\"},{\"_id\":\"u4\"},{\"_id\":\"u3\"},{\"_id\":\"u2\"},{\"_id\":\"u1\"}]");
    cr_assert_str_eq(ex.plan, "COLLSCAN");
    cr_assert_eq(ex.in_memory_sort, 0);
    /* _id ranges bound the scan */
    cr_assert_str_eq(find_json(&t, "users", (fq){.filter = "{\"_id\":{\"$gt\":\"u2\",\"$lte\":\"u4\"}}", .proj = "{\"_id\":1}"}, &ex),
                     "[{\"_id\":\"u3\"},{\"_id\":\"u4\"}]");
    cr_assert_eq(ex.docs_examined, 2);
    cr_assert_str_eq(find_json(&t, "users", (fq){.filter = "{\"_id\":{\"$gte\":\"u2\",\"$lt\":\"u4\"}}", .sort = "{\"_id\":-1}", .proj = "{\"_id\":1}"}, &ex),
                     "[{\"_id\":\"u3\"},{\"_id\":\"u2\"}]");
    cr_assert_eq(ex.docs_examined, 2);
    size_t il;
    void *spec = J("{\"age\":1}", &il);
    cr_assert_eq(ndb_doc_create_index(t.db, "users", NULL, spec, il, NULL, &m), NDB_OK, "%s", m.text);
    page_through(&t, "{\"age\":-1}", "u4 u2 u5 u1 u3 "); /* index scan, backwards */
    /* a token from another query is refused */
    void *tok;
    size_t tl;
    ndb_doc_find_opts o = {.limit = 1};
    ndb_doc_cursor *c;
    cr_assert_eq(ndb_doc_find(t.db, "users", &o, &c, &m), NDB_OK);
    const void *d;
    size_t dl;
    ndb_doc_cursor_next(c, &d, &dl, &m);
    ndb_doc_cursor_page_token(c, &tok, &tl);
    ndb_doc_cursor_free(c);
    ndb_doc_find_opts o2 = {.sort = spec, .sort_len = il, .page_token = tok, .page_token_len = tl};
    cr_assert_eq(ndb_doc_find(t.db, "users", &o2, &c, &m), NDB_EINVAL);
    uint8_t junk[3] = {1, 2, 3};
    o.page_token = junk;
    o.page_token_len = 3;
    cr_assert_eq(ndb_doc_find(t.db, "users", &o, &c, &m), NDB_EINVAL);
    free(tok);
    free(spec);
    tdb_close(&t);
}

Test(coll, update_and_delete)
{
    tdb t;
    tdb_open(&t);
    ndb_errmsg m = {{0}};
    cr_assert_eq(ins(&t, "users", USERS, &m), NDB_OK);
    size_t ul;
    void *u = J("{\"age\":29}", &ul);
    cr_assert_eq(ndb_doc_update(t.db, "users", "u1", 2, u, ul, NULL, &m), NDB_OK, "%s", m.text);
    cr_assert_str_eq(find_json(&t, "users", (fq){.filter = "{\"_id\":\"u1\"}"}, NULL),
                     "[{\"_id\":\"u1\",\"name\":\"Alice\",\"age\":29,\"city\":\"SF\",\"tags\":[\"py\",\"db\"]}]");
    cr_assert_eq(ndb_doc_update(t.db, "users", "zz", 2, u, ul, NULL, &m), NDB_ENOTFOUND);
    free(u);
    /* _updated_at moves, _created_at stays */
    void *g;
    size_t gl;
    ndb_doc_get(t.db, "users", "u1", 2, &g, &gl, &m);
    ndb_doc_val root, ca, ua;
    ndb_doc_root(g, gl, &root);
    ndb_doc_get_field(&root, "_created_at", 11, &ca);
    ndb_doc_get_field(&root, "_updated_at", 11, &ua);
    cr_assert_eq(ca.type, NDB_DOC_STRING);
    cr_assert(memcmp(ua.u.s.ptr, ca.u.s.ptr, ca.u.s.len) >= 0);
    free(g);
    u = J("{\"$inc\":{\"age\":1},\"$push\":{\"tags\":\"c\"}}", &ul);
    cr_assert_eq(ndb_doc_update(t.db, "users", "u1", 2, u, ul, NULL, &m), NDB_OK, "%s", m.text);
    free(u);
    cr_assert_str_eq(find_json(&t, "users", (fq){.filter = "{\"_id\":\"u1\"}", .proj = "{\"age\":1,\"tags\":1}"}, NULL),
                     "[{\"_id\":\"u1\",\"age\":30,\"tags\":[\"py\",\"db\",\"c\"]}]");
    u = J("{\"$inc\":{\"name\":1}}", &ul);
    cr_assert_eq(ndb_doc_update(t.db, "users", "u1", 2, u, ul, NULL, &m), NDB_EINVAL);
    cr_assert(strstr(m.text, "non-numeric") != NULL, "%s", m.text);
    free(u);
    /* update_many with merge and with operators; upsert */
    size_t fl;
    void *f = J("{\"city\":\"SF\"}", &fl);
    u = J("{\"country\":\"USA\"}", &ul);
    ndb_doc_update_result r;
    cr_assert_eq(ndb_doc_update_many(t.db, "users", f, fl, u, ul, 0, NULL, &r, &m), NDB_OK, "%s", m.text);
    cr_assert_eq(r.matched, 2);
    cr_assert_eq(r.modified, 2);
    cr_assert_eq(ndb_doc_update_many(t.db, "users", f, fl, u, ul, 0, NULL, &r, &m), NDB_OK);
    cr_assert_eq(r.matched, 2);
    cr_assert_eq(r.modified, 0);
    free(u);
    free(f);
    cr_assert_str_eq(find_json(&t, "users", (fq){.filter = "{\"country\":\"USA\"}", .proj = "{\"_id\":1}"}, NULL),
                     "[{\"_id\":\"u1\"},{\"_id\":\"u3\"}]");
    f = J("{\"name\":\"Zed\"}", &fl);
    u = J("{\"$set\":{\"age\":50}}", &ul);
    cr_assert_eq(ndb_doc_update_many(t.db, "users", f, fl, u, ul, 1, NULL, &r, &m), NDB_OK, "%s", m.text);
    cr_assert_eq(r.matched, 0);
    cr_assert_eq(strlen(r.upserted_id), 24);
    free(u);
    free(f);
    cr_assert_str_eq(find_json(&t, "users", (fq){.filter = "{\"name\":\"Zed\"}", .proj = "{\"_id\":0}"}, NULL),
                     "[{\"name\":\"Zed\",\"age\":50}]");
    /* deletes */
    cr_assert_eq(ndb_doc_delete(t.db, "users", "u2", 2, NULL, &m), NDB_OK);
    cr_assert_eq(ndb_doc_delete(t.db, "users", "u2", 2, NULL, &m), NDB_ENOTFOUND);
    f = J("{\"age\":{\"$gte\":30}}", &fl);
    uint64_t del;
    cr_assert_eq(ndb_doc_delete_many(t.db, "users", f, fl, NULL, &del, &m), NDB_OK);
    cr_assert_eq(del, 3, "deleted %llu", (unsigned long long)del); /* u1 (30), u4, Zed */
    free(f);
    uint64_t n;
    ndb_doc_count(t.db, "users", NULL, 0, NULL, &n, &m);
    cr_assert_eq(n, 1);
    cr_assert_str_eq(find_json(&t, "users", (fq){.proj = "{\"_id\":1}"}, NULL), "[{\"_id\":\"u3\"}]");
    tdb_close(&t);
}

Test(coll, corrupt_stored_document)
{
    tdb t;
    tdb_open(&t);
    ndb_errmsg m = {{0}};
    cr_assert_eq(ins(&t, "users", USERS, &m), NDB_OK);
    /* overwrite u2's stored bytes behind the document layer's back: the
     * collection's prefix is the first byte of its document keys */
    ndb_kv_iter *it;
    cr_assert_eq(ndb_kv_iter_new(t.kv, NULL, "\x01", 1, "\x02", 1, &it), NDB_OK);
    ndb_kv_iter_seek_first(it);
    cr_assert(ndb_kv_iter_valid(it));
    size_t kl;
    const void *k = ndb_kv_iter_key(it, &kl);
    uint8_t key[16];
    memcpy(key, k, kl);
    ndb_kv_iter_free(it);
    cr_assert_eq(kl, 3);
    cr_assert_eq(memcmp(key + 1, "u1", 2), 0);
    uint8_t junk[] = {0xD1, 0x08, 0xFF, 0xFF, 0xFF, 0x7F, 0x01, 0, 0, 0, 0x01};
    cr_assert_eq(ndb_kv_put(t.kv, key, kl, junk, sizeof junk), NDB_OK);
    void *d;
    size_t dl;
    cr_assert_eq(ndb_doc_get(t.db, "users", "u1", 2, &d, &dl, &m), NDB_ECORRUPT);
    cr_assert(strstr(m.text, "corrupt") != NULL, "%s", m.text);
    const char *r = find_json(&t, "users", (fq){.filter = "{\"age\":{\"$gt\":1}}"}, NULL);
    cr_assert(strstr(r, "ERR -4") != NULL, "%s", r);
    size_t ul;
    void *u = J("{\"age\":1}", &ul);
    cr_assert_eq(ndb_doc_update(t.db, "users", "u1", 2, u, ul, NULL, &m), NDB_ECORRUPT);
    free(u);
    /* other documents are still readable by id */
    cr_assert_eq(ndb_doc_get(t.db, "users", "u2", 2, &d, &dl, &m), NDB_OK);
    free(d);
    /* and the damaged one can be deleted */
    cr_assert_eq(ndb_doc_delete(t.db, "users", "u1", 2, NULL, &m), NDB_OK);
    cr_assert_str_eq(find_json(&t, "users", (fq){.filter = "{\"age\":{\"$gt\":1}}", .proj = "{\"_id\":1}"}, NULL),
                     "[{\"_id\":\"u2\"},{\"_id\":\"u3\"},{\"_id\":\"u4\"}]");
    tdb_close(&t);
}

/* Stored documents with random byte flips: every read path either works or
 * reports an error; nothing reads out of bounds (run under ASan). */
Test(coll, mutated_stored_documents)
{
    tdb t;
    tdb_open(&t);
    ndb_errmsg m = {{0}};
    cr_assert_eq(ins(&t, "users", USERS, &m), NDB_OK);
    size_t sl;
    void *spec = J("{\"age\":1}", &sl);
    cr_assert_eq(ndb_doc_create_index(t.db, "users", NULL, spec, sl, NULL, &m), NDB_OK);
    free(spec);
    /* the stored bytes of u1..u4 */
    uint8_t keys[4][8];
    size_t klens[4];
    uint8_t *vals[4];
    size_t vlens[4];
    ndb_kv_iter *it;
    cr_assert_eq(ndb_kv_iter_new(t.kv, NULL, "\x01", 1, "\x02", 1, &it), NDB_OK);
    int n = 0;
    for (ndb_kv_iter_seek_first(it); ndb_kv_iter_valid(it) && n < 4; ndb_kv_iter_next(it), n++) {
        const void *k = ndb_kv_iter_key(it, &klens[n]);
        memcpy(keys[n], k, klens[n]);
        const void *v = ndb_kv_iter_value(it, &vlens[n]);
        vals[n] = malloc(vlens[n]);
        memcpy(vals[n], v, vlens[n]);
    }
    ndb_kv_iter_free(it);
    cr_assert_eq(n, 4);
    const char *pipes[] = {
        "[{\"$group\":{\"_id\":\"$city\",\"n\":{\"$sum\":1},\"a\":{\"$avg\":\"$age\"},\"p\":{\"$push\":\"$tags\"}}}]",
        "[{\"$unwind\":\"$tags\"},{\"$sort\":{\"tags\":1}},{\"$project\":{\"x\":{\"$concat\":[\"$name\",\"!\"]}}}]",
        ("[{\"$match\":{\"tags\":{\"$elemMatch\":{\"$regex\":\"p\"}}}},{\"$set\":{\"p.q\":\"$profile.age\",\"t\":{\"$size\":{\"$ifNull\":[\"$tags\",[]]}}}},"
        "{\"$group\":{\"_id\":{\"c\":\"$city\"},\"s\":{\"$addToSet\":\"$tags\"},\"m\":{\"$min\":\"$p\"},\"l\":{\"$last\":\"$$ROOT\"}}}]"),
        "[{\"$lookup\":{\"from\":\"users\",\"localField\":\"city\",\"foreignField\":\"city\",\"as\":\"same\"}},{\"$unwind\":{\"path\":\"$same\",\"includeArrayIndex\":\"i\"}},{\"$count\":\"n\"}]",
    };
    unsigned seed = 7;
    for (int round = 0; round < 600; round++) {
        for (int d = 0; d < 4; d++) {
            uint8_t *copy = malloc(vlens[d]);
            memcpy(copy, vals[d], vlens[d]);
            /* most rounds damage one document with one byte, so the others
             * keep the queries going past it; some damage all of them */
            int flips = round % 4 == 0 ? 3 : (d == round % 4 ? 1 : 0);
            for (int f = 0; f < flips; f++) {
                seed = seed * 1103515245 + 12345;
                size_t at = 1 + (seed >> 8) % (vlens[d] - 1);
                copy[at] = (uint8_t)(seed >> 20);
            }
            cr_assert_eq(ndb_kv_put(t.kv, keys[d], klens[d], copy, vlens[d]), NDB_OK);
            free(copy);
        }
        (void)find_json(&t, "users", (fq){.filter = "{\"tags\":{\"$in\":[\"py\",\"go\"]},\"name\":{\"$regex\":\"a\"}}"}, NULL);
        (void)find_json(&t, "users", (fq){.sort = "{\"city\":1,\"age\":-1}", .proj = "{\"profile.age\":1,\"tags\":0}"}, NULL);
        (void)find_json(&t, "users", (fq){.filter = "{\"age\":{\"$gt\":20}}"}, NULL); /* via the index */
        for (size_t p = 0; p < sizeof pipes / sizeof pipes[0]; p++)
            (void)agg_json(&t, "users", pipes[p]);
        size_t ml, fl2;
        void *mu = J("{\"$pull\":{\"tags\":{\"$in\":[\"z\"]}},\"$inc\":{\"age\":0},\"$rename\":{\"profile.age\":\"pa\"}}", &ml);
        void *mf = J("{\"age\":{\"$gte\":0}}", &fl2);
        ndb_doc_update_result ur;
        (void)ndb_doc_update_many(t.db, "users", mf, fl2, mu, ml, 0, NULL, &ur, &m);
        free(mu);
        free(mf);
        void *d;
        size_t dl;
        if (ndb_doc_get(t.db, "users", "u2", 2, &d, &dl, &m) == NDB_OK)
            free(d);
        size_t ul;
        void *u = J("{\"$set\":{\"x\":1},\"$push\":{\"tags\":\"z\"}}", &ul);
        (void)ndb_doc_update(t.db, "users", "u3", 2, u, ul, NULL, &m);
        free(u);
    }
    for (int d = 0; d < 4; d++)
        free(vals[d]);
    tdb_close(&t);
}
