package nexadb_test

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	nexadb "github.com/nexadb/nexadb/clients/go"
)

func TestVectorInsertSearch(t *testing.T) {
	ctx := context.Background()
	db := connect(t)
	name := uniqueName("vec")
	vc, err := db.VectorCollection(ctx, name, 4, nexadb.Cosine)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.VectorCollection(ctx, name, 4, nexadb.Cosine); err != nil {
		t.Fatalf("idempotent create: %v", err)
	}
	if _, err := db.VectorCollection(ctx, name, 8, nexadb.Cosine); err == nil {
		t.Fatal("dimension conflict accepted")
	}
	a, _ := vc.Insert(ctx, M{"name": "a"}, []float32{1, 0, 0, 0})
	b, _ := vc.Insert(ctx, M{"name": "b"}, []float32{0.9, 0.1, 0, 0})
	if _, err := vc.Insert(ctx, M{"name": "c"}, []float32{0, 0, 1, 0}); err != nil {
		t.Fatal(err)
	}
	hits, err := vc.Search(ctx, []float32{1, 0, 0, 0}, 2)
	if err != nil || len(hits) != 2 || hits[0].ID != a || hits[1].ID != b {
		t.Fatalf("Search = %+v, %v", hits, err)
	}
	if math.Abs(float64(hits[0].Similarity)-1) > 1e-5 || field(hits[0].Document, "name") != "a" {
		t.Fatalf("top hit = %+v", hits[0])
	}
	if _, err := vc.Insert(ctx, M{}, []float32{1, 2, 3}); !errors.Is(err, nexadb.ErrInvalidArgument) {
		t.Fatalf("wrong dimension: %v", err)
	}
	if _, err := vc.Search(ctx, []float32{1, 2, 3, 4, 5}, 1); !errors.Is(err, nexadb.ErrInvalidArgument) {
		t.Fatalf("wrong query dimension: %v", err)
	}
}

func TestVectorOps(t *testing.T) {
	ctx := context.Background()
	vc, err := connect(t).VectorCollection(ctx, uniqueName("ops"), 4, nexadb.Cosine)
	if err != nil {
		t.Fatal(err)
	}
	_, err = vc.InsertMany(ctx, []any{M{"_id": "x0", "kind": "x"}, M{"_id": "y1", "kind": "y"}, M{"_id": "x2", "kind": "x"}},
		[][]float32{{1, 0, 0, 0}, {1, 0.1, 0, 0}, {0, 1, 0, 0}})
	if err != nil {
		t.Fatal(err)
	}
	hits, _ := vc.Search(ctx, []float32{1, 0, 0, 0}, 10, nexadb.Filter(M{"kind": "x"}))
	if len(hits) != 2 || hits[0].ID != "x0" || hits[1].ID != "x2" {
		t.Fatalf("filtered = %+v", hits)
	}
	hits, _ = vc.Search(ctx, []float32{1, 0, 0, 0}, 10, nexadb.MinScore(0.5), nexadb.IncludeVectors())
	if len(hits) != 2 || len(hits[0].Vector) != 4 {
		t.Fatalf("min score = %+v", hits)
	}
	doc, vec, err := vc.Get(ctx, "x0", true)
	if err != nil || field(doc, "kind") != "x" || len(vec) != 4 {
		t.Fatalf("Get = %v %v %v", doc, vec, err)
	}
	if ins, err := vc.Upsert(ctx, "x0", M{"kind": "z"}, []float32{1, 0, 0, 0}); ins || err != nil {
		t.Fatalf("Upsert replace = %v, %v", ins, err)
	}
	if ins, err := vc.Upsert(ctx, "new", M{"kind": "n"}, []float32{0, 0, 0, 1}); !ins || err != nil {
		t.Fatalf("Upsert insert = %v, %v", ins, err)
	}
	batch, err := vc.SearchBatch(ctx, [][]float32{{1, 0, 0, 0}, {0, 0, 0, 1}}, 1)
	if err != nil || len(batch) != 2 || batch[0][0].ID != "x0" || batch[1][0].ID != "new" {
		t.Fatalf("SearchBatch = %+v, %v", batch, err)
	}
	if ok, _ := vc.Delete(ctx, "x0"); !ok {
		t.Fatal("Delete failed")
	}
	if _, _, err := vc.Get(ctx, "x0", false); !errors.Is(err, nexadb.ErrNotFound) {
		t.Fatalf("Get deleted: %v", err)
	}
}

func TestVectorFind(t *testing.T) {
	ctx := context.Background()
	db := connect(t)
	vc, err := db.VectorCollection(ctx, uniqueName("vfind"), 3, nexadb.Dot)
	if err != nil {
		t.Fatal(err)
	}
	var docs []any
	var vecs [][]float32
	for i := 0; i < 9; i++ {
		docs = append(docs, bson.D{{Key: "_id", Value: fmt.Sprintf("d%d", i)}, {Key: "i", Value: i}, {Key: "odd", Value: i%2 == 1}})
		vecs = append(vecs, []float32{float32(i), 1, 0})
	}
	if _, err := vc.InsertMany(ctx, docs, vecs); err != nil {
		t.Fatal(err)
	}
	all, err := vc.Find(ctx, nil, nexadb.PageSize(4))
	if err != nil || len(all) != 9 {
		t.Fatalf("Find = %d, %v", len(all), err)
	}
	for i, x := range all {
		if field(x.Document, "_id") != fmt.Sprintf("d%d", i) || !slices.Equal(x.Vector, vecs[i]) {
			t.Fatalf("Find[%d] = %+v", i, x)
		}
	}
	var odd []any
	for x, err := range vc.FindIter(ctx, M{"odd": true}, nexadb.Limit(2)) {
		if err != nil {
			t.Fatal(err)
		}
		odd = append(odd, field(x.Document, "i"))
	}
	if fmt.Sprint(odd) != "[1 3]" {
		t.Fatalf("filtered Find = %v", odd)
	}
	if _, err := vc.Find(ctx, nil, nexadb.Skip(1)); err == nil {
		t.Fatal("Skip accepted")
	}
	none, _ := db.VectorCollection(ctx, uniqueName("vnone"), 0, nexadb.Cosine)
	if _, err := none.Find(ctx, nil); !errors.Is(err, nexadb.ErrNotFound) {
		t.Fatalf("missing collection: %v", err)
	}
}

func TestVectorIndex(t *testing.T) {
	ctx := context.Background()
	db := connect(t)
	name := uniqueName("hnsw")
	vc, err := db.VectorCollection(ctx, name, 3, nexadb.L2, nexadb.WithIndex(nexadb.Index{Kind: nexadb.HNSW, M: 8}))
	if err != nil {
		t.Fatal(err)
	}
	info, err := vc.Info(ctx)
	if err != nil || info.GetIndex().GetKind() != nexadb.HNSW || info.GetIndex().GetM() != 8 ||
		info.GetIndex().GetEfConstruction() != 200 {
		t.Fatalf("Info = %v, %v", info, err)
	}
	if _, err := db.VectorCollection(ctx, name, 3, nexadb.L2, nexadb.WithIndex(nexadb.Index{Kind: nexadb.Exact})); !errors.Is(err, nexadb.ErrAlreadyExists) {
		t.Fatalf("another kind of index accepted: %v", err)
	}
	a, _ := vc.Insert(ctx, M{"n": 1}, []float32{1, 0, 0})
	if _, err := vc.Insert(ctx, M{"n": 2}, []float32{0, 1, 0}); err != nil {
		t.Fatal(err)
	}
	plan, hits, err := vc.Explain(ctx, []float32{1, 0.1, 0}, 1, nexadb.Ef(16))
	if err != nil || plan.GetPath() != "exact" || len(hits) != 1 || hits[0].ID != a {
		t.Fatalf("Explain = %v, %+v, %v (a collection this small is searched exactly)", plan, hits, err)
	}
	if hits, err := vc.Search(ctx, []float32{1, 0, 0}, 1, nexadb.Ef(16), nexadb.ExactSearch()); err != nil || hits[0].ID != a {
		t.Fatalf("Search = %+v, %v", hits, err)
	}
	if batch, err := vc.SearchBatch(ctx, [][]float32{{1, 0, 0}}, 1, nexadb.Ef(16)); err != nil || batch[0][0].ID != a {
		t.Fatalf("SearchBatch = %+v, %v", batch, err)
	}
	if _, err := vc.SetIndex(ctx, nexadb.Index{Kind: nexadb.HNSW, M: 1}); !errors.Is(err, nexadb.ErrInvalidArgument) {
		t.Fatalf("m 1 accepted: %v", err)
	}
	if info, err := vc.SetIndex(ctx, nexadb.Index{Kind: nexadb.HNSW, Quantization: nexadb.Int8, Oversample: 2}); err != nil ||
		info.GetIndex().GetQuantization() != nexadb.Int8 || info.GetIndex().GetOversample() != 2 {
		t.Fatalf("SetIndex(Int8) = %v, %v", info, err)
	}
	if info, err := vc.SetIndex(ctx, nexadb.Index{Kind: nexadb.HNSW, Quantization: nexadb.Float16}); err != nil ||
		info.GetIndex().GetQuantization() != nexadb.Float16 || info.GetIndex().GetOversample() != 4 {
		t.Fatalf("SetIndex(Float16) = %v, %v", info, err)
	}
	if info, err := vc.SetIndex(ctx, nexadb.Index{Kind: nexadb.Exact}); err != nil || info.GetIndex().GetKind() != nexadb.Exact {
		t.Fatalf("SetIndex(Exact) = %v, %v", info, err)
	}
	none, _ := db.VectorCollection(ctx, uniqueName("none"), 0, nexadb.Cosine)
	if _, err := none.Info(ctx); !errors.Is(err, nexadb.ErrNotFound) {
		t.Fatalf("Info of a missing collection: %v", err)
	}
	// secondary indexes over the documents: unique refuses a duplicate, with its vector
	ix, err := vc.CreateIndex(ctx, []nexadb.IndexField{{Field: "n", Direction: 1}}, nexadb.Unique(), nexadb.IndexName("by_n"))
	if err != nil || ix.GetName() != "by_n" || !ix.GetUnique() {
		t.Fatalf("CreateIndex = %v, %v", ix, err)
	}
	if _, err := vc.Insert(ctx, M{"n": 1}, []float32{0, 0, 1}); !errors.Is(err, nexadb.ErrAlreadyExists) {
		t.Fatalf("a duplicate of a unique key: %v", err)
	}
	if hits, err := vc.Search(ctx, []float32{0, 0, 1}, 5, nexadb.Filter(M{"n": 2})); err != nil || len(hits) != 1 {
		t.Fatalf("a filtered search through the index = %+v, %v", hits, err)
	}
	if ttl, err := vc.CreateIndex(ctx, []nexadb.IndexField{{Field: "at", Direction: 1}}, nexadb.ExpireAfter(time.Hour)); err != nil || ttl.GetTtl().GetExpireAfterSeconds() != 3600 {
		t.Fatalf("a TTL index on a vector collection = %v, %v", ttl, err)
	}
	if list, err := vc.ListIndexes(ctx); err != nil || len(list) != 2 {
		t.Fatalf("ListIndexes = %v, %v", list, err)
	}
	if dropped, err := vc.DropIndex(ctx, "by_n"); err != nil || !dropped {
		t.Fatalf("DropIndex = %v, %v", dropped, err)
	}
}
