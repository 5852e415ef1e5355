/* coll.c — one collection's searchable rows in memory; see vec_int.h. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "env.h"
#include "kern.h"
#include "populate.h"
#include "vec_int.h"

void vlog(const venv *e, const char *fmt, ...)
{
    char line[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    if (e->log)
        e->log(e->log_ctx, line);
    else
        fprintf(stderr, "nexadb vector: %s\n", line);
}

static int bit_get(const uint64_t *bm, uint64_t i) { return (int)((bm[i >> 6] >> (i & 63)) & 1u); }
static void bit_set(uint64_t *bm, uint64_t i) { bm[i >> 6] |= 1ull << (i & 63); }

ndb_status row_value_parse(const vcoll *c, const void *v, size_t vlen, const char **id, size_t *idlen,
                           const float **vec)
{
    const uint8_t *p = v;
    if (vlen < 2)
        return NDB_ECORRUPT;
    size_t l = (size_t)p[0] | (size_t)p[1] << 8;
    if (l == 0 || l > NDB_VEC_MAX_ID || vlen != row_value_len(c, l))
        return NDB_ECORRUPT;
    *id = (const char *)p + 2;
    *idlen = l;
    *vec = (const float *)(p + 2 + l); /* unaligned: read with memcpy */
    return NDB_OK;
}

/* ---- metrics ------------------------------------------------------------------ */

const char *ndb_vec_metric_name(ndb_vec_metric m)
{
    switch (m) {
    case NDB_VEC_COSINE: return "cosine";
    case NDB_VEC_DOT: return "dot";
    case NDB_VEC_L2: return "l2";
    }
    return "unknown";
}

ndb_status ndb_vec_metric_parse(const char *name, ndb_vec_metric *out)
{
    if (!name || !*name || strcmp(name, "cosine") == 0)
        *out = NDB_VEC_COSINE;
    else if (strcmp(name, "dot") == 0)
        *out = NDB_VEC_DOT;
    else if (strcmp(name, "l2") == 0)
        *out = NDB_VEC_L2;
    else
        return NDB_EINVAL;
    return NDB_OK;
}

/* ---- life cycle ---------------------------------------------------------- */

/* {"dims": n, "metric": "cosine" | "dot" | "l2", "index": {...} (optional)}
 * (vdb.c writes it). */
static ndb_status read_meta(vcoll *c, const ndb_doc_ext *x, ndb_errmsg *msg)
{
    ndb_doc_val root, d, m;
    if (ndb_doc_root(x->meta, x->meta_len, &root) != NDB_OK || x->nprefixes != 2 ||
        ndb_doc_get_field(&root, "dims", 4, &d) != NDB_OK || d.type != NDB_DOC_INT || d.u.i < 1 ||
        d.u.i > NDB_VEC_MAX_DIMS || ndb_doc_get_field(&root, "metric", 6, &m) != NDB_OK ||
        m.type != NDB_DOC_STRING)
        return ndb_errmsg_set(msg, NDB_ECORRUPT, "vector collection %s: bad catalog entry", c->name);
    char metric[8] = "";
    if (m.u.s.len < sizeof metric)
        memcpy(metric, m.u.s.ptr, m.u.s.len);
    if (ndb_vec_metric_parse(metric, &c->metric) != NDB_OK || !metric[0])
        return ndb_errmsg_set(msg, NDB_ECORRUPT, "vector collection %s: unknown metric", c->name);
    if (graph_read_meta(&root, &c->index) != NDB_OK)
        return ndb_errmsg_set(msg, NDB_ECORRUPT, "vector collection %s: bad index in its catalog entry", c->name);
    c->dims = (uint32_t)d.u.i;
    c->id = x->prefix_id[0];
    memcpy(c->rkey, x->prefix[0], x->prefix_len[0]);
    c->rklen = x->prefix_len[0];
    memcpy(c->ikey, x->prefix[1], x->prefix_len[1]);
    c->iklen = x->prefix_len[1];
    return NDB_OK;
}

ndb_status coll_new(const venv *env, const char *name, ndb_errmsg *msg, vcoll **out)
{
    ndb_doc_ext x;
    ndb_status st = ndb_doc_collection_ext(env->docs, name, &x, msg);
    if (st != NDB_OK)
        return st;
    vcoll *c = calloc(1, sizeof *c);
    if (!c) {
        free(x.meta);
        return NDB_ENOMEM;
    }
    snprintf(c->name, sizeof c->name, "%s", name);
    st = read_meta(c, &x, msg);
    free(x.meta);
    char sub[32];
    snprintf(sub, sizeof sub, "/%llu", (unsigned long long)c->id);
    if (st == NDB_OK && (c->dir = malloc(strlen(env->dir) + strlen(sub) + 1)) == NULL)
        st = NDB_ENOMEM;
    if (st != NDB_OK) {
        free(c);
        return st;
    }
    strcpy(c->dir, env->dir);
    strcat(c->dir, sub);
    c->env = env;
    c->stride = seg_stride(c->dims);
    c->dpad = c->stride / 4;
    uint64_t sr = env->segment_bytes / c->stride;
    c->seal_rows = sr < 1 ? 1 : (sr > SEG_MAX_ROWS / 2 ? SEG_MAX_ROWS / 2 : sr);
    c->refs = 1;
    c->next_no = 1;
    pthread_mutex_init(&c->wmu, NULL);
    pthread_mutex_init(&c->bmu, NULL);
    pthread_mutex_init(&c->gmu, NULL);
    pthread_cond_init(&c->built, NULL);
    /* Prefer writers: a steady stream of searches must not starve the short
     * exclusive sections that apply durable writes. */
    pthread_rwlockattr_t ra;
    pthread_rwlockattr_init(&ra);
    pthread_rwlockattr_setkind_np(&ra, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
    pthread_rwlock_init(&c->rw, &ra);
    pthread_rwlock_init(&c->grw, &ra); /* likewise the index thread's turns */
    pthread_rwlockattr_destroy(&ra);
    idmap_init(&c->map);
    *out = c;
    return NDB_OK;
}

void coll_free(vcoll *c)
{
    if (!c)
        return;
    for (size_t i = 0; i < c->nsegs; i++)
        seg_close(c->segs[i]);
    free(c->segs);
    rowset_free(&c->act);
    rowset_free(&c->imm);
    idmap_free(&c->map);
    graph_free(c->g);
    graph_free(c->gnext);
    pthread_mutex_destroy(&c->wmu);
    pthread_mutex_destroy(&c->bmu);
    pthread_mutex_destroy(&c->gmu);
    pthread_rwlock_destroy(&c->grw);
    pthread_cond_destroy(&c->built);
    pthread_rwlock_destroy(&c->rw);
    free(c->dir);
    free(c);
}

void coll_ref(vcoll *c) { __atomic_add_fetch(&c->refs, 1, __ATOMIC_RELAXED); }

void coll_unref(vcoll *c)
{
    if (c && __atomic_sub_fetch(&c->refs, 1, __ATOMIC_ACQ_REL) == 0)
        coll_free(c);
}

/* ---- vectors -------------------------------------------------------------- */

/* The message of a rejected vector: its name, then what is wrong. */
__attribute__((format(printf, 4, 5))) static ndb_status bad_vector(ndb_errmsg *msg, const char *name, size_t index,
                                                                  const char *fmt, ...)
{
    char rest[192];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(rest, sizeof rest, fmt, ap);
    va_end(ap);
    if (index == VEC_ONE)
        return ndb_errmsg_set(msg, NDB_EINVAL, "%s%s", name, rest);
    return ndb_errmsg_set(msg, NDB_EINVAL, "%s[%zu].vector%s", name, index, rest);
}

ndb_status coll_check_vector(const vcoll *c, const float *v, uint32_t dims, const char *name, size_t index,
                             float *dst, ndb_errmsg *msg)
{
    if (!v)
        return bad_vector(msg, name, index, ": vector is missing");
    if (dims != c->dims)
        return bad_vector(msg, name, index, " has %u dimensions; collection %s has %u", dims, c->name, c->dims);
    /* One branch-free pass (NaN fails the bound too) with four partial sums,
     * so the compiler can vectorise it; the failing component is found after. */
    double part[4] = {0, 0, 0, 0};
    int ok = 1;
    uint32_t j = 0;
    for (; j + 4 <= dims; j += 4)
        for (int l = 0; l < 4; l++) {
            ok &= fabsf(v[j + l]) <= VEC_MAX_ABS;
            part[l] += (double)v[j + l] * v[j + l];
        }
    for (; j < dims; j++) {
        ok &= fabsf(v[j]) <= VEC_MAX_ABS;
        part[0] += (double)v[j] * v[j];
    }
    for (j = 0; !ok && j < dims; j++) {
        if (isnan(v[j]))
            return bad_vector(msg, name, index, ": component %u is NaN", j);
        if (isinf(v[j]))
            return bad_vector(msg, name, index, ": component %u is infinite", j);
        if (fabsf(v[j]) > VEC_MAX_ABS)
            return bad_vector(msg, name, index, ": component %u (%g) exceeds +-1e15", j, (double)v[j]);
    }
    double n2 = (part[0] + part[1]) + (part[2] + part[3]);
    /* Under cosine the stored form is L2-normalised. A vector already of unit
     * length within float rounding (|n2 - 1| stays below 2e-7 for any
     * normalised float32 vector) is stored as given, so storing a vector read
     * back from the collection (export, then import) keeps every bit. */
    if (c->metric == NDB_VEC_COSINE && fabs(n2 - 1.0) > 1e-6) {
        if (n2 == 0)
            return bad_vector(msg, name, index, ": a zero vector has no direction under the cosine metric");
        double inv = 1.0 / sqrt(n2);
        for (uint32_t j = 0; j < dims; j++)
            dst[j] = (float)(v[j] * inv);
    } else {
        memcpy(dst, v, (size_t)dims * 4);
    }
    return NDB_OK;
}

/* ---- row sets ---------------------------------------------------------------- */

ndb_status rowset_grow(const vcoll *c, rowset *r, uint64_t want)
{
    if (want <= r->cap)
        return NDB_OK;
    /* First growth goes straight to a whole segment's worth: the pages are
     * only virtual until rows land in them. */
    uint64_t ncap = r->cap ? r->cap : (c->seal_rows < 64 ? 64 : c->seal_rows);
    while (ncap < want)
        ncap *= 2;
    float *rows = kern_alloc((size_t)ncap * c->stride);
    char **ids = realloc(r->ids, ncap * sizeof *ids);
    if (ids)
        r->ids = ids;
    uint32_t *lens = realloc(r->idlen, ncap * sizeof *lens);
    if (lens)
        r->idlen = lens;
    uint64_t *rn = realloc(r->rowno, ncap * sizeof *rn);
    if (rn)
        r->rowno = rn;
    uint64_t *dead = calloc((ncap + 63) / 64, 8);
    if (!rows || !ids || !lens || !rn || !dead) {
        free(rows);
        free(dead);
        return NDB_ENOMEM;
    }
    if (r->n)
        memcpy(rows, r->rows, (size_t)r->n * c->stride); /* new rows are written whole when appended */
    if (r->dead)
        memcpy(dead, r->dead, ((r->cap + 63) / 64) * 8);
    free(r->rows);
    free(r->dead);
    r->rows = rows;
    r->dead = dead;
    r->cap = ncap;
    return NDB_OK;
}

/* Forgets r's rows, keeping its arrays for reuse. */
static void rowset_clear(rowset *r)
{
    if (r->n > r->high)
        r->high = r->n;
    for (uint64_t i = 0; i < r->n; i++)
        free(r->ids[i]);
    if (r->dead)
        memset(r->dead, 0, ((r->cap + 63) / 64) * 8);
    r->n = r->ndead = r->idbytes = 0;
}

void rowset_free(rowset *r)
{
    rowset_clear(r);
    free(r->rows);
    free(r->ids);
    free(r->idlen);
    free(r->rowno);
    free(r->dead);
    memset(r, 0, sizeof *r);
}

/* The memory r holds: the rows' pages written so far, its per-row arrays,
 * the ids' copies. */
static uint64_t rowset_bytes(const vcoll *c, const rowset *r)
{
    return (r->n > r->high ? r->n : r->high) * c->stride +
           r->cap * (sizeof *r->ids + sizeof *r->idlen + sizeof *r->rowno) + (r->cap + 63) / 64 * 8 + r->idbytes;
}

static seg_rows rowset_view(const rowset *r)
{
    return (seg_rows){r->rows, r->ids, r->idlen, r->rowno, r->n};
}

static seg *find_seg(const vcoll *c, uint32_t no)
{
    for (size_t i = 0; i < c->nsegs; i++)
        if (c->segs[i]->no == no)
            return c->segs[i];
    return NULL;
}

/* The row set with location number no, or NULL for a segment. */
static const rowset *set_of(const vcoll *c, uint32_t no)
{
    if (no == c->next_no)
        return &c->act;
    if (c->imm.n && no == c->imm_no)
        return &c->imm;
    return NULL;
}

/* Marks the row at loc dead, and its graph node (rw held exclusively, or
 * single-threaded). */
static void mark_dead(vcoll *c, idmap_loc loc)
{
    rowset *r = (rowset *)set_of(c, loc.seg);
    if (r) {
        if (!bit_get(r->dead, loc.row)) {
            bit_set(r->dead, loc.row);
            r->ndead++;
            graph_kill(c, r->rowno[loc.row]);
        }
        return;
    }
    seg *s = find_seg(c, loc.seg);
    if (s && !bit_get(s->dead, loc.row)) {
        bit_set(s->dead, loc.row);
        s->ndead++;
        graph_kill(c, s->rowno[loc.row]);
    }
}

/* Appends a row to act (capacity and map reserved; takes aid and key, owned
 * copies of id). */
static void append_owned(vcoll *c, char *aid, char *key, size_t idlen, uint64_t row, const float *vec)
{
    rowset *a = &c->act;
    float *dst = a->rows + a->n * c->dpad;
    memcpy(dst, vec, (size_t)c->dims * 4);
    memset(dst + c->dims, 0, (c->dpad - c->dims) * 4); /* the kernels read the padding */
    a->ids[a->n] = aid;
    a->idbytes += idlen + 1;
    a->idlen[a->n] = (uint32_t)idlen;
    a->rowno[a->n] = row;
    idmap_put_owned(&c->map, key, idlen, (idmap_loc){c->next_no, (uint32_t)a->n});
    a->n++;
}

static char *dup_id(const char *id, size_t idlen)
{
    char *p = malloc(idlen + 1);
    if (p) {
        memcpy(p, id, idlen);
        p[idlen] = 0;
    }
    return p;
}

ndb_status coll_append(vcoll *c, const char *id, size_t idlen, uint64_t row, const float *vec)
{
    char *aid = dup_id(id, idlen), *key = dup_id(id, idlen);
    ndb_status st = aid && key ? rowset_grow(c, &c->act, c->act.n + 1) : NDB_ENOMEM;
    if (st == NDB_OK)
        st = idmap_reserve(&c->map, 1);
    if (st != NDB_OK) {
        free(aid);
        free(key);
        return st;
    }
    idmap_loc *old = idmap_get(&c->map, id, idlen);
    if (old)
        mark_dead(c, *old);
    append_owned(c, aid, key, idlen, row, vec);
    return NDB_OK;
}

void coll_apply(vcoll *c, const char *id, size_t idlen, uint64_t row, const float *vec, char *aid, char *key)
{
    pthread_rwlock_wrlock(&c->rw);
    idmap_loc *old = idmap_get(&c->map, id, idlen);
    if (old)
        mark_dead(c, *old);
    if (vec)
        append_owned(c, aid, key, idlen, row, vec);
    else if (old)
        idmap_del(&c->map, id, idlen);
    pthread_rwlock_unlock(&c->rw);
}

const float *coll_row_at(const vcoll *c, idmap_loc loc, const char **id, size_t *idlen, uint64_t *row)
{
    const rowset *r = set_of(c, loc.seg);
    if (r) {
        *id = r->ids[loc.row];
        *idlen = r->idlen[loc.row];
        *row = r->rowno[loc.row];
        return r->rows + (size_t)loc.row * c->dpad;
    }
    const seg *s = find_seg(c, loc.seg);
    *id = seg_id(s, loc.row, idlen);
    *row = s->rowno[loc.row];
    return seg_row(s, loc.row);
}

size_t coll_runs(const vcoll *c, vrun *out)
{
    size_t n = 0;
    for (size_t i = 0; i < c->nsegs; i++) {
        const seg *s = c->segs[i];
        if (s->nrows)
            out[n++] = (vrun){s->no, s->rows, s->rowno, s->dead, s->nrows, s->ndead};
    }
    const rowset *sets[2] = {&c->imm, &c->act};
    const uint32_t numbers[2] = {c->imm_no, c->next_no};
    for (int i = 0; i < 2; i++)
        if (sets[i]->n)
            out[n++] = (vrun){numbers[i], sets[i]->rows, sets[i]->rowno, sets[i]->dead, sets[i]->n, sets[i]->ndead};
    return n;
}

uint64_t run_lower(const vrun *r, uint64_t row)
{
    uint64_t lo = 0, hi = r->n;
    while (lo < hi) {
        uint64_t mid = lo + (hi - lo) / 2;
        if (r->rowno[mid] < row)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

bool runs_find(const vrun *runs, size_t n, uint64_t row, size_t *run, uint64_t *at)
{
    size_t lo = 0, hi = n; /* the first run whose last row number is >= row */
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (runs[mid].rowno[runs[mid].n - 1] < row)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo == n)
        return false;
    uint64_t i = run_lower(&runs[lo], row);
    if (i == runs[lo].n || runs[lo].rowno[i] != row)
        return false;
    *run = lo;
    *at = i;
    return true;
}

uint64_t coll_row_of(vcoll *c, const char *id, size_t idlen)
{
    pthread_rwlock_rdlock(&c->rw); /* the builder swaps segments in without wmu */
    idmap_loc *loc = idmap_get(&c->map, id, idlen);
    uint64_t row = UINT64_MAX;
    if (loc) {
        const char *rid;
        size_t rl;
        coll_row_at(c, *loc, &rid, &rl, &row);
    }
    pthread_rwlock_unlock(&c->rw);
    return row;
}

/* ---- segments ------------------------------------------------------------------- */

static char *seg_path(const vcoll *c, uint32_t no, int tmp)
{
    size_t n = strlen(c->dir) + 32;
    char *p = malloc(n);
    if (p)
        snprintf(p, n, "%s/seg-%08u.vseg%s", c->dir, no, tmp ? ".tmp" : "");
    return p;
}

ndb_status coll_write_segment(vcoll *c, uint32_t no, uint64_t lo, uint64_t hi, const seg_rows *rows, seg **out,
                              ndb_errmsg *msg)
{
    kv_env *fs = c->env->fs;
    char *tmp = seg_path(c, no, 1), *fin = seg_path(c, no, 0);
    seg_identity sid = {c->id, c->dims, (uint32_t)c->metric};
    ndb_status st;
    if (!tmp || !fin)
        st = ndb_errmsg_set(msg, NDB_ENOMEM, "segment for %s: out of memory", c->name);
    else if ((st = fs->v->mkdir(fs, c->dir)) != NDB_OK)
        st = ndb_errmsg_set(msg, st, "cannot create %s", c->dir);
    else if ((st = seg_write(fs, tmp, &sid, lo, hi, rows, msg)) == NDB_OK) {
        if ((st = fs->v->rename(fs, tmp, fin)) != NDB_OK)
            ndb_errmsg_set(msg, st, "rename %s failed", tmp);
        else
            st = seg_open(fs, fin, no, &sid, out, msg);
    }
    if (st != NDB_OK && tmp)
        fs->v->remove(fs, tmp);
    free(tmp);
    free(fin);
    return st;
}

static void remove_segment_file(vcoll *c, uint32_t no)
{
    char *p = seg_path(c, no, 0);
    if (p)
        c->env->fs->v->remove(c->env->fs, p);
    free(p);
}

void coll_wait_built(vcoll *c)
{
    pthread_mutex_lock(&c->bmu);
    while (c->building)
        pthread_cond_wait(&c->built, &c->bmu);
    pthread_mutex_unlock(&c->bmu);
}

/* Writes imm out as segment imm_no (all its rows, dead ones masked, so row i
 * of the file is row i of imm and the id map stays as it is) and swaps it in.
 * Only one build of c runs at a time (the builder thread's, or a writer's
 * holding wmu after coll_wait_built). */
static ndb_status build_imm(vcoll *c, ndb_errmsg *msg)
{
    seg_rows v = rowset_view(&c->imm);
    seg *s = NULL;
    seg **arr = malloc((c->nsegs + 1) * sizeof(seg *));
    ndb_status st = arr ? coll_write_segment(c, c->imm_no, c->imm_lo, c->imm_hi, &v, &s, msg) : NDB_ENOMEM;
    if (st != NDB_OK) {
        free(arr);
        return st;
    }
    pthread_rwlock_wrlock(&c->rw);
    memcpy(s->dead, c->imm.dead, ((s->nrows + 63) / 64) * 8);
    s->ndead = c->imm.ndead;
    seg **old = c->segs;
    if (c->nsegs)
        memcpy(arr, c->segs, c->nsegs * sizeof(seg *));
    arr[c->nsegs] = s; /* imm's rows come after every segment's */
    c->segs = arr;
    c->nsegs++;
    rowset_clear(&c->imm);
    pthread_rwlock_unlock(&c->rw);
    free(old);
    return NDB_OK;
}

/* Freezes act into imm and queues its build (wmu held). A build still
 * running is waited for first; one that failed is retried here. */
static ndb_status freeze(vcoll *c, bool wait, ndb_errmsg *msg)
{
    coll_wait_built(c);
    ndb_status st = c->imm.n ? build_imm(c, msg) : NDB_OK;
    if (st != NDB_OK || c->act.n == 0)
        return st;
    pthread_rwlock_wrlock(&c->rw);
    rowset spare = c->imm;
    c->imm = c->act;
    c->act = spare;
    c->imm_no = c->next_no++;
    c->imm_lo = c->covered;
    c->imm_hi = c->covered = c->next_row;
    pthread_rwlock_unlock(&c->rw);
    if (wait)
        return build_imm(c, msg);
    pthread_mutex_lock(&c->bmu);
    c->building = 1;
    pthread_mutex_unlock(&c->bmu);
    c->env->later(c->env, VQ_BUILD, c);
    return NDB_OK;
}

/* Rewrites every segment without its dead rows, as segments of at most
 * seal_rows rows covering the same row numbers (wmu held, no build running:
 * the dead bits cannot change meanwhile). */
static ndb_status merge_segments(vcoll *c, ndb_errmsg *msg)
{
    uint64_t live = 0, dead = 0;
    for (size_t i = 0; i < c->nsegs; i++) {
        live += c->segs[i]->nrows - c->segs[i]->ndead;
        dead += c->segs[i]->ndead;
    }
    if (c->nsegs == 0 || (dead == 0 && c->nsegs <= 1))
        return NDB_OK;
    uint64_t nout = live ? (live + c->seal_rows - 1) / c->seal_rows : 1;
    seg **outs = calloc(nout, sizeof(seg *));
    idmap_loc *at = malloc((live ? live : 1) * sizeof *at); /* the live rows, in order */
    rowset buf = {0};
    if (!outs || !at || rowset_grow(c, &buf, c->seal_rows) != NDB_OK) {
        free(outs);
        free(at);
        rowset_free(&buf);
        return ndb_errmsg_set(msg, NDB_ENOMEM, "merge %s: out of memory", c->name);
    }
    uint64_t j = 0;
    for (size_t i = 0; i < c->nsegs; i++)
        for (uint64_t r = 0; r < c->segs[i]->nrows; r++)
            if (!bit_get(c->segs[i]->dead, r))
                at[j++] = (idmap_loc){(uint32_t)i, (uint32_t)r};
    /* output k holds live rows [k·seal_rows, (k+1)·seal_rows) and covers from
     * its first row (the first output from the first segment's lo) to the
     * next output's first row (the last to the last segment's hi) */
    ndb_status st = NDB_OK;
    uint64_t made = 0, lo = c->segs[0]->lo;
    for (; made < nout && st == NDB_OK; made++) {
        uint64_t first = made * c->seal_rows, n = live - first < c->seal_rows ? live - first : c->seal_rows;
        for (buf.n = 0; buf.n < n; buf.n++) {
            const seg *s = c->segs[at[first + buf.n].seg];
            uint32_t r = at[first + buf.n].row;
            size_t l;
            memcpy(buf.rows + buf.n * c->dpad, seg_row(s, r), c->stride);
            buf.ids[buf.n] = (char *)seg_id(s, r, &l); /* borrowed from the mapping: not freed */
            buf.idlen[buf.n] = (uint32_t)l;
            buf.rowno[buf.n] = s->rowno[r];
        }
        uint64_t hi = made + 1 == nout ? c->segs[c->nsegs - 1]->hi
                                       : c->segs[at[first + n].seg]->rowno[at[first + n].row];
        seg_rows v = rowset_view(&buf);
        st = coll_write_segment(c, c->next_no + (uint32_t)made, lo, hi, &v, &outs[made], msg);
        lo = hi;
    }
    free(at);
    buf.n = 0; /* the ids were borrowed */
    rowset_free(&buf);
    if (st != NDB_OK) {
        for (uint64_t i = 0; i < made; i++) {
            if (outs[i]) {
                remove_segment_file(c, outs[i]->no);
                seg_close(outs[i]);
            }
        }
        free(outs);
        return st;
    }
    pthread_rwlock_wrlock(&c->rw);
    for (uint64_t k = 0; k < nout; k++) {
        for (uint64_t r = 0; r < outs[k]->nrows; r++) {
            size_t l;
            const char *id = seg_id(outs[k], r, &l);
            idmap_loc *loc = idmap_get(&c->map, id, l);
            if (loc)
                *loc = (idmap_loc){outs[k]->no, (uint32_t)r};
        }
    }
    seg **old = c->segs;
    size_t nold = c->nsegs;
    c->segs = outs;
    c->nsegs = nout;
    /* the outputs took act's number and those after it: act takes the next */
    c->next_no += (uint32_t)nout;
    for (uint64_t i = 0; i < c->act.n; i++) {
        idmap_loc *loc = bit_get(c->act.dead, i) ? NULL : idmap_get(&c->map, c->act.ids[i], c->act.idlen[i]);
        if (loc)
            loc->seg = c->next_no;
    }
    pthread_rwlock_unlock(&c->rw);
    for (size_t i = 0; i < nold; i++) {
        remove_segment_file(c, old[i]->no);
        seg_close(old[i]);
    }
    free(old);
    vlog(c->env, "merged %zu segments of %s into %llu (%llu rows, %llu dead dropped)", nold, c->name,
         (unsigned long long)nout, (unsigned long long)live, (unsigned long long)dead);
    return NDB_OK;
}

/* Whether dead rows are at least half of the segments' rows (and a segment's
 * worth): then a merge reclaims their space with bounded write amplification. */
static bool merge_due(vcoll *c)
{
    uint64_t rows = 0, dead = 0;
    pthread_rwlock_rdlock(&c->rw); /* the builder may be swapping a segment in */
    for (size_t i = 0; i < c->nsegs; i++) {
        rows += c->segs[i]->nrows;
        dead += c->segs[i]->ndead;
    }
    pthread_rwlock_unlock(&c->rw);
    return dead >= c->seal_rows && dead * 2 >= rows;
}

ndb_status coll_reserve(vcoll *c, uint64_t n)
{
    /* rows that would not fit go to a segment first, rather than being copied
     * into larger arrays */
    ndb_errmsg m = {{0}};
    if (c->act.n && c->act.n + n > c->act.cap && freeze(c, false, &m) != NDB_OK)
        vlog(c->env, "building a segment for %s failed (%s); its rows stay in memory", c->name, m.text);
    pthread_rwlock_wrlock(&c->rw);
    ndb_status st = rowset_grow(c, &c->act, c->act.n + n);
    if (st == NDB_OK)
        st = idmap_reserve(&c->map, n);
    pthread_rwlock_unlock(&c->rw);
    if (st == NDB_OK) /* only this writer touches rows past act.n */
        ndb_populate(c->act.rows + c->act.n * c->dpad, (size_t)n * c->stride);
    return st;
}

void coll_maybe_seal(vcoll *c)
{
    graph_wake(c, false);
    ndb_errmsg m = {{0}};
    if (c->act.n >= c->seal_rows && freeze(c, false, &m) != NDB_OK)
        vlog(c->env, "building a segment for %s failed (%s); its rows stay in memory", c->name, m.text);
    if (merge_due(c)) {
        coll_wait_built(c); /* a merge rewrites every segment: none may be coming in meanwhile */
        if (merge_segments(c, &m) != NDB_OK)
            vlog(c->env, "merging the segments of %s failed (%s); retried after a later write", c->name, m.text);
    }
}

void coll_build_frozen(vcoll *c)
{
    ndb_errmsg m = {{0}};
    if (!__atomic_load_n(&c->dropped, __ATOMIC_ACQUIRE) && build_imm(c, &m) != NDB_OK)
        vlog(c->env, "building a segment for %s failed (%s); its rows stay in memory, retried later", c->name,
             m.text);
    pthread_mutex_lock(&c->bmu);
    c->building = 0;
    pthread_cond_broadcast(&c->built);
    pthread_mutex_unlock(&c->bmu);
}

ndb_status coll_seal(vcoll *c, ndb_errmsg *msg) { return freeze(c, true, msg); }

ndb_status coll_merge(vcoll *c, ndb_errmsg *msg)
{
    ndb_status st = freeze(c, true, msg);
    return st == NDB_OK ? merge_segments(c, msg) : st;
}

void coll_info(vcoll *c, ndb_vec_info *out)
{
    memset(out, 0, sizeof *out);
    snprintf(out->name, sizeof out->name, "%s", c->name);
    out->dims = c->dims;
    out->metric = c->metric;
    pthread_rwlock_rdlock(&c->rw);
    out->rows = c->map.count;
    out->dead = c->act.ndead + c->imm.ndead;
    out->segments = (uint32_t)c->nsegs;
    for (size_t i = 0; i < c->nsegs; i++)
        out->dead += c->segs[i]->ndead;
    out->bytes = out->rows * c->stride;
    out->memory_bytes = rowset_bytes(c, &c->act) + rowset_bytes(c, &c->imm) + c->map.cap * sizeof *c->map.slots +
                        c->map.key_bytes;
    out->index = c->index;
    pthread_rwlock_rdlock(&c->grw);
    if (c->g) {
        out->graph_nodes = hnsw_count(c->g->h);
        out->indexed = out->graph_nodes - c->g->ndead;
        out->graph_bytes = hnsw_bytes(c->g->h) + c->g->dcap / 8;
        vrun *runs = calloc(c->nsegs + 2, sizeof *runs);
        size_t nr = runs ? coll_runs(c, runs) : 0;
        /* a rebuild due counts, unless an int8 one must wait for rows to train on */
        bool due = graph_rebuild_due(c->g) &&
                   (c->index.quantization != NDB_VEC_QUANT_INT8 || out->rows >= VEC_MIN_TRAIN_ROWS);
        out->building = c->gnext != NULL || due || (nr && c->g->hi <= runs[nr - 1].rowno[runs[nr - 1].n - 1]);
        free(runs);
    } else { /* an int8 graph waits for rows to train on */
        out->building = c->index.kind == NDB_VEC_INDEX_HNSW && out->rows > 0 &&
                        (c->index.quantization != NDB_VEC_QUANT_INT8 || out->rows >= VEC_MIN_TRAIN_ROWS);
    }
    if (c->gnext)
        out->graph_bytes += hnsw_bytes(c->gnext->h) + c->gnext->dcap / 8;
    pthread_rwlock_unlock(&c->grw);
    pthread_rwlock_unlock(&c->rw);
}
