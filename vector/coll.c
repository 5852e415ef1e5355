/* coll.c — one vector collection; see coll.h and FORMAT.md. */
#include "coll.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "crc32c.h"
#include "kern.h"
#include "scan.h"
#include "topk.h"
#include "vio.h"
#include "wal.h"

#define MAN_MAGIC "NDBVMAN"   /* 8 bytes with the NUL */
#define MAN_VERSION 1u
#define MAN_FIXED 40u
#define MAN_SEG_FIXED 24u
#define MAN_MAX_SEGS 65536u
#define MAN_MAX_BYTES ((uint64_t)1 << 30)
/* Largest vector component magnitude accepted: keeps every score finite
 * (16384 * (2e15)^2 < FLT_MAX). */
#define VEC_MAX_ABS 1e15f
/* Largest write (vector bytes) one call may carry. */
#define WRITE_MAX_BYTES ((uint64_t)1 << 30)

/* ---- small helpers ---------------------------------------------------- */

static char *path_join(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    char *p = malloc(la + lb + 2);
    if (p) {
        memcpy(p, a, la);
        p[la] = '/';
        memcpy(p + la + 1, b, lb + 1);
    }
    return p;
}

static char *seg_path(const coll *c, uint32_t no, int tmp)
{
    char name[48];
    snprintf(name, sizeof name, "seg-%08u.vseg%s", no, tmp ? ".tmp" : "");
    return path_join(c->dir, name);
}

static int bit_get(const uint64_t *bm, uint64_t i) { return (int)((bm[i >> 6] >> (i & 63)) & 1u); }
static void bit_set(uint64_t *bm, uint64_t i) { bm[i >> 6] |= 1ull << (i & 63); }

static seg *find_seg(const coll *c, uint32_t no)
{
    size_t lo = 0, hi = c->nsegs;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (c->segs[mid]->no < no)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < c->nsegs && c->segs[lo]->no == no ? c->segs[lo] : NULL;
}

/* Marks the row at loc dead (rw held exclusively, or single-threaded open). */
static void mark_dead(coll *c, idmap_loc loc)
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

static ndb_status check_id(const coll *c, const char *id, size_t *len, ndb_errmsg *msg)
{
    if (!id)
        return ndb_errmsg_set(msg, NDB_EINVAL, "document id is missing");
    size_t l = strnlen(id, NDB_VEC_MAX_ID + 1);
    if (l == 0)
        return ndb_errmsg_set(msg, NDB_EINVAL, "document id is empty");
    if (l > NDB_VEC_MAX_ID)
        return ndb_errmsg_set(msg, NDB_EINVAL, "document id in collection %s is longer than %u bytes", c->name,
                              NDB_VEC_MAX_ID);
    *len = l;
    return NDB_OK;
}

/* Validates v (dims floats) for this collection and writes the stored form
 * (normalised for cosine) to dst. what names the vector in messages. */
static ndb_status check_vec(const coll *c, const float *v, uint32_t dims, const char *what, float *dst,
                            ndb_errmsg *msg)
{
    if (!v)
        return ndb_errmsg_set(msg, NDB_EINVAL, "%s: vector is missing", what);
    if (dims != c->dims)
        return ndb_errmsg_set(msg, NDB_EINVAL, "%s: vector has %u dimensions, collection %s expects %u", what, dims,
                              c->name, c->dims);
    double n2 = 0;
    for (uint32_t j = 0; j < dims; j++) {
        if (isnan(v[j]))
            return ndb_errmsg_set(msg, NDB_EINVAL, "%s: vector component %u is NaN", what, j);
        if (isinf(v[j]))
            return ndb_errmsg_set(msg, NDB_EINVAL, "%s: vector component %u is infinite", what, j);
        if (fabsf(v[j]) > VEC_MAX_ABS)
            return ndb_errmsg_set(msg, NDB_EINVAL, "%s: vector component %u (%g) exceeds +-1e15", what, j,
                                  (double)v[j]);
        n2 += (double)v[j] * v[j];
    }
    if (c->metric == NDB_VEC_COSINE) {
        if (n2 == 0)
            return ndb_errmsg_set(msg, NDB_EINVAL, "%s: zero vector has no direction under the cosine metric",
                                  what);
        double inv = 1.0 / sqrt(n2);
        for (uint32_t j = 0; j < dims; j++)
            dst[j] = (float)(v[j] * inv);
    } else {
        memcpy(dst, v, (size_t)dims * 4);
    }
    return NDB_OK;
}

/* ---- manifest ----------------------------------------------------------- */

static ndb_status manifest_write(coll *c, seg *const *segs, size_t nsegs, uint32_t next_no, uint64_t ckpt,
                                 ndb_errmsg *msg)
{
    size_t size = MAN_FIXED + 4;
    for (size_t i = 0; i < nsegs; i++)
        size += MAN_SEG_FIXED + ((segs[i]->nrows + 63) / 64) * 8;
    unsigned char *b = calloc(1, size);
    char *path = path_join(c->dir, "MANIFEST"), *tmp = path_join(c->dir, "MANIFEST.tmp");
    ndb_status st = NDB_OK;
    int fd = -1;
    if (!b || !path || !tmp) {
        st = ndb_errmsg_set(msg, NDB_ENOMEM, "manifest of %s: out of memory", c->name);
        goto out;
    }
    uint32_t u32;
    memcpy(b, MAN_MAGIC, 8);
    u32 = MAN_VERSION;
    memcpy(b + 8, &u32, 4);
    memcpy(b + 12, &c->dims, 4);
    memcpy(b + 16, &c->metric, 4);
    u32 = (uint32_t)nsegs;
    memcpy(b + 20, &u32, 4);
    memcpy(b + 24, &next_no, 4);
    memcpy(b + 32, &ckpt, 8);
    size_t off = MAN_FIXED;
    for (size_t i = 0; i < nsegs; i++) {
        memcpy(b + off, &segs[i]->no, 4);
        memcpy(b + off + 8, &segs[i]->nrows, 8);
        memcpy(b + off + 16, &segs[i]->ndead, 8);
        size_t words = (segs[i]->nrows + 63) / 64;
        memcpy(b + off + MAN_SEG_FIXED, segs[i]->dead, words * 8);
        off += MAN_SEG_FIXED + words * 8;
    }
    u32 = crc32c(b, off);
    memcpy(b + off, &u32, 4);
    if ((st = vio_open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0644, &fd, msg)) != NDB_OK)
        goto out;
    if ((st = vio_write_all(fd, b, size, tmp, msg)) != NDB_OK || (st = vio_fsync(fd, tmp, msg)) != NDB_OK)
        goto out;
    close(fd);
    fd = -1;
    if ((st = vio_rename(tmp, path, msg)) != NDB_OK)
        goto out;
    st = vio_fsync_dir(c->dir, msg);
out:
    if (fd >= 0)
        close(fd);
    free(b);
    free(path);
    free(tmp);
    return st;
}

typedef struct man_seg {
    uint32_t no;
    uint64_t nrows, ndead;
    const unsigned char *dead; /* (nrows+63)/64 words, unaligned */
} man_seg;

typedef struct manifest {
    unsigned char *buf;
    uint32_t dims, metric, nsegs, next_no;
    uint64_t ckpt;
    man_seg *segs;
} manifest;

#define MBAD(...) ndb_errmsg_set(msg, NDB_ECORRUPT, __VA_ARGS__)

static ndb_status manifest_read(const char *path, manifest *m, ndb_errmsg *msg)
{
    memset(m, 0, sizeof *m);
    int fd;
    ndb_status st = vio_open(path, O_RDONLY, 0, &fd, msg);
    if (st == NDB_ENOTFOUND)
        return ndb_errmsg_set(msg, NDB_ECORRUPT, "manifest %s is missing", path);
    if (st != NDB_OK)
        return st;
    uint64_t size;
    if ((st = vio_size(fd, &size, path, msg)) != NDB_OK)
        goto fail;
    if (size < MAN_FIXED + 4 || size > MAN_MAX_BYTES) {
        st = MBAD("manifest %s: truncated or implausible size %llu", path, (unsigned long long)size);
        goto fail;
    }
    if (!(m->buf = malloc(size))) {
        st = ndb_errmsg_set(msg, NDB_ENOMEM, "manifest %s: out of memory", path);
        goto fail;
    }
    if ((st = vio_pread_exact(fd, m->buf, size, 0, path, msg)) != NDB_OK)
        goto fail;
    const unsigned char *b = m->buf;
    uint32_t crc, ver;
    memcpy(&crc, b + size - 4, 4);
    if (memcmp(b, MAN_MAGIC, 8) != 0) {
        st = MBAD("manifest %s: bad magic", path);
        goto fail;
    }
    if (crc != crc32c(b, size - 4)) {
        st = MBAD("manifest %s: checksum mismatch", path);
        goto fail;
    }
    memcpy(&ver, b + 8, 4);
    memcpy(&m->dims, b + 12, 4);
    memcpy(&m->metric, b + 16, 4);
    memcpy(&m->nsegs, b + 20, 4);
    memcpy(&m->next_no, b + 24, 4);
    memcpy(&m->ckpt, b + 32, 8);
    if (ver != MAN_VERSION || m->dims < 1 || m->dims > NDB_VEC_MAX_DIMS || m->metric > NDB_VEC_L2 ||
        m->nsegs > MAN_MAX_SEGS) {
        st = MBAD("manifest %s: bad version, dims, metric or segment count", path);
        goto fail;
    }
    if (!(m->segs = calloc(m->nsegs + 1, sizeof *m->segs))) {
        st = ndb_errmsg_set(msg, NDB_ENOMEM, "manifest %s: out of memory", path);
        goto fail;
    }
    uint64_t off = MAN_FIXED, end = size - 4;
    for (uint32_t i = 0; i < m->nsegs; i++) {
        man_seg *s = &m->segs[i];
        if (end - off < MAN_SEG_FIXED) {
            st = MBAD("manifest %s: truncated segment list", path);
            goto fail;
        }
        memcpy(&s->no, b + off, 4);
        memcpy(&s->nrows, b + off + 8, 8);
        memcpy(&s->ndead, b + off + 16, 8);
        off += MAN_SEG_FIXED;
        uint64_t words = (s->nrows + 63) / 64;
        if (s->nrows > SEG_MAX_ROWS || s->no >= m->next_no || (i > 0 && s->no <= m->segs[i - 1].no) ||
            (end - off) / 8 < words) {
            st = MBAD("manifest %s: bad entry for segment %u", path, i);
            goto fail;
        }
        s->dead = b + off;
        uint64_t cnt = 0;
        for (uint64_t w = 0; w < words; w++) {
            uint64_t x;
            memcpy(&x, s->dead + w * 8, 8);
            if (w == words - 1 && (s->nrows & 63) && (x >> (s->nrows & 63))) {
                st = MBAD("manifest %s: dead bits past the end of segment %u", path, s->no);
                goto fail;
            }
            cnt += (uint64_t)__builtin_popcountll(x);
        }
        if (cnt != s->ndead) {
            st = MBAD("manifest %s: dead count mismatch for segment %u", path, s->no);
            goto fail;
        }
        off += words * 8;
    }
    if (off != end) {
        st = MBAD("manifest %s: %llu trailing bytes", path, (unsigned long long)(end - off));
        goto fail;
    }
    close(fd);
    return NDB_OK;
fail:
    close(fd);
    free(m->buf);
    free(m->segs);
    memset(m, 0, sizeof *m);
    return st;
}

/* ---- construction ------------------------------------------------------- */

static coll *coll_alloc(const char *root, const char *name, uint32_t dims, uint32_t metric, const coll_env *env)
{
    coll *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->name = strdup(name);
    c->dir = path_join(root, name);
    c->wal_path = c->dir ? path_join(c->dir, "wal.log") : NULL;
    if (!c->name || !c->dir || !c->wal_path) {
        free(c->name);
        free(c->dir);
        free(c->wal_path);
        free(c);
        return NULL;
    }
    c->dims = dims;
    c->metric = metric;
    c->stride = seg_stride(dims);
    c->dpad = c->stride / 4;
    c->env = env;
    uint64_t sr = env->segment_bytes / c->stride;
    c->seal_rows = sr < 1 ? 1 : (sr > SEG_MAX_ROWS / 2 ? SEG_MAX_ROWS / 2 : sr);
    c->refs = 1;
    c->wal_fd = -1;
    pthread_mutex_init(&c->wmu, NULL);
    pthread_mutex_init(&c->qmu, NULL);
    /* Prefer writers: a steady stream of searches must not starve the short
     * exclusive sections that apply durable writes. */
    pthread_rwlockattr_t ra;
    pthread_rwlockattr_init(&ra);
    pthread_rwlockattr_setkind_np(&ra, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
    pthread_rwlock_init(&c->rw, &ra);
    pthread_rwlockattr_destroy(&ra);
    idmap_init(&c->map);
    return c;
}

void coll_free(coll *c)
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
    free(c->adead);
    free(c->arows);
    idmap_free(&c->map);
    if (c->wal_fd >= 0)
        close(c->wal_fd);
    pthread_mutex_destroy(&c->wmu);
    pthread_mutex_destroy(&c->qmu);
    pthread_rwlock_destroy(&c->rw);
    free(c->name);
    free(c->dir);
    free(c->wal_path);
    free(c);
}

/* Grows the active arrays to hold at least want rows. The caller holds rw
 * exclusively (or is single-threaded). */
static ndb_status active_reserve(coll *c, uint64_t want)
{
    if (want <= c->acap)
        return NDB_OK;
    /* First growth goes straight to a whole segment's worth: the pages are
     * only virtual until rows land in them, and searches are not blocked by
     * copying a large buffer under the write lock on every doubling. */
    uint64_t ncap = c->acap ? c->acap : (c->seal_rows < 64 ? 64 : c->seal_rows);
    while (ncap < want)
        ncap *= 2;
    size_t bytes = (size_t)ncap * c->stride;
    float *rows = aligned_alloc(64, bytes);
    char **ids = realloc(c->aids, ncap * sizeof *ids);
    if (ids)
        c->aids = ids;
    uint32_t *lens = realloc(c->aidlen, ncap * sizeof *lens);
    if (lens)
        c->aidlen = lens;
    uint64_t *dead = calloc((ncap + 63) / 64, 8);
    if (!rows || !ids || !lens || !dead) {
        free(rows);
        free(dead);
        return NDB_ENOMEM;
    }
    if (c->an)
        memcpy(rows, c->arows, (size_t)c->an * c->stride); /* new rows are written whole by active_append */
    if (c->adead)
        memcpy(dead, c->adead, ((c->acap + 63) / 64) * 8);
    free(c->arows);
    free(c->adead);
    c->arows = rows;
    c->adead = dead;
    c->acap = ncap;
    return NDB_OK;
}

/* Appends one row (capacity reserved, idmap reserved, keys owned). */
static void active_append(coll *c, const float *v, char *id_copy, char *key_copy, size_t idlen)
{
    idmap_loc *old = idmap_get(&c->map, key_copy, idlen);
    if (old)
        mark_dead(c, *old);
    float *row = c->arows + c->an * c->dpad;
    memcpy(row, v, (size_t)c->dims * 4);
    memset(row + c->dims, 0, (c->dpad - c->dims) * 4); /* the kernels read the padding */
    c->aids[c->an] = id_copy;
    c->aidlen[c->an] = (uint32_t)idlen;
    idmap_put_owned(&c->map, key_copy, idlen, (idmap_loc){c->next_no, (uint32_t)c->an});
    c->an++;
}

ndb_status coll_create(const char *root, const char *name, uint32_t dims, uint32_t metric, const coll_env *env,
                       coll **out, ndb_errmsg *msg)
{
    coll *c = coll_alloc(root, name, dims, metric, env);
    if (!c)
        return ndb_errmsg_set(msg, NDB_ENOMEM, "create %s: out of memory", name);
    /* Built in a staging directory and renamed into place, so a crash never
     * leaves a collection directory without its manifest (a leftover
     * .creating-* directory is removed when the store opens). */
    char stage_name[NDB_VEC_MAX_NAME + 16];
    snprintf(stage_name, sizeof stage_name, ".creating-%s", name);
    char *final_dir = c->dir, *final_wal = c->wal_path;
    char *stage = path_join(root, stage_name), *stage_wal = stage ? path_join(stage, "wal.log") : NULL;
    ndb_status st = NDB_OK;
    if (!stage || !stage_wal) {
        st = ndb_errmsg_set(msg, NDB_ENOMEM, "create %s: out of memory", name);
        goto out;
    }
    vio_remove_tree(stage, NULL);
    if (mkdir(stage, 0755) != 0) {
        st = ndb_errmsg_set(msg, NDB_EIO, "mkdir %s: %s", stage, strerror(errno));
        goto out;
    }
    c->dir = stage;
    c->wal_path = stage_wal;
    c->next_no = 1;
    if ((st = manifest_write(c, NULL, 0, c->next_no, 0, msg)) != NDB_OK ||
        (st = vio_open(c->wal_path, O_RDWR | O_CREAT | O_APPEND, 0644, &c->wal_fd, msg)) != NDB_OK ||
        (st = vio_fsync(c->wal_fd, c->wal_path, msg)) != NDB_OK || (st = vio_fsync_dir(stage, msg)) != NDB_OK)
        goto out;
    if (renameat2(AT_FDCWD, stage, AT_FDCWD, final_dir, RENAME_NOREPLACE) != 0) {
        st = errno == EEXIST ? ndb_errmsg_set(msg, NDB_EEXIST, "collection directory %s already exists", final_dir)
                             : ndb_errmsg_set(msg, NDB_EIO, "rename %s -> %s: %s", stage, final_dir, strerror(errno));
        goto out;
    }
    st = vio_fsync_dir(root, msg);
out:
    if (st != NDB_OK && stage)
        vio_remove_tree(stage, NULL);
    c->dir = final_dir;
    c->wal_path = final_wal;
    free(stage);
    free(stage_wal);
    if (st != NDB_OK) {
        coll_free(c);
        return st;
    }
    *out = c;
    return NDB_OK;
}

typedef struct replay_ctx {
    coll *c;
    float *tmp;
    ndb_errmsg *msg;
} replay_ctx;

static ndb_status replay_apply(void *vctx, int type, uint64_t lsn, const char *id, size_t idlen,
                               const unsigned char *vec)
{
    replay_ctx *r = vctx;
    coll *c = r->c;
    (void)lsn;
    if (type == WAL_DEL) {
        idmap_loc *loc = idmap_get(&c->map, id, idlen);
        if (loc) {
            mark_dead(c, *loc);
            idmap_del(&c->map, id, idlen);
        }
        return NDB_OK;
    }
    memcpy(r->tmp, vec, (size_t)c->dims * 4);
    for (uint32_t j = 0; j < c->dims; j++)
        if (!isfinite(r->tmp[j]) || fabsf(r->tmp[j]) > VEC_MAX_ABS)
            return ndb_errmsg_set(r->msg, NDB_ECORRUPT, "log %s: invalid vector for id %.*s", c->wal_path,
                                  (int)(idlen > 64 ? 64 : idlen), id);
    char *a = malloc(idlen + 1), *b = malloc(idlen);
    if (!a || !b || active_reserve(c, c->an + 1) != NDB_OK || idmap_reserve(&c->map, 1) != NDB_OK) {
        free(a);
        free(b);
        return ndb_errmsg_set(r->msg, NDB_ENOMEM, "replaying %s: out of memory", c->wal_path);
    }
    memcpy(a, id, idlen);
    a[idlen] = 0;
    memcpy(b, id, idlen);
    active_append(c, r->tmp, a, b, idlen);
    return NDB_OK;
}

/* Removes segment files the manifest does not list and leftover temp files. */
static void remove_orphans(coll *c)
{
    DIR *d = opendir(c->dir);
    if (!d)
        return;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        unsigned no;
        char tail[8];
        size_t l = strlen(e->d_name);
        int orphan = 0;
        if (l > 4 && strcmp(e->d_name + l - 4, ".tmp") == 0)
            orphan = 1;
        else if (sscanf(e->d_name, "seg-%8u.vse%1[g]", &no, tail) == 2 && !find_seg(c, no))
            orphan = 1;
        if (orphan) {
            char *p = path_join(c->dir, e->d_name);
            if (p)
                unlink(p);
            free(p);
        }
    }
    closedir(d);
}

ndb_status coll_open(const char *root, const char *name, const coll_env *env, coll **out, ndb_errmsg *msg)
{
    char *dir = path_join(root, name), *mpath = dir ? path_join(dir, "MANIFEST") : NULL;
    if (!mpath) {
        free(dir);
        return ndb_errmsg_set(msg, NDB_ENOMEM, "open %s: out of memory", name);
    }
    manifest m;
    ndb_status st = manifest_read(mpath, &m, msg);
    free(dir);
    free(mpath);
    if (st != NDB_OK)
        return st;
    coll *c = coll_alloc(root, name, m.dims, m.metric, env);
    float *tmp = NULL;
    if (!c || !(c->segs = calloc(m.nsegs + 1, sizeof(seg *))) || !(tmp = malloc((size_t)m.dims * 4))) {
        st = ndb_errmsg_set(msg, NDB_ENOMEM, "open %s: out of memory", name);
        goto fail;
    }
    c->next_no = m.next_no;
    c->ckpt_lsn = m.ckpt;
    for (uint32_t i = 0; i < m.nsegs; i++) {
        char *p = seg_path(c, m.segs[i].no, 0);
        seg *s = NULL;
        st = p ? seg_open(p, m.segs[i].no, c->dims, c->metric, &s, msg) : NDB_ENOMEM;
        if (st == NDB_ENOTFOUND)
            st = ndb_errmsg_set(msg, NDB_ECORRUPT, "segment %s listed in the manifest is missing", p);
        free(p);
        if (st != NDB_OK)
            goto fail;
        c->segs[c->nsegs++] = s;
        if (s->nrows != m.segs[i].nrows) {
            st = ndb_errmsg_set(msg, NDB_ECORRUPT, "segment %u of %s has %llu rows, the manifest says %llu", s->no,
                                name, (unsigned long long)s->nrows, (unsigned long long)m.segs[i].nrows);
            goto fail;
        }
        memcpy(s->dead, m.segs[i].dead, ((s->nrows + 63) / 64) * 8);
        s->ndead = m.segs[i].ndead;
    }
    uint64_t live = 0;
    for (size_t i = 0; i < c->nsegs; i++)
        live += c->segs[i]->nrows - c->segs[i]->ndead;
    if (idmap_reserve(&c->map, live) != NDB_OK) {
        st = ndb_errmsg_set(msg, NDB_ENOMEM, "open %s: out of memory", name);
        goto fail;
    }
    for (size_t i = 0; i < c->nsegs; i++) {
        seg *s = c->segs[i];
        for (uint64_t r = 0; r < s->nrows; r++) {
            if (bit_get(s->dead, r))
                continue;
            size_t l;
            const char *id = seg_id(s, r, &l);
            idmap_loc *old = idmap_get(&c->map, id, l);
            if (old) /* a duplicate live id (should not happen): the later row wins */
                mark_dead(c, *old);
            if (idmap_put(&c->map, id, l, (idmap_loc){s->no, (uint32_t)r}) != NDB_OK) {
                st = ndb_errmsg_set(msg, NDB_ENOMEM, "open %s: out of memory", name);
                goto fail;
            }
        }
    }
    remove_orphans(c);
    if ((st = vio_open(c->wal_path, O_RDWR | O_CREAT | O_APPEND, 0644, &c->wal_fd, msg)) != NDB_OK)
        goto fail;
    replay_ctx rc = {c, tmp, msg};
    uint64_t valid_end, last, size;
    if ((st = wal_replay(c->wal_fd, c->wal_path, c->dims, c->ckpt_lsn, replay_apply, &rc, &valid_end, &last,
                         msg)) != NDB_OK ||
        (st = vio_size(c->wal_fd, &size, c->wal_path, msg)) != NDB_OK)
        goto fail;
    if (valid_end < size) { /* a torn tail from a crash: cut it so appends follow valid records */
        if ((st = vio_truncate(c->wal_fd, valid_end, c->wal_path, msg)) != NDB_OK ||
            (st = vio_fsync(c->wal_fd, c->wal_path, msg)) != NDB_OK)
            goto fail;
    }
    c->wal_bytes = valid_end;
    c->lsn = last > c->ckpt_lsn ? last : c->ckpt_lsn;
    free(tmp);
    free(m.buf);
    free(m.segs);
    *out = c;
    return NDB_OK;
fail:
    free(tmp);
    free(m.buf);
    free(m.segs);
    coll_free(c);
    return st;
}

/* ---- sealing and merging (wmu held) ------------------------------------ */

typedef struct src_row {
    const float *row;
    const char *id;
    size_t len;
} src_row;

static void src_fn(void *ctx, uint64_t i, const float **row, const char **id, size_t *len)
{
    const src_row *s = (const src_row *)ctx + i;
    *row = s->row;
    *id = s->id;
    *len = s->len;
}

/* Writes rows[0..n) as segment number no and opens it. */
static ndb_status write_segment(coll *c, uint32_t no, const src_row *rows, uint64_t n, seg **out, ndb_errmsg *msg)
{
    char *tmp = seg_path(c, no, 1), *fin = seg_path(c, no, 0);
    ndb_status st;
    if (!tmp || !fin)
        st = ndb_errmsg_set(msg, NDB_ENOMEM, "seal %s: out of memory", c->name);
    else if ((st = seg_write(tmp, c->dims, c->metric, n, src_fn, (void *)rows, msg)) == NDB_OK &&
             (st = vio_rename(tmp, fin, msg)) == NDB_OK && (st = vio_fsync_dir(c->dir, msg)) == NDB_OK)
        st = seg_open(fin, no, c->dims, c->metric, out, msg);
    if (st != NDB_OK && tmp)
        unlink(tmp);
    free(tmp);
    free(fin);
    return st;
}

static void truncate_log(coll *c)
{
    /* Failure is harmless: records at or below the checkpoint are skipped on
     * replay. */
    if (vio_truncate(c->wal_fd, 0, c->wal_path, NULL) == NDB_OK && vio_fsync(c->wal_fd, c->wal_path, NULL) == NDB_OK)
        __atomic_store_n(&c->wal_bytes, 0, __ATOMIC_RELAXED); /* stats read it unlocked */
}

/* Turns the live active rows into a sealed segment and checkpoints the log. */
static ndb_status seal(coll *c, ndb_errmsg *msg)
{
    uint64_t live = c->an - c->andead;
    src_row *rows = malloc((live ? live : 1) * sizeof *rows);
    /* a new list, swapped in under the write lock: searches iterate the old one */
    seg **arr = malloc((c->nsegs + 1) * sizeof(seg *));
    if (!rows || !arr) {
        free(rows);
        free(arr);
        return ndb_errmsg_set(msg, NDB_ENOMEM, "seal %s: out of memory", c->name);
    }
    if (c->nsegs)
        memcpy(arr, c->segs, c->nsegs * sizeof(seg *));
    uint64_t j = 0;
    for (uint64_t i = 0; i < c->an; i++)
        if (!bit_get(c->adead, i))
            rows[j++] = (src_row){c->arows + i * c->dpad, c->aids[i], c->aidlen[i]};
    seg *s = NULL;
    ndb_status st = NDB_OK;
    if (live > 0 && (st = write_segment(c, c->next_no, rows, live, &s, msg)) != NDB_OK) {
        free(rows);
        free(arr);
        return st;
    }
    arr[c->nsegs] = s;
    if ((st = manifest_write(c, arr, c->nsegs + (s ? 1 : 0), c->next_no + 1, c->lsn, msg)) != NDB_OK) {
        if (s) {
            char *p = seg_path(c, s->no, 0);
            if (p)
                unlink(p);
            free(p);
            seg_close(s);
        }
        free(rows);
        free(arr);
        return st;
    }
    truncate_log(c);
    pthread_rwlock_wrlock(&c->rw);
    seg **old = c->segs;
    c->segs = arr;
    if (s) {
        c->nsegs++;
        for (uint64_t r = 0; r < live; r++) {
            idmap_loc *loc = idmap_get(&c->map, rows[r].id, rows[r].len);
            if (loc)
                *loc = (idmap_loc){s->no, (uint32_t)r};
        }
    }
    for (uint64_t i = 0; i < c->an; i++)
        free(c->aids[i]);
    memset(c->adead, 0, ((c->acap + 63) / 64) * 8);
    c->an = c->andead = 0;
    c->next_no++;
    c->ckpt_lsn = c->lsn;
    pthread_rwlock_unlock(&c->rw);
    free(old);
    free(rows);
    return NDB_OK;
}

/* Rewrites the sealed segments without dead rows (wmu held). */
static ndb_status merge_locked(coll *c, ndb_errmsg *msg)
{
    ndb_status st = NDB_OK;
    if (c->an > 0 && (st = seal(c, msg)) != NDB_OK)
        goto out;
    uint64_t live = 0, dead = 0;
    for (size_t i = 0; i < c->nsegs; i++) {
        live += c->segs[i]->nrows - c->segs[i]->ndead;
        dead += c->segs[i]->ndead;
    }
    if (dead == 0 && c->nsegs <= 1)
        goto out;
    uint64_t nout = (live + c->seal_rows - 1) / c->seal_rows;
    src_row *rows = malloc((live ? live : 1) * sizeof *rows);
    seg **out_segs = calloc(nout + 1, sizeof(seg *));
    if (!rows || !out_segs) {
        free(rows);
        free(out_segs);
        st = ndb_errmsg_set(msg, NDB_ENOMEM, "merge %s: out of memory", c->name);
        goto out;
    }
    uint64_t j = 0;
    for (size_t i = 0; i < c->nsegs; i++) {
        seg *s = c->segs[i];
        for (uint64_t r = 0; r < s->nrows; r++) {
            if (bit_get(s->dead, r))
                continue;
            size_t l;
            const char *id = seg_id(s, r, &l);
            rows[j++] = (src_row){seg_row(s, r), id, l};
        }
    }
    uint64_t made = 0;
    for (; made < nout && st == NDB_OK; made++) {
        uint64_t first = made * c->seal_rows, n = live - first < c->seal_rows ? live - first : c->seal_rows;
        st = write_segment(c, c->next_no + (uint32_t)made, rows + first, n, &out_segs[made], msg);
    }
    if (st == NDB_OK)
        st = manifest_write(c, out_segs, nout, c->next_no + (uint32_t)nout, c->lsn, msg);
    if (st != NDB_OK) {
        for (uint64_t i = 0; i < made; i++) {
            if (!out_segs[i])
                continue;
            char *p = seg_path(c, out_segs[i]->no, 0);
            if (p)
                unlink(p);
            free(p);
            seg_close(out_segs[i]);
        }
        free(rows);
        free(out_segs);
        goto out;
    }
    /* committed: swap in the new segments */
    pthread_rwlock_wrlock(&c->rw);
    for (uint64_t r = 0; r < live; r++) {
        idmap_loc *loc = idmap_get(&c->map, rows[r].id, rows[r].len);
        if (loc)
            *loc = (idmap_loc){out_segs[r / c->seal_rows]->no, (uint32_t)(r % c->seal_rows)};
    }
    seg **old = c->segs;
    size_t nold = c->nsegs;
    c->segs = out_segs;
    c->nsegs = nout;
    c->next_no += (uint32_t)nout; /* the (empty) active segment takes the next number */
    pthread_rwlock_unlock(&c->rw);
    free(rows); /* pointed into the old mappings: free before closing them */
    for (size_t i = 0; i < nold; i++) {
        char *p = seg_path(c, old[i]->no, 0);
        if (p)
            unlink(p);
        free(p);
        seg_close(old[i]);
    }
    free(old);
out:
    return st;
}

ndb_status coll_merge(coll *c, ndb_errmsg *msg)
{
    pthread_mutex_lock(&c->wmu);
    ndb_status st = NDB_OK;
    if (c->dropped)
        st = ndb_errmsg_set(msg, NDB_ENOTFOUND, "collection %s was dropped", c->name);
    else if (c->poisoned)
        st = ndb_errmsg_set(msg, NDB_EPOISONED, "collection %s stopped after a failed fsync", c->name);
    else
        st = merge_locked(c, msg);
    pthread_mutex_unlock(&c->wmu);
    return st;
}

/* After a seal: merge automatically once dead rows are at least half of the
 * sealed rows (and at least one segment's worth), so space from deletes and
 * updates is reclaimed with bounded write amplification. */
static void maybe_merge(coll *c)
{
    uint64_t rows = 0, dead = 0;
    for (size_t i = 0; i < c->nsegs; i++) {
        rows += c->segs[i]->nrows;
        dead += c->segs[i]->ndead;
    }
    if (dead >= c->seal_rows && dead * 2 >= rows) {
        ndb_errmsg ignored; /* a failed merge changes nothing; it is retried after a later seal */
        (void)merge_locked(c, &ignored);
    }
}

/* ---- writes ----------------------------------------------------------- */

/* Appends buf to the log and makes it durable. A failure poisons c. */
static ndb_status log_append(coll *c, const unsigned char *buf, size_t n, ndb_errmsg *msg)
{
    ndb_status st = vio_write_all(c->wal_fd, buf, n, c->wal_path, msg);
    if (st == NDB_OK && c->env->sync)
        st = vio_fsync(c->wal_fd, c->wal_path, msg);
    if (st != NDB_OK) {
        c->poisoned = 1;
        return st;
    }
    __atomic_add_fetch(&c->wal_bytes, n, __ATOMIC_RELAXED);
    return NDB_OK;
}

static ndb_status writer_enter(coll *c, ndb_errmsg *msg)
{
    pthread_mutex_lock(&c->wmu);
    if (c->dropped) {
        pthread_mutex_unlock(&c->wmu);
        return ndb_errmsg_set(msg, NDB_ENOTFOUND, "collection %s was dropped", c->name);
    }
    if (c->poisoned) {
        pthread_mutex_unlock(&c->wmu);
        return ndb_errmsg_set(msg, NDB_EPOISONED, "collection %s stopped after a failed fsync; reopen to recover",
                              c->name);
    }
    return NDB_OK;
}

/*
 * Group commit. Each write call prepares a request outside any lock (checks
 * its arguments, normalises vectors, copies ids) and joins the queue. The
 * request at the head is the leader: it takes every queued request (up to
 * GROUP_MAX_BYTES of log), checks them in queue order against the id map and
 * against each other, writes all their log records with one write and one
 * fsync, applies them, and wakes the others with their statuses. So
 * concurrent writers share one fsync, and each call still returns only once
 * its records are durable.
 */
#define GROUP_MAX_BYTES ((size_t)64 << 20)

typedef struct wreq {
    int del;            /* 1: delete del_id; 0: put items */
    int upsert;
    size_t n;
    const ndb_vec_item *items;
    size_t *lens;
    float *vecs;        /* n x dims, the stored form */
    char **copies;      /* 2n owned id copies; NULLed once the map/active own them */
    const char *del_id;
    size_t del_len;
    size_t logbytes;
    ndb_status st;
    ndb_errmsg *msg;
    int done;
    pthread_cond_t cv;
    struct wreq *next;
} wreq;

/* Leader side: checks, logs and applies reqs[0..n) (wmu not yet held). */
static void commit_group(coll *c, wreq *first, wreq *last)
{
    ndb_errmsg tmp;
    ndb_status st = writer_enter(c, &tmp);
    if (st != NDB_OK) {
        for (wreq *r = first;; r = r->next) {
            r->st = st;
            if (r->msg)
                *r->msg = tmp;
            if (r == last)
                break;
        }
        return;
    }
    /* 1. checks, in queue order; `local` holds ids touched earlier in the
     * group: loc.seg = 1 exists, 0 deleted. */
    idmap local;
    idmap_init(&local);
    size_t rows = 0, logbytes = 0;
    for (wreq *r = first;; r = r->next) {
        r->st = NDB_OK;
        if (r->del) {
            idmap_loc *l = idmap_get(&local, r->del_id, r->del_len);
            int exists = l ? l->seg == 1 : idmap_get(&c->map, r->del_id, r->del_len) != NULL;
            if (!exists)
                r->st = ndb_errmsg_set(r->msg, NDB_ENOTFOUND, "document id %.64s not found in collection %s",
                                       r->del_id, c->name);
            else if (idmap_put(&local, r->del_id, r->del_len, (idmap_loc){0, 0}) != NDB_OK)
                r->st = ndb_errmsg_set(r->msg, NDB_ENOMEM, "write to %s: out of memory", c->name);
        } else {
            for (size_t i = 0; i < r->n && !r->upsert; i++) {
                idmap_loc *l = idmap_get(&local, r->items[i].id, r->lens[i]);
                int exists = l ? l->seg == 1 : idmap_get(&c->map, r->items[i].id, r->lens[i]) != NULL;
                if (exists) {
                    r->st = ndb_errmsg_set(r->msg, NDB_EEXIST, "document id %.64s already exists in collection %s",
                                           r->items[i].id, c->name);
                    break;
                }
            }
            for (size_t i = 0; i < r->n && r->st == NDB_OK; i++)
                if (idmap_put(&local, r->items[i].id, r->lens[i], (idmap_loc){1, 0}) != NDB_OK)
                    r->st = ndb_errmsg_set(r->msg, NDB_ENOMEM, "write to %s: out of memory", c->name);
            if (r->st == NDB_OK)
                rows += r->n;
        }
        if (r->st == NDB_OK)
            logbytes += r->logbytes;
        if (r == last)
            break;
    }
    idmap_free(&local);
    /* 2. reserve what applying needs, so nothing can fail after the log write */
    unsigned char *log = logbytes ? malloc(logbytes) : NULL;
    pthread_rwlock_wrlock(&c->rw);
    if ((logbytes && !log) || active_reserve(c, c->an + rows) != NDB_OK || idmap_reserve(&c->map, rows) != NDB_OK)
        st = NDB_ENOMEM;
    pthread_rwlock_unlock(&c->rw);
    /* 3. one write, one fsync */
    uint64_t lsn = c->lsn;
    if (st == NDB_OK && logbytes) {
        size_t off = 0;
        for (wreq *r = first;; r = r->next) {
            if (r->st == NDB_OK) {
                if (r->del) {
                    wal_encode(log + off, WAL_DEL, ++lsn, r->del_id, r->del_len, NULL, c->dims);
                    off += wal_rec_size(WAL_DEL, r->del_len, c->dims);
                } else {
                    for (size_t i = 0; i < r->n; i++) {
                        wal_encode(log + off, WAL_PUT, ++lsn, r->items[i].id, r->lens[i], r->vecs + i * c->dims,
                                   c->dims);
                        off += wal_rec_size(WAL_PUT, r->lens[i], c->dims);
                    }
                }
            }
            if (r == last)
                break;
        }
        st = log_append(c, log, logbytes, &tmp);
    } else if (st != NDB_OK) {
        ndb_errmsg_set(&tmp, st, "write to %s: out of memory", c->name);
    }
    free(log);
    if (st != NDB_OK) {
        for (wreq *r = first;; r = r->next) {
            if (r->st == NDB_OK) {
                r->st = st;
                if (r->msg)
                    *r->msg = tmp;
            }
            if (r == last)
                break;
        }
        pthread_mutex_unlock(&c->wmu);
        return;
    }
    c->lsn = lsn;
    /* 4. apply, in the same order */
    pthread_rwlock_wrlock(&c->rw);
    for (wreq *r = first;; r = r->next) {
        if (r->st == NDB_OK) {
            if (r->del) {
                idmap_loc *l = idmap_get(&c->map, r->del_id, r->del_len);
                if (l) {
                    mark_dead(c, *l);
                    idmap_del(&c->map, r->del_id, r->del_len);
                }
            } else {
                for (size_t i = 0; i < r->n; i++) {
                    active_append(c, r->vecs + i * c->dims, r->copies[2 * i], r->copies[2 * i + 1], r->lens[i]);
                    r->copies[2 * i] = r->copies[2 * i + 1] = NULL;
                }
            }
        }
        if (r == last)
            break;
    }
    pthread_rwlock_unlock(&c->rw);
    /* Seal when the active rows fill a segment, or when the log alone has
     * grown that big (a delete-heavy load): sealing checkpoints the log. */
    if ((uint64_t)c->an >= c->seal_rows || c->wal_bytes >= c->env->segment_bytes) {
        ndb_errmsg ignored; /* the writes are durable in the log; a failed seal is retried later */
        if (seal(c, &ignored) == NDB_OK)
            maybe_merge(c);
    }
    pthread_mutex_unlock(&c->wmu);
}

/* Queues r and returns once it is committed (or failed). */
static ndb_status submit(coll *c, wreq *r)
{
    pthread_cond_init(&r->cv, NULL);
    r->done = 0;
    r->next = NULL;
    pthread_mutex_lock(&c->qmu);
    if (c->qtail)
        c->qtail->next = r;
    else
        c->qhead = r;
    c->qtail = r;
    while (!r->done && c->qhead != r)
        pthread_cond_wait(&r->cv, &c->qmu);
    if (r->done) {
        pthread_mutex_unlock(&c->qmu);
        pthread_cond_destroy(&r->cv);
        return r->st;
    }
    /* leader: take the queue up to the byte bound (at least r itself) */
    wreq *last = r;
    size_t bytes = r->logbytes;
    while (last->next && bytes + last->next->logbytes <= GROUP_MAX_BYTES) {
        last = last->next;
        bytes += last->logbytes;
    }
    pthread_mutex_unlock(&c->qmu);
    commit_group(c, r, last);
    pthread_mutex_lock(&c->qmu);
    wreq *next = last->next;
    for (wreq *m = r; m != next;) {
        wreq *after = m->next;
        if (m != r) {
            m->done = 1;
            pthread_cond_signal(&m->cv);
        }
        m = after;
    }
    c->qhead = next;
    if (!next)
        c->qtail = NULL;
    else
        pthread_cond_signal(&next->cv); /* the next leader */
    pthread_mutex_unlock(&c->qmu);
    pthread_cond_destroy(&r->cv);
    return r->st;
}

ndb_status coll_write(coll *c, const ndb_vec_item *items, size_t n, uint32_t dims, int upsert, ndb_errmsg *msg)
{
    if (n == 0)
        return NDB_OK;
    if (!items)
        return ndb_errmsg_set(msg, NDB_EINVAL, "items are missing");
    if ((uint64_t)n * c->stride > WRITE_MAX_BYTES)
        return ndb_errmsg_set(msg, NDB_ETOOBIG, "%zu vectors of %u dimensions exceed the 1 GiB write limit", n,
                              c->dims);
    ndb_status st = NDB_OK;
    wreq r = {.upsert = upsert, .n = n, .items = items, .msg = msg};
    r.lens = calloc(n, sizeof *r.lens);
    r.vecs = malloc(n * (size_t)c->dims * 4);
    r.copies = calloc(2 * n, sizeof(char *));
    idmap seen;
    idmap_init(&seen);
    if (!r.lens || !r.vecs || !r.copies) {
        st = ndb_errmsg_set(msg, NDB_ENOMEM, "write to %s: out of memory", c->name);
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        char what[96];
        if ((st = check_id(c, items[i].id, &r.lens[i], msg)) != NDB_OK)
            goto out;
        snprintf(what, sizeof what, "document %.64s", items[i].id);
        if ((st = check_vec(c, items[i].vector, dims, what, r.vecs + i * c->dims, msg)) != NDB_OK)
            goto out;
        if (!upsert) {
            if (idmap_get(&seen, items[i].id, r.lens[i])) {
                st = ndb_errmsg_set(msg, NDB_EINVAL, "document id %.64s appears twice in one insert", items[i].id);
                goto out;
            }
            if (idmap_put(&seen, items[i].id, r.lens[i], (idmap_loc){0, 0}) != NDB_OK) {
                st = ndb_errmsg_set(msg, NDB_ENOMEM, "write to %s: out of memory", c->name);
                goto out;
            }
        }
        r.copies[2 * i] = malloc(r.lens[i] + 1);
        r.copies[2 * i + 1] = malloc(r.lens[i]);
        if (!r.copies[2 * i] || !r.copies[2 * i + 1]) {
            st = ndb_errmsg_set(msg, NDB_ENOMEM, "write to %s: out of memory", c->name);
            goto out;
        }
        memcpy(r.copies[2 * i], items[i].id, r.lens[i] + 1);
        memcpy(r.copies[2 * i + 1], items[i].id, r.lens[i]);
        r.logbytes += wal_rec_size(WAL_PUT, r.lens[i], c->dims);
    }
    st = submit(c, &r);
out:
    if (r.copies)
        for (size_t i = 0; i < 2 * n; i++)
            free(r.copies[i]);
    free(r.copies);
    free(r.lens);
    free(r.vecs);
    idmap_free(&seen);
    return st;
}

ndb_status coll_delete(coll *c, const char *id, ndb_errmsg *msg)
{
    wreq r = {.del = 1, .del_id = id, .msg = msg};
    ndb_status st = check_id(c, id, &r.del_len, msg);
    if (st != NDB_OK)
        return st;
    r.logbytes = wal_rec_size(WAL_DEL, r.del_len, c->dims);
    return submit(c, &r);
}


/* ---- reads ---------------------------------------------------------------- */

/* Row pointer and id for a location (rw held). */
static const float *row_at(const coll *c, idmap_loc loc, const char **id, size_t *len)
{
    if (loc.seg == c->next_no) {
        *id = c->aids[loc.row];
        *len = c->aidlen[loc.row];
        return c->arows + (size_t)loc.row * c->dpad;
    }
    const seg *s = find_seg(c, loc.seg);
    *id = seg_id(s, loc.row, len);
    return seg_row(s, loc.row);
}

ndb_status coll_get(coll *c, const char *id, float *vec, uint32_t cap, ndb_errmsg *msg)
{
    size_t len;
    ndb_status st = check_id(c, id, &len, msg);
    if (st != NDB_OK)
        return st;
    if (vec && cap < c->dims)
        return ndb_errmsg_set(msg, NDB_EINVAL, "output buffer holds %u floats, collection %s has %u dimensions",
                              cap, c->name, c->dims);
    pthread_rwlock_rdlock(&c->rw);
    idmap_loc *loc = idmap_get(&c->map, id, len);
    if (!loc) {
        st = ndb_errmsg_set(msg, NDB_ENOTFOUND, "document id %.64s not found in collection %s", id, c->name);
    } else if (vec) {
        const char *rid;
        size_t rl;
        memcpy(vec, row_at(c, *loc, &rid, &rl), (size_t)c->dims * 4);
    }
    pthread_rwlock_unlock(&c->rw);
    return st;
}

void coll_info(coll *c, ndb_vec_info *out)
{
    memset(out, 0, sizeof *out);
    snprintf(out->name, sizeof out->name, "%s", c->name);
    out->dims = c->dims;
    out->metric = (ndb_vec_metric)c->metric;
    pthread_rwlock_rdlock(&c->rw);
    out->rows = c->map.count;
    out->dead = c->andead;
    out->segments = (uint32_t)c->nsegs;
    out->bytes = __atomic_load_n(&c->wal_bytes, __ATOMIC_RELAXED);
    for (size_t i = 0; i < c->nsegs; i++) {
        out->dead += c->segs[i]->ndead;
        out->bytes += c->segs[i]->map_len;
    }
    pthread_rwlock_unlock(&c->rw);
}

/* ---- search ------------------------------------------------------------ */

typedef struct part {        /* one run of rows: a segment or the active rows */
    uint32_t no;
    const float *rows;
    uint64_t n;
    const uint64_t *skip;    /* dead rows, or dead | filtered out */
    uint32_t *sel;           /* when the filter keeps few rows: their indices */
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
} search_job;

static void search_task(void *vctx, size_t t, unsigned who)
{
    search_job *j = vctx;
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

/* Builds exclusion bitmaps (and, when few rows pass, selection lists) for a
 * filtered search. Runs with rw held shared. */
static ndb_status apply_filter(coll *c, part *parts, size_t nparts, const ndb_vec_query *q, uint64_t **owned,
                               ndb_errmsg *msg)
{
    uint64_t kept = 0, total = 0;
    for (size_t p = 0; p < nparts; p++) {
        part *pt = &parts[p];
        size_t words = (pt->n + 63) / 64 + 1;
        uint64_t *ex = malloc(words * 8);
        if (!ex)
            return ndb_errmsg_set(msg, NDB_ENOMEM, "filtered search: out of memory");
        owned[p] = ex;
        if (q->allow_ids) {
            memset(ex, 0xff, words * 8);
        } else {
            memset(ex, 0, words * 8);
            if (pt->skip)
                memcpy(ex, pt->skip, ((pt->n + 63) / 64) * 8);
        }
        pt->skip = ex;
        total += pt->n;
    }
    if (q->allow_ids) {
        for (size_t i = 0; i < q->n_allow; i++) {
            const char *id = q->allow_ids[i];
            if (!id)
                continue;
            size_t l = strnlen(id, NDB_VEC_MAX_ID + 1);
            idmap_loc *loc = idmap_get(&c->map, id, l);
            if (!loc)
                continue;
            for (size_t p = 0; p < nparts; p++)
                if (parts[p].no == loc->seg) {
                    owned[p][loc->row >> 6] &= ~(1ull << (loc->row & 63));
                    break;
                }
        }
    }
    for (size_t p = 0; p < nparts; p++) {
        part *pt = &parts[p];
        uint64_t *ex = owned[p];
        for (uint64_t r = 0; r < pt->n; r++) {
            if (bit_get(ex, r))
                continue;
            if (q->filter) {
                const char *id;
                size_t l;
                if (pt->no == c->next_no) {
                    id = c->aids[r];
                    l = c->aidlen[r];
                } else {
                    id = seg_id(find_seg(c, pt->no), r, &l);
                }
                if (!q->filter(q->filter_ctx, id, l)) {
                    bit_set(ex, r);
                    continue;
                }
            }
            kept++;
        }
    }
    /* Few survivors: score only them instead of scanning every row. */
    if (kept * 8 < total) {
        for (size_t p = 0; p < nparts; p++) {
            part *pt = &parts[p];
            uint64_t cnt = 0;
            for (uint64_t r = 0; r < pt->n; r++)
                cnt += !bit_get(owned[p], r);
            pt->sel = malloc((cnt ? cnt : 1) * sizeof(uint32_t));
            if (!pt->sel)
                return ndb_errmsg_set(msg, NDB_ENOMEM, "filtered search: out of memory");
            pt->nsel = 0;
            for (uint64_t r = 0; r < pt->n; r++)
                if (!bit_get(owned[p], r))
                    pt->sel[pt->nsel++] = (uint32_t)r;
            pt->skip = NULL;
        }
    }
    return NDB_OK;
}

static ndb_status build_results(coll *c, topk *heaps, size_t nq, int with_vectors, ndb_vec_result **out,
                                ndb_errmsg *msg)
{
    ndb_vec_result *res = calloc(nq, sizeof *res);
    if (!res)
        return ndb_errmsg_set(msg, NDB_ENOMEM, "search results: out of memory");
    for (size_t qi = 0; qi < nq; qi++) {
        topk *h = &heaps[qi];
        size_t bytes = h->n * sizeof(ndb_vec_hit) + (with_vectors ? h->n * (size_t)c->dims * 4 : 0);
        for (uint32_t i = 0; i < h->n; i++) {
            const char *id;
            size_t l;
            row_at(c, (idmap_loc){(uint32_t)(h->items[i].key >> 32), (uint32_t)h->items[i].key}, &id, &l);
            bytes += l + 1;
        }
        char *blk = malloc(bytes ? bytes : 1);
        if (!blk) {
            ndb_vec_results_free(res, nq);
            return ndb_errmsg_set(msg, NDB_ENOMEM, "search results: out of memory");
        }
        ndb_vec_hit *hits = (ndb_vec_hit *)blk;
        float *vecs = (float *)(hits + h->n);
        char *ids = (char *)(vecs + (with_vectors ? h->n * (size_t)c->dims : 0));
        for (uint32_t i = 0; i < h->n; i++) {
            const char *id;
            size_t l;
            const float *row =
                row_at(c, (idmap_loc){(uint32_t)(h->items[i].key >> 32), (uint32_t)h->items[i].key}, &id, &l);
            memcpy(ids, id, l);
            ids[l] = 0;
            hits[i].id = ids;
            hits[i].id_len = l;
            hits[i].score = h->items[i].score;
            hits[i].vector = NULL;
            ids += l + 1;
            if (with_vectors) {
                memcpy(vecs, row, (size_t)c->dims * 4);
                hits[i].vector = vecs;
                vecs += c->dims;
            }
        }
        res[qi].n = h->n;
        res[qi].hits = hits;
    }
    *out = res;
    return NDB_OK;
}

ndb_status coll_search(coll *c, const float *queries, size_t nq, uint32_t dims, const ndb_vec_query *q,
                       ndb_vec_result **out, ndb_errmsg *msg)
{
    if (!q || !out)
        return ndb_errmsg_set(msg, NDB_EINVAL, "search options are missing");
    if (!queries || nq == 0)
        return ndb_errmsg_set(msg, NDB_EINVAL, "query vector is missing");
    if (q->k < 1 || q->k > NDB_VEC_MAX_K)
        return ndb_errmsg_set(msg, NDB_EINVAL, "k (limit) must be between 1 and %u, got %u", NDB_VEC_MAX_K, q->k);
    if (q->has_min_score && isnan(q->min_score))
        return ndb_errmsg_set(msg, NDB_EINVAL, "min_score is NaN");
    if (nq > 65536)
        return ndb_errmsg_set(msg, NDB_ETOOBIG, "%zu queries in one batch exceed 65536", nq);
    if (dims != c->dims)
        return ndb_errmsg_set(msg, NDB_EINVAL, "query vector has %u dimensions, collection %s expects %u", dims,
                              c->name, c->dims);
    const kern_ops *k = kern_get();
    const int l2 = c->metric == NDB_VEC_L2;
    const size_t dpad = c->dpad;
    const unsigned width = pool_width(c->env->pool);
    const int batched = nq > 4;
    const size_t nblocks = batched ? (nq + KERN_QBLOCK - 1) / KERN_QBLOCK : 0;
    if ((uint64_t)width * nq * q->k * sizeof(topk_item) > ((uint64_t)1 << 31))
        return ndb_errmsg_set(msg, NDB_ETOOBIG, "k=%u for %zu queries needs too much memory", q->k, nq);
    ndb_status st = NDB_OK;
    float *qp = aligned_alloc(64, nq * dpad * 4);
    float *qt = batched ? aligned_alloc(64, nblocks * dpad * KERN_QBLOCK * 4) : NULL;
    float *qn2 = batched ? calloc(nblocks * KERN_QBLOCK, 4) : NULL;
    float *scratch = batched ? malloc((size_t)width * SCAN_BATCH_SCRATCH * 4) : NULL;
    topk *heaps = calloc((size_t)width * nq, sizeof *heaps);
    topk_item *items = malloc((size_t)width * nq * q->k * sizeof *items);
    part *parts = NULL;
    uint64_t **owned = NULL;
    scan_chunk *chunks = NULL;
    size_t nparts = 0;
    int locked = 0;
    if (!qp || !heaps || !items || (batched && (!qt || !qn2 || !scratch))) {
        st = ndb_errmsg_set(msg, NDB_ENOMEM, "search: out of memory");
        goto out;
    }
    memset(qp, 0, nq * dpad * 4);
    for (size_t qi = 0; qi < nq; qi++) {
        char what[48];
        snprintf(what, sizeof what, nq > 1 ? "query %zu" : "query", qi);
        if ((st = check_vec(c, queries + qi * dims, dims, what, qp + qi * dpad, msg)) != NDB_OK)
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
        topk_init(&heaps[i], items + i * q->k, q->k, floor);

    pthread_rwlock_rdlock(&c->rw);
    locked = 1;
    parts = calloc(c->nsegs + 1, sizeof *parts);
    owned = calloc(c->nsegs + 1, sizeof *owned);
    if (!parts || !owned) {
        st = ndb_errmsg_set(msg, NDB_ENOMEM, "search: out of memory");
        goto out;
    }
    for (size_t i = 0; i < c->nsegs; i++)
        parts[nparts++] = (part){c->segs[i]->no, c->segs[i]->rows, c->segs[i]->nrows,
                                 c->segs[i]->ndead ? c->segs[i]->dead : NULL, NULL, 0};
    if (c->an)
        parts[nparts++] = (part){c->next_no, c->arows, c->an, c->andead ? c->adead : NULL, NULL, 0};
    if ((q->filter || q->allow_ids) && (st = apply_filter(c, parts, nparts, q, owned, msg)) != NDB_OK)
        goto out;
    /* Chunks: about 1 MiB of rows for single queries (many tasks balance the
     * pool), 256 KiB when batched (stays in L2 across query blocks). */
    const uint64_t crow = ((batched ? (256u << 10) : (1u << 20)) / c->stride) + 1;
    size_t nchunks = 0;
    for (size_t p = 0; p < nparts; p++)
        nchunks += ((parts[p].sel ? parts[p].nsel : parts[p].n) + crow - 1) / crow;
    chunks = calloc(nchunks + 1, sizeof *chunks);
    if (!chunks) {
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
            for (uint64_t f = 0; f < pt->n; f += crow)
                chunks[ci++] = (scan_chunk){.rows = pt->rows + f * dpad, .n = pt->n - f < crow ? pt->n - f : crow,
                                            .key0 = key0 + f, .skip = pt->skip, .skip_bit0 = f};
        }
    }
    search_job job = {k, l2, dpad, chunks, ci, nq, qp, nblocks, qt, qn2, heaps, scratch};
    pool_run(c->env->pool, ci, search_task, &job);
    for (size_t qi = 0; qi < nq; qi++) {
        for (unsigned w = 1; w < width; w++)
            topk_merge(&heaps[qi], &heaps[(size_t)w * nq + qi]);
        topk_sort(&heaps[qi]);
    }
    st = build_results(c, heaps, nq, q->with_vectors, out, msg);
out:
    if (locked)
        pthread_rwlock_unlock(&c->rw);
    if (parts)
        for (size_t p = 0; p < nparts; p++)
            free(parts[p].sel);
    if (owned)
        for (size_t p = 0; p < nparts; p++)
            free(owned[p]);
    free(owned);
    free(parts);
    free(chunks);
    free(qp);
    free(qt);
    free(qn2);
    free(scratch);
    free(heaps);
    free(items);
    return st;
}
