package nexadb_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os/exec"
	"path/filepath"
	"strings"
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
	connect := func(s *testServer) *nexadb.Client {
		db, err := nexadb.Connect(s.Addr, nexadb.WithAPIKey(key), nexadb.WithTLS(tlsCfg), nexadb.WithTimeout(10*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		return db
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	leader := waitLeader(t, ctx, nodes, connect)
	var followers []*testServer
	for _, s := range nodes {
		if s != leader {
			followers = append(followers, s)
		}
	}

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
