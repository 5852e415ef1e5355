#include "pbcheck.h"

static const uint8_t *varint(const uint8_t *p, const uint8_t *end, uint64_t *out)
{
    uint64_t v = 0;
    for (int shift = 0; shift < 64 && p < end; shift += 7) {
        uint8_t b = *p++;
        v |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) {
            *out = v;
            return p;
        }
    }
    return NULL;
}

static ndb_status check(const ProtobufCMessageDescriptor *d, const uint8_t *p, const uint8_t *end, int depth,
                        ndb_errmsg *msg)
{
    if (depth <= 0)
        return ndb_errmsg_set(msg, NDB_EINVAL, "request nested too deeply (more than %d message levels)",
                              SVC_PB_MAX_DEPTH);
    while (p < end) {
        uint64_t tag, n;
        if ((p = varint(p, end, &tag)) == NULL)
            goto bad;
        switch (tag & 7) {
        case 0:
            if ((p = varint(p, end, &n)) == NULL)
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
            if ((p = varint(p, end, &n)) == NULL || n > (uint64_t)(end - p))
                goto bad;
            const ProtobufCFieldDescriptor *f =
                d != NULL && (tag >> 3) <= UINT32_MAX ? protobuf_c_message_descriptor_get_field(d, (unsigned)(tag >> 3))
                                                      : NULL;
            if (f != NULL && f->type == PROTOBUF_C_TYPE_MESSAGE) {
                ndb_status st = check(f->descriptor, p, p + n, depth - 1, msg);
                if (st != NDB_OK)
                    return st;
            }
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
    return check(d, buf, buf + len, max_depth, msg);
}
