#include "pool.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

typedef struct job {
    void (*fn)(void *);
    void *arg;
} job;

struct svc_pool {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    job *ring; /* capacity max_queue */
    size_t cap, head, len;
    bool stopping;
    pthread_t *threads;
    int n_threads;
};

static void *worker(void *arg)
{
    svc_pool *p = arg;
    pthread_mutex_lock(&p->mu);
    for (;;) {
        while (p->len == 0 && !p->stopping)
            pthread_cond_wait(&p->cv, &p->mu);
        if (p->len == 0)
            break; /* stopping and drained */
        job j = p->ring[p->head];
        p->head = (p->head + 1) % p->cap;
        p->len--;
        pthread_mutex_unlock(&p->mu);
        j.fn(j.arg);
        pthread_mutex_lock(&p->mu);
    }
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

ndb_status svc_pool_start(int threads, size_t max_queue, svc_pool **out, ndb_errmsg *msg)
{
    svc_pool *p = calloc(1, sizeof *p);
    if (p == NULL)
        return ndb_errmsg_set(msg, NDB_ENOMEM, "out of memory for the worker pool");
    p->cap = max_queue;
    p->ring = calloc(max_queue, sizeof *p->ring);
    p->threads = calloc((size_t)threads, sizeof *p->threads);
    if (p->ring == NULL || p->threads == NULL) {
        free(p->ring);
        free(p->threads);
        free(p);
        return ndb_errmsg_set(msg, NDB_ENOMEM, "out of memory for the worker pool");
    }
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->cv, NULL);
    for (int i = 0; i < threads; i++) {
        int e = pthread_create(&p->threads[i], NULL, worker, p);
        if (e != 0) {
            svc_pool_stop(p);
            return ndb_errmsg_set(msg, NDB_EIO, "starting worker thread: %s", strerror(e));
        }
        p->n_threads++;
    }
    *out = p;
    return NDB_OK;
}

ndb_status svc_pool_submit(svc_pool *p, void (*fn)(void *), void *arg)
{
    ndb_status st = NDB_OK;
    pthread_mutex_lock(&p->mu);
    if (p->stopping)
        st = NDB_ECLOSED;
    else if (p->len == p->cap)
        st = NDB_ELIMIT;
    else {
        p->ring[(p->head + p->len) % p->cap] = (job){fn, arg};
        p->len++;
        pthread_cond_signal(&p->cv);
    }
    pthread_mutex_unlock(&p->mu);
    return st;
}

void svc_pool_stop(svc_pool *p)
{
    if (p == NULL)
        return;
    pthread_mutex_lock(&p->mu);
    p->stopping = true;
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
    for (int i = 0; i < p->n_threads; i++)
        pthread_join(p->threads[i], NULL);
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->cv);
    free(p->ring);
    free(p->threads);
    free(p);
}
