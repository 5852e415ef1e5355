/*
 * tls.h — the server's certificate, key, (for mTLS) client CA and (in a
 * cluster) the CA of the other nodes' certificates, read from the files
 * --tls-cert, --tls-key, --tls-client-ca and --tls-peer-ca name, and read again
 * on SIGHUP or when a file changes (svc_tls_poll), without a restart. Both
 * transports take the current set for every new handshake: gRPC through a
 * certificate-config fetcher (grpc_server.c), libmicrohttpd through GnuTLS's
 * certificate-retrieve callback (rest.c). Connections already open keep the
 * certificate they were made with.
 *
 * Thread safety: svc_tls_reload and svc_tls_poll run on the main thread;
 * svc_tls_get may be called from any thread at any time.
 *
 * Invariants: the current set always holds a certificate chain and a key
 * that GnuTLS accepted as a matching pair (and a CA bundle of at least one
 * certificate when mTLS is on). A reload that fails leaves the previous set
 * in place and says why.
 */
#ifndef SVC_TLS_H
#define SVC_TLS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "ndb_status.h"

typedef struct svc_tls svc_tls;

/* One generation of PEM texts, NUL-terminated. ca is NULL without mTLS,
 * peer_ca without --tls-peer-ca. */
typedef struct svc_tls_pem {
    uint64_t gen; /* 1 for the first set, +1 per successful reload */
    char *cert;
    size_t cert_len;
    char *key;
    size_t key_len;
    char *ca;
    size_t ca_len;
    char *peer_ca;
    size_t peer_ca_len;
} svc_tls_pem;

/* Reads the files cfg names. *out is NULL (and NDB_OK) when no certificate
 * is configured: the server then speaks plaintext. A key without a
 * certificate, or a client CA without both, is NDB_EINVAL. Caller frees with
 * svc_tls_free. */
ndb_status svc_tls_open(const svc_config *cfg, svc_tls **out, ndb_errmsg *msg);

/* Reads the files again; on success the next handshakes use them. */
ndb_status svc_tls_reload(svc_tls *t, ndb_errmsg *msg);

/* Reloads when any file's inode, size or modification time changed since
 * the last load (a Kubernetes Secret update swaps a symlink). Logs the
 * outcome. Cheap: three stat calls. */
void svc_tls_poll(svc_tls *t);

/* Whether client certificates are required (--tls-client-ca given). */
bool svc_tls_mutual(const svc_tls *t);

/* The current set, borrowed: valid until svc_tls_free (older generations are
 * kept, so a handshake that began on one may finish with it). */
const svc_tls_pem *svc_tls_get(svc_tls *t);

void svc_tls_free(svc_tls *t);

#endif /* SVC_TLS_H */
