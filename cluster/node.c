/*
 * node.c — one member of the cluster: Raft over libuv on its own thread,
 * proposals grouped into entries, read fences, status, leadership hand-over
 * and shutdown (ndb_cluster.h).
 *
 * Other threads talk to the loop through queues under mu and one uv_async
 * wake-up (the only libuv call that is safe off the loop). At each wake-up
 * the loop turns every queued proposal into as few entries as ENTRY_MAX
 * allows, so the commands proposed while the last entry was being written
 * share the next entry's disk write and round trip: group commit, as the
 * single node's WAL does it.
 */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>

#include "cluster_int.h"

#define MAX_GROUP_CMDS 4096

static int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

const char *ndb_cluster_role_name(ndb_cluster_role role)
{
    switch (role) {
    case NDB_CLUSTER_FOLLOWER: return "follower";
    case NDB_CLUSTER_CANDIDATE: return "candidate";
    case NDB_CLUSTER_LEADER: return "leader";
    case NDB_CLUSTER_UNAVAILABLE: break;
    }
    return "unavailable";
}

/* ------------------------------------------------------------ peers */

ndb_status ndb_cluster_parse_peers(const char *s, ndb_cluster_peer *out, size_t cap, size_t *n, ndb_errmsg *msg)
{
    *n = 0;
    const char *p = s;
    while (*p) {
        const char *end = strchr(p, ',');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        const char *eq = memchr(p, '=', len);
        if (eq == NULL || eq == p || (size_t)(eq - p) > 19)
            return ndb_errmsg_set(msg, NDB_EINVAL, "peer \"%.*s\": not id=host:port", (int)(len > 64 ? 64 : len), p);
        char idtxt[20];
        memcpy(idtxt, p, (size_t)(eq - p));
        idtxt[eq - p] = 0;
        char *idend;
        errno = 0;
        unsigned long long id = strtoull(idtxt, &idend, 10);
        if (*idend || errno || id == 0 || idtxt[0] == '-')
            return ndb_errmsg_set(msg, NDB_EINVAL, "peer id \"%s\": not a number from 1", idtxt);
        size_t alen = len - (size_t)(eq + 1 - p);
        const char *addr = eq + 1;
        const char *colon = memrchr(addr, ':', alen);
        if (alen == 0 || alen >= sizeof out->address || colon == NULL || colon == addr || colon == addr + alen - 1)
            return ndb_errmsg_set(msg, NDB_EINVAL, "peer %llu: address \"%.*s\" is not host:port", id,
                                  (int)(alen > 64 ? 64 : alen), addr);
        for (const char *c = colon + 1; c < addr + alen; c++)
            if (*c < '0' || *c > '9')
                return ndb_errmsg_set(msg, NDB_EINVAL, "peer %llu: bad port in \"%.*s\"", id, (int)alen, addr);
        if (*n == cap)
            return ndb_errmsg_set(msg, NDB_EINVAL, "more than %zu peers", cap);
        for (size_t i = 0; i < *n; i++) {
            if (out[i].id == id)
                return ndb_errmsg_set(msg, NDB_EINVAL, "peer id %llu given twice", id);
            if (strlen(out[i].address) == alen && memcmp(out[i].address, addr, alen) == 0)
                return ndb_errmsg_set(msg, NDB_EINVAL, "address %.*s given twice", (int)alen, addr);
        }
        out[*n].id = id;
        memcpy(out[*n].address, addr, alen);
        out[*n].address[alen] = 0;
        (*n)++;
        if (end == NULL)
            break;
        p = end + 1;
    }
    if (*n == 0)
        return ndb_errmsg_set(msg, NDB_EINVAL, "no peers given");
    return NDB_OK;
}

/* ------------------------------------------------------------ status */

const char *clu_client_address(const ndb_cluster *cl, uint64_t id)
{
    for (size_t i = 0; i < cl->nclients; i++)
        if (cl->clients[i].id == id)
            return cl->clients[i].address;
    return NULL;
}

/* The time ms from now, on cv's clock. */
static struct timespec deadline_in(unsigned ms)
{
    struct timespec dl;
    clock_gettime(CLOCK_REALTIME, &dl);
    dl.tv_sec += ms / 1000;
    dl.tv_nsec += (long)(ms % 1000) * 1000000;
    if (dl.tv_nsec >= 1000000000) {
        dl.tv_sec++;
        dl.tv_nsec -= 1000000000;
    }
    return dl;
}

static void on_announced(struct raft_apply *req, int status, void *result)
{
    (void)status; /* a leader that lost its term before this committed announces again when it next leads */
    (void)result;
    free(req);
}

/* Loop thread: a new leader's first entry names where clients reach it. */
static void announce(ndb_cluster *cl)
{
    const char *addr = cl->client_address;
    size_t alen = strlen(addr);
    if (alen == 0)
        return;
    size_t size = ENTRY_HEADER + entry_cmd_size(alen);
    struct raft_apply *req = calloc(1, sizeof *req);
    uint8_t *buf = raft_malloc(size);
    if (req == NULL || buf == NULL) {
        free(req);
        raft_free(buf);
        return;
    }
    entry_header h = {.proposer = cl->opt.id, .boot = cl->boot, .wall_ms = wall_ms(), .ncmd = 1,
                      .flags = ENTRY_ANNOUNCE};
    entry_put_header(buf, &h);
    size_t off = ENTRY_HEADER;
    entry_put_cmd(buf, &off, addr, alen);
    struct raft_buffer rb = {.base = buf, .len = size};
    if (raft_apply(&cl->raft, req, &rb, 1, on_announced) != 0)
        free(req); /* buf: see propose_queued */
}

/* Loop thread: copies Raft's state for other threads. */
static void refresh_status(ndb_cluster *cl)
{
    struct raft *r = &cl->raft;
    ndb_cluster_status s;
    memset(&s, 0, sizeof s);
    s.id = cl->opt.id;
    switch (raft_state(r)) {
    case RAFT_FOLLOWER: s.role = NDB_CLUSTER_FOLLOWER; break;
    case RAFT_CANDIDATE: s.role = NDB_CLUSTER_CANDIDATE; break;
    case RAFT_LEADER: s.role = NDB_CLUSTER_LEADER; break;
    default: s.role = NDB_CLUSTER_UNAVAILABLE; break;
    }
    s.term = raft_current_term(r);
    raft_id lid = 0;
    const char *laddr = NULL;
    raft_leader(r, &lid, &laddr);
    s.leader_id = lid;
    if (laddr != NULL)
        snprintf(s.leader_address, sizeof s.leader_address, "%s", laddr);
    s.commit_index = raft_commit_index(r);
    s.last_index = raft_last_index(r);
    bool leads = s.role == NDB_CLUSTER_LEADER;
    if (leads && !cl->led && raft_transferee(r) == 0 && !cl->stopping)
        announce(cl);
    cl->led = leads;
    for (unsigned i = 0; i < r->configuration.n && s.npeers < NDB_CLUSTER_MAX_PEERS; i++) {
        const struct raft_server *sv = &r->configuration.servers[i];
        s.peers[s.npeers].id = sv->id;
        snprintf(s.peers[s.npeers].address, sizeof s.peers[0].address, "%s", sv->address);
        s.peers[s.npeers].voter = sv->role == RAFT_VOTER;
        raft_index m = 0;
        if (s.role == NDB_CLUSTER_LEADER && raft_match_index(r, sv->id, &m) == 0)
            s.peers[s.npeers].match_index = m;
        s.npeers++;
    }
    raft_index raft_applied = raft_last_applied(r);
    pthread_mutex_lock(&cl->mu);
    /* Entries the applier never sees (barriers, configuration changes) count as applied once it has
     * caught up with every command before them, or a read-heavy node would look ever further behind. */
    if (cl->ahead == NULL && cl->applied >= cl->enqueued && raft_applied > cl->applied && !cl->apply_failed)
        cl->applied = raft_applied;
    const char *lc = lid ? clu_client_address(cl, lid) : NULL;
    if (lc != NULL)
        snprintf(s.leader_client_address, sizeof s.leader_client_address, "%s", lc);
    for (size_t i = 0; i < s.npeers; i++) {
        const char *pc = clu_client_address(cl, s.peers[i].id);
        if (pc != NULL)
            snprintf(s.peers[i].client_address, sizeof s.peers[i].client_address, "%s", pc);
    }
    s.applied_index = cl->applied;
    s.apply_failed = cl->apply_failed;
    memcpy(s.apply_error, cl->apply_error, sizeof s.apply_error);
    if (cl->closed)
        s.role = NDB_CLUSTER_UNAVAILABLE;
    if (strcmp(cl->status.leader_client_address, s.leader_client_address) != 0)
        pthread_cond_broadcast(&cl->cv); /* ndb_cluster_wait_leader */
    cl->status = s;
    pthread_mutex_unlock(&cl->mu);
}

static void on_tick(uv_timer_t *t) { refresh_status(t->data); }

void ndb_cluster_status_get(ndb_cluster *cl, ndb_cluster_status *out)
{
    pthread_mutex_lock(&cl->mu);
    *out = cl->status;
    out->applied_index = cl->applied; /* fresher than the last tick */
    out->apply_failed = cl->apply_failed;
    memcpy(out->apply_error, cl->apply_error, sizeof out->apply_error);
    pthread_mutex_unlock(&cl->mu);
}

bool ndb_cluster_wait_leader(ndb_cluster *cl, unsigned timeout_ms, ndb_cluster_status *out)
{
    struct timespec dl = deadline_in(timeout_ms);
    pthread_mutex_lock(&cl->mu);
    while (cl->status.leader_client_address[0] == '\0' && !cl->closed && !cl->close_req &&
           pthread_cond_timedwait(&cl->cv, &cl->mu, &dl) != ETIMEDOUT)
        ;
    pthread_mutex_unlock(&cl->mu);
    ndb_cluster_status_get(cl, out);
    return out->leader_client_address[0] != '\0';
}

/* ------------------------------------------------------- proposing */

/* Loop thread: the error for a write sent to a node that does not lead. */
static ndb_status not_leader(ndb_cluster *cl, ndb_errmsg *msg)
{
    raft_id lid = 0;
    const char *laddr = NULL;
    raft_leader(&cl->raft, &lid, &laddr);
    if (lid == 0 || laddr == NULL)
        return ndb_errmsg_set(msg, NDB_ENOTLEADER, "node %" PRIu64 " is not the leader and no leader is known yet "
                              "(an election is under way): try again", cl->opt.id);
    char where[300];
    pthread_mutex_lock(&cl->mu);
    const char *client = clu_client_address(cl, lid);
    if (client != NULL)
        snprintf(where, sizeof where, "%s", client);
    else
        snprintf(where, sizeof where, "%s (its Raft address)", laddr);
    pthread_mutex_unlock(&cl->mu);
    return ndb_errmsg_set(msg, NDB_ENOTLEADER, "node %" PRIu64 " is not the leader; the leader is node %llu at %s",
                          cl->opt.id, (unsigned long long)lid, where);
}

/* Under mu: fails a list of proposals. */
static void fail_props(prop *p, ndb_status st, const ndb_errmsg *m)
{
    for (; p != NULL; p = p->next) {
        p->st = st;
        p->msg = *m;
        prop_done(p);
    }
}

static void on_applied(struct raft_apply *req, int status, void *result)
{
    (void)result;
    group *g = req->data;
    ndb_cluster *cl = g->cl;
    pthread_mutex_lock(&cl->mu);
    if (status != 0 && g->props != NULL) { /* still unanswered: the applier has not run it */
        ndb_errmsg m;
        ndb_errmsg_set(&m, NDB_EUNKNOWN, "leadership changed before the write was confirmed (%s): it may or "
                       "may not have been applied", raft_strerror(status));
        fail_props(g->props, NDB_EUNKNOWN, &m);
        g->props = NULL;
        clu_group_unlink(cl, g);
    }
    clu_group_unref(g);
    pthread_mutex_unlock(&cl->mu);
}

/* Loop thread: proposes the queued commands in entries of at most ENTRY_MAX
 * bytes and MAX_GROUP_CMDS commands. */
static void propose_queued(ndb_cluster *cl, prop *q)
{
    while (q != NULL) {
        ndb_errmsg m;
        if (raft_state(&cl->raft) != RAFT_LEADER || raft_transferee(&cl->raft) != 0) {
            not_leader(cl, &m);
            pthread_mutex_lock(&cl->mu);
            fail_props(q, NDB_ENOTLEADER, &m);
            pthread_mutex_unlock(&cl->mu);
            return;
        }
        size_t size = ENTRY_HEADER;
        uint32_t n = 0;
        prop *last = q;
        for (prop *p = q; p != NULL && n < MAX_GROUP_CMDS; p = p->next) {
            if (n > 0 && size + entry_cmd_size(p->len) > ENTRY_MAX)
                break;
            size += entry_cmd_size(p->len);
            n++;
            last = p;
        }
        prop *rest = last->next;
        last->next = NULL;
        group *g = calloc(1, sizeof *g);
        uint8_t *buf = raft_malloc(size);
        if (g == NULL || buf == NULL) {
            free(g);
            raft_free(buf);
            ndb_errmsg_set(&m, NDB_ENOMEM, "out of memory making an entry of %zu bytes", size);
            pthread_mutex_lock(&cl->mu);
            fail_props(q, NDB_ENOMEM, &m);
            pthread_mutex_unlock(&cl->mu);
            q = rest;
            continue;
        }
        entry_header h = {.proposer = cl->opt.id, .boot = cl->boot, .group = ++cl->next_group,
                          .wall_ms = wall_ms(), .ncmd = n};
        entry_put_header(buf, &h);
        size_t off = ENTRY_HEADER;
        for (prop *p = q; p != NULL; p = p->next)
            entry_put_cmd(buf, &off, p->data, p->len);
        g->cl = cl;
        g->number = h.group;
        g->props = q;
        g->refs = 2;
        g->req.data = g;
        pthread_mutex_lock(&cl->mu);
        g->next = cl->inflight;
        cl->inflight = g;
        pthread_mutex_unlock(&cl->mu);
        struct raft_buffer rb = {.base = buf, .len = size};
        int rv = raft_apply(&cl->raft, &g->req, &rb, 1, on_applied);
        if (rv != 0) {
            /* buf is not freed here: libraft 0.22.1 has already released it
             * when its own append refused the entry, and the refusals that
             * come before that (not leading, a hand-over under way) are
             * ruled out by the checks above. */
            if (rv == RAFT_NOTLEADER)
                not_leader(cl, &m);
            else
                ndb_errmsg_set(&m, NDB_EIO, "raft_apply: %s", raft_errmsg(&cl->raft));
            pthread_mutex_lock(&cl->mu);
            fail_props(g->props, rv == RAFT_NOTLEADER ? NDB_ENOTLEADER : NDB_EIO, &m);
            g->props = NULL;
            clu_group_unlink(cl, g);
            clu_group_unref(g); /* Raft's reference: it will not call back */
            pthread_mutex_unlock(&cl->mu);
        }
        q = rest;
    }
}

/* A barrier and the readers it serves. */
typedef struct barrier {
    struct raft_barrier req;
    ndb_cluster *cl;
    fence *fences;
} barrier;

static void on_barrier(struct raft_barrier *req, int status)
{
    barrier *b = req->data;
    ndb_cluster *cl = b->cl;
    pthread_mutex_lock(&cl->mu);
    for (fence *f = b->fences; f != NULL; f = f->next) {
        if (status == 0) {
            f->target = cl->enqueued; /* every command before the barrier has been handed over */
            f->st = NDB_OK;
        } else {
            f->st = ndb_errmsg_set(&f->msg, NDB_ENOTLEADER, "leadership changed during the read: %s",
                                   raft_strerror(status));
        }
        f->done = true;
    }
    pthread_cond_broadcast(&cl->cv);
    pthread_mutex_unlock(&cl->mu);
    free(b);
}

static void fence_queued(ndb_cluster *cl, fence *fs)
{
    if (fs == NULL)
        return;
    ndb_errmsg m;
    ndb_status st = NDB_OK;
    barrier *b = NULL;
    if (raft_state(&cl->raft) != RAFT_LEADER || raft_transferee(&cl->raft) != 0)
        st = not_leader(cl, &m);
    else if ((b = calloc(1, sizeof *b)) == NULL)
        st = ndb_errmsg_set(&m, NDB_ENOMEM, "out of memory for a read barrier");
    if (st == NDB_OK) {
        b->cl = cl;
        b->fences = fs;
        b->req.data = b;
        int rv = raft_barrier(&cl->raft, &b->req, on_barrier);
        if (rv != 0) {
            free(b);
            st = rv == RAFT_NOTLEADER ? not_leader(cl, &m)
                                      : ndb_errmsg_set(&m, NDB_EIO, "raft_barrier: %s", raft_errmsg(&cl->raft));
        }
    }
    if (st != NDB_OK) {
        pthread_mutex_lock(&cl->mu);
        for (fence *f = fs; f != NULL; f = f->next) {
            f->st = st;
            f->msg = m;
            f->done = true;
        }
        pthread_cond_broadcast(&cl->cv);
        pthread_mutex_unlock(&cl->mu);
    }
}

/* -------------------------------------------------------- membership */

static void change_done(change *c, ndb_status st, const char *fmt, const char *detail)
{
    ndb_cluster *cl = c->cl;
    pthread_mutex_lock(&cl->mu);
    c->st = st;
    if (st != NDB_OK)
        ndb_errmsg_set(&c->msg, st, fmt, detail);
    c->done = true;
    pthread_cond_broadcast(&cl->cv);
    pthread_mutex_unlock(&cl->mu);
}

static void on_changed(struct raft_change *req, int status)
{
    change *c = (change *)req;
    if (status != 0) {
        change_done(c, NDB_EUNKNOWN, "the membership change did not complete: %s", raft_strerror(status));
        return;
    }
    if (c->add && !c->promoting) { /* added as a spare: now a voter, once caught up */
        c->promoting = true;
        int rv = raft_assign(&c->cl->raft, &c->req, c->id, RAFT_VOTER, on_changed);
        if (rv != 0)
            change_done(c, rv == RAFT_NOTLEADER ? NDB_ENOTLEADER : NDB_EIO, "promoting the node to voter: %s",
                        raft_strerror(rv));
        return;
    }
    change_done(c, NDB_OK, "%s", "");
}

/* Loop thread: starts the queued changes (each waits in its caller). */
static void change_queued(ndb_cluster *cl, change *cs)
{
    while (cs != NULL) {
        change *c = cs;
        cs = cs->next;
        if (raft_state(&cl->raft) != RAFT_LEADER || raft_transferee(&cl->raft) != 0) {
            ndb_errmsg m;
            not_leader(cl, &m);
            change_done(c, NDB_ENOTLEADER, "%s", m.text);
            continue;
        }
        int rv = c->add ? raft_add(&cl->raft, &c->req, c->id, c->address, on_changed)
                        : raft_remove(&cl->raft, &c->req, c->id, on_changed);
        if (rv == RAFT_CANTCHANGE)
            change_done(c, NDB_EBUSY, "%s", "another membership change is under way: try again when it ends");
        else if (rv == RAFT_DUPLICATEID || rv == RAFT_DUPLICATEADDRESS)
            change_done(c, NDB_EEXIST, "%s", c->add ? "that id or address is already a member" : "");
        else if (rv == RAFT_BADID)
            change_done(c, NDB_ENOTFOUND, "%s", "no member has that id");
        else if (rv != 0)
            change_done(c, NDB_EIO, "the membership change was refused: %s", raft_strerror(rv));
    }
}

static ndb_status change_wait(ndb_cluster *cl, change *c, ndb_errmsg *msg)
{
    c->cl = cl;
    pthread_mutex_lock(&cl->mu);
    if (cl->closed || cl->close_req) {
        pthread_mutex_unlock(&cl->mu);
        return ndb_errmsg_set(msg, NDB_ECLOSED, "the node is shutting down");
    }
    c->next = cl->changes;
    cl->changes = c;
    pthread_mutex_unlock(&cl->mu);
    uv_async_send(&cl->wake);
    pthread_mutex_lock(&cl->mu);
    while (!c->done)
        pthread_cond_wait(&cl->cv, &cl->mu);
    pthread_mutex_unlock(&cl->mu);
    if (c->st != NDB_OK && msg != NULL)
        *msg = c->msg;
    return c->st;
}

ndb_status ndb_cluster_add(ndb_cluster *cl, uint64_t id, const char *address, ndb_errmsg *msg)
{
    ndb_cluster_peer p;
    size_t n;
    char spec[300];
    if (id == 0 || address == NULL || strlen(address) >= sizeof p.address)
        return ndb_errmsg_set(msg, NDB_EINVAL, "a node needs an id from 1 and a Raft address host:port");
    snprintf(spec, sizeof spec, "%llu=%s", (unsigned long long)id, address);
    ndb_status st = ndb_cluster_parse_peers(spec, &p, 1, &n, msg); /* the same checks as --peers */
    if (st != NDB_OK)
        return st;
    change *c = calloc(1, sizeof *c); /* Raft may hold the request until it calls back */
    if (c == NULL)
        return ndb_errmsg_set(msg, NDB_ENOMEM, "out of memory");
    c->add = true;
    c->id = id;
    memcpy(c->address, p.address, sizeof c->address);
    st = change_wait(cl, c, msg);
    free(c);
    return st;
}

ndb_status ndb_cluster_remove(ndb_cluster *cl, uint64_t id, ndb_errmsg *msg)
{
    change *c = calloc(1, sizeof *c);
    if (c == NULL)
        return ndb_errmsg_set(msg, NDB_ENOMEM, "out of memory");
    c->id = id;
    ndb_status st = change_wait(cl, c, msg);
    free(c);
    return st;
}

/* ---------------------------------------------------------- shutdown */

static void on_handle_closed(uv_handle_t *h) { (void)h; }

static void on_raft_closed(struct raft *r)
{
    ndb_cluster *cl = r->data;
    raft_uv_close(&cl->io);
    raft_uv_tcp_close(&cl->transport);
    uv_close((uv_handle_t *)&cl->wake, on_handle_closed);
    uv_close((uv_handle_t *)&cl->tick, on_handle_closed);
}

/* Under mu, closing: every proposal, fence and membership change still
 * waiting gets NDB_ECLOSED; with entries, also the proposals of entries in
 * flight (once Raft is gone: until then it tells them their outcome). */
static void fail_waiting(ndb_cluster *cl, bool entries)
{
    ndb_errmsg m;
    ndb_errmsg_set(&m, NDB_ECLOSED, "the node is shutting down");
    fail_props(cl->queue, NDB_ECLOSED, &m);
    cl->queue = NULL;
    cl->queue_tail = &cl->queue;
    while (entries && cl->inflight != NULL) {
        group *g = cl->inflight;
        fail_props(g->props, NDB_ECLOSED, &m);
        g->props = NULL;
        clu_group_unlink(cl, g);
    }
    for (fence *f = cl->fences; f != NULL; f = f->next) {
        f->st = NDB_ECLOSED;
        f->msg = m;
        f->done = true;
    }
    cl->fences = NULL;
    for (change *c = cl->changes; c != NULL; c = c->next) {
        c->st = NDB_ECLOSED;
        c->msg = m;
        c->done = true;
    }
    cl->changes = NULL;
    pthread_cond_broadcast(&cl->cv);
}

static void stop_raft(ndb_cluster *cl)
{
    if (cl->stopping)
        return;
    cl->stopping = true;
    pthread_mutex_lock(&cl->mu);
    cl->closed = true;
    fail_waiting(cl, false);
    pthread_mutex_unlock(&cl->mu);
    refresh_status(cl);
    uv_timer_stop(&cl->tick); /* Raft's state is not read once it is closing */
    raft_close(&cl->raft, on_raft_closed);
}

static void on_transferred(struct raft_transfer *req)
{
    ndb_cluster *cl = req->data;
    stop_raft(cl);
}

/* A hand-over whose leader stepped down meanwhile never calls back: the
 * tick, which runs on until Raft closes, stops waiting for it. */
static void on_transfer_tick(uv_timer_t *t)
{
    ndb_cluster *cl = t->data;
    refresh_status(cl);
    if (uv_now(&cl->loop) >= cl->transfer_deadline)
        stop_raft(cl);
}

static void on_wake(uv_async_t *a)
{
    ndb_cluster *cl = a->data;
    pthread_mutex_lock(&cl->mu);
    if (cl->closed) {
        pthread_mutex_unlock(&cl->mu);
        return;
    }
    prop *q = cl->queue;
    cl->queue = NULL;
    cl->queue_tail = &cl->queue;
    fence *fs = cl->fences;
    cl->fences = NULL;
    change *cs = cl->changes;
    cl->changes = NULL;
    bool closing = cl->close_req;
    pthread_mutex_unlock(&cl->mu);
    propose_queued(cl, q);
    fence_queued(cl, fs);
    change_queued(cl, cs);
    if (closing) {
        pthread_mutex_lock(&cl->mu);
        cl->closed = true; /* nothing more is proposed; the hand-over below may take a while */
        pthread_mutex_unlock(&cl->mu);
        cl->transfer.data = cl;
        if (raft_state(&cl->raft) == RAFT_LEADER && cl->raft.configuration.n > 1 &&
            raft_transfer(&cl->raft, &cl->transfer, 0, on_transferred) == 0) {
            unsigned election = cl->opt.election_ms ? cl->opt.election_ms : 1000;
            cl->transfer_deadline = uv_now(&cl->loop) + 2 * election;
            uv_timer_stop(&cl->tick);
            if (uv_timer_start(&cl->tick, on_transfer_tick, 50, 50) == 0)
                return;
        }
        stop_raft(cl);
    }
}

/* ------------------------------------------------------------ start */

static void set_started(ndb_cluster *cl, int v)
{
    pthread_mutex_lock(&cl->mu);
    cl->started = v;
    pthread_cond_broadcast(&cl->cv);
    pthread_mutex_unlock(&cl->mu);
}

/* Under mu: waits until applied reaches index, or the deadline (0: none). */
static ndb_status wait_applied_locked(ndb_cluster *cl, uint64_t index, const struct timespec *deadline,
                                      ndb_errmsg *msg)
{
    while (cl->applied < index && !cl->apply_failed && !cl->apply_stop) {
        if (deadline == NULL) {
            pthread_cond_wait(&cl->cv, &cl->mu);
        } else if (pthread_cond_timedwait(&cl->cv, &cl->mu, deadline) == ETIMEDOUT && cl->applied < index) {
            return ndb_errmsg_set(msg, NDB_ETIMEDOUT, "this node has applied up to %llu, not yet %llu",
                                  (unsigned long long)cl->applied, (unsigned long long)index);
        }
    }
    if (cl->applied >= index)
        return NDB_OK;
    if (cl->apply_failed)
        return ndb_errmsg_set(msg, NDB_EPOISONED, "this node stopped applying the log: %s", cl->apply_error);
    return ndb_errmsg_set(msg, NDB_ECLOSED, "the node is shutting down");
}

/* A snapshot as Raft stores and sends it: its index (8 bytes, little-endian),
 * the length of the caller's description (4), the description, zeros to a
 * multiple of 8. */
#define SNAP_HEAD 12
#define SNAP_MAX (64u << 10)
/* How long the loop thread waits for the applier to catch up before a snapshot: well inside an
 * election timeout, as heartbeats wait too. */
#define SNAP_WAIT_MS 200

static int fsm_snapshot(struct raft_fsm *fsm, struct raft_buffer *bufs[], unsigned *n)
{
    ndb_cluster *cl = fsm->data;
    uint64_t index = raft_last_applied(&cl->raft);
    /* Raft asks as soon as it has handed over the entry that reached the threshold, which the
     * applier has seldom run yet: wait for it a while (this thread hands over nothing meanwhile) */
    struct timespec dl = deadline_in(SNAP_WAIT_MS);
    pthread_mutex_lock(&cl->mu);
    wait_applied_locked(cl, cl->enqueued, &dl, NULL);
    bool idle = cl->ahead == NULL && cl->applied >= cl->enqueued && !cl->apply_failed;
    pthread_mutex_unlock(&cl->mu);
    if (!idle)
        return RAFT_BUSY; /* a long command runs: Raft tries again after a later entry */
    void *desc = NULL;
    size_t dlen = 0;
    ndb_errmsg m = {{0}};
    if (cl->opt.snapshot(cl->opt.apply_arg, index, &desc, &dlen, &m) != NDB_OK) {
        snprintf(cl->snapshot_error, sizeof cl->snapshot_error, "%s", m.text);
        return RAFT_IOERR;
    }
    size_t len = (SNAP_HEAD + dlen + 7) & ~(size_t)7;
    struct raft_buffer *b = raft_malloc(sizeof *b);
    uint8_t *p = dlen <= SNAP_MAX ? raft_calloc(1, len) : NULL;
    if (b == NULL || p == NULL) {
        free(desc);
        raft_free(b);
        raft_free(p);
        return RAFT_NOMEM;
    }
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(index >> (8 * i));
    for (int i = 0; i < 4; i++)
        p[8 + i] = (uint8_t)(dlen >> (8 * i));
    memcpy(p + SNAP_HEAD, desc, dlen);
    free(desc);
    b->base = p;
    b->len = len;
    *bufs = b;
    *n = 1;
    cl->snapshot_error[0] = 0;
    return 0;
}

/* At start (this node's last snapshot) or from the leader: handed to the
 * applier, in order with the entries. */
static int fsm_restore(struct raft_fsm *fsm, struct raft_buffer *buf)
{
    ndb_cluster *cl = fsm->data;
    const uint8_t *p = buf->base;
    if (buf->len < SNAP_HEAD)
        return RAFT_MALFORMED;
    uint64_t index = 0;
    uint32_t dlen = 0;
    for (int i = 7; i >= 0; i--)
        index = index << 8 | p[i];
    for (int i = 3; i >= 0; i--)
        dlen = dlen << 8 | p[8 + i];
    if (dlen > buf->len - SNAP_HEAD)
        return RAFT_MALFORMED;
    aentry *e = malloc(sizeof *e);
    uint8_t *copy = malloc(dlen ? dlen : 1);
    if (e == NULL || copy == NULL) {
        free(e);
        free(copy);
        return RAFT_NOMEM;
    }
    memcpy(copy, p + SNAP_HEAD, dlen);
    *e = (aentry){.restore = true, .index = index, .buf = copy, .len = dlen};
    pthread_mutex_lock(&cl->mu);
    *cl->atail = e;
    cl->atail = &e->next;
    if (index > cl->enqueued)
        cl->enqueued = index;
    pthread_cond_broadcast(&cl->cv);
    pthread_mutex_unlock(&cl->mu);
    raft_free(buf->base); /* ours once restore succeeds */
    return 0;
}

/* What start() has set up, so a failure part-way tears down just that. */
enum { UP_LOOP = 1, UP_WAKE = 2, UP_TICK = 4, UP_TCP = 8, UP_IO = 16, UP_RAFT = 32 };

/* Sets everything up on the loop thread; 0, or -1 with start_msg set. */
static int start(ndb_cluster *cl, unsigned *up)
{
    ndb_errmsg *m = &cl->start_msg;
    int rv = uv_loop_init(&cl->loop);
    if (rv != 0) {
        ndb_errmsg_set(m, NDB_EIO, "uv_loop_init: %s", uv_strerror(rv));
        return -1;
    }
    *up |= UP_LOOP;
    cl->wake.data = cl;
    cl->tick.data = cl;
    if ((rv = uv_async_init(&cl->loop, &cl->wake, on_wake)) != 0) {
        ndb_errmsg_set(m, NDB_EIO, "uv_async_init: %s", uv_strerror(rv));
        return -1;
    }
    *up |= UP_WAKE;
    if ((rv = uv_timer_init(&cl->loop, &cl->tick)) != 0) {
        ndb_errmsg_set(m, NDB_EIO, "uv_timer_init: %s", uv_strerror(rv));
        return -1;
    }
    *up |= UP_TICK;
    cl->transport.version = 1; /* libraft 0.22 requires it to be set */
    cl->transport.data = NULL;
    if ((rv = raft_uv_tcp_init(&cl->transport, &cl->loop)) != 0) {
        ndb_errmsg_set(m, NDB_EIO, "raft_uv_tcp_init: %s", raft_strerror(rv));
        return -1;
    }
    *up |= UP_TCP;
    if (cl->bind_address[0] && (rv = raft_uv_tcp_set_bind_address(&cl->transport, cl->bind_address)) != 0) {
        ndb_errmsg_set(m, NDB_EINVAL, "the Raft bind address %.100s: %s", cl->bind_address, raft_strerror(rv));
        return -1;
    }
    if ((rv = raft_uv_init(&cl->io, &cl->loop, cl->dir, &cl->transport)) != 0) {
        ndb_errmsg_set(m, NDB_EIO, "raft log in %.100s: %s", cl->dir, cl->io.errmsg);
        return -1;
    }
    *up |= UP_IO;
    cl->fsm.version = 1;
    cl->fsm.data = cl;
    cl->fsm.apply = clu_fsm_apply;
    cl->fsm.snapshot = fsm_snapshot;
    cl->fsm.restore = fsm_restore;
    if ((rv = raft_init(&cl->raft, &cl->io, &cl->fsm, cl->opt.id, cl->address)) != 0) {
        ndb_errmsg_set(m, NDB_EIO, "raft_init: %s", raft_errmsg(&cl->raft));
        return -1;
    }
    *up |= UP_RAFT;
    cl->raft.data = cl;
    struct raft_configuration conf;
    raft_configuration_init(&conf);
    for (size_t i = 0; i < cl->opt.npeers && rv == 0; i++)
        rv = raft_configuration_add(&conf, cl->peers[i].id, cl->peers[i].address, RAFT_VOTER);
    if (rv == 0) {
        rv = raft_bootstrap(&cl->raft, &conf); /* only a new log takes it */
        if (rv == RAFT_CANTBOOTSTRAP)
            rv = 0;
    }
    raft_configuration_close(&conf);
    if (rv != 0) {
        ndb_errmsg_set(m, NDB_EIO, "bootstrapping the configuration: %s", raft_errmsg(&cl->raft));
        return -1;
    }
    raft_set_heartbeat_timeout(&cl->raft, cl->opt.heartbeat_ms ? cl->opt.heartbeat_ms : 100);
    raft_set_election_timeout(&cl->raft, cl->opt.election_ms ? cl->opt.election_ms : 1000);
    raft_set_pre_vote(&cl->raft, true); /* a node back from a partition does not depose a working leader */
    if (cl->opt.snapshot != NULL) {
        raft_set_snapshot_threshold(&cl->raft, cl->opt.snapshot_entries ? cl->opt.snapshot_entries : 4096);
        raft_set_snapshot_trailing(&cl->raft, cl->opt.snapshot_trailing ? cl->opt.snapshot_trailing : 512);
    } else {
        raft_set_snapshot_threshold(&cl->raft, UINT_MAX);
    }
    if ((rv = raft_start(&cl->raft)) != 0) {
        ndb_errmsg_set(m, NDB_EIO, "starting Raft: %s", raft_errmsg(&cl->raft));
        return -1;
    }
    if ((rv = uv_timer_start(&cl->tick, on_tick, 0, 50)) != 0) {
        ndb_errmsg_set(m, NDB_EIO, "uv_timer_start: %s", uv_strerror(rv));
        return -1;
    }
    return 0;
}

static void *loop_main(void *arg)
{
    ndb_cluster *cl = arg;
    unsigned up = 0;
    if (start(cl, &up) != 0) {
        if (up & UP_RAFT) {
            raft_close(&cl->raft, on_raft_closed); /* closes the rest */
        } else {
            if (up & UP_IO)
                raft_uv_close(&cl->io);
            if (up & UP_TCP)
                raft_uv_tcp_close(&cl->transport);
            if (up & UP_WAKE)
                uv_close((uv_handle_t *)&cl->wake, on_handle_closed);
            if (up & UP_TICK)
                uv_close((uv_handle_t *)&cl->tick, on_handle_closed);
        }
        if (up & UP_LOOP) {
            uv_run(&cl->loop, UV_RUN_DEFAULT);
            uv_loop_close(&cl->loop);
        }
        set_started(cl, -1);
        return NULL;
    }
    set_started(cl, 1);
    uv_run(&cl->loop, UV_RUN_DEFAULT);
    uv_loop_close(&cl->loop);
    return NULL;
}

/* Stops the applier thread of a node that did not start. */
static void stop_applier(ndb_cluster *cl)
{
    pthread_mutex_lock(&cl->mu);
    cl->apply_stop = true;
    pthread_cond_broadcast(&cl->cv);
    pthread_mutex_unlock(&cl->mu);
    pthread_join(cl->apply_thread, NULL);
}

static void free_cluster(ndb_cluster *cl)
{
    while (cl->ahead != NULL) {
        aentry *e = cl->ahead;
        cl->ahead = e->next;
        free(e->buf);
        free(e);
    }
    pthread_cond_destroy(&cl->cv);
    pthread_mutex_destroy(&cl->mu);
    free(cl->peers);
    free(cl->dir);
    free(cl);
}

ndb_status ndb_cluster_open(const ndb_cluster_options *opt, ndb_cluster **out, ndb_errmsg *msg)
{
    *out = NULL;
    if (opt->apply == NULL || opt->npeers == 0 || opt->npeers > NDB_CLUSTER_MAX_PEERS || opt->dir == NULL ||
        (opt->snapshot != NULL && opt->restore == NULL))
        return ndb_errmsg_set(msg, NDB_EINVAL, "a cluster needs 1 to %d peers, a directory and an apply function",
                              NDB_CLUSTER_MAX_PEERS);
    const ndb_cluster_peer *self = NULL;
    for (size_t i = 0; i < opt->npeers; i++)
        if (opt->peers[i].id == opt->id)
            self = &opt->peers[i];
    if (self == NULL)
        return ndb_errmsg_set(msg, NDB_EINVAL, "node id %" PRIu64 " is not among the peers", opt->id);
    if (mkdir(opt->dir, 0700) != 0 && errno != EEXIST)
        return ndb_errmsg_set(msg, NDB_EIO, "mkdir %s: %s", opt->dir, strerror(errno));
    ndb_cluster *cl = calloc(1, sizeof *cl);
    if (cl == NULL)
        return ndb_errmsg_set(msg, NDB_ENOMEM, "out of memory");
    cl->opt = *opt;
    cl->peers = malloc(opt->npeers * sizeof *cl->peers);
    cl->dir = strdup(opt->dir);
    if (cl->peers == NULL || cl->dir == NULL) {
        free(cl->peers);
        free(cl->dir);
        free(cl);
        return ndb_errmsg_set(msg, NDB_ENOMEM, "out of memory");
    }
    memcpy(cl->peers, opt->peers, opt->npeers * sizeof *cl->peers);
    cl->opt.peers = cl->peers;
    snprintf(cl->address, sizeof cl->address, "%s", self->address);
    snprintf(cl->client_address, sizeof cl->client_address, "%s", opt->client_address ? opt->client_address : "");
    snprintf(cl->bind_address, sizeof cl->bind_address, "%s", opt->bind_address ? opt->bind_address : "");
    cl->opt.bind_address = cl->bind_address;
    cl->opt.client_address = cl->client_address;
    if (getrandom(&cl->boot, sizeof cl->boot, 0) != (ssize_t)sizeof cl->boot)
        cl->boot = (uint64_t)wall_ms() ^ ((uint64_t)(uintptr_t)cl << 20);
    pthread_mutex_init(&cl->mu, NULL);
    pthread_cond_init(&cl->cv, NULL);
    cl->queue_tail = &cl->queue;
    cl->atail = &cl->ahead;
    cl->status.id = opt->id;
    cl->status.role = NDB_CLUSTER_UNAVAILABLE;
    int rv = pthread_create(&cl->apply_thread, NULL, clu_applier, cl);
    if (rv != 0) {
        free_cluster(cl);
        return ndb_errmsg_set(msg, NDB_EIO, "starting the applier thread: %s", strerror(rv));
    }
    if ((rv = pthread_create(&cl->loop_thread, NULL, loop_main, cl)) != 0) {
        stop_applier(cl);
        free_cluster(cl);
        return ndb_errmsg_set(msg, NDB_EIO, "starting the Raft thread: %s", strerror(rv));
    }
    pthread_mutex_lock(&cl->mu);
    while (cl->started == 0)
        pthread_cond_wait(&cl->cv, &cl->mu);
    int started = cl->started;
    /* the last snapshot, which Raft hands over as it starts, is restored before this returns */
    while (started > 0 && (cl->ahead != NULL || cl->applied < cl->enqueued) && !cl->apply_failed)
        pthread_cond_wait(&cl->cv, &cl->mu);
    pthread_mutex_unlock(&cl->mu);
    if (started < 0) {
        ndb_errmsg m = cl->start_msg;
        pthread_join(cl->loop_thread, NULL);
        stop_applier(cl);
        free_cluster(cl);
        if (msg != NULL)
            *msg = m;
        return m.text[0] ? NDB_EIO : ndb_errmsg_set(msg, NDB_EIO, "the cluster node did not start");
    }
    *out = cl;
    return NDB_OK;
}

void ndb_cluster_close(ndb_cluster *cl)
{
    if (cl == NULL)
        return;
    pthread_mutex_lock(&cl->mu);
    cl->close_req = true;
    pthread_mutex_unlock(&cl->mu);
    uv_async_send(&cl->wake);
    pthread_join(cl->loop_thread, NULL);
    pthread_mutex_lock(&cl->mu);
    cl->apply_stop = true;
    fail_waiting(cl, true);
    pthread_mutex_unlock(&cl->mu);
    pthread_join(cl->apply_thread, NULL);
    free_cluster(cl);
}

/* ------------------------------------------------------------ waiting */

ndb_status ndb_cluster_propose(ndb_cluster *cl, const void *cmd, size_t len, ndb_cluster_reply *r, ndb_errmsg *msg)
{
    memset(r, 0, sizeof *r);
    if (len > ENTRY_MAX - ENTRY_HEADER - 8)
        return ndb_errmsg_set(msg, NDB_ETOOBIG, "a command of %zu bytes is over the entry limit of %u bytes", len,
                              ENTRY_MAX - ENTRY_HEADER - 8);
    prop p = {.data = cmd, .len = len, .r = r};
    pthread_cond_init(&p.cv, NULL);
    pthread_mutex_lock(&cl->mu);
    if (cl->closed || cl->close_req) {
        pthread_mutex_unlock(&cl->mu);
        return ndb_errmsg_set(msg, NDB_ECLOSED, "the node is shutting down");
    }
    if (cl->apply_failed) {
        ndb_status st = ndb_errmsg_set(msg, NDB_EPOISONED, "this node stopped applying the log: %s", cl->apply_error);
        pthread_mutex_unlock(&cl->mu);
        pthread_cond_destroy(&p.cv);
        return st;
    }
    *cl->queue_tail = &p;
    cl->queue_tail = &p.next;
    pthread_mutex_unlock(&cl->mu);
    uv_async_send(&cl->wake);
    pthread_mutex_lock(&cl->mu);
    while (!p.done)
        pthread_cond_wait(&p.cv, &cl->mu);
    pthread_mutex_unlock(&cl->mu);
    pthread_cond_destroy(&p.cv);
    if (p.st != NDB_OK && msg != NULL)
        *msg = p.msg;
    return p.st;
}

ndb_status ndb_cluster_read_fence(ndb_cluster *cl, ndb_errmsg *msg)
{
    fence f = {0};
    pthread_mutex_lock(&cl->mu);
    if (cl->closed || cl->close_req) {
        pthread_mutex_unlock(&cl->mu);
        return ndb_errmsg_set(msg, NDB_ECLOSED, "the node is shutting down");
    }
    f.next = cl->fences;
    cl->fences = &f;
    pthread_mutex_unlock(&cl->mu);
    uv_async_send(&cl->wake);
    pthread_mutex_lock(&cl->mu);
    while (!f.done)
        pthread_cond_wait(&cl->cv, &cl->mu);
    ndb_status st = f.st;
    if (st != NDB_OK) {
        if (msg != NULL)
            *msg = f.msg;
    } else {
        st = wait_applied_locked(cl, f.target, NULL, msg);
    }
    pthread_mutex_unlock(&cl->mu);
    return st;
}

ndb_status ndb_cluster_wait_applied(ndb_cluster *cl, uint64_t index, unsigned timeout_ms, ndb_errmsg *msg)
{
    struct timespec dl = deadline_in(timeout_ms);
    pthread_mutex_lock(&cl->mu);
    ndb_status st = wait_applied_locked(cl, index, &dl, msg);
    pthread_mutex_unlock(&cl->mu);
    return st;
}
