#include "conn_gate.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "log.h"

/* A sweep of a port's set walks every counted descriptor; at most one per this interval. */
#define SWEEP_EVERY_NS (50 * 1000000LL)
/* Refusals are logged the first time, then at most once per this interval. */
#define LOG_EVERY_NS (10 * 1000000000LL)

/* The connections open on one capped port: one bit per descriptor number below cfg.limit. */
typedef struct port_set {
    int port;
    uint64_t *set;
    uint64_t open; /* bits set */
    int64_t last_sweep_ns;
} port_set;

static struct {
    _Atomic bool armed;
    svc_gate_config cfg;
    pthread_mutex_t mu; /* guards what follows, but for the slots' port and set once published */
    int spare;          /* /dev/null, given up to refuse a connection at EMFILE; -1 when lost */
    port_set ports[SVC_GATE_PORTS];
    _Atomic int n_ports;
} gate = {.mu = PTHREAD_MUTEX_INITIALIZER, .spare = -1};

static _Atomic uint64_t refused_reserve, refused_cap;
static _Atomic int64_t last_log_ns = -LOG_EVERY_NS;

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

ndb_status svc_gate_configure(const svc_gate_config *cfg, ndb_errmsg *msg)
{
    int spare = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (spare < 0)
        return ndb_errmsg_set(msg, NDB_EIO, "/dev/null: %s (the spare descriptor for refusing connections)",
                              strerror(errno));
    pthread_mutex_lock(&gate.mu);
    gate.cfg = *cfg;
    gate.spare = spare;
    pthread_mutex_unlock(&gate.mu);
    atomic_store_explicit(&gate.armed, true, memory_order_release);
    return NDB_OK;
}

ndb_status svc_gate_watch(int port, ndb_errmsg *msg)
{
    if (!atomic_load_explicit(&gate.armed, memory_order_acquire))
        return ndb_errmsg_set(msg, NDB_EINVAL, "cannot cap connections on port %d: no descriptor budget configured",
                              port);
    pthread_mutex_lock(&gate.mu);
    int n = atomic_load(&gate.n_ports);
    uint64_t *set = n < SVC_GATE_PORTS ? calloc(((size_t)gate.cfg.limit + 63) / 64, sizeof *set) : NULL;
    if (set != NULL) {
        gate.ports[n] = (port_set){.port = port, .set = set};
        atomic_store(&gate.n_ports, n + 1); /* published after its slot is filled */
    }
    pthread_mutex_unlock(&gate.mu);
    if (set == NULL)
        return ndb_errmsg_set(msg, n < SVC_GATE_PORTS ? NDB_ENOMEM : NDB_ELIMIT, "cannot cap connections on port %d (%s)",
                              port, n < SVC_GATE_PORTS ? "out of memory" : "too many ports");
    return NDB_OK;
}

/* Counts a refusal and logs it, the first time and then at most once per LOG_EVERY_NS. */
static void refused(_Atomic uint64_t *counter)
{
    atomic_fetch_add(counter, 1);
    int64_t now = now_ns(), last = atomic_load(&last_log_ns);
    if (now - last < LOG_EVERY_NS || !atomic_compare_exchange_strong(&last_log_ns, &last, now))
        return;
    SVC_LOG(SVC_LOG_WARN, "refusing new connections: descriptors or the connection cap are exhausted",
            LOG_INT("refused_for_descriptor_reserve", (int64_t)atomic_load(&refused_reserve)),
            LOG_INT("refused_for_max_connections", (int64_t)atomic_load(&refused_cap)),
            LOG_INT("max_connections_per_port", gate.cfg.max_connections), LOG_INT("descriptor_limit", gate.cfg.limit),
            LOG_INT("reserve", gate.cfg.reserve));
}

/* The local port of socket fd, or -1 when fd is not an IP socket. */
static int local_port(int fd)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    if (getsockname(fd, (struct sockaddr *)&ss, &len) != 0)
        return -1;
    if (ss.ss_family == AF_INET)
        return ntohs(((struct sockaddr_in *)&ss)->sin_port);
    if (ss.ss_family == AF_INET6)
        return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
    return -1;
}

/* The capped port listening socket lfd belongs to, or NULL. */
static port_set *port_of(int lfd)
{
    int port = local_port(lfd), n = atomic_load(&gate.n_ports);
    for (int i = 0; i < n; i++)
        if (gate.ports[i].port == port)
            return &gate.ports[i];
    return NULL;
}

static bool bit(const uint64_t *set, int i) { return (set[i / 64] >> (i % 64)) & 1; }

/* Clears the numbers of connections closed since: no longer a socket on p's port. Caller
 * holds gate.mu. */
static void sweep_locked(port_set *p)
{
    int n = gate.cfg.limit;
    for (int w = 0; w < (n + 63) / 64; w++) {
        for (uint64_t bits = p->set[w]; bits != 0; bits &= bits - 1) {
            int i = w * 64 + __builtin_ctzll(bits);
            if (local_port(i) != p->port) {
                p->set[w] &= ~(1ull << (i % 64));
                p->open--;
            }
        }
    }
}

/* Whether connection fd may be handed on from p's listener; counts it if so. */
static bool admit(port_set *p, int fd)
{
    pthread_mutex_lock(&gate.mu);
    bool ok = true;
    if (!bit(p->set, fd)) { /* a set bit: that number's previous connection has closed */
        if (p->open >= (uint64_t)gate.cfg.max_connections) {
            int64_t now = now_ns();
            if (now - p->last_sweep_ns >= SWEEP_EVERY_NS) {
                p->last_sweep_ns = now;
                sweep_locked(p);
            }
        }
        ok = p->open < (uint64_t)gate.cfg.max_connections;
        if (ok) {
            p->set[fd / 64] |= 1ull << (fd % 64);
            p->open++;
        }
    }
    pthread_mutex_unlock(&gate.mu);
    return ok;
}

/* Out of descriptors: gives up the spare to accept one pending connection and close it,
 * then takes the spare back. False when there is no spare (or no connection was pending). */
static bool refuse_with_spare(int lfd)
{
    pthread_mutex_lock(&gate.mu);
    bool done = false;
    if (gate.spare >= 0) {
        close(gate.spare);
        int fd = (int)syscall(SYS_accept4, lfd, NULL, NULL, SOCK_CLOEXEC);
        if (fd >= 0) {
            close(fd);
            done = true;
        }
        gate.spare = open("/dev/null", O_RDONLY | O_CLOEXEC); /* -1 when another thread took the number */
    }
    pthread_mutex_unlock(&gate.mu);
    if (done)
        refused(&refused_reserve);
    return done;
}

/* Every accept4 in the process: libgrpc's and libmicrohttpd's listeners (conn_gate.h). */
int accept4(int lfd, struct sockaddr *addr, socklen_t *addrlen, int flags)
{
    if (!atomic_load_explicit(&gate.armed, memory_order_acquire))
        return (int)syscall(SYS_accept4, lfd, addr, addrlen, flags);
    socklen_t addr_room = addrlen != NULL ? *addrlen : 0;
    port_set *p = NULL;
    bool looked = false; /* whether p has been looked up: once a connection needs it */
    for (;;) {
        if (addrlen != NULL)
            *addrlen = addr_room;
        int fd = (int)syscall(SYS_accept4, lfd, addr, addrlen, flags);
        if (fd < 0) {
            if (errno != EMFILE && errno != ENFILE)
                return -1;
            if (!refuse_with_spare(lfd)) {
                errno = EAGAIN; /* the listener stays armed; a later connection retries */
                return -1;
            }
            continue;
        }
        if (fd >= gate.cfg.limit - gate.cfg.reserve) {
            close(fd);
            refused(&refused_reserve);
            continue;
        }
        if (!looked) {
            p = port_of(lfd);
            looked = true;
        }
        if (p != NULL && !admit(p, fd)) {
            close(fd);
            refused(&refused_cap);
            continue;
        }
        return fd;
    }
}
