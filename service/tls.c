#include "tls.h"

#include <errno.h>
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "log.h"

/* Largest certificate, key or CA file read. */
#define MAX_PEM_BYTES (1 << 20)

typedef struct gen_node {
    svc_tls_pem pem;
    struct gen_node *older;
} gen_node;

typedef struct file_id {
    dev_t dev;
    ino_t ino;
    off_t size;
    struct timespec mtime;
} file_id;

struct svc_tls {
    const char *cert_path, *key_path, *ca_path, *peer_path; /* borrowed from the config */
    _Atomic(gen_node *) cur;                                 /* newest; older ones hang off it */
    file_id ids[4];                                          /* as of the last attempt */
};

static void file_id_of(const char *path, file_id *id)
{
    struct stat sb;
    memset(id, 0, sizeof *id);
    if (path != NULL && stat(path, &sb) == 0)
        *id = (file_id){sb.st_dev, sb.st_ino, sb.st_size, sb.st_mtim};
}

static bool file_id_eq(const file_id *a, const file_id *b)
{
    return a->dev == b->dev && a->ino == b->ino && a->size == b->size && a->mtime.tv_sec == b->mtime.tv_sec &&
           a->mtime.tv_nsec == b->mtime.tv_nsec;
}

/* Reads a whole file as a NUL-terminated string; caller frees. */
static ndb_status read_pem(const char *flag, const char *path, char **out, size_t *len, ndb_errmsg *msg)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return ndb_errmsg_set(msg, NDB_EIO, "%s %s: %s", flag, path, strerror(errno));
    char *buf = malloc(MAX_PEM_BYTES + 1);
    if (buf == NULL) {
        fclose(f);
        return ndb_errmsg_set(msg, NDB_ENOMEM, "out of memory reading %s", path);
    }
    size_t n = fread(buf, 1, MAX_PEM_BYTES + 1, f);
    bool err = ferror(f) != 0;
    fclose(f);
    if (err || n > MAX_PEM_BYTES || n == 0) {
        free(buf);
        return ndb_errmsg_set(msg, NDB_EINVAL, "%s %s: %s", flag, path,
                              err ? "read error" : n == 0 ? "empty file" : "larger than 1 MiB");
    }
    buf[n] = '\0';
    *out = buf;
    *len = n;
    return NDB_OK;
}

/* A CA bundle of flag's file path parses and holds a certificate. */
static ndb_status check_ca(gnutls_certificate_credentials_t cred, const char *flag, const char *path, const char *pem,
                           size_t len, ndb_errmsg *msg)
{
    gnutls_datum_t a = {(unsigned char *)pem, (unsigned)len};
    int e = gnutls_certificate_set_x509_trust_mem(cred, &a, GNUTLS_X509_FMT_PEM);
    if (e <= 0)
        return ndb_errmsg_set(msg, NDB_EINVAL, "%s %s: %s", flag, path,
                              e < 0 ? gnutls_strerror(e) : "no certificate in the file");
    return NDB_OK;
}

/* GnuTLS checks what gRPC's BoringSSL/OpenSSL and libmicrohttpd will need:
 * the chain parses, the key parses and matches it, the CA bundles parse. */
static ndb_status check_pem(const svc_tls *t, const svc_tls_pem *p, ndb_errmsg *msg)
{
    gnutls_certificate_credentials_t cred;
    if (gnutls_certificate_allocate_credentials(&cred) < 0)
        return ndb_errmsg_set(msg, NDB_ENOMEM, "out of memory checking the TLS certificate");
    gnutls_datum_t c = {(unsigned char *)p->cert, (unsigned)p->cert_len};
    gnutls_datum_t k = {(unsigned char *)p->key, (unsigned)p->key_len};
    ndb_status st = NDB_OK;
    int e = gnutls_certificate_set_x509_key_mem2(cred, &c, &k, GNUTLS_X509_FMT_PEM, NULL, 0);
    if (e < 0)
        st = ndb_errmsg_set(msg, NDB_EINVAL, "--tls-cert %s / --tls-key %s: %s", t->cert_path, t->key_path,
                            gnutls_strerror(e));
    if (st == NDB_OK && p->ca != NULL)
        st = check_ca(cred, "--tls-client-ca", t->ca_path, p->ca, p->ca_len, msg);
    if (st == NDB_OK && p->peer_ca != NULL)
        st = check_ca(cred, "--tls-peer-ca", t->peer_path, p->peer_ca, p->peer_ca_len, msg);
    gnutls_certificate_free_credentials(cred);
    return st;
}

static void pem_free(svc_tls_pem *p)
{
    free(p->cert);
    if (p->key != NULL)
        memset(p->key, 0, p->key_len);
    free(p->key);
    free(p->ca);
    free(p->peer_ca);
}

ndb_status svc_tls_reload(svc_tls *t, ndb_errmsg *msg)
{
    file_id_of(t->cert_path, &t->ids[0]);
    file_id_of(t->key_path, &t->ids[1]);
    file_id_of(t->ca_path, &t->ids[2]);
    file_id_of(t->peer_path, &t->ids[3]);
    gen_node *n = calloc(1, sizeof *n);
    if (n == NULL)
        return ndb_errmsg_set(msg, NDB_ENOMEM, "out of memory loading the TLS certificate");
    ndb_status st = read_pem("--tls-cert", t->cert_path, &n->pem.cert, &n->pem.cert_len, msg);
    if (st == NDB_OK)
        st = read_pem("--tls-key", t->key_path, &n->pem.key, &n->pem.key_len, msg);
    if (st == NDB_OK && t->ca_path != NULL)
        st = read_pem("--tls-client-ca", t->ca_path, &n->pem.ca, &n->pem.ca_len, msg);
    if (st == NDB_OK && t->peer_path != NULL)
        st = read_pem("--tls-peer-ca", t->peer_path, &n->pem.peer_ca, &n->pem.peer_ca_len, msg);
    if (st == NDB_OK)
        st = check_pem(t, &n->pem, msg);
    if (st != NDB_OK) {
        pem_free(&n->pem);
        free(n);
        return st;
    }
    gen_node *old = atomic_load(&t->cur);
    n->pem.gen = old != NULL ? old->pem.gen + 1 : 1;
    n->older = old;
    atomic_store(&t->cur, n);
    return NDB_OK;
}

ndb_status svc_tls_open(const svc_config *cfg, svc_tls **out, ndb_errmsg *msg)
{
    *out = NULL;
    bool cert = cfg->tls_cert[0] != '\0', key = cfg->tls_key[0] != '\0', ca = cfg->tls_client_ca[0] != '\0',
         peer = cfg->tls_peer_ca[0] != '\0';
    if (!cert && !key && !ca && !peer)
        return NDB_OK;
    if (!cert || !key)
        return ndb_errmsg_set(msg, NDB_EINVAL, "%s",
                              cert ? "--tls-cert needs --tls-key"
                              : key ? "--tls-key needs --tls-cert"
                              : ca  ? "--tls-client-ca needs --tls-cert and --tls-key"
                                    : "--tls-peer-ca needs --tls-cert and --tls-key");
    svc_tls *t = calloc(1, sizeof *t);
    if (t == NULL)
        return ndb_errmsg_set(msg, NDB_ENOMEM, "out of memory loading the TLS certificate");
    t->cert_path = cfg->tls_cert;
    t->key_path = cfg->tls_key;
    t->ca_path = ca ? cfg->tls_client_ca : NULL;
    t->peer_path = peer ? cfg->tls_peer_ca : NULL;
    ndb_status st = svc_tls_reload(t, msg);
    if (st != NDB_OK) {
        free(t);
        return st;
    }
    *out = t;
    return NDB_OK;
}

void svc_tls_poll(svc_tls *t)
{
    file_id now[4];
    file_id_of(t->cert_path, &now[0]);
    file_id_of(t->key_path, &now[1]);
    file_id_of(t->ca_path, &now[2]);
    file_id_of(t->peer_path, &now[3]);
    bool same = true;
    for (int i = 0; i < 4; i++)
        same = same && file_id_eq(&now[i], &t->ids[i]);
    if (same)
        return;
    ndb_errmsg msg;
    if (svc_tls_reload(t, &msg) != NDB_OK)
        SVC_LOG(SVC_LOG_ERROR, "TLS files changed but cannot be loaded; still using the previous ones",
                LOG_STR("error", msg.text));
    else
        SVC_LOG(SVC_LOG_INFO, "TLS files changed: new connections use them", LOG_INT("generation", svc_tls_get(t)->gen));
}

bool svc_tls_mutual(const svc_tls *t) { return t->ca_path != NULL; }

const svc_tls_pem *svc_tls_get(svc_tls *t) { return &atomic_load(&t->cur)->pem; }

void svc_tls_free(svc_tls *t)
{
    if (t == NULL)
        return;
    gen_node *n = atomic_load(&t->cur);
    while (n != NULL) {
        gen_node *older = n->older;
        pem_free(&n->pem);
        free(n);
        n = older;
    }
    free(t);
}
