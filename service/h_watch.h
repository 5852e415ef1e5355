/*
 * h_watch.h — DocumentService/Watch (h_watch.c), in DocumentService's
 * method table (h_document.c) with SVC_M_STREAM | SVC_M_HELD.
 */
#ifndef SVC_H_WATCH_H
#define SVC_H_WATCH_H

#include "handler.h"

ndb_status svc_watch(svc_ctx *ctx, const ProtobufCMessage *req, ProtobufCMessage **resp, ndb_errmsg *msg);

#endif /* SVC_H_WATCH_H */
