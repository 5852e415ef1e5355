/* outputs.c — writing tables for flushes and compactions; see outputs.h. */
#include "outputs.h"

#include <stdlib.h>
#include <string.h>

#include "dbformat.h"

int part_changed(part_track *t, kv_slice uk)
{
    size_t n = t->fn ? t->fn(uk.data, uk.len) : 0;
    if (n > uk.len) n = uk.len;
    if (t->started && n == t->len && (n == 0 || memcmp(uk.data, t->prev, n) == 0)) return 0;
    int changed = t->started;
    t->started = 1;
    return kv_slice_keep(&t->prev, &t->cap, &t->len, (kv_slice){uk.data, n}) ? changed : -1;
}

ndb_status out_add(ndb_kv *kv, outputs *o, kv_slice ik, kv_slice val)
{
    if (o->b == NULL) {
        pthread_mutex_lock(&kv->mu);
        o->num = kv->vs->next_file++;
        pthread_mutex_unlock(&kv->mu);
        char path[4096];
        kv_file_path(kv, path, sizeof path, o->num, "sst");
        ndb_status st = kv_table_builder_new(kv->env, path, &kv->topts, &o->b);
        if (st != NDB_OK) return st;
        if (!kv_slice_keep(&o->first, &o->fcap, &o->flen, ik)) return NDB_ENOMEM;
    }
    ndb_status st = kv_table_builder_add(o->b, ik, val);
    if (st == NDB_OK && !kv_slice_keep(&o->last, &o->lcap, &o->llen, ik)) st = NDB_ENOMEM;
    return st;
}

ndb_status finish_output(ndb_kv *kv, outputs *o)
{
    if (o->b == NULL) return NDB_OK;
    uint64_t size;
    ndb_status st = kv_table_builder_finish(o->b, &size);
    o->b = NULL;
    if (st != NDB_OK) return st;
    __atomic_add_fetch(&kv->st_sst_bytes, size, __ATOMIC_RELAXED);
    if (o->n == o->cap) {
        size_t nc = o->cap ? o->cap * 2 : 8;
        kv_fmeta **nf = realloc(o->f, nc * sizeof *nf);
        if (nf == NULL) return NDB_ENOMEM;
        o->f = nf;
        o->cap = nc;
    }
    kv_fmeta *f = kv_fmeta_new(kv->vs, o->num, size, (kv_slice){o->first, o->flen}, (kv_slice){o->last, o->llen});
    if (f == NULL) return NDB_ENOMEM;
    o->f[o->n++] = f;
    return NDB_OK;
}

ndb_status out_end(ndb_kv *kv, outputs *o, ndb_status st)
{
    if (st == NDB_OK) st = finish_output(kv, o);
    if (st == NDB_OK) st = kv->env->v->sync_dir(kv->env, kv->dir);
    if (st == NDB_OK) return NDB_OK;
    char path[4096];
    if (o->b) {
        kv_table_builder_abandon(o->b);
        o->b = NULL;
        kv_file_path(kv, path, sizeof path, o->num, "sst");
        kv->env->v->remove(kv->env, path);
    }
    for (size_t i = 0; i < o->n; i++) {
        kv_file_path(kv, path, sizeof path, o->f[i]->number, "sst");
        kv->env->v->remove(kv->env, path);
    }
    return st;
}

void out_free(outputs *o)
{
    for (size_t i = 0; i < o->n; i++) kv_fmeta_unref(o->f[i]);
    free(o->f);
    free(o->first);
    free(o->last);
}

/* A flush's partitions in key order and their bytes: cut[i] says whether
 * run i starts a table of its own. */
typedef struct flush_plan {
    unsigned char *cut;
    size_t n, cap;
} flush_plan;

/* Plans where a flush cuts its tables: a partition of at least min bytes
 * gets tables of its own; runs of smaller neighbours share one, so a
 * memtable touching many small partitions writes few tables. */
static ndb_status plan_flush(kv_iter *it, ndb_kv_partition_fn fn, uint64_t min, flush_plan *p)
{
    memset(p, 0, sizeof *p);
    uint64_t *bytes = NULL;
    part_track t = {.fn = fn};
    ndb_status st = NDB_OK;
    for (it_seek_first(it); it_valid(it); it_next(it)) {
        int ch = part_changed(&t, ikey_user(it_key(it)));
        if (ch < 0) {
            st = NDB_ENOMEM;
            break;
        }
        if (ch || p->n == 0) {
            if (p->n == p->cap) {
                size_t nc = p->cap ? p->cap * 2 : 16;
                uint64_t *nb = realloc(bytes, nc * sizeof *nb);
                if (nb) bytes = nb;
                unsigned char *ncut = nb ? realloc(p->cut, nc) : NULL;
                if (ncut == NULL) {
                    st = NDB_ENOMEM;
                    break;
                }
                p->cut = ncut;
                p->cap = nc;
            }
            bytes[p->n++] = 0;
        }
        bytes[p->n - 1] += it_key(it).len + it_value(it).len;
    }
    if (st == NDB_OK) st = it_status(it);
    for (size_t i = 0; st == NDB_OK && i < p->n; i++)
        p->cut[i] = i > 0 && (bytes[i] >= min || bytes[i - 1] >= min);
    free(bytes);
    free(t.prev);
    if (st != NDB_OK) {
        free(p->cut);
        memset(p, 0, sizeof *p);
    }
    return st;
}

/* Writes memtable m to tables (none when it is empty), cut as plan_flush
 * says. mu released. */
ndb_status mem_to_tables(ndb_kv *kv, kv_mem *m, outputs *o, ndb_errmsg *msg)
{
    memset(o, 0, sizeof *o);
    part_track t = {.fn = __atomic_load_n(&kv->partition, __ATOMIC_ACQUIRE)};
    kv_iter *it = kv_mem_iter(m);
    if (it == NULL) return NDB_ENOMEM;
    flush_plan plan;
    ndb_status st = plan_flush(it, t.fn, kv->opt.memtable_bytes / 64, &plan);
    size_t run = 0; /* the partition run of the last key added */
    for (it_seek_first(it); st == NDB_OK && it_valid(it); it_next(it)) {
        kv_slice ik = it_key(it);
        int ch = part_changed(&t, ikey_user(ik));
        if (ch < 0) st = NDB_ENOMEM;
        else if (ch && ++run < plan.n && plan.cut[run]) st = finish_output(kv, o);
        if (st == NDB_OK) st = out_add(kv, o, ik, it_value(it));
    }
    if (st == NDB_OK) st = it_status(it);
    it_destroy(it);
    free(plan.cut);
    free(t.prev);
    st = out_end(kv, o, st);
    if (st != NDB_OK)
        return ndb_errmsg_set(msg, st, "writing the memtable to table %06llu.sst failed", (unsigned long long)o->num);
    return NDB_OK;
}
