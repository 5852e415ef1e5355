/*
 * outputs.h — the tables a flush or a compaction writes, in key order
 * (internal; db.c drives them). A table ends at its partition's end
 * (ndb_kv_set_partition) and, in compactions, once it reaches
 * sst_target_bytes (the caller decides, with part_changed).
 *
 * Thread safety: one thread per outputs; out_add takes kv->mu briefly for a
 * file number, so the caller must not hold it.
 */
#ifndef KV_OUTPUTS_H
#define KV_OUTPUTS_H

#include "db.h"

typedef struct outputs {
    kv_fmeta **f; /* finished tables (referenced) */
    size_t n, cap;
    kv_table_builder *b; /* the table being written, or NULL */
    uint64_t num;
    char *first, *last; /* internal keys */
    size_t flen, llen, fcap, lcap;
} outputs;

/* Follows the partition of consecutive user keys (ndb_kv_set_partition). */
typedef struct part_track {
    ndb_kv_partition_fn fn;
    char *prev; /* the last key's partition prefix */
    size_t len, cap;
    int started;
} part_track;

/* 1 if uk starts another partition than the last key given (not for the
 * first key), 0 if not, -1 out of memory. */
int part_changed(part_track *t, kv_slice uk);
/* Adds internal key ik to the table being written, starting one if none is. */
ndb_status out_add(ndb_kv *kv, outputs *o, kv_slice ik, kv_slice val);
/* Finishes the table being written (if any) and keeps it in o->f. */
ndb_status finish_output(ndb_kv *kv, outputs *o);
/* Ends the outputs: with st == NDB_OK, finishes the last table and syncs the
 * directory; otherwise (or if that fails) abandons the table being written
 * and removes every file written. The tables stay in o->f either way. */
ndb_status out_end(ndb_kv *kv, outputs *o, ndb_status st);
void out_free(outputs *o);
/* Writes memtable m to tables (none when it is empty): a partition of at
 * least 1/64 of the memtable gets tables of its own, runs of smaller ones
 * share one. */
ndb_status mem_to_tables(ndb_kv *kv, kv_mem *m, outputs *o, ndb_errmsg *msg);

#endif /* KV_OUTPUTS_H */
