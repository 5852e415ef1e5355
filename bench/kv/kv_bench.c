/*
 * kv_bench — db_bench's workloads against one key-value backend, chosen at
 * build time: NexaDB's engine/kv (BACKEND_NDB) or LevelDB through its C API
 * (BACKEND_LEVELDB). Both builds share this file, so the workloads, keys,
 * values and timing are identical. RocksDB runs through its own db_bench
 * with the same flags (see run.sh).
 *
 * Workloads (db_bench semantics): fillseq, fillrandom, overwrite,
 * readrandom, readseq, readmissing, seekrandom. Keys are 16 bytes
 * ("%016llu"), values --value_size bytes, half compressible. With
 * --threads=T each thread runs --num operations.
 *
 * Prints db_bench-style lines and "METRIC <backend>_<workload>[_tT] <ops/s> ops/s",
 * and at the end "METRIC <backend>_peak_rss <KiB> KiB".
 */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "bench.h"
#if defined(BACKEND_NDB)
#include "ndb_kv.h"
#define BACKEND "nexadb"
#elif defined(BACKEND_LEVELDB)
#include <leveldb/c.h>
#define BACKEND "leveldb"
#else
#error "define BACKEND_NDB or BACKEND_LEVELDB"
#endif

static struct {
    const char *benchmarks;
    long num, reads;
    int value_size;
    const char *compression;
    int bloom_bits;
    int sync;
    int threads;
    const char *db;
    long write_buffer_size;
    long cache_size;
    int use_existing_db;
} F = {"fillseq,fillrandom,overwrite,readrandom,readseq,readmissing,seekrandom",
       1000000, -1, 100, "none", 10, 0, 1, "/tmp/kvbench-db", 64L << 20, 64L << 20, 0};

/* ------------------------------------------------------------------ backend */

#if defined(BACKEND_NDB)
static ndb_kv *db;
static void die(const char *what, ndb_status st)
{
    fprintf(stderr, "%s: %s (%s)\n", what, ndb_strerror(st), db ? ndb_kv_last_error(db) : "");
    exit(1);
}
static void db_open(void)
{
    ndb_kv_options o;
    ndb_kv_options_init(&o);
    o.durability = F.sync ? NDB_KV_SYNC : NDB_KV_NONE;
    o.memtable_bytes = (size_t)F.write_buffer_size;
    o.block_cache_bytes = (size_t)F.cache_size;
    o.bloom_bits_per_key = (uint32_t)F.bloom_bits;
    o.compression = strcmp(F.compression, "lz4") == 0    ? NDB_KV_COMPRESS_LZ4
                    : strcmp(F.compression, "zstd") == 0 ? NDB_KV_COMPRESS_ZSTD
                                                         : NDB_KV_COMPRESS_NONE;
    ndb_errmsg msg;
    ndb_status st = ndb_kv_open(F.db, &o, &db, &msg);
    if (st != NDB_OK) {
        fprintf(stderr, "open: %s\n", msg.text);
        exit(1);
    }
}
static void db_close(void)
{
    ndb_kv_close(db);
    db = NULL;
}
static void db_put(const char *k, size_t kl, const char *v, size_t vl)
{
    ndb_status st = ndb_kv_put(db, k, kl, v, vl);
    if (st != NDB_OK) die("put", st);
}
static int db_get(const char *k, size_t kl)
{
    void *v;
    size_t vl;
    ndb_status st = ndb_kv_get(db, NULL, k, kl, &v, &vl);
    if (st == NDB_OK) {
        free(v);
        return 1;
    }
    if (st != NDB_ENOTFOUND) die("get", st);
    return 0;
}
typedef ndb_kv_iter *iter_t;
static iter_t it_new(void)
{
    ndb_kv_iter *it;
    ndb_status st = ndb_kv_iter_new(db, NULL, NULL, 0, NULL, 0, &it);
    if (st != NDB_OK) die("iter", st);
    return it;
}
static void it_first(iter_t it) { ndb_kv_iter_seek_first(it); }
static void it_seek_to(iter_t it, const char *k, size_t kl) { ndb_kv_iter_seek(it, k, kl); }
static int it_ok(iter_t it) { return ndb_kv_iter_valid(it); }
static void it_step(iter_t it) { ndb_kv_iter_next(it); }
static size_t it_bytes(iter_t it)
{
    size_t kl, vl;
    ndb_kv_iter_key(it, &kl);
    ndb_kv_iter_value(it, &vl);
    return kl + vl;
}
static void it_done(iter_t it) { ndb_kv_iter_free(it); }
static void db_wait_idle(void) {}
#else
static leveldb_t *db;
static leveldb_options_t *lopt;
static leveldb_readoptions_t *lro;
static leveldb_writeoptions_t *lwo;
static leveldb_filterpolicy_t *lfp;
static leveldb_cache_t *lcache;
static void db_open(void)
{
    lopt = leveldb_options_create();
    leveldb_options_set_create_if_missing(lopt, 1);
    leveldb_options_set_write_buffer_size(lopt, (size_t)F.write_buffer_size);
    lcache = leveldb_cache_create_lru((size_t)F.cache_size);
    leveldb_options_set_cache(lopt, lcache);
    if (F.bloom_bits > 0) {
        lfp = leveldb_filterpolicy_create_bloom(F.bloom_bits);
        leveldb_options_set_filter_policy(lopt, lfp);
    }
    /* LevelDB has no lz4: its only block compression is snappy */
    leveldb_options_set_compression(lopt, strcmp(F.compression, "none") == 0 ? leveldb_no_compression
                                                                            : leveldb_snappy_compression);
    lro = leveldb_readoptions_create();
    lwo = leveldb_writeoptions_create();
    leveldb_writeoptions_set_sync(lwo, (unsigned char)F.sync);
    char *err = NULL;
    db = leveldb_open(lopt, F.db, &err);
    if (err) {
        fprintf(stderr, "open: %s\n", err);
        exit(1);
    }
}
static void db_close(void)
{
    leveldb_close(db);
    leveldb_options_destroy(lopt);
    leveldb_readoptions_destroy(lro);
    leveldb_writeoptions_destroy(lwo);
    if (lfp) leveldb_filterpolicy_destroy(lfp);
    leveldb_cache_destroy(lcache);
    lfp = NULL;
    db = NULL;
}
static void db_put(const char *k, size_t kl, const char *v, size_t vl)
{
    char *err = NULL;
    leveldb_put(db, lwo, k, kl, v, vl, &err);
    if (err) {
        fprintf(stderr, "put: %s\n", err);
        exit(1);
    }
}
static int db_get(const char *k, size_t kl)
{
    char *err = NULL;
    size_t vl;
    char *v = leveldb_get(db, lro, k, kl, &vl, &err);
    if (err) {
        fprintf(stderr, "get: %s\n", err);
        exit(1);
    }
    if (v) {
        leveldb_free(v);
        return 1;
    }
    return 0;
}
typedef leveldb_iterator_t *iter_t;
static iter_t it_new(void) { return leveldb_create_iterator(db, lro); }
static void it_first(iter_t it) { leveldb_iter_seek_to_first(it); }
static void it_seek_to(iter_t it, const char *k, size_t kl) { leveldb_iter_seek(it, k, kl); }
static int it_ok(iter_t it) { return leveldb_iter_valid(it); }
static void it_step(iter_t it) { leveldb_iter_next(it); }
static size_t it_bytes(iter_t it)
{
    size_t kl, vl;
    leveldb_iter_key(it, &kl);
    leveldb_iter_value(it, &vl);
    return kl + vl;
}
static void it_done(iter_t it) { leveldb_iter_destroy(it); }
static void db_wait_idle(void) {}
#endif

/* ------------------------------------------------------------------ harness */

static char *valbuf;
#define VALBUF (1 << 20)

/* Half-compressible values, like db_bench's RandomGenerator at ratio 0.5. */
static void make_values(void)
{
    valbuf = malloc(VALBUF + 4096);
    uint64_t x = 301;
    for (size_t i = 0; i < VALBUF + 4096; i += 100) {
        for (size_t j = 0; j < 50 && i + j < VALBUF + 4096; j++) {
            x = x * 6364136223846793005ull + 1442695040888963407ull;
            valbuf[i + j] = (char)(' ' + (x >> 33) % 95);
        }
        for (size_t j = 50; j < 100 && i + j < VALBUF + 4096; j++) valbuf[i + j] = valbuf[i + j - 50];
    }
}

typedef struct job {
    const char *name;
    int tid;
    long done, found;
    uint64_t rng;
} job;

static inline uint64_t next_rand(job *j)
{
    j->rng ^= j->rng << 13;
    j->rng ^= j->rng >> 7;
    j->rng ^= j->rng << 17;
    return j->rng;
}

static void *run_job(void *p)
{
    job *j = p;
    char k[32];
    size_t vpos = ((size_t)j->tid * 7919) % VALBUF;
    const char *n = j->name;
    long ops = strncmp(n, "read", 4) == 0 || strcmp(n, "seekrandom") == 0 ? F.reads : F.num;
    if (strcmp(n, "fillseq") == 0 || strcmp(n, "fillrandom") == 0 || strcmp(n, "overwrite") == 0) {
        int seq = strcmp(n, "fillseq") == 0;
        for (long i = 0; i < ops; i++) {
            uint64_t key = seq ? (uint64_t)i : next_rand(j) % (uint64_t)F.num;
            snprintf(k, sizeof k, "%016llu", (unsigned long long)key);
            db_put(k, 16, valbuf + vpos, (size_t)F.value_size);
            vpos += (size_t)F.value_size;
            if (vpos >= VALBUF) vpos = 0;
        }
        j->done = ops;
    } else if (strcmp(n, "readrandom") == 0) {
        for (long i = 0; i < ops; i++) {
            snprintf(k, sizeof k, "%016llu", (unsigned long long)(next_rand(j) % (uint64_t)F.num));
            j->found += db_get(k, 16);
        }
        j->done = ops;
    } else if (strcmp(n, "readmissing") == 0) {
        for (long i = 0; i < ops; i++) {
            snprintf(k, sizeof k, "%016llu.", (unsigned long long)(next_rand(j) % (uint64_t)F.num));
            j->found += db_get(k, 17);
        }
        j->done = ops;
    } else if (strcmp(n, "readseq") == 0) {
        iter_t it = it_new();
        long i = 0;
        size_t bytes = 0;
        for (it_first(it); i < ops && it_ok(it); it_step(it)) {
            bytes += it_bytes(it);
            i++;
        }
        it_done(it);
        j->done = i;
        j->found = i;
        if (bytes == 0 && i > 0) fprintf(stderr, "readseq read nothing\n");
    } else if (strcmp(n, "seekrandom") == 0) {
        iter_t it = it_new();
        for (long i = 0; i < ops; i++) {
            snprintf(k, sizeof k, "%016llu", (unsigned long long)(next_rand(j) % (uint64_t)F.num));
            it_seek_to(it, k, 16);
            if (it_ok(it)) {
                j->found++;
                (void)it_bytes(it);
            }
        }
        it_done(it);
        j->done = ops;
    } else {
        fprintf(stderr, "unknown benchmark %s\n", n);
        exit(2);
    }
    return NULL;
}

static void destroy_db(void)
{
    char cmd[4200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", F.db);
    if (system(cmd) != 0) fprintf(stderr, "rm failed\n");
}

static long arg_long(const char *a, const char *name, long *out)
{
    size_t n = strlen(name);
    if (strncmp(a, name, n) == 0 && a[n] == '=') {
        *out = atol(a + n + 1);
        return 1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        long v;
        if (strncmp(a, "--benchmarks=", 13) == 0) F.benchmarks = a + 13;
        else if (arg_long(a, "--num", &v)) F.num = v;
        else if (arg_long(a, "--reads", &v)) F.reads = v;
        else if (arg_long(a, "--value_size", &v)) F.value_size = (int)v;
        else if (arg_long(a, "--key_size", &v)) {
            if (v != 16) {
                fprintf(stderr, "only --key_size=16 is supported\n");
                return 2;
            }
        } else if (strncmp(a, "--compression_type=", 19) == 0) F.compression = a + 19;
        else if (arg_long(a, "--bloom_bits", &v)) F.bloom_bits = (int)v;
        else if (arg_long(a, "--sync", &v)) F.sync = (int)v;
        else if (arg_long(a, "--threads", &v)) F.threads = (int)v;
        else if (strncmp(a, "--db=", 5) == 0) F.db = a + 5;
        else if (arg_long(a, "--write_buffer_size", &v)) F.write_buffer_size = v;
        else if (arg_long(a, "--cache_size", &v)) F.cache_size = v;
        else if (arg_long(a, "--use_existing_db", &v)) F.use_existing_db = (int)v;
        else {
            fprintf(stderr, "unknown flag %s\n", a);
            return 2;
        }
    }
    if (F.reads < 0) F.reads = F.num;
    if (F.threads < 1 || F.threads > 256 || F.value_size < 1 || F.value_size > 4096) {
        fprintf(stderr, "bad --threads or --value_size\n");
        return 2;
    }
    make_values();
    printf("%s: keys 16 bytes, values %d bytes, %ld entries, compression %s, bloom %d bits, sync %d, threads %d\n",
           BACKEND, F.value_size, F.num, F.compression, F.bloom_bits, F.sync, F.threads);
    if (!F.use_existing_db) destroy_db();
    db_open();
    char list[1024];
    snprintf(list, sizeof list, "%s", F.benchmarks);
    for (char *save = NULL, *name = strtok_r(list, ",", &save); name; name = strtok_r(NULL, ",", &save)) {
        if (strcmp(name, "fillseq") == 0 || strcmp(name, "fillrandom") == 0) { /* fresh database */
            db_close();
            destroy_db();
            db_open();
        }
        pthread_t th[256];
        job jobs[256];
        double t0 = bench_now();
        for (int t = 0; t < F.threads; t++) {
            jobs[t] = (job){name, t, 0, 0, 0x9e3779b97f4a7c15ull * (uint64_t)(t + 1) + 12345};
            pthread_create(&th[t], NULL, run_job, &jobs[t]);
        }
        long done = 0, found = 0;
        for (int t = 0; t < F.threads; t++) {
            pthread_join(th[t], NULL);
            done += jobs[t].done;
            found += jobs[t].found;
        }
        double el = bench_now() - t0;
        double ops = done / el;
        printf("%-12s : %11.3f micros/op %10.0f ops/sec", name, el * 1e6 / (double)done, ops);
        if (strncmp(name, "read", 4) == 0 || strcmp(name, "seekrandom") == 0)
            printf(" (%ld of %ld found)", found, done);
        printf("\n");
        if (F.threads > 1)
            printf("METRIC %s_%s_t%d %.0f ops/s\n", BACKEND, name, F.threads, ops);
        else
            printf("METRIC %s_%s %.0f ops/s\n", BACKEND, name, ops);
        if (strncmp(name, "fill", 4) == 0 || strcmp(name, "overwrite") == 0) db_wait_idle();
        fflush(stdout);
    }
#if defined(BACKEND_NDB)
    ndb_kv_stats s;
    ndb_kv_stats_get(db, &s);
    printf("nexadb stats: L0 %u files, L1 %u, L2 %u, compactions %llu, stalls %llu (%llu us), wal syncs %llu, "
           "write-amp %.2f, cache hit %llu miss %llu, bloom useful %llu\n",
           s.levels[0].files, s.levels[1].files, s.levels[2].files, (unsigned long long)s.compactions,
           (unsigned long long)s.stall_count, (unsigned long long)s.stall_micros, (unsigned long long)s.wal_syncs,
           s.write_amplification, (unsigned long long)s.block_cache_hits, (unsigned long long)s.block_cache_misses,
           (unsigned long long)s.bloom_useful);
#endif
    db_close();
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    printf("METRIC %s_peak_rss %ld KiB\n", BACKEND, ru.ru_maxrss);
    free(valbuf);
    return 0;
}
