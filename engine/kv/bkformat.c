/*
 * bkformat.c — the BACKUP listing, ustar headers and the database identity
 * (backup.h; FORMAT.md "Backups").
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "backup.h"
#include "crc32c.h"

/* ------------------------------------------------------------------ names */

static int all_digits(const char *p, size_t n)
{
    if (n == 0) return 0;
    for (size_t i = 0; i < n; i++)
        if (p[i] < '0' || p[i] > '9') return 0;
    return 1;
}

int bk_name_ok(const char *name)
{
    size_t n = strnlen(name, BK_NAME_MAX + 1);
    if (n == 0 || n > BK_NAME_MAX) return 0;
    if (strcmp(name, "CURRENT") == 0) return 1;
    if (n > 9 && memcmp(name, "MANIFEST-", 9) == 0) return all_digits(name + 9, n - 9);
    if (n > 4 && (strcmp(name + n - 4, ".sst") == 0 || strcmp(name + n - 4, ".wal") == 0))
        return all_digits(name, n - 4);
    return 0;
}

/* ------------------------------------------------------------------ listing */

ndb_status bk_listing_add(bk_listing *l, const char *name, uint64_t size, uint32_t crc, int in_base)
{
    if (!bk_name_ok(name)) return NDB_EINVAL;
    if (l->n >= BK_MAX_FILES) return NDB_ELIMIT;
    if (l->n == l->cap) {
        size_t nc = l->cap ? l->cap * 2 : 32;
        bk_file *nf = realloc(l->f, nc * sizeof *nf);
        if (nf == NULL) return NDB_ENOMEM;
        l->f = nf;
        l->cap = nc;
    }
    bk_file *f = &l->f[l->n++];
    memset(f, 0, sizeof *f);
    memcpy(f->name, name, strlen(name));
    f->size = size;
    f->crc = crc;
    f->in_base = in_base;
    return NDB_OK;
}

const bk_file *bk_listing_find(const bk_listing *l, const char *name)
{
    for (size_t i = 0; i < l->n; i++)
        if (strcmp(l->f[i].name, name) == 0) return &l->f[i];
    return NULL;
}

void bk_listing_free(bk_listing *l)
{
    free(l->f);
    memset(l, 0, sizeof *l);
}

ndb_status bk_listing_encode(const bk_listing *l, char **out, size_t *len)
{
    size_t cap = 256 + l->n * (BK_NAME_MAX + 48);
    char *p = malloc(cap);
    if (p == NULL) return NDB_ENOMEM;
    size_t n = (size_t)snprintf(p, cap, "%s\nidentity %s\nsequence %" PRIu64 "\ncreated %" PRId64 "\n", BK_MAGIC,
                                l->identity, l->sequence, l->created);
    for (size_t i = 0; i < l->n && n < cap; i++)
        n += (size_t)snprintf(p + n, cap - n, "%s %s %" PRIu64 " %08x\n", l->f[i].in_base ? "base" : "file",
                              l->f[i].name, l->f[i].size, l->f[i].crc);
    if (n + 16 > cap) { /* cannot happen: every line is bounded above */
        free(p);
        return NDB_ELIMIT;
    }
    n += (size_t)snprintf(p + n, cap - n, "crc %08x\n", crc32c(p, n));
    *out = p;
    *len = n;
    return NDB_OK;
}

/* A decimal number of the whole token [p, p+n): no sign, no spaces, at most 19 digits. */
static int parse_u64(const char *p, size_t n, uint64_t *v)
{
    if (!all_digits(p, n) || n > 19) return 0;
    uint64_t x = 0;
    for (size_t i = 0; i < n; i++) x = x * 10 + (uint64_t)(p[i] - '0');
    *v = x;
    return 1;
}

static int parse_hex32(const char *p, size_t n, uint32_t *v)
{
    if (n != 8) return 0;
    uint32_t x = 0;
    for (size_t i = 0; i < n; i++) {
        char c = p[i];
        int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
        if (d < 0) return 0;
        x = x << 4 | (uint32_t)d;
    }
    *v = x;
    return 1;
}

/* Splits line [p, p+n) at single spaces into at most max tokens; returns the count. */
static size_t tokens(const char *p, size_t n, const char **tok, size_t *tlen, size_t max)
{
    size_t k = 0, start = 0;
    for (size_t i = 0; i <= n; i++) {
        if (i == n || p[i] == ' ') {
            if (k == max) return max + 1;
            tok[k] = p + start;
            tlen[k++] = i - start;
            start = i + 1;
        }
    }
    return k;
}

static int tok_is(const char *t, size_t n, const char *word) { return n == strlen(word) && memcmp(t, word, n) == 0; }

ndb_status bk_listing_parse(const char *p, size_t n, bk_listing *l, ndb_errmsg *msg)
{
    memset(l, 0, sizeof *l);
    if (n > BK_MAX_LISTING) return ndb_errmsg_set(msg, NDB_ECORRUPT, "BACKUP: larger than %u bytes", BK_MAX_LISTING);
    size_t pos = 0, lineno = 0;
    int have_id = 0, have_seq = 0, have_created = 0, have_crc = 0;
    ndb_status st = NDB_OK;
    while (pos < n && st == NDB_OK) {
        const char *nl = memchr(p + pos, '\n', n - pos);
        if (nl == NULL) {
            st = ndb_errmsg_set(msg, NDB_ECORRUPT, "BACKUP: line %zu has no end (the file is cut short)", lineno + 1);
            break;
        }
        const char *line = p + pos;
        size_t len = (size_t)(nl - line);
        lineno++;
        if (have_crc) {
            st = ndb_errmsg_set(msg, NDB_ECORRUPT, "BACKUP: line %zu follows the checksum line", lineno);
            break;
        }
        const char *t[5];
        size_t tl[5];
        size_t k = len > 128 ? 5 : tokens(line, len, t, tl, 4);
        if (lineno == 1) {
            if (len != strlen(BK_MAGIC) || memcmp(line, BK_MAGIC, len) != 0)
                st = ndb_errmsg_set(msg, NDB_ECORRUPT, "BACKUP: not a NexaDB backup listing of a known version "
                                                       "(first line is not '%s')", BK_MAGIC);
        } else if (k == 2 && tok_is(t[0], tl[0], "crc")) {
            uint32_t want;
            if (!parse_hex32(t[1], tl[1], &want))
                st = ndb_errmsg_set(msg, NDB_ECORRUPT, "BACKUP: line %zu: malformed checksum", lineno);
            else if (crc32c(p, pos) != want)
                st = ndb_errmsg_set(msg, NDB_ECORRUPT, "BACKUP: checksum mismatch (the listing is damaged)");
            have_crc = 1;
        } else if (k == 2 && tok_is(t[0], tl[0], "identity")) {
            have_id = tl[1] == BK_IDENTITY_LEN;
            for (size_t i = 0; i < tl[1] && have_id; i++)
                have_id = (t[1][i] >= '0' && t[1][i] <= '9') || (t[1][i] >= 'a' && t[1][i] <= 'f');
            if (!have_id) st = ndb_errmsg_set(msg, NDB_ECORRUPT, "BACKUP: line %zu: malformed identity", lineno);
            else memcpy(l->identity, t[1], BK_IDENTITY_LEN);
        } else if (k == 2 && tok_is(t[0], tl[0], "sequence")) {
            if (!(have_seq = parse_u64(t[1], tl[1], &l->sequence)))
                st = ndb_errmsg_set(msg, NDB_ECORRUPT, "BACKUP: line %zu: malformed sequence", lineno);
        } else if (k == 2 && tok_is(t[0], tl[0], "created")) {
            uint64_t c = 0;
            if (!(have_created = parse_u64(t[1], tl[1], &c) && c <= INT64_MAX))
                st = ndb_errmsg_set(msg, NDB_ECORRUPT, "BACKUP: line %zu: malformed time", lineno);
            l->created = (int64_t)c;
        } else if (k == 4 && (tok_is(t[0], tl[0], "file") || tok_is(t[0], tl[0], "base"))) {
            char name[BK_NAME_MAX + 1];
            uint64_t size;
            uint32_t crc;
            if (tl[1] > BK_NAME_MAX || !parse_u64(t[2], tl[2], &size) || size > (UINT64_MAX >> 2) ||
                !parse_hex32(t[3], tl[3], &crc)) {
                st = ndb_errmsg_set(msg, NDB_ECORRUPT, "BACKUP: line %zu: malformed file entry", lineno);
                break;
            }
            memcpy(name, t[1], tl[1]);
            name[tl[1]] = 0;
            if (!bk_name_ok(name))
                st = ndb_errmsg_set(msg, NDB_ECORRUPT, "BACKUP: line %zu: '%s' is not a file a backup holds", lineno,
                                    name);
            else if (bk_listing_find(l, name) != NULL)
                st = ndb_errmsg_set(msg, NDB_ECORRUPT, "BACKUP: line %zu: %s is listed twice", lineno, name);
            else if ((st = bk_listing_add(l, name, size, crc, t[0][0] == 'b')) != NDB_OK)
                ndb_errmsg_set(msg, st, "BACKUP: line %zu: %s", lineno, ndb_strerror(st));
        } else {
            st = ndb_errmsg_set(msg, NDB_ECORRUPT, "BACKUP: line %zu is not understood", lineno);
        }
        pos += len + 1;
    }
    if (st == NDB_OK && !have_crc)
        st = ndb_errmsg_set(msg, NDB_ECORRUPT, "BACKUP: no checksum line (the listing is cut short)");
    if (st == NDB_OK && !(have_id && have_seq && have_created))
        st = ndb_errmsg_set(msg, NDB_ECORRUPT, "BACKUP: identity, sequence or time missing");
    if (st != NDB_OK) bk_listing_free(l);
    return st;
}

/* ------------------------------------------------------------------ tar */

/* Writes v as n-1 octal digits and a NUL into f (field of n bytes). */
static void octal(char *f, size_t n, uint64_t v)
{
    f[n - 1] = 0;
    for (size_t i = n - 1; i-- > 0;) {
        f[i] = (char)('0' + (v & 7));
        v >>= 3;
    }
}

static unsigned tar_sum(const char h[BK_TAR_BLOCK])
{
    unsigned s = 0;
    for (size_t i = 0; i < BK_TAR_BLOCK; i++) s += (i >= 148 && i < 156) ? ' ' : (unsigned char)h[i];
    return s;
}

void bk_tar_header(char h[BK_TAR_BLOCK], const char *name, uint64_t size, int64_t mtime)
{
    memset(h, 0, BK_TAR_BLOCK);
    size_t nl = strlen(name);
    memcpy(h, name, nl > 100 ? 100 : nl);
    octal(h + 100, 8, 0600);
    octal(h + 108, 8, 0);
    octal(h + 116, 8, 0);
    if (size < (1ull << 33)) {
        octal(h + 124, 12, size);
    } else { /* GNU's base-256: the high bit of the first byte, then big-endian */
        h[124] = (char)0x80;
        for (int i = 11; i >= 4; i--) {
            h[124 + i] = (char)(size & 0xff);
            size >>= 8;
        }
    }
    octal(h + 136, 12, mtime > 0 ? (uint64_t)mtime : 0);
    h[156] = '0';
    memcpy(h + 257, "ustar", 6);
    memcpy(h + 263, "00", 2);
    unsigned s = tar_sum(h);
    octal(h + 148, 7, s);
    h[155] = ' ';
}

/* An octal field: digits, then NULs or spaces to its end. */
static int parse_octal(const char *f, size_t n, uint64_t *v)
{
    size_t i = 0;
    while (i < n && f[i] == ' ') i++;
    uint64_t x = 0;
    size_t digits = 0;
    for (; i < n && f[i] >= '0' && f[i] <= '7'; i++, digits++) {
        if (x >> 60) return 0;
        x = x << 3 | (uint64_t)(f[i] - '0');
    }
    for (; i < n; i++)
        if (f[i] != 0 && f[i] != ' ') return 0;
    *v = x;
    return digits > 0;
}

ndb_status bk_tar_parse(const char h[BK_TAR_BLOCK], char name[101], uint64_t *size, int *end)
{
    *end = 0;
    size_t z = 0;
    while (z < BK_TAR_BLOCK && h[z] == 0) z++;
    if (z == BK_TAR_BLOCK) {
        *end = 1;
        return NDB_OK;
    }
    uint64_t sum;
    if (!parse_octal(h + 148, 8, &sum) || sum != tar_sum(h)) return NDB_ECORRUPT;
    if (h[156] != '0' && h[156] != 0) return NDB_ECORRUPT; /* only regular files */
    if (h[345] != 0) return NDB_ECORRUPT;                   /* no prefix: our names are short */
    if ((unsigned char)h[124] & 0x80) {
        uint64_t v = 0;
        for (int i = 1; i < 12; i++) {
            if (v >> 55) return NDB_ECORRUPT;
            v = v << 8 | (unsigned char)h[124 + i];
        }
        *size = v;
    } else if (!parse_octal(h + 124, 12, size)) {
        return NDB_ECORRUPT;
    }
    memcpy(name, h, 100);
    name[100] = 0;
    return NDB_OK;
}

/* ------------------------------------------------------------------ files */

void bk_remove_tree(kv_env *env, const char *dir)
{
    char **names;
    size_t n;
    if (env->v->list(env, dir, &names, &n) == NDB_OK) {
        for (size_t i = 0; i < n; i++) {
            char p[4096];
            if ((size_t)snprintf(p, sizeof p, "%s/%s", dir, names[i]) < sizeof p) env->v->remove(env, p);
        }
        kv_env_free_list(names, n);
    }
    env->v->remove(env, dir);
}

/* ------------------------------------------------------------------ identity */

static int identity_ok(const char *p, size_t n)
{
    if (n != BK_IDENTITY_LEN + 1 || p[BK_IDENTITY_LEN] != '\n') return 0;
    for (size_t i = 0; i < BK_IDENTITY_LEN; i++)
        if (!((p[i] >= '0' && p[i] <= '9') || (p[i] >= 'a' && p[i] <= 'f'))) return 0;
    return 1;
}

ndb_status bk_identity_read(kv_env *env, const char *dir, char *id)
{
    char path[4096];
    if ((size_t)snprintf(path, sizeof path, "%s/IDENTITY", dir) >= sizeof path) return NDB_EINVAL;
    char *buf;
    size_t len;
    ndb_status st = kv_env_read_file(env, path, 64, &buf, &len);
    if (st == NDB_ETOOBIG) return NDB_ECORRUPT;
    if (st != NDB_OK) return st;
    if (!identity_ok(buf, len)) st = NDB_ECORRUPT;
    else {
        memcpy(id, buf, BK_IDENTITY_LEN);
        id[BK_IDENTITY_LEN] = 0;
    }
    free(buf);
    return st;
}

ndb_status bk_identity_new(kv_env *env, const char *dir, char *id)
{
    unsigned char raw[BK_IDENTITY_LEN / 2];
    size_t got = 0;
    while (got < sizeof raw) {
        ssize_t r = getrandom(raw + got, sizeof raw - got, 0);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) return NDB_EIO;
        got += (size_t)r;
    }
    char text[BK_IDENTITY_LEN + 2];
    for (size_t i = 0; i < sizeof raw; i++) snprintf(text + 2 * i, 3, "%02x", raw[i]);
    text[BK_IDENTITY_LEN] = '\n';
    text[BK_IDENTITY_LEN + 1] = 0;
    ndb_status st = kv_env_write_file_atomic(env, dir, "IDENTITY", text, BK_IDENTITY_LEN + 1);
    if (st != NDB_OK) return st;
    memcpy(id, text, BK_IDENTITY_LEN);
    id[BK_IDENTITY_LEN] = 0;
    return NDB_OK;
}
