/*
 * ingest.c — bulk ingestion (ndb_kv_ingest_*): sorted keys written straight
 * into tables, which are installed at the deepest level in one manifest
 * edit, without passing through the WAL, the memtable or any compaction.
 *
 * Only a key range in which no memtable and no table holds a key may be
 * ingested (a new key prefix: an index being built), checked under mu at
 * install time; then placing the tables anywhere is safe whatever their
 * sequence number, as nothing shares their keys. They go to the deepest level
 * none of whose files' ranges meets theirs (a table of a flush can span the
 * range without a key in it: small partitions share tables), usually the
 * last. Entries carry the sequence current
 * at begin: once installed, every read sees them, and so does a snapshot
 * taken at that sequence (which found the range empty, as an older one
 * would: only the new keys' appearance differs). The tables are synced before the manifest names
 * them; a crash before that leaves files no version names, which the next
 * open deletes (kv_delete_obsolete).
 */
#include <stdlib.h>
#include <string.h>

#include "dbformat.h"
#include "memtable.h"
#include "outputs.h"

struct ndb_kv_ingest {
    ndb_kv *kv;
    uint64_t seq;
    outputs o;
    char *ik; /* the internal key being added */
    size_t ikcap;
    char *prev; /* the last user key added */
    size_t plen, pcap;
    int any;
    int installed; /* the version names the tables */
    int removed;   /* refused: its tables are deleted */
    ndb_status st; /* the first failure, sticky */
};

ndb_status ndb_kv_ingest_begin(ndb_kv *kv, ndb_kv_ingest **out)
{
    ndb_kv_ingest *g = calloc(1, sizeof *g);
    if (g == NULL) return NDB_ENOMEM;
    g->kv = kv;
    g->seq = __atomic_load_n(&kv->last_seq, __ATOMIC_ACQUIRE);
    *out = g;
    return NDB_OK;
}

ndb_status ndb_kv_ingest_add(ndb_kv_ingest *g, const void *key, size_t klen, const void *val, size_t vlen)
{
    if (g->st != NDB_OK) return g->st;
    kv_slice uk = {key, klen};
    if (g->any && slice_cmp(uk, (kv_slice){g->prev, g->plen}) <= 0) return g->st = NDB_EINVAL;
    if (klen + 8 > g->ikcap) {
        size_t nc = klen + 8 + 256;
        char *n = realloc(g->ik, nc);
        if (n == NULL) return g->st = NDB_ENOMEM;
        g->ik = n;
        g->ikcap = nc;
    }
    if (klen) memcpy(g->ik, key, klen);
    put_fixed64(g->ik + klen, ikey_pack(g->seq, KV_TYPE_VALUE));
    ndb_status st = out_add(g->kv, &g->o, (kv_slice){g->ik, klen + 8}, (kv_slice){val, vlen});
    if (st == NDB_OK && kv_table_builder_size(g->o.b) >= g->kv->opt.sst_target_bytes) st = finish_output(g->kv, &g->o);
    if (st == NDB_OK && !kv_slice_keep(&g->prev, &g->pcap, &g->plen, uk)) st = NDB_ENOMEM;
    g->any = 1;
    return g->st = st;
}

/* Whether iterator it (internal keys) holds a key in user range [lo, hi];
 * destroys it. */
static int iter_holds(kv_iter *it, kv_slice lo, kv_slice hi, ndb_status *st)
{
    char *t = it ? malloc(lo.len + 8) : NULL;
    if (t == NULL) {
        if (it) it_destroy(it);
        *st = NDB_ENOMEM;
        return 1;
    }
    memcpy(t, lo.data, lo.len);
    put_fixed64(t + lo.len, ikey_pack(KV_MAX_SEQ, KV_TYPE_SEEK));
    it_seek(it, (kv_slice){t, lo.len + 8});
    int hit = it_valid(it) && slice_cmp(ikey_user(it_key(it)), hi) <= 0;
    if (!hit && it_status(it) != NDB_OK) {
        *st = it_status(it);
        hit = 1;
    }
    free(t);
    it_destroy(it);
    return hit;
}

/* Whether table f holds a key in [lo, hi] (its range may span them
 * without: a flush puts small neighbouring partitions in one table). */
static int file_holds(kv_fmeta *f, kv_slice lo, kv_slice hi, ndb_status *st)
{
    kv_table *t;
    if ((*st = kv_fmeta_table(f, &t, NULL)) != NDB_OK) return 1;
    int hit = iter_holds(kv_table_iter(t, NULL, NULL), lo, hi, st);
    kv_fmeta_table_release(f);
    return hit;
}

/* The level for tables of user range [lo, hi]: the deepest of L1..Ln none of
 * whose files' ranges meets it (files of a level are disjoint), provided no
 * memtable and no table holds a key in it; else -1 (*st set on a failure).
 * The ingested keys are then the only versions of their keys, so any level
 * serves reads alike. mu held. */
static int ingest_level(ndb_kv *kv, kv_slice lo, kv_slice hi, ndb_status *st)
{
    if (iter_holds(kv_mem_iter(kv->mem), lo, hi, st) || (kv->imm && iter_holds(kv_mem_iter(kv->imm), lo, hi, st)))
        return -1;
    kv_version *v = kv->vs->current;
    int level = -1;
    for (int l = 0; l < NDB_KV_LEVELS; l++) {
        kv_fmeta **fs;
        size_t n;
        if ((*st = kv_version_overlaps(v, l, &lo, &hi, &fs, &n)) != NDB_OK) return -1;
        int held = 0;
        for (size_t i = 0; i < n && !held; i++) held = file_holds(fs[i], lo, hi, st);
        free(fs);
        if (held) return -1;
        if (n == 0 && l > 0) level = l;
    }
    return level;
}

ndb_status ndb_kv_ingest_finish(ndb_kv_ingest *g, ndb_errmsg *msg)
{
    ndb_kv *kv = g->kv;
    ndb_status st = out_end(kv, &g->o, g->st);
    if (st != NDB_OK || g->o.n == 0) {
        g->st = st;
        return st == NDB_OK ? st : ndb_errmsg_set(msg, st, "writing ingested tables: %s", ndb_strerror(st));
    }
    kv_slice lo = ikey_user((kv_slice){g->o.f[0]->smallest, g->o.f[0]->slen});
    kv_slice hi = ikey_user((kv_slice){g->o.f[g->o.n - 1]->largest, g->o.f[g->o.n - 1]->llen});
    int level;
    pthread_mutex_lock(&kv->mu);
    if (__atomic_load_n(&kv->poisoned, __ATOMIC_ACQUIRE)) {
        st = ndb_errmsg_set(msg, NDB_EPOISONED, "the storage engine stopped accepting writes");
    } else if ((level = ingest_level(kv, lo, hi, &st)) < 0) {
        if (st == NDB_OK)
            st = ndb_errmsg_set(msg, NDB_EBUSY, "the ingested keys' range already holds data");
    } else {
        kv_edit e;
        kv_edit_init(&e);
        for (size_t i = 0; i < g->o.n && st == NDB_OK; i++) st = kv_edit_add_file(&e, level, g->o.f[i]);
        if (st == NDB_OK) st = kv_install(kv, &e, msg);
        kv_edit_destroy(&e);
        if (st == NDB_OK) pthread_cond_broadcast(&kv->bg_cv); /* the levels' sizes changed */
    }
    pthread_mutex_unlock(&kv->mu);
    if (st != NDB_OK) { /* nothing names the tables: remove them */
        out_end(kv, &g->o, st);
        g->removed = 1;
        if (st == NDB_ENOMEM) ndb_errmsg_set(msg, st, "installing ingested tables: out of memory");
    } else {
        g->installed = 1;
    }
    g->st = st == NDB_OK ? NDB_EINVAL : st; /* finished: no more adds */
    return st;
}

void ndb_kv_ingest_free(ndb_kv_ingest *g)
{
    if (g == NULL) return;
    if (!g->installed && !g->removed && (g->o.b != NULL || g->o.n > 0))
        out_end(g->kv, &g->o, NDB_ECANCELED); /* abandoned: remove its files */
    out_free(&g->o);
    free(g->ik);
    free(g->prev);
    free(g);
}
