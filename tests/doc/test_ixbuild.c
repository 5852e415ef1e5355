/* Index builds (ixbuild.c) while writers go on: the index built by sorting
 * and bulk ingestion from a snapshot, with the documents written meanwhile
 * brought up to date from the side log, gives exactly what a collection scan
 * gives (randomised inserts, updates and deletes during the build; a unique
 * index and a duplicate written at a random moment); and a process killed
 * with SIGKILL during builds reopens with each index either absent, leaving no
 * entry behind, or exact. */
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>

#include "helpers.h"

#define DOCS 30000

typedef struct db_t {
    char dir[64], spill[80];
    ndb_kv *kv;
    ndb_doc_db *db;
} db_t;

/* Small memtables and a 256 KiB sort bound: flushes, compactions and many
 * spilled runs while an index builds. */
static void db_open(db_t *t)
{
    ndb_kv_options ko;
    ndb_kv_options_init(&ko);
    ko.durability = NDB_KV_NONE;
    ko.memtable_bytes = 256 << 10;
    ko.sst_target_bytes = 256 << 10;
    ko.l1_max_bytes = 1 << 20;
    ndb_errmsg m = {{0}};
    cr_assert_eq(ndb_kv_open(t->dir, &ko, &t->kv, &m), NDB_OK, "kv open: %s", m.text);
    ndb_doc_options o;
    ndb_doc_options_init(&o);
    o.log = quiet_log;
    o.agg_mem_bytes = 256 << 10;
    o.spill_dir = t->spill;
    cr_assert_eq(ndb_doc_open(t->kv, &o, &t->db, &m), NDB_OK, "doc open: %s", m.text);
}

static void db_close(db_t *t)
{
    ndb_doc_close(t->db);
    cr_assert_eq(ndb_kv_close(t->kv), NDB_OK);
}

static void db_new(db_t *t)
{
    snprintf(t->dir, sizeof t->dir, "/tmp/ndbdoc-ixb-XXXXXX");
    cr_assert_not_null(mkdtemp(t->dir));
    snprintf(t->spill, sizeof t->spill, "%s/spill", t->dir);
    cr_assert_eq(mkdir(t->spill, 0700), 0);
    db_open(t);
}

static void db_remove(db_t *t)
{
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", t->dir);
    cr_assert_eq(system(cmd), 0);
}

/* Document i: v a number or (every 7th) an array of two, w and u numbers
 * (u unique). */
static void make_doc(ndb_doc_builder *b, const char *id, int v, int w, int u, bool array)
{
    ndb_doc_builder_reset(b);
    ndb_doc_begin_object(b);
    ndb_doc_key(b, "_id", 3);
    ndb_doc_string(b, id, strlen(id));
    ndb_doc_key(b, "v", 1);
    if (array) {
        ndb_doc_begin_array(b);
        ndb_doc_int(b, v);
        ndb_doc_int(b, v + 3);
        ndb_doc_end_array(b);
    } else {
        ndb_doc_int(b, v);
    }
    ndb_doc_key(b, "w", 1);
    ndb_doc_int(b, w);
    ndb_doc_key(b, "u", 1);
    ndb_doc_int(b, u);
    ndb_doc_end_object(b);
}

static void fill(db_t *t, int n, unsigned seed)
{
    ndb_doc_builder *b;
    cr_assert_eq(ndb_doc_builder_new(&b), NDB_OK);
    ndb_errmsg m = {{0}};
    enum { B = 1000 };
    void *docs[B];
    size_t lens[B];
    for (int i = 0; i < n; i += B) {
        int k = 0;
        for (; k < B && i + k < n; k++) {
            char id[16];
            snprintf(id, sizeof id, "d%06d", i + k);
            make_doc(b, id, (int)(rand_r(&seed) % 500), (int)(rand_r(&seed) % 50), i + k, (i + k) % 7 == 0);
            const void *d;
            cr_assert_eq(ndb_doc_builder_finish(b, &d, &lens[k]), NDB_OK);
            docs[k] = malloc(lens[k]);
            memcpy(docs[k], d, lens[k]);
        }
        cr_assert_eq(ndb_doc_insert(t->db, "c", (const void *const *)docs, lens, (size_t)k, NULL, NULL, &m), NDB_OK,
                     "%s", m.text);
        for (int j = 0; j < k; j++)
            free(docs[j]);
    }
    ndb_doc_builder_free(b);
}

/* ---- the writer: random inserts, updates and deletes until told to stop,
 * and a flush every 64 */

typedef struct writer_t {
    db_t *t;
    unsigned seed;
    int stop;        /* atomic */
    uint64_t ops;    /* atomic: writes applied */
    int next_u;      /* fresh unique values from here */
    int dup_at;      /* > 0: after this many ops, insert "dup" with u = -1 once */
    ndb_status dup;  /* its result */
    pthread_t th;
} writer_t;

static void *writer_main(void *p)
{
    writer_t *wr = p;
    ndb_doc_builder *b;
    cr_assert_eq(ndb_doc_builder_new(&b), NDB_OK);
    ndb_errmsg m = {{0}};
    int fresh = 0;
    while (!__atomic_load_n(&wr->stop, __ATOMIC_ACQUIRE)) {
        uint64_t ops = __atomic_load_n(&wr->ops, __ATOMIC_RELAXED);
        char id[16], upd[96];
        snprintf(id, sizeof id, "d%06d", (int)(rand_r(&wr->seed) % (DOCS + 2000)));
        int op = (int)(rand_r(&wr->seed) % 10), v = (int)(rand_r(&wr->seed) % 500);
        ndb_status st;
        if (wr->dup_at > 0 && ops == (uint64_t)wr->dup_at) {
            make_doc(b, "dup", 1, 1, -1, false);
            const void *d;
            size_t dl;
            cr_assert_eq(ndb_doc_builder_finish(b, &d, &dl), NDB_OK);
            st = wr->dup = ndb_doc_insert(wr->t->db, "c", &d, &dl, 1, NULL, NULL, &m);
            cr_assert(st == NDB_OK || st == NDB_EEXIST, "%d %s", st, m.text);
        } else if (op < 4) { /* a new value: a number, an array, or no v at all */
            if (op == 3)
                snprintf(upd, sizeof upd, "{\"$unset\":{\"v\":1}}");
            else if (op == 2)
                snprintf(upd, sizeof upd, "{\"$set\":{\"v\":[%d,%d,%d],\"w\":%d}}", v, v + 1, v, v % 50);
            else
                snprintf(upd, sizeof upd, "{\"$set\":{\"v\":%d,\"u\":%d}}", v, wr->next_u++);
            size_t ul;
            void *u = J(upd, &ul);
            st = ndb_doc_update(wr->t->db, "c", id, strlen(id), u, ul, NULL, &m);
            free(u);
            cr_assert(st == NDB_OK || st == NDB_ENOTFOUND, "%d %s", st, m.text);
        } else if (op < 7) { /* a new document, or one deleted before coming back */
            char nid[16];
            if (op == 6)
                memcpy(nid, id, sizeof nid);
            else
                snprintf(nid, sizeof nid, "n%06d", fresh++);
            make_doc(b, nid, v, v % 50, wr->next_u++, op == 5);
            const void *d;
            size_t dl;
            cr_assert_eq(ndb_doc_builder_finish(b, &d, &dl), NDB_OK);
            st = ndb_doc_insert(wr->t->db, "c", &d, &dl, 1, NULL, NULL, &m);
            cr_assert(st == NDB_OK || st == NDB_EEXIST, "%d %s", st, m.text);
        } else {
            st = ndb_doc_delete(wr->t->db, "c", id, strlen(id), NULL, &m);
            cr_assert(st == NDB_OK || st == NDB_ENOTFOUND, "%d %s", st, m.text);
        }
        __atomic_add_fetch(&wr->ops, 1, __ATOMIC_RELEASE);
        /* small flushes: tables holding a few partitions each, some around
         * the index being built (its tables must go in all the same) */
        if (ops % 64 == 63)
            cr_assert_eq(ndb_kv_flush(wr->t->kv), NDB_OK);
    }
    ndb_doc_builder_free(b);
    return NULL;
}

static void writer_start(writer_t *wr, db_t *t, unsigned seed, int dup_at)
{
    *wr = (writer_t){.t = t, .seed = seed, .next_u = 1000000, .dup_at = dup_at, .dup = NDB_EINVAL};
    cr_assert_eq(pthread_create(&wr->th, NULL, writer_main, wr), 0);
    while (__atomic_load_n(&wr->ops, __ATOMIC_ACQUIRE) < 50) /* under way */
        sched_yield();
}

static void writer_stop(writer_t *wr)
{
    __atomic_store_n(&wr->stop, 1, __ATOMIC_RELEASE);
    cr_assert_eq(pthread_join(wr->th, NULL), 0);
}

/* ---- checks */

/* The _ids filter matches, as JSON in _id order, through index `hint` or
 * "_id" (a scan); *n: how many. Caller frees. */
static char *ids(db_t *t, const char *filter, const char *hint, size_t *n, ndb_doc_explain *ex)
{
    size_t fl, pl, sl, cap = 8 << 20;
    void *f = J(filter, &fl), *p = J("{\"_id\":1}", &pl), *s = J("{\"_id\":1}", &sl);
    ndb_doc_find_opts o = {.filter = f, .filter_len = fl, .projection = p, .projection_len = pl,
                           .sort = s, .sort_len = sl, .hint = hint};
    ndb_doc_cursor *c;
    ndb_errmsg m = {{0}};
    cr_assert_eq(ndb_doc_find(t->db, "c", &o, &c, &m), NDB_OK, "%s", m.text);
    char *out = malloc(cap);
    cr_assert_not_null(out);
    drain(c, out, cap);
    cr_assert(strncmp(out, "ERR", 3) != 0, "%s: %s", filter, out);
    *n = 0;
    for (const char *q = out; (q = strchr(q, '{')) != NULL; q++)
        (*n)++;
    if (ex)
        ndb_doc_cursor_explain(c, ex);
    ndb_doc_cursor_free(c);
    free(f);
    free(p);
    free(s);
    return out;
}

/* Through index `name`: the same documents as a scan, and the same count. */
static void check_index(db_t *t, const char *name, const char *field)
{
    static const char *ranges[] = {"{\"%s\":{\"$gte\":0}}", "{\"%s\":{\"$gte\":100,\"$lt\":300}}",
                                   "{\"%s\":{\"$lte\":7}}", "{\"%s\":17}", "{\"%s\":{\"$in\":[3,250,499]}}",
                                   "{\"%s\":{\"$gte\":1000000}}", "{\"%s\":-1}"};
    for (size_t r = 0; r < sizeof ranges / sizeof *ranges; r++) {
        char filter[96];
        snprintf(filter, sizeof filter, ranges[r], field);
        size_t ni, ns;
        ndb_doc_explain ex;
        char *a = ids(t, filter, name, &ni, &ex), *b = ids(t, filter, "_id", &ns, NULL);
        cr_assert(strstr(ex.plan, name) != NULL, "%s: plan %s", filter, ex.plan);
        cr_assert_eq(ni, ns, "%s: %zu through %s, %zu by a scan", filter, ni, name, ns);
        cr_assert(strcmp(a, b) == 0, "%s: other documents through %s than by a scan", filter, name);
        uint64_t cnt;
        size_t fl;
        void *f = J(filter, &fl);
        ndb_errmsg m = {{0}};
        cr_assert_eq(ndb_doc_count(t->db, "c", f, fl, NULL, &cnt, &m), NDB_OK, "%s", m.text);
        cr_assert_eq(cnt, ns, "%s: counted %llu, a scan finds %zu", filter, (unsigned long long)cnt, ns);
        free(f);
        free(a);
        free(b);
    }
}

static bool has_index(db_t *t, const char *name)
{
    ndb_doc_index_info *ii;
    size_t n;
    ndb_errmsg m = {{0}};
    cr_assert_eq(ndb_doc_list_indexes(t->db, "c", &ii, &n, &m), NDB_OK, "%s", m.text);
    bool found = false;
    for (size_t i = 0; i < n; i++)
        found |= strcmp(ii[i].name, name) == 0;
    free(ii);
    return found;
}

static ndb_status create(db_t *t, const char *spec, const char *name, bool unique, ndb_errmsg *m)
{
    size_t sl;
    void *s = J(spec, &sl);
    ndb_doc_index_opts o = {.unique = unique};
    ndb_status st = ndb_doc_create_index(t->db, "c", name, s, sl, &o, m);
    free(s);
    return st;
}

/* Three rounds: an index on v (multikey, some documents without v) and a
 * unique one on u, each built while the writer runs; the writer's count
 * moves during each build (writes went on), and afterwards the indexes
 * agree with scans. */
Test(ixbuild, built_while_writers_go_on_matches_a_scan, .timeout = 240)
{
    for (unsigned round = 0; round < 3; round++) {
        db_t t;
        db_new(&t);
        fill(&t, DOCS, round + 1);
        writer_t wr;
        writer_start(&wr, &t, round * 7919 + 1, 0);
        ndb_errmsg m = {{0}};
        uint64_t before = __atomic_load_n(&wr.ops, __ATOMIC_ACQUIRE);
        cr_assert_eq(create(&t, "{\"v\":1}", "v1", false, &m), NDB_OK, "%s", m.text);
        uint64_t during = __atomic_load_n(&wr.ops, __ATOMIC_ACQUIRE) - before;
        before = __atomic_load_n(&wr.ops, __ATOMIC_ACQUIRE);
        cr_assert_eq(create(&t, "{\"u\":1}", "u1", true, &m), NDB_OK, "%s", m.text);
        during += __atomic_load_n(&wr.ops, __ATOMIC_ACQUIRE) - before;
        writer_stop(&wr);
        cr_assert_gt(during, 20, "round %u: only %llu writes during the builds", round, (unsigned long long)during);
        cr_log_info("round %u: %llu writes during the builds", round, (unsigned long long)during);
        ndb_doc_build_stats bs;
        ndb_doc_build_stats_get(t.db, &bs);
        cr_assert_eq(bs.running, 0);
        cr_assert_eq(bs.ok, 2);
        cr_assert_eq(bs.docs_done + bs.docs_total + bs.entries, 0, "no build running: nothing in progress");
        check_index(&t, "v1", "v");
        check_index(&t, "u1", "u");
        db_close(&t);
        db_remove(&t);
    }
}

/* A unique index and a duplicate of an existing value written at a random
 * moment: either the build fails (and no index remains) or the duplicate is
 * refused; never both kept. */
Test(ixbuild, a_duplicate_written_during_a_unique_build_is_caught, .timeout = 240)
{
    unsigned seed = 17;
    int failed = 0;
    for (int round = 0; round < 6; round++) {
        db_t t;
        db_new(&t);
        fill(&t, DOCS / 3, (unsigned)round + 5);
        ndb_doc_builder *b;
        cr_assert_eq(ndb_doc_builder_new(&b), NDB_OK);
        make_doc(b, "keep", 1, 1, -1, false); /* u = -1, which the writer never changes */
        const void *d;
        size_t dl;
        cr_assert_eq(ndb_doc_builder_finish(b, &d, &dl), NDB_OK);
        ndb_errmsg m = {{0}};
        cr_assert_eq(ndb_doc_insert(t.db, "c", &d, &dl, 1, NULL, NULL, &m), NDB_OK, "%s", m.text);
        ndb_doc_builder_free(b);
        writer_t wr;
        writer_start(&wr, &t, (unsigned)round + 100, 60 + (int)(rand_r(&seed) % 600));
        ndb_status st = create(&t, "{\"u\":1}", "u1", true, &m);
        while (__atomic_load_n(&wr.ops, __ATOMIC_ACQUIRE) <= (uint64_t)wr.dup_at)
            sched_yield();
        writer_stop(&wr);
        cr_assert(st == NDB_OK || st == NDB_EEXIST, "%d %s", st, m.text);
        cr_assert_eq(st == NDB_OK, wr.dup == NDB_EEXIST, "build %d, the duplicate's insert %d", st, wr.dup);
        cr_assert_eq(has_index(&t, "u1"), st == NDB_OK);
        if (st == NDB_OK)
            check_index(&t, "u1", "u");
        else
            cr_assert(strstr(m.text, "duplicate key in unique index u1") != NULL, "%s", m.text);
        failed += st != NDB_OK;
        db_close(&t);
        db_remove(&t);
    }
    cr_log_info("the build failed %d times of 6, the duplicate's insert the others", failed);
}

/* ---- kill -9 during builds */

static uint64_t kv_keys(db_t *t)
{
    ndb_kv_iter *it;
    cr_assert_eq(ndb_kv_iter_new(t->kv, NULL, NULL, 0, NULL, 0, &it), NDB_OK);
    uint64_t n = 0;
    for (ndb_kv_iter_seek_first(it); ndb_kv_iter_valid(it); ndb_kv_iter_next(it))
        n++;
    cr_assert_eq(ndb_kv_iter_status(it), NDB_OK);
    ndb_kv_iter_free(it);
    return n;
}

/* The child: the writer, and builds of w1 then v1 (each sorted into many
 * runs and ingested); it says when the first starts and when both are done,
 * and never exits. */
static void child(db_t *t, int fd, unsigned seed)
{
    db_open(t);
    writer_t wr;
    writer_start(&wr, t, seed, 0);
    ndb_errmsg m = {{0}};
    if (write(fd, "s", 1) != 1)
        _exit(3);
    if (create(t, "{\"w\":1}", "w1", false, &m) != NDB_OK || create(t, "{\"v\":1}", "v1", false, &m) != NDB_OK)
        _exit(4);
    if (write(fd, "d", 1) != 1)
        _exit(3);
    for (;;)
        pause();
}

/* A round that lets the child's builds end, to time them, then
 * NDB_DOC_IXBUILD_KILLS rounds (default 12), each killing the child at a
 * random moment of its builds: after reopening, each index is absent or
 * agrees with a scan, and the store holds exactly the documents, the
 * catalog's three keys and the entries of the indexes present (w on every
 * document; v, multikey, counted through a scan): nothing of an interrupted
 * build is left. */
Test(ixbuild, kill_during_builds_leaves_no_index_or_a_correct_one, .timeout = 600)
{
    const char *e = getenv("NDB_DOC_IXBUILD_KILLS");
    int kills = e ? atoi(e) : 12, present[2] = {0, 0};
    unsigned seed = 23;
    int build_ms = 0; /* the builds' time, measured in round 0 (not killed before they end) */
    for (int k = 0; k < kills + 1; k++) {
        db_t t;
        db_new(&t);
        fill(&t, DOCS / 3, (unsigned)k + 40);
        db_close(&t);
        int p[2];
        cr_assert_eq(pipe(p), 0);
        pid_t pid = fork();
        cr_assert_neq(pid, -1);
        if (pid == 0) {
            close(p[0]);
            child(&t, p[1], (unsigned)k + 1000);
        }
        close(p[1]);
        char c;
        cr_assert_eq(read(p[0], &c, 1), 1, "the child did not start");
        struct timespec t0, t1;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        if (k == 0) {
            cr_assert_eq(read(p[0], &c, 1), 1, "the child's builds failed");
            clock_gettime(CLOCK_MONOTONIC, &t1);
            build_ms = (int)((t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000) + 1;
        } else { /* within 1.2 times the builds' time: mostly during them */
            unsigned wait_ms = rand_r(&seed) % (unsigned)(build_ms * 6 / 5 + 1);
            poll(&(struct pollfd){.fd = p[0], .events = POLLIN}, 1, (int)wait_ms);
        }
        kill(pid, SIGKILL);
        int status;
        cr_assert_eq(waitpid(pid, &status, 0), pid);
        cr_assert(WIFSIGNALED(status), "the child ended by itself: %d", status);
        close(p[0]);
        db_open(&t);
        bool hw = has_index(&t, "w1"), hv = has_index(&t, "v1");
        cr_assert(k > 0 || (hw && hv));
        present[0] += k > 0 && hw;
        present[1] += k > 0 && hv;
        size_t ndocs, nv;
        free(ids(&t, "{}", "_id", &ndocs, NULL));
        uint64_t want = ndocs + 3 + (hw ? ndocs : 0);
        if (hv) { /* v's entries: one per distinct value of v in a document, or one null entry */
            check_index(&t, "v1", "v");
            ndb_doc_cursor *cur;
            ndb_errmsg m = {{0}};
            ndb_doc_find_opts o = {.hint = "_id"};
            cr_assert_eq(ndb_doc_find(t.db, "c", &o, &cur, &m), NDB_OK);
            nv = 0;
            for (;;) {
                const void *d;
                size_t dl;
                cr_assert_eq(ndb_doc_cursor_next(cur, &d, &dl, &m), NDB_OK);
                if (d == NULL)
                    break;
                ndb_doc_val root, v;
                cr_assert_eq(ndb_doc_root(d, dl, &root), NDB_OK);
                if (ndb_doc_get_field(&root, "v", 1, &v) != NDB_OK || v.type != NDB_DOC_ARRAY) {
                    nv++;
                    continue;
                }
                int64_t seen[8];
                size_t ns = 0;
                ndb_doc_iter it;
                ndb_doc_val el;
                ndb_doc_iter_init(&it, &v);
                while (ndb_doc_iter_next(&it, NULL, NULL, &el)) {
                    bool dup = false;
                    for (size_t i = 0; i < ns; i++)
                        dup |= seen[i] == el.u.i;
                    if (!dup && ns < 8)
                        seen[ns++] = el.u.i;
                }
                nv += ns;
            }
            ndb_doc_cursor_free(cur);
            want += nv;
        }
        if (hw)
            check_index(&t, "w1", "w");
        cr_assert_eq(kv_keys(&t), want, "kill %d (w1 %d, v1 %d): %llu keys, %llu expected", k, hw, hv,
                     (unsigned long long)kv_keys(&t), (unsigned long long)want);
        db_close(&t);
        db_remove(&t);
    }
    cr_log_info("builds %d ms; indexes present after %d kills: w1 %d, v1 %d", build_ms, kills, present[0], present[1]);
}
