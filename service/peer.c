/* peer.c — channels to the other nodes of a cluster (peer.h). */
#include "peer.h"

#include <grpc/grpc_security.h>

#include "tls.h"

ndb_status svc_peer_channel(svc_app *app, const char *address, int max_receive, grpc_channel **out,
                            ndb_errmsg *msg)
{
    *out = NULL;
    grpc_channel_credentials *creds;
    if (app->tls == NULL) {
        creds = grpc_insecure_credentials_create();
    } else {
        const svc_tls_pem *p = svc_tls_get(app->tls);
        if (p->peer_ca == NULL)
            return ndb_errmsg_set(msg, NDB_EUNIMPL, "this node serves TLS: calling another node needs --tls-peer-ca");
        grpc_ssl_pem_key_cert_pair mine = {.private_key = p->key, .cert_chain = p->cert};
        creds = grpc_ssl_credentials_create(p->peer_ca, &mine, NULL, NULL);
    }
    if (creds == NULL)
        return ndb_errmsg_set(msg, NDB_ENOMEM, "out of memory for the credentials of a channel to %s", address);
    grpc_arg arg = {.type = GRPC_ARG_INTEGER, .key = GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH, .value.integer = max_receive};
    grpc_channel_args args = {.num_args = 1, .args = &arg};
    *out = grpc_channel_create(address, creds, &args);
    grpc_channel_credentials_release(creds);
    return *out != NULL ? NDB_OK : ndb_errmsg_set(msg, NDB_ENOMEM, "cannot make a channel to %s", address);
}
