package nexadb

import (
	"reflect"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"
)

func roundTrip(t *testing.T, d Document) Document {
	t.Helper()
	s, err := toStruct(d, "")
	if err != nil {
		t.Fatal(err)
	}
	b, err := proto.Marshal(s)
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
