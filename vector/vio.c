/* vio.c — see vio.h. */
#include "vio.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

static long fault_sync_at; /* atomic */
static long sync_count;    /* atomic */

long vio_sync_count(void) { return __atomic_load_n(&sync_count, __ATOMIC_RELAXED); }

void vio_fault_sync(long n) { __atomic_store_n(&fault_sync_at, n, __ATOMIC_SEQ_CST); }

static int fault_sync_now(void)
{
    __atomic_add_fetch(&sync_count, 1, __ATOMIC_RELAXED);
    long v = __atomic_load_n(&fault_sync_at, __ATOMIC_SEQ_CST);
    while (v > 0) {
        if (__atomic_compare_exchange_n(&fault_sync_at, &v, v - 1, 0, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST))
            return v == 1;
    }
    return 0;
}

ndb_status vio_open(const char *path, int flags, int mode, int *fd, ndb_errmsg *msg)
{
    int f;
    do
        f = open(path, flags | O_CLOEXEC, mode);
    while (f < 0 && errno == EINTR);
    if (f < 0)
        return ndb_errmsg_set(msg, errno == ENOENT ? NDB_ENOTFOUND : NDB_EIO, "open %s: %s", path,
                              strerror(errno));
    *fd = f;
    return NDB_OK;
}

ndb_status vio_close(int fd) { return close(fd) == 0 ? NDB_OK : NDB_EIO; }

ndb_status vio_write_all(int fd, const void *buf, size_t n, const char *path, ndb_errmsg *msg)
{
    const char *p = buf;
    while (n > 0) {
        ssize_t w = write(fd, p, n > (size_t)INT_MAX ? (size_t)INT_MAX : n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return ndb_errmsg_set(msg, NDB_EIO, "write %s: %s", path, strerror(errno));
        }
        p += w;
        n -= (size_t)w;
    }
    return NDB_OK;
}

ndb_status vio_pwrite_all(int fd, const void *buf, size_t n, uint64_t off, const char *path, ndb_errmsg *msg)
{
    const char *p = buf;
    while (n > 0) {
        ssize_t w = pwrite(fd, p, n > (size_t)INT_MAX ? (size_t)INT_MAX : n, (off_t)off);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return ndb_errmsg_set(msg, NDB_EIO, "write %s: %s", path, strerror(errno));
        }
        p += w;
        n -= (size_t)w;
        off += (uint64_t)w;
    }
    return NDB_OK;
}

ndb_status vio_pread_exact(int fd, void *buf, size_t n, uint64_t off, const char *path, ndb_errmsg *msg)
{
    char *p = buf;
    while (n > 0) {
        ssize_t r = pread(fd, p, n > (size_t)INT_MAX ? (size_t)INT_MAX : n, (off_t)off);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            return ndb_errmsg_set(msg, NDB_EIO, "read %s: %s", path, strerror(errno));
        }
        if (r == 0)
            return ndb_errmsg_set(msg, NDB_ECORRUPT, "%s: truncated (short read at offset %llu)", path,
                                  (unsigned long long)off);
        p += r;
        n -= (size_t)r;
        off += (uint64_t)r;
    }
    return NDB_OK;
}

ndb_status vio_fsync(int fd, const char *path, ndb_errmsg *msg)
{
    if (fault_sync_now())
        return ndb_errmsg_set(msg, NDB_EIO, "fsync %s: injected fault", path);
    if (fdatasync(fd) != 0)
        return ndb_errmsg_set(msg, NDB_EIO, "fsync %s: %s", path, strerror(errno));
    return NDB_OK;
}

ndb_status vio_fsync_dir(const char *dir, ndb_errmsg *msg)
{
    int fd;
    ndb_status st = vio_open(dir, O_RDONLY | O_DIRECTORY, 0, &fd, msg);
    if (st != NDB_OK)
        return st;
    st = NDB_OK;
    if (fault_sync_now())
        st = ndb_errmsg_set(msg, NDB_EIO, "fsync %s: injected fault", dir);
    else if (fsync(fd) != 0)
        st = ndb_errmsg_set(msg, NDB_EIO, "fsync %s: %s", dir, strerror(errno));
    close(fd);
    return st;
}

ndb_status vio_rename(const char *from, const char *to, ndb_errmsg *msg)
{
    if (rename(from, to) != 0)
        return ndb_errmsg_set(msg, NDB_EIO, "rename %s -> %s: %s", from, to, strerror(errno));
    return NDB_OK;
}

ndb_status vio_truncate(int fd, uint64_t len, const char *path, ndb_errmsg *msg)
{
    if (ftruncate(fd, (off_t)len) != 0)
        return ndb_errmsg_set(msg, NDB_EIO, "truncate %s: %s", path, strerror(errno));
    return NDB_OK;
}

ndb_status vio_size(int fd, uint64_t *len, const char *path, ndb_errmsg *msg)
{
    struct stat stt;
    if (fstat(fd, &stt) != 0)
        return ndb_errmsg_set(msg, NDB_EIO, "stat %s: %s", path, strerror(errno));
    *len = (uint64_t)stt.st_size;
    return NDB_OK;
}

ndb_status vio_mmap_ro(int fd, size_t len, void **out, const char *path, ndb_errmsg *msg)
{
    /* MAP_POPULATE: the caller checksums every byte next, so fault it all in
     * at once rather than a page at a time */
    void *p = mmap(NULL, len, PROT_READ, MAP_SHARED | MAP_POPULATE, fd, 0);
    if (p == MAP_FAILED)
        return ndb_errmsg_set(msg, errno == ENOMEM ? NDB_ENOMEM : NDB_EIO, "mmap %s: %s", path, strerror(errno));
    (void)madvise(p, len, MADV_WILLNEED);
    *out = p;
    return NDB_OK;
}

ndb_status vio_remove_tree(const char *dir, ndb_errmsg *msg)
{
    DIR *d = opendir(dir);
    if (!d)
        return errno == ENOENT ? NDB_OK : ndb_errmsg_set(msg, NDB_EIO, "opendir %s: %s", dir, strerror(errno));
    ndb_status st = NDB_OK;
    struct dirent *e;
    char path[PATH_MAX];
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        if (snprintf(path, sizeof path, "%s/%s", dir, e->d_name) >= (int)sizeof path) {
            st = ndb_errmsg_set(msg, NDB_EIO, "path too long under %s", dir);
            continue;
        }
        if (unlink(path) != 0 && errno != ENOENT)
            st = ndb_errmsg_set(msg, NDB_EIO, "unlink %s: %s", path, strerror(errno));
    }
    closedir(d);
    if (rmdir(dir) != 0 && errno != ENOENT)
        st = ndb_errmsg_set(msg, NDB_EIO, "rmdir %s: %s", dir, strerror(errno));
    return st;
}
