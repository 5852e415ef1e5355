/*
 * resume.c — what a poisoned engine says about itself (ndb_kv_health_get) and
 * lifting a poison whose cause can clear, a full disk or too many open files
 * (ndb_kv_resume); see README.md, "Poisoning".
 */
#include <stdio.h>
#include <string.h>

#include "db.h"

void ndb_kv_health_get(ndb_kv *kv, ndb_kv_health *out)
{
    memset(out, 0, sizeof *out);
    if (kv == NULL) return;
    pthread_mutex_lock(&kv->mu);
    out->poisoned = kv->poisoned;
    if (kv->poisoned) {
        out->cause = kv->bg_error;
        out->recoverable = kv_poison_recoverable(kv);
        memcpy(out->reason, kv->poison_msg.text, sizeof out->reason);
    }
    pthread_mutex_unlock(&kv->mu);
}

/* ndb_kv_resume after an open that could not write the replayed WAL out: does
 * it now, then starts a fresh memtable. wmu and mu held. */
static ndb_status finish_open(ndb_kv *kv, ndb_errmsg *msg)
{
    kv_mem *nm = kv_mem_new(kv->arena_block, kv->mem_filter_bytes);
    if (nm == NULL) return ndb_errmsg_set(msg, NDB_ENOMEM, "out of memory");
    kv_edit e;
    kv_edit_init(&e);
    ndb_status st = kv_write_out_recovered(kv, kv->mem, &e, msg);
    kv_edit_destroy(&e);
    if (st != NDB_OK) {
        kv_mem_unref(nm);
        return st;
    }
    kv_mem *old = kv->mem; /* on disk now; readers still holding it keep their reference */
    kv->mem = nm;
    kv_mem_unref(old);
    kv->deferred_open = 0;
    __atomic_add_fetch(&kv->version_gen, 1, __ATOMIC_RELEASE);
    kv_segments_delete_below(kv, kv->wal_number);
    return NDB_OK;
}

ndb_status ndb_kv_resume(ndb_kv *kv, ndb_errmsg *msg)
{
    ndb_errmsg local = {{0}};
    if (msg == NULL) msg = &local; /* a failed step's text becomes the poison's */
    if (kv == NULL) return ndb_errmsg_set(msg, NDB_EINVAL, "no handle");
    /* A flush or compaction that began before the poison ends first (none
     * begins while poisoned); waited for before taking wmu, so that writers
     * meanwhile get NDB_EPOISONED at once instead of waiting too. Again if
     * another resume lifted the poison meanwhile and it came back. */
    for (;;) {
        pthread_mutex_lock(&kv->mu);
        while (kv->poisoned && (kv->flushing || kv->compacting)) pthread_cond_wait(&kv->bg_cv, &kv->mu);
        pthread_mutex_unlock(&kv->mu);
        pthread_mutex_lock(&kv->wmu);
        pthread_mutex_lock(&kv->mu);
        if (!kv->poisoned || !(kv->flushing || kv->compacting)) break;
        pthread_mutex_unlock(&kv->mu);
        pthread_mutex_unlock(&kv->wmu);
    }
    ndb_status st = NDB_OK;
    if (!kv->poisoned) goto out;
    if (!kv_poison_recoverable(kv)) {
        st = ndb_errmsg_set(msg, NDB_EPOISONED, "%.200s: not retried; reopen to recover", kv->poison_msg.text);
        goto out;
    }
    if (kv->deferred_open) {
        st = finish_open(kv, msg);
    } else {
        /* a fresh manifest first: it needs space, and leaves nothing behind
         * when there is none; the one in use may end in half a record */
        uint64_t s = __atomic_load_n(&kv->last_seq, __ATOMIC_ACQUIRE);
        if (s > kv->vs->last_seq) kv->vs->last_seq = s;
        st = kv_vset_new_manifest(kv->vs, msg);
        if (st == NDB_OK) st = kv_write_reopen_wal(kv, msg);
    }
    if (st != NDB_OK) {
        char what[200];
        snprintf(what, sizeof what, "resuming writes: %.170s", msg->text);
        if (st != kv->bg_error)
            kv_poison_again(kv, st, what); /* another cause now */
        else
            kv_poison(kv, st, what); /* the same: the first failure stays the reason */
        goto out;
    }
    /* the tables a failed flush or compaction left: the manifest in use,
     * written just now, does not name them (the previous one might have) */
    kv_delete_obsolete(kv);
    ndb_errmsg_set(&kv->err, NDB_OK, "writes resumed after: %.200s", kv->poison_msg.text);
    kv->bg_error = NDB_OK;
    kv->poison_msg.text[0] = 0;
    __atomic_store_n(&kv->poisoned, 0, __ATOMIC_RELAXED);
    pthread_cond_broadcast(&kv->bg_cv);
out:
    pthread_mutex_unlock(&kv->mu);
    pthread_mutex_unlock(&kv->wmu);
    return st;
}

