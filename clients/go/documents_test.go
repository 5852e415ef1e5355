package nexadb_test

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"

	nexadb "github.com/nexadb/nexadb/clients/go"
)

type D = nexadb.Document

func TestQuickStart(t *testing.T) {
	ctx := context.Background()
	users := connect(t).Collection(uniqueName("users"))
	id, err := users.Insert(ctx, D{"name": "Alice Johnson", "email": "alice@example.com", "age": 28, "tags": []string{"go", "database"}})
	if err != nil || id == "" {
		t.Fatalf("Insert = %q, %v", id, err)
	}
	got, err := users.Find(ctx, D{"age": D{"$gt": 25}})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0]["name"] != "Alice Johnson" || got[0]["age"] != int64(28) {
		t.Fatalf("Find = %#v", got)
	}
	if !reflect.DeepEqual(got[0]["tags"], []any{"go", "database"}) {
		t.Fatalf("tags = %#v", got[0]["tags"])
	}
	if ok, err := users.Update(ctx, id, D{"age": 29}); !ok || err != nil {
		t.Fatalf("Update = %v, %v", ok, err)
	}
	doc, err := users.FindByID(ctx, id)
	if err != nil || doc["age"] != int64(29) || doc["_id"] != id || doc["_created_at"] == nil {
		t.Fatalf("FindByID = %#v, %v", doc, err)
	}
	if ok, err := users.Delete(ctx, id); !ok || err != nil {
		t.Fatalf("Delete = %v, %v", ok, err)
	}
	if _, err := users.FindByID(ctx, id); !errors.Is(err, nexadb.ErrNotFound) {
		t.Fatalf("FindByID after delete: %v", err)
	}
	if ok, err := users.Delete(ctx, id); ok || err != nil {
		t.Fatalf("second Delete = %v, %v", ok, err)
	}
	if ok, err := users.Update(ctx, id, D{"a": 1}); ok || err != nil {
		t.Fatalf("Update of missing = %v, %v", ok, err)
	}
}

func TestManyCountFindOneOptions(t *testing.T) {
	ctx := context.Background()
	c := connect(t).Collection(uniqueName("many"))
	var docs []D
	for i := 0; i < 6; i++ {
		docs = append(docs, D{"n": i, "even": i%2 == 0})
	}
	ids, err := c.InsertMany(ctx, docs)
	if err != nil || len(ids) != 6 {
		t.Fatalf("InsertMany = %v, %v", ids, err)
	}
	if n, err := c.Count(ctx, nil); n != 6 || err != nil {
		t.Fatalf("Count = %d, %v", n, err)
	}
	if n, _ := c.Count(ctx, D{"even": true}); n != 3 {
		t.Fatalf("Count even = %d", n)
	}
	if d, err := c.FindOne(ctx, D{"even": true}, nexadb.Sort("n", -1)); err != nil || d["n"] != int64(4) {
		t.Fatalf("FindOne = %v, %v", d, err)
	}
	if _, err := c.FindOne(ctx, D{"n": 99}); !errors.Is(err, nexadb.ErrNotFound) {
		t.Fatalf("FindOne none: %v", err)
	}
	got, err := c.Find(ctx, nil, nexadb.Sort("n", -1), nexadb.Limit(3))
	if err != nil || len(got) != 3 || got[0]["n"] != int64(5) || got[2]["n"] != int64(3) {
		t.Fatalf("Find sorted = %v, %v", got, err)
	}
	got, _ = c.Find(ctx, D{"even": true}, nexadb.Sort("n", 1), nexadb.Skip(1), nexadb.Limit(2))
	if len(got) != 2 || got[0]["n"] != int64(2) || got[1]["n"] != int64(4) {
		t.Fatalf("Find skip = %v", got)
	}
	got, _ = c.Find(ctx, D{"n": 0}, nexadb.Projection(D{"n": 1}))
	if len(got) != 1 || len(got[0]) != 2 || got[0]["_id"] == nil {
		t.Fatalf("projection = %v", got)
	}
}

func TestUpdateManyDeleteManyAggregate(t *testing.T) {
	ctx := context.Background()
	c := connect(t).Collection(uniqueName("upd"))
	_, err := c.InsertMany(ctx, []D{
		{"city": "SF", "price": 1200, "category": "Electronics"},
		{"city": "SF", "price": 25, "category": "Electronics"},
		{"city": "NY", "price": 300, "category": "Furniture"},
	})
	if err != nil {
		t.Fatal(err)
	}
	if n, err := c.UpdateMany(ctx, D{"city": "SF"}, D{"country": "USA"}); n != 2 || err != nil {
		t.Fatalf("UpdateMany = %d, %v", n, err)
	}
	out, err := c.Aggregate(ctx, []D{
		{"$group": D{"_id": "$category", "count": D{"$sum": 1}, "avg_price": D{"$avg": "$price"}}},
		{"$sort": D{"count": -1}},
	})
	want := []D{{"_id": "Electronics", "count": int64(2), "avg_price": 612.5}, {"_id": "Furniture", "count": int64(1), "avg_price": int64(300)}}
	if err != nil || !reflect.DeepEqual(out, want) {
		t.Fatalf("Aggregate = %#v, %v", out, err)
	}
	if n, err := c.DeleteMany(ctx, D{"country": "USA"}); n != 2 || err != nil {
		t.Fatalf("DeleteMany = %d, %v", n, err)
	}
	if dropped, err := c.Drop(ctx); !dropped || err != nil {
		t.Fatalf("Drop = %v, %v", dropped, err)
	}
}

func TestStreamingFindManyMessagesLazily(t *testing.T) {
	ctx := context.Background()
	c := connect(t).Collection(uniqueName("stream"))
	const n = 5000
	pad := strings.Repeat("x", 100)
	for start := 0; start < n; start += 1000 {
		batch := make([]D, 1000)
		for i := range batch {
			batch[i] = D{"i": start + i, "pad": pad}
		}
		if _, err := c.InsertMany(ctx, batch); err != nil {
			t.Fatal(err)
		}
	}
	all, err := c.Find(ctx, nil, nexadb.PageSize(128))
	if err != nil || len(all) != n {
		t.Fatalf("Find = %d docs, %v", len(all), err)
	}
	seen := map[int64]bool{}
	for _, d := range all {
		seen[d["i"].(int64)] = true
	}
	if len(seen) != n {
		t.Fatalf("%d distinct", len(seen))
	}
	count := 0
	for d, err := range c.FindIter(ctx, nil, nexadb.PageSize(64)) {
		if err != nil {
			t.Fatal(err)
		}
		_ = d
		if count++; count == 10 {
			break // cancels the stream
		}
	}
	if count != 10 {
		t.Fatalf("iterated %d", count)
	}
	if total, _ := c.Count(ctx, nil); total != n {
		t.Fatalf("Count = %d", total)
	}
}

func TestDocumentErrors(t *testing.T) {
	ctx := context.Background()
	db := connect(t)
	c := db.Collection(uniqueName("err"))
	if _, err := c.Insert(ctx, D{"_id": "dup"}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Insert(ctx, D{"_id": "dup"}); !errors.Is(err, nexadb.ErrAlreadyExists) {
		t.Fatalf("duplicate: %v", err)
	}
	if _, err := c.Find(ctx, D{"a": D{"$bogus": 1}}); !errors.Is(err, nexadb.ErrInvalidArgument) {
		t.Fatalf("bad filter: %v", err)
	}
	t.Setenv("NEXADB_API_KEY", "")
	anon := connect(t, nexadb.WithAPIKey(""))
	if _, err := anon.Collection(c.Name).Insert(ctx, D{"a": 1}); !errors.Is(err, nexadb.ErrUnauthenticated) {
		t.Fatalf("no key: %v", err)
	}
}

func TestOrderedCompoundSort(t *testing.T) {
	ctx := context.Background()
	c := connect(t).Collection(uniqueName("order"))
	if _, err := c.InsertMany(ctx, []D{{"g": "b", "n": 1}, {"g": "a", "n": 2}, {"g": "a", "n": 1}, {"g": "b", "n": 2}}); err != nil {
		t.Fatal(err)
	}
	pairs := func(docs []D) string {
		var s []string
		for _, d := range docs {
			s = append(s, fmt.Sprintf("%v%v", d["g"], d["n"]))
		}
		return strings.Join(s, " ")
	}
	for _, tc := range []struct {
		sort nexadb.Ordered
		want string
	}{
		{nexadb.Ordered{{Key: "n", Value: -1}, {Key: "g", Value: 1}}, "a2 b2 a1 b1"},
		{nexadb.Ordered{{Key: "g", Value: 1}, {Key: "n", Value: -1}}, "a2 a1 b2 b1"},
	} {
		out, err := c.Aggregate(ctx, []D{{"$sort": tc.sort}})
		if err != nil || pairs(out) != tc.want {
			t.Fatalf("$sort %v = %q, %v; want %q", tc.sort, pairs(out), err, tc.want)
		}
	}
	// an Ordered document keeps its key order in storage; Insert takes one directly
	id, err := c.Insert(ctx, nexadb.Ordered{{Key: "z", Value: 1}, {Key: "a", Value: 2}})
	if err != nil {
		t.Fatal(err)
	}
	if d, err := c.FindByID(ctx, id); err != nil || d["z"] != int64(1) || d["a"] != int64(2) {
		t.Fatalf("FindByID = %v, %v", d, err)
	}
}

func TestMultiKeyMapSortRefused(t *testing.T) {
	c := connect(t).Collection(uniqueName("order"))
	_, err := c.Aggregate(context.Background(), []D{{"$sort": D{"a": 1, "b": -1}}})
	if err == nil || !strings.Contains(err.Error(), "nexadb.Ordered") {
		t.Fatalf("err = %v", err)
	}
}

func TestCreateCollectionAndIndexes(t *testing.T) {
	ctx := context.Background()
	db := connect(t)
	name := uniqueName("idx")
	info, err := db.CreateCollection(ctx, name)
	if err != nil || info.GetName() != name || info.GetCount() != 0 {
		t.Fatalf("CreateCollection = %v, %v", info, err)
	}
	if _, err := db.CreateCollection(ctx, name); !errors.Is(err, nexadb.ErrAlreadyExists) {
		t.Fatalf("second CreateCollection: %v", err)
	}
	c := db.Collection(name)
	if _, err := c.InsertMany(ctx, []D{{"city": "SF", "age": 30, "tags": []string{"a", "b"}}, {"city": "NY", "age": 40}}); err != nil {
		t.Fatal(err)
	}
	idx, err := c.CreateIndex(ctx, []nexadb.IndexField{{Field: "city", Direction: 1}, {Field: "age", Direction: -1}})
	if err != nil || len(idx.GetFields()) != 2 || idx.GetName() == "" {
		t.Fatalf("CreateIndex = %v, %v", idx, err)
	}
	multi, err := c.CreateIndex(ctx, []nexadb.IndexField{{Field: "tags", Direction: 1}}, nexadb.IndexName("by_tags"))
	if err != nil || multi.GetName() != "by_tags" || !multi.GetMultikey() {
		t.Fatalf("multikey index = %v, %v", multi, err)
	}
	uniq, err := c.CreateIndex(ctx, []nexadb.IndexField{{Field: "age", Direction: 1}}, nexadb.Unique())
	if err != nil || !uniq.GetUnique() {
		t.Fatalf("unique index = %v, %v", uniq, err)
	}
	if _, err := c.Insert(ctx, D{"city": "LA", "age": 30}); err == nil {
		t.Fatal("unique index allowed a duplicate")
	}
	list, err := c.ListIndexes(ctx)
	if err != nil || len(list) < 3 {
		t.Fatalf("ListIndexes = %v, %v", list, err)
	}
	if ok, err := c.DropIndex(ctx, "by_tags"); !ok || err != nil {
		t.Fatalf("DropIndex = %v, %v", ok, err)
	}
	if ok, _ := c.DropIndex(ctx, "by_tags"); ok {
		t.Fatal("second DropIndex reported a drop")
	}
}
