/*
 * handlers.c — fuzzes what a gRPC request reaches after the transport:
 * the nesting check (svc_pb_check), protobuf-c unpack into the call arena,
 * and every method handler (documents, vectors, admin, health) over real
 * engines in a scratch data directory, exactly as grpc_server.c's on_recv
 * and run_handler do. Responses and streamed pages must pack.
 * Input: byte 0 picks the method (index into the dispatch table, health
 * Watch excluded: the transport serves it), the rest is the request's wire
 * bytes.
 */
#include <stdlib.h>
#include <time.h>

#include "dispatch.h"
#include "fuzz_app.h"
#include "fuzz_util.h"
#include "pbcheck.h"

static size_t sink;

static void check_packs(const ProtobufCMessage *m)
{
    size_t n = protobuf_c_message_get_packed_size(m);
    uint8_t *buf = malloc(n ? n : 1);
    if (buf == NULL)
        return;
    if (protobuf_c_message_pack(m, buf) != n)
        abort(); /* a handler built a response protobuf-c cannot serialise */
    sink += n;
    free(buf);
}

static ndb_status send_page(svc_ctx *ctx, const ProtobufCMessage *m, ndb_errmsg *msg)
{
    (void)ctx;
    (void)msg;
    check_packs(m);
    return NDB_OK;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    svc_app *app = fz_app();
    fz_in in = {data, size};
    size_t n_routes;
    const svc_route *routes = svc_dispatch_routes(&n_routes);
    const svc_route *r = &routes[fz_byte(&in) % n_routes];
    if (r->m->flags & SVC_M_WATCH)
        return 0;
    ndb_errmsg msg;
    if (svc_pb_check(r->md->input, in.p, in.n, SVC_PB_MAX_DEPTH, &msg) != NDB_OK)
        return 0;
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    svc_ctx ctx;
    /* a deadline, as a client would set: long scans stop at it */
    svc_ctx_init(&ctx, app, (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec + 2000000000);
    ctx.method = r->path;
    ctx.role = SVC_ROLE_WRITE;
    if (r->m->flags & SVC_M_STREAM)
        ctx.send = send_page;
    ProtobufCMessage *req = protobuf_c_message_unpack(r->md->input, &ctx.arena.pb, in.n, in.p);
    if (req != NULL) {
        ProtobufCMessage *resp = NULL;
        ndb_status st = r->m->fn(&ctx, req, &resp, &msg);
        if (st == NDB_OK && resp != NULL)
            check_packs(resp);
        if (st != NDB_OK && svc_status_code(st) == GRPC_STATUS_UNKNOWN)
            abort(); /* every failure maps to a gRPC code */
    }
    svc_ctx_release(&ctx);
    return 0;
}
