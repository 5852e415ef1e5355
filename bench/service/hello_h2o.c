/*
 * hello_h2o.c — the smallest useful HTTP/1.1 server on Debian's libh2o-evloop
 * (2.2.5): N threads, each with its own event loop and SO_REUSEPORT listener,
 * answering every request with a 15-byte JSON body. For bench/service/http_libs.sh
 * only: it measures the library, not NexaDB.
 *   hello_h2o <port> <threads>
 */
#define H2O_USE_LIBUV 0
#include <h2o.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

static h2o_globalconf_t config;
static int port;

typedef struct worker {
    h2o_context_t ctx;
    h2o_accept_ctx_t accept_ctx;
} worker;

static int on_req(h2o_handler_t *self, h2o_req_t *req)
{
    (void)self;
    static h2o_generator_t generator = {NULL, NULL};
    static char body[] = "{\"status\":\"ok\"}";
    req->res.status = 200;
    req->res.reason = "OK";
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL, H2O_STRLIT("application/json"));
    h2o_start_response(req, &generator);
    h2o_iovec_t buf = h2o_iovec_init(body, sizeof body - 1);
    h2o_send(req, &buf, 1, H2O_SEND_STATE_FINAL);
    return 0;
}

static void on_accept(h2o_socket_t *listener, const char *err)
{
    if (err != NULL)
        return;
    h2o_socket_t *sock = h2o_evloop_socket_accept(listener);
    if (sock != NULL)
        h2o_accept(listener->data, sock);
}

static void *run(void *arg)
{
    worker *w = arg;
    h2o_evloop_t *loop = h2o_evloop_create();
    if (loop == NULL)
        exit(1);
    h2o_context_init(&w->ctx, loop, &config);
    w->accept_ctx.ctx = &w->ctx;
    w->accept_ctx.hosts = config.hosts;
    int fd = socket(AF_INET, SOCK_STREAM, 0), on = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on);
    setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &on, sizeof on);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port), .sin_addr.s_addr = htonl(0x7f000001)};
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) != 0 || listen(fd, 1024) != 0) {
        perror("listen");
        exit(1);
    }
    h2o_socket_t *sock = h2o_evloop_socket_create(loop, fd, H2O_SOCKET_FLAG_DONT_READ);
    sock->data = &w->accept_ctx;
    h2o_socket_read_start(sock, on_accept);
    while (h2o_evloop_run(loop, INT32_MAX) == 0)
        ;
    return NULL;
}

int main(int argc, char **argv)
{
    if (argc != 3)
        return 2;
    port = atoi(argv[1]);
    int threads = atoi(argv[2]);
    h2o_config_init(&config);
    h2o_hostconf_t *host = h2o_config_register_host(&config, h2o_iovec_init(H2O_STRLIT("default")), 65535);
    h2o_pathconf_t *path = h2o_config_register_path(host, "/", 0);
    h2o_handler_t *h = h2o_create_handler(path, sizeof *h);
    h->on_req = on_req;
    pthread_t t[64];
    if (threads < 1 || threads > 64)
        return 2;
    worker *ws = calloc((size_t)threads, sizeof *ws);
    if (ws == NULL)
        return 1;
    for (int i = 0; i < threads; i++)
        if (pthread_create(&t[i], NULL, run, &ws[i]) != 0)
            return 1;
    for (int i = 0; i < threads; i++)
        pthread_join(t[i], NULL);
    return 0;
}
