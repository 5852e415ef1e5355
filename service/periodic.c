/* periodic.c — a job run every period on its own thread (periodic.h). */
#include "periodic.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct svc_periodic {
    int period_ms;
    void (*job)(void *arg);
    void *arg;
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int stop; /* mu */
};

static void *periodic_main(void *varg)
{
    svc_periodic *p = varg;
    pthread_mutex_lock(&p->mu);
    while (!p->stop) {
        pthread_mutex_unlock(&p->mu);
        p->job(p->arg);
        pthread_mutex_lock(&p->mu);
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        ts.tv_nsec += (long)(p->period_ms % 1000) * 1000000;
        ts.tv_sec += p->period_ms / 1000 + ts.tv_nsec / 1000000000;
        ts.tv_nsec %= 1000000000;
        while (!p->stop && pthread_cond_timedwait(&p->cv, &p->mu, &ts) != ETIMEDOUT) {
        }
    }
    pthread_mutex_unlock(&p->mu);
    return NULL;
}

ndb_status svc_periodic_start(const char *what, int period_ms, void (*job)(void *arg), void *arg,
                              svc_periodic **out, ndb_errmsg *msg)
{
    svc_periodic *p = calloc(1, sizeof *p);
    if (p == NULL)
        return ndb_errmsg_set(msg, NDB_ENOMEM, "out of memory");
    p->period_ms = period_ms;
    p->job = job;
    p->arg = arg;
    pthread_mutex_init(&p->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&p->cv, &ca);
    pthread_condattr_destroy(&ca);
    int e = pthread_create(&p->thread, NULL, periodic_main, p);
    if (e != 0) {
        pthread_cond_destroy(&p->cv);
        pthread_mutex_destroy(&p->mu);
        free(p);
        return ndb_errmsg_set(msg, NDB_ENOMEM, "cannot start the %s thread: %s", what, strerror(e));
    }
    *out = p;
    return NDB_OK;
}

void svc_periodic_stop(svc_periodic *p)
{
    if (p == NULL)
        return;
    pthread_mutex_lock(&p->mu);
    p->stop = 1;
    pthread_cond_signal(&p->cv);
    pthread_mutex_unlock(&p->mu);
    pthread_join(p->thread, NULL);
    pthread_cond_destroy(&p->cv);
    pthread_mutex_destroy(&p->mu);
    free(p);
}
