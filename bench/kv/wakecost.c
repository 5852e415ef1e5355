/*
 * bench/kv/wakecost.c — what one group-commit cycle costs in wake-ups alone,
 * with no I/O and no work: a "runner" bumps a futex word and wakes N
 * sleeping threads with one FUTEX_WAKE (as engine/kv/write.c does at the end
 * of an fsync); each wakes, checks in and sleeps again; the last to check in
 * wakes the runner. Prints the time per cycle, which bounds how often an
 * fsync carrying N writers can start (see bench/README.md, "kv").
 *
 *   cc -O2 -o /tmp/wakecost bench/kv/wakecost.c -lpthread && /tmp/wakecost 15 5000
 */
#include <limits.h>
#include <linux/futex.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>
static uint32_t gen, back, done_word;
static int N, R;
static void fw(uint32_t *w, uint32_t v) { syscall(SYS_futex, w, FUTEX_WAIT_PRIVATE, v, NULL, NULL, 0); }
static void fk(uint32_t *w, int n) { syscall(SYS_futex, w, FUTEX_WAKE_PRIVATE, n, NULL, NULL, 0); }
static void *th(void *a)
{
    (void)a;
    uint32_t g = 0;
    for (int r = 0; r < R; r++) {
        while (__atomic_load_n(&gen, __ATOMIC_ACQUIRE) == g) fw(&gen, g);
        g++;
        if (__atomic_add_fetch(&back, 1, __ATOMIC_ACQ_REL) == (uint32_t)N) {
            __atomic_add_fetch(&done_word, 1, __ATOMIC_RELEASE);
            fk(&done_word, 1);
        }
    }
    return NULL;
}
int main(int argc, char **argv)
{
    if (argc != 3 || (N = atoi(argv[1])) < 1 || N > 256 || (R = atoi(argv[2])) < 1) {
        fprintf(stderr, "usage: %s THREADS(1-256) CYCLES\n", argv[0]);
        return 2;
    }
    pthread_t t[256];
    for (int i = 0; i < N; i++) pthread_create(&t[i], NULL, th, NULL);
    usleep(100000);
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    for (int r = 0; r < R; r++) {
        uint32_t d = __atomic_load_n(&done_word, __ATOMIC_ACQUIRE);
        __atomic_store_n(&back, 0, __ATOMIC_RELEASE);
        __atomic_add_fetch(&gen, 1, __ATOMIC_RELEASE);
        fk(&gen, INT_MAX);
        while (__atomic_load_n(&done_word, __ATOMIC_ACQUIRE) == d) fw(&done_word, d);
    }
    clock_gettime(CLOCK_MONOTONIC, &b);
    double us = ((b.tv_sec - a.tv_sec) * 1e9 + (b.tv_nsec - a.tv_nsec)) / 1e3 / R;
    printf("threads %d: %.1f us per cycle (wake all, all back asleep), %.2f us per thread\n", N, us, us / N);
    for (int i = 0; i < N; i++) pthread_join(t[i], NULL);
    return 0;
}
