/* Shared helpers for the vector/ tests: the whole stack (kv, documents,
 * vectors) in a temporary directory, documents from JSON, a fault env. */
#ifndef VEC_TEST_H
#define VEC_TEST_H

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "env.h"
#include "ndb_doc.h"
#include "ndb_kv.h"
#include "ndb_vec.h"

typedef struct tv {
    char dir[64];
    char kvdir[96], segdir[96];
    ndb_kv *kv;
    ndb_doc_db *doc;
    ndb_vec_db *vec;
    uint64_t segment_bytes;
    ndb_kv_durability durability;
    kv_fault_env *fault; /* NULL: the POSIX env */
    void (*log)(void *ctx, const char *line); /* NULL: quiet (NDB_VEC_TEST_LOG: stderr) */
    void *log_ctx;
} tv;

static inline void quiet(void *ctx, const char *line)
{
    (void)ctx;
    (void)line;
}

/* Opens the stack over t->dir (kept across reopen). */
static inline ndb_status tv_open_st(tv *t, ndb_errmsg *m)
{
    ndb_kv_options ko;
    ndb_kv_options_init(&ko);
    ko.durability = t->durability;
    ko.memtable_bytes = 1u << 20;
    ko.env = t->fault ? kv_env_fault_env(t->fault) : NULL;
    ndb_status st = ndb_kv_open(t->kvdir, &ko, &t->kv, m);
    if (st != NDB_OK)
        return st;
    ndb_doc_options dopt;
    ndb_doc_options_init(&dopt);
    dopt.log = quiet;
    if ((st = ndb_doc_open(t->kv, &dopt, &t->doc, m)) != NDB_OK)
        return st;
    ndb_vec_options o;
    ndb_vec_options_default(&o);
    o.threads = 2;
    o.segment_bytes = t->segment_bytes;
    o.log = t->log ? t->log : getenv("NDB_VEC_TEST_LOG") ? NULL : quiet; /* to see rebuilds and merges */
    o.log_ctx = t->log_ctx;
    return ndb_vec_open(t->kv, t->doc, t->segdir, &o, &t->vec, m);
}

static inline void tv_open(tv *t)
{
    ndb_errmsg m = {{0}};
    ndb_status st = tv_open_st(t, &m);
    cr_assert_eq(st, NDB_OK, "open %s: %s", t->dir, m.text);
}

static inline void tv_close(tv *t)
{
    ndb_vec_close(t->vec);
    ndb_doc_close(t->doc);
    cr_assert_eq(ndb_kv_close(t->kv), NDB_OK);
    t->vec = NULL;
    t->doc = NULL;
    t->kv = NULL;
}

/* After a fault: closes (the kv may report the fault again), drops the fault
 * env and opens the stack again on the real files. */
static inline void tv_reopen_clean(tv *t)
{
    ndb_vec_close(t->vec);
    ndb_doc_close(t->doc);
    ndb_kv_close(t->kv);
    kv_env_fault_free(t->fault);
    t->fault = NULL;
    tv_open(t);
}

/* A fresh directory; segment_bytes 0 is the default. */
static inline void tv_init(tv *t, uint64_t segment_bytes)
{
    memset(t, 0, sizeof *t);
    snprintf(t->dir, sizeof t->dir, "/tmp/ndbvec-XXXXXX");
    cr_assert_not_null(mkdtemp(t->dir));
    snprintf(t->kvdir, sizeof t->kvdir, "%s/kv", t->dir);
    snprintf(t->segdir, sizeof t->segdir, "%s/vseg", t->dir);
    t->segment_bytes = segment_bytes;
    t->durability = NDB_KV_NONE; /* durability has its own tests */
}

static inline void tv_rm(tv *t)
{
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", t->dir);
    if (system(cmd) != 0)
        cr_log_warn("cleanup of %s failed", t->dir);
}

/* An encoded document from JSON: caller frees with free(). */
static inline void *tv_doc(const char *json, size_t *len)
{
    void *d;
    ndb_errmsg m = {{0}};
    cr_assert_eq(ndb_doc_from_json(json, strlen(json), &d, len, &m), NDB_OK, "%s: %s", json, m.text);
    return d;
}

/* A document's field as an integer (for checks); -1 if absent. */
static inline int64_t tv_field_int(const void *doc, size_t len, const char *field)
{
    ndb_doc_val r, v;
    if (ndb_doc_root(doc, len, &r) != NDB_OK || ndb_doc_get_field(&r, field, strlen(field), &v) != NDB_OK ||
        v.type != NDB_DOC_INT)
        return -1;
    return v.u.i;
}

/* ndb_vec_get into a buffer of cap floats (out may be NULL); asserts that the
 * collection has cap dimensions. */
static inline ndb_status tv_get(tv *t, const char *coll, const char *id, void **doc, size_t *dl, float *out,
                                uint32_t cap, ndb_errmsg *m)
{
    float *vec = NULL;
    uint32_t dims = 0;
    ndb_status st = ndb_vec_get(t->vec, coll, id, doc, dl, out ? &vec : NULL, &dims, m);
    if (st == NDB_OK && out) {
        cr_assert_eq(dims, cap, "%s has %u dimensions, not %u", coll, dims, cap);
        memcpy(out, vec, (size_t)cap * 4);
    }
    free(vec);
    return st;
}

/* Inserts one document (JSON) with its vector; returns the status. */
static inline ndb_status tv_insert(tv *t, const char *coll, const char *json, const float *v, uint32_t dims,
                                   ndb_errmsg *m)
{
    size_t l;
    void *d = tv_doc(json, &l);
    ndb_vec_item it = {d, l, v};
    ndb_status st = ndb_vec_insert(t->vec, coll, &it, 1, dims, NULL, m);
    free(d);
    return st;
}

#endif /* VEC_TEST_H */
