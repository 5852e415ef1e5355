/*
 * Crash test: a child process writes in sync mode (4 threads, single puts and
 * 3-key batches) and reports each acknowledged write through a pipe; the
 * parent kills it with SIGKILL at a random moment, reopens the database and
 * checks that every acknowledged write is present with its value, that every
 * present key has a well-formed value, and that batches are all-or-nothing.
 *
 * NDB_KV_CRASH_KILLS sets the number of kills (default 100; use 1000+ for a
 * long run).
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/wait.h>
#include <time.h>

#include "ndb_kv.h"
#include "testutil.h"

#define THREADS 4

typedef struct ack {
    uint16_t round;
    uint8_t thread;
    uint8_t batch; /* 1: keys <k>a, <k>b, <k>c */
    uint32_t i;
} ack;

static void make_key(char *buf, size_t n, int round, int thread, uint32_t i, char suffix)
{
    snprintf(buf, n, "r%04d-t%d-%07u%c", round, thread, i, suffix);
}

/* The value is derived from the key, so any present key can be checked. */
static size_t make_value(char *buf, const char *key)
{
    size_t kl = strlen(key), n = 40 + (kl * 7 + (unsigned char)key[kl - 1]) % 160;
    for (size_t j = 0; j < n; j++) buf[j] = key[j % kl] ^ (char)(j & 0x1f);
    return n;
}

static ndb_kv_options crash_opts(void)
{
    ndb_kv_options o;
    ndb_kv_options_init(&o);
    o.durability = NDB_KV_SYNC;
    o.memtable_bytes = 128 * 1024; /* flushes and compactions happen during kills */
    o.sst_target_bytes = 128 * 1024;
    o.l1_max_bytes = 512 * 1024;
    o.wal_segment_bytes = 32 * 1024;
    o.block_cache_bytes = 1 << 20;
    return o;
}

typedef struct child_arg {
    ndb_kv *kv;
    int fd;
    int round;
    int thread;
} child_arg;

static void *child_writer(void *p)
{
    child_arg *a = p;
    char k[64], v[256];
    ndb_kv_batch *b;
    if (ndb_kv_batch_new(&b) != NDB_OK) _exit(3);
    for (uint32_t i = 0;; i++) {
        ack m = {(uint16_t)a->round, (uint8_t)a->thread, 0, i};
        ndb_status st;
        if (a->thread == 0 && i % 2 == 1) {
            ndb_kv_batch_clear(b);
            for (char s = 'a'; s <= 'c'; s++) {
                make_key(k, sizeof k, a->round, a->thread, i, s);
                size_t n = make_value(v, k);
                ndb_kv_batch_put(b, k, strlen(k), v, n);
            }
            st = ndb_kv_write(a->kv, b);
            m.batch = 1;
        } else {
            make_key(k, sizeof k, a->round, a->thread, i, '-');
            size_t n = make_value(v, k);
            st = ndb_kv_put(a->kv, k, strlen(k), v, n);
        }
        if (st != NDB_OK) _exit(4);
        if (write(a->fd, &m, sizeof m) != sizeof m) _exit(5);
    }
    return NULL;
}

static void child_main(const char *dir, int round, int fd)
{
    ndb_kv_options o = crash_opts();
    ndb_kv *kv;
    ndb_errmsg msg;
    if (ndb_kv_open(dir, &o, &kv, &msg) != NDB_OK) _exit(2);
    pthread_t t[THREADS];
    child_arg a[THREADS];
    for (int i = 0; i < THREADS; i++) {
        a[i] = (child_arg){kv, fd, round, i};
        pthread_create(&t[i], NULL, child_writer, &a[i]);
    }
    for (;;) pause();
}

typedef struct acks {
    ack *v;
    size_t n, cap;
} acks;

static void push(acks *a, ack m)
{
    if (a->n == a->cap) {
        a->cap = a->cap ? a->cap * 2 : 4096;
        a->v = realloc(a->v, a->cap * sizeof *a->v);
        cr_assert_not_null(a->v);
    }
    a->v[a->n++] = m;
}

static void check_key(ndb_kv *kv, const char *k, int round)
{
    char v[256];
    size_t n = make_value(v, k);
    void *got;
    size_t gl;
    ndb_status st = ndb_kv_get(kv, NULL, k, strlen(k), &got, &gl);
    cr_assert_eq(st, NDB_OK, "round %d: acknowledged key %s missing (%s)", round, k, ndb_strerror(st));
    cr_assert(gl == n && memcmp(got, v, n) == 0, "round %d: key %s has a wrong value", round, k);
    free(got);
}

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

Test(crash, sigkill_during_sync_writes, .timeout = 600)
{
    const char *env = getenv("NDB_KV_CRASH_KILLS");
    int kills = env ? atoi(env) : 100;
    if (kills < 1) kills = 100;
    char *dir = tu_tmpdir("crash");
    cr_assert_not_null(dir);
    acks all = {0};
    unsigned seed = (unsigned)time(NULL);
    srand(seed);
    cr_log_info("crash test: %d kills, seed %u, dir %s", kills, seed, dir);
    for (int round = 0; round < kills; round++) {
        int p[2];
        cr_assert_eq(pipe(p), 0);
        pid_t pid = fork();
        cr_assert_geq(pid, 0);
        if (pid == 0) {
            close(p[0]);
            child_main(dir, round, p[1]);
            _exit(0);
        }
        close(p[1]);
        /* kill between 5 and 80 ms after the child started (open included) */
        uint64_t deadline = now_ms() + 5 + (uint64_t)(rand() % 76);
        ack m;
        char buf[sizeof m * 256];
        size_t have = 0;
        for (;;) {
            uint64_t t = now_ms();
            if (t >= deadline) break;
            struct pollfd pfd = {p[0], POLLIN, 0};
            if (poll(&pfd, 1, (int)(deadline - t)) <= 0) continue;
            ssize_t r = read(p[0], buf + have, sizeof buf - have);
            if (r <= 0) break;
            have += (size_t)r;
            size_t whole = have / sizeof m * sizeof m;
            for (size_t off = 0; off < whole; off += sizeof m) {
                memcpy(&m, buf + off, sizeof m);
                push(&all, m);
            }
            memmove(buf, buf + whole, have - whole);
            have -= whole;
        }
        kill(pid, SIGKILL);
        /* drain: everything written to the pipe was acknowledged before the kill */
        for (;;) {
            ssize_t r = read(p[0], buf + have, sizeof buf - have);
            if (r <= 0) break;
            have += (size_t)r;
            size_t whole = have / sizeof m * sizeof m;
            for (size_t off = 0; off < whole; off += sizeof m) {
                memcpy(&m, buf + off, sizeof m);
                push(&all, m);
            }
            memmove(buf, buf + whole, have - whole);
            have -= whole;
        }
        close(p[0]);
        int status;
        waitpid(pid, &status, 0);
        cr_assert(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL,
                  "round %d: child exited on its own (status %d): it failed", round, status);

        ndb_kv_options o = crash_opts();
        ndb_kv *kv;
        ndb_errmsg msg = {{0}};
        ndb_kv_recovery_info info;
        ndb_status st = ndb_kv_open_ex(dir, &o, &kv, &info, &msg);
        cr_assert_eq(st, NDB_OK, "round %d: reopen failed: %s %s", round, ndb_strerror(st), msg.text);
        char k[64];
        for (size_t i = 0; i < all.n; i++) {
            ack a = all.v[i];
            if (a.batch) {
                for (char s = 'a'; s <= 'c'; s++) {
                    make_key(k, sizeof k, a.round, a.thread, a.i, s);
                    check_key(kv, k, round);
                }
            } else {
                make_key(k, sizeof k, a.round, a.thread, a.i, '-');
                check_key(kv, k, round);
            }
        }
        /* every present key is well formed; batches are all-or-nothing */
        ndb_kv_iter *it;
        cr_assert_eq(ndb_kv_iter_new(kv, NULL, NULL, 0, NULL, 0, &it), NDB_OK);
        char lastbatch[64] = "";
        int batch_seen = 0;
        for (ndb_kv_iter_seek_first(it); ndb_kv_iter_valid(it); ndb_kv_iter_next(it)) {
            size_t kl, vl;
            const char *key = ndb_kv_iter_key(it, &kl);
            const char *val = ndb_kv_iter_value(it, &vl);
            cr_assert(kl > 0 && kl < 60);
            memcpy(k, key, kl);
            k[kl] = 0;
            char v[256];
            size_t n = make_value(v, k);
            cr_assert(vl == n && memcmp(val, v, n) == 0, "round %d: present key %s has a corrupt value", round, k);
            char suffix = k[kl - 1];
            if (suffix >= 'a' && suffix <= 'c') {
                if (suffix == 'a') {
                    cr_assert(batch_seen == 0 || batch_seen == 3, "round %d: partial batch %s", round, lastbatch);
                    batch_seen = 1;
                    memcpy(lastbatch, k, kl - 1);
                    lastbatch[kl - 1] = 0;
                } else {
                    cr_assert(batch_seen > 0 && strncmp(lastbatch, k, kl - 1) == 0, "round %d: partial batch at %s",
                              round, k);
                    batch_seen++;
                }
            }
        }
        cr_assert(batch_seen == 0 || batch_seen == 3, "round %d: partial batch %s", round, lastbatch);
        cr_assert_eq(ndb_kv_iter_status(it), NDB_OK);
        ndb_kv_iter_free(it);
        cr_assert_eq(ndb_kv_close(kv), NDB_OK);
    }
    cr_log_info("crash test: %zu acknowledged writes verified", all.n);
    free(all.v);
    tu_rmdir(dir);
}
