/*
 * snapshot_xfer.h — moving cluster snapshots between nodes (snapshot_xfer.c).
 */
#ifndef SVC_SNAPSHOT_XFER_H
#define SVC_SNAPSHOT_XFER_H

#include <stdbool.h>
#include <stdint.h>

#include "handler.h"

/* Where snapshot index lives: <data-dir>/cluster/snapshots/<index, 20 digits>. */
ndb_status svc_snapshot_dir(const svc_app *app, uint64_t index, char *out, size_t cap, ndb_errmsg *msg);

/* Whether dir holds a complete snapshot (its BACKUP listing is written last). */
bool svc_snapshot_complete(const char *dir);

/* AdminService/ReadSnapshot: streams the files of one of this node's snapshots. */
ndb_status svc_read_snapshot(svc_ctx *ctx, const ProtobufCMessage *req, ProtobufCMessage **resp, ndb_errmsg *msg);

/* Fetches snapshot index from the node whose client address is address
 * (AdminService/ReadSnapshot, presenting --api-key) into dest, which must not
 * exist: written beside it, synced, checked against its listing, renamed. */
ndb_status svc_snapshot_fetch(svc_app *app, const char *address, uint64_t index, const char *dest, ndb_errmsg *msg);

#endif /* SVC_SNAPSHOT_XFER_H */
