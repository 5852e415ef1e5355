/*
 * main.c — nexadb-server: reads its configuration, takes the data directory,
 * starts the transports, opens the engines, serves until SIGTERM or SIGINT,
 * then drains and exits 0.
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <ftw.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "app.h"
#include "auth.h"
#include "change_log.h"
#include "config.h"
#include "dispatch.h"
#include "engines.h"
#include "forward.h"
#include "grpc_server.h"
#include "health.h"
#include "ttl.h"
#include "log.h"
#include "metrics.h"
#include "pool.h"
#include "replicate.h"
#include "rest.h"
#include "version.h"

void svc_app_set_state(svc_app *app, svc_state st)
{
    atomic_store(&app->state, st);
    if (app->on_state_change != NULL)
        app->on_state_change(app->on_state_arg);
}

/* Whether a listen address host:port can only be reached from this machine. */
static bool is_loopback(const char *addr)
{
    const char *colon = strrchr(addr, ':');
    size_t n = colon != NULL ? (size_t)(colon - addr) : strlen(addr);
    if ((n == 9 && strncmp(addr, "localhost", 9) == 0) || (n == 5 && strncmp(addr, "[::1]", 5) == 0))
        return true;
    struct in_addr a;
    char host[64];
    if (n >= sizeof host)
        return false;
    memcpy(host, addr, n);
    host[n] = '\0';
    return inet_pton(AF_INET, host, &a) == 1 && (ntohl(a.s_addr) >> 24) == 127;
}

/* mkdir -p for the data directory. */
static ndb_status make_dirs(const char *path, ndb_errmsg *msg)
{
    char buf[4096];
    size_t n = strlen(path);
    if (n == 0 || n >= sizeof buf)
        return ndb_errmsg_set(msg, NDB_EINVAL, "--data-dir: bad path");
    memcpy(buf, path, n + 1);
    for (size_t i = 1; i <= n; i++) {
        if (buf[i] != '/' && buf[i] != '\0')
            continue;
        char c = buf[i];
        buf[i] = '\0';
        if (mkdir(buf, 0700) != 0 && errno != EEXIST)
            return ndb_errmsg_set(msg, NDB_EIO, "cannot create %s: %s", buf, strerror(errno));
        buf[i] = c;
    }
    struct stat sb;
    if (stat(path, &sb) != 0 || !S_ISDIR(sb.st_mode))
        return ndb_errmsg_set(msg, NDB_EIO, "%s is not a directory", path);
    if (sb.st_mode & 077) { /* made by an older release or by hand: still used, as it was */
        char mode[8];
        snprintf(mode, sizeof mode, "%04o", (unsigned)(sb.st_mode & 07777));
        SVC_LOG(SVC_LOG_WARN, "the data directory is open to users other than its owner", LOG_STR("dir", path),
                LOG_STR("mode", mode), LOG_STR("fix", "chmod 700 it; new files are created 0600 either way"));
    }
    return NDB_OK;
}

/* Takes an exclusive lock on <data-dir>/LOCK so two servers never share a directory.
 * The descriptor stays open (and the lock held) until the process exits. */
static ndb_status lock_data_dir(const char *dir, ndb_errmsg *msg)
{
    char path[4200];
    if (snprintf(path, sizeof path, "%s/LOCK", dir) >= (int)sizeof path)
        return ndb_errmsg_set(msg, NDB_EINVAL, "--data-dir: path too long");
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0)
        return ndb_errmsg_set(msg, NDB_EIO, "%s: %s", path, strerror(errno));
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        close(fd);
        return ndb_errmsg_set(msg, NDB_EBUSY, "%s is in use by another nexadb-server", dir);
    }
    return NDB_OK;
}

/* Descriptors the engine may need besides its open tables: the WAL and manifest, flush and
 * compaction outputs, the short opens of maps, directory syncs and listings. */
#define ENGINE_SPARE_FDS 64
/* Descriptors of the process itself: standard streams, LOCK, the transports' epoll and wake-up
 * descriptors, the spare conn_gate.c keeps, key and certificate files while read. */
#define PROCESS_FDS 64
/* Without --max-connections, the fewest connections per port the derived budget may leave
 * before the start is refused. */
#define MIN_CONNECTIONS 16

/* Raises the soft RLIMIT_NOFILE to the hard one (a distribution's default soft limit, 1024,
 * is a few hundred idle connections), logs both, and derives the budget (service/README.md,
 * "Connections and descriptors"): the engine's table cache and reserve, and the connections
 * allowed per port. */
static ndb_status fd_budget(const svc_config *cfg, svc_gate_config *gate, uint32_t *max_open_tables, ndb_errmsg *msg)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return ndb_errmsg_set(msg, NDB_EIO, "getrlimit(RLIMIT_NOFILE): %s", strerror(errno));
    rlim_t soft_before = rl.rlim_cur;
    /* Linux refuses more than fs.nr_open (1048576 by default) even when the hard limit is unlimited. */
    rlim_t want = rl.rlim_max == RLIM_INFINITY || rl.rlim_max > (1u << 20) ? (1u << 20) : rl.rlim_max;
    if (rl.rlim_cur < want) {
        struct rlimit raised = {.rlim_cur = want, .rlim_max = rl.rlim_max};
        if (setrlimit(RLIMIT_NOFILE, &raised) == 0)
            rl.rlim_cur = want;
        else
            SVC_LOG(SVC_LOG_WARN, "cannot raise the descriptor limit to the hard limit",
                    LOG_STR("error", strerror(errno)), LOG_INT("soft", (int64_t)rl.rlim_cur),
                    LOG_INT("hard", (int64_t)rl.rlim_max));
    }
    int limit = rl.rlim_cur > (1u << 20) ? (1 << 20) : (int)rl.rlim_cur;
    int tables = limit / 8 < 16 ? 16 : limit / 8 > 1000 ? 1000 : limit / 8;
    int reserve = tables + ENGINE_SPARE_FDS;
    int derived = (limit - reserve - PROCESS_FDS) / 2;
    int cap = cfg->max_connections > 0 ? cfg->max_connections : derived;
    if (cfg->max_connections == 0 && derived < MIN_CONNECTIONS)
        return ndb_errmsg_set(msg, NDB_ELIMIT,
                              "the descriptor limit (%d, hard %lld) leaves %d connections per port after the engine's "
                              "%d; raise the hard limit (ulimit -Hn, LimitNOFILE=) to at least %d",
                              limit, (long long)rl.rlim_max, derived, reserve,
                              reserve + PROCESS_FDS + 2 * MIN_CONNECTIONS);
    SVC_LOG(SVC_LOG_INFO, "descriptor limit", LOG_INT("soft_before", (int64_t)soft_before),
            LOG_INT("soft", limit), LOG_INT("hard", rl.rlim_max == RLIM_INFINITY ? -1 : (int64_t)rl.rlim_max),
            LOG_INT("engine_open_tables", tables), LOG_INT("engine_reserve", reserve),
            LOG_INT("max_connections_per_port", cap));
    if (cap > derived)
        SVC_LOG(SVC_LOG_WARN, "--max-connections is more than the descriptor limit leaves; connections that would "
                "use the engine's reserve are refused", LOG_INT("max_connections", cap), LOG_INT("derived", derived));
    *gate = (svc_gate_config){.limit = limit, .reserve = reserve, .max_connections = cap};
    *max_open_tables = (uint32_t)tables;
    return NDB_OK;
}


static int fail(const char *what, ndb_status st, const ndb_errmsg *msg)
{
    SVC_LOG(SVC_LOG_ERROR, what, LOG_STR("error", msg->text), LOG_STR("status", ndb_strerror(st)));
    return 1;
}

/* Splits "path[,base...]" in place: the backup, then the bases an incremental archive needs. */
static size_t split_list(char *s, const char **v, size_t max)
{
    size_t n = 0;
    for (char *save = NULL, *t = strtok_r(s, ",", &save); t != NULL && n < max; t = strtok_r(NULL, ",", &save))
        v[n++] = t;
    return n;
}

/* Whether dir is missing or holds nothing but LOCK (left by a refused restore). */
static bool empty_dir(const char *dir)
{
    DIR *d = opendir(dir);
    if (d == NULL)
        return errno == ENOENT;
    bool empty = true;
    for (struct dirent *de; empty && (de = readdir(d)) != NULL;)
        empty = strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0 || strcmp(de->d_name, "LOCK") == 0;
    closedir(d);
    return empty;
}

static ndb_status restore_progress(void *arg, const ndb_kv_backup_progress *p)
{
    int *tenth = arg;
    int now = p->bytes_total ? (int)(p->bytes_done * 10 / p->bytes_total) : 10;
    if (now > *tenth) {
        *tenth = now;
        SVC_LOG(SVC_LOG_INFO, "restoring", LOG_INT("bytes_done", (int64_t)p->bytes_done),
                LOG_INT("bytes_total", (int64_t)p->bytes_total), LOG_INT("files_done", (int64_t)p->files_done),
                LOG_INT("files_total", (int64_t)p->files_total));
    }
    return NDB_OK;
}

/* --verify-backup and --restore: check a backup, or restore it into an empty data directory
 * (engine/kv/README.md, "Backup and restore"), then exit. */
static int backup_tool(const svc_config *cfg)
{
    bool restore = cfg->restore[0] != '\0';
    if (restore && cfg->verify_backup[0] != '\0') {
        fprintf(stderr, "nexadb-server: --restore and --verify-backup: give one\n");
        return 2;
    }
    char list[sizeof cfg->restore];
    snprintf(list, sizeof list, "%s", restore ? cfg->restore : cfg->verify_backup);
    const char *v[64];
    size_t n = split_list(list, v, 64);
    if (n == 0) {
        fprintf(stderr, "nexadb-server: %s: no backup named\n", restore ? "--restore" : "--verify-backup");
        return 2;
    }
    ndb_kv_backup_info info;
    ndb_errmsg msg = {{0}};
    ndb_status st;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    if (!restore) {
        if ((st = ndb_kv_backup_verify(v[0], v + 1, n - 1, &info, &msg)) != NDB_OK)
            return fail("the backup is damaged or incomplete", st, &msg);
    } else {
        char kv[4200];
        if (!empty_dir(cfg->data_dir)) {
            ndb_errmsg_set(&msg, NDB_EEXIST, "%s is not empty: restore into a new or empty data directory",
                           cfg->data_dir);
            return fail("restore refused", NDB_EEXIST, &msg);
        }
        if ((st = make_dirs(cfg->data_dir, &msg)) != NDB_OK || (st = lock_data_dir(cfg->data_dir, &msg)) != NDB_OK)
            return fail("cannot use the data directory", st, &msg);
        if (snprintf(kv, sizeof kv, "%s/kv", cfg->data_dir) >= (int)sizeof kv)
            return fail("restore refused", NDB_EINVAL, &msg);
        SVC_LOG(SVC_LOG_INFO, "verifying the backup, then restoring it", LOG_STR("backup", v[0]),
                LOG_INT("bases", (int64_t)(n - 1)), LOG_STR("into", kv));
        int tenth = 0;
        if ((st = ndb_kv_restore(v[0], v + 1, n - 1, kv, restore_progress, &tenth, &info, &msg)) != NDB_OK)
            return fail(st == NDB_ECORRUPT ? "restore refused: the backup is damaged or incomplete" : "restore failed",
                        st, &msg);
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    SVC_LOG(SVC_LOG_INFO, restore ? "restored; start the server without --restore" : "the backup is whole",
            LOG_STR("backup", v[0]), LOG_INT("sequence", (int64_t)info.sequence), LOG_INT("files", (int64_t)info.files),
            LOG_INT("bytes", (int64_t)info.bytes), LOG_INT("created", info.created), LOG_STR("identity", info.identity),
            LOG_DBL("seconds", (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9));
    return 0;
}

/* glibc gives each thread that meets a busy allocator an arena of its own, up
 * to 8 per core, and each arena keeps what its threads freed. With a worker
 * per call that is one arena per worker, each holding the large buffers of
 * its last bulk write: 364-382 MB of anonymous memory after 3,000,000
 * documents through InsertMany, against 174 MB with one arena per core, at
 * the same insert rate (bench/README.md, "allocator arenas"). The threads
 * beyond the cores do not run at once, so they need no arena of their own. */
static void cap_arenas(void)
{
#ifdef M_ARENA_MAX
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    mallopt(M_ARENA_MAX, cores < 1 ? 1 : cores > 64 ? 64 : (int)cores);
#endif
}

int main(int argc, char **argv)
{
    cap_arenas();
    svc_config cfg;
    ndb_errmsg msg = {{0}};
    ndb_status st = svc_config_load(&cfg, argc, argv, &msg);
    if (st == NDB_ECANCELED)
        return 0; /* --help, --version */
    if (st != NDB_OK) {
        fprintf(stderr, "nexadb-server: %s\n", msg.text);
        return 2;
    }
    svc_log_threshold = (svc_log_level)svc_log_parse_level(cfg.log_level);
    svc_log_calls = !cfg.no_access_log;
    if (!svc_log_start_writer())
        SVC_LOG(SVC_LOG_WARN, "no log writer thread: each log line is written by its caller");

    /* gRPC's threads inherit this mask, so only sigwait below sees the signals. */
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGHUP); /* reloads the TLS files */
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    signal(SIGPIPE, SIG_IGN);
    if (cfg.restore[0] != '\0' || cfg.verify_backup[0] != '\0')
        return backup_tool(&cfg);

    svc_app app = {.cfg = &cfg, .version = svc_version};
    uint32_t max_open_tables = 0;
    if ((st = fd_budget(&cfg, &app.gate, &max_open_tables, &msg)) != NDB_OK)
        return fail("cannot budget file descriptors", st, &msg);
    if ((st = svc_gate_configure(&app.gate, &msg)) != NDB_OK)
        return fail("cannot keep a descriptor reserve", st, &msg);
    atomic_init(&app.state, SVC_STARTING);
    atomic_init(&app.writes_stopped, 0);
    atomic_init(&app.reloading, 0);
    pthread_mutex_init(&app.fwd_mu, NULL);
    pthread_rwlockattr_t rwa; /* a snapshot being loaded waits for the calls in flight, not for new ones */
    pthread_rwlockattr_init(&rwa);
    pthread_rwlockattr_setkind_np(&rwa, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
    pthread_rwlock_init(&app.engines_lock, &rwa);
    pthread_rwlockattr_destroy(&rwa);
    pthread_mutex_init(&app.storage_mu, NULL);
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    app.started_at_ns = (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;

    /* Plaintext where other machines can reach it only when asked for. */
    if (cfg.tls_cert[0] == '\0' && !cfg.plaintext && !(is_loopback(cfg.grpc_addr) && is_loopback(cfg.http_addr))) {
        ndb_errmsg_set(&msg, NDB_EINVAL,
                       "no TLS certificate, and %s is reachable from other machines: set --tls-cert and "
                       "--tls-key, or --plaintext (NEXADB_PLAINTEXT=true) to serve it in clear",
                       is_loopback(cfg.grpc_addr) ? cfg.http_addr : cfg.grpc_addr);
        return fail("refusing plaintext on a network address", NDB_EINVAL, &msg);
    }
    if ((st = make_dirs(cfg.data_dir, &msg)) != NDB_OK || (st = lock_data_dir(cfg.data_dir, &msg)) != NDB_OK)
        return fail("cannot use the data directory", st, &msg);
    char staging[4200];
    struct stat sb;
    snprintf(staging, sizeof staging, "%s/kv.restoring", cfg.data_dir);
    if (stat(staging, &sb) == 0) { /* an empty kv/ would open as an empty database */
        ndb_errmsg_set(&msg, NDB_EEXIST, "%s: a restore was interrupted; empty the data directory and restore again",
                       staging);
        return fail("cannot use the data directory", NDB_EEXIST, &msg);
    }
    if ((st = svc_auth_load(&cfg, &app.auth, &msg)) != NDB_OK)
        return fail("cannot load API keys", st, &msg);
    if ((st = svc_tls_open(&cfg, &app.tls, &msg)) != NDB_OK)
        return fail("cannot load the TLS certificate", st, &msg);
    if (app.tls == NULL) {
        if (is_loopback(cfg.grpc_addr) && is_loopback(cfg.http_addr))
            SVC_LOG(SVC_LOG_INFO, "no TLS certificate configured: plaintext on loopback only",
                    LOG_STR("grpc_addr", cfg.grpc_addr), LOG_STR("http_addr", cfg.http_addr));
        else
            SVC_LOG(SVC_LOG_WARN,
                    "no TLS certificate configured: both ports speak plaintext, API keys and data travel in clear",
                    LOG_STR("fix", "set --tls-cert and --tls-key (NEXADB_TLS_CERT, NEXADB_TLS_KEY)"));
    } else
        SVC_LOG(SVC_LOG_INFO, "TLS on both ports", LOG_STR("cert", cfg.tls_cert),
                LOG_BOOL("client_certificates_required", svc_tls_mutual(app.tls)));
    if ((st = svc_dispatch_init(&msg)) != NDB_OK)
        return fail("method table does not match the protos", st, &msg);
    if ((st = svc_metrics_init(&msg)) != NDB_OK)
        return fail("cannot set up metrics", st, &msg);

    /* change streams run on threads of their own, one each (h_watch.c) */
    if ((st = svc_pool_start(cfg.max_watches, (size_t)cfg.max_watches, &app.streams, &msg)) != NDB_OK)
        return fail("cannot start the change streams' threads", st, &msg);
    svc_grpc *grpc = NULL;
    int grpc_port = 0;
    if ((st = svc_grpc_start(&app, &grpc, &grpc_port, &msg)) != NDB_OK)
        return fail("cannot start the gRPC server", st, &msg);
    SVC_LOG(SVC_LOG_INFO, "gRPC listening", LOG_STR("addr", cfg.grpc_addr), LOG_INT("port", grpc_port));
    svc_rest *rest = NULL;
    int http_port = 0;
    if ((st = svc_rest_start(&app, &rest, &http_port, &msg)) != NDB_OK) {
        svc_grpc_stop(grpc, 0);
        return fail("cannot start the HTTP server", st, &msg);
    }
    SVC_LOG(SVC_LOG_INFO, "HTTP listening", LOG_STR("addr", cfg.http_addr), LOG_INT("port", http_port));

    /* gRPC answers health checks (NOT_SERVING) while the WAL replays. */
    bool cluster = cfg.node_id != 0 || cfg.peers[0] != '\0';
    char state[4200];
    snprintf(state, sizeof state, "%s", cfg.data_dir);
    if (cluster && (cfg.node_id == 0 || cfg.peers[0] == '\0')) {
        svc_grpc_stop(grpc, 0);
        ndb_errmsg_set(&msg, NDB_EINVAL, "cluster mode needs both --node-id and --peers");
        return fail("cannot start", NDB_EINVAL, &msg);
    }
    if ((cluster && (st = svc_cluster_dirs(&cfg, state, sizeof state, &msg)) != NDB_OK) ||
        (st = svc_engines_open(&app, state, cluster, max_open_tables, &msg)) != NDB_OK ||
        (cluster && (st = svc_cluster_start(&app, grpc_port, &msg)) != NDB_OK)) {
        svc_grpc_stop(grpc, 0);
        svc_engines_close(&app);
        return fail("cannot open the data", st, &msg);
    }
    /* a disk that is full now still serves reads: readiness says why it is NOT_SERVING */
    svc_periodic *watch = NULL, *ttl = NULL, *trim = NULL;
    if ((st = svc_storage_watch_start(&app, &watch, &msg)) != NDB_OK ||
        (st = svc_ttl_start(&app, &ttl, &msg)) != NDB_OK ||
        (st = svc_change_log_start(&app, &trim, &msg)) != NDB_OK) {
        svc_periodic_stop(ttl);
        svc_periodic_stop(watch);
        svc_grpc_stop(grpc, 0);
        ndb_cluster_close(app.cluster);
        svc_engines_close(&app);
        return fail("cannot start the background threads", st, &msg);
    }
    svc_app_set_state(&app, SVC_SERVING);
    SVC_LOG(SVC_LOG_INFO, "nexadb-server ready", LOG_STR("version", svc_version), LOG_STR("revision", svc_revision), LOG_STR("data_dir", cfg.data_dir),
            LOG_INT("grpc_port", grpc_port), LOG_INT("api_keys", svc_auth_count(app.auth)));

    /* Serve until SIGTERM/SIGINT; SIGHUP reloads the TLS files, which are also
     * checked for changes every two seconds. */
    int sig = 0;
    for (;;) {
        struct timespec poll = {.tv_sec = 2};
        sig = sigtimedwait(&sigs, NULL, &poll);
        if (sig == SIGTERM || sig == SIGINT)
            break;
        if (sig == SIGHUP && app.tls != NULL) {
            if ((st = svc_tls_reload(app.tls, &msg)) != NDB_OK)
                SVC_LOG(SVC_LOG_ERROR, "SIGHUP: cannot load the TLS files; still using the previous ones",
                        LOG_STR("error", msg.text));
            else
                SVC_LOG(SVC_LOG_INFO, "SIGHUP: TLS files reloaded; new connections use them",
                        LOG_INT("generation", svc_tls_get(app.tls)->gen));
        } else if (sig == SIGHUP) {
            SVC_LOG(SVC_LOG_INFO, "SIGHUP: nothing to reload (no TLS certificate configured)");
        } else if (app.tls != NULL) {
            svc_tls_poll(app.tls);
        }
    }
    SVC_LOG(SVC_LOG_INFO, "shutting down", LOG_STR("signal", sig == SIGTERM ? "SIGTERM" : "SIGINT"),
            LOG_INT("grace_seconds", cfg.shutdown_grace_s));
    svc_app_set_state(&app, SVC_DRAINING);
    svc_periodic_stop(trim);
    svc_periodic_stop(ttl); /* a pass in progress finishes its batch */
    svc_periodic_stop(watch); /* before the gRPC server it tells of changes goes */
    svc_rest_quiesce(rest); /* no new HTTP connections; open ones finish their requests */
    svc_grpc_stop(grpc, cfg.shutdown_grace_s);
    svc_rest_stop(rest);
    ndb_cluster_close(app.cluster); /* hands leadership over first; the applier stops before the engines close */
    app.cluster = NULL;
    svc_forward_close(&app);
    svc_pool_stop(app.streams); /* the change streams saw their calls end */
    svc_engines_close(&app); /* fsyncs the WAL */
    svc_auth_free(app.auth);
    svc_tls_free(app.tls);
    SVC_LOG(SVC_LOG_INFO, "stopped");
    return 0;
}
