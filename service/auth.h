/*
 * auth.h — API keys and their roles.
 *
 * Keys come from --api-key (full access), from a key file (--api-key-file, one
 * "<key> [rw|ro]" per line, '#' comments), or, when neither is given, from
 * <data-dir>/api_key, which the first start creates with a random key (mode
 * 0600) and announces once. There is no built-in key.
 *
 * A key file that users other than its owner can read is refused (a file
 * owned by root may be readable by its group: Kubernetes mounts Secrets for
 * non-root pods as root:<fsGroup> 0440), unless --allow-insecure-key-file,
 * which loads it with a warning.
 *
 * Thread safety: immutable after svc_auth_load; checks from any thread.
 * Keys are compared in constant time: every stored key's every byte is read
 * whatever the input, so timing says nothing about how much of a key matched.
 */
#ifndef SVC_AUTH_H
#define SVC_AUTH_H

#include <stdbool.h>
#include <stddef.h>

#include "config.h"
#include "ndb_status.h"

typedef enum svc_role {
    SVC_ROLE_NONE = 0,  /* no valid key */
    SVC_ROLE_READ = 1,  /* may call methods that do not write */
    SVC_ROLE_WRITE = 2, /* may call every method */
} svc_role;

typedef struct svc_auth svc_auth;

/* The longest key accepted, in bytes. */
#define SVC_AUTH_MAX_KEY 128

/* Loads (or on first start creates) the keys. Caller frees with svc_auth_free. */
ndb_status svc_auth_load(const svc_config *cfg, svc_auth **out, ndb_errmsg *msg);

/* The role of the presented key (len bytes, not NUL-terminated), or SVC_ROLE_NONE. */
svc_role svc_auth_check(const svc_auth *auth, const char *key, size_t len);

/* Copies the first read-write key into out (NUL-terminated): what a cluster
 * node presents to its peers, which load the same keys. false: none. */
bool svc_auth_write_key(const svc_auth *auth, char *out, size_t cap);

/* How many keys are loaded. */
size_t svc_auth_count(const svc_auth *auth);

void svc_auth_free(svc_auth *auth);

#endif /* SVC_AUTH_H */
