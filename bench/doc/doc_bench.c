/*
 * doc_bench — engine/doc against SQLite (JSON1, WAL) on the same data and
 * queries, in-process. Prints `METRIC <name> <value> <unit>` lines and the
 * ratios (ours / SQLite's throughput; > 1 means NexaDB is faster).
 *
 * usage: doc_bench [-n docs] [-d dir] [-r reps] [-m sort memory MiB, default 8]
 *
 * Data: the brief's user shape, {"name","email","age","city","tags":[..]},
 * about 110 bytes as JSON. Workloads:
 *   insert   InsertMany in batches of 10k documents without _id (generated
 *            ids; one atomic kv batch each, WAL fsync'd per batch) vs SQLite
 *            inserting JSON text with a TEXT PRIMARY KEY in one txn
 *   get      point lookups by _id (random order)
 *   scan     count {"age":{"$gt":25}} without an index, then with one
 *   group    [{"$group":{"_id":"$city","n":{"$sum":1},"avg":{"$avg":"$age"}}}]
 *   sort     every document sorted by email (a string) with -m MiB of memory,
 *            spilling the rest to files, vs SQLite's ORDER BY on the same data;
 *            time and the growth of peak RSS (VmHWM, reset before each)
 */
#include <sqlite3.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"
#include "ndb_doc.h"
#include "ndb_kv.h"

#define MAX_REPS 16

static const char *cities[] = {"San Francisco", "New York", "Los Angeles", "Austin", "Seattle",
                               "Boston", "Chicago", "Denver", "Miami", "Portland",
                               "Atlanta", "Dallas", "Phoenix", "Detroit", "Houston",
                               "Berlin", "Paris", "London", "Tokyo", "Sydney"};

static unsigned long long rng = 88172645463325252ull;
static unsigned rnd(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (unsigned)(rng >> 11);
}

typedef struct user {
    char id[32];  /* the SQLite row's key */
    char nid[32]; /* the _id NexaDB generated */
    char json[256];
    int age, city, t1, t2;
} user;

static void die(const char *what, int st, const char *detail)
{
    fprintf(stderr, "doc_bench: %s failed (%d): %s\n", what, st, detail ? detail : "");
    exit(1);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return v[n / 2];
}

/* Peak RSS (VmHWM) in MiB; reset_peak() sets it back to the current RSS. */
static double peak_mib(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    double kib = 0;
    while (f && fgets(line, sizeof line, f))
        if (strncmp(line, "VmHWM:", 6) == 0)
            kib = atof(line + 6);
    if (f)
        fclose(f);
    return kib / 1024;
}

static void reset_peak(void)
{
    FILE *f = fopen("/proc/self/clear_refs", "w");
    if (f) {
        fputs("5", f);
        fclose(f);
    }
}

static void metric(const char *name, double v, const char *unit)
{
    printf("METRIC %s %.6g %s\n", name, v, unit);
    fflush(stdout);
}

int main(int argc, char **argv)
{
    long n = 100000;
    long sort_mib = 8;
    int reps = 3;
    const char *dir = "/tmp/ndb-doc-bench";
    int opt;
    while ((opt = getopt(argc, argv, "n:d:r:m:")) != -1) {
        if (opt == 'n')
            n = atol(optarg);
        else if (opt == 'm')
            sort_mib = atol(optarg);
        else if (opt == 'd')
            dir = optarg;
        else if (opt == 'r')
            reps = atoi(optarg);
        else {
            fprintf(stderr, "usage: %s [-n docs] [-d dir] [-r reps] [-m sort MiB]\n", argv[0]);
            return 2;
        }
    }
    if (n <= 0 || reps <= 0 || reps > MAX_REPS || sort_mib <= 0) {
        fprintf(stderr, "docs must be > 0 and reps 1..%d\n", MAX_REPS);
        return 2;
    }
    char cmd[512];
    snprintf(cmd, sizeof cmd, "rm -rf '%s' && mkdir -p '%s/ndb' '%s/spill'", dir, dir, dir);
    if (system(cmd) != 0)
        die("mkdir", 0, dir);

    user *u = calloc((size_t)n, sizeof *u);
    if (u == NULL)
        die("calloc", 0, NULL);
    for (long i = 0; i < n; i++) {
        u[i].age = 18 + (int)(rnd() % 60);
        u[i].city = (int)(rnd() % 20);
        u[i].t1 = (int)(rnd() % 50);
        u[i].t2 = (int)(rnd() % 50);
        snprintf(u[i].id, sizeof u[i].id, "%024lx", (unsigned long)i * 2654435761ul % 0xFFFFFFFFFFul);
        snprintf(u[i].json, sizeof u[i].json,
                 "{\"_id\":\"%s\",\"name\":\"User %ld\",\"email\":\"user%ld@example.com\",\"age\":%d,"
                 "\"city\":\"%s\",\"tags\":[\"t%d\",\"t%d\"]}",
                 u[i].id, i, i, u[i].age, cities[u[i].city], u[i].t1, u[i].t2);
    }
    long expect_gt25 = 0;
    for (long i = 0; i < n; i++)
        expect_gt25 += u[i].age > 25;
    printf("# doc_bench: %ld documents, reps %d, dir %s\n", n, reps, dir);

    /* ------------------------------------------------------------ NexaDB */
    ndb_kv_options ko;
    ndb_kv_options_init(&ko);
    char kdir[300];
    snprintf(kdir, sizeof kdir, "%s/ndb", dir);
    ndb_kv *kv;
    ndb_errmsg m = {{0}};
    ndb_status st = ndb_kv_open(kdir, &ko, &kv, &m);
    if (st != NDB_OK)
        die("ndb_kv_open", st, m.text);
    ndb_doc_db *db;
    ndb_doc_options dopt;
    ndb_doc_options_init(&dopt);
    char spill[300];
    snprintf(spill, sizeof spill, "%s/spill", dir);
    dopt.agg_mem_bytes = (size_t)sort_mib << 20;
    dopt.spill_dir = spill;
    if ((st = ndb_doc_open(kv, &dopt, &db, &m)) != NDB_OK)
        die("ndb_doc_open", st, m.text);

    /* encode with the builder, as the service does from a protobuf Struct */
    ndb_doc_builder *b;
    ndb_doc_builder_new(&b);
    void **docs = calloc((size_t)n, sizeof *docs);
    size_t *lens = calloc((size_t)n, sizeof *lens);
    for (long i = 0; i < n; i++) {
        char name[32], email[48], t1[8], t2[8];
        int nl = snprintf(name, sizeof name, "User %ld", i);
        int el = snprintf(email, sizeof email, "user%ld@example.com", i);
        int l1 = snprintf(t1, sizeof t1, "t%d", u[i].t1), l2 = snprintf(t2, sizeof t2, "t%d", u[i].t2);
        ndb_doc_builder_reset(b);
        ndb_doc_begin_object(b);
        ndb_doc_key(b, "name", 4);
        ndb_doc_string(b, name, (size_t)nl);
        ndb_doc_key(b, "email", 5);
        ndb_doc_string(b, email, (size_t)el);
        ndb_doc_key(b, "age", 3);
        ndb_doc_int(b, u[i].age);
        ndb_doc_key(b, "city", 4);
        ndb_doc_string(b, cities[u[i].city], strlen(cities[u[i].city]));
        ndb_doc_key(b, "tags", 4);
        ndb_doc_begin_array(b);
        ndb_doc_string(b, t1, (size_t)l1);
        ndb_doc_string(b, t2, (size_t)l2);
        ndb_doc_end_array(b);
        ndb_doc_end_object(b);
        if (ndb_doc_builder_take(b, &docs[i], &lens[i]) != NDB_OK)
            die("builder", 0, NULL);
    }
    const long chunk = 10000;
    double t0 = bench_now();
    for (long i = 0; i < n; i += chunk) {
        size_t k = (size_t)(n - i < chunk ? n - i : chunk);
        char **ids;
        st = ndb_doc_insert(db, "users", (const void *const *)docs + i, lens + i, k, NULL, &ids, &m);
        if (st != NDB_OK)
            die("ndb_doc_insert", st, m.text);
        for (size_t j = 0; j < k; j++)
            memcpy(u[i + (long)j].nid, ids[j], 25);
        ndb_doc_ids_free(ids, k);
    }
    double ndb_insert = (double)n / (bench_now() - t0);
    metric("doc.insert_many", ndb_insert, "docs/s");

    /* point reads */
    long lookups = n < 100000 ? n : 100000;
    long *order = malloc((size_t)lookups * sizeof *order);
    for (long i = 0; i < lookups; i++)
        order[i] = (long)(rnd() % (unsigned)n);
    double runs[MAX_REPS];
    for (int r = 0; r < reps; r++) {
        t0 = bench_now();
        for (long i = 0; i < lookups; i++) {
            void *d;
            size_t dl;
            st = ndb_doc_get(db, "users", u[order[i]].nid, 24, &d, &dl, &m);
            if (st != NDB_OK)
                die("ndb_doc_get", st, m.text);
            free(d);
        }
        runs[r] = (double)lookups / (bench_now() - t0);
    }
    double ndb_get = median(runs, reps);
    metric("doc.get_by_id", ndb_get, "ops/s");

    /* filter scan */
    void *flt;
    size_t fl;
    const char *fj = "{\"age\":{\"$gt\":25}}";
    ndb_doc_from_json(fj, strlen(fj), &flt, &fl, &m);
    double ndb_scan, ndb_scan_ix;
    for (int r = 0; r < reps; r++) {
        uint64_t cnt;
        t0 = bench_now();
        st = ndb_doc_count(db, "users", flt, fl, NULL, &cnt, &m);
        runs[r] = bench_now() - t0;
        if (st != NDB_OK || (long)cnt != expect_gt25)
            die("count scan", st, m.text);
    }
    ndb_scan = median(runs, reps);
    metric("doc.filter_scan", (double)n / ndb_scan, "docs/s");
    metric("doc.filter_scan_ms", ndb_scan * 1e3, "ms");

    /* group by city */
    const char *pj = "[{\"$group\":{\"_id\":\"$city\",\"n\":{\"$sum\":1},\"avg\":{\"$avg\":\"$age\"}}}]";
    void *pipe;
    size_t pl;
    ndb_doc_from_json(pj, strlen(pj), &pipe, &pl, &m);
    double ndb_group;
    for (int r = 0; r < reps; r++) {
        t0 = bench_now();
        ndb_doc_cursor *c;
        st = ndb_doc_aggregate(db, "users", pipe, pl, NULL, &c, &m);
        if (st != NDB_OK)
            die("aggregate", st, m.text);
        int groups = 0;
        for (;;) {
            const void *d;
            size_t dl;
            if ((st = ndb_doc_cursor_next(c, &d, &dl, &m)) != NDB_OK)
                die("aggregate next", st, m.text);
            if (d == NULL)
                break;
            groups++;
        }
        ndb_doc_cursor_free(c);
        runs[r] = bench_now() - t0;
        if (groups != 20)
            die("group count", groups, NULL);
    }
    ndb_group = median(runs, reps);
    metric("doc.group_by_city_ms", ndb_group * 1e3, "ms");

    /* with an index on age */
    void *spec;
    size_t sl;
    ndb_doc_from_json("{\"age\":1}", 9, &spec, &sl, &m);
    t0 = bench_now();
    if ((st = ndb_doc_create_index(db, "users", NULL, spec, sl, NULL, &m)) != NDB_OK)
        die("create_index", st, m.text);
    metric("doc.create_index_ms", (bench_now() - t0) * 1e3, "ms");
    for (int r = 0; r < reps; r++) {
        uint64_t cnt;
        t0 = bench_now();
        st = ndb_doc_count(db, "users", flt, fl, NULL, &cnt, &m);
        runs[r] = bench_now() - t0;
        if (st != NDB_OK || (long)cnt != expect_gt25)
            die("count index", st, m.text);
    }
    ndb_scan_ix = median(runs, reps);
    metric("doc.filter_index", (double)n / ndb_scan_ix, "docs/s");
    metric("doc.filter_index_ms", ndb_scan_ix * 1e3, "ms");
    /* sort everything by email: beyond -m MiB the sort spills */
    void *sortspec;
    size_t sortlen;
    if (ndb_doc_from_json("{\"email\":1}", 11, &sortspec, &sortlen, &m) != NDB_OK)
        die("sort spec", 0, m.text);
    /* one unsorted pass first, so the block cache is as warm as SQLite's page
     * cache is by now and the peak below is the sort's own */
    ndb_doc_find_opts so = {0};
    ndb_doc_cursor *sc;
    if ((st = ndb_doc_find(db, "users", &so, &sc, &m)) != NDB_OK)
        die("scan", st, m.text);
    for (const void *d = (void *)1; d != NULL;) {
        size_t dl;
        if ((st = ndb_doc_cursor_next(sc, &d, &dl, &m)) != NDB_OK)
            die("scan next", st, m.text);
    }
    ndb_doc_cursor_free(sc);
    reset_peak();
    double rss0 = peak_mib();
    t0 = bench_now();
    so = (ndb_doc_find_opts){.sort = sortspec, .sort_len = sortlen};
    if ((st = ndb_doc_find(db, "users", &so, &sc, &m)) != NDB_OK)
        die("sorted find", st, m.text);
    long sorted = 0;
    for (;;) {
        const void *d;
        size_t dl;
        if ((st = ndb_doc_cursor_next(sc, &d, &dl, &m)) != NDB_OK)
            die("sorted next", st, m.text);
        if (d == NULL)
            break;
        sorted++;
    }
    double ndb_sort = bench_now() - t0;
    ndb_doc_explain sex;
    ndb_doc_cursor_explain(sc, &sex);
    ndb_doc_cursor_free(sc);
    free(sortspec);
    if (sorted != n)
        die("sorted count", (int)sorted, NULL);
    metric("doc.sort_ms", ndb_sort * 1e3, "ms");
    metric("doc.sort_peak_rss_growth", peak_mib() - rss0, "MiB");
    metric("doc.sort_spilled", (double)sex.spilled_bytes / (1 << 20), "MiB");
    ndb_doc_close(db);
    ndb_kv_close(kv);

    /* ------------------------------------------------------------ SQLite */
    char sdir[300];
    snprintf(sdir, sizeof sdir, "%s/sqlite.db", dir);
    sqlite3 *s;
    if (sqlite3_open(sdir, &s) != SQLITE_OK)
        die("sqlite3_open", 0, sqlite3_errmsg(s));
    sqlite3_exec(s, "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;", NULL, NULL, NULL);
    sqlite3_exec(s, "CREATE TABLE users(id TEXT PRIMARY KEY, doc TEXT NOT NULL)", NULL, NULL, NULL);
    sqlite3_stmt *ins;
    sqlite3_prepare_v2(s, "INSERT INTO users(id, doc) VALUES(?, ?)", -1, &ins, NULL);
    t0 = bench_now();
    sqlite3_exec(s, "BEGIN", NULL, NULL, NULL);
    for (long i = 0; i < n; i++) {
        sqlite3_bind_text(ins, 1, u[i].id, 24, SQLITE_STATIC);
        sqlite3_bind_text(ins, 2, u[i].json, -1, SQLITE_STATIC);
        if (sqlite3_step(ins) != SQLITE_DONE)
            die("sqlite insert", 0, sqlite3_errmsg(s));
        sqlite3_reset(ins);
    }
    sqlite3_exec(s, "COMMIT", NULL, NULL, NULL);
    double sq_insert = (double)n / (bench_now() - t0);
    sqlite3_finalize(ins);
    metric("sqlite.insert_txn", sq_insert, "docs/s");

    sqlite3_stmt *get;
    sqlite3_prepare_v2(s, "SELECT doc FROM users WHERE id = ?", -1, &get, NULL);
    for (int r = 0; r < reps; r++) {
        t0 = bench_now();
        for (long i = 0; i < lookups; i++) {
            sqlite3_bind_text(get, 1, u[order[i]].id, 24, SQLITE_STATIC);
            if (sqlite3_step(get) != SQLITE_ROW)
                die("sqlite get", 0, sqlite3_errmsg(s));
            volatile const unsigned char *d = sqlite3_column_text(get, 0);
            (void)d;
            sqlite3_reset(get);
        }
        runs[r] = (double)lookups / (bench_now() - t0);
    }
    sqlite3_finalize(get);
    double sq_get = median(runs, reps);
    metric("sqlite.get_by_id", sq_get, "ops/s");

    sqlite3_stmt *cnt;
    sqlite3_prepare_v2(s, "SELECT count(*) FROM users WHERE json_extract(doc, '$.age') > 25", -1, &cnt, NULL);
    for (int r = 0; r < reps; r++) {
        t0 = bench_now();
        if (sqlite3_step(cnt) != SQLITE_ROW || sqlite3_column_int64(cnt, 0) != expect_gt25)
            die("sqlite count", 0, sqlite3_errmsg(s));
        sqlite3_reset(cnt);
        runs[r] = bench_now() - t0;
    }
    sqlite3_finalize(cnt);
    double sq_scan = median(runs, reps);
    metric("sqlite.filter_scan", (double)n / sq_scan, "docs/s");
    metric("sqlite.filter_scan_ms", sq_scan * 1e3, "ms");

    sqlite3_stmt *grp;
    sqlite3_prepare_v2(s, "SELECT json_extract(doc, '$.city') AS c, count(*), avg(json_extract(doc, '$.age')) "
                          "FROM users GROUP BY c", -1, &grp, NULL);
    for (int r = 0; r < reps; r++) {
        t0 = bench_now();
        int rows = 0;
        while (sqlite3_step(grp) == SQLITE_ROW)
            rows++;
        sqlite3_reset(grp);
        runs[r] = bench_now() - t0;
        if (rows != 20)
            die("sqlite group", rows, NULL);
    }
    sqlite3_finalize(grp);
    double sq_group = median(runs, reps);
    metric("sqlite.group_by_city_ms", sq_group * 1e3, "ms");

    t0 = bench_now();
    sqlite3_exec(s, "CREATE INDEX users_age ON users(json_extract(doc, '$.age'))", NULL, NULL, NULL);
    metric("sqlite.create_index_ms", (bench_now() - t0) * 1e3, "ms");
    sqlite3_prepare_v2(s, "SELECT count(*) FROM users WHERE json_extract(doc, '$.age') > 25", -1, &cnt, NULL);
    for (int r = 0; r < reps; r++) {
        t0 = bench_now();
        if (sqlite3_step(cnt) != SQLITE_ROW || sqlite3_column_int64(cnt, 0) != expect_gt25)
            die("sqlite count ix", 0, sqlite3_errmsg(s));
        sqlite3_reset(cnt);
        runs[r] = bench_now() - t0;
    }
    sqlite3_finalize(cnt);
    double sq_scan_ix = median(runs, reps);
    metric("sqlite.filter_index", (double)n / sq_scan_ix, "docs/s");
    metric("sqlite.filter_index_ms", sq_scan_ix * 1e3, "ms");
    sqlite3_stmt *ord;
    sqlite3_prepare_v2(s, "SELECT doc FROM users ORDER BY json_extract(doc, '$.email')", -1, &ord, NULL);
    reset_peak();
    double sq_rss0 = peak_mib();
    t0 = bench_now();
    long ordered = 0;
    while (sqlite3_step(ord) == SQLITE_ROW)
        ordered++;
    double sq_sort = bench_now() - t0;
    sqlite3_finalize(ord);
    if (ordered != n)
        die("sqlite order by", (int)ordered, sqlite3_errmsg(s));
    metric("sqlite.order_by_ms", sq_sort * 1e3, "ms");
    metric("sqlite.order_by_peak_rss_growth", peak_mib() - sq_rss0, "MiB");
    sqlite3_close(s);

    printf("# ratios (NexaDB / SQLite throughput; >1 = NexaDB faster)\n");
    metric("ratio.insert", ndb_insert / sq_insert, "x");
    metric("ratio.get_by_id", ndb_get / sq_get, "x");
    metric("ratio.filter_scan", sq_scan / ndb_scan, "x");
    metric("ratio.filter_index", sq_scan_ix / ndb_scan_ix, "x");
    metric("ratio.group_by_city", sq_group / ndb_group, "x");
    metric("ratio.sort", sq_sort / ndb_sort, "x");

    for (long i = 0; i < n; i++)
        free(docs[i]);
    free(docs);
    free(lens);
    free(u);
    free(order);
    free(flt);
    free(pipe);
    free(spec);
    ndb_doc_builder_free(b);
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        return 1;
    return 0;
}
