package nexadb

import (
	"fmt"
	"reflect"

	"go.mongodb.org/mongo-driver/v2/bson"

	pb "github.com/nexadb/nexadb/clients/go/nexadbpb"
)

// Document is a document as the server returns it: a bson.D, whose keys keep the order the
// document was stored in. Values are int32 (an integer within int32) or int64 (any other),
// float64, string, bool, nil, bson.DateTime (.Time() is the time.Time, UTC), bson.Binary,
// bson.A for arrays and bson.D for nested documents. Decode turns one into a struct or map.
//
// Anything bson.Marshal takes as a document may be sent where a method takes `any`: a
// Document or bson.D (whose key order is kept: use one where order matters), a map with
// string keys (bson.M), a struct with bson tags, or a pointer to one of these.
type Document = bson.D

// Decode stores doc in v, which must be a pointer: to a struct (bson tags name its fields),
// a map or a bson.D. A time.Time field takes a date and a []byte field a binary; numbers
// convert as bson.Unmarshal converts them. It is the mongo driver's Cursor.Decode for a
// document this package returned.
func Decode(doc Document, v any) error {
	if doc == nil {
		doc = Document{} // bson.Marshal refuses a nil D: it would be a BSON null
	}
	b, err := bson.Marshal(doc)
	if err == nil {
		err = bson.Unmarshal(b, v)
	}
	if err != nil {
		return fmt.Errorf("nexadb: Decode into %T: %w", v, err)
	}
	return nil
}

// encoder turns the documents of one request into their wire form, remembering the first
// failure, so a request's fields are built in one expression and checked once.
type encoder struct{ err error }

// optional encodes v for a request field; nil (or a nil map, slice or pointer) leaves the
// field unset. what names the field in the error.
func (e *encoder) optional(v any, what string) *pb.Document {
	if e.err != nil || v == nil {
		return nil
	}
	t, b, err := bson.MarshalValue(v)
	switch {
	case err != nil:
		e.err = fmt.Errorf("nexadb: %s: %w", what, err)
	case t == bson.TypeNull:
		return nil
	case t != bson.TypeEmbeddedDocument:
		e.err = fmt.Errorf("nexadb: %s: %T is not a document (it encodes as a BSON %s)", what, v, t)
	default:
		return &pb.Document{Bson: b}
	}
	return nil
}

// required is optional for a field the call cannot do without: nil is an error.
func (e *encoder) required(v any, what string) *pb.Document {
	d := e.optional(v, what)
	if d == nil && e.err == nil {
		e.err = fmt.Errorf("nexadb: %s: nil, a document is required", what)
	}
	return d
}

// each encodes every element of vs as a required document named what[i]. (A function, as
// a method cannot take a type parameter: vs is []any or []Document.)
func each[T any](e *encoder, vs []T, what string) []*pb.Document {
	out := make([]*pb.Document, len(vs))
	for i, v := range vs {
		out[i] = e.required(v, fmt.Sprintf("%s[%d]", what, i))
	}
	return out
}

// fromDocument decodes a document of a response; an unset one is empty.
func fromDocument(d *pb.Document) (Document, error) {
	if len(d.GetBson()) == 0 {
		return Document{}, nil
	}
	var out Document
	if err := bson.Unmarshal(d.GetBson(), &out); err != nil {
		return nil, fmt.Errorf("nexadb: the server sent a document that is not valid BSON: %w", err)
	}
	return out, nil
}

// checkStage refuses a pipeline stage whose $sort is a Go map of several keys: a map has no
// key order, so the sort keys would apply in a random order.
func checkStage(stage Document, i int) error {
	for _, e := range stage {
		if e.Key != "$sort" || e.Value == nil {
			continue
		}
		if v := reflect.ValueOf(e.Value); v.Kind() == reflect.Map && v.Len() > 1 {
			return fmt.Errorf("nexadb: pipeline[%d].$sort: a Go map has no key order; "+
				"use a bson.D for a multi-key sort: bson.D{{Key: \"count\", Value: -1}, {Key: \"_id\", Value: 1}}", i)
		}
	}
	return nil
}
