package nexadb_test

import (
	"context"
	"errors"
	"fmt"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	nexadb "github.com/nexadb/nexadb/clients/go"
)

// M is for filters and documents whose key order does not matter; bson.D where it does.
type M = bson.M

// field is doc's value for key, nil when it has none.
func field(doc nexadb.Document, key string) any {
	for _, e := range doc {
		if e.Key == key {
			return e.Value
		}
	}
	return nil
}

// userKeys lists doc's keys in order, without the _id and timestamps the server adds.
func userKeys(doc bson.D) []string {
	var out []string
	for _, e := range doc {
		if e.Key != "_id" && e.Key != "_created_at" && e.Key != "_updated_at" {
			out = append(out, e.Key)
		}
	}
	return out
}

func TestQuickStart(t *testing.T) {
	ctx := context.Background()
	users := connect(t).Collection(uniqueName("users"))
	id, err := users.Insert(ctx, M{"name": "Alice Johnson", "email": "alice@example.com", "age": 28, "tags": []string{"go", "database"}})
	if err != nil || id == "" {
		t.Fatalf("Insert = %q, %v", id, err)
	}
	got, err := users.Find(ctx, M{"age": M{"$gt": 25}})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || field(got[0], "name") != "Alice Johnson" || field(got[0], "age") != int32(28) {
		t.Fatalf("Find = %#v", got)
	}
	if tags := field(got[0], "tags"); !reflect.DeepEqual(tags, bson.A{"go", "database"}) {
		t.Fatalf("tags = %#v", tags)
	}
	if ok, err := users.Update(ctx, id, M{"age": 29}); !ok || err != nil {
		t.Fatalf("Update = %v, %v", ok, err)
	}
	doc, err := users.FindByID(ctx, id)
	if err != nil || field(doc, "age") != int32(29) || field(doc, "_id") != id || field(doc, "_created_at") == nil {
		t.Fatalf("FindByID = %#v, %v", doc, err)
	}
	if ok, err := users.Delete(ctx, id); !ok || err != nil {
		t.Fatalf("Delete = %v, %v", ok, err)
	}
	if _, err := users.FindByID(ctx, id); !errors.Is(err, nexadb.ErrNotFound) {
		t.Fatalf("FindByID after delete: %v", err)
	}
}

// The server answers Update and Delete of an id no document has with NOT_FOUND; the SDK
// reports it as false with no error, as before that change.
func TestUpdateDeleteMissingReportFalse(t *testing.T) {
	ctx := context.Background()
	db := connect(t)
	c := db.Collection(uniqueName("missing"))
	id, err := c.Insert(ctx, M{"a": 1})
	if err != nil {
		t.Fatal(err)
	}
	if ok, err := c.Delete(ctx, id); !ok || err != nil {
		t.Fatalf("Delete = %v, %v", ok, err)
	}
	for name, coll := range map[string]*nexadb.Collection{"deleted id": c, "missing collection": db.Collection(uniqueName("none"))} {
		if ok, err := coll.Delete(ctx, id); ok || err != nil {
			t.Errorf("%s: Delete = %v, %v; want false, nil", name, ok, err)
		}
		if ok, err := coll.Update(ctx, id, M{"a": 2}); ok || err != nil {
			t.Errorf("%s: Update = %v, %v; want false, nil", name, ok, err)
		}
	}
	// other errors still come through
	kept, err := c.Insert(ctx, M{"a": 1})
	if err != nil {
		t.Fatal(err)
	}
	if ok, err := c.Update(ctx, kept, M{"$bogus": M{"a": 1}}); ok || !errors.Is(err, nexadb.ErrInvalidArgument) {
		t.Fatalf("Update with a bad operator = %v, %v", ok, err)
	}
}

func TestManyCountFindOneOptions(t *testing.T) {
	ctx := context.Background()
	c := connect(t).Collection(uniqueName("many"))
	var docs []any
	for i := 0; i < 6; i++ {
		docs = append(docs, M{"n": i, "even": i%2 == 0})
	}
	ids, err := c.InsertMany(ctx, docs)
	if err != nil || len(ids) != 6 {
		t.Fatalf("InsertMany = %v, %v", ids, err)
	}
	if n, err := c.Count(ctx, nil); n != 6 || err != nil {
		t.Fatalf("Count = %d, %v", n, err)
	}
	if n, _ := c.Count(ctx, M{"even": true}); n != 3 {
		t.Fatalf("Count even = %d", n)
	}
	if d, err := c.FindOne(ctx, M{"even": true}, nexadb.Sort("n", -1)); err != nil || field(d, "n") != int32(4) {
		t.Fatalf("FindOne = %v, %v", d, err)
	}
	if _, err := c.FindOne(ctx, M{"n": 99}); !errors.Is(err, nexadb.ErrNotFound) {
		t.Fatalf("FindOne none: %v", err)
	}
	got, err := c.Find(ctx, nil, nexadb.Sort("n", -1), nexadb.Limit(3))
	if err != nil || len(got) != 3 || field(got[0], "n") != int32(5) || field(got[2], "n") != int32(3) {
		t.Fatalf("Find sorted = %v, %v", got, err)
	}
	got, _ = c.Find(ctx, M{"even": true}, nexadb.Sort("n", 1), nexadb.Skip(1), nexadb.Limit(2))
	if len(got) != 2 || field(got[0], "n") != int32(2) || field(got[1], "n") != int32(4) {
		t.Fatalf("Find skip = %v", got)
	}
	got, _ = c.Find(ctx, M{"n": 0}, nexadb.Projection(M{"n": 1}))
	if len(got) != 1 || len(got[0]) != 2 || field(got[0], "_id") == nil {
		t.Fatalf("projection = %v", got)
	}
}

func TestUpdateManyDeleteManyAggregate(t *testing.T) {
	ctx := context.Background()
	c := connect(t).Collection(uniqueName("upd"))
	_, err := c.InsertMany(ctx, []any{
		M{"city": "SF", "price": 1200, "category": "Electronics"},
		M{"city": "SF", "price": 25, "category": "Electronics"},
		M{"city": "NY", "price": 300, "category": "Furniture"},
	})
	if err != nil {
		t.Fatal(err)
	}
	if n, err := c.UpdateMany(ctx, M{"city": "SF"}, M{"country": "USA"}); n != 2 || err != nil {
		t.Fatalf("UpdateMany = %d, %v", n, err)
	}
	out, err := c.Aggregate(ctx, []nexadb.Document{
		{{Key: "$group", Value: bson.D{{Key: "_id", Value: "$category"}, {Key: "count", Value: M{"$sum": 1}},
			{Key: "avg_price", Value: M{"$avg": "$price"}}}}},
		{{Key: "$sort", Value: M{"count": -1}}},
	})
	want := []nexadb.Document{
		{{Key: "_id", Value: "Electronics"}, {Key: "count", Value: int32(2)}, {Key: "avg_price", Value: 612.5}},
		// the engine stores a double integral within ±2^53 as an integer (engine/doc/FORMAT.md)
		{{Key: "_id", Value: "Furniture"}, {Key: "count", Value: int32(1)}, {Key: "avg_price", Value: int32(300)}},
	}
	if err != nil || !reflect.DeepEqual(out, want) {
		t.Fatalf("Aggregate = %#v, %v", out, err)
	}
	if n, err := c.DeleteMany(ctx, M{"country": "USA"}); n != 2 || err != nil {
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
		batch := make([]any, 1000)
		for i := range batch {
			batch[i] = M{"i": start + i, "pad": pad}
		}
		if _, err := c.InsertMany(ctx, batch); err != nil {
			t.Fatal(err)
		}
	}
	all, err := c.Find(ctx, nil, nexadb.PageSize(128))
	if err != nil || len(all) != n {
		t.Fatalf("Find = %d docs, %v", len(all), err)
	}
	seen := map[int32]bool{}
	for _, d := range all {
		seen[field(d, "i").(int32)] = true
	}
	if len(seen) != n {
		t.Fatalf("%d distinct", len(seen))
	}
	count := 0
	for _, err := range c.FindIter(ctx, nil, nexadb.PageSize(64)) {
		if err != nil {
			t.Fatal(err)
		}
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
	if _, err := c.Insert(ctx, M{"_id": "dup"}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Insert(ctx, M{"_id": "dup"}); !errors.Is(err, nexadb.ErrAlreadyExists) {
		t.Fatalf("duplicate: %v", err)
	}
	if _, err := c.Find(ctx, M{"a": M{"$bogus": 1}}); !errors.Is(err, nexadb.ErrInvalidArgument) {
		t.Fatalf("bad filter: %v", err)
	}
	// BSON types the server does not store are refused by name
	if _, err := c.Insert(ctx, M{"o": bson.NewObjectID()}); !errors.Is(err, nexadb.ErrInvalidArgument) || !strings.Contains(err.Error(), "ObjectId") {
		t.Fatalf("ObjectId: %v", err)
	}
	t.Setenv("NEXADB_API_KEY", "")
	anon := connect(t, nexadb.WithAPIKey(""))
	if _, err := anon.Collection(c.Name).Insert(ctx, M{"a": 1}); !errors.Is(err, nexadb.ErrUnauthenticated) {
		t.Fatalf("no key: %v", err)
	}
}

// A bson.D keeps its key order through the server, nested documents' too.
func TestKeyOrderRoundTrip(t *testing.T) {
	ctx := context.Background()
	c := connect(t).Collection(uniqueName("order"))
	nested := bson.D{{Key: "y", Value: 1}, {Key: "b", Value: 2}, {Key: "m", Value: 3}}
	id, err := c.Insert(ctx, bson.D{{Key: "zeta", Value: 1}, {Key: "alpha", Value: nested}, {Key: "mid", Value: nil}, {Key: "beta", Value: "x"}})
	if err != nil {
		t.Fatal(err)
	}
	doc, err := c.FindByID(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if got := userKeys(doc); !reflect.DeepEqual(got, []string{"zeta", "alpha", "mid", "beta"}) {
		t.Fatalf("keys %v", got)
	}
	if got := userKeys(field(doc, "alpha").(bson.D)); !reflect.DeepEqual(got, []string{"y", "b", "m"}) {
		t.Fatalf("nested keys %v", got)
	}
}

// Sort options go out as one ordered document, so the first key given sorts first, in Find,
// FindOne and an Aggregate $sort given as a bson.D.
func TestMultiKeySortOrder(t *testing.T) {
	ctx := context.Background()
	c := connect(t).Collection(uniqueName("sort"))
	if _, err := c.InsertMany(ctx, []any{M{"g": "b", "n": 1}, M{"g": "a", "n": 2}, M{"g": "a", "n": 1}, M{"g": "b", "n": 2}}); err != nil {
		t.Fatal(err)
	}
	pairs := func(docs []nexadb.Document) string {
		var s []string
		for _, d := range docs {
			s = append(s, fmt.Sprintf("%v%v", field(d, "g"), field(d, "n")))
		}
		return strings.Join(s, " ")
	}
	for _, tc := range []struct {
		first, second string
		d1, d2        int
		want          string
	}{
		{"n", "g", -1, 1, "a2 b2 a1 b1"},
		{"g", "n", 1, -1, "a2 a1 b2 b1"},
	} {
		out, err := c.Find(ctx, nil, nexadb.Sort(tc.first, tc.d1), nexadb.Sort(tc.second, tc.d2))
		if err != nil || pairs(out) != tc.want {
			t.Fatalf("Find sort %s %s = %q, %v; want %q", tc.first, tc.second, pairs(out), err, tc.want)
		}
		one, err := c.FindOne(ctx, nil, nexadb.Sort(tc.first, tc.d1), nexadb.Sort(tc.second, tc.d2))
		if err != nil || pairs([]nexadb.Document{one}) != tc.want[:2] {
			t.Fatalf("FindOne sort %s %s = %v, %v", tc.first, tc.second, one, err)
		}
		sort := bson.D{{Key: tc.first, Value: tc.d1}, {Key: tc.second, Value: tc.d2}}
		out, err = c.Aggregate(ctx, []nexadb.Document{{{Key: "$sort", Value: sort}}})
		if err != nil || pairs(out) != tc.want {
			t.Fatalf("$sort %v = %q, %v; want %q", sort, pairs(out), err, tc.want)
		}
	}
	_, err := c.Aggregate(ctx, []nexadb.Document{{{Key: "$sort", Value: M{"g": 1, "n": -1}}}})
	if err == nil || !strings.Contains(err.Error(), "bson.D") {
		t.Fatalf("multi-key map $sort: %v", err)
	}
}

// Integers travel as BSON int64, so every int64 is exact, stored and matched.
func TestInt64Exact(t *testing.T) {
	ctx := context.Background()
	c := connect(t).Collection(uniqueName("int64"))
	values := bson.D{
		{Key: "max", Value: int64(math.MaxInt64)}, {Key: "min", Value: int64(math.MinInt64)},
		{Key: "above53", Value: int64(1)<<53 + 1}, {Key: "below53", Value: -(int64(1)<<53 + 1)},
	}
	id, err := c.Insert(ctx, values)
	if err != nil {
		t.Fatal(err)
	}
	doc, err := c.FindByID(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range values {
		if got := field(doc, e.Key); got != e.Value {
			t.Errorf("%s = %#v; want %#v", e.Key, got, e.Value)
		}
	}
	// the engine compares them exactly: 2^53+1 is not 2^53, as it would be as a double
	if n, err := c.Count(ctx, M{"above53": int64(1)<<53 + 1}); n != 1 || err != nil {
		t.Fatalf("Count 2^53+1 = %d, %v", n, err)
	}
	if n, err := c.Count(ctx, M{"above53": int64(1) << 53}); n != 0 || err != nil {
		t.Fatalf("Count 2^53 = %d, %v", n, err)
	}
	var s struct {
		Max int64 `bson:"max"`
		Min int64 `bson:"min"`
	}
	if err := nexadb.Decode(doc, &s); err != nil || s.Max != math.MaxInt64 || s.Min != math.MinInt64 {
		t.Fatalf("Decode = %+v, %v", s, err)
	}
}

// A time.Time is a BSON date (milliseconds, UTC): it comes back equal, decodes to UTC, and
// compares as a date in filters.
func TestDateRoundTrip(t *testing.T) {
	ctx := context.Background()
	c := connect(t).Collection(uniqueName("date"))
	when := time.Date(2024, 2, 29, 23, 59, 58, 987_000_000, time.FixedZone("UTC+5:30", 5*3600+1800))
	id, err := c.Insert(ctx, M{"when": when})
	if err != nil {
		t.Fatal(err)
	}
	doc, err := c.FindByID(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	dt, ok := field(doc, "when").(bson.DateTime)
	if !ok || !dt.Time().Equal(when) {
		t.Fatalf("when = %#v; want %v", field(doc, "when"), when)
	}
	var s struct {
		When time.Time `bson:"when"`
	}
	if err := nexadb.Decode(doc, &s); err != nil || s.When != when.UTC() {
		t.Fatalf("Decode = %v, %v; want %v", s.When, err, when.UTC())
	}
	for _, tc := range []struct {
		op   string
		at   time.Time
		want int64
	}{{"$gt", when.Add(-time.Millisecond), 1}, {"$lt", when, 0}, {"$eq", when, 1}} {
		if n, err := c.Count(ctx, M{"when": M{tc.op: tc.at}}); n != tc.want || err != nil {
			t.Errorf("Count when %s %v = %d, %v; want %d", tc.op, tc.at, n, err, tc.want)
		}
	}
}

func TestBinaryRoundTrip(t *testing.T) {
	ctx := context.Background()
	c := connect(t).Collection(uniqueName("bin"))
	raw := []byte{0, 1, 2, 0xfe, 0xff}
	uuid := bson.Binary{Subtype: 4, Data: []byte("0123456789abcdef")}
	id, err := c.Insert(ctx, M{"raw": raw, "uuid": uuid})
	if err != nil {
		t.Fatal(err)
	}
	doc, err := c.FindByID(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if got := field(doc, "raw"); !reflect.DeepEqual(got, bson.Binary{Data: raw}) {
		t.Fatalf("raw = %#v", got)
	}
	if got := field(doc, "uuid"); !reflect.DeepEqual(got, uuid) {
		t.Fatalf("uuid = %#v", got)
	}
	var s struct {
		Raw []byte `bson:"raw"`
	}
	if err := nexadb.Decode(doc, &s); err != nil || !reflect.DeepEqual(s.Raw, raw) {
		t.Fatalf("Decode = %v, %v", s.Raw, err)
	}
}

// Structs with bson tags go in as documents (in their field order) and results decode into them.
func TestStructDocuments(t *testing.T) {
	type product struct {
		ID    string   `bson:"_id,omitempty"`
		Name  string   `bson:"name"`
		Price float64  `bson:"price"`
		Stock int      `bson:"stock"`
		Tags  []string `bson:"tags,omitempty"`
	}
	ctx := context.Background()
	c := connect(t).Collection(uniqueName("struct"))
	in := []any{
		product{ID: "p1", Name: "Laptop", Price: 999.5, Stock: 3, Tags: []string{"tech"}},
		&product{ID: "p2", Name: "Lamp", Price: 20, Stock: 0},
	}
	if _, err := c.InsertMany(ctx, in); err != nil {
		t.Fatal(err)
	}
	docs, err := c.Find(ctx, M{"stock": M{"$gte": 0}}, nexadb.Sort("_id", 1))
	if err != nil || len(docs) != 2 {
		t.Fatalf("Find = %v, %v", docs, err)
	}
	if got := userKeys(docs[0]); !reflect.DeepEqual(got, []string{"name", "price", "stock", "tags"}) {
		t.Fatalf("keys %v", got)
	}
	var got []product
	for _, d := range docs {
		var p product
		if err := nexadb.Decode(d, &p); err != nil {
			t.Fatal(err)
		}
		got = append(got, p)
	}
	want := []product{in[0].(product), *in[1].(*product)}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %+v", got)
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
	if _, err := c.InsertMany(ctx, []any{M{"city": "SF", "age": 30, "tags": []string{"a", "b"}}, M{"city": "NY", "age": 40}}); err != nil {
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
	if _, err := c.Insert(ctx, M{"city": "LA", "age": 30}); err == nil {
		t.Fatal("unique index allowed a duplicate")
	}
	ttl, err := c.CreateIndex(ctx, []nexadb.IndexField{{Field: "seen", Direction: 1}}, nexadb.ExpireAfter(time.Hour))
	if err != nil || ttl.GetTtl().GetExpireAfterSeconds() != 3600 || uniq.GetTtl() != nil {
		t.Fatalf("TTL index = %v, %v", ttl, err)
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
