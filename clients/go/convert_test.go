package nexadb

import (
	"bytes"
	"reflect"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"

	pb "github.com/nexadb/nexadb/clients/go/nexadbpb"
)

// toStruct encodes v as wire.go does for requests.
func toStruct(v any, _ string) (*structpb.Struct, error) {
	b, err := structBody(nil, v, "")
	if err != nil {
		return nil, err
	}
	var s structpb.Struct
	return &s, proto.Unmarshal(b, &s)
}

func roundTrip(t *testing.T, d Document) Document {
	t.Helper()
	b, err := structBody(nil, d, "")
	if err != nil {
		t.Fatal(err)
	}
	var back structpb.Struct
	if err := proto.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	return fromStruct(&back)
}

func TestRoundTripTypes(t *testing.T) {
	in := Document{
		"s": "x", "i": 28, "i64": int64(-5), "u8": uint8(7), "f": 2.5, "f32": float32(0.5),
		"t": true, "n": nil, "arr": []any{1, "a", []any{2}}, "strs": []string{"a", "b"},
		"obj": map[string]any{"k": 1.5}, "typed": map[string]int{"x": 1}, "empty": []any{},
		"big": int64(1) << 53, "when": time.Date(2024, 1, 15, 10, 30, 0, 0, time.UTC),
	}
	want := Document{
		"s": "x", "i": int64(28), "i64": int64(-5), "u8": int64(7), "f": 2.5, "f32": 0.5,
		"t": true, "n": nil, "arr": []any{int64(1), "a", []any{int64(2)}}, "strs": []any{"a", "b"},
		"obj": Document{"k": 1.5}, "typed": Document{"x": int64(1)}, "empty": []any{},
		"big": int64(1) << 53, "when": "2024-01-15T10:30:00Z",
	}
	if got := roundTrip(t, in); !reflect.DeepEqual(got, want) {
		t.Fatalf("got  %#v\nwant %#v", got, want)
	}
}

func TestIntegralBeyondSafeStaysFloat(t *testing.T) {
	got := roundTrip(t, Document{"x": 1e300, "y": 3.0})
	if _, ok := got["x"].(float64); !ok {
		t.Fatalf("1e300 came back as %T", got["x"])
	}
	if got["y"] != int64(3) {
		t.Fatalf("3.0 came back as %#v", got["y"])
	}
}

func TestRefusals(t *testing.T) {
	for _, d := range []Document{
		{"a": int64(1)<<53 + 1},
		{"a": uint64(1) << 60},
		{"a": []any{1, struct{}{}}},
		{"a": map[int]any{1: 1}},
	} {
		if _, err := toStruct(d, ""); err == nil {
			t.Errorf("%v accepted", d)
		}
	}
}

func TestOrderedKeepsKeyOrderOnTheWire(t *testing.T) {
	o := Ordered{{"zeta", 1}, {"alpha", 2}, {"mid", Ordered{{"y", 1}, {"b", 2}}}, {"beta", nil}}
	b, err := structBody(nil, o, "")
	if err != nil {
		t.Fatal(err)
	}
	last := -1
	for _, k := range []string{"zeta", "alpha", "mid", "y", "b", "beta"} {
		i := bytes.Index(b, []byte(k))
		if i <= last {
			t.Fatalf("%q out of order in %q", k, b)
		}
		last = i
	}
	var s structpb.Struct
	if err := proto.Unmarshal(b, &s); err != nil {
		t.Fatal(err)
	}
	want := Document{"zeta": int64(1), "alpha": int64(2), "mid": Document{"y": int64(1), "b": int64(2)}, "beta": nil}
	if got := fromStruct(&s); !reflect.DeepEqual(got, want) {
		t.Fatalf("got %#v", got)
	}
	// encoding agrees with protobuf's own (deterministic) encoding of the same Struct
	ref, _ := proto.MarshalOptions{Deterministic: true}.Marshal(&s)
	again, _ := proto.MarshalOptions{Deterministic: true}.Marshal(mustStruct(t, Document(want)))
	if !bytes.Equal(ref, again) {
		t.Fatal("encodings differ")
	}
}

func TestRequestBuilderMergesFields(t *testing.T) {
	rb := newRequest(&pb.FindRequest{Collection: "c", Limit: 5}).object("filter", Document{"a": 1}, "filter", false).
		object("projection", nil, "projection", false)
	raw, err := rb.done()
	if err != nil {
		t.Fatal(err)
	}
	var m pb.FindRequest
	if err := proto.Unmarshal(raw.b, &m); err != nil {
		t.Fatal(err)
	}
	if m.Collection != "c" || m.Limit != 5 || fromStruct(m.Filter)["a"] != int64(1) || m.Projection != nil {
		t.Fatalf("got %v", &m)
	}
	if _, err := newRequest(&pb.CountRequest{}).object("filter", Document{"x": make(chan int)}, "filter", false).done(); err == nil {
		t.Fatal("bad value accepted")
	}
}

func mustStruct(t *testing.T, d Document) *structpb.Struct {
	t.Helper()
	s, err := toStruct(d, "")
	if err != nil {
		t.Fatal(err)
	}
	return s
}
