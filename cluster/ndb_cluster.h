/*
 * ndb_cluster.h — a replicated log of commands, on the Raft library Debian
 * ships (libraft 0.22, raft.h and raft/uv.h; README.md says why that one).
 *
 * A node proposes commands (opaque bytes); the leader groups the commands
 * proposed while its previous entry was being written into one Raft entry;
 * once the entry is committed by a majority, every node executes its commands
 * in log order, one at a time, on one applier thread, through the apply
 * function the caller gives. The proposer waits for its own node to have
 * executed the command and receives what apply returned. Nothing here knows
 * what a command means: service/ replicates write requests with it.
 *
 * Threads: Raft and its I/O run on their own libuv loop thread; commands run
 * on the applier thread; every function here may be called from any other
 * thread. The process must ignore SIGPIPE (a peer's closed connection).
 */
#ifndef NDB_CLUSTER_H
#define NDB_CLUSTER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ndb_status.h"

typedef struct ndb_cluster ndb_cluster;

/* One member: its id (1..) and the host:port its Raft transport listens on
 * (a host name is resolved at each connection, so a Kubernetes DNS name that
 * moves to a new pod address keeps working). */
typedef struct ndb_cluster_peer {
    uint64_t id;
    char address[256];
} ndb_cluster_peer;

/* A committed command as apply sees it. */
typedef struct ndb_cluster_cmd {
    uint64_t index;   /* the Raft entry holding it */
    uint32_t ordinal; /* its place among the entry's commands (0..) */
    int64_t wall_ms;  /* the leader's clock when it made the entry: the same on every node */
    bool mine;        /* proposed on this node, which waits for the reply */
    const void *data;
    size_t len;
} ndb_cluster_cmd;

/*
 * Executes one command. NDB_OK with *reply (malloc'd, may be NULL) and
 * *reply_len, or the command's own failure (a status with msg) — both are
 * the command's result, handed to the proposer when mine. Must be
 * deterministic: every node runs the same commands and must reach the same
 * state. A failure that is not the command's but this node's (disk, memory)
 * returns fatal = true: the node stops applying (its state would diverge),
 * reports it in the status, and needs a restart to continue.
 */
typedef ndb_status (*ndb_cluster_apply_fn)(void *arg, const ndb_cluster_cmd *cmd, void **reply,
                                           size_t *reply_len, bool *fatal, ndb_errmsg *msg);

/*
 * Snapshots, which let Raft drop the log before them. snapshot is called on
 * the Raft thread with every command up to index executed and none after (the
 * applier idle): it saves the state as of index where it outlives the log,
 * and returns a small description of it (*payload, malloc'd, at most 64 KiB).
 * restore is called on the applier thread, in log order, with a description
 * and its index: on this node at its next start (its own last snapshot), or
 * when the leader sends one because this node is missing entries the log no
 * longer has; it replaces the state by that one. A restore failure stops the
 * applier (as a fatal apply).
 */
typedef ndb_status (*ndb_cluster_snapshot_fn)(void *arg, uint64_t index, void **payload, size_t *len,
                                              ndb_errmsg *msg);
typedef ndb_status (*ndb_cluster_restore_fn)(void *arg, uint64_t index, const void *payload, size_t len,
                                             ndb_errmsg *msg);

typedef struct ndb_cluster_options {
    uint64_t id;                   /* this node's id: one of peers */
    const char *dir;               /* the Raft log and metadata (created, mode 0700) */
    const ndb_cluster_peer *peers; /* the initial members, this node included */
    size_t npeers;
    const char *client_address;    /* where clients reach this node (host:port, copied), announced when it leads */
    const char *bind_address;      /* host:port the Raft transport listens on (copied); NULL: its peers entry */
    unsigned heartbeat_ms;         /* 0: 100 */
    unsigned election_ms;          /* 0: 1000 */
    ndb_cluster_apply_fn apply;
    void *apply_arg;                /* also snapshot's and restore's */
    ndb_cluster_snapshot_fn snapshot; /* NULL: no snapshots, the log is kept whole */
    ndb_cluster_restore_fn restore;   /* required with snapshot */
    unsigned snapshot_entries;        /* a snapshot after this many entries; 0: 4096 */
    unsigned snapshot_trailing;       /* entries kept behind a snapshot, for peers a little behind; 0: 512 */
} ndb_cluster_options;

/* Opens the log in opt->dir (bootstrapping opt->peers as the configuration
 * when the directory is new) and joins the cluster. The last snapshot is
 * restored before this returns; committed commands after it are executed as
 * the leader makes the commit index known. Caller closes with
 * ndb_cluster_close. */
ndb_status ndb_cluster_open(const ndb_cluster_options *opt, ndb_cluster **out, ndb_errmsg *msg);

/* Hands leadership to another voter first when this node leads (waiting at
 * most the election timeout), then stops Raft and the applier. */
void ndb_cluster_close(ndb_cluster *cl);

/* What a proposal came back with: the apply function's status and message,
 * its reply (malloc'd: free it) and the entry's index. */
typedef struct ndb_cluster_reply {
    ndb_status status;
    ndb_errmsg msg;
    void *data;
    size_t len;
    uint64_t index;
} ndb_cluster_reply;

/*
 * Proposes one command and waits until this node has executed it. NDB_OK
 * with *r filled (r->status is the command's own result). NDB_ENOTLEADER
 * when this node does not lead (msg names the leader when one is known: the
 * address clients reach it at once it has announced it, else its Raft one);
 * NDB_EUNKNOWN when leadership changed after the entry was sent: it may or
 * may not have been committed. NDB_ECLOSED when closing; NDB_EPOISONED when
 * the applier stopped (see ndb_cluster_apply_fn).
 */
ndb_status ndb_cluster_propose(ndb_cluster *cl, const void *cmd, size_t len, ndb_cluster_reply *r,
                               ndb_errmsg *msg);

/* For a linearizable read on the leader: returns once this node has executed
 * every command committed before the call (a Raft barrier, shared by the reads
 * that wait at the same time). Errors as ndb_cluster_propose. */
ndb_status ndb_cluster_read_fence(ndb_cluster *cl, ndb_errmsg *msg);

/* Waits until this node has executed the entry at index (a client's last
 * write, for reading its own writes anywhere), at most timeout_ms:
 * NDB_ETIMEDOUT then. */
ndb_status ndb_cluster_wait_applied(ndb_cluster *cl, uint64_t index, unsigned timeout_ms, ndb_errmsg *msg);

/*
 * Membership, on the leader (NDB_ENOTLEADER elsewhere), one change at a
 * time (NDB_EBUSY while another runs). add: a node with a new id, or one
 * removed before (a node whose disk was lost comes back this way: removed,
 * emptied, started, added), joins as a non-voting member, is caught up from
 * the log or a snapshot, then becomes a voter; returns once it votes.
 * remove: the node leaves the configuration (a leader removing itself hands
 * over leadership). The configuration lives in the log from then on; --peers
 * only bootstraps a new log.
 */
ndb_status ndb_cluster_add(ndb_cluster *cl, uint64_t id, const char *address, ndb_errmsg *msg);
ndb_status ndb_cluster_remove(ndb_cluster *cl, uint64_t id, ndb_errmsg *msg);

typedef enum ndb_cluster_role {
    NDB_CLUSTER_FOLLOWER = 1,
    NDB_CLUSTER_CANDIDATE = 2,
    NDB_CLUSTER_LEADER = 3,
    NDB_CLUSTER_UNAVAILABLE = 4, /* not started, closing, or stopped by an error */
} ndb_cluster_role;

#define NDB_CLUSTER_MAX_PEERS 16

typedef struct ndb_cluster_status {
    uint64_t id;
    ndb_cluster_role role;
    uint64_t term;
    uint64_t leader_id; /* 0: none known */
    char leader_address[256];        /* its Raft address */
    char leader_client_address[256]; /* where clients reach it, once it has announced it ("" before) */
    uint64_t commit_index;
    uint64_t applied_index; /* executed by the applier */
    uint64_t last_index;    /* the last entry in this node's log */
    bool apply_failed;      /* the applier stopped: apply_error says why */
    char apply_error[256];
    size_t npeers;
    struct {
        uint64_t id;
        char address[256];        /* Raft */
        char client_address[256]; /* announced when it last led; "" if it never has */
        bool voter;
        uint64_t match_index; /* known on the leader only (0 elsewhere) */
    } peers[NDB_CLUSTER_MAX_PEERS];
} ndb_cluster_status;

/* A copy of the node's state, refreshed by the Raft thread every 50 ms and at
 * each change of role. */
void ndb_cluster_status_get(ndb_cluster *cl, ndb_cluster_status *out);

/* ndb_cluster_status_get once the status names where clients reach the
 * leader (leader_client_address), waiting at most timeout_ms for an election
 * or a new leader's announcement; false (out as it stands) if it does not in
 * time, or the node is closing. */
bool ndb_cluster_wait_leader(ndb_cluster *cl, unsigned timeout_ms, ndb_cluster_status *out);

/* "follower", "candidate", "leader", "unavailable". */
const char *ndb_cluster_role_name(ndb_cluster_role role);

/* Parses "1=host:port,2=host:port,...": at most NDB_CLUSTER_MAX_PEERS,
 * distinct ids from 1, distinct addresses. */
ndb_status ndb_cluster_parse_peers(const char *s, ndb_cluster_peer *out, size_t cap, size_t *n,
                                   ndb_errmsg *msg);

#endif /* NDB_CLUSTER_H */
