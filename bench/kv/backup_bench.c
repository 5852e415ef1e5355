/*
 * backup_bench — what an online backup of engine/kv costs and gives
 * (bench/README.md, "kv — online backup"). Not a test.
 *
 *   backup_bench [-m MiB=1024] [-w writers=4] [-r rounds=3] [-d dir]
 *
 * Loads a database of about MiB mebibytes (1 KiB values, 100 to a batch),
 * then, in each round, runs writers (sync durability, batches of 10 puts of
 * 1 KiB) for as long as the last backup took, alone, and again while
 * (a) a directory backup is taken on the same file system (tables
 * hard-linked and read for their CRC, the log tail copied) and (b) an archive
 * is streamed into a sink that drops it (what a client on a fast network
 * would receive). Then restores the directory backup into a fresh directory
 * and opens it. Prints METRIC lines; the figures are medians over rounds.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bench.h"
#include "ndb_kv.h"

static atomic_ullong ops;
static atomic_int stop_writers;

typedef struct writer_arg {
    ndb_kv *kv;
    int id;
} writer_arg;

static void die(const char *what, ndb_status st, const ndb_errmsg *msg)
{
    fprintf(stderr, "backup_bench: %s: %s (%s)\n", what, msg ? msg->text : "", ndb_strerror(st));
    exit(1);
}

static void fill_value(char *v, size_t n, uint64_t seed)
{
    for (size_t i = 0; i < n; i += 8) {
        seed = seed * 6364136223846793005ull + 1442695040888963407ull;
        memcpy(v + i, &seed, n - i < 8 ? n - i : 8);
    }
}

static void *writer(void *p)
{
    writer_arg *a = p;
    ndb_kv_batch *b;
    if (ndb_kv_batch_new(&b) != NDB_OK) die("batch", NDB_ENOMEM, NULL);
    char k[64], v[1024];
    for (uint64_t n = 0; !atomic_load(&stop_writers); n++) {
        ndb_kv_batch_clear(b);
        for (int i = 0; i < 10; i++) {
            int kl = snprintf(k, sizeof k, "w%02d-%012llu-%d", a->id, (unsigned long long)n, i);
            fill_value(v, sizeof v, n * 16 + (uint64_t)i);
            ndb_kv_batch_put(b, k, (size_t)kl, v, sizeof v);
        }
        ndb_status st = ndb_kv_write(a->kv, b);
        if (st != NDB_OK) die("write", st, NULL);
        atomic_fetch_add(&ops, 10);
    }
    ndb_kv_batch_free(b);
    return NULL;
}

static pthread_t threads[64];

static void writers_start(ndb_kv *kv, int n, writer_arg *args)
{
    atomic_store(&stop_writers, 0);
    for (int i = 0; i < n; i++) {
        args[i] = (writer_arg){kv, i};
        if (pthread_create(&threads[i], NULL, writer, &args[i]) != 0) die("pthread_create", NDB_ENOMEM, NULL);
    }
}

static void writers_stop(int n)
{
    atomic_store(&stop_writers, 1);
    for (int i = 0; i < n; i++) pthread_join(threads[i], NULL);
}

static ndb_status drop(void *arg, const void *buf, size_t n)
{
    (void)buf;
    *(uint64_t *)arg += n;
    return NDB_OK;
}

static int cmp_dbl(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp_dbl);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static void rm_rf(const char *path)
{
    char cmd[4300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", path);
    if (system(cmd) != 0) fprintf(stderr, "backup_bench: %s failed\n", cmd);
}

/* Writes per second over secs with writers running alone. */
static double writes_alone(ndb_kv *kv, int nw, double secs)
{
    writer_arg args[64];
    writers_start(kv, nw, args);
    unsigned long long o0 = atomic_load(&ops);
    double t0 = bench_now();
    while (bench_now() - t0 < secs) usleep(10000);
    double rate = (double)(atomic_load(&ops) - o0) / (bench_now() - t0);
    writers_stop(nw);
    return rate;
}

int main(int argc, char **argv)
{
    int mib = 1024, nw = 4, rounds = 3;
    const char *base = getenv("NDB_BENCH_DIR") ? getenv("NDB_BENCH_DIR") : "/tmp/ndb-bench-backup";
    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "-m") == 0) mib = atoi(argv[i + 1]);
        else if (strcmp(argv[i], "-w") == 0) nw = atoi(argv[i + 1]);
        else if (strcmp(argv[i], "-r") == 0) rounds = atoi(argv[i + 1]);
        else if (strcmp(argv[i], "-d") == 0) base = argv[i + 1];
        else {
            fprintf(stderr, "usage: backup_bench [-m MiB] [-w writers] [-r rounds] [-d dir]\n");
            return 2;
        }
    }
    if (mib < 1 || nw < 1 || nw > 64 || rounds < 1 || rounds > 50) {
        fprintf(stderr, "backup_bench: bad arguments\n");
        return 2;
    }
    char src[4096], bdir[4200], rdir[4200];
    snprintf(src, sizeof src, "%s/db", base);
    rm_rf(base);
    mkdir(base, 0700);
    ndb_kv_options o;
    ndb_kv_options_init(&o);
    ndb_kv *kv;
    ndb_errmsg msg = {{0}};
    ndb_status st = ndb_kv_open(src, &o, &kv, &msg);
    if (st != NDB_OK) die("open", st, &msg);

    /* load */
    double t0 = bench_now();
    ndb_kv_batch *b;
    ndb_kv_batch_new(&b);
    char k[64], v[1024];
    uint64_t keys = (uint64_t)mib * 1024;
    for (uint64_t i = 0; i < keys; i++) {
        int kl = snprintf(k, sizeof k, "load-%012llu", (unsigned long long)((i * 2654435761u) % keys));
        fill_value(v, sizeof v, i);
        ndb_kv_batch_put(b, k, (size_t)kl, v, sizeof v);
        if (ndb_kv_batch_count(b) == 100) {
            if ((st = ndb_kv_write(kv, b)) != NDB_OK) die("load", st, NULL);
            ndb_kv_batch_clear(b);
        }
    }
    if (ndb_kv_batch_count(b) && (st = ndb_kv_write(kv, b)) != NDB_OK) die("load", st, NULL);
    ndb_kv_batch_free(b);
    printf("METRIC backup.load_s %.2f s\n", bench_now() - t0);

    double dir_mbs[50], arch_mbs[50], alone[50], during[50], ratio[50], dir_s[50];
    uint64_t db_bytes = 0;
    for (int r = 0; r < rounds; r++) {
        writer_arg args[64];
        snprintf(bdir, sizeof bdir, "%s/backup%d", base, r);
        writers_start(kv, nw, args);
        unsigned long long o0 = atomic_load(&ops);
        double b0 = bench_now();
        ndb_kv_backup_info info;
        if ((st = ndb_kv_backup(kv, bdir, NULL, &info, &msg)) != NDB_OK) die("backup", st, &msg);
        double b1 = bench_now();
        uint64_t sunk = 0;
        ndb_kv_backup_info ainfo;
        if ((st = ndb_kv_backup_archive(kv, drop, &sunk, NULL, &ainfo, &msg)) != NDB_OK) die("archive", st, &msg);
        double b2 = bench_now();
        unsigned long long o1 = atomic_load(&ops);
        writers_stop(nw);
        db_bytes = info.bytes;
        dir_s[r] = b1 - b0;
        dir_mbs[r] = (double)info.bytes / (1 << 20) / (b1 - b0);
        arch_mbs[r] = (double)sunk / (1 << 20) / (b2 - b1);
        during[r] = (double)(o1 - o0) / (b2 - b0);
        alone[r] = writes_alone(kv, nw, b2 - b0 > 1.0 ? b2 - b0 : 1.0);
        ratio[r] = during[r] / alone[r];
        fprintf(stderr, "round %d: directory %.2f s (%.0f MiB/s), archive %.0f MiB/s, writes %.0f/s during, %.0f/s alone\n",
                r, dir_s[r], dir_mbs[r], arch_mbs[r], during[r], alone[r]);
        if (r + 1 < rounds) rm_rf(bdir);
    }
    printf("METRIC backup.db_bytes %llu bytes\n", (unsigned long long)db_bytes);
    printf("METRIC backup.dir_s %.3f s\n", median(dir_s, rounds));
    printf("METRIC backup.dir_mb_per_s %.0f MiB/s\n", median(dir_mbs, rounds));
    printf("METRIC backup.archive_mb_per_s %.0f MiB/s\n", median(arch_mbs, rounds));
    printf("METRIC backup.writes_alone %.0f puts/s\n", median(alone, rounds));
    printf("METRIC backup.writes_during %.0f puts/s\n", median(during, rounds));
    printf("METRIC backup.writes_during_vs_alone %.2f ratio\n", median(ratio, rounds));

    /* restore the last directory backup */
    snprintf(rdir, sizeof rdir, "%s/restored", base);
    ndb_kv_backup_info rinfo;
    double r0 = bench_now();
    if ((st = ndb_kv_restore(bdir, NULL, 0, rdir, NULL, NULL, &rinfo, &msg)) != NDB_OK) die("restore", st, &msg);
    double r1 = bench_now();
    ndb_kv *rk;
    if ((st = ndb_kv_open(rdir, &o, &rk, &msg)) != NDB_OK) die("open restored", st, &msg);
    double r2 = bench_now();
    ndb_kv_stats s;
    ndb_kv_stats_get(rk, &s);
    if (s.last_seq != rinfo.sequence) {
        fprintf(stderr, "backup_bench: restored at %llu, the backup says %llu\n", (unsigned long long)s.last_seq,
                (unsigned long long)rinfo.sequence);
        return 1;
    }
    ndb_kv_close(rk);
    printf("METRIC backup.restore_s %.2f s\n", r1 - r0);
    printf("METRIC backup.restore_mb_per_s %.0f MiB/s\n", (double)rinfo.bytes / (1 << 20) / (r1 - r0));
    printf("METRIC backup.restored_open_s %.2f s\n", r2 - r1);
    ndb_kv_close(kv);
    rm_rf(base);
    return 0;
}
