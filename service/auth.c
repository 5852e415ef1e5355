#include "auth.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"

#define MAX_KEYS 64

typedef struct key_slot {
    unsigned char bytes[SVC_AUTH_MAX_KEY]; /* zero-padded */
    size_t len;
    svc_role role;
} key_slot;

struct svc_auth {
    key_slot keys[MAX_KEYS];
    size_t n;
};

static ndb_status add_key(svc_auth *a, const char *key, size_t len, svc_role role, const char *source,
                          ndb_errmsg *msg)
{
    if (len < 16 || len > SVC_AUTH_MAX_KEY)
        return ndb_errmsg_set(msg, NDB_EINVAL, "%s: an API key must be 16 to %d bytes, got %zu", source,
                              SVC_AUTH_MAX_KEY, len);
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)key[i] <= ' ' || (unsigned char)key[i] >= 0x7f)
            return ndb_errmsg_set(msg, NDB_EINVAL, "%s: an API key must be printable ASCII without spaces",
                                  source);
    if (a->n == MAX_KEYS)
        return ndb_errmsg_set(msg, NDB_ELIMIT, "%s: more than %d API keys", source, MAX_KEYS);
    key_slot *k = &a->keys[a->n++];
    memset(k->bytes, 0, sizeof k->bytes);
    memcpy(k->bytes, key, len);
    k->len = len;
    k->role = role;
    return NDB_OK;
}

/* Whether a key file's mode lets others read it. Only the owner may have
 * access, except that a file owned by root may also be read (not written) by
 * its group: that is how Kubernetes mounts a Secret for a pod that does not
 * run as root (root:<fsGroup>, 0440), and PostgreSQL's rule for its key file. */
static bool key_file_exposed(const struct stat *sb)
{
    mode_t others = sb->st_uid == 0 ? 0037 : 0077;
    return (sb->st_mode & others) != 0;
}

/* Reads a key file: one "<key> [rw|ro]" per line; blank lines and '#' comments skipped.
 * A file others can read is refused unless allow_exposed, then loaded with a warning. */
static ndb_status load_file(svc_auth *a, const char *path, bool allow_exposed, ndb_errmsg *msg)
{
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return ndb_errmsg_set(msg, errno == ENOENT ? NDB_ENOTFOUND : NDB_EIO, "%s: %s", path,
                              strerror(errno));
    struct stat sb;
    if (fstat(fileno(f), &sb) != 0) {
        int e = errno;
        fclose(f);
        return ndb_errmsg_set(msg, NDB_EIO, "%s: %s", path, strerror(e));
    }
    if (key_file_exposed(&sb)) {
        char mode[8];
        snprintf(mode, sizeof mode, "%04o", (unsigned)(sb.st_mode & 07777));
        if (!allow_exposed) {
            fclose(f);
            return ndb_errmsg_set(msg, NDB_EPERM,
                                  "%s: the API key file can be read by users other than its owner (mode %s); "
                                  "run chmod 600 on it, or start with --allow-insecure-key-file",
                                  path, mode);
        }
        SVC_LOG(SVC_LOG_WARN, "loading an API key file that users other than its owner can read",
                LOG_STR("path", path), LOG_STR("mode", mode),
                LOG_STR("fix", "chmod 600 the file, then drop --allow-insecure-key-file"));
    }
    char line[512];
    int lineno = 0;
    ndb_status st = NDB_OK;
    while (st == NDB_OK && fgets(line, sizeof line, f) != NULL) {
        lineno++;
        char *save = NULL;
        char *key = strtok_r(line, " \t\r\n", &save);
        if (key == NULL || key[0] == '#')
            continue;
        char *role_s = strtok_r(NULL, " \t\r\n", &save);
        svc_role role = SVC_ROLE_WRITE;
        char source[64];
        snprintf(source, sizeof source, "key file line %d", lineno);
        if (role_s != NULL && strcmp(role_s, "ro") == 0)
            role = SVC_ROLE_READ;
        else if (role_s != NULL && strcmp(role_s, "rw") != 0)
            st = ndb_errmsg_set(msg, NDB_EINVAL, "%s: %s: role must be rw or ro", path, source);
        if (st == NDB_OK)
            st = add_key(a, key, strlen(key), role, source, msg);
    }
    if (st == NDB_OK && ferror(f))
        st = ndb_errmsg_set(msg, NDB_EIO, "%s: read failed", path);
    fclose(f);
    if (st == NDB_OK && a->n == 0)
        st = ndb_errmsg_set(msg, NDB_EINVAL, "%s: holds no API key", path);
    return st;
}

/* Writes a new random key to path (mode 0600) durably: temp file, fsync, rename, fsync dir. */
static ndb_status create_key_file(const char *path, char key_hex[65], ndb_errmsg *msg)
{
    unsigned char raw[32];
    size_t got = 0;
    while (got < sizeof raw) {
        ssize_t r = getrandom(raw + got, sizeof raw - got, 0);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return ndb_errmsg_set(msg, NDB_EIO, "getrandom: %s", strerror(errno));
        got += (size_t)r;
    }
    for (size_t i = 0; i < sizeof raw; i++)
        snprintf(key_hex + 2 * i, 3, "%02x", raw[i]);

    char tmp[4200];
    if (snprintf(tmp, sizeof tmp, "%s.tmp", path) >= (int)sizeof tmp)
        return ndb_errmsg_set(msg, NDB_EINVAL, "key file path too long");
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        return ndb_errmsg_set(msg, NDB_EIO, "%s: %s", tmp, strerror(errno));
    char body[128];
    int n = snprintf(body, sizeof body, "%s rw\n", key_hex);
    ndb_status st = NDB_OK;
    if (write(fd, body, (size_t)n) != n || fsync(fd) != 0)
        st = ndb_errmsg_set(msg, NDB_EIO, "%s: %s", tmp, strerror(errno));
    if (close(fd) != 0 && st == NDB_OK)
        st = ndb_errmsg_set(msg, NDB_EIO, "%s: %s", tmp, strerror(errno));
    if (st == NDB_OK && rename(tmp, path) != 0)
        st = ndb_errmsg_set(msg, NDB_EIO, "rename %s: %s", path, strerror(errno));
    if (st != NDB_OK) {
        unlink(tmp);
        return st;
    }
    char dir[4200];
    if (snprintf(dir, sizeof dir, "%s", path) >= (int)sizeof dir)
        return ndb_errmsg_set(msg, NDB_EINVAL, "key file path too long");
    int dfd = open(dirname(dir), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0 || fsync(dfd) != 0)
        st = ndb_errmsg_set(msg, NDB_EIO, "fsync of %s's directory: %s", path, strerror(errno));
    if (dfd >= 0)
        close(dfd);
    return st;
}

ndb_status svc_auth_load(const svc_config *cfg, svc_auth **out, ndb_errmsg *msg)
{
    svc_auth *a = calloc(1, sizeof *a);
    if (a == NULL)
        return ndb_errmsg_set(msg, NDB_ENOMEM, "out of memory loading API keys");
    ndb_status st = NDB_OK;
    if (cfg->api_key[0] != '\0')
        st = add_key(a, cfg->api_key, strlen(cfg->api_key), SVC_ROLE_WRITE, "--api-key", msg);
    if (st == NDB_OK && cfg->api_key_file[0] != '\0') {
        st = load_file(a, cfg->api_key_file, cfg->allow_insecure_key_file, msg);
    } else if (st == NDB_OK && a->n == 0) {
        char path[4200];
        if (snprintf(path, sizeof path, "%s/api_key", cfg->data_dir) >= (int)sizeof path) {
            free(a);
            return ndb_errmsg_set(msg, NDB_EINVAL, "--data-dir: path too long");
        }
        st = load_file(a, path, cfg->allow_insecure_key_file, msg);
        if (st == NDB_ENOTFOUND) {
            char key[65];
            st = create_key_file(path, key, msg);
            if (st == NDB_OK)
                st = add_key(a, key, 64, SVC_ROLE_WRITE, path, msg);
            if (st == NDB_OK) {
                SVC_LOG(SVC_LOG_WARN, "generated an API key; it is shown only this once",
                        LOG_STR("api_key", key), LOG_STR("stored_in", path),
                        LOG_STR("usage", "send it as the x-api-key header (REST: X-API-Key) or as "
                                         "'authorization: Bearer <key>'"));
            }
        } else if (st == NDB_OK) {
            SVC_LOG(SVC_LOG_INFO, "API keys loaded", LOG_STR("from", path), LOG_INT("keys", a->n));
        }
    }
    if (st != NDB_OK) {
        free(a);
        return st;
    }
    *out = a;
    return NDB_OK;
}

svc_role svc_auth_check(const svc_auth *auth, const char *key, size_t len)
{
    if (len == 0 || len > SVC_AUTH_MAX_KEY)
        return SVC_ROLE_NONE; /* the length of a guess is not secret */
    unsigned char in[SVC_AUTH_MAX_KEY] = {0};
    memcpy(in, key, len);
    unsigned best = SVC_ROLE_NONE;
    for (size_t k = 0; k < auth->n; k++) {
        const key_slot *s = &auth->keys[k];
        unsigned diff = (unsigned)(s->len ^ len);
        for (size_t i = 0; i < SVC_AUTH_MAX_KEY; i++)
            diff |= (unsigned)(s->bytes[i] ^ in[i]);
        /* mask is all ones when diff == 0, else zero; no branch on the secret */
        unsigned mask = (unsigned)(((uint64_t)diff - 1) >> 63) * ~0u;
        unsigned role = (unsigned)s->role & mask;
        best = role > best ? role : best;
    }
    return (svc_role)best;
}

size_t svc_auth_count(const svc_auth *auth)
{
    return auth->n;
}

void svc_auth_free(svc_auth *auth)
{
    if (auth != NULL) {
        explicit_bzero(auth, sizeof *auth);
        free(auth);
    }
}

bool svc_auth_write_key(const svc_auth *auth, char *out, size_t cap)
{
    for (size_t i = 0; i < auth->n; i++) {
        if (auth->keys[i].role == SVC_ROLE_WRITE && auth->keys[i].len < cap) {
            memcpy(out, auth->keys[i].bytes, auth->keys[i].len);
            out[auth->keys[i].len] = 0;
            return true;
        }
    }
    return false;
}
