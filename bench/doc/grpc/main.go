// Command grpc_doc_bench runs bench/doc's workloads through gRPC: the Go SDK (clients/go)
// against a running nexadb-server, on the same generated data as doc_bench.c (the brief's
// user shape, the same xorshift generator and seed, so the same ages, cities and tags, and
// the same random lookup order). It prints `METRIC <name> <value> <unit>` lines, checks
// every result against what the generator implies, and exits non-zero on a mismatch or on
// any RPC error.
//
//	grpc_doc_bench -addr 127.0.0.1:PORT -key KEY [-n docs] [-r reps] [-c goroutines] [-ic calls] [-insert-only]
//
// bench/doc/run.sh starts the server (bench/server.sh), runs this and stops the server.
// Workloads, in this order (the collection must not exist yet):
//
//	insert       InsertMany in batches of 10,000 documents without _id (generated ids): one
//	             call at a time (grpc.insert_many, into a scratch collection dropped after),
//	             then -ic calls in flight (grpc.insert_many_cN)
//	get          FindByID of random ids: -c goroutines over one client, then one goroutine
//	scan         Count {"age":{"$gt":25}} without an index; Find streaming every match
//	group        Aggregate [{"$group":{"_id":"$city","n":{"$sum":1},"avg":{"$avg":"$age"}}}]
//	index        CreateIndex on age, then the same Count
//
// -insert-only runs the -ic calls' InsertMany alone, into the collection, checks its count
// and stops (bench/scale measures the disk that ingestion leaves under each compression).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log"
	"math"
	"os"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	nexadb "github.com/nexadb/nexadb/clients/go"
)

const (
	maxReps   = 16    // as doc_bench
	batchSize = 10000 // documents per InsertMany, as doc_bench
	maxGets   = 100000
	numCities = 20
)

var cities = [numCities]string{"San Francisco", "New York", "Los Angeles", "Austin", "Seattle",
	"Boston", "Chicago", "Denver", "Miami", "Portland",
	"Atlanta", "Dallas", "Phoenix", "Detroit", "Houston",
	"Berlin", "Paris", "London", "Tokyo", "Sydney"}

// rng is doc_bench.c's xorshift generator, with its seed; rnd returns what its
// `(unsigned)(rng >> 11)` does.
type rng uint64

func (r *rng) rnd() uint32 {
	x := uint64(*r)
	x ^= x << 13
	x ^= x >> 7
	x ^= x << 17
	*r = rng(x)
	return uint32(x >> 11)
}

type user struct {
	age, city, t1, t2 int
	id                string // the _id the server generated
}

// generate draws the users exactly as doc_bench does, then the lookup order (the next
// draws from the same generator).
func generate(n int) ([]user, []int) {
	r := rng(88172645463325252)
	u := make([]user, n)
	for i := range u {
		u[i].age = 18 + int(r.rnd()%60)
		u[i].city = int(r.rnd() % numCities)
		u[i].t1 = int(r.rnd() % 50)
		u[i].t2 = int(r.rnd() % 50)
	}
	order := make([]int, min(n, maxGets))
	for i := range order {
		order[i] = int(r.rnd() % uint32(n))
	}
	return u, order
}

// document is user i as doc_bench builds it, in its key order.
func document(i int, u *user) bson.D {
	return bson.D{
		{Key: "name", Value: fmt.Sprintf("User %d", i)},
		{Key: "email", Value: fmt.Sprintf("user%d@example.com", i)},
		{Key: "age", Value: u.age},
		{Key: "city", Value: cities[u.city]},
		{Key: "tags", Value: bson.A{fmt.Sprintf("t%d", u.t1), fmt.Sprintf("t%d", u.t2)}},
	}
}

// field is doc's value for key (nil when it has none). The timed loops check documents with
// it rather than nexadb.Decode, which would add a second decoding to the figures.
func field(doc nexadb.Document, key string) any {
	for _, e := range doc {
		if e.Key == key {
			return e.Value
		}
	}
	return nil
}

func metric(name string, v float64, unit string) {
	fmt.Printf("METRIC %s %s %s\n", name, strconv.FormatFloat(v, 'g', 6, 64), unit)
}

// median sorts v and returns its middle element (the upper one for an even count, as
// doc_bench's median does).
func median(v []float64) float64 {
	sort.Float64s(v)
	return v[len(v)/2]
}

// reps runs f r times and returns the median of what it returns.
func reps(r int, f func() float64) float64 {
	v := make([]float64, r)
	for i := range v {
		v[i] = f()
	}
	return median(v)
}

// checkGot fails when a document read back is not user u's.
func checkGot(doc nexadb.Document, u *user) error {
	// ages are 18..77: the server sends integers within int32 as int32
	if field(doc, "_id") != u.id || field(doc, "age") != int32(u.age) || field(doc, "city") != cities[u.city] {
		return fmt.Errorf("FindByID(%s) returned %v; want age %d, city %s", u.id, doc, u.age, cities[u.city])
	}
	return nil
}

// gets looks up users[order[i]] for every i from g goroutines sharing one client; it returns
// the elapsed seconds and, when lat is not nil, stores each call's latency in lat[i].
func gets(ctx context.Context, col *nexadb.Collection, users []user, order []int, g int, lat []time.Duration) (float64, error) {
	var next atomic.Int64
	errs := make([]error, g)
	var wg sync.WaitGroup
	t0 := time.Now()
	for w := range g {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= len(order) {
					return
				}
				u := &users[order[i]]
				t := time.Now()
				doc, err := col.FindByID(ctx, u.id)
				if lat != nil {
					lat[i] = time.Since(t)
				}
				if err == nil {
					err = checkGot(doc, u)
				}
				if err != nil {
					errs[w] = err
					next.Store(int64(len(order))) // stop the others
					return
				}
			}
		}()
	}
	wg.Wait()
	el := time.Since(t0).Seconds()
	for _, err := range errs {
		if err != nil {
			return 0, err
		}
	}
	return el, nil
}

type cityStat struct {
	n   int64
	sum int64
}

// checkGroups compares the $group output with the generator's per-city counts and mean ages.
func checkGroups(out []nexadb.Document, want [numCities]cityStat) error {
	if len(out) != numCities {
		return fmt.Errorf("$group by city returned %d groups; want %d", len(out), numCities)
	}
	byName := make(map[string]cityStat, numCities)
	for c, s := range want {
		byName[cities[c]] = s
	}
	for _, g := range out {
		// an integral mean comes back as an integer, which decodes into the float64
		var got struct {
			City string  `bson:"_id"`
			N    int64   `bson:"n"`
			Avg  float64 `bson:"avg"`
		}
		if err := nexadb.Decode(g, &got); err != nil {
			return fmt.Errorf("$group returned %v: %w", g, err)
		}
		s, ok := byName[got.City]
		if !ok {
			return fmt.Errorf("$group returned an unexpected group %v", g)
		}
		delete(byName, got.City)
		wantAvg := float64(s.sum) / float64(s.n)
		if got.N != s.n || math.Abs(got.Avg-wantAvg) > 1e-9*wantAvg {
			return fmt.Errorf("$group %s: got %v; want n %d, avg %g", got.City, g, s.n, wantAvg)
		}
	}
	return nil
}

// insert sends docs to col in InsertMany batches of batchSize, conc calls in flight (each
// goroutine takes the next batch), checks every call returned an id per document and,
// when users is not nil, records each user's id. It returns the seconds taken.
func insert(ctx context.Context, col *nexadb.Collection, docs []any, users []user, conc int) (float64, error) {
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make([]error, conc)
	t0 := time.Now()
	for g := range conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(batchSize)) - batchSize
				if i >= len(docs) {
					return
				}
				batch := docs[i:min(i+batchSize, len(docs))]
				ids, err := col.InsertMany(ctx, batch)
				if err == nil && len(ids) != len(batch) {
					err = fmt.Errorf("InsertMany of %d documents returned %d ids", len(batch), len(ids))
				}
				if err != nil {
					errs[g] = err
					return
				}
				for j, id := range ids {
					if users != nil {
						users[i+j].id = id
					}
				}
			}
		}()
	}
	wg.Wait()
	return time.Since(t0).Seconds(), errors.Join(errs...)
}

func main() {
	addr := flag.String("addr", "", "the server's gRPC address, host:port")
	key := flag.String("key", os.Getenv("NEXADB_API_KEY"), "API key (default $NEXADB_API_KEY)")
	n := flag.Int("n", 100000, "documents")
	r := flag.Int("r", 3, "repetitions of each read workload (medians are reported)")
	conc := flag.Int("c", 16, "goroutines for grpc.get_by_id, sharing one client")
	insConc := flag.Int("ic", 2, "InsertMany calls in flight for grpc.insert_many_cN")
	seqGets := flag.Int("seq", 10000, "lookups per repetition of grpc.get_by_id_seq (one goroutine)")
	coll := flag.String("collection", "users", "collection to create (must not exist)")
	timeout := flag.Duration("timeout", 5*time.Minute, "deadline of each unary call")
	insertOnly := flag.Bool("insert-only", false, "only the InsertMany with -ic calls in flight, then stop")
	flag.Parse()
	if *addr == "" || *n <= 0 || *r <= 0 || *r > maxReps || *conc <= 0 || *insConc <= 0 || *seqGets <= 0 || flag.NArg() > 0 {
		fmt.Fprintf(os.Stderr, "usage: %s -addr host:port [-key k] [-n docs > 0] [-r reps 1..%d] [-c goroutines] [-ic calls] [-seq lookups]\n",
			os.Args[0], maxReps)
		os.Exit(2)
	}
	log.SetFlags(0)
	log.SetPrefix("grpc_doc_bench: ")

	users, order := generate(*n)
	var expectGt25 int64
	var want [numCities]cityStat
	for _, u := range users {
		if u.age > 25 {
			expectGt25++
		}
		want[u.city].n++
		want[u.city].sum += int64(u.age)
	}
	fmt.Printf("# grpc_doc_bench: %d documents, reps %d, %d goroutines, server %s\n", *n, *r, *conc, *addr)

	ctx := context.Background()
	db, err := nexadb.Connect(*addr, nexadb.WithAPIKey(*key), nexadb.WithTimeout(*timeout))
	if err != nil {
		log.Fatal(err)
	}
	defer db.Close()
	col := db.Collection(*coll)
	if c, err := col.Count(ctx, nil); err != nil || c != 0 {
		log.Fatalf("collection %q must be empty at the start: count %d, %v", *coll, c, err)
	}

	// insert: documents are built before the clock starts (doc_bench encodes them first
	// too); the SDK's encoding of each batch is part of the figure. First one call at a
	// time into a scratch collection (dropped after), then -ic calls in flight, as a bulk
	// loader sends them, into the collection the reads use.
	docs := make([]any, *n)
	for i := range docs {
		docs[i] = document(i, &users[i])
	}
	if !*insertOnly {
		scratch := *coll + "_insert_serial"
		el, err := insert(ctx, db.Collection(scratch), docs, nil, 1)
		if err != nil {
			log.Fatal(err)
		}
		metric("grpc.insert_many", float64(*n)/el, "docs/s")
		if _, err := db.DropCollection(ctx, scratch); err != nil {
			log.Fatal(err)
		}
	}
	el, err := insert(ctx, col, docs, users, *insConc)
	if err != nil {
		log.Fatal(err)
	}
	metric(fmt.Sprintf("grpc.insert_many_c%d", *insConc), float64(*n)/el, "docs/s")
	docs = nil
	if c, err := col.Count(ctx, nil); err != nil || c != int64(*n) {
		log.Fatalf("count after insert: %d, %v; want %d", c, err, *n)
	}
	if *insertOnly {
		return
	}

	// point reads
	metric("grpc.get_by_id", reps(*r, func() float64 {
		el, err := gets(ctx, col, users, order, *conc, nil)
		if err != nil {
			log.Fatal(err)
		}
		return float64(len(order)) / el
	}), "ops/s")
	seq := order[:min(*seqGets, len(order))]
	lat := make([]time.Duration, len(seq))
	var p50s []float64
	metric("grpc.get_by_id_seq", reps(*r, func() float64 {
		el, err := gets(ctx, col, users, seq, 1, lat)
		if err != nil {
			log.Fatal(err)
		}
		sort.Slice(lat, func(a, b int) bool { return lat[a] < lat[b] })
		p50s = append(p50s, float64(lat[len(lat)/2].Nanoseconds())/1e3)
		return float64(len(seq)) / el
	}), "ops/s")
	metric("grpc.get_by_id_seq_p50_us", median(p50s), "us")

	// filter scan, no index
	filter := bson.D{{Key: "age", Value: bson.D{{Key: "$gt", Value: 25}}}}
	count := func(what string) float64 {
		t := time.Now()
		c, err := col.Count(ctx, filter)
		el := time.Since(t).Seconds()
		if err != nil {
			log.Fatal(err)
		}
		if c != expectGt25 {
			log.Fatalf("%s: Count %v = %d; want %d", what, filter, c, expectGt25)
		}
		return el
	}
	scan := reps(*r, func() float64 { return count("filter scan") })
	metric("grpc.filter_scan", float64(*n)/scan, "docs/s")
	metric("grpc.filter_scan_ms", scan*1e3, "ms")

	// every match, whole documents, streamed
	stream := reps(*r, func() float64 {
		var got int64
		t := time.Now()
		for doc, err := range col.FindIter(ctx, filter) {
			if err != nil {
				log.Fatal(err)
			}
			if age, _ := field(doc, "age").(int32); age <= 25 {
				log.Fatalf("Find %v returned %v", filter, doc)
			}
			got++
		}
		el := time.Since(t).Seconds()
		if got != expectGt25 {
			log.Fatalf("Find %v streamed %d documents; want %d", filter, got, expectGt25)
		}
		return el
	})
	metric("grpc.find_stream", float64(expectGt25)/stream, "docs/s")
	metric("grpc.find_stream_ms", stream*1e3, "ms")

	// group by city, the pipeline doc_bench runs (in its key order)
	pipeline := []nexadb.Document{{{Key: "$group", Value: bson.D{
		{Key: "_id", Value: "$city"},
		{Key: "n", Value: bson.D{{Key: "$sum", Value: 1}}},
		{Key: "avg", Value: bson.D{{Key: "$avg", Value: "$age"}}},
	}}}}
	group := reps(*r, func() float64 {
		t := time.Now()
		out, err := col.Aggregate(ctx, pipeline)
		el := time.Since(t).Seconds()
		if err != nil {
			log.Fatal(err)
		}
		if err := checkGroups(out, want); err != nil {
			log.Fatal(err)
		}
		return el
	})
	metric("grpc.group_by_city_ms", group*1e3, "ms")

	// with an index on age
	t0 := time.Now()
	if _, err := col.CreateIndex(ctx, []nexadb.IndexField{{Field: "age", Direction: 1}}); err != nil {
		log.Fatal(err)
	}
	metric("grpc.create_index_ms", time.Since(t0).Seconds()*1e3, "ms")
	ix := reps(*r, func() float64 { return count("filter index") })
	metric("grpc.filter_index", float64(*n)/ix, "docs/s")
	metric("grpc.filter_index_ms", ix*1e3, "ms")
}
