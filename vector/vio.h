/*
 * vio.h — the one interface vector/ file I/O goes through.
 *
 * Thin wrappers over POSIX that turn failures into ndb_status with the path
 * and errno in the message, plus a fault hook for tests: vio_fault_sync(n)
 * makes the n-th following fsync fail (as a full or failing disk would), so
 * tests can check that a failed fsync poisons the collection.
 *
 * Thread safety: all functions may be called from any thread; the fault
 * counter is atomic.
 */
#ifndef NDB_VEC_VIO_H
#define NDB_VEC_VIO_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "ndb_status.h"

ndb_status vio_open(const char *path, int flags, int mode, int *fd, ndb_errmsg *msg);
ndb_status vio_close(int fd);
/* Writes all n bytes (retrying short writes and EINTR). */
ndb_status vio_write_all(int fd, const void *buf, size_t n, const char *path, ndb_errmsg *msg);
ndb_status vio_pwrite_all(int fd, const void *buf, size_t n, uint64_t off, const char *path, ndb_errmsg *msg);
/* Reads exactly n bytes at off; NDB_ECORRUPT if the file is shorter. */
ndb_status vio_pread_exact(int fd, void *buf, size_t n, uint64_t off, const char *path, ndb_errmsg *msg);
ndb_status vio_fsync(int fd, const char *path, ndb_errmsg *msg);
ndb_status vio_fsync_dir(const char *dir, ndb_errmsg *msg);
ndb_status vio_rename(const char *from, const char *to, ndb_errmsg *msg);
ndb_status vio_truncate(int fd, uint64_t len, const char *path, ndb_errmsg *msg);
ndb_status vio_size(int fd, uint64_t *len, const char *path, ndb_errmsg *msg);
/* Read-only shared mapping of len bytes; caller frees with munmap. */
ndb_status vio_mmap_ro(int fd, size_t len, void **out, const char *path, ndb_errmsg *msg);
/* Removes a directory tree (used when dropping a collection). */
ndb_status vio_remove_tree(const char *dir, ndb_errmsg *msg);

/* Test hook: the n-th fsync from now fails with EIO (n >= 1); 0 disables. */
void vio_fault_sync(long n);
/* fsyncs (file and directory) issued so far, process-wide. */
long vio_sync_count(void);

#endif /* NDB_VEC_VIO_H */
