package nexadb_test

import (
	"context"
	"errors"
	"math"
	"testing"

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
	a, _ := vc.Insert(ctx, D{"name": "a"}, []float32{1, 0, 0, 0})
	b, _ := vc.Insert(ctx, D{"name": "b"}, []float32{0.9, 0.1, 0, 0})
	if _, err := vc.Insert(ctx, D{"name": "c"}, []float32{0, 0, 1, 0}); err != nil {
		t.Fatal(err)
	}
	hits, err := vc.Search(ctx, []float32{1, 0, 0, 0}, 2)
	if err != nil || len(hits) != 2 || hits[0].ID != a || hits[1].ID != b {
		t.Fatalf("Search = %+v, %v", hits, err)
	}
	if math.Abs(float64(hits[0].Similarity)-1) > 1e-5 || hits[0].Document["name"] != "a" {
		t.Fatalf("top hit = %+v", hits[0])
	}
	if _, err := vc.Insert(ctx, D{}, []float32{1, 2, 3}); !errors.Is(err, nexadb.ErrInvalidArgument) {
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
	_, err = vc.InsertMany(ctx, []D{{"_id": "x0", "kind": "x"}, {"_id": "y1", "kind": "y"}, {"_id": "x2", "kind": "x"}},
		[][]float32{{1, 0, 0, 0}, {1, 0.1, 0, 0}, {0, 1, 0, 0}})
	if err != nil {
		t.Fatal(err)
	}
	hits, _ := vc.Search(ctx, []float32{1, 0, 0, 0}, 10, nexadb.Filter(D{"kind": "x"}))
	if len(hits) != 2 || hits[0].ID != "x0" || hits[1].ID != "x2" {
		t.Fatalf("filtered = %+v", hits)
	}
	hits, _ = vc.Search(ctx, []float32{1, 0, 0, 0}, 10, nexadb.MinScore(0.5), nexadb.IncludeVectors())
	if len(hits) != 2 || len(hits[0].Vector) != 4 {
		t.Fatalf("min score = %+v", hits)
	}
	doc, vec, err := vc.Get(ctx, "x0", true)
	if err != nil || doc["kind"] != "x" || len(vec) != 4 {
		t.Fatalf("Get = %v %v %v", doc, vec, err)
	}
	if ins, err := vc.Upsert(ctx, "x0", D{"kind": "z"}, []float32{1, 0, 0, 0}); ins || err != nil {
		t.Fatalf("Upsert replace = %v, %v", ins, err)
	}
	if ins, err := vc.Upsert(ctx, "new", D{"kind": "n"}, []float32{0, 0, 0, 1}); !ins || err != nil {
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
