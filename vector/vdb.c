/*
 * vdb.c — the handle of ndb_vec.h: vector collections by name over the
 * document layer's NDB_DOC_NS_VECTORS catalog, open/close, create, drop,
 * list, stats, merge; metric names and kernel choice.
 *
 * Thread safety: `lock` guards the table of collections. A caller takes a
 * reference on a collection under it (vdb_acquire) and drops it when done
 * (coll_unref), so dropping a collection never frees it under a caller.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "env.h"
#include "kern.h"
#include "vec_int.h"

/* The handle's background threads: VQ_BUILD writes frozen row sets out as
 * segment files, so writers never wait for one (unless the previous one of
 * their collection is still being written); VQ_INDEX builds graphs, a
 * bounded amount of work per turn, so collections take turns. Each queue
 * links collections through vcoll.qnext[its number]; each queued collection
 * holds a reference. */
typedef struct vqueue {
    pthread_t th;
    int started;
    int no;             /* VQ_BUILD or VQ_INDEX */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    vcoll *head, *tail; /* mu */
    int stop;           /* mu */
} vqueue;

static void enqueue(vqueue *q, vcoll *c)
{
    c->qnext[q->no] = NULL;
    if (q->tail)
        q->tail->qnext[q->no] = c;
    else
        q->head = c;
    q->tail = c;
    pthread_cond_signal(&q->cv);
}

static void *queue_main(void *arg)
{
    vqueue *q = arg;
    hnsw_scratch scratch = {0};
    pthread_mutex_lock(&q->mu);
    for (;;) {
        while (!q->head && !q->stop)
            pthread_cond_wait(&q->cv, &q->mu);
        vcoll *c = q->head;
        if (!c)
            break; /* stopping, and every queued job is done */
        q->head = c->qnext[q->no];
        if (!q->head)
            q->tail = NULL;
        pthread_mutex_unlock(&q->mu);
        bool again = false;
        if (q->no == VQ_BUILD)
            coll_build_frozen(c);
        else
            again = graph_work(c, &scratch);
        pthread_mutex_lock(&q->mu);
        if (again && !q->stop)
            enqueue(q, c); /* keeps its reference */
        else
            coll_unref(c);
    }
    pthread_mutex_unlock(&q->mu);
    hnsw_scratch_free(&scratch);
    return NULL;
}

/* venv.later: queues c (takes a reference). */
static void later(const venv *env, int queue, vcoll *c)
{
    vqueue *q = &env->queues[queue];
    coll_ref(c);
    pthread_mutex_lock(&q->mu);
    enqueue(q, c);
    pthread_mutex_unlock(&q->mu);
}

struct ndb_vec_db {
    venv env;
    vqueue queues[VQ_COUNT];
    int closing;
    vscratch_pool scratch;
    char *dir;
    pthread_rwlock_t lock;
    vcoll **colls; /* sorted by name */
    size_t n, cap;
};

void ndb_vec_options_default(ndb_vec_options *o)
{
    memset(o, 0, sizeof *o);
    o->segment_bytes = 64u << 20;
}

const char *ndb_vec_kernel_name(void) { return kern_get()->name; }

ndb_status ndb_vec_kernel_force(const char *name) { return kern_force(name) == 0 ? NDB_OK : NDB_EINVAL; }

const venv *vdb_env(const ndb_vec_db *db) { return &db->env; }

/* Index of name in db->colls, or where it would go (*found = 0). */
static size_t find(const ndb_vec_db *db, const char *name, int *found)
{
    size_t lo = 0, hi = db->n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        int cmp = strcmp(db->colls[mid]->name, name);
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

static ndb_status insert(ndb_vec_db *db, vcoll *c)
{
    if (db->n == db->cap) {
        size_t ncap = db->cap ? db->cap * 2 : 8;
        vcoll **nc = realloc(db->colls, ncap * sizeof *nc);
        if (!nc)
            return NDB_ENOMEM;
        db->colls = nc;
        db->cap = ncap;
    }
    int found;
    size_t at = find(db, c->name, &found);
    memmove(db->colls + at + 1, db->colls + at, (db->n - at) * sizeof *db->colls);
    db->colls[at] = c;
    db->n++;
    return NDB_OK;
}

ndb_status vdb_acquire(ndb_vec_db *db, const char *name, vcoll **out, ndb_errmsg *msg)
{
    if (!name)
        return ndb_errmsg_set(msg, NDB_EINVAL, "collection name is missing");
    pthread_rwlock_rdlock(&db->lock);
    int found;
    size_t at = find(db, name, &found);
    if (found) {
        *out = db->colls[at];
        coll_ref(*out);
    }
    pthread_rwlock_unlock(&db->lock);
    if (!found)
        return ndb_errmsg_set(msg, NDB_ENOTFOUND, "no vector collection '%.64s' (create it first)", name);
    return NDB_OK;
}

/* Removes every file in dir, then dir (a dropped collection's segments, or a
 * directory no collection owns). */
static void remove_dir(kv_env *fs, const char *dir)
{
    char **names;
    size_t n;
    if (fs->v->list(fs, dir, &names, &n) != NDB_OK)
        return;
    for (size_t i = 0; i < n; i++) {
        char p[4200];
        snprintf(p, sizeof p, "%s/%s", dir, names[i]);
        fs->v->remove(fs, p);
    }
    kv_env_free_list(names, n);
    fs->v->remove(fs, dir);
}

/* Segment directories are named by collection id; the ones no collection
 * owns belong to dropped collections (a drop interrupted by a crash). */
static void remove_orphans(ndb_vec_db *db)
{
    kv_env *fs = db->env.fs;
    char **names;
    size_t n;
    if (fs->v->list(fs, db->dir, &names, &n) != NDB_OK)
        return;
    for (size_t i = 0; i < n; i++) {
        char *end;
        unsigned long long id = strtoull(names[i], &end, 10);
        int owned = 0;
        for (size_t j = 0; j < db->n && !owned; j++)
            owned = db->colls[j]->id == id;
        if (*end == 0 && !owned) {
            char p[4200];
            snprintf(p, sizeof p, "%s/%s", db->dir, names[i]);
            vlog(&db->env, "removing segment directory %s: no vector collection owns it", p);
            remove_dir(fs, p);
        }
    }
    kv_env_free_list(names, n);
}

void ndb_vec_close(ndb_vec_db *db)
{
    if (!db)
        return;
    __atomic_store_n(&db->closing, 1, __ATOMIC_RELEASE); /* graph work stops at its next turn */
    for (int i = 0; i < VQ_COUNT; i++) {
        vqueue *q = &db->queues[i];
        if (q->started) { /* segment builds queued are finished first */
            pthread_mutex_lock(&q->mu);
            q->stop = 1;
            pthread_cond_signal(&q->cv);
            pthread_mutex_unlock(&q->mu);
            pthread_join(q->th, NULL);
        }
        pthread_mutex_destroy(&q->mu);
        pthread_cond_destroy(&q->cv);
    }
    for (size_t i = 0; i < db->n; i++) {
        graph_close(db->colls[i]);
        coll_unref(db->colls[i]);
    }
    free(db->colls);
    for (size_t i = 0; i < db->scratch.n; i++) {
        hnsw_scratch_free(db->scratch.free[i]);
        free(db->scratch.free[i]);
    }
    free(db->scratch.free);
    pthread_mutex_destroy(&db->scratch.mu);
    pool_destroy(db->env.pool);
    ndb_doc_close(db->env.docs);
    free(db->env.ids_only);
    pthread_rwlock_destroy(&db->lock);
    free(db->dir);
    free(db);
}

/* Opens and recovers one collection of the catalog. */
static ndb_status open_coll(ndb_vec_db *db, const char *name, vcoll **out, ndb_errmsg *msg)
{
    vcoll *c;
    ndb_status st = coll_new(&db->env, name, msg, &c);
    if (st == NDB_OK && (st = coll_recover(c, msg)) != NDB_OK) {
        coll_free(c);
        return st;
    }
    if (st == NDB_OK) {
        graph_open(c);
        *out = c;
    }
    return st;
}

ndb_status ndb_vec_open(ndb_kv *kv, ndb_doc_db *docs, const char *dir, const ndb_vec_options *opt, ndb_vec_db **out,
                        ndb_errmsg *msg)
{
    if (!kv || !docs || !dir || !*dir || !out)
        return ndb_errmsg_set(msg, NDB_EINVAL, "ndb_vec_open: kv, documents and a directory are required");
    ndb_vec_db *db = calloc(1, sizeof *db);
    if (!db || !(db->dir = strdup(dir))) {
        free(db);
        return NDB_ENOMEM;
    }
    pthread_rwlock_init(&db->lock, NULL);
    for (int i = 0; i < VQ_COUNT; i++) {
        db->queues[i].no = i;
        pthread_mutex_init(&db->queues[i].mu, NULL);
        pthread_cond_init(&db->queues[i].cv, NULL);
    }
    pthread_mutex_init(&db->scratch.mu, NULL);
    db->env.queues = db->queues;
    db->env.later = later;
    db->env.closing = &db->closing;
    db->env.scratch = &db->scratch;
    ndb_vec_options o;
    ndb_vec_options_default(&o);
    if (opt) {
        o = *opt;
        if (!o.segment_bytes)
            o.segment_bytes = 64u << 20;
    }
    db->env.kv = kv;
    db->env.fs = ndb_kv_env(kv);
    db->env.dir = db->dir;
    db->env.segment_bytes = o.segment_bytes;
    db->env.exact_bytes = o.exact_bytes ? o.exact_bytes : NDB_VEC_EXACT_BYTES;
    db->env.log = o.log;
    db->env.log_ctx = o.log_ctx;
    unsigned threads = o.threads;
    if (threads == 0) {
        long nc = sysconf(_SC_NPROCESSORS_ONLN);
        threads = nc > 0 ? (unsigned)nc : 1;
    }
    if (threads > 256)
        threads = 256;
    ndb_status st = pool_create(threads - 1, &db->env.pool);
    if (st != NDB_OK) {
        ndb_errmsg_set(msg, st, "starting %u search threads failed", threads);
        goto fail;
    }
    if ((st = ndb_doc_open_ns(docs, NDB_DOC_NS_VECTORS, &db->env.docs, msg)) != NDB_OK ||
        (st = ndb_doc_from_json("{\"_id\":1}", 9, &db->env.ids_only, &db->env.ids_only_len, msg)) != NDB_OK)
        goto fail;
    for (int i = 0; i < VQ_COUNT; i++) {
        if (pthread_create(&db->queues[i].th, NULL, queue_main, &db->queues[i]) != 0) {
            st = ndb_errmsg_set(msg, NDB_EIO, "starting the %s thread failed",
                                i == VQ_BUILD ? "segment builder" : "graph builder");
            goto fail;
        }
        db->queues[i].started = 1;
    }
    if ((st = db->env.fs->v->mkdir(db->env.fs, dir)) != NDB_OK) {
        ndb_errmsg_set(msg, st, "cannot create %s", dir);
        goto fail;
    }
    ndb_doc_coll_info *names = NULL;
    size_t n = 0;
    if ((st = ndb_doc_list_collections(db->env.docs, &names, &n, msg)) != NDB_OK)
        goto fail;
    for (size_t i = 0; i < n && st == NDB_OK; i++) {
        vcoll *c;
        if ((st = open_coll(db, names[i].name, &c, msg)) == NDB_OK && (st = insert(db, c)) != NDB_OK)
            coll_unref(c);
    }
    free(names);
    if (st != NDB_OK)
        goto fail;
    remove_orphans(db);
    *out = db;
    return NDB_OK;
fail:
    ndb_vec_close(db);
    return st;
}

/* The catalog entry's metadata: {"dims", "metric", "index" (HNSW only)}. */
static ndb_status build_meta(ndb_doc_builder *b, uint32_t dims, ndb_vec_metric metric, const ndb_vec_index *ix,
                             const void **meta, size_t *len)
{
    const char *mn = ndb_vec_metric_name(metric);
    ndb_doc_builder_reset(b);
    ndb_doc_begin_object(b);
    ndb_doc_key(b, "dims", 4);
    ndb_doc_int(b, dims);
    ndb_doc_key(b, "metric", 6);
    ndb_doc_string(b, mn, strlen(mn));
    if (ix->kind != NDB_VEC_INDEX_EXACT)
        graph_write_meta(b, ix);
    ndb_doc_end_object(b);
    return ndb_doc_builder_finish(b, meta, len);
}

ndb_status ndb_vec_create(ndb_vec_db *db, const char *name, uint32_t dims, ndb_vec_metric metric,
                          const ndb_vec_index *index, ndb_errmsg *msg)
{
    ndb_status st;
    if (dims < 1 || dims > NDB_VEC_MAX_DIMS)
        return ndb_errmsg_set(msg, NDB_EINVAL, "dimensions must be 1 to %u, got %u", NDB_VEC_MAX_DIMS, dims);
    if ((unsigned)metric > NDB_VEC_L2)
        return ndb_errmsg_set(msg, NDB_EINVAL, "unknown metric %d (cosine, dot or l2)", (int)metric);
    ndb_vec_index ix = {.kind = NDB_VEC_INDEX_EXACT};
    if (index && (st = graph_check_index(index, &ix, msg)) != NDB_OK)
        return st;
    ndb_doc_builder *b;
    if (ndb_doc_builder_new(&b) != NDB_OK)
        return NDB_ENOMEM;
    const void *meta;
    size_t mlen;
    pthread_rwlock_wrlock(&db->lock);
    vcoll *c = NULL;
    if ((st = build_meta(b, dims, metric, &ix, &meta, &mlen)) == NDB_OK &&
        (st = ndb_doc_create_collection_ext(db->env.docs, name, meta, mlen, 2, msg)) == NDB_OK &&
        (st = open_coll(db, name, &c, msg)) == NDB_OK && (st = insert(db, c)) != NDB_OK)
        coll_unref(c);
    if (st == NDB_EEXIST)
        ndb_errmsg_set(msg, st, "vector collection '%s' already exists", name);
    pthread_rwlock_unlock(&db->lock);
    ndb_doc_builder_free(b);
    return st;
}

ndb_doc_db *ndb_vec_documents(ndb_vec_db *db) { return db->env.docs; }

ndb_status ndb_vec_expire(ndb_vec_db *db, int64_t now_ms, uint32_t batch, uint64_t max, uint64_t *deleted,
                          ndb_errmsg *msg)
{
    return ndb_doc_expire_by(db->env.docs, now_ms, batch, max, vwrite_delete_matching, db, deleted, msg);
}

ndb_status ndb_vec_set_index(ndb_vec_db *db, const char *name, const ndb_vec_index *index, ndb_errmsg *msg)
{
    ndb_vec_index ix;
    if (!index)
        return ndb_errmsg_set(msg, NDB_EINVAL, "index is missing");
    ndb_status st = graph_check_index(index, &ix, msg);
    vcoll *c = NULL;
    if (st == NDB_OK)
        st = vdb_acquire(db, name, &c, msg);
    if (st != NDB_OK)
        return st;
    ndb_doc_builder *b = NULL;
    ndb_doc_txn *t = NULL;
    const void *meta;
    size_t mlen;
    if ((st = ndb_doc_builder_new(&b)) == NDB_OK && (st = build_meta(b, c->dims, c->metric, &ix, &meta, &mlen)) ==
                                                        NDB_OK)
        st = ndb_doc_txn_begin(db->env.docs, c->name, NULL, &t, msg);
    if (st == NDB_OK) {
        pthread_mutex_lock(&c->wmu);
        if (c->dropped)
            st = ndb_errmsg_set(msg, NDB_ENOTFOUND, "vector collection '%s' was dropped", name);
        else if ((st = ndb_doc_txn_set_meta(t, meta, mlen, msg)) == NDB_OK &&
                 (st = ndb_doc_txn_commit(t, msg)) == NDB_OK) {
            pthread_rwlock_wrlock(&c->rw);
            c->index = ix;
            pthread_rwlock_unlock(&c->rw);
            graph_wake(c, true);
        }
        pthread_mutex_unlock(&c->wmu);
    }
    ndb_status e = ndb_doc_txn_end(t, st == NDB_OK ? msg : NULL);
    ndb_doc_builder_free(b);
    coll_unref(c);
    return st == NDB_OK ? e : st;
}

ndb_status ndb_vec_drop(ndb_vec_db *db, const char *name, ndb_errmsg *msg)
{
    if (!name)
        return ndb_errmsg_set(msg, NDB_EINVAL, "collection name is missing");
    pthread_rwlock_wrlock(&db->lock);
    int found;
    size_t at = find(db, name, &found);
    if (!found) {
        pthread_rwlock_unlock(&db->lock);
        return ndb_errmsg_set(msg, NDB_ENOTFOUND, "no vector collection '%.64s'", name);
    }
    vcoll *c = db->colls[at];
    ndb_status st;
    /* writers check `dropped` once they hold wmu; the document layer's drop
     * then waits for any still inside a transaction */
    pthread_mutex_lock(&c->wmu);
    __atomic_store_n(&c->dropped, 1, __ATOMIC_RELEASE);
    coll_wait_built(c); /* no segment file is being written when the directory goes */
    pthread_mutex_unlock(&c->wmu);
    pthread_mutex_lock(&c->gmu); /* nor a graph file: the index thread's later turns see dropped */
    pthread_mutex_unlock(&c->gmu);
    st = ndb_doc_drop_collection(db->env.docs, name, msg);
    if (st == NDB_OK || st == NDB_ENOTFOUND) {
        memmove(db->colls + at, db->colls + at + 1, (db->n - at - 1) * sizeof *db->colls);
        db->n--;
        st = NDB_OK;
    } else {
        pthread_mutex_lock(&c->wmu);
        __atomic_store_n(&c->dropped, 0, __ATOMIC_RELEASE);
        pthread_mutex_unlock(&c->wmu);
    }
    pthread_rwlock_unlock(&db->lock);
    if (st != NDB_OK)
        return st;
    remove_dir(db->env.fs, c->dir); /* searches in flight keep their mappings */
    coll_unref(c);
    return NDB_OK;
}

ndb_status ndb_vec_list(ndb_vec_db *db, ndb_vec_info **out, size_t *n)
{
    pthread_rwlock_rdlock(&db->lock);
    ndb_vec_info *v = calloc(db->n + 1, sizeof *v);
    ndb_doc_coll_info *docs = NULL;
    size_t nd = 0;
    ndb_status st = v ? ndb_doc_list_collections(db->env.docs, &docs, &nd, NULL) : NDB_ENOMEM;
    for (size_t i = 0; st == NDB_OK && i < db->n; i++) {
        coll_info(db->colls[i], &v[i]);
        for (size_t j = 0; j < nd; j++)
            if (strcmp(docs[j].name, v[i].name) == 0)
                v[i].bytes += docs[j].bytes;
    }
    *n = st == NDB_OK ? db->n : 0;
    pthread_rwlock_unlock(&db->lock);
    free(docs);
    if (st != NDB_OK) {
        free(v);
        return st;
    }
    *out = v;
    return NDB_OK;
}

ndb_status ndb_vec_stats(ndb_vec_db *db, const char *name, ndb_vec_info *out, ndb_errmsg *msg)
{
    vcoll *c;
    ndb_status st = vdb_acquire(db, name, &c, msg);
    if (st != NDB_OK)
        return st;
    coll_info(c, out);
    ndb_doc_coll_info *docs = NULL;
    size_t nd = 0;
    if (ndb_doc_list_collections(db->env.docs, &docs, &nd, NULL) == NDB_OK)
        for (size_t j = 0; j < nd; j++)
            if (strcmp(docs[j].name, name) == 0)
                out->bytes += docs[j].bytes;
    free(docs);
    coll_unref(c);
    return NDB_OK;
}

ndb_status ndb_vec_merge(ndb_vec_db *db, const char *name, ndb_errmsg *msg)
{
    vcoll *c;
    ndb_status st = vdb_acquire(db, name, &c, msg);
    if (st != NDB_OK)
        return st;
    pthread_mutex_lock(&c->wmu);
    coll_wait_built(c);
    st = c->dropped ? ndb_errmsg_set(msg, NDB_ENOTFOUND, "vector collection '%s' was dropped", name)
                    : coll_merge(c, msg);
    pthread_mutex_unlock(&c->wmu);
    coll_unref(c);
    return st;
}
