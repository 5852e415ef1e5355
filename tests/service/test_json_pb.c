/* Tests for service/json_pb.c: the proto3 JSON mapping over protobuf-c descriptors. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "json_pb.h"
#include "nexadb/v1/admin.pb-c.h"
#include "nexadb/v1/document.pb-c.h"
#include "nexadb/v1/vector.pb-c.h"

static svc_arena arena;

static void setup(void)
{
    const ProtobufCMessageDescriptor *roots[] = {
        &nexadb__v1__find_request__descriptor, &nexadb__v1__find_response__descriptor,
        &nexadb__v1__search_request__descriptor, &nexadb__v1__search_response__descriptor,
        &nexadb__v1__stats_response__descriptor, &nexadb__v1__insert_many_request__descriptor,
        &nexadb__v1__create_vector_collection_request__descriptor,
    };
    ndb_errmsg msg;
    cr_assert_eq(json_pb_init(roots, sizeof roots / sizeof roots[0], &msg), NDB_OK);
    svc_arena_init(&arena, 64 << 20);
}

static void teardown(void)
{
    svc_arena_release(&arena);
}

TestSuite(json_pb, .init = setup, .fini = teardown);

/* Parses text into a new message of type d; returns the status, message in *out. */
static ndb_status parse(const ProtobufCMessageDescriptor *d, const char *text, ProtobufCMessage **out, ndb_errmsg *msg)
{
    json_error_t err;
    json_t *j = json_loads(text, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, &err);
    cr_assert_not_null(j, "test JSON does not parse: %s", err.text);
    *out = json_pb_new(d, &arena);
    cr_assert_not_null(*out);
    ndb_status st = json_pb_merge(*out, j, &arena, "", msg);
    json_decref(j);
    return st;
}

/* m as JSON text; caller frees. */
static char *render(const ProtobufCMessage *m)
{
    json_pb_buf b = {0};
    cr_assert_eq(json_pb_write(&b, m), NDB_OK);
    json_pb_put(&b, "", 1);
    return b.p;
}

/* Re-encodes m through the protobuf wire format, as a gRPC client would see it. */
static ProtobufCMessage *wire_roundtrip(const ProtobufCMessage *m)
{
    size_t n = protobuf_c_message_get_packed_size(m);
    uint8_t *buf = malloc(n ? n : 1);
    protobuf_c_message_pack(m, buf);
    ProtobufCMessage *back = protobuf_c_message_unpack(m->descriptor, &arena.pb, n, buf);
    free(buf);
    cr_assert_not_null(back);
    return back;
}

Test(json_pb, find_request_names_and_types)
{
    ProtobufCMessage *m;
    ndb_errmsg msg = {{0}};
    /* json_name ("query"), lowerCamel ("pageSize"), proto name ("page_token"), int64 as a string */
    ndb_status st = parse(&nexadb__v1__find_request__descriptor,
                          "{\"query\": {\"age\": {\"$gt\": 25}}, \"limit\": \"100\", \"pageSize\": 7,"
                          " \"page_token\": \"t\", \"sort\": {\"age\": -1, \"name\": 1}, \"explain\": true, \"skip\": 2.0}",
                          &m, &msg);
    cr_assert_eq(st, NDB_OK, "%s", msg.text);
    Nexadb__V1__FindRequest *r = (void *)wire_roundtrip(m);
    cr_assert_eq(r->limit, 100);
    cr_assert_eq(r->skip, 2);
    cr_assert_eq(r->page_size, 7);
    cr_assert_str_eq(r->page_token, "t");
    cr_assert(r->explain);
    /* documents travel as BSON, key order kept (a sort in MongoDB's shape) */
    char *sort = render(&r->sort->base), *filter = render(&r->filter->base);
    cr_assert_str_eq(sort, "{\"age\":-1,\"name\":1}");
    cr_assert_str_eq(filter, "{\"age\":{\"$gt\":25}}");
    free(sort);
    free(filter);
    cr_assert_eq(r->filter->bson.len, 24); /* {"age": {"$gt": int32 25}} */
    /* the original field name is accepted too */
    cr_assert_eq(parse(&nexadb__v1__find_request__descriptor, "{\"filter\": {}}", &m, &msg), NDB_OK);
}

Test(json_pb, bad_input_is_einval_naming_the_field)
{
    static const struct {
        const char *json;
        const char *word;
    } cases[] = {
        {"{\"limit\": \"ten\"}", "limit"},
        {"{\"limit\": 1.5}", "limit"},
        {"{\"limit\": true}", "limit"},
        {"{\"page_size\": 4294967296}", "page_size"},
        {"{\"page_size\": \"99999999999\"}", "page_size"},
        {"{\"query\": []}", "query"},
        {"{\"sort\": []}", "sort"},
        {"{\"query\": {\"d\": {\"$date\": \"yesterday\"}}}", "$date takes"},
        {"{\"query\": {\"id\": {\"$oid\": \"65a0c0ffee0000000000beef\"}}}", "$oid"},
        {"{\"explain\": 1}", "explain"},
        {"{\"nope\": 1}", "nope"},
        {"{\"page_token\": 5}", "page_token"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        ProtobufCMessage *m;
        ndb_errmsg msg = {{0}};
        ndb_status st = parse(&nexadb__v1__find_request__descriptor, cases[i].json, &m, &msg);
        cr_assert_eq(st, NDB_EINVAL, "%s was accepted", cases[i].json);
        cr_assert(strstr(msg.text, cases[i].word) != NULL, "%s: message '%s' does not name %s", cases[i].json,
                  msg.text, cases[i].word);
    }
}

Test(json_pb, nesting_is_bounded)
{
    size_t depth = 1000;
    char *text = malloc(depth * 6 + 32);
    size_t n = 0;
    n += (size_t)sprintf(text + n, "{\"query\": ");
    for (size_t i = 0; i < depth; i++)
        n += (size_t)sprintf(text + n, "{\"a\":");
    n += (size_t)sprintf(text + n, "1");
    for (size_t i = 0; i < depth; i++)
        text[n++] = '}';
    text[n++] = '}';
    text[n] = '\0';
    ProtobufCMessage *m;
    ndb_errmsg msg = {{0}};
    cr_assert_eq(parse(&nexadb__v1__find_request__descriptor, text, &m, &msg), NDB_EINVAL);
    cr_assert(strstr(msg.text, "nested") != NULL, "%s", msg.text);
    free(text);
}

Test(json_pb, output_uses_proto_names_and_numbers)
{
    Nexadb__V1__InsertManyResponse r = NEXADB__V1__INSERT_MANY_RESPONSE__INIT;
    char *ids[] = {"a1", "b\"2"};
    r.n_document_ids = 2;
    r.document_ids = ids;
    r.count = 9007199254740993LL; /* beyond 2^53: exact, as a number */
    char *s = render(&r.base);
    cr_assert_str_eq(s, "{\"document_ids\":[\"a1\",\"b\\\"2\"],\"count\":9007199254740993}");
    free(s);

    Nexadb__V1__InsertManyResponse empty = NEXADB__V1__INSERT_MANY_RESPONSE__INIT;
    s = render(&empty.base);
    cr_assert_str_eq(s, "{\"document_ids\":[],\"count\":0}");
    free(s);
}

Test(json_pb, documents_keep_order_types_and_extended_json)
{
    ProtobufCMessage *m;
    ndb_errmsg msg = {{0}};
    /* key order kept; integral values print as integers; 0.1 shortest; int64
     * exact; dates and binary in relaxed Extended JSON; a NUL inside a string is data */
    ndb_status st = parse(&nexadb__v1__find_request__descriptor,
                          "{\"query\": {\"z\": 28, \"a\": 0.1, \"m\": -2.5e-7, \"big\": 9007199254740993,"
                          " \"bigger\": 1e300, \"s\": \"\\u00e9\\n\\u0001\\u0000\", \"t\": true, \"n\": null,"
                          " \"l\": [1, [2, {}], []], \"neg0\": -0.0, \"d\": {\"$date\": \"2024-05-06T07:08:09.010Z\"},"
                          " \"b\": {\"$binary\": {\"base64\": \"AAE=\", \"subType\": \"05\"}}}}",
                          &m, &msg);
    cr_assert_eq(st, NDB_OK, "%s", msg.text);
    const Nexadb__V1__FindRequest *r = (const void *)wire_roundtrip(m);
    char *s = render(&r->filter->base);
    cr_assert_str_eq(s, "{\"z\":28,\"a\":0.1,\"m\":-2.5e-07,\"big\":{\"$numberLong\":\"9007199254740993\"},"
                        "\"bigger\":1e+300,\"s\":\"\xc3\xa9\\n\\u0001\\u0000\",\"t\":true,\"n\":null,"
                        "\"l\":[1,[2,{}],[]],\"neg0\":0,\"d\":{\"$date\":\"2024-05-06T07:08:09.010Z\"},"
                        "\"b\":{\"$binary\":{\"base64\":\"AAE=\",\"subType\":\"05\"}}}");
    free(s);
}

Test(json_pb, enums_in_short_lowercase_names)
{
    ProtobufCMessage *m;
    ndb_errmsg msg = {{0}};
    /* the brief's "cosine" and the full protobuf name both parse; output is the short name */
    cr_assert_eq(parse(&nexadb__v1__create_vector_collection_request__descriptor,
                       "{\"collection\": \"v\", \"dimensions\": 3, \"metric\": \"dot\"}", &m, &msg), NDB_OK, "%s", msg.text);
    cr_assert_eq(((Nexadb__V1__CreateVectorCollectionRequest *)m)->metric, NEXADB__V1__VECTOR_METRIC__VECTOR_METRIC_DOT);
    cr_assert_eq(parse(&nexadb__v1__create_vector_collection_request__descriptor,
                       "{\"metric\": \"VECTOR_METRIC_L2\"}", &m, &msg), NDB_OK);
    cr_assert_eq(parse(&nexadb__v1__create_vector_collection_request__descriptor,
                       "{\"metric\": \"manhattan\"}", &m, &msg), NDB_EINVAL);
    Nexadb__V1__CollectionInfo ci = NEXADB__V1__COLLECTION_INFO__INIT;
    ci.name = "v";
    ci.metric = NEXADB__V1__VECTOR_METRIC__VECTOR_METRIC_COSINE;
    ci.kind = NEXADB__V1__COLLECTION_INFO__KIND__KIND_VECTORS;
    char *s = render(&ci.base);
    cr_assert(strstr(s, "\"metric\":\"cosine\"") && strstr(s, "\"kind\":\"vectors\""), "%s", s);
    free(s);
}

Test(json_pb, floats_shortest_and_wrappers)
{
    ProtobufCMessage *m;
    ndb_errmsg msg = {{0}};
    ndb_status st = parse(&nexadb__v1__search_request__descriptor,
                          "{\"collection\": \"c\", \"vector\": [0.1, 1, -3.25, 1e-45, \"NaN\", \"-Infinity\"],"
                          " \"min_score\": 0.5, \"dimensions\": \"3\"}",
                          &m, &msg);
    cr_assert_eq(st, NDB_OK, "%s", msg.text);
    Nexadb__V1__SearchRequest *r = (void *)m;
    cr_assert_eq(r->n_vector, 6);
    cr_assert_eq(r->vector[0], 0.1f);
    cr_assert(isnan(r->vector[4]));
    cr_assert_not_null(r->min_score);
    cr_assert_eq(r->min_score->value, 0.5f);
    cr_assert_eq(r->dimensions, 3);
    char *s = render(m);
    /* subnormal floats have fewer digits than FLT_DIG: they read back exactly but are not the shortest */
    cr_assert_str_eq(s, "{\"collection\":\"c\",\"vector\":[0.1,1,-3.25,1.4013e-45,\"NaN\",\"-Infinity\"],"
                        "\"limit\":0,\"min_score\":0.5,\"include_vectors\":false,\"dimensions\":3,\"ef\":0,"
                        "\"exact\":false,\"explain\":false}");
    free(s);
    /* every float survives text and back */
    for (int i = 0; i < 2000; i++) {
        union {
            uint32_t u;
            float f;
        } v = {.u = (uint32_t)rand() * 2654435761u};
        if (!isfinite(v.f))
            continue;
        json_pb_buf b = {0};
        Nexadb__V1__SearchHit h = NEXADB__V1__SEARCH_HIT__INIT;
        h.similarity = v.f;
        json_pb_write_field(&b, &h.base, protobuf_c_message_descriptor_get_field_by_name(h.base.descriptor, "similarity"));
        json_pb_put(&b, "", 1);
        cr_assert_eq(strtof(b.p, NULL), v.f, "%s", b.p);
        free(b.p);
    }
    cr_assert_eq(parse(&nexadb__v1__search_request__descriptor, "{\"vector\": [1e39]}", &m, &msg), NDB_EINVAL);
}

Test(json_pb, doubles_round_trip)
{
    for (int i = 0; i < 5000; i++) {
        union {
            uint64_t u;
            double d;
        } v = {.u = ((uint64_t)rand() << 33) ^ ((uint64_t)rand() << 11) ^ (uint64_t)rand()};
        if (!isfinite(v.d))
            continue;
        json_pb_buf b = {0};
        json_pb_put_double(&b, v.d);
        json_pb_put(&b, "", 1);
        cr_assert_eq(strtod(b.p, NULL), v.d, "%s", b.p);
        free(b.p);
    }
    json_pb_buf b = {0};
    json_pb_put_double(&b, 0.1);
    json_pb_put(&b, "", 1);
    cr_assert_str_eq(b.p, "0.1");
    free(b.p);
}

Test(json_pb, text_values_for_paths_and_query_strings)
{
    Nexadb__V1__FindRequest *r = (void *)json_pb_new(&nexadb__v1__find_request__descriptor, &arena);
    const ProtobufCMessageDescriptor *d = r->base.descriptor;
    ndb_errmsg msg = {{0}};
    cr_assert_eq(json_pb_set_field_text(&r->base, json_pb_field_by_key(d, "collection"), "users", &arena, &msg), NDB_OK);
    cr_assert_eq(json_pb_set_field_text(&r->base, json_pb_field_by_key(d, "limit"), "100", &arena, &msg), NDB_OK);
    cr_assert_eq(json_pb_set_field_text(&r->base, json_pb_field_by_key(d, "query"), "{\"age\":{\"$gt\":25}}", &arena,
                                        &msg),
                 NDB_OK);
    cr_assert_eq(json_pb_set_field_text(&r->base, json_pb_field_by_key(d, "explain"), "true", &arena, &msg), NDB_OK);
    cr_assert_str_eq(r->collection, "users");
    cr_assert_eq(r->limit, 100);
    cr_assert(r->explain);
    cr_assert_eq(r->filter->bson.len, 24);
    cr_assert_eq(json_pb_set_field_text(&r->base, json_pb_field_by_key(d, "limit"), "1e3", &arena, &msg), NDB_EINVAL);
    cr_assert_eq(json_pb_set_field_text(&r->base, json_pb_field_by_key(d, "explain"), "yes", &arena, &msg), NDB_EINVAL);
    cr_assert_eq(json_pb_set_field_text(&r->base, json_pb_field_by_key(d, "query"), "{", &arena, &msg), NDB_EINVAL);
    cr_assert_null(json_pb_field_by_key(d, "Limit"));
    cr_assert_not_null(json_pb_field_by_key(d, "pageToken"));
}

Test(json_pb, output_limit_is_enforced)
{
    Nexadb__V1__InsertManyResponse r = NEXADB__V1__INSERT_MANY_RESPONSE__INIT;
    char *ids[64];
    for (int i = 0; i < 64; i++)
        ids[i] = "0123456789abcdef";
    r.n_document_ids = 64;
    r.document_ids = ids;
    json_pb_buf b = {.limit = 100};
    cr_assert_eq(json_pb_write(&b, &r.base), NDB_ETOOBIG);
    cr_assert_leq(b.len, 100);
    free(b.p);
}
