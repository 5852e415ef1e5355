#include "status_details.h"

#include <grpc/status.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "google/protobuf/any.pb-c.h"
#include "google/protobuf/duration.pb-c.h"
#include "google/rpc/error_details.pb-c.h"
#include "google/rpc/status.pb-c.h"

#define FIELD_MAX 128

bool svc_status_retryable(ndb_status st)
{
    return st == NDB_ELIMIT || st == NDB_EBUSY || st == NDB_ECLOSED;
}

/* The field an INVALID_ARGUMENT message names ("<path>: <problem>") into field; its problem in *rest. */
static bool violation(int code, const char *message, char field[FIELD_MAX + 1], const char **rest)
{
    if (code != GRPC_STATUS_INVALID_ARGUMENT || message == NULL)
        return false;
    size_t n = 0;
    for (const char *p = message; *p != ':'; p++, n++) {
        char c = *p;
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == '$' ||
                  (n > 0 && ((c >= '0' && c <= '9') || c == '.' || c == '[' || c == ']'));
        if (!ok || n == FIELD_MAX)
            return false;
    }
    if (n == 0 || message[n + 1] != ' ')
        return false;
    memcpy(field, message, n);
    field[n] = '\0';
    *rest = message + n + 2;
    return true;
}

/* Packs m into an Any (value malloc'd into *buf). */
static bool to_any(const ProtobufCMessage *m, const char *type, Google__Protobuf__Any *any, uint8_t **buf)
{
    size_t n = protobuf_c_message_get_packed_size(m);
    *buf = malloc(n ? n : 1);
    if (*buf == NULL)
        return false;
    protobuf_c_message_pack(m, *buf);
    google__protobuf__any__init(any);
    any->type_url = (char *)type;
    any->value = (ProtobufCBinaryData){.len = n, .data = *buf};
    return true;
}

uint8_t *svc_status_details_pack(int grpc_code, const char *message, bool retry, size_t *len)
{
    char field[FIELD_MAX + 1];
    const char *problem = NULL;
    bool bad = violation(grpc_code, message, field, &problem);
    if (!bad && !retry)
        return NULL;

    Google__Rpc__BadRequest__FieldViolation fv = GOOGLE__RPC__BAD_REQUEST__FIELD_VIOLATION__INIT;
    Google__Rpc__BadRequest__FieldViolation *fvs[1] = {&fv};
    Google__Rpc__BadRequest br = GOOGLE__RPC__BAD_REQUEST__INIT;
    Google__Protobuf__Duration delay = GOOGLE__PROTOBUF__DURATION__INIT;
    Google__Rpc__RetryInfo ri = GOOGLE__RPC__RETRY_INFO__INIT;
    Google__Protobuf__Any anys[2], *details[2];
    uint8_t *bufs[2] = {NULL, NULL};
    size_t n = 0;
    bool ok = true;
    if (bad) {
        fv.field = field;
        fv.description = (char *)problem;
        br.n_field_violations = 1;
        br.field_violations = fvs;
        ok = to_any(&br.base, "type.googleapis.com/google.rpc.BadRequest", &anys[n], &bufs[n]);
        details[n] = &anys[n];
        n++;
    }
    if (ok && retry) {
        delay.seconds = SVC_RETRY_DELAY_S;
        ri.retry_delay = &delay;
        ok = to_any(&ri.base, "type.googleapis.com/google.rpc.RetryInfo", &anys[n], &bufs[n]);
        details[n] = &anys[n];
        n++;
    }
    uint8_t *out = NULL;
    if (ok) {
        Google__Rpc__Status st = GOOGLE__RPC__STATUS__INIT;
        st.code = grpc_code;
        st.message = (char *)(message != NULL ? message : "");
        st.n_details = n;
        st.details = details;
        *len = protobuf_c_message_get_packed_size(&st.base);
        out = malloc(*len ? *len : 1);
        if (out != NULL)
            protobuf_c_message_pack(&st.base, out);
    }
    free(bufs[0]);
    free(bufs[1]);
    return out;
}

void svc_status_details_json(json_pb_buf *b, int grpc_code, const char *message, bool retry)
{
    char field[FIELD_MAX + 1];
    const char *problem = NULL;
    bool bad = violation(grpc_code, message, field, &problem);
    json_pb_puts(b, "[");
    if (bad) {
        json_pb_puts(b, "{\"@type\":\"type.googleapis.com/google.rpc.BadRequest\",\"fieldViolations\":[{\"field\":");
        json_pb_put_string(b, field, strlen(field));
        json_pb_puts(b, ",\"description\":");
        json_pb_put_string(b, problem, strlen(problem));
        json_pb_puts(b, "}]}");
    }
    if (retry) {
        char t[96];
        snprintf(t, sizeof t, "%s{\"@type\":\"type.googleapis.com/google.rpc.RetryInfo\",\"retryDelay\":\"%ds\"}",
                 bad ? "," : "", SVC_RETRY_DELAY_S);
        json_pb_puts(b, t);
    }
    json_pb_puts(b, "]");
}
