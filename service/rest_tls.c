#include "rest_tls.h"

#include <gnutls/abstract.h>
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

#define MAX_CHAIN 16

/* One certificate generation, parsed for GnuTLS. */
typedef struct parsed {
    uint64_t gen;
    gnutls_pcert_st certs[MAX_CHAIN];
    unsigned n_certs;
    gnutls_privkey_t key;
    gnutls_x509_trust_list_t ca; /* NULL without mTLS */
    struct parsed *older;
} parsed;

static struct {
    pthread_mutex_t mu;
    svc_tls *tls;
    parsed *cur; /* newest; older ones hang off it */
} S = {.mu = PTHREAD_MUTEX_INITIALIZER};

static void parsed_free(parsed *p)
{
    for (unsigned i = 0; i < p->n_certs; i++)
        gnutls_pcert_deinit(&p->certs[i]);
    if (p->key != NULL)
        gnutls_privkey_deinit(p->key);
    if (p->ca != NULL)
        gnutls_x509_trust_list_deinit(p->ca, 1);
    free(p);
}

static parsed *parse(const svc_tls_pem *pem, ndb_errmsg *msg)
{
    parsed *p = calloc(1, sizeof *p);
    if (p == NULL) {
        ndb_errmsg_set(msg, NDB_ENOMEM, "out of memory");
        return NULL;
    }
    p->gen = pem->gen;
    gnutls_datum_t c = {(unsigned char *)pem->cert, (unsigned)pem->cert_len};
    gnutls_datum_t k = {(unsigned char *)pem->key, (unsigned)pem->key_len};
    p->n_certs = MAX_CHAIN;
    int e = gnutls_pcert_list_import_x509_raw(p->certs, &p->n_certs, &c, GNUTLS_X509_FMT_PEM, 0);
    if (e < 0) {
        p->n_certs = 0;
        goto fail;
    }
    if ((e = gnutls_privkey_init(&p->key)) < 0 ||
        (e = gnutls_privkey_import_x509_raw(p->key, &k, GNUTLS_X509_FMT_PEM, NULL, 0)) < 0)
        goto fail;
    if (pem->ca != NULL) {
        gnutls_datum_t a = {(unsigned char *)pem->ca, (unsigned)pem->ca_len};
        if ((e = gnutls_x509_trust_list_init(&p->ca, 0)) < 0 ||
            (e = gnutls_x509_trust_list_add_trust_mem(p->ca, &a, NULL, GNUTLS_X509_FMT_PEM, 0, 0)) < 0)
            goto fail;
    }
    return p;
fail:
    ndb_errmsg_set(msg, NDB_EINVAL, "HTTPS certificate: %s", gnutls_strerror(e));
    parsed_free(p);
    return NULL;
}

/* The parsed form of the current generation; built on first use after a reload. */
static parsed *current(void)
{
    const svc_tls_pem *pem = svc_tls_get(S.tls);
    pthread_mutex_lock(&S.mu);
    if (S.cur == NULL || S.cur->gen != pem->gen) {
        ndb_errmsg msg;
        parsed *p = parse(pem, &msg);
        if (p != NULL) {
            p->older = S.cur;
            S.cur = p;
        } else {
            SVC_LOG(SVC_LOG_ERROR, "HTTPS keeps its previous certificate", LOG_STR("error", msg.text));
        }
    }
    parsed *p = S.cur;
    pthread_mutex_unlock(&S.mu);
    return p;
}

/* During the handshake, after the client's certificate arrived: 0 accepts it. */
static int verify_client(gnutls_session_t session)
{
    parsed *p = current();
    unsigned n = 0;
    const gnutls_datum_t *raw = gnutls_certificate_get_peers(session, &n);
    if (p == NULL || p->ca == NULL || raw == NULL || n == 0)
        return -1;
    gnutls_x509_crt_t chain[MAX_CHAIN];
    unsigned got = 0;
    int rc = -1;
    for (; got < n && got < MAX_CHAIN; got++) {
        if (gnutls_x509_crt_init(&chain[got]) < 0)
            goto out;
        if (gnutls_x509_crt_import(chain[got], &raw[got], GNUTLS_X509_FMT_DER) < 0) {
            got++;
            goto out;
        }
    }
    unsigned status = 0;
    if (gnutls_x509_trust_list_verify_crt2(p->ca, chain, got, NULL, 0, 0, &status, NULL) == 0 && status == 0)
        rc = 0;
    else
        SVC_LOG(SVC_LOG_DEBUG, "HTTPS client certificate refused", LOG_INT("gnutls_status", status));
out:
    for (unsigned i = 0; i < got; i++)
        gnutls_x509_crt_deinit(chain[i]);
    return rc;
}

/* GnuTLS asks which certificate to present; with mTLS, also demand the client's. */
static int retrieve_cert(gnutls_session_t session, const gnutls_datum_t *req_ca_dn, int n_req,
                         const gnutls_pk_algorithm_t *algos, int n_algos, gnutls_pcert_st **pcert,
                         unsigned int *pcert_length, gnutls_privkey_t *key)
{
    (void)req_ca_dn, (void)n_req, (void)algos, (void)n_algos;
    parsed *p = current();
    if (p == NULL)
        return -1;
    if (p->ca != NULL) {
        gnutls_certificate_server_set_request(session, GNUTLS_CERT_REQUIRE);
        gnutls_session_set_verify_function(session, verify_client);
    }
    *pcert = p->certs;
    *pcert_length = p->n_certs;
    *key = p->key;
    return 0;
}

ndb_status svc_rest_tls_start(svc_tls *t, struct MHD_OptionItem opts[2], ndb_errmsg *msg)
{
    S.tls = t;
    S.cur = parse(svc_tls_get(t), msg);
    if (S.cur == NULL)
        return NDB_EINVAL;
    opts[0] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_CERT_CALLBACK, 0, (void *)retrieve_cert};
    opts[1] = (struct MHD_OptionItem){MHD_OPTION_END, 0, NULL};
    return NDB_OK;
}

void svc_rest_tls_stop(void)
{
    pthread_mutex_lock(&S.mu);
    while (S.cur != NULL) {
        parsed *older = S.cur->older;
        parsed_free(S.cur);
        S.cur = older;
    }
    S.tls = NULL;
    pthread_mutex_unlock(&S.mu);
}
