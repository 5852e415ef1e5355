/*
 * agg.c — aggregation pipelines: the stages.
 *
 * Stages pull documents from the stage before them (the first from a cursor
 * over the collection); streaming stages ($match $project $addFields/$set
 * $unset $unwind $skip $limit $lookup $replaceRoot/$replaceWith) hold one
 * document at a time, blocking stages ($group $sort $count $sample) drain
 * their input first; beyond ndb_doc_options.agg_mem_bytes $sort, $group and
 * $sample spill to files when there is a spill directory and refuse with
 * NDB_ELIMIT when there is none. $facet buffers its input within that bound
 * (refusing beyond it: MongoDB's $facet cannot spill either) and runs a
 * sub-pipeline per output field over it. $sortByCount and $bucket are written out
 * as $group and $sort first (agg_expand.c). A leading $match (and a
 * $sort right after it) is pushed into the collection cursor, so the planner
 * can use an index.
 *
 * The stages that rewrite one document at a time are agg_reshape.c
 * ($project $addFields/$set $unset $replaceRoot/$replaceWith), agg_unwind.c
 * and agg_lookup.c (agg_stages.h); $group is group.c (its accumulators
 * accum.c), sorting sortbuf.c, expressions expr.c.
 */
#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "agg_stages.h"
#include "group.h"

/* ---------------------------------------------------------------- stages */

typedef enum skind {
    S_MATCH, S_GROUP, S_SORT, S_LIMIT, S_SKIP, S_RESHAPE, S_UNWIND, S_COUNT, S_LOOKUP, S_SAMPLE, S_FACET,
} skind;

typedef struct stage {
    skind kind;
    ndb_doc_builder *out;
    /* $match */
    ndb_doc_filter *flt;
    /* $limit/$skip/$sample */
    uint64_t n, seen;
    /* $sort, $sample */
    srt_spec sort;
    sortbuf sb;
    /* $facet: a sub-pipeline per output field, over the buffered input */
    struct agg_state **facets;
    const char **fname;
    size_t *fnlen;
    int nfacets;
    memdoc *mem;         /* $facet: every input document */
    size_t nmem;
    bool drained;
    /* $group */
    grp group;
    reshape rs;          /* $project $addFields/$set $unset $replaceRoot/$replaceWith */
    unwind uw;           /* $unwind */
    uint64_t rng;        /* $sample's random keys */
    /* $count */
    const char *cntname;
    size_t cntlen;
    lookup lk;           /* $lookup */
} stage;

typedef struct agg_state {
    ndb_doc_db *db;
    bool from_buf;      /* a $facet's sub-pipeline: its input is buf, not a collection */
    const memdoc *buf;
    size_t nbuf, bi;
    uint8_t *pipe;  /* owned copy of the pipeline document */
    size_t plen;
    stage *st;
    int n;
    ndb_doc_filter *srcflt;
    bool empty_src;
    bool need_sort;  /* the source cursor sorts in memory on first pull */
    bool src_sorted;
    bool done;
} agg_state;

static void agg_free(agg_state *a);
static ndb_status agg_next(ndb_doc_cursor *c, const void **doc, size_t *len, ndb_errmsg *msg);

static void stage_free(stage *s)
{
    for (int f = 0; f < s->nfacets; f++)
        agg_free(s->facets[f]);
    free(s->facets);
    free(s->fname);
    free(s->fnlen);
    ndb_doc_builder_free(s->out);
    ndb_doc_filter_free(s->flt);
    for (size_t i = 0; i < s->nmem; i++)
        free(s->mem[i].key);
    free(s->mem);
    sortbuf_free(&s->sb);
    grp_free(&s->group);
    reshape_free(&s->rs);
    unwind_free(&s->uw);
    lookup_free(&s->lk);
}

static void agg_free(agg_state *a)
{
    if (a == NULL)
        return;
    for (int i = 0; i < a->n; i++)
        stage_free(&a->st[i]);
    free(a->st);
    ndb_doc_filter_free(a->srcflt);
    free(a->pipe);
    free(a);
}

static ndb_status compile_pipeline(ndb_doc_db *db, const ndb_doc_val *pipeline, int depth, agg_state **out,
                                   ndb_errmsg *msg);

static ndb_status compile_stage(agg_state *a, stage *s, const ndb_doc_val *sv, int idx,
                                ndb_errmsg *msg)
{
    if (sv->type != NDB_DOC_OBJECT || sv->u.c.count != 1)
        return ndb_errmsg_set(msg, NDB_EINVAL, "pipeline stage %d must be an object with one "
                              "stage name", idx);
    ndb_doc_iter it;
    ndb_doc_iter_init(&it, sv);
    const char *k;
    size_t kl;
    ndb_doc_val v;
    ndb_doc_iter_next(&it, &k, &kl, &v);
    ndb_status st = ndb_doc_builder_new(&s->out);
    if (st != NDB_OK)
        return st;
    if (key_is(k, kl, "$match")) {
        s->kind = S_MATCH;
        char where[32];
        snprintf(where, sizeof where, "pipeline.%d.$match", idx);
        return flt_compile_val(&v, where, &s->flt, msg);
    }
    if (key_is(k, kl, "$limit") || key_is(k, kl, "$skip")) {
        s->kind = k[1] == 'l' ? S_LIMIT : S_SKIP;
        if (v.type != NDB_DOC_INT || v.u.i < 0 || (s->kind == S_LIMIT && v.u.i == 0))
            return ndb_errmsg_set(msg, NDB_EINVAL, "%.*s needs a %s integer", (int)kl, k,
                                  s->kind == S_LIMIT ? "positive" : "non-negative");
        s->n = (uint64_t)v.u.i;
        return NDB_OK;
    }
    if (key_is(k, kl, "$sort")) {
        s->kind = S_SORT;
        if ((v.type == NDB_DOC_OBJECT || v.type == NDB_DOC_ARRAY) && v.u.c.count == 0)
            return ndb_errmsg_set(msg, NDB_EINVAL, "$sort needs at least one key");
        return srt_compile(&v, &s->sort, msg);
    }
    if (key_is(k, kl, "$group")) {
        s->kind = S_GROUP;
        return grp_compile(&s->group, &v, msg);
    }
    static const struct { const char *name; reshape_kind kind; } reshapes[] = {
        {"$project", RS_PROJECT}, {"$addFields", RS_ADDFIELDS}, {"$set", RS_ADDFIELDS},
        {"$unset", RS_UNSET}, {"$replaceRoot", RS_REPLACEROOT}, {"$replaceWith", RS_REPLACEWITH},
    };
    for (size_t r = 0; r < sizeof reshapes / sizeof reshapes[0]; r++) {
        if (key_is(k, kl, reshapes[r].name)) {
            s->kind = S_RESHAPE;
            return reshape_compile(&s->rs, reshapes[r].kind, &v, msg);
        }
    }
    if (key_is(k, kl, "$unwind")) {
        s->kind = S_UNWIND;
        return unwind_compile(&s->uw, &v, msg);
    }
    if (key_is(k, kl, "$lookup")) {
        s->kind = S_LOOKUP;
        return lookup_compile(&s->lk, &v, msg);
    }
    if (key_is(k, kl, "$facet")) {
        s->kind = S_FACET;
        if (v.type != NDB_DOC_OBJECT || v.u.c.count == 0)
            return ndb_errmsg_set(msg, NDB_EINVAL, "$facet needs an object of named sub-pipelines");
        s->facets = calloc(v.u.c.count, sizeof *s->facets);
        s->fname = calloc(v.u.c.count, sizeof *s->fname);
        s->fnlen = calloc(v.u.c.count, sizeof *s->fnlen);
        if (!s->facets || !s->fname || !s->fnlen)
            return NDB_ENOMEM;
        ndb_doc_iter fi;
        ndb_doc_iter_init(&fi, &v);
        const char *fk;
        size_t fkl;
        ndb_doc_val fp;
        while (ndb_doc_iter_next(&fi, &fk, &fkl, &fp)) {
            if ((st = agg_need_name(fk, fkl, "$facet", msg)) != NDB_OK)
                return st;
            if (fp.type != NDB_DOC_ARRAY)
                return ndb_errmsg_set(msg, NDB_EINVAL, "$facet.%.*s must be an array of stages", (int)fkl, fk);
            s->fname[s->nfacets] = fk;
            s->fnlen[s->nfacets] = fkl;
            if ((st = compile_pipeline(a->db, &fp, 1, &s->facets[s->nfacets], msg)) != NDB_OK)
                return st;
            s->nfacets++;
        }
        return NDB_OK;
    }
    if (key_is(k, kl, "$sample")) {
        s->kind = S_SAMPLE;
        ndb_doc_val n;
        if (v.type != NDB_DOC_OBJECT || ndb_doc_get_field(&v, "size", 4, &n) != NDB_OK || n.type != NDB_DOC_INT ||
            n.u.i < 0)
            return ndb_errmsg_set(msg, NDB_EINVAL, "$sample needs {\"size\": <non-negative integer>}");
        s->n = (uint64_t)n.u.i;
        if (getrandom(&s->rng, sizeof s->rng, 0) != (ssize_t)sizeof s->rng)
            return ndb_errmsg_set(msg, NDB_EIO, "$sample: no random numbers from the system");
        s->rng |= 1; /* xorshift needs a non-zero state */
        return NDB_OK;
    }
    if (key_is(k, kl, "$count")) {
        s->kind = S_COUNT;
        if (v.type != NDB_DOC_STRING || agg_need_name(v.u.s.ptr, v.u.s.len, "$count", NULL) != NDB_OK)
            return ndb_errmsg_set(msg, NDB_EINVAL, "$count needs a field name");
        s->cntname = v.u.s.ptr;
        s->cntlen = v.u.s.len;
        return NDB_OK;
    }
    return ndb_errmsg_set(msg, NDB_EINVAL, "unknown pipeline stage %.*s at pipeline.%d", (int)kl, k,
                          idx);
}

/* ------------------------------------------------------------- execution */

static int pull(ndb_doc_cursor *c, int i, const uint8_t **d, size_t *dl, ndb_errmsg *msg);

static int src_pull(ndb_doc_cursor *c, const uint8_t **d, size_t *dl, ndb_errmsg *msg)
{
    agg_state *a = c->agg;
    assert(a != NULL && (c->mode == M_AGG || a->from_buf)); /* a pipeline's source is a cursor or a buffer */
    if (a->from_buf) {
        if (a->bi >= a->nbuf)
            return 0;
        *d = a->buf[a->bi].doc;
        *dl = a->buf[a->bi++].dlen;
        return 1;
    }
    if (a->empty_src)
        return 0;
    if (a->need_sort && !a->src_sorted) {
        ndb_status st = cur_sort_all(c, msg);
        if (st != NDB_OK)
            return st;
        a->src_sorted = true;
    }
    if (a->src_sorted)
        return cur_sorted_next(c, d, dl, msg);
    return cur_src_next(c, d, dl, msg);
}

static int emit(stage *s, const uint8_t **d, size_t *dl, ndb_errmsg *msg)
{
    const void *o;
    ndb_status st = ndb_doc_builder_finish(s->out, &o, dl);
    if (st != NDB_OK)
        return ndb_errmsg_set(msg, st, "pipeline result: %s", ndb_strerror(st));
    *d = o;
    return 1;
}

static ndb_status group_drain(ndb_doc_cursor *c, int i, stage *s, ndb_errmsg *msg)
{
    grp_start(&s->group, c->db->opt.agg_mem_bytes, c->db->opt.spill_dir, c->intr);
    const uint8_t *d;
    size_t dl;
    int got;
    ndb_status st = NDB_OK;
    while (st == NDB_OK && (got = pull(c, i - 1, &d, &dl, msg)) > 0) {
        ndb_doc_val root;
        ndb_doc_root(d, dl, &root);
        st = grp_add(&s->group, &root, msg);
    }
    if (st == NDB_OK && got < 0)
        st = (ndb_status)got;
    if (st == NDB_OK)
        st = grp_finish(&s->group, msg);
    c->ex.spilled_bytes += grp_spilled_bytes(&s->group);
    return st;
}

/* $sort and $sample: every input document into the stage's sort buffer,
 * keyed by the sort keys or, for $sample (as MongoDB samples a collection),
 * by a random 64-bit number (xorshift64 seeded from the system), so the n
 * smallest keys are a uniform sample in random order. A $sample of n up to
 * SORTBUF_TOPK_MAX keeps only those n (a heap); either spills beyond the
 * memory bound. */
static ndb_status sort_drain(ndb_doc_cursor *c, int i, stage *s, ndb_errmsg *msg)
{
    bool sample = s->kind == S_SAMPLE;
    sortbuf_init(&s->sb, c->db->opt.agg_mem_bytes, sample && s->n <= SORTBUF_TOPK_MAX ? s->n : 0,
                 c->db->opt.spill_dir, c->intr, sample ? "$sample" : "$sort");
    dbuf key = {0};
    const uint8_t *d;
    size_t dl;
    int got;
    ndb_status st = NDB_OK;
    while (st == NDB_OK && (got = pull(c, i - 1, &d, &dl, msg)) > 0) {
        key.len = 0;
        bool ok;
        if (sample) {
            s->rng ^= s->rng << 13;
            s->rng ^= s->rng >> 7;
            s->rng ^= s->rng << 17;
            ok = dbuf_put(&key, &s->rng, sizeof s->rng);
        } else {
            ndb_doc_val root;
            ndb_doc_root(d, dl, &root);
            ok = srt_key_of(&s->sort, &root, &key);
        }
        st = ok ? sortbuf_add(&s->sb, &key, d, dl, msg) : NDB_ENOMEM;
    }
    dbuf_free(&key);
    if (st == NDB_OK && got < 0)
        st = (ndb_status)got;
    if (st == NDB_OK)
        st = sortbuf_finish(&s->sb, msg);
    c->ex.spilled_bytes += s->sb.spilled_bytes;
    return st;
}

/* Every document of stage i's input, in order, into s->mem, bounded by
 * agg_mem_bytes: what the sub-pipelines of $facet read. */
static ndb_status buffer_input(ndb_doc_cursor *c, int i, stage *s, ndb_errmsg *msg)
{
    size_t limit = c->db->opt.agg_mem_bytes, used = 0, cap = 0;
    dbuf nokey = {0};
    const uint8_t *d;
    size_t dl;
    int got;
    while ((got = pull(c, i - 1, &d, &dl, msg)) > 0) {
        if ((used += dl + sizeof(memdoc)) > limit)
            return ndb_errmsg_set(msg, NDB_ELIMIT, "$facet's input exceeded the memory limit of %zu bytes", limit);
        ndb_status st = memdoc_push(&s->mem, &s->nmem, &cap, &nokey, d, dl, s->nmem);
        if (st != NDB_OK)
            return st;
    }
    return got < 0 ? (ndb_status)got : NDB_OK;
}

/* $facet: buffers every input document (bounded by agg_mem_bytes), runs
 * each sub-pipeline over the buffer and writes one document of their outputs
 * as arrays (bounded by the document size limit, as MongoDB's is). */
static ndb_status facet_run(ndb_doc_cursor *c, int i, stage *s, ndb_errmsg *msg)
{
    ndb_status st = buffer_input(c, i, s, msg);
    if (st != NDB_OK)
        return st;
    ndb_doc_builder *b = s->out;
    ndb_doc_builder_reset(b);
    ndb_doc_begin_object(b);
    for (int f = 0; f < s->nfacets; f++) {
        agg_state *sub = s->facets[f];
        ndb_doc_cursor sc = {.db = c->db, .intr = c->intr, .mode = M_AGG, .agg = sub, .agg_next = agg_next};
        sub->from_buf = true;
        sub->buf = s->mem;
        sub->nbuf = s->nmem;
        ndb_doc_key(b, s->fname[f], s->fnlen[f]);
        ndb_doc_begin_array(b);
        for (;;) {
            const void *od;
            size_t ol;
            if ((st = ndb_doc_cursor_next(&sc, &od, &ol, msg)) != NDB_OK)
                return st;
            if (od == NULL)
                break;
            ndb_doc_val ov;
            ndb_doc_root(od, ol, &ov);
            if (ndb_doc_value(b, &ov) != NDB_OK)
                return ndb_errmsg_set(msg, NDB_ETOOBIG, "$facet's output exceeds the document size limit");
        }
        ndb_doc_end_array(b);
    }
    ndb_doc_end_object(b);
    return NDB_OK;
}

static int pull(ndb_doc_cursor *c, int i, const uint8_t **d, size_t *dl, ndb_errmsg *msg)
{
    if (i < 0)
        return src_pull(c, d, dl, msg);
    agg_state *a = c->agg;
    stage *s = &a->st[i];
    for (;;) {
        switch (s->kind) {
        case S_MATCH: {
            int r = pull(c, i - 1, d, dl, msg);
            if (r <= 0)
                return r;
            ndb_doc_val root;
            ndb_doc_root(*d, *dl, &root);
            int hit = flt_match(s->flt, &root, msg);
            if (hit != 0)
                return hit;
            continue;
        }
        case S_LIMIT:
            if (s->seen >= s->n)
                return 0;
            s->seen++;
            return pull(c, i - 1, d, dl, msg);
        case S_SKIP: {
            int r = pull(c, i - 1, d, dl, msg);
            if (r <= 0)
                return r;
            if (s->seen < s->n) {
                s->seen++;
                continue;
            }
            return 1;
        }
        case S_SORT:
            if (!s->drained) {
                ndb_status st = sort_drain(c, i, s, msg);
                if (st != NDB_OK)
                    return st;
                s->drained = true;
            }
            {
                const uint8_t *k;
                size_t kl;
                return sortbuf_next(&s->sb, &k, &kl, d, dl, msg);
            }
        case S_GROUP:
            if (!s->drained) {
                ndb_status st = group_drain(c, i, s, msg);
                if (st != NDB_OK)
                    return st;
                s->drained = true;
            }
            {
                int r = grp_next(&s->group, s->out, msg);
                return r <= 0 ? r : emit(s, d, dl, msg);
            }
        case S_COUNT: {
            if (s->drained)
                return 0;
            uint64_t n = 0;
            int r;
            while ((r = pull(c, i - 1, d, dl, msg)) > 0)
                n++;
            if (r < 0)
                return r;
            s->drained = true;
            if (n == 0)
                return 0; /* MongoDB's $count emits nothing for no input */
            ndb_doc_builder_reset(s->out);
            ndb_doc_begin_object(s->out);
            ndb_doc_key(s->out, s->cntname, s->cntlen);
            ndb_doc_int(s->out, (int64_t)n);
            ndb_doc_end_object(s->out);
            return emit(s, d, dl, msg);
        }
        case S_RESHAPE:
        case S_LOOKUP: {
            int r = pull(c, i - 1, d, dl, msg);
            if (r <= 0)
                return r;
            ndb_doc_val root;
            ndb_doc_root(*d, *dl, &root);
            return s->kind == S_RESHAPE ? reshape_apply(&s->rs, &root, d, dl, msg)
                                        : lookup_apply(&s->lk, c->db, c->intr, &root, d, dl, msg);
        }
        case S_UNWIND: {
            int r = unwind_next(&s->uw, d, dl, msg);
            if (r != 0)
                return r;
            if ((r = pull(c, i - 1, d, dl, msg)) <= 0)
                return r;
            unwind_start(&s->uw, *d, *dl);
            continue;
        }
        case S_FACET:
            if (s->drained)
                return 0;
            s->drained = true;
            {
                ndb_status st = facet_run(c, i, s, msg);
                return st != NDB_OK ? (int)st : emit(s, d, dl, msg);
            }
        case S_SAMPLE:
            if (s->seen >= s->n)
                return 0;
            if (!s->drained) {
                ndb_status st = sort_drain(c, i, s, msg);
                if (st != NDB_OK)
                    return st;
                s->drained = true;
            }
            s->seen++;
            {
                const uint8_t *k;
                size_t kl;
                return sortbuf_next(&s->sb, &k, &kl, d, dl, msg);
            }
        }
        return 0;
    }
}

static ndb_status agg_next(ndb_doc_cursor *c, const void **doc, size_t *len, ndb_errmsg *msg)
{
    agg_state *a = c->agg;
    if (a->done)
        return NDB_OK;
    const uint8_t *d;
    size_t dl;
    ndb_status st = ndb_interrupt_poll(c->intr, &c->tick);
    if (st != NDB_OK)
        return ndb_interrupt_msg(msg, st, "pipeline stopped");
    int r = pull(c, a->n - 1, &d, &dl, msg);
    if (r < 0)
        return (ndb_status)r;
    if (r == 0) {
        a->done = true;
        return NDB_OK;
    }
    c->ex.returned++;
    *doc = d;
    *len = dl;
    return NDB_OK;
}

/* A pipeline's stages, compiled (after agg_expand), into a new state. depth:
 * 0 for a request's pipeline, 1 inside a $facet (which cannot nest). */
static ndb_status compile_pipeline(ndb_doc_db *db, const ndb_doc_val *pipeline, int depth, agg_state **out,
                                   ndb_errmsg *msg)
{
    agg_state *a = calloc(1, sizeof *a);
    if (a == NULL)
        return NDB_ENOMEM;
    a->db = db;
    void *pipe;
    ndb_status st = agg_expand(pipeline, &pipe, &a->plen, msg); /* $sortByCount, $bucket written out */
    if (st == NDB_OK) {
        a->pipe = pipe;
        ndb_doc_val pv;
        ndb_doc_root(a->pipe, a->plen, &pv);
        if ((a->st = calloc(pv.u.c.count ? pv.u.c.count : 1, sizeof *a->st)) == NULL)
            st = NDB_ENOMEM;
        ndb_doc_iter it;
        ndb_doc_iter_init(&it, &pv);
        ndb_doc_val sv;
        while (st == NDB_OK && ndb_doc_iter_next(&it, NULL, NULL, &sv)) {
            st = compile_stage(a, &a->st[a->n], &sv, a->n, msg);
            if (a->st[a->n++].kind == S_FACET && depth > 0 && st == NDB_OK)
                st = ndb_errmsg_set(msg, NDB_EINVAL, "$facet cannot be used inside $facet");
        }
    }
    if (st != NDB_OK) {
        agg_free(a);
        return st;
    }
    *out = a;
    return NDB_OK;
}

static ndb_status agg_open(ndb_doc_db *db, coll *cl, const ndb_doc_val *pipeline, const ndb_interrupt *intr,
                           ndb_doc_cursor **out, ndb_errmsg *msg)
{
    agg_state *a;
    ndb_status st = compile_pipeline(db, pipeline, 0, &a, msg);
    if (st != NDB_OK)
        return st;
    /* push a leading $match (and a $sort after it) into the collection cursor */
    int first = 0;
    srt_spec *ps = NULL;
    if (a->n > 0 && a->st[0].kind == S_MATCH) {
        a->srcflt = a->st[0].flt;
        a->st[0].flt = NULL;
        first = 1;
    }
    if (first < a->n && a->st[first].kind == S_SORT) {
        ps = &a->st[first].sort;
        first++;
    }
    ndb_doc_cursor *c = NULL;
    if (cl) {
        st = cur_open(db, cl, a->srcflt, ps, NULL, NULL, intr, &c, msg);
        if (st != NDB_OK) {
            agg_free(a);
            return st;
        }
        c->sort = ps ? *ps : c->sort;
        /* [$sort, $limit] or [$sort, $skip, $limit]: the sort keeps only what
         * the limit lets through */
        if (ps && c->mode == M_MEM) {
            uint64_t skip = 0;
            int j = first;
            if (j < a->n && a->st[j].kind == S_SKIP)
                skip = a->st[j++].n;
            if (j < a->n && a->st[j].kind == S_LIMIT)
                c->topk = skip + a->st[j].n;
        }
    } else {
        c = calloc(1, sizeof *c);
        if (c == NULL) {
            agg_free(a);
            return NDB_ENOMEM;
        }
        c->db = db;
        c->intr = intr;
        a->empty_src = true;
        snprintf(c->ex.plan, sizeof c->ex.plan, "EOF (no such collection)");
    }
    /* drop the pushed-down stages */
    for (int i = 0; i < first; i++)
        stage_free(&a->st[i]);
    memmove(a->st, a->st + first, (size_t)(a->n - first) * sizeof *a->st);
    a->n -= first;
    for (int i = 0; i < a->n; i++)
        if (a->st[i].flt != NULL)
            flt_set_interrupt(a->st[i].flt, intr);
    a->need_sort = c->mode == M_MEM;
    c->mode = M_AGG;
    c->agg = a;
    c->agg_next = agg_next;
    c->agg_free = agg_free;
    /* an empty remaining pipeline passes the source through */
    if (a->n == 0) {
        memset(&a->st[0], 0, sizeof a->st[0]);
        a->st[0].kind = S_SKIP; /* skip 0: identity */
        a->n = 1;
    }
    *out = c;
    return NDB_OK;
}

ndb_status ndb_doc_aggregate(ndb_doc_db *db, const char *cname, const void *pipeline, size_t len,
                             const ndb_interrupt *intr, ndb_doc_cursor **out, ndb_errmsg *msg)
{
    coll *cl;
    ndb_status st = cat_check_name(cname, msg);
    if (st != NDB_OK)
        return st;
    ndb_doc_val pv;
    if (ndb_doc_validate(pipeline, len, NULL) != NDB_OK || ndb_doc_root(pipeline, len, &pv) != NDB_OK ||
        pv.type != NDB_DOC_ARRAY)
        return ndb_errmsg_set(msg, NDB_EINVAL, "pipeline must be an array of stage objects");
    st = db_get_coll(db, cname, &cl, msg);
    if (st == NDB_ENOTFOUND)
        cl = NULL; /* aggregating a missing collection yields nothing (or $lookup-free results) */
    else if (st != NDB_OK)
        return st;
    return agg_open(db, cl, &pv, intr, out, msg);
}
