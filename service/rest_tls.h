/*
 * rest_tls.h — HTTPS for the REST shim: GnuTLS's certificate-retrieve
 * callback hands each new libmicrohttpd connection the current certificate
 * and key from svc_tls (so a reload reaches new connections without
 * restarting the daemon) and, with --tls-client-ca, requires a client
 * certificate and verifies it against the current CA bundle during the
 * handshake.
 *
 * Thread safety: the callbacks run on libmicrohttpd's threads; the parsed
 * form of each certificate generation is built once, under a mutex, and kept
 * until svc_rest_tls_stop (a session may still point at an older one).
 */
#ifndef SVC_REST_TLS_H
#define SVC_REST_TLS_H

#include <microhttpd.h>

#include "ndb_status.h"
#include "tls.h"

/* Parses t's current set; sets *opts to the options MHD_start_daemon needs
 * (MHD_OPTION_ARRAY items ending in MHD_OPTION_END). One server per process. */
ndb_status svc_rest_tls_start(svc_tls *t, struct MHD_OptionItem opts[2], ndb_errmsg *msg);

/* Frees every parsed generation; after MHD_stop_daemon. */
void svc_rest_tls_stop(void);

#endif /* SVC_REST_TLS_H */
