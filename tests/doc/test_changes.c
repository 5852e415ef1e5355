/* The change log and change streams (changes.c): the events each write
 * makes, in commit order; resuming after any token, also across a reopen;
 * a collection's stream and its invalidation; pipelines; updateLookup;
 * trimming; a watch waiting for writers; concurrent writers seen exactly
 * once each. */
#include <pthread.h>
#include <time.h>

#include <lz4.h>

#include "helpers.h"

/* The next event as JSON (static buffer), with wallTime and the stored
 * timestamps removed; "TIMEOUT", "CLOSED", "RANGE" or "ERR n: msg" else. */
static const char *next_ev(ndb_doc_watch *w, int64_t wait_ns)
{
    static char out[1 << 16];
    const void *ev;
    size_t len;
    ndb_errmsg m = {{0}};
    ndb_status st = ndb_doc_watch_next(w, wait_ns, &ev, &len, &m);
    if (st == NDB_ETIMEDOUT)
        return "TIMEOUT";
    if (st == NDB_ECLOSED)
        return "CLOSED";
    if (st == NDB_ERANGE)
        return "RANGE";
    if (st != NDB_OK) {
        snprintf(out, sizeof out, "ERR %d: %s", st, m.text);
        return out;
    }
    char *js;
    size_t jl;
    cr_assert_eq(ndb_doc_to_json(ev, len, &js, &jl), NDB_OK);
    strip_ts(js);
    char *p = strstr(js, "\"wallTime\":{\"$date\":");
    if (p != NULL) {
        char *q = strchr(p, '}') + 1;
        if (*q == ',')
            q++;
        memmove(p, q, strlen(q) + 1);
    }
    snprintf(out, sizeof out, "%s", js);
    free(js);
    return out;
}

/* The event's token, from its JSON: {"_id":{"_data":"<hex>"}...}. */
static void token_from(const char *json, uint8_t tok[NDB_DOC_TOKEN_LEN])
{
    const char *p = strstr(json, "\"_data\":\"");
    cr_assert_not_null(p, "%s", json);
    p += 9;
    for (int i = 0; i < NDB_DOC_TOKEN_LEN; i++) {
        unsigned v;
        cr_assert_eq(sscanf(p + 2 * i, "%2x", &v), 1);
        tok[i] = (uint8_t)v;
    }
}

/* The event's JSON without its _id (tokens differ run to run only by position). */
static const char *body(const char *json)
{
    const char *p = strstr(json, "\"operationType\"");
    return p ? p : json;
}

static ndb_doc_watch *watch(tdb *t, const char *coll, const char *pipeline, const uint8_t *tok, bool lookup)
{
    size_t pl = 0;
    void *p = pipeline ? J(pipeline, &pl) : NULL;
    ndb_doc_watch_opts o = {.collection = coll, .pipeline = p, .pipeline_len = pl, .resume_after = tok,
                            .resume_len = tok ? NDB_DOC_TOKEN_LEN : 0, .update_lookup = lookup};
    ndb_doc_watch *w = NULL;
    ndb_errmsg m = {{0}};
    ndb_status st = ndb_doc_watch_open(t->db, &o, &w, &m);
    free(p);
    cr_assert_eq(st, NDB_OK, "watch: %s", m.text);
    return w;
}

static void update(tdb *t, const char *coll, const char *id, const char *upd)
{
    size_t l;
    void *u = J(upd, &l);
    ndb_errmsg m = {{0}};
    cr_assert_eq(ndb_doc_update(t->db, coll, id, strlen(id), u, l, NULL, &m), NDB_OK, "%s", m.text);
    free(u);
}

static void replace(tdb *t, const char *coll, const char *id, const char *doc)
{
    size_t l;
    void *d = J(doc, &l);
    ndb_doc_txn *x;
    ndb_errmsg m = {{0}};
    cr_assert_eq(ndb_doc_txn_begin(t->db, coll, NULL, &x, &m), NDB_OK, "%s", m.text);
    cr_assert_eq(ndb_doc_txn_replace(x, id, strlen(id), d, l, NULL, &m), NDB_OK, "%s", m.text);
    cr_assert_eq(ndb_doc_txn_commit(x, &m), NDB_OK, "%s", m.text);
    cr_assert_eq(ndb_doc_txn_end(x, &m), NDB_OK, "%s", m.text);
    free(d);
}

static void del(tdb *t, const char *coll, const char *id)
{
    ndb_errmsg m = {{0}};
    cr_assert_eq(ndb_doc_delete(t->db, coll, id, strlen(id), NULL, &m), NDB_OK, "%s", m.text);
}

static void ok_ins(tdb *t, const char *coll, const char *json)
{
    ndb_errmsg m = {{0}};
    cr_assert_eq(ins(t, coll, json, &m), NDB_OK, "%s: %s", json, m.text);
}

/* The writes every test below starts from, and the events they make. */
static void writes(tdb *t)
{
    ok_ins(t, "a", "[{\"_id\":\"1\",\"n\":1,\"p\":{\"x\":1,\"y\":2}},{\"_id\":\"2\",\"n\":2}]");
    ok_ins(t, "b", "[{\"_id\":\"9\"}]");
    update(t, "a", "1", "{\"$set\":{\"p.x\":5,\"m\":[1]},\"$unset\":{\"n\":\"\"}}");
    replace(t, "a", "2", "{\"k\":true}");
    del(t, "a", "1");
    ndb_errmsg m = {{0}};
    cr_assert_eq(ndb_doc_drop_collection(t->db, "a", &m), NDB_OK, "%s", m.text);
}

static const char *const EVENTS[] = {
    "\"operationType\":\"insert\",\"ns\":{\"db\":\"nexadb\",\"coll\":\"a\"},\"documentKey\":{\"_id\":\"1\"},"
    "\"fullDocument\":{\"_id\":\"1\",\"n\":1,\"p\":{\"x\":1,\"y\":2}}}",
    "\"operationType\":\"insert\",\"ns\":{\"db\":\"nexadb\",\"coll\":\"a\"},\"documentKey\":{\"_id\":\"2\"},"
    "\"fullDocument\":{\"_id\":\"2\",\"n\":2}}",
    "\"operationType\":\"insert\",\"ns\":{\"db\":\"nexadb\",\"coll\":\"b\"},\"documentKey\":{\"_id\":\"9\"},"
    "\"fullDocument\":{\"_id\":\"9\"}}",
    "\"operationType\":\"update\",\"ns\":{\"db\":\"nexadb\",\"coll\":\"a\"},\"documentKey\":{\"_id\":\"1\"},"
    "\"updateDescription\":{\"updatedFields\":{\"p.x\":5,\"m\":[1]},\"removedFields\":[\"n\"]}}",
    "\"operationType\":\"replace\",\"ns\":{\"db\":\"nexadb\",\"coll\":\"a\"},\"documentKey\":{\"_id\":\"2\"},"
    "\"fullDocument\":{\"_id\":\"2\",\"k\":true}}",
    "\"operationType\":\"delete\",\"ns\":{\"db\":\"nexadb\",\"coll\":\"a\"},\"documentKey\":{\"_id\":\"1\"}}",
    "\"operationType\":\"drop\",\"ns\":{\"db\":\"nexadb\",\"coll\":\"a\"}}",
};
#define NEVENTS (sizeof EVENTS / sizeof *EVENTS)

Test(changes, every_write_in_commit_order)
{
    tdb t;
    tdb_open_with(&t, true);
    ndb_doc_watch *w = watch(&t, NULL, NULL, NULL, false);
    cr_assert_str_eq(next_ev(w, 0), "TIMEOUT");
    writes(&t);
    for (size_t i = 0; i < NEVENTS; i++)
    {
        const char *e = body(next_ev(w, 0));
        cr_assert_str_eq(e, EVENTS[i], "event %zu: %s", i, e);
    }
    cr_assert_str_eq(next_ev(w, 0), "TIMEOUT");
    /* updatedFields holds the stored _updated_at too; strip_ts removed it above */
    ndb_doc_watch_close(w);
    tdb_close(&t);
}

Test(changes, no_log_no_watch)
{
    tdb t;
    tdb_open(&t);
    ndb_doc_watch_opts o = {0};
    ndb_doc_watch *w = NULL;
    ndb_errmsg m = {{0}};
    cr_assert_eq(ndb_doc_watch_open(t.db, &o, &w, &m), NDB_EUNIMPL);
    tdb_close(&t);
}

Test(changes, resume_after_any_token_also_after_reopen)
{
    tdb t;
    tdb_open_with(&t, true);
    uint8_t first[NDB_DOC_TOKEN_LEN];
    ndb_doc_watch *w0 = watch(&t, NULL, NULL, NULL, false);
    ndb_doc_watch_token(w0, first);
    ndb_doc_watch_close(w0);
    writes(&t);
    uint8_t toks[NEVENTS][NDB_DOC_TOKEN_LEN];
    ndb_doc_watch *w = watch(&t, NULL, NULL, first, false);
    for (size_t i = 0; i < NEVENTS; i++)
        token_from(next_ev(w, 0), toks[i]);
    ndb_doc_watch_close(w);
    for (int round = 0; round < 2; round++) {
        for (size_t i = 0; i < NEVENTS; i++) {
            w = watch(&t, NULL, NULL, toks[i], false);
            for (size_t j = i + 1; j < NEVENTS; j++)
                cr_assert_str_eq(body(next_ev(w, 0)), EVENTS[j], "round %d, after %zu: event %zu", round, i, j);
            cr_assert_str_eq(next_ev(w, 0), "TIMEOUT");
            ndb_doc_watch_close(w);
        }
        tdb_close_only(&t);
        tdb_open_dir(&t);
    }
    /* writes after the reopen continue the sequence */
    ok_ins(&t, "c", "[{\"_id\":\"z\"}]");
    w = watch(&t, NULL, NULL, toks[NEVENTS - 1], false);
    cr_assert_str_eq(body(next_ev(w, 0)),
                     "\"operationType\":\"insert\",\"ns\":{\"db\":\"nexadb\",\"coll\":\"c\"},"
                     "\"documentKey\":{\"_id\":\"z\"},\"fullDocument\":{\"_id\":\"z\"}}");
    ndb_doc_watch_close(w);
    /* a token from nowhere */
    uint8_t bad[NDB_DOC_TOKEN_LEN] = {9};
    ndb_doc_watch_opts o = {.resume_after = bad, .resume_len = sizeof bad};
    ndb_errmsg m = {{0}};
    cr_assert_eq(ndb_doc_watch_open(t.db, &o, &w, &m), NDB_EINVAL);
    memcpy(bad, toks[0], sizeof bad);
    bad[1] = 0x7f; /* far ahead of the log */
    cr_assert_eq(ndb_doc_watch_open(t.db, &o, &w, &m), NDB_EINVAL, "%s", m.text);
    tdb_close(&t);
}

Test(changes, a_collection_stream_ends_with_its_drop)
{
    tdb t;
    tdb_open_with(&t, true);
    ndb_doc_watch *w = watch(&t, "a", NULL, NULL, false);
    writes(&t);
    for (size_t i = 0; i < NEVENTS; i++) {
        if (i == 2)
            continue; /* collection b */
        cr_assert_str_eq(body(next_ev(w, 0)), EVENTS[i], "event %zu", i);
    }
    const char *inv = next_ev(w, 0);
    cr_assert(strstr(inv, "\"operationType\":\"invalidate\"") != NULL, "%s", inv);
    cr_assert_str_eq(next_ev(w, 0), "CLOSED");
    ndb_doc_watch_close(w);
    tdb_close(&t);
}

Test(changes, pipelines_filter_and_reshape)
{
    tdb t;
    tdb_open_with(&t, true);
    ndb_doc_watch *w = watch(&t, NULL,
                             "[{\"$match\":{\"operationType\":{\"$in\":[\"insert\",\"delete\"]},\"ns.coll\":\"a\"}},"
                             "{\"$project\":{\"operationType\":1,\"documentKey\":1}}]",
                             NULL, false);
    writes(&t);
    const char *want[] = {"\"insert\",\"documentKey\":{\"_id\":\"1\"}}", "\"insert\",\"documentKey\":{\"_id\":\"2\"}}",
                          "\"delete\",\"documentKey\":{\"_id\":\"1\"}}"};
    for (int i = 0; i < 3; i++) {
        const char *e = next_ev(w, 0);
        cr_assert(strstr(e, want[i]) != NULL && strstr(e, "\"ns\"") == NULL, "%d: %s", i, e);
    }
    cr_assert_str_eq(next_ev(w, 0), "TIMEOUT");
    /* the position moved past the events the pipeline dropped */
    uint8_t tok[NDB_DOC_TOKEN_LEN];
    ndb_doc_watch_token(w, tok);
    ndb_doc_watch_close(w);
    w = watch(&t, NULL, NULL, tok, false);
    cr_assert_str_eq(next_ev(w, 0), "TIMEOUT");
    ndb_doc_watch_close(w);
    /* stages a change stream does not take */
    size_t pl;
    void *p = J("[{\"$group\":{\"_id\":null}}]", &pl);
    ndb_doc_watch_opts o = {.pipeline = p, .pipeline_len = pl};
    ndb_errmsg m = {{0}};
    cr_assert_eq(ndb_doc_watch_open(t.db, &o, &w, &m), NDB_EINVAL);
    cr_assert(strstr(m.text, "$group") != NULL, "%s", m.text);
    free(p);
    tdb_close(&t);
}

Test(changes, update_lookup_reads_the_document_as_it_is)
{
    tdb t;
    tdb_open_with(&t, true);
    ndb_doc_watch *w = watch(&t, "a", "[{\"$match\":{\"operationType\":\"update\"}}]", NULL, true);
    ok_ins(&t, "a", "[{\"_id\":\"1\",\"n\":1},{\"_id\":\"2\",\"n\":1}]");
    update(&t, "a", "1", "{\"$inc\":{\"n\":1}}");
    update(&t, "a", "1", "{\"$inc\":{\"n\":1}}");
    update(&t, "a", "2", "{\"$inc\":{\"n\":1}}");
    del(&t, "a", "2");
    /* both updates of 1 show it as it is now (n 3); 2 is gone (null) */
    const char *e = next_ev(w, 0);
    cr_assert(strstr(e, "\"fullDocument\":{\"_id\":\"1\",\"n\":3}") != NULL, "%s", e);
    e = next_ev(w, 0);
    cr_assert(strstr(e, "\"fullDocument\":{\"_id\":\"1\",\"n\":3}") != NULL, "%s", e);
    e = next_ev(w, 0);
    cr_assert(strstr(e, "\"documentKey\":{\"_id\":\"2\"}") != NULL && strstr(e, "\"fullDocument\":null") != NULL,
              "%s", e);
    ndb_doc_watch_close(w);
    tdb_close(&t);
}

Test(changes, trimming_by_size_and_age)
{
    tdb t;
    tdb_open_with(&t, true);
    uint8_t start[NDB_DOC_TOKEN_LEN];
    ndb_doc_watch *w = watch(&t, NULL, NULL, NULL, false);
    ndb_doc_watch_token(w, start);
    for (int i = 0; i < 50; i++) {
        char js[64];
        snprintf(js, sizeof js, "[{\"_id\":\"d%02d\"}]", i);
        ok_ins(&t, "a", js);
    }
    ndb_doc_changes_info info;
    ndb_doc_changes_info_get(t.db, &info);
    cr_assert_eq(info.next_seq - info.first_seq, 50);
    cr_assert_eq(info.watchers, 1);
    uint64_t per = info.bytes / 50;
    cr_assert(per > 10 && info.bytes % 50 == 0, "%llu bytes", (unsigned long long)info.bytes);
    /* nothing is old yet, and no size bound: nothing goes */
    uint64_t n = 99;
    ndb_errmsg m = {{0}};
    int64_t now = (int64_t)time(NULL) * 1000;
    cr_assert_eq(ndb_doc_changes_trim(t.db, now, 3600000, 0, 1000, &n, &m), NDB_OK, "%s", m.text);
    cr_assert_eq(n, 0);
    /* keep 20 records' bytes, 10 at most per call */
    cr_assert_eq(ndb_doc_changes_trim(t.db, now, 0, 20 * per, 10, &n, &m), NDB_OK, "%s", m.text);
    cr_assert_eq(n, 10);
    cr_assert_eq(ndb_doc_changes_trim(t.db, now, 0, 20 * per, 1000, &n, &m), NDB_OK, "%s", m.text);
    cr_assert_eq(n, 20);
    ndb_doc_changes_info_get(t.db, &info);
    cr_assert_eq(info.next_seq - info.first_seq, 20);
    cr_assert_eq(info.bytes, 20 * per);
    /* the open watch stood before them: it fell behind */
    cr_assert_str_eq(next_ev(w, 0), "RANGE");
    ndb_doc_watch_close(w);
    ndb_doc_watch_opts o = {.resume_after = start, .resume_len = sizeof start};
    cr_assert_eq(ndb_doc_watch_open(t.db, &o, &w, &m), NDB_ERANGE);
    /* what is kept survives a reopen; an hour later all of it is old */
    tdb_close_only(&t);
    tdb_open_dir(&t);
    ndb_doc_changes_info_get(t.db, &info);
    cr_assert_eq(info.next_seq - info.first_seq, 20);
    cr_assert_eq(info.bytes, 20 * per);
    cr_assert_eq(ndb_doc_changes_trim(t.db, now + 7200000, 3600000, 0, 1000, &n, &m), NDB_OK, "%s", m.text);
    cr_assert_eq(n, 20);
    ndb_doc_changes_info_get(t.db, &info);
    cr_assert_eq(info.bytes, 0);
    cr_assert_eq(info.first_seq, info.next_seq);
    /* the sequence goes on after an empty log and a reopen */
    tdb_close_only(&t);
    tdb_open_dir(&t);
    w = watch(&t, NULL, NULL, NULL, false);
    ok_ins(&t, "a", "[{\"_id\":\"late\"}]");
    cr_assert(strstr(next_ev(w, 0), "\"late\"") != NULL);
    ndb_doc_watch_close(w);
    tdb_close(&t);
}

Test(changes, a_large_batch_spans_records_and_resumes_inside_one)
{
    tdb t;
    tdb_open_with(&t, true);
    ndb_doc_watch *w = watch(&t, NULL, NULL, NULL, false);
    /* 300 documents of 10 KB: 3 MB of entries, so at least 3 records */
    char *js = malloc(300 * 10100 + 16);
    size_t at = 0;
    js[at++] = '[';
    for (int i = 0; i < 300; i++) {
        at += (size_t)sprintf(js + at, "%s{\"_id\":\"d%03d\",\"s\":\"", i ? "," : "", i);
        memset(js + at, 'x', 10000);
        at += 10000;
        at += (size_t)sprintf(js + at, "\"}");
    }
    js[at++] = ']';
    js[at] = 0;
    ok_ins(&t, "a", js);
    free(js);
    ndb_doc_changes_info info;
    ndb_doc_changes_info_get(t.db, &info);
    cr_assert_geq(info.next_seq - info.first_seq, 3);
    uint8_t tok[NDB_DOC_TOKEN_LEN];
    for (int i = 0; i < 300; i++) {
        const char *e = next_ev(w, 0);
        char id[32];
        snprintf(id, sizeof id, "{\"_id\":\"d%03d\"}", i);
        cr_assert(strstr(e, id) != NULL, "%d", i);
        if (i == 150)
            token_from(e, tok);
    }
    cr_assert_str_eq(next_ev(w, 0), "TIMEOUT");
    ndb_doc_watch_close(w);
    w = watch(&t, NULL, NULL, tok, false);
    for (int i = 151; i < 300; i++) {
        char id[32];
        snprintf(id, sizeof id, "{\"_id\":\"d%03d\"}", i);
        cr_assert(strstr(next_ev(w, 0), id) != NULL, "%d", i);
    }
    cr_assert_str_eq(next_ev(w, 0), "TIMEOUT");
    ndb_doc_watch_close(w);
    tdb_close(&t);
}

/* The events of a watch from the start of the log, one per line, until it has
 * none (or an error, which ends the text). */
static char *all_events(tdb *t)
{
    size_t cap = 1 << 20, at = 0;
    char *out = malloc(cap);
    cr_assert_not_null(out);
    /* after the whole of record 0: before the first record */
    uint8_t zero[NDB_DOC_TOKEN_LEN] = {0x01, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff};
    ndb_doc_watch_opts o = {.resume_after = zero, .resume_len = sizeof zero};
    ndb_doc_watch *w;
    ndb_errmsg m = {{0}};
    cr_assert_eq(ndb_doc_watch_open(t->db, &o, &w, &m), NDB_OK, "%s", m.text);
    for (;;) {
        const char *e = next_ev(w, 0);
        size_t l = strlen(e);
        if (at + l + 2 > cap)
            cr_assert_not_null(out = realloc(out, cap *= 2));
        memcpy(out + at, e, l);
        at += l;
        out[at++] = '\n';
        if (strcmp(e, "TIMEOUT") == 0 || strncmp(e, "ERR", 3) == 0)
            break;
    }
    out[at] = 0;
    ndb_doc_watch_close(w);
    return out;
}

/* Rewrites every record of the log as fn returns it (in place, by kv puts). */
static int each_record(tdb *t, void (*fn)(uint8_t *v, size_t *vl))
{
    uint8_t lo[2] = {0, 'e'}, hi[2] = {0, 'f'};
    ndb_kv_iter *it;
    ndb_kv_batch *b;
    cr_assert_eq(ndb_kv_iter_new(t->kv, NULL, lo, 2, hi, 2, &it), NDB_OK);
    cr_assert_eq(ndb_kv_batch_new(&b), NDB_OK);
    int n = 0;
    for (ndb_kv_iter_seek_first(it); ndb_kv_iter_valid(it); ndb_kv_iter_next(it), n++) {
        size_t kl, vl;
        const void *k = ndb_kv_iter_key(it, &kl);
        const void *v = ndb_kv_iter_value(it, &vl);
        uint8_t *nv = malloc(vl + (64u << 20)); /* room for a decompressed record */
        cr_assert_not_null(nv);
        memcpy(nv, v, vl);
        fn(nv, &vl);
        cr_assert_eq(ndb_kv_batch_put(b, k, kl, nv, vl), NDB_OK);
        free(nv);
    }
    cr_assert_eq(ndb_kv_iter_status(it), NDB_OK);
    ndb_kv_iter_free(it);
    cr_assert_eq(ndb_kv_write(t->kv, b), NDB_OK);
    ndb_kv_batch_free(b);
    return n;
}

/* A compressed record (version 2) as version 1 wrote it: its entries as they are. */
static void as_plain(uint8_t *v, size_t *vl)
{
    if (v[0] != 2)
        return;
    uint32_t len = (uint32_t)v[9] | (uint32_t)v[10] << 8 | (uint32_t)v[11] << 16 | (uint32_t)v[12] << 24;
    uint8_t *plain = malloc(len);
    cr_assert_not_null(plain);
    cr_assert_eq(LZ4_decompress_safe((const char *)v + 13, (char *)plain, (int)(*vl - 13), (int)len), (int)len);
    v[0] = 1;
    memcpy(v + 9, plain, len);
    *vl = 9 + len;
    free(plain);
}

static void cut_short(uint8_t *v, size_t *vl)
{
    (void)v;
    *vl -= 4;
}

static void claim_more(uint8_t *v, size_t *vl)
{
    (void)vl;
    v[12] = 0x7f; /* an entries' length of about 2 GB */
}

Test(changes, records_are_compressed_and_plain_ones_from_before_still_read)
{
    tdb t;
    tdb_open_with(&t, true);
    /* two writes of 1,000 documents of the brief's user shape, and a small one */
    char *js = malloc(1000 * 200 + 16);
    size_t at, doc_bytes = 0;
    for (int w = 0; w < 2; w++) {
        at = 0;
        js[at++] = '[';
        for (int i = 1000 * w; i < 1000 * (w + 1); i++) {
            size_t l = (size_t)sprintf(js + at, "%s{\"_id\":\"u%04d\",\"name\":\"User %d\",\"email\":"
                                       "\"user%d@example.com\",\"age\":%d,\"city\":\"Denver\",\"tags\":[\"t%d\"]}",
                                       i % 1000 ? "," : "", i, i, i, 18 + i % 60, i % 50);
            at += l;
            doc_bytes += l;
        }
        js[at++] = ']';
        js[at] = 0;
        ok_ins(&t, "a", js);
    }
    free(js);
    ok_ins(&t, "a", "[{\"_id\":\"small\"}]");
    ndb_doc_changes_info info;
    ndb_doc_changes_info_get(t.db, &info);
    /* the records take less than a third of the documents' JSON */
    cr_assert_lt(info.bytes, doc_bytes / 3, "%llu bytes for %zu of JSON", (unsigned long long)info.bytes, doc_bytes);
    uint64_t compressed_bytes = info.bytes;
    char *before = all_events(&t);
    cr_assert(strstr(before, "\"u1999\"") != NULL && strstr(before, "\"small\"") != NULL);
    cr_assert_null(strstr(before, "ERR"), "%.300s", before);

    /* records as the version before wrote them read the same */
    cr_assert_geq(each_record(&t, as_plain), 2);
    char *after = all_events(&t);
    cr_assert_str_eq(after, before);
    free(after);
    tdb_close_only(&t);
    tdb_open_dir(&t);
    after = all_events(&t);
    cr_assert_str_eq(after, before);
    free(after);
    ndb_doc_changes_info_get(t.db, &info);
    cr_assert_eq(info.bytes, compressed_bytes); /* the size known at the last write */
    free(before);

    /* a record whose block is cut short, or that claims too much, is refused by name */
    tdb_close(&t);
    tdb_open_with(&t, true);
    for (int round = 0; round < 2; round++) {
        char big[2048];
        at = 0;
        big[at++] = '[';
        for (int i = 0; i < 20; i++)
            at += (size_t)sprintf(big + at, "%s{\"_id\":\"r%d-%02d\",\"s\":\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\"}",
                                  i ? "," : "", round, i);
        big[at++] = ']';
        big[at] = 0;
        ok_ins(&t, "a", big);
        each_record(&t, round == 0 ? cut_short : claim_more);
        after = all_events(&t);
        cr_assert(strstr(after, "ERR") != NULL && strstr(after, "is damaged") != NULL, "%.300s", after);
        free(after);
    }
    tdb_close(&t);
}

/* ---- concurrency: writers on two collections, a watch reading as they go */

typedef struct writer {
    tdb *t;
    const char *coll;
    int n;
} writer;

static void *write_loop(void *arg)
{
    writer *wr = arg;
    for (int i = 0; i < wr->n; i++) {
        char id[32], js[64];
        snprintf(id, sizeof id, "%s%05d", wr->coll, i);
        snprintf(js, sizeof js, "[{\"_id\":\"%s\"}]", id);
        ndb_errmsg m = {{0}};
        cr_assert_eq(ins(wr->t, wr->coll, js, &m), NDB_OK, "%s", m.text);
        if (i % 3 == 0) /* updates between them, which the watch's pipeline drops */
            update(wr->t, wr->coll, id, "{\"$set\":{\"u\":1}}");
    }
    return NULL;
}

Test(changes, concurrent_writers_each_seen_once_in_their_order)
{
    tdb t;
    tdb_open_with(&t, true);
    ndb_doc_watch *w = watch(&t, NULL, "[{\"$match\":{\"operationType\":\"insert\"}}]", NULL, false);
    enum { N = 2000 };
    writer ws[2] = {{&t, "a", N}, {&t, "b", N}};
    pthread_t th[2];
    for (int i = 0; i < 2; i++)
        cr_assert_eq(pthread_create(&th[i], NULL, write_loop, &ws[i]), 0);
    int next[2] = {0, 0};
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    while (next[0] < N || next[1] < N) {
        const char *e = next_ev(w, 2000000000);
        cr_assert(strncmp(e, "{", 1) == 0, "after a%d b%d: %s", next[0], next[1], e);
        const char *p = strstr(e, "\"documentKey\":{\"_id\":\"");
        cr_assert_not_null(p, "%s", e);
        p += 22;
        int c = p[0] == 'a' ? 0 : 1;
        cr_assert_eq(atoi(p + 1), next[c], "%s", e);
        next[c]++;
    }
    for (int i = 0; i < 2; i++)
        pthread_join(th[i], NULL);
    cr_assert_str_eq(next_ev(w, 0), "TIMEOUT");
    ndb_doc_watch_close(w);
    tdb_close(&t);
}
