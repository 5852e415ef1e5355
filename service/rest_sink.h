/*
 * rest_sink.h — collects a server-streaming method's messages for the REST
 * shim (rest.c): merged into one object (repeated fields concatenated,
 * singular fields from the last message that set them), or one JSON line per
 * message (Accept: application/x-ndjson), within a size limit.
 *
 * Thread safety: one sink per request.
 */
#ifndef SVC_REST_SINK_H
#define SVC_REST_SINK_H

#include <stdbool.h>

#include "handler.h"
#include "json_pb.h"

typedef struct rest_sink {
    const ProtobufCMessageDescriptor *d;
    bool ndjson;
    size_t limit;
    json_pb_buf lines;   /* ndjson */
    json_pb_buf *fields; /* merge: per field, its JSON (repeated: elements joined by commas) */
    size_t *counts;      /* merge: elements per repeated field */
    bool *has;           /* merge: singular field set by some message */
} rest_sink;

/* For messages of type d; NDB_ENOMEM (free it anyway with rest_sink_free). */
ndb_status rest_sink_init(rest_sink *s, const ProtobufCMessageDescriptor *d, bool ndjson, size_t limit);
/* The svc_send of a streaming call (ctx->transport is the sink): NDB_ETOOBIG past the limit. */
ndb_status rest_sink_send(svc_ctx *ctx, const ProtobufCMessage *m, ndb_errmsg *msg);
/* The answer into out: the NDJSON lines, or the merged object (or only its
 * field resp_fd, the route's response_body; NULL: the whole object). */
ndb_status rest_sink_finish(rest_sink *s, const ProtobufCFieldDescriptor *resp_fd, svc_arena *a, json_pb_buf *out);
void rest_sink_free(rest_sink *s);

#endif /* SVC_REST_SINK_H */
