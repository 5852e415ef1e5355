package nexadb

import (
	"fmt"
	"math"
	"reflect"
	"sort"
	"time"

	"google.golang.org/protobuf/types/known/structpb"
)

// maxSafeInt is 2^53: integers up to it in magnitude survive the trip through a double.
const maxSafeInt = 1 << 53

// Document is a JSON-shaped value: map keys are field names; values are nil, bool, string,
// numbers, []any, map[string]any (or other slices and string-keyed maps, which are
// converted). Documents read back hold int64 for integral numbers within ±2^53 and float64
// for the rest, []any for arrays and Document for objects.
type Document = map[string]any

// toStruct converts a Document to the wire form. what names it in errors.
func toStruct(d Document, what string) (*structpb.Struct, error) {
	s := &structpb.Struct{Fields: make(map[string]*structpb.Value, len(d))}
	for k, v := range d {
		pv, err := toValue(v, joinPath(what, k))
		if err != nil {
			return nil, err
		}
		s.Fields[k] = pv
	}
	return s, nil
}

// optStruct is toStruct with nil meaning "unset".
func optStruct(d Document, what string) (*structpb.Struct, error) {
	if d == nil {
		return nil, nil
	}
	return toStruct(d, what)
}

func joinPath(base, k string) string {
	if base == "" {
		return k
	}
	return base + "." + k
}

func toValue(v any, path string) (*structpb.Value, error) {
	switch x := v.(type) {
	case nil:
		return structpb.NewNullValue(), nil
	case bool:
		return structpb.NewBoolValue(x), nil
	case string:
		return structpb.NewStringValue(x), nil
	case float64:
		return structpb.NewNumberValue(x), nil
	case float32:
		return structpb.NewNumberValue(float64(x)), nil
	case int:
		return intValue(int64(x), path)
	case int8:
		return intValue(int64(x), path)
	case int16:
		return intValue(int64(x), path)
	case int32:
		return intValue(int64(x), path)
	case int64:
		return intValue(x, path)
	case uint:
		return uintValue(uint64(x), path)
	case uint8:
		return uintValue(uint64(x), path)
	case uint16:
		return uintValue(uint64(x), path)
	case uint32:
		return uintValue(uint64(x), path)
	case uint64:
		return uintValue(x, path)
	case time.Time:
		return structpb.NewStringValue(x.UTC().Format(time.RFC3339Nano)), nil
	case map[string]any:
		s, err := toStruct(x, path)
		if err != nil {
			return nil, err
		}
		return structpb.NewStructValue(s), nil
	case []any:
		l := &structpb.ListValue{Values: make([]*structpb.Value, len(x))}
		for i, e := range x {
			pv, err := toValue(e, fmt.Sprintf("%s[%d]", path, i))
			if err != nil {
				return nil, err
			}
			l.Values[i] = pv
		}
		return structpb.NewListValue(l), nil
	}
	// other slices ([]string, []float32...) and string-keyed maps, by reflection
	rv := reflect.ValueOf(v)
	switch rv.Kind() {
	case reflect.Slice, reflect.Array:
		l := &structpb.ListValue{Values: make([]*structpb.Value, rv.Len())}
		for i := 0; i < rv.Len(); i++ {
			pv, err := toValue(rv.Index(i).Interface(), fmt.Sprintf("%s[%d]", path, i))
			if err != nil {
				return nil, err
			}
			l.Values[i] = pv
		}
		return structpb.NewListValue(l), nil
	case reflect.Map:
		if rv.Type().Key().Kind() != reflect.String {
			return nil, fmt.Errorf("nexadb: %s: map keys must be strings, not %s", path, rv.Type().Key())
		}
		s := &structpb.Struct{Fields: make(map[string]*structpb.Value, rv.Len())}
		keys := rv.MapKeys()
		sort.Slice(keys, func(i, j int) bool { return keys[i].String() < keys[j].String() })
		for _, k := range keys {
			pv, err := toValue(rv.MapIndex(k).Interface(), joinPath(path, k.String()))
			if err != nil {
				return nil, err
			}
			s.Fields[k.String()] = pv
		}
		return structpb.NewStructValue(s), nil
	}
	return nil, fmt.Errorf("nexadb: %s: %T is not a JSON value", path, v)
}

func intValue(x int64, path string) (*structpb.Value, error) {
	if x > maxSafeInt || x < -maxSafeInt {
		return nil, fmt.Errorf("nexadb: %s: integer %d is outside ±2^53 and cannot be stored exactly", path, x)
	}
	return structpb.NewNumberValue(float64(x)), nil
}

func uintValue(x uint64, path string) (*structpb.Value, error) {
	if x > maxSafeInt {
		return nil, fmt.Errorf("nexadb: %s: integer %d is outside ±2^53 and cannot be stored exactly", path, x)
	}
	return structpb.NewNumberValue(float64(x)), nil
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
