/* Shared helpers for the engine/doc tests that run over a real ndb_kv in a
 * temporary directory. */
#ifndef DOC_TEST_HELPERS_H
#define DOC_TEST_HELPERS_H

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "doc_int.h"
#include "ndb_doc.h"
#include "ndb_kv.h"

typedef struct tdb {
    char dir[64];
    ndb_kv *kv;
    ndb_doc_db *db;
    bool change_log; /* open with ndb_doc_options.change_log */
} tdb;

static inline void *J(const char *json, size_t *len)
{
    void *d;
    ndb_errmsg m = {{0}};
    cr_assert_eq(ndb_doc_from_json(json, strlen(json), &d, len, &m), NDB_OK, "%s: %s", json,
                 m.text);
    return d;
}

static inline void quiet_log(void *ctx, const char *line)
{
    (void)ctx;
    (void)line;
}

static inline void tdb_open_dir(tdb *t)
{
    ndb_kv_options ko;
    ndb_kv_options_init(&ko);
    ko.durability = NDB_KV_NONE;
    ko.memtable_bytes = 4u << 20;
    ndb_errmsg m = {{0}};
    cr_assert_eq(ndb_kv_open(t->dir, &ko, &t->kv, &m), NDB_OK, "kv open: %s", m.text);
    ndb_doc_options o;
    ndb_doc_options_init(&o);
    o.log = quiet_log;
    o.change_log = t->change_log;
    cr_assert_eq(ndb_doc_open(t->kv, &o, &t->db, &m), NDB_OK, "doc open: %s", m.text);
}

/* Opens a new database in a temporary directory, keeping a change log or not. */
static inline void tdb_open_with(tdb *t, bool change_log)
{
    snprintf(t->dir, sizeof t->dir, "/tmp/ndbdoc-XXXXXX");
    cr_assert_not_null(mkdtemp(t->dir));
    t->change_log = change_log;
    tdb_open_dir(t);
}

static inline void tdb_open(tdb *t)
{
    tdb_open_with(t, false);
}

static inline void tdb_close_only(tdb *t)
{
    ndb_doc_close(t->db);
    cr_assert_eq(ndb_kv_close(t->kv), NDB_OK);
}

static inline void tdb_close(tdb *t)
{
    tdb_close_only(t);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", t->dir);
    cr_assert_eq(system(cmd), 0);
}

/* Inserts JSON documents (a JSON array text); returns NDB status. */
static inline ndb_status ins(tdb *t, const char *coll, const char *json_array, ndb_errmsg *m)
{
    size_t n;
    void *arr = J(json_array, &n);
    ndb_doc_val root, e;
    ndb_doc_root(arr, n, &root);
    cr_assert_eq(root.type, NDB_DOC_ARRAY);
    const void *docs[1024];
    size_t lens[1024];
    void *own[1024];
    size_t cnt = 0;
    ndb_doc_iter it;
    ndb_doc_iter_init(&it, &root);
    while (ndb_doc_iter_next(&it, NULL, NULL, &e)) {
        uint8_t *d = malloc(e.raw_len + 1);
        d[0] = 0xD1;
        memcpy(d + 1, e.raw, e.raw_len);
        own[cnt] = d;
        docs[cnt] = d;
        lens[cnt] = e.raw_len + 1;
        cnt++;
    }
    ndb_status st = ndb_doc_insert(t->db, coll, docs, lens, cnt, NULL, NULL, m);
    for (size_t i = 0; i < cnt; i++)
        free(own[i]);
    free(arr);
    return st;
}

/* Runs a find and returns the results as one JSON array text (static buffer),
 * with _created_at/_updated_at removed for stable comparisons. */
static inline char *strip_ts(char *json)
{
    /* removes "_created_at":"...","_updated_at":"...", pairs */
    const char *keys[] = {"\"_created_at\":\"", "\"_updated_at\":\""};
    for (int k = 0; k < 2; k++) {
        char *p;
        while ((p = strstr(json, keys[k])) != NULL) {
            char *q = strchr(p + strlen(keys[k]), '"');
            q++;
            if (*q == ',')
                q++;
            else if (p[-1] == ',') /* the last field: drop the comma before it */
                p--;
            memmove(p, q, strlen(q) + 1);
        }
    }
    return json;
}

static inline const char *drain(ndb_doc_cursor *c, char *out, size_t cap)
{
    size_t used = 0;
    out[used++] = '[';
    out[used] = 0;
    for (int i = 0;; i++) {
        const void *d;
        size_t dl;
        ndb_errmsg m = {{0}};
        ndb_status st = ndb_doc_cursor_next(c, &d, &dl, &m);
        if (st != NDB_OK) {
            snprintf(out, cap, "ERR %d: %s", st, m.text);
            return out;
        }
        if (d == NULL)
            break;
        char *js;
        size_t jl;
        if (ndb_doc_to_json(d, dl, &js, &jl) != NDB_OK) {
            snprintf(out, cap, "ERR corrupt result document");
            return out;
        }
        strip_ts(js);
        jl = strlen(js);
        cr_assert(used + jl + 3 < cap, "result too long");
        if (i)
            out[used++] = ',';
        memcpy(out + used, js, jl);
        used += jl;
        out[used] = 0;
        free(js);
    }
    out[used++] = ']';
    out[used] = 0;
    return out;
}

typedef struct fq {
    const char *filter, *sort, *proj, *hint;
    uint64_t skip, limit;
} fq;

static inline const char *find_json(tdb *t, const char *coll, fq q, ndb_doc_explain *ex)
{
    static char out[1 << 16];
    size_t fl = 0, sl = 0, pl = 0;
    void *f = q.filter ? J(q.filter, &fl) : NULL;
    void *s = q.sort ? J(q.sort, &sl) : NULL;
    void *p = q.proj ? J(q.proj, &pl) : NULL;
    ndb_doc_find_opts o = {.filter = f, .filter_len = fl, .sort = s, .sort_len = sl,
                           .projection = p, .projection_len = pl, .skip = q.skip,
                           .limit = q.limit, .hint = q.hint};
    ndb_doc_cursor *c;
    ndb_errmsg m = {{0}};
    ndb_status st = ndb_doc_find(t->db, coll, &o, &c, &m);
    if (st != NDB_OK) {
        snprintf(out, sizeof out, "ERR %d: %s", st, m.text);
    } else {
        drain(c, out, sizeof out);
        if (ex)
            ndb_doc_cursor_explain(c, ex);
        ndb_doc_cursor_free(c);
    }
    free(f);
    free(s);
    free(p);
    return out;
}

static inline const char *agg_json(tdb *t, const char *coll, const char *pipeline)
{
    static char out[1 << 16];
    size_t pl;
    void *p = J(pipeline, &pl);
    ndb_doc_cursor *c;
    ndb_errmsg m = {{0}};
    ndb_status st = ndb_doc_aggregate(t->db, coll, p, pl, NULL, &c, &m);
    if (st != NDB_OK) {
        snprintf(out, sizeof out, "ERR %d: %s", st, m.text);
    } else {
        size_t used = 0;
        out[used++] = '[';
        for (int i = 0;; i++) {
            const void *d;
            size_t dl;
            st = ndb_doc_cursor_next(c, &d, &dl, &m);
            if (st != NDB_OK) {
                snprintf(out, sizeof out, "ERR %d: %s", st, m.text);
                used = 0;
                break;
            }
            if (d == NULL)
                break;
            char *js;
            size_t jl;
            if (ndb_doc_to_json(d, dl, &js, &jl) != NDB_OK) {
                snprintf(out, sizeof out, "ERR corrupt result document");
                used = 0;
                break;
            }
            strip_ts(js);
            jl = strlen(js);
            cr_assert(used + jl + 3 < sizeof out);
            if (i)
                out[used++] = ',';
            memcpy(out + used, js, jl);
            used += jl;
            free(js);
        }
        if (used) {
            out[used++] = ']';
            out[used] = 0;
        }
        ndb_doc_cursor_free(c);
    }
    free(p);
    return out;
}

#endif
