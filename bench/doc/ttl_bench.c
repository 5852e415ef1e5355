/*
 * ttl_bench.c — what TTL expiry costs the writers of the same collection:
 * the latency of small InsertMany calls alone, then while ndb_doc_expire
 * deletes a backlog of expired documents in its batches of 1,000 (as the
 * server's TTL pass does), over one engine/doc database with the default
 * durability (WAL fsync'd per write).
 *
 *   ttl_bench [-n expired documents, default 500000] [-b expiry batch, default 1000] [-d dir]
 *
 * Loads n documents {"at": <a date an hour ago>, "pad": ...} with a TTL index
 * on "at" (60 s), then measures batches of 100 inserts of documents dated now
 * (which never expire) for 3 s alone, and again while another thread expires
 * the backlog. Prints METRIC ttl.insert_p50_us / _p99_us / _max_us for both
 * phases (suffix _alone and _during), ttl.expire_docs_per_s, and the ratios
 * of the during figures over the alone ones. Never asserts on time.
 */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"
#include "ndb_doc.h"
#include "ndb_kv.h"

#define BATCH 100
#define PHASE_S 3.0
#define MAX_SAMPLES 200000

static int64_t wall_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_REALTIME, &t);
    return (int64_t)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

static void die(const char *what, const ndb_errmsg *m)
{
    fprintf(stderr, "ttl_bench: %s: %s\n", what, m->text);
    exit(1);
}

/* n documents dated at_ms, in one insert. */
static void insert(ndb_doc_db *db, size_t n, int64_t at_ms)
{
    ndb_doc_builder *b;
    if (ndb_doc_builder_new(&b) != NDB_OK)
        exit(1);
    const void **docs = malloc(n * sizeof *docs);
    size_t *lens = malloc(n * sizeof *lens);
    void **own = malloc(n * sizeof *own);
    if (docs == NULL || lens == NULL || own == NULL)
        exit(1);
    for (size_t i = 0; i < n; i++) {
        ndb_doc_builder_reset(b);
        ndb_doc_begin_object(b);
        ndb_doc_key(b, "at", 2);
        ndb_doc_date(b, at_ms);
        ndb_doc_key(b, "pad", 3);
        ndb_doc_string(b, "a hundred bytes of padding, give or take, as a small document would carry them", 80);
        ndb_doc_end_object(b);
        size_t l;
        if (ndb_doc_builder_take(b, &own[i], &l) != NDB_OK)
            exit(1);
        docs[i] = own[i];
        lens[i] = l;
    }
    ndb_errmsg m = {{0}};
    if (ndb_doc_insert_built(db, "s", docs, lens, n, NULL, NULL, &m) != NDB_OK)
        die("insert", &m);
    for (size_t i = 0; i < n; i++)
        free(own[i]);
    free(own);
    free(docs);
    free(lens);
    ndb_doc_builder_free(b);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Inserts batches for PHASE_S seconds (or until *stop); latencies in us. */
static size_t measure(ndb_doc_db *db, double *lat, const volatile int *stop)
{
    size_t n = 0;
    double end = bench_now() + PHASE_S;
    while (n < MAX_SAMPLES && bench_now() < end && !(stop && *stop)) {
        double t0 = bench_now();
        insert(db, BATCH, wall_ms());
        lat[n++] = (bench_now() - t0) * 1e6;
    }
    qsort(lat, n, sizeof *lat, cmp_double);
    return n;
}

typedef struct expiry {
    ndb_doc_db *db;
    uint32_t batch;
    uint64_t deleted;
    double seconds;
    volatile int done;
} expiry;

static void *expire_main(void *arg)
{
    expiry *e = arg;
    ndb_errmsg m = {{0}};
    double t0 = bench_now();
    if (ndb_doc_expire(e->db, wall_ms(), e->batch, 0, &e->deleted, &m) != NDB_OK)
        die("expire", &m);
    e->seconds = bench_now() - t0;
    e->done = 1;
    return NULL;
}

static void report(const char *phase, const double *lat, size_t n)
{
    printf("METRIC ttl.insert_p50_us_%s %.0f us\n", phase, lat[n / 2]);
    printf("METRIC ttl.insert_p99_us_%s %.0f us\n", phase, lat[n * 99 / 100]);
    printf("METRIC ttl.insert_max_us_%s %.0f us\n", phase, lat[n - 1]);
    printf("METRIC ttl.insert_batches_%s %zu batches\n", phase, n);
}

int main(int argc, char **argv)
{
    size_t n = 500000;
    uint32_t batch = 1000;
    const char *dir = NULL;
    int opt;
    while ((opt = getopt(argc, argv, "n:b:d:")) != -1) {
        if (opt == 'n')
            n = strtoull(optarg, NULL, 10);
        else if (opt == 'b')
            batch = (uint32_t)strtoul(optarg, NULL, 10);
        else if (opt == 'd')
            dir = optarg;
        else {
            fprintf(stderr, "usage: %s [-n expired documents] [-b expiry batch] [-d dir]\n", argv[0]);
            return 2;
        }
    }
    char tmp[] = "/tmp/ndb-ttl-bench-XXXXXX";
    if (dir == NULL && (dir = mkdtemp(tmp)) == NULL)
        return 1;
    ndb_kv_options ko;
    ndb_kv_options_init(&ko);
    ndb_kv *kv;
    ndb_errmsg m = {{0}};
    if (ndb_kv_open(dir, &ko, &kv, &m) != NDB_OK)
        die("kv open", &m);
    ndb_doc_options o;
    ndb_doc_options_init(&o);
    ndb_doc_db *db;
    if (ndb_doc_open(kv, &o, &db, &m) != NDB_OK)
        die("doc open", &m);
    ndb_doc_builder *b;
    const void *spec;
    size_t sl;
    if (ndb_doc_builder_new(&b) != NDB_OK)
        return 1;
    ndb_doc_begin_object(b);
    ndb_doc_key(b, "at", 2);
    ndb_doc_int(b, 1);
    ndb_doc_end_object(b);
    ndb_doc_builder_finish(b, &spec, &sl);
    ndb_doc_index_opts io = {.ttl = 1, .expire_after_seconds = 60};
    if (ndb_doc_create_index(db, "s", NULL, spec, sl, &io, &m) != NDB_OK)
        die("create index", &m);
    ndb_doc_builder_free(b);
    int64_t hour_ago = wall_ms() - 3600 * 1000;
    for (size_t done = 0; done < n; done += 10000)
        insert(db, n - done < 10000 ? n - done : 10000, hour_ago);
    printf("# ttl_bench: %zu expired documents, expiry batches of %u, inserts of %d\n", n, batch, BATCH);

    double *lat = malloc(MAX_SAMPLES * sizeof *lat);
    if (lat == NULL)
        return 1;
    size_t k = measure(db, lat, NULL);
    report("alone", lat, k);
    double p50 = lat[k / 2], p99 = lat[k * 99 / 100];

    if (batch == 0)
        batch = 1;
    expiry e = {.db = db, .batch = batch};
    pthread_t th;
    if (pthread_create(&th, NULL, expire_main, &e) != 0)
        return 1;
    k = measure(db, lat, &e.done);
    pthread_join(th, NULL);
    report("during", lat, k);
    printf("METRIC ttl.expired %llu docs\n", (unsigned long long)e.deleted);
    printf("METRIC ttl.expire_docs_per_s %.0f docs/s\n", (double)e.deleted / e.seconds);
    printf("METRIC ratio.ttl.insert_p50_during_vs_alone %.2f x\n", lat[k / 2] / p50);
    printf("METRIC ratio.ttl.insert_p99_during_vs_alone %.2f x\n", lat[k * 99 / 100] / p99);
    free(lat);
    ndb_doc_close(db);
    ndb_kv_close(kv);
    return 0;
}
