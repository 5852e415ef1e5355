/* Tests for service/pbcheck.c: the checks on a request's wire bytes before unpack. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "nexadb/v1/common.pb-c.h"
#include "nexadb/v1/document.pb-c.h"
#include "pbcheck.h"

/* Packs m and checks it; returns the status, message in *msg. */
static ndb_status check(const ProtobufCMessage *m, ndb_errmsg *msg)
{
    size_t n = protobuf_c_message_get_packed_size(m);
    uint8_t *buf = malloc(n ? n : 1);
    cr_assert_not_null(buf);
    protobuf_c_message_pack(m, buf);
    memset(msg, 0, sizeof *msg);
    ndb_status st = svc_pb_check(m->descriptor, buf, n, SVC_PB_MAX_DEPTH, msg);
    free(buf);
    return st;
}

/* protobuf-c packs strings with strlen, so a NUL is spliced into the wire bytes
 * by hand: field 2 (id) of a DeleteRequest, "alice\0-typo". */
Test(pbcheck, nul_in_a_top_level_string_is_refused_by_name)
{
    static const uint8_t wire[] = {0x0a, 0x01, 'c', 0x12, 11, 'a', 'l', 'i', 'c', 'e', 0, '-', 't', 'y', 'p', 'o'};
    ndb_errmsg msg = {{0}};
    ndb_status st = svc_pb_check(&nexadb__v1__delete_request__descriptor, wire, sizeof wire, SVC_PB_MAX_DEPTH, &msg);
    cr_assert_eq(st, NDB_EINVAL);
    cr_assert_str_eq(msg.text, "id: must not contain a NUL byte (\\0)");
    /* the same bytes without the NUL pass */
    static const uint8_t ok[] = {0x0a, 0x01, 'c', 0x12, 5, 'a', 'l', 'i', 'c', 'e'};
    cr_assert_eq(svc_pb_check(&nexadb__v1__delete_request__descriptor, ok, sizeof ok, SVC_PB_MAX_DEPTH, &msg),
                 NDB_OK);
}

Test(pbcheck, nul_in_a_repeated_message_names_its_index)
{
    /* CreateIndexRequest: collection (1) "c", fields (2) twice: {field "a"}, {field "b\0"} */
    static const uint8_t wire[] = {0x0a, 1, 'c', 0x12, 3, 0x0a, 1, 'a', 0x12, 4, 0x0a, 2, 'b', 0};
    ndb_errmsg msg = {{0}};
    cr_assert_eq(svc_pb_check(&nexadb__v1__create_index_request__descriptor, wire, sizeof wire, SVC_PB_MAX_DEPTH, &msg),
                 NDB_EINVAL);
    cr_assert_str_eq(msg.text, "fields[1].field: must not contain a NUL byte (\\0)");
}

/* A client built for the API before Documents sends its filter as a
 * google.protobuf.Struct in field 2, now reserved: refused by number, never
 * run as "no filter" (which would delete every document). */
Test(pbcheck, a_field_the_message_does_not_define_is_refused)
{
    /* DeleteManyRequest: collection (1) "c", field 2 = Struct{fields: {"a": Value{string "x"}}} */
    static const uint8_t old[] = {0x0a, 1, 'c', 0x12, 10, 0x0a, 8, 0x0a, 1, 'a', 0x12, 3, 0x1a, 1, 'x'};
    ndb_errmsg msg = {{0}};
    cr_assert_eq(svc_pb_check(&nexadb__v1__delete_many_request__descriptor, old, sizeof old, SVC_PB_MAX_DEPTH, &msg),
                 NDB_EINVAL);
    cr_assert(strncmp(msg.text, "field number 2 is not part of nexadb.v1.DeleteManyRequest", 57) == 0, "%s", msg.text);
    /* a varint field unknown inside a nested message is named with its path */
    static const uint8_t nested[] = {0x0a, 1, 'c', 0x12, 4, 0x0a, 1, 'a', 0x48, 1};
    cr_assert_eq(svc_pb_check(&nexadb__v1__create_index_request__descriptor, nested, sizeof nested, SVC_PB_MAX_DEPTH,
                              &msg),
                 NDB_EINVAL);
    cr_assert(strncmp(msg.text, "fields[0]: field number 9 is not part of nexadb.v1.IndexField", 61) == 0, "%s",
              msg.text);
}

Test(pbcheck, ordinary_requests_pass)
{
    Nexadb__V1__FindRequest req = NEXADB__V1__FIND_REQUEST__INIT;
    req.collection = "users";
    /* {"name": "x\0y"}: a NUL inside a document's string is data, not a C string */
    static uint8_t bson[] = {19, 0, 0, 0, 0x02, 'n', 'a', 'm', 'e', 0, 4, 0, 0, 0, 'x', 0, 'y', 0, 0};
    Nexadb__V1__Document f = NEXADB__V1__DOCUMENT__INIT;
    f.bson.data = bson;
    f.bson.len = sizeof bson;
    req.filter = &f;
    req.sort = &f;
    ndb_errmsg msg;
    cr_assert_eq(check(&req.base, &msg), NDB_OK, "%s", msg.text);
}
