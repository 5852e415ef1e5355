/*
 * conn_gate.h — the connection bounds the server keeps at accept time: a
 * descriptor reserve for the engine, and a cap on open connections per port.
 *
 * The gRPC C core of Debian 12 (1.51) has no limit on incoming connections
 * and its listener stops for good at the first accept4 failure other than
 * EAGAIN or EINTR: under a 1,024-descriptor limit, one EMFILE and the gRPC
 * port never accepts again (tests/integration/test_connections.py).
 * libmicrohttpd has a limit, but at it leaves new connections waiting in the
 * listen queue rather than refusing them. So conn_gate.c defines accept4
 * itself. The executable's definition is the one libgrpc and libmicrohttpd
 * bind to (their calls go through the dynamic symbol); it makes the system
 * call and then, for each accepted connection:
 *
 *  - closes it at once when its descriptor number is at or above
 *    limit - reserve: accept returns the lowest free number, so every number
 *    below it is in use and fewer than `reserve` remain for the engine;
 *  - on a watched port, closes it when `max_connections` are open there;
 *  - on EMFILE or ENFILE, frees its spare descriptor, accepts and closes one
 *    pending connection, and takes the spare again;
 *
 * and goes on accepting until the queue is empty, so a refused connection
 * never hides a later one; the caller then sees EAGAIN and its listener
 * stays armed. Refusals are counted and logged (the first, then at most one
 * line per 10 s).
 *
 * Thread safety: svc_gate_configure before the transports start, then
 * svc_gate_watch for each port; accept4 from any thread (a mutex guards the
 * connection sets).
 *
 * Invariants: an accepted descriptor is never handed on when its number is
 * in the reserve; a watched port's set holds every connection accepted there
 * since it was watched and still open (and maybe numbers since closed, which
 * a sweep clears when the count reaches the cap).
 */
#ifndef SVC_CONN_GATE_H
#define SVC_CONN_GATE_H

#include <stdint.h>

#include "ndb_status.h"

typedef struct svc_gate_config {
    int limit;           /* descriptor limit: the soft RLIMIT_NOFILE */
    int reserve;         /* descriptors kept free for the engine */
    int max_connections; /* most connections open at once on each watched port */
} svc_gate_config;

/* Ports svc_gate_watch can take: gRPC's and HTTP's. */
#define SVC_GATE_PORTS 2

/* Arms the gate's descriptor reserve. NDB_EIO when the spare descriptor cannot be opened.
 * Before it is called (and after a failure) accept4 refuses nothing. */
ndb_status svc_gate_configure(const svc_gate_config *cfg, ndb_errmsg *msg);

/* Caps connections on a local port from now on (connections accepted before are not
 * counted). NDB_EINVAL before svc_gate_configure, NDB_ENOMEM, or NDB_ELIMIT past
 * SVC_GATE_PORTS ports. */
ndb_status svc_gate_watch(int port, ndb_errmsg *msg);

#endif /* SVC_CONN_GATE_H */
