/*
 * ndb_status.h — the one status type shared by every NexaDB layer.
 *
 * Zero is success; every failure is a negative code. Functions that can fail
 * return an ndb_status; where a caller needs more than the code, they also take
 * a message out-parameter (see ndb_errmsg below). Only service/ turns these
 * codes into gRPC or HTTP statuses.
 */
#ifndef NDB_STATUS_H
#define NDB_STATUS_H

#include <stddef.h>

typedef enum ndb_status {
    NDB_OK = 0,
    NDB_EINVAL = -1,     /* bad argument or malformed input */
    NDB_ENOTFOUND = -2,  /* key, document or collection does not exist */
    NDB_EEXIST = -3,     /* already exists (name taken, unique index) */
    NDB_ECORRUPT = -4,   /* bytes on disk fail a checksum or bounds check */
    NDB_EIO = -5,        /* an I/O system call failed (EIO, or any errno not named below) */
    NDB_ENOMEM = -6,     /* an allocation failed */
    NDB_ETOOBIG = -7,    /* a size limit was exceeded */
    NDB_EPOISONED = -8,  /* an earlier failed write or fsync stopped the engine's writes */
    NDB_ECLOSED = -9,    /* the handle is closed or shutting down */
    NDB_EBUSY = -10,     /* resource locked by another user (e.g. data dir) */
    NDB_EUNIMPL = -11,   /* the feature is not built yet */
    NDB_ELIMIT = -12,    /* a resource bound was hit (memory, queue depth) */
    NDB_EPERM = -13,     /* caller lacks the permission */
    NDB_EAUTH = -14,     /* caller is not authenticated */
    NDB_ECANCELED = -15, /* the caller cancelled (went away) */
    NDB_ENOSPC = -16,    /* the file system is full, or the user's quota (ENOSPC, EDQUOT) */
    NDB_EMFILE = -17,    /* out of file descriptors, the process's or the system's (EMFILE, ENFILE) */
    NDB_ETIMEDOUT = -18, /* the caller's deadline passed */
    NDB_ERANGE = -19,    /* past what is kept (a change stream's token older than its log) */
    NDB_ENOTLEADER = -20, /* a cluster node that does not lead was asked to write */
    NDB_EUNKNOWN = -21,   /* the outcome is unknown (leadership changed while a write was in flight) */
} ndb_status;

/* A static, human-readable description of a status code. Never NULL. */
const char *ndb_strerror(ndb_status st);

/*
 * A bounded message buffer for the detail that goes with a status.
 * Layers fill it with ndb_errmsg_set(); a NULL pointer means the caller does
 * not want detail, so setting is always safe.
 */
typedef struct ndb_errmsg {
    char text[256];
} ndb_errmsg;

/* Formats into msg (if non-NULL) and returns st, so callers can write
 * `return ndb_errmsg_set(msg, NDB_EINVAL, "bad name %s", name);`. */
ndb_status ndb_errmsg_set(ndb_errmsg *msg, ndb_status st, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif /* NDB_STATUS_H */
