/*
 * fuzz_util.h — helpers shared by the libFuzzer targets (tests/fuzz).
 *
 * Every target gets a private scratch directory (under /dev/shm when it
 * exists, so fsync is cheap) created on first use and removed at exit.
 * Thread safety: none needed; libFuzzer calls a target from one thread.
 */
#ifndef FUZZ_UTIL_H
#define FUZZ_UTIL_H

#include <stddef.h>
#include <stdint.h>

/* The process's scratch directory (created on first call; removed at exit).
 * Borrowed: a static string. Aborts when it cannot be created (a harness
 * failure, not a finding). */
const char *fz_dir(void);

/* Writes n bytes to <fz_dir()>/<name>, replacing it; returns the path
 * (static buffer, valid until the next call). Aborts on I/O failure. */
const char *fz_write(const char *name, const void *data, size_t n);

/* Removes every entry below path (not path itself). */
void fz_clear(const char *path);

/* Consumes inputs from the front of a fuzz input. */
typedef struct fz_in {
    const uint8_t *p;
    size_t n;
} fz_in;

static inline uint8_t fz_byte(fz_in *in)
{
    if (in->n == 0)
        return 0;
    in->n--;
    return *in->p++;
}

#endif /* FUZZ_UTIL_H */
