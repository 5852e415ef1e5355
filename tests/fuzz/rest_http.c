/*
 * rest_http.c — fuzzes the REST shim end to end: libmicrohttpd's parsing,
 * routing over the generated route table, path variables, query strings,
 * auth headers, the JSON body, the handler over real engines and the JSON
 * answer, through a loopback socket to svc_rest in this process.
 * Input: byte 0 (bit 0: 0 structured, 1 raw). Structured: the text up to
 * the first newline is "VERB /path?query", the rest is the body; the harness
 * adds the API key, Content-Length and Connection: close, and checks that an
 * HTTP status line comes back. Raw: the bytes go to the socket as they are.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "fuzz_app.h"
#include "fuzz_util.h"
#include "rest.h"

static int port;

static void setup(void)
{
    svc_app *app = fz_app();
    svc_rest *r = NULL;
    ndb_errmsg msg;
    if (svc_rest_start(app, &r, &port, &msg) != NDB_OK) {
        fprintf(stderr, "fuzz harness: REST: %s\n", msg.text);
        abort();
    }
    /* r lives until exit: libmicrohttpd's threads serve every input */
}

static int send_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w <= 0)
            return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Reads the answer until the server closes, first_ms pass before the first byte, or
 * the answer pauses for 50 ms (a kept-alive connection); returns bytes read
 * (at most cap-1, NUL-terminated). */
static size_t recv_all(int fd, char *buf, size_t cap, int first_ms)
{
    size_t got = 0;
    for (;;) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (poll(&p, 1, got == 0 ? first_ms : 50) <= 0)
            break;
        char tmp[65536];
        ssize_t r = recv(fd, tmp, sizeof tmp, 0);
        if (r <= 0)
            break;
        size_t take = (size_t)r < cap - 1 - got ? (size_t)r : cap - 1 - got;
        memcpy(buf + got, tmp, take);
        got += take;
    }
    buf[got] = '\0';
    return got;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (port == 0)
        setup();
    fz_in in = {data, size};
    uint8_t mode = fz_byte(&in);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        return 0;
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
        close(fd);
        return 0;
    }
    int one = 1; /* no Nagle wait between the parts of a request */
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    int structured = !(mode & 1);
    int ok;
    if (structured) {
        const uint8_t *nl = memchr(in.p, '\n', in.n);
        size_t line = nl != NULL ? (size_t)(nl - in.p) : in.n;
        const uint8_t *body = nl != NULL ? nl + 1 : in.p + in.n;
        size_t blen = (size_t)(in.p + in.n - body);
        char head[8192];
        if (line > 4096) {
            close(fd);
            return 0;
        }
        int hl = snprintf(head, sizeof head,
                          "%.*s HTTP/1.1\r\nHost: fuzz\r\n%s: %s%s\r\nContent-Type: application/json\r\n"
                          "%sContent-Length: %zu\r\nConnection: close\r\n\r\n",
                          (int)line, (const char *)in.p, (mode & 2) ? "Authorization" : "X-API-Key",
                          (mode & 2) ? "Bearer " : "", FZ_API_KEY,
                          (mode & 4) ? "Accept: application/x-ndjson\r\n" : "", blen);
        char *req = malloc((size_t)hl + blen + 1);
        ok = req != NULL;
        if (ok) {
            memcpy(req, head, (size_t)hl);
            memcpy(req + hl, body, blen);
            ok = send_all(fd, req, (size_t)hl + blen) == 0;
            free(req);
        }
    } else {
        ok = send_all(fd, (const char *)in.p, in.n) == 0;
    }
    if (ok) {
        shutdown(fd, SHUT_WR);
        static char resp[1 << 20];
        /* raw bytes are often an unfinished request, which rightly gets no answer */
        size_t n = recv_all(fd, resp, sizeof resp, structured ? 2000 : 300);
        /* A request line with spaces, CR or LF inside splits differently: only
         * a clean "VERB /path" line must get an answer. */
        int clean = 1;
        for (size_t i = 0; structured && i < in.n && in.p[i] != '\n'; i++)
            if (in.p[i] < 0x21 || in.p[i] > 0x7e)
                clean = in.p[i] == ' ' ? clean : 0;
        if (structured && clean && n == 0 && memchr(in.p, '\n', in.n) != NULL && in.n > 0 && in.p[0] != ' ') {
            /* no answer at all to a well-framed request: the server hung or died */
            const uint8_t *sp = memchr(in.p, ' ', in.n);
            const uint8_t *nl = memchr(in.p, '\n', in.n);
            if (sp != NULL && sp < nl && memchr(sp + 1, ' ', (size_t)(nl - sp - 1)) == NULL && sp[1] == '/') {
                fprintf(stderr, "no HTTP answer to a well-framed request\n");
                abort();
            }
        }
        if (n > 0 && strncmp(resp, "HTTP/1.", 7) != 0) {
            fprintf(stderr, "not an HTTP answer: %.80s\n", resp);
            abort();
        }
    }
    close(fd);
    return 0;
}
