/*
 * group.h — the $group stage (internal; agg.c pulls its input and hands each
 * document over): groups by the _id expression in a hash table, with one
 * accumulator state per group and output field (accum.c).
 *
 * Beyond its memory bound, the table is written to the sort buffer as records
 * of (group key, serialized states) and emptied, and grouping goes on; at the
 * end the records are read back in key order (spilled to files by the sort
 * buffer when they too pass the bound) and the states of one key, from
 * successive flushes in input order, are merged (accum_merge). A $group that
 * fits its bound answers in its table's order; one that spilled in key order
 * (MongoDB leaves $group's order unspecified).
 */
#ifndef NDB_DOC_GROUP_H
#define NDB_DOC_GROUP_H

#include "accum.h"
#include "doc_int.h"

typedef struct grp {
    expr gid;
    accspec *accs;
    int nacc;
    /* the table */
    bmap groups;         /* group key -> group number */
    dbuf gkeys;          /* group keys, concatenated */
    size_t *gkoff;       /* per group: offset into gkeys; gkoff[g+1] is the end */
    accst *gst;          /* ngroups x nacc */
    size_t ngroups, gcap, gi;
    size_t mem_used, limit;
    /* spilling */
    const char *spill_dir;
    sortbuf sb;
    bool spilled;
    dbuf key, pkey;      /* the group being merged, and the next one read */
    accst *cur, *pend;   /* their states (nacc each) */
    bool have_pend;
} grp;

/* Compiles {"_id": e, "<name>": {"$acc": e}, ...}. */
ndb_status grp_compile(grp *g, const ndb_doc_val *v, ndb_errmsg *msg);
/* Before the first grp_add: the memory bound, where to spill (NULL: beyond
 * the bound is NDB_ELIMIT), the interrupt the sort buffer checks. */
void grp_start(grp *g, size_t limit, const char *spill_dir, const ndb_interrupt *intr);
/* One input document. */
ndb_status grp_add(grp *g, const ndb_doc_val *root, ndb_errmsg *msg);
/* After the last input. */
ndb_status grp_finish(grp *g, ndb_errmsg *msg);
/* Writes the next group's document to b: 1, 0 after the last, or a failure. */
int grp_next(grp *g, ndb_doc_builder *b, ndb_errmsg *msg);
/* Bytes written to spill files. */
uint64_t grp_spilled_bytes(const grp *g);
void grp_free(grp *g);

#endif /* NDB_DOC_GROUP_H */
