/* indexes.h — the index calls shared by DocumentService and VectorService. */
#ifndef SVC_INDEXES_H
#define SVC_INDEXES_H

#include <stdbool.h>

#include "handler.h"
#include "ndb_doc.h"
#include "nexadb/v1/document.pb-c.h"

/* An index to create: the fields of a CreateIndexRequest (DocumentService)
 * or a CreateDocumentIndexRequest (VectorService). */
typedef struct svc_index_def {
    const char *collection;
    Nexadb__V1__IndexField *const *fields;
    size_t n_fields;
    bool unique;
    const char *name; /* "": derived from the fields */
    const Nexadb__V1__IndexTtl *ttl;
} svc_index_def;

/* Builds the index over docs' collection; *out (call memory) describes it as
 * the engine lists it. */
ndb_status svc_index_create(svc_ctx *ctx, ndb_doc_db *docs, const svc_index_def *d, Nexadb__V1__IndexInfo **out,
                            ndb_errmsg *msg);
/* *dropped false when there was no such index. */
ndb_status svc_index_drop(ndb_doc_db *docs, const char *coll, const char *name, bool *dropped, ndb_errmsg *msg);
/* The collection's indexes, in call memory. */
ndb_status svc_index_list(svc_ctx *ctx, ndb_doc_db *docs, const char *coll, Nexadb__V1__IndexInfo ***out, size_t *n,
                          ndb_errmsg *msg);

#endif /* SVC_INDEXES_H */
