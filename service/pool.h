/*
 * pool.h — a fixed set of threads running calls that may block (fsync, scans),
 * so the gRPC completion-queue threads never wait on the engine.
 *
 * Thread safety: submit from any thread. The queue is bounded: a full queue
 * refuses work (NDB_ELIMIT) instead of growing without limit.
 */
#ifndef SVC_POOL_H
#define SVC_POOL_H

#include <stddef.h>

#include "ndb_status.h"

typedef struct svc_pool svc_pool;

ndb_status svc_pool_start(int threads, size_t max_queue, svc_pool **out, ndb_errmsg *msg);

/* Queues fn(arg); NDB_ELIMIT when the queue is full, NDB_ECLOSED after stop. */
ndb_status svc_pool_submit(svc_pool *p, void (*fn)(void *), void *arg);

/* Runs what is queued, then joins the threads and frees the pool. */
void svc_pool_stop(svc_pool *p);

#endif /* SVC_POOL_H */
