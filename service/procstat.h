/*
 * procstat.h — figures about the server process itself (CPU time, memory,
 * threads, start time, file descriptors), read from Linux's /proc/self and
 * getrlimit, for GET /metrics (the process_* series) and AdminService/Stats.
 *
 * Thread safety: every call reads the kernel's figures afresh and keeps no
 * state; call from any thread.
 */
#ifndef SVC_PROCSTAT_H
#define SVC_PROCSTAT_H

#include <stdint.h>

#include "ndb_status.h"

typedef struct svc_proc_stat {
    double cpu_seconds;   /* user + system CPU time, all threads */
    uint64_t rss_bytes;   /* resident set size */
    uint64_t vm_bytes;    /* virtual memory size */
    uint64_t threads;     /* OS threads */
    double start_time;    /* when the process started, seconds since the Unix epoch */
} svc_proc_stat;

/* From /proc/self/stat. NDB_EIO when it cannot be read, NDB_ECORRUPT when it
 * does not parse; *out is then unspecified. */
ndb_status svc_proc_stat_read(svc_proc_stat *out);

/* The resident set by kind, from /proc/self/status (bytes). */
typedef struct svc_proc_memory {
    uint64_t anonymous; /* RssAnon */
    uint64_t file;      /* RssFile */
    uint64_t shared;    /* RssShmem */
} svc_proc_memory;

/* NDB_EIO when /proc/self/status cannot be read, NDB_ECORRUPT when a line is missing. */
ndb_status svc_proc_memory_read(svc_proc_memory *out);

/* Open file descriptors: the entries of /proc/self/fd, less the one this call
 * opens to list them. NDB_EIO when the directory cannot be read. */
ndb_status svc_proc_open_fds(uint64_t *out);

/* The soft RLIMIT_NOFILE (UINT64_MAX when unlimited). NDB_EIO on failure. */
ndb_status svc_proc_max_fds(uint64_t *out);

#endif /* SVC_PROCSTAT_H */
