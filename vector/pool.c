/* pool.c — see pool.h. */
#include "pool.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>

struct pool {
    unsigned nworkers;
    pthread_t *threads;
    pthread_mutex_t run_mu;  /* held by the caller whose job is on the pool */
    pthread_mutex_t mu;      /* guards the fields below */
    pthread_cond_t wake;     /* a new job (gen changed) or shutdown */
    pthread_cond_t done;     /* a worker finished its share */
    uint64_t gen;
    int stop;
    unsigned active;         /* workers still inside the current job */
    pool_fn fn;
    void *ctx;
    size_t ntasks;
    atomic_size_t next;
};

typedef struct worker_arg {
    pool *p;
    unsigned id;
} worker_arg;

static void drain(pool *p, pool_fn fn, void *ctx, size_t ntasks, unsigned who)
{
    for (;;) {
        size_t t = atomic_fetch_add_explicit(&p->next, 1, memory_order_relaxed);
        if (t >= ntasks)
            break;
        fn(ctx, t, who);
    }
}

static void *worker_main(void *arg)
{
    worker_arg wa = *(worker_arg *)arg;
    free(arg);
    pool *p = wa.p;
    uint64_t seen = 0;
    pthread_mutex_lock(&p->mu);
    for (;;) {
        while (!p->stop && p->gen == seen)
            pthread_cond_wait(&p->wake, &p->mu);
        if (p->stop)
            break;
        seen = p->gen;
        pool_fn fn = p->fn;
        void *ctx = p->ctx;
        size_t ntasks = p->ntasks;
        pthread_mutex_unlock(&p->mu);
        drain(p, fn, ctx, ntasks, wa.id);
        pthread_mutex_lock(&p->mu);
        if (--p->active == 0)
            pthread_cond_signal(&p->done);
    }
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

ndb_status pool_create(unsigned nworkers, pool **out)
{
    pool *p = calloc(1, sizeof *p);
    if (!p)
        return NDB_ENOMEM;
    p->threads = calloc(nworkers ? nworkers : 1, sizeof(pthread_t));
    if (!p->threads) {
        free(p);
        return NDB_ENOMEM;
    }
    pthread_mutex_init(&p->run_mu, NULL);
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->wake, NULL);
    pthread_cond_init(&p->done, NULL);
    atomic_init(&p->next, 0);
    for (unsigned i = 0; i < nworkers; i++) {
        worker_arg *wa = malloc(sizeof *wa);
        if (!wa) {
            pool_destroy(p);
            return NDB_ENOMEM;
        }
        wa->p = p;
        wa->id = i + 1;
        if (pthread_create(&p->threads[i], NULL, worker_main, wa) != 0) {
            free(wa);
            pool_destroy(p); /* joins the i threads already started */
            return NDB_ELIMIT;
        }
        p->nworkers = i + 1;
    }
    *out = p;
    return NDB_OK;
}

void pool_destroy(pool *p)
{
    if (!p)
        return;
    pthread_mutex_lock(&p->mu);
    p->stop = 1;
    pthread_cond_broadcast(&p->wake);
    pthread_mutex_unlock(&p->mu);
    for (unsigned i = 0; i < p->nworkers; i++)
        pthread_join(p->threads[i], NULL);
    pthread_cond_destroy(&p->wake);
    pthread_cond_destroy(&p->done);
    pthread_mutex_destroy(&p->mu);
    pthread_mutex_destroy(&p->run_mu);
    free(p->threads);
    free(p);
}

unsigned pool_width(const pool *p) { return p->nworkers + 1; }

void pool_run(pool *p, size_t ntasks, pool_fn fn, void *ctx)
{
    if (ntasks == 0)
        return;
    if (p->nworkers == 0 || ntasks == 1 || pthread_mutex_trylock(&p->run_mu) != 0) {
        for (size_t t = 0; t < ntasks; t++)
            fn(ctx, t, 0);
        return;
    }
    pthread_mutex_lock(&p->mu);
    p->fn = fn;
    p->ctx = ctx;
    p->ntasks = ntasks;
    atomic_store_explicit(&p->next, 0, memory_order_relaxed);
    p->active = p->nworkers;
    p->gen++;
    pthread_cond_broadcast(&p->wake);
    pthread_mutex_unlock(&p->mu);
    drain(p, fn, ctx, ntasks, 0);
    pthread_mutex_lock(&p->mu);
    while (p->active > 0)
        pthread_cond_wait(&p->done, &p->mu);
    pthread_mutex_unlock(&p->mu);
    pthread_mutex_unlock(&p->run_mu);
}
