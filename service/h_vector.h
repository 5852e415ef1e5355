/* h_vector.h — what other handlers use from the VectorService handlers. */
#ifndef SVC_H_VECTOR_H
#define SVC_H_VECTOR_H

#include "handler.h"
#include "ndb_vec.h"
#include "nexadb/v1/vector.pb-c.h"

/* A vector collection's description, allocated in the call's arena; NULL when out of memory. */
Nexadb__V1__CollectionInfo *svc_vec_collection_info(svc_ctx *ctx, const ndb_vec_info *vi);

#endif /* SVC_H_VECTOR_H */
