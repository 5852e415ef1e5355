/*
 * h_vector.c — VectorService over vector/ (vectors) and engine/doc (documents).
 *
 * A vector collection named X is the document collection X plus the vector
 * collection X in the vector store; a document and its vector share the
 * document's _id. Writes go to the documents first, then to the vectors; if
 * the vector write fails the documents just written are deleted again. A
 * crash between the two leaves a document without a vector, which search
 * never returns (search is driven by vectors) and Get shows without one.
 *
 * A search filter runs as a pre-filter: the document layer finds the ids that
 * match (through an index where one fits), and only those are scored, so the
 * result is the true top-k among matching documents.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "convert.h"
#include "h_vector.h"
#include "handler.h"

#define DEFAULT_LIMIT 10

static ndb_status oom(ndb_errmsg *msg)
{
    return ndb_errmsg_set(msg, NDB_ELIMIT, "response over the call's memory bound");
}

static Nexadb__V1__VectorMetric metric_to_pb(ndb_vec_metric m)
{
    switch (m) {
    case NDB_VEC_DOT: return NEXADB__V1__VECTOR_METRIC__VECTOR_METRIC_DOT;
    case NDB_VEC_L2: return NEXADB__V1__VECTOR_METRIC__VECTOR_METRIC_L2;
    case NDB_VEC_COSINE: break;
    }
    return NEXADB__V1__VECTOR_METRIC__VECTOR_METRIC_COSINE;
}

Nexadb__V1__CollectionInfo *svc_vec_collection_info(svc_ctx *ctx, const ndb_vec_info *vi)
{
    Nexadb__V1__CollectionInfo *ci = svc_alloc(ctx, sizeof *ci);
    if (ci == NULL)
        return NULL;
    nexadb__v1__collection_info__init(ci);
    ci->name = svc_arena_strndup(&ctx->arena, vi->name, strlen(vi->name));
    ci->count = (int64_t)vi->rows;
    ci->size_bytes = (int64_t)vi->bytes;
    ci->dimensions = (int32_t)vi->dims;
    ci->metric = metric_to_pb(vi->metric);
    ci->kind = NEXADB__V1__COLLECTION_INFO__KIND__KIND_VECTORS;
    return ci->name != NULL ? ci : NULL;
}

/* The collection's dimensions; NOT_FOUND naming it when there is no such vector collection. */
static ndb_status coll_dims(svc_ctx *ctx, const char *name, uint32_t *dims, ndb_errmsg *msg)
{
    ndb_vec_info vi;
    ndb_status st = ndb_vec_stats(ctx->app->vec, name, &vi, msg);
    if (st == NDB_ENOTFOUND)
        return ndb_errmsg_set(msg, st, "no vector collection '%.64s' (create it with CreateVectorCollection)", name);
    if (st == NDB_OK)
        *dims = vi.dims;
    return st;
}

static ndb_status check_vector(size_t n, uint32_t dims, const char *what, ndb_errmsg *msg)
{
    if (n != dims)
        return ndb_errmsg_set(msg, NDB_EINVAL, "%s has %zu dimensions; the collection has %u", what, n, dims);
    return NDB_OK;
}

static ndb_status create(svc_ctx *ctx, const ProtobufCMessage *req, ProtobufCMessage **resp, ndb_errmsg *msg)
{
    const Nexadb__V1__CreateVectorCollectionRequest *r = (const void *)req;
    if (r->dimensions < 1 || (uint32_t)r->dimensions > NDB_VEC_MAX_DIMS)
        return ndb_errmsg_set(msg, NDB_EINVAL, "dimensions must be 1 to %u, got %d", NDB_VEC_MAX_DIMS, r->dimensions);
    ndb_vec_metric m = r->metric == NEXADB__V1__VECTOR_METRIC__VECTOR_METRIC_DOT  ? NDB_VEC_DOT
                       : r->metric == NEXADB__V1__VECTOR_METRIC__VECTOR_METRIC_L2 ? NDB_VEC_L2
                                                                                  : NDB_VEC_COSINE;
    ndb_status st = ndb_vec_create(ctx->app->vec, r->collection, (uint32_t)r->dimensions, m, msg);
    ndb_vec_info vi;
    if (st == NDB_EEXIST && r->if_not_exists) {
        if ((st = ndb_vec_stats(ctx->app->vec, r->collection, &vi, msg)) != NDB_OK)
            return st;
        if (vi.dims != (uint32_t)r->dimensions || vi.metric != m)
            return ndb_errmsg_set(msg, NDB_EEXIST, "vector collection '%.64s' exists with %u dimensions and metric %s",
                                  r->collection, vi.dims, ndb_vec_metric_name(vi.metric));
    } else if (st != NDB_OK) {
        return st;
    } else if ((st = ndb_vec_stats(ctx->app->vec, r->collection, &vi, msg)) != NDB_OK) {
        return st;
    }
    Nexadb__V1__CreateVectorCollectionResponse *out = svc_alloc(ctx, sizeof *out);
    if (out == NULL)
        return oom(msg);
    nexadb__v1__create_vector_collection_response__init(out);
    if ((out->collection = svc_vec_collection_info(ctx, &vi)) == NULL)
        return oom(msg);
    *resp = &out->base;
    return NDB_OK;
}

static ndb_status drop(svc_ctx *ctx, const ProtobufCMessage *req, ProtobufCMessage **resp, ndb_errmsg *msg)
{
    const Nexadb__V1__DropVectorCollectionRequest *r = (const void *)req;
    ndb_status st = ndb_vec_drop(ctx->app->vec, r->collection, msg);
    if (st != NDB_OK && st != NDB_ENOTFOUND)
        return st;
    int dropped = st == NDB_OK;
    if (dropped) {
        st = ndb_doc_drop_collection(ctx->app->doc, r->collection, msg);
        if (st != NDB_OK && st != NDB_ENOTFOUND)
            return st;
    }
    Nexadb__V1__DropVectorCollectionResponse *out = svc_alloc(ctx, sizeof *out);
    if (out == NULL)
        return oom(msg);
    nexadb__v1__drop_vector_collection_response__init(out);
    out->dropped = dropped;
    *resp = &out->base;
    return NDB_OK;
}

static ndb_status list(svc_ctx *ctx, const ProtobufCMessage *req, ProtobufCMessage **resp, ndb_errmsg *msg)
{
    (void)req;
    ndb_vec_info *infos = NULL;
    size_t n = 0;
    ndb_status st = ndb_vec_list(ctx->app->vec, &infos, &n);
    if (st != NDB_OK)
        return ndb_errmsg_set(msg, st, "listing vector collections: %s", ndb_strerror(st));
    Nexadb__V1__ListVectorCollectionsResponse *out = svc_alloc(ctx, sizeof *out);
    if (out != NULL) {
        nexadb__v1__list_vector_collections_response__init(out);
        out->collections = n ? svc_alloc(ctx, n * sizeof *out->collections) : NULL;
        for (size_t i = 0; (out->collections != NULL) && i < n; i++) {
            if ((out->collections[i] = svc_vec_collection_info(ctx, &infos[i])) == NULL)
                break;
            out->n_collections++;
        }
    }
    free(infos);
    if (out == NULL || out->n_collections != n)
        return oom(msg);
    *resp = &out->base;
    return NDB_OK;
}

/* Encodes a document, with `_id` = id first when id is given (upsert). */
static ndb_status encode_doc(svc_ctx *ctx, const Google__Protobuf__Struct *s, const char *id, const void **doc,
                             size_t *len, ndb_errmsg *msg)
{
    if (id == NULL)
        return svc_encode(&ctx->arena, s, 1, "document", doc, len, msg);
    ndb_doc_builder *b = svc_builder();
    if (b == NULL)
        return ndb_errmsg_set(msg, NDB_ENOMEM, "out of memory");
    ndb_doc_builder_reset(b);
    ndb_doc_begin_object(b);
    ndb_doc_key(b, "_id", 3);
    ndb_doc_string(b, id, strlen(id));
    for (size_t i = 0; s != NULL && i < s->n_fields; i++) {
        const Google__Protobuf__Struct__FieldsEntry *f = s->fields[i];
        if (strcmp(f->key, "_id") == 0) {
            if (f->value == NULL || f->value->kind_case != GOOGLE__PROTOBUF__VALUE__KIND_STRING_VALUE ||
                strcmp(f->value->string_value, id) != 0)
                return ndb_errmsg_set(msg, NDB_EINVAL, "document._id differs from the id being upserted");
            continue;
        }
        ndb_doc_key(b, f->key, strlen(f->key));
        if (f->value == NULL)
            return ndb_errmsg_set(msg, NDB_EINVAL, "field '%.100s' has no value", f->key);
        ndb_status st = svc_value_encode(b, f->value, msg);
        if (st != NDB_OK)
            return st;
    }
    ndb_doc_end_object(b);
    const void *tmp;
    ndb_status st = ndb_doc_builder_finish(b, &tmp, len);
    if (st != NDB_OK)
        return ndb_errmsg_set(msg, st, "document: %s", ndb_strerror(st));
    void *copy = svc_alloc(ctx, *len);
    if (copy == NULL)
        return oom(msg);
    memcpy(copy, tmp, *len);
    *doc = copy;
    return NDB_OK;
}

/* Deletes documents just inserted whose vectors were refused. */
static void undo_docs(svc_ctx *ctx, const char *coll, char **ids, size_t n)
{
    for (size_t i = 0; i < n; i++)
        ndb_doc_delete(ctx->app->doc, coll, ids[i], strlen(ids[i]), NULL);
}

/* Inserts n documents with their vectors; ids (caller frees with ndb_doc_ids_free) on success. */
static ndb_status insert_docs(svc_ctx *ctx, const char *coll, Google__Protobuf__Struct *const *structs,
                              const size_t *n_vec, float *const *vecs, size_t n, char ***ids, ndb_errmsg *msg)
{
    uint32_t dims = 0;
    ndb_status st = coll_dims(ctx, coll, &dims, msg);
    if (st != NDB_OK)
        return st;
    const void **docs = svc_alloc(ctx, n * sizeof *docs);
    size_t *lens = svc_alloc(ctx, n * sizeof *lens);
    ndb_vec_item *items = svc_alloc(ctx, n * sizeof *items);
    if (docs == NULL || lens == NULL || items == NULL)
        return oom(msg);
    for (size_t i = 0; i < n; i++) {
        char what[48];
        snprintf(what, sizeof what, n == 1 ? "vector" : "documents[%zu].vector", i);
        if ((st = check_vector(n_vec[i], dims, what, msg)) != NDB_OK ||
            (st = encode_doc(ctx, structs[i], NULL, &docs[i], &lens[i], msg)) != NDB_OK)
            return st;
    }
    if ((st = ndb_doc_insert(ctx->app->doc, coll, docs, lens, n, ids, msg)) != NDB_OK)
        return st;
    for (size_t i = 0; i < n; i++)
        items[i] = (ndb_vec_item){(*ids)[i], vecs[i]};
    if ((st = ndb_vec_insert_many(ctx->app->vec, coll, items, n, dims, 0, msg)) != NDB_OK) {
        undo_docs(ctx, coll, *ids, n);
        ndb_doc_ids_free(*ids, n);
        *ids = NULL;
    }
    return st;
}

static ndb_status insert_one(svc_ctx *ctx, const ProtobufCMessage *req, ProtobufCMessage **resp, ndb_errmsg *msg)
{
    const Nexadb__V1__InsertVectorRequest *r = (const void *)req;
    char **ids = NULL;
    Google__Protobuf__Struct *doc = r->document;
    ndb_status st = insert_docs(ctx, r->collection, &doc, &r->n_vector, &r->vector, 1, &ids, msg);
    if (st != NDB_OK)
        return st;
    Nexadb__V1__InsertVectorResponse *out = svc_alloc(ctx, sizeof *out);
    if (out != NULL) {
        nexadb__v1__insert_vector_response__init(out);
        out->document_id = svc_arena_strndup(&ctx->arena, ids[0], strlen(ids[0]));
    }
    ndb_doc_ids_free(ids, 1);
    if (out == NULL || out->document_id == NULL)
        return oom(msg);
    *resp = &out->base;
    return NDB_OK;
}

static ndb_status insert_many(svc_ctx *ctx, const ProtobufCMessage *req, ProtobufCMessage **resp, ndb_errmsg *msg)
{
    const Nexadb__V1__InsertVectorsRequest *r = (const void *)req;
    size_t n = r->n_documents;
    Nexadb__V1__InsertVectorsResponse *out = svc_alloc(ctx, sizeof *out);
    if (out == NULL)
        return oom(msg);
    nexadb__v1__insert_vectors_response__init(out);
    *resp = &out->base;
    if (n == 0)
        return NDB_OK;
    Google__Protobuf__Struct **structs = svc_alloc(ctx, n * sizeof *structs);
    size_t *n_vec = svc_alloc(ctx, n * sizeof *n_vec);
    float **vecs = svc_alloc(ctx, n * sizeof *vecs);
    out->document_ids = svc_alloc(ctx, n * sizeof *out->document_ids);
    if (structs == NULL || n_vec == NULL || vecs == NULL || out->document_ids == NULL)
        return oom(msg);
    for (size_t i = 0; i < n; i++) {
        structs[i] = r->documents[i]->document;
        n_vec[i] = r->documents[i]->n_vector;
        vecs[i] = r->documents[i]->vector;
    }
    char **ids = NULL;
    ndb_status st = insert_docs(ctx, r->collection, structs, n_vec, vecs, n, &ids, msg);
    if (st != NDB_OK)
        return st;
    for (size_t i = 0; i < n; i++) {
        if ((out->document_ids[i] = svc_arena_strndup(&ctx->arena, ids[i], strlen(ids[i]))) == NULL)
            break;
        out->n_document_ids++;
    }
    ndb_doc_ids_free(ids, n);
    if (out->n_document_ids != n)
        return oom(msg);
    out->count = (int64_t)n;
    return NDB_OK;
}

static ndb_status upsert(svc_ctx *ctx, const ProtobufCMessage *req, ProtobufCMessage **resp, ndb_errmsg *msg)
{
    const Nexadb__V1__UpsertVectorRequest *r = (const void *)req;
    if (r->id[0] == '\0')
        return ndb_errmsg_set(msg, NDB_EINVAL, "id: required for an upsert");
    uint32_t dims = 0;
    const void *doc;
    size_t len;
    ndb_status st;
    if ((st = coll_dims(ctx, r->collection, &dims, msg)) != NDB_OK ||
        (st = check_vector(r->n_vector, dims, "vector", msg)) != NDB_OK ||
        (st = encode_doc(ctx, r->document, r->id, &doc, &len, msg)) != NDB_OK)
        return st;
    /* Replace the document: remove the old one, insert the new one with the same _id. */
    st = ndb_doc_delete(ctx->app->doc, r->collection, r->id, strlen(r->id), msg);
    if (st != NDB_OK && st != NDB_ENOTFOUND)
        return st;
    int inserted = st == NDB_ENOTFOUND;
    if ((st = ndb_doc_insert(ctx->app->doc, r->collection, &doc, &len, 1, NULL, msg)) != NDB_OK)
        return st;
    if ((st = ndb_vec_upsert(ctx->app->vec, r->collection, r->id, r->vector, dims, msg)) != NDB_OK)
        return st;
    Nexadb__V1__UpsertVectorResponse *out = svc_alloc(ctx, sizeof *out);
    if (out == NULL)
        return oom(msg);
    nexadb__v1__upsert_vector_response__init(out);
    out->inserted = inserted;
    *resp = &out->base;
    return NDB_OK;
}

/* The document with this id as a Struct, or NULL (left unset) when it has none. */
static ndb_status load_doc(svc_ctx *ctx, svc_arena *arena, const char *coll, const char *id, size_t idlen,
                           Google__Protobuf__Struct **out, ndb_errmsg *msg)
{
    void *doc = NULL;
    size_t len = 0;
    ndb_status st = ndb_doc_get(ctx->app->doc, coll, id, idlen, &doc, &len, msg);
    if (st == NDB_ENOTFOUND) {
        *out = NULL;
        return NDB_OK;
    }
    if (st != NDB_OK)
        return st;
    st = svc_doc_to_struct(arena, doc, len, out, msg);
    free(doc);
    return st;
}

static ndb_status get(svc_ctx *ctx, const ProtobufCMessage *req, ProtobufCMessage **resp, ndb_errmsg *msg)
{
    const Nexadb__V1__GetVectorRequest *r = (const void *)req;
    uint32_t dims = 0;
    ndb_status st = coll_dims(ctx, r->collection, &dims, msg);
    if (st != NDB_OK)
        return st;
    Nexadb__V1__GetVectorResponse *out = svc_alloc(ctx, sizeof *out);
    float *vec = r->include_vector ? svc_alloc(ctx, (size_t)dims * sizeof *vec) : NULL;
    if (out == NULL || (r->include_vector && vec == NULL))
        return oom(msg);
    nexadb__v1__get_vector_response__init(out);
    st = ndb_vec_get(ctx->app->vec, r->collection, r->id, vec, dims, NULL, msg);
    if (st == NDB_ENOTFOUND)
        return ndb_errmsg_set(msg, st, "no vector with id '%.200s' in '%.64s'", r->id, r->collection);
    if (st != NDB_OK || (st = load_doc(ctx, &ctx->arena, r->collection, r->id, strlen(r->id), &out->document, msg)) != NDB_OK)
        return st;
    if (vec != NULL) {
        out->vector = vec;
        out->n_vector = dims;
    }
    *resp = &out->base;
    return NDB_OK;
}

static ndb_status delete_one(svc_ctx *ctx, const ProtobufCMessage *req, ProtobufCMessage **resp, ndb_errmsg *msg)
{
    const Nexadb__V1__DeleteVectorRequest *r = (const void *)req;
    ndb_status st = ndb_vec_delete(ctx->app->vec, r->collection, r->id, msg);
    if (st != NDB_OK && st != NDB_ENOTFOUND)
        return st;
    int deleted = st == NDB_OK;
    st = ndb_doc_delete(ctx->app->doc, r->collection, r->id, strlen(r->id), msg);
    if (st != NDB_OK && st != NDB_ENOTFOUND)
        return st;
    Nexadb__V1__DeleteVectorResponse *out = svc_alloc(ctx, sizeof *out);
    if (out == NULL)
        return oom(msg);
    nexadb__v1__delete_vector_response__init(out);
    out->success = deleted;
    *resp = &out->base;
    return NDB_OK;
}

/* Runs the filter through the document layer: the matching ids, for the vector pre-filter. */
static ndb_status filter_ids(svc_ctx *ctx, const char *coll, const Google__Protobuf__Struct *filter,
                             const char ***ids, size_t *n, ndb_errmsg *msg)
{
    ndb_doc_find_opts o = {0};
    Google__Protobuf__Value one = GOOGLE__PROTOBUF__VALUE__INIT;
    one.kind_case = GOOGLE__PROTOBUF__VALUE__KIND_NUMBER_VALUE;
    one.number_value = 1;
    Google__Protobuf__Struct__FieldsEntry e = GOOGLE__PROTOBUF__STRUCT__FIELDS_ENTRY__INIT;
    e.key = "_id";
    e.value = &one;
    Google__Protobuf__Struct__FieldsEntry *ep = &e;
    Google__Protobuf__Struct proj = GOOGLE__PROTOBUF__STRUCT__INIT;
    proj.n_fields = 1;
    proj.fields = &ep;
    ndb_status st;
    if ((st = svc_encode(&ctx->arena, filter, 1, "filter", &o.filter, &o.filter_len, msg)) != NDB_OK ||
        (st = svc_encode(&ctx->arena, &proj, 1, "projection", &o.projection, &o.projection_len, msg)) != NDB_OK)
        return st;
    ndb_doc_cursor *cur = NULL;
    if ((st = ndb_doc_find(ctx->app->doc, coll, &o, &cur, msg)) != NDB_OK)
        return st == NDB_ENOTFOUND ? NDB_OK : st; /* no documents: nothing matches */
    size_t cap = 1024;
    const char **list = svc_alloc(ctx, cap * sizeof *list);
    *n = 0;
    for (;;) {
        const void *doc;
        size_t len;
        if ((st = ndb_doc_cursor_next(cur, &doc, &len, msg)) != NDB_OK || doc == NULL)
            break;
        ndb_doc_val root, idv;
        if (ndb_doc_root(doc, len, &root) != NDB_OK || ndb_doc_get_field(&root, "_id", 3, &idv) != NDB_OK ||
            idv.type != NDB_DOC_STRING)
            continue;
        if (*n == cap) {
            const char **bigger = svc_alloc(ctx, 2 * cap * sizeof *bigger);
            if (bigger == NULL) {
                list = NULL;
                break;
            }
            memcpy(bigger, list, cap * sizeof *list);
            list = bigger;
            cap *= 2;
        }
        if (list == NULL || (list[*n] = svc_arena_strndup(&ctx->arena, idv.u.s.ptr, idv.u.s.len)) == NULL) {
            list = NULL;
            break;
        }
        (*n)++;
    }
    ndb_doc_cursor_free(cur);
    if (st != NDB_OK)
        return st;
    if (list == NULL)
        return ndb_errmsg_set(msg, NDB_ELIMIT, "filter matches too many documents for one call's memory bound");
    *ids = list;
    return NDB_OK;
}

/* Fills a SearchResponse from one result. */
static ndb_status build_hits(svc_ctx *ctx, const char *coll, const ndb_vec_result *res, uint32_t dims, int with_vectors,
                             Nexadb__V1__SearchResponse *out, ndb_errmsg *msg)
{
    nexadb__v1__search_response__init(out);
    if (res->n == 0)
        return NDB_OK;
    out->results = svc_alloc(ctx, res->n * sizeof *out->results);
    Nexadb__V1__SearchHit *hits = svc_alloc(ctx, res->n * sizeof *hits);
    if (out->results == NULL || hits == NULL)
        return oom(msg);
    for (size_t i = 0; i < res->n; i++) {
        const ndb_vec_hit *h = &res->hits[i];
        Nexadb__V1__SearchHit *o = &hits[i];
        nexadb__v1__search_hit__init(o);
        o->document_id = svc_arena_strndup(&ctx->arena, h->id, h->id_len);
        if (o->document_id == NULL)
            return oom(msg);
        o->similarity = h->score;
        ndb_status st = load_doc(ctx, &ctx->arena, coll, h->id, h->id_len, &o->document, msg);
        if (st != NDB_OK)
            return st;
        if (with_vectors && h->vector != NULL) {
            if ((o->vector = svc_alloc(ctx, (size_t)dims * sizeof(float))) == NULL)
                return oom(msg);
            memcpy(o->vector, h->vector, (size_t)dims * sizeof(float));
            o->n_vector = dims;
        }
        out->results[out->n_results++] = o;
    }
    return NDB_OK;
}

/* Settings shared by Search and SearchBatch; *none_match when the filter matches no document. */
static ndb_status prepare_query(svc_ctx *ctx, const char *coll, int32_t limit, const Google__Protobuf__Struct *filter,
                                const Google__Protobuf__FloatValue *min_score, int with_vectors, ndb_vec_query *q,
                                int *none_match, ndb_errmsg *msg)
{
    if (limit < 0 || (uint32_t)limit > NDB_VEC_MAX_K)
        return ndb_errmsg_set(msg, NDB_EINVAL, "limit must be 1 to %u, got %d", NDB_VEC_MAX_K, limit);
    memset(q, 0, sizeof *q);
    *none_match = 0;
    q->k = limit ? (uint32_t)limit : DEFAULT_LIMIT;
    q->with_vectors = with_vectors;
    if (min_score != NULL) {
        q->has_min_score = 1;
        q->min_score = min_score->value;
    }
    if (filter != NULL && filter->n_fields > 0) {
        const char **ids = NULL;
        size_t n = 0;
        ndb_status st = filter_ids(ctx, coll, filter, &ids, &n, msg);
        if (st != NDB_OK)
            return st;
        q->allow_ids = ids;
        q->n_allow = n;
        *none_match = n == 0;
    }
    return NDB_OK;
}

static ndb_status search(svc_ctx *ctx, const ProtobufCMessage *req, ProtobufCMessage **resp, ndb_errmsg *msg)
{
    const Nexadb__V1__SearchRequest *r = (const void *)req;
    uint32_t dims = 0;
    ndb_status st;
    if ((st = coll_dims(ctx, r->collection, &dims, msg)) != NDB_OK)
        return st;
    if (r->dimensions != 0 && (uint32_t)r->dimensions != dims)
        return ndb_errmsg_set(msg, NDB_EINVAL, "dimensions is %d; the collection has %u", r->dimensions, dims);
    if ((st = check_vector(r->n_vector, dims, "vector", msg)) != NDB_OK)
        return st;
    ndb_vec_query q;
    int none_match;
    if ((st = prepare_query(ctx, r->collection, r->limit, r->filter, r->min_score, r->include_vectors, &q, &none_match,
                            msg)) != NDB_OK)
        return st;
    Nexadb__V1__SearchResponse *out = svc_alloc(ctx, sizeof *out);
    if (out == NULL)
        return oom(msg);
    nexadb__v1__search_response__init(out);
    if (!none_match) {
        ndb_vec_result *res = NULL;
        if ((st = ndb_vec_search(ctx->app->vec, r->collection, r->vector, dims, &q, &res, msg)) != NDB_OK)
            return st;
        st = build_hits(ctx, r->collection, res, dims, r->include_vectors, out, msg);
        ndb_vec_results_free(res, 1);
        if (st != NDB_OK)
            return st;
    }
    *resp = &out->base;
    return NDB_OK;
}

static ndb_status search_batch(svc_ctx *ctx, const ProtobufCMessage *req, ProtobufCMessage **resp, ndb_errmsg *msg)
{
    const Nexadb__V1__SearchBatchRequest *r = (const void *)req;
    uint32_t dims = 0;
    ndb_status st;
    if ((st = coll_dims(ctx, r->collection, &dims, msg)) != NDB_OK)
        return st;
    size_t nq = r->n_queries;
    float *qs = nq ? svc_alloc(ctx, nq * dims * sizeof *qs) : NULL;
    if (nq && qs == NULL)
        return oom(msg);
    for (size_t i = 0; i < nq; i++) {
        char what[40];
        snprintf(what, sizeof what, "queries[%zu].vector", i);
        if ((st = check_vector(r->queries[i]->n_vector, dims, what, msg)) != NDB_OK)
            return st;
        memcpy(qs + i * dims, r->queries[i]->vector, dims * sizeof *qs);
    }
    ndb_vec_query q;
    int skip_search;
    if ((st = prepare_query(ctx, r->collection, r->limit, r->filter, r->min_score, r->include_vectors, &q, &skip_search,
                            msg)) != NDB_OK)
        return st;
    Nexadb__V1__SearchBatchResponse *out = svc_alloc(ctx, sizeof *out);
    Nexadb__V1__SearchResponse *each = nq ? svc_alloc(ctx, nq * sizeof *each) : NULL;
    if (out == NULL || (nq && each == NULL))
        return oom(msg);
    nexadb__v1__search_batch_response__init(out);
    if (nq == 0) {
        *resp = &out->base;
        return NDB_OK;
    }
    if ((out->results = svc_alloc(ctx, nq * sizeof *out->results)) == NULL)
        return oom(msg);
    ndb_vec_result *res = NULL;
    if (!skip_search && (st = ndb_vec_search_batch(ctx->app->vec, r->collection, qs, nq, dims, &q, &res, msg)) != NDB_OK)
        return st;
    for (size_t i = 0; i < nq && st == NDB_OK; i++) {
        ndb_vec_result empty = {0};
        st = build_hits(ctx, r->collection, skip_search ? &empty : &res[i], dims, r->include_vectors, &each[i], msg);
        out->results[out->n_results++] = &each[i];
    }
    if (res != NULL)
        ndb_vec_results_free(res, nq);
    if (st != NDB_OK)
        return st;
    *resp = &out->base;
    return NDB_OK;
}

static const svc_method methods[] = {
    {"CreateVectorCollection", create, SVC_M_WRITE},
    {"DropVectorCollection", drop, SVC_M_WRITE},
    {"ListVectorCollections", list, 0},
    {"InsertVector", insert_one, SVC_M_WRITE},
    {"InsertVectors", insert_many, SVC_M_WRITE},
    {"UpsertVector", upsert, SVC_M_WRITE},
    {"GetVector", get, 0},
    {"DeleteVector", delete_one, SVC_M_WRITE},
    {"Search", search, 0},
    {"SearchBatch", search_batch, 0},
};

const svc_service svc_vector_service = {&nexadb__v1__vector_service__descriptor, methods,
                                        sizeof methods / sizeof methods[0]};
