/* TTL indexes (ixbuild.c, catalog.c) and expiry (ttl.c): what expires and
 * what never does, bounded batches, the definition across a reopen, and the
 * definitions MongoDB refuses. Expiry is driven with an explicit "now". */
#include "helpers.h"

#define NOW INT64_C(1800000000000) /* 2027-01-15, milliseconds */

static ndb_status ttl_index(tdb *t, const char *coll, const char *spec, int64_t seconds, ndb_errmsg *m)
{
    size_t l;
    void *s = J(spec, &l);
    ndb_doc_index_opts o = {.ttl = 1, .expire_after_seconds = seconds};
    ndb_status st = ndb_doc_create_index(t->db, coll, NULL, s, l, &o, m);
    free(s);
    return st;
}

/* {"_id": id, "exp": <value>} inserted, value as Extended JSON. */
static void put(tdb *t, const char *id, const char *value)
{
    char js[256];
    snprintf(js, sizeof js, "[{\"_id\":\"%s\",\"exp\":%s}]", id, value);
    ndb_errmsg m = {{0}};
    cr_assert_eq(ins(t, "s", js, &m), NDB_OK, "%s: %s", js, m.text);
}

static const char *date(int64_t ms)
{
    static char buf[8][64];
    static int i;
    i = (i + 1) % 8;
    snprintf(buf[i], sizeof buf[i], "{\"$date\":{\"$numberLong\":\"%lld\"}}", (long long)ms);
    return buf[i];
}

static const char *ids(tdb *t)
{
    return find_json(t, "s", (fq){.proj = "{\"_id\":1}"}, NULL);
}

Test(ttl, expires_dates_past_the_limit_and_nothing_else)
{
    tdb t;
    tdb_open(&t);
    ndb_errmsg m = {{0}};
    cr_assert_eq(ttl_index(&t, "s", "{\"exp\":1}", 60, &m), NDB_OK, "%s", m.text);
    put(&t, "old", date(NOW - 61000));
    put(&t, "edge", date(NOW - 60000)); /* exactly the limit: not yet (MongoDB: older than) */
    put(&t, "new", date(NOW));
    char arr[160];
    snprintf(arr, sizeof arr, "[%s, %s]", date(NOW + 3600000), date(NOW - 3600000));
    put(&t, "arr", arr); /* an array expires with its earliest date */
    put(&t, "str", "\"2000-01-01T00:00:00Z\"");
    put(&t, "num", "0");
    put(&t, "null", "null");
    ndb_errmsg m2 = {{0}};
    cr_assert_eq(ins(&t, "s", "[{\"_id\":\"missing\"}]", &m2), NDB_OK);
    uint64_t n = 99;
    cr_assert_eq(ndb_doc_expire(t.db, NOW, 1000, 0, &n, &m), NDB_OK, "%s", m.text);
    cr_assert_eq(n, 2);
    cr_assert_str_eq(ids(&t), "[{\"_id\":\"edge\"},{\"_id\":\"missing\"},{\"_id\":\"new\"},{\"_id\":\"null\"},"
                               "{\"_id\":\"num\"},{\"_id\":\"str\"}]");
    /* a second later "edge" has passed the limit */
    cr_assert_eq(ndb_doc_expire(t.db, NOW + 1000, 1000, 0, &n, &m), NDB_OK);
    cr_assert_eq(n, 1);
    tdb_close(&t);
}

Test(ttl, batches_and_a_budget)
{
    tdb t;
    tdb_open(&t);
    ndb_errmsg m = {{0}};
    cr_assert_eq(ttl_index(&t, "s", "{\"exp\":1}", 0, &m), NDB_OK, "%s", m.text);
    for (int i = 0; i < 25; i++) {
        char id[16];
        snprintf(id, sizeof id, "d%02d", i);
        put(&t, id, date(NOW - 1000 - i));
    }
    uint64_t n;
    cr_assert_eq(ndb_doc_expire(t.db, NOW, 4, 10, &n, &m), NDB_OK, "%s", m.text);
    cr_assert_eq(n, 10, "the budget stops the pass");
    uint64_t left;
    cr_assert_eq(ndb_doc_count(t.db, "s", NULL, 0, NULL, &left, &m), NDB_OK);
    cr_assert_eq(left, 15);
    cr_assert_eq(ndb_doc_expire(t.db, NOW, 4, 0, &n, &m), NDB_OK);
    cr_assert_eq(n, 15, "batches of 4 until none is left");
    cr_assert_eq(ndb_doc_expire(t.db, NOW, 4, 0, &n, &m), NDB_OK);
    cr_assert_eq(n, 0);
    cr_assert_eq(ndb_doc_expire(t.db, NOW, 0, 0, &n, &m), NDB_EINVAL);
    tdb_close(&t);
}

Test(ttl, the_definition_survives_a_reopen_and_bad_ones_are_refused)
{
    tdb t;
    tdb_open(&t);
    ndb_errmsg m = {{0}};
    cr_assert_eq(ttl_index(&t, "s", "{\"exp\":1}", 3600, &m), NDB_OK, "%s", m.text);
    size_t l;
    void *plain = J("{\"other\":1}", &l);
    cr_assert_eq(ndb_doc_create_index(t.db, "s", NULL, plain, l, NULL, &m), NDB_OK);
    free(plain);
    cr_assert_eq(ttl_index(&t, "s", "{\"a\":1,\"b\":1}", 10, &m), NDB_EINVAL);
    cr_assert(strstr(m.text, "one field") != NULL, "%s", m.text);
    cr_assert_eq(ttl_index(&t, "s", "{\"_id\":1}", 10, &m), NDB_EINVAL);
    cr_assert_eq(ttl_index(&t, "s", "{\"c\":1}", -1, &m), NDB_EINVAL);
    cr_assert_eq(ttl_index(&t, "s", "{\"c\":1}", NDB_DOC_MAX_TTL + 1, &m), NDB_EINVAL);
    tdb_close_only(&t);
    tdb_open_dir(&t);
    ndb_doc_index_info *ix;
    size_t n;
    cr_assert_eq(ndb_doc_list_indexes(t.db, "s", &ix, &n, &m), NDB_OK);
    cr_assert_eq(n, 2);
    cr_assert_str_eq(ix[0].name, "exp_1");
    cr_assert_eq(ix[0].ttl, 1);
    cr_assert_eq(ix[0].expire_after_seconds, 3600);
    cr_assert_eq(ix[1].ttl, 0);
    free(ix);
    put(&t, "old", date(NOW - 3601000));
    uint64_t del;
    cr_assert_eq(ndb_doc_expire(t.db, NOW, 100, 0, &del, &m), NDB_OK);
    cr_assert_eq(del, 1);
    tdb_close(&t);
}
