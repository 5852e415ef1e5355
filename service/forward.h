/*
 * forward.h — a cluster follower passing a data call on to the leader (forward.c).
 */
#ifndef SVC_FORWARD_H
#define SVC_FORWARD_H

#include "dispatch.h"

/* Calls route on the leader (its client address, leader) with req: a unary
 * answer goes into *resp in ctx's memory, a stream's pages through svc_send;
 * or the leader's error. NDB_ENOTLEADER,
 * leaving msg alone, when this node cannot forward (TLS without --tls-peer-ca,
 * no read-write key),
 * so the caller keeps the redirect it had; NDB_ENOTLEADER with a message when
 * the leader cannot be reached. */
ndb_status svc_forward(svc_ctx *ctx, const svc_route *route, const ProtobufCMessage *req, ProtobufCMessage **resp,
                       const char *leader, ndb_errmsg *msg);

/* Drops the channel to the leader, once no call can forward any more. */
void svc_forward_close(svc_app *app);

#endif /* SVC_FORWARD_H */
