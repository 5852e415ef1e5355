/*
 * pbcheck.h — checks on a request's wire bytes before protobuf-c unpacks them:
 * a bound on message nesting, no field the message does not define, and no
 * NUL byte in any string.
 *
 * protobuf_c_message_unpack recurses once per nested message and has no depth
 * limit, so a hostile request of a few megabytes (messages nested thousands
 * deep in unknown or repeated fields) could overflow the stack. This walk reads
 * the wire format with the message descriptors, iteratively per level and
 * recursing only into message-typed fields, and refuses anything deeper than
 * the limit before unpack sees it.
 *
 * protobuf-c unpacks a string field to a NUL-terminated char *, so a NUL
 * inside it would silently cut the string short ("alice\0-typo" would name
 * "alice"). The same walk refuses every string field holding one, naming it
 * ("id", "queries[1].collection"). The REST shim refuses \u0000 and %00 in
 * those on its side (json_pb.c, rest.c), so both transports agree.
 *
 * protobuf-c keeps fields it does not know aside, so a request from a client
 * built for an older API (whose google.protobuf.Struct filter is now a
 * reserved field number) would run with the filter unset: DeleteMany would
 * delete everything. The walk refuses any field number the message does not
 * define, naming it.
 */
#ifndef SVC_PBCHECK_H
#define SVC_PBCHECK_H

#include <protobuf-c/protobuf-c.h>
#include <stddef.h>
#include <stdint.h>

#include "ndb_status.h"

/* Message levels allowed: the deepest request is three (SearchBatchRequest,
 * SearchQuery, Document); documents nest inside their BSON bytes. */
#define SVC_PB_MAX_DEPTH 16

/* NDB_EINVAL (with msg) when the bytes nest deeper than max_depth, are not
 * well-formed wire format, carry a field d does not define, or a string field
 * holds a NUL byte; NDB_OK otherwise. */
ndb_status svc_pb_check(const ProtobufCMessageDescriptor *d, const uint8_t *buf, size_t len, int max_depth,
                        ndb_errmsg *msg);

#endif /* SVC_PBCHECK_H */
