/*
 * search.c — top-k search over a collection's rows: exact, or through its
 * graph (graph.c) with the rows the graph does not cover yet scored exactly.
 *
 * One query: the rows (segments, then the memory rows) are cut into ~1 MiB
 * chunks; the pool's participants take chunks, score them 64 rows at a time
 * into an L1 buffer and offer each score to a per-participant heap; heaps are
 * merged at the end. Batches (more than 4 queries): queries are transposed
 * into blocks of 32 and chunks are ~256 KiB, so they stay in L2 while every
 * block of queries passes over them.
 *
 * A filter is a pre-filter: the document layer finds the matching documents
 * (through an index where one fits, else a scan of the documents), their ids
 * become a candidate bitmap over the rows, and only candidates are scored, so
 * the result is the true top-k among matching documents. When fewer than 1/8
 * of the rows are candidates, only those rows are visited.
 *
 * Except when the filter keeps many documents: finding them all costs a read
 * of each (through an index) or of every document (a scan) per query, far
 * more than scoring. So a filtered search first estimates the filter's share
 * from the documents of VEC_SAMPLE rows spread over the collection
 * (sample_share); at VEC_POST_SHARE or more it post-filters: the rows (the
 * graph and the rows after it, or every row) are searched without the
 * filter for about 2k / share hits (through the graph, ef raised to ef /
 * share, so about ef of the candidates match), and the hits are tested
 * against the filter as they are read back, best first, until k pass. If
 * fewer than k pass while every hit kept was tested (a filter that keeps a
 * region the query is far from), the query runs again pre-filtered, so k
 * hits still come back whenever k documents match. Exactly scored, the k
 * that pass are the true top k among the matches.
 *
 * Through the graph (an HNSW collection larger than env->exact_bytes, the
 * query not asking for exact): each query searches the graph for the rows
 * below its hi, and those rows are left out of the exact pass, which scores
 * only the rows after them; both feed the same heaps. A filter becomes an
 * allow bitmap over the graph's nodes beside the candidate bitmaps of the
 * rows after them.
 *
 * The hits are then read back at one kv snapshot: a hit counts only if its
 * document's id key still names the scored row, so a document replaced or
 * deleted while the search ran is left out rather than shown with another
 * version's vector; the document returned is the one written with the row.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kern.h"
#include "scan.h"
#include "topk.h"
#include "vec_int.h"

static int bit_get(const uint64_t *bm, uint64_t i) { return (int)((bm[i >> 6] >> (i & 63)) & 1u); }

typedef struct part {        /* one run of rows: a segment, imm or act */
    uint32_t no;
    const float *rows;
    const uint64_t *rowno;
    uint64_t n;
    uint64_t start;          /* rows before it are the graph's: the exact pass starts here */
    const uint64_t *skip;    /* dead rows, or dead | not a candidate */
    uint32_t *sel;           /* when few rows are candidates: their indices */
    uint64_t nsel;
} part;

typedef struct search_job {
    const kern_ops *k;
    int l2;
    size_t dpad;
    scan_chunk *chunks;
    size_t nchunks;
    size_t nq;
    const float *q;          /* nq x dpad, for single-query passes */
    size_t nblocks;          /* batched: query blocks of KERN_QBLOCK */
    const float *qt;         /* nblocks x dpad x KERN_QBLOCK */
    const float *qn2;        /* nblocks x KERN_QBLOCK */
    topk *heaps;             /* participants x nq */
    float *scratch;          /* participants x SCAN_BATCH_SCRATCH */
    const ndb_interrupt *intr;
    _Atomic ndb_status stop; /* the interrupt's status once it fired: later chunks are skipped */
} search_job;

static void search_task(void *vctx, size_t t, unsigned who)
{
    search_job *j = vctx;
    if (j->intr != NULL) { /* one clock read per chunk of ~1 MiB of rows */
        if (atomic_load_explicit(&j->stop, memory_order_relaxed) != NDB_OK)
            return;
        ndb_status st = ndb_interrupt_check(j->intr);
        if (st != NDB_OK) {
            atomic_store_explicit(&j->stop, st, memory_order_relaxed);
            return;
        }
    }
    const scan_chunk *ch = &j->chunks[t];
    topk *heaps = j->heaps + (size_t)who * j->nq;
    if (!j->qt) {
        for (size_t qi = 0; qi < j->nq; qi++)
            scan_one(j->k, j->l2, j->q + qi * j->dpad, j->dpad, ch, &heaps[qi]);
        return;
    }
    float *scratch = j->scratch + (size_t)who * SCAN_BATCH_SCRATCH;
    for (size_t b = 0; b < j->nblocks; b++) {
        size_t first = b * KERN_QBLOCK, nqb = j->nq - first < KERN_QBLOCK ? j->nq - first : KERN_QBLOCK;
        scan_batch(j->k, j->l2, j->qt + b * j->dpad * KERN_QBLOCK, j->qn2 + b * KERN_QBLOCK, (unsigned)nqb,
                   j->dpad, ch, heaps + first, scratch);
    }
}

/* The ids of the documents matching the filter (copies), found before the
 * rows are locked and mapped to rows under the lock. */
typedef struct cands {
    char **ids;
    size_t n, cap;
} cands;

static void cands_free(cands *k)
{
    for (size_t i = 0; i < k->n; i++)
        free(k->ids[i]);
    free(k->ids);
}

static ndb_status find_candidates(vcoll *c, const ndb_vec_query *q, cands *out, ndb_errmsg *msg)
{
    /* only the ids: a filter an index answers alone then reads no document */
    ndb_doc_find_opts o = {.filter = q->filter, .filter_len = q->filter_len, .projection = c->env->ids_only,
                           .projection_len = c->env->ids_only_len, .interrupt = q->interrupt};
    ndb_doc_cursor *cur;
    ndb_status st = ndb_doc_find(c->env->docs, c->name, &o, &cur, msg);
    if (st != NDB_OK)
        return st;
    for (;;) {
        const void *doc;
        size_t len;
        if ((st = ndb_doc_cursor_next(cur, &doc, &len, msg)) != NDB_OK || doc == NULL)
            break;
        ndb_doc_val root, idv;
        if (ndb_doc_root(doc, len, &root) != NDB_OK || ndb_doc_get_field(&root, "_id", 3, &idv) != NDB_OK ||
            idv.type != NDB_DOC_STRING)
            continue;
        if (out->n == out->cap) {
            size_t nc = out->cap ? out->cap * 2 : 1024;
            char **a = realloc(out->ids, nc * sizeof *a);
            if (!a) {
                st = NDB_ENOMEM;
                break;
            }
            out->ids = a;
            out->cap = nc;
        }
        if ((out->ids[out->n] = malloc(idv.u.s.len + 1)) == NULL) {
            st = NDB_ENOMEM;
            break;
        }
        memcpy(out->ids[out->n], idv.u.s.ptr, idv.u.s.len);
        out->ids[out->n++][idv.u.s.len] = 0;
    }
    ndb_doc_cursor_free(cur);
    return st;
}

/* Exclusion bitmaps (and, when few rows pass, selection lists) for the rows
 * the exact pass scores, and with a graph g the allow bitmap over its nodes
 * (*allow, owned), from the candidates. Runs with rw (and grw) held shared. */
static ndb_status apply_candidates(vcoll *c, part *parts, size_t nparts, const cands *k, const vgraph *g,
                                   uint64_t **allow, uint64_t **owned, ndb_errmsg *msg)
{
    uint64_t total = 0;
    for (size_t p = 0; p < nparts; p++) {
        size_t words = (parts[p].n + 63) / 64 + 1;
        if ((owned[p] = malloc(words * 8)) == NULL)
            return ndb_errmsg_set(msg, NDB_ENOMEM, "filtered search: out of memory");
        memset(owned[p], 0xff, words * 8);
        parts[p].skip = owned[p];
        total += parts[p].n - parts[p].start;
    }
    if (g && (*allow = calloc((hnsw_count(g->h) + 63) / 64 + 1, 8)) == NULL)
        return ndb_errmsg_set(msg, NDB_ENOMEM, "filtered search: out of memory");
    uint64_t kept = 0;
    for (size_t i = 0; i < k->n; i++) {
        idmap_loc *loc = idmap_get(&c->map, k->ids[i], strlen(k->ids[i]));
        for (size_t p = 0; loc && p < nparts; p++) {
            if (parts[p].no != loc->seg)
                continue;
            if (loc->row >= parts[p].start) {
                owned[p][loc->row >> 6] &= ~(1ull << (loc->row & 63));
                kept++;
            } else {
                uint32_t node = graph_node_of(g, parts[p].rowno[loc->row]);
                if (node != UINT32_MAX)
                    (*allow)[node >> 6] |= 1ull << (node & 63);
            }
            break;
        }
    }
    if (kept * 8 >= total)
        return NDB_OK;
    /* few survivors: score only them instead of scanning every row */
    for (size_t p = 0; p < nparts; p++) {
        part *pt = &parts[p];
        uint64_t cnt = 0;
        for (uint64_t r = pt->start; r < pt->n; r++)
            cnt += !bit_get(owned[p], r);
        if ((pt->sel = malloc((cnt ? cnt : 1) * sizeof(uint32_t))) == NULL)
            return ndb_errmsg_set(msg, NDB_ENOMEM, "filtered search: out of memory");
        pt->nsel = 0;
        for (uint64_t r = pt->start; r < pt->n; r++)
            if (!bit_get(owned[p], r))
                pt->sel[pt->nsel++] = (uint32_t)r;
        pt->skip = NULL;
    }
    return NDB_OK;
}

/* Whether a search goes through the graph (rw held): an HNSW collection
 * holding more than exact_bytes of rows, the query not asking for exact. */
static bool graph_searched(const vcoll *c, const ndb_vec_query *q, uint64_t nrows)
{
    return c->index.kind == NDB_VEC_INDEX_HNSW && !q->exact && c->g && nrows * c->stride > c->env->exact_bytes;
}

/* Post-filtering (the file's header): the documents sampled to estimate a
 * filter's share, and the share from which a search post-filters. With 32
 * documents a filter keeping 50% is taken for less than 1/4 about once in a
 * thousand searches, one keeping 10% for 1/4 or more about once in a
 * hundred; either way the other path runs, with the same results. */
#define VEC_SAMPLE 32
#define VEC_POST_SHARE 0.25

/* The share of the documents matching f, estimated from VEC_SAMPLE live
 * rows spread evenly over the collection's rows (their ids copied under rw,
 * their documents read and matched after it); -1 when the collection has
 * fewer than 2 VEC_SAMPLE rows or fewer than half the sample is live. */
static ndb_status sample_share(vcoll *c, ndb_doc_filter *f, double *share, ndb_errmsg *msg)
{
    *share = -1;
    char *ids[VEC_SAMPLE];
    size_t lens[VEC_SAMPLE], ns = 0;
    ndb_status st = NDB_OK;
    pthread_rwlock_rdlock(&c->rw);
    vrun *runs = calloc(c->nsegs + 2, sizeof *runs);
    size_t nr = runs ? coll_runs(c, runs) : 0;
    uint64_t total = 0;
    for (size_t p = 0; p < nr; p++)
        total += runs[p].n;
    size_t p = 0;
    uint64_t before = 0; /* rows of the runs before p */
    for (uint32_t i = 0; total >= 2 * VEC_SAMPLE && i < VEC_SAMPLE; i++) {
        uint64_t at = (2 * (uint64_t)i + 1) * total / (2 * VEC_SAMPLE);
        while (at >= before + runs[p].n)
            before += runs[p++].n;
        at -= before;
        if (runs[p].ndead && bit_get(runs[p].dead, at))
            continue;
        const char *id;
        uint64_t row;
        coll_row_at(c, (idmap_loc){runs[p].no, (uint32_t)at}, &id, &lens[ns], &row);
        if ((ids[ns] = malloc(lens[ns] + 1)) == NULL) {
            st = ndb_errmsg_set(msg, NDB_ENOMEM, "filtered search: out of memory");
            break;
        }
        memcpy(ids[ns], id, lens[ns]);
        ids[ns][lens[ns]] = 0;
        ns++;
    }
    pthread_rwlock_unlock(&c->rw);
    free(runs);
    uint32_t live = 0, match = 0;
    for (size_t i = 0; i < ns && st == NDB_OK; i++) {
        void *doc;
        size_t len;
        st = ndb_doc_get(c->env->docs, c->name, ids[i], lens[i], &doc, &len, msg);
        if (st == NDB_ENOTFOUND) { /* deleted since */
            st = NDB_OK;
            continue;
        }
        if (st != NDB_OK)
            break;
        int m = ndb_doc_filter_match(f, doc, len);
        free(doc);
        if (m < 0)
            st = ndb_errmsg_set(msg, (ndb_status)m, "filter failed on document %s (%s)", ids[i], ndb_strerror(m));
        live++;
        match += m > 0;
    }
    for (size_t i = 0; i < ns; i++)
        free(ids[i]);
    if (st == NDB_OK && live >= VEC_SAMPLE / 2)
        *share = (double)match / live;
    return st;
}

/* The graph pass: one task per query, each on its participant's scratch and
 * heap (the exact pass has finished with them). A quantized graph is asked for
 * kk = oversample x k hits, rescored with the float32 rows: the heap gets
 * exact scores either way. */
typedef struct graph_job {
    const vgraph *g;
    const vrun *runs;
    size_t nruns;
    const float *q;          /* nq x dpad */
    size_t dpad, nq;
    uint32_t kk, ef;
    const kern_ops *kern;    /* rescoring, or NULL: the graph's scores are exact */
    int l2;
    const uint64_t *allow;
    topk *heaps;             /* participants x nq */
    hnsw_scratch **scratch;  /* per participant */
    hnsw_hit *hits;          /* per participant, k each */
    hnsw_path *paths;        /* per query */
    _Atomic ndb_status st;
} graph_job;

static void graph_task(void *vctx, size_t qi, unsigned who)
{
    graph_job *j = vctx;
    hnsw_hit *hits = j->hits + (size_t)who * j->kk;
    const float *q = j->q + qi * j->dpad;
    uint32_t n;
    if (hnsw_search(j->g->h, q, j->kk, j->ef, j->allow, j->g->dead, j->scratch[who], hits, &n, &j->paths[qi]) !=
        NDB_OK) {
        atomic_store_explicit(&j->st, NDB_ENOMEM, memory_order_relaxed);
        return;
    }
    topk *h = &j->heaps[(size_t)who * j->nq + qi];
    for (uint32_t i = 0; i < n; i++) {
        size_t r;
        uint64_t at;
        if (!runs_find(j->runs, j->nruns, hnsw_label(j->g->h, hits[i].node), &r, &at))
            continue;
        float sc = hits[i].score;
        if (j->kern) {
            const float *row = j->runs[r].rows + at * j->dpad;
            sc = j->l2 ? -j->kern->l2sq(q, row, j->dpad) : j->kern->dot(q, row, j->dpad);
        }
        topk_offer(h, sc, (uint64_t)j->runs[r].no << 32 | at);
    }
}

static const char *path_name(hnsw_path p, bool filtered)
{
    switch (p) {
    case HNSW_PATH_GRAPH: return filtered ? "hnsw_filtered" : "hnsw";
    case HNSW_PATH_FILTERED: return "hnsw_filtered";
    case HNSW_PATH_EXACT: return "hnsw_exact_filtered";
    case HNSW_PATH_FALLBACK: return "hnsw_filtered_fallback";
    }
    return "hnsw";
}

/* The explain path of a search (g: it went through the graph). */
static const char *plan_path(bool g, bool post, hnsw_path p, bool filtered)
{
    if (!g)
        return post ? "exact_postfiltered" : "exact";
    return post ? "hnsw_postfiltered" : path_name(p, filtered);
}

/* A scored row, copied out of the rows before they are unlocked. */
typedef struct hitrow {
    float score;
    uint64_t row;
    char *id;
    size_t idlen;
    float *vec; /* with_vectors */
} hitrow;

/* Copies the heaps' rows out (rw held shared). */
static ndb_status collect(vcoll *c, topk *heaps, size_t nq, int with_vectors, hitrow **out, ndb_errmsg *msg)
{
    for (size_t qi = 0; qi < nq; qi++) {
        topk *h = &heaps[qi];
        if ((out[qi] = calloc(h->n ? h->n : 1, sizeof **out)) == NULL)
            return ndb_errmsg_set(msg, NDB_ENOMEM, "search results: out of memory");
        for (uint32_t i = 0; i < h->n; i++) {
            hitrow *r = &out[qi][i];
            const char *id;
            const float *row =
                coll_row_at(c, (idmap_loc){(uint32_t)(h->items[i].key >> 32), (uint32_t)h->items[i].key}, &id,
                            &r->idlen, &r->row);
            r->score = h->items[i].score;
            if ((r->id = malloc(r->idlen + 1)) == NULL ||
                (with_vectors && (r->vec = malloc((size_t)c->dims * 4)) == NULL))
                return ndb_errmsg_set(msg, NDB_ENOMEM, "search results: out of memory");
            memcpy(r->id, id, r->idlen);
            r->id[r->idlen] = 0;
            if (with_vectors)
                memcpy(r->vec, row, (size_t)c->dims * 4);
        }
    }
    return NDB_OK;
}

/* Does id's id key name row at snap? */
static ndb_status row_current(vcoll *c, const ndb_kv_snapshot *snap, const hitrow *r, bool *yes)
{
    uint8_t k[10 + NDB_VEC_MAX_ID];
    memcpy(k, c->ikey, c->iklen);
    memcpy(k + c->iklen, r->id, r->idlen);
    void *v;
    size_t vl;
    ndb_status st = ndb_kv_get(c->env->kv, snap, k, c->iklen + r->idlen, &v, &vl);
    *yes = false;
    if (st == NDB_ENOTFOUND)
        return NDB_OK;
    if (st != NDB_OK)
        return st;
    uint64_t row = 0;
    if (vl == 8)
        memcpy(&row, v, 8);
    free(v);
    *yes = vl == 8 && row == r->row;
    return NDB_OK;
}

/* One query's hits read back at snap, in one block the caller frees. With
 * post (a post-filtered search), each hit's document is read and matched
 * against it, best first, until q->k pass. */
static ndb_status resolve(vcoll *c, const ndb_kv_snapshot *snap, hitrow *rows, uint32_t n, const ndb_vec_query *q,
                          ndb_doc_filter *post, ndb_vec_result *res, ndb_errmsg *msg)
{
    void **docs = calloc(n ? n : 1, sizeof *docs);
    size_t *dlens = calloc(n ? n : 1, sizeof *dlens);
    bool *keep = calloc(n ? n : 1, sizeof *keep);
    ndb_status st = docs && dlens && keep ? NDB_OK : NDB_ENOMEM;
    size_t bytes = 0, kept = 0;
    for (uint32_t i = 0; i < n && st == NDB_OK && kept < q->k; i++) {
        if ((st = row_current(c, snap, &rows[i], &keep[i])) != NDB_OK || !keep[i])
            continue;
        if (q->with_documents || post) {
            st = ndb_doc_get_at(c->env->docs, snap, c->name, rows[i].id, rows[i].idlen, &docs[i], &dlens[i], msg);
            if (st == NDB_ENOTFOUND) { /* cannot be: the id key and the document commit together */
                keep[i] = false;
                st = NDB_OK;
                continue;
            }
            if (st != NDB_OK)
                break;
            int m = post ? ndb_doc_filter_match(post, docs[i], dlens[i]) : 1;
            if (m < 0) {
                st = ndb_errmsg_set(msg, (ndb_status)m, "filter failed on document %s (%s)", rows[i].id,
                                    ndb_strerror(m));
                break;
            }
            if (!m || !q->with_documents) {
                free(docs[i]);
                docs[i] = NULL;
                dlens[i] = 0;
            }
            if (!m) {
                keep[i] = false;
                continue;
            }
        }
        kept++;
        bytes += rows[i].idlen + 1 + dlens[i] + (q->with_vectors ? (size_t)c->dims * 4 : 0);
    }
    char *blk = st == NDB_OK ? malloc(kept * sizeof(ndb_vec_hit) + bytes + 1) : NULL;
    if (st == NDB_OK && !blk)
        st = NDB_ENOMEM;
    if (st == NDB_OK) {
        ndb_vec_hit *hits = (ndb_vec_hit *)blk;
        char *p = blk + kept * sizeof(ndb_vec_hit); /* floats first: they need 4-byte alignment */
        size_t h = 0;
        for (uint32_t i = 0; i < n; i++) {
            if (!keep[i] || !q->with_vectors)
                continue;
            memcpy(p, rows[i].vec, (size_t)c->dims * 4);
            hits[h++].vector = (const float *)p;
            p += (size_t)c->dims * 4;
        }
        h = 0;
        for (uint32_t i = 0; i < n; i++) {
            if (!keep[i])
                continue;
            ndb_vec_hit *o = &hits[h++];
            if (!q->with_vectors)
                o->vector = NULL;
            memcpy(p, rows[i].id, rows[i].idlen + 1);
            o->id = p;
            o->id_len = rows[i].idlen;
            o->score = rows[i].score;
            p += rows[i].idlen + 1;
            o->doc = NULL;
            o->doc_len = 0;
            if (docs[i]) {
                memcpy(p, docs[i], dlens[i]);
                o->doc = p;
                o->doc_len = dlens[i];
                p += dlens[i];
            }
        }
        res->n = kept;
        res->hits = hits;
    }
    for (uint32_t i = 0; docs && i < n; i++)
        free(docs[i]);
    free(docs);
    free(dlens);
    free(keep);
    return st;
}

/* The search. pre: filter before scoring whatever the filter's share (the
 * second run of a post-filtered query that came back short). retry (nq
 * flags, NULL with pre) receives which queries did: post-filtered, fewer
 * than k hits passed though every hit kept was tested. */
static ndb_status run(vcoll *c, const float *queries, size_t nq, uint32_t dims, const ndb_vec_query *q, bool pre,
                      uint8_t *retry, ndb_vec_result **out, ndb_errmsg *msg)
{
    if (!q || !out)
        return ndb_errmsg_set(msg, NDB_EINVAL, "search options are missing");
    if (!queries || nq == 0)
        return ndb_errmsg_set(msg, NDB_EINVAL, "query vector is missing");
    if (q->k < 1 || q->k > NDB_VEC_MAX_K)
        return ndb_errmsg_set(msg, NDB_EINVAL, "limit must be 1 to %u, got %u", NDB_VEC_MAX_K, q->k);
    if (q->has_min_score && isnan(q->min_score))
        return ndb_errmsg_set(msg, NDB_EINVAL, "min_score is NaN");
    if (nq > 65536)
        return ndb_errmsg_set(msg, NDB_ETOOBIG, "%zu queries in one batch exceed 65536", nq);
    if (dims != c->dims)
        return ndb_errmsg_set(msg, NDB_EINVAL, "query vector has %u dimensions; collection %s has %u", dims, c->name,
                              c->dims);
    const kern_ops *k = kern_get();
    const int l2 = c->metric == NDB_VEC_L2;
    const size_t dpad = c->dpad;
    const unsigned width = pool_width(c->env->pool);
    const int batched = nq > 4;
    const size_t nblocks = batched ? (nq + KERN_QBLOCK - 1) / KERN_QBLOCK : 0;
    if ((uint64_t)width * nq * q->k * sizeof(topk_item) > ((uint64_t)1 << 31))
        return ndb_errmsg_set(msg, NDB_ETOOBIG, "limit %u for %zu queries needs too much memory", q->k, nq);
    ndb_status st = NDB_OK;
    const bool filtered = q->filter && q->filter_len;
    ndb_doc_filter *flt = NULL;
    double share = -1;
    if (filtered && !pre) {
        if ((st = ndb_doc_filter_compile(q->filter, q->filter_len, &flt, msg)) != NDB_OK)
            return st;
        if ((st = sample_share(c, flt, &share, msg)) != NDB_OK) {
            ndb_doc_filter_free(flt);
            return st;
        }
    }
    /* post-filtered: about 2k / share hits are kept and tested (within the
     * memory bound above, else the filter runs first) */
    const double want = share >= VEC_POST_SHARE ? ceil(2.0 * q->k / share) : 0;
    const bool post = want > 0 && want <= NDB_VEC_MAX_K &&
                      (uint64_t)width * nq * (uint64_t)want * sizeof(topk_item) <= ((uint64_t)1 << 31);
    const uint32_t kh = post ? (uint32_t)want : q->k; /* each heap's capacity */
    float *qp = kern_alloc(nq * dpad * 4);
    float *qt = batched ? kern_alloc(nblocks * dpad * KERN_QBLOCK * 4) : NULL;
    float *qn2 = batched ? calloc(nblocks * KERN_QBLOCK, 4) : NULL;
    float *scratch = batched ? malloc((size_t)width * SCAN_BATCH_SCRATCH * 4) : NULL;
    topk *heaps = calloc((size_t)width * nq, sizeof *heaps);
    topk_item *items = malloc((size_t)width * nq * kh * sizeof *items);
    hitrow **rows = calloc(nq, sizeof *rows);
    ndb_vec_result *res = calloc(nq, sizeof *res);
    part *parts = NULL;
    vrun *runs = NULL;
    uint64_t **owned = NULL, *allow = NULL;
    scan_chunk *chunks = NULL;
    size_t nparts = 0;
    int locked = 0, glocked = 0;
    hnsw_scratch **gs = NULL;
    hnsw_hit *ghits = NULL;
    hnsw_path *paths = NULL;
    cands cand = {0};
    ndb_kv_snapshot *snap = NULL;
    if (!qp || !heaps || !items || !rows || !res || (batched && (!qt || !qn2 || !scratch))) {
        st = ndb_errmsg_set(msg, NDB_ENOMEM, "search: out of memory");
        goto out;
    }
    memset(qp, 0, nq * dpad * 4);
    for (size_t qi = 0; qi < nq; qi++) {
        if ((st = coll_check_vector(c, queries + qi * dims, dims, nq > 1 ? "queries" : "query vector",
                                    nq > 1 ? qi : VEC_ONE, qp + qi * dpad, msg)) != NDB_OK)
            goto out;
    }
    if (batched) {
        memset(qt, 0, nblocks * dpad * KERN_QBLOCK * 4);
        for (size_t qi = 0; qi < nq; qi++) {
            float *blk = qt + (qi / KERN_QBLOCK) * dpad * KERN_QBLOCK;
            for (size_t j = 0; j < c->dims; j++)
                blk[j * KERN_QBLOCK + qi % KERN_QBLOCK] = qp[qi * dpad + j];
            qn2[qi] = k->dot(qp + qi * dpad, qp + qi * dpad, c->dims);
        }
    }
    const float floor = q->has_min_score ? q->min_score : -INFINITY;
    for (size_t i = 0; i < (size_t)width * nq; i++)
        topk_init(&heaps[i], items + i * kh, kh, floor);
    if (filtered && !post && (st = find_candidates(c, q, &cand, msg)) != NDB_OK)
        goto out;

    pthread_rwlock_rdlock(&c->rw);
    locked = 1;
    parts = calloc(c->nsegs + 2, sizeof *parts);
    owned = calloc(c->nsegs + 2, sizeof *owned);
    runs = calloc(c->nsegs + 2, sizeof *runs);
    if (!parts || !owned || !runs) {
        st = ndb_errmsg_set(msg, NDB_ENOMEM, "search: out of memory");
        goto out;
    }
    nparts = coll_runs(c, runs);
    uint64_t nrows = 0, nlive = 0;
    for (size_t p = 0; p < nparts; p++) {
        const vrun *r = &runs[p];
        parts[p] = (part){r->no, r->rows, r->rowno, r->n, 0, r->ndead ? r->dead : NULL, NULL, 0};
        nrows += r->n;
        nlive += r->n - r->ndead;
    }
    /* the graph, once exact search is no longer as fast */
    const vgraph *g = NULL;
    if (graph_searched(c, q, nrows)) {
        __atomic_add_fetch(&c->gwaiting, 1, __ATOMIC_RELAXED);
        pthread_rwlock_rdlock(&c->grw);
        __atomic_sub_fetch(&c->gwaiting, 1, __ATOMIC_RELAXED);
        glocked = 1;
        g = c->g;
        for (size_t p = 0; p < nparts; p++)
            parts[p].start = run_lower(&runs[p], g->hi);
    }
    if (filtered && !post && (st = apply_candidates(c, parts, nparts, &cand, g, &allow, owned, msg)) != NDB_OK)
        goto out;
    /* Chunks: about 1 MiB of rows for single queries (many tasks balance the
     * pool), 256 KiB when batched (stays in L2 across query blocks). */
    const uint64_t crow = ((batched ? (256u << 10) : (1u << 20)) / c->stride) + 1;
    size_t nchunks = 0;
    uint64_t exact_rows = 0;
    for (size_t p = 0; p < nparts; p++) {
        uint64_t m = parts[p].sel ? parts[p].nsel : parts[p].n - parts[p].start;
        nchunks += (m + crow - 1) / crow;
        exact_rows += m;
    }
    if ((chunks = calloc(nchunks + 1, sizeof *chunks)) == NULL) {
        st = ndb_errmsg_set(msg, NDB_ENOMEM, "search: out of memory");
        goto out;
    }
    size_t ci = 0;
    for (size_t p = 0; p < nparts; p++) {
        const part *pt = &parts[p];
        uint64_t key0 = (uint64_t)pt->no << 32;
        if (pt->sel) {
            for (uint64_t f = 0; f < pt->nsel; f += crow)
                chunks[ci++] = (scan_chunk){.rows = pt->rows, .n = pt->n, .key0 = key0, .sel = pt->sel + f,
                                            .nsel = pt->nsel - f < crow ? pt->nsel - f : crow};
        } else {
            for (uint64_t f = pt->start; f < pt->n; f += crow)
                chunks[ci++] = (scan_chunk){.rows = pt->rows + f * dpad, .n = pt->n - f < crow ? pt->n - f : crow,
                                            .key0 = key0 + f, .skip = pt->skip, .skip_bit0 = f};
        }
    }
    search_job job = {k, l2, dpad, chunks, ci, nq, qp, nblocks, qt, qn2, heaps, scratch, q->interrupt, NDB_OK};
    pool_run(c->env->pool, ci, search_task, &job);
    if ((st = atomic_load_explicit(&job.stop, memory_order_relaxed)) != NDB_OK) {
        ndb_interrupt_msg(msg, st, "vector search stopped");
        goto out;
    }
    /* a quantized graph is asked for oversample x k hits, rescored exactly */
    const bool rescore = g && hnsw_get_params(g->h).quant != HNSW_QUANT_NONE;
    const uint32_t over = c->index.oversample ? c->index.oversample : NDB_VEC_OVERSAMPLE; /* a graph of the
                                                                                           * index before */
    const uint64_t kk64 = rescore ? (uint64_t)kh * over : kh;
    const uint32_t kk = kk64 > NDB_VEC_MAX_K ? NDB_VEC_MAX_K : (uint32_t)kk64;
    /* post-filtered, ef / share candidates: about ef of them match, as a
     * filtered traversal keeps ef matching ones (share >= 1/4: at most 4 ef) */
    const uint32_t ef1 = q->ef ? q->ef : NDB_VEC_EF;
    const uint32_t ef0 = post ? (uint32_t)ceil(ef1 / share) : ef1, ef = ef0 > kk ? ef0 : kk;
    if (g) {
        paths = calloc(nq, sizeof *paths);
        gs = calloc(width, sizeof *gs);
        ghits = malloc((size_t)width * kk * sizeof *ghits);
        for (unsigned w = 0; gs && w < width; w++)
            if ((gs[w] = vscratch_get(c->env)) == NULL)
                break;
        if (!paths || !gs || !ghits || !gs[width - 1]) {
            st = ndb_errmsg_set(msg, NDB_ENOMEM, "search: out of memory");
            goto out;
        }
        graph_job gj = {g, runs, nparts, qp, dpad, nq, kk, ef, rescore ? k : NULL, l2, allow, heaps, gs, ghits, paths,
                        NDB_OK};
        if (nq == 1)
            graph_task(&gj, 0, 0);
        else
            pool_run(c->env->pool, nq, graph_task, &gj);
        if ((st = atomic_load_explicit(&gj.st, memory_order_relaxed)) != NDB_OK) {
            ndb_errmsg_set(msg, st, "search: out of memory for the graph's scratch");
            goto out;
        }
    }
    /* post-filtered, the candidates are the sample's estimate */
    const uint64_t ncand = post ? (uint64_t)(share * (double)nlive + 0.5) : cand.n;
    for (size_t qi = 0; qi < nq; qi++)
        res[qi].plan = (ndb_vec_plan){plan_path(g != NULL, post, g ? paths[qi] : HNSW_PATH_GRAPH, filtered),
                                      g ? hnsw_count(g->h) : 0, exact_rows, filtered ? ncand : 0, g ? ef : 0};
    for (size_t qi = 0; qi < nq; qi++) {
        for (unsigned w = 1; w < width; w++)
            topk_merge(&heaps[qi], &heaps[(size_t)w * nq + qi]);
        topk_sort(&heaps[qi]);
    }
    st = collect(c, heaps, nq, q->with_vectors, rows, msg);
    if (glocked)
        pthread_rwlock_unlock(&c->grw);
    glocked = 0;
    pthread_rwlock_unlock(&c->rw);
    locked = 0;
    if (st != NDB_OK)
        goto out;
    /* read back at a snapshot taken now: it holds every write the scored rows
     * reflect (memory only ever lags behind the kv) */
    if ((st = ndb_kv_snapshot_acquire(c->env->kv, &snap)) != NDB_OK) {
        snap = NULL;
        ndb_errmsg_set(msg, st, "search: cannot take a snapshot");
        goto out;
    }
    for (size_t qi = 0; qi < nq && st == NDB_OK; qi++) {
        st = resolve(c, snap, rows[qi], heaps[qi].n, q, post ? flt : NULL, &res[qi], msg);
        if (post && retry)
            retry[qi] = res[qi].n < q->k && heaps[qi].n == kh;
    }
out:
    if (glocked)
        pthread_rwlock_unlock(&c->grw);
    if (locked)
        pthread_rwlock_unlock(&c->rw);
    for (unsigned w = 0; gs && w < width; w++)
        vscratch_put(c->env, gs[w]);
    free(gs);
    free(ghits);
    free(paths);
    free(allow);
    free(runs);
    if (snap)
        ndb_kv_snapshot_release(c->env->kv, snap);
    for (size_t qi = 0; rows && heaps && qi < nq; qi++) {
        for (uint32_t i = 0; rows[qi] && i < heaps[qi].n; i++) {
            free(rows[qi][i].id);
            free(rows[qi][i].vec);
        }
        free(rows[qi]);
    }
    free(rows);
    if (parts)
        for (size_t p = 0; p < nparts; p++)
            free(parts[p].sel);
    if (owned)
        for (size_t p = 0; p < nparts; p++)
            free(owned[p]);
    cands_free(&cand);
    ndb_doc_filter_free(flt);
    free(owned);
    free(parts);
    free(chunks);
    free(qp);
    free(qt);
    free(qn2);
    free(scratch);
    free(heaps);
    free(items);
    if (st != NDB_OK) {
        ndb_vec_results_free(res, nq);
        return st;
    }
    *out = res;
    return NDB_OK;
}

ndb_status ndb_vec_search(ndb_vec_db *db, const char *name, const float *query, uint32_t dims, const ndb_vec_query *q,
                          ndb_vec_result **out, ndb_errmsg *msg)
{
    return ndb_vec_search_batch(db, name, query, 1, dims, q, out, msg);
}

ndb_status ndb_vec_search_batch(ndb_vec_db *db, const char *name, const float *queries, size_t nq, uint32_t dims,
                                const ndb_vec_query *q, ndb_vec_result **out, ndb_errmsg *msg)
{
    vcoll *c;
    ndb_status st = vdb_acquire(db, name, &c, msg);
    if (st != NDB_OK)
        return st;
    uint8_t *retry = calloc(nq ? nq : 1, 1);
    st = retry ? run(c, queries, nq, dims, q, false, retry, out, msg)
               : ndb_errmsg_set(msg, NDB_ENOMEM, "search: out of memory");
    /* post-filtered queries that came back short run again, pre-filtered */
    for (size_t qi = 0; st == NDB_OK && qi < nq; qi++) {
        if (!retry[qi])
            continue;
        ndb_vec_result *one;
        if ((st = run(c, queries + qi * dims, 1, dims, q, true, NULL, &one, msg)) != NDB_OK) {
            ndb_vec_results_free(*out, nq);
            *out = NULL;
            break;
        }
        free((*out)[qi].hits);
        (*out)[qi] = one[0];
        free(one);
    }
    free(retry);
    coll_unref(c);
    return st;
}

void ndb_vec_results_free(ndb_vec_result *r, size_t n)
{
    if (!r)
        return;
    for (size_t i = 0; i < n; i++)
        free(r[i].hits);
    free(r);
}
