/* Tests for what engine/doc offers the layers above it: namespaces
 * (ndb_doc_open_ns), collections with metadata and key prefixes of another
 * layer (ndb_doc_create_collection_ext), transactions that commit documents
 * with keys of the caller's own (ndb_doc_txn_*), reads at a snapshot. */
#include <pthread.h>
#include <unistd.h>

#include "env.h"
#include "helpers.h"

static uint64_t count_range(tdb *t, const uint8_t *prefix, size_t plen)
{
    uint8_t hi[16];
    memcpy(hi, prefix, plen);
    hi[plen - 1]++;
    ndb_kv_iter *it;
    cr_assert_eq(ndb_kv_iter_new(t->kv, NULL, prefix, plen, hi, plen, &it), NDB_OK);
    uint64_t n = 0;
    for (ndb_kv_iter_seek_first(it); ndb_kv_iter_valid(it); ndb_kv_iter_next(it))
        n++;
    ndb_kv_iter_free(it);
    return n;
}

static char *get_json(ndb_doc_db *db, const char *coll, const char *id)
{
    void *d;
    size_t l;
    ndb_errmsg m = {{0}};
    if (ndb_doc_get(db, coll, id, strlen(id), &d, &l, &m) != NDB_OK)
        return NULL;
    char *j;
    size_t jl;
    cr_assert_eq(ndb_doc_to_json(d, l, &j, &jl), NDB_OK);
    free(d);
    return j;
}

Test(ns, same_name_two_namespaces)
{
    tdb t;
    tdb_open(&t);
    ndb_errmsg m = {{0}};
    ndb_doc_db *v;
    cr_assert_eq(ndb_doc_open_ns(t.db, NDB_DOC_NS_VECTORS, &v, &m), NDB_OK, "%s", m.text);
    cr_assert_eq(ins(&t, "products", "[{\"_id\":\"p1\",\"name\":\"Laptop\"}]", &m), NDB_OK, "%s", m.text);
    cr_assert_eq(ndb_doc_create_collection(v, "products", &m), NDB_OK, "%s", m.text);
    ndb_doc_coll_info *info;
    size_t n;
    cr_assert_eq(ndb_doc_list_collections(v, &info, &n, &m), NDB_OK);
    cr_assert_eq(n, 1);
    cr_assert_eq(info[0].count, 0, "the vector namespace's products is a different collection");
    free(info);
    /* dropping one leaves the other intact */
    cr_assert_eq(ndb_doc_drop_collection(v, "products", &m), NDB_OK);
    char *j = get_json(t.db, "products", "p1");
    cr_assert_not_null(j);
    free(j);
    cr_assert_eq(ndb_doc_drop_collection(v, "products", &m), NDB_ENOTFOUND);
    ndb_doc_close(v);
    /* both catalogs survive a reopen, apart */
    cr_assert_eq(ndb_doc_open_ns(t.db, NDB_DOC_NS_VECTORS, &v, &m), NDB_OK);
    cr_assert_eq(ndb_doc_create_collection(v, "other", &m), NDB_OK);
    ndb_doc_close(v);
    tdb_close_only(&t);
    tdb_open_dir(&t);
    cr_assert_eq(ndb_doc_open_ns(t.db, NDB_DOC_NS_VECTORS, &v, &m), NDB_OK);
    cr_assert_eq(ndb_doc_list_collections(v, &info, &n, &m), NDB_OK);
    cr_assert_eq(n, 1);
    cr_assert_str_eq(info[0].name, "other");
    free(info);
    cr_assert_eq(ndb_doc_list_collections(t.db, &info, &n, &m), NDB_OK);
    cr_assert_eq(n, 1);
    cr_assert_str_eq(info[0].name, "products");
    free(info);
    ndb_doc_close(v);
    tdb_close(&t);
}

Test(ns, ext_metadata_and_prefixes)
{
    tdb t;
    tdb_open(&t);
    ndb_errmsg m = {{0}};
    ndb_doc_db *v;
    cr_assert_eq(ndb_doc_open_ns(t.db, NDB_DOC_NS_VECTORS, &v, &m), NDB_OK);
    size_t ml;
    void *meta = J("{\"dims\":3,\"metric\":\"cosine\"}", &ml);
    cr_assert_eq(ndb_doc_create_collection_ext(v, "e", meta, ml, 5, &m), NDB_EINVAL);
    cr_assert_eq(ndb_doc_create_collection_ext(v, "e", "x", 1, 2, &m), NDB_EINVAL);
    cr_assert_eq(ndb_doc_create_collection_ext(v, "e", meta, ml, 2, &m), NDB_OK, "%s", m.text);
    cr_assert_eq(ndb_doc_create_collection_ext(v, "e", meta, ml, 2, &m), NDB_EEXIST);
    cr_assert_eq(ndb_doc_create_collection(v, "plain", &m), NDB_OK);
    ndb_doc_ext x;
    cr_assert_eq(ndb_doc_collection_ext(v, "plain", &x, &m), NDB_EINVAL);
    cr_assert_eq(ndb_doc_collection_ext(v, "nope", &x, &m), NDB_ENOTFOUND);
    cr_assert_eq(ndb_doc_collection_ext(v, "e", &x, &m), NDB_OK, "%s", m.text);
    cr_assert_eq(x.nprefixes, 2);
    cr_assert_neq(x.prefix_id[0], x.prefix_id[1]);
    cr_assert_eq(x.meta_len, ml);
    cr_assert_eq(memcmp(x.meta, meta, ml), 0);
    /* keys under the prefixes commit with a document, in one transaction */
    ndb_doc_txn *tx;
    cr_assert_eq(ndb_doc_txn_begin(v, "e", NULL, &tx, &m), NDB_OK, "%s", m.text);
    size_t dl;
    void *doc = J("{\"_id\":\"a\",\"k\":1}", &dl);
    char id[NDB_DOC_MAX_ID + 1];
    cr_assert_eq(ndb_doc_txn_insert(tx, doc, dl, id, &m), NDB_OK, "%s", m.text);
    cr_assert_str_eq(id, "a");
    uint8_t key[16];
    memcpy(key, x.prefix[0], x.prefix_len[0]);
    memcpy(key + x.prefix_len[0], "a", 1);
    cr_assert_eq(ndb_doc_txn_put(tx, key, x.prefix_len[0] + 1u, "vec", 3), NDB_OK);
    memcpy(key, x.prefix[1], x.prefix_len[1]);
    memcpy(key + x.prefix_len[1], "a", 1);
    cr_assert_eq(ndb_doc_txn_put(tx, key, x.prefix_len[1] + 1u, "map", 3), NDB_OK);
    cr_assert_eq(ndb_doc_txn_commit(tx, &m), NDB_OK, "%s", m.text);
    cr_assert_eq(ndb_doc_txn_end(tx, &m), NDB_OK);
    cr_assert_eq(count_range(&t, x.prefix[0], x.prefix_len[0]), 1);
    cr_assert_eq(count_range(&t, x.prefix[1], x.prefix_len[1]), 1);
    ndb_doc_close(v);
    /* the metadata survives a reopen; a drop deletes every key under the prefixes */
    tdb_close_only(&t);
    tdb_open_dir(&t);
    cr_assert_eq(ndb_doc_open_ns(t.db, NDB_DOC_NS_VECTORS, &v, &m), NDB_OK);
    ndb_doc_ext y;
    cr_assert_eq(ndb_doc_collection_ext(v, "e", &y, &m), NDB_OK);
    cr_assert_eq(y.prefix_id[1], x.prefix_id[1]);
    cr_assert_eq(memcmp(y.meta, meta, ml), 0);
    cr_assert_eq(ndb_doc_drop_collection(v, "e", &m), NDB_OK);
    cr_assert_eq(count_range(&t, x.prefix[0], x.prefix_len[0]), 0);
    cr_assert_eq(count_range(&t, x.prefix[1], x.prefix_len[1]), 0);
    /* a new collection of the same name gets prefixes never used before */
    cr_assert_eq(ndb_doc_create_collection_ext(v, "e", meta, ml, 2, &m), NDB_OK);
    ndb_doc_ext z;
    cr_assert_eq(ndb_doc_collection_ext(v, "e", &z, &m), NDB_OK);
    cr_assert(z.prefix_id[0] > x.prefix_id[1]);
    free(x.meta);
    free(y.meta);
    free(z.meta);
    free(doc);
    free(meta);
    ndb_doc_close(v);
    tdb_close(&t);
}

Test(txn, replace_delete_and_discard)
{
    tdb t;
    tdb_open(&t);
    ndb_errmsg m = {{0}};
    ndb_doc_txn *tx;
    cr_assert_eq(ndb_doc_txn_begin(t.db, "c", NULL, &tx, &m), NDB_ENOTFOUND);
    cr_assert_eq(ndb_doc_create_collection(t.db, "c", &m), NDB_OK);
    size_t kl;
    void *kspec = J("{\"k\":1}", &kl);
    cr_assert_eq(ndb_doc_create_index(t.db, "c", NULL, kspec, kl, &(ndb_doc_index_opts){.unique = 1}, &m), NDB_OK, "%s", m.text);
    size_t l1, l2, l3;
    void *d1 = J("{\"k\":1,\"v\":\"one\"}", &l1), *d2 = J("{\"v\":\"two\",\"k\":2}", &l2),
         *bad = J("{\"_id\":\"other\"}", &l3);
    /* replace of a missing id inserts */
    int inserted = -1;
    cr_assert_eq(ndb_doc_txn_begin(t.db, "c", NULL, &tx, &m), NDB_OK);
    cr_assert_eq(ndb_doc_txn_replace(tx, "x", 1, d1, l1, &inserted, &m), NDB_OK, "%s", m.text);
    cr_assert_eq(inserted, 1);
    cr_assert_eq(ndb_doc_txn_commit(tx, &m), NDB_OK);
    cr_assert_eq(ndb_doc_txn_end(tx, &m), NDB_OK);
    char *before = get_json(t.db, "c", "x");
    cr_assert_not_null(before);
    cr_assert(strstr(before, "\"_id\":\"x\",\"_created_at\"") == before + 1, "%s", before);
    usleep(2000);
    /* replace keeps _created_at, refreshes _updated_at, follows the new field order, keeps the index exact */
    cr_assert_eq(ndb_doc_txn_begin(t.db, "c", NULL, &tx, &m), NDB_OK);
    cr_assert_eq(ndb_doc_txn_replace(tx, "x", 1, bad, l3, NULL, &m), NDB_EINVAL);
    cr_assert(strstr(m.text, "_id differs") != NULL, "%s", m.text);
    cr_assert_eq(ndb_doc_txn_replace(tx, "x", 1, d2, l2, &inserted, &m), NDB_OK, "%s", m.text);
    cr_assert_eq(inserted, 0);
    cr_assert_eq(ndb_doc_txn_commit(tx, &m), NDB_OK);
    cr_assert_eq(ndb_doc_txn_commit(tx, &m), NDB_EINVAL);
    cr_assert_eq(ndb_doc_txn_end(tx, &m), NDB_OK);
    char *after = get_json(t.db, "c", "x");
    cr_assert_eq(strncmp(before, after, strlen("{\"_id\":\"x\",\"_created_at\":\"2026-01-01T00:00:00.000Z\"")), 0,
                 "%s vs %s", before, after);
    cr_assert_str_eq(strip_ts(after), "{\"_id\":\"x\",\"v\":\"two\",\"k\":2}");
    uint64_t cnt;
    cr_assert_eq(ndb_doc_count(t.db, "c", kspec, kl, NULL, &cnt, &m), NDB_OK);
    cr_assert_eq(cnt, 0, "the old index entry is gone");
    cr_assert_eq(ndb_doc_count(t.db, "c", NULL, 0, NULL, &cnt, &m), NDB_OK);
    cr_assert_eq(cnt, 1, "a replace does not count twice");
    /* the unique index holds across a replace */
    cr_assert_eq(ndb_doc_txn_begin(t.db, "c", NULL, &tx, &m), NDB_OK);
    cr_assert_eq(ndb_doc_txn_replace(tx, "y", 1, d2, l2, NULL, &m), NDB_EEXIST);
    cr_assert_eq(ndb_doc_txn_end(tx, &m), NDB_OK);
    /* uncommitted work is discarded; delete of a missing id is NOT_FOUND */
    cr_assert_eq(ndb_doc_txn_begin(t.db, "c", NULL, &tx, &m), NDB_OK);
    cr_assert_eq(ndb_doc_txn_delete(tx, "nope", 4, &m), NDB_ENOTFOUND);
    cr_assert_eq(ndb_doc_txn_delete(tx, "x", 1, &m), NDB_OK);
    cr_assert_eq(ndb_doc_txn_end(tx, &m), NDB_OK);
    char *still = get_json(t.db, "c", "x");
    cr_assert_not_null(still);
    free(still);
    cr_assert_eq(ndb_doc_txn_begin(t.db, "c", NULL, &tx, &m), NDB_OK);
    cr_assert_eq(ndb_doc_txn_delete(tx, "x", 1, &m), NDB_OK);
    cr_assert_eq(ndb_doc_txn_commit(tx, &m), NDB_OK);
    cr_assert_eq(ndb_doc_txn_end(tx, &m), NDB_OK);
    cr_assert_null(get_json(t.db, "c", "x"));
    cr_assert_eq(ndb_doc_count(t.db, "c", NULL, 0, NULL, &cnt, &m), NDB_OK);
    cr_assert_eq(cnt, 0);
    free(before);
    free(after);
    free(kspec);
    free(d1);
    free(d2);
    free(bad);
    tdb_close(&t);
}

Test(txn, reads_at_a_snapshot)
{
    tdb t;
    tdb_open(&t);
    ndb_errmsg m = {{0}};
    cr_assert_eq(ins(&t, "c", "[{\"_id\":\"a\",\"n\":1},{\"_id\":\"b\",\"n\":2}]", &m), NDB_OK);
    ndb_kv_snapshot *snap;
    cr_assert_eq(ndb_kv_snapshot_acquire(t.kv, &snap), NDB_OK);
    cr_assert_eq(ndb_doc_delete(t.db, "c", "a", 1, NULL, &m), NDB_OK);
    void *d;
    size_t l;
    cr_assert_eq(ndb_doc_get_at(t.db, snap, "c", "a", 1, &d, &l, &m), NDB_OK);
    free(d);
    cr_assert_eq(ndb_doc_get_at(t.db, NULL, "c", "a", 1, &d, &l, &m), NDB_ENOTFOUND);
    ndb_doc_find_opts o = {.snapshot = snap};
    ndb_doc_cursor *c;
    cr_assert_eq(ndb_doc_find(t.db, "c", &o, &c, &m), NDB_OK);
    int n = 0;
    const void *doc;
    while (ndb_doc_cursor_next(c, &doc, &l, &m) == NDB_OK && doc != NULL)
        n++;
    ndb_doc_cursor_free(c);
    cr_assert_eq(n, 2, "a find at the snapshot still sees the deleted document");
    ndb_kv_snapshot_release(t.kv, snap);
    tdb_close(&t);
}

/* A collection's writers are serialised only up to their kv append: the next
 * writer appends while the previous one's fsync runs, and both ride the
 * group commit. Here the fsyncs are held: the second insert's batch reaches
 * the log while the first waits in its fsync, and neither is visible to
 * readers until the fsync is released. Then a writer that must read (an
 * explicit _id) sees the earlier, now durable, inserts. */
typedef struct ins_arg {
    ndb_doc_db *db;
    const char *json;
    ndb_status st;
} ins_arg;

static void *insert_one(void *p)
{
    ins_arg *a = p;
    ndb_errmsg m = {{0}};
    size_t l;
    void *d = J(a->json, &l);
    const void *dp = d;
    a->st = ndb_doc_insert(a->db, "c", &dp, &l, 1, NULL, NULL, &m);
    free(d);
    return NULL;
}

static uint64_t appended(ndb_kv *kv) /* bytes appended to the WAL */
{
    ndb_kv_stats s;
    cr_assert_eq(ndb_kv_stats_get(kv, &s), NDB_OK);
    return s.wal_bytes;
}

Test(txn, the_next_writer_appends_while_the_last_one_waits_for_its_fsync, .timeout = 60)
{
    char dir[64];
    snprintf(dir, sizeof dir, "/tmp/ndbdoc-XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
    kv_fault_env *fe = kv_env_fault_new(kv_env_posix());
    ndb_kv_options ko;
    ndb_kv_options_init(&ko);
    ko.durability = NDB_KV_SYNC;
    ko.env = kv_env_fault_env(fe);
    ndb_kv *kv;
    ndb_doc_db *db;
    ndb_errmsg m = {{0}};
    cr_assert_eq(ndb_kv_open(dir, &ko, &kv, &m), NDB_OK, "%s", m.text);
    ndb_doc_options o;
    ndb_doc_options_init(&o);
    o.log = quiet_log;
    cr_assert_eq(ndb_doc_open(kv, &o, &db, &m), NDB_OK, "%s", m.text);
    cr_assert_eq(ndb_doc_create_collection(db, "c", &m), NDB_OK, "%s", m.text);

    kv_env_fault_hold_syncs(fe, 1);
    uint64_t held = kv_env_fault_held_syncs(fe);
    pthread_t t1, t2;
    ins_arg a1 = {db, "{\"n\":1}", NDB_EIO}, a2 = {db, "{\"n\":2}", NDB_EIO};
    pthread_create(&t1, NULL, insert_one, &a1);
    while (kv_env_fault_held_syncs(fe) == held) /* the first insert waits in its fsync */
        usleep(1000);
    uint64_t before = appended(kv);
    pthread_create(&t2, NULL, insert_one, &a2);
    while (appended(kv) == before) /* no deadline: the suite's timeout is the backstop */
        usleep(1000);
    ndb_doc_find_opts all = {0};
    ndb_doc_cursor *cur;
    cr_assert_eq(ndb_doc_find(db, "c", &all, &cur, &m), NDB_OK, "%s", m.text);
    const void *d = NULL;
    size_t dl;
    cr_assert_eq(ndb_doc_cursor_next(cur, &d, &dl, &m), NDB_OK, "%s", m.text);
    cr_assert_null(d, "nothing is visible before its fsync");
    ndb_doc_cursor_free(cur);
    kv_env_fault_hold_syncs(fe, 0);
    pthread_join(t1, NULL);
    pthread_join(t2, NULL);
    cr_assert_eq(a1.st, NDB_OK);
    cr_assert_eq(a2.st, NDB_OK);
    uint64_t cnt = 0;
    cr_assert_eq(ndb_doc_count(db, "c", NULL, 0, NULL, &cnt, &m), NDB_OK, "%s", m.text);
    cr_assert_eq(cnt, 2);

    /* a duplicate _id is still refused right after its first insert */
    size_t l;
    void *x = J("{\"_id\":\"x\"}", &l);
    const void *xp = x;
    cr_assert_eq(ndb_doc_insert(db, "c", &xp, &l, 1, NULL, NULL, &m), NDB_OK, "%s", m.text);
    cr_assert_eq(ndb_doc_insert(db, "c", &xp, &l, 1, NULL, NULL, &m), NDB_EEXIST);
    free(x);
    ndb_doc_close(db);
    cr_assert_eq(ndb_kv_close(kv), NDB_OK);
    kv_env_fault_free(fe);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    cr_assert_eq(system(cmd), 0);
}
