package nexadb

import (
	"math"

	"google.golang.org/protobuf/types/known/structpb"
)

// maxSafeInt is 2^53: integers up to it in magnitude survive the trip through a double.
const maxSafeInt = 1 << 53

// Document is a JSON-shaped value: map keys are field names; values are nil, bool, string,
// numbers, []any, map[string]any, Ordered (or other slices and string-keyed maps, which are
// converted; time.Time becomes an RFC 3339 string). Documents read back hold int64 for
// integral numbers within ±2^53 and float64 for the rest, []any for arrays and Document for
// objects. Sending is done by wire.go.
type Document = map[string]any

func joinPath(base, k string) string {
	if base == "" {
		return k
	}
	return base + "." + k
}

// fromStruct converts the wire form back; a nil Struct gives an empty Document.
func fromStruct(s *structpb.Struct) Document {
	d := make(Document, len(s.GetFields()))
	for k, v := range s.GetFields() {
		d[k] = fromValue(v)
	}
	return d
}

func fromValue(v *structpb.Value) any {
	switch k := v.GetKind().(type) {
	case *structpb.Value_NumberValue:
		n := k.NumberValue
		if n == math.Trunc(n) && n >= -maxSafeInt && n <= maxSafeInt {
			return int64(n)
		}
		return n
	case *structpb.Value_StringValue:
		return k.StringValue
	case *structpb.Value_BoolValue:
		return k.BoolValue
	case *structpb.Value_StructValue:
		return fromStruct(k.StructValue)
	case *structpb.Value_ListValue:
		out := make([]any, len(k.ListValue.GetValues()))
		for i, e := range k.ListValue.GetValues() {
			out[i] = fromValue(e)
		}
		return out
	}
	return nil
}
