/*
 * convert.h — nexadb.v1.Document (BSON, common.proto) ⇄ the document
 * encoding (ndb_doc.h).
 *
 * Documents, filters, updates, sorts and pipelines arrive as BSON and are
 * handed to the engine encoded (engine/doc/bson.c maps the types); results
 * go back the other way.
 *
 * Memory: encoders write into this thread's builder and copy the result into
 * the caller's arena; decoders allocate the Document and its bytes from the
 * given arena (owned by it, never freed separately).
 */
#ifndef SVC_CONVERT_H
#define SVC_CONVERT_H

#include "arena.h"
#include "ndb_doc.h"
#include "nexadb/v1/common.pb-c.h"

/* This thread's builder, created on first use and freed when the thread exits. NULL on ENOMEM. */
ndb_doc_builder *svc_builder(void);

/* Encodes a Document (absent or empty bytes: *doc = NULL, or {} when
 * empty_ok) with this thread's builder and copies the bytes into arena, so
 * several encodings can be alive at once. `what` names the input in errors
 * ("filter", "update"); bad BSON is NDB_EINVAL naming the field. */
ndb_status svc_encode(svc_arena *arena, const Nexadb__V1__Document *d, int empty_ok, const char *what,
                      const void **doc, size_t *len, ndb_errmsg *msg);

/* svc_encode of the i-th item of a list (empty allowed), named in errors as
 * list[i] then field ("documents[3].document"), formatted only on failure:
 * a batch of many documents pays for no message it does not send. */
ndb_status svc_encode_nth(svc_arena *arena, const Nexadb__V1__Document *d, const char *list, size_t i,
                          const char *field, const void **doc, size_t *len, ndb_errmsg *msg);

/* No document, no bytes, or the 5 bytes of an empty BSON document ({}). */
static inline int svc_document_empty(const Nexadb__V1__Document *d)
{
    return d == NULL || d->bson.len <= 5;
}

/* Encodes repeated Documents as one array document (pipelines), copied into arena. */
ndb_status svc_encode_array(svc_arena *arena, Nexadb__V1__Document *const *items, size_t n, const char *what,
                            const void **doc, size_t *len, ndb_errmsg *msg);

/* One key of a sort or index spec. */
typedef struct svc_key {
    const char *field;
    int descending;
} svc_key;

/* Encodes keys as {"field": 1|-1, ...} in order, copied into arena; n == 0 yields NULL. */
ndb_status svc_encode_keys(svc_arena *arena, const svc_key *keys, size_t n, const char *what, const void **doc,
                           size_t *len, ndb_errmsg *msg);

/* An encoded object as a Document allocated from arena. NDB_ECORRUPT on bad
 * bytes, NDB_ELIMIT when the arena is exhausted. */
ndb_status svc_doc_to_document(svc_arena *arena, const void *doc, size_t len, Nexadb__V1__Document **out,
                               ndb_errmsg *msg);

#endif /* SVC_CONVERT_H */
