/*
 * hello_mhd.c — libmicrohttpd configured as service/rest.c configures it
 * (epoll, internal thread pool, response queued on the second callback),
 * answering every request with a 15-byte JSON body. For bench/service/http_libs.sh
 * only: it measures the library, not NexaDB.
 *   hello_mhd <port> <threads>
 */
#include <microhttpd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static enum MHD_Result on_req(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
                              const char *version, const char *upload, size_t *upload_size, void **con_cls)
{
    (void)cls, (void)url, (void)method, (void)version, (void)upload;
    static int first;
    if (*con_cls == NULL) { /* answering on the first call would close the connection */
        *con_cls = &first;
        return MHD_YES;
    }
    if (*upload_size > 0) {
        *upload_size = 0;
        return MHD_YES;
    }
    static char body[] = "{\"status\":\"ok\"}";
    struct MHD_Response *r = MHD_create_response_from_buffer(sizeof body - 1, body, MHD_RESPMEM_PERSISTENT);
    if (r == NULL)
        return MHD_NO;
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
    enum MHD_Result ret = MHD_queue_response(conn, 200, r);
    MHD_destroy_response(r);
    return ret;
}

int main(int argc, char **argv)
{
    if (argc != 3)
        return 2;
    struct MHD_Daemon *d = MHD_start_daemon(MHD_USE_EPOLL_INTERNAL_THREAD | MHD_USE_ITC, (uint16_t)atoi(argv[1]), NULL,
                                            NULL, on_req, NULL, MHD_OPTION_THREAD_POOL_SIZE, (unsigned)atoi(argv[2]),
                                            MHD_OPTION_CONNECTION_TIMEOUT, 30u, MHD_OPTION_END);
    if (d == NULL)
        return 1;
    pause();
    MHD_stop_daemon(d);
    return 0;
}
