#include "pbcheck.h"

#include <assert.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "ndb_coding.h"

/* Where the walk is: the field entered at each level and, for a repeated
 * one, which occurrence. It is formatted ("queries[1].collection") only for
 * an error message: formatting it per field cost ~3% of an InsertMany. */
typedef struct walk {
    const ProtobufCFieldDescriptor *field[SVC_PB_MAX_DEPTH];
    unsigned index[SVC_PB_MAX_DEPTH];
    int depth;
} walk;

/* Formats the path of the walk's fields into out. */
static const char *path_of(const walk *w, char *out, size_t cap)
{
    size_t n = 0;
    out[0] = '\0';
    for (int i = 0; i < w->depth && n < cap; i++) {
        const ProtobufCFieldDescriptor *f = w->field[i];
        int r = f->label == PROTOBUF_C_LABEL_REPEATED
                    ? snprintf(out + n, cap - n, "%s%s[%u]", i ? "." : "", f->name, w->index[i])
                    : snprintf(out + n, cap - n, "%s%s", i ? "." : "", f->name);
        n += r > 0 ? (size_t)r : 0;
    }
    return out;
}

static ndb_status check(const ProtobufCMessageDescriptor *d, const uint8_t *p, const uint8_t *end, int depth,
                        walk *w, ndb_errmsg *msg)
{
    if (depth <= 0)
        return ndb_errmsg_set(msg, NDB_EINVAL, "request nested too deeply (more than %d message levels)",
                              SVC_PB_MAX_DEPTH);
    unsigned seen[32] = {0}; /* occurrences of each field, by index: the [n] of repeated ones */
    while (p < end) {
        uint64_t tag, n;
        if ((p = ndb_varint_get(p, end, &tag, 10)) == NULL)
            goto bad;
        const ProtobufCFieldDescriptor *f =
            (tag >> 3) <= UINT32_MAX ? protobuf_c_message_descriptor_get_field(d, (unsigned)(tag >> 3)) : NULL;
        if (f == NULL) {
            char path[160];
            return ndb_errmsg_set(msg, NDB_EINVAL,
                                  "%s%sfield number %llu is not part of %s (a client built for another version of "
                                  "the API? documents are nexadb.v1.Document, BSON, since 0.2)",
                                  path_of(w, path, sizeof path), w->depth ? ": " : "",
                                  (unsigned long long)(tag >> 3), d->name);
        }
        switch (tag & 7) {
        case 0:
            if ((p = ndb_varint_get(p, end, &n, 10)) == NULL)
                goto bad;
            break;
        case 1:
            if (end - p < 8)
                goto bad;
            p += 8;
            break;
        case 5:
            if (end - p < 4)
                goto bad;
            p += 4;
            break;
        case 2: {
            if ((p = ndb_varint_get(p, end, &n, 10)) == NULL || n > (uint64_t)(end - p))
                goto bad;
            if (f->type != PROTOBUF_C_TYPE_MESSAGE && f->type != PROTOBUF_C_TYPE_STRING) {
                p += n;
                break;
            }
            size_t i = (size_t)(f - d->fields);
            int lv = w->depth++;
            assert(lv < SVC_PB_MAX_DEPTH); /* levels entered + depth left = max_depth <= the bound */
            w->field[lv] = f;
            w->index[lv] = i < 32 ? seen[i]++ : 0;
            ndb_status st = NDB_OK;
            if (f->type == PROTOBUF_C_TYPE_STRING) {
                char path[160];
                if (n > 0 && memchr(p, 0, (size_t)n) != NULL)
                    st = ndb_errmsg_set(msg, NDB_EINVAL, "%s: must not contain a NUL byte (\\0)",
                                        path_of(w, path, sizeof path));
            } else {
                st = check(f->descriptor, p, p + n, depth - 1, w, msg);
            }
            if (st != NDB_OK)
                return st;
            w->depth = lv;
            p += n;
            break;
        }
        default: /* groups (3, 4) are not proto3; 6 and 7 do not exist */
            goto bad;
        }
    }
    return NDB_OK;
bad:
    return ndb_errmsg_set(msg, NDB_EINVAL, "the request is not valid protobuf wire format");
}

ndb_status svc_pb_check(const ProtobufCMessageDescriptor *d, const uint8_t *buf, size_t len, int max_depth,
                        ndb_errmsg *msg)
{
    walk w = {.depth = 0};
    if (max_depth > SVC_PB_MAX_DEPTH)
        max_depth = SVC_PB_MAX_DEPTH;
    return check(d, buf, buf + len, max_depth, &w, msg);
}
