/*
 * h_reflection.c — gRPC server reflection (grpc.reflection.v1 and v1alpha), so
 * grpcurl and other stock clients can list and call the API without the protos.
 *
 * What it serves is the descriptor set protoc writes at build time for every
 * service this server answers (proto/CMakeLists.txt, embedded as
 * svc_reflection_set), with imports and comments. Each stream reads it into
 * the call's memory once; answers are built in page memory. v1alpha's messages
 * are v1's field for field, so both services share these types and handler.
 */
#include <string.h>

#include "ndb_coding.h"
#include "dispatch.h"
#include "google/protobuf/descriptor.pb-c.h"
#include "grpc/reflection/v1/reflection.pb-c.h"
#include "handler.h"

extern const unsigned char svc_reflection_set[];
extern const size_t svc_reflection_set_len;

typedef Google__Protobuf__FileDescriptorProto file_proto;
typedef Google__Protobuf__DescriptorProto msg_proto;
typedef Google__Protobuf__EnumDescriptorProto enum_proto;
typedef Grpc__Reflection__V1__ServerReflectionRequest refl_request;
typedef Grpc__Reflection__V1__ServerReflectionResponse refl_response;

/* Status codes ErrorResponse carries (grpc::StatusCode). */
#define CODE_NOT_FOUND 5
#define CODE_INVALID_ARGUMENT 3

typedef struct refl_set {
    Google__Protobuf__FileDescriptorSet *set;
    ProtobufCBinaryData *raw; /* each file's bytes as protoc wrote them, in set->file order */
} refl_set;

/* The embedded set, unpacked into call memory, with each file's original bytes. */
static ndb_status load_set(svc_ctx *ctx, refl_set *rs, ndb_errmsg *msg)
{
    rs->set = google__protobuf__file_descriptor_set__unpack(&ctx->arena.pb, svc_reflection_set_len,
                                                           svc_reflection_set);
    if (rs->set == NULL)
        return ndb_errmsg_set(msg, NDB_ENOMEM, "reflection: cannot read the server's descriptor set");
    rs->raw = svc_alloc(ctx, (rs->set->n_file + 1) * sizeof *rs->raw);
    if (rs->raw == NULL)
        return ndb_errmsg_set(msg, NDB_ENOMEM, "reflection: out of memory");
    /* FileDescriptorSet is field 1 (length-delimited) repeated: nothing else. */
    const uint8_t *p = svc_reflection_set, *end = svc_reflection_set + svc_reflection_set_len;
    size_t n = 0;
    while (p < end) {
        uint64_t key, len;
        if ((p = ndb_varint_get(p, end, &key, 10)) == NULL || key != 0x0a ||
            (p = ndb_varint_get(p, end, &len, 10)) == NULL ||
            len > (uint64_t)(end - p) || n == rs->set->n_file)
            return ndb_errmsg_set(msg, NDB_ECORRUPT, "reflection: the embedded descriptor set is malformed");
        rs->raw[n++] = (ProtobufCBinaryData){.len = (size_t)len, .data = (uint8_t *)p};
        p += len;
    }
    if (n != rs->set->n_file)
        return ndb_errmsg_set(msg, NDB_ECORRUPT, "reflection: the embedded descriptor set is malformed");
    return NDB_OK;
}

/* Whether name is prefix + "." + rest; sets *rest. An empty prefix matches everything. */
static int scoped(const char *name, const char *prefix, const char **rest)
{
    size_t n = strlen(prefix);
    if (n == 0) {
        *rest = name;
        return 1;
    }
    if (strncmp(name, prefix, n) != 0 || name[n] != '.')
        return 0;
    *rest = name + n + 1;
    return 1;
}

static int enum_defines(const enum_proto *e, const char *rest, int with_values)
{
    if (strcmp(rest, e->name) == 0)
        return 1;
    for (size_t i = 0; with_values && i < e->n_value; i++) /* values are scoped beside their enum */
        if (strcmp(rest, e->value[i]->name) == 0)
            return 1;
    return 0;
}

/* Whether m (at the scope rest is relative to) defines the symbol: the message itself, a field, a
 * oneof, a nested message or enum, or an enum value. */
static int msg_defines(const msg_proto *m, const char *sym)
{
    const char *rest;
    if (strcmp(sym, m->name) == 0)
        return 1;
    if (!scoped(sym, m->name, &rest))
        return 0;
    for (size_t i = 0; i < m->n_field; i++)
        if (strcmp(rest, m->field[i]->name) == 0)
            return 1;
    for (size_t i = 0; i < m->n_oneof_decl; i++)
        if (strcmp(rest, m->oneof_decl[i]->name) == 0)
            return 1;
    for (size_t i = 0; i < m->n_enum_type; i++)
        if (enum_defines(m->enum_type[i], rest, 1))
            return 1;
    for (size_t i = 0; i < m->n_nested_type; i++)
        if (msg_defines(m->nested_type[i], rest))
            return 1;
    return 0;
}

/* Whether the file declares the fully qualified symbol (a service, a method, a type, ...). */
static int file_defines(const file_proto *f, const char *sym)
{
    const char *rest;
    if (!scoped(sym, f->package != NULL ? f->package : "", &rest))
        return 0;
    for (size_t i = 0; i < f->n_service; i++) {
        const Google__Protobuf__ServiceDescriptorProto *s = f->service[i];
        const char *method;
        if (strcmp(rest, s->name) == 0)
            return 1;
        for (size_t j = 0; j < s->n_method && scoped(rest, s->name, &method); j++)
            if (strcmp(method, s->method[j]->name) == 0)
                return 1;
    }
    for (size_t i = 0; i < f->n_message_type; i++)
        if (msg_defines(f->message_type[i], rest))
            return 1;
    for (size_t i = 0; i < f->n_enum_type; i++)
        if (enum_defines(f->enum_type[i], rest, 1))
            return 1;
    return 0;
}

static size_t file_index(const refl_set *rs, const char *name)
{
    for (size_t i = 0; i < rs->set->n_file; i++)
        if (strcmp(rs->set->file[i]->name, name) == 0)
            return i;
    return SIZE_MAX;
}

/* Appends file i and, after it, everything it imports, each once. */
static void add_with_deps(const refl_set *rs, size_t i, unsigned char *seen, size_t *order, size_t *n)
{
    if (seen[i])
        return;
    seen[i] = 1;
    order[(*n)++] = i;
    const file_proto *f = rs->set->file[i];
    for (size_t d = 0; d < f->n_dependency; d++) {
        size_t j = file_index(rs, f->dependency[d]);
        if (j != SIZE_MAX)
            add_with_deps(rs, j, seen, order, n);
    }
}

static ndb_status answer_error(svc_ctx *ctx, refl_response *r, int code, const char *text)
{
    Grpc__Reflection__V1__ErrorResponse *e = svc_page_alloc(ctx, sizeof *e);
    if (e == NULL)
        return NDB_ENOMEM;
    grpc__reflection__v1__error_response__init(e);
    e->error_code = code;
    e->error_message = (char *)text;
    r->message_response_case = GRPC__REFLECTION__V1__SERVER_REFLECTION_RESPONSE__MESSAGE_RESPONSE_ERROR_RESPONSE;
    r->error_response = e;
    return NDB_OK;
}

/* The file i and its transitive imports. */
static ndb_status answer_files(svc_ctx *ctx, const refl_set *rs, size_t i, refl_response *r)
{
    size_t n_files = rs->set->n_file, n = 0;
    unsigned char *seen = svc_page_alloc(ctx, n_files);
    size_t *order = svc_page_alloc(ctx, n_files * sizeof *order);
    Grpc__Reflection__V1__FileDescriptorResponse *fr = svc_page_alloc(ctx, sizeof *fr);
    ProtobufCBinaryData *files = svc_page_alloc(ctx, n_files * sizeof *files);
    if (seen == NULL || order == NULL || fr == NULL || files == NULL)
        return NDB_ENOMEM;
    memset(seen, 0, n_files);
    add_with_deps(rs, i, seen, order, &n);
    grpc__reflection__v1__file_descriptor_response__init(fr);
    for (size_t k = 0; k < n; k++)
        files[k] = rs->raw[order[k]];
    fr->n_file_descriptor_proto = n;
    fr->file_descriptor_proto = files;
    r->message_response_case =
        GRPC__REFLECTION__V1__SERVER_REFLECTION_RESPONSE__MESSAGE_RESPONSE_FILE_DESCRIPTOR_RESPONSE;
    r->file_descriptor_response = fr;
    return NDB_OK;
}

/* Every service this server answers, from the dispatch table (so it cannot list one it lacks). */
static ndb_status answer_services(svc_ctx *ctx, refl_response *r)
{
    size_t n_routes;
    const svc_route *routes = svc_dispatch_routes(&n_routes);
    Grpc__Reflection__V1__ListServiceResponse *ls = svc_page_alloc(ctx, sizeof *ls);
    Grpc__Reflection__V1__ServiceResponse **svcs = svc_page_alloc(ctx, n_routes * sizeof *svcs);
    if (ls == NULL || svcs == NULL)
        return NDB_ENOMEM;
    grpc__reflection__v1__list_service_response__init(ls);
    for (size_t i = 0; i < n_routes; i++) {
        const char *path = routes[i].path + 1, *slash = strchr(path, '/'); /* "/pkg.Service/Method" */
        size_t len = (size_t)(slash - path);
        size_t k = 0;
        while (k < ls->n_service && !(strlen(svcs[k]->name) == len && memcmp(svcs[k]->name, path, len) == 0))
            k++;
        if (k < ls->n_service)
            continue;
        Grpc__Reflection__V1__ServiceResponse *s = svc_page_alloc(ctx, sizeof *s);
        char *name = svc_page_alloc(ctx, len + 1);
        if (s == NULL || name == NULL)
            return NDB_ENOMEM;
        grpc__reflection__v1__service_response__init(s);
        memcpy(name, path, len);
        name[len] = '\0';
        s->name = name;
        svcs[ls->n_service++] = s;
    }
    ls->service = svcs;
    r->message_response_case = GRPC__REFLECTION__V1__SERVER_REFLECTION_RESPONSE__MESSAGE_RESPONSE_LIST_SERVICES_RESPONSE;
    r->list_services_response = ls;
    return NDB_OK;
}

static ndb_status answer(svc_ctx *ctx, const refl_set *rs, const refl_request *q, refl_response *r)
{
    r->valid_host = q->host;
    r->original_request = (refl_request *)q;
    switch (q->message_request_case) {
    case GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_LIST_SERVICES:
        return answer_services(ctx, r);
    case GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_FILE_BY_FILENAME: {
        size_t i = file_index(rs, q->file_by_filename);
        return i == SIZE_MAX ? answer_error(ctx, r, CODE_NOT_FOUND, "no such file") : answer_files(ctx, rs, i, r);
    }
    case GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_FILE_CONTAINING_SYMBOL:
        for (size_t i = 0; i < rs->set->n_file; i++)
            if (file_defines(rs->set->file[i], q->file_containing_symbol))
                return answer_files(ctx, rs, i, r);
        return answer_error(ctx, r, CODE_NOT_FOUND, "no such symbol");
    case GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_FILE_CONTAINING_EXTENSION:
        return answer_error(ctx, r, CODE_NOT_FOUND, "no such extension");
    case GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_ALL_EXTENSION_NUMBERS_OF_TYPE: {
        /* Known types have no extensions registered (the API declares none). */
        for (size_t i = 0; i < rs->set->n_file; i++) {
            if (!file_defines(rs->set->file[i], q->all_extension_numbers_of_type))
                continue;
            Grpc__Reflection__V1__ExtensionNumberResponse *e = svc_page_alloc(ctx, sizeof *e);
            if (e == NULL)
                return NDB_ENOMEM;
            grpc__reflection__v1__extension_number_response__init(e);
            e->base_type_name = q->all_extension_numbers_of_type;
            r->message_response_case =
                GRPC__REFLECTION__V1__SERVER_REFLECTION_RESPONSE__MESSAGE_RESPONSE_ALL_EXTENSION_NUMBERS_RESPONSE;
            r->all_extension_numbers_response = e;
            return NDB_OK;
        }
        return answer_error(ctx, r, CODE_NOT_FOUND, "no such type");
    }
    default:
        return answer_error(ctx, r, CODE_INVALID_ARGUMENT, "the request names no question");
    }
}

/* One stream: an answer for each request, in order, until the client stops sending. */
static ndb_status reflection_info(svc_ctx *ctx, const ProtobufCMessage *first, ProtobufCMessage **resp,
                                  ndb_errmsg *msg)
{
    (void)resp;
    refl_set rs;
    ndb_status st = load_set(ctx, &rs, msg);
    const refl_request *q = (const refl_request *)first;
    while (st == NDB_OK && q != NULL) {
        refl_response r = GRPC__REFLECTION__V1__SERVER_REFLECTION_RESPONSE__INIT;
        st = answer(ctx, &rs, q, &r);
        if (st != NDB_OK)
            return ndb_errmsg_set(msg, st, "reflection: out of memory");
        st = svc_send(ctx, &r.base, msg);
        ProtobufCMessage *next = NULL;
        if (st == NDB_OK)
            st = svc_recv(ctx, &next, msg);
        q = (const refl_request *)next;
    }
    return st;
}

/* Both services list the server's API to any valid key (read-only included). */
static const svc_method methods[] = {
    {"ServerReflectionInfo", reflection_info, SVC_M_BIDI},
};

const svc_service svc_reflection_service = {&grpc__reflection__v1__server_reflection__descriptor, methods, 1};

/* grpc.reflection.v1alpha.ServerReflection: v1's messages under v1alpha's name. */
static const ProtobufCMethodDescriptor v1alpha_methods[] = {
    {"ServerReflectionInfo", &grpc__reflection__v1__server_reflection_request__descriptor,
     &grpc__reflection__v1__server_reflection_response__descriptor},
};
static const unsigned v1alpha_method_index[] = {0};
static const ProtobufCServiceDescriptor v1alpha_desc = {
    PROTOBUF_C__SERVICE_DESCRIPTOR_MAGIC,
    "grpc.reflection.v1alpha.ServerReflection",
    "ServerReflection",
    "Grpc__Reflection__V1alpha__ServerReflection",
    "grpc.reflection.v1alpha",
    1,
    v1alpha_methods,
    v1alpha_method_index,
};

const svc_service svc_reflection_v1alpha_service = {&v1alpha_desc, methods, 1};
