#include "env.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

/* The status for a failed system call's errno: a full disk or quota and
 * descriptor exhaustion keep their own codes (the engine resumes after them,
 * README "Poisoning"), everything else is NDB_EIO. */
static ndb_status os_status(int err)
{
    switch (err) {
    case ENOSPC:
    case EDQUOT: return NDB_ENOSPC;
    case EMFILE:
    case ENFILE: return NDB_EMFILE;
    case ENOENT: return NDB_ENOTFOUND;
    case ENOMEM: return NDB_ENOMEM;
    default: return NDB_EIO;
    }
}

typedef struct posix_file {
    kv_file base;
    int fd;
    /* KV_APPEND_LOG files (log == 1): appends go to offset size, through the
     * mapping win of the reserved range [win_off, win_off + KV_LOG_CHUNK),
     * or through pwrite once reserving or mapping has failed (nomap). reserved
     * is the file's size on disk (data + zeros reserved ahead). */
    int log, nomap;
    char *win;
    uint64_t win_off, size, reserved;
    /* Other appended files (tables, vector segments) collect appends in buf
     * and write them KV_WRITE_CHUNK bytes at a time: a table is appended a
     * block (and its trailer) at a time, and a write per block cost a system
     * call per 4 KiB. sync, size and close write out what buf holds first. */
    char *buf;
    size_t blen;
} posix_file;

static ndb_status px_new(kv_env *e, int fd, int log, kv_file **out)
{
    posix_file *f = calloc(1, sizeof *f);
    if (f == NULL) {
        close(fd);
        return NDB_ENOMEM;
    }
    f->base.env = e;
    f->fd = fd;
    f->log = log;
    *out = &f->base;
    return NDB_OK;
}

static ndb_status px_open_append(kv_env *e, const char *path, unsigned flags, kv_file **out)
{
    /* a shared writable mapping needs the file open for reading too */
    int mode = (flags & KV_APPEND_LOG) ? O_RDWR : O_WRONLY | O_APPEND;
    int fd = open(path, mode | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) return os_status(errno);
    ndb_status st = px_new(e, fd, (flags & KV_APPEND_LOG) != 0, out);
    if (st != NDB_OK || (flags & KV_APPEND_LOG)) return st;
    posix_file *f = (posix_file *)*out;
    if ((f->buf = malloc(KV_WRITE_CHUNK)) == NULL) {
        close(fd);
        free(f);
        return NDB_ENOMEM;
    }
    return NDB_OK;
}

static ndb_status px_open_read(kv_env *e, const char *path, kv_file **out)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return os_status(errno);
    return px_new(e, fd, 0, out);
}

static void log_unmap(posix_file *f)
{
    if (f->win) munmap(f->win, KV_LOG_CHUNK);
    f->win = NULL;
}

/* Maps the chunk holding offset f->size, reserving it first. On failure the
 * file goes on with pwrite (f->win stays NULL, f->nomap is set). */
static void log_next_window(posix_file *f)
{
    log_unmap(f);
    uint64_t off = f->size - f->size % KV_LOG_CHUNK;
    if (off + KV_LOG_CHUNK > f->reserved) {
        int r;
        do r = fallocate(f->fd, 0, (off_t)f->reserved, (off_t)(off + KV_LOG_CHUNK - f->reserved));
        while (r != 0 && errno == EINTR);
        if (r != 0) {
            f->nomap = 1;
            return;
        }
        f->reserved = off + KV_LOG_CHUNK;
    }
    void *p = mmap(NULL, KV_LOG_CHUNK, PROT_READ | PROT_WRITE, MAP_SHARED, f->fd, (off_t)off);
    if (p == MAP_FAILED) {
        f->nomap = 1;
        return;
    }
    f->win = p;
    f->win_off = off;
}

static ndb_status write_all(int fd, const char *p, size_t n, uint64_t off, int at_off)
{
    while (n > 0) {
        ssize_t w = at_off ? pwrite(fd, p, n, (off_t)off) : write(fd, p, n);
        if (w < 0) {
            if (errno == EINTR) continue;
            return os_status(errno);
        }
        p += w;
        off += (uint64_t)w;
        n -= (size_t)w;
    }
    return NDB_OK;
}

/* Writes out what a buffered file holds. */
static ndb_status buf_flush(posix_file *f)
{
    if (f->blen == 0) return NDB_OK;
    ndb_status st = write_all(f->fd, f->buf, f->blen, 0, 0);
    f->blen = 0; /* after a failed write the file is abandoned: nothing is retried */
    return st;
}

static ndb_status px_append(kv_file *kf, const void *buf, size_t n)
{
    posix_file *f = (posix_file *)kf;
    const char *p = buf;
    if (f->buf) {
        if (n >= KV_WRITE_CHUNK) { /* large enough on its own */
            ndb_status st = buf_flush(f);
            return st == NDB_OK ? write_all(f->fd, p, n, 0, 0) : st;
        }
        while (n > 0) {
            size_t k = KV_WRITE_CHUNK - f->blen < n ? KV_WRITE_CHUNK - f->blen : n;
            memcpy(f->buf + f->blen, p, k);
            f->blen += k;
            p += k;
            n -= k;
            if (f->blen == KV_WRITE_CHUNK) {
                ndb_status st = buf_flush(f);
                if (st != NDB_OK) return st;
            }
        }
        return NDB_OK;
    }
    /* A large append goes through pwrite: copied into the mapping it would take
     * a page fault per fresh page (measured here 2 to 15 times slower than
     * pwrite for 1.75 MB records). The page cache is shared with the mapping,
     * so later small appends through it carry on after these bytes. */
    if (f->log && !f->nomap && n >= KV_LOG_LARGE) {
        ndb_status st = write_all(f->fd, p, n, f->size, 1);
        if (st == NDB_OK) {
            f->size += n;
            if (f->size > f->reserved) f->reserved = f->size;
        }
        return st;
    }
    while (n > 0 && f->log && !f->nomap) {
        if (f->win == NULL || f->size >= f->win_off + KV_LOG_CHUNK) {
            log_next_window(f);
            continue;
        }
        size_t room = (size_t)(f->win_off + KV_LOG_CHUNK - f->size);
        size_t k = n < room ? n : room;
        memcpy(f->win + (f->size - f->win_off), p, k);
        f->size += k;
        p += k;
        n -= k;
    }
    if (n == 0) return NDB_OK;
    ndb_status st = write_all(f->fd, p, n, f->size, f->log);
    if (st == NDB_OK) f->size += n;
    return st;
}

static ndb_status px_sync(kv_file *f)
{
    ndb_status st = buf_flush((posix_file *)f);
    if (st != NDB_OK) return st;
    /* fdatasync also writes back pages dirtied through a log's mapping */
    return fdatasync(((posix_file *)f)->fd) == 0 ? NDB_OK : os_status(errno);
}

static ndb_status px_pread(kv_file *f, uint64_t off, void *buf, size_t n, size_t *got)
{
    int fd = ((posix_file *)f)->fd;
    size_t done = 0;
    while (done < n) {
        ssize_t r = pread(fd, (char *)buf + done, n - done, (off_t)(off + done));
        if (r < 0) {
            if (errno == EINTR) continue;
            return os_status(errno);
        }
        if (r == 0) break;
        done += (size_t)r;
    }
    *got = done;
    return NDB_OK;
}

static ndb_status px_size(kv_file *kf, uint64_t *out)
{
    posix_file *f = (posix_file *)kf;
    if (f->log) {
        *out = f->size;
        return NDB_OK;
    }
    ndb_status s = buf_flush(f);
    if (s != NDB_OK) return s;
    struct stat st;
    if (fstat(f->fd, &st) != 0) return os_status(errno);
    *out = (uint64_t)st.st_size;
    return NDB_OK;
}

static ndb_status px_close(kv_file *kf)
{
    posix_file *f = (posix_file *)kf;
    log_unmap(f);
    ndb_status r = buf_flush(f);
    free(f->buf);
    /* Trims a log's reserve. Only ever shrinks: a file cut shorter underneath
     * (the fault env's power cut) stays as it is. */
    struct stat st;
    if (f->log && fstat(f->fd, &st) == 0 && (uint64_t)st.st_size > f->size && ftruncate(f->fd, (off_t)f->size) != 0 &&
        r == NDB_OK)
        r = os_status(errno);
    if (close(f->fd) != 0 && r == NDB_OK) r = os_status(errno);
    free(f);
    return r;
}

static ndb_status px_rename(kv_env *e, const char *from, const char *to)
{
    (void)e;
    return rename(from, to) == 0 ? NDB_OK : os_status(errno);
}

static ndb_status px_remove(kv_env *e, const char *path)
{
    (void)e;
    return remove(path) == 0 ? NDB_OK : os_status(errno); /* a file, or an empty directory */
}

static ndb_status px_sync_dir(kv_env *e, const char *dir)
{
    (void)e;
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return os_status(errno);
    ndb_status st = fsync(fd) == 0 ? NDB_OK : os_status(errno);
    close(fd);
    return st;
}

static ndb_status px_mkdir(kv_env *e, const char *dir)
{
    (void)e;
    if (mkdir(dir, 0700) == 0 || errno == EEXIST) return NDB_OK;
    return os_status(errno);
}

void kv_env_free_list(char **names, size_t n)
{
    if (names == NULL) return;
    for (size_t i = 0; i < n; i++) free(names[i]);
    free(names);
}

static ndb_status px_list(kv_env *e, const char *dir, char ***names, size_t *n)
{
    (void)e;
    DIR *d = opendir(dir);
    if (d == NULL) return os_status(errno);
    char **v = NULL;
    size_t cnt = 0, cap = 0;
    struct dirent *de;
    ndb_status st = NDB_OK;
    while ((de = readdir(d)) != NULL) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0) continue;
        if (cnt == cap) {
            size_t nc = cap ? cap * 2 : 16;
            char **nv = realloc(v, nc * sizeof *nv);
            if (nv == NULL) {
                st = NDB_ENOMEM;
                break;
            }
            v = nv;
            cap = nc;
        }
        v[cnt] = strdup(de->d_name);
        if (v[cnt] == NULL) {
            st = NDB_ENOMEM;
            break;
        }
        cnt++;
    }
    closedir(d);
    if (st != NDB_OK) {
        kv_env_free_list(v, cnt);
        return st;
    }
    *names = v;
    *n = cnt;
    return NDB_OK;
}

static ndb_status px_lock(kv_env *e, const char *path, kv_file **out)
{
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) return os_status(errno);
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        ndb_status st = errno == EWOULDBLOCK ? NDB_EBUSY : os_status(errno);
        close(fd);
        return st;
    }
    return px_new(e, fd, 0, out);
}

static ndb_status px_truncate(kv_env *e, const char *path, uint64_t len)
{
    (void)e;
    return truncate(path, (off_t)len) == 0 ? NDB_OK : os_status(errno);
}

static ndb_status px_map(kv_env *e, const char *path, uint64_t len, const void **base)
{
    (void)e;
    if (len == 0 || len > SIZE_MAX) return NDB_EINVAL;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return os_status(errno);
    void *p = mmap(NULL, (size_t)len, PROT_READ, MAP_SHARED, fd, 0);
    ndb_status st = p == MAP_FAILED ? os_status(errno) : NDB_OK;
    close(fd);
    if (st != NDB_OK) return st;
    *base = p;
    return NDB_OK;
}

static void px_unmap(kv_env *e, const void *base, uint64_t len)
{
    (void)e;
    if (base) munmap((void *)base, (size_t)len);
}

static ndb_status px_link(kv_env *e, const char *from, const char *to)
{
    (void)e;
    if (link(from, to) == 0) return NDB_OK;
    switch (errno) {
    case EXDEV:
    case EPERM: /* a file system without hard links (some FUSE and network ones) */
    case EOPNOTSUPP:
    case EMLINK: return NDB_EUNIMPL;
    case EEXIST: return NDB_EEXIST;
    default: return os_status(errno);
    }
}

static const kv_env_vtbl posix_vtbl = {
    px_open_append, px_open_read, px_append, px_sync,  px_pread, px_size, px_close,
    px_rename,      px_remove,    px_sync_dir, px_mkdir, px_list,  px_lock, px_truncate,
    px_map,         px_unmap,     px_link,
};
static kv_env posix_env = {&posix_vtbl};

kv_env *kv_env_posix(void) { return &posix_env; }

ndb_status kv_env_read_file(kv_env *e, const char *path, size_t max, char **out, size_t *len)
{
    kv_file *f;
    ndb_status st = e->v->open_read(e, path, &f);
    if (st != NDB_OK) return st;
    uint64_t sz;
    st = kv_file_size(f, &sz);
    if (st == NDB_OK && sz > max) st = NDB_ETOOBIG;
    char *buf = NULL;
    size_t got = 0;
    if (st == NDB_OK) {
        buf = malloc(sz + 1);
        if (buf == NULL) st = NDB_ENOMEM;
    }
    if (st == NDB_OK) st = kv_file_pread(f, 0, buf, sz, &got);
    kv_file_close(f);
    if (st != NDB_OK) {
        free(buf);
        return st;
    }
    buf[got] = 0;
    *out = buf;
    *len = got;
    return NDB_OK;
}

ndb_status kv_env_write_file_atomic(kv_env *e, const char *dir, const char *name, const void *data,
                                    size_t n)
{
    char tmp[4096], dst[4096];
    if ((size_t)snprintf(tmp, sizeof tmp, "%s/%s.tmp", dir, name) >= sizeof tmp ||
        (size_t)snprintf(dst, sizeof dst, "%s/%s", dir, name) >= sizeof dst)
        return NDB_EINVAL;
    kv_file *f;
    ndb_status st = e->v->open_append(e, tmp, 0, &f);
    if (st != NDB_OK) return st;
    st = kv_file_append(f, data, n);
    if (st == NDB_OK) st = kv_file_sync(f);
    ndb_status cs = kv_file_close(f);
    if (st == NDB_OK) st = cs;
    if (st == NDB_OK) st = e->v->rename(e, tmp, dst);
    if (st == NDB_OK) st = e->v->sync_dir(e, dir);
    if (st != NDB_OK) e->v->remove(e, tmp);
    return st;
}

/* ------------------------------------------------------------------ */
/* Fault-injecting env.                                                */

typedef struct tracked {
    char *path;
    uint64_t size, synced;
} tracked;

struct kv_fault_env {
    kv_env base; /* first: a kv_env* points here */
    kv_env *inner;
    pthread_mutex_t mu;
    uint64_t appends, syncs;
    uint64_t fail_append_at, fail_sync_at; /* absolute counts; 0 = off */
    int dead; /* mu: after a power cut every change fails: the disk is frozen */
    int full; /* mu: appends write half their bytes, then fail with NDB_ENOSPC */
    int hold;           /* mu: syncs wait at the gate (kv_env_fault_hold_syncs) */
    uint64_t held;      /* mu: syncs waiting at the gate */
    pthread_cond_t gate; /* signalled when hold is cleared */
    tracked *t;
    size_t nt, capt;
};

typedef struct fault_file {
    kv_file base;
    kv_file *inner;
    char *path;
} fault_file;

static tracked *find_tracked(kv_fault_env *fe, const char *path)
{
    for (size_t i = 0; i < fe->nt; i++)
        if (strcmp(fe->t[i].path, path) == 0) return &fe->t[i];
    return NULL;
}

static tracked *add_tracked(kv_fault_env *fe, const char *path)
{
    tracked *t = find_tracked(fe, path);
    if (t) return t;
    if (fe->nt == fe->capt) {
        size_t nc = fe->capt ? fe->capt * 2 : 16;
        tracked *nt = realloc(fe->t, nc * sizeof *nt);
        if (nt == NULL) return NULL;
        fe->t = nt;
        fe->capt = nc;
    }
    char *p = strdup(path);
    if (p == NULL) return NULL;
    fe->t[fe->nt] = (tracked){p, 0, 0};
    return &fe->t[fe->nt++];
}

static void drop_tracked(kv_fault_env *fe, const char *path)
{
    for (size_t i = 0; i < fe->nt; i++)
        if (strcmp(fe->t[i].path, path) == 0) {
            free(fe->t[i].path);
            fe->t[i] = fe->t[--fe->nt];
            return;
        }
}

static ndb_status ff_wrap(kv_fault_env *fe, kv_file *inner, const char *path, kv_file **out)
{
    fault_file *f = malloc(sizeof *f);
    char *p = strdup(path);
    if (f == NULL || p == NULL) {
        free(f);
        free(p);
        kv_file_close(inner);
        return NDB_ENOMEM;
    }
    f->base.env = &fe->base;
    f->inner = inner;
    f->path = p;
    *out = &f->base;
    return NDB_OK;
}

static ndb_status ff_open_append(kv_env *e, const char *path, unsigned flags, kv_file **out)
{
    kv_fault_env *fe = (kv_fault_env *)e;
    kv_file *in;
    pthread_mutex_lock(&fe->mu);
    if (fe->dead) {
        pthread_mutex_unlock(&fe->mu);
        return NDB_EIO;
    }
    ndb_status st = fe->inner->v->open_append(fe->inner, path, flags, &in);
    if (st != NDB_OK) {
        pthread_mutex_unlock(&fe->mu);
        return st;
    }
    tracked *t = add_tracked(fe, path); /* the existing entry, if any */
    if (t) t->size = t->synced = 0;     /* created empty */
    pthread_mutex_unlock(&fe->mu);
    if (t == NULL) {
        kv_file_close(in);
        return NDB_ENOMEM;
    }
    return ff_wrap(fe, in, path, out);
}

static ndb_status ff_open_read(kv_env *e, const char *path, kv_file **out)
{
    kv_fault_env *fe = (kv_fault_env *)e;
    kv_file *in;
    ndb_status st = fe->inner->v->open_read(fe->inner, path, &in);
    if (st != NDB_OK) return st;
    return ff_wrap(fe, in, path, out);
}

/* Appends and fsyncs run under fe->mu, so a power cut (which takes the same
 * lock) happens between two operations, never inside one. */
static ndb_status ff_append(kv_file *f, const void *buf, size_t n)
{
    fault_file *ff = (fault_file *)f;
    kv_fault_env *fe = (kv_fault_env *)f->env;
    pthread_mutex_lock(&fe->mu);
    uint64_t k = ++fe->appends;
    ndb_status st = NDB_EIO;
    tracked *t = find_tracked(fe, ff->path);
    if (fe->full && !fe->dead) {
        /* a write cut short by a full disk: its first half reaches the file */
        if (kv_file_append(ff->inner, buf, n / 2) == NDB_OK && t) t->size += n / 2;
        st = NDB_ENOSPC;
    } else if (!fe->dead && !(fe->fail_append_at && k == fe->fail_append_at)) {
        st = kv_file_append(ff->inner, buf, n);
        if (st == NDB_OK && t) t->size += n;
    }
    pthread_mutex_unlock(&fe->mu);
    return st;
}

static ndb_status ff_sync(kv_file *f)
{
    fault_file *ff = (fault_file *)f;
    kv_fault_env *fe = (kv_fault_env *)f->env;
    pthread_mutex_lock(&fe->mu);
    uint64_t k = ++fe->syncs;
    if (fe->hold) {
        fe->held++;
        while (fe->hold) pthread_cond_wait(&fe->gate, &fe->mu);
        fe->held--;
    }
    ndb_status st = NDB_EIO;
    if (!fe->dead && !(fe->fail_sync_at && k == fe->fail_sync_at)) {
        st = kv_file_sync(ff->inner);
        tracked *t = find_tracked(fe, ff->path);
        if (st == NDB_OK && t) t->synced = t->size;
    }
    pthread_mutex_unlock(&fe->mu);
    return st;
}

static ndb_status ff_pread(kv_file *f, uint64_t off, void *buf, size_t n, size_t *got)
{
    return kv_file_pread(((fault_file *)f)->inner, off, buf, n, got);
}
static ndb_status ff_size(kv_file *f, uint64_t *out) { return kv_file_size(((fault_file *)f)->inner, out); }
static ndb_status ff_close(kv_file *f)
{
    fault_file *ff = (fault_file *)f;
    ndb_status st = kv_file_close(ff->inner);
    free(ff->path);
    free(ff);
    return st;
}

static ndb_status ff_rename(kv_env *e, const char *from, const char *to)
{
    kv_fault_env *fe = (kv_fault_env *)e;
    pthread_mutex_lock(&fe->mu);
    ndb_status st = fe->dead ? NDB_EIO : fe->inner->v->rename(fe->inner, from, to);
    pthread_mutex_unlock(&fe->mu);
    if (st == NDB_OK) {
        pthread_mutex_lock(&fe->mu);
        drop_tracked(fe, to);
        tracked *t = find_tracked(fe, from);
        if (t) {
            char *p = strdup(to);
            if (p) {
                free(t->path);
                t->path = p;
            }
        }
        pthread_mutex_unlock(&fe->mu);
    }
    return st;
}

static ndb_status ff_remove(kv_env *e, const char *path)
{
    kv_fault_env *fe = (kv_fault_env *)e;
    pthread_mutex_lock(&fe->mu);
    ndb_status st = fe->dead ? NDB_EIO : fe->inner->v->remove(fe->inner, path);
    if (st == NDB_OK) drop_tracked(fe, path);
    pthread_mutex_unlock(&fe->mu);
    return st;
}

/* A directory's fsync counts among the syncs and fails like a file's. */
static ndb_status ff_sync_dir(kv_env *e, const char *dir)
{
    kv_fault_env *fe = (kv_fault_env *)e;
    pthread_mutex_lock(&fe->mu);
    uint64_t k = ++fe->syncs;
    ndb_status st = fe->dead || (fe->fail_sync_at && k == fe->fail_sync_at) ? NDB_EIO
                                                                            : fe->inner->v->sync_dir(fe->inner, dir);
    pthread_mutex_unlock(&fe->mu);
    return st;
}
static ndb_status ff_mkdir(kv_env *e, const char *dir)
{
    kv_fault_env *fe = (kv_fault_env *)e;
    return fe->inner->v->mkdir(fe->inner, dir);
}
static ndb_status ff_list(kv_env *e, const char *dir, char ***names, size_t *n)
{
    kv_fault_env *fe = (kv_fault_env *)e;
    return fe->inner->v->list(fe->inner, dir, names, n);
}
static ndb_status ff_lock(kv_env *e, const char *path, kv_file **out)
{
    kv_fault_env *fe = (kv_fault_env *)e;
    return fe->inner->v->lock(fe->inner, path, out);
}
static ndb_status ff_truncate(kv_env *e, const char *path, uint64_t len)
{
    kv_fault_env *fe = (kv_fault_env *)e;
    pthread_mutex_lock(&fe->mu);
    ndb_status st = fe->dead ? NDB_EIO : fe->inner->v->truncate(fe->inner, path, len);
    tracked *t = find_tracked(fe, path);
    if (st == NDB_OK && t) {
        if (t->size > len) t->size = len;
        if (t->synced > len) t->synced = len;
    }
    pthread_mutex_unlock(&fe->mu);
    return st;
}

static ndb_status ff_map(kv_env *e, const char *path, uint64_t len, const void **base)
{
    kv_fault_env *fe = (kv_fault_env *)e;
    return fe->inner->v->map(fe->inner, path, len, base);
}
static void ff_unmap(kv_env *e, const void *base, uint64_t len)
{
    kv_fault_env *fe = (kv_fault_env *)e;
    fe->inner->v->unmap(fe->inner, base, len);
}

/* A link is a name for bytes already written: it is not tracked (a power cut
 * leaves the file's bytes as they were through its first name). */
static ndb_status ff_link(kv_env *e, const char *from, const char *to)
{
    kv_fault_env *fe = (kv_fault_env *)e;
    pthread_mutex_lock(&fe->mu);
    ndb_status st = fe->dead ? NDB_EIO : fe->inner->v->link(fe->inner, from, to);
    pthread_mutex_unlock(&fe->mu);
    return st;
}

static const kv_env_vtbl fault_vtbl = {
    ff_open_append, ff_open_read, ff_append, ff_sync,  ff_pread, ff_size, ff_close,
    ff_rename,      ff_remove,    ff_sync_dir, ff_mkdir, ff_list,  ff_lock, ff_truncate,
    ff_map,         ff_unmap,     ff_link,
};

kv_fault_env *kv_env_fault_new(kv_env *inner)
{
    kv_fault_env *fe = calloc(1, sizeof *fe);
    if (fe == NULL) return NULL;
    fe->base.v = &fault_vtbl;
    fe->inner = inner;
    pthread_mutex_init(&fe->mu, NULL);
    pthread_cond_init(&fe->gate, NULL);
    return fe;
}

void kv_env_fault_free(kv_fault_env *fe)
{
    if (fe == NULL) return;
    for (size_t i = 0; i < fe->nt; i++) free(fe->t[i].path);
    free(fe->t);
    pthread_mutex_destroy(&fe->mu);
    pthread_cond_destroy(&fe->gate);
    free(fe);
}

kv_env *kv_env_fault_env(kv_fault_env *fe) { return &fe->base; }

void kv_env_fault_fail_append_after(kv_fault_env *fe, uint64_t n)
{
    pthread_mutex_lock(&fe->mu);
    fe->fail_append_at = n ? fe->appends + n : 0;
    pthread_mutex_unlock(&fe->mu);
}
void kv_env_fault_set_full(kv_fault_env *fe, int full)
{
    pthread_mutex_lock(&fe->mu);
    fe->full = full;
    pthread_mutex_unlock(&fe->mu);
}
void kv_env_fault_fail_sync_after(kv_fault_env *fe, uint64_t n)
{
    pthread_mutex_lock(&fe->mu);
    fe->fail_sync_at = n ? fe->syncs + n : 0;
    pthread_mutex_unlock(&fe->mu);
}
/* Reads one of fe's counters under its lock. */
static uint64_t counter(kv_fault_env *fe, const uint64_t *c)
{
    pthread_mutex_lock(&fe->mu);
    uint64_t v = *c;
    pthread_mutex_unlock(&fe->mu);
    return v;
}
uint64_t kv_env_fault_appends(kv_fault_env *fe) { return counter(fe, &fe->appends); }
uint64_t kv_env_fault_syncs(kv_fault_env *fe) { return counter(fe, &fe->syncs); }
uint64_t kv_env_fault_held_syncs(kv_fault_env *fe) { return counter(fe, &fe->held); }

void kv_env_fault_hold_syncs(kv_fault_env *fe, int hold)
{
    pthread_mutex_lock(&fe->mu);
    fe->hold = hold;
    if (!hold) pthread_cond_broadcast(&fe->gate);
    pthread_mutex_unlock(&fe->mu);
}

static ndb_status drop_locked(kv_fault_env *fe)
{
    ndb_status st = NDB_OK;
    for (size_t i = 0; i < fe->nt; i++) {
        tracked *t = &fe->t[i];
        if (t->size > t->synced) {
            ndb_status r = fe->inner->v->truncate(fe->inner, t->path, t->synced);
            if (r != NDB_OK && st == NDB_OK) st = r;
            t->size = t->synced;
        }
    }
    return st;
}

ndb_status kv_env_fault_power_cut(kv_fault_env *fe)
{
    pthread_mutex_lock(&fe->mu);
    ndb_status st = drop_locked(fe);
    fe->dead = 1;
    pthread_mutex_unlock(&fe->mu);
    return st;
}

ndb_status kv_env_fault_drop_unsynced(kv_fault_env *fe)
{
    pthread_mutex_lock(&fe->mu);
    ndb_status st = drop_locked(fe);
    pthread_mutex_unlock(&fe->mu);
    return st;
}
