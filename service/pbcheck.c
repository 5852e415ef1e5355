#include "pbcheck.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "ndb_coding.h"

/* Where the walk is, for messages: "queries[1].collection". */
typedef struct walk {
    char path[160];
    size_t len;
} walk;

/* Strings are C strings once unpacked: a NUL would cut "alice\0-typo" to
 * "alice" and the call would act on another name, so names, ids and tokens
 * holding one are refused here, before protobuf-c sees them (document
 * strings are inside BSON bytes, where a NUL is data). Fields the message
 * does not define are refused too (pbcheck.h says why). */
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
        if (f == NULL)
            return ndb_errmsg_set(msg, NDB_EINVAL,
                                  "%s%sfield number %llu is not part of %s (a client built for another version of "
                                  "the API? documents are nexadb.v1.Document, BSON, since 0.2)",
                                  w->path, w->len ? ": " : "", (unsigned long long)(tag >> 3), d->name);
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
            size_t saved = w->len;
            size_t i = (size_t)(f - d->fields);
            unsigned k = i < 32 ? seen[i]++ : 0;
            int r = f->label == PROTOBUF_C_LABEL_REPEATED
                        ? snprintf(w->path + w->len, sizeof w->path - w->len, "%s%s[%u]", w->len ? "." : "", f->name, k)
                        : snprintf(w->path + w->len, sizeof w->path - w->len, "%s%s", w->len ? "." : "", f->name);
            w->len = r < 0 || (size_t)r >= sizeof w->path - w->len ? sizeof w->path - 1 : w->len + (size_t)r;
            ndb_status st = NDB_OK;
            if (f->type == PROTOBUF_C_TYPE_STRING) {
                if (n > 0 && memchr(p, 0, (size_t)n) != NULL)
                    st = ndb_errmsg_set(msg, NDB_EINVAL, "%s: must not contain a NUL byte (\\0)", w->path);
            } else {
                st = check(f->descriptor, p, p + n, depth - 1, w, msg);
            }
            if (st != NDB_OK)
                return st;
            w->len = saved;
            w->path[saved] = '\0';
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
    walk w = {.len = 0};
    w.path[0] = '\0';
    return check(d, buf, buf + len, max_depth, &w, msg);
}
