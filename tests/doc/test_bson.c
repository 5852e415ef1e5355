/* Tests for engine/doc/bson.c: BSON documents (the gRPC wire form) to the
 * document encoding and back, with libbson writing the reference bytes. */
#include <bson/bson.h>
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "ndb_doc.h"

/* BSON bytes -> document -> JSON text (caller frees), or NULL with msg set. */
static char *json_of(const bson_t *in, ndb_errmsg *msg)
{
    ndb_doc_builder *b;
    cr_assert_eq(ndb_doc_builder_new(&b), NDB_OK);
    char *json = NULL;
    size_t jl;
    const void *d;
    size_t n;
    if (ndb_doc_append_bson(b, bson_get_data(in), in->len, msg) == NDB_OK) {
        cr_assert_eq(ndb_doc_builder_finish(b, &d, &n), NDB_OK);
        cr_assert_eq(ndb_doc_validate(d, n, NULL), NDB_OK);
        cr_assert_eq(ndb_doc_to_json(d, n, &json, &jl), NDB_OK);
        /* and back: the same BSON bytes (int32 stays int32, order kept) */
        ndb_doc_val root;
        uint8_t *out;
        size_t ol;
        cr_assert_eq(ndb_doc_root(d, n, &root), NDB_OK);
        cr_assert_eq(ndb_doc_to_bson(&root, &out, &ol), NDB_OK);
        cr_assert_eq(ol, in->len);
        cr_assert_eq(memcmp(out, bson_get_data(in), ol), 0, "%s", json);
        free(out);
    }
    ndb_doc_builder_free(b);
    return json;
}

Test(bson, every_stored_type_round_trips_in_order)
{
    bson_t b = BSON_INITIALIZER, sub, arr;
    BSON_APPEND_UTF8(&b, "z", "last first");
    BSON_APPEND_INT32(&b, "i32", -7);
    BSON_APPEND_INT64(&b, "i64", INT64_MAX);
    BSON_APPEND_INT64(&b, "big", 9007199254740993LL);
    BSON_APPEND_DOUBLE(&b, "d", 2.5);
    BSON_APPEND_BOOL(&b, "t", true);
    BSON_APPEND_NULL(&b, "n");
    BSON_APPEND_DATE_TIME(&b, "when", 1706745600123LL);
    BSON_APPEND_BINARY(&b, "bin", BSON_SUBTYPE_UUID, (const uint8_t *)"\x00\x01\x02\xff", 4);
    BSON_APPEND_DOCUMENT_BEGIN(&b, "sub", &sub);
    BSON_APPEND_UTF8(&sub, "b", "x");
    BSON_APPEND_UTF8(&sub, "a", "y");
    bson_append_document_end(&b, &sub);
    BSON_APPEND_ARRAY_BEGIN(&b, "arr", &arr);
    BSON_APPEND_INT32(&arr, "0", 1);
    BSON_APPEND_UTF8(&arr, "1", "two");
    bson_append_array_end(&b, &arr);
    ndb_errmsg m = {{0}};
    char *j = json_of(&b, &m);
    cr_assert_not_null(j, "%s", m.text);
    cr_assert_str_eq(j, "{\"z\":\"last first\",\"i32\":-7,\"i64\":{\"$numberLong\":\"9223372036854775807\"},"
                        "\"big\":{\"$numberLong\":\"9007199254740993\"},\"d\":2.5,\"t\":true,\"n\":null,"
                        "\"when\":{\"$date\":\"2024-02-01T00:00:00.123Z\"},"
                        "\"bin\":{\"$binary\":{\"base64\":\"AAEC/w==\",\"subType\":\"04\"}},"
                        "\"sub\":{\"b\":\"x\",\"a\":\"y\"},\"arr\":[1,\"two\"]}");
    free(j);
    bson_destroy(&b);
}

static void refused(bson_t *b, const char *want)
{
    ndb_errmsg m = {{0}};
    char *j = json_of(b, &m);
    cr_assert_null(j, "accepted: %s", j);
    cr_assert(strstr(m.text, want) != NULL, "message: %s", m.text);
    bson_destroy(b);
}

Test(bson, types_not_stored_are_refused_by_name_and_path)
{
    bson_t b = BSON_INITIALIZER, sub;
    bson_oid_t oid;
    bson_oid_init_from_string(&oid, "65a0c0ffee0000000000beef");
    BSON_APPEND_DOCUMENT_BEGIN(&b, "a", &sub);
    BSON_APPEND_OID(&sub, "id", &oid);
    bson_append_document_end(&b, &sub);
    refused(&b, "BSON field 'a.id': ObjectId is a type NexaDB does not store");
    bson_t d = BSON_INITIALIZER;
    bson_decimal128_t dec;
    bson_decimal128_from_string("1.5", &dec);
    BSON_APPEND_DECIMAL128(&d, "price", &dec);
    refused(&d, "'price': Decimal128");
    bson_t r = BSON_INITIALIZER;
    BSON_APPEND_REGEX(&r, "name", "^a", "i");
    refused(&r, "regular expression");
    bson_t n = BSON_INITIALIZER;
    BSON_APPEND_DOUBLE(&n, "x", 0.0 / 0.0);
    refused(&n, "NaN");
    bson_t u = BSON_INITIALIZER;
    BSON_APPEND_UTF8(&u, "s", "\xff\xfe");
    refused(&u, "not UTF-8");
}

Test(bson, hostile_bytes_are_refused_not_read)
{
    ndb_doc_builder *b;
    cr_assert_eq(ndb_doc_builder_new(&b), NDB_OK);
    ndb_errmsg m;
    /* length prefix larger than the bytes */
    uint8_t lie[] = {0x20, 0, 0, 0, 0x10, 'a', 0, 1, 0, 0, 0, 0};
    cr_assert_eq(ndb_doc_append_bson(b, lie, sizeof lie, &m), NDB_EINVAL);
    /* an element whose string length runs past the end */
    ndb_doc_builder_reset(b);
    uint8_t str[] = {0x10, 0, 0, 0, 0x02, 'a', 0, 0x7f, 0, 0, 0, 'x', 0, 0, 0, 0};
    cr_assert_eq(ndb_doc_append_bson(b, str, sizeof str, &m), NDB_EINVAL);
    /* 1000 levels of nesting: refused at 100, without recursing further */
    ndb_doc_builder_reset(b);
    enum { LEVELS = 1000 };
    bson_t *lv = calloc(LEVELS + 1, sizeof *lv);
    bson_init(&lv[0]);
    for (int i = 0; i < LEVELS; i++)
        bson_append_document_begin(&lv[i], "a", 1, &lv[i + 1]);
    for (int i = LEVELS; i > 0; i--)
        bson_append_document_end(&lv[i - 1], &lv[i]);
    m.text[0] = 0;
    cr_assert_eq(ndb_doc_append_bson(b, bson_get_data(&lv[0]), lv[0].len, &m), NDB_EINVAL);
    cr_assert(strstr(m.text, "nested deeper than 100 levels") != NULL, "%.80s", m.text);
    bson_destroy(&lv[0]);
    free(lv);
    /* a document value that is not an object cannot be written as BSON */
    ndb_doc_builder_reset(b);
    ndb_doc_begin_array(b);
    ndb_doc_end_array(b);
    const void *d;
    size_t n;
    cr_assert_eq(ndb_doc_builder_finish(b, &d, &n), NDB_OK);
    ndb_doc_val root;
    ndb_doc_root(d, n, &root);
    uint8_t *out;
    size_t ol;
    cr_assert_eq(ndb_doc_to_bson(&root, &out, &ol), NDB_EINVAL);
    ndb_doc_builder_free(b);
}
