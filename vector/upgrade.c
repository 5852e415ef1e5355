/*
 * upgrade.c — converts the previous release's vector store (format v1,
 * FORMAT.md "The v1 layout") into vector collections over the one log.
 *
 * In v1 a vector collection X kept its vectors in <dir>/X/ (MANIFEST, sealed
 * segments with tombstones, wal.log) and its documents in the document
 * collection X. For each X this reads the live vectors (segments minus
 * tombstones, then the log's records past the checkpoint), creates the
 * vector collection X, inserts each vector with its document (read from the
 * document collection X, or {"_id": id} when it has none), deletes the
 * documents it moved from the document collection X, and drops that
 * collection if nothing is left in it. Finally <dir> is renamed to
 * <dir>.converted.
 *
 * Every step can be repeated: an id already in the vector collection is not
 * inserted again (its document was moved before), so a conversion killed at
 * any point is finished by the next start. The v1 files are only read.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ndb_coding.h"
#include "crc32c.h"
#include "env.h"
#include "vec_int.h"

#define V1_SEG_HEADER 64u
#define V1_MAN_FIXED 40u
#define V1_WAL_HDR 8u
#define V1_WAL_FIXED 11u /* type, lsn, id length */
#define V1_MAX_FILE ((size_t)1 << 34)


#define BAD(...) ndb_errmsg_set(msg, NDB_ECORRUPT, __VA_ARGS__)

/* One v1 collection: its files in memory and the live vectors found in them
 * (id -> index into vec[], each pointing into a file buffer). */
typedef struct v1coll {
    char dir[4200];
    uint32_t dims, metric;
    char **files; /* owned buffers */
    size_t nfiles;
    idmap live;        /* id -> {0, index} */
    const uint8_t **vec;
    size_t nvec, cap;
} v1coll;

static void v1_free(v1coll *v)
{
    for (size_t i = 0; i < v->nfiles; i++)
        free(v->files[i]);
    free(v->files);
    free(v->vec);
    idmap_free(&v->live);
}

static ndb_status v1_read(kv_env *fs, v1coll *v, const char *name, uint8_t **buf, size_t *len, ndb_errmsg *msg)
{
    char path[4300];
    snprintf(path, sizeof path, "%s/%s", v->dir, name);
    char **a = realloc(v->files, (v->nfiles + 1) * sizeof *a);
    if (!a)
        return NDB_ENOMEM;
    v->files = a;
    char *b = NULL;
    ndb_status st = kv_env_read_file(fs, path, V1_MAX_FILE, &b, len);
    if (st == NDB_ENOTFOUND)
        return BAD("%s is missing", path);
    if (st != NDB_OK)
        return ndb_errmsg_set(msg, st, "reading %s failed", path);
    v->files[v->nfiles++] = b;
    *buf = (uint8_t *)b;
    return NDB_OK;
}

static ndb_status live_put(v1coll *v, const char *id, size_t idlen, const uint8_t *vec)
{
    idmap_loc *at = idmap_get(&v->live, id, idlen);
    if (at) {
        v->vec[at->row] = vec;
        return NDB_OK;
    }
    if (v->nvec == v->cap) {
        size_t nc = v->cap ? v->cap * 2 : 1024;
        const uint8_t **a = realloc(v->vec, nc * sizeof *a);
        if (!a)
            return NDB_ENOMEM;
        v->vec = a;
        v->cap = nc;
    }
    v->vec[v->nvec] = vec;
    return idmap_put(&v->live, id, idlen, (idmap_loc){0, (uint32_t)v->nvec++});
}

/* A v1 segment: live rows (those not in the manifest's tombstones). */
static ndb_status v1_segment(kv_env *fs, v1coll *v, uint32_t no, uint64_t nrows, const uint8_t *dead, ndb_errmsg *msg)
{
    char name[40];
    snprintf(name, sizeof name, "seg-%08u.vseg", no);
    uint8_t *b;
    size_t n;
    ndb_status st = v1_read(fs, v, name, &b, &n, msg);
    if (st != NDB_OK)
        return st;
    size_t stride = seg_stride(v->dims);
    if (n < V1_SEG_HEADER || memcmp(b, "NDBVSEG", 8) != 0 || ndb_get_le32(b + 60) != crc32c(b, 60) || ndb_get_le32(b + 8) != 1 ||
        ndb_get_le32(b + 12) != v->dims || ndb_get_le32(b + 16) != v->metric || ndb_get_le32(b + 20) != stride || ndb_get_le64(b + 24) != nrows ||
        nrows > SEG_MAX_ROWS)
        return BAD("%s/%s: not a v1 segment of this collection", v->dir, name);
    uint64_t ids_off = ndb_get_le64(b + 32), ids_len = ndb_get_le64(b + 40);
    if (ids_off != V1_SEG_HEADER + nrows * stride || ids_len < (nrows + 1) * 4 || ids_off + ids_len != n ||
        crc32c(b + V1_SEG_HEADER, n - V1_SEG_HEADER) != ndb_get_le32(b + 48))
        return BAD("%s/%s: truncated or damaged", v->dir, name);
    const uint8_t *off = b + ids_off, *ids = off + (nrows + 1) * 4;
    uint64_t idbytes = ids_len - (nrows + 1) * 4;
    for (uint64_t i = 0; i < nrows && st == NDB_OK; i++) {
        uint32_t a = ndb_get_le32(off + 4 * i), e = ndb_get_le32(off + 4 * (i + 1));
        if (e < a || e - a == 0 || e - a > NDB_VEC_MAX_ID || e > idbytes)
            return BAD("%s/%s: bad id table", v->dir, name);
        if (!((dead[i >> 3] >> (i & 7)) & 1))
            st = live_put(v, (const char *)ids + a, e - a, b + V1_SEG_HEADER + i * stride);
    }
    return st;
}

/* The manifest, its segments, then the log past the checkpoint. */
static ndb_status v1_load(kv_env *fs, v1coll *v, ndb_errmsg *msg)
{
    uint8_t *m;
    size_t n;
    ndb_status st = v1_read(fs, v, "MANIFEST", &m, &n, msg);
    if (st != NDB_OK)
        return st;
    if (n < V1_MAN_FIXED + 4 || memcmp(m, "NDBVMAN", 8) != 0 || ndb_get_le32(m + 8) != 1 ||
        ndb_get_le32(m + n - 4) != crc32c(m, n - 4))
        return BAD("%s/MANIFEST: not a v1 manifest, or damaged", v->dir);
    v->dims = ndb_get_le32(m + 12);
    v->metric = ndb_get_le32(m + 16);
    uint32_t nsegs = ndb_get_le32(m + 20);
    uint64_t ckpt = ndb_get_le64(m + 32);
    if (v->dims < 1 || v->dims > NDB_VEC_MAX_DIMS || v->metric > NDB_VEC_L2)
        return BAD("%s/MANIFEST: bad dims or metric", v->dir);
    size_t at = V1_MAN_FIXED;
    for (uint32_t s = 0; s < nsegs && st == NDB_OK; s++) {
        if (at + 24 > n - 4)
            return BAD("%s/MANIFEST: truncated", v->dir);
        uint32_t no = ndb_get_le32(m + at);
        uint64_t nrows = ndb_get_le64(m + at + 8), words = (nrows + 63) / 64;
        if (nrows > SEG_MAX_ROWS || at + 24 + words * 8 > n - 4)
            return BAD("%s/MANIFEST: truncated", v->dir);
        st = v1_segment(fs, v, no, nrows, m + at + 24, msg); /* little-endian words read as bytes */
        at += 24 + words * 8;
    }
    uint8_t *w;
    if (st != NDB_OK || (st = v1_read(fs, v, "wal.log", &w, &n, msg)) != NDB_OK)
        return st;
    /* records: crc, len, type (1 put, 2 delete), lsn, id length, id, vector;
     * the first bad record is the torn tail of an unacknowledged write */
    uint64_t prev = 0;
    for (size_t p = 0; p + V1_WAL_HDR + V1_WAL_FIXED <= n && st == NDB_OK;) {
        uint32_t len = ndb_get_le32(w + p + 4);
        if (len < V1_WAL_FIXED || len > n - p - V1_WAL_HDR || ndb_get_le32(w + p) != crc32c(w + p + 4, 4 + (size_t)len))
            break;
        const uint8_t *r = w + p + V1_WAL_HDR;
        uint64_t lsn = ndb_get_le64(r + 1);
        uint16_t il;
        memcpy(&il, r + 9, 2);
        size_t want = V1_WAL_FIXED + il + (r[0] == 1 ? (size_t)v->dims * 4 : 0);
        if ((r[0] != 1 && r[0] != 2) || il == 0 || il > NDB_VEC_MAX_ID || len != want || lsn <= prev)
            break;
        if (lsn > ckpt) {
            const char *id = (const char *)r + V1_WAL_FIXED;
            if (r[0] == 1)
                st = live_put(v, id, il, r + V1_WAL_FIXED + il);
            else if (idmap_get(&v->live, id, il))
                v->vec[idmap_get(&v->live, id, il)->row] = NULL; /* deleted */
        }
        prev = lsn;
        p += V1_WAL_HDR + len;
    }
    return st;
}

/* Inserts a batch of ids (those not converted yet) with their documents, then
 * removes the documents from the document collection. */
static ndb_status move_batch(ndb_vec_db *db, ndb_doc_db *docs, const char *name, const v1coll *v, char **ids,
                             const uint8_t **vecs, size_t n, ndb_errmsg *msg)
{
    ndb_vec_item *items = calloc(n ? n : 1, sizeof *items);
    void **own = calloc(n ? n : 1, sizeof *own);
    float *fv = malloc((n ? n : 1) * (size_t)v->dims * 4);
    ndb_status st = items && own && fv ? NDB_OK : NDB_ENOMEM;
    size_t k = 0;
    ndb_doc_builder *b = NULL;
    if (st == NDB_OK)
        st = ndb_doc_builder_new(&b);
    for (size_t i = 0; i < n && st == NDB_OK; i++) {
        size_t idlen = strlen(ids[i]);
        if (ndb_vec_get(db, name, ids[i], NULL, NULL, NULL, NULL, NULL) == NDB_OK)
            continue; /* moved before an interruption */
        size_t dl;
        st = ndb_doc_get(docs, name, ids[i], idlen, &own[k], &dl, msg);
        if (st == NDB_ENOTFOUND) { /* a vector without a document: {"_id": id} */
            ndb_doc_builder_reset(b);
            ndb_doc_begin_object(b);
            ndb_doc_key(b, "_id", 3);
            ndb_doc_string(b, ids[i], idlen);
            ndb_doc_end_object(b);
            st = ndb_doc_builder_take(b, &own[k], &dl);
        }
        memcpy(fv + k * v->dims, vecs[i], (size_t)v->dims * 4);
        items[k] = (ndb_vec_item){own[k], dl, fv + k * v->dims};
        k++;
    }
    if (st == NDB_OK && k)
        st = ndb_vec_insert(db, name, items, k, v->dims, NULL, msg);
    for (size_t i = 0; i < n && st == NDB_OK; i++) {
        st = ndb_doc_delete(docs, name, ids[i], strlen(ids[i]), NULL, msg);
        if (st == NDB_ENOTFOUND)
            st = NDB_OK;
    }
    for (size_t i = 0; own && i < k; i++)
        free(own[i]);
    ndb_doc_builder_free(b);
    free(items);
    free(own);
    free(fv);
    return st;
}

static ndb_status convert(ndb_vec_db *db, ndb_doc_db *docs, const char *v1dir, const char *name, ndb_errmsg *msg)
{
    const venv *env = vdb_env(db);
    v1coll v = {0};
    idmap_init(&v.live);
    snprintf(v.dir, sizeof v.dir, "%s/%s", v1dir, name);
    ndb_status st = v1_load(env->fs, &v, msg);
    ndb_vec_info info;
    if (st == NDB_OK) {
        st = ndb_vec_stats(db, name, &info, NULL);
        if (st == NDB_ENOTFOUND)
            st = ndb_vec_create(db, name, v.dims, (ndb_vec_metric)v.metric, NULL, msg);
        else if (st == NDB_OK && (info.dims != v.dims || info.metric != (ndb_vec_metric)v.metric))
            st = ndb_errmsg_set(msg, NDB_EEXIST, "vector collection %s exists with other dimensions or metric", name);
    }
    size_t total = 0;
    for (size_t i = 0; i < v.nvec; i++)
        total += v.vec[i] != NULL;
    if (st == NDB_OK)
        vlog(env, "converting vector collection %s from the v1 layout: %zu documents", name, total);
    enum { BATCH = 500 };
    char *ids[BATCH];
    const uint8_t *vecs[BATCH];
    size_t nb = 0, done = 0;
    for (size_t s = 0; s < v.live.cap && st == NDB_OK; s++) {
        const idmap_slot *e = &v.live.slots[s];
        if (!e->key || !v.vec[e->loc.row])
            continue;
        if ((ids[nb] = malloc(e->len + 1)) == NULL) {
            st = NDB_ENOMEM;
            break;
        }
        memcpy(ids[nb], e->key, e->len);
        ids[nb][e->len] = 0;
        vecs[nb++] = v.vec[e->loc.row];
        if (nb == BATCH) {
            st = move_batch(db, docs, name, &v, ids, vecs, nb, msg);
            done += nb;
            while (nb)
                free(ids[--nb]);
            if (done % 100000 < BATCH)
                vlog(env, "vector collection %s: %zu of %zu documents converted", name, done, total);
        }
    }
    if (st == NDB_OK && nb)
        st = move_batch(db, docs, name, &v, ids, vecs, nb, msg);
    while (nb)
        free(ids[--nb]);
    /* the document collection that only held the vector collection's documents goes */
    uint64_t left = 1;
    if (st == NDB_OK && ndb_doc_count(docs, name, NULL, 0, NULL, &left, NULL) == NDB_OK && left == 0 &&
        (st = ndb_doc_drop_collection(docs, name, msg)) == NDB_ENOTFOUND)
        st = NDB_OK;
    if (st == NDB_OK)
        vlog(env, "vector collection %s converted: %zu documents", name, total);
    v1_free(&v);
    return st;
}

ndb_status ndb_vec_upgrade_v1(ndb_vec_db *db, ndb_doc_db *docs, const char *v1dir, ndb_errmsg *msg)
{
    kv_env *fs = vdb_env(db)->fs;
    char **names;
    size_t n;
    ndb_status st = fs->v->list(fs, v1dir, &names, &n);
    if (st == NDB_ENOTFOUND)
        return NDB_OK;
    if (st != NDB_OK)
        return ndb_errmsg_set(msg, st, "cannot list %s", v1dir);
    vlog(vdb_env(db), "%s holds vector collections in the previous release's layout: converting them", v1dir);
    for (size_t i = 0; i < n && st == NDB_OK; i++) {
        char man[4400];
        snprintf(man, sizeof man, "%s/%s/MANIFEST", v1dir, names[i]);
        kv_file *f;
        if (names[i][0] == '.' || fs->v->open_read(fs, man, &f) != NDB_OK)
            continue; /* LOCK, and v1's leftovers of interrupted creates and drops */
        kv_file_close(f);
        st = convert(db, docs, v1dir, names[i], msg);
    }
    kv_env_free_list(names, n);
    char done[4200];
    snprintf(done, sizeof done, "%s.converted", v1dir);
    if (st == NDB_OK && (st = fs->v->rename(fs, v1dir, done)) != NDB_OK)
        ndb_errmsg_set(msg, st, "renaming %s to %s failed", v1dir, done);
    if (st == NDB_OK)
        vlog(vdb_env(db), "conversion finished; the previous layout's files are in %s (delete them when satisfied)",
             done);
    return st;
}
