/*
 * ndb_kv_last_error under concurrency, without Criterion (so it runs under
 * TSan, label "concurrency"): one thread keeps making the engine record
 * errors (gets that read corrupt blocks of two tables, so the recorded text
 * changes between two messages) while two others read ndb_kv_last_error.
 * Every text read must be whole: "no error" or one of the messages the
 * engine records for those tables, never a mix. Exit status 0 = pass.
 */
#include <dirent.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ndb_kv.h"

#define KEYS 2000
#define ROUNDS 4000

static ndb_kv *kv;
static int failed, done;
static char texts[2][256]; /* the two messages, as the engine records them */

static void fail(const char *what, const char *detail)
{
    fprintf(stderr, "error_concurrency: %s: %s\n", what, detail);
    __atomic_store_n(&failed, 1, __ATOMIC_RELAXED);
}

/* Writes KEYS keys with the given prefix and flushes them to one table. */
static void fill_table(char prefix)
{
    char k[32], v[64];
    for (int i = 0; i < KEYS; i++) {
        snprintf(k, sizeof k, "%c%06d", prefix, i);
        int n = snprintf(v, sizeof v, "value-%06d", i);
        if (ndb_kv_put(kv, k, strlen(k), v, (size_t)n) != NDB_OK) fail("put", ndb_kv_last_error(kv));
    }
    if (ndb_kv_flush(kv) != NDB_OK) fail("flush", ndb_kv_last_error(kv));
}

/* Flips a byte near the start (the first data block) of every table in dir. */
static void corrupt_tables(const char *dir)
{
    DIR *d = opendir(dir);
    if (d == NULL) {
        fail("opendir", dir);
        return;
    }
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        size_t n = strlen(de->d_name);
        if (n < 4 || strcmp(de->d_name + n - 4, ".sst") != 0) continue;
        char path[4400];
        snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
        FILE *f = fopen(path, "r+b");
        if (f == NULL || fseek(f, 50, SEEK_SET) != 0) fail("open table", path);
        int c = f ? fgetc(f) : EOF;
        if (f && (fseek(f, 50, SEEK_SET) != 0 || fputc(c ^ 0xff, f) == EOF)) fail("corrupt table", path);
        if (f) fclose(f);
    }
    closedir(d);
}

/* A get of the first key of table a or b: fails on its corrupt block. */
static ndb_status get_first(int which)
{
    char k[32];
    snprintf(k, sizeof k, "%c%06d", which ? 'b' : 'a', 0);
    void *v;
    size_t vl;
    ndb_status st = ndb_kv_get(kv, NULL, k, strlen(k), &v, &vl);
    if (st == NDB_OK) free(v);
    return st;
}

static void *provoker(void *p)
{
    (void)p;
    for (int i = 0; i < ROUNDS; i++)
        if (get_first(i & 1) != NDB_ECORRUPT) fail("get", "a corrupt block did not give NDB_ECORRUPT");
    __atomic_store_n(&done, 1, __ATOMIC_RELEASE);
    return NULL;
}

static void *watcher(void *p)
{
    (void)p;
    long reads = 0;
    while (!__atomic_load_n(&done, __ATOMIC_ACQUIRE) || reads == 0) {
        const char *t = ndb_kv_last_error(kv);
        if (strcmp(t, texts[0]) != 0 && strcmp(t, texts[1]) != 0) fail("torn or unknown error text", t);
        reads++;
    }
    return NULL;
}

int main(void)
{
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/ndbkv-errors-%d", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp", (int)getpid());
    ndb_kv_options o;
    ndb_kv_options_init(&o);
    o.durability = NDB_KV_NONE;
    o.block_cache_bytes = 0; /* every read goes to the file */
    ndb_errmsg msg;
    if (ndb_kv_open(dir, &o, &kv, &msg) != NDB_OK) {
        fprintf(stderr, "open: %s\n", msg.text);
        return 1;
    }
    fill_table('a');
    fill_table('b');
    if (ndb_kv_close(kv) != NDB_OK) fail("close", "");
    corrupt_tables(dir);
    if (ndb_kv_open(dir, &o, &kv, &msg) != NDB_OK) {
        fprintf(stderr, "reopen: %s\n", msg.text);
        return 1;
    }
    /* learn the two messages, one thread at a time */
    for (int i = 0; i < 2; i++) {
        if (get_first(i) != NDB_ECORRUPT) fail("setup get", "a corrupt block did not give NDB_ECORRUPT");
        snprintf(texts[i], sizeof texts[i], "%s", ndb_kv_last_error(kv));
    }
    if (strcmp(texts[0], texts[1]) == 0) fail("setup", "the two tables' messages are the same");
    pthread_t t[3];
    pthread_create(&t[0], NULL, provoker, NULL);
    pthread_create(&t[1], NULL, watcher, NULL);
    pthread_create(&t[2], NULL, watcher, NULL);
    for (int i = 0; i < 3; i++) pthread_join(t[i], NULL);
    if (ndb_kv_close(kv) != NDB_OK) fail("close", "");
    char cmd[4200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0) fprintf(stderr, "cleanup failed\n");
    if (!failed) printf("error_concurrency: %s | %s\n", texts[0], texts[1]);
    return failed ? 1 : 0;
}
