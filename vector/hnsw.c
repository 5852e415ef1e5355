/*
 * hnsw.c — the HNSW graph (hnsw.h says what it is and what it promises).
 *
 * Layout: node i's record, at base + i * rec, is its vector (dims floats, not
 * padded: the float kernels take any length; or, quantized, dpad int8 codes or
 * dpad binary16 halves, as their kernels take multiples of 16, followed by the
 * decoded vector's squared norm), its level-0 links ([count, up to m0 node
 * numbers]) and its label (unaligned, read with memcpy), packed with no
 * padding: every field is 4-byte aligned, so a visit touches one record of as
 * few bytes as hnswlib's. Levels above 0 are rare (a node reaches level l with
 * probability m^-l) and live in one arena, upmem: for l = 1 .. its level,
 * [count, up to m node numbers] at upmem + its start + (l - 1) * (m + 1). The
 * nodes above level 0 are listed in up, (node, start) pairs in node order
 * (nodes are added in order and their words appended, so starts ascend from 0
 * and a node's level is the distance to the next start over m + 1): half a
 * byte per node where an array of starts and levels would take five. Only a
 * search's descent and an add read it, by binary search, a few dozen times.
 *
 * int8 codes: component j of a node is o[j] + s[j] * code[j] (per-dimension
 * offset and scale from hnsw_train's sample). A query q is scored against
 * codes as base + cs * (q' . code): base = q . o, and q' = round(q[j] s[j] /
 * cs), the int8 form of q scaled per dimension (cs = max |q[j] s[j]| / 127),
 * so the inner loop is kern's exact integer dot product; under l2 the node's
 * stored squared norm completes |q - x|^2 = |q|^2 - 2 q.x + |x|^2. float16
 * halves are scored the same way, the dot product by kern's float16 kernel.
 *
 * Heaps hold (score, node). The candidate heap is a max-heap on score (best
 * first); the result heap is the same max-heap on the negated score, so its
 * top is the worst result kept.
 */
#include "hnsw.h"

#include <assert.h>
#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <simde/simde-f16.h>

#include "crc32c.h"
#include "kern.h"
#include "ndb_coding.h"
#include "vfile.h"

typedef struct hnsw_cand {
    float s;
    uint32_t id;
} hnsw_cand;

struct hnsw {
    uint32_t dims, dpad;
    uint32_t vdim;         /* floats scored per vector: dims (float32), dpad (codes, halves) */
    ndb_vec_metric metric;
    bool l2;               /* scores: minus l2sq; else dot */
    bool trained;          /* int8: qoff and qscale are set */
    uint32_t m, m0, efc;
    double ml;             /* level multiplier, 1 / ln(m) */
    uint64_t rng;
    hnsw_quant quant;
    float *qoff, *qscale;  /* int8: dpad each, set by hnsw_train */
    size_t cbytes;         /* quantized: bytes of a record's codes or halves */
    size_t vbytes;         /* bytes of a record's vector part */
    size_t rec;            /* bytes per node record, a multiple of 4 */
    uint8_t *base;
    uint32_t n, cap;
    uint32_t *up;          /* nup (node, start in upmem) pairs: the nodes above level 0, ascending */
    uint32_t nup, upncap;
    uint32_t *upmem;
    size_t uplen, upcap;   /* uint32s used and allocated in upmem */
    uint32_t entry;
    int top;               /* the entry point's level; -1 while empty */
    const kern_ops *k;
};

static inline const float *vec_of(const hnsw *h, uint32_t i) { return (const float *)(h->base + (size_t)i * h->rec); }
static inline const uint8_t *codes_of(const hnsw *h, uint32_t i) { return h->base + (size_t)i * h->rec; }
static inline const uint16_t *halves_of(const hnsw *h, uint32_t i)
{
    return (const uint16_t *)(h->base + (size_t)i * h->rec);
}
static inline float *xn2_of(const hnsw *h, uint32_t i) { return (float *)(h->base + (size_t)i * h->rec + h->cbytes); }

/* Node i's index in up, or nup when it has no level above 0. */
static uint32_t up_find(const hnsw *h, uint32_t i)
{
    uint32_t lo = 0, hi = h->nup;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (h->up[2 * (size_t)mid] < i)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < h->nup && h->up[2 * (size_t)lo] == i ? lo : h->nup;
}

/* The level of up's entry j: its words up to the next start (or uplen). */
static inline int up_level(const hnsw *h, uint32_t j)
{
    size_t end = j + 1 < h->nup ? h->up[2 * (size_t)j + 3] : h->uplen;
    return (int)((end - h->up[2 * (size_t)j + 1]) / (h->m + 1));
}

static int level_of(const hnsw *h, uint32_t i)
{
    uint32_t j = up_find(h, i);
    return j < h->nup ? up_level(h, j) : 0;
}

/* Node i's links at level l (i reaches l). */
static inline uint32_t *links_at(const hnsw *h, uint32_t i, int l)
{
    if (l == 0)
        return (uint32_t *)(h->base + (size_t)i * h->rec + h->vbytes);
    return h->upmem + h->up[2 * (size_t)up_find(h, i) + 1] + (size_t)(l - 1) * (h->m + 1);
}

/* Where the label is, after the level-0 links. */
static inline uint8_t *label_at(const hnsw *h, uint32_t i)
{
    return h->base + (size_t)i * h->rec + h->vbytes + (1 + (size_t)h->m0) * sizeof(uint32_t);
}

static inline float score(const hnsw *h, const float *a, const float *b)
{
    return h->l2 ? -h->k->l2sq(a, b, h->vdim) : h->k->dot(a, b, h->vdim);
}

/* A vector prepared for scoring against nodes (prep). */
typedef struct hq {
    const float *f;  /* float32 graphs: the vector */
    const int8_t *c; /* int8: its scaled int8 form */
    float cs, base, n2;
} hq;

/* Prepares v (dpad floats) to be scored against h's nodes; int8 graphs write
 * its int8 form to buf (dpad). */
static void prep(const hnsw *h, const float *v, int8_t *buf, hq *out)
{
    out->f = v;
    if (h->quant == HNSW_QUANT_F16 && h->l2)
        out->n2 = (float)kern_norm2_ref(v, h->dpad);
    if (h->quant != HNSW_QUANT_INT8)
        return;
    double base = 0, n2 = 0;
    float mx = 0;
    for (uint32_t j = 0; j < h->dpad; j++) {
        float w = fabsf(v[j] * h->qscale[j]);
        mx = w > mx ? w : mx;
        base += (double)v[j] * h->qoff[j];
        n2 += (double)v[j] * v[j];
    }
    float cs = mx > 0 ? mx / 127.0f : 1.0f;
    for (uint32_t j = 0; j < h->dpad; j++)
        buf[j] = (int8_t)lrintf(v[j] * h->qscale[j] / cs);
    *out = (hq){v, buf, cs, (float)base, (float)n2};
}

static inline float qscore(const hnsw *h, const hq *q, uint32_t i)
{
    float d;
    if (h->quant == HNSW_QUANT_NONE)
        return score(h, q->f, vec_of(h, i));
    if (h->quant == HNSW_QUANT_F16)
        d = h->k->dot_f16(q->f, halves_of(h, i), h->dpad);
    else
        d = q->base + q->cs * (float)h->k->dot_u8i8(codes_of(h, i), q->c, h->dpad);
    return h->l2 ? -(q->n2 - 2.0f * d + *xn2_of(h, i)) : d;
}

static inline float half_to_float(uint16_t x) { return simde_float16_to_float32(simde_uint16_as_float16(x)); }

/* Node i's vector as floats: in place, or decoded into buf (dpad). */
static const float *node_vec(const hnsw *h, uint32_t i, float *buf)
{
    if (h->quant == HNSW_QUANT_NONE)
        return vec_of(h, i);
    if (h->quant == HNSW_QUANT_F16) {
        const uint16_t *x = halves_of(h, i);
        for (uint32_t j = 0; j < h->dpad; j++)
            buf[j] = half_to_float(x[j]);
        return buf;
    }
    const uint8_t *c = codes_of(h, i);
    for (uint32_t j = 0; j < h->dpad; j++)
        buf[j] = h->qoff[j] + h->qscale[j] * c[j];
    return buf;
}

/* Writes v's codes or halves and decoded squared norm into node i's record. */
static void encode(const hnsw *h, const float *v, uint32_t i)
{
    uint8_t *c = h->base + (size_t)i * h->rec;
    double n2 = 0;
    if (h->quant == HNSW_QUANT_F16) {
        uint16_t *x = (uint16_t *)c;
        for (uint32_t j = 0; j < h->dpad; j++) {
            float f = v[j] > 65504.0f ? 65504.0f : v[j] < -65504.0f ? -65504.0f : v[j];
            x[j] = simde_float16_as_uint16(simde_float16_from_float32(f));
            double dx = half_to_float(x[j]);
            n2 += dx * dx;
        }
        *xn2_of(h, i) = (float)n2;
        return;
    }
    for (uint32_t j = 0; j < h->dpad; j++) {
        float x = h->qscale[j] > 0 ? (v[j] - h->qoff[j]) / h->qscale[j] : 0;
        long r = lrintf(x);
        c[j] = (uint8_t)(r < 0 ? 0 : r > 255 ? 255 : r);
        double dx = (double)h->qoff[j] + (double)h->qscale[j] * c[j];
        n2 += dx * dx;
    }
    *xn2_of(h, i) = (float)n2;
}

static inline bool bit(const uint64_t *bm, uint32_t i) { return bm[i >> 6] >> (i & 63) & 1; }

/* ---------------------------------------------------------------- heaps */

static void heap_push(hnsw_cand *a, uint32_t *n, hnsw_cand x)
{
    uint32_t i = (*n)++;
    while (i > 0) {
        uint32_t p = (i - 1) / 2;
        if (a[p].s >= x.s)
            break;
        a[i] = a[p];
        i = p;
    }
    a[i] = x;
}

static hnsw_cand heap_pop(hnsw_cand *a, uint32_t *n)
{
    assert(*n > 0);
    hnsw_cand top = a[0], x = a[--*n];
    uint32_t i = 0;
    for (;;) {
        uint32_t c = 2 * i + 1;
        if (c >= *n)
            break;
        if (c + 1 < *n && a[c + 1].s > a[c].s)
            c++;
        if (a[c].s <= x.s)
            break;
        a[i] = a[c];
        i = c;
    }
    if (*n > 0)
        a[i] = x;
    return top;
}

static int by_score_desc(const void *x, const void *y)
{
    const hnsw_cand *a = x, *b = y;
    return a->s > b->s ? -1 : a->s < b->s ? 1 : a->id < b->id ? -1 : a->id > b->id;
}

/* ------------------------------------------------------------ lifecycle */

ndb_status hnsw_new(uint32_t dims, uint32_t dpad, ndb_vec_metric metric, const hnsw_params *p, hnsw **out,
                    ndb_errmsg *msg)
{
    if (dims == 0 || dims > NDB_VEC_MAX_DIMS || dpad < dims || dpad % 16 != 0)
        return ndb_errmsg_set(msg, NDB_EINVAL, "hnsw: %u dimensions in rows of %u floats", dims, dpad);
    if (p->m < 2 || p->m > HNSW_MAX_M)
        return ndb_errmsg_set(msg, NDB_EINVAL, "hnsw: m must be 2..%d, not %u", HNSW_MAX_M, p->m);
    if (p->ef_construction < p->m || p->ef_construction > 10000)
        return ndb_errmsg_set(msg, NDB_EINVAL, "hnsw: ef_construction must be m (%u)..10000, not %u", p->m,
                              p->ef_construction);
    if (p->quant != HNSW_QUANT_NONE && p->quant != HNSW_QUANT_INT8 && p->quant != HNSW_QUANT_F16)
        return ndb_errmsg_set(msg, NDB_EINVAL, "hnsw: unknown quantization %d", (int)p->quant);
    hnsw *h = calloc(1, sizeof *h);
    if (h == NULL)
        return NDB_ENOMEM;
    h->dims = dims;
    h->dpad = dpad;
    h->metric = metric;
    h->l2 = metric == NDB_VEC_L2;
    h->m = p->m;
    h->m0 = 2 * p->m;
    h->efc = p->ef_construction;
    h->ml = 1.0 / log((double)p->m);
    h->rng = p->seed | 1; /* xorshift needs a non-zero state */
    h->quant = p->quant;
    h->cbytes = h->quant == HNSW_QUANT_F16 ? 2 * (size_t)dpad : (size_t)dpad;
    h->vdim = h->quant == HNSW_QUANT_NONE ? dims : dpad;
    h->vbytes = h->quant == HNSW_QUANT_NONE ? (size_t)dims * sizeof(float) : h->cbytes + sizeof(float);
    if (h->quant == HNSW_QUANT_INT8 &&
        ((h->qoff = calloc(dpad, sizeof(float))) == NULL || (h->qscale = calloc(dpad, sizeof(float))) == NULL)) {
        free(h->qoff);
        free(h);
        return NDB_ENOMEM;
    }
    h->rec = h->vbytes + (1 + (size_t)h->m0) * sizeof(uint32_t) + sizeof(uint64_t);
    h->top = -1;
    h->k = kern_get();
    *out = h;
    return NDB_OK;
}

void hnsw_free(hnsw *h)
{
    if (h == NULL)
        return;
    free(h->up);
    free(h->upmem);
    free(h->base);
    free(h->qoff);
    free(h->qscale);
    free(h);
}

void hnsw_scratch_free(hnsw_scratch *s)
{
    free(s->mark);
    free(s->cand);
    free(s->res);
    free(s->fv);
    free(s->qc);
    memset(s, 0, sizeof *s);
}

/* Room in s for a search over n nodes of h keeping ef results. */
static ndb_status scratch_fit(const hnsw *h, hnsw_scratch *s, uint32_t n, uint32_t ef)
{
    if (s->vcap < h->dpad) { /* a decoded vector and two int8 forms */
        float *fv = realloc(s->fv, (size_t)h->dpad * sizeof *fv);
        if (fv == NULL)
            return NDB_ENOMEM;
        s->fv = fv;
        int8_t *qc = realloc(s->qc, 2 * (size_t)h->dpad);
        if (qc == NULL)
            return NDB_ENOMEM;
        s->qc = qc;
        s->vcap = h->dpad;
    }
    if (s->mcap < n) {
        uint32_t cap = n < 1024 ? 1024 : n + n / 2;
        uint32_t *mk = realloc(s->mark, (size_t)cap * sizeof *mk);
        if (mk == NULL)
            return NDB_ENOMEM;
        memset(mk + s->mcap, 0, (size_t)(cap - s->mcap) * sizeof *mk);
        s->mark = mk;
        s->mcap = cap;
        s->ccap = 0; /* the candidate heap is sized with the marks */
    }
    if (s->ccap < s->mcap + 1) {
        hnsw_cand *c = realloc(s->cand, ((size_t)s->mcap + 1) * sizeof *c);
        if (c == NULL)
            return NDB_ENOMEM;
        s->cand = c;
        s->ccap = s->mcap + 1;
    }
    if (s->rcap < ef + 1) {
        hnsw_cand *r = realloc(s->res, ((size_t)ef + 1) * sizeof *r);
        if (r == NULL)
            return NDB_ENOMEM;
        s->res = r;
        s->rcap = ef + 1;
    }
    return NDB_OK;
}

static void new_epoch(hnsw_scratch *s)
{
    if (++s->epoch == 0) {
        memset(s->mark, 0, (size_t)s->mcap * sizeof *s->mark);
        s->epoch = 1;
    }
}

static ndb_status grow(hnsw *h)
{
    uint32_t cap = h->cap < 1024 ? 1024 : h->cap + h->cap / 2;
    if (cap <= h->cap) /* node numbers are 32-bit */
        return NDB_ELIMIT;
    uint8_t *base = kern_alloc((size_t)cap * h->rec);
    if (base == NULL)
        return NDB_ENOMEM;
    if (h->n > 0)
        memcpy(base, h->base, (size_t)h->n * h->rec);
    free(h->base);
    h->base = base;
    h->cap = cap;
    return NDB_OK;
}

/* ---------------------------------------------------------------- search */

/* From ep, moves to the best neighbour at each level from `from` down to
 * `to` + 1 while that improves the score (ef = 1). */
static uint32_t greedy(const hnsw *h, const hq *q, uint32_t ep, float *eps, int from, int to)
{
    for (int l = from; l > to; l--) {
        bool moved = true;
        while (moved) {
            moved = false;
            const uint32_t *lk = links_at(h, ep, l);
            for (uint32_t j = 1; j <= lk[0]; j++) {
                float s = qscore(h, q, lk[j]);
                if (s > *eps) {
                    *eps = s;
                    ep = lk[j];
                    moved = true;
                }
            }
        }
    }
    return ep;
}

/* The paper's algorithm 2 at level l from ep: up to ef results in s->res
 * (negated scores), returns their count. Nodes set in dead (NULL: none) are
 * traversed but do not become results. */
static uint32_t search_layer(const hnsw *h, const hq *q, uint32_t ep, float eps, uint32_t ef, int l,
                             const uint64_t *dead, hnsw_scratch *s)
{
    new_epoch(s);
    hnsw_cand *cand = s->cand, *res = s->res;
    uint32_t nc = 0, nr = 0;
    s->mark[ep] = s->epoch;
    float lower = -INFINITY;
    if (!dead || !bit(dead, ep)) {
        heap_push(res, &nr, (hnsw_cand){-eps, ep});
        lower = eps;
    }
    heap_push(cand, &nc, (hnsw_cand){eps, ep});
    while (nc > 0) {
        hnsw_cand c = heap_pop(cand, &nc);
        if (c.s < lower && (nr == ef || !dead))
            break;
        const uint32_t *lk = links_at(h, c.id, l);
        uint32_t cnt = lk[0];
        if (cnt > 0)
            __builtin_prefetch(vec_of(h, lk[1]));
        for (uint32_t j = 1; j <= cnt; j++) {
            uint32_t e = lk[j];
            if (j < cnt)
                __builtin_prefetch(vec_of(h, lk[j + 1]));
            if (s->mark[e] == s->epoch)
                continue;
            s->mark[e] = s->epoch;
            float se = qscore(h, q, e);
            if (nr < ef || se > lower) {
                heap_push(cand, &nc, (hnsw_cand){se, e});
                if (!dead || !bit(dead, e)) {
                    heap_push(res, &nr, (hnsw_cand){-se, e});
                    if (nr > ef)
                        heap_pop(res, &nr);
                }
                if (nr > 0)
                    lower = -res[0].s;
            }
        }
    }
    return nr;
}

/* Level 0 under a filter, in the manner of ACORN-1 (Patel et al., "ACORN:
 * Performant and Predicate-Agnostic Search Over Vector Embeddings and
 * Structured Data", 2024): only allowed nodes are scored and become
 * candidates. A candidate's neighbour list is its allowed neighbours, then,
 * while there are fewer than m0, the allowed neighbours of the neighbours the
 * filter rejected (crossing them instead of visiting them), so the allowed
 * nodes stay connected at low selectivity and a step costs at most m0 scores
 * as an unfiltered one does. Results: up to ef allowed, live nodes in s->res
 * (negated scores). */
static uint32_t search_filtered(const hnsw *h, const hq *q, uint32_t ep, float eps, uint32_t ef,
                                const uint64_t *allow, const uint64_t *dead, hnsw_scratch *s)
{
    new_epoch(s);
    hnsw_cand *cand = s->cand, *res = s->res;
    uint32_t nc = 0, nr = 0;
    float lower = -INFINITY;
    s->mark[ep] = s->epoch;
    if (bit(allow, ep) && (!dead || !bit(dead, ep))) {
        heap_push(res, &nr, (hnsw_cand){-eps, ep});
        lower = eps;
    }
    heap_push(cand, &nc, (hnsw_cand){eps, ep});
    uint32_t next[2 * HNSW_MAX_M], rejected[2 * HNSW_MAX_M];
    while (nc > 0) {
        hnsw_cand c = heap_pop(cand, &nc);
        if (c.s < lower && nr == ef)
            break;
        /* this step's neighbour list: allowed one hop away, then two */
        const uint32_t *lk = links_at(h, c.id, 0);
        uint32_t nn = 0, nrej = 0;
        for (uint32_t j = 1; j <= lk[0]; j++) {
            uint32_t e = lk[j];
            if (s->mark[e] == s->epoch)
                continue;
            s->mark[e] = s->epoch;
            if (bit(allow, e))
                next[nn++] = e;
            else
                rejected[nrej++] = e;
        }
        for (uint32_t r = 0; r < nrej && nn < h->m0; r++) {
            const uint32_t *two = links_at(h, rejected[r], 0);
            for (uint32_t j = 1; j <= two[0] && nn < h->m0; j++) {
                uint32_t x = two[j];
                if (s->mark[x] == s->epoch || !bit(allow, x))
                    continue;
                s->mark[x] = s->epoch;
                next[nn++] = x;
            }
        }
        for (uint32_t j = 0; j < nn; j++) {
            uint32_t x = next[j];
            if (j + 1 < nn)
                __builtin_prefetch(vec_of(h, next[j + 1]));
            float sx = qscore(h, q, x);
            if (nr < ef || sx > lower) {
                heap_push(cand, &nc, (hnsw_cand){sx, x});
                if (!dead || !bit(dead, x)) {
                    heap_push(res, &nr, (hnsw_cand){-sx, x});
                    if (nr > ef)
                        heap_pop(res, &nr);
                }
                if (nr > 0)
                    lower = -res[0].s;
            }
        }
    }
    return nr;
}

/* Empties the result heap (nr entries) into out, best first, with their
 * true scores. */
static void drain_results(hnsw_scratch *s, uint32_t nr, hnsw_cand *out)
{
    for (uint32_t i = nr; i > 0; i--) {
        hnsw_cand c = heap_pop(s->res, &nr);
        out[i - 1] = (hnsw_cand){-c.s, c.id};
    }
}

/* Set bits of allow below the node count. */
static uint64_t count_allowed(const hnsw *h, const uint64_t *allow)
{
    uint32_t words = (h->n + 63) / 64;
    uint64_t c = 0;
    for (uint32_t w = 0; w < words; w++) {
        uint64_t bits = allow[w];
        if (w + 1 == words && h->n % 64 != 0)
            bits &= (1ull << (h->n % 64)) - 1;
        c += (uint64_t)__builtin_popcountll(bits);
    }
    return c;
}

bool hnsw_prefers_exact(const hnsw *h, uint64_t allowed, uint32_t ef)
{
    return allowed * HNSW_EXACT_BELOW < h->n || allowed <= 4 * (uint64_t)ef;
}

/* Scores every allowed, live node: the k best in s->res (negated scores). */
static uint32_t search_exact(const hnsw *h, const hq *q, uint32_t k, const uint64_t *allow, const uint64_t *dead,
                             hnsw_scratch *s)
{
    hnsw_cand *res = s->res;
    uint32_t nr = 0;
    for (uint32_t w = 0; w < (h->n + 63) / 64; w++) {
        for (uint64_t bits = allow[w] & (dead ? ~dead[w] : ~0ull); bits != 0; bits &= bits - 1) {
            uint32_t i = w * 64 + (uint32_t)__builtin_ctzll(bits);
            if (i >= h->n)
                break;
            float si = qscore(h, q, i);
            if (nr < k || si > -res[0].s) {
                heap_push(res, &nr, (hnsw_cand){-si, i});
                if (nr > k)
                    heap_pop(res, &nr);
            }
        }
    }
    return nr;
}

ndb_status hnsw_search(const hnsw *h, const float *q, uint32_t k, uint32_t ef, const uint64_t *allow,
                       const uint64_t *dead, hnsw_scratch *s, hnsw_hit *out, uint32_t *n, hnsw_path *path)
{
    *n = 0;
    *path = allow != NULL ? HNSW_PATH_FILTERED : HNSW_PATH_GRAPH;
    if (h->top < 0 || k == 0)
        return NDB_OK;
    if (ef < k)
        ef = k;
    if (scratch_fit(h, s, h->n, ef) != NDB_OK)
        return NDB_ENOMEM;
    uint32_t nr;
    hq pq;
    prep(h, q, s->qc, &pq);
    uint64_t allowed = allow != NULL ? count_allowed(h, allow) : 0;
    if (allow != NULL && hnsw_prefers_exact(h, allowed, ef)) {
        nr = search_exact(h, &pq, k, allow, dead, s);
        *path = HNSW_PATH_EXACT;
    } else {
        uint32_t ep = h->entry;
        float eps = qscore(h, &pq, ep);
        ep = greedy(h, &pq, ep, &eps, h->top, 0);
        nr = allow != NULL ? search_filtered(h, &pq, ep, eps, ef, allow, dead, s)
                           : search_layer(h, &pq, ep, eps, ef, 0, dead, s);
        if (allow != NULL && nr < k && nr < allowed) { /* the allowed nodes lie where the traversal did not reach */
            nr = search_exact(h, &pq, k, allow, dead, s); /* (it starts the result heap afresh) */
            *path = HNSW_PATH_FALLBACK;
        }
    }
    while (nr > k)
        heap_pop(s->res, &nr);
    *n = nr;
    for (uint32_t i = nr; i > 0; i--) {
        hnsw_cand c = heap_pop(s->res, &nr);
        out[i - 1] = (hnsw_hit){-c.s, c.id};
    }
    return NDB_OK;
}

/* --------------------------------------------------------------- insert */

/* The paper's algorithm 4: from cands (best first, scores against the base
 * point), keeps a candidate only if it is closer to the base than to every
 * candidate kept before it; at most max. Returns the count kept (in place). */
static uint32_t select_heuristic(const hnsw *h, hnsw_scratch *s, hnsw_cand *cands, uint32_t n, uint32_t max)
{
    uint32_t kept = 0;
    for (uint32_t i = 0; i < n && kept < max; i++) {
        hnsw_cand c = cands[i];
        hq cq;
        if (kept > 0)
            prep(h, node_vec(h, c.id, s->fv), s->qc + h->dpad, &cq);
        bool good = true;
        for (uint32_t r = 0; r < kept && good; r++)
            good = qscore(h, &cq, cands[r].id) <= c.s;
        if (good)
            cands[kept++] = c;
    }
    return kept;
}

/* Adds a link from e to node at level l, choosing again among e's links by
 * the heuristic when e has max already. */
static void link_back(hnsw *h, hnsw_scratch *s, uint32_t e, uint32_t node, int l, uint32_t max)
{
    uint32_t *lk = links_at(h, e, l);
    if (lk[0] < max) {
        lk[++lk[0]] = node;
        return;
    }
    hnsw_cand c[2 * HNSW_MAX_M + 1];
    hq eq;
    prep(h, node_vec(h, e, s->fv), s->qc + h->dpad, &eq);
    for (uint32_t j = 0; j < lk[0]; j++)
        c[j] = (hnsw_cand){qscore(h, &eq, lk[j + 1]), lk[j + 1]};
    c[lk[0]] = (hnsw_cand){qscore(h, &eq, node), node};
    qsort(c, lk[0] + 1, sizeof *c, by_score_desc);
    uint32_t kept = select_heuristic(h, s, c, lk[0] + 1, max);
    for (uint32_t j = 0; j < kept; j++)
        lk[j + 1] = c[j].id;
    lk[0] = kept;
}

static int draw_level(hnsw *h)
{
    h->rng ^= h->rng << 13;
    h->rng ^= h->rng >> 7;
    h->rng ^= h->rng << 17;
    double u = ((double)(h->rng >> 11) + 1.0) * 0x1p-53; /* (0, 1] */
    double l = -log(u) * h->ml;
    return l >= HNSW_MAX_LEVEL ? HNSW_MAX_LEVEL : (int)l;
}

ndb_status hnsw_add(hnsw *h, uint64_t label, const float *vec, hnsw_scratch *s, uint32_t *node)
{
    ndb_status st;
    if (h->quant == HNSW_QUANT_INT8 && !h->trained)
        return NDB_EINVAL;
    if (h->n == h->cap && (st = grow(h)) != NDB_OK)
        return st;
    if ((st = scratch_fit(h, s, h->n + 1, h->efc)) != NDB_OK)
        return st;
    uint64_t saved = h->rng;
    int level = draw_level(h);
    uint32_t i = h->n;
    size_t need = (size_t)level * (h->m + 1);
    if (h->uplen + need > h->upcap) {
        size_t cap = h->upcap < 4096 ? 4096 : h->upcap * 2;
        uint32_t *mem = cap > UINT32_MAX ? NULL : realloc(h->upmem, cap * sizeof *mem);
        if (mem == NULL) {
            h->rng = saved;
            return NDB_ENOMEM;
        }
        h->upmem = mem;
        h->upcap = cap;
    }
    if (level > 0 && h->nup == h->upncap) {
        uint32_t cap = h->upncap < 256 ? 256 : h->upncap * 2;
        uint32_t *up = cap <= h->upncap ? NULL : realloc(h->up, (size_t)cap * 2 * sizeof *up);
        if (up == NULL) {
            h->rng = saved;
            return NDB_ENOMEM;
        }
        h->up = up;
        h->upncap = cap;
    }
    if (level > 0) {
        h->up[2 * (size_t)h->nup] = i;
        h->up[2 * (size_t)h->nup + 1] = (uint32_t)h->uplen;
        h->nup++;
        h->uplen += need;
        for (int l = 1; l <= level; l++)
            links_at(h, i, l)[0] = 0;
    }
    if (h->quant != HNSW_QUANT_NONE)
        encode(h, vec, i);
    else
        memcpy(h->base + (size_t)i * h->rec, vec, h->vbytes);
    links_at(h, i, 0)[0] = 0;
    memcpy(label_at(h, i), &label, sizeof label);
    h->n++;
    *node = i;
    if (h->top < 0) {
        h->entry = i;
        h->top = level;
        return NDB_OK;
    }
    hq vq;
    prep(h, vec, s->qc, &vq);
    uint32_t ep = h->entry;
    float eps = qscore(h, &vq, ep);
    ep = greedy(h, &vq, ep, &eps, h->top, level);
    for (int l = level < h->top ? level : h->top; l >= 0; l--) {
        uint32_t nr = search_layer(h, &vq, ep, eps, h->efc, l, NULL, s);
        hnsw_cand *w = s->cand; /* the candidate heap is done with: the results, best first */
        drain_results(s, nr, w);
        ep = w[0].id;
        eps = w[0].s;
        uint32_t kept = select_heuristic(h, s, w, nr, h->m);
        uint32_t *lk = links_at(h, i, l);
        for (uint32_t j = 0; j < kept; j++)
            lk[j + 1] = w[j].id;
        lk[0] = kept;
        for (uint32_t j = 0; j < kept; j++)
            link_back(h, s, w[j].id, i, l, l == 0 ? h->m0 : h->m);
    }
    if (level > h->top) {
        h->entry = i;
        h->top = level;
    }
    return NDB_OK;
}

/* ------------------------------------------------------------- accessors */

uint32_t hnsw_count(const hnsw *h) { return h->n; }

hnsw_params hnsw_get_params(const hnsw *h) { return (hnsw_params){h->m, h->efc, h->rng, h->quant}; }

ndb_status hnsw_train(hnsw *h, const float *rows, size_t n, size_t stride)
{
    if (h->quant != HNSW_QUANT_INT8)
        return NDB_OK;
    if (n == 0 || h->n > 0)
        return NDB_EINVAL;
    for (uint32_t j = 0; j < h->dpad; j++) {
        float lo = rows[j], hi = rows[j];
        for (size_t i = 1; i < n; i++) {
            float x = rows[i * stride + j];
            lo = x < lo ? x : lo;
            hi = x > hi ? x : hi;
        }
        h->qoff[j] = lo;
        h->qscale[j] = (hi - lo) / 255.0f;
    }
    h->trained = true;
    return NDB_OK;
}

uint64_t hnsw_label(const hnsw *h, uint32_t node)
{
    assert(node < h->n);
    uint64_t label;
    memcpy(&label, label_at(h, node), sizeof label);
    return label;
}

size_t hnsw_bytes(const hnsw *h)
{
    return (size_t)h->n * h->rec + (size_t)h->nup * 2 * sizeof *h->up + h->uplen * sizeof *h->upmem +
           (h->quant == HNSW_QUANT_INT8 ? 2 * (size_t)h->dpad * sizeof(float) : 0);
}

ndb_status hnsw_check(const hnsw *h, ndb_errmsg *msg)
{
    if (h->n == 0)
        return h->top == -1 ? NDB_OK : ndb_errmsg_set(msg, NDB_ECORRUPT, "hnsw: empty with an entry point");
    int maxl = 0;
    for (uint32_t i = 0, u = 0; i < h->n; i++) {
        int level = u < h->nup && h->up[2 * (size_t)u] == i ? up_level(h, u++) : 0;
        maxl = level > maxl ? level : maxl;
        for (int l = 0; l <= level; l++) {
            const uint32_t *lk = links_at(h, i, l);
            if (lk[0] > (l == 0 ? h->m0 : h->m))
                return ndb_errmsg_set(msg, NDB_ECORRUPT, "hnsw: node %u has %u links at level %d", i, lk[0], l);
            for (uint32_t j = 1; j <= lk[0]; j++)
                if (lk[j] >= h->n || lk[j] == i || (l > 0 && level_of(h, lk[j]) < l))
                    return ndb_errmsg_set(msg, NDB_ECORRUPT, "hnsw: node %u links to %u at level %d", i, lk[j], l);
        }
    }
    if (h->entry >= h->n || level_of(h, h->entry) != h->top || h->top != maxl)
        return ndb_errmsg_set(msg, NDB_ECORRUPT, "hnsw: entry point %u at level %d, highest level %d", h->entry,
                              h->top, maxl);
    return NDB_OK;
}

uint32_t hnsw_unreachable(const hnsw *h)
{
    if (h->n == 0)
        return 0;
    uint32_t *queue = malloc((size_t)h->n * sizeof *queue);
    uint64_t *seen = calloc(((size_t)h->n + 63) / 64, sizeof *seen);
    if (queue == NULL || seen == NULL) {
        free(queue);
        free(seen);
        return UINT32_MAX;
    }
    uint32_t head = 0, tail = 0;
    queue[tail++] = h->entry;
    seen[h->entry >> 6] |= 1ull << (h->entry & 63);
    while (head < tail) {
        const uint32_t *lk = links_at(h, queue[head++], 0);
        for (uint32_t j = 1; j <= lk[0]; j++) {
            if (!bit(seen, lk[j])) {
                seen[lk[j] >> 6] |= 1ull << (lk[j] & 63);
                queue[tail++] = lk[j];
            }
        }
    }
    free(queue);
    free(seen);
    return h->n - tail;
}

/* ------------------------------------------------------------------ files */

/* Header fields (FORMAT.md, "Graph files"). */
enum {
    H_MAGIC = 0, H_VERSION = 8, H_DIMS = 12, H_DPAD = 16, H_METRIC = 20, H_M = 24, H_EFC = 28, H_N = 32,
    H_ENTRY = 36, H_TOP = 40, H_TAG = 48, H_UPLEN = 56, H_RNG = 64, H_QUANT = 72, H_NUP = 76,
    H_CRC = HNSW_FILE_HEADER - 4,
};

static inline size_t pad8(size_t n) { return (n + 7) & ~(size_t)7; }

/* Bytes of the body after the header, for nup nodes above level 0, n nodes
 * of rec bytes, uplen upper-level words and qbytes of quantizer (no
 * overflow: nup <= n < 2^32, rec < 2^17, uplen < 2^32). */
static uint64_t body_bytes(uint64_t nup, uint64_t n, size_t rec, uint64_t uplen, uint64_t qbytes)
{
    return 8 * nup + pad8(n * rec) + pad8(4 * uplen) + qbytes + 4;
}

static size_t quant_bytes(const hnsw *h)
{
    return h->quant == HNSW_QUANT_INT8 ? 2 * (size_t)h->dpad * sizeof(float) : 0;
}

ndb_status hnsw_write(struct kv_env *fs, const char *path, const hnsw *h, uint64_t tag, ndb_errmsg *msg)
{
    unsigned char hd[HNSW_FILE_HEADER] = {0};
    memcpy(hd + H_MAGIC, HNSW_FILE_MAGIC, 8);
    ndb_put_le32(hd + H_VERSION, HNSW_FILE_VERSION);
    ndb_put_le32(hd + H_DIMS, h->dims);
    ndb_put_le32(hd + H_DPAD, h->dpad);
    ndb_put_le32(hd + H_METRIC, (uint32_t)h->metric);
    ndb_put_le32(hd + H_M, h->m);
    ndb_put_le32(hd + H_EFC, h->efc);
    ndb_put_le32(hd + H_N, h->n);
    ndb_put_le32(hd + H_ENTRY, h->entry);
    ndb_put_le32(hd + H_TOP, (uint32_t)h->top);
    ndb_put_le64(hd + H_TAG, tag);
    ndb_put_le64(hd + H_UPLEN, h->uplen);
    ndb_put_le64(hd + H_RNG, h->rng);
    ndb_put_le32(hd + H_QUANT, (uint32_t)h->quant);
    ndb_put_le32(hd + H_NUP, h->nup);
    ndb_put_le32(hd + H_CRC, crc32c(hd, H_CRC));
    vfile_w w;
    ndb_status st = vfile_create(fs, path, &w);
    if (st != NDB_OK)
        return ndb_errmsg_set(msg, st, "graph %s: cannot create (%s)", path, ndb_strerror(st));
    static const unsigned char zero[8];
    vfile_put_direct(&w, hd, sizeof hd);
    w.crc = 0; /* the trailer covers the body */
    if (h->nup > 0)
        vfile_put(&w, h->up, (size_t)h->nup * 8);
    vfile_put_direct(&w, h->base, (size_t)h->n * h->rec);
    vfile_put(&w, zero, pad8((size_t)h->n * h->rec) - (size_t)h->n * h->rec);
    vfile_put(&w, h->upmem, h->uplen * 4);
    vfile_put(&w, zero, pad8(h->uplen * 4) - h->uplen * 4);
    if (h->quant == HNSW_QUANT_INT8) {
        vfile_put(&w, h->qoff, (size_t)h->dpad * sizeof(float));
        vfile_put(&w, h->qscale, (size_t)h->dpad * sizeof(float));
    }
    unsigned char tr[4];
    ndb_put_le32(tr, w.crc);
    vfile_put(&w, tr, 4);
    if ((st = vfile_close(&w)) != NDB_OK)
        return ndb_errmsg_set(msg, st, "graph %s: write failed (%s)", path, ndb_strerror(st));
    return NDB_OK;
}

#define BAD(...) ndb_errmsg_set(msg, NDB_ECORRUPT, __VA_ARGS__)

/* Every count and offset of a loaded graph within its arrays, before
 * hnsw_check may follow them. */
static ndb_status check_bounds(const hnsw *h, const char *path, ndb_errmsg *msg)
{
    /* up: nodes ascending, their words one after the other from 0 to uplen,
     * 1 .. HNSW_MAX_LEVEL levels each */
    for (uint32_t j = 0; j < h->nup; j++) {
        const uint32_t *e = h->up + 2 * (size_t)j;
        uint64_t end = j + 1 < h->nup ? e[3] : h->uplen;
        if (e[0] >= h->n || (j > 0 && e[0] <= e[-2]))
            return BAD("graph %s: upper-level node %u out of order", path, e[0]);
        if (e[1] != (j > 0 ? e[-1] + (uint64_t)up_level(h, j - 1) * (h->m + 1) : 0) || end <= e[1] ||
            (end - e[1]) % (h->m + 1) != 0 || (end - e[1]) / (h->m + 1) > HNSW_MAX_LEVEL)
            return BAD("graph %s: node %u's upper levels lie outside their words", path, e[0]);
    }
    if (h->nup == 0 && h->uplen != 0)
        return BAD("graph %s: upper-level words without nodes", path);
    for (uint32_t i = 0, u = 0; i < h->n; i++) {
        int level = u < h->nup && h->up[2 * (size_t)u] == i ? up_level(h, u++) : 0;
        for (int l = 0; l <= level; l++)
            if (links_at(h, i, l)[0] > (l == 0 ? h->m0 : h->m))
                return BAD("graph %s: node %u has %u links at level %d", path, i, links_at(h, i, l)[0], l);
    }
    if ((h->n == 0) != (h->top < 0) || (h->n > 0 && (h->entry >= h->n || h->top > HNSW_MAX_LEVEL)))
        return BAD("graph %s: bad entry point", path);
    return NDB_OK;
}

ndb_status hnsw_open(struct kv_env *fs, const char *path, uint32_t dims, uint32_t dpad, ndb_vec_metric metric,
                     uint64_t tag, hnsw **out, ndb_errmsg *msg)
{
    kv_file *f;
    ndb_status st = fs->v->open_read(fs, path, &f);
    if (st != NDB_OK)
        return ndb_errmsg_set(msg, st == NDB_ENOTFOUND ? NDB_ECORRUPT : st, "graph %s: cannot open", path);
    unsigned char hd[HNSW_FILE_HEADER];
    uint64_t size = 0;
    size_t got = 0;
    if ((st = kv_file_size(f, &size)) == NDB_OK && size >= sizeof hd)
        st = kv_file_pread(f, 0, hd, sizeof hd, &got);
    kv_file_close(f);
    if (st != NDB_OK)
        return ndb_errmsg_set(msg, st, "graph %s: read failed", path);
    if (size < sizeof hd || got != sizeof hd)
        return BAD("graph %s: truncated (%llu bytes)", path, (unsigned long long)size);
    if (memcmp(hd + H_MAGIC, HNSW_FILE_MAGIC, 8) != 0 || ndb_get_le32(hd + H_CRC) != crc32c(hd, H_CRC))
        return BAD("graph %s: bad magic or header checksum", path);
    if (ndb_get_le32(hd + H_VERSION) != HNSW_FILE_VERSION)
        return BAD("graph %s: unsupported version %u", path, ndb_get_le32(hd + H_VERSION));
    if (ndb_get_le64(hd + H_TAG) != tag || ndb_get_le32(hd + H_DIMS) != dims || ndb_get_le32(hd + H_DPAD) != dpad ||
        ndb_get_le32(hd + H_METRIC) != (uint32_t)metric)
        return BAD("graph %s: made for other rows (tag, dims or metric differ)", path);
    hnsw_params p = {.m = ndb_get_le32(hd + H_M), .ef_construction = ndb_get_le32(hd + H_EFC),
                     .seed = ndb_get_le64(hd + H_RNG), .quant = (hnsw_quant)ndb_get_le32(hd + H_QUANT)};
    hnsw *h;
    ndb_errmsg pm = {{0}};
    if (hnsw_new(dims, dpad, metric, &p, &h, &pm) != NDB_OK)
        return BAD("graph %s: bad parameters (%s)", path, pm.text);
    h->rng = p.seed;
    uint64_t n = ndb_get_le32(hd + H_N), uplen = ndb_get_le64(hd + H_UPLEN), nup = ndb_get_le32(hd + H_NUP);
    if (uplen > UINT32_MAX || nup > n || size != sizeof hd + body_bytes(nup, n, h->rec, uplen, quant_bytes(h))) {
        hnsw_free(h);
        return BAD("graph %s: truncated or wrong size (%llu bytes)", path, (unsigned long long)size);
    }
    const void *map;
    if ((st = fs->v->map(fs, path, size, &map)) != NDB_OK) {
        hnsw_free(h);
        return ndb_errmsg_set(msg, st, "graph %s: cannot map", path);
    }
    const unsigned char *b = (const unsigned char *)map + sizeof hd;
    uint64_t body = size - sizeof hd;
    if (crc32c(b, body - 4) != ndb_get_le32(b + body - 4)) {
        st = BAD("graph %s: checksum mismatch", path);
    } else {
        while (st == NDB_OK && h->cap < n)
            st = grow(h);
        if (st == NDB_OK && uplen > 0 && (h->upmem = malloc(uplen * 4)) == NULL)
            st = NDB_ENOMEM;
        if (st == NDB_OK && nup > 0 && (h->up = malloc(nup * 8)) == NULL)
            st = NDB_ENOMEM;
    }
    if (st == NDB_OK) {
        h->n = (uint32_t)n;
        h->uplen = h->upcap = uplen;
        h->nup = h->upncap = (uint32_t)nup;
        if (nup > 0)
            memcpy(h->up, b, nup * 8);
        b += nup * 8;
        memcpy(h->base, b, n * h->rec);
        b += pad8(n * h->rec);
        if (uplen > 0)
            memcpy(h->upmem, b, uplen * 4);
        if (h->quant == HNSW_QUANT_INT8) {
            b += pad8(uplen * 4);
            memcpy(h->qoff, b, (size_t)dpad * sizeof(float));
            memcpy(h->qscale, b + (size_t)dpad * sizeof(float), (size_t)dpad * sizeof(float));
            h->trained = true;
        }
        h->entry = ndb_get_le32(hd + H_ENTRY);
        h->top = (int32_t)ndb_get_le32(hd + H_TOP);
        st = check_bounds(h, path, msg);
        ndb_errmsg why = {{0}};
        if (st == NDB_OK && hnsw_check(h, &why) != NDB_OK)
            st = BAD("graph %s: %s", path, why.text);
    }
    fs->v->unmap(fs, map, size);
    if (st != NDB_OK) {
        hnsw_free(h);
        return st == NDB_ENOMEM ? ndb_errmsg_set(msg, st, "graph %s: out of memory", path) : st;
    }
    *out = h;
    return NDB_OK;
}
