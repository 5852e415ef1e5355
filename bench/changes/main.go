// Command changes_bench measures change streams against a running nexadb-server: writes
// documents at a fixed rate from many goroutines (InsertOne, or InsertMany of -batch) while one DocumentService/Watch
// stream reads them, and reports the delivery lag from each write's acknowledgement to
// its event's arrival (p50, p99, max), the write rate reached, and whether every
// acknowledged write arrived exactly once. With -watch=false it only writes (the
// reference for what a watcher costs the writers). Then InsertMany throughput, for
// run.sh to set beside a server that keeps no change log.
//
//	changes_bench -addr 127.0.0.1:PORT [-rate 10000] [-seconds 10] [-writers 64] [-batch 1] [-watch=true] [-tag name]
//
// It prints `METRIC <name> <value> <unit>` lines and exits non-zero on an RPC error or a
// missing or repeated event.
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"os"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"

	pb "github.com/nexadb/nexadb/clients/go/nexadbpb"
)

func doc(m bson.M) *pb.Document {
	b, err := bson.Marshal(m)
	if err != nil {
		log.Fatal(err)
	}
	return &pb.Document{Bson: b}
}

func main() {
	addr := flag.String("addr", "127.0.0.1:6970", "gRPC address")
	rate := flag.Int("rate", 10000, "documents written per second, all writers together")
	batch := flag.Int("batch", 1, "documents per call: 1 is InsertOne, more InsertMany")
	seconds := flag.Int("seconds", 10, "how long to write")
	writers := flag.Int("writers", 64, "goroutines writing")
	watch := flag.Bool("watch", true, "read the writes back through a change stream")
	tag := flag.String("tag", "changes", "METRIC name prefix")
	flag.Parse()
	conn, err := grpc.NewClient(*addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		log.Fatal(err)
	}
	ctx := metadata.AppendToOutgoingContext(context.Background(), "x-api-key", os.Getenv("NEXADB_API_KEY"))
	docs := pb.NewDocumentServiceClient(conn)
	coll := fmt.Sprintf("lag%d", time.Now().UnixNano())
	total := *rate * *seconds
	acked := make([]int64, total) // ns since start, 0: not acknowledged
	recv := make([]int64, total)
	var dup atomic.Int64
	start := time.Now()

	var wg sync.WaitGroup
	var first = make(chan struct{})
	if *watch {
		wctx, cancel := context.WithCancel(ctx)
		defer cancel()
		stream, err := docs.Watch(wctx, &pb.WatchRequest{Collection: coll})
		if err != nil {
			log.Fatal(err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			got := 0
			for got < total {
				m, err := stream.Recv()
				if err != nil {
					log.Fatalf("watch: %v after %d events", err, got)
				}
				if got == 0 && len(m.Events) == 0 {
					select { // the stream is open: its first message
					case <-first:
					default:
						close(first)
					}
				}
				now := time.Since(start).Nanoseconds()
				for _, e := range m.Events {
					var ev struct {
						DocumentKey struct {
							ID string `bson:"_id"`
						} `bson:"documentKey"`
					}
					if err := bson.Unmarshal(e.Event.Bson, &ev); err != nil {
						log.Fatal(err)
					}
					var i int
					fmt.Sscanf(ev.DocumentKey.ID, "d%d", &i)
					if recv[i] != 0 {
						dup.Add(1)
					}
					recv[i] = now
					got++
				}
			}
		}()
		<-first // the stream is in place before the first write
	}
	start = time.Now()
	var next atomic.Int64
	var ww sync.WaitGroup
	interval := time.Duration(int64(time.Second) * int64(*writers) * int64(*batch) / int64(*rate))
	for w := 0; w < *writers; w++ {
		ww.Add(1)
		go func(w int) {
			defer ww.Done()
			t := time.Now().Add(time.Duration(w) * interval / time.Duration(*writers))
			for {
				i := int(next.Add(int64(*batch)) - int64(*batch))
				if i >= total {
					return
				}
				n := min(*batch, total-i)
				if d := time.Until(t); d > 0 {
					time.Sleep(d)
				}
				t = t.Add(interval)
				var err error
				if *batch == 1 {
					_, err = docs.InsertOne(ctx, &pb.InsertOneRequest{Collection: coll,
						Document: doc(bson.M{"_id": fmt.Sprintf("d%d", i), "n": i})})
				} else {
					ds := make([]*pb.Document, n)
					for k := range ds {
						ds[k] = doc(bson.M{"_id": fmt.Sprintf("d%d", i+k), "n": i + k})
					}
					_, err = docs.InsertMany(ctx, &pb.InsertManyRequest{Collection: coll, Documents: ds})
				}
				if err != nil {
					log.Fatalf("insert: %v", err)
				}
				now := time.Since(start).Nanoseconds()
				for k := 0; k < n; k++ {
					acked[i+k] = now
				}
			}
		}(w)
	}
	ww.Wait()
	elapsed := time.Since(start).Seconds()
	fmt.Printf("METRIC %s.write_rate %.0f writes/s\n", *tag, float64(total)/elapsed)
	if *watch {
		wg.Wait()
		lags := make([]float64, 0, total)
		for i := range acked {
			if recv[i] == 0 {
				log.Fatalf("write %d acknowledged but never seen", i)
			}
			lags = append(lags, float64(recv[i]-acked[i])/1e6)
		}
		if dup.Load() != 0 {
			log.Fatalf("%d events arrived twice", dup.Load())
		}
		sort.Float64s(lags)
		q := func(p float64) float64 { return lags[int(p*float64(len(lags)-1))] }
		fmt.Printf("METRIC %s.lag_p50 %.3f ms\n", *tag, q(0.50))
		fmt.Printf("METRIC %s.lag_p99 %.3f ms\n", *tag, q(0.99))
		fmt.Printf("METRIC %s.lag_max %.3f ms\n", *tag, lags[len(lags)-1])
		fmt.Printf("METRIC %s.events %d events\n", *tag, total)
	}
	// bulk throughput: InsertMany of 1,000 documents, 100 calls
	bulk := coll + "_bulk"
	t0 := time.Now()
	for c := 0; c < 100; c++ {
		ds := make([]*pb.Document, 1000)
		for k := range ds {
			ds[k] = doc(bson.M{"c": c, "k": k, "name": "someone", "age": k % 80})
		}
		if _, err := docs.InsertMany(ctx, &pb.InsertManyRequest{Collection: bulk, Documents: ds}); err != nil {
			log.Fatalf("insert many: %v", err)
		}
	}
	fmt.Printf("METRIC %s.insert_many %.0f docs/s\n", *tag, 100000/time.Since(t0).Seconds())
}
