package nexadb

import (
	"fmt"
	"math"
	"reflect"
	"sort"
	"time"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// Field is one key and value of an Ordered object.
type Field struct {
	Key   string
	Value any
}

// Ordered is an object whose keys keep their order, for where order matters: a compound
// $sort or a $project in a pipeline, or the stored key order of a document. (A Go map has no
// order; Document keys are sent sorted.) It may stand anywhere a Document or an object
// value may:
//
//	nexadb.Document{"$sort": nexadb.Ordered{{"count", -1}, {"_id", 1}}}
type Ordered []Field

// Request Struct fields are encoded here rather than by proto.Marshal, which writes the
// entries of a map (google.protobuf.Struct.fields) in random order; the server keeps the
// wire order of keys. The rest of a request is proto.Marshal's output; protobuf parsing merges
// the appended fields into the same message.
//
// Wire format (protobuf encoding): Struct {map<string, Value> fields = 1} with each entry
// {string key = 1; Value value = 2}; Value {null_value = 1 (varint); double number_value = 2
// (fixed64); string string_value = 3; bool bool_value = 4; Struct struct_value = 5;
// ListValue list_value = 6}; ListValue {repeated Value values = 1}.

// rawRequest is a request already serialized; codec passes it through.
type rawRequest struct{ b []byte }

type reqBuilder struct {
	raw    rawRequest
	fields protoreflect.FieldDescriptors
	err    error
}

// newRequest starts a request from base (its non-Struct fields).
func newRequest(base proto.Message) *reqBuilder {
	b, err := proto.Marshal(base)
	return &reqBuilder{raw: rawRequest{b: b}, fields: base.ProtoReflect().Descriptor().Fields(), err: err}
}

func (r *reqBuilder) number(name string) protowire.Number {
	f := r.fields.ByName(protoreflect.Name(name))
	if f == nil {
		panic("nexadb: no field " + name) // a programming error in this package
	}
	return f.Number()
}

// object appends field name holding v (a Document, map or Ordered) as a Struct. A nil v is
// skipped unless required, which sends an empty Struct.
func (r *reqBuilder) object(name string, v any, what string, required bool) *reqBuilder {
	if r.err != nil {
		return r
	}
	if isNil(v) {
		if required {
			r.raw.b = protowire.AppendTag(r.raw.b, r.number(name), protowire.BytesType)
			r.raw.b = protowire.AppendVarint(r.raw.b, 0)
		}
		return r
	}
	body, err := structBody(nil, v, what)
	if err != nil {
		r.err = err
		return r
	}
	r.raw.b = protowire.AppendTag(r.raw.b, r.number(name), protowire.BytesType)
	r.raw.b = protowire.AppendBytes(r.raw.b, body)
	return r
}

// message appends field name holding an already built sub-message.
func (r *reqBuilder) message(name string, sub *reqBuilder) *reqBuilder {
	if r.err == nil && sub.err != nil {
		r.err = sub.err
	}
	if r.err != nil {
		return r
	}
	r.raw.b = protowire.AppendTag(r.raw.b, r.number(name), protowire.BytesType)
	r.raw.b = protowire.AppendBytes(r.raw.b, sub.raw.b)
	return r
}

func (r *reqBuilder) done() (*rawRequest, error) { return &r.raw, r.err }

func isNil(v any) bool {
	if v == nil {
		return true
	}
	rv := reflect.ValueOf(v)
	switch rv.Kind() {
	case reflect.Map, reflect.Slice, reflect.Pointer:
		return rv.IsNil()
	}
	return false
}

// structBody appends the encoded Struct for an object value: Ordered in its order, a map with
// string keys in sorted key order.
func structBody(b []byte, v any, path string) ([]byte, error) {
	entry := func(b []byte, k string, x any) ([]byte, error) {
		val, err := appendValue(nil, x, joinPath(path, k))
		if err != nil {
			return nil, err
		}
		e := protowire.AppendTag(nil, 1, protowire.BytesType)
		e = protowire.AppendString(e, k)
		e = protowire.AppendTag(e, 2, protowire.BytesType)
		e = protowire.AppendBytes(e, val)
		b = protowire.AppendTag(b, 1, protowire.BytesType)
		return protowire.AppendBytes(b, e), nil
	}
	var err error
	switch o := v.(type) {
	case Ordered:
		for _, f := range o {
			if b, err = entry(b, f.Key, f.Value); err != nil {
				return nil, err
			}
		}
		return b, nil
	case map[string]any:
		keys := make([]string, 0, len(o))
		for k := range o {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			if b, err = entry(b, k, o[k]); err != nil {
				return nil, err
			}
		}
		return b, nil
	}
	rv := reflect.ValueOf(v)
	if rv.Kind() != reflect.Map || rv.Type().Key().Kind() != reflect.String {
		if path == "" {
			path = "value"
		}
		return nil, fmt.Errorf("nexadb: %s: %T is not an object", path, v)
	}
	keys := rv.MapKeys()
	sort.Slice(keys, func(i, j int) bool { return keys[i].String() < keys[j].String() })
	for _, k := range keys {
		if b, err = entry(b, k.String(), rv.MapIndex(k).Interface()); err != nil {
			return nil, err
		}
	}
	return b, nil
}

func appendNumber(b []byte, f float64) []byte {
	b = protowire.AppendTag(b, 2, protowire.Fixed64Type)
	return protowire.AppendFixed64(b, math.Float64bits(f))
}

func appendInt(b []byte, x int64, path string) ([]byte, error) {
	if x > maxSafeInt || x < -maxSafeInt {
		return nil, fmt.Errorf("nexadb: %s: integer %d is outside ±2^53 and cannot be stored exactly", path, x)
	}
	return appendNumber(b, float64(x)), nil
}

func appendUint(b []byte, x uint64, path string) ([]byte, error) {
	if x > maxSafeInt {
		return nil, fmt.Errorf("nexadb: %s: integer %d is outside ±2^53 and cannot be stored exactly", path, x)
	}
	return appendNumber(b, float64(x)), nil
}

// appendValue appends the encoded google.protobuf.Value for x.
func appendValue(b []byte, x any, path string) ([]byte, error) {
	switch v := x.(type) {
	case nil:
		b = protowire.AppendTag(b, 1, protowire.VarintType)
		return protowire.AppendVarint(b, 0), nil
	case bool:
		b = protowire.AppendTag(b, 4, protowire.VarintType)
		return protowire.AppendVarint(b, protowire.EncodeBool(v)), nil
	case string:
		b = protowire.AppendTag(b, 3, protowire.BytesType)
		return protowire.AppendString(b, v), nil
	case float64:
		return appendNumber(b, v), nil
	case float32:
		return appendNumber(b, float64(v)), nil
	case int:
		return appendInt(b, int64(v), path)
	case int8:
		return appendInt(b, int64(v), path)
	case int16:
		return appendInt(b, int64(v), path)
	case int32:
		return appendInt(b, int64(v), path)
	case int64:
		return appendInt(b, v, path)
	case uint:
		return appendUint(b, uint64(v), path)
	case uint8:
		return appendUint(b, uint64(v), path)
	case uint16:
		return appendUint(b, uint64(v), path)
	case uint32:
		return appendUint(b, uint64(v), path)
	case uint64:
		return appendUint(b, v, path)
	case time.Time:
		b = protowire.AppendTag(b, 3, protowire.BytesType)
		return protowire.AppendString(b, v.UTC().Format(time.RFC3339Nano)), nil
	case Ordered, map[string]any:
		body, err := structBody(nil, v, path)
		if err != nil {
			return nil, err
		}
		b = protowire.AppendTag(b, 5, protowire.BytesType)
		return protowire.AppendBytes(b, body), nil
	}
	rv := reflect.ValueOf(x)
	switch rv.Kind() {
	case reflect.Map:
		body, err := structBody(nil, x, path)
		if err != nil {
			return nil, err
		}
		b = protowire.AppendTag(b, 5, protowire.BytesType)
		return protowire.AppendBytes(b, body), nil
	case reflect.Slice, reflect.Array:
		var list []byte
		for i := 0; i < rv.Len(); i++ {
			val, err := appendValue(nil, rv.Index(i).Interface(), fmt.Sprintf("%s[%d]", path, i))
			if err != nil {
				return nil, err
			}
			list = protowire.AppendTag(list, 1, protowire.BytesType)
			list = protowire.AppendBytes(list, val)
		}
		b = protowire.AppendTag(b, 6, protowire.BytesType)
		return protowire.AppendBytes(b, list), nil
	}
	return nil, fmt.Errorf("nexadb: %s: %T is not a JSON value", path, x)
}

// codec sends rawRequest bytes as they are and (un)marshals everything else with proto.
type codec struct{}

func (codec) Marshal(v any) ([]byte, error) {
	if r, ok := v.(*rawRequest); ok {
		return r.b, nil
	}
	m, ok := v.(proto.Message)
	if !ok {
		return nil, fmt.Errorf("nexadb: cannot marshal %T", v)
	}
	return proto.Marshal(m)
}

func (codec) Unmarshal(data []byte, v any) error {
	m, ok := v.(proto.Message)
	if !ok {
		return fmt.Errorf("nexadb: cannot unmarshal into %T", v)
	}
	return proto.Unmarshal(data, m)
}

func (codec) Name() string { return "proto" }
