/* store.c — the public API of ndb_vec.h: a directory of collections. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "coll.h"
#include "kern.h"
#include "ndb_vec.h"
#include "pool.h"
#include "vio.h"

/*
 * Thread safety: `lock` guards the collection list. A caller takes a
 * reference on a collection under it (acquire) and drops the reference when
 * done (release), so dropping a collection never frees it under a caller.
 */
struct ndb_vec_store {
    char *dir;
    int lock_fd;
    ndb_vec_options opt;
    coll_env env;
    pthread_rwlock_t lock;
    coll **colls; /* sorted by name */
    size_t n, cap;
    uint64_t drop_seq;
};

void ndb_vec_options_default(ndb_vec_options *o)
{
    o->threads = 0;
    o->segment_bytes = 64u << 20;
    o->sync = 1;
}

const char *ndb_vec_kernel_name(void) { return kern_get()->name; }

ndb_status ndb_vec_kernel_force(const char *name)
{
    return kern_force(name) == 0 ? NDB_OK : NDB_EINVAL;
}

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

static ndb_status check_name(const char *name, ndb_errmsg *msg)
{
    if (!name || !*name)
        return ndb_errmsg_set(msg, NDB_EINVAL, "collection name is empty");
    size_t l = strnlen(name, NDB_VEC_MAX_NAME + 1);
    if (l > NDB_VEC_MAX_NAME)
        return ndb_errmsg_set(msg, NDB_EINVAL, "collection name is longer than %u characters", NDB_VEC_MAX_NAME);
    if (name[0] == '.')
        return ndb_errmsg_set(msg, NDB_EINVAL, "collection name %s starts with '.'", name);
    for (size_t i = 0; i < l; i++) {
        char ch = name[i];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') || ch == '_' ||
              ch == '-' || ch == '.'))
            return ndb_errmsg_set(msg, NDB_EINVAL, "collection name %.64s has a character outside [A-Za-z0-9_.-]",
                                  name);
    }
    return NDB_OK;
}

/* Index of name in s->colls, or where it would go (*found = 0). */
static size_t find_coll(const ndb_vec_store *s, const char *name, int *found)
{
    size_t lo = 0, hi = s->n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        int cmp = strcmp(s->colls[mid]->name, name);
        if (cmp == 0) {
            *found = 1;
            return mid;
        }
        if (cmp < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    *found = 0;
    return lo;
}

static ndb_status insert_coll(ndb_vec_store *s, coll *c)
{
    if (s->n == s->cap) {
        size_t ncap = s->cap ? s->cap * 2 : 8;
        coll **nc = realloc(s->colls, ncap * sizeof *nc);
        if (!nc)
            return NDB_ENOMEM;
        s->colls = nc;
        s->cap = ncap;
    }
    int found;
    size_t at = find_coll(s, c->name, &found);
    memmove(s->colls + at + 1, s->colls + at, (s->n - at) * sizeof *s->colls);
    s->colls[at] = c;
    s->n++;
    return NDB_OK;
}

static void release(coll *c)
{
    if (__atomic_sub_fetch(&c->refs, 1, __ATOMIC_ACQ_REL) == 0)
        coll_free(c);
}

static ndb_status acquire(ndb_vec_store *s, const char *name, coll **out, ndb_errmsg *msg)
{
    if (!s)
        return ndb_errmsg_set(msg, NDB_EINVAL, "store is NULL");
    if (!name)
        return ndb_errmsg_set(msg, NDB_EINVAL, "collection name is missing");
    pthread_rwlock_rdlock(&s->lock);
    int found;
    size_t at = find_coll(s, name, &found);
    if (found) {
        *out = s->colls[at];
        __atomic_add_fetch(&(*out)->refs, 1, __ATOMIC_ACQ_REL);
    }
    pthread_rwlock_unlock(&s->lock);
    if (!found)
        return ndb_errmsg_set(msg, NDB_ENOTFOUND, "vector collection %.64s does not exist", name);
    return NDB_OK;
}

void ndb_vec_close(ndb_vec_store *s)
{
    if (!s)
        return;
    for (size_t i = 0; i < s->n; i++)
        release(s->colls[i]);
    free(s->colls);
    pool_destroy(s->env.pool);
    if (s->lock_fd >= 0)
        close(s->lock_fd); /* releases the flock */
    pthread_rwlock_destroy(&s->lock);
    free(s->dir);
    free(s);
}

ndb_status ndb_vec_open(const char *dir, const ndb_vec_options *opt, ndb_vec_store **out, ndb_errmsg *msg)
{
    if (!dir || !*dir || !out)
        return ndb_errmsg_set(msg, NDB_EINVAL, "vector store directory is missing");
    ndb_vec_store *s = calloc(1, sizeof *s);
    if (!s || !(s->dir = strdup(dir))) {
        free(s);
        return ndb_errmsg_set(msg, NDB_ENOMEM, "open %s: out of memory", dir);
    }
    s->lock_fd = -1;
    pthread_rwlock_init(&s->lock, NULL);
    ndb_vec_options_default(&s->opt);
    if (opt) {
        s->opt = *opt;
        if (!s->opt.segment_bytes)
            s->opt.segment_bytes = 64u << 20;
    }
    ndb_status st;
    if (mkdir(dir, 0755) != 0 && errno != EEXIST) {
        st = ndb_errmsg_set(msg, NDB_EIO, "mkdir %s: %s", dir, strerror(errno));
        goto fail;
    }
    char lockpath[4096];
    if (snprintf(lockpath, sizeof lockpath, "%s/LOCK", dir) >= (int)sizeof lockpath) {
        st = ndb_errmsg_set(msg, NDB_EINVAL, "directory path %s is too long", dir);
        goto fail;
    }
    if ((st = vio_open(lockpath, O_RDWR | O_CREAT, 0644, &s->lock_fd, msg)) != NDB_OK)
        goto fail;
    if (flock(s->lock_fd, LOCK_EX | LOCK_NB) != 0) {
        st = ndb_errmsg_set(msg, NDB_EBUSY, "vector store %s is in use by another process", dir);
        goto fail;
    }
    unsigned threads = s->opt.threads;
    if (threads == 0) {
        long nc = sysconf(_SC_NPROCESSORS_ONLN);
        threads = nc > 0 ? (unsigned)nc : 1;
    }
    if (threads > 256)
        threads = 256;
    if ((st = pool_create(threads - 1, &s->env.pool)) != NDB_OK) {
        st = ndb_errmsg_set(msg, st, "starting %u search threads failed", threads);
        goto fail;
    }
    s->env.segment_bytes = s->opt.segment_bytes;
    s->env.sync = s->opt.sync;
    DIR *d = opendir(dir);
    if (!d) {
        st = ndb_errmsg_set(msg, NDB_EIO, "opendir %s: %s", dir, strerror(errno));
        goto fail;
    }
    struct dirent *e;
    st = NDB_OK;
    while (st == NDB_OK && (e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.') {
            if (strncmp(e->d_name, ".trash-", 7) == 0 || strncmp(e->d_name, ".creating-", 10) == 0) {
                /* a drop or create interrupted by a crash */
                char p[4096];
                if (snprintf(p, sizeof p, "%s/%s", dir, e->d_name) < (int)sizeof p)
                    vio_remove_tree(p, NULL);
            }
            continue;
        }
        char p[4096];
        struct stat stt;
        if (snprintf(p, sizeof p, "%s/%s", dir, e->d_name) >= (int)sizeof p || stat(p, &stt) != 0 ||
            !S_ISDIR(stt.st_mode) || check_name(e->d_name, NULL) != NDB_OK)
            continue;
        coll *c;
        if ((st = coll_open(dir, e->d_name, &s->env, &c, msg)) == NDB_OK && (st = insert_coll(s, c)) != NDB_OK) {
            coll_free(c);
            st = ndb_errmsg_set(msg, NDB_ENOMEM, "open %s: out of memory", dir);
        }
    }
    closedir(d);
    if (st != NDB_OK)
        goto fail;
    *out = s;
    return NDB_OK;
fail:
    ndb_vec_close(s);
    return st;
}

ndb_status ndb_vec_create(ndb_vec_store *s, const char *name, uint32_t dims, ndb_vec_metric metric, ndb_errmsg *msg)
{
    if (!s)
        return ndb_errmsg_set(msg, NDB_EINVAL, "store is NULL");
    ndb_status st = check_name(name, msg);
    if (st != NDB_OK)
        return st;
    if (dims < 1 || dims > NDB_VEC_MAX_DIMS)
        return ndb_errmsg_set(msg, NDB_EINVAL, "dimensions must be between 1 and %u, got %u", NDB_VEC_MAX_DIMS,
                              dims);
    if ((unsigned)metric > NDB_VEC_L2)
        return ndb_errmsg_set(msg, NDB_EINVAL, "unknown metric %d (cosine, dot or l2)", (int)metric);
    pthread_rwlock_wrlock(&s->lock);
    int found;
    find_coll(s, name, &found);
    coll *c = NULL;
    if (found)
        st = ndb_errmsg_set(msg, NDB_EEXIST, "vector collection %s already exists", name);
    else if ((st = coll_create(s->dir, name, dims, (uint32_t)metric, &s->env, &c, msg)) == NDB_OK &&
             insert_coll(s, c) != NDB_OK) {
        coll_free(c);
        st = ndb_errmsg_set(msg, NDB_ENOMEM, "create %s: out of memory", name);
    }
    pthread_rwlock_unlock(&s->lock);
    return st;
}

ndb_status ndb_vec_drop(ndb_vec_store *s, const char *name, ndb_errmsg *msg)
{
    if (!s || !name)
        return ndb_errmsg_set(msg, NDB_EINVAL, "store or collection name is missing");
    pthread_rwlock_wrlock(&s->lock);
    int found;
    size_t at = find_coll(s, name, &found);
    if (!found) {
        pthread_rwlock_unlock(&s->lock);
        return ndb_errmsg_set(msg, NDB_ENOTFOUND, "vector collection %.64s does not exist", name);
    }
    coll *c = s->colls[at];
    /* Stop writers first: after this no one writes into the directory. */
    pthread_mutex_lock(&c->wmu);
    char trash[4096];
    snprintf(trash, sizeof trash, "%s/.trash-%s-%llu", s->dir, c->name, (unsigned long long)++s->drop_seq);
    ndb_status st = vio_rename(c->dir, trash, msg);
    if (st == NDB_OK) {
        c->dropped = 1;
        memmove(s->colls + at, s->colls + at + 1, (s->n - at - 1) * sizeof *s->colls);
        s->n--;
    }
    pthread_mutex_unlock(&c->wmu);
    pthread_rwlock_unlock(&s->lock);
    if (st != NDB_OK)
        return st;
    (void)vio_fsync_dir(s->dir, NULL);
    (void)vio_remove_tree(trash, NULL); /* searches in flight keep their mappings */
    release(c);
    return NDB_OK;
}

ndb_status ndb_vec_list(ndb_vec_store *s, ndb_vec_info **out, size_t *n)
{
    if (!s || !out || !n)
        return NDB_EINVAL;
    pthread_rwlock_rdlock(&s->lock);
    ndb_vec_info *v = calloc(s->n + 1, sizeof *v);
    if (v)
        for (size_t i = 0; i < s->n; i++)
            coll_info(s->colls[i], &v[i]);
    *n = v ? s->n : 0;
    pthread_rwlock_unlock(&s->lock);
    *out = v;
    return v ? NDB_OK : NDB_ENOMEM;
}

ndb_status ndb_vec_stats(ndb_vec_store *s, const char *name, ndb_vec_info *out, ndb_errmsg *msg)
{
    coll *c;
    ndb_status st = acquire(s, name, &c, msg);
    if (st != NDB_OK)
        return st;
    if (out)
        coll_info(c, out);
    release(c);
    return out ? NDB_OK : NDB_EINVAL;
}

ndb_status ndb_vec_insert(ndb_vec_store *s, const char *name, const char *id, const float *vector, uint32_t dims,
                          ndb_errmsg *msg)
{
    ndb_vec_item it = {id, vector};
    return ndb_vec_insert_many(s, name, &it, 1, dims, 0, msg);
}

ndb_status ndb_vec_upsert(ndb_vec_store *s, const char *name, const char *id, const float *vector, uint32_t dims,
                          ndb_errmsg *msg)
{
    ndb_vec_item it = {id, vector};
    return ndb_vec_insert_many(s, name, &it, 1, dims, 1, msg);
}

ndb_status ndb_vec_insert_many(ndb_vec_store *s, const char *name, const ndb_vec_item *items, size_t n,
                               uint32_t dims, int upsert, ndb_errmsg *msg)
{
    coll *c;
    ndb_status st = acquire(s, name, &c, msg);
    if (st != NDB_OK)
        return st;
    st = coll_write(c, items, n, dims, upsert, msg);
    release(c);
    return st;
}

ndb_status ndb_vec_get(ndb_vec_store *s, const char *name, const char *id, float *vector, uint32_t cap,
                       uint32_t *dims_out, ndb_errmsg *msg)
{
    coll *c;
    ndb_status st = acquire(s, name, &c, msg);
    if (st != NDB_OK)
        return st;
    if (dims_out)
        *dims_out = c->dims;
    st = coll_get(c, id, vector, cap, msg);
    release(c);
    return st;
}

ndb_status ndb_vec_delete(ndb_vec_store *s, const char *name, const char *id, ndb_errmsg *msg)
{
    coll *c;
    ndb_status st = acquire(s, name, &c, msg);
    if (st != NDB_OK)
        return st;
    st = coll_delete(c, id, msg);
    release(c);
    return st;
}

ndb_status ndb_vec_merge(ndb_vec_store *s, const char *name, ndb_errmsg *msg)
{
    coll *c;
    ndb_status st = acquire(s, name, &c, msg);
    if (st != NDB_OK)
        return st;
    st = coll_merge(c, msg);
    release(c);
    return st;
}

ndb_status ndb_vec_search(ndb_vec_store *s, const char *name, const float *query, uint32_t dims,
                          const ndb_vec_query *q, ndb_vec_result **out, ndb_errmsg *msg)
{
    return ndb_vec_search_batch(s, name, query, 1, dims, q, out, msg);
}

ndb_status ndb_vec_search_batch(ndb_vec_store *s, const char *name, const float *queries, size_t nq, uint32_t dims,
                                const ndb_vec_query *q, ndb_vec_result **out, ndb_errmsg *msg)
{
    coll *c;
    ndb_status st = acquire(s, name, &c, msg);
    if (st != NDB_OK)
        return st;
    st = coll_search(c, queries, nq, dims, q, out, msg);
    release(c);
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
