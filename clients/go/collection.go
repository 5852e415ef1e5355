package nexadb

import (
	"context"
	"fmt"
	"iter"

	"google.golang.org/protobuf/types/known/structpb"

	pb "github.com/nexadb/nexadb/clients/go/nexadbpb"
)

// Collection is a handle on a document collection; cheap to make, safe to share.
type Collection struct {
	c    *Client
	Name string
}

// FindOption refines Find, FindIter and FindOne.
type FindOption func(*findOpts)

type findOpts struct {
	limit, skip int64
	sort        []*pb.SortField
	projection  Document
	pageSize    int32
}

// Limit caps the number of documents (0: no limit).
func Limit(n int64) FindOption { return func(o *findOpts) { o.limit = n } }

// Skip skips the first n matches.
func Skip(n int64) FindOption { return func(o *findOpts) { o.skip = n } }

// Sort orders by field, ascending for dir >= 0 and descending for dir < 0; repeat for more keys.
func Sort(field string, dir int) FindOption {
	return func(o *findOpts) {
		d := pb.SortDirection_SORT_DIRECTION_ASCENDING
		if dir < 0 {
			d = pb.SortDirection_SORT_DIRECTION_DESCENDING
		}
		o.sort = append(o.sort, &pb.SortField{Field: field, Direction: d})
	}
}

// Projection keeps ({"f": 1}) or drops ({"f": 0}) fields.
func Projection(p Document) FindOption { return func(o *findOpts) { o.projection = p } }

// PageSize sets the documents per streamed message (0: the server chooses).
func PageSize(n int32) FindOption { return func(o *findOpts) { o.pageSize = n } }

// Insert inserts one document and returns its id (its "_id" string if it has one).
func (col *Collection) Insert(ctx context.Context, doc Document) (string, error) {
	s, err := toStruct(doc, "")
	if err != nil {
		return "", err
	}
	r, err := call(col.c, ctx, "InsertOne", col.c.docs.InsertOne, &pb.InsertOneRequest{Collection: col.Name, Document: s})
	return r.GetDocumentId(), err
}

// InsertMany inserts documents in one atomic batch and returns their ids in order.
func (col *Collection) InsertMany(ctx context.Context, docs []Document) ([]string, error) {
	req := &pb.InsertManyRequest{Collection: col.Name, Documents: make([]*structpb.Struct, len(docs))}
	for i, d := range docs {
		s, err := toStruct(d, fmt.Sprintf("documents[%d]", i))
		if err != nil {
			return nil, err
		}
		req.Documents[i] = s
	}
	r, err := call(col.c, ctx, "InsertMany", col.c.docs.InsertMany, req)
	return r.GetDocumentIds(), err
}

func (col *Collection) findRequest(filter Document, opts []FindOption) (*pb.FindRequest, error) {
	var o findOpts
	for _, f := range opts {
		f(&o)
	}
	f, err := optStruct(filter, "filter")
	if err != nil {
		return nil, err
	}
	proj, err := optStruct(o.projection, "projection")
	if err != nil {
		return nil, err
	}
	return &pb.FindRequest{Collection: col.Name, Filter: f, Projection: proj, Sort: o.sort,
		Skip: o.skip, Limit: o.limit, PageSize: o.pageSize}, nil
}

// FindIter streams the documents matching filter (nil: all) lazily: the next page is read
// only when the loop needs it, and breaking out of the loop cancels the stream.
//
//	for doc, err := range users.FindIter(ctx, nil) { ... }
func (col *Collection) FindIter(ctx context.Context, filter Document, opts ...FindOption) iter.Seq2[Document, error] {
	req, err := col.findRequest(filter, opts)
	if err != nil {
		return func(yield func(Document, error) bool) { yield(nil, err) }
	}
	return streamDocs(col.c, ctx, "Find", func(ctx context.Context) (pageStream[*pb.FindResponse], error) {
		return col.c.docs.Find(ctx, req)
	})
}

// Find returns every document matching filter (nil: all), subject to opts.
func (col *Collection) Find(ctx context.Context, filter Document, opts ...FindOption) ([]Document, error) {
	return collect(col.FindIter(ctx, filter, opts...))
}

// FindOne returns the first match (after Sort options); an error matching ErrNotFound when
// nothing matched. Limit, Skip and PageSize are ignored.
func (col *Collection) FindOne(ctx context.Context, filter Document, opts ...FindOption) (Document, error) {
	fr, err := col.findRequest(filter, opts)
	if err != nil {
		return nil, err
	}
	r, err := call(col.c, ctx, "FindOne", col.c.docs.FindOne, &pb.FindOneRequest{
		Collection: col.Name, Filter: fr.Filter, Projection: fr.Projection, Sort: fr.Sort})
	if err != nil {
		return nil, err
	}
	if r.Document == nil {
		return nil, &Error{Code: ErrNotFound.Code, Message: "no document matched", Method: "FindOne"}
	}
	return fromStruct(r.Document), nil
}

// FindByID returns the document with this id; an error matching ErrNotFound when absent.
func (col *Collection) FindByID(ctx context.Context, id string) (Document, error) {
	r, err := call(col.c, ctx, "Get", col.c.docs.Get, &pb.GetRequest{Collection: col.Name, Id: id})
	if err != nil {
		return nil, err
	}
	return fromStruct(r.GetDocument()), nil
}

// Count counts the documents matching filter (nil: all).
func (col *Collection) Count(ctx context.Context, filter Document) (int64, error) {
	f, err := optStruct(filter, "filter")
	if err != nil {
		return 0, err
	}
	r, err := call(col.c, ctx, "Count", col.c.docs.Count, &pb.CountRequest{Collection: col.Name, Filter: f})
	return r.GetCount(), err
}

// Update merges fields (or update operators) into one document; false when there is none.
func (col *Collection) Update(ctx context.Context, id string, fields Document) (bool, error) {
	u, err := toStruct(fields, "update")
	if err != nil {
		return false, err
	}
	r, err := call(col.c, ctx, "Update", col.c.docs.Update, &pb.UpdateRequest{Collection: col.Name, Id: id, Update: u})
	return r.GetSuccess(), err
}

// UpdateMany applies update to every match and returns the number modified.
func (col *Collection) UpdateMany(ctx context.Context, filter, update Document) (int64, error) {
	f, err := optStruct(filter, "filter")
	if err != nil {
		return 0, err
	}
	u, err := toStruct(update, "update")
	if err != nil {
		return 0, err
	}
	r, err := call(col.c, ctx, "UpdateMany", col.c.docs.UpdateMany, &pb.UpdateManyRequest{Collection: col.Name, Filter: f, Update: u})
	return r.GetModifiedCount(), err
}

// Delete deletes one document; false when there was none.
func (col *Collection) Delete(ctx context.Context, id string) (bool, error) {
	r, err := call(col.c, ctx, "Delete", col.c.docs.Delete, &pb.DeleteRequest{Collection: col.Name, Id: id})
	return r.GetSuccess(), err
}

// DeleteMany deletes every match (nil: every document) and returns the count.
func (col *Collection) DeleteMany(ctx context.Context, filter Document) (int64, error) {
	f, err := optStruct(filter, "filter")
	if err != nil {
		return 0, err
	}
	r, err := call(col.c, ctx, "DeleteMany", col.c.docs.DeleteMany, &pb.DeleteManyRequest{Collection: col.Name, Filter: f})
	return r.GetDeletedCount(), err
}

// AggregateIter runs a pipeline and streams its output lazily.
func (col *Collection) AggregateIter(ctx context.Context, pipeline []Document) iter.Seq2[Document, error] {
	req := &pb.AggregateRequest{Collection: col.Name, Pipeline: make([]*structpb.Struct, len(pipeline))}
	for i, st := range pipeline {
		s, err := toStruct(st, fmt.Sprintf("pipeline[%d]", i))
		if err != nil {
			return func(yield func(Document, error) bool) { yield(nil, err) }
		}
		req.Pipeline[i] = s
	}
	return streamDocs(col.c, ctx, "Aggregate", func(ctx context.Context) (pageStream[*pb.AggregateResponse], error) {
		return col.c.docs.Aggregate(ctx, req)
	})
}

// Aggregate runs a pipeline and returns its output.
func (col *Collection) Aggregate(ctx context.Context, pipeline []Document) ([]Document, error) {
	return collect(col.AggregateIter(ctx, pipeline))
}

// Drop drops the collection; false when there was none.
func (col *Collection) Drop(ctx context.Context) (bool, error) {
	return col.c.DropCollection(ctx, col.Name)
}
