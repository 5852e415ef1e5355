/*
 * graph.c — a collection's approximate index: an HNSW graph (hnsw.c) over
 * its rows, kept beside the segments and built by the handle's index thread.
 *
 * The graph covers the rows numbered below its `hi`: every row that was live
 * when the index thread reached it is a node labelled with its row number,
 * added in row order, so labels ascend with node numbers and a row's node is
 * found by binary search. Rows at or above hi (written since) are scored
 * exactly by every search, so a fresh vector is never missed. A row that
 * dies (replaced or deleted) has its node marked in the graph's dead bitmap
 * under the collection's rw lock, at once; once dead nodes are half of the
 * graph (and at least REBUILD_DEAD), a replacement graph is built from the
 * live rows in the background and swapped in when it has caught up, so a
 * collection rewritten many times keeps a graph about the size of its live
 * rows. A change of parameters is a rebuild the same way.
 *
 * The index thread adds rows in turns of at most TURN_NS, holding rw shared
 * (the rows cannot move) and grw exclusively (searches of the graph wait for
 * the rest of the turn, and yield it their place after); between turns other
 * collections get theirs. Only
 * this thread changes a graph, so it writes the graph file without a lock:
 * <segment directory>/graph.hnsw (vector/FORMAT.md, "Graph files"), written
 * under a temporary name and renamed, never synced (derived data, like
 * segments). It is saved when a graph first catches up, again once an
 * eighth more nodes were added, and at close if it grew since; at open it is loaded, its nodes whose rows
 * are no longer live are marked, and rows after it are added; a missing,
 * damaged or stale file is rebuilt from the rows, with progress in the log.
 */
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "env.h"
#include "vec_int.h"

#define TURN_NS 2000000ull   /* at most this long holding grw per turn */
#define REBUILD_DEAD 1024u   /* dead nodes before a rebuild is considered */
#define PROGRESS_NS 10000000000ull /* a progress line at most this often */

static uint64_t now_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (uint64_t)t.tv_sec * 1000000000ull + (uint64_t)t.tv_nsec;
}

/* ---- configuration ------------------------------------------------------ */

const char *ndb_vec_index_name(ndb_vec_index_kind k)
{
    return k == NDB_VEC_INDEX_HNSW ? "hnsw" : k == NDB_VEC_INDEX_EXACT ? "exact" : "unknown";
}

ndb_status ndb_vec_index_parse(const char *name, ndb_vec_index_kind *out)
{
    if (!name || !*name || strcmp(name, "exact") == 0)
        *out = NDB_VEC_INDEX_EXACT;
    else if (strcmp(name, "hnsw") == 0)
        *out = NDB_VEC_INDEX_HNSW;
    else
        return NDB_EINVAL;
    return NDB_OK;
}

const char *ndb_vec_quant_name(ndb_vec_quant q)
{
    return q == NDB_VEC_QUANT_INT8  ? "int8"
           : q == NDB_VEC_QUANT_F16 ? "float16"
           : q == NDB_VEC_QUANT_NONE ? "none"
                                     : "unknown";
}

ndb_status ndb_vec_quant_parse(const char *name, ndb_vec_quant *out)
{
    if (!name || !*name || strcmp(name, "none") == 0)
        *out = NDB_VEC_QUANT_NONE;
    else if (strcmp(name, "int8") == 0)
        *out = NDB_VEC_QUANT_INT8;
    else if (strcmp(name, "float16") == 0)
        *out = NDB_VEC_QUANT_F16;
    else
        return NDB_EINVAL;
    return NDB_OK;
}

ndb_status graph_check_index(const ndb_vec_index *in, ndb_vec_index *out, ndb_errmsg *msg)
{
    if (in->kind == NDB_VEC_INDEX_EXACT) {
        *out = (ndb_vec_index){NDB_VEC_INDEX_EXACT, 0, 0, NDB_VEC_QUANT_NONE, 0};
        return NDB_OK;
    }
    if (in->kind != NDB_VEC_INDEX_HNSW)
        return ndb_errmsg_set(msg, NDB_EINVAL, "unknown index kind %d (exact or hnsw)", (int)in->kind);
    if (in->quantization != NDB_VEC_QUANT_NONE && in->quantization != NDB_VEC_QUANT_INT8 &&
        in->quantization != NDB_VEC_QUANT_F16)
        return ndb_errmsg_set(msg, NDB_EINVAL, "unknown quantization %d (none, int8 or float16)",
                              (int)in->quantization);
    ndb_vec_index ix = {NDB_VEC_INDEX_HNSW, in->m ? in->m : NDB_VEC_HNSW_M,
                        in->ef_construction ? in->ef_construction : NDB_VEC_HNSW_EF_CONSTRUCTION, in->quantization,
                        in->quantization != NDB_VEC_QUANT_NONE ? (in->oversample ? in->oversample : NDB_VEC_OVERSAMPLE)
                                                               : 0};
    if (ix.oversample > 100)
        return ndb_errmsg_set(msg, NDB_EINVAL, "index oversample must be 1 to 100, got %u", ix.oversample);
    if (ix.m < 2 || ix.m > HNSW_MAX_M)
        return ndb_errmsg_set(msg, NDB_EINVAL, "index m must be 2 to %d, got %u", HNSW_MAX_M, ix.m);
    if (ix.ef_construction < ix.m || ix.ef_construction > 10000)
        return ndb_errmsg_set(msg, NDB_EINVAL, "index ef_construction must be m (%u) to 10000, got %u", ix.m,
                              ix.ef_construction);
    *out = ix;
    return NDB_OK;
}

ndb_status graph_read_meta(const ndb_doc_val *root, ndb_vec_index *out)
{
    *out = (ndb_vec_index){NDB_VEC_INDEX_EXACT, 0, 0, NDB_VEC_QUANT_NONE, 0};
    ndb_doc_val ix, kind, m, efc, qv, ov;
    if (ndb_doc_get_field(root, "index", 5, &ix) != NDB_OK)
        return NDB_OK; /* written before indexes existed, or exact */
    if (ix.type != NDB_DOC_OBJECT || ndb_doc_get_field(&ix, "kind", 4, &kind) != NDB_OK ||
        kind.type != NDB_DOC_STRING || ndb_doc_get_field(&ix, "m", 1, &m) != NDB_OK || m.type != NDB_DOC_INT ||
        ndb_doc_get_field(&ix, "ef_construction", 15, &efc) != NDB_OK || efc.type != NDB_DOC_INT ||
        m.u.i < 0 || m.u.i > HNSW_MAX_M || efc.u.i < 0 || efc.u.i > 10000)
        return NDB_ECORRUPT;
    char name[8] = "", quant[8] = "";
    if (kind.u.s.len < sizeof name)
        memcpy(name, kind.u.s.ptr, kind.u.s.len);
    ndb_vec_index in = {NDB_VEC_INDEX_EXACT, (uint32_t)m.u.i, (uint32_t)efc.u.i, NDB_VEC_QUANT_NONE, 0};
    if (ndb_doc_get_field(&ix, "quantization", 12, &qv) == NDB_OK) { /* absent: written before quantization */
        if (qv.type != NDB_DOC_STRING || qv.u.s.len >= sizeof quant ||
            ndb_doc_get_field(&ix, "oversample", 10, &ov) != NDB_OK || ov.type != NDB_DOC_INT || ov.u.i < 0 ||
            ov.u.i > 100)
            return NDB_ECORRUPT;
        memcpy(quant, qv.u.s.ptr, qv.u.s.len);
        in.oversample = (uint32_t)ov.u.i;
        if (ndb_vec_quant_parse(quant, &in.quantization) != NDB_OK)
            return NDB_ECORRUPT;
    }
    if (!name[0] || ndb_vec_index_parse(name, &in.kind) != NDB_OK || graph_check_index(&in, out, NULL) != NDB_OK)
        return NDB_ECORRUPT;
    return NDB_OK;
}

void graph_write_meta(ndb_doc_builder *b, const ndb_vec_index *ix)
{
    const char *kn = ndb_vec_index_name(ix->kind);
    ndb_doc_key(b, "index", 5);
    ndb_doc_begin_object(b);
    ndb_doc_key(b, "kind", 4);
    ndb_doc_string(b, kn, strlen(kn));
    ndb_doc_key(b, "m", 1);
    ndb_doc_int(b, ix->m);
    ndb_doc_key(b, "ef_construction", 15);
    ndb_doc_int(b, ix->ef_construction);
    const char *qn = ndb_vec_quant_name(ix->quantization);
    ndb_doc_key(b, "quantization", 12);
    ndb_doc_string(b, qn, strlen(qn));
    ndb_doc_key(b, "oversample", 10);
    ndb_doc_int(b, ix->oversample);
    ndb_doc_end_object(b);
}

/* ---- scratch ------------------------------------------------------------- */

hnsw_scratch *vscratch_get(const venv *e)
{
    vscratch_pool *p = e->scratch;
    hnsw_scratch *s = NULL;
    pthread_mutex_lock(&p->mu);
    if (p->n)
        s = p->free[--p->n];
    pthread_mutex_unlock(&p->mu);
    return s ? s : calloc(1, sizeof *s);
}

void vscratch_put(const venv *e, hnsw_scratch *s)
{
    if (!s)
        return;
    vscratch_pool *p = e->scratch;
    pthread_mutex_lock(&p->mu);
    if (p->n == p->cap) {
        size_t nc = p->cap ? p->cap * 2 : 8;
        hnsw_scratch **a = realloc(p->free, nc * sizeof *a);
        if (a) {
            p->free = a;
            p->cap = nc;
        }
    }
    bool kept = p->n < p->cap;
    if (kept)
        p->free[p->n++] = s;
    pthread_mutex_unlock(&p->mu);
    if (!kept) {
        hnsw_scratch_free(s);
        free(s);
    }
}

/* ---- graphs ---------------------------------------------------------------- */

/* Trains g's quantizer on a sample of c's live rows (takes rw shared);
 * *few: there are too few rows yet (nothing done). */
static ndb_status train(vcoll *c, vgraph *g, bool *few)
{
    pthread_rwlock_rdlock(&c->rw);
    vrun *runs = calloc(c->nsegs + 2, sizeof *runs);
    size_t nr = runs ? coll_runs(c, runs) : 0;
    uint64_t live = 0;
    for (size_t r = 0; r < nr; r++)
        live += runs[r].n - runs[r].ndead;
    uint64_t want = live < VEC_TRAIN_ROWS ? live : VEC_TRAIN_ROWS, step = want ? live / want : 1, seen = 0, got = 0;
    float *rows = runs && live >= VEC_MIN_TRAIN_ROWS ? malloc(want * c->stride) : NULL;
    for (size_t r = 0; rows && r < nr && got < want; r++)
        for (uint64_t i = 0; i < runs[r].n && got < want; i++)
            if (!(runs[r].dead[i >> 6] >> (i & 63) & 1) && seen++ % step == 0)
                memcpy(rows + got++ * c->dpad, runs[r].rows + i * c->dpad, c->stride);
    pthread_rwlock_unlock(&c->rw);
    free(runs);
    *few = live < VEC_MIN_TRAIN_ROWS;
    ndb_status st = *few ? NDB_OK : !rows ? NDB_ENOMEM : hnsw_train(g->h, rows, got, c->dpad);
    free(rows);
    return st;
}

static hnsw_quant hnsw_quant_of(ndb_vec_quant q)
{
    return q == NDB_VEC_QUANT_INT8 ? HNSW_QUANT_INT8 : q == NDB_VEC_QUANT_F16 ? HNSW_QUANT_F16 : HNSW_QUANT_NONE;
}

/* A new, empty graph for ix; *out NULL (and NDB_OK) when an int8 one must
 * wait for more rows to train on. */
static ndb_status graph_new(vcoll *c, const ndb_vec_index *ix, vgraph **out, ndb_errmsg *msg)
{
    *out = NULL;
    vgraph *g = calloc(1, sizeof *g);
    if (!g)
        return ndb_errmsg_set(msg, NDB_ENOMEM, "graph for %s: out of memory", c->name);
    /* the same rows give the same graph: levels are drawn from the incarnation */
    hnsw_params p = {ix->m, ix->ef_construction, c->id * 0x9E3779B97F4A7C15ull, hnsw_quant_of(ix->quantization)};
    ndb_status st = hnsw_new(c->dims, (uint32_t)c->dpad, c->metric, &p, &g->h, msg);
    bool few = false;
    if (st == NDB_OK && p.quant == HNSW_QUANT_INT8 && (st = train(c, g, &few)) != NDB_OK)
        ndb_errmsg_set(msg, st, "training the int8 quantizer of %s: %s", c->name, ndb_strerror(st));
    if (st != NDB_OK || few) {
        graph_free(g);
        return st;
    }
    *out = g;
    return NDB_OK;
}

void graph_free(vgraph *g)
{
    if (!g)
        return;
    hnsw_free(g->h);
    free(g->dead);
    free(g);
}

static bool same_params(const vgraph *g, const ndb_vec_index *ix)
{
    hnsw_params p = hnsw_get_params(g->h);
    return p.m == ix->m && p.ef_construction == ix->ef_construction &&
           p.quant == hnsw_quant_of(ix->quantization);
}

/* Room for bits dead bits (the index thread, rw shared and, for the searched
 * graph, grw exclusively). */
static ndb_status dead_fit(vgraph *g, uint64_t bits)
{
    if (bits <= g->dcap)
        return NDB_OK;
    uint64_t cap = g->dcap < 4096 ? 4096 : g->dcap * 2;
    while (cap < bits)
        cap *= 2;
    uint64_t *d = realloc(g->dead, cap / 8);
    if (!d)
        return NDB_ENOMEM;
    memset(d + g->dcap / 64, 0, (cap - g->dcap) / 8);
    g->dead = d;
    g->dcap = cap;
    return NDB_OK;
}

uint32_t graph_node_of(const vgraph *g, uint64_t row)
{
    uint32_t lo = 0, hi = hnsw_count(g->h);
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (hnsw_label(g->h, mid) < row)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < hnsw_count(g->h) && hnsw_label(g->h, lo) == row ? lo : UINT32_MAX;
}

static void kill_in(vgraph *g, uint64_t row)
{
    if (!g || row >= g->hi)
        return;
    uint32_t node = graph_node_of(g, row);
    if (node != UINT32_MAX && !(g->dead[node >> 6] >> (node & 63) & 1)) {
        g->dead[node >> 6] |= 1ull << (node & 63);
        g->ndead++;
    }
}

void graph_kill(vcoll *c, uint64_t row)
{
    kill_in(c->g, row);
    kill_in(c->gnext, row);
}

static char *graph_path(const vcoll *c, bool tmp)
{
    size_t n = strlen(c->dir) + 24;
    char *p = malloc(n);
    if (p)
        snprintf(p, n, "%s/graph.hnsw%s", c->dir, tmp ? ".tmp" : "");
    return p;
}

void graph_remove_file(vcoll *c)
{
    char *p = graph_path(c, false);
    if (p)
        c->env->fs->v->remove(c->env->fs, p);
    free(p);
}

/* The row after the last one the collection holds (rw held). */
static uint64_t rows_end(const vrun *runs, size_t n)
{
    return n ? runs[n - 1].rowno[runs[n - 1].n - 1] + 1 : 0;
}

/* Whether row is live (rw held, or single-threaded at open). */
static bool row_live(const vrun *runs, size_t n, uint64_t row)
{
    size_t r;
    uint64_t at;
    return runs_find(runs, n, row, &r, &at) && !(runs[r].dead[at >> 6] >> (at & 63) & 1);
}

/* Loads c's graph file (open, single-threaded); NDB_ECORRUPT naming what is
 * wrong with it. */
static ndb_status load(vcoll *c, vgraph **out, ndb_errmsg *msg)
{
    char *path = graph_path(c, false);
    if (!path)
        return NDB_ENOMEM;
    vgraph *g = calloc(1, sizeof *g);
    ndb_status st = g ? hnsw_open(c->env->fs, path, c->dims, (uint32_t)c->dpad, c->metric, c->id, &g->h, msg)
                      : NDB_ENOMEM;
    free(path);
    vrun *runs = st == NDB_OK ? calloc(c->nsegs + 2, sizeof *runs) : NULL;
    if (st == NDB_OK && !runs)
        st = NDB_ENOMEM;
    uint32_t n = st == NDB_OK ? hnsw_count(g->h) : 0;
    if (st == NDB_OK)
        st = dead_fit(g, n);
    if (st == NDB_OK) {
        size_t nr = coll_runs(c, runs);
        uint64_t end = rows_end(runs, nr), prev = 0;
        for (uint32_t i = 0; i < n && st == NDB_OK; i++) {
            uint64_t row = hnsw_label(g->h, i);
            if ((i > 0 && row <= prev) || row >= end)
                st = ndb_errmsg_set(msg, NDB_ECORRUPT, "node %u is labelled with row %llu, %s", i,
                                    (unsigned long long)row, row >= end ? "which the collection never had" : "out of order");
            else if (!row_live(runs, nr, row)) {
                g->dead[i >> 6] |= 1ull << (i & 63);
                g->ndead++;
            }
            prev = row;
        }
        g->hi = n ? prev + 1 : 0;
        g->saved = n;
    }
    free(runs);
    if (st != NDB_OK) {
        graph_free(g);
        return st;
    }
    *out = g;
    return NDB_OK;
}

void graph_open(vcoll *c)
{
    if (c->index.kind != NDB_VEC_INDEX_HNSW) {
        graph_remove_file(c); /* left by an index since changed to exact */
        return;
    }
    ndb_errmsg m = {{0}};
    vgraph *g = NULL;
    ndb_status st = load(c, &g, &m);
    if (st == NDB_OK) {
        vlog(c->env, "vector collection %s: graph loaded (%u nodes, %llu of them dead, rows below %llu)", c->name,
             hnsw_count(g->h), (unsigned long long)g->ndead, (unsigned long long)g->hi);
        c->g = g;
    } else if (c->map.count > 0 || st != NDB_ECORRUPT || !strstr(m.text, "cannot open")) {
        vlog(c->env, "vector collection %s: %s; the graph is rebuilt from the rows (searches are exact meanwhile)",
             c->name, m.text);
        graph_remove_file(c);
    }
    graph_wake(c, false);
}

void graph_wake(vcoll *c, bool always)
{
    pthread_mutex_lock(&c->bmu);
    c->gdirty = 1;
    bool queue = !c->indexing && (always || c->index.kind == NDB_VEC_INDEX_HNSW);
    if (queue)
        c->indexing = 1;
    pthread_mutex_unlock(&c->bmu);
    if (queue)
        c->env->later(c->env, VQ_INDEX, c);
}

/* ---- the index thread ------------------------------------------------------ */

bool graph_rebuild_due(const vgraph *g)
{
    return g->ndead >= REBUILD_DEAD && g->ndead * 2 >= hnsw_count(g->h);
}

/* Makes, replaces or drops graphs as c's configuration and churn call for
 * (rw exclusively, only when something changes). */
static void restructure(vcoll *c)
{
    pthread_rwlock_rdlock(&c->rw);
    ndb_vec_index ix = c->index;
    bool exact = ix.kind != NDB_VEC_INDEX_HNSW;
    bool need = exact ? (c->g || c->gnext)
                      : !c->g || (!same_params(c->g, &ix) && (!c->gnext || !same_params(c->gnext, &ix))) ||
                            (!c->gnext && graph_rebuild_due(c->g));
    pthread_rwlock_unlock(&c->rw);
    if (!need)
        return;
    ndb_errmsg m = {{0}};
    vgraph *fresh = NULL, *old[2] = {NULL, NULL};
    ndb_status st = exact ? NDB_OK : graph_new(c, &ix, &fresh, &m);
    if (st != NDB_OK) {
        vlog(c->env, "vector collection %s: %s; searches stay exact", c->name, m.text);
        return;
    }
    if (!exact && !fresh)
        return; /* an int8 graph waits for enough rows to train on: the next write tries again */
    const char *why = NULL;
    pthread_rwlock_wrlock(&c->rw);
    if (c->index.kind != NDB_VEC_INDEX_HNSW) { /* exact (now) */
        old[0] = c->g;
        old[1] = c->gnext;
        c->g = c->gnext = NULL;
    } else if (!c->g) {
        c->g = fresh;
        fresh = NULL;
        why = "building the graph";
    } else if (!c->gnext || !same_params(c->gnext, &c->index)) {
        old[0] = c->gnext;
        c->gnext = fresh;
        fresh = NULL;
        why = same_params(c->g, &c->index) ? "rebuilding the graph without its dead nodes"
                                          : "rebuilding the graph with new parameters";
    }
    uint64_t dead = c->g ? c->g->ndead : 0, nodes = c->g ? hnsw_count(c->g->h) : 0;
    pthread_rwlock_unlock(&c->rw);
    graph_free(fresh);
    graph_free(old[0]);
    graph_free(old[1]);
    if (exact)
        graph_remove_file(c);
    if (why)
        vlog(c->env, "vector collection %s: %s (%llu nodes, %llu dead); searches cover the rest exactly meanwhile",
             c->name, why, (unsigned long long)nodes, (unsigned long long)dead);
}

/* Adds rows from the target graph's hi for at most TURN_NS. Returns true if
 * rows remain after the turn; *swap: the target is a rebuild that caught up;
 * *failed: adding failed (logged). */
static bool add_turn(vcoll *c, hnsw_scratch *s, bool *swap, bool *failed)
{
    *swap = *failed = false;
    pthread_rwlock_rdlock(&c->rw);
    vgraph *t = c->gnext ? c->gnext : c->g;
    vrun *runs = t ? calloc(c->nsegs + 2, sizeof *runs) : NULL;
    if (!runs) {
        pthread_rwlock_unlock(&c->rw);
        return false;
    }
    size_t nr = coll_runs(c, runs);
    uint64_t end = rows_end(runs, nr);
    if (t->hi >= end) {
        *swap = t == c->gnext;
        pthread_rwlock_unlock(&c->rw);
        free(runs);
        return false;
    }
    bool searched = t == c->g;
    pthread_rwlock_wrlock(&c->grw); /* a rebuild's too: stats read both */
    uint64_t t0 = now_ns(), added = 0;
    ndb_status st = NDB_OK;
    size_t r = 0;
    while (r < nr && (runs[r].n == 0 || runs[r].rowno[runs[r].n - 1] < t->hi))
        r++;
    for (uint64_t i = r < nr ? run_lower(&runs[r], t->hi) : 0; r < nr && st == NDB_OK; r++, i = 0) {
        const vrun *u = &runs[r];
        for (; i < u->n; i++) {
            if (!(u->dead[i >> 6] >> (i & 63) & 1)) {
                uint32_t node;
                if ((st = dead_fit(t, (uint64_t)hnsw_count(t->h) + 1)) != NDB_OK ||
                    (st = hnsw_add(t->h, u->rowno[i], u->rows + i * c->dpad, s, &node)) != NDB_OK)
                    break;
                added++;
            }
            t->hi = u->rowno[i] + 1;
            if ((added & 15) == 15 && now_ns() - t0 >= TURN_NS) {
                i++;
                break;
            }
        }
        if (i < u->n || st != NDB_OK)
            break;
    }
    bool more = t->hi < end;
    pthread_rwlock_unlock(&c->grw);
    pthread_rwlock_unlock(&c->rw);
    free(runs);
    if (st != NDB_OK) {
        vlog(c->env, "vector collection %s: adding to the graph failed (%s); retried after the next write", c->name,
             ndb_strerror(st));
        *failed = true;
        return false;
    }
    if (__atomic_load_n(&c->gwaiting, __ATOMIC_RELAXED) > 0)
        sched_yield(); /* the searches that waited go first */
    uint64_t now = now_ns();
    if (more && now - c->glogged >= PROGRESS_NS) {
        c->glogged = now;
        vlog(c->env, "vector collection %s: %s, rows below %llu of %llu done", c->name,
             searched ? "building the graph" : "rebuilding the graph", (unsigned long long)t->hi,
             (unsigned long long)end);
    }
    return more;
}

/* Writes g out (this thread owns it: nothing changes it meanwhile). */
static void save(vcoll *c, vgraph *g)
{
    uint32_t n = hnsw_count(g->h);
    kv_env *fs = c->env->fs;
    char *tmp = graph_path(c, true), *fin = graph_path(c, false);
    ndb_errmsg m = {{0}};
    ndb_status st = tmp && fin ? fs->v->mkdir(fs, c->dir) : NDB_ENOMEM;
    if (st == NDB_OK && (st = hnsw_write(fs, tmp, g->h, c->id, &m)) == NDB_OK &&
        (st = fs->v->rename(fs, tmp, fin)) != NDB_OK)
        ndb_errmsg_set(&m, st, "rename %s failed", tmp ? tmp : "");
    if (st == NDB_OK) {
        g->saved = n;
    } else {
        if (tmp)
            fs->v->remove(fs, tmp);
        vlog(c->env, "vector collection %s: saving the graph failed (%s); it is rebuilt at the next open if needed",
             c->name, m.text[0] ? m.text : ndb_strerror(st));
        g->saved = n; /* not retried until an eighth more nodes */
    }
    free(tmp);
    free(fin);
}

void graph_close(vcoll *c)
{
    vgraph *g = c->g;
    if (g && !__atomic_load_n(&c->dropped, __ATOMIC_ACQUIRE) && hnsw_count(g->h) > g->saved)
        save(c, g);
}

bool graph_work(vcoll *c, hnsw_scratch *s)
{
    pthread_mutex_lock(&c->gmu);
    pthread_mutex_lock(&c->bmu);
    c->gdirty = 0;
    pthread_mutex_unlock(&c->bmu);
    bool more = false;
    if (!__atomic_load_n(c->env->closing, __ATOMIC_ACQUIRE) && !__atomic_load_n(&c->dropped, __ATOMIC_ACQUIRE)) {
        restructure(c);
        bool swap, failed;
        more = add_turn(c, s, &swap, &failed);
        if (swap) {
            pthread_rwlock_wrlock(&c->rw);
            vgraph *old = c->g;
            c->g = c->gnext;
            c->gnext = NULL;
            pthread_rwlock_unlock(&c->rw);
            vlog(c->env, "vector collection %s: the rebuilt graph (%u nodes) replaces the old one (%u nodes, %llu dead)",
                 c->name, hnsw_count(c->g->h), hnsw_count(old->h), (unsigned long long)old->ndead);
            graph_free(old);
            c->g->saved = 0;
            more = true; /* its own dead nodes (writes during the rebuild) may call for the next one */
        }
        vgraph *g = c->g; /* only this thread replaces it */
        if (!more && g && !c->gnext) {
            uint32_t n = hnsw_count(g->h);
            if (n > g->saved && (g->saved == 0 || (uint64_t)(n - g->saved) * 8 >= n))
                save(c, g);
        }
        more = more || (c->gnext != NULL && !failed);
    }
    pthread_mutex_lock(&c->bmu);
    if (!more && c->gdirty && !__atomic_load_n(c->env->closing, __ATOMIC_ACQUIRE))
        more = true; /* a write came in during this turn */
    if (!more)
        c->indexing = 0;
    pthread_mutex_unlock(&c->bmu);
    pthread_mutex_unlock(&c->gmu);
    return more;
}
