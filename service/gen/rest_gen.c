/*
 * rest_gen.c — build-time generator of the REST route table and openapi.json.
 *
 *   rest_gen <descriptor-set.binpb> <out.c> <out.json> <version> [--open pkg.Service.Method]...
 *
 * Reads the FileDescriptorSet that protoc writes (with imports and source
 * info), finds every method's google.api.http option (extension 72295728 of
 * MethodOptions, which protoc-c keeps only as an unknown field) and writes:
 *   out.c    — rest_route_defs[] (verb, path template, body, response_body,
 *              gRPC method path), rest_json_names[] (fields whose json_name
 *              was set explicitly in the .proto), and the OpenAPI document as
 *              a string, rest_openapi_json;
 *   out.json — the same OpenAPI 3 document, for people and tools.
 * --open marks methods that need no API key (no security requirement in
 * the OpenAPI document).
 *
 * A host tool: it runs once per build on the project's own descriptor set.
 * It still checks what it reads and fails the build with a message rather
 * than emit a wrong table.
 */
#include <ctype.h>
#include <errno.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "google/api/http.pb-c.h"
#include "google/protobuf/descriptor.pb-c.h"

#define HTTP_RULE_EXTENSION 72295728u

typedef Google__Protobuf__FileDescriptorProto FileProto;
typedef Google__Protobuf__DescriptorProto MsgProto;
typedef Google__Protobuf__FieldDescriptorProto FieldProto;
typedef Google__Protobuf__EnumDescriptorProto EnumProto;

__attribute__((noreturn, format(printf, 1, 2))) static void die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "rest_gen: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    exit(1);
}

/* ---- descriptor index ------------------------------------------------- */

/* The deepest source-info path kept: file -> message -> 2 levels of nested messages/enums. */
#define SRC_PATH_MAX 8

/* Every message and enum by full name (".pkg.Name"), with its file and source path. */
typedef struct msg_entry {
    char *full; /* ".nexadb.v1.FindRequest" */
    const MsgProto *m;
    const EnumProto *e;
    const FileProto *f;
    int32_t path[SRC_PATH_MAX];
    size_t n_path;
    bool emitted;
} msg_entry;

static msg_entry *entries;
static size_t n_entries, cap_entries;

static void add_entry(const char *full, const MsgProto *m, const EnumProto *e, const FileProto *f,
                      const int32_t *path, size_t n_path)
{
    if (n_entries == cap_entries) {
        cap_entries = cap_entries ? cap_entries * 2 : 256;
        entries = realloc(entries, cap_entries * sizeof *entries);
        if (entries == NULL)
            die("out of memory");
    }
    msg_entry *x = &entries[n_entries++];
    memset(x, 0, sizeof *x);
    x->full = strdup(full);
    if (x->full == NULL || n_path > SRC_PATH_MAX)
        die("out of memory or nesting too deep at %s", full);
    x->m = m;
    x->e = e;
    x->f = f;
    memcpy(x->path, path, n_path * sizeof *path);
    x->n_path = n_path;
}

/* snprintf that dies when the result does not fit: a name cut short would be a wrong route. */
__attribute__((format(printf, 3, 4))) static void fmt(char *out, size_t cap, const char *f, ...)
{
    va_list ap;
    va_start(ap, f);
    int n = vsnprintf(out, cap, f, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= cap)
        die("name too long: %.*s...", (int)(cap < 80 ? cap : 80), out);
}

static void index_message(const FileProto *f, const char *scope, const MsgProto *m, int32_t *path, size_t n_path)
{
    char full[512];
    fmt(full, sizeof full, "%s.%s", scope, m->name);
    add_entry(full, m, NULL, f, path, n_path);
    if ((m->n_nested_type > 0 || m->n_enum_type > 0) && n_path + 2 > SRC_PATH_MAX)
        die("%s: types nest more than %d levels deep", full, SRC_PATH_MAX / 2 - 1);
    for (size_t i = 0; i < m->n_nested_type; i++) {
        path[n_path] = 3; /* DescriptorProto.nested_type */
        path[n_path + 1] = (int32_t)i;
        index_message(f, full, m->nested_type[i], path, n_path + 2);
    }
    for (size_t i = 0; i < m->n_enum_type; i++) {
        char ef[512];
        fmt(ef, sizeof ef, "%s.%s", full, m->enum_type[i]->name);
        path[n_path] = 4; /* DescriptorProto.enum_type */
        path[n_path + 1] = (int32_t)i;
        add_entry(ef, NULL, m->enum_type[i], f, path, n_path + 2);
    }
}

static void index_file(const FileProto *f)
{
    char scope[256];
    fmt(scope, sizeof scope, "%s%s", f->package && *f->package ? "." : "", f->package ? f->package : "");
    int32_t path[SRC_PATH_MAX];
    for (size_t i = 0; i < f->n_message_type; i++) {
        path[0] = 4; /* FileDescriptorProto.message_type */
        path[1] = (int32_t)i;
        index_message(f, scope, f->message_type[i], path, 2);
    }
    for (size_t i = 0; i < f->n_enum_type; i++) {
        char ef[512];
        fmt(ef, sizeof ef, "%s.%s", scope, f->enum_type[i]->name);
        path[0] = 5; /* FileDescriptorProto.enum_type */
        path[1] = (int32_t)i;
        add_entry(ef, NULL, f->enum_type[i], f, path, 2);
    }
}

static msg_entry *find_entry(const char *full)
{
    for (size_t i = 0; i < n_entries; i++)
        if (strcmp(entries[i].full, full) == 0)
            return &entries[i];
    die("type %s is not in the descriptor set", full);
    return NULL;
}

/* The leading comment of the element at path in f, trimmed; NULL when none. */
static char *comment_for(const FileProto *f, const int32_t *path, size_t n_path)
{
    if (f->source_code_info == NULL)
        return NULL;
    for (size_t i = 0; i < f->source_code_info->n_location; i++) {
        const Google__Protobuf__SourceCodeInfo__Location *l = f->source_code_info->location[i];
        if (l->n_path != n_path || memcmp(l->path, path, n_path * sizeof *path) != 0)
            continue;
        if (l->leading_comments == NULL || *l->leading_comments == '\0')
            return NULL;
        /* Join lines with spaces, dropping each line's leading blank. */
        const char *s = l->leading_comments;
        char *out = malloc(strlen(s) + 1);
        if (out == NULL)
            die("out of memory");
        size_t n = 0;
        bool line_start = true;
        for (; *s; s++) {
            if (*s == '\n') {
                if (n > 0 && out[n - 1] != ' ')
                    out[n++] = ' ';
                line_start = true;
                continue;
            }
            if (line_start && *s == ' ')
                continue;
            line_start = false;
            out[n++] = *s;
        }
        while (n > 0 && out[n - 1] == ' ')
            n--;
        out[n] = '\0';
        return out;
    }
    return NULL;
}

/* lowerCamelCase of a proto field name, as protoc computes the default json_name. */
static void lower_camel(const char *name, char *out, size_t cap)
{
    size_t n = 0;
    bool up = false;
    for (; *name && n + 1 < cap; name++) {
        if (*name == '_') {
            up = true;
            continue;
        }
        out[n++] = up ? (char)toupper((unsigned char)*name) : *name;
        up = false;
    }
    out[n] = '\0';
}

/* The name a field has in our JSON: its json_name when set explicitly, else its proto name. */
static const char *json_key(const FieldProto *fd)
{
    char camel[256];
    lower_camel(fd->name, camel, sizeof camel);
    if (fd->json_name != NULL && *fd->json_name && strcmp(fd->json_name, camel) != 0)
        return fd->json_name;
    return fd->name;
}

static bool explicit_json_name(const FieldProto *fd)
{
    return json_key(fd) != fd->name;
}

/* ---- OpenAPI schemas -------------------------------------------------- */

static json_t *schemas; /* components.schemas */

static void emit_message_schema(msg_entry *x);

static const char *schema_name(const char *full)
{
    /* ".nexadb.v1.FindRequest" → "nexadb.v1.FindRequest" */
    return full[0] == '.' ? full + 1 : full;
}

static json_t *ref_to(const char *full)
{
    char ref[600];
    fmt(ref, sizeof ref, "#/components/schemas/%s", schema_name(full));
    return json_pack("{s:s}", "$ref", ref);
}

/* VECTOR_METRIC_COSINE of enum VectorMetric -> "cosine": the value without the enum's
 * name in upper snake case, lower-cased (json_pb.c's enum_short, the shim's output). */
static const char *enum_short_name(const char *enum_name, const char *value)
{
    static char out[128];
    char pre[128];
    size_t n = 0;
    for (const char *c = enum_name; *c && n + 2 < sizeof pre; c++) {
        if (*c >= 'A' && *c <= 'Z' && c != enum_name)
            pre[n++] = '_';
        pre[n++] = (char)(*c >= 'a' && *c <= 'z' ? *c - 32 : *c);
    }
    pre[n++] = '_';
    if (strncmp(value, pre, n) != 0 || strlen(value + n) >= sizeof out)
        return value;
    size_t i = 0;
    for (const char *c = value + n; *c; c++)
        out[i++] = (char)(*c >= 'A' && *c <= 'Z' ? *c + 32 : *c);
    out[i] = 0;
    return out;
}

/* The schema of one value of field fd (not counting repetition). */
static json_t *value_schema(const FieldProto *fd)
{
    switch (fd->type) {
    case GOOGLE__PROTOBUF__FIELD_DESCRIPTOR_PROTO__TYPE__TYPE_DOUBLE:
    case GOOGLE__PROTOBUF__FIELD_DESCRIPTOR_PROTO__TYPE__TYPE_FLOAT:
        if (fd->type == GOOGLE__PROTOBUF__FIELD_DESCRIPTOR_PROTO__TYPE__TYPE_FLOAT) /* finite floats only */
            return json_pack("{s:s, s:s, s:f, s:f}", "type", "number", "format", "float", "minimum",
                             -3.4028234663852886e38, "maximum", 3.4028234663852886e38);
        return json_pack("{s:s, s:s}", "type", "number", "format", "double");
    case GOOGLE__PROTOBUF__FIELD_DESCRIPTOR_PROTO__TYPE__TYPE_INT64:
    case GOOGLE__PROTOBUF__FIELD_DESCRIPTOR_PROTO__TYPE__TYPE_SINT64:
    case GOOGLE__PROTOBUF__FIELD_DESCRIPTOR_PROTO__TYPE__TYPE_SFIXED64:
        return json_pack("{s:s, s:s}", "type", "integer", "format", "int64");
    case GOOGLE__PROTOBUF__FIELD_DESCRIPTOR_PROTO__TYPE__TYPE_UINT64:
    case GOOGLE__PROTOBUF__FIELD_DESCRIPTOR_PROTO__TYPE__TYPE_FIXED64:
        return json_pack("{s:s, s:s, s:i}", "type", "integer", "format", "int64", "minimum", 0);
    case GOOGLE__PROTOBUF__FIELD_DESCRIPTOR_PROTO__TYPE__TYPE_INT32:
    case GOOGLE__PROTOBUF__FIELD_DESCRIPTOR_PROTO__TYPE__TYPE_SINT32:
    case GOOGLE__PROTOBUF__FIELD_DESCRIPTOR_PROTO__TYPE__TYPE_SFIXED32:
        return json_pack("{s:s, s:s}", "type", "integer", "format", "int32");
    case GOOGLE__PROTOBUF__FIELD_DESCRIPTOR_PROTO__TYPE__TYPE_UINT32:
    case GOOGLE__PROTOBUF__FIELD_DESCRIPTOR_PROTO__TYPE__TYPE_FIXED32:
        return json_pack("{s:s, s:s, s:i, s:I}", "type", "integer", "format", "int64", "minimum", 0, "maximum",
                         (json_int_t)UINT32_MAX);
    case GOOGLE__PROTOBUF__FIELD_DESCRIPTOR_PROTO__TYPE__TYPE_BOOL:
        return json_pack("{s:s}", "type", "boolean");
    case GOOGLE__PROTOBUF__FIELD_DESCRIPTOR_PROTO__TYPE__TYPE_STRING:
        return json_pack("{s:s}", "type", "string");
    case GOOGLE__PROTOBUF__FIELD_DESCRIPTOR_PROTO__TYPE__TYPE_BYTES:
        return json_pack("{s:s, s:s}", "type", "string", "format", "byte");
    case GOOGLE__PROTOBUF__FIELD_DESCRIPTOR_PROTO__TYPE__TYPE_ENUM: {
        msg_entry *x = find_entry(fd->type_name);
        if (!x->emitted) {
            x->emitted = true;
            /* the shim writes the short lower-case name ("cosine" for VECTOR_METRIC_COSINE)
             * and reads it or the full name (json_pb.c, enum_short) */
            json_t *names = json_array();
            for (size_t i = 0; i < x->e->n_value; i++)
                json_array_append_new(names, json_string(enum_short_name(x->e->name, x->e->value[i]->name)));
            for (size_t i = 0; i < x->e->n_value; i++)
                json_array_append_new(names, json_string(x->e->value[i]->name));
            json_object_set_new(schemas, schema_name(x->full), json_pack("{s:s, s:o}", "type", "string", "enum", names));
        }
        return ref_to(fd->type_name);
    }
    case GOOGLE__PROTOBUF__FIELD_DESCRIPTOR_PROTO__TYPE__TYPE_MESSAGE: {
        const char *t = fd->type_name;
        if (strcmp(t, ".nexadb.v1.Document") == 0) /* BSON over gRPC, a JSON object over REST */
            return json_pack("{s:s, s:b, s:s}", "type", "object", "additionalProperties", 1, "description",
                             "A document in MongoDB's relaxed Extended JSON: plain JSON, with "
                             "{\"$date\": \"<ISO-8601>\"}, {\"$binary\": {\"base64\": ..., \"subType\": \"<hex>\"}} "
                             "and {\"$numberLong\": \"<int64>\"} for what JSON cannot say.");
        if (strcmp(t, ".google.protobuf.FloatValue") == 0)
            return json_pack("{s:s, s:b, s:f, s:f}", "type", "number", "nullable", 1, "minimum",
                             -3.4028234663852886e38, "maximum", 3.4028234663852886e38);
        if (strcmp(t, ".google.protobuf.DoubleValue") == 0)
            return json_pack("{s:s, s:b}", "type", "number", "nullable", 1);
        if (strcmp(t, ".google.protobuf.Int32Value") == 0 || strcmp(t, ".google.protobuf.Int64Value") == 0 ||
            strcmp(t, ".google.protobuf.UInt32Value") == 0 || strcmp(t, ".google.protobuf.UInt64Value") == 0)
            return json_pack("{s:s, s:b}", "type", "integer", "nullable", 1);
        if (strcmp(t, ".google.protobuf.BoolValue") == 0)
            return json_pack("{s:s, s:b}", "type", "boolean", "nullable", 1);
        if (strcmp(t, ".google.protobuf.StringValue") == 0)
            return json_pack("{s:s, s:b}", "type", "string", "nullable", 1);
        msg_entry *x = find_entry(t);
        emit_message_schema(x);
        return ref_to(t);
    }
    default:
        die("field %s: unsupported type %d", fd->name, (int)fd->type);
    }
    return NULL;
}

static json_t *field_schema(const FieldProto *fd, const FileProto *f, const int32_t *path, size_t n_path)
{
    json_t *s = value_schema(fd);
    if (fd->label == GOOGLE__PROTOBUF__FIELD_DESCRIPTOR_PROTO__LABEL__LABEL_REPEATED)
        s = json_pack("{s:s, s:o}", "type", "array", "items", s);
    char *doc = comment_for(f, path, n_path);
    if (doc != NULL) {
        if (json_object_get(s, "$ref") != NULL) /* OpenAPI 3.0 ignores siblings of $ref */
            s = json_pack("{s:[o], s:s}", "allOf", s, "description", doc);
        else
            json_object_set_new(s, "description", json_string(doc));
        free(doc);
    }
    return s;
}

static void emit_message_schema(msg_entry *x)
{
    if (x->emitted)
        return;
    x->emitted = true;
    json_t *props = json_object();
    json_t *s = json_pack("{s:s, s:o, s:b}", "type", "object", "properties", props, "additionalProperties", 0);
    json_object_set_new(schemas, schema_name(x->full), s); /* before recursing: cycles end here */
    char *doc = comment_for(x->f, x->path, x->n_path);
    if (doc != NULL) {
        json_object_set_new(s, "description", json_string(doc));
        free(doc);
    }
    for (size_t i = 0; i < x->m->n_field; i++) {
        int32_t path[SRC_PATH_MAX + 2];
        memcpy(path, x->path, x->n_path * sizeof *path);
        path[x->n_path] = 2; /* DescriptorProto.field */
        path[x->n_path + 1] = (int32_t)i;
        json_object_set_new(props, json_key(x->m->field[i]),
                            field_schema(x->m->field[i], x->f, path, x->n_path + 2));
    }
}

/* ---- routes ----------------------------------------------------------- */

typedef struct route_out {
    const char *verb;
    const char *pattern;
    const char *body;
    const char *response_body;
    char rpc[256];
} route_out;

static route_out *routes;
static size_t n_routes, cap_routes;
static Google__Api__HttpRule **rules; /* unpacked options, freed at exit */
static size_t n_rules, cap_rules;

static const FieldProto *field_named(const MsgProto *m, const char *name)
{
    for (size_t i = 0; i < m->n_field; i++)
        if (strcmp(m->field[i]->name, name) == 0)
            return m->field[i];
    return NULL;
}

/* Checks the template: literal segments and {field} variables naming top-level fields. */
static void check_pattern(const char *pattern, const MsgProto *in, const char *rpc)
{
    if (pattern[0] != '/')
        die("%s: path %s does not start with /", rpc, pattern);
    for (const char *p = pattern; *p; p++) {
        if (*p != '{')
            continue;
        const char *end = strchr(p, '}');
        if (end == NULL)
            die("%s: unclosed { in %s", rpc, pattern);
        char var[128];
        size_t n = (size_t)(end - p - 1);
        if (n == 0 || n >= sizeof var)
            die("%s: bad variable in %s", rpc, pattern);
        memcpy(var, p + 1, n);
        var[n] = '\0';
        if (strchr(var, '=') != NULL || strchr(var, '.') != NULL)
            die("%s: %s: only {field} variables of top-level fields are supported", rpc, pattern);
        const FieldProto *fd = field_named(in, var);
        if (fd == NULL || fd->label == GOOGLE__PROTOBUF__FIELD_DESCRIPTOR_PROTO__LABEL__LABEL_REPEATED ||
            fd->type == GOOGLE__PROTOBUF__FIELD_DESCRIPTOR_PROTO__TYPE__TYPE_MESSAGE)
            die("%s: path variable {%s} is not a singular scalar field of the request", rpc, var);
        p = end;
    }
}

/* --path-pattern field=regex: what the server accepts in that path variable
 * (e.g. collection names), for the OpenAPI document only. */
#define MAX_PATTERNS 16
static const char *patterns[MAX_PATTERNS];
static size_t n_patterns;

static const char *pattern_for(const char *field)
{
    size_t n = strlen(field);
    for (size_t i = 0; i < n_patterns; i++)
        if (strncmp(patterns[i], field, n) == 0 && patterns[i][n] == '=')
            return patterns[i] + n + 1;
    return NULL;
}

static bool in_path(const char *pattern, const char *field)
{
    char v[160];
    fmt(v, sizeof v, "{%s}", field);
    return strstr(pattern, v) != NULL;
}

/* Adds one operation to the OpenAPI paths object. */
static void add_operation(json_t *paths, const route_out *r, const char *op_id, const char *summary,
                          const msg_entry *in, const msg_entry *out, bool streaming, bool events, bool open)
{
    json_t *item = json_object_get(paths, r->pattern);
    if (item == NULL) {
        item = json_object();
        json_object_set_new(paths, r->pattern, item);
    }
    char verb[16];
    size_t i;
    for (i = 0; r->verb[i] && i + 1 < sizeof verb; i++)
        verb[i] = (char)tolower((unsigned char)r->verb[i]);
    verb[i] = '\0';
    if (json_object_get(item, verb) != NULL)
        die("two methods bind %s %s", r->verb, r->pattern);

    json_t *op = json_pack("{s:s}", "operationId", op_id);
    if (summary != NULL)
        json_object_set_new(op, "description", json_string(summary));
    char tag[128];
    fmt(tag, sizeof tag, "%s", strrchr(r->rpc, '.') + 1);
    *strchr(tag, '/') = '\0';
    json_object_set_new(op, "tags", json_pack("[s]", tag));

    json_t *params = json_array();
    bool body_star = strcmp(r->body, "*") == 0;
    for (size_t k = 0; k < in->m->n_field; k++) {
        const FieldProto *fd = in->m->field[k];
        int32_t path[SRC_PATH_MAX + 2];
        memcpy(path, in->path, in->n_path * sizeof *path);
        path[in->n_path] = 2;
        path[in->n_path + 1] = (int32_t)k;
        if (in_path(r->pattern, fd->name)) {
            json_t *s = field_schema(fd, in->f, path, in->n_path + 2);
            json_object_del(s, "description");
            /* A path segment cannot be empty or hold a slash. */
            if (fd->type == GOOGLE__PROTOBUF__FIELD_DESCRIPTOR_PROTO__TYPE__TYPE_STRING) {
                const char *re = pattern_for(fd->name);
                json_object_set_new(s, "minLength", json_integer(1));
                json_object_set_new(s, "pattern", json_string(re != NULL ? re : "^[^/]+$"));
            }
            json_array_append_new(params, json_pack("{s:s, s:s, s:b, s:o}", "name", fd->name, "in", "path",
                                                    "required", 1, "schema", s));
            continue;
        }
        if (body_star || strcmp(r->body, fd->name) == 0)
            continue;
        /* Query parameters: scalars, repeated scalars, and JSON objects (Documents). */
        bool is_struct = fd->type == GOOGLE__PROTOBUF__FIELD_DESCRIPTOR_PROTO__TYPE__TYPE_MESSAGE &&
                         strcmp(fd->type_name, ".nexadb.v1.Document") == 0;
        if (fd->type == GOOGLE__PROTOBUF__FIELD_DESCRIPTOR_PROTO__TYPE__TYPE_MESSAGE && !is_struct)
            continue;
        json_t *p = json_pack("{s:s, s:s}", "name", json_key(fd), "in", "query");
        json_t *s = field_schema(fd, in->f, path, in->n_path + 2);
        json_t *d = json_object_get(s, "description");
        if (d != NULL)
            json_object_set(p, "description", d);
        json_object_del(s, "description");
        if (is_struct) {
            json_object_set_new(p, "content", json_pack("{s:{s:o}}", "application/json", "schema", s));
        } else {
            json_object_set_new(p, "schema", s);
            if (fd->label == GOOGLE__PROTOBUF__FIELD_DESCRIPTOR_PROTO__LABEL__LABEL_REPEATED) {
                json_object_set_new(p, "style", json_string("form"));
                json_object_set_new(p, "explode", json_true());
            }
        }
        json_array_append_new(params, p);
    }
    if (json_array_size(params) > 0)
        json_object_set_new(op, "parameters", params);
    else
        json_decref(params);

    if (*r->body) {
        json_t *s;
        if (body_star) {
            /* The request message without the fields the path carries. */
            char name[300];
            fmt(name, sizeof name, "%s.Body", schema_name(in->full));
            json_t *props = json_object();
            for (size_t k = 0; k < in->m->n_field; k++) {
                const FieldProto *fd = in->m->field[k];
                if (in_path(r->pattern, fd->name))
                    continue;
                int32_t path[SRC_PATH_MAX + 2];
                memcpy(path, in->path, in->n_path * sizeof *path);
                path[in->n_path] = 2;
                path[in->n_path + 1] = (int32_t)k;
                json_object_set_new(props, json_key(fd), field_schema(fd, in->f, path, in->n_path + 2));
            }
            if (json_object_get(schemas, name) == NULL)
                json_object_set_new(schemas, name,
                                    json_pack("{s:s, s:o, s:b}", "type", "object", "properties", props,
                                              "additionalProperties", 0));
            else
                json_decref(props);
            char ref[400];
            fmt(ref, sizeof ref, "#/components/schemas/%s", name);
            s = json_pack("{s:s}", "$ref", ref);
        } else {
            const FieldProto *fd = field_named(in->m, r->body);
            if (fd == NULL)
                die("%s: body field %s is not in the request", r->rpc, r->body);
            s = value_schema(fd);
        }
        /* body "*": every field is optional, so an empty body is a valid request; a named body is required */
        json_object_set_new(op, "requestBody", json_pack("{s:b, s:{s:{s:o}}}", "required", body_star ? 0 : 1,
                                                         "content", "application/json", "schema", s));
    }

    json_t *resp_schema;
    if (*r->response_body) {
        const FieldProto *fd = field_named(out->m, r->response_body);
        if (fd == NULL)
            die("%s: response_body field %s is not in the response", r->rpc, r->response_body);
        resp_schema = value_schema(fd);
    } else {
        emit_message_schema((msg_entry *)out);
        resp_schema = ref_to(out->full);
    }
    json_t *content;
    if (events) { /* server-sent events, for as long as the client reads */
        json_decref(resp_schema);
        content = json_pack("{s:{s:{s:s}}}", "text/event-stream", "schema", "type", "string");
    } else {
        content = json_pack("{s:{s:o}}", "application/json", "schema", resp_schema);
    }
    if (streaming && !events)
        json_object_set_new(content, "application/x-ndjson",
                            json_pack("{s:{s:s}}", "schema", "type", "string")); /* one message per line */
    json_t *responses = json_pack("{s:{s:s, s:o}, s:{s:s, s:{s:{s:{s:s}}}}}", "200", "description",
                                  events ? "OK: server-sent events until the client closes the stream: per event "
                                           "`id: <token>` and `data: <the event as JSON>`, after each message "
                                           "`id: <resume_token>`; a failure after this status comes as a last "
                                           "`event: error` with `data: {\"code\", \"message\"}`"
                                  : streaming ? "OK: the merge of the streamed messages (or NDJSON, one per line, "
                                                "with Accept: application/x-ndjson)"
                                              : "OK",
                                  "content", content, "default", "description", "Error", "content",
                                  "application/json", "schema", "$ref", "#/components/schemas/Error");
    json_object_set_new(op, "responses", responses);
    if (open)
        json_object_set_new(op, "security", json_array());
    json_object_set_new(item, verb, op);
}

/* Writes s as a C string literal, in lines of at most ~100 bytes. */
static void write_c_string(FILE *out, const char *s)
{
    size_t col = 0;
    fputs("    \"", out);
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            fprintf(out, "\\%c", c);
        else if (c == '\n')
            fputs("\\n", out);
        else if (c < 0x20 || c >= 0x7f)
            fprintf(out, "\\%03o", c);
        else
            fputc(c, out);
        if (++col >= 100 || c == '\n') {
            fputs("\"\n    \"", out);
            col = 0;
        }
    }
    fputs("\"", out);
}

static void handle_rule(const Google__Api__HttpRule *rule, const char *rpc, json_t *paths, const char *op_base,
                        int binding, const char *summary, const msg_entry *in, const msg_entry *out, bool streaming,
                        bool events, bool open)
{
    const char *verb, *pattern;
    switch (rule->pattern_case) {
    case GOOGLE__API__HTTP_RULE__PATTERN_GET: verb = "GET", pattern = rule->get; break;
    case GOOGLE__API__HTTP_RULE__PATTERN_PUT: verb = "PUT", pattern = rule->put; break;
    case GOOGLE__API__HTTP_RULE__PATTERN_POST: verb = "POST", pattern = rule->post; break;
    case GOOGLE__API__HTTP_RULE__PATTERN_DELETE: verb = "DELETE", pattern = rule->delete_; break;
    case GOOGLE__API__HTTP_RULE__PATTERN_PATCH: verb = "PATCH", pattern = rule->patch; break;
    default: die("%s: only get/put/post/delete/patch bindings are supported", rpc);
    }
    check_pattern(pattern, in->m, rpc);
    if (*rule->body && strcmp(rule->body, "*") != 0) {
        const FieldProto *fd = field_named(in->m, rule->body);
        if (fd == NULL || fd->label == GOOGLE__PROTOBUF__FIELD_DESCRIPTOR_PROTO__LABEL__LABEL_REPEATED)
            die("%s: body \"%s\" must name a singular field of the request", rpc, rule->body);
    }
    if (n_routes == cap_routes) {
        cap_routes = cap_routes ? cap_routes * 2 : 64;
        routes = realloc(routes, cap_routes * sizeof *routes);
        if (routes == NULL)
            die("out of memory");
    }
    route_out *r = &routes[n_routes++];
    r->verb = verb;
    r->pattern = pattern;
    r->body = rule->body ? rule->body : "";
    r->response_body = rule->response_body ? rule->response_body : "";
    fmt(r->rpc, sizeof r->rpc, "%s", rpc);
    char op_id[200];
    if (binding == 0)
        fmt(op_id, sizeof op_id, "%s", op_base);
    else
        fmt(op_id, sizeof op_id, "%s_%d", op_base, binding);
    add_operation(paths, r, op_id, summary, in, out, streaming, events, open);
}

static void c_str(FILE *out, const char *s)
{
    fputc('"', out);
    for (; *s; s++) {
        if (*s == '"' || *s == '\\')
            fputc('\\', out);
        fputc(*s, out);
    }
    fputc('"', out);
}

int main(int argc, char **argv)
{
    if (argc < 5)
        die("usage: rest_gen <descriptor-set> <out.c> <out.json> <version> [--open pkg.Service.Method]... "
            "[--event-stream pkg.Service.Method]...");
    const char **open = calloc((size_t)argc, sizeof *open), **evs = calloc((size_t)argc, sizeof *evs);
    size_t n_open = 0, n_evs = 0;
    if (open == NULL || evs == NULL)
        die("out of memory");
    for (int i = 5; i < argc; i++) {
        if (strcmp(argv[i], "--open") == 0 && i + 1 < argc)
            open[n_open++] = argv[++i];
        else if (strcmp(argv[i], "--event-stream") == 0 && i + 1 < argc)
            evs[n_evs++] = argv[++i];
        else if (strcmp(argv[i], "--path-pattern") == 0 && i + 1 < argc && n_patterns < MAX_PATTERNS &&
                 strchr(argv[i + 1], '=') != NULL)
            patterns[n_patterns++] = argv[++i];
        else
            die("unexpected argument %s", argv[i]);
    }

    FILE *in = fopen(argv[1], "rb");
    if (in == NULL)
        die("%s: %s", argv[1], strerror(errno));
    size_t cap = 1 << 20, len = 0;
    uint8_t *buf = malloc(cap);
    for (;;) {
        if (buf == NULL)
            die("out of memory");
        len += fread(buf + len, 1, cap - len, in);
        if (len < cap)
            break;
        cap *= 2;
        buf = realloc(buf, cap);
    }
    if (ferror(in))
        die("%s: read error", argv[1]);
    fclose(in);
    Google__Protobuf__FileDescriptorSet *set = google__protobuf__file_descriptor_set__unpack(NULL, len, buf);
    if (set == NULL)
        die("%s is not a FileDescriptorSet", argv[1]);

    for (size_t i = 0; i < set->n_file; i++)
        index_file(set->file[i]);

    schemas = json_object();
    json_t *paths = json_object();
    FILE *c = fopen(argv[2], "w");
    if (c == NULL)
        die("%s: %s", argv[2], strerror(errno));

    for (size_t fi = 0; fi < set->n_file; fi++) {
        const FileProto *f = set->file[fi];
        for (size_t si = 0; si < f->n_service; si++) {
            const Google__Protobuf__ServiceDescriptorProto *svc = f->service[si];
            for (size_t mi = 0; mi < svc->n_method; mi++) {
                const Google__Protobuf__MethodDescriptorProto *md = svc->method[mi];
                if (md->options == NULL)
                    continue;
                const ProtobufCMessage *opts = &md->options->base;
                for (unsigned u = 0; u < opts->n_unknown_fields; u++) {
                    const ProtobufCMessageUnknownField *uf = &opts->unknown_fields[u];
                    if (uf->tag != HTTP_RULE_EXTENSION)
                        continue;
                    if (uf->wire_type != PROTOBUF_C_WIRE_TYPE_LENGTH_PREFIXED)
                        die("%s.%s: google.api.http has the wrong wire type", svc->name, md->name);
                    /* protobuf-c keeps the length prefix in an unknown field's data. */
                    size_t off = 0, plen = 0;
                    for (int shift = 0; off < uf->len && shift < 64; shift += 7) {
                        uint8_t byte = uf->data[off++];
                        plen |= (size_t)(byte & 0x7f) << shift;
                        if (!(byte & 0x80))
                            break;
                    }
                    if (plen != uf->len - off)
                        die("%s.%s: google.api.http has a bad length", svc->name, md->name);
                    Google__Api__HttpRule *rule = google__api__http_rule__unpack(NULL, plen, uf->data + off);
                    if (rule == NULL)
                        die("%s.%s: google.api.http does not parse", svc->name, md->name);
                    char rpc[256], dotted[256], op_base[200];
                    fmt(rpc, sizeof rpc, "/%s%s%s/%s", f->package ? f->package : "",
                             f->package && *f->package ? "." : "", svc->name, md->name);
                    fmt(dotted, sizeof dotted, "%s%s%s.%s", f->package ? f->package : "",
                             f->package && *f->package ? "." : "", svc->name, md->name);
                    fmt(op_base, sizeof op_base, "%s_%s", svc->name, md->name);
                    bool is_open = false, events = false;
                    for (size_t k = 0; k < n_open; k++)
                        is_open = is_open || strcmp(open[k], dotted) == 0;
                    for (size_t k = 0; k < n_evs; k++)
                        events = events || strcmp(evs[k], dotted) == 0;
                    int32_t mpath[4] = {6, (int32_t)si, 2, (int32_t)mi};
                    char *summary = comment_for(f, mpath, 4);
                    msg_entry *ine = find_entry(md->input_type), *oute = find_entry(md->output_type);
                    if (ine->m == NULL || oute->m == NULL)
                        die("%s: input or output is not a message", rpc);
                    bool streaming = md->has_server_streaming && md->server_streaming;
                    handle_rule(rule, rpc, paths, op_base, 0, summary, ine, oute, streaming, events, is_open);
                    for (size_t b = 0; b < rule->n_additional_bindings; b++)
                        handle_rule(rule->additional_bindings[b], rpc, paths, op_base, (int)b + 1, summary, ine,
                                    oute, streaming, events, is_open);
                    free(summary);
                    /* rule is kept until the end: routes[] points into it. */
                    if (n_rules == cap_rules) {
                        cap_rules = cap_rules ? cap_rules * 2 : 64;
                        rules = realloc(rules, cap_rules * sizeof *rules);
                        if (rules == NULL)
                            die("out of memory");
                    }
                    rules[n_rules++] = rule;
                }
            }
        }
    }
    if (n_routes == 0)
        die("no google.api.http options found in %s", argv[1]);

    /* Routes the REST server adds itself. */
    json_object_set_new(paths, "/metrics",
                        json_pack("{s:{s:s, s:s, s:[s], s:{s:{s:s, s:{s:{s:{s:s}}}}, s:{s:s}}}}", "get",
                                  "operationId", "Metrics", "description",
                                  "Prometheus text-format metrics: requests and latency per method and status, "
                                  "in-flight calls, engine and process figures. Needs an API key (a read-only "
                                  "one will do) unless the server runs with --metrics-no-auth.",
                                  "tags", "Server", "responses", "200", "description", "OK", "content",
                                  "text/plain", "schema", "type", "string", "401", "description",
                                  "no valid API key"));
    json_object_set_new(paths, "/openapi.json",
                        json_pack("{s:{s:s, s:s, s:[s], s:[], s:{s:{s:s, s:{s:{s:{s:s}}}}}}}", "get", "operationId",
                                  "OpenAPI", "description", "This document. Needs no API key.", "tags", "Server",
                                  "security", "responses", "200", "description", "OK", "content",
                                  "application/json", "schema", "type", "object"));
    json_object_set_new(
        schemas, "Error",
        json_pack("{s:s, s:[s,s], s:{s:{s:s, s:s}, s:{s:s}, s:{s:s, s:s, s:{s:s, s:[s], s:{s:{s:s}}}}}}", "type",
                  "object", "required", "code", "message", "properties", "code", "type", "integer", "description",
                  "the gRPC status code", "message", "type", "string", "details", "type", "array", "description",
                  "google.rpc.Status details in protobuf's JSON form: google.rpc.BadRequest (the field an "
                  "INVALID_ARGUMENT names), google.rpc.RetryInfo (when trying again later may succeed)",
                  "items", "type", "object", "required", "@type", "properties", "@type", "type", "string"));

    json_t *doc = json_pack(
        "{s:s, s:{s:s, s:s, s:s}, s:o, s:{s:o, s:{s:{s:s, s:s, s:s}, s:{s:s, s:s}}}, s:[{s:[]}, {s:[]}]}", "openapi",
        "3.0.3", "info", "title", "NexaDB", "version", argv[4], "description",
        "NexaDB's HTTP/JSON API, transcoded to the same handlers as the gRPC API. Generated from the "
        "google.api.http annotations in proto/nexadb/v1.",
        "paths", paths, "components", "schemas", schemas, "securitySchemes", "ApiKey", "type", "apiKey", "in",
        "header", "name", "X-API-Key", "Bearer", "type", "http", "scheme", "bearer", "security", "ApiKey", "Bearer");
    if (doc == NULL)
        die("building the OpenAPI document failed");
    char *text = json_dumps(doc, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    if (text == NULL)
        die("out of memory");
    FILE *js = fopen(argv[3], "w");
    if (js == NULL || fputs(text, js) < 0 || fputc('\n', js) < 0 || fclose(js) != 0)
        die("%s: cannot write", argv[3]);

    fprintf(c, "/* Generated by service/gen/rest_gen.c from %s. Do not edit. */\n", argv[1]);
    fprintf(c, "#include \"rest_routes.h\"\n\nconst rest_route_def rest_route_defs[] = {\n");
    for (size_t i = 0; i < n_routes; i++) {
        fputs("    {", c);
        c_str(c, routes[i].verb);
        fputs(", ", c);
        c_str(c, routes[i].pattern);
        fputs(", ", c);
        c_str(c, routes[i].body);
        fputs(", ", c);
        c_str(c, routes[i].response_body);
        fputs(", ", c);
        c_str(c, routes[i].rpc);
        fputs("},\n", c);
    }
    fprintf(c, "};\nconst size_t rest_n_route_defs = %zu;\n\n", n_routes);
    fputs("const rest_json_name rest_json_names[] = {\n", c);
    size_t n_names = 0;
    for (size_t i = 0; i < n_entries; i++) {
        if (entries[i].m == NULL)
            continue;
        for (size_t k = 0; k < entries[i].m->n_field; k++) {
            const FieldProto *fd = entries[i].m->field[k];
            if (!explicit_json_name(fd))
                continue;
            fputs("    {", c);
            c_str(c, schema_name(entries[i].full));
            fputs(", ", c);
            c_str(c, fd->name);
            fputs(", ", c);
            c_str(c, fd->json_name);
            fputs("},\n", c);
            n_names++;
        }
    }
    if (n_names == 0)
        fputs("    {\"\", \"\", \"\"},\n", c);
    fprintf(c, "};\nconst size_t rest_n_json_names = %zu;\n\n", n_names);
    fputs("const char rest_openapi_json[] =\n", c);
    write_c_string(c, text);
    fprintf(c, ";\nconst size_t rest_openapi_json_len = %zu;\n", strlen(text));
    if (fclose(c) != 0)
        die("%s: cannot write", argv[2]);
    free(text);
    json_decref(doc);
    for (size_t i = 0; i < n_rules; i++)
        google__api__http_rule__free_unpacked(rules[i], NULL);
    free(rules);
    for (size_t i = 0; i < n_entries; i++)
        free(entries[i].full);
    free(entries);
    free(routes);
    google__protobuf__file_descriptor_set__free_unpacked(set, NULL);
    free(buf);
    free(open);
    return 0;
}
