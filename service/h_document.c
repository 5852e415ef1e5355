/* h_document.c — DocumentService handlers. */
#include "handler.h"
#include "nexadb/v1/document.pb-c.h"

#define UNIMPL svc_unimplemented

static const svc_method methods[] = {
    {"CreateCollection", UNIMPL, SVC_M_WRITE},
    {"DropCollection", UNIMPL, SVC_M_WRITE},
    {"ListCollections", UNIMPL, 0},
    {"InsertOne", UNIMPL, SVC_M_WRITE},
    {"InsertMany", UNIMPL, SVC_M_WRITE},
    {"Get", UNIMPL, 0},
    {"Find", UNIMPL, SVC_M_STREAM},
    {"FindOne", UNIMPL, 0},
    {"Count", UNIMPL, 0},
    {"Update", UNIMPL, SVC_M_WRITE},
    {"UpdateMany", UNIMPL, SVC_M_WRITE},
    {"Delete", UNIMPL, SVC_M_WRITE},
    {"DeleteMany", UNIMPL, SVC_M_WRITE},
    {"Aggregate", UNIMPL, SVC_M_STREAM},
    {"CreateIndex", UNIMPL, SVC_M_WRITE},
    {"DropIndex", UNIMPL, SVC_M_WRITE},
    {"ListIndexes", UNIMPL, 0},
};

const svc_service svc_document_service = {&nexadb__v1__document_service__descriptor, methods,
                                          sizeof methods / sizeof methods[0]};
