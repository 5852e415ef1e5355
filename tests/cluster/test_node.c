/*
 * test_node.c — three ndb_cluster nodes in one process, on real loopback TCP
 * ports and real log directories: leader election, commands executed in the
 * same order everywhere, the proposer's reply, followers refusing writes with
 * the leader's name, read fences, a leader stopped and restarted (it replays
 * the log), and an apply failure that stops a node.
 */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "ndb_cluster.h"

#define N 3
#define MAXLOG 4096

/* A node's state machine: the commands it executed, in order. */
typedef struct machine {
    int node; /* its index */
    pthread_mutex_t mu;
    char *cmds[MAXLOG];
    uint64_t index[MAXLOG];
    size_t n;
    int fail_on; /* a command equal to "fail" returns fatal when set */
    int restores; /* snapshots restored */
    int taken;    /* snapshots taken */
} machine;

typedef struct world {
    char dirs[N][256];
    char raft[N][300]; /* the Raft logs, inside dirs */
    bool snapshots;    /* nodes open with snapshot/restore, every 8 entries */
    char clients[N][32]; /* the client addresses the nodes announce */
    ndb_cluster_peer peers[N];
    machine m[N];
    ndb_cluster *node[N];
} world;

static world W;

static ndb_status apply(void *arg, const ndb_cluster_cmd *cmd, void **reply, size_t *reply_len, bool *fatal,
                        ndb_errmsg *msg)
{
    machine *m = arg;
    if (m->fail_on && cmd->len == 4 && memcmp(cmd->data, "fail", 4) == 0) {
        *fatal = true;
        return ndb_errmsg_set(msg, NDB_EIO, "disk gone");
    }
    if (cmd->len == 3 && memcmp(cmd->data, "bad", 3) == 0)
        return ndb_errmsg_set(msg, NDB_EINVAL, "a bad command");
    if (cmd->len > 5 && memcmp(cmd->data, "slow-", 5) == 0) { /* a command that takes a while, as a big insert does */
        struct timespec ts = {0, 3000000};
        nanosleep(&ts, NULL);
    }
    pthread_mutex_lock(&m->mu);
    cr_assert_lt(m->n, MAXLOG);
    m->cmds[m->n] = strndup(cmd->data, cmd->len);
    m->index[m->n] = cmd->index;
    m->n++;
    pthread_mutex_unlock(&m->mu);
    char *r = malloc(64);
    int len = snprintf(r, 64, "done %.*s", (int)cmd->len, (const char *)cmd->data);
    *reply = r;
    *reply_len = (size_t)len;
    return NDB_OK;
}

/* Snapshots: the machine's commands in a file of its node's directory,
 * named by the index; the description is the file's path, which another node
 * reads too (all of them share this file system, as a fetch would). */
static ndb_status snapshot(void *arg, uint64_t index, void **payload, size_t *len, ndb_errmsg *msg)
{
    machine *m = arg;
    char path[400];
    snprintf(path, sizeof path, "%s/machine-%llu", W.dirs[m->node], (unsigned long long)index);
    FILE *f = fopen(path, "w");
    if (f == NULL)
        return ndb_errmsg_set(msg, NDB_EIO, "open %s", path);
    pthread_mutex_lock(&m->mu);
    for (size_t j = 0; j < m->n; j++)
        fprintf(f, "%llu %s\n", (unsigned long long)m->index[j], m->cmds[j]);
    pthread_mutex_unlock(&m->mu);
    fclose(f);
    m->taken++;
    *payload = strdup(path);
    *len = strlen(path);
    return NDB_OK;
}

static ndb_status restore(void *arg, uint64_t index, const void *payload, size_t len, ndb_errmsg *msg)
{
    machine *m = arg;
    char path[400];
    snprintf(path, sizeof path, "%.*s", (int)len, (const char *)payload);
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return ndb_errmsg_set(msg, NDB_EIO, "no snapshot %s (index %llu)", path, (unsigned long long)index);
    pthread_mutex_lock(&m->mu);
    for (size_t j = 0; j < m->n; j++)
        free(m->cmds[j]);
    m->n = 0;
    unsigned long long idx;
    char text[64];
    while (fscanf(f, "%llu %63s", &idx, text) == 2) {
        m->index[m->n] = idx;
        m->cmds[m->n++] = strdup(text);
    }
    m->restores++;
    pthread_mutex_unlock(&m->mu);
    fclose(f);
    return NDB_OK;
}

static int free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    cr_assert_eq(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    socklen_t len = sizeof a;
    getsockname(fd, (struct sockaddr *)&a, &len);
    close(fd);
    return ntohs(a.sin_port);
}

static void open_node(int i)
{
    snprintf(W.clients[i], sizeof W.clients[i], "client-%d:6970", i + 1);
    char dir[sizeof W.dirs[i]];
    memcpy(dir, W.dirs[i], sizeof dir);
    snprintf(W.raft[i], sizeof W.raft[i], "%s/raft", dir);
    ndb_cluster_options o = {.id = (uint64_t)i + 1, .dir = W.raft[i], .peers = W.peers, .npeers = N,
                             .client_address = W.clients[i], .heartbeat_ms = 50, .election_ms = 500, .apply = apply,
                             .apply_arg = &W.m[i]};
    if (W.snapshots) {
        o.snapshot = snapshot;
        o.restore = restore;
        o.snapshot_entries = 8;
        o.snapshot_trailing = 2;
    }
    ndb_errmsg m = {{0}};
    cr_assert_eq(ndb_cluster_open(&o, &W.node[i], &m), NDB_OK, "%s", m.text);
}

static void reset_machine(machine *m)
{
    for (size_t j = 0; j < m->n; j++)
        free(m->cmds[j]);
    m->n = 0;
}

static void setup_nodes(bool snapshots)
{
    signal(SIGPIPE, SIG_IGN); /* as the server does: a peer that closed its socket is not a reason to die */
    memset(&W, 0, sizeof W);
    W.snapshots = snapshots;
    const char *base = getenv("TMPDIR");
    for (int i = 0; i < N; i++) {
        snprintf(W.dirs[i], sizeof W.dirs[i], "%s/ndbclu-XXXXXX", base && *base ? base : "/tmp");
        cr_assert_not_null(mkdtemp(W.dirs[i]));
        W.peers[i].id = (uint64_t)i + 1;
        snprintf(W.peers[i].address, sizeof W.peers[i].address, "127.0.0.1:%d", free_port());
        pthread_mutex_init(&W.m[i].mu, NULL);
        W.m[i].node = i;
    }
    for (int i = 0; i < N; i++)
        open_node(i);
}

static void setup(void) { setup_nodes(false); }
static void setup_snapshots(void) { setup_nodes(true); }

static void teardown(void)
{
    for (int i = 0; i < N; i++) {
        ndb_cluster_close(W.node[i]);
        reset_machine(&W.m[i]);
        char cmd[400];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", W.dirs[i]);
        cr_assert_eq(system(cmd), 0);
    }
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000};
    nanosleep(&ts, NULL);
}

/* The index of the node that leads (waiting up to 10 s), -1 for none. */
static int leader(void)
{
    for (int tries = 0; tries < 1000; tries++) {
        for (int i = 0; i < N; i++) {
            if (W.node[i] == NULL)
                continue;
            ndb_cluster_status s;
            ndb_cluster_status_get(W.node[i], &s);
            if (s.role == NDB_CLUSTER_LEADER)
                return i;
        }
        sleep_ms(10);
    }
    return -1;
}

static ndb_status propose(int i, const char *text, ndb_cluster_reply *r)
{
    ndb_errmsg m = {{0}};
    ndb_status st = ndb_cluster_propose(W.node[i], text, strlen(text), r, &m);
    if (st != NDB_OK)
        memcpy(&r->msg, &m, sizeof m);
    return st;
}

/* Waits until every open node has executed n commands. */
static void wait_all(size_t n)
{
    for (int tries = 0; tries < 1000; tries++) {
        bool all = true;
        for (int i = 0; i < N; i++) {
            pthread_mutex_lock(&W.m[i].mu);
            all = all && (W.node[i] == NULL || W.m[i].n >= n);
            pthread_mutex_unlock(&W.m[i].mu);
        }
        if (all)
            return;
        sleep_ms(10);
    }
    cr_assert_fail("the nodes did not all execute %zu commands", n);
}

static void assert_same_logs(size_t n)
{
    for (int i = 0; i < N; i++) {
        cr_assert_eq(W.m[i].n, n, "node %d executed %zu commands, not %zu", i + 1, W.m[i].n, n);
        for (size_t j = 0; j < n; j++) {
            cr_assert_str_eq(W.m[i].cmds[j], W.m[0].cmds[j], "node %d, command %zu", i + 1, j);
            cr_assert_eq(W.m[i].index[j], W.m[0].index[j]);
        }
    }
}

TestSuite(cluster, .init = setup, .fini = teardown, .timeout = 60);

Test(cluster, commands_run_in_one_order_everywhere_and_answer_the_proposer)
{
    int l = leader();
    cr_assert_geq(l, 0, "no leader elected");
    for (int k = 0; k < 20; k++) {
        char text[32];
        snprintf(text, sizeof text, "cmd-%d", k);
        ndb_cluster_reply r;
        cr_assert_eq(propose(l, text, &r), NDB_OK, "%s", r.msg.text);
        cr_assert_eq(r.status, NDB_OK);
        char want[64];
        snprintf(want, sizeof want, "done %s", text);
        cr_assert_eq(r.len, strlen(want));
        cr_assert(memcmp(r.data, want, r.len) == 0);
        cr_assert_gt(r.index, 0);
        free(r.data);
    }
    ndb_cluster_reply r;
    cr_assert_eq(propose(l, "bad", &r), NDB_OK);
    cr_assert_eq(r.status, NDB_EINVAL, "a command's own failure comes back as its result");
    cr_assert_str_eq(r.msg.text, "a bad command");
    wait_all(20);
    assert_same_logs(20);
    for (size_t j = 0; j < 20; j++) {
        char want[32];
        snprintf(want, sizeof want, "cmd-%zu", j);
        cr_assert_str_eq(W.m[0].cmds[j], want);
    }
    ndb_cluster_status s;
    ndb_cluster_status_get(W.node[l], &s);
    cr_assert_eq(s.npeers, 3);
    cr_assert_geq(s.applied_index, W.m[l].index[19]);
}

typedef struct writer {
    int node, id;
    int ok;
} writer;

static void *write_many(void *arg)
{
    writer *w = arg;
    for (int k = 0; k < 50; k++) {
        char text[32];
        snprintf(text, sizeof text, "w%d-%d", w->id, k);
        ndb_cluster_reply r;
        if (propose(w->node, text, &r) == NDB_OK && r.status == NDB_OK)
            w->ok++;
        free(r.data);
    }
    return NULL;
}

Test(cluster, concurrent_proposals_share_entries_and_keep_each_writers_order)
{
    int l = leader();
    cr_assert_geq(l, 0);
    pthread_t t[8];
    writer w[8];
    for (int i = 0; i < 8; i++) {
        w[i] = (writer){.node = l, .id = i};
        pthread_create(&t[i], NULL, write_many, &w[i]);
    }
    for (int i = 0; i < 8; i++) {
        pthread_join(t[i], NULL);
        cr_assert_eq(w[i].ok, 50);
    }
    wait_all(400);
    assert_same_logs(400);
    int next[8] = {0};
    size_t entries = 0;
    for (size_t j = 0; j < 400; j++) {
        int id, k;
        cr_assert_eq(sscanf(W.m[0].cmds[j], "w%d-%d", &id, &k), 2);
        cr_assert_eq(k, next[id]++, "writer %d's commands out of order", id);
        entries += j == 0 || W.m[0].index[j] != W.m[0].index[j - 1];
    }
    cr_log_info("400 commands from 8 writers took %zu entries", entries);
}

Test(cluster, a_follower_refuses_writes_and_names_the_leader)
{
    int l = leader();
    cr_assert_geq(l, 0);
    int f = (l + 1) % N;
    ndb_cluster_status s;
    for (int tries = 0; tries < 500; tries++) { /* until the follower has applied the leader's announcement */
        ndb_cluster_status_get(W.node[f], &s);
        if (s.leader_client_address[0] != 0)
            break;
        sleep_ms(10);
    }
    cr_assert_eq(s.leader_id, (uint64_t)l + 1);
    cr_assert_str_eq(s.leader_client_address, W.clients[l]);
    cr_assert_str_eq(s.leader_address, W.peers[l].address);
    ndb_cluster_reply r;
    cr_assert_eq(propose(f, "x", &r), NDB_ENOTLEADER);
    char want[96];
    snprintf(want, sizeof want, "node %d is not the leader; the leader is node %d at %s", f + 1, l + 1, W.clients[l]);
    cr_assert_str_eq(r.msg.text, want);
    ndb_errmsg m;
    cr_assert_eq(ndb_cluster_read_fence(W.node[f], &m), NDB_ENOTLEADER);
    cr_assert_eq(ndb_cluster_read_fence(W.node[l], &m), NDB_OK, "%s", m.text);
}

Test(cluster, the_leader_stopped_and_restarted_replays_and_catches_up)
{
    size_t total = 0;
    for (int round = 0; round < 3; round++) {
        int l = leader();
        cr_assert_geq(l, 0, "round %d: no leader", round);
        for (int k = 0; k < 10; k++) {
            char text[32];
            snprintf(text, sizeof text, "r%d-%d", round, k);
            ndb_cluster_reply r;
            cr_assert_eq(propose(l, text, &r), NDB_OK, "%s", r.msg.text);
            free(r.data);
        }
        total += 10;
        ndb_cluster_close(W.node[l]); /* hands leadership over first */
        W.node[l] = NULL;
        int l2 = leader();
        cr_assert_geq(l2, 0, "round %d: no leader after the old one stopped", round);
        cr_assert_neq(l2, l);
        ndb_cluster_reply r;
        cr_assert_eq(propose(l2, "after", &r), NDB_OK, "%s", r.msg.text);
        free(r.data);
        total++;
        pthread_mutex_lock(&W.m[l].mu);
        reset_machine(&W.m[l]); /* its state was in memory: the log rebuilds it */
        pthread_mutex_unlock(&W.m[l].mu);
        open_node(l);
        wait_all(total);
        assert_same_logs(total);
    }
}

Test(cluster, a_node_that_cannot_apply_stops_and_says_why)
{
    int l = leader();
    cr_assert_geq(l, 0);
    W.m[l].fail_on = 1;
    ndb_cluster_reply r;
    cr_assert_eq(propose(l, "fail", &r), NDB_EPOISONED);
    cr_assert_not_null(strstr(r.msg.text, "disk gone"), "%s", r.msg.text);
    ndb_cluster_status s;
    ndb_cluster_status_get(W.node[l], &s);
    cr_assert(s.apply_failed);
    cr_assert_not_null(strstr(s.apply_error, "disk gone"));
    cr_assert_eq(propose(l, "later", &r), NDB_EPOISONED);
}

Test(cluster, bad_peer_lists_are_refused)
{
    ndb_cluster_peer p[4];
    size_t n;
    ndb_errmsg m;
    cr_assert_eq(ndb_cluster_parse_peers("1=a:1,2=b:2,3=c.d.svc:6971", p, 4, &n, &m), NDB_OK, "%s", m.text);
    cr_assert_eq(n, 3);
    cr_assert_str_eq(p[2].address, "c.d.svc:6971");
    const char *bad[] = {"", "1=a", "0=a:1", "x=a:1", "1=a:1,1=b:2", "1=a:1,2=a:1", "1=a:", "1=:5", "1=a:5x",
                         "1=a:1,2=b:2,3=c:3,4=d:4,5=e:5"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        cr_assert_eq(ndb_cluster_parse_peers(bad[i], p, 4, &n, &m), NDB_EINVAL, "\"%s\" accepted", bad[i]);
}

static void propose_n(int l, const char *tag, int n)
{
    for (int k = 0; k < n; k++) {
        char text[32];
        snprintf(text, sizeof text, "%s-%d", tag, k);
        ndb_cluster_reply r;
        cr_assert_eq(propose(l, text, &r), NDB_OK, "%s", r.msg.text);
        free(r.data);
    }
}

TestSuite(snapshots, .init = setup_snapshots, .fini = teardown, .timeout = 60);

Test(snapshots, a_restarted_node_starts_from_its_snapshot_and_replays_the_rest)
{
    int l = leader();
    cr_assert_geq(l, 0);
    propose_n(l, "a", 40); /* a snapshot every 8 entries */
    wait_all(40);
    int f = (l + 1) % N;
    ndb_cluster_close(W.node[f]);
    W.node[f] = NULL;
    reset_machine(&W.m[f]);
    W.m[f].restores = 0;
    open_node(f);
    cr_assert_eq(W.m[f].restores, 1, "the node did not start from its snapshot");
    cr_assert_gt(W.m[f].n, 0, "the snapshot held no commands");
    propose_n(leader(), "b", 5);
    wait_all(45);
    assert_same_logs(45);
}

Test(snapshots, every_node_takes_them_while_commands_keep_it_busy)
{
    int l = leader();
    cr_assert_geq(l, 0);
    /* each command is proposed as soon as the last is answered, so Raft asks for a snapshot just
     * as it hands the applier a command that takes 3 ms; a node that gave up then (followers
     * did: 3 or 4 of 6) went on without one */
    propose_n(l, "slow", 48);
    wait_all(48);
    for (int i = 0; i < N; i++)
        cr_assert_geq(W.m[i].taken, 5, "node %d took %d snapshots in 48 entries, one due every 8", i + 1,
                      W.m[i].taken);
}

Test(snapshots, a_wiped_node_catches_up_by_the_leaders_snapshot_and_the_log)
{
    int l = leader();
    cr_assert_geq(l, 0);
    propose_n(l, "a", 10);
    wait_all(10);
    int f = (l + 1) % N;
    ndb_cluster_close(W.node[f]);
    W.node[f] = NULL;
    propose_n(l, "b", 40); /* the log before most of these is gone (2 entries kept behind a snapshot) */
    char cmd[400];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'/*", W.dirs[f]);
    cr_assert_eq(system(cmd), 0);
    reset_machine(&W.m[f]);
    W.m[f].restores = 0;
    open_node(f); /* a new log: it knows only the configuration */
    propose_n(l, "c", 3);
    wait_all(53);
    assert_same_logs(53);
    cr_assert_geq(W.m[f].restores, 1, "the node caught up without a snapshot");
}

Test(snapshots, a_node_that_lost_its_disk_is_removed_and_added_back_and_catches_up)
{
    int l = leader();
    cr_assert_geq(l, 0);
    propose_n(l, "a", 20);
    wait_all(20);
    int f = (l + 1) % N;
    ndb_cluster_close(W.node[f]);
    W.node[f] = NULL;
    ndb_errmsg m = {{0}};
    cr_assert_eq(ndb_cluster_remove(W.node[(l + 2) % N], (uint64_t)f + 1, &m), NDB_ENOTLEADER);
    cr_assert_eq(ndb_cluster_remove(W.node[l], (uint64_t)f + 1, &m), NDB_OK, "%s", m.text);
    ndb_cluster_status s;
    ndb_cluster_status_get(W.node[l], &s);
    for (int tries = 0; tries < 100 && s.npeers != N - 1; tries++) {
        sleep_ms(20);
        ndb_cluster_status_get(W.node[l], &s);
    }
    cr_assert_eq(s.npeers, N - 1);
    propose_n(l, "b", 20); /* two members: both must store each entry */
    char cmd[400];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'/*", W.dirs[f]);
    cr_assert_eq(system(cmd), 0);
    reset_machine(&W.m[f]);
    open_node(f);
    cr_assert_eq(ndb_cluster_add(W.node[l], 99, W.peers[l].address, &m), NDB_EEXIST,
                 "an address a member has: %s", m.text);
    cr_assert_eq(ndb_cluster_add(W.node[l], (uint64_t)f + 1, W.peers[f].address, &m), NDB_OK, "%s", m.text);
    bool voters = false;
    for (int tries = 0; tries < 100 && !voters; tries++) { /* the status is refreshed every 50 ms */
        sleep_ms(20);
        ndb_cluster_status_get(W.node[l], &s);
        voters = s.npeers == N;
        for (size_t i = 0; i < s.npeers; i++)
            voters = voters && s.peers[i].voter;
    }
    cr_assert(voters, "the node did not come back as a voter");
    propose_n(l, "c", 3);
    wait_all(43);
    assert_same_logs(43);
}
