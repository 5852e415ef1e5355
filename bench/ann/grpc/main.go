// Command grpc_ann_bench measures an HNSW vector collection through the server: the Go SDK
// (clients/go) against a running nexadb-server, on the data ann_bench wrote (data.f32,
// queries.f32, truth.i32 and the filtered runs' allow_<sel>.u8 and truth_<sel>.i32). It
// prints `METRIC <name> <value> <unit>` lines and exits non-zero on any RPC error.
//
//	grpc_ann_bench -addr 127.0.0.1:PORT -dir WORKDIR -n N -d DIMS [-m 16] [-efc 200] [-threads 2] [-tag NAME] [-exact]
//
// The key is $NEXADB_API_KEY. bench/ann/run.sh starts the server, runs this and stops it.
// Steps: a cosine collection with an HNSW index (m, ef_construction) is created; the rows
// go in as InsertVectors of 1,000 (ids r<i>, each document {"s": <the row's selection
// value>}); build_s is the time from the first insert until the collection reports every
// row in its graph. Then, for 1 .. threads goroutines and each ef, every query runs as one
// Search call (limit 10): recall@10 against truth.i32 and queries per second
// (ann.<tag>.server.t<n>.ef<ef>.recall / .qps, and .qps_at_r90|r95|r99 as ann_bench's);
// exact=true gives the exact search's QPS for scale (.exact.qps). The filtered runs send
// {"s": {"$lt": <ppm>}}, the same selections as ann_bench's, at ef 128 (.f<sel>.recall /
// .qps), first with each filtered call reading every document to find the matches, then
// again after CreateIndex on "s" (.f<sel>.indexed.recall / .qps): the server's end to end.
// The figures are named after -tag (ann_bench's dataset name), by default <n>x<dims>.
//
// With -exact (bench/scale: the exact search at a size no graph is built for here) the
// collection has the exact index: the rows go in as above (.insert_s and .insert_vps), every
// query runs as an exact Search on 1 .. threads goroutines (.t<n>.exact.recall / .qps), and
// the collection is left in place for the caller to measure.
package main

import (
	"context"
	"encoding/binary"
	"flag"
	"fmt"
	"log"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	nexadb "github.com/nexadb/nexadb/clients/go"
)

const k = 10

var efs = []int{10, 16, 24, 32, 48, 64, 96, 128, 192, 256, 384, 512, 768}

func readF32(path string, n, d int) [][]float32 {
	b, err := os.ReadFile(path)
	if err != nil {
		log.Fatal(err)
	}
	if len(b) != n*d*4 {
		log.Fatalf("%s: %d bytes, want %d", path, len(b), n*d*4)
	}
	out := make([][]float32, n)
	for i := range out {
		out[i] = make([]float32, d)
		for j := range out[i] {
			out[i][j] = math.Float32frombits(binary.LittleEndian.Uint32(b[(i*d+j)*4:]))
		}
	}
	return out
}

func readI32(path string) []int32 {
	b, err := os.ReadFile(path)
	if err != nil {
		log.Fatal(err)
	}
	out := make([]int32, len(b)/4)
	for i := range out {
		out[i] = int32(binary.LittleEndian.Uint32(b[i*4:]))
	}
	return out
}

// selection is ann_bench's: row i is in a selection of ppm parts per million when
// sel(i) < ppm.
func selection(i int) int { return int(uint32(uint32(i)*2654435761)>>5) % 1000000 }

// run sends queries qs (split over nt goroutines) and returns recall@10 against truth
// and queries per second.
func run(ctx context.Context, vc *nexadb.VectorCollection, qs [][]float32, truth []int32, nt int,
	opts ...nexadb.SearchOption) (float64, float64) {
	found := make([][]string, len(qs))
	var wg sync.WaitGroup
	t0 := time.Now()
	for t := 0; t < nt; t++ {
		wg.Add(1)
		go func(t int) {
			defer wg.Done()
			for q := t; q < len(qs); q += nt {
				hits, err := vc.Search(ctx, qs[q], k, opts...)
				if err != nil {
					log.Fatalf("search: %v", err)
				}
				for _, h := range hits {
					found[q] = append(found[q], h.ID)
				}
			}
		}(t)
	}
	wg.Wait()
	qps := float64(len(qs)) / time.Since(t0).Seconds()
	hit, total := 0, 0 // over the exact answers that exist (-1 where a filter left fewer than k)
	for q := range qs {
		want := map[string]bool{}
		for _, r := range truth[q*k : (q+1)*k] {
			if r >= 0 {
				want["r"+strconv.Itoa(int(r))] = true
			}
		}
		total += len(want)
		for _, id := range found[q] {
			if want[id] {
				hit++
			}
		}
	}
	if total == 0 {
		return 1, qps
	}
	return float64(hit) / float64(total), qps
}

func main() {
	addr := flag.String("addr", "127.0.0.1:6970", "server address")
	dir := flag.String("dir", "/tmp/ndb-bench-ann", "ann_bench's work directory")
	n := flag.Int("n", 100000, "rows in data.f32")
	d := flag.Int("d", 128, "dimensions")
	m := flag.Int("m", 16, "HNSW m")
	efc := flag.Int("efc", 200, "HNSW ef_construction")
	threads := flag.Int("threads", 2, "most concurrent searches")
	tagFlag := flag.String("tag", "", "the figures' name (a dataset's; default <n>x<dims>)")
	exact := flag.Bool("exact", false, "an exact collection: inserts and exact searches only, left in place")
	flag.Parse()
	ctx := context.Background()
	tag := *tagFlag
	if tag == "" {
		tag = fmt.Sprintf("%dx%d", *n, *d)
	}
	data := readF32(filepath.Join(*dir, "data.f32"), *n, *d)
	truth := readI32(filepath.Join(*dir, "truth.i32"))
	qs := readF32(filepath.Join(*dir, "queries.f32"), len(truth)/k, *d)

	db, err := nexadb.Connect(*addr, nexadb.WithAPIKey(os.Getenv("NEXADB_API_KEY")))
	if err != nil {
		log.Fatal(err)
	}
	defer db.Close()
	name := "ann" + tag
	index := nexadb.Index{Kind: nexadb.HNSW, M: *m, EfConstruction: *efc}
	if *exact {
		index = nexadb.Index{Kind: nexadb.Exact}
	}
	vc, err := db.VectorCollection(ctx, name, *d, nexadb.Cosine, nexadb.WithIndex(index))
	if err != nil {
		log.Fatal(err)
	}
	t0 := time.Now()
	for at := 0; at < *n; at += 1000 {
		end := min(at+1000, *n)
		docs := make([]any, 0, end-at)
		for i := at; i < end; i++ {
			docs = append(docs, bson.M{"_id": "r" + strconv.Itoa(i), "s": selection(i)})
		}
		if _, err := vc.InsertMany(ctx, docs, data[at:end]); err != nil {
			log.Fatal(err)
		}
	}
	insert := time.Since(t0).Seconds()
	if *exact {
		fmt.Printf("METRIC ann.%s.server.insert_s %.2f s\n", tag, insert)
		fmt.Printf("METRIC ann.%s.server.insert_vps %.0f vectors/s\n", tag, float64(*n)/insert)
		for nt := 1; nt <= *threads; nt++ {
			r, qps := run(ctx, vc, qs, truth, nt, nexadb.ExactSearch())
			fmt.Printf("METRIC ann.%s.server.t%d.exact.recall %.4f\n", tag, nt, r)
			fmt.Printf("METRIC ann.%s.server.t%d.exact.qps %.1f q/s\n", tag, nt, qps)
		}
		return
	}
	for {
		info, err := vc.Info(ctx)
		if err != nil {
			log.Fatal(err)
		}
		if !info.GetIndexBuilding() && info.GetIndexed() == int64(*n) {
			fmt.Printf("METRIC ann.%s.server.insert_s %.2f s\n", tag, insert)
			fmt.Printf("METRIC ann.%s.server.build_s %.2f s\n", tag, time.Since(t0).Seconds())
			fmt.Printf("METRIC ann.%s.server.index_bytes_per_vector %.0f bytes\n", tag,
				float64(info.GetIndexBytes())/float64(*n))
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	for nt := 1; nt <= *threads; nt++ {
		best := map[int]float64{90: 0, 95: 0, 99: 0}
		for _, ef := range efs {
			r, qps := run(ctx, vc, qs, truth, nt, nexadb.Ef(ef))
			fmt.Printf("METRIC ann.%s.server.t%d.ef%d.recall %.4f\n", tag, nt, ef, r)
			fmt.Printf("METRIC ann.%s.server.t%d.ef%d.qps %.0f q/s\n", tag, nt, ef, qps)
			for target := range best {
				if r >= float64(target)/100 && best[target] == 0 {
					best[target] = qps
				}
			}
		}
		for _, target := range []int{90, 95, 99} {
			fmt.Printf("METRIC ann.%s.server.t%d.qps_at_r%d %.0f q/s\n", tag, nt, target, best[target])
		}
		_, qps := run(ctx, vc, qs, truth, nt, nexadb.ExactSearch())
		fmt.Printf("METRIC ann.%s.server.t%d.exact.qps %.0f q/s\n", tag, nt, qps)
	}
	for _, indexed := range []bool{false, true} {
		suffix := ""
		if indexed {
			if _, err := vc.CreateIndex(ctx, []nexadb.IndexField{{Field: "s", Direction: 1}}); err != nil {
				log.Fatalf("CreateIndex(s): %v", err)
			}
			suffix = ".indexed"
		}
		for _, sel := range []struct {
			name string
			ppm  int
		}{{"50", 500000}, {"10", 100000}, {"1", 10000}, {"0.1", 1000}} {
			ft := readI32(filepath.Join(*dir, "truth_"+sel.name+".i32"))
			r, qps := run(ctx, vc, qs[:len(ft)/k], ft, 1, nexadb.Ef(128),
				nexadb.Filter(bson.M{"s": bson.M{"$lt": sel.ppm}}))
			fmt.Printf("METRIC ann.%s.server.t1.f%s%s.recall %.4f\n", tag, sel.name, suffix, r)
			fmt.Printf("METRIC ann.%s.server.t1.f%s%s.qps %.0f q/s\n", tag, sel.name, suffix, qps)
		}
	}
	if _, err := db.DropVectorCollection(ctx, name); err != nil {
		log.Fatal(err)
	}
}
