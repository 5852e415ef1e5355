/*
 * recover.c — a collection's rows at open. The kv holds every row (FORMAT.md,
 * "Keys"); segment files are derived and trusted only as far as they agree
 * with it:
 *   1. every segment file is validated (footer, checksums, incarnation,
 *      dims, metric); a damaged one is removed, and of overlapping ones the
 *      newest (a merge's output) is kept;
 *   2. row numbers below the highest covered one that no segment covers but
 *      kv holds are rebuilt into a segment from kv;
 *   3. the id keys give each document's row: a row found in its segment is
 *      live, the segment's other rows are dead (masked); a row missing from
 *      the segment that covers its number means the file is out of date
 *      (e.g. the kv was restored): such files are removed and recovery starts
 *      over once, rebuilding them;
 *   4. rows at or above the covered numbers are read from kv into memory,
 *      a segment's worth at a time (written out when full).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "env.h"
#include "vec_int.h"

static int by_no_desc(const void *a, const void *b)
{
    uint32_t x = (*(seg *const *)a)->no, y = (*(seg *const *)b)->no;
    return x < y ? 1 : x > y ? -1 : 0;
}

static int by_lo(const void *a, const void *b)
{
    uint64_t x = (*(seg *const *)a)->lo, y = (*(seg *const *)b)->lo;
    return x < y ? -1 : x > y;
}

static void remove_file(vcoll *c, const char *name, const char *why)
{
    char path[4200];
    snprintf(path, sizeof path, "%s/%s", c->dir, name);
    vlog(c->env, "vector collection %s: removing segment file %s (%s); it is rebuilt from kv if needed", c->name,
         name, why);
    c->env->fs->v->remove(c->env->fs, path);
}

/* Steps 1: the valid, non-overlapping segment files, sorted by lo. */
static ndb_status open_segments(vcoll *c, ndb_errmsg *msg)
{
    kv_env *fs = c->env->fs;
    char **names = NULL;
    size_t n = 0;
    ndb_status st = fs->v->list(fs, c->dir, &names, &n);
    if (st == NDB_ENOTFOUND)
        return NDB_OK;
    if (st != NDB_OK)
        return ndb_errmsg_set(msg, st, "vector collection %s: cannot list %s", c->name, c->dir);
    seg **cand = calloc(n ? n : 1, sizeof *cand);
    size_t nc = 0;
    seg_identity sid = {c->id, c->dims, (uint32_t)c->metric};
    for (size_t i = 0; cand && i < n; i++) {
        unsigned no;
        char tail;
        size_t len = strlen(names[i]);
        if (len > 4 && strcmp(names[i] + len - 4, ".tmp") == 0) {
            remove_file(c, names[i], "an unfinished write");
            continue;
        }
        if (sscanf(names[i], "seg-%8u.vseg%c", &no, &tail) != 1 || len != 17)
            continue;
        char path[4200];
        snprintf(path, sizeof path, "%s/%s", c->dir, names[i]);
        ndb_errmsg why = {{0}};
        if (seg_open(fs, path, no, &sid, &cand[nc], &why) == NDB_OK)
            nc++;
        else
            remove_file(c, names[i], why.text);
    }
    kv_env_free_list(names, n);
    if (!cand)
        return NDB_ENOMEM;
    /* of overlapping files keep the newest: a merge writes its outputs before
     * removing its inputs */
    qsort(cand, nc, sizeof *cand, by_no_desc);
    size_t keep = 0;
    for (size_t i = 0; i < nc; i++) {
        int overlap = 0;
        for (size_t j = 0; j < keep && !overlap; j++)
            overlap = cand[i]->lo < cand[j]->hi && cand[j]->lo < cand[i]->hi;
        if (overlap) {
            char name[32];
            snprintf(name, sizeof name, "seg-%08u.vseg", cand[i]->no);
            seg_close(cand[i]);
            remove_file(c, name, "covered by a newer segment");
        } else {
            cand[keep++] = cand[i];
        }
    }
    qsort(cand, keep, sizeof *cand, by_lo);
    c->segs = cand;
    c->nsegs = keep;
    for (size_t i = 0; i < keep; i++) {
        if (cand[i]->no >= c->next_no)
            c->next_no = cand[i]->no + 1;
        if (cand[i]->hi > c->covered)
            c->covered = cand[i]->hi;
    }
    return NDB_OK;
}

/* Up to max rows with numbers in [*lo, hi) from kv into out (emptied first;
 * caller frees it with rowset_free); *lo moves past them (to hi when none are
 * left), so calls in a row read a range a bounded batch at a time. */
static ndb_status read_rows(vcoll *c, uint64_t *lo, uint64_t hi, uint64_t max, rowset *out, ndb_errmsg *msg)
{
    for (uint64_t i = 0; i < out->n; i++)
        free(out->ids[i]);
    out->n = 0;
    uint8_t klo[24], khi[24];
    size_t llo = key_row(c, *lo, klo), lhi = key_row(c, hi, khi);
    ndb_kv_iter *it;
    ndb_status st = ndb_kv_iter_new(c->env->kv, NULL, klo, llo, khi, lhi, &it);
    if (st != NDB_OK)
        return ndb_errmsg_set(msg, st, "vector collection %s: reading rows", c->name);
    ndb_kv_iter_seek_first(it);
    for (; ndb_kv_iter_valid(it) && out->n < max && st == NDB_OK; ndb_kv_iter_next(it)) {
        size_t kl, vl, idlen;
        const uint8_t *k = ndb_kv_iter_key(it, &kl);
        const void *v = ndb_kv_iter_value(it, &vl);
        const char *id;
        const float *vec;
        if (kl != c->rklen + 8 || row_value_parse(c, v, vl, &id, &idlen, &vec) != NDB_OK) {
            st = ndb_errmsg_set(msg, NDB_ECORRUPT, "vector collection %s: a row in kv is malformed", c->name);
            break;
        }
        if ((st = rowset_grow(c, out, out->n + 1)) != NDB_OK || (out->ids[out->n] = malloc(idlen + 1)) == NULL) {
            st = NDB_ENOMEM;
            break;
        }
        float *row = out->rows + out->n * c->dpad;
        memcpy(row, vec, (size_t)c->dims * 4);
        memset(row + c->dims, 0, (c->dpad - c->dims) * 4);
        memcpy(out->ids[out->n], id, idlen);
        out->ids[out->n][idlen] = 0;
        out->idlen[out->n] = (uint32_t)idlen;
        out->rowno[out->n++] = key_row_number(k + c->rklen);
    }
    /* the next call starts after the last row read, or the range is done */
    *lo = st == NDB_OK && ndb_kv_iter_valid(it) ? out->rowno[out->n - 1] + 1 : hi;
    if (st == NDB_OK && (st = ndb_kv_iter_status(it)) != NDB_OK)
        ndb_errmsg_set(msg, st, "vector collection %s: reading rows", c->name);
    ndb_kv_iter_free(it);
    return st;
}

/* Step 2: rebuilds [lo, hi) from kv when kv holds rows there, as segments of
 * at most seal_rows rows covering consecutive parts of the range. */
static ndb_status fill_gap(vcoll *c, uint64_t lo, uint64_t hi, ndb_errmsg *msg)
{
    rowset rows = {0};
    ndb_status st = NDB_OK;
    for (uint64_t at = lo, next = lo; at < hi && st == NDB_OK; at = next) {
        if ((st = read_rows(c, &next, hi, c->seal_rows, &rows, msg)) != NDB_OK || rows.n == 0)
            break;
        seg_rows v = {rows.rows, rows.ids, rows.idlen, rows.rowno, rows.n};
        seg *s = NULL;
        seg **arr = realloc(c->segs, (c->nsegs + 1) * sizeof *arr);
        if (!arr)
            st = NDB_ENOMEM;
        else if ((c->segs = arr, st = coll_write_segment(c, c->next_no, at, next, &v, &s, msg)) == NDB_OK) {
            vlog(c->env, "vector collection %s: rebuilt rows %llu..%llu (%llu documents) from kv as segment %u",
                 c->name, (unsigned long long)at, (unsigned long long)next, (unsigned long long)rows.n, c->next_no);
            c->segs[c->nsegs++] = s;
            c->next_no++;
            qsort(c->segs, c->nsegs, sizeof *c->segs, by_lo);
        }
    }
    rowset_free(&rows);
    return st;
}

static ndb_status fill_gaps(vcoll *c, ndb_errmsg *msg)
{
    uint64_t at = 0;
    size_t n = c->nsegs;
    uint64_t *los = malloc((n + 1) * sizeof *los), *his = malloc((n + 1) * sizeof *his);
    if (!los || !his) {
        free(los);
        free(his);
        return NDB_ENOMEM;
    }
    for (size_t i = 0; i < n; i++) {
        los[i] = c->segs[i]->lo;
        his[i] = c->segs[i]->hi;
    }
    ndb_status st = NDB_OK;
    for (size_t i = 0; i < n && st == NDB_OK; i++) {
        if (los[i] > at)
            st = fill_gap(c, at, los[i], msg);
        at = his[i];
    }
    free(los);
    free(his);
    return st;
}

/* The segment whose range holds row r, or NULL. */
static seg *seg_covering(const vcoll *c, uint64_t r)
{
    size_t lo = 0, hi = c->nsegs;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (c->segs[mid]->hi <= r)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < c->nsegs && c->segs[lo]->lo <= r ? c->segs[lo] : NULL;
}

/* Step 3: marks live rows and fills the id map; ids of rows at or above
 * covered go to pending (loc = the row number's halves). Segments that lack
 * a row kv has in their range are added to stale (their numbers). */
typedef struct nolist {
    uint32_t *no;
    size_t n, cap;
} nolist;

static ndb_status nolist_add(nolist *l, uint32_t no)
{
    for (size_t i = 0; i < l->n; i++)
        if (l->no[i] == no)
            return NDB_OK;
    if (l->n == l->cap) {
        size_t nc = l->cap ? l->cap * 2 : 8;
        uint32_t *a = realloc(l->no, nc * sizeof *a);
        if (!a)
            return NDB_ENOMEM;
        l->no = a;
        l->cap = nc;
    }
    l->no[l->n++] = no;
    return NDB_OK;
}

static ndb_status map_ids(vcoll *c, idmap *pending, nolist *stale, ndb_errmsg *msg)
{
    for (size_t i = 0; i < c->nsegs; i++) {
        seg *s = c->segs[i];
        memset(s->dead, 0xff, ((s->nrows + 63) / 64) * 8);
        if (s->nrows % 64)
            s->dead[s->nrows / 64] = ~0ull >> (64 - s->nrows % 64);
        s->ndead = s->nrows;
    }
    uint8_t hi[10];
    memcpy(hi, c->ikey, c->iklen);
    hi[c->iklen - 1]++; /* the last byte of a varint is < 0x80 */
    ndb_kv_iter *it;
    ndb_status st = ndb_kv_iter_new(c->env->kv, NULL, c->ikey, c->iklen, hi, c->iklen, &it);
    if (st != NDB_OK)
        return ndb_errmsg_set(msg, st, "vector collection %s: reading ids", c->name);
    for (ndb_kv_iter_seek_first(it); ndb_kv_iter_valid(it) && st == NDB_OK; ndb_kv_iter_next(it)) {
        size_t kl, vl;
        const char *k = ndb_kv_iter_key(it, &kl);
        const uint8_t *v = ndb_kv_iter_value(it, &vl);
        const char *id = k + c->iklen;
        size_t idlen = kl - c->iklen;
        if (vl != 8 || idlen == 0 || idlen > NDB_VEC_MAX_ID) {
            st = ndb_errmsg_set(msg, NDB_ECORRUPT, "vector collection %s: an id entry in kv is malformed", c->name);
            break;
        }
        uint64_t r;
        memcpy(&r, v, 8);
        if (r >= c->covered) {
            st = idmap_put(pending, id, idlen, (idmap_loc){(uint32_t)(r >> 32), (uint32_t)r});
            continue;
        }
        seg *s = seg_covering(c, r);
        int64_t at = s ? seg_find_row(s, r) : -1;
        size_t sl;
        const char *sidp = at >= 0 ? seg_id(s, (uint64_t)at, &sl) : NULL;
        if (!s) /* fill_gaps rebuilt every range kv has rows in */
            st = ndb_errmsg_set(msg, NDB_ECORRUPT, "vector collection %s: row %llu has no segment", c->name,
                                (unsigned long long)r);
        else if (!sidp || sl != idlen || memcmp(sidp, id, idlen) != 0)
            st = nolist_add(stale, s->no);
        else if ((st = idmap_put(&c->map, id, idlen, (idmap_loc){s->no, (uint32_t)at})) == NDB_OK) {
            s->dead[at >> 6] &= ~(1ull << (at & 63));
            s->ndead--;
        }
    }
    if (st == NDB_OK && (st = ndb_kv_iter_status(it)) != NDB_OK)
        ndb_errmsg_set(msg, st, "vector collection %s: reading ids", c->name);
    ndb_kv_iter_free(it);
    return st;
}

/* Step 4: rows at or above covered into memory, a segment's worth at a time
 * (each full one written out before reading on, so memory stays bounded even
 * when every segment was lost); next_row past every row. */
static ndb_status load_tail(vcoll *c, const idmap *pending, ndb_errmsg *msg)
{
    rowset rows = {0};
    ndb_status st = NDB_OK;
    uint64_t loaded = 0;
    c->next_row = c->covered;
    for (uint64_t at = c->covered; at < UINT64_MAX && st == NDB_OK;) {
        if ((st = read_rows(c, &at, UINT64_MAX, c->seal_rows, &rows, msg)) != NDB_OK || rows.n == 0)
            break;
        for (uint64_t i = 0; i < rows.n && st == NDB_OK; i++) {
            idmap_loc *want = idmap_get(pending, rows.ids[i], rows.idlen[i]);
            if (!want || ((uint64_t)want->seg << 32 | want->row) != rows.rowno[i])
                st = ndb_errmsg_set(msg, NDB_ECORRUPT, "vector collection %s: row %llu has no id entry", c->name,
                                    (unsigned long long)rows.rowno[i]);
            else
                st = coll_append(c, rows.ids[i], rows.idlen[i], rows.rowno[i], rows.rows + i * c->dpad);
            c->next_row = rows.rowno[i] + 1;
        }
        loaded += rows.n;
        if (st == NDB_OK && c->act.n >= c->seal_rows)
            st = coll_seal(c, msg); /* rows of lost segments go back into files */
    }
    if (st == NDB_OK && loaded != pending->count)
        st = ndb_errmsg_set(msg, NDB_ECORRUPT, "vector collection %s: %zu ids point past the rows in kv", c->name,
                            pending->count - (size_t)loaded);
    rowset_free(&rows);
    return st;
}

/* Forgets everything loaded, to start over. */
static void reset(vcoll *c)
{
    for (size_t i = 0; i < c->nsegs; i++)
        seg_close(c->segs[i]);
    free(c->segs);
    c->segs = NULL;
    c->nsegs = 0;
    rowset_free(&c->act);
    idmap_free(&c->map);
    idmap_init(&c->map);
    c->covered = 0;
}

ndb_status coll_recover(vcoll *c, ndb_errmsg *msg)
{
    for (int pass = 0; pass < 2; pass++) {
        idmap pending;
        idmap_init(&pending);
        nolist stale = {0};
        ndb_status st = open_segments(c, msg);
        if (st == NDB_OK)
            st = fill_gaps(c, msg);
        if (st == NDB_OK)
            st = map_ids(c, &pending, &stale, msg);
        if (st == NDB_OK && stale.n == 0)
            st = load_tail(c, &pending, msg);
        idmap_free(&pending);
        for (size_t i = 0; st == NDB_OK && i < stale.n; i++) {
            char name[32];
            snprintf(name, sizeof name, "seg-%08u.vseg", stale.no[i]);
            remove_file(c, name, "it lacks rows kv has in its range");
        }
        size_t nstale = stale.n;
        free(stale.no);
        if (st != NDB_OK)
            return st;
        if (nstale == 0)
            return NDB_OK;
        reset(c); /* and start over: the removed files' ranges are rebuilt */
    }
    return ndb_errmsg_set(msg, NDB_ECORRUPT, "vector collection %s: segments keep disagreeing with kv", c->name);
}
