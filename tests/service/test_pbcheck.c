/* Tests for service/pbcheck.c: the checks on a request's wire bytes before unpack. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "google/protobuf/struct.pb-c.h"
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
    /* FindRequest: collection (1) "c", sort (4) twice: {field "a"}, {field "b\0"} */
    static const uint8_t wire[] = {0x0a, 1, 'c', 0x22, 3, 0x0a, 1, 'a', 0x22, 4, 0x0a, 2, 'b', 0};
    ndb_errmsg msg = {{0}};
    cr_assert_eq(svc_pb_check(&nexadb__v1__find_request__descriptor, wire, sizeof wire, SVC_PB_MAX_DEPTH, &msg),
                 NDB_EINVAL);
    cr_assert_str_eq(msg.text, "sort[1].field: must not contain a NUL byte (\\0)");
}

Test(pbcheck, nul_in_a_struct_key_or_value_names_the_request_field)
{
    /* DeleteManyRequest.filter (2) = Struct{fields: {key, value: Value{string_value}}} */
    static const uint8_t key[] = {0x12, 10, 0x0a, 8, 0x0a, 2, 'a', 0, 0x12, 2, 0x08, 0x00};
    static const uint8_t val[] = {0x12, 10, 0x0a, 8, 0x0a, 1, 'a', 0x12, 3, 0x1a, 1, 0};
    ndb_errmsg msg = {{0}};
    cr_assert_eq(svc_pb_check(&nexadb__v1__delete_many_request__descriptor, key, sizeof key, SVC_PB_MAX_DEPTH, &msg),
                 NDB_EINVAL);
    cr_assert_str_eq(msg.text, "filter: a field name must not contain a NUL byte (\\0)");
    cr_assert_eq(svc_pb_check(&nexadb__v1__delete_many_request__descriptor, val, sizeof val, SVC_PB_MAX_DEPTH, &msg),
                 NDB_EINVAL);
    cr_assert(strncmp(msg.text, "filter: a string value must not contain a NUL byte", 50) == 0, "%s", msg.text);
}

Test(pbcheck, ordinary_requests_pass)
{
    Nexadb__V1__FindRequest req = NEXADB__V1__FIND_REQUEST__INIT;
    req.collection = "users";
    Nexadb__V1__SortField s1 = NEXADB__V1__SORT_FIELD__INIT, s2 = NEXADB__V1__SORT_FIELD__INIT;
    s1.field = "age";
    s2.field = "name";
    Nexadb__V1__SortField *sorts[] = {&s1, &s2};
    req.sort = sorts;
    req.n_sort = 2;
    Google__Protobuf__Value v = GOOGLE__PROTOBUF__VALUE__INIT;
    v.kind_case = GOOGLE__PROTOBUF__VALUE__KIND_STRING_VALUE;
    v.string_value = "x";
    Google__Protobuf__Struct__FieldsEntry e = GOOGLE__PROTOBUF__STRUCT__FIELDS_ENTRY__INIT;
    e.key = "name";
    e.value = &v;
    Google__Protobuf__Struct__FieldsEntry *es[] = {&e};
    Google__Protobuf__Struct f = GOOGLE__PROTOBUF__STRUCT__INIT;
    f.fields = es;
    f.n_fields = 1;
    req.filter = &f;
    ndb_errmsg msg;
    cr_assert_eq(check(&req.base, &msg), NDB_OK, "%s", msg.text);
}
