/* interrupt.c — see ndb_interrupt.h. */
#include "ndb_interrupt.h"

#include <time.h>

static ndb_status check_at(const ndb_interrupt *in, int64_t margin)
{
    if (in == NULL)
        return NDB_OK;
    if (in->deadline_ns != INT64_MAX) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        if ((int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec + margin >= in->deadline_ns)
            return NDB_ETIMEDOUT;
    }
    if (in->cancelled != NULL && atomic_load_explicit(in->cancelled, memory_order_relaxed))
        return NDB_ECANCELED;
    return NDB_OK;
}

ndb_status ndb_interrupt_check(const ndb_interrupt *in)
{
    return check_at(in, 0);
}

ndb_status ndb_interrupt_check_commit(const ndb_interrupt *in)
{
    return check_at(in, in != NULL ? in->commit_margin_ns : 0);
}

ndb_status ndb_interrupt_msg(ndb_errmsg *msg, ndb_status st, const char *what)
{
    return ndb_errmsg_set(msg, st, "%s: %s", what,
                          st == NDB_ETIMEDOUT ? "the call's deadline passed" : "the call was cancelled");
}
