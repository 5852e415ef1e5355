/*
 * accum.h — $group's accumulators (internal; agg.c's $group stage uses them):
 * $sum $avg $min $max $count $push $addToSet $first $last.
 *
 * An accspec is one compiled "<name>": {"$op": <expression>} entry of a
 * $group; an accst is its running state for one group. $sum stays an exact
 * integer until it would overflow or meets a double; $min/$max skip missing
 * and null values; $first/$last keep a missing value as null.
 *
 * Thread safety: an accspec is used by one thread (its expression owns
 * scratch storage).
 */
#ifndef NDB_DOC_ACCUM_H
#define NDB_DOC_ACCUM_H

#include "doc_int.h"
#include "expr.h"

typedef enum aop { A_SUM, A_AVG, A_MIN, A_MAX, A_COUNT, A_PUSH, A_ADDTOSET, A_FIRST, A_LAST } aop;

typedef struct accspec {
    aop op;
    const char *name; /* the output field (borrowed from the pipeline) */
    size_t nlen;
    expr ex;
} accspec;

typedef struct accst {
    int64_t i;
    double d;
    bool dbl, has;
    uint64_t n;
    dbuf v;       /* min/max/first/last: one value; push/addToSet: concatenated values */
    uint32_t cnt;
} accst;

/* Compiles the entry name: spec of a $group into a (zeroed by the caller;
 * cleared with accum_clear, also on failure). */
ndb_status accum_compile(accspec *a, const char *name, size_t nlen, const ndb_doc_val *spec, ndb_errmsg *msg);
/* Adds root's value for a to the group's state st (zeroed for a new group),
 * keeping *mem (bytes held) up to date: 0, or a negative ndb_status. */
int accum_add(accspec *a, accst *st, const ndb_doc_val *root, size_t *mem, ndb_errmsg *msg);
/* Appends the group's result for a to b. */
void accum_out(const accspec *a, const accst *st, ndb_doc_builder *b);
void accum_clear(accspec *a);
void accum_state_clear(accst *st);

/* A spilling $group (agg.c) writes a group's partial states to a run and
 * merges the runs' states for one key in the order the runs were written,
 * which is input order: $first keeps the earlier, $last the later, $push
 * concatenates, $addToSet unites, the rest add up or compare. */
void accum_state_put(const accst *st, dbuf *out);
/* Reads a state written by accum_state_put into st (zeroed): the byte after
 * it, or NULL on bad bytes. */
const uint8_t *accum_state_get(accst *st, const uint8_t *p, const uint8_t *end);
/* Folds `later` (a state from a later run) into st. */
void accum_merge(const accspec *a, accst *st, const accst *later);

#endif /* NDB_DOC_ACCUM_H */
