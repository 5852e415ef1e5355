/*
 * h_vector.c — VectorService over vector/ (ndb_vec.h).
 *
 * Each handler decodes its request, calls one ndb_vec_* entry point and
 * encodes the answer. vector/ keeps a vector collection's documents and
 * vectors together (one kv batch per write, one snapshot per read) in a
 * namespace of its own, so nothing here touches the document collections:
 * DocumentService and VectorService may each have a collection of one name.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "convert.h"
#include "h_vector.h"
#include "handler.h"
#include "indexes.h"

#define DEFAULT_LIMIT 10

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
    Nexadb__V1__VectorIndex *ix = svc_alloc(ctx, sizeof *ix);
    if (ix == NULL)
        return NULL;
    nexadb__v1__vector_index__init(ix);
    ix->kind = vi->index.kind == NDB_VEC_INDEX_HNSW ? NEXADB__V1__VECTOR_INDEX__KIND__KIND_HNSW
                                                    : NEXADB__V1__VECTOR_INDEX__KIND__KIND_EXACT;
    ix->m = (int32_t)vi->index.m;
    ix->ef_construction = (int32_t)vi->index.ef_construction;
    ix->quantization = vi->index.quantization == NDB_VEC_QUANT_INT8 ? NEXADB__V1__VECTOR_INDEX__QUANTIZATION__QUANTIZATION_INT8
                       : vi->index.quantization == NDB_VEC_QUANT_F16
                           ? NEXADB__V1__VECTOR_INDEX__QUANTIZATION__QUANTIZATION_FLOAT16
                           : NEXADB__V1__VECTOR_INDEX__QUANTIZATION__QUANTIZATION_NONE;
    ix->oversample = (int32_t)vi->index.oversample;
    ci->index = ix;
    ci->indexed = (int64_t)vi->indexed;
    ci->index_building = vi->building != 0;
    ci->index_bytes = (int64_t)vi->graph_bytes;
    ci->memory_bytes = (int64_t)vi->memory_bytes;
    return ci->name != NULL ? ci : NULL;
}

/* The request's index (absent: exact). */
static ndb_status index_from_pb(const Nexadb__V1__VectorIndex *pb, ndb_vec_index *out, ndb_errmsg *msg)
{
    *out = (ndb_vec_index){.kind = NDB_VEC_INDEX_EXACT};
    if (pb == NULL || pb->kind == NEXADB__V1__VECTOR_INDEX__KIND__KIND_UNSPECIFIED ||
        pb->kind == NEXADB__V1__VECTOR_INDEX__KIND__KIND_EXACT)
        return NDB_OK;
    if (pb->kind != NEXADB__V1__VECTOR_INDEX__KIND__KIND_HNSW)
        return ndb_errmsg_set(msg, NDB_EINVAL, "unknown index kind %d (KIND_EXACT or KIND_HNSW)", (int)pb->kind);
    if (pb->m < 0 || pb->ef_construction < 0 || pb->oversample < 0)
        return ndb_errmsg_set(msg, NDB_EINVAL, "index m, ef_construction and oversample must not be negative");
    ndb_vec_quant q = NDB_VEC_QUANT_NONE;
    if (pb->quantization == NEXADB__V1__VECTOR_INDEX__QUANTIZATION__QUANTIZATION_INT8)
        q = NDB_VEC_QUANT_INT8;
    else if (pb->quantization == NEXADB__V1__VECTOR_INDEX__QUANTIZATION__QUANTIZATION_FLOAT16)
        q = NDB_VEC_QUANT_F16;
    else if (pb->quantization != NEXADB__V1__VECTOR_INDEX__QUANTIZATION__QUANTIZATION_UNSPECIFIED &&
             pb->quantization != NEXADB__V1__VECTOR_INDEX__QUANTIZATION__QUANTIZATION_NONE)
        return ndb_errmsg_set(msg, NDB_EINVAL,
                              "unknown quantization %d (QUANTIZATION_NONE, QUANTIZATION_INT8 or QUANTIZATION_FLOAT16)",
                              (int)pb->quantization);
    *out = (ndb_vec_index){NDB_VEC_INDEX_HNSW, (uint32_t)pb->m, (uint32_t)pb->ef_construction, q,
                           (uint32_t)pb->oversample};
    return NDB_OK;
}

/* A copy of n floats in arena (call or page memory); NULL when out of it. */
static float *copy_floats(svc_arena *arena, const float *v, size_t n)
{
    float *out = svc_arena_alloc(arena, n * sizeof *out);
    if (out != NULL)
        memcpy(out, v, n * sizeof *out);
    return out;
}

static ndb_status create(svc_ctx *ctx, const ProtobufCMessage *req, ProtobufCMessage **resp, ndb_errmsg *msg)
{
    const Nexadb__V1__CreateVectorCollectionRequest *r = (const void *)req;
    if (r->dimensions < 1 || (uint32_t)r->dimensions > NDB_VEC_MAX_DIMS)
        return ndb_errmsg_set(msg, NDB_EINVAL, "dimensions must be 1 to %u, got %d", NDB_VEC_MAX_DIMS, r->dimensions);
    ndb_vec_metric m = r->metric == NEXADB__V1__VECTOR_METRIC__VECTOR_METRIC_DOT  ? NDB_VEC_DOT
                       : r->metric == NEXADB__V1__VECTOR_METRIC__VECTOR_METRIC_L2 ? NDB_VEC_L2
                                                                                  : NDB_VEC_COSINE;
    ndb_vec_index ix;
    ndb_status st = index_from_pb(r->index, &ix, msg);
    if (st != NDB_OK)
        return st;
    st = ndb_vec_create(ctx->app->vec, r->collection, (uint32_t)r->dimensions, m, &ix, msg);
    ndb_vec_info vi;
    if (st == NDB_EEXIST && r->if_not_exists) {
        if ((st = ndb_vec_stats(ctx->app->vec, r->collection, &vi, msg)) != NDB_OK)
            return st;
        if (vi.dims != (uint32_t)r->dimensions || vi.metric != m)
            return ndb_errmsg_set(msg, NDB_EEXIST, "vector collection '%.64s' exists with %u dimensions and metric %s",
                                  r->collection, vi.dims, ndb_vec_metric_name(vi.metric));
        if (r->index != NULL && vi.index.kind != ix.kind) /* SetVectorIndex changes it */
            return ndb_errmsg_set(msg, NDB_EEXIST, "vector collection '%.64s' exists with index %s", r->collection,
                                  ndb_vec_index_name(vi.index.kind));
    } else if (st != NDB_OK) {
        return st;
    } else if ((st = ndb_vec_stats(ctx->app->vec, r->collection, &vi, msg)) != NDB_OK) {
        return st;
    }
    Nexadb__V1__CreateVectorCollectionResponse *out = svc_alloc(ctx, sizeof *out);
    if (out == NULL)
        return svc_oom(msg);
    nexadb__v1__create_vector_collection_response__init(out);
    if ((out->collection = svc_vec_collection_info(ctx, &vi)) == NULL)
        return svc_oom(msg);
    *resp = &out->base;
    return NDB_OK;
}

static ndb_status set_index(svc_ctx *ctx, const ProtobufCMessage *req, ProtobufCMessage **resp, ndb_errmsg *msg)
{
    const Nexadb__V1__SetVectorIndexRequest *r = (const void *)req;
    ndb_vec_index ix;
    ndb_vec_info vi;
    ndb_status st = index_from_pb(r->index, &ix, msg);
    if (st == NDB_OK && r->index == NULL)
        st = ndb_errmsg_set(msg, NDB_EINVAL, "index is missing");
    if (st != NDB_OK || (st = ndb_vec_set_index(ctx->app->vec, r->collection, &ix, msg)) != NDB_OK ||
        (st = ndb_vec_stats(ctx->app->vec, r->collection, &vi, msg)) != NDB_OK)
        return st;
    Nexadb__V1__SetVectorIndexResponse *out = svc_alloc(ctx, sizeof *out);
    if (out == NULL)
        return svc_oom(msg);
    nexadb__v1__set_vector_index_response__init(out);
    if ((out->collection = svc_vec_collection_info(ctx, &vi)) == NULL)
        return svc_oom(msg);
    *resp = &out->base;
    return NDB_OK;
}

static ndb_status drop(svc_ctx *ctx, const ProtobufCMessage *req, ProtobufCMessage **resp, ndb_errmsg *msg)
{
    const Nexadb__V1__DropVectorCollectionRequest *r = (const void *)req;
    ndb_status st = ndb_vec_drop(ctx->app->vec, r->collection, msg);
    if (st != NDB_OK && st != NDB_ENOTFOUND)
        return st;
    Nexadb__V1__DropVectorCollectionResponse *out = svc_alloc(ctx, sizeof *out);
    if (out == NULL)
        return svc_oom(msg);
    nexadb__v1__drop_vector_collection_response__init(out);
    out->dropped = st == NDB_OK;
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
        return svc_oom(msg);
    *resp = &out->base;
    return NDB_OK;
}

/*
 * Inserts n documents with their vectors in one ndb_vec_insert. Every vector
 * must have as many components as the first (vector/ checks that count
 * against the collection). On NDB_OK *ids is an array of n ids in call memory.
 */
static ndb_status insert_items(svc_ctx *ctx, const char *coll, Nexadb__V1__Document *const *docs,
                               const size_t *n_vec, float *const *vecs, size_t n, char ***ids, ndb_errmsg *msg)
{
    ndb_vec_item *items = svc_alloc(ctx, n * sizeof *items);
    char **out = svc_alloc(ctx, n * sizeof *out);
    if (items == NULL || out == NULL)
        return svc_oom(msg);
    for (size_t i = 0; i < n; i++) {
        if (n_vec[i] != n_vec[0])
            return ndb_errmsg_set(msg, NDB_EINVAL, "documents[%zu].vector has %zu dimensions; documents[0].vector has %zu",
                                  i, n_vec[i], n_vec[0]);
        ndb_status st = n == 1 ? svc_encode(&ctx->arena, docs[i], 1, "document", &items[i].doc, &items[i].doc_len, msg)
                               : svc_encode_nth(&ctx->arena, docs[i], "documents", i, ".document", &items[i].doc,
                                                &items[i].doc_len, msg);
        if (st != NDB_OK)
            return st;
        items[i].vector = vecs[i];
    }
    char **got = NULL;
    ndb_status st = ndb_vec_insert(ctx->app->vec, coll, items, n, (uint32_t)n_vec[0], &got, msg);
    if (st != NDB_OK)
        return st;
    size_t copied = 0;
    while (copied < n && (out[copied] = svc_arena_strndup(&ctx->arena, got[copied], strlen(got[copied]))) != NULL)
        copied++;
    ndb_doc_ids_free(got, n);
    if (copied != n)
        return svc_oom(msg);
    *ids = out;
    return NDB_OK;
}

static ndb_status insert_one(svc_ctx *ctx, const ProtobufCMessage *req, ProtobufCMessage **resp, ndb_errmsg *msg)
{
    const Nexadb__V1__InsertVectorRequest *r = (const void *)req;
    char **ids = NULL;
    Nexadb__V1__InsertVectorResponse *out = svc_alloc(ctx, sizeof *out);
    if (out == NULL)
        return svc_oom(msg);
    ndb_status st = insert_items(ctx, r->collection, &r->document, &r->n_vector, &r->vector, 1, &ids, msg);
    if (st != NDB_OK)
        return st;
    nexadb__v1__insert_vector_response__init(out);
    out->document_id = ids[0];
    *resp = &out->base;
    return NDB_OK;
}

static ndb_status insert_many(svc_ctx *ctx, const ProtobufCMessage *req, ProtobufCMessage **resp, ndb_errmsg *msg)
{
    const Nexadb__V1__InsertVectorsRequest *r = (const void *)req;
    size_t n = r->n_documents;
    Nexadb__V1__InsertVectorsResponse *out = svc_alloc(ctx, sizeof *out);
    if (out == NULL)
        return svc_oom(msg);
    nexadb__v1__insert_vectors_response__init(out);
    *resp = &out->base;
    if (n == 0)
        return NDB_OK;
    Nexadb__V1__Document **docs = svc_alloc(ctx, n * sizeof *docs);
    size_t *n_vec = svc_alloc(ctx, n * sizeof *n_vec);
    float **vecs = svc_alloc(ctx, n * sizeof *vecs);
    if (docs == NULL || n_vec == NULL || vecs == NULL)
        return svc_oom(msg);
    for (size_t i = 0; i < n; i++) {
        docs[i] = r->documents[i]->document;
        n_vec[i] = r->documents[i]->n_vector;
        vecs[i] = r->documents[i]->vector;
    }
    ndb_status st = insert_items(ctx, r->collection, docs, n_vec, vecs, n, &out->document_ids, msg);
    if (st != NDB_OK)
        return st;
    out->n_document_ids = n;
    out->count = (int64_t)n;
    return NDB_OK;
}

static ndb_status upsert(svc_ctx *ctx, const ProtobufCMessage *req, ProtobufCMessage **resp, ndb_errmsg *msg)
{
    const Nexadb__V1__UpsertVectorRequest *r = (const void *)req;
    if (r->id[0] == '\0')
        return ndb_errmsg_set(msg, NDB_EINVAL, "id: required for an upsert");
    ndb_vec_item item = {.vector = r->vector};
    ndb_status st = svc_encode(&ctx->arena, r->document, 1, "document", &item.doc, &item.doc_len, msg);
    int inserted = 0;
    if (st != NDB_OK ||
        (st = ndb_vec_upsert(ctx->app->vec, r->collection, r->id, &item, (uint32_t)r->n_vector, &inserted, msg)) !=
            NDB_OK)
        return st;
    Nexadb__V1__UpsertVectorResponse *out = svc_alloc(ctx, sizeof *out);
    if (out == NULL)
        return svc_oom(msg);
    nexadb__v1__upsert_vector_response__init(out);
    out->inserted = inserted != 0;
    *resp = &out->base;
    return NDB_OK;
}

static ndb_status get(svc_ctx *ctx, const ProtobufCMessage *req, ProtobufCMessage **resp, ndb_errmsg *msg)
{
    const Nexadb__V1__GetVectorRequest *r = (const void *)req;
    Nexadb__V1__GetVectorResponse *out = svc_alloc(ctx, sizeof *out);
    if (out == NULL)
        return svc_oom(msg);
    nexadb__v1__get_vector_response__init(out);
    void *doc = NULL;
    size_t len = 0;
    float *vec = NULL;
    uint32_t dims = 0;
    ndb_status st = ndb_vec_get(ctx->app->vec, r->collection, r->id, &doc, &len, r->include_vector ? &vec : NULL,
                                &dims, msg);
    if (st != NDB_OK)
        return st;
    st = svc_doc_to_document(&ctx->arena, doc, len, &out->document, msg);
    free(doc);
    if (st == NDB_OK && vec != NULL) {
        if ((out->vector = svc_alloc(ctx, (size_t)dims * sizeof *vec)) == NULL)
            st = svc_oom(msg);
        else {
            memcpy(out->vector, vec, (size_t)dims * sizeof *vec);
            out->n_vector = dims;
        }
    }
    free(vec);
    if (st != NDB_OK)
        return st;
    *resp = &out->base;
    return NDB_OK;
}

static ndb_status delete_one(svc_ctx *ctx, const ProtobufCMessage *req, ProtobufCMessage **resp, ndb_errmsg *msg)
{
    const Nexadb__V1__DeleteVectorRequest *r = (const void *)req;
    ndb_status st = ndb_vec_delete(ctx->app->vec, r->collection, r->id, msg);
    if (st != NDB_OK && st != NDB_ENOTFOUND)
        return st;
    Nexadb__V1__DeleteVectorResponse *out = svc_alloc(ctx, sizeof *out);
    if (out == NULL)
        return svc_oom(msg);
    nexadb__v1__delete_vector_response__init(out);
    out->success = st == NDB_OK;
    *resp = &out->base;
    return NDB_OK;
}

/* Settings shared by Search and SearchBatch (the request's fields of the
 * same names); the filter is encoded once, here. */
typedef struct query_fields {
    int32_t limit;
    const Nexadb__V1__Document *filter;
    const Google__Protobuf__FloatValue *min_score;
    int with_vectors;
    int32_t ef;
    int exact;
} query_fields;

static ndb_status prepare_query(svc_ctx *ctx, const query_fields *f, ndb_vec_query *q, ndb_errmsg *msg)
{
    int32_t limit = f->limit;
    const Nexadb__V1__Document *filter = f->filter;
    const Google__Protobuf__FloatValue *min_score = f->min_score;
    if (limit < 0 || (uint32_t)limit > NDB_VEC_MAX_K)
        return ndb_errmsg_set(msg, NDB_EINVAL, "limit must be 1 to %u, got %d", NDB_VEC_MAX_K, limit);
    if (f->ef < 0 || (uint32_t)f->ef > NDB_VEC_MAX_K)
        return ndb_errmsg_set(msg, NDB_EINVAL, "ef must be 0 to %u, got %d", NDB_VEC_MAX_K, f->ef);
    memset(q, 0, sizeof *q);
    q->k = limit ? (uint32_t)limit : DEFAULT_LIMIT;
    q->ef = (uint32_t)f->ef;
    q->exact = f->exact;
    int with_vectors = f->with_vectors;
    q->with_vectors = with_vectors;
    q->with_documents = 1;
    q->interrupt = svc_interrupt(ctx);
    if (min_score != NULL) {
        q->has_min_score = 1;
        q->min_score = min_score->value;
    }
    if (svc_document_empty(filter))
        return NDB_OK; /* no filter: every document is ranked */
    return svc_encode(&ctx->arena, filter, 0, "filter", &q->filter, &q->filter_len, msg);
}

/* Fills a SearchResponse from one result; hit vectors have dims floats; with
 * explain, the plan too. */
static ndb_status build_hits(svc_ctx *ctx, const ndb_vec_result *res, uint32_t dims, int explain,
                             Nexadb__V1__SearchResponse *out, ndb_errmsg *msg)
{
    nexadb__v1__search_response__init(out);
    if (explain) {
        Nexadb__V1__SearchPlan *p = svc_alloc(ctx, sizeof *p);
        if (p == NULL)
            return svc_oom(msg);
        nexadb__v1__search_plan__init(p);
        p->path = (char *)res->plan.path; /* a static string */
        p->graph_nodes = (int64_t)res->plan.graph_nodes;
        p->exact_rows = (int64_t)res->plan.exact_rows;
        p->candidates = (int64_t)res->plan.candidates;
        p->ef = (int32_t)res->plan.ef;
        out->plan = p;
    }
    if (res->n == 0)
        return NDB_OK;
    out->results = svc_alloc(ctx, res->n * sizeof *out->results);
    Nexadb__V1__SearchHit *hits = svc_alloc(ctx, res->n * sizeof *hits);
    if (out->results == NULL || hits == NULL)
        return svc_oom(msg);
    for (size_t i = 0; i < res->n; i++) {
        const ndb_vec_hit *h = &res->hits[i];
        Nexadb__V1__SearchHit *o = &hits[i];
        nexadb__v1__search_hit__init(o);
        if ((o->document_id = svc_arena_strndup(&ctx->arena, h->id, h->id_len)) == NULL)
            return svc_oom(msg);
        o->similarity = h->score;
        ndb_status st;
        if (h->doc != NULL && (st = svc_doc_to_document(&ctx->arena, h->doc, h->doc_len, &o->document, msg)) != NDB_OK)
            return st;
        if (h->vector != NULL) {
            if ((o->vector = copy_floats(&ctx->arena, h->vector, dims)) == NULL)
                return svc_oom(msg);
            o->n_vector = dims;
        }
        out->results[out->n_results++] = o;
    }
    return NDB_OK;
}

static ndb_status search(svc_ctx *ctx, const ProtobufCMessage *req, ProtobufCMessage **resp, ndb_errmsg *msg)
{
    const Nexadb__V1__SearchRequest *r = (const void *)req;
    if (r->dimensions != 0 && (size_t)r->dimensions != r->n_vector)
        return ndb_errmsg_set(msg, NDB_EINVAL, "dimensions is %d but vector has %zu components", r->dimensions,
                              r->n_vector);
    ndb_vec_query q;
    query_fields f = {r->limit, r->filter, r->min_score, r->include_vectors, r->ef, r->exact};
    ndb_status st = prepare_query(ctx, &f, &q, msg);
    if (st != NDB_OK)
        return st;
    Nexadb__V1__SearchResponse *out = svc_alloc(ctx, sizeof *out);
    if (out == NULL)
        return svc_oom(msg);
    ndb_vec_result *res = NULL;
    if ((st = ndb_vec_search(ctx->app->vec, r->collection, r->vector, (uint32_t)r->n_vector, &q, &res, msg)) != NDB_OK)
        return st;
    st = build_hits(ctx, res, (uint32_t)r->n_vector, r->explain, out, msg);
    ndb_vec_results_free(res, 1);
    if (st != NDB_OK)
        return st;
    *resp = &out->base;
    return NDB_OK;
}

static ndb_status search_batch(svc_ctx *ctx, const ProtobufCMessage *req, ProtobufCMessage **resp, ndb_errmsg *msg)
{
    const Nexadb__V1__SearchBatchRequest *r = (const void *)req;
    size_t nq = r->n_queries;
    Nexadb__V1__SearchBatchResponse *out = svc_alloc(ctx, sizeof *out);
    if (out == NULL)
        return svc_oom(msg);
    nexadb__v1__search_batch_response__init(out);
    *resp = &out->base;
    if (nq == 0)
        return NDB_OK;
    size_t dims = r->queries[0]->n_vector;
    float *qs = svc_alloc(ctx, nq * dims * sizeof *qs);
    Nexadb__V1__SearchResponse *each = svc_alloc(ctx, nq * sizeof *each);
    out->results = svc_alloc(ctx, nq * sizeof *out->results);
    if (qs == NULL || each == NULL || out->results == NULL)
        return svc_oom(msg);
    for (size_t i = 0; i < nq; i++) {
        if (r->queries[i]->n_vector != dims)
            return ndb_errmsg_set(msg, NDB_EINVAL, "queries[%zu].vector has %zu dimensions; queries[0].vector has %zu",
                                  i, r->queries[i]->n_vector, dims);
        if (dims > 0) /* an empty vector is NULL; vector/ names the dimension mismatch */
            memcpy(qs + i * dims, r->queries[i]->vector, dims * sizeof *qs);
    }
    ndb_vec_query q;
    ndb_vec_result *res = NULL;
    query_fields f = {r->limit, r->filter, r->min_score, r->include_vectors, r->ef, r->exact};
    ndb_status st = prepare_query(ctx, &f, &q, msg);
    if (st != NDB_OK ||
        (st = ndb_vec_search_batch(ctx->app->vec, r->collection, qs, nq, (uint32_t)dims, &q, &res, msg)) != NDB_OK)
        return st;
    for (size_t i = 0; i < nq && st == NDB_OK; i++) {
        st = build_hits(ctx, &res[i], (uint32_t)dims, r->explain, &each[i], msg);
        out->results[out->n_results++] = &each[i];
    }
    ndb_vec_results_free(res, nq);
    return st;
}

/* A FindVectors stream: the cursor, its vectors' dimensions, the page being filled. */
typedef struct vec_stream {
    ndb_vec_cursor *cur;
    uint32_t dims;
    Nexadb__V1__VectorDocument **docs;
} vec_stream;

static ndb_status vec_next(svc_ctx *ctx, void *state, size_t i, size_t room, size_t *bytes, bool *end,
                           ndb_errmsg *msg)
{
    vec_stream *s = state;
    if (i == 0 && (s->docs = svc_page_alloc(ctx, room * sizeof *s->docs)) == NULL)
        return svc_oom(msg);
    const void *doc;
    size_t len;
    const float *vec;
    ndb_status st = ndb_vec_cursor_next(s->cur, &doc, &len, &vec, msg);
    if (st != NDB_OK || (*end = doc == NULL))
        return st;
    Nexadb__V1__VectorDocument *vd = svc_page_alloc(ctx, sizeof *vd);
    if (vd == NULL)
        return svc_oom(msg);
    nexadb__v1__vector_document__init(vd);
    if ((st = svc_doc_to_document(&ctx->page_arena, doc, len, &vd->document, msg)) != NDB_OK)
        return st;
    if ((vd->vector = copy_floats(&ctx->page_arena, vec, s->dims)) == NULL)
        return svc_oom(msg);
    vd->n_vector = s->dims;
    s->docs[i] = vd;
    *bytes += len + (size_t)s->dims * sizeof(float);
    return NDB_OK;
}

static ndb_status vec_token(void *state, void **tok, size_t *len)
{
    return ndb_vec_cursor_page_token(((vec_stream *)state)->cur, tok, len);
}

static ndb_status vec_send(svc_ctx *ctx, void *state, size_t n, int64_t count, char *token, bool last,
                           ndb_errmsg *msg)
{
    (void)last;
    Nexadb__V1__FindVectorsResponse page = NEXADB__V1__FIND_VECTORS_RESPONSE__INIT;
    page.documents = ((vec_stream *)state)->docs;
    page.n_documents = n;
    page.count = count;
    if (token != NULL)
        page.next_page_token = token;
    return svc_send(ctx, &page.base, msg);
}

static const svc_pager vec_pager = {vec_next, vec_token, vec_send};

static ndb_status find_vectors(svc_ctx *ctx, const ProtobufCMessage *req, ProtobufCMessage **resp, ndb_errmsg *msg)
{
    (void)resp;
    const Nexadb__V1__FindVectorsRequest *r = (const void *)req;
    if (r->limit < 0)
        return ndb_errmsg_set(msg, NDB_EINVAL, "limit must not be negative");
    ndb_vec_find_opts o = {.limit = (uint64_t)r->limit, .interrupt = svc_interrupt(ctx)};
    ndb_status st;
    if ((!svc_document_empty(r->filter) &&
         (st = svc_encode(&ctx->arena, r->filter, 0, "filter", &o.filter, &o.filter_len, msg)) != NDB_OK) ||
        (st = svc_token_in(ctx, r->page_token, "page_token", &o.page_token, &o.page_token_len, msg)) != NDB_OK)
        return st;
    ndb_vec_cursor *cur = NULL;
    if ((st = ndb_vec_find(ctx->app->vec, r->collection, &o, &cur, msg)) != NDB_OK)
        return st;
    vec_stream vs = {.cur = cur, .dims = ndb_vec_cursor_dims(cur)};
    st = svc_stream_pages(ctx, &vec_pager, &vs, r->page_size, msg);
    ndb_vec_cursor_free(cur);
    return st;
}

static ndb_status create_index(svc_ctx *ctx, const ProtobufCMessage *req, ProtobufCMessage **resp, ndb_errmsg *msg)
{
    const Nexadb__V1__CreateDocumentIndexRequest *r = (const void *)req;
    svc_index_def d = {r->collection, r->fields, r->n_fields, r->unique, r->name, r->ttl};
    Nexadb__V1__CreateDocumentIndexResponse *out =
        SVC_NEW(ctx, Nexadb__V1__CreateDocumentIndexResponse, nexadb__v1__create_document_index_response__init);
    if (out == NULL)
        return svc_oom(msg);
    ndb_status st = svc_index_create(ctx, ndb_vec_documents(ctx->app->vec), &d, &out->index, msg);
    if (st == NDB_OK)
        *resp = &out->base;
    return st;
}

static ndb_status drop_index(svc_ctx *ctx, const ProtobufCMessage *req, ProtobufCMessage **resp, ndb_errmsg *msg)
{
    const Nexadb__V1__DropDocumentIndexRequest *r = (const void *)req;
    Nexadb__V1__DropDocumentIndexResponse *out =
        SVC_NEW(ctx, Nexadb__V1__DropDocumentIndexResponse, nexadb__v1__drop_document_index_response__init);
    if (out == NULL)
        return svc_oom(msg);
    bool dropped = false;
    ndb_status st = svc_index_drop(ndb_vec_documents(ctx->app->vec), r->collection, r->name, &dropped, msg);
    out->dropped = dropped;
    if (st == NDB_OK)
        *resp = &out->base;
    return st;
}

static ndb_status list_indexes(svc_ctx *ctx, const ProtobufCMessage *req, ProtobufCMessage **resp, ndb_errmsg *msg)
{
    const Nexadb__V1__ListDocumentIndexesRequest *r = (const void *)req;
    Nexadb__V1__ListDocumentIndexesResponse *out =
        SVC_NEW(ctx, Nexadb__V1__ListDocumentIndexesResponse, nexadb__v1__list_document_indexes_response__init);
    if (out == NULL)
        return svc_oom(msg);
    ndb_status st =
        svc_index_list(ctx, ndb_vec_documents(ctx->app->vec), r->collection, &out->indexes, &out->n_indexes, msg);
    if (st == NDB_OK)
        *resp = &out->base;
    return st;
}

static const svc_method methods[] = {
    {"CreateVectorCollection", create, SVC_M_WRITE},
    {"DropVectorCollection", drop, SVC_M_WRITE},
    {"SetVectorIndex", set_index, SVC_M_WRITE},
    {"ListVectorCollections", list, 0},
    {"InsertVector", insert_one, SVC_M_WRITE},
    {"InsertVectors", insert_many, SVC_M_WRITE},
    {"UpsertVector", upsert, SVC_M_WRITE},
    {"GetVector", get, 0},
    {"DeleteVector", delete_one, SVC_M_WRITE},
    {"Search", search, 0},
    {"SearchBatch", search_batch, 0},
    {"FindVectors", find_vectors, SVC_M_STREAM},
    {"CreateDocumentIndex", create_index, SVC_M_WRITE},
    {"DropDocumentIndex", drop_index, SVC_M_WRITE},
    {"ListDocumentIndexes", list_indexes, 0},
};

const svc_service svc_vector_service = {&nexadb__v1__vector_service__descriptor, methods,
                                        sizeof methods / sizeof methods[0]};
