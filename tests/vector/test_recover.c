/*
 * test_recover.c — a collection at open (vector/recover.c) and the one-log
 * guarantees: segment files are derived data (deleted, truncated, damaged,
 * foreign or out-of-date files are rebuilt from kv and searches give the same
 * results as before); a failed fsync or write, a power cut or a kill -9 while
 * documents with vectors are written leaves every acknowledged write with its
 * document and its vector, and nothing half there.
 */
#include <dirent.h>
#include <math.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>

#include "vtest.h"

static uint64_t rs = 0x9E3779B97F4A7C15ull;
static uint64_t rnd(void)
{
    rs ^= rs << 13;
    rs ^= rs >> 7;
    rs ^= rs << 17;
    return rs;
}

enum { DIMS = 12 };

static void vec_for(uint64_t n, uint64_t version, float *v)
{
    for (int j = 0; j < DIMS; j++)
        v[j] = (float)((n * 31 + (uint64_t)j * 7 + version * 13) % 101) - 50.0f;
    v[0] = (float)(n % 1000) + 1.0f;
}

/* A collection with several segments, dead rows and memory rows. */
static void build(tv *t)
{
    ndb_errmsg m;
    cr_assert_eq(ndb_vec_create(t->vec, "c", DIMS, NDB_VEC_DOT, NULL, &m), NDB_OK);
    for (uint64_t i = 0; i < 900; i++) {
        float v[DIMS];
        vec_for(i, 0, v);
        char json[64];
        snprintf(json, sizeof json, "{\"_id\":\"r%03llu\",\"g\":%llu}", (unsigned long long)i,
                 (unsigned long long)(i % 5));
        cr_assert_eq(tv_insert(t, "c", json, v, DIMS, &m), NDB_OK, "%s", m.text);
    }
    for (uint64_t i = 0; i < 900; i += 7) {
        char id[16];
        snprintf(id, sizeof id, "r%03llu", (unsigned long long)i);
        cr_assert_eq(ndb_vec_delete(t->vec, "c", id, &m), NDB_OK);
    }
    ndb_vec_info info;
    cr_assert_eq(ndb_vec_stats(t->vec, "c", &info, &m), NDB_OK);
    cr_assert(info.segments >= 3 && info.dead > 0, "%u segments, %llu dead", info.segments,
              (unsigned long long)info.dead);
}

/* Search results as text, for comparing before and after. */
static char *results(tv *t)
{
    size_t cap = 1 << 16, len = 0;
    char *out = malloc(cap);
    out[0] = 0;
    ndb_errmsg m;
    for (uint64_t qn = 0; qn < 12; qn++) {
        float q[DIMS];
        vec_for(qn * 77 + 5, 3, q);
        ndb_vec_query qq = {.k = 40, .with_documents = 1};
        ndb_vec_result *r;
        cr_assert_eq(ndb_vec_search(t->vec, "c", q, DIMS, &qq, &r, &m), NDB_OK, "%s", m.text);
        for (size_t i = 0; i < r->n; i++) {
            if (len + 64 > cap)
                out = realloc(out, cap *= 2);
            len += (size_t)snprintf(out + len, cap - len, "%s:%g:%lld ", r->hits[i].id, r->hits[i].score,
                                    (long long)tv_field_int(r->hits[i].doc, r->hits[i].doc_len, "g"));
        }
        ndb_vec_results_free(r, 1);
    }
    return out;
}

/* Paths of the collection's segment files. */
static int segment_files(tv *t, char files[][256], int max)
{
    int n = 0;
    DIR *d = opendir(t->segdir);
    cr_assert_not_null(d);
    struct dirent *e;
    char sub[400] = "";
    while ((e = readdir(d)))
        if (e->d_name[0] != '.')
            snprintf(sub, sizeof sub, "%s/%.200s", t->segdir, e->d_name);
    closedir(d);
    cr_assert(sub[0], "no segment directory");
    d = opendir(sub);
    while ((e = readdir(d)) && n < max)
        if (strncmp(e->d_name, "seg-", 4) == 0)
            snprintf(files[n++], 256, "%.200s/%.40s", sub, e->d_name);
    closedir(d);
    return n;
}

static void flip_byte(const char *path, long off)
{
    FILE *f = fopen(path, "r+b");
    cr_assert(f);
    if (off < 0) {
        fseek(f, 0, SEEK_END);
        off += ftell(f);
    }
    fseek(f, off, SEEK_SET);
    int ch = fgetc(f);
    fseek(f, off, SEEK_SET);
    fputc(ch ^ 0x10, f);
    fclose(f);
}

Test(recover, damaged_segments_are_rebuilt_from_kv, .timeout = 120)
{
    tv t;
    tv_init(&t, 64 * 128); /* 128 rows per segment */
    tv_open(&t);
    build(&t);
    char *before = results(&t);
    tv_close(&t);
    char files[64][256];
    /* each kind of damage, to a file chosen in turn */
    for (int kind = 0; kind < 6; kind++) {
        int n = segment_files(&t, files, 64);
        cr_assert(n >= 3);
        const char *f = files[kind % n];
        struct stat st;
        cr_assert_eq(stat(f, &st), 0);
        switch (kind) {
        case 0: unlink(f); break;
        case 1: cr_assert_eq(truncate(f, st.st_size - 1), 0); break;
        case 2: cr_assert_eq(truncate(f, 0), 0); break;
        case 3: flip_byte(f, 100); break; /* a row */
        case 4: flip_byte(f, -3); break;  /* the footer */
        case 5: { /* another collection's file of the same name: its incarnation differs */
            char other[300];
            snprintf(other, sizeof other, "%s.copy", f);
            cr_assert_eq(rename(files[(kind + 1) % n], other), 0);
            cr_assert_eq(rename(other, f), 0);
            break;
        }
        }
        tv_open(&t);
        char *after = results(&t);
        cr_assert_str_eq(after, before, "damage kind %d changed the results", kind);
        free(after);
        ndb_vec_info info;
        ndb_errmsg m;
        cr_assert_eq(ndb_vec_stats(t.vec, "c", &info, &m), NDB_OK);
        cr_assert_eq(info.rows, 900 - 129);
        tv_close(&t);
    }
    /* every segment gone: all rebuilt */
    int n = segment_files(&t, files, 64);
    for (int i = 0; i < n; i++)
        unlink(files[i]);
    tv_open(&t);
    char *after = results(&t);
    cr_assert_str_eq(after, before);
    free(after);
    tv_close(&t);
    cr_assert(segment_files(&t, files, 64) >= 1, "rebuilt segments are written back");
    free(before);
    tv_rm(&t);
}

/* Segment files newer than the kv (the kv restored from a copy): rows the
 * files dropped are back in kv, and the files are rebuilt from it. */
Test(recover, out_of_date_segments_are_rebuilt, .timeout = 120)
{
    tv t;
    tv_init(&t, 64 * 128);
    tv_open(&t);
    build(&t);
    char *before = results(&t);
    tv_close(&t);
    char cmd[512];
    snprintf(cmd, sizeof cmd, "cp -a '%s' '%s.old'", t.kvdir, t.kvdir);
    cr_assert_eq(system(cmd), 0);
    tv_open(&t);
    ndb_errmsg m;
    for (int i = 1; i < 900; i += 3) {
        char id[16];
        snprintf(id, sizeof id, "r%03d", i);
        if (i % 7)
            cr_assert_eq(ndb_vec_delete(t.vec, "c", id, &m), NDB_OK, "%s", m.text);
    }
    cr_assert_eq(ndb_vec_merge(t.vec, "c", &m), NDB_OK, "%s", m.text);
    tv_close(&t);
    snprintf(cmd, sizeof cmd, "rm -rf '%s' && mv '%s.old' '%s'", t.kvdir, t.kvdir, t.kvdir);
    cr_assert_eq(system(cmd), 0);
    tv_open(&t);
    char *after = results(&t);
    cr_assert_str_eq(after, before);
    free(after);
    free(before);
    tv_close(&t);
    tv_rm(&t);
}

/* Random damage to any segment file: opening always succeeds (the files are
 * derived) and the results never change. */
Test(recover, random_segment_damage_never_matters, .timeout = 180)
{
    tv t;
    tv_init(&t, 64 * 128);
    tv_open(&t);
    build(&t);
    char *before = results(&t);
    tv_close(&t);
    char pristine[200], cmd[600];
    snprintf(pristine, sizeof pristine, "%s-pristine", t.segdir);
    snprintf(cmd, sizeof cmd, "cp -a '%s' '%s'", t.segdir, pristine);
    cr_assert_eq(system(cmd), 0);
    for (int it = 0; it < 40; it++) {
        snprintf(cmd, sizeof cmd, "rm -rf '%s' && cp -a '%s' '%s'", t.segdir, pristine, t.segdir);
        cr_assert_eq(system(cmd), 0);
        char files[64][256];
        int n = segment_files(&t, files, 64);
        const char *f = files[rnd() % (uint64_t)n];
        struct stat st;
        cr_assert_eq(stat(f, &st), 0);
        long off = (long)(rnd() % (uint64_t)st.st_size);
        if (rnd() % 4 == 0)
            cr_assert_eq(truncate(f, off), 0);
        else
            flip_byte(f, off);
        tv_open(&t);
        char *after = results(&t);
        cr_assert_str_eq(after, before, "damage at %s+%ld", f, off);
        free(after);
        tv_close(&t);
    }
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", pristine);
    cr_assert_eq(system(cmd), 0);
    free(before);
    tv_rm(&t);
}

/* ---- the one-log guarantees under failures ---------------------------------- */

/* What a writer was told: per id, the last acknowledged version (-1 deleted,
 * 0 never acknowledged); and the versions tried but not acknowledged. */
#define IDS 60
typedef struct acks {
    int acked[IDS];   /* version + 1 of the last acknowledged write; -1 deleted; 0 none */
    int pending[IDS]; /* version + 1 of a write in flight when it failed; -1 a delete; 0 none */
} acks;

static void doc_json(char *out, size_t n, int id, int version)
{
    snprintf(out, n, "{\"_id\":\"k%02d\",\"version\":%d}", id, version);
}

/* One random write to id; returns its status. */
static ndb_status random_write(tv *t, acks *a, int id, int version, ndb_errmsg *m)
{
    char idstr[8], json[64];
    snprintf(idstr, sizeof idstr, "k%02d", id);
    float v[DIMS];
    vec_for((uint64_t)id, (uint64_t)version, v);
    ndb_status st;
    int op = (int)(rnd() % 4);
    a->pending[id] = op == 0 ? -1 : version + 1;
    if (op == 0) {
        st = ndb_vec_delete(t->vec, "c", idstr, m);
        if (st == NDB_ENOTFOUND && a->acked[id] <= 0)
            st = NDB_OK;
    } else if (op == 1 && a->acked[id] <= 0) {
        doc_json(json, sizeof json, id, version);
        st = tv_insert(t, "c", json, v, DIMS, m);
    } else {
        doc_json(json, sizeof json, id, version);
        size_t l;
        void *d = tv_doc(json, &l);
        ndb_vec_item it = {d, l, v};
        st = ndb_vec_upsert(t->vec, "c", idstr, &it, DIMS, NULL, m);
        free(d);
    }
    if (st != NDB_OK)
        return st;
    a->acked[id] = a->pending[id];
    a->pending[id] = 0;
    /* a document write to another collection rides along */
    size_t l;
    void *d = tv_doc("{\"other\":1}", &l);
    const void *docs[1] = {d};
    st = ndb_doc_insert(t->doc, "other", docs, &l, 1, NULL, NULL, m);
    free(d);
    return st;
}

/* After a restart: every id holds its last acknowledged version (or the one in
 * flight when writing failed), with the matching vector; deleted ids are gone;
 * a search returns each live document exactly once. */
static void verify(tv *t, const acks *a, const char *ctx)
{
    ndb_errmsg m;
    int live = 0;
    for (int id = 0; id < IDS; id++) {
        char idstr[8];
        snprintf(idstr, sizeof idstr, "k%02d", id);
        void *doc;
        size_t dl;
        float got[DIMS], want[DIMS];
        ndb_status st = tv_get(t, "c", idstr, &doc, &dl, got, DIMS, &m);
        int ok_versions[2] = {a->acked[id], a->pending[id]};
        if (st == NDB_ENOTFOUND) {
            cr_assert(a->acked[id] <= 0 || a->pending[id] == -1, "%s: acknowledged %s (version %d) lost", ctx, idstr,
                      a->acked[id] - 1);
            continue;
        }
        cr_assert_eq(st, NDB_OK, "%s: %s: %s", ctx, idstr, m.text);
        int64_t version = tv_field_int(doc, dl, "version");
        free(doc);
        cr_assert(version + 1 == ok_versions[0] || version + 1 == ok_versions[1],
                  "%s: %s holds version %lld; acknowledged %d, in flight %d", ctx, idstr, (long long)version,
                  ok_versions[0] - 1, ok_versions[1] - 1);
        vec_for((uint64_t)id, (uint64_t)version, want);
        cr_assert_eq(memcmp(got, want, sizeof got), 0, "%s: %s has another version's vector", ctx, idstr);
        live++;
    }
    float q[DIMS] = {1};
    ndb_vec_query qq = {.k = 1000, .with_documents = 1};
    ndb_vec_result *r;
    cr_assert_eq(ndb_vec_search(t->vec, "c", q, DIMS, &qq, &r, &m), NDB_OK, "%s", m.text);
    cr_assert_eq((int)r->n, live, "%s: search found %zu documents, get %d", ctx, r->n, live);
    for (size_t i = 0; i < r->n; i++)
        for (size_t j = 0; j < i; j++)
            cr_assert(strcmp(r->hits[i].id, r->hits[j].id) != 0, "%s: %s twice", ctx, r->hits[i].id);
    ndb_vec_results_free(r, 1);
}

static void fault_rounds(int fail_sync)
{
    tv t;
    tv_init(&t, 64 * 16);
    t.durability = NDB_KV_SYNC;
    ndb_errmsg m;
    tv_open(&t);
    cr_assert_eq(ndb_vec_create(t.vec, "c", DIMS, NDB_VEC_DOT, NULL, &m), NDB_OK);
    tv_close(&t);
    static acks a;
    memset(&a, 0, sizeof a);
    int version = 0, failed = 0;
    for (int round = 0; round < 12; round++) {
        t.fault = kv_env_fault_new(kv_env_posix());
        tv_open(&t);
        uint64_t after = 1 + rnd() % 60;
        if (fail_sync)
            kv_env_fault_fail_sync_after(t.fault, after);
        else
            kv_env_fault_fail_append_after(t.fault, after);
        ndb_status st = NDB_OK;
        int n = 0, id = 0;
        while (st == NDB_OK && n++ < 400)
            st = random_write(&t, &a, id = (int)(rnd() % IDS), ++version, &m);
        /* a failed segment write only keeps rows in memory; a failed log
         * write or fsync stops every later write until a reopen (tried on
         * another id: the failed write's own may still be on disk) */
        if (st != NDB_OK) {
            failed++;
            cr_assert_neq(random_write(&t, &a, (id + 1) % IDS, ++version, &m), NDB_OK);
        }
        tv_reopen_clean(&t);
        char ctx[32];
        snprintf(ctx, sizeof ctx, "round %d", round);
        verify(&t, &a, ctx);
        /* settle what was in flight: the next round starts from what is stored */
        for (int id = 0; id < IDS; id++) {
            char idstr[8];
            snprintf(idstr, sizeof idstr, "k%02d", id);
            void *doc;
            size_t dl;
            if (tv_get(&t, "c", idstr, &doc, &dl, NULL, 0, &m) == NDB_OK) {
                a.acked[id] = (int)tv_field_int(doc, dl, "version") + 1;
                free(doc);
            } else {
                a.acked[id] = a.acked[id] ? -1 : 0;
            }
            a.pending[id] = 0;
        }
        tv_close(&t);
    }
    cr_assert(failed >= 6, "only %d of 12 rounds had a write fail", failed);
    tv_rm(&t);
}

Test(recover, failed_fsyncs_leave_documents_and_vectors_consistent, .timeout = 180) { fault_rounds(1); }
Test(recover, failed_writes_leave_documents_and_vectors_consistent, .timeout = 180) { fault_rounds(0); }

/* A power cut (unsynced bytes of every file dropped) at a random moment. */
Test(recover, power_cuts_keep_acknowledged_writes, .timeout = 180)
{
    tv t;
    tv_init(&t, 64 * 16);
    t.durability = NDB_KV_SYNC;
    ndb_errmsg m;
    static acks a;
    memset(&a, 0, sizeof a);
    int version = 0;
    for (int round = 0; round < 10; round++) {
        t.fault = kv_env_fault_new(kv_env_posix());
        tv_open(&t);
        if (round == 0)
            cr_assert_eq(ndb_vec_create(t.vec, "c", DIMS, NDB_VEC_DOT, NULL, &m), NDB_OK);
        int n = 1 + (int)(rnd() % 150);
        for (int i = 0; i < n; i++)
            cr_assert_eq(random_write(&t, &a, (int)(rnd() % IDS), ++version, &m), NDB_OK, "%s", m.text);
        cr_assert_eq(kv_env_fault_power_cut(t.fault), NDB_OK);
        tv_reopen_clean(&t);
        char ctx[32];
        snprintf(ctx, sizeof ctx, "power cut %d", round);
        verify(&t, &a, ctx);
        tv_close(&t);
    }
    tv_rm(&t);
}

#define INFLIGHT (-1000000) /* a message: this id is about to be written */

/* kill -9 of a process writing documents with vectors (inserts, upserts of
 * existing ids, deletes, and documents in another collection). */
static void crash_round(tv *t, int round, long run_us, acks *a, int *version)
{
    int fds[2];
    cr_assert_eq(pipe(fds), 0);
    pid_t pid = fork();
    cr_assert(pid >= 0);
    if (pid == 0) {
        close(fds[0]);
        ndb_errmsg m;
        if (tv_open_st(t, &m) != NDB_OK)
            _exit(2);
        if (round == 0 && ndb_vec_create(t->vec, "c", DIMS, NDB_VEC_DOT, NULL, &m) != NDB_OK)
            _exit(3);
        for (;;) {
            /* tell the parent which id is about to be written, then what was acknowledged */
            int id = (int)(rnd() % IDS);
            int intent[2] = {id, INFLIGHT};
            if (write(fds[1], intent, sizeof intent) != sizeof intent)
                _exit(5);
            if (random_write(t, a, id, ++*version, &m) != NDB_OK)
                _exit(4);
            int msg[2] = {id, a->acked[id]};
            if (write(fds[1], msg, sizeof msg) != sizeof msg)
                _exit(5);
        }
    }
    close(fds[1]);
    int msg[2], inflight = -1;
    if (read(fds[0], msg, sizeof msg) == sizeof msg)
        inflight = msg[0];
    struct timespec ts = {0, run_us * 1000};
    nanosleep(&ts, NULL);
    kill(pid, SIGKILL);
    int wst;
    waitpid(pid, &wst, 0);
    cr_assert(WIFSIGNALED(wst), "child exited with %d before the kill", WEXITSTATUS(wst));
    while (read(fds[0], msg, sizeof msg) == sizeof msg) {
        if (msg[1] == INFLIGHT) {
            inflight = msg[0];
        } else {
            a->acked[msg[0]] = msg[1];
            inflight = -1;
        }
    }
    close(fds[0]);
    /* the write in flight at the kill (inflight) may or may not have happened */
    ndb_errmsg m;
    tv_open(t);
    for (int id = 0; id < IDS; id++) {
        char idstr[8];
        snprintf(idstr, sizeof idstr, "k%02d", id);
        void *doc;
        size_t dl;
        float got[DIMS], want[DIMS];
        ndb_status st = tv_get(t, "c", idstr, &doc, &dl, got, DIMS, &m);
        if (st == NDB_ENOTFOUND) {
            cr_assert(a->acked[id] <= 0 || id == inflight, "round %d: acknowledged %s lost", round, idstr);
            a->acked[id] = a->acked[id] ? -1 : 0;
            continue;
        }
        cr_assert_eq(st, NDB_OK, "round %d: %s: %s", round, idstr, m.text);
        int64_t v = tv_field_int(doc, dl, "version");
        free(doc);
        cr_assert(v + 1 >= a->acked[id], "round %d: %s holds version %lld, acknowledged %d", round, idstr,
                  (long long)v, a->acked[id] - 1);
        vec_for((uint64_t)id, (uint64_t)v, want);
        cr_assert_eq(memcmp(got, want, sizeof got), 0, "round %d: %s has another version's vector", round, idstr);
        a->acked[id] = (int)v + 1; /* the unacknowledged write that made it counts from now on */
        *version = *version > (int)v ? *version : (int)v;
    }
    *version += 1000; /* past anything the child may have written */
    tv_close(t);
}

Test(recover, kill9_keeps_acknowledged_writes, .timeout = 240)
{
    tv t;
    tv_init(&t, 64 * 16);
    t.durability = NDB_KV_SYNC;
    static acks a;
    memset(&a, 0, sizeof a);
    int version = 0;
    int rounds = getenv("NDB_VEC_CRASH_ROUNDS") ? atoi(getenv("NDB_VEC_CRASH_ROUNDS")) : 20;
    for (int round = 0; round < rounds; round++)
        crash_round(&t, round, 20000 + (long)(rnd() % 150000), &a, &version);
    tv_rm(&t);
}
