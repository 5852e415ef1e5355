/* Concurrency tests for engine/doc: many threads on one ndb_doc_db handle
 * (writers on shared and separate collections, readers streaming cursors,
 * unique-index races, collection creation races). Labelled `concurrency` so
 * the TSan run selects them. */
#include <pthread.h>

#include "helpers.h"

static tdb T;
#define THREADS 4
#define PER 300

typedef struct warg {
    int id;
    int dup_wins;
} warg;

static void *writer(void *p)
{
    warg *a = p;
    ndb_errmsg m = {{0}};
    ndb_doc_builder *b;
    ndb_doc_builder_new(&b);
    for (int i = 0; i < PER; i++) {
        /* a shared collection, created on first insert by whichever thread
         * gets there first */
        ndb_doc_builder_reset(b);
        ndb_doc_begin_object(b);
        ndb_doc_key(b, "t", 1);
        ndb_doc_int(b, a->id);
        ndb_doc_key(b, "i", 1);
        ndb_doc_int(b, i);
        ndb_doc_key(b, "email", 5);
        char e[32];
        int el = snprintf(e, sizeof e, "u%d@x", i); /* every thread races for the same emails */
        ndb_doc_string(b, e, (size_t)el);
        ndb_doc_end_object(b);
        const void *d;
        size_t dl;
        cr_assert_eq(ndb_doc_builder_finish(b, &d, &dl), NDB_OK);
        ndb_status st = ndb_doc_insert(T.db, "uniq", &d, &dl, 1, NULL, NULL, &m);
        cr_assert(st == NDB_OK || st == NDB_EEXIST, "insert: %d %s", st, m.text);
        if (st == NDB_OK)
            a->dup_wins++;
        st = ndb_doc_insert(T.db, "shared", &d, &dl, 1, NULL, NULL, &m);
        cr_assert_eq(st, NDB_OK, "%s", m.text);
        if (i % 50 == 0) {
            size_t ul;
            void *u = J("{\"$inc\":{\"n\":1}}", &ul);
            size_t fl;
            void *f = J("{\"_id\":\"counter\"}", &fl);
            ndb_doc_update_result r;
            cr_assert_eq(ndb_doc_update_many(T.db, "shared", f, fl, u, ul, 1, NULL, &r, &m), NDB_OK, "%s", m.text);
            free(u);
            free(f);
        }
    }
    ndb_doc_builder_free(b);
    return NULL;
}

static volatile int stop_readers;

static void *reader(void *p)
{
    (void)p;
    ndb_errmsg m = {{0}};
    size_t fl;
    void *f = J("{\"i\":{\"$gte\":100}}", &fl);
    while (!stop_readers) {
        ndb_doc_find_opts o = {.filter = f, .filter_len = fl, .limit = 50};
        ndb_doc_cursor *c;
        ndb_status st = ndb_doc_find(T.db, "shared", &o, &c, &m);
        if (st == NDB_ENOTFOUND)
            continue; /* not created yet */
        cr_assert_eq(st, NDB_OK, "%s", m.text);
        for (;;) {
            const void *d;
            size_t dl;
            cr_assert_eq(ndb_doc_cursor_next(c, &d, &dl, &m), NDB_OK);
            if (d == NULL)
                break;
            ndb_doc_val root, v;
            cr_assert_eq(ndb_doc_root(d, dl, &root), NDB_OK);
            cr_assert_eq(ndb_doc_get_field(&root, "i", 1, &v), NDB_OK);
            cr_assert(v.u.i >= 100);
        }
        ndb_doc_cursor_free(c);
        uint64_t n;
        cr_assert_eq(ndb_doc_count(T.db, "shared", NULL, 0, NULL, &n, &m), NDB_OK);
        ndb_doc_coll_info *info;
        size_t ni;
        cr_assert_eq(ndb_doc_list_collections(T.db, &info, &ni, &m), NDB_OK);
        free(info);
    }
    free(f);
    return NULL;
}

Test(concurrency, writers_and_readers, .timeout = 240)
{
    tdb_open(&T);
    ndb_errmsg m = {{0}};
    cr_assert_eq(ndb_doc_create_collection(T.db, "uniq", &m), NDB_OK);
    size_t sl;
    void *spec = J("{\"email\":1}", &sl);
    cr_assert_eq(ndb_doc_create_index(T.db, "uniq", NULL, spec, sl, &(ndb_doc_index_opts){.unique = 1}, &m), NDB_OK);
    free(spec);
    pthread_t w[THREADS], r[2];
    warg args[THREADS];
    for (int i = 0; i < 2; i++)
        pthread_create(&r[i], NULL, reader, NULL);
    for (int i = 0; i < THREADS; i++) {
        args[i] = (warg){.id = i};
        pthread_create(&w[i], NULL, writer, &args[i]);
    }
    for (int i = 0; i < THREADS; i++)
        pthread_join(w[i], NULL);
    stop_readers = 1;
    for (int i = 0; i < 2; i++)
        pthread_join(r[i], NULL);
    /* each email won exactly once across all threads */
    int wins = 0;
    for (int i = 0; i < THREADS; i++)
        wins += args[i].dup_wins;
    cr_assert_eq(wins, PER);
    uint64_t n;
    cr_assert_eq(ndb_doc_count(T.db, "uniq", NULL, 0, NULL, &n, &m), NDB_OK);
    cr_assert_eq(n, PER);
    /* shared: every insert plus the upserted counter; the counter saw every $inc */
    cr_assert_eq(ndb_doc_count(T.db, "shared", NULL, 0, NULL, &n, &m), NDB_OK);
    cr_assert_eq(n, THREADS * PER + 1);
    const char *c = find_json(&T, "shared", (fq){.filter = "{\"_id\":\"counter\"}", .proj = "{\"n\":1}"}, NULL);
    char want[64];
    snprintf(want, sizeof want, "[{\"_id\":\"counter\",\"n\":%d}]", THREADS * (PER / 50));
    cr_assert_str_eq(c, want);
    /* the stats key agrees with a real scan after a reopen */
    tdb_close_only(&T);
    tdb_open_dir(&T);
    size_t fl;
    void *f = J("{\"i\":{\"$gte\":0}}", &fl);
    cr_assert_eq(ndb_doc_count(T.db, "shared", f, fl, NULL, &n, &m), NDB_OK);
    cr_assert_eq(n, THREADS * PER);
    cr_assert_eq(ndb_doc_count(T.db, "shared", NULL, 0, NULL, &n, &m), NDB_OK);
    cr_assert_eq(n, THREADS * PER + 1);
    free(f);
    tdb_close(&T);
}

/* Index builds, index drops, collection drops and inserts racing on one
 * collection: no deadlock (catalog lock before writer lock everywhere), and
 * every call either succeeds or reports a clean status. */
static void *indexer(void *p)
{
    (void)p;
    ndb_errmsg m = {{0}};
    size_t sl;
    void *spec = J("{\"v\":1}", &sl);
    for (int i = 0; i < 40; i++) {
        ndb_status st = ndb_doc_create_index(T.db, "churn", "v_1", spec, sl, NULL, &m);
        cr_assert(st == NDB_OK || st == NDB_EEXIST || st == NDB_ENOTFOUND, "%d %s", st, m.text);
        st = ndb_doc_drop_index(T.db, "churn", "v_1", &m);
        cr_assert(st == NDB_OK || st == NDB_ENOTFOUND, "%d %s", st, m.text);
    }
    free(spec);
    return NULL;
}

static void *dropper(void *p)
{
    (void)p;
    ndb_errmsg m = {{0}};
    for (int i = 0; i < 40; i++) {
        ndb_status st = ndb_doc_drop_collection(T.db, "churn", &m);
        cr_assert(st == NDB_OK || st == NDB_ENOTFOUND, "%d %s", st, m.text);
        st = ins(&T, "churn", "[{\"v\":1},{\"v\":2}]", &m);
        cr_assert(st == NDB_OK || st == NDB_ENOTFOUND, "%d %s", st, m.text);
    }
    return NULL;
}

Test(concurrency, catalog_churn, .timeout = 120)
{
    tdb_open(&T);
    ndb_errmsg m = {{0}};
    cr_assert_eq(ins(&T, "churn", "[{\"v\":0}]", &m), NDB_OK);
    pthread_t a, b, c;
    pthread_create(&a, NULL, indexer, NULL);
    pthread_create(&b, NULL, dropper, NULL);
    pthread_create(&c, NULL, dropper, NULL);
    pthread_join(a, NULL);
    pthread_join(b, NULL);
    pthread_join(c, NULL);
    /* the collection is consistent: count equals a scan */
    uint64_t n1 = 0, n2 = 0;
    size_t fl;
    void *f = J("{\"v\":{\"$gte\":0}}", &fl);
    if (ndb_doc_count(T.db, "churn", NULL, 0, NULL, &n1, &m) == NDB_OK)
        cr_assert_eq(ndb_doc_count(T.db, "churn", f, fl, NULL, &n2, &m), NDB_OK);
    cr_assert_eq(n1, n2);
    free(f);
    tdb_close(&T);
}
