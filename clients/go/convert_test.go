package nexadb

import (
	"errors"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"google.golang.org/grpc/codes"

	pb "github.com/nexadb/nexadb/clients/go/nexadbpb"
)

// encode is encoder.optional for one value, failing the test on an error.
func encode(t *testing.T, v any) *pb.Document {
	t.Helper()
	var enc encoder
	d := enc.optional(v, "doc")
	if enc.err != nil {
		t.Fatal(enc.err)
	}
	return d
}

// keys lists a document's top-level keys in their wire order.
func keys(t *testing.T, d *pb.Document) []string {
	t.Helper()
	elems, err := bson.Raw(d.GetBson()).Elements()
	if err != nil {
		t.Fatal(err)
	}
	out := make([]string, len(elems))
	for i, e := range elems {
		out[i] = e.Key()
	}
	return out
}

func TestEncodeKeepsKeyOrder(t *testing.T) {
	in := Document{{Key: "zeta", Value: 1}, {Key: "alpha", Value: bson.D{{Key: "y", Value: 1}, {Key: "b", Value: 2}}}, {Key: "mid", Value: nil}}
	d := encode(t, in)
	if got := keys(t, d); !reflect.DeepEqual(got, []string{"zeta", "alpha", "mid"}) {
		t.Fatalf("keys %v", got)
	}
	back, err := fromDocument(d)
	if err != nil {
		t.Fatal(err)
	}
	want := Document{{Key: "zeta", Value: int32(1)}, {Key: "alpha", Value: bson.D{{Key: "y", Value: int32(1)}, {Key: "b", Value: int32(2)}}}, {Key: "mid", Value: nil}}
	if !reflect.DeepEqual(back, want) {
		t.Fatalf("got %#v", back)
	}
}

func TestEncodeTypes(t *testing.T) {
	when := time.Date(2024, 1, 15, 10, 30, 0, 123_000_000, time.FixedZone("CET", 3600))
	in := bson.M{
		"small": 28, "i64": int64(5), "max": int64(math.MaxInt64), "min": int64(math.MinInt64),
		"f": 2.5, "s": "x", "t": true, "n": nil, "when": when, "bin": []byte{0, 1, 255},
		"sub": bson.Binary{Subtype: 4, Data: []byte{9}}, "arr": []any{1, "a"}, "obj": map[string]int{"k": 1},
	}
	got, err := fromDocument(encode(t, in))
	if err != nil {
		t.Fatal(err)
	}
	var m bson.M
	if err := Decode(got, &m); err != nil {
		t.Fatal(err)
	}
	want := bson.M{
		// Go int within int32 goes out as int32, int64 always as int64
		"small": int32(28), "i64": int64(5), "max": int64(math.MaxInt64), "min": int64(math.MinInt64),
		"f": 2.5, "s": "x", "t": true, "n": nil, "when": bson.NewDateTimeFromTime(when),
		"bin": bson.Binary{Data: []byte{0, 1, 255}}, "sub": bson.Binary{Subtype: 4, Data: []byte{9}},
		"arr": bson.A{int32(1), "a"}, "obj": bson.D{{Key: "k", Value: int32(1)}},
	}
	if !reflect.DeepEqual(m, want) {
		t.Fatalf("got  %#v\nwant %#v", m, want)
	}
}

func TestDecodeIntoStruct(t *testing.T) {
	type user struct {
		ID   string    `bson:"_id"`
		Age  int64     `bson:"age"`
		When time.Time `bson:"when"`
		Bin  []byte    `bson:"bin"`
		Tags []string  `bson:"tags"`
	}
	when := time.Date(2024, 1, 15, 10, 30, 0, 123_000_000, time.UTC)
	doc := Document{{Key: "_id", Value: "u1"}, {Key: "age", Value: int32(28)}, {Key: "when", Value: bson.NewDateTimeFromTime(when)},
		{Key: "bin", Value: bson.Binary{Data: []byte{1, 2}}}, {Key: "tags", Value: bson.A{"a", "b"}}}
	var u user
	if err := Decode(doc, &u); err != nil {
		t.Fatal(err)
	}
	want := user{ID: "u1", Age: 28, When: when, Bin: []byte{1, 2}, Tags: []string{"a", "b"}}
	if !reflect.DeepEqual(u, want) {
		t.Fatalf("got %+v", u)
	}
	if err := Decode(nil, &u); err != nil {
		t.Fatalf("nil document: %v", err)
	}
	if err := Decode(doc, u); err == nil || !strings.Contains(err.Error(), "Decode into nexadb.user") {
		t.Fatalf("non-pointer: %v", err)
	}
}

func TestEncodeAbsentAndRefused(t *testing.T) {
	for _, v := range []any{nil, Document(nil), map[string]any(nil), (*struct{})(nil)} {
		if d := encode(t, v); d != nil {
			t.Errorf("%#v encoded as %v; want unset", v, d)
		}
	}
	var enc encoder
	if enc.required(nil, "document"); enc.err == nil || !strings.Contains(enc.err.Error(), "document: nil") {
		t.Fatalf("required nil: %v", enc.err)
	}
	for _, tc := range []struct {
		v   any
		msg string // "" for accepted
	}{
		{5, "int is not a document (it encodes as a BSON 32-bit integer)"},
		{"s", "string is not a document"},
		{&[]int{1}, "*[]int is not a document (it encodes as a BSON array)"},
		{bson.M{"u": uint64(1) << 63}, "overflows int64"},
		{&bson.D{{Key: "c"}}, ""}, // a pointer to a document is one
	} {
		var enc encoder
		d := enc.optional(tc.v, "filter")
		if tc.msg == "" {
			if enc.err != nil || d == nil {
				t.Errorf("%T refused: %v", tc.v, enc.err)
			}
			continue
		}
		if enc.err == nil || !strings.Contains(enc.err.Error(), "nexadb: filter: ") || !strings.Contains(enc.err.Error(), tc.msg) {
			t.Errorf("%T: err %v; want %q", tc.v, enc.err, tc.msg)
		}
	}
	// the first failure sticks and names its element
	enc = encoder{}
	docs := each(&enc, []any{bson.M{}, bson.M{"c": make(chan int)}, 1}, "documents")
	if enc.err == nil || !strings.Contains(enc.err.Error(), "documents[1]: ") || docs[2] != nil {
		t.Fatalf("each: %v, %v", enc.err, docs)
	}
}

func TestFromDocument(t *testing.T) {
	if d, err := fromDocument(nil); err != nil || d == nil || len(d) != 0 {
		t.Fatalf("unset: %#v, %v", d, err)
	}
	if _, err := fromDocument(&pb.Document{Bson: []byte{9, 0, 0, 0}}); err == nil || !strings.Contains(err.Error(), "not valid BSON") {
		t.Fatalf("bad BSON: %v", err)
	}
}

func TestSortOptionIsOneOrderedDocument(t *testing.T) {
	o := findOptions([]FindOption{Sort("age", -1), Sort("_id", 1), Sort("name", 0)})
	want := Document{{Key: "age", Value: int32(-1)}, {Key: "_id", Value: int32(1)}, {Key: "name", Value: int32(1)}}
	if !reflect.DeepEqual(o.sort, want) {
		t.Fatalf("sort %#v", o.sort)
	}
}

func TestCheckStage(t *testing.T) {
	ok := []Document{
		{{Key: "$sort", Value: bson.D{{Key: "a", Value: 1}, {Key: "b", Value: -1}}}},
		{{Key: "$sort", Value: bson.M{"a": 1}}},
		{{Key: "$group", Value: bson.M{"_id": "$a", "n": bson.M{"$sum": 1}}}},
	}
	for _, st := range ok {
		if err := checkStage(st, 0); err != nil {
			t.Errorf("%v: %v", st, err)
		}
	}
	err := checkStage(Document{{Key: "$sort", Value: map[string]int{"a": 1, "b": -1}}}, 3)
	if err == nil || !strings.Contains(err.Error(), "pipeline[3].$sort") || !strings.Contains(err.Error(), "bson.D") {
		t.Fatalf("multi-key map $sort: %v", err)
	}
}

func TestFoundTakesOnlyNotFound(t *testing.T) {
	if ok, err := found(nil); !ok || err != nil {
		t.Fatalf("nil: %v, %v", ok, err)
	}
	if ok, err := found(&Error{Code: codes.NotFound, Message: "no document", Method: "Update"}); ok || err != nil {
		t.Fatalf("NOT_FOUND: %v, %v", ok, err)
	}
	denied := &Error{Code: codes.PermissionDenied}
	if ok, err := found(denied); ok || !errors.Is(err, ErrPermissionDenied) {
		t.Fatalf("PERMISSION_DENIED: %v, %v", ok, err)
	}
}
