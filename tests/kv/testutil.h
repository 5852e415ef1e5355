/* Shared helpers for the kv tests: temporary directories. */
#ifndef KV_TESTUTIL_H
#define KV_TESTUTIL_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Creates a fresh directory under $TMPDIR (or /tmp); returns a malloc'd path. */
static inline char *tu_tmpdir(const char *tag)
{
    const char *base = getenv("TMPDIR");
    if (base == NULL || base[0] == 0) base = "/tmp";
    char *p = malloc(4096);
    snprintf(p, 4096, "%s/ndbkv-%s-XXXXXX", base, tag);
    if (mkdtemp(p) == NULL) {
        free(p);
        return NULL;
    }
    return p;
}

/* rm -rf dir (only what the tests create: flat directories). */
static inline void tu_rmdir(char *dir)
{
    if (dir == NULL) return;
    char cmd[4200];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0) fprintf(stderr, "cleanup of %s failed\n", dir);
    free(dir);
}

#endif
