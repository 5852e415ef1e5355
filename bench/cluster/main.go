// Command cluster_bench measures a NexaDB cluster (or a single node) from the client's side.
//
//	cluster_bench -mode load -addrs A,B,C [-writers 64] [-seconds 10] [-tag name]
//	    Writers in closed loops send InsertOne to the node that leads (found by AdminService/Status;
//	    after a failed write, found again) and report acknowledged
//	    writes per second and their latency (p50, p99).
//	cluster_bench -mode fill -addrs LEADER -docs N
//	    Loads N documents in InsertMany calls of 200, one after another: a log entry each, so a
//	    million documents pass a snapshot (every 4096 entries by default).
//	cluster_bench -mode failover -addrs A,B,C -kill PID
//	    Sends SIGKILL to PID (the leader, found by run.sh) and writes until one write is
//	    acknowledged by a node of the rest; prints the time from the kill to that write.
//
// It prints `METRIC <name> <value> <unit>` lines; NEXADB_API_KEY is the key it presents.
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"os"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"

	pb "github.com/nexadb/nexadb/clients/go/nexadbpb"
)

type cluster struct {
	clients []pb.DocumentServiceClient
	admins  []pb.AdminServiceClient
	leader  atomic.Int32 // the node writes go to
}

func dial(addrs string) *cluster {
	c := &cluster{}
	for _, a := range strings.Split(addrs, ",") {
		conn, err := grpc.NewClient(a, grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			log.Fatal(err)
		}
		c.clients = append(c.clients, pb.NewDocumentServiceClient(conn))
		c.admins = append(c.admins, pb.NewAdminServiceClient(conn))
	}
	return c
}

// findLeader points writes at the node whose status says it leads (a single node leads itself),
// as a client that follows redirects would: a follower would forward each write, a second call.
// It reports whether it found one.
func (c *cluster) findLeader(ctx context.Context) bool {
	for i, a := range c.admins {
		cctx, cancel := context.WithTimeout(ctx, time.Second)
		s, err := a.Status(cctx, &pb.StatusRequest{})
		cancel()
		if err == nil && (s.Cluster == nil || s.Cluster.Role == "leader") {
			c.leader.Store(int32(i))
			return true
		}
	}
	return false
}

// insert writes one document, moving on to the next node until one acknowledges it or the
// deadline passes; it returns the node that did.
func (c *cluster) insert(ctx context.Context, coll string, doc *pb.Document, deadline time.Time) error {
	n := int32(len(c.clients))
	for time.Now().Before(deadline) {
		i := c.leader.Load()
		cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		_, err := c.clients[i].InsertOne(cctx, &pb.InsertOneRequest{Collection: coll, Document: doc})
		cancel()
		if err == nil {
			return nil
		}
		if !c.findLeader(ctx) {
			c.leader.CompareAndSwap(i, (i+1)%n)
		}
		time.Sleep(2 * time.Millisecond)
	}
	return fmt.Errorf("no node acknowledged a write before the deadline")
}

func doc(i int64) *pb.Document {
	b, err := bson.Marshal(bson.M{"name": fmt.Sprintf("user%d", i), "age": i % 80, "city": "Lisbon"})
	if err != nil {
		log.Fatal(err)
	}
	return &pb.Document{Bson: b}
}

func load(c *cluster, ctx context.Context, writers, seconds int, tag string) {
	coll := fmt.Sprintf("load%d", time.Now().UnixNano())
	end := time.Now().Add(time.Duration(seconds) * time.Second)
	var mu sync.Mutex
	var lat []time.Duration
	var wg sync.WaitGroup
	var seq atomic.Int64
	start := time.Now()
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var mine []time.Duration
			for time.Now().Before(end) {
				t := time.Now()
				if err := c.insert(ctx, coll, doc(seq.Add(1)), end.Add(10*time.Second)); err != nil {
					log.Fatal(err)
				}
				mine = append(mine, time.Since(t))
			}
			mu.Lock()
			lat = append(lat, mine...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	el := time.Since(start).Seconds()
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	pct := func(p float64) float64 { return float64(lat[int(p*float64(len(lat)-1))].Microseconds()) / 1000 }
	fmt.Printf("METRIC %s_writes_per_s %.0f writes/s\n", tag, float64(len(lat))/el)
	fmt.Printf("METRIC %s_write_p50 %.3f ms\n", tag, pct(0.50))
	fmt.Printf("METRIC %s_write_p99 %.3f ms\n", tag, pct(0.99))
}

func fill(c *cluster, ctx context.Context, n int64) {
	const batch = 200
	for i := int64(0); i < n; i += batch {
		docs := make([]*pb.Document, 0, batch)
		for j := i; j < i+batch && j < n; j++ {
			docs = append(docs, doc(j))
		}
		cctx, cancel := context.WithTimeout(ctx, 60*time.Second)
		_, err := c.clients[c.leader.Load()].InsertMany(cctx, &pb.InsertManyRequest{Collection: "fill", Documents: docs})
		cancel()
		if err != nil {
			log.Fatal(err)
		}
	}
}

func failover(c *cluster, ctx context.Context, pid int) {
	t0 := time.Now()
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		log.Fatal(err)
	}
	if err := c.insert(ctx, "failover", doc(0), t0.Add(30*time.Second)); err != nil {
		log.Fatal(err)
	}
	fmt.Printf("METRIC failover_ms %.1f ms\n", float64(time.Since(t0).Microseconds())/1000)
}

func main() {
	mode := flag.String("mode", "load", "load or failover")
	addrs := flag.String("addrs", "127.0.0.1:6970", "gRPC addresses, comma-separated")
	writers := flag.Int("writers", 64, "load: goroutines writing")
	seconds := flag.Int("seconds", 10, "load: how long to write")
	tag := flag.String("tag", "cluster", "load: METRIC name prefix")
	kill := flag.Int("kill", 0, "failover: the leader's process id")
	docs := flag.Int64("docs", 1000000, "fill: documents to load")
	flag.Parse()
	c := dial(*addrs)
	ctx := metadata.AppendToOutgoingContext(context.Background(), "x-api-key", os.Getenv("NEXADB_API_KEY"))
	c.findLeader(ctx)
	switch *mode {
	case "load":
		load(c, ctx, *writers, *seconds, *tag)
	case "fill":
		fill(c, ctx, *docs)
	case "failover":
		failover(c, ctx, *kill)
	default:
		log.Fatalf("unknown -mode %s", *mode)
	}
}
