/* indexes.h — the index calls shared by DocumentService and VectorService. */
#ifndef SVC_INDEXES_H
#define SVC_INDEXES_H

#include "handler.h"
#include "ndb_doc.h"
#include "nexadb/v1/document.pb-c.h"

/* Builds the index over docs' collection r->collection; the response
 * describes it as the engine lists it. */
ndb_status svc_index_create(svc_ctx *ctx, ndb_doc_db *docs, const Nexadb__V1__CreateIndexRequest *r,
                            ProtobufCMessage **resp, ndb_errmsg *msg);
/* dropped false when there was no such index. */
ndb_status svc_index_drop(svc_ctx *ctx, ndb_doc_db *docs, const Nexadb__V1__DropIndexRequest *r,
                          ProtobufCMessage **resp, ndb_errmsg *msg);
ndb_status svc_index_list(svc_ctx *ctx, ndb_doc_db *docs, const Nexadb__V1__ListIndexesRequest *r,
                          ProtobufCMessage **resp, ndb_errmsg *msg);

#endif /* SVC_INDEXES_H */
