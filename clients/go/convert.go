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
// failure, so a request's fields are built in one expression and checked once. Its zero
// value is ready. One bson.Encoder serves the whole request and the documents are copied
// into shared slabs: bson.MarshalValue per document (a writer, a pooled buffer and a copy
// each) cost InsertMany a third of its client time.
type encoder struct {
	err  error
	enc  *bson.Encoder
	slab []byte // where documents are copied; a full one is left to the documents in it
	last []byte // the document the writer flushed last
}

// slabSize is the smallest slab: a batch's small documents share one allocation per slab.
const slabSize = 64 << 10

// Write receives one whole document from the bson writer (it flushes nothing else).
func (e *encoder) Write(p []byte) (int, error) {
	if cap(e.slab)-len(e.slab) < len(p) {
		e.slab = make([]byte, 0, max(slabSize, len(p)))
	}
	n := len(e.slab)
	e.slab = append(e.slab, p...)
	e.last = e.slab[n:len(e.slab):len(e.slab)]
	return len(p), nil
}

// isNil says whether v is nil or a nil map, slice, pointer or interface: BSON null.
func isNil(v any) bool {
	if v == nil {
		return true
	}
	switch rv := reflect.ValueOf(v); rv.Kind() {
	case reflect.Map, reflect.Slice, reflect.Pointer, reflect.Interface:
		return rv.IsNil()
	}
	return false
}

// document encodes v for a request field: nil (or a nil map, slice or pointer) leaves it
// unset. what and index name the field in an error (index < 0: not an element of a list);
// they are formatted only then.
func (e *encoder) document(v any, what string, index int) *pb.Document {
	if e.err != nil || isNil(v) {
		return nil
	}
	if e.enc == nil {
		e.enc = bson.NewEncoder(bson.NewDocumentWriter(e))
	}
	e.last = nil
	if err := e.enc.Encode(v); err != nil || e.last == nil {
		e.enc = nil // the writer is mid-document: the next call starts a fresh one
		e.err = notDocument(v, err, what, index)
		return nil
	}
	return &pb.Document{Bson: e.last}
}

// notDocument is the error for v, which did not encode as a document: why it did not.
func notDocument(v any, err error, what string, index int) error {
	if index >= 0 {
		what = fmt.Sprintf("%s[%d]", what, index)
	}
	if t, _, verr := bson.MarshalValue(v); verr == nil && t != bson.TypeEmbeddedDocument {
		return fmt.Errorf("nexadb: %s: %T is not a document (it encodes as a BSON %s)", what, v, t)
	}
	return fmt.Errorf("nexadb: %s: %w", what, err)
}

// optional encodes v for a request field; nil (or a nil map, slice or pointer) leaves the
// field unset. what names the field in the error.
func (e *encoder) optional(v any, what string) *pb.Document {
	return e.document(v, what, -1)
}

// required is optional for a field the call cannot do without: nil is an error.
func (e *encoder) required(v any, what string) *pb.Document {
	return e.requiredAt(v, what, -1)
}

func (e *encoder) requiredAt(v any, what string, index int) *pb.Document {
	d := e.document(v, what, index)
	if d == nil && e.err == nil {
		if index >= 0 {
			what = fmt.Sprintf("%s[%d]", what, index)
		}
		e.err = fmt.Errorf("nexadb: %s: nil, a document is required", what)
	}
	return d
}

// each encodes every element of vs as a required document named what[i]. (A function, as
// a method cannot take a type parameter: vs is []any or []Document.)
func each[T any](e *encoder, vs []T, what string) []*pb.Document {
	out := make([]*pb.Document, len(vs))
	for i, v := range vs {
		out[i] = e.requiredAt(v, what, i)
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
