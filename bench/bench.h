/*
 * bench.h — what the C benchmark programs share: a monotonic clock, the
 * seeded generator their data comes from, and writing a file for a Python
 * reference to read. Header-only (each program is one file).
 */
#ifndef NDB_BENCH_H
#define NDB_BENCH_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

/* Seconds on CLOCK_MONOTONIC. */
static inline double bench_now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

/* Uniform in (0, 1) from xorshift64 with a fixed seed: the same data on every
 * run and for every program that draws the same sequence. */
static uint64_t bench_rs = 0x853c49e6748fea9bull;
static inline double bench_uni(void)
{
    bench_rs ^= bench_rs << 13;
    bench_rs ^= bench_rs >> 7;
    bench_rs ^= bench_rs << 17;
    return ((double)(bench_rs >> 11) + 0.5) / 9007199254740992.0;
}

/* Writes bytes to <dir>/<name>, or exits naming the file. */
static inline void bench_write_file(const char *dir, const char *name, const void *p, size_t bytes)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(p, 1, bytes, f) != bytes || fclose(f) != 0) {
        fprintf(stderr, "writing %s failed\n", path);
        exit(1);
    }
}

#endif
