#include "ndb_status.h"

#include <stdarg.h>
#include <stdio.h>

const char *ndb_strerror(ndb_status st)
{
    switch (st) {
    case NDB_OK: return "ok";
    case NDB_EINVAL: return "invalid argument";
    case NDB_ENOTFOUND: return "not found";
    case NDB_EEXIST: return "already exists";
    case NDB_ECORRUPT: return "data corruption detected";
    case NDB_EIO: return "I/O error (EIO)";
    case NDB_ENOMEM: return "out of memory";
    case NDB_ETOOBIG: return "size limit exceeded";
    case NDB_EPOISONED: return "storage engine stopped accepting writes after a failed write or fsync";
    case NDB_ECLOSED: return "closed";
    case NDB_EBUSY: return "resource busy";
    case NDB_EUNIMPL: return "not implemented";
    case NDB_ELIMIT: return "resource limit reached";
    case NDB_EPERM: return "permission denied";
    case NDB_EAUTH: return "not authenticated";
    case NDB_ECANCELED: return "cancelled";
    case NDB_ENOSPC: return "no space left on device (ENOSPC)";
    case NDB_EMFILE: return "too many open files (EMFILE)";
    case NDB_ETIMEDOUT: return "deadline exceeded";
    case NDB_ERANGE: return "out of the range kept";
    case NDB_ENOTLEADER: return "not the cluster's leader";
    case NDB_EUNKNOWN: return "outcome unknown";
    }
    return "unknown status";
}

ndb_status ndb_errmsg_set(ndb_errmsg *msg, ndb_status st, const char *fmt, ...)
{
    if (msg != NULL) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(msg->text, sizeof msg->text, fmt, ap);
        va_end(ap);
    }
    return st;
}
