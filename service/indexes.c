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

ndb_status svc_index_create(svc_ctx *ctx, ndb_doc_db *docs, const svc_index_def *d, Nexadb__V1__IndexInfo **out,
                            ndb_errmsg *msg)
{
    if (d->n_fields == 0)
        return ndb_errmsg_set(msg, NDB_EINVAL, "fields: an index needs at least one field");
    svc_key *keys = svc_alloc(ctx, d->n_fields * sizeof *keys);
    if (keys == NULL)
        return svc_oom(msg);
    for (size_t i = 0; i < d->n_fields; i++)
        keys[i] = (svc_key){d->fields[i]->field,
                            d->fields[i]->direction == NEXADB__V1__SORT_DIRECTION__SORT_DIRECTION_DESCENDING};
    const void *spec;
    size_t slen;
    ndb_status st = svc_encode_keys(&ctx->arena, keys, d->n_fields, "fields", &spec, &slen, msg);
    if (st != NDB_OK)
        return st;
    const char *name = d->name[0] ? d->name : NULL;
    ndb_doc_index_opts opts = {.unique = d->unique, .ttl = d->ttl != NULL,
                               .expire_after_seconds = d->ttl ? d->ttl->expire_after_seconds : 0};
    if ((st = ndb_doc_create_index(docs, d->collection, name, spec, slen, &opts, msg)) != NDB_OK)
        return st;
    /* Report the index as the engine now describes it. */
    ndb_doc_index_info *infos = NULL;
    size_t n = 0;
    if ((st = ndb_doc_list_indexes(docs, d->collection, &infos, &n, msg)) != NDB_OK)
        return st;
    *out = NULL;
    for (size_t i = 0; i < n; i++) {
        int match = name ? strcmp(infos[i].name, name) == 0 : 0;
        if (!name) { /* the engine derived the name; find the index by its fields */
            char want[256];
            size_t w = 0;
            for (size_t k = 0; k < d->n_fields && w < sizeof want; k++)
                w += (size_t)snprintf(want + w, sizeof want - w, "%s%s:%d", k ? "," : "", keys[k].field,
                                      keys[k].descending ? -1 : 1);
            match = strcmp(infos[i].fields, want) == 0;
        }
        if (match)
            *out = index_info(ctx, &infos[i]);
    }
    free(infos);
    return *out == NULL ? ndb_errmsg_set(msg, NDB_EIO, "index created but not listed") : NDB_OK;
}

ndb_status svc_index_drop(ndb_doc_db *docs, const char *coll, const char *name, bool *dropped, ndb_errmsg *msg)
{
    ndb_status st = ndb_doc_drop_index(docs, coll, name, msg);
    if (st != NDB_OK && st != NDB_ENOTFOUND)
        return st;
    *dropped = st == NDB_OK;
    return NDB_OK;
}

ndb_status svc_index_list(svc_ctx *ctx, ndb_doc_db *docs, const char *coll, Nexadb__V1__IndexInfo ***out, size_t *n,
                          ndb_errmsg *msg)
{
    ndb_doc_index_info *infos = NULL;
    size_t ni = 0;
    ndb_status st = ndb_doc_list_indexes(docs, coll, &infos, &ni, msg);
    if (st != NDB_OK)
        return st;
    *n = 0;
    *out = ni > 0 ? svc_alloc(ctx, ni * sizeof **out) : NULL;
    for (size_t i = 0; *out != NULL && i < ni; i++) {
        if (((*out)[i] = index_info(ctx, &infos[i])) == NULL)
            break;
        (*n)++;
    }
    free(infos);
    return *n == ni ? NDB_OK : svc_oom(msg);
}
