/*
 * h_document.c — DocumentService over engine/doc.
 *
 * Each handler encodes its Document inputs (convert.h), calls the engine once,
 * and builds its response in the call's arena. Find and Aggregate stream pages
 * of documents from one engine cursor (one snapshot).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "convert.h"
#include "h_watch.h"
#include "handler.h"
#include "indexes.h"
#include "nexadb/v1/document.pb-c.h"

/* Engine statuses that mean "nothing to act on" for calls that answer with a flag. */
static int is_missing(ndb_status st)
{
    return st == NDB_ENOTFOUND;
}

static Nexadb__V1__CollectionInfo *coll_info(svc_ctx *ctx, const ndb_doc_coll_info *ci)
{
    Nexadb__V1__CollectionInfo *out = SVC_NEW(ctx, Nexadb__V1__CollectionInfo, nexadb__v1__collection_info__init);
    if (out == NULL)
        return NULL;
    out->name = svc_arena_strndup(&ctx->arena, ci->name, strlen(ci->name));
    out->count = (int64_t)ci->count;
    out->size_bytes = (int64_t)ci->bytes;
    out->kind = NEXADB__V1__COLLECTION_INFO__KIND__KIND_DOCUMENTS;
    return out->name != NULL ? out : NULL;
}

static ndb_status create_collection(svc_ctx *ctx, const ProtobufCMessage *req, ProtobufCMessage **resp,
                                    ndb_errmsg *msg)
{
    const Nexadb__V1__CreateCollectionRequest *r = (const void *)req;
    ndb_status st = ndb_doc_create_collection(ctx->app->doc, r->collection, msg);
    if (st != NDB_OK)
        return st;
    Nexadb__V1__CreateCollectionResponse *out =
        SVC_NEW(ctx, Nexadb__V1__CreateCollectionResponse, nexadb__v1__create_collection_response__init);
    ndb_doc_coll_info ci = {.count = 0};
    snprintf(ci.name, sizeof ci.name, "%s", r->collection);
    if (out == NULL || (out->collection = coll_info(ctx, &ci)) == NULL)
        return svc_oom(msg);
    *resp = &out->base;
    return NDB_OK;
}

static ndb_status drop_collection(svc_ctx *ctx, const ProtobufCMessage *req, ProtobufCMessage **resp,
                                  ndb_errmsg *msg)
{
    const Nexadb__V1__DropCollectionRequest *r = (const void *)req;
    ndb_status st = ndb_doc_drop_collection(ctx->app->doc, r->collection, msg);
    if (st != NDB_OK && !is_missing(st))
        return st;
    Nexadb__V1__DropCollectionResponse *out =
        SVC_NEW(ctx, Nexadb__V1__DropCollectionResponse, nexadb__v1__drop_collection_response__init);
    if (out == NULL)
        return svc_oom(msg);
    out->dropped = st == NDB_OK;
    *resp = &out->base;
    return NDB_OK;
}

static ndb_status list_collections(svc_ctx *ctx, const ProtobufCMessage *req, ProtobufCMessage **resp,
                                   ndb_errmsg *msg)
{
    (void)req;
    ndb_doc_coll_info *infos = NULL;
    size_t n = 0;
    ndb_status st = ndb_doc_list_collections(ctx->app->doc, &infos, &n, msg);
    if (st != NDB_OK)
        return st;
    Nexadb__V1__ListCollectionsResponse *out =
        SVC_NEW(ctx, Nexadb__V1__ListCollectionsResponse, nexadb__v1__list_collections_response__init);
    if (out != NULL && n > 0)
        out->collections = svc_alloc(ctx, n * sizeof *out->collections);
    for (size_t i = 0; out != NULL && out->collections != NULL && i < n; i++) {
        if ((out->collections[i] = coll_info(ctx, &infos[i])) == NULL)
            break;
        out->n_collections++;
    }
    free(infos);
    if (out == NULL || out->n_collections != n)
        return svc_oom(msg);
    *resp = &out->base;
    return NDB_OK;
}

static ndb_status insert_one(svc_ctx *ctx, const ProtobufCMessage *req, ProtobufCMessage **resp, ndb_errmsg *msg)
{
    const Nexadb__V1__InsertOneRequest *r = (const void *)req;
    const void *doc;
    size_t len;
    ndb_status st = svc_encode(&ctx->arena, r->document, 1, "document", &doc, &len, msg);
    if (st != NDB_OK)
        return st;
    char **ids = NULL;
    if ((st = ndb_doc_insert_built(ctx->app->doc, r->collection, &doc, &len, 1, svc_interrupt(ctx), &ids, msg)) != NDB_OK)
        return st;
    Nexadb__V1__InsertOneResponse *out = SVC_NEW(ctx, Nexadb__V1__InsertOneResponse, nexadb__v1__insert_one_response__init);
    if (out != NULL)
        out->document_id = svc_arena_strndup(&ctx->arena, ids[0], strlen(ids[0]));
    ndb_doc_ids_free(ids, 1);
    if (out == NULL || out->document_id == NULL)
        return svc_oom(msg);
    *resp = &out->base;
    return NDB_OK;
}

static ndb_status insert_many(svc_ctx *ctx, const ProtobufCMessage *req, ProtobufCMessage **resp, ndb_errmsg *msg)
{
    const Nexadb__V1__InsertManyRequest *r = (const void *)req;
    size_t n = r->n_documents;
    Nexadb__V1__InsertManyResponse *out = SVC_NEW(ctx, Nexadb__V1__InsertManyResponse, nexadb__v1__insert_many_response__init);
    if (out == NULL)
        return svc_oom(msg);
    *resp = &out->base;
    if (n == 0)
        return NDB_OK;
    const void **docs = svc_alloc(ctx, n * sizeof *docs);
    size_t *lens = svc_alloc(ctx, n * sizeof *lens);
    out->document_ids = svc_alloc(ctx, n * sizeof *out->document_ids);
    if (docs == NULL || lens == NULL || out->document_ids == NULL)
        return svc_oom(msg);
    for (size_t i = 0; i < n; i++) {
        ndb_status st = svc_encode_nth(&ctx->arena, r->documents[i], "documents", i, "", &docs[i], &lens[i], msg);
        if (st != NDB_OK)
            return st;
    }
    char **ids = NULL;
    ndb_status st = ndb_doc_insert_built(ctx->app->doc, r->collection, docs, lens, n, svc_interrupt(ctx), &ids, msg);
    if (st != NDB_OK)
        return st;
    for (size_t i = 0; i < n; i++) {
        out->document_ids[i] = svc_arena_strndup(&ctx->arena, ids[i], strlen(ids[i]));
        if (out->document_ids[i] == NULL)
            break;
        out->n_document_ids++;
    }
    ndb_doc_ids_free(ids, n);
    if (out->n_document_ids != n)
        return svc_oom(msg);
    out->count = (int64_t)n;
    return NDB_OK;
}

/* Reads one document by id into a Document; NDB_ENOTFOUND passes through. */
static ndb_status load(svc_ctx *ctx, const char *coll, const char *id, Nexadb__V1__Document **out, ndb_errmsg *msg)
{
    void *doc = NULL;
    size_t len = 0;
    ndb_status st = (ctx->nowait ? ndb_doc_try_get : ndb_doc_get)(ctx->app->doc, coll, id, strlen(id), &doc, &len, msg);
    if (st != NDB_OK)
        return st;
    st = svc_doc_to_document(&ctx->arena, doc, len, out, msg);
    free(doc);
    return st;
}

static ndb_status get(svc_ctx *ctx, const ProtobufCMessage *req, ProtobufCMessage **resp, ndb_errmsg *msg)
{
    const Nexadb__V1__GetRequest *r = (const void *)req;
    Nexadb__V1__GetResponse *out = SVC_NEW(ctx, Nexadb__V1__GetResponse, nexadb__v1__get_response__init);
    if (out == NULL)
        return svc_oom(msg);
    ndb_status st = load(ctx, r->collection, r->id, &out->document, msg);
    if (st == NDB_ENOTFOUND)
        return ndb_errmsg_set(msg, st, "no document with _id '%.200s' in collection '%.64s'", r->id, r->collection);
    if (st != NDB_OK)
        return st;
    *resp = &out->base;
    return NDB_OK;
}

/* The planner's account of a finished cursor, as a Document in the page arena. */
static ndb_status explain_document(svc_ctx *ctx, const ndb_doc_cursor *cur, Nexadb__V1__Document **out,
                                   ndb_errmsg *msg)
{
    ndb_doc_explain ex;
    ndb_doc_cursor_explain(cur, &ex);
    ndb_doc_builder *b = svc_builder();
    if (b == NULL)
        return svc_oom(msg);
    ndb_doc_builder_reset(b);
    ndb_doc_begin_object(b);
    ndb_doc_key(b, "plan", 4);
    ndb_doc_string(b, ex.plan, strlen(ex.plan));
    ndb_doc_key(b, "index", 5);
    ndb_doc_string(b, ex.index, strlen(ex.index));
    ndb_doc_key(b, "keys_examined", 13);
    ndb_doc_int(b, (int64_t)ex.keys_examined);
    ndb_doc_key(b, "docs_examined", 13);
    ndb_doc_int(b, (int64_t)ex.docs_examined);
    ndb_doc_key(b, "returned", 8);
    ndb_doc_int(b, (int64_t)ex.returned);
    ndb_doc_key(b, "in_memory_sort", 14);
    ndb_doc_bool(b, ex.in_memory_sort != 0);
    ndb_doc_key(b, "spilled_bytes", 13);
    ndb_doc_int(b, (int64_t)ex.spilled_bytes);
    ndb_doc_end_object(b);
    const void *doc;
    size_t len;
    if (ndb_doc_builder_finish(b, &doc, &len) != NDB_OK)
        return svc_oom(msg);
    return svc_doc_to_document(&ctx->page_arena, doc, len, out, msg);
}

/* A Find or Aggregate stream: the cursor, the page being filled, and for
 * Find whether the last page carries the planner's explanation. */
typedef struct doc_stream {
    ndb_doc_cursor *cur;
    Nexadb__V1__Document **docs;
    bool explain;
} doc_stream;

static ndb_status doc_next(svc_ctx *ctx, void *state, size_t i, size_t room, size_t *bytes, bool *end,
                           ndb_errmsg *msg)
{
    doc_stream *s = state;
    if (i == 0 && (s->docs = svc_page_alloc(ctx, room * sizeof *s->docs)) == NULL)
        return svc_oom(msg);
    const void *doc;
    size_t len;
    ndb_status st = ndb_doc_cursor_next(s->cur, &doc, &len, msg);
    if (st != NDB_OK || (*end = doc == NULL))
        return st;
    *bytes += len;
    return svc_doc_to_document(&ctx->page_arena, doc, len, &s->docs[i], msg);
}

static ndb_status doc_token(void *state, void **tok, size_t *len)
{
    return ndb_doc_cursor_page_token(((doc_stream *)state)->cur, tok, len);
}

static ndb_status find_send(svc_ctx *ctx, void *state, size_t n, int64_t count, char *token, bool last,
                            ndb_errmsg *msg)
{
    doc_stream *s = state;
    Nexadb__V1__FindResponse page = NEXADB__V1__FIND_RESPONSE__INIT;
    page.documents = s->docs;
    page.n_documents = n;
    page.count = count;
    if (token != NULL)
        page.next_page_token = token;
    ndb_status st;
    if (last && s->explain && (st = explain_document(ctx, s->cur, &page.explain, msg)) != NDB_OK)
        return st;
    return svc_send(ctx, &page.base, msg);
}

static ndb_status aggregate_send(svc_ctx *ctx, void *state, size_t n, int64_t count, char *token, bool last,
                                 ndb_errmsg *msg)
{
    (void)token;
    (void)last;
    Nexadb__V1__AggregateResponse page = NEXADB__V1__AGGREGATE_RESPONSE__INIT;
    page.documents = ((doc_stream *)state)->docs;
    page.n_documents = n;
    page.count = count;
    return svc_send(ctx, &page.base, msg);
}

static const svc_pager find_pager = {doc_next, doc_token, find_send};
static const svc_pager aggregate_pager = {doc_next, NULL, aggregate_send};

static ndb_status find(svc_ctx *ctx, const ProtobufCMessage *req, ProtobufCMessage **resp, ndb_errmsg *msg)
{
    (void)resp;
    const Nexadb__V1__FindRequest *r = (const void *)req;
    if (r->skip < 0 || r->limit < 0)
        return ndb_errmsg_set(msg, NDB_EINVAL, "skip and limit must not be negative");
    ndb_doc_find_opts o = {.skip = (uint64_t)r->skip, .limit = (uint64_t)r->limit, .interrupt = svc_interrupt(ctx)};
    ndb_status st;
    if ((st = svc_encode(&ctx->arena, r->filter, 0, "filter", &o.filter, &o.filter_len, msg)) != NDB_OK ||
        (st = svc_encode(&ctx->arena, r->projection, 0, "projection", &o.projection, &o.projection_len, msg)) != NDB_OK ||
        (st = svc_encode(&ctx->arena, r->sort, 0, "sort", &o.sort, &o.sort_len, msg)) != NDB_OK ||
        (st = svc_token_in(ctx, r->page_token, "page_token", &o.page_token, &o.page_token_len, msg)) != NDB_OK)
        return st;
    ndb_doc_cursor *cur = NULL;
    if ((st = ndb_doc_find(ctx->app->doc, r->collection, &o, &cur, msg)) != NDB_OK)
        return st;
    doc_stream ds = {.cur = cur, .explain = r->explain};
    st = svc_stream_pages(ctx, &find_pager, &ds, r->page_size, msg);
    ndb_doc_cursor_free(cur);
    return st;
}

static ndb_status find_one(svc_ctx *ctx, const ProtobufCMessage *req, ProtobufCMessage **resp, ndb_errmsg *msg)
{
    const Nexadb__V1__FindOneRequest *r = (const void *)req;
    ndb_doc_find_opts o = {.limit = 1, .interrupt = svc_interrupt(ctx)};
    ndb_status st;
    if ((st = svc_encode(&ctx->arena, r->filter, 0, "filter", &o.filter, &o.filter_len, msg)) != NDB_OK ||
        (st = svc_encode(&ctx->arena, r->projection, 0, "projection", &o.projection, &o.projection_len, msg)) != NDB_OK ||
        (st = svc_encode(&ctx->arena, r->sort, 0, "sort", &o.sort, &o.sort_len, msg)) != NDB_OK)
        return st;
    Nexadb__V1__FindOneResponse *out = SVC_NEW(ctx, Nexadb__V1__FindOneResponse, nexadb__v1__find_one_response__init);
    if (out == NULL)
        return svc_oom(msg);
    void *doc = NULL;
    size_t len = 0;
    st = ndb_doc_find_one(ctx->app->doc, r->collection, &o, &doc, &len, msg);
    if (st == NDB_OK) {
        st = svc_doc_to_document(&ctx->arena, doc, len, &out->document, msg);
        free(doc);
    } else if (st == NDB_ENOTFOUND) {
        st = NDB_OK; /* no match: the document stays unset */
    }
    if (st != NDB_OK)
        return st;
    *resp = &out->base;
    return NDB_OK;
}

static ndb_status count(svc_ctx *ctx, const ProtobufCMessage *req, ProtobufCMessage **resp, ndb_errmsg *msg)
{
    const Nexadb__V1__CountRequest *r = (const void *)req;
    const void *filter;
    size_t flen;
    ndb_status st = svc_encode(&ctx->arena, r->filter, 0, "filter", &filter, &flen, msg);
    if (st != NDB_OK)
        return st;
    uint64_t n = 0;
    if ((st = ndb_doc_count(ctx->app->doc, r->collection, filter, flen, svc_interrupt(ctx), &n, msg)) != NDB_OK)
        return st;
    Nexadb__V1__CountResponse *out = SVC_NEW(ctx, Nexadb__V1__CountResponse, nexadb__v1__count_response__init);
    if (out == NULL)
        return svc_oom(msg);
    out->count = (int64_t)n;
    *resp = &out->base;
    return NDB_OK;
}

static ndb_status update(svc_ctx *ctx, const ProtobufCMessage *req, ProtobufCMessage **resp, ndb_errmsg *msg)
{
    const Nexadb__V1__UpdateRequest *r = (const void *)req;
    if (r->update == NULL)
        return ndb_errmsg_set(msg, NDB_EINVAL, "update: missing (send the fields to change)");
    const void *upd;
    size_t ulen;
    ndb_status st = svc_encode(&ctx->arena, r->update, 1, "update", &upd, &ulen, msg);
    if (st != NDB_OK)
        return st;
    Nexadb__V1__UpdateResponse *out = SVC_NEW(ctx, Nexadb__V1__UpdateResponse, nexadb__v1__update_response__init);
    if (out == NULL)
        return svc_oom(msg);
    st = ndb_doc_update(ctx->app->doc, r->collection, r->id, strlen(r->id), upd, ulen, svc_interrupt(ctx), msg);
    if (is_missing(st))
        return ndb_errmsg_set(msg, st, "no document with _id '%.200s' in collection '%.64s'", r->id, r->collection);
    if (st != NDB_OK)
        return st;
    out->success = 1;
    st = load(ctx, r->collection, r->id, &out->document, msg);
    if (st != NDB_OK && st != NDB_ENOTFOUND) /* not found: deleted by another call since */
        return st;
    *resp = &out->base;
    return NDB_OK;
}

static ndb_status update_many(svc_ctx *ctx, const ProtobufCMessage *req, ProtobufCMessage **resp, ndb_errmsg *msg)
{
    const Nexadb__V1__UpdateManyRequest *r = (const void *)req;
    if (r->update == NULL)
        return ndb_errmsg_set(msg, NDB_EINVAL, "update: missing (send update operators or fields)");
    const void *filter, *upd;
    size_t flen, ulen;
    ndb_status st;
    if ((st = svc_encode(&ctx->arena, r->filter, 0, "filter", &filter, &flen, msg)) != NDB_OK ||
        (st = svc_encode(&ctx->arena, r->update, 1, "update", &upd, &ulen, msg)) != NDB_OK)
        return st;
    ndb_doc_update_result res;
    if ((st = ndb_doc_update_many(ctx->app->doc, r->collection, filter, flen, upd, ulen, r->upsert, svc_interrupt(ctx), &res, msg)) != NDB_OK)
        return st;
    Nexadb__V1__UpdateManyResponse *out =
        SVC_NEW(ctx, Nexadb__V1__UpdateManyResponse, nexadb__v1__update_many_response__init);
    if (out == NULL)
        return svc_oom(msg);
    out->matched_count = (int64_t)res.matched;
    out->modified_count = (int64_t)res.modified;
    if (res.upserted_id[0] != '\0' &&
        (out->upserted_id = svc_arena_strndup(&ctx->arena, res.upserted_id, strlen(res.upserted_id))) == NULL)
        return svc_oom(msg);
    *resp = &out->base;
    return NDB_OK;
}

static ndb_status delete_one(svc_ctx *ctx, const ProtobufCMessage *req, ProtobufCMessage **resp, ndb_errmsg *msg)
{
    const Nexadb__V1__DeleteRequest *r = (const void *)req;
    ndb_status st = ndb_doc_delete(ctx->app->doc, r->collection, r->id, strlen(r->id), svc_interrupt(ctx), msg);
    if (is_missing(st))
        return ndb_errmsg_set(msg, st, "no document with _id '%.200s' in collection '%.64s'", r->id, r->collection);
    if (st != NDB_OK)
        return st;
    Nexadb__V1__DeleteResponse *out = SVC_NEW(ctx, Nexadb__V1__DeleteResponse, nexadb__v1__delete_response__init);
    if (out == NULL)
        return svc_oom(msg);
    out->success = 1;
    *resp = &out->base;
    return NDB_OK;
}

static ndb_status delete_many(svc_ctx *ctx, const ProtobufCMessage *req, ProtobufCMessage **resp, ndb_errmsg *msg)
{
    const Nexadb__V1__DeleteManyRequest *r = (const void *)req;
    const void *filter;
    size_t flen;
    ndb_status st = svc_encode(&ctx->arena, r->filter, 0, "filter", &filter, &flen, msg);
    if (st != NDB_OK)
        return st;
    uint64_t n = 0;
    if ((st = ndb_doc_delete_many(ctx->app->doc, r->collection, filter, flen, svc_interrupt(ctx), &n, msg)) != NDB_OK)
        return st;
    Nexadb__V1__DeleteManyResponse *out =
        SVC_NEW(ctx, Nexadb__V1__DeleteManyResponse, nexadb__v1__delete_many_response__init);
    if (out == NULL)
        return svc_oom(msg);
    out->deleted_count = (int64_t)n;
    *resp = &out->base;
    return NDB_OK;
}

static ndb_status aggregate(svc_ctx *ctx, const ProtobufCMessage *req, ProtobufCMessage **resp, ndb_errmsg *msg)
{
    (void)resp;
    const Nexadb__V1__AggregateRequest *r = (const void *)req;
    const void *pipeline;
    size_t plen;
    ndb_status st = svc_encode_array(&ctx->arena, r->pipeline, r->n_pipeline, "pipeline", &pipeline, &plen, msg);
    if (st != NDB_OK)
        return st;
    ndb_doc_cursor *cur = NULL;
    if ((st = ndb_doc_aggregate(ctx->app->doc, r->collection, pipeline, plen, svc_interrupt(ctx), &cur, msg)) != NDB_OK)
        return st;
    doc_stream ds = {.cur = cur};
    st = svc_stream_pages(ctx, &aggregate_pager, &ds, r->page_size, msg);
    ndb_doc_cursor_free(cur);
    return st;
}

static ndb_status create_index(svc_ctx *ctx, const ProtobufCMessage *req, ProtobufCMessage **resp, ndb_errmsg *msg)
{
    const Nexadb__V1__CreateIndexRequest *r = (const void *)req;
    svc_index_def d = {r->collection, r->fields, r->n_fields, r->unique, r->name, r->ttl};
    Nexadb__V1__CreateIndexResponse *out =
        SVC_NEW(ctx, Nexadb__V1__CreateIndexResponse, nexadb__v1__create_index_response__init);
    if (out == NULL)
        return svc_oom(msg);
    ndb_status st = svc_index_create(ctx, ctx->app->doc, &d, &out->index, msg);
    if (st == NDB_OK)
        *resp = &out->base;
    return st;
}

static ndb_status drop_index(svc_ctx *ctx, const ProtobufCMessage *req, ProtobufCMessage **resp, ndb_errmsg *msg)
{
    const Nexadb__V1__DropIndexRequest *r = (const void *)req;
    Nexadb__V1__DropIndexResponse *out = SVC_NEW(ctx, Nexadb__V1__DropIndexResponse, nexadb__v1__drop_index_response__init);
    if (out == NULL)
        return svc_oom(msg);
    bool dropped = false;
    ndb_status st = svc_index_drop(ctx->app->doc, r->collection, r->name, &dropped, msg);
    out->dropped = dropped;
    if (st == NDB_OK)
        *resp = &out->base;
    return st;
}

static ndb_status list_indexes(svc_ctx *ctx, const ProtobufCMessage *req, ProtobufCMessage **resp, ndb_errmsg *msg)
{
    const Nexadb__V1__ListIndexesRequest *r = (const void *)req;
    Nexadb__V1__ListIndexesResponse *out =
        SVC_NEW(ctx, Nexadb__V1__ListIndexesResponse, nexadb__v1__list_indexes_response__init);
    if (out == NULL)
        return svc_oom(msg);
    ndb_status st = svc_index_list(ctx, ctx->app->doc, r->collection, &out->indexes, &out->n_indexes, msg);
    if (st == NDB_OK)
        *resp = &out->base;
    return st;
}

static const svc_method methods[] = {
    {"CreateCollection", create_collection, SVC_M_WRITE},
    {"DropCollection", drop_collection, SVC_M_WRITE},
    {"ListCollections", list_collections, 0},
    {"InsertOne", insert_one, SVC_M_WRITE},
    {"InsertMany", insert_many, SVC_M_WRITE},
    {"Get", get, SVC_M_TRY_INLINE},
    {"Find", find, SVC_M_STREAM},
    {"FindOne", find_one, 0},
    {"Count", count, 0},
    {"Update", update, SVC_M_WRITE},
    {"UpdateMany", update_many, SVC_M_WRITE},
    {"Delete", delete_one, SVC_M_WRITE},
    {"DeleteMany", delete_many, SVC_M_WRITE},
    {"Aggregate", aggregate, SVC_M_STREAM},
    {"CreateIndex", create_index, SVC_M_WRITE},
    {"DropIndex", drop_index, SVC_M_WRITE},
    {"ListIndexes", list_indexes, 0},
    {"Watch", svc_watch, SVC_M_STREAM | SVC_M_HELD},
};

const svc_service svc_document_service = {&nexadb__v1__document_service__descriptor, methods,
                                          sizeof methods / sizeof methods[0]};
