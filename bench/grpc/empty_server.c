/*
 * empty_server.c — the reference for bench/grpc: a minimal gRPC C-core server
 * that answers every unary call with an empty message and OK, on one
 * completion queue per core. Measured side by side with nexadb-server's
 * Health.Check, it shows what our dispatch, auth and handler layers cost.
 *
 *   empty_server <port>
 */
#include <grpc/grpc.h>
#include <grpc/grpc_security.h>
#include <grpc/support/time.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#define ARMED 64

typedef struct call {
    grpc_completion_queue *cq;
    grpc_server *server;
    grpc_call *call;
    grpc_call_details details;
    grpc_metadata_array md;
    grpc_byte_buffer *req;
    int stage; /* 0 new, 1 received, 2 replied */
} call;

static void arm(grpc_server *s, grpc_completion_queue *cq)
{
    call *c = calloc(1, sizeof *c);
    if (c == NULL)
        abort();
    c->cq = cq;
    c->server = s;
    grpc_call_details_init(&c->details);
    grpc_metadata_array_init(&c->md);
    grpc_server_request_call(s, &c->call, &c->details, &c->md, cq, cq, c);
}

static void *loop(void *arg)
{
    call proto = *(call *)arg;
    for (;;) {
        grpc_event ev = grpc_completion_queue_next(proto.cq, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
        if (ev.type != GRPC_OP_COMPLETE)
            break;
        call *c = ev.tag;
        if (c->stage == 0) {
            arm(c->server, c->cq);
            grpc_op op = {.op = GRPC_OP_RECV_MESSAGE};
            op.data.recv_message.recv_message = &c->req;
            c->stage = 1;
            grpc_call_start_batch(c->call, &op, 1, c, NULL);
        } else if (c->stage == 1) {
            int cancelled;
            grpc_slice empty = grpc_empty_slice();
            grpc_byte_buffer *bb = grpc_raw_byte_buffer_create(&empty, 1);
            grpc_op ops[4] = {
                {.op = GRPC_OP_SEND_INITIAL_METADATA},
                {.op = GRPC_OP_SEND_MESSAGE, .data.send_message.send_message = bb},
                {.op = GRPC_OP_SEND_STATUS_FROM_SERVER},
                {.op = GRPC_OP_RECV_CLOSE_ON_SERVER, .data.recv_close_on_server.cancelled = &cancelled},
            };
            ops[2].data.send_status_from_server.status = GRPC_STATUS_OK;
            c->stage = 2;
            grpc_call_start_batch(c->call, ops, 4, c, NULL);
            grpc_byte_buffer_destroy(bb);
        } else {
            if (c->req != NULL)
                grpc_byte_buffer_destroy(c->req);
            grpc_call_unref(c->call);
            grpc_call_details_destroy(&c->details);
            grpc_metadata_array_destroy(&c->md);
            free(c);
        }
    }
    return NULL;
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s <port>\n", argv[0]);
        return 2;
    }
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGINT);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    grpc_init();
    grpc_server *s = grpc_server_create(NULL, NULL);
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    grpc_completion_queue *cqs[64];
    n = n < 1 ? 1 : n > 64 ? 64 : n;
    for (long i = 0; i < n; i++) {
        cqs[i] = grpc_completion_queue_create_for_next(NULL);
        grpc_server_register_completion_queue(s, cqs[i], NULL);
    }
    char addr[64];
    snprintf(addr, sizeof addr, "127.0.0.1:%s", argv[1]);
    grpc_server_credentials *creds = grpc_insecure_server_credentials_create();
    if (grpc_server_add_http2_port(s, addr, creds) == 0) {
        fprintf(stderr, "cannot bind %s\n", addr);
        return 1;
    }
    grpc_server_credentials_release(creds);
    grpc_server_start(s);
    pthread_t th[64];
    for (long i = 0; i < n; i++) {
        for (int k = 0; k < ARMED; k++)
            arm(s, cqs[i]);
        call proto = {.cq = cqs[i], .server = s};
        call *arg = malloc(sizeof *arg);
        if (arg == NULL)
            abort();
        *arg = proto;
        pthread_create(&th[i], NULL, loop, arg);
    }
    int sig;
    sigwait(&sigs, &sig);
    return 0; /* a benchmark fixture: the OS reclaims everything */
}
