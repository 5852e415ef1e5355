/*
 * rest_routes.h — the REST bindings generated at build time from the
 * google.api.http annotations in proto/ (service/gen/rest_gen.c writes
 * rest_routes_gen.c into the build directory; nothing here is kept by hand).
 *
 * Thread safety: constant data.
 */
#ifndef SVC_REST_ROUTES_H
#define SVC_REST_ROUTES_H

#include <stddef.h>

/* One HTTP binding of an RPC. */
typedef struct rest_route_def {
    const char *verb;          /* "GET", "POST", "PUT", "DELETE", "PATCH" */
    const char *pattern;       /* "/collections/{collection}/{id}" */
    const char *body;          /* "" (none), "*" (all unbound fields), or a field name */
    const char *response_body; /* "" (the whole response) or a field name */
    const char *rpc;           /* "/nexadb.v1.DocumentService/Get" */
} rest_route_def;

/* A field whose json_name was set explicitly in the .proto (e.g. filter → "query"). */
typedef struct rest_json_name {
    const char *message; /* full name, "nexadb.v1.FindRequest" */
    const char *field;   /* proto name, "filter" */
    const char *json;    /* "query" */
} rest_json_name;

extern const rest_route_def rest_route_defs[];
extern const size_t rest_n_route_defs;
extern const rest_json_name rest_json_names[];
extern const size_t rest_n_json_names;
/* The OpenAPI 3 document, NUL-terminated, rest_openapi_json_len bytes. */
extern const char rest_openapi_json[];
extern const size_t rest_openapi_json_len;

#endif /* SVC_REST_ROUTES_H */
