/*
 * json_pb.h — JSON ⇄ protobuf-c messages by the proto3 JSON mapping, generic
 * over protobuf-c descriptors (the REST shim's transcoder).
 *
 * Input (JSON → message), parsed by jansson:
 *   - keys may be the proto name ("page_size"), its lowerCamelCase
 *     ("pageSize") or an explicit json_name ("query" for filter); unknown
 *     keys are an error (NDB_EINVAL naming the key);
 *   - 64-bit integers as numbers or decimal strings; 32-bit the same, range
 *     checked; floats as numbers or "NaN"/"Infinity"/"-Infinity";
 *     enums by name or number; bytes as base64; null leaves a field unset;
 *   - google.protobuf.Struct/Value/ListValue as plain JSON; wrappers
 *     (FloatValue, ...) as their bare value.
 * Output (message → JSON text), written here rather than by jansson so that
 * numbers and key order come out as the API promises:
 *   - keys are the proto names (the brief's "document_id"), or the explicit
 *     json_name where the .proto sets one; unset sub-messages are omitted,
 *     scalars and repeated fields are always written (0, "", false, []);
 *   - 64-bit integers as JSON numbers (the brief's {"count": n}), not
 *     strings; doubles and floats in the shortest form that reads back to
 *     the same value (subnormals: exact but not always shortest); a Struct
 *     number that is integral within ±2^53 as an
 *     integer; NaN/Infinity as strings (null inside a Struct);
 *   - Struct keys in wire order (the stored document's key order).
 *
 * Memory: messages built from JSON live in the caller's arena (borrowed
 * until the arena is released); strings in them point into the arena too.
 * A json_pb_buf owns its bytes: the caller frees them with free(buf.p)
 * (or hands them to someone who will).
 *
 * Thread safety: json_pb_init once before use; afterwards every function is
 * safe from any thread on distinct messages and buffers.
 */
#ifndef SVC_JSON_PB_H
#define SVC_JSON_PB_H

#include <jansson.h>
#include <protobuf-c/protobuf-c.h>
#include <stdbool.h>
#include <stddef.h>

#include "arena.h"
#include "ndb_status.h"

/* A growing output buffer with a size limit. */
typedef struct json_pb_buf {
    char *p;      /* malloc'd; caller frees */
    size_t len;
    size_t cap;
    size_t limit; /* writes beyond this many bytes fail with NDB_ETOOBIG; 0: no limit */
    ndb_status err; /* first failure (NDB_ENOMEM or NDB_ETOOBIG), sticky */
} json_pb_buf;

/* Resolves the explicit json_names (from the generated route table) against
 * the message descriptors reachable from roots. Call once at start-up. */
ndb_status json_pb_init(const ProtobufCMessageDescriptor *const *roots, size_t n_roots, ndb_errmsg *msg);

/* The field of d that a JSON key names (proto name, lowerCamel or json_name), or NULL. */
const ProtobufCFieldDescriptor *json_pb_field_by_key(const ProtobufCMessageDescriptor *d, const char *key);

/* The key a field is written under. */
const char *json_pb_key(const ProtobufCFieldDescriptor *fd);

/* A new message of type d, initialised, in arena a; NULL when out of memory. */
ProtobufCMessage *json_pb_new(const ProtobufCMessageDescriptor *d, svc_arena *a);

/* Sets the fields of m named by the JSON object j (merging: fields j does not
 * name keep their values). path names the location for messages ("body"). */
ndb_status json_pb_merge(ProtobufCMessage *m, const json_t *j, svc_arena *a, const char *path, ndb_errmsg *msg);

/* Sets field fd of m from JSON value j (repeated fields take arrays). */
ndb_status json_pb_set_field(ProtobufCMessage *m, const ProtobufCFieldDescriptor *fd, const json_t *j,
                             svc_arena *a, const char *path, ndb_errmsg *msg);

/* Sets field fd of m from text as it appears in a URL path or query string:
 * scalars parse from the text ("25", "true", enum names), message fields
 * (Struct, ...) parse the text as JSON. A repeated field gets one more element. */
ndb_status json_pb_set_field_text(ProtobufCMessage *m, const ProtobufCFieldDescriptor *fd, const char *text,
                                  svc_arena *a, ndb_errmsg *msg);

/* Appends m as a JSON object. Returns b->err (NDB_OK when all fit). */
ndb_status json_pb_write(json_pb_buf *b, const ProtobufCMessage *m);

/* Appends the JSON value of field fd of m (an array for repeated fields). */
ndb_status json_pb_write_field(json_pb_buf *b, const ProtobufCMessage *m, const ProtobufCFieldDescriptor *fd);

/* Appends element i of repeated field fd of m. */
ndb_status json_pb_write_element(json_pb_buf *b, const ProtobufCMessage *m, const ProtobufCFieldDescriptor *fd,
                                 size_t i);

/* Whether field fd of m is written by json_pb_write (set oneof, set message, ...). */
bool json_pb_field_present(const ProtobufCMessage *m, const ProtobufCFieldDescriptor *fd);

/* The number of elements of repeated field fd of m. */
size_t json_pb_count(const ProtobufCMessage *m, const ProtobufCFieldDescriptor *fd);

/* Raw appends, for callers assembling JSON around messages. */
void json_pb_put(json_pb_buf *b, const char *s, size_t n);
void json_pb_puts(json_pb_buf *b, const char *s);
void json_pb_put_string(json_pb_buf *b, const char *s, size_t n); /* quoted, escaped */
void json_pb_put_double(json_pb_buf *b, double v);                 /* shortest round-trip */

#endif /* SVC_JSON_PB_H */
