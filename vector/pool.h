/*
 * pool.h — a fixed worker pool for data-parallel scans.
 *
 * pool_run() splits a job into ntasks numbered tasks; the pool's threads and
 * the calling thread take tasks from a shared counter until none are left,
 * then pool_run() returns. Each task is told which participant runs it
 * (0 = the caller, 1..nworkers = pool threads) so it can use per-participant
 * scratch without locks.
 *
 * Thread safety: pool_run() may be called from many threads at once; one job
 * runs on the pool at a time, and a caller that finds the pool busy runs its
 * whole job itself (participant 0) rather than waiting.
 * Invariants: a job's fn is never called after pool_run() returned.
 */
#ifndef NDB_VEC_POOL_H
#define NDB_VEC_POOL_H

#include <stddef.h>

#include "ndb_status.h"

typedef struct pool pool;
typedef void (*pool_fn)(void *ctx, size_t task, unsigned participant);

/* nworkers extra threads (0 is valid: everything runs on the caller).
 * Caller frees with pool_destroy. */
ndb_status pool_create(unsigned nworkers, pool **out);
void pool_destroy(pool *p);
/* Participants a job can have: nworkers + 1. */
unsigned pool_width(const pool *p);
void pool_run(pool *p, size_t ntasks, pool_fn fn, void *ctx);

#endif /* NDB_VEC_POOL_H */
