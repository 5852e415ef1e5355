/* json_pb.c — the proto3 JSON mapping over protobuf-c descriptors (see json_pb.h). */
#include "json_pb.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "convert.h"
#include "ndb_doc.h"
#include "google/protobuf/wrappers.pb-c.h"
#include "json_text.h"
#include "rest_routes.h"

/* Nesting deeper than this is refused on input (jansson stops at 2048 too). */
#define MAX_DEPTH 200

/* ---- explicit json_names ------------------------------------------------ */

typedef struct name_override {
    const ProtobufCFieldDescriptor *fd;
    const char *json;
} name_override;

#define MAX_OVERRIDES 64
static name_override overrides[MAX_OVERRIDES];
static size_t n_overrides;

static void resolve(const ProtobufCMessageDescriptor *d, const ProtobufCMessageDescriptor **seen, size_t *n_seen,
                    size_t cap)
{
    for (size_t i = 0; i < *n_seen; i++)
        if (seen[i] == d)
            return;
    if (*n_seen == cap)
        return;
    seen[(*n_seen)++] = d;
    for (size_t k = 0; k < rest_n_json_names; k++) {
        if (strcmp(rest_json_names[k].message, d->name) != 0)
            continue;
        const ProtobufCFieldDescriptor *fd = protobuf_c_message_descriptor_get_field_by_name(d, rest_json_names[k].field);
        if (fd != NULL && n_overrides < MAX_OVERRIDES)
            overrides[n_overrides++] = (name_override){fd, rest_json_names[k].json};
    }
    for (unsigned i = 0; i < d->n_fields; i++)
        if (d->fields[i].type == PROTOBUF_C_TYPE_MESSAGE)
            resolve(d->fields[i].descriptor, seen, n_seen, cap);
}

ndb_status json_pb_init(const ProtobufCMessageDescriptor *const *roots, size_t n_roots, ndb_errmsg *msg)
{
    enum { CAP = 1024 };
    const ProtobufCMessageDescriptor **seen = malloc(CAP * sizeof *seen);
    if (seen == NULL)
        return ndb_errmsg_set(msg, NDB_ENOMEM, "out of memory");
    size_t n_seen = 0;
    n_overrides = 0;
    for (size_t i = 0; i < n_roots; i++)
        resolve(roots[i], seen, &n_seen, CAP);
    free(seen);
    if (n_seen == CAP)
        return ndb_errmsg_set(msg, NDB_ELIMIT, "more than %d message types", CAP);
    return NDB_OK;
}

const char *json_pb_key(const ProtobufCFieldDescriptor *fd)
{
    for (size_t i = 0; i < n_overrides; i++)
        if (overrides[i].fd == fd)
            return overrides[i].json;
    return fd->name;
}

/* Whether key equals the lowerCamelCase form of name. */
static bool camel_equals(const char *name, const char *key)
{
    bool up = false;
    for (; *name; name++) {
        if (*name == '_') {
            up = true;
            continue;
        }
        char want = up ? (char)toupper((unsigned char)*name) : *name;
        up = false;
        if (*key++ != want)
            return false;
    }
    return *key == '\0';
}

const ProtobufCFieldDescriptor *json_pb_field_by_key(const ProtobufCMessageDescriptor *d, const char *key)
{
    const ProtobufCFieldDescriptor *fd = protobuf_c_message_descriptor_get_field_by_name(d, key);
    if (fd != NULL)
        return fd;
    for (size_t i = 0; i < n_overrides; i++)
        if (strcmp(overrides[i].json, key) == 0)
            for (unsigned k = 0; k < d->n_fields; k++)
                if (&d->fields[k] == overrides[i].fd)
                    return overrides[i].fd;
    for (unsigned k = 0; k < d->n_fields; k++)
        if (camel_equals(d->fields[k].name, key))
            return &d->fields[k];
    return NULL;
}

/* ---- field storage -------------------------------------------------------- */

static size_t elem_size(ProtobufCType t)
{
    switch (t) {
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32:
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32:
    case PROTOBUF_C_TYPE_FLOAT:
    case PROTOBUF_C_TYPE_ENUM: return 4;
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
    case PROTOBUF_C_TYPE_DOUBLE: return 8;
    case PROTOBUF_C_TYPE_BOOL: return sizeof(protobuf_c_boolean);
    case PROTOBUF_C_TYPE_STRING: return sizeof(char *);
    case PROTOBUF_C_TYPE_BYTES: return sizeof(ProtobufCBinaryData);
    case PROTOBUF_C_TYPE_MESSAGE: return sizeof(ProtobufCMessage *);
    }
    return 8;
}

static void *field_ptr(const ProtobufCMessage *m, const ProtobufCFieldDescriptor *fd)
{
    return (char *)m + fd->offset;
}

size_t json_pb_count(const ProtobufCMessage *m, const ProtobufCFieldDescriptor *fd)
{
    return *(const size_t *)((const char *)m + fd->quantifier_offset);
}

bool json_pb_field_present(const ProtobufCMessage *m, const ProtobufCFieldDescriptor *fd)
{
    if (fd->label == PROTOBUF_C_LABEL_REPEATED)
        return true;
    if (fd->flags & PROTOBUF_C_FIELD_FLAG_ONEOF)
        return *(const uint32_t *)((const char *)m + fd->quantifier_offset) == fd->id;
    if (fd->type == PROTOBUF_C_TYPE_MESSAGE)
        return *(ProtobufCMessage *const *)field_ptr(m, fd) != NULL;
    if (fd->label == PROTOBUF_C_LABEL_OPTIONAL && fd->quantifier_offset != 0)
        return *(const protobuf_c_boolean *)((const char *)m + fd->quantifier_offset);
    return true;
}

/* Marks a singular field set (oneof case or has_ flag) and returns where its value goes. */
static void *singular_slot(ProtobufCMessage *m, const ProtobufCFieldDescriptor *fd)
{
    if (fd->flags & PROTOBUF_C_FIELD_FLAG_ONEOF)
        *(uint32_t *)((char *)m + fd->quantifier_offset) = fd->id;
    else if (fd->label == PROTOBUF_C_LABEL_OPTIONAL && fd->quantifier_offset != 0 &&
             fd->type != PROTOBUF_C_TYPE_MESSAGE && fd->type != PROTOBUF_C_TYPE_STRING)
        *(protobuf_c_boolean *)((char *)m + fd->quantifier_offset) = 1;
    return field_ptr(m, fd);
}

/* Room for one more element of a repeated field; grows the arena array. */
static void *append_slot(ProtobufCMessage *m, const ProtobufCFieldDescriptor *fd, svc_arena *a)
{
    size_t *n = (size_t *)((char *)m + fd->quantifier_offset);
    void **arr = field_ptr(m, fd);
    size_t es = elem_size(fd->type);
    /* Capacity is the next power of two at or above n (arrays grow by doubling). */
    size_t cap = 0;
    if (*n > 0) {
        cap = 1;
        while (cap < *n)
            cap <<= 1;
    }
    if (*n == cap) {
        size_t ncap = cap ? cap * 2 : 4;
        if (ncap > SIZE_MAX / es)
            return NULL;
        void *grown = svc_arena_alloc(a, ncap * es);
        if (grown == NULL)
            return NULL;
        if (*n > 0)
            memcpy(grown, *arr, *n * es);
        *arr = grown;
    }
    return (char *)*arr + (*n)++ * es;
}

/* Arrays keep this invariant only if built here; json_pb_set_field resets them first. */
static void reset_repeated(ProtobufCMessage *m, const ProtobufCFieldDescriptor *fd)
{
    *(size_t *)((char *)m + fd->quantifier_offset) = 0;
    *(void **)field_ptr(m, fd) = NULL;
}

ProtobufCMessage *json_pb_new(const ProtobufCMessageDescriptor *d, svc_arena *a)
{
    ProtobufCMessage *m = svc_arena_alloc(a, d->sizeof_message);
    if (m != NULL)
        protobuf_c_message_init(d, m);
    return m;
}

/* ---- JSON → message --------------------------------------------------------- */

static const char *type_name(const json_t *j)
{
    switch (json_typeof(j)) {
    case JSON_OBJECT: return "an object";
    case JSON_ARRAY: return "an array";
    case JSON_STRING: return "a string";
    case JSON_INTEGER: return "an integer";
    case JSON_REAL: return "a number";
    case JSON_TRUE:
    case JSON_FALSE: return "a boolean";
    case JSON_NULL: return "null";
    }
    return "a value";
}

static ndb_status bad(ndb_errmsg *msg, const char *path, const char *what, const json_t *j)
{
    return ndb_errmsg_set(msg, NDB_EINVAL, "%s: expected %s, got %s", path, what, type_name(j));
}

/* Parses a decimal integer string strictly. */
static bool parse_i64(const char *s, int64_t *out)
{
    if (*s == '\0' || isspace((unsigned char)*s))
        return false;
    errno = 0;
    char *end;
    long long v = strtoll(s, &end, 10);
    if (errno != 0 || *end != '\0')
        return false;
    *out = v;
    return true;
}

static bool parse_u64(const char *s, uint64_t *out)
{
    if (*s == '\0' || *s == '-' || isspace((unsigned char)*s))
        return false;
    errno = 0;
    char *end;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno != 0 || *end != '\0')
        return false;
    *out = v;
    return true;
}

static bool parse_double(const char *s, double *out)
{
    if (strcmp(s, "NaN") == 0) {
        *out = NAN;
        return true;
    }
    if (strcmp(s, "Infinity") == 0) {
        *out = INFINITY;
        return true;
    }
    if (strcmp(s, "-Infinity") == 0) {
        *out = -INFINITY;
        return true;
    }
    if (*s == '\0' || isspace((unsigned char)*s))
        return false;
    errno = 0;
    char *end;
    double v = strtod(s, &end);
    if (errno != 0 || *end != '\0' || !isfinite(v))
        return false;
    *out = v;
    return true;
}

/* An integer from a JSON number (integral) or decimal string. */
static ndb_status get_int(const json_t *j, int64_t lo, int64_t hi, int64_t *out, const char *path, ndb_errmsg *msg)
{
    int64_t v;
    if (json_is_integer(j)) {
        v = json_integer_value(j);
    } else if (json_is_real(j)) {
        double d = json_real_value(j);
        if (d != floor(d) || d < -9.2233720368547758e18 || d >= 9.2233720368547758e18)
            return ndb_errmsg_set(msg, NDB_EINVAL, "%s: expected an integer, got %g", path, d);
        v = (int64_t)d;
    } else if (json_is_string(j)) {
        if (!parse_i64(json_string_value(j), &v))
            return ndb_errmsg_set(msg, NDB_EINVAL, "%s: '%.40s' is not an integer", path, json_string_value(j));
    } else {
        return bad(msg, path, "an integer", j);
    }
    if (v < lo || v > hi)
        return ndb_errmsg_set(msg, NDB_EINVAL, "%s: %" PRId64 " is out of range [%" PRId64 ", %" PRId64 "]", path, v,
                              lo, hi);
    *out = v;
    return NDB_OK;
}

static ndb_status get_uint(const json_t *j, uint64_t hi, uint64_t *out, const char *path, ndb_errmsg *msg)
{
    uint64_t v;
    if (json_is_string(j)) {
        if (!parse_u64(json_string_value(j), &v))
            return ndb_errmsg_set(msg, NDB_EINVAL, "%s: '%.40s' is not an unsigned integer", path,
                                  json_string_value(j));
    } else {
        int64_t s = 0; /* gcc -O3 cannot see that get_int sets it whenever it returns NDB_OK */
        ndb_status st = get_int(j, 0, INT64_MAX, &s, path, msg);
        if (st != NDB_OK)
            return st;
        v = (uint64_t)s;
    }
    if (v > hi)
        return ndb_errmsg_set(msg, NDB_EINVAL, "%s: %" PRIu64 " is out of range", path, v);
    *out = v;
    return NDB_OK;
}

static ndb_status get_double(const json_t *j, double *out, const char *path, ndb_errmsg *msg)
{
    if (json_is_number(j)) {
        *out = json_number_value(j);
        return NDB_OK;
    }
    if (json_is_string(j) && parse_double(json_string_value(j), out))
        return NDB_OK;
    return bad(msg, path, "a number", j);
}

static int b64_value(unsigned char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+' || c == '-')
        return 62;
    if (c == '/' || c == '_')
        return 63;
    return -1;
}

/* Standard or URL-safe base64, padding optional. */
static ndb_status get_bytes(const json_t *j, ProtobufCBinaryData *out, svc_arena *a, const char *path,
                            ndb_errmsg *msg)
{
    if (!json_is_string(j))
        return bad(msg, path, "a base64 string", j);
    const unsigned char *s = (const unsigned char *)json_string_value(j);
    size_t n = json_string_length(j);
    while (n > 0 && s[n - 1] == '=')
        n--;
    uint8_t *d = svc_arena_alloc(a, n * 3 / 4 + 1);
    if (d == NULL)
        return ndb_errmsg_set(msg, NDB_ENOMEM, "out of memory");
    size_t len = 0;
    uint32_t acc = 0;
    int bits = 0;
    for (size_t i = 0; i < n; i++) {
        int v = b64_value(s[i]);
        if (v < 0)
            return ndb_errmsg_set(msg, NDB_EINVAL, "%s: not base64", path);
        acc = acc << 6 | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            d[len++] = (uint8_t)(acc >> bits);
        }
    }
    out->data = d;
    out->len = len;
    return NDB_OK;
}

static ndb_status get_string(const json_t *j, char **out, svc_arena *a, const char *path, ndb_errmsg *msg)
{
    if (!json_is_string(j))
        return bad(msg, path, "a string", j);
    size_t n = json_string_length(j);
    const char *s = json_string_value(j);
    if (memchr(s, '\0', n) != NULL)
        return ndb_errmsg_set(msg, NDB_EINVAL, "%s: strings may not contain \\u0000", path);
    *out = svc_arena_strndup(a, s, n);
    return *out != NULL ? NDB_OK : ndb_errmsg_set(msg, NDB_ENOMEM, "out of memory");
}

/* Lower-case name of an enum value without its type's prefix: "cosine" for
 * VECTOR_METRIC_COSINE, "descending" for SORT_DIRECTION_DESCENDING (the
 * brief's and MongoDB's words). The prefix is the enum type's name in upper
 * snake case. NULL when v does not start with it. */
static const char *enum_short(const ProtobufCEnumDescriptor *ed, const char *v, char *out, size_t cap)
{
    char pre[96];
    size_t n = 0;
    for (const char *c = ed->short_name; *c && n + 2 < sizeof pre; c++) {
        if (*c >= 'A' && *c <= 'Z' && c != ed->short_name)
            pre[n++] = '_';
        pre[n++] = (char)(*c >= 'a' && *c <= 'z' ? *c - 32 : *c);
    }
    pre[n++] = '_';
    if (strncmp(v, pre, n) != 0 || strlen(v + n) >= cap)
        return NULL;
    size_t i = 0;
    for (const char *c = v + n; *c; c++)
        out[i++] = (char)(*c >= 'A' && *c <= 'Z' ? *c + 32 : *c);
    out[i] = 0;
    return out;
}

static ndb_status get_enum(const json_t *j, const ProtobufCEnumDescriptor *ed, int32_t *out, const char *path,
                           ndb_errmsg *msg)
{
    if (json_is_string(j)) {
        const char *name = json_string_value(j);
        const ProtobufCEnumValue *v = protobuf_c_enum_descriptor_get_value_by_name(ed, name);
        for (unsigned i = 0; v == NULL && i < ed->n_values; i++) { /* or its short name: "cosine" */
            char sh[64];
            const char *s = enum_short(ed, ed->values[i].name, sh, sizeof sh);
            if (s != NULL && strcmp(s, name) == 0)
                v = &ed->values[i];
        }
        if (v == NULL)
            return ndb_errmsg_set(msg, NDB_EINVAL, "%s: '%.60s' is not a %s", path, name, ed->name);
        *out = v->value;
        return NDB_OK;
    }
    int64_t v;
    ndb_status st = get_int(j, INT32_MIN, INT32_MAX, &v, path, msg);
    if (st != NDB_OK)
        return st;
    *out = (int32_t)v;
    return NDB_OK;
}

static ndb_status build_message(const ProtobufCMessageDescriptor *d, const json_t *j, svc_arena *a,
                                const char *path, int depth, ProtobufCMessage **out, ndb_errmsg *msg);
static ndb_status merge(ProtobufCMessage *m, const json_t *j, svc_arena *a, const char *path, int depth,
                        ndb_errmsg *msg);

/* Writes one value of field fd's type from j into slot. */
static ndb_status set_value(const ProtobufCFieldDescriptor *fd, void *slot, const json_t *j, svc_arena *a,
                            const char *path, int depth, ndb_errmsg *msg)
{
    ndb_status st = NDB_OK;
    int64_t i;
    uint64_t u;
    double d;
    switch (fd->type) {
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32:
        if ((st = get_int(j, INT32_MIN, INT32_MAX, &i, path, msg)) == NDB_OK)
            *(int32_t *)slot = (int32_t)i;
        return st;
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
        if ((st = get_int(j, INT64_MIN, INT64_MAX, &i, path, msg)) == NDB_OK)
            *(int64_t *)slot = i;
        return st;
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32:
        if ((st = get_uint(j, UINT32_MAX, &u, path, msg)) == NDB_OK)
            *(uint32_t *)slot = (uint32_t)u;
        return st;
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
        if ((st = get_uint(j, UINT64_MAX, &u, path, msg)) == NDB_OK)
            *(uint64_t *)slot = u;
        return st;
    case PROTOBUF_C_TYPE_FLOAT:
        if ((st = get_double(j, &d, path, msg)) != NDB_OK)
            return st;
        if (isfinite(d) && (d > 3.4028234663852886e38 || d < -3.4028234663852886e38))
            return ndb_errmsg_set(msg, NDB_EINVAL, "%s: %g does not fit a float", path, d);
        *(float *)slot = (float)d;
        return NDB_OK;
    case PROTOBUF_C_TYPE_DOUBLE:
        if ((st = get_double(j, &d, path, msg)) == NDB_OK)
            *(double *)slot = d;
        return st;
    case PROTOBUF_C_TYPE_BOOL:
        if (!json_is_boolean(j))
            return bad(msg, path, "true or false", j);
        *(protobuf_c_boolean *)slot = json_is_true(j);
        return NDB_OK;
    case PROTOBUF_C_TYPE_ENUM:
        return get_enum(j, fd->descriptor, (int32_t *)slot, path, msg);
    case PROTOBUF_C_TYPE_STRING:
        return get_string(j, (char **)slot, a, path, msg);
    case PROTOBUF_C_TYPE_BYTES:
        return get_bytes(j, slot, a, path, msg);
    case PROTOBUF_C_TYPE_MESSAGE:
        return build_message(fd->descriptor, j, a, path, depth + 1, (ProtobufCMessage **)slot, msg);
    }
    return ndb_errmsg_set(msg, NDB_EINVAL, "%s: unsupported field type", path);
}

/* A nexadb.v1.Document from plain JSON (relaxed Extended JSON): the object
 * is encoded by the document engine and carried as BSON, as over gRPC. */
static ndb_status build_document(const json_t *j, svc_arena *a, const char *path, Nexadb__V1__Document **out,
                                 ndb_errmsg *msg)
{
    if (!json_is_object(j))
        return bad(msg, path, "an object", j);
    char *text = json_dumps(j, JSON_COMPACT | JSON_ENCODE_ANY);
    if (text == NULL)
        return ndb_errmsg_set(msg, NDB_ENOMEM, "out of memory");
    void *doc = NULL;
    size_t dlen = 0;
    ndb_errmsg inner = {{0}};
    ndb_status st = ndb_doc_from_json(text, strlen(text), &doc, &dlen, &inner);
    free(text);
    if (st == NDB_OK)
        st = svc_doc_to_document(a, doc, dlen, out, &inner);
    free(doc);
    if (st == NDB_ETOOBIG)
        return ndb_errmsg_set(msg, NDB_EINVAL, "%s: nested deeper than %d levels or larger than %u bytes", path,
                              NDB_DOC_MAX_DEPTH, NDB_DOC_MAX_BYTES);
    if (st != NDB_OK)
        return ndb_errmsg_set(msg, st, "%s: %s", path, inner.text[0] ? inner.text : ndb_strerror(st));
    return NDB_OK;
}

static bool is_wrapper(const ProtobufCMessageDescriptor *d)
{
    return d == &google__protobuf__float_value__descriptor || d == &google__protobuf__double_value__descriptor ||
           d == &google__protobuf__int32_value__descriptor || d == &google__protobuf__int64_value__descriptor ||
           d == &google__protobuf__uint32_value__descriptor || d == &google__protobuf__uint64_value__descriptor ||
           d == &google__protobuf__bool_value__descriptor || d == &google__protobuf__string_value__descriptor ||
           d == &google__protobuf__bytes_value__descriptor;
}

static ndb_status build_message(const ProtobufCMessageDescriptor *d, const json_t *j, svc_arena *a,
                                const char *path, int depth, ProtobufCMessage **out, ndb_errmsg *msg)
{
    if (depth > MAX_DEPTH)
        return ndb_errmsg_set(msg, NDB_EINVAL, "%s: nested deeper than %d levels", path, MAX_DEPTH);
    if (d == &nexadb__v1__document__descriptor)
        return build_document(j, a, path, (Nexadb__V1__Document **)out, msg);
    ProtobufCMessage *m = json_pb_new(d, a);
    if (m == NULL)
        return ndb_errmsg_set(msg, NDB_ENOMEM, "out of memory");
    ndb_status st;
    if (is_wrapper(d))
        st = set_value(&d->fields[0], singular_slot(m, &d->fields[0]), j, a, path, depth, msg);
    else
        st = merge(m, j, a, path, depth, msg);
    *out = m;
    return st;
}

/* A location for error messages ("documents[3].name"), truncated when long. */
static void path_fmt(char *out, size_t cap, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(out, cap, fmt, ap);
    va_end(ap);
}

static ndb_status set_field(ProtobufCMessage *m, const ProtobufCFieldDescriptor *fd, const json_t *j, svc_arena *a,
                            const char *path, int depth, ndb_errmsg *msg)
{
    char sub[200];
    path_fmt(sub, sizeof sub, "%s%s%s", path, *path ? "." : "", json_pb_key(fd));
    if (json_is_null(j))
        return NDB_OK; /* null: the field keeps its default */
    if (fd->label == PROTOBUF_C_LABEL_REPEATED) {
        if (!json_is_array(j))
            return bad(msg, sub, "an array", j);
        reset_repeated(m, fd);
        size_t n = json_array_size(j);
        for (size_t i = 0; i < n; i++) {
            void *slot = append_slot(m, fd, a);
            if (slot == NULL)
                return ndb_errmsg_set(msg, NDB_ENOMEM, "out of memory");
            memset(slot, 0, elem_size(fd->type));
            char el[220];
            path_fmt(el, sizeof el, "%s[%zu]", sub, i);
            ndb_status st = set_value(fd, slot, json_array_get(j, i), a, el, depth, msg);
            if (st != NDB_OK)
                return st;
        }
        return NDB_OK;
    }
    return set_value(fd, singular_slot(m, fd), j, a, sub, depth, msg);
}

static ndb_status merge(ProtobufCMessage *m, const json_t *j, svc_arena *a, const char *path, int depth,
                        ndb_errmsg *msg)
{
    if (!json_is_object(j))
        return bad(msg, *path ? path : "body", "an object", j);
    const ProtobufCMessageDescriptor *d = m->descriptor;
    const char *key;
    size_t klen;
    json_t *v;
    json_object_keylen_foreach((json_t *)j, key, klen, v) {
        const ProtobufCFieldDescriptor *fd = klen == strlen(key) ? json_pb_field_by_key(d, key) : NULL;
        if (fd == NULL)
            return ndb_errmsg_set(msg, NDB_EINVAL, "%s%sunknown field '%.64s' (%s has no such field)", path,
                                  *path ? ": " : "", key, d->name);
        if ((fd->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) && !json_is_null(v)) {
            uint32_t c = *(uint32_t *)((char *)m + fd->quantifier_offset);
            if (c != 0 && c != fd->id)
                return ndb_errmsg_set(msg, NDB_EINVAL, "%s: '%s' and another field of the same oneof are both set",
                                      *path ? path : "body", key);
        }
        ndb_status st = set_field(m, fd, v, a, path, depth, msg);
        if (st != NDB_OK)
            return st;
    }
    return NDB_OK;
}

ndb_status json_pb_merge(ProtobufCMessage *m, const json_t *j, svc_arena *a, const char *path, ndb_errmsg *msg)
{
    return merge(m, j, a, path != NULL ? path : "", 0, msg);
}

ndb_status json_pb_set_field(ProtobufCMessage *m, const ProtobufCFieldDescriptor *fd, const json_t *j,
                             svc_arena *a, const char *path, ndb_errmsg *msg)
{
    return set_field(m, fd, j, a, path != NULL ? path : "", 0, msg);
}

ndb_status json_pb_set_field_text(ProtobufCMessage *m, const ProtobufCFieldDescriptor *fd, const char *text,
                                  svc_arena *a, ndb_errmsg *msg)
{
    const char *key = json_pb_key(fd);
    json_t *j;
    if (fd->type == PROTOBUF_C_TYPE_MESSAGE && !is_wrapper(fd->descriptor)) {
        json_error_t err;
        j = json_loads(text, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, &err);
        if (j == NULL)
            return ndb_errmsg_set(msg, NDB_EINVAL, "%s: not valid JSON: %s (at character %d)", key, err.text,
                                  err.position);
    } else if (fd->type == PROTOBUF_C_TYPE_BOOL) {
        if (strcmp(text, "true") == 0)
            j = json_true();
        else if (strcmp(text, "false") == 0)
            j = json_false();
        else
            return ndb_errmsg_set(msg, NDB_EINVAL, "%s: expected true or false, got '%.40s'", key, text);
    } else {
        /* Numbers and enum names parse from strings by the same rules as JSON strings. */
        j = json_string(text);
        if (j == NULL)
            return ndb_errmsg_set(msg, NDB_EINVAL, "%s: not valid UTF-8", key);
    }
    ndb_status st;
    if (fd->label == PROTOBUF_C_LABEL_REPEATED) {
        void *slot = append_slot(m, fd, a);
        if (slot == NULL) {
            st = ndb_errmsg_set(msg, NDB_ENOMEM, "out of memory");
        } else {
            memset(slot, 0, elem_size(fd->type));
            st = set_value(fd, slot, j, a, key, 0, msg);
        }
    } else if (json_is_null(j) && fd->type == PROTOBUF_C_TYPE_MESSAGE) {
        st = NDB_OK;
    } else {
        st = set_value(fd, singular_slot(m, fd), j, a, key, 0, msg);
    }
    json_decref(j);
    return st;
}

/* ---- message → JSON ------------------------------------------------------------ */

static bool reserve(json_pb_buf *b, size_t n)
{
    if (b->err != NDB_OK)
        return false;
    if (b->limit != 0 && b->len + n > b->limit) {
        b->err = NDB_ETOOBIG;
        return false;
    }
    if (b->len + n <= b->cap)
        return true;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->len + n)
        cap *= 2;
    char *p = realloc(b->p, cap);
    if (p == NULL) {
        b->err = NDB_ENOMEM;
        return false;
    }
    b->p = p;
    b->cap = cap;
    return true;
}

void json_pb_put(json_pb_buf *b, const char *s, size_t n)
{
    if (n == 0) /* s may be NULL then (an empty buffer's bytes) */
        return;
    if (!reserve(b, n))
        return;
    memcpy(b->p + b->len, s, n);
    b->len += n;
}

void json_pb_puts(json_pb_buf *b, const char *s)
{
    json_pb_put(b, s, strlen(s));
}

static void put_char(json_pb_buf *b, char c)
{
    if (reserve(b, 1))
        b->p[b->len++] = c;
}

void json_pb_put_string(json_pb_buf *b, const char *s, size_t n)
{
    /* Worst case every byte becomes \u00XX. */
    if (!reserve(b, n + 2))
        return;
    put_char(b, '"');
    size_t run = 0; /* bytes copied as they are, pending */
    for (size_t i = 0; i < n; i++) {
        char e[6];
        size_t k = ndb_json_escape((unsigned char)s[i], e);
        if (k == 0)
            continue;
        json_pb_put(b, s + run, i - run);
        json_pb_put(b, e, k);
        run = i + 1;
    }
    json_pb_put(b, s + run, n - run);
    put_char(b, '"');
}

static void put_i64(json_pb_buf *b, int64_t v)
{
    char t[24];
    int n = snprintf(t, sizeof t, "%" PRId64, v);
    json_pb_put(b, t, (size_t)n);
}

static void put_u64(json_pb_buf *b, uint64_t v)
{
    char t[24];
    int n = snprintf(t, sizeof t, "%" PRIu64, v);
    json_pb_put(b, t, (size_t)n);
}

/* JSON for a double or float: the shortest text that reads back as v; protobuf's JSON names for
 * NaN and infinities; -0 kept. */
static void put_real(json_pb_buf *b, double v, bool is_float)
{
    if (isnan(v)) {
        json_pb_puts(b, "\"NaN\"");
        return;
    }
    if (isinf(v)) {
        json_pb_puts(b, v > 0 ? "\"Infinity\"" : "\"-Infinity\"");
        return;
    }
    if (v == 0 && signbit(v)) { /* "-0" would read back as the integer 0 */
        json_pb_puts(b, "-0.0");
        return;
    }
    char t[40];
    json_pb_put(b, t, (size_t)ndb_json_shortest(t, sizeof t, v, is_float));
}

void json_pb_put_double(json_pb_buf *b, double v)
{
    put_real(b, v, false);
}

static void put_b64(json_pb_buf *b, const uint8_t *d, size_t n)
{
    static const char tbl[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    put_char(b, '"');
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)d[i] << 16 | (i + 1 < n ? (uint32_t)d[i + 1] << 8 : 0) | (i + 2 < n ? d[i + 2] : 0);
        char o[4] = {tbl[v >> 18 & 63], tbl[v >> 12 & 63], i + 1 < n ? tbl[v >> 6 & 63] : '=',
                     i + 2 < n ? tbl[v & 63] : '='};
        json_pb_put(b, o, 4);
    }
    put_char(b, '"');
}

static void write_message(json_pb_buf *b, const ProtobufCMessage *m);

/* A nexadb.v1.Document as plain JSON (relaxed Extended JSON, key order kept). */
static void write_document(json_pb_buf *b, const Nexadb__V1__Document *d)
{
    ndb_doc_builder *bld;
    if (d->bson.len == 0) {
        json_pb_puts(b, "{}");
        return;
    }
    if (ndb_doc_builder_new(&bld) != NDB_OK) {
        b->err = NDB_ENOMEM;
        return;
    }
    const void *doc;
    size_t len;
    char *text = NULL;
    size_t tlen;
    ndb_status st = ndb_doc_append_bson(bld, d->bson.data, d->bson.len, NULL);
    if (st == NDB_OK && (st = ndb_doc_builder_finish(bld, &doc, &len)) == NDB_OK &&
        (st = ndb_doc_to_json(doc, len, &text, &tlen)) == NDB_OK)
        json_pb_put(b, text, tlen);
    else if (b->err == NDB_OK)
        b->err = st == NDB_ENOMEM ? NDB_ENOMEM : NDB_ECORRUPT;
    free(text);
    ndb_doc_builder_free(bld);
}

/* One value of fd's type at slot. */
static void write_scalar(json_pb_buf *b, const ProtobufCFieldDescriptor *fd, const void *slot)
{
    switch (fd->type) {
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32: put_i64(b, *(const int32_t *)slot); return;
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64: put_i64(b, *(const int64_t *)slot); return;
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32: put_u64(b, *(const uint32_t *)slot); return;
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64: put_u64(b, *(const uint64_t *)slot); return;
    case PROTOBUF_C_TYPE_FLOAT: put_real(b, *(const float *)slot, true); return;
    case PROTOBUF_C_TYPE_DOUBLE: put_real(b, *(const double *)slot, false); return;
    case PROTOBUF_C_TYPE_BOOL: json_pb_puts(b, *(const protobuf_c_boolean *)slot ? "true" : "false"); return;
    case PROTOBUF_C_TYPE_ENUM: {
        int32_t v = *(const int32_t *)slot;
        const ProtobufCEnumValue *ev = protobuf_c_enum_descriptor_get_value(fd->descriptor, v);
        char sh[64];
        const char *name = ev ? enum_short(fd->descriptor, ev->name, sh, sizeof sh) : NULL;
        if (name == NULL && ev != NULL)
            name = ev->name;
        if (name != NULL)
            json_pb_put_string(b, name, strlen(name));
        else
            put_i64(b, v);
        return;
    }
    case PROTOBUF_C_TYPE_STRING: {
        const char *s = *(char *const *)slot;
        if (s == NULL)
            s = "";
        json_pb_put_string(b, s, strlen(s));
        return;
    }
    case PROTOBUF_C_TYPE_BYTES: {
        const ProtobufCBinaryData *d = slot;
        put_b64(b, d->data, d->len);
        return;
    }
    case PROTOBUF_C_TYPE_MESSAGE: {
        const ProtobufCMessage *sub = *(ProtobufCMessage *const *)slot;
        if (sub == NULL)
            json_pb_puts(b, "{}");
        else
            write_message(b, sub);
        return;
    }
    }
}

static void write_message(json_pb_buf *b, const ProtobufCMessage *m)
{
    const ProtobufCMessageDescriptor *d = m->descriptor;
    if (d == &nexadb__v1__document__descriptor) {
        write_document(b, (const void *)m);
        return;
    }
    if (is_wrapper(d)) {
        write_scalar(b, &d->fields[0], field_ptr(m, &d->fields[0]));
        return;
    }
    put_char(b, '{');
    bool first = true;
    for (unsigned i = 0; i < d->n_fields; i++) {
        const ProtobufCFieldDescriptor *fd = &d->fields[i];
        if (!json_pb_field_present(m, fd))
            continue;
        if (!first)
            put_char(b, ',');
        first = false;
        const char *k = json_pb_key(fd);
        json_pb_put_string(b, k, strlen(k));
        put_char(b, ':');
        json_pb_write_field(b, m, fd);
    }
    put_char(b, '}');
}

ndb_status json_pb_write_element(json_pb_buf *b, const ProtobufCMessage *m, const ProtobufCFieldDescriptor *fd,
                                 size_t i)
{
    const char *arr = *(char *const *)field_ptr(m, fd);
    write_scalar(b, fd, arr + i * elem_size(fd->type));
    return b->err;
}

ndb_status json_pb_write_field(json_pb_buf *b, const ProtobufCMessage *m, const ProtobufCFieldDescriptor *fd)
{
    if (fd->label == PROTOBUF_C_LABEL_REPEATED) {
        size_t n = json_pb_count(m, fd);
        put_char(b, '[');
        for (size_t i = 0; i < n; i++) {
            if (i > 0)
                put_char(b, ',');
            json_pb_write_element(b, m, fd, i);
        }
        put_char(b, ']');
        return b->err;
    }
    write_scalar(b, fd, field_ptr(m, fd));
    return b->err;
}

ndb_status json_pb_write(json_pb_buf *b, const ProtobufCMessage *m)
{
    write_message(b, m);
    return b->err;
}
