/*
 * cluster_int.h — the node's state, shared by node.c (the Raft loop thread,
 * proposals, fences, status) and apply.c (the applier thread). Internal.
 *
 * Locking: mu guards every field marked "mu"; the Raft fields are touched on
 * the loop thread only. Proposers sleep on their own prop.cv, other waiters
 * (fences, membership changes, wait_applied, open) on cv.
 */
#ifndef NDB_CLUSTER_INT_H
#define NDB_CLUSTER_INT_H

#include <pthread.h>
#include <raft.h>
#include <raft/uv.h>
#include <uv.h>

#include "entry.h"
#include "ndb_cluster.h"

/* A proposal waiting in ndb_cluster_propose (on its caller's stack). */
typedef struct prop {
    const void *data;
    size_t len;
    ndb_cluster_reply *r;
    ndb_status st; /* the outcome of proposing: NDB_OK once r is filled */
    ndb_errmsg msg;
    bool done;
    pthread_cond_t cv; /* its proposer waits on it (with mu): one wake-up per answer, not a herd */
    struct prop *next;
} prop;

/* Under mu: p is answered (st and msg set, or r filled). */
static inline void prop_done(prop *p)
{
    p->done = true;
    pthread_cond_signal(&p->cv);
}

/* One entry's proposals, from raft_apply until the applier has answered
 * them or the entry failed. Freed when refs reaches 0: one reference for
 * Raft's callback, one while it is in the in-flight list. */
typedef struct group {
    struct raft_apply req;
    struct ndb_cluster *cl;
    uint64_t number;
    prop *props;
    int refs;
    struct group *next; /* in cl->inflight */
} group;

/* A reader waiting in ndb_cluster_read_fence. */
typedef struct fence {
    ndb_status st;
    ndb_errmsg msg;
    bool done;
    uint64_t target; /* wait until applied reaches it */
    struct fence *next;
} fence;

/* A membership change waiting in ndb_cluster_add or _remove. */
typedef struct change {
    struct raft_change req; /* first: the callback finds the change from it */
    struct ndb_cluster *cl;
    bool add;
    bool promoting; /* add's second step: the spare becomes a voter */
    uint64_t id;
    char address[256];
    ndb_status st; /* mu */
    ndb_errmsg msg;
    bool done;     /* mu */
    struct change *next;
} change;

/* A committed command entry, or a snapshot to restore, copied for the applier. */
typedef struct aentry {
    bool restore;   /* buf is a snapshot's description (index first) */
    uint64_t index;
    uint8_t *buf;
    size_t len;
    struct aentry *next;
} aentry;

struct ndb_cluster {
    ndb_cluster_options opt;
    ndb_cluster_peer *peers; /* opt.peers, copied */
    char *dir;
    char address[256];
    char client_address[256]; /* opt.client_address, copied */
    char bind_address[256];   /* opt.bind_address, copied ("": none) */
    uint64_t boot; /* random per open: tells this process's entries from an earlier one's */

    /* loop thread only */
    pthread_t loop_thread;
    uv_loop_t loop;
    uv_async_t wake;
    uv_timer_t tick;
    struct raft_uv_transport transport;
    struct raft_io io;
    struct raft_fsm fsm;
    struct raft raft;
    struct raft_transfer transfer;
    uint64_t transfer_deadline; /* uv_now() past which closing stops waiting for the hand-over */
    bool stopping;              /* raft_close called */
    char snapshot_error[256];   /* why the last snapshot failed ("" when it did not) */
    uint64_t next_group;

    pthread_mutex_t mu;
    pthread_cond_t cv;
    int started;          /* mu: 0 starting, 1 running, -1 failed to start */
    ndb_errmsg start_msg; /* mu */
    bool close_req;       /* mu: ndb_cluster_close asked */
    bool closed;          /* mu: Raft is stopped; nothing more is proposed */
    prop *queue, **queue_tail;  /* mu: proposals for the loop */
    fence *fences;              /* mu: readers for the next barrier */
    change *changes;            /* mu: membership changes for the loop */
    group *inflight;            /* mu */
    uint64_t enqueued;          /* mu: the last command entry handed to the applier */

    /* the applier */
    pthread_t apply_thread;
    aentry *ahead, **atail; /* mu */
    bool apply_stop;        /* mu */
    uint64_t applied;       /* mu: every command up to this index has been executed */
    bool apply_failed;      /* mu */
    char apply_error[256];  /* mu */

    ndb_cluster_status status; /* mu: refreshed by the loop thread */
    /* mu: the client addresses leaders announced, by node id */
    struct {
        uint64_t id;
        char address[256];
    } clients[NDB_CLUSTER_MAX_PEERS];
    size_t nclients;
    bool led; /* loop thread: was leader at the last status refresh */
};

/* Under mu: the client address node id announced, or NULL. */
const char *clu_client_address(const ndb_cluster *cl, uint64_t id);

/* apply.c */
int clu_fsm_apply(struct raft_fsm *fsm, const struct raft_buffer *buf, void **result);
void *clu_applier(void *arg);
/* Under mu: removes g from the in-flight list (if there) and drops that reference. */
void clu_group_unlink(ndb_cluster *cl, group *g);
/* Under mu: drops a reference; frees g at zero. */
void clu_group_unref(group *g);

#endif /* NDB_CLUSTER_INT_H */
