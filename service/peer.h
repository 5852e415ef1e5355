/*
 * peer.h — channels from this node to another node of its cluster (a
 * follower passing a call on to the leader, a node fetching a snapshot).
 */
#ifndef SVC_PEER_H
#define SVC_PEER_H

#include <grpc/grpc.h>

#include "app.h"

/* A channel to address (host:port of another node's gRPC service), taking
 * messages up to max_receive bytes: plaintext when this node serves
 * plaintext; TLS when it serves TLS and --tls-peer-ca names the CA of the
 * other nodes' certificates, presenting this node's own certificate (for
 * nodes that require client certificates it must allow client use too).
 * NDB_EUNIMPL when it serves TLS without --tls-peer-ca. The caller destroys
 * *out (grpc_channel_destroy) and holds a grpc_init reference meanwhile. */
ndb_status svc_peer_channel(svc_app *app, const char *address, int max_receive, grpc_channel **out,
                            ndb_errmsg *msg);

#endif /* SVC_PEER_H */
