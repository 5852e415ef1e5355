package nexadb_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"google.golang.org/grpc/codes"

	nexadb "github.com/nexadb/nexadb/clients/go"
)

// TestClusterRedirect runs three real servers as a cluster over TLS, where followers do not
// pass calls on but refuse them naming the leader: a client connected to a follower follows
// the redirect (a write, a stream, a count) and then points at the leader; with no leader
// known the refusal comes back as UNAVAILABLE.
func TestClusterRedirect(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	leader, followers, connect := startTLSCluster(t, ctx)

	// a write first: the unary path
	db := connect(followers[0])
	coll := db.Collection(uniqueName("redirect"))
	if _, err := coll.Insert(ctx, bson.D{{Key: "n", Value: 1}}); err != nil {
		t.Fatalf("insert through a follower: %v", err)
	}
	if db.Target() != leader.Addr {
		t.Errorf("after the insert the client points at %s, want the leader %s", db.Target(), leader.Addr)
	}
	if docs, err := coll.Find(ctx, nil); err != nil || len(docs) != 1 {
		t.Errorf("find: %v, %v", docs, err)
	}
	if n, err := coll.Count(ctx, nil); err != nil || n != 1 {
		t.Errorf("count: %d, %v", n, err)
	}

	// a stream first: redirected before its first message
	db2 := connect(followers[1])
	if docs, err := db2.Collection(coll.Name).Find(ctx, nil); err != nil || len(docs) != 1 {
		t.Errorf("find through a follower: %v, %v", docs, err)
	}
	if db2.Target() != leader.Addr {
		t.Errorf("after the find the client points at %s, want the leader %s", db2.Target(), leader.Addr)
	}

	// a change stream, redirected as it opens, sees the next write
	cs, err := connect(followers[0]).Collection(coll.Name).Watch(ctx, nil)
	if err != nil {
		t.Fatalf("watch through a follower: %v", err)
	}
	defer cs.Close()
	if _, err := coll.Insert(ctx, bson.D{{Key: "n", Value: 2}}); err != nil {
		t.Fatal(err)
	}
	if !cs.Next() || field(cs.Event(), "operationType") != "insert" {
		t.Errorf("watch: no insert event (%v, %v)", cs.Event(), cs.Err())
	}

	// the leader and one follower gone: the last node knows no leader
	leader.stop()
	followers[0].stop()
	last := connect(followers[1])
	for {
		st, err := last.Status(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if st.GetCluster().GetLeaderAddress() == "" {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	_, err = last.Collection(coll.Name).Insert(ctx, bson.D{{Key: "n", Value: 3}})
	var e *nexadb.Error
	if !errors.As(err, &e) || e.Code != codes.Unavailable || !strings.Contains(e.Message, "no leader is known") {
		t.Errorf("insert with no leader: want UNAVAILABLE saying no leader is known, got %v", err)
	}
	if last.Target() != followers[1].Addr {
		t.Errorf("with no leader the client moved to %s", last.Target())
	}
	// the client that pointed at the leader: the transport's UNAVAILABLE, not resent elsewhere
	_, err = db2.Collection(coll.Name).Count(ctx, nil)
	if !errors.As(err, &e) || e.Code != codes.Unavailable {
		t.Errorf("count on a stopped leader: want UNAVAILABLE, got %v", err)
	}
}

// TestClusterReadConcerns: on a TLS cluster (followers do not pass calls on), a ReadLocal
// client reads on the follower it is connected to, where the default client is redirected to
// the leader; a ReadSession client handed another client's log index reads its write on a
// follower that was frozen while the write committed (its connection open, the read queued on
// it), and a read after an entry not yet written waits for it until its deadline.
func TestClusterReadConcerns(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	leader, followers, connect := startTLSCluster(t, ctx)

	writer := connect(leader)
	coll := writer.Collection(uniqueName("concern"))
	id, err := coll.Insert(ctx, bson.D{{Key: "n", Value: 1}})
	if err != nil {
		t.Fatal(err)
	}
	if writer.LastLogIndex() == 0 {
		t.Fatal("an insert in a cluster left LastLogIndex 0")
	}

	// local: the follower answers (once it has applied the insert), the client stays there
	local := connect(followers[0], nexadb.WithReadConcern(nexadb.ReadLocal))
	for {
		n, err := local.Collection(coll.Name).Count(ctx, nil)
		if err != nil {
			t.Fatalf("local count on a follower: %v", err)
		}
		if n == 1 {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if docs, err := local.Collection(coll.Name).Find(ctx, nil); err != nil || len(docs) != 1 {
		t.Errorf("local find on a follower: %v, %v", docs, err)
	}
	if local.Target() != followers[0].Addr {
		t.Errorf("a local client moved from the follower to %s", local.Target())
	}
	// the default, linearizable: the follower redirects the read to the leader
	linear := connect(followers[0])
	if n, err := linear.Collection(coll.Name).Count(ctx, nil); err != nil || n != 1 {
		t.Errorf("count: %d, %v", n, err)
	}
	if linear.Target() != leader.Addr {
		t.Errorf("a linearizable read was answered by %s, want the leader %s", linear.Target(), leader.Addr)
	}
	// a session without a log index yet reads locally too
	fresh := connect(followers[1], nexadb.WithReadConcern(nexadb.ReadSession))
	if _, err := fresh.Collection(coll.Name).FindByID(ctx, id); err != nil && !errors.Is(err, nexadb.ErrNotFound) {
		t.Errorf("session read before any write: %v", err)
	}
	if fresh.Target() != followers[1].Addr || fresh.LastLogIndex() != 0 {
		t.Errorf("a session client with no write moved to %s (index %d)", fresh.Target(), fresh.LastLogIndex())
	}

	// session: a write commits on the leader and one follower while the other is frozen
	frozen := followers[1]
	reader := connect(frozen, nexadb.WithReadConcern(nexadb.ReadSession))
	if _, err := reader.Status(ctx); err != nil { // the connection, open before the freeze
		t.Fatal(err)
	}
	if err := frozen.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	resume := func() { frozen.cmd.Process.Signal(syscall.SIGCONT) }
	t.Cleanup(resume) // before the cluster's stop (cleanups run last first)
	session := connect(leader, nexadb.WithReadConcern(nexadb.ReadSession))
	id2, err := session.Collection(coll.Name).Insert(ctx, bson.D{{Key: "n", Value: 2}})
	if err != nil {
		t.Fatalf("insert with a follower frozen: %v", err)
	}
	if session.LastLogIndex() <= writer.LastLogIndex() {
		t.Fatalf("the session's index %d is not past the first insert's %d", session.LastLogIndex(), writer.LastLogIndex())
	}
	reader.AdvanceLogIndex(session.LastLogIndex())
	if reader.LastLogIndex() != session.LastLogIndex() {
		t.Errorf("AdvanceLogIndex(%d) left %d", session.LastLogIndex(), reader.LastLogIndex())
	}
	time.AfterFunc(500*time.Millisecond, resume)
	if doc, err := reader.Collection(coll.Name).FindByID(ctx, id2); err != nil || field(doc, "n") != int32(2) {
		t.Errorf("session read on the resumed follower: %v, %v", doc, err)
	}
	if reader.Target() != frozen.Addr {
		t.Errorf("the session read moved the client to %s", reader.Target())
	}
	// an entry no node has: the read waits for it until its deadline
	reader.AdvanceLogIndex(reader.LastLogIndex() + 1000)
	short, cancelShort := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancelShort()
	if n, err := reader.Collection(coll.Name).Count(short, nil); err == nil {
		t.Errorf("a session read after an entry not yet written answered %d", n)
	}
}

// TestReadConcernOptions: an unknown read concern fails Connect; AdvanceLogIndex only raises.
func TestReadConcernOptions(t *testing.T) {
	if _, err := nexadb.Connect(srv.Addr, nexadb.WithReadConcern(nexadb.ReadConcern(7))); err == nil {
		t.Error("Connect took an unknown read concern")
	}
	db, err := nexadb.Connect(srv.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	db.AdvanceLogIndex(7)
	db.AdvanceLogIndex(3)
	if db.LastLogIndex() != 7 {
		t.Errorf("LastLogIndex after advancing to 7 then 3: %d", db.LastLogIndex())
	}
}

// startTLSCluster starts three nodes over TLS (whose followers redirect rather than pass calls
// on) and waits for a leader known to all; connect makes a client of one node with the
// cluster's key and CA, closed when the test ends.
func startTLSCluster(t *testing.T, ctx context.Context) (leader *testServer, followers []*testServer,
	connect func(*testServer, ...nexadb.Option) *nexadb.Client) {
	certs := t.TempDir()
	if out, err := exec.Command("../../tests/tls/mkcerts.sh", certs).CombinedOutput(); err != nil {
		t.Fatalf("mkcerts: %v: %s", err, out)
	}
	tlsCfg, err := nexadb.LoadTLSConfig(filepath.Join(certs, "ca.crt"), "", "")
	if err != nil {
		t.Fatal(err)
	}
	const key = "cluster-test-key"
	nodes := startCluster(t, 3, "--api-key", key, "--shutdown-grace", "2",
		"--tls-cert", filepath.Join(certs, "server.crt"), "--tls-key", filepath.Join(certs, "server.key"))
	connect = func(s *testServer, opts ...nexadb.Option) *nexadb.Client {
		opts = append([]nexadb.Option{nexadb.WithAPIKey(key), nexadb.WithTLS(tlsCfg), nexadb.WithTimeout(10 * time.Second)}, opts...)
		db, err := nexadb.Connect(s.Addr, opts...)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		return db
	}
	leader = waitLeader(t, ctx, nodes, func(s *testServer) *nexadb.Client { return connect(s) })
	for _, s := range nodes {
		if s != leader {
			followers = append(followers, s)
		}
	}
	return leader, followers, connect
}

// startCluster starts n servers as one cluster (Raft on free loopback ports), all at once:
// a node is ready only once it knows a leader, which takes a majority.
func startCluster(t *testing.T, n int, args ...string) []*testServer {
	peers := make([]string, n)
	for i := range peers {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		peers[i] = fmt.Sprintf("%d=%s", i+1, l.Addr())
		l.Close()
	}
	nodes := make([]*testServer, n)
	errs := make(chan error, n)
	for i := range nodes {
		go func() {
			s, err := startServer(append([]string{"--node-id", fmt.Sprint(i + 1), "--peers", strings.Join(peers, ",")}, args...)...)
			nodes[i] = s
			errs <- err
		}()
	}
	for range nodes {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
	for _, s := range nodes {
		if s != nil {
			t.Cleanup(s.stop)
		}
	}
	if t.Failed() {
		t.FailNow()
	}
	return nodes
}

// waitLeader returns the node whose Status says it leads, once every node names it by its
// gRPC address (which the leader announces through the log; until then a node knows only its
// Raft address and redirects nowhere).
func waitLeader(t *testing.T, ctx context.Context, nodes []*testServer, connect func(*testServer) *nexadb.Client) *testServer {
	clients := make([]*nexadb.Client, len(nodes))
	for i, s := range nodes {
		clients[i] = connect(s)
	}
	for {
		var leader *testServer
		named := map[string]int{}
		for i, db := range clients {
			st, err := db.Status(ctx)
			if err != nil {
				t.Fatalf("status of %s: %v", nodes[i].Addr, err)
			}
			if st.GetCluster().GetRole() == "leader" {
				leader = nodes[i]
			}
			named[st.GetCluster().GetLeaderAddress()]++
		}
		if leader != nil && named[leader.Addr] == len(nodes) {
			return leader
		}
		select {
		case <-ctx.Done():
			t.Fatalf("no leader elected and known to all (%v)", named)
		case <-time.After(100 * time.Millisecond):
		}
	}
}
