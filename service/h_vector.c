/* h_vector.c — VectorService handlers. */
#include "handler.h"
#include "nexadb/v1/vector.pb-c.h"

#define UNIMPL svc_unimplemented

static const svc_method methods[] = {
    {"CreateVectorCollection", UNIMPL, SVC_M_WRITE},
    {"DropVectorCollection", UNIMPL, SVC_M_WRITE},
    {"ListVectorCollections", UNIMPL, 0},
    {"InsertVector", UNIMPL, SVC_M_WRITE},
    {"InsertVectors", UNIMPL, SVC_M_WRITE},
    {"UpsertVector", UNIMPL, SVC_M_WRITE},
    {"GetVector", UNIMPL, 0},
    {"DeleteVector", UNIMPL, SVC_M_WRITE},
    {"Search", UNIMPL, 0},
    {"SearchBatch", UNIMPL, 0},
};

const svc_service svc_vector_service = {&nexadb__v1__vector_service__descriptor, methods,
                                        sizeof methods / sizeof methods[0]};
