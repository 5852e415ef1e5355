/* rest.c — the HTTP/JSON shim over libmicrohttpd (see rest.h and README.md's REST section). */
#include "rest.h"

#include <microhttpd.h>
#include <netdb.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "conn_gate.h"
#include "console.h"
#include "dispatch.h"
#include "json_pb.h"
#include "log.h"
#include "metrics.h"
#include "replicate.h"
#include "rest_routes.h"
#include "rest_sink.h"
#include "rest_sse.h"
#include "rest_tls.h"
#include "status_details.h"

#define MAX_SEGS 16
#define MAX_ROUTES 96
#define MAX_ORIGINS 32
/* An oversized body of unknown length is read and dropped up to this many times
 * the limit (so the client can read its 413), then the connection is closed. */
#define DRAIN_FACTOR 4

typedef struct seg {
    const char *lit; /* NULL for a variable */
    size_t len;
    const ProtobufCFieldDescriptor *var;
} seg;

typedef struct rroute {
    const rest_route_def *def;
    const svc_route *svc;
    seg segs[MAX_SEGS];
    int n_segs;
    unsigned literal_mask; /* bit (MAX_SEGS-1-i) set when segment i is literal: more literal wins */
    bool body_star;
    const ProtobufCFieldDescriptor *body_fd;
    const ProtobufCFieldDescriptor *resp_fd;
} rroute;

struct svc_rest {
    svc_app *app;
    struct MHD_Daemon *d;
    rroute routes[MAX_ROUTES];
    size_t n_routes;
    char origins_buf[1024];
    const char *origins[MAX_ORIGINS];
    size_t n_origins;
    bool any_origin;
    size_t max_response;
    svc_sse_hub *sse; /* the change streams served as server-sent events */
};

/* One request's state, from its first callback to its completion. */
typedef struct rreq {
    svc_rest *r;
    int64_t started_ns;
    char *body;
    size_t len, cap;
    size_t dropped; /* bytes read past the limit */
    bool too_big;
    bool ended; /* metrics recorded */
    bool close; /* the response says Connection: close (ambiguous framing) */
    /* For the access log line at the end. */
    char request_id[SVC_REQUEST_ID_CAP];
    const char *method;
    int code;
    size_t bytes_out;
    bool retry_after; /* a retryable failure: send Retry-After */
    uint64_t log_index; /* a write's log entry (cluster mode): sent as NexaDB-Log-Index */
} rreq;

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* grpc-gateway's mapping from gRPC status to HTTP status. */
static unsigned http_status_for(grpc_status_code code)
{
    switch (code) {
    case GRPC_STATUS_OK: return 200;
    case GRPC_STATUS_CANCELLED: return 499;
    case GRPC_STATUS_INVALID_ARGUMENT:
    case GRPC_STATUS_FAILED_PRECONDITION:
    case GRPC_STATUS_OUT_OF_RANGE: return 400;
    case GRPC_STATUS_DEADLINE_EXCEEDED: return 504;
    case GRPC_STATUS_NOT_FOUND: return 404;
    case GRPC_STATUS_ALREADY_EXISTS:
    case GRPC_STATUS_ABORTED: return 409;
    case GRPC_STATUS_PERMISSION_DENIED: return 403;
    case GRPC_STATUS_UNAUTHENTICATED: return 401;
    case GRPC_STATUS_RESOURCE_EXHAUSTED: return 429;
    case GRPC_STATUS_UNIMPLEMENTED: return 501;
    case GRPC_STATUS_UNAVAILABLE: return 503;
    default: return 500;
    }
}

/* ---- route table ------------------------------------------------------- */

static ndb_status build_routes(svc_rest *r, ndb_errmsg *msg)
{
    for (size_t i = 0; i < rest_n_route_defs; i++) {
        const rest_route_def *def = &rest_route_defs[i];
        if (r->n_routes == MAX_ROUTES)
            return ndb_errmsg_set(msg, NDB_ELIMIT, "more than %d REST routes", MAX_ROUTES);
        rroute *rt = &r->routes[r->n_routes];
        memset(rt, 0, sizeof *rt);
        rt->def = def;
        rt->svc = svc_dispatch_lookup(def->rpc, strlen(def->rpc));
        if (rt->svc == NULL)
            return ndb_errmsg_set(msg, NDB_EINVAL, "REST route %s %s names %s, which has no handler", def->verb,
                                  def->pattern, def->rpc);
        const ProtobufCMessageDescriptor *in = rt->svc->md->input, *out = rt->svc->md->output;
        const char *p = def->pattern;
        while (*p == '/') {
            p++;
            const char *end = strchr(p, '/');
            size_t n = end ? (size_t)(end - p) : strlen(p);
            if (rt->n_segs == MAX_SEGS)
                return ndb_errmsg_set(msg, NDB_ELIMIT, "%s: more than %d segments", def->pattern, MAX_SEGS);
            seg *s = &rt->segs[rt->n_segs];
            if (n >= 2 && p[0] == '{' && p[n - 1] == '}') {
                char name[128];
                if (n - 2 >= sizeof name)
                    return ndb_errmsg_set(msg, NDB_EINVAL, "%s: variable name too long", def->pattern);
                memcpy(name, p + 1, n - 2);
                name[n - 2] = '\0';
                s->var = protobuf_c_message_descriptor_get_field_by_name(in, name);
                if (s->var == NULL)
                    return ndb_errmsg_set(msg, NDB_EINVAL, "%s: {%s} is not a field of %s", def->pattern, name,
                                          in->name);
            } else {
                s->lit = p;
                s->len = n;
                rt->literal_mask |= 1u << (MAX_SEGS - 1 - rt->n_segs);
            }
            rt->n_segs++;
            p += n;
        }
        rt->body_star = strcmp(def->body, "*") == 0;
        if (*def->body && !rt->body_star) {
            rt->body_fd = protobuf_c_message_descriptor_get_field_by_name(in, def->body);
            if (rt->body_fd == NULL)
                return ndb_errmsg_set(msg, NDB_EINVAL, "%s: body field %s not in %s", def->pattern, def->body, in->name);
        }
        if (*def->response_body) {
            rt->resp_fd = protobuf_c_message_descriptor_get_field_by_name(out, def->response_body);
            if (rt->resp_fd == NULL)
                return ndb_errmsg_set(msg, NDB_EINVAL, "%s: response_body %s not in %s", def->pattern,
                                      def->response_body, out->name);
        }
        r->n_routes++;
    }
    return NDB_OK;
}

/* Splits path into segments (pointers into path); -1 when too many. */
static int split_path(const char *path, const char *segs[MAX_SEGS], size_t lens[MAX_SEGS])
{
    int n = 0;
    size_t plen = strlen(path);
    if (plen > 1 && path[plen - 1] == '/')
        plen--; /* one trailing slash is ignored */
    const char *p = path, *end = path + plen;
    while (p < end && *p == '/') {
        p++;
        const char *e = memchr(p, '/', (size_t)(end - p));
        size_t len = e ? (size_t)(e - p) : (size_t)(end - p);
        if (n == MAX_SEGS)
            return -1;
        segs[n] = p;
        lens[n] = len;
        n++;
        p += len;
    }
    return n;
}

static bool path_matches(const rroute *rt, const char *const segs[], const size_t lens[], int n)
{
    if (rt->n_segs != n)
        return false;
    for (int k = 0; k < n; k++) {
        const seg *s = &rt->segs[k];
        if (lens[k] == 0 || (s->lit != NULL && (s->len != lens[k] || memcmp(s->lit, segs[k], lens[k]) != 0)))
            return false;
    }
    return true;
}

/* The best route for verb and path; *path_matched tells a 405 from a 404. */
static const rroute *match(const svc_rest *r, const char *verb, const char *const segs[], const size_t lens[],
                           int n, bool *path_matched)
{
    const rroute *best = NULL;
    *path_matched = false;
    for (size_t i = 0; i < r->n_routes; i++) {
        const rroute *rt = &r->routes[i];
        if (!path_matches(rt, segs, lens, n))
            continue;
        *path_matched = true;
        if (strcmp(rt->def->verb, verb) != 0)
            continue;
        if (best == NULL || rt->literal_mask > best->literal_mask)
            best = rt;
    }
    return best;
}

/* The verbs of the path template that claims this path (the most literal
 * one, as in the OpenAPI document), for Allow headers. */
static void allowed_verbs(const svc_rest *r, const char *const segs[], const size_t lens[], int n, char *out,
                          size_t cap)
{
    out[0] = '\0';
    unsigned best = 0;
    bool any = false;
    for (size_t i = 0; i < r->n_routes; i++)
        if (path_matches(&r->routes[i], segs, lens, n) && (!any || r->routes[i].literal_mask > best)) {
            best = r->routes[i].literal_mask;
            any = true;
        }
    for (size_t i = 0; i < r->n_routes; i++) {
        const rroute *rt = &r->routes[i];
        bool ok = path_matches(rt, segs, lens, n) && rt->literal_mask == best;
        if (ok && strstr(out, rt->def->verb) == NULL) {
            size_t used = strlen(out);
            snprintf(out + used, cap - used, "%s%s", used ? ", " : "", rt->def->verb);
        }
    }
}

/* ---- responses ---------------------------------------------------------------- */

/* Whether origin may call us cross-origin; same-origin requests need no CORS headers. */
static bool origin_allowed(const svc_rest *r, const char *origin)
{
    if (r->any_origin)
        return true;
    for (size_t i = 0; i < r->n_origins; i++)
        if (strcmp(r->origins[i], origin) == 0)
            return true;
    return false;
}

static void add_cors(const svc_rest *r, struct MHD_Connection *conn, struct MHD_Response *resp)
{
    const char *origin = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Origin");
    if (origin == NULL || !origin_allowed(r, origin))
        return;
    MHD_add_response_header(resp, "Access-Control-Allow-Origin", r->any_origin ? "*" : origin);
    if (!r->any_origin)
        MHD_add_response_header(resp, "Vary", "Origin");
}

/* Queues body (malloc'd; ownership passes to libmicrohttpd) with status and content type. */
static enum MHD_Result respond(rreq *q, struct MHD_Connection *conn, unsigned status, const char *ctype, char *body,
                               size_t len, const char *allow)
{
    struct MHD_Response *resp = MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE);
    if (resp == NULL) {
        free(body);
        return MHD_NO;
    }
    q->bytes_out = len;
    MHD_add_response_header(resp, "X-Request-Id", q->request_id);
    if (q->log_index != 0) {
        char idx[24];
        snprintf(idx, sizeof idx, "%llu", (unsigned long long)q->log_index);
        MHD_add_response_header(resp, "NexaDB-Log-Index", idx);
    }
    if (q->retry_after) {
        char secs[16];
        snprintf(secs, sizeof secs, "%d", SVC_RETRY_DELAY_S);
        MHD_add_response_header(resp, MHD_HTTP_HEADER_RETRY_AFTER, secs);
    }
    if (ctype != NULL)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, ctype);
    if (allow != NULL)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, allow);
    if (q->close)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONNECTION, "close");
    add_cors(q->r, conn, resp);
    enum MHD_Result ret = MHD_queue_response(conn, status, resp);
    MHD_destroy_response(resp);
    svc_metrics_http_status(status);
    return ret;
}

static void end_metrics(rreq *q, const svc_route *route, grpc_status_code code)
{
    if (q->ended)
        return;
    q->ended = true;
    q->method = route != NULL ? route->path : svc_metrics_endpoint_name(SVC_METRICS_UNKNOWN);
    q->code = (int)code;
    svc_metrics_end(SVC_TRANSPORT_HTTP, route, (int)code, now_ns() - q->started_ns);
}

static void end_endpoint(rreq *q, svc_metrics_endpoint e, grpc_status_code code)
{
    if (q->ended)
        return;
    q->ended = true;
    q->method = svc_metrics_endpoint_name(e);
    q->code = (int)code;
    svc_metrics_end_endpoint(SVC_TRANSPORT_HTTP, e, (int)code, now_ns() - q->started_ns);
}

/* An error as grpc-gateway writes it: {"code": <gRPC code>, "message": ..., "details": [...]}, the
 * details those of status_details.h (retry: trying later may succeed, also sent as Retry-After). */
static enum MHD_Result respond_error_retry(rreq *q, struct MHD_Connection *conn, const svc_route *route,
                                           grpc_status_code code, unsigned http, const char *message,
                                           const char *allow, bool retry)
{
    end_metrics(q, route, code);
    json_pb_buf b = {0};
    char head[48];
    snprintf(head, sizeof head, "{\"code\":%d,\"message\":", (int)code);
    json_pb_puts(&b, head);
    json_pb_put_string(&b, message, strlen(message));
    json_pb_puts(&b, ",\"details\":");
    svc_status_details_json(&b, (int)code, message, retry);
    json_pb_puts(&b, "}");
    if (b.err != NDB_OK) {
        free(b.p);
        return MHD_NO;
    }
    SVC_LOG(SVC_LOG_DEBUG, "http call failed", LOG_STR("method", route ? route->path : "(none)"),
            LOG_INT("status", http), LOG_STR("message", message), LOG_STR("request_id", q->request_id));
    q->retry_after = retry;
    return respond(q, conn, http ? http : http_status_for(code), "application/json", b.p, b.len, allow);
}

static enum MHD_Result respond_error(rreq *q, struct MHD_Connection *conn, const svc_route *route,
                                     grpc_status_code code, unsigned http, const char *message, const char *allow)
{
    return respond_error_retry(q, conn, route, code, http, message, allow, false);
}

static enum MHD_Result respond_status(rreq *q, struct MHD_Connection *conn, const svc_route *route, ndb_status st,
                                      const char *message)
{
    return respond_error_retry(q, conn, route, svc_status_code(st), 0, message[0] ? message : ndb_strerror(st), NULL,
                               svc_status_retryable(st));
}

/* ---- paging --------------------------------------------------------------------- */

/* A one-body answer pages by default: a streaming call whose request has a
 * "limit" and whose response a "next_page_token" (Find, FindVectors) gets
 * REST_PAGE_LIMIT when the client set none, so GET /collections/{name} is one
 * page, not the whole collection in one body; the token in the body continues.
 * NDJSON (Accept: application/x-ndjson) streams everything as it comes. */
#define REST_PAGE_LIMIT 1000

static void default_page(ProtobufCMessage *req, const ProtobufCMessageDescriptor *out)
{
    const ProtobufCFieldDescriptor *lf = protobuf_c_message_descriptor_get_field_by_name(req->descriptor, "limit");
    if (lf == NULL || lf->type != PROTOBUF_C_TYPE_INT64 ||
        protobuf_c_message_descriptor_get_field_by_name(out, "next_page_token") == NULL)
        return;
    int64_t *limit = (int64_t *)((char *)req + lf->offset);
    if (*limit == 0)
        *limit = REST_PAGE_LIMIT;
}

/* ---- the request pipeline ------------------------------------------------------------ */

typedef struct query_ctx {
    ProtobufCMessage *m;
    const rroute *rt;
    svc_arena *a;
    ndb_errmsg *msg;
    ndb_status st;
} query_ctx;

static int hex_digit(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* A percent-decoded copy of s[0..n) in arena a ('+' is a space in query
 * strings, not in paths); a malformed escape stays as it is. NULL when out
 * of memory. libmicrohttpd is told not to decode (see no_unescape) so that
 * an escaped '/' stays inside its path segment. Values become C strings, so
 * %00 is not decoded: *nul is set and the caller refuses the request (it
 * would otherwise name something else, as "alice%00-typo" would "alice"). */
static char *url_decode(svc_arena *a, const char *s, size_t n, bool plus_is_space, bool *nul)
{
    *nul = false;
    char *out = svc_arena_alloc(a, n + 1);
    if (out == NULL)
        return NULL;
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        int hi, lo;
        if (s[i] == '%' && i + 2 < n && (hi = hex_digit(s[i + 1])) >= 0 && (lo = hex_digit(s[i + 2])) >= 0 &&
            (hi | lo) != 0) {
            out[k++] = (char)(hi << 4 | lo);
            i += 2;
        } else {
            if (s[i] == '%' && i + 2 < n && s[i + 1] == '0' && s[i + 2] == '0')
                *nul = true;
            out[k++] = plus_is_space && s[i] == '+' ? ' ' : s[i];
        }
    }
    out[k] = '\0';
    return out;
}

/* libmicrohttpd's unescape callback: leave the URL and arguments as sent. */
static size_t no_unescape(void *cls, struct MHD_Connection *conn, char *s)
{
    (void)cls;
    (void)conn;
    return strlen(s);
}

static enum MHD_Result on_query_arg(void *cls, enum MHD_ValueKind kind, const char *raw_key, const char *raw_value)
{
    (void)kind;
    query_ctx *q = cls;
    bool key_nul = false, value_nul = false;
    char *key = url_decode(q->a, raw_key, strlen(raw_key), true, &key_nul);
    char *value = raw_value != NULL ? url_decode(q->a, raw_value, strlen(raw_value), true, &value_nul) : NULL;
    if (key == NULL || (raw_value != NULL && value == NULL)) {
        q->st = ndb_errmsg_set(q->msg, NDB_ENOMEM, "out of memory");
        return MHD_NO;
    }
    if (key_nul) {
        q->st = ndb_errmsg_set(q->msg, NDB_EINVAL, "query parameter names must not contain a NUL byte (%%00)");
        return MHD_NO;
    }
    const ProtobufCFieldDescriptor *fd = json_pb_field_by_key(q->m->descriptor, key);
    if (fd == NULL) {
        q->st = ndb_errmsg_set(q->msg, NDB_EINVAL, "unknown query parameter '%.64s'", key);
        return MHD_NO;
    }
    if (q->rt->body_star || fd == q->rt->body_fd) {
        q->st = ndb_errmsg_set(q->msg, NDB_EINVAL, "query parameter '%.64s' belongs in the request body", key);
        return MHD_NO;
    }
    for (int i = 0; i < q->rt->n_segs; i++)
        if (q->rt->segs[i].var == fd) {
            q->st = ndb_errmsg_set(q->msg, NDB_EINVAL, "query parameter '%.64s' is part of the path", key);
            return MHD_NO;
        }
    if (value_nul) {
        q->st = ndb_errmsg_set(q->msg, NDB_EINVAL, "%s: must not contain a NUL byte (%%00)", json_pb_key(fd));
        return MHD_NO;
    }
    q->st = json_pb_set_field_text(q->m, fd, value != NULL ? value : "", q->a, q->msg);
    return q->st == NDB_OK ? MHD_YES : MHD_NO;
}

/* Finds the API key: X-API-Key, or Authorization: Bearer <key>. */
static const char *find_key(struct MHD_Connection *conn, size_t *len)
{
    const char *k = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "X-API-Key");
    if (k != NULL) {
        *len = strlen(k);
        return k;
    }
    const char *a = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);
    if (a != NULL && strncasecmp(a, "Bearer ", 7) == 0) {
        a += 7;
        while (*a == ' ')
            a++;
        *len = strlen(a);
        return a;
    }
    return NULL;
}

static enum MHD_Result serve_rpc(rreq *q, struct MHD_Connection *conn, const rroute *rt, const char *const segs[],
                                 const size_t lens[])
{
    svc_rest *r = q->r;
    const svc_route *route = rt->svc;
    ndb_errmsg msg = {{0}};
    size_t klen = 0;
    const char *key = find_key(conn, &klen);
    svc_role role;
    ndb_status st = svc_authorize(r->app, route, key, klen, &role, &msg);
    if (st != NDB_OK)
        return respond_status(q, conn, route, st, msg.text);
    if (route->m->fn == NULL || (route->m->flags & SVC_M_WATCH))
        return respond_error(q, conn, route, GRPC_STATUS_UNIMPLEMENTED, 0, "this method is not available over HTTP",
                             NULL);

    svc_ctx ctx; /* a request may work as long as its connection may stay silent (--http-timeout) */
    svc_ctx_init(&ctx, r->app, q->started_ns + (int64_t)r->app->cfg->http_timeout_s * 1000000000);
    const char *rc = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "NexaDB-Read-Concern");
    ctx.read_local = rc != NULL && strcmp(rc, "local") == 0;
    const char *ra = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "NexaDB-Read-After");
    if (ra != NULL && (st = svc_read_after(&ctx, ra, strlen(ra), &msg)) != NDB_OK) {
        svc_ctx_release(&ctx);
        return respond_status(q, conn, route, st, msg.text);
    }
    ctx.http = true;
    ctx.method = route->path;
    ctx.role = role;
    rest_sink sk = {0};
    json_pb_buf out = {.limit = r->max_response};
    enum MHD_Result ret;

    ProtobufCMessage *req = json_pb_new(route->md->input, &ctx.arena);
    if (req == NULL) {
        ret = respond_status(q, conn, route, NDB_ENOMEM, "out of memory");
        goto done;
    }
    /* The body first, then path variables, which win over the body. */
    if (rt->body_star || rt->body_fd != NULL) {
        size_t n = q->len;
        while (n > 0 && (q->body[n - 1] == ' ' || q->body[n - 1] == '\n' || q->body[n - 1] == '\r' ||
                         q->body[n - 1] == '\t'))
            n--;
        if (n == 0 && rt->body_fd != NULL) { /* body "*" may be empty: every field is optional */
            char m[160];
            snprintf(m, sizeof m, "this call needs a JSON request body (the %.64s)", json_pb_key(rt->body_fd));
            ret = respond_status(q, conn, route, NDB_EINVAL, m);
            goto done;
        }
        if (n > 0) {
            json_error_t jerr;
            json_t *j = json_loadb(q->body, q->len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &jerr);
            if (j == NULL && strncmp(jerr.text, "too big", 7) == 0) {
                /* An integer beyond int64 (valid JSON, e.g. in a document): read every number as a
                 * double this time. int64 fields that need all 64 bits can be sent as strings. */
                j = json_loadb(q->body, q->len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY | JSON_DECODE_INT_AS_REAL,
                               &jerr);
            }
            if (j == NULL) {
                char m[300];
                snprintf(m, sizeof m, "the request body is not valid JSON: %s (line %d, column %d)", jerr.text,
                         jerr.line, jerr.column);
                ret = respond_status(q, conn, route, NDB_EINVAL, m);
                goto done;
            }
            st = rt->body_star ? json_pb_merge(req, j, &ctx.arena, "", &msg)
                               : json_pb_set_field(req, rt->body_fd, j, &ctx.arena, "", &msg);
            json_decref(j);
            if (st != NDB_OK) {
                ret = respond_status(q, conn, route, st, msg.text);
                goto done;
            }
        }
    }
    for (int i = 0; i < rt->n_segs; i++) {
        if (rt->segs[i].var == NULL)
            continue;
        bool nul;
        char *v = url_decode(&ctx.arena, segs[i], lens[i], false, &nul);
        if (v == NULL) {
            ret = respond_status(q, conn, route, NDB_ENOMEM, "out of memory");
            goto done;
        }
        if (nul) {
            char m[120];
            snprintf(m, sizeof m, "%.64s: must not contain a NUL byte (%%00)", json_pb_key(rt->segs[i].var));
            ret = respond_status(q, conn, route, NDB_EINVAL, m);
            goto done;
        }
        if ((st = json_pb_set_field_text(req, rt->segs[i].var, v, &ctx.arena, &msg)) != NDB_OK) {
            ret = respond_status(q, conn, route, st, msg.text);
            goto done;
        }
    }
    query_ctx qc = {req, rt, &ctx.arena, &msg, NDB_OK};
    MHD_get_connection_values(conn, MHD_GET_ARGUMENT_KIND, on_query_arg, &qc);
    if (qc.st != NDB_OK) {
        ret = respond_status(q, conn, route, qc.st, msg.text);
        goto done;
    }

    if (route->m->flags & SVC_M_HELD) {
        /* an EventSource that reconnects resumes where it stood */
        const char *last = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Last-Event-ID");
        const ProtobufCFieldDescriptor *fd = protobuf_c_message_descriptor_get_field_by_name(req->descriptor,
                                                                                           "resume_after");
        if (last != NULL && *last && fd != NULL &&
            (st = json_pb_set_field_text(req, fd, last, &ctx.arena, &msg)) != NDB_OK) {
            ret = respond_status(q, conn, route, st, msg.text);
            goto done;
        }
        memcpy(ctx.request_id, q->request_id, sizeof ctx.request_id);
        struct MHD_Response *resp = svc_sse_start(r->sse, conn, route, &ctx, req, &st, &msg);
        if (resp == NULL) {
            ret = respond_status(q, conn, route, st, msg.text[0] ? msg.text : ndb_strerror(st));
            goto done;
        }
        end_metrics(q, route, GRPC_STATUS_OK);
        MHD_add_response_header(resp, "X-Request-Id", q->request_id);
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "text/event-stream");
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-cache");
        MHD_add_response_header(resp, "X-Accel-Buffering", "no"); /* proxies: pass events on at once */
        add_cors(r, conn, resp);
        ret = MHD_queue_response(conn, 200, resp);
        MHD_destroy_response(resp);
        svc_metrics_http_status(200);
        goto done;
    }
    bool stream = (route->m->flags & SVC_M_STREAM) != 0;
    if (stream) {
        const char *accept = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_ACCEPT);
        bool ndjson = accept != NULL && strstr(accept, "application/x-ndjson") != NULL;
        if (!ndjson)
            default_page(req, route->md->output);
        if (rest_sink_init(&sk, route->md->output, ndjson, r->max_response) != NDB_OK) {
            ret = respond_status(q, conn, route, NDB_ENOMEM, "out of memory");
            goto done;
        }
        ctx.send = rest_sink_send;
        ctx.transport = &sk;
    }
    ProtobufCMessage *resp = NULL;
    memcpy(ctx.request_id, q->request_id, sizeof ctx.request_id);
    svc_log_bind_request(q->request_id);
    st = svc_call(&ctx, route, req, &resp, &msg);
    svc_log_bind_request(NULL);
    q->log_index = ctx.log_index;
    if (st != NDB_OK) {
        ret = respond_status(q, conn, route, st, msg.text);
        goto done;
    }
    if (stream) {
        st = rest_sink_finish(&sk, rt->resp_fd, &ctx.arena, &out);
    } else if (resp == NULL) {
        ret = respond_status(q, conn, route, NDB_EIO, "handler returned no response");
        goto done;
    } else {
        st = rt->resp_fd != NULL ? json_pb_write_field(&out, resp, rt->resp_fd) : json_pb_write(&out, resp);
    }
    if (st != NDB_OK) {
        free(out.p);
        out = (json_pb_buf){0};
        ret = respond_status(q, conn, route, st,
                             st == NDB_ETOOBIG ? "the response is too large; ask for fewer results (limit, page_token)"
                                               : "out of memory writing the response");
        goto done;
    }
    end_metrics(q, route, GRPC_STATUS_OK);
    if (out.p == NULL) { /* an empty NDJSON stream */
        out.p = malloc(1);
        if (out.p == NULL) {
            ret = MHD_NO;
            goto done;
        }
    }
    ret = respond(q, conn, 200, sk.ndjson ? "application/x-ndjson" : "application/json", out.p, out.len, NULL);
    out.p = NULL; /* owned by libmicrohttpd now */
done:
    free(out.p);
    rest_sink_free(&sk);
    svc_ctx_release(&ctx);
    return ret;
}

/* GET or HEAD /console…: the console's embedded files, without a key (console.h). */
static enum MHD_Result serve_console(rreq *q, struct MHD_Connection *conn, const char *url, const char *verb)
{
    if (strcmp(verb, "GET") != 0 && strcmp(verb, "HEAD") != 0) {
        char m[100];
        snprintf(m, sizeof m, "%.20s is not allowed here (allowed: GET, HEAD)", verb);
        end_endpoint(q, SVC_METRICS_CONSOLE, GRPC_STATUS_UNIMPLEMENTED);
        return respond_error(q, conn, NULL, GRPC_STATUS_UNIMPLEMENTED, 405, m, "GET, HEAD");
    }
    const svc_console_asset *a = NULL;
    switch (svc_console_lookup(url, &a)) {
    case SVC_CONSOLE_FOUND: break;
    case SVC_CONSOLE_BAD_PATH:
        end_endpoint(q, SVC_METRICS_CONSOLE, GRPC_STATUS_INVALID_ARGUMENT);
        return respond_error(q, conn, NULL, GRPC_STATUS_INVALID_ARGUMENT, 400,
                             "not a console path: use A-Z a-z 0-9 . _ - and '/' only, at most 256 bytes", NULL);
    case SVC_CONSOLE_NOT_BUILT:
        end_endpoint(q, SVC_METRICS_CONSOLE, GRPC_STATUS_NOT_FOUND);
        return respond_error(q, conn, NULL, GRPC_STATUS_NOT_FOUND, 404, svc_console_missing, NULL);
    case SVC_CONSOLE_NOT_FOUND:
    default: {
        char m[300];
        snprintf(m, sizeof m, "no console file %.200s", url);
        end_endpoint(q, SVC_METRICS_CONSOLE, GRPC_STATUS_NOT_FOUND);
        return respond_error(q, conn, NULL, GRPC_STATUS_NOT_FOUND, 404, m, NULL);
    }
    }
    const char *ae = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_ACCEPT_ENCODING);
    bool gz = a->gz != NULL && ae != NULL && strstr(ae, "gzip") != NULL;
    struct MHD_Response *resp = MHD_create_response_from_buffer(gz ? a->gz_len : a->len,
                                                                (void *)(gz ? a->gz : a->data),
                                                                MHD_RESPMEM_PERSISTENT);
    if (resp == NULL)
        return MHD_NO;
    end_endpoint(q, SVC_METRICS_CONSOLE, GRPC_STATUS_OK);
    q->bytes_out = gz ? a->gz_len : a->len;
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, a->content_type);
    /* index.html names the hashed files of this build: revalidated each time; those never change. */
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL,
                            a->immutable ? "public, max-age=31536000, immutable" : "no-cache");
    if (a->gz != NULL)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_VARY, "Accept-Encoding");
    if (gz)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_ENCODING, "gzip");
    for (const char *const *h = svc_console_headers; *h != NULL; h += 2)
        MHD_add_response_header(resp, h[0], h[1]);
    MHD_add_response_header(resp, "X-Request-Id", q->request_id);
    enum MHD_Result ret = MHD_queue_response(conn, 200, resp);
    MHD_destroy_response(resp);
    svc_metrics_http_status(200);
    return ret;
}

static enum MHD_Result serve(rreq *q, struct MHD_Connection *conn, const char *url, const char *verb)
{
    svc_rest *r = q->r;
    if (q->too_big) {
        char m[160];
        snprintf(m, sizeof m, "the request body exceeds the %lld-byte limit (--max-body-bytes)",
                 (long long)r->app->cfg->max_body_bytes);
        return respond_error(q, conn, NULL, GRPC_STATUS_RESOURCE_EXHAUSTED, 413, m, NULL);
    }
    if (svc_console_claims(url))
        return serve_console(q, conn, url, verb);
    const char *segs[MAX_SEGS];
    size_t lens[MAX_SEGS];
    int n = split_path(url, segs, lens);

    if (strcmp(verb, "OPTIONS") == 0) {
        const char *origin = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Origin");
        char allow[128];
        allowed_verbs(r, segs, lens, n < 0 ? 0 : n, allow, sizeof allow);
        if (origin != NULL && !origin_allowed(r, origin)) {
            end_endpoint(q, SVC_METRICS_PREFLIGHT, GRPC_STATUS_PERMISSION_DENIED);
            return respond_error(q, conn, NULL, GRPC_STATUS_PERMISSION_DENIED, 403,
                                 "this origin is not allowed (--cors-origins)", NULL);
        }
        end_endpoint(q, SVC_METRICS_PREFLIGHT, GRPC_STATUS_OK);
        struct MHD_Response *resp = MHD_create_response_from_buffer(0, NULL, MHD_RESPMEM_PERSISTENT);
        if (resp == NULL)
            return MHD_NO;
        if (allow[0])
            MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, allow);
        if (origin != NULL) {
            add_cors(r, conn, resp);
            MHD_add_response_header(resp, "Access-Control-Allow-Methods",
                                    allow[0] ? allow : "GET, POST, PUT, DELETE, PATCH");
            MHD_add_response_header(resp, "Access-Control-Allow-Headers",
                                    "Content-Type, X-API-Key, Authorization, Accept");
            MHD_add_response_header(resp, "Access-Control-Max-Age", "600");
        }
        enum MHD_Result ret = MHD_queue_response(conn, 204, resp);
        MHD_destroy_response(resp);
        svc_metrics_http_status(204);
        return ret;
    }

    if (n == 1 && lens[0] == 7 && memcmp(segs[0], "metrics", 7) == 0 && strcmp(verb, "GET") == 0) {
        char *text;
        size_t len;
        ndb_errmsg msg;
        if (!r->app->cfg->metrics_no_auth) { /* it names every collection: any valid key, ro included */
            size_t klen = 0;
            const char *key = find_key(conn, &klen);
            if (key == NULL || svc_auth_check(r->app->auth, key, klen) == SVC_ROLE_NONE) {
                end_endpoint(q, SVC_METRICS_METRICS, GRPC_STATUS_UNAUTHENTICATED);
                return respond_error(q, conn, NULL, GRPC_STATUS_UNAUTHENTICATED, 401,
                                     key == NULL ? "missing API key: /metrics needs one (a read-only key will do); "
                                                   "send x-api-key or authorization: Bearer <key>"
                                                 : "invalid API key",
                                     NULL);
            }
        }
        ndb_status st = svc_metrics_render(r->app, &text, &len, &msg);
        if (st != NDB_OK) {
            end_endpoint(q, SVC_METRICS_METRICS, svc_status_code(st));
            return respond_status(q, conn, NULL, st, msg.text);
        }
        end_endpoint(q, SVC_METRICS_METRICS, GRPC_STATUS_OK);
        return respond(q, conn, 200, "text/plain; version=0.0.4; charset=utf-8", text, len, NULL);
    }
    if (n == 1 && lens[0] == 12 && memcmp(segs[0], "openapi.json", 12) == 0 && strcmp(verb, "GET") == 0) {
        end_endpoint(q, SVC_METRICS_OPENAPI, GRPC_STATUS_OK);
        struct MHD_Response *resp = MHD_create_response_from_buffer(rest_openapi_json_len, (void *)rest_openapi_json,
                                                                    MHD_RESPMEM_PERSISTENT);
        if (resp == NULL)
            return MHD_NO;
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
        add_cors(r, conn, resp);
        enum MHD_Result ret = MHD_queue_response(conn, 200, resp);
        MHD_destroy_response(resp);
        svc_metrics_http_status(200);
        return ret;
    }

    if (n == 1 && ((lens[0] == 7 && memcmp(segs[0], "metrics", 7) == 0) ||
                   (lens[0] == 12 && memcmp(segs[0], "openapi.json", 12) == 0))) {
        char m[100];
        snprintf(m, sizeof m, "%.20s is not allowed here (allowed: GET)", verb);
        return respond_error(q, conn, NULL, GRPC_STATUS_UNIMPLEMENTED, 405, m, "GET");
    }

    bool path_matched = false;
    const rroute *rt = n < 0 ? NULL : match(r, verb, segs, lens, n, &path_matched);
    if (rt == NULL) {
        char m[600];
        if (path_matched) {
            char allow[128];
            allowed_verbs(r, segs, lens, n, allow, sizeof allow);
            snprintf(m, sizeof m, "%.20s is not allowed on %.200s (allowed: %.128s)", verb, url, allow);
            return respond_error(q, conn, NULL, GRPC_STATUS_UNIMPLEMENTED, 405, m, allow);
        }
        snprintf(m, sizeof m, "no route for %.20s %.200s (see GET /openapi.json)", verb, url);
        return respond_error(q, conn, NULL, GRPC_STATUS_NOT_FOUND, 404, m, NULL);
    }
    return serve_rpc(q, conn, rt, segs, lens);
}

/* ---- message framing --------------------------------------------------------------- */

typedef struct framing {
    int n_length, n_encoding;
    bool bad_length, bad_encoding;
} framing;

static enum MHD_Result on_header(void *cls, enum MHD_ValueKind kind, const char *key, const char *value)
{
    (void)kind;
    framing *f = cls;
    if (strcasecmp(key, MHD_HTTP_HEADER_CONTENT_LENGTH) == 0) {
        f->n_length++;
        size_t n = value != NULL ? strlen(value) : 0;
        f->bad_length |= n == 0 || n > 19 || strspn(value, "0123456789") != n;
    } else if (strcasecmp(key, MHD_HTTP_HEADER_TRANSFER_ENCODING) == 0) {
        f->n_encoding++;
        f->bad_encoding |= value == NULL || strcasecmp(value, "chunked") != 0;
    }
    return MHD_YES;
}

/* Why a request's body length is ambiguous, or NULL when it is not. A proxy
 * in front may read the body by one header and us by the other, and what one
 * of us takes for body the other runs as the next request (RFC 9112 §6.3:
 * such a request is answered 400 and the connection closed). So: at most one
 * Content-Length, all digits; Transfer-Encoding only as exactly "chunked";
 * never both. */
static const char *ambiguous_framing(struct MHD_Connection *conn)
{
    framing f = {0};
    MHD_get_connection_values(conn, MHD_HEADER_KIND, on_header, &f);
    if (f.n_length > 0 && f.n_encoding > 0)
        return "a request must not carry both Content-Length and Transfer-Encoding";
    if (f.n_length > 1)
        return "a request must carry at most one Content-Length";
    if (f.bad_length)
        return "Content-Length must be a decimal number of bytes";
    if (f.n_encoding > 1 || f.bad_encoding)
        return "the only Transfer-Encoding accepted is a single 'chunked'";
    return NULL;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url, const char *verb,
                                  const char *version, const char *upload, size_t *upload_size, void **con_cls)
{
    (void)version;
    svc_rest *r = cls;
    rreq *q = *con_cls;
    if (q == NULL) {
        q = calloc(1, sizeof *q);
        if (q == NULL)
            return MHD_NO;
        q->r = r;
        q->started_ns = now_ns();
        *con_cls = q;
        svc_metrics_begin(SVC_TRANSPORT_HTTP);
        const char *rid = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "X-Request-Id");
        svc_request_id(q->request_id, rid, rid != NULL ? strlen(rid) : 0);
        const char *why = ambiguous_framing(conn);
        if (why != NULL) {
            q->close = true; /* answered before the body: the rest of the stream is never parsed */
            return respond_error(q, conn, NULL, GRPC_STATUS_INVALID_ARGUMENT, 400, why, NULL);
        }
        /* The limit is checked from Content-Length before any of the body is read. */
        const char *cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
        if (cl != NULL && strtoull(cl, NULL, 10) > (unsigned long long)r->app->cfg->max_body_bytes) {
            q->too_big = true;
            return serve(q, conn, url, verb);
        }
        /* A caller without a valid key is refused before its body is read, so
         * unauthenticated clients cannot make us buffer bodies. */
        bool body_follows = (cl != NULL && strtoull(cl, NULL, 10) > 0) ||
                            MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_TRANSFER_ENCODING) != NULL;
        if (body_follows) {
            const char *segs[MAX_SEGS];
            size_t lens[MAX_SEGS];
            int n = split_path(url, segs, lens);
            bool path_matched;
            const rroute *rt = n < 0 ? NULL : match(r, verb, segs, lens, n, &path_matched);
            if (rt != NULL) {
                size_t klen = 0;
                const char *key = find_key(conn, &klen);
                svc_role role;
                ndb_errmsg msg = {{0}};
                ndb_status st = svc_authorize(r->app, rt->svc, key, klen, &role, &msg);
                if (st != NDB_OK)
                    return respond_status(q, conn, rt->svc, st, msg.text);
            }
        }
        return MHD_YES; /* answer on a later call: answering now would close the connection */
    }
    if (*upload_size > 0) {
        size_t n = *upload_size;
        *upload_size = 0;
        if (q->ended)
            return MHD_YES; /* answered already (413): drop the rest */
        size_t max = (size_t)r->app->cfg->max_body_bytes;
        if (q->too_big || q->len + n > max) {
            q->too_big = true;
            q->dropped += n;
            return q->dropped > max * DRAIN_FACTOR ? MHD_NO : MHD_YES;
        }
        if (q->len + n > q->cap) {
            size_t cap = q->cap ? q->cap : 4096;
            while (cap < q->len + n)
                cap *= 2;
            if (cap > max)
                cap = max;
            char *b = realloc(q->body, cap);
            if (b == NULL)
                return MHD_NO;
            q->body = b;
            q->cap = cap;
        }
        memcpy(q->body + q->len, upload, n);
        q->len += n;
        return MHD_YES;
    }
    if (q->ended)
        return MHD_YES;
    return serve(q, conn, url, verb);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls, enum MHD_RequestTerminationCode toe)
{
    (void)cls;
    (void)conn;
    (void)toe;
    rreq *q = *con_cls;
    if (q == NULL)
        return;
    end_metrics(q, NULL, GRPC_STATUS_CANCELLED); /* only when no response was queued */
    svc_log_access("http", q->method, svc_code_name(q->code), now_ns() - q->started_ns, q->len, q->bytes_out,
                   q->request_id);
    free(q->body);
    free(q);
    *con_cls = NULL;
}

static void on_mhd_log(void *cls, const char *fmt, va_list ap)
{
    (void)cls;
    char line[512];
    vsnprintf(line, sizeof line, fmt, ap);
    size_t n = strlen(line);
    while (n > 0 && line[n - 1] == '\n')
        line[--n] = '\0';
    SVC_LOG(SVC_LOG_DEBUG, "libmicrohttpd", LOG_STR("message", line));
}

/* ---- start and stop -------------------------------------------------------------------- */

static ndb_status resolve_addr(const char *addr, struct sockaddr_storage *ss, socklen_t *sl, ndb_errmsg *msg)
{
    char host[256];
    const char *colon = strrchr(addr, ':');
    if (colon == NULL)
        return ndb_errmsg_set(msg, NDB_EINVAL, "--http-addr: expected host:port, got '%s'", addr);
    size_t hl = (size_t)(colon - addr);
    if (hl >= sizeof host)
        return ndb_errmsg_set(msg, NDB_EINVAL, "--http-addr: host too long");
    memcpy(host, addr, hl);
    host[hl] = '\0';
    if (hl >= 2 && host[0] == '[' && host[hl - 1] == ']') { /* [::1]:6969 */
        memmove(host, host + 1, hl - 2);
        host[hl - 2] = '\0';
    }
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE};
    struct addrinfo *res = NULL;
    int e = getaddrinfo(host[0] ? host : NULL, colon + 1, &hints, &res);
    if (e != 0)
        return ndb_errmsg_set(msg, NDB_EINVAL, "--http-addr %s: %s", addr, gai_strerror(e));
    memcpy(ss, res->ai_addr, res->ai_addrlen);
    *sl = res->ai_addrlen;
    freeaddrinfo(res);
    return NDB_OK;
}

static void parse_origins(svc_rest *r, const char *list)
{
    snprintf(r->origins_buf, sizeof r->origins_buf, "%s", list);
    char *save = NULL;
    for (char *t = strtok_r(r->origins_buf, ", ", &save); t != NULL; t = strtok_r(NULL, ", ", &save)) {
        if (strcmp(t, "*") == 0)
            r->any_origin = true;
        else if (r->n_origins < MAX_ORIGINS)
            r->origins[r->n_origins++] = t;
    }
}

ndb_status svc_rest_start(svc_app *app, svc_rest **out, int *port, ndb_errmsg *msg)
{
    svc_rest *r = calloc(1, sizeof *r);
    if (r == NULL)
        return ndb_errmsg_set(msg, NDB_ENOMEM, "out of memory starting the REST server");
    r->app = app;
    const svc_config *cfg = app->cfg;
    /* A response may be larger than a gRPC message: JSON is wordier, and streams are merged. */
    r->max_response = (size_t)cfg->max_message_bytes * 4;
    parse_origins(r, cfg->cors_origins);
    ndb_status st = svc_sse_hub_new(&r->sse);
    if (st == NDB_OK)
        st = build_routes(r, msg);
    if (st != NDB_OK)
        goto fail;
    const ProtobufCMessageDescriptor *roots[2 * MAX_ROUTES];
    size_t n_roots = 0;
    for (size_t i = 0; i < r->n_routes; i++) {
        roots[n_roots++] = r->routes[i].svc->md->input;
        roots[n_roots++] = r->routes[i].svc->md->output;
    }
    if ((st = json_pb_init(roots, n_roots, msg)) != NDB_OK)
        goto fail;

    struct sockaddr_storage ss;
    socklen_t sl;
    if ((st = resolve_addr(cfg->http_addr, &ss, &sl, msg)) != NDB_OK)
        goto fail;
    unsigned flags = MHD_USE_EPOLL_INTERNAL_THREAD | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG;
    if (ss.ss_family == AF_INET6)
        flags |= MHD_USE_IPv6;
    struct MHD_OptionItem tls_opts[2] = {{MHD_OPTION_END, 0, NULL}, {MHD_OPTION_END, 0, NULL}};
    if (app->tls != NULL) {
        if ((st = svc_rest_tls_start(app->tls, tls_opts, msg)) != NDB_OK)
            goto fail;
        flags |= MHD_USE_TLS;
    }
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    unsigned threads = cfg->http_threads > 0 ? (unsigned)cfg->http_threads : (unsigned)(ncpu > 0 ? 2 * ncpu : 2);
    /* conn_gate.c caps the port (at the cap, libmicrohttpd would stop accepting and leave new
     * connections queued): each thread's share of this limit is the whole cap, so it never binds. */
    unsigned mhd_limit = (unsigned)app->gate.max_connections * threads;
    r->d = MHD_start_daemon(flags, 0, NULL, NULL, on_request, r, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss,
                            MHD_OPTION_THREAD_POOL_SIZE, threads, MHD_OPTION_CONNECTION_TIMEOUT,
                            (unsigned)cfg->http_timeout_s, MHD_OPTION_CONNECTION_LIMIT, mhd_limit,
                            MHD_OPTION_NOTIFY_COMPLETED, on_completed, r, MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, r,
                            MHD_OPTION_LISTEN_BACKLOG_SIZE, 1024u, MHD_OPTION_UNESCAPE_CALLBACK, no_unescape, r,
                            MHD_OPTION_ARRAY, tls_opts, MHD_OPTION_END);
    if (r->d == NULL) {
        st = ndb_errmsg_set(msg, NDB_EIO, "cannot listen for HTTP on %s (address in use or invalid?)", cfg->http_addr);
        goto fail;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(r->d, MHD_DAEMON_INFO_BIND_PORT);
    *port = info != NULL ? info->port : 0;
    if ((st = svc_gate_watch(*port, msg)) != NDB_OK) {
        MHD_stop_daemon(r->d);
        goto fail;
    }
    SVC_LOG(SVC_LOG_DEBUG, "REST routes", LOG_INT("routes", r->n_routes), LOG_INT("threads", threads));
    *out = r;
    return NDB_OK;
fail:
    if (app->tls != NULL)
        svc_rest_tls_stop();
    svc_sse_hub_free(r->sse);
    free(r);
    return st;
}

void svc_rest_quiesce(svc_rest *r)
{
    if (r != NULL)
        svc_sse_hub_end_all(r->sse);
    if (r != NULL && r->d != NULL) {
        MHD_socket s = MHD_quiesce_daemon(r->d);
        if (s != MHD_INVALID_SOCKET)
            close(s);
    }
}

void svc_rest_stop(svc_rest *r)
{
    if (r == NULL)
        return;
    svc_sse_hub_end_all(r->sse); /* libmicrohttpd must not stop with a connection suspended */
    if (r->d != NULL)
        MHD_stop_daemon(r->d);
    svc_sse_hub_free(r->sse);
    if (r->app->tls != NULL)
        svc_rest_tls_stop();
    free(r);
}
