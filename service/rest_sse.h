/*
 * rest_sse.h — a held stream (SVC_M_HELD: Watch) over HTTP as server-sent
 * events (text/event-stream).
 *
 * The handler runs on the app's stream pool (svc_held_start) with a send
 * that turns each message into SSE text: per event "id: <token>" and
 * "data: <event JSON>", then "id: <resume token>" alone, so an EventSource
 * that reconnects sends the position as Last-Event-ID. libmicrohttpd takes
 * the text through a content reader, which suspends the connection while
 * there is none (no thread waits on an idle stream) and the handler resumes
 * it; the handler waits once 1 MiB is buffered (a slow client holds back
 * the stream, not the server's memory). A handler's failure after the 200
 * is sent becomes a last event "event: error" with {"code": gRPC code,
 * "message"}. The client's departure (the response ends) or the server's
 * stop cancels the handler; svc_sse_hub_end_all also resumes every
 * suspended connection, as libmicrohttpd must not stop with one.
 *
 * Thread safety: the hub is shared by the daemon's threads.
 */
#ifndef SVC_REST_SSE_H
#define SVC_REST_SSE_H

#include <microhttpd.h>

#include "dispatch.h"
#include "handler.h"

typedef struct svc_sse_hub svc_sse_hub;

ndb_status svc_sse_hub_new(svc_sse_hub **out);
/* Ends every stream and refuses new ones (before MHD_stop_daemon). */
void svc_sse_hub_end_all(svc_sse_hub *h);
/* After MHD_stop_daemon (which ends the responses): waits for the streams'
 * handlers to return, then frees the hub. */
void svc_sse_hub_free(svc_sse_hub *h);

/* Starts route's handler for req, whose memory is ctx's (taken over: *ctx is
 * left empty either way). Returns the response to queue, or NULL with *st
 * (NDB_ELIMIT at --max-watches, NDB_ECLOSED while stopping) and msg. */
struct MHD_Response *svc_sse_start(svc_sse_hub *h, struct MHD_Connection *conn, const svc_route *route, svc_ctx *ctx,
                                   ProtobufCMessage *req, ndb_status *st, ndb_errmsg *msg);

#endif /* SVC_REST_SSE_H */
