/* Tests for the document layer under an ndb_interrupt (engine/ndb_interrupt.h):
 * finds, counts, pipelines, sorts and writes stop with NDB_ETIMEDOUT or
 * NDB_ECANCELED, promptly, and an interrupted write has applied nothing. */
#include <time.h>

#include "helpers.h"

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* n documents {"i": k, "s": "a...ab", "v": 0} with `as` a's, in batches. */
static void fill(tdb *t, const char *coll, int n, int as)
{
    char s[64];
    memset(s, 'a', (size_t)as);
    s[as] = 'b';
    s[as + 1] = 0;
    for (int i = 0; i < n; i += 500) {
        char *json = malloc(600 * 80);
        cr_assert_not_null(json);
        size_t used = 0;
        json[used++] = '[';
        for (int k = i; k < n && k < i + 500; k++)
            used += (size_t)snprintf(json + used, 80, "%s{\"i\":%d,\"s\":\"%s\",\"v\":0}", k > i ? "," : "", k, s);
        json[used++] = ']';
        json[used] = 0;
        ndb_errmsg m = {{0}};
        cr_assert_eq(ins(t, coll, json, &m), NDB_OK, "%s", m.text);
        free(json);
    }
}

static uint64_t count(tdb *t, const char *coll, const char *filter)
{
    size_t fl;
    void *f = J(filter, &fl);
    uint64_t n = 0;
    ndb_errmsg m = {{0}};
    cr_assert_eq(ndb_doc_count(t->db, coll, f, fl, NULL, &n, &m), NDB_OK, "%s", m.text);
    free(f);
    return n;
}

/* Drains a find; the status that ended it, and the documents seen. */
static ndb_status find_all(tdb *t, const char *coll, const char *filter, const char *sort, const ndb_interrupt *in,
                           size_t *seen, ndb_errmsg *m)
{
    size_t fl = 0, sl = 0;
    void *f = filter ? J(filter, &fl) : NULL, *s = sort ? J(sort, &sl) : NULL;
    ndb_doc_find_opts o = {.filter = f, .filter_len = fl, .sort = s, .sort_len = sl, .interrupt = in};
    ndb_doc_cursor *c = NULL;
    ndb_status st = ndb_doc_find(t->db, coll, &o, &c, m);
    *seen = 0;
    for (const void *d = &o; st == NDB_OK && d != NULL;) {
        size_t dl;
        st = ndb_doc_cursor_next(c, &d, &dl, m);
        *seen += st == NDB_OK && d != NULL;
    }
    ndb_doc_cursor_free(c);
    free(f);
    free(s);
    return st;
}

static const ndb_interrupt PASSED = {.deadline_ns = 0, .commit_margin_ns = 0, .cancelled = NULL};

Test(interrupt, find_and_count_stop)
{
    tdb t;
    tdb_open(&t);
    fill(&t, "c", 1000, 3);
    size_t seen;
    ndb_errmsg m = {{0}};
    /* a passed deadline stops the scan at its first check */
    cr_assert_eq(find_all(&t, "c", "{\"v\":0}", NULL, &PASSED, &seen, &m), NDB_ETIMEDOUT);
    cr_assert_lt(seen, (size_t)NDB_INTERRUPT_EVERY, "%zu documents after the deadline", seen);
    cr_assert(strstr(m.text, "deadline") != NULL, "%s", m.text);
    /* cancellation alone, through an index scan too */
    atomic_bool gone = true;
    ndb_interrupt cancelled = {.deadline_ns = INT64_MAX, .cancelled = &gone};
    size_t sl;
    void *spec = J("{\"i\":1}", &sl);
    cr_assert_eq(ndb_doc_create_index(t.db, "c", NULL, spec, sl, NULL, &m), NDB_OK, "%s", m.text);
    free(spec);
    cr_assert_eq(find_all(&t, "c", "{\"i\":{\"$gte\":0}}", NULL, &cancelled, &seen, &m), NDB_ECANCELED);
    cr_assert(strstr(m.text, "cancelled") != NULL, "%s", m.text);
    /* a sort in memory stops while it gathers */
    cr_assert_eq(find_all(&t, "c", NULL, "{\"s\":1,\"i\":-1}", &PASSED, &seen, &m), NDB_ETIMEDOUT);
    /* an interrupt that does not fire changes nothing */
    gone = false;
    cr_assert_eq(find_all(&t, "c", "{\"v\":0}", "{\"s\":1,\"i\":-1}", &cancelled, &seen, &m), NDB_OK, "%s", m.text);
    cr_assert_eq(seen, 1000);
    uint64_t n;
    size_t fl;
    void *f = J("{\"v\":0}", &fl);
    cr_assert_eq(ndb_doc_count(t.db, "c", f, fl, &PASSED, &n, &m), NDB_ETIMEDOUT);
    cr_assert_eq(ndb_doc_count(t.db, "c", f, fl, &cancelled, &n, &m), NDB_OK);
    cr_assert_eq(n, 1000);
    free(f);
    tdb_close(&t);
}

/* A scan whose every document costs a slow $regex match (~2^18 backtracking
 * steps, under the match limit: 2-4 ms each with PCRE2's JIT here) stops soon
 * after its deadline, not at its end (about 12 s later on a loaded machine). */
Test(interrupt, slow_regex_scan_stops_near_its_deadline)
{
    tdb t;
    tdb_open(&t);
    fill(&t, "r", 3000, 18);
    size_t fl;
    void *f = J("{\"s\":{\"$regex\":\"(a+)+$\"}}", &fl);
    uint64_t n;
    ndb_errmsg m = {{0}};
    int64_t t0 = now_ns();
    ndb_interrupt in = {.deadline_ns = t0 + 50 * 1000000LL, .cancelled = NULL};
    cr_assert_eq(ndb_doc_count(t.db, "r", f, fl, &in, &n, &m), NDB_ETIMEDOUT, "%s", m.text);
    int64_t late = now_ns() - in.deadline_ns;
    cr_log_info("stopped %.1f ms after a 50 ms deadline", (double)late / 1e6);
    cr_assert_lt(late, 500 * 1000000LL, "stopped %lld ms after its deadline", (long long)(late / 1000000));
    free(f);
    tdb_close(&t);
}

Test(interrupt, pipelines_stop)
{
    tdb t;
    tdb_open(&t);
    fill(&t, "p", 500, 3);
    const char *pipes[] = {
        "[{\"$match\":{\"v\":0}}]",
        "[{\"$group\":{\"_id\":\"$i\",\"n\":{\"$sum\":1}}}]",
        "[{\"$project\":{\"i\":1}},{\"$sort\":{\"i\":-1}}]",
        "[{\"$lookup\":{\"from\":\"p\",\"localField\":\"i\",\"foreignField\":\"i\",\"as\":\"same\"}}]",
    };
    for (size_t k = 0; k < sizeof pipes / sizeof pipes[0]; k++) {
        size_t pl;
        void *p = J(pipes[k], &pl);
        ndb_doc_cursor *c = NULL;
        ndb_errmsg m = {{0}};
        ndb_status st = ndb_doc_aggregate(t.db, "p", p, pl, &PASSED, &c, &m);
        size_t out = 0;
        for (const void *d = p; st == NDB_OK && d != NULL;) {
            size_t dl;
            st = ndb_doc_cursor_next(c, &d, &dl, &m);
            out += st == NDB_OK && d != NULL;
        }
        cr_assert_eq(st, NDB_ETIMEDOUT, "%s: %d after %zu results (%s)", pipes[k], st, out, m.text);
        ndb_doc_cursor_free(c);
        free(p);
    }
    tdb_close(&t);
}

/* memdoc_sort: sorted without an interrupt; stopped by one, the array still
 * holds each element once (the caller frees them). */
Test(interrupt, memdoc_sort)
{
    enum { N = 5000 };
    memdoc *a = calloc(N, sizeof *a);
    uint8_t *keys = malloc(N * 4);
    cr_assert(a && keys);
    for (int k = 0; k < 2; k++) {
        for (uint32_t i = 0; i < N; i++) {
            uint32_t v = (i * 2654435761u) % 1000; /* duplicates: seq breaks ties */
            keys[4 * i] = (uint8_t)(v >> 24);
            keys[4 * i + 1] = (uint8_t)(v >> 16);
            keys[4 * i + 2] = (uint8_t)(v >> 8);
            keys[4 * i + 3] = (uint8_t)v;
            a[i] = (memdoc){.key = keys + 4 * i, .klen = 4, .seq = i};
        }
        ndb_errmsg m = {{0}};
        ndb_status st = memdoc_sort(a, N, 0, k ? &PASSED : NULL, &m);
        uint8_t *once = calloc(N, 1);
        for (uint32_t i = 0; i < N; i++)
            once[a[i].seq]++;
        for (uint32_t i = 0; i < N; i++)
            cr_assert_eq(once[i], 1, "element %u appears %d times", i, once[i]);
        free(once);
        if (k == 0) {
            cr_assert_eq(st, NDB_OK);
            for (uint32_t i = 1; i < N; i++)
                cr_assert_lt(memdoc_cmp(&a[i - 1], &a[i]), 0, "out of order at %u", i);
        } else {
            cr_assert_eq(st, NDB_ETIMEDOUT);
            cr_assert(strstr(m.text, "sort stopped") != NULL, "%s", m.text);
        }
    }
    free(a);
    free(keys);
}

/* An interrupted write has applied nothing: update_many, delete_many, insert,
 * update, delete and a transaction's commit. */
Test(interrupt, writes_are_all_or_nothing)
{
    tdb t;
    tdb_open(&t);
    fill(&t, "w", 2000, 3);
    ndb_errmsg m = {{0}};
    size_t fl, ul;
    void *f = J("{\"v\":0}", &fl), *u = J("{\"$inc\":{\"v\":1}}", &ul);
    ndb_doc_update_result r;
    /* stopped during its scan */
    cr_assert_eq(ndb_doc_update_many(t.db, "w", f, fl, u, ul, 0, &PASSED, &r, &m), NDB_ETIMEDOUT);
    cr_assert_eq(count(&t, "w", "{\"v\":1}"), 0);
    /* the scan would finish, but the commit margin is not left: refused before the append */
    ndb_interrupt margin = {.deadline_ns = now_ns() + 3600 * 1000000000LL, .commit_margin_ns = INT64_MAX / 2};
    cr_assert_eq(ndb_doc_update_many(t.db, "w", f, fl, u, ul, 0, &margin, &r, &m), NDB_ETIMEDOUT);
    cr_assert(strstr(m.text, "nothing was applied") != NULL, "%s", m.text);
    cr_assert_eq(count(&t, "w", "{\"v\":1}"), 0);
    uint64_t deleted = 0;
    cr_assert_eq(ndb_doc_delete_many(t.db, "w", f, fl, &margin, &deleted, &m), NDB_ETIMEDOUT);
    atomic_bool gone = true;
    ndb_interrupt cancelled = {.deadline_ns = INT64_MAX, .cancelled = &gone};
    cr_assert_eq(ndb_doc_delete_many(t.db, "w", f, fl, &cancelled, &deleted, &m), NDB_ECANCELED);
    cr_assert_eq(count(&t, "w", "{}"), 2000);
    cr_assert_eq(count(&t, "w", "{\"v\":0}"), 2000);
    /* single-document writes check at their commit too */
    size_t dl;
    void *doc = J("{\"x\":1}", &dl);
    const void *docs[1] = {doc};
    char **ids = NULL;
    cr_assert_eq(ndb_doc_insert(t.db, "w", docs, &dl, 1, &margin, &ids, &m), NDB_ETIMEDOUT);
    cr_assert_null(ids);
    cr_assert_eq(ndb_doc_insert(t.db, "w", docs, &dl, 1, NULL, &ids, &m), NDB_OK, "%s", m.text);
    cr_assert_eq(ndb_doc_update(t.db, "w", ids[0], strlen(ids[0]), u, ul, &cancelled, &m), NDB_ECANCELED);
    cr_assert_eq(ndb_doc_delete(t.db, "w", ids[0], strlen(ids[0]), &cancelled, &m), NDB_ECANCELED);
    ndb_doc_txn *tx;
    cr_assert_eq(ndb_doc_txn_begin(t.db, "w", &cancelled, &tx, &m), NDB_OK);
    cr_assert_eq(ndb_doc_txn_delete(tx, ids[0], strlen(ids[0]), &m), NDB_OK);
    cr_assert_eq(ndb_doc_txn_commit(tx, &m), NDB_ECANCELED);
    cr_assert_eq(ndb_doc_txn_end(tx, &m), NDB_OK);
    cr_assert_eq(count(&t, "w", "{\"x\":1}"), 1);
    /* an interrupt that does not fire: everything applied */
    gone = false;
    cr_assert_eq(ndb_doc_update_many(t.db, "w", f, fl, u, ul, 0, &cancelled, &r, &m), NDB_OK, "%s", m.text);
    cr_assert_eq(r.modified, 2000);
    cr_assert_eq(count(&t, "w", "{\"v\":1}"), 2000);
    ndb_doc_ids_free(ids, 1);
    free(doc);
    free(f);
    free(u);
    tdb_close(&t);
}
