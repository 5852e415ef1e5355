/*
 * convert.h — google.protobuf.Struct/Value ⇄ the document encoding (ndb_doc.h).
 *
 * Documents, filters, updates, sorts and pipelines arrive as Structs and are
 * handed to the engine encoded; results go back the other way. Integral
 * numbers within ±2^53 become integers in the encoding (the builder decides);
 * on the way out every number is a Struct double, which clients map back to
 * integers when integral.
 *
 * Memory: encoders write into a caller's builder. Decoders allocate the
 * Struct tree from the given arena (owned by it, never freed separately).
 */
#ifndef SVC_CONVERT_H
#define SVC_CONVERT_H

#include "arena.h"
#include "google/protobuf/struct.pb-c.h"
#include "ndb_doc.h"
#include "nexadb/v1/common.pb-c.h"

/* Writes the Struct as an object value. NDB_EINVAL names a duplicate key or a
 * Value with no kind; builder errors (depth, size) pass through. */
ndb_status svc_struct_encode(ndb_doc_builder *b, const Google__Protobuf__Struct *s, ndb_errmsg *msg);

/* Writes one Value (any kind). */
ndb_status svc_value_encode(ndb_doc_builder *b, const Google__Protobuf__Value *v, ndb_errmsg *msg);

/* This thread's builder, created on first use and freed when the thread exits. NULL on ENOMEM. */
ndb_doc_builder *svc_builder(void);

/* Encodes a Struct (NULL allowed: *doc = NULL unless empty_ok) with this
 * thread's builder and copies the bytes into arena, so several encodings can
 * be alive at once. `what` names the input in errors ("filter", "update"). */
ndb_status svc_encode(svc_arena *arena, const Google__Protobuf__Struct *s, int empty_ok, const char *what,
                      const void **doc, size_t *len, ndb_errmsg *msg);

/* Encodes repeated Structs as one array document (pipelines), copied into arena. */
ndb_status svc_encode_array(svc_arena *arena, Google__Protobuf__Struct *const *items, size_t n, const char *what,
                            const void **doc, size_t *len, ndb_errmsg *msg);

/* One key of a sort or index spec. */
typedef struct svc_key {
    const char *field;
    int descending;
} svc_key;

/* Encodes keys as {"field": 1|-1, ...} in order, copied into arena; n == 0 yields NULL. */
ndb_status svc_encode_keys(svc_arena *arena, const svc_key *keys, size_t n, const char *what, const void **doc,
                           size_t *len, ndb_errmsg *msg);

/* Decodes an encoded object into a Struct allocated from arena. NDB_ECORRUPT
 * on bad bytes, NDB_ENOMEM when the arena is exhausted. */
ndb_status svc_doc_to_struct(svc_arena *arena, const void *doc, size_t len, Google__Protobuf__Struct **out,
                             ndb_errmsg *msg);

#endif /* SVC_CONVERT_H */
