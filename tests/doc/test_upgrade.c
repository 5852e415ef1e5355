/* Index keys written by the previous release (numbers as 8 bytes of a
 * double; fixtures/README.md) are rebuilt in the current encoding when the
 * database opens, and queries through the rebuilt indexes agree with
 * collection scans, also for int64 values the old encoding could not tell
 * apart. */
#include "helpers.h"

#ifndef FIXTURE_DIR
#error "FIXTURE_DIR names tests/doc/fixtures"
#endif

static int rebuilds;

static void count_log(void *ctx, const char *line)
{
    (void)ctx;
    if (strstr(line, "key encoding 1 -> 2, rebuilding") != NULL)
        rebuilds++;
}

static void open_counting(tdb *t)
{
    ndb_kv_options ko;
    ndb_kv_options_init(&ko);
    ko.durability = NDB_KV_NONE;
    ndb_errmsg m = {{0}};
    cr_assert_eq(ndb_kv_open(t->dir, &ko, &t->kv, &m), NDB_OK, "kv open: %s", m.text);
    ndb_doc_options o;
    ndb_doc_options_init(&o);
    o.log = count_log;
    cr_assert_eq(ndb_doc_open(t->kv, &o, &t->db, &m), NDB_OK, "doc open: %s", m.text);
}

/* The query through the planner and as a forced scan: same documents in the
 * same order (sorted by _id unless q sorts); returns the planner's plan. */
static const char *agree(tdb *t, fq q)
{
    static char plan[sizeof ((ndb_doc_explain *)0)->plan];
    ndb_doc_explain ex;
    fq a = q, b = q;
    if (!q.sort)
        a.sort = b.sort = "{\"_id\":1}";
    b.hint = "_id";
    char got[1 << 16];
    snprintf(got, sizeof got, "%s", find_json(t, "people", a, &ex));
    cr_assert_str_eq(got, find_json(t, "people", b, NULL), "filter %s sort %s", q.filter, q.sort);
    cr_assert(strncmp(got, "ERR", 3) != 0 && strcmp(got, "[]") != 0, "%s: %s", q.filter, got);
    find_json(t, "people", q, &ex);
    snprintf(plan, sizeof plan, "%s", ex.plan);
    return plan;
}

Test(upgrade, old_index_keys_are_rebuilt_at_open_and_answer_like_scans)
{
    tdb t;
    snprintf(t.dir, sizeof t.dir, "/tmp/ndbdoc-up-XXXXXX");
    cr_assert_not_null(mkdtemp(t.dir));
    char cmd[512];
    snprintf(cmd, sizeof cmd, "cp -r '%s/kenc1-datadir/kv/.' '%s/'", FIXTURE_DIR, t.dir);
    cr_assert_eq(system(cmd), 0);
    open_counting(&t);
    cr_assert_eq(rebuilds, 3, "each of the three indexes is rebuilt once");
    cr_assert_str_eq(agree(&t, (fq){.filter = "{\"age\":{\"$gt\":20}}"}), "IXSCAN age_1");
    agree(&t, (fq){.filter = "{\"age\":{\"$gte\":\"s1\"}}"});
    agree(&t, (fq){.filter = "{\"name\":\"n3\"}", .sort = "{\"score\":-1}"});
    agree(&t, (fq){.filter = "{\"big\":{\"$lt\":10000000070}}"});
    /* int64 beyond 2^53: apart in the new keys, as in compare */
    ndb_errmsg m = {{0}};
    cr_assert_eq(ins(&t, "people", "[{\"_id\":\"x1\",\"big\":9007199254740993},"
                                   "{\"_id\":\"x2\",\"big\":9007199254740992},"
                                   "{\"_id\":\"x3\",\"big\":9007199254740994}]", &m), NDB_OK, "%s", m.text);
    cr_assert_str_eq(find_json(&t, "people", (fq){.filter = "{\"big\":{\"$gt\":9007199254740992}}", .proj = "{\"_id\":1}",
                                                   .sort = "{\"big\":1}"}, NULL),
                     "[{\"_id\":\"x1\"},{\"_id\":\"x3\"}]");
    agree(&t, (fq){.filter = "{\"big\":9007199254740993}"});
    /* the unique index tells them apart too */
    cr_assert_eq(ins(&t, "people", "[{\"_id\":\"x4\",\"big\":9007199254740993}]", &m), NDB_EEXIST);
    tdb_close_only(&t);
    rebuilds = 0;
    open_counting(&t);
    cr_assert_eq(rebuilds, 0, "a rebuilt index is not rebuilt again");
    agree(&t, (fq){.filter = "{\"age\":{\"$lt\":30}}"});
    tdb_close(&t);
}
