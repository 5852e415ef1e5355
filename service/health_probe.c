/*
 * health_probe.c — nexadb-health: asks a server's grpc.health.v1.Health/Check
 * and exits 0 when it answers SERVING. The container image's HEALTHCHECK and
 * anyone's readiness script (the way pg_isready serves PostgreSQL).
 *
 *   nexadb-health [--addr host:port] [--tls-ca file] [--timeout seconds]
 *
 * --addr defaults to $NEXADB_GRPC_ADDR with a wildcard host (0.0.0.0, [::])
 * replaced by the loopback address, else 127.0.0.1:6970. With --tls-ca (or
 * $NEXADB_HEALTH_TLS_CA) it speaks TLS and checks the server's certificate
 * against that bundle. Exit status: 0 SERVING, 1 any other answer, 2 no answer
 * or bad usage; one line on stdout or stderr says which.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <grpc/byte_buffer_reader.h>
#include <grpc/grpc.h>
#include <grpc/grpc_security.h>
#include <grpc/support/alloc.h>
#include <grpc/support/time.h>

#include "grpc/health/v1/health.pb-c.h"

#define PEM_MAX (1 << 20) /* a CA bundle larger than this is refused */

typedef Grpc__Health__V1__HealthCheckResponse health_response;

/* The target to dial: a wildcard listen address becomes loopback. */
static int target_of(const char *addr, char *out, size_t cap)
{
    const char *port = strrchr(addr, ':');
    if (port == NULL)
        return -1;
    int n;
    if (strncmp(addr, "0.0.0.0:", 8) == 0 || port == addr)
        n = snprintf(out, cap, "127.0.0.1%s", port);
    else if (strncmp(addr, "[::]:", 5) == 0)
        n = snprintf(out, cap, "[::1]%s", port);
    else
        n = snprintf(out, cap, "%s", addr);
    return n < 0 || (size_t)n >= cap ? -1 : 0;
}

/* Reads a PEM file of at most PEM_MAX bytes, NUL-terminated; NULL with a message on stderr. */
static char *read_pem(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        fprintf(stderr, "nexadb-health: %s: %s\n", path, strerror(errno));
        return NULL;
    }
    char *buf = malloc(PEM_MAX + 1);
    size_t n = buf != NULL ? fread(buf, 1, PEM_MAX + 1, f) : 0;
    int bad = buf == NULL || ferror(f) || n > PEM_MAX || n == 0;
    fclose(f);
    if (bad) {
        fprintf(stderr, "nexadb-health: %s: %s\n", path,
                buf == NULL ? "out of memory" : n > PEM_MAX ? "larger than 1 MiB" : "cannot read it or it is empty");
        free(buf);
        return NULL;
    }
    buf[n] = '\0';
    return buf;
}

/* One Check call; *status is the answer, or -1 with a message in err. */
static void check(grpc_channel *ch, int timeout_s, int *status, char *err, size_t errcap)
{
    *status = -1;
    grpc_completion_queue *cq = grpc_completion_queue_create_for_next(NULL);
    gpr_timespec deadline =
        gpr_time_add(gpr_now(GPR_CLOCK_REALTIME), gpr_time_from_seconds(timeout_s, GPR_TIMESPAN));
    grpc_slice method = grpc_slice_from_static_string("/grpc.health.v1.Health/Check");
    grpc_call *call = grpc_channel_create_call(ch, NULL, GRPC_PROPAGATE_DEFAULTS, cq, method, NULL, deadline, NULL);

    /* HealthCheckRequest{service: ""} encodes to zero bytes. */
    grpc_slice empty = grpc_empty_slice();
    grpc_byte_buffer *req = grpc_raw_byte_buffer_create(&empty, 1);
    grpc_byte_buffer *resp = NULL;
    grpc_metadata_array initial, trailing;
    grpc_metadata_array_init(&initial);
    grpc_metadata_array_init(&trailing);
    grpc_status_code code = GRPC_STATUS_UNKNOWN;
    grpc_slice details = grpc_empty_slice();

    grpc_op ops[6];
    memset(ops, 0, sizeof ops);
    ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
    ops[1].op = GRPC_OP_SEND_MESSAGE;
    ops[1].data.send_message.send_message = req;
    ops[2].op = GRPC_OP_SEND_CLOSE_FROM_CLIENT;
    ops[3].op = GRPC_OP_RECV_INITIAL_METADATA;
    ops[3].data.recv_initial_metadata.recv_initial_metadata = &initial;
    ops[4].op = GRPC_OP_RECV_MESSAGE;
    ops[4].data.recv_message.recv_message = &resp;
    ops[5].op = GRPC_OP_RECV_STATUS_ON_CLIENT;
    ops[5].data.recv_status_on_client.status = &code;
    ops[5].data.recv_status_on_client.status_details = &details;
    ops[5].data.recv_status_on_client.trailing_metadata = &trailing;

    grpc_call_error ce = call != NULL ? grpc_call_start_batch(call, ops, 6, (void *)1, NULL) : GRPC_CALL_ERROR;
    if (ce != GRPC_CALL_OK) {
        snprintf(err, errcap, "cannot start the call (error %d)", (int)ce);
    } else {
        /* The call has the deadline; a little more here covers the queue's own wake-up. */
        grpc_event ev = grpc_completion_queue_next(
            cq, gpr_time_add(deadline, gpr_time_from_seconds(5, GPR_TIMESPAN)), NULL);
        if (ev.type != GRPC_OP_COMPLETE || !ev.success) {
            snprintf(err, errcap, "the call did not complete");
        } else if (code != GRPC_STATUS_OK) {
            char *d = grpc_slice_to_c_string(details);
            snprintf(err, errcap, "gRPC status %d: %s", (int)code, d != NULL ? d : "");
            gpr_free(d);
        } else if (resp == NULL) {
            snprintf(err, errcap, "no response message");
        } else {
            grpc_byte_buffer_reader rd;
            if (!grpc_byte_buffer_reader_init(&rd, resp)) {
                snprintf(err, errcap, "unreadable response");
            } else {
                grpc_slice all = grpc_byte_buffer_reader_readall(&rd);
                grpc_byte_buffer_reader_destroy(&rd);
                health_response *h = grpc__health__v1__health_check_response__unpack(
                    NULL, GRPC_SLICE_LENGTH(all), GRPC_SLICE_START_PTR(all));
                grpc_slice_unref(all);
                if (h == NULL) {
                    snprintf(err, errcap, "the response does not parse as HealthCheckResponse");
                } else {
                    *status = (int)h->status;
                    grpc__health__v1__health_check_response__free_unpacked(h, NULL);
                }
            }
        }
    }

    if (call != NULL)
        grpc_call_unref(call);
    grpc_completion_queue_shutdown(cq);
    while (grpc_completion_queue_next(cq, gpr_inf_future(GPR_CLOCK_REALTIME), NULL).type != GRPC_QUEUE_SHUTDOWN) {
    }
    grpc_completion_queue_destroy(cq);
    grpc_byte_buffer_destroy(req);
    if (resp != NULL)
        grpc_byte_buffer_destroy(resp);
    grpc_metadata_array_destroy(&initial);
    grpc_metadata_array_destroy(&trailing);
    grpc_slice_unref(details);
}

static const char *status_name(int s)
{
    switch (s) {
    case GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVING: return "SERVING";
    case GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__NOT_SERVING: return "NOT_SERVING";
    case GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVICE_UNKNOWN: return "SERVICE_UNKNOWN";
    default: return "UNKNOWN";
    }
}

static void usage(FILE *to)
{
    fprintf(to, "Usage: nexadb-health [--addr host:port] [--tls-ca file] [--timeout seconds]\n"
                "Asks a NexaDB server's gRPC health service; exits 0 when it is SERVING,\n"
                "1 when it answers anything else, 2 when it does not answer.\n"
                "  --addr     default $NEXADB_GRPC_ADDR (wildcard host -> loopback), else 127.0.0.1:6970\n"
                "  --tls-ca   PEM bundle to check the server's certificate (default $NEXADB_HEALTH_TLS_CA;\n"
                "             none: plaintext)\n"
                "  --timeout  seconds to wait for the answer, 1-300 (default 5)\n");
}

int main(int argc, char **argv)
{
    const char *addr = getenv("NEXADB_GRPC_ADDR");
    const char *ca = getenv("NEXADB_HEALTH_TLS_CA");
    int timeout_s = 5;
    static const struct option longopts[] = {{"addr", required_argument, NULL, 'a'},
                                             {"tls-ca", required_argument, NULL, 'c'},
                                             {"timeout", required_argument, NULL, 't'},
                                             {"help", no_argument, NULL, 'h'},
                                             {NULL, 0, NULL, 0}};
    opterr = 0;
    for (int c; (c = getopt_long(argc, argv, "", longopts, NULL)) != -1;) {
        char *end;
        switch (c) {
        case 'a': addr = optarg; break;
        case 'c': ca = optarg; break;
        case 't':
            errno = 0;
            timeout_s = (int)strtol(optarg, &end, 10);
            if (errno != 0 || *end != '\0' || timeout_s < 1 || timeout_s > 300) {
                fprintf(stderr, "nexadb-health: --timeout: expected 1 to 300 seconds, got '%s'\n", optarg);
                return 2;
            }
            break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (optind < argc) {
        usage(stderr);
        return 2;
    }
    char target[512];
    if (target_of(addr != NULL && *addr != '\0' ? addr : "127.0.0.1:6970", target, sizeof target) != 0) {
        fprintf(stderr, "nexadb-health: bad address '%s' (expected host:port)\n", addr);
        return 2;
    }
    char *pem = NULL;
    if (ca != NULL && *ca != '\0' && (pem = read_pem(ca)) == NULL)
        return 2;

    grpc_init();
    grpc_channel_credentials *creds =
        pem != NULL ? grpc_ssl_credentials_create(pem, NULL, NULL, NULL) : grpc_insecure_credentials_create();
    grpc_channel *ch = creds != NULL ? grpc_channel_create(target, creds, NULL) : NULL;
    int status = -1;
    char err[512] = "cannot create the channel";
    if (ch != NULL)
        check(ch, timeout_s, &status, err, sizeof err);
    if (ch != NULL)
        grpc_channel_destroy(ch);
    if (creds != NULL)
        grpc_channel_credentials_release(creds);
    grpc_shutdown();
    free(pem);

    if (status < 0) {
        fprintf(stderr, "nexadb-health: %s: %s\n", target, err);
        return 2;
    }
    printf("%s %s\n", target, status_name(status));
    return status == GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVING ? 0 : 1;
}
