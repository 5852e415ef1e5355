/*
 * ndb_interrupt.h — how a caller stops long engine work: a deadline and a
 * cancellation flag.
 *
 * The engines know nothing of gRPC or HTTP: service/ fills one of these from
 * its call and hands it to a read, a count, a pipeline, a vector search or a
 * write (in their options, or as their last argument; NULL: never
 * interrupted). Scans check it every NDB_INTERRUPT_EVERY rows and inside
 * long single steps ($regex matching, sorts, vector chunks), so work stops
 * within a few milliseconds of the deadline instead of running to its end.
 *
 * Writes are all or nothing with respect to it: a write checks it last just
 * before its kv append (ndb_interrupt_check_commit, which also keeps
 * commit_margin_ns in hand for the append, the fsync and the answer's way
 * back) and, once the append has started, finishes and reports success.
 *
 * Thread safety: read-only while the call runs; *cancelled is set by another
 * thread. A vector search reads it from its pool's threads.
 */
#ifndef NDB_INTERRUPT_H
#define NDB_INTERRUPT_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "ndb_status.h"

typedef struct ndb_interrupt {
    int64_t deadline_ns;          /* CLOCK_MONOTONIC; INT64_MAX: none */
    int64_t commit_margin_ns;     /* a write starts its commit only this long before the deadline */
    const atomic_bool *cancelled; /* NULL: cannot be cancelled */
} ndb_interrupt;

/* Rows (or steps) between two checks of the clock in a scan: a clock read
 * costs ~25 ns, a row several hundred. */
#define NDB_INTERRUPT_EVERY 64

/* NDB_ETIMEDOUT once the deadline has passed, else NDB_ECANCELED once
 * *cancelled is set, else NDB_OK (always for NULL). Reads the clock. */
ndb_status ndb_interrupt_check(const ndb_interrupt *in);

/* As ndb_interrupt_check, but NDB_ETIMEDOUT already commit_margin_ns before
 * the deadline: whether a write may start its commit. */
ndb_status ndb_interrupt_check_commit(const ndb_interrupt *in);

/* ndb_interrupt_check on every NDB_INTERRUPT_EVERY-th call with the same
 * counter (*tick, starting at 0); NDB_OK on the others. For scan loops. */
static inline ndb_status ndb_interrupt_poll(const ndb_interrupt *in, uint32_t *tick)
{
    if (in == NULL || (++*tick % NDB_INTERRUPT_EVERY) != 0)
        return NDB_OK;
    return ndb_interrupt_check(in);
}

/* The message for an interrupted status: "<what>: the call's deadline
 * passed" or "<what>: the call was cancelled". Returns st. */
ndb_status ndb_interrupt_msg(ndb_errmsg *msg, ndb_status st, const char *what);

#endif /* NDB_INTERRUPT_H */
