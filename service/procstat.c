/* procstat.c — the server process's own figures from /proc/self (see procstat.h). */
#include "procstat.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

/* /proc/self/stat is one line of ~52 numbers after "pid (comm) ", comm at most
 * 16 bytes (TASK_COMM_LEN): a few hundred bytes; /proc/self/status about 60
 * short lines, a little more with many CPUs in its masks. */
#define STAT_MAX 1024
#define STATUS_MAX 16384

/* Reads the whole of a small /proc file into buf (NUL-terminated). */
static ndb_status read_small(const char *path, char *buf, size_t cap, size_t *len)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return NDB_EIO;
    size_t n = 0;
    ndb_status st = NDB_OK;
    while (n + 1 < cap) {
        ssize_t r = read(fd, buf + n, cap - 1 - n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            st = NDB_EIO;
            break;
        }
        if (r == 0)
            break;
        n += (size_t)r;
    }
    if (close(fd) != 0 && st == NDB_OK)
        st = NDB_EIO;
    if (st == NDB_OK && n + 1 >= cap)
        st = NDB_ECORRUPT; /* longer than any stat line: not what we know how to read */
    buf[n] = '\0';
    *len = n;
    return st;
}

ndb_status svc_proc_stat_read(svc_proc_stat *out)
{
    char buf[STAT_MAX];
    size_t len;
    ndb_status st = read_small("/proc/self/stat", buf, sizeof buf, &len);
    if (st != NDB_OK)
        return st;
    /* comm may hold spaces and ')': the fields start after the last ')'. */
    char *p = strrchr(buf, ')');
    if (p == NULL || p[1] != ' ' || p[2] == '\0')
        return NDB_ECORRUPT;
    p += 3; /* past ") " and the state letter: field 4 (ppid) follows */
    /* Fields 4..24 (proc(5)); we keep 14 utime, 15 stime, 20 num_threads,
     * 22 starttime (clock ticks after boot), 23 vsize (bytes), 24 rss (pages). */
    unsigned long long f[25];
    for (int i = 4; i <= 24; i++) {
        char *end;
        errno = 0;
        f[i] = strtoull(p, &end, 10); /* a negative field (priority, nice) wraps; we use none */
        if (end == p || errno != 0 || (*end != ' ' && *end != '\n' && *end != '\0'))
            return NDB_ECORRUPT;
        p = end;
    }
    long hz = sysconf(_SC_CLK_TCK), page = sysconf(_SC_PAGESIZE);
    if (hz <= 0 || page <= 0)
        return NDB_EIO;
    /* starttime counts from boot: the epoch time of boot is now less the time since boot. */
    struct timespec real, boot;
    if (clock_gettime(CLOCK_REALTIME, &real) != 0 || clock_gettime(CLOCK_BOOTTIME, &boot) != 0)
        return NDB_EIO;
    double booted_at = (double)(real.tv_sec - boot.tv_sec) + (double)(real.tv_nsec - boot.tv_nsec) / 1e9;
    out->cpu_seconds = (double)(f[14] + f[15]) / (double)hz;
    out->threads = f[20];
    out->start_time = booted_at + (double)f[22] / (double)hz;
    out->vm_bytes = f[23];
    out->rss_bytes = f[24] * (uint64_t)page;
    return NDB_OK;
}

/* The kB figure of a "Name:   1234 kB" line of status text. */
static bool status_kb(const char *text, const char *name, uint64_t *bytes)
{
    size_t nl = strlen(name);
    for (const char *p = text; p != NULL && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL) {
        if (strncmp(p, name, nl) != 0 || p[nl] != ':')
            continue;
        char *end;
        errno = 0;
        unsigned long long kb = strtoull(p + nl + 1, &end, 10);
        if (end == p + nl + 1 || errno != 0 || strncmp(end, " kB", 3) != 0)
            return false;
        *bytes = (uint64_t)kb * 1024;
        return true;
    }
    return false;
}

ndb_status svc_proc_memory_read(svc_proc_memory *out)
{
    char *buf = malloc(STATUS_MAX);
    if (buf == NULL)
        return NDB_ENOMEM;
    size_t len;
    ndb_status st = read_small("/proc/self/status", buf, STATUS_MAX, &len);
    if (st == NDB_OK && !(status_kb(buf, "RssAnon", &out->anonymous) && status_kb(buf, "RssFile", &out->file) &&
                          status_kb(buf, "RssShmem", &out->shared)))
        st = NDB_ECORRUPT;
    free(buf);
    return st;
}

ndb_status svc_proc_open_fds(uint64_t *out)
{
    DIR *d = opendir("/proc/self/fd");
    if (d == NULL)
        return NDB_EIO;
    int self = dirfd(d);
    uint64_t n = 0;
    ndb_status st = NDB_OK;
    for (;;) {
        errno = 0;
        struct dirent *e = readdir(d);
        if (e == NULL) {
            if (errno != 0)
                st = NDB_EIO;
            break;
        }
        if (e->d_name[0] == '.')
            continue; /* "." and ".." */
        if (self >= 0 && atoi(e->d_name) == self)
            continue;
        n++;
    }
    if (closedir(d) != 0 && st == NDB_OK)
        st = NDB_EIO;
    *out = n;
    return st;
}

ndb_status svc_proc_max_fds(uint64_t *out)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return NDB_EIO;
    *out = rl.rlim_cur == RLIM_INFINITY ? UINT64_MAX : (uint64_t)rl.rlim_cur;
    return NDB_OK;
}
