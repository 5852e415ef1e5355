/*
 * status_details.h — what a failed call tells a client beyond its code and
 * message, as google.rpc.Status details: both transports send the same ones.
 *
 *   BadRequest    for INVALID_ARGUMENT whose message names a field the house
 *                 way, "<field path>: <problem>" ("sort[1].field: must not
 *                 contain a NUL byte"): one field violation.
 *   RetryInfo     when trying again later may succeed (svc_status_retryable):
 *                 the server is overloaded, starting or stopping.
 *
 * gRPC carries the packed google.rpc.Status in the grpc-status-details-bin
 * trailer; REST puts the details in its error body's "details" array, in
 * protobuf's JSON form ({"@type": "type.googleapis.com/google.rpc.BadRequest",
 * "fieldViolations": [...]}), and sends Retry-After.
 */
#ifndef SVC_STATUS_DETAILS_H
#define SVC_STATUS_DETAILS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "json_pb.h"
#include "ndb_status.h"

/* Seconds a client should wait before retrying a retryable failure. */
#define SVC_RETRY_DELAY_S 1

/* Whether a call that failed with st may succeed when tried again later. */
bool svc_status_retryable(ndb_status st);

/* The packed google.rpc.Status for a failed call (malloc'd; *len its size), or
 * NULL when it has no details to add or memory ran out. */
uint8_t *svc_status_details_pack(int grpc_code, const char *message, bool retry, size_t *len);

/* Appends the details as a JSON array ("[]" when none) to b. */
void svc_status_details_json(json_pb_buf *b, int grpc_code, const char *message, bool retry);

#endif /* SVC_STATUS_DETAILS_H */
