/* coll.c — one collection's searchable rows in memory; see vec_int.h. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "env.h"
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

/* ---- life cycle ---------------------------------------------------------- */

/* {"dims": n, "metric": "cosine" | "dot" | "l2"} (vdb.c writes it). */
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
    /* Prefer writers: a steady stream of searches must not starve the short
     * exclusive sections that apply durable writes. */
    pthread_rwlockattr_t ra;
    pthread_rwlockattr_init(&ra);
    pthread_rwlockattr_setkind_np(&ra, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
    pthread_rwlock_init(&c->rw, &ra);
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
    for (uint64_t i = 0; i < c->an; i++)
        free(c->aids[i]);
    free(c->aids);
    free(c->aidlen);
    free(c->arowno);
    free(c->adead);
    free(c->arows);
    idmap_free(&c->map);
    pthread_mutex_destroy(&c->wmu);
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

ndb_status coll_check_vector(const vcoll *c, const float *v, uint32_t dims, const char *what, float *dst,
                             ndb_errmsg *msg)
{
    if (!v)
        return ndb_errmsg_set(msg, NDB_EINVAL, "%s: vector is missing", what);
    if (dims != c->dims)
        return ndb_errmsg_set(msg, NDB_EINVAL, "%s has %u dimensions; collection %s has %u", what, dims, c->name,
                              c->dims);
    double n2 = 0;
    for (uint32_t j = 0; j < dims; j++) {
        if (isnan(v[j]))
            return ndb_errmsg_set(msg, NDB_EINVAL, "%s: component %u is NaN", what, j);
        if (isinf(v[j]))
            return ndb_errmsg_set(msg, NDB_EINVAL, "%s: component %u is infinite", what, j);
        if (fabsf(v[j]) > VEC_MAX_ABS)
            return ndb_errmsg_set(msg, NDB_EINVAL, "%s: component %u (%g) exceeds +-1e15", what, j, (double)v[j]);
        n2 += (double)v[j] * v[j];
    }
    /* Under cosine the stored form is L2-normalised. A vector already of unit
     * length within float rounding (|n2 - 1| stays below 2e-7 for any
     * normalised float32 vector) is stored as given, so storing a vector read
     * back from the collection (export, then import) keeps every bit. */
    if (c->metric == NDB_VEC_COSINE && fabs(n2 - 1.0) > 1e-6) {
        if (n2 == 0)
            return ndb_errmsg_set(msg, NDB_EINVAL, "%s: a zero vector has no direction under the cosine metric",
                                  what);
        double inv = 1.0 / sqrt(n2);
        for (uint32_t j = 0; j < dims; j++)
            dst[j] = (float)(v[j] * inv);
    } else {
        memcpy(dst, v, (size_t)dims * 4);
    }
    return NDB_OK;
}

/* ---- memory rows ------------------------------------------------------------ */

/* Grows the memory row arrays to hold want rows (rw held exclusively, or
 * single-threaded). */
static ndb_status active_grow(vcoll *c, uint64_t want)
{
    if (want <= c->acap)
        return NDB_OK;
    /* First growth goes straight to a whole segment's worth: the pages are
     * only virtual until rows land in them, and searches are not blocked by
     * copying a large buffer under the write lock on every doubling. */
    uint64_t ncap = c->acap ? c->acap : (c->seal_rows < 64 ? 64 : c->seal_rows);
    while (ncap < want)
        ncap *= 2;
    float *rows = aligned_alloc(64, (size_t)ncap * c->stride);
    char **ids = realloc(c->aids, ncap * sizeof *ids);
    if (ids)
        c->aids = ids;
    uint32_t *lens = realloc(c->aidlen, ncap * sizeof *lens);
    if (lens)
        c->aidlen = lens;
    uint64_t *rn = realloc(c->arowno, ncap * sizeof *rn);
    if (rn)
        c->arowno = rn;
    uint64_t *dead = calloc((ncap + 63) / 64, 8);
    if (!rows || !ids || !lens || !rn || !dead) {
        free(rows);
        free(dead);
        return NDB_ENOMEM;
    }
    if (c->an)
        memcpy(rows, c->arows, (size_t)c->an * c->stride); /* new rows are written whole when appended */
    if (c->adead)
        memcpy(dead, c->adead, ((c->acap + 63) / 64) * 8);
    free(c->arows);
    free(c->adead);
    c->arows = rows;
    c->adead = dead;
    c->acap = ncap;
    return NDB_OK;
}

static ndb_status seal(vcoll *c, ndb_errmsg *msg);

ndb_status coll_reserve(vcoll *c, uint64_t n)
{
    /* rows that would not fit go into a segment first, rather than being
     * copied into larger arrays */
    ndb_errmsg m = {{0}};
    if (c->an && c->an + n > c->acap && seal(c, &m) != NDB_OK)
        vlog(c->env, "building a segment for %s failed (%s); its rows stay in memory", c->name, m.text);
    pthread_rwlock_wrlock(&c->rw);
    ndb_status st = active_grow(c, c->an + n);
    if (st == NDB_OK)
        st = idmap_reserve(&c->map, n);
    pthread_rwlock_unlock(&c->rw);
    return st;
}

/* Marks the row at loc dead (rw held exclusively, or single-threaded). */
static seg *find_seg(const vcoll *c, uint32_t no)
{
    for (size_t i = 0; i < c->nsegs; i++)
        if (c->segs[i]->no == no)
            return c->segs[i];
    return NULL;
}

static void mark_dead(vcoll *c, idmap_loc loc)
{
    if (loc.seg == c->next_no) {
        if (!bit_get(c->adead, loc.row)) {
            bit_set(c->adead, loc.row);
            c->andead++;
        }
        return;
    }
    seg *s = find_seg(c, loc.seg);
    if (s && !bit_get(s->dead, loc.row)) {
        bit_set(s->dead, loc.row);
        s->ndead++;
    }
}

/* Appends a row (capacity and map reserved; takes aid and key, owned copies of
 * id). */
static void append_owned(vcoll *c, char *aid, char *key, size_t idlen, uint64_t row, const float *vec)
{
    float *dst = c->arows + c->an * c->dpad;
    memcpy(dst, vec, (size_t)c->dims * 4);
    memset(dst + c->dims, 0, (c->dpad - c->dims) * 4); /* the kernels read the padding */
    c->aids[c->an] = aid;
    c->aidlen[c->an] = (uint32_t)idlen;
    c->arowno[c->an] = row;
    idmap_put_owned(&c->map, key, idlen, (idmap_loc){c->next_no, (uint32_t)c->an});
    c->an++;
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
    ndb_status st = aid && key ? active_grow(c, c->an + 1) : NDB_ENOMEM;
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
    if (loc.seg == c->next_no) {
        *id = c->aids[loc.row];
        *idlen = c->aidlen[loc.row];
        *row = c->arowno[loc.row];
        return c->arows + (size_t)loc.row * c->dpad;
    }
    const seg *s = find_seg(c, loc.seg);
    *id = seg_id(s, loc.row, idlen);
    *row = s->rowno[loc.row];
    return seg_row(s, loc.row);
}

uint64_t coll_row_of(const vcoll *c, const char *id, size_t idlen)
{
    idmap_loc *loc = idmap_get(&c->map, id, idlen);
    if (!loc)
        return UINT64_MAX;
    const char *rid;
    size_t rl;
    uint64_t row;
    coll_row_at(c, *loc, &rid, &rl, &row);
    return row;
}

/* ---- segments (wmu held) ------------------------------------------------------ */

static char *seg_path(const vcoll *c, uint32_t no, int tmp)
{
    size_t n = strlen(c->dir) + 32;
    char *p = malloc(n);
    if (p)
        snprintf(p, n, "%s/seg-%08u.vseg%s", c->dir, no, tmp ? ".tmp" : "");
    return p;
}

static void src_fn(void *ctx, uint64_t i, const float **row, const char **id, size_t *len, uint64_t *rowno)
{
    const seg_src_row *s = (const seg_src_row *)ctx + i;
    *row = s->row;
    *id = s->id;
    *len = s->idlen;
    *rowno = s->rowno;
}

ndb_status coll_write_segment(vcoll *c, uint32_t no, uint64_t lo, uint64_t hi, const seg_src_row *rows, uint64_t n,
                              seg **out, ndb_errmsg *msg)
{
    kv_env *fs = c->env->fs;
    char *tmp = seg_path(c, no, 1), *fin = seg_path(c, no, 0);
    seg_identity sid = {c->id, c->dims, (uint32_t)c->metric};
    ndb_status st;
    if (!tmp || !fin)
        st = ndb_errmsg_set(msg, NDB_ENOMEM, "segment for %s: out of memory", c->name);
    else if ((st = fs->v->mkdir(fs, c->dir)) != NDB_OK)
        st = ndb_errmsg_set(msg, st, "cannot create %s", c->dir);
    else if ((st = seg_write(fs, tmp, &sid, lo, hi, n, src_fn, (void *)rows, msg)) == NDB_OK) {
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

/* Turns the memory rows into a segment covering [covered, next_row). */
static ndb_status seal(vcoll *c, ndb_errmsg *msg)
{
    uint64_t live = c->an - c->andead;
    seg_src_row *rows = malloc((live ? live : 1) * sizeof *rows);
    /* a new list, swapped in under the write lock: searches iterate the old one */
    seg **arr = malloc((c->nsegs + 1) * sizeof(seg *));
    if (!rows || !arr) {
        free(rows);
        free(arr);
        return ndb_errmsg_set(msg, NDB_ENOMEM, "segment for %s: out of memory", c->name);
    }
    if (c->nsegs)
        memcpy(arr, c->segs, c->nsegs * sizeof(seg *));
    uint64_t j = 0;
    for (uint64_t i = 0; i < c->an; i++)
        if (!bit_get(c->adead, i))
            rows[j++] = (seg_src_row){c->arows + i * c->dpad, c->aids[i], c->aidlen[i], c->arowno[i]};
    seg *s = NULL;
    uint64_t hi = c->next_row;
    ndb_status st = coll_write_segment(c, c->next_no, c->covered, hi, rows, live, &s, msg);
    if (st != NDB_OK) {
        free(rows);
        free(arr);
        return st;
    }
    arr[c->nsegs] = s;
    pthread_rwlock_wrlock(&c->rw);
    seg **old = c->segs;
    c->segs = arr;
    c->nsegs++;
    for (uint64_t r = 0; r < live; r++) {
        idmap_loc *loc = idmap_get(&c->map, rows[r].id, rows[r].idlen);
        if (loc)
            *loc = (idmap_loc){s->no, (uint32_t)r};
    }
    for (uint64_t i = 0; i < c->an; i++)
        free(c->aids[i]);
    memset(c->adead, 0, ((c->acap + 63) / 64) * 8);
    c->an = c->andead = 0;
    c->next_no++;
    c->covered = hi;
    pthread_rwlock_unlock(&c->rw);
    free(old);
    free(rows);
    return NDB_OK;
}

/* Rewrites every segment without its dead rows, as segments of at most
 * seal_rows rows covering the same row numbers. */
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
    seg_src_row *rows = malloc((live ? live : 1) * sizeof *rows);
    seg **outs = calloc(nout, sizeof(seg *));
    if (!rows || !outs) {
        free(rows);
        free(outs);
        return ndb_errmsg_set(msg, NDB_ENOMEM, "merge %s: out of memory", c->name);
    }
    uint64_t j = 0;
    for (size_t i = 0; i < c->nsegs; i++) {
        seg *s = c->segs[i];
        for (uint64_t r = 0; r < s->nrows; r++) {
            if (bit_get(s->dead, r))
                continue;
            size_t l;
            const char *id = seg_id(s, r, &l);
            rows[j++] = (seg_src_row){seg_row(s, r), id, l, s->rowno[r]};
        }
    }
    /* output k covers from its first row (the first output from the first
     * segment's lo) to the next output's first row (the last to the last hi) */
    ndb_status st = NDB_OK;
    uint64_t made = 0, lo_all = c->segs[0]->lo, hi_all = c->segs[c->nsegs - 1]->hi;
    for (; made < nout && st == NDB_OK; made++) {
        uint64_t first = made * c->seal_rows, n = live - first < c->seal_rows ? live - first : c->seal_rows;
        uint64_t lo = made == 0 ? lo_all : rows[first].rowno;
        uint64_t hi = made + 1 == nout ? hi_all : rows[first + n].rowno;
        st = coll_write_segment(c, c->next_no + (uint32_t)made, lo, hi, rows + first, n, &outs[made], msg);
    }
    if (st != NDB_OK) {
        for (uint64_t i = 0; i < made; i++) {
            if (outs[i]) {
                remove_segment_file(c, outs[i]->no);
                seg_close(outs[i]);
            }
        }
        free(rows);
        free(outs);
        return st;
    }
    pthread_rwlock_wrlock(&c->rw);
    for (uint64_t r = 0; r < live; r++) {
        idmap_loc *loc = idmap_get(&c->map, rows[r].id, rows[r].idlen);
        if (loc)
            *loc = (idmap_loc){outs[r / c->seal_rows]->no, (uint32_t)(r % c->seal_rows)};
    }
    seg **old = c->segs;
    size_t nold = c->nsegs;
    c->segs = outs;
    c->nsegs = nout;
    /* the outputs took the memory rows' number and those after it: the memory
     * rows take the next free one */
    c->next_no += (uint32_t)nout;
    for (uint64_t i = 0; i < c->an; i++) {
        idmap_loc *loc = bit_get(c->adead, i) ? NULL : idmap_get(&c->map, c->aids[i], c->aidlen[i]);
        if (loc)
            loc->seg = c->next_no;
    }
    pthread_rwlock_unlock(&c->rw);
    free(rows); /* pointed into the old mappings: free before closing them */
    for (size_t i = 0; i < nold; i++) {
        remove_segment_file(c, old[i]->no);
        seg_close(old[i]);
    }
    free(old);
    vlog(c->env, "merged %zu segments of %s into %llu (%llu rows, %llu dead dropped)", nold, c->name,
         (unsigned long long)nout, (unsigned long long)live, (unsigned long long)dead);
    return NDB_OK;
}

void coll_maybe_seal(vcoll *c)
{
    ndb_errmsg m = {{0}};
    if (c->an >= c->seal_rows && seal(c, &m) != NDB_OK) {
        vlog(c->env, "building a segment for %s failed (%s); its rows stay in memory", c->name, m.text);
        return;
    }
    /* merge once dead rows are at least half of the segments' rows (and a
     * segment's worth), so space from deletes and updates is reclaimed with
     * bounded write amplification */
    uint64_t rows = 0, dead = 0;
    for (size_t i = 0; i < c->nsegs; i++) {
        rows += c->segs[i]->nrows;
        dead += c->segs[i]->ndead;
    }
    if (dead >= c->seal_rows && dead * 2 >= rows && merge_segments(c, &m) != NDB_OK)
        vlog(c->env, "merging the segments of %s failed (%s); retried after a later write", c->name, m.text);
}

ndb_status coll_merge(vcoll *c, ndb_errmsg *msg)
{
    ndb_status st = c->an > 0 ? seal(c, msg) : NDB_OK;
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
    out->dead = c->andead;
    out->segments = (uint32_t)c->nsegs;
    for (size_t i = 0; i < c->nsegs; i++)
        out->dead += c->segs[i]->ndead;
    out->bytes = out->rows * c->stride;
    pthread_rwlock_unlock(&c->rw);
}
