/*
 * env.h — the one interface all engine/kv file I/O goes through (internal,
 * but tests use it to inject faults).
 *
 * A kv_env is a table of functions. kv_env_posix() is the real one; a fault
 * env (kv_env_fault_new) wraps another env and can fail the Nth append or
 * fsync, hold fsyncs, count calls, and simulate a power cut by truncating
 * every file it wrote to the length it last fsync'd.
 *
 * Thread safety: an env may be used from any thread. A kv_file is used by one
 * thread at a time, except that pread on a read-only file is thread-safe and
 * that sync on a log may run while another thread appends to it (the fsync
 * covers at least the bytes whose append returned before it started).
 * Every function returns NDB_OK or the failed system call's cause: NDB_ENOSPC
 * (ENOSPC, EDQUOT), NDB_EMFILE (EMFILE, ENFILE), NDB_ENOTFOUND (ENOENT: a
 * missing file or directory), NDB_ENOMEM, or NDB_EIO for any other errno;
 * it never aborts.
 */
#ifndef KV_ENV_H
#define KV_ENV_H

#include <stddef.h>
#include <stdint.h>

#include "ndb_status.h"

typedef struct kv_env kv_env;
typedef struct kv_file kv_file;

/*
 * KV_APPEND_LOG: a log written in many small appends and fsync'd often (WAL
 * segments, the manifest). The POSIX env reserves its space ahead of the data
 * in KV_LOG_CHUNK steps (fallocate, which moves the file's size along) and
 * appends by copying into a shared mapping of the reserved range: no system
 * call per append, and an fsync that finds the size already on disk. Appended
 * bytes are in the page cache once append returns, so a process crash loses
 * nothing, as with write(). close trims the file to its data; after a crash
 * or power cut the file may end in zeros (reserved, never written), which log
 * readers take as the end. When reserving or mapping fails the file falls
 * back to pwrite for the rest of its life. Appends of KV_LOG_LARGE bytes or
 * more always use pwrite (a copy into fresh mapped pages faults per page).
 *
 * Other appended files (tables, vector segments) are buffered: appends reach
 * the file KV_WRITE_CHUNK bytes at a time, and sync, size and close write out
 * the rest first. Nothing reads such a file before it is synced or closed.
 */
#define KV_APPEND_LOG 1u
#define KV_LOG_CHUNK (1u << 20)
/* A log append at least this large goes through pwrite instead of the mapping. */
#define KV_LOG_LARGE (64u << 10)
/* What a buffered (non-log) file collects before writing. */
#define KV_WRITE_CHUNK (1u << 20)

typedef struct kv_env_vtbl {
    /* Creates path (or truncates it to empty) for appending. flags: 0 or
     * KV_APPEND_LOG. */
    ndb_status (*open_append)(kv_env *e, const char *path, unsigned flags, kv_file **out);
    ndb_status (*open_read)(kv_env *e, const char *path, kv_file **out);
    ndb_status (*append)(kv_file *f, const void *buf, size_t n);
    ndb_status (*sync)(kv_file *f);
    /* Reads up to n bytes at off; *got < n only at end of file. */
    ndb_status (*pread)(kv_file *f, uint64_t off, void *buf, size_t n, size_t *got);
    ndb_status (*size)(kv_file *f, uint64_t *out); /* a log's size is its data, not its reserve */
    ndb_status (*close)(kv_file *f); /* frees f even on error */
    ndb_status (*rename)(kv_env *e, const char *from, const char *to);
    ndb_status (*remove)(kv_env *e, const char *path); /* a file or an empty directory */
    ndb_status (*sync_dir)(kv_env *e, const char *dir);
    ndb_status (*mkdir)(kv_env *e, const char *dir); /* OK if it exists */
    /* Names in dir (no "." or ".."): *names is malloc'd, each name too;
     * caller frees with kv_env_free_list(). */
    ndb_status (*list)(kv_env *e, const char *dir, char ***names, size_t *n);
    /* Exclusive advisory lock on path (created if missing); NDB_EBUSY if held.
     * Release by closing the returned file. */
    ndb_status (*lock)(kv_env *e, const char *path, kv_file **out);
    ndb_status (*truncate)(kv_env *e, const char *path, uint64_t len);
    /* Maps len bytes of path read-only; *base stays valid until unmap. */
    ndb_status (*map)(kv_env *e, const char *path, uint64_t len, const void **base);
    void (*unmap)(kv_env *e, const void *base, uint64_t len);
    /* A second name `to` for the file `from` (a hard link; `to` must not
     * exist). NDB_EUNIMPL where the file system cannot link the two (another
     * device, no hard links, the link count at its limit): the caller copies
     * instead. Not durable until to's directory is synced. */
    ndb_status (*link)(kv_env *e, const char *from, const char *to);
} kv_env_vtbl;

struct kv_env {
    const kv_env_vtbl *v;
};
struct kv_file {
    kv_env *env;
};

/* The process-wide POSIX env (static; never freed). */
kv_env *kv_env_posix(void);
void kv_env_free_list(char **names, size_t n);

/* Convenience wrappers. */
static inline ndb_status kv_file_append(kv_file *f, const void *b, size_t n) { return f->env->v->append(f, b, n); }
static inline ndb_status kv_file_sync(kv_file *f) { return f->env->v->sync(f); }
static inline ndb_status kv_file_pread(kv_file *f, uint64_t off, void *b, size_t n, size_t *got)
{
    return f->env->v->pread(f, off, b, n, got);
}
static inline ndb_status kv_file_size(kv_file *f, uint64_t *out) { return f->env->v->size(f, out); }
static inline ndb_status kv_file_close(kv_file *f) { return f ? f->env->v->close(f) : NDB_OK; }

/* Reads the whole file at path (at most max bytes, else NDB_ETOOBIG) into a
 * malloc'd buffer: caller frees *out with free(). */
ndb_status kv_env_read_file(kv_env *e, const char *path, size_t max, char **out, size_t *len);
/* Writes data to path durably: path.tmp, fsync, rename, fsync(dir). */
ndb_status kv_env_write_file_atomic(kv_env *e, const char *dir, const char *name, const void *data,
                                    size_t n);

/* ---- Fault injection (tests). */
typedef struct kv_fault_env kv_fault_env;

/* Wraps inner (borrowed). Caller frees with kv_env_fault_free(). */
kv_fault_env *kv_env_fault_new(kv_env *inner);
void kv_env_fault_free(kv_fault_env *fe);
kv_env *kv_env_fault_env(kv_fault_env *fe);
/* The n-th append/sync from now fails with NDB_EIO (n >= 1); 0 disarms. */
void kv_env_fault_fail_append_after(kv_fault_env *fe, uint64_t n);
void kv_env_fault_fail_sync_after(kv_fault_env *fe, uint64_t n);
/* full 1: a full disk. Every append from now on writes the first half of its
 * bytes (a write cut short) and fails with NDB_ENOSPC; files can still be
 * created, synced, renamed and removed. full 0: space was freed. */
void kv_env_fault_set_full(kv_fault_env *fe, int full);
uint64_t kv_env_fault_appends(kv_fault_env *fe);
uint64_t kv_env_fault_syncs(kv_fault_env *fe); /* counted as they start */
/* hold 1: every fsync from now on waits, before doing anything, until hold
 * 0 releases them (appends and other calls go on meanwhile), so a test can
 * keep an fsync in flight. kv_env_fault_held_syncs says how many wait. */
void kv_env_fault_hold_syncs(kv_fault_env *fe, int hold);
uint64_t kv_env_fault_held_syncs(kv_fault_env *fe);
/* Power cut: truncates every file written through this env to its length at
 * its last fsync (0 if never synced). Call only with every file closed. */
ndb_status kv_env_fault_drop_unsynced(kv_fault_env *fe);
/* Power cut while the engine runs: drops unsynced bytes as above, atomically
 * with respect to appends and fsyncs through this env, and from then on
 * every append, fsync, create, rename and remove fails with NDB_EIO, so the
 * disk keeps exactly its state at the cut. */
ndb_status kv_env_fault_power_cut(kv_fault_env *fe);

#endif /* KV_ENV_H */
