/*
 * rest_json.c — fuzzes the REST shim's JSON -> protobuf conversion
 * (json_pb.c) for the request message of every REST route, and the way
 * back: a message built from JSON must print, and what it prints must parse
 * again into a message that prints the same (the JSON mapping is stable).
 * Input: byte 0 picks the route (rest_route_defs), byte 1 the mode
 * (bit 0: 0 body JSON, 1 a query-string value for one field picked by
 * byte 2), then the text.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dispatch.h"
#include "fuzz_util.h"
#include "json_pb.h"
#include "rest_routes.h"

static int ready;

static void setup(void)
{
    ndb_errmsg msg;
    if (svc_dispatch_init(&msg) != NDB_OK)
        abort();
    size_t n;
    const svc_route *routes = svc_dispatch_routes(&n);
    const ProtobufCMessageDescriptor *roots[128];
    size_t nr = 0;
    for (size_t i = 0; i < n && nr + 2 <= 128; i++) {
        roots[nr++] = routes[i].md->input;
        roots[nr++] = routes[i].md->output;
    }
    if (json_pb_init(roots, nr, &msg) != NDB_OK)
        abort();
    ready = 1;
}

static const ProtobufCMessageDescriptor *input_of(const char *rpc)
{
    const svc_route *r = svc_dispatch_lookup(rpc, strlen(rpc));
    return r != NULL ? r->md->input : NULL;
}

/* Prints m; NULL when it does not fit. Caller frees. */
static char *print(const ProtobufCMessage *m, size_t *len)
{
    json_pb_buf b = {.limit = 64u << 20};
    if (json_pb_write(&b, m) != NDB_OK) {
        free(b.p);
        return NULL;
    }
    *len = b.len;
    return b.p;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!ready)
        setup();
    fz_in in = {data, size};
    const rest_route_def *rd = &rest_route_defs[fz_byte(&in) % rest_n_route_defs];
    uint8_t mode = fz_byte(&in);
    const ProtobufCMessageDescriptor *d = input_of(rd->rpc);
    if (d == NULL)
        abort(); /* the generated route table names an RPC the dispatch table lacks */
    svc_arena a;
    svc_arena_init(&a, 256u << 20);
    ProtobufCMessage *m = json_pb_new(d, &a);
    ndb_errmsg msg;
    ndb_status st = NDB_EINVAL;
    if (m == NULL)
        goto out;
    if (mode & 1) {
        uint8_t fi = fz_byte(&in);
        if (d->n_fields == 0)
            goto out;
        char *text = svc_arena_strndup(&a, (const char *)in.p, in.n);
        if (text == NULL || strlen(text) != in.n)
            goto out; /* the HTTP layer never hands over NUL bytes */
        st = json_pb_set_field_text(m, &d->fields[fi % d->n_fields], text, &a, &msg);
    } else {
        json_error_t jerr;
        json_t *j = json_loadb((const char *)in.p, in.n, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &jerr);
        if (j == NULL)
            goto out;
        st = json_is_object(j) ? json_pb_merge(m, j, &a, "body", &msg) : NDB_EINVAL;
        json_decref(j);
    }
    if (st != NDB_OK)
        goto out;
    size_t n1, n2;
    char *t2;
    char *t1 = print(m, &n1);
    if (t1 == NULL)
        goto out;
    /* the protobuf bytes of m must unpack (what the handlers would get over gRPC) */
    size_t pn = protobuf_c_message_get_packed_size(m);
    uint8_t *pb = malloc(pn ? pn : 1);
    if (pb != NULL) {
        protobuf_c_message_pack(m, pb);
        ProtobufCMessage *u = protobuf_c_message_unpack(d, &a.pb, pn, pb);
        if (u == NULL)
            abort(); /* json_pb built a message whose own bytes do not unpack */
        free(pb);
    }
    json_error_t jerr;
    json_t *j2 = json_loadb(t1, n1, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &jerr);
    if (j2 == NULL)
        abort(); /* json_pb_write printed invalid JSON */
    ProtobufCMessage *m2 = json_pb_new(d, &a);
    if (m2 != NULL && json_pb_merge(m2, j2, &a, "body", &msg) != NDB_OK) {
        fprintf(stderr, "reparse failed: %s\n%.*s\n", msg.text, (int)(n1 > 2000 ? 2000 : n1), t1);
        abort(); /* printed JSON that the parser refuses */
    }
    json_decref(j2);
    if (m2 != NULL && (t2 = print(m2, &n2)) != NULL) {
        if (n1 != n2 || memcmp(t1, t2, n1) != 0) {
            fprintf(stderr, "unstable:\n%.*s\n%.*s\n", (int)n1, t1, (int)n2, t2);
            abort();
        }
        free(t2);
    }
    free(t1);
out:
    svc_arena_release(&a);
    return 0;
}
