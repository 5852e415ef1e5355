/* rest_sink.c — a server-streaming method's messages as one HTTP answer (rest_sink.h). */
#include "rest_sink.h"

#include <stdlib.h>
#include <string.h>

ndb_status rest_sink_init(rest_sink *s, const ProtobufCMessageDescriptor *d, bool ndjson, size_t limit)
{
    memset(s, 0, sizeof *s);
    s->d = d;
    s->ndjson = ndjson;
    s->limit = limit;
    if (ndjson)
        return NDB_OK;
    size_t n = d->n_fields ? d->n_fields : 1;
    s->fields = calloc(n, sizeof *s->fields);
    s->counts = calloc(n, sizeof *s->counts);
    s->has = calloc(n, sizeof *s->has);
    return s->fields && s->counts && s->has ? NDB_OK : NDB_ENOMEM;
}

static size_t sink_bytes(const rest_sink *s)
{
    size_t n = s->lines.len;
    if (s->fields != NULL)
        for (unsigned i = 0; i < s->d->n_fields; i++)
            n += s->fields[i].len;
    return n;
}

ndb_status rest_sink_send(svc_ctx *ctx, const ProtobufCMessage *m, ndb_errmsg *msg)
{
    rest_sink *s = ctx->transport;
    if (s->ndjson) {
        json_pb_write(&s->lines, m);
        json_pb_put(&s->lines, "\n", 1);
        if (s->lines.err != NDB_OK)
            return ndb_errmsg_set(msg, s->lines.err, "out of memory collecting the response");
    } else {
        for (unsigned i = 0; i < s->d->n_fields; i++) {
            const ProtobufCFieldDescriptor *fd = &s->d->fields[i];
            json_pb_buf *b = &s->fields[i];
            if (fd->label == PROTOBUF_C_LABEL_REPEATED) {
                size_t n = json_pb_count(m, fd);
                for (size_t k = 0; k < n; k++) {
                    if (s->counts[i]++ > 0)
                        json_pb_put(b, ",", 1);
                    json_pb_write_element(b, m, fd, k);
                }
            } else if (json_pb_field_present(m, fd)) {
                b->len = 0;
                json_pb_write_field(b, m, fd);
                s->has[i] = true;
            }
            if (b->err != NDB_OK)
                return ndb_errmsg_set(msg, b->err, "out of memory collecting the response");
        }
    }
    if (sink_bytes(s) > s->limit)
        return ndb_errmsg_set(msg, NDB_ETOOBIG,
                              "the response exceeds %zu bytes; ask for fewer results (limit, page_token)", s->limit);
    return NDB_OK;
}

void rest_sink_free(rest_sink *s)
{
    free(s->lines.p);
    if (s->fields != NULL)
        for (unsigned i = 0; i < s->d->n_fields; i++)
            free(s->fields[i].p);
    free(s->fields);
    free(s->counts);
    free(s->has);
}

/* The merged object (or the response_body field of it) into out. */
ndb_status rest_sink_finish(rest_sink *s, const ProtobufCFieldDescriptor *resp_fd, svc_arena *a, json_pb_buf *out)
{
    if (s->ndjson) {
        *out = s->lines;
        s->lines = (json_pb_buf){0};
        return NDB_OK;
    }
    ProtobufCMessage *def = json_pb_new(s->d, a); /* defaults for fields no message set */
    if (def == NULL)
        return NDB_ENOMEM;
    bool first = true;
    if (resp_fd == NULL)
        json_pb_put(out, "{", 1);
    for (unsigned i = 0; i < s->d->n_fields; i++) {
        const ProtobufCFieldDescriptor *fd = &s->d->fields[i];
        if (resp_fd != NULL && resp_fd != fd)
            continue;
        bool rep = fd->label == PROTOBUF_C_LABEL_REPEATED;
        if (!rep && !s->has[i] && !json_pb_field_present(def, fd))
            continue;
        if (resp_fd == NULL) {
            if (!first)
                json_pb_put(out, ",", 1);
            first = false;
            const char *k = json_pb_key(fd);
            json_pb_put_string(out, k, strlen(k));
            json_pb_put(out, ":", 1);
        }
        if (rep) {
            json_pb_put(out, "[", 1);
            json_pb_put(out, s->fields[i].p, s->fields[i].len);
            json_pb_put(out, "]", 1);
        } else if (s->has[i]) {
            json_pb_put(out, s->fields[i].p, s->fields[i].len);
        } else {
            json_pb_write_field(out, def, fd);
        }
    }
    if (resp_fd == NULL)
        json_pb_put(out, "}", 1);
    return out->err;
}
