/*
 * indexes.c — secondary indexes over a namespace's documents: DocumentService's
 * CreateIndex, DropIndex and ListIndexes over document collections, and
 * VectorService's over vector collections' documents (the same engine calls
 * on the vector namespace's handle).
 */
#include "indexes.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "convert.h"

/* "age:1,city:-1" (the engine's description) → IndexField list. */
static Nexadb__V1__IndexInfo *index_info(svc_ctx *ctx, const ndb_doc_index_info *ii)
{
    Nexadb__V1__IndexInfo *out = SVC_NEW(ctx, Nexadb__V1__IndexInfo, nexadb__v1__index_info__init);
    if (out == NULL || (out->name = svc_arena_strndup(&ctx->arena, ii->name, strlen(ii->name))) == NULL)
        return NULL;
    out->unique = ii->unique != 0;
    out->multikey = ii->multikey != 0;
    if (ii->ttl) {
        if ((out->ttl = SVC_NEW(ctx, Nexadb__V1__IndexTtl, nexadb__v1__index_ttl__init)) == NULL)
            return NULL;
        out->ttl->expire_after_seconds = ii->expire_after_seconds;
    }
    size_t parts = 1;
    for (const char *p = ii->fields; *p; p++)
        parts += *p == ',';
    if ((out->fields = svc_alloc(ctx, parts * sizeof *out->fields)) == NULL)
        return NULL;
    const char *p = ii->fields;
    while (*p) {
        const char *end = strchr(p, ',');
        size_t n = end ? (size_t)(end - p) : strlen(p);
        const char *colon = memchr(p, ':', n);
        Nexadb__V1__IndexField *f = SVC_NEW(ctx, Nexadb__V1__IndexField, nexadb__v1__index_field__init);
        if (f == NULL || (f->field = svc_arena_strndup(&ctx->arena, p, colon ? (size_t)(colon - p) : n)) == NULL)
            return NULL;
        f->direction = colon && colon[1] == '-' ? NEXADB__V1__SORT_DIRECTION__SORT_DIRECTION_DESCENDING
                                                : NEXADB__V1__SORT_DIRECTION__SORT_DIRECTION_ASCENDING;
        out->fields[out->n_fields++] = f;
        p += n + (end != NULL);
    }
    return out;
}

ndb_status svc_index_create(svc_ctx *ctx, ndb_doc_db *docs, const Nexadb__V1__CreateIndexRequest *r,
                            ProtobufCMessage **resp, ndb_errmsg *msg)
{
    if (r->n_fields == 0)
        return ndb_errmsg_set(msg, NDB_EINVAL, "fields: an index needs at least one field");
    svc_key *keys = svc_alloc(ctx, r->n_fields * sizeof *keys);
    if (keys == NULL)
        return svc_oom(msg);
    for (size_t i = 0; i < r->n_fields; i++)
        keys[i] = (svc_key){r->fields[i]->field,
                            r->fields[i]->direction == NEXADB__V1__SORT_DIRECTION__SORT_DIRECTION_DESCENDING};
    const void *spec;
    size_t slen;
    ndb_status st = svc_encode_keys(&ctx->arena, keys, r->n_fields, "fields", &spec, &slen, msg);
    if (st != NDB_OK)
        return st;
    const char *name = r->name[0] ? r->name : NULL;
    ndb_doc_index_opts opts = {.unique = r->unique, .ttl = r->ttl != NULL,
                               .expire_after_seconds = r->ttl ? r->ttl->expire_after_seconds : 0};
    if ((st = ndb_doc_create_index(docs, r->collection, name, spec, slen, &opts, msg)) != NDB_OK)
        return st;
    /* Report the index as the engine now describes it. */
    ndb_doc_index_info *infos = NULL;
    size_t n = 0;
    if ((st = ndb_doc_list_indexes(docs, r->collection, &infos, &n, msg)) != NDB_OK)
        return st;
    Nexadb__V1__CreateIndexResponse *out =
        SVC_NEW(ctx, Nexadb__V1__CreateIndexResponse, nexadb__v1__create_index_response__init);
    for (size_t i = 0; out != NULL && i < n; i++) {
        int match = name ? strcmp(infos[i].name, name) == 0 : 0;
        if (!name) { /* the engine derived the name; find the index by its fields */
            char want[256];
            size_t w = 0;
            for (size_t k = 0; k < r->n_fields && w < sizeof want; k++)
                w += (size_t)snprintf(want + w, sizeof want - w, "%s%s:%d", k ? "," : "", keys[k].field,
                                      keys[k].descending ? -1 : 1);
            match = strcmp(infos[i].fields, want) == 0;
        }
        if (match)
            out->index = index_info(ctx, &infos[i]);
    }
    free(infos);
    if (out == NULL || out->index == NULL)
        return ndb_errmsg_set(msg, NDB_EIO, "index created but not listed");
    *resp = &out->base;
    return NDB_OK;
}

ndb_status svc_index_drop(svc_ctx *ctx, ndb_doc_db *docs, const Nexadb__V1__DropIndexRequest *r,
                          ProtobufCMessage **resp, ndb_errmsg *msg)
{
    ndb_status st = ndb_doc_drop_index(docs, r->collection, r->name, msg);
    if (st != NDB_OK && st != NDB_ENOTFOUND)
        return st;
    Nexadb__V1__DropIndexResponse *out = SVC_NEW(ctx, Nexadb__V1__DropIndexResponse, nexadb__v1__drop_index_response__init);
    if (out == NULL)
        return svc_oom(msg);
    out->dropped = st == NDB_OK;
    *resp = &out->base;
    return NDB_OK;
}

ndb_status svc_index_list(svc_ctx *ctx, ndb_doc_db *docs, const Nexadb__V1__ListIndexesRequest *r,
                          ProtobufCMessage **resp, ndb_errmsg *msg)
{
    ndb_doc_index_info *infos = NULL;
    size_t n = 0;
    ndb_status st = ndb_doc_list_indexes(docs, r->collection, &infos, &n, msg);
    if (st != NDB_OK)
        return st;
    Nexadb__V1__ListIndexesResponse *out =
        SVC_NEW(ctx, Nexadb__V1__ListIndexesResponse, nexadb__v1__list_indexes_response__init);
    if (out != NULL && n > 0)
        out->indexes = svc_alloc(ctx, n * sizeof *out->indexes);
    for (size_t i = 0; out != NULL && out->indexes != NULL && i < n; i++) {
        if ((out->indexes[i] = index_info(ctx, &infos[i])) == NULL)
            break;
        out->n_indexes++;
    }
    free(infos);
    if (out == NULL || out->n_indexes != n)
        return svc_oom(msg);
    *resp = &out->base;
    return NDB_OK;
}
