package nexadb

import (
	"context"
	"fmt"
	"iter"

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
	projection  any
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

// Projection keeps ({"f": 1}) or drops ({"f": 0}) fields; a Document or an Ordered.
func Projection(p any) FindOption { return func(o *findOpts) { o.projection = p } }

// PageSize sets the documents per streamed message (0: the server chooses).
func PageSize(n int32) FindOption { return func(o *findOpts) { o.pageSize = n } }

// Insert inserts one document (a Document or an Ordered, whose key order is kept) and
// returns its id (its "_id" string if it has one).
func (col *Collection) Insert(ctx context.Context, doc any) (string, error) {
	if isNil(doc) {
		return "", fmt.Errorf("nexadb: Insert: nil document")
	}
	r := new(pb.InsertOneResponse)
	rb := newRequest(&pb.InsertOneRequest{Collection: col.Name}).object("document", doc, "", true)
	err := col.c.invokeRaw(ctx, pb.DocumentService_InsertOne_FullMethodName, rb, r)
	return r.GetDocumentId(), err
}

// InsertMany inserts documents in one atomic batch and returns their ids in order.
func (col *Collection) InsertMany(ctx context.Context, docs []Document) ([]string, error) {
	rb := newRequest(&pb.InsertManyRequest{Collection: col.Name})
	for i, d := range docs {
		rb.object("documents", d, fmt.Sprintf("documents[%d]", i), true)
	}
	r := new(pb.InsertManyResponse)
	err := col.c.invokeRaw(ctx, pb.DocumentService_InsertMany_FullMethodName, rb, r)
	return r.GetDocumentIds(), err
}

func (col *Collection) findRequest(filter any, opts []FindOption) *reqBuilder {
	var o findOpts
	for _, f := range opts {
		f(&o)
	}
	return newRequest(&pb.FindRequest{Collection: col.Name, Sort: o.sort, Skip: o.skip, Limit: o.limit, PageSize: o.pageSize}).
		object("filter", filter, "filter", false).
		object("projection", o.projection, "projection", false)
}

// FindIter streams the documents matching filter (nil: all) lazily: the next page is read
// only when the loop needs it, and breaking out of the loop cancels the stream.
//
//	for doc, err := range users.FindIter(ctx, nil) { ... }
func (col *Collection) FindIter(ctx context.Context, filter any, opts ...FindOption) iter.Seq2[Document, error] {
	return streamDocs(col.c, ctx, pb.DocumentService_Find_FullMethodName, col.findRequest(filter, opts),
		func() *pb.FindResponse { return new(pb.FindResponse) })
}

// Find returns every document matching filter (nil: all), subject to opts.
func (col *Collection) Find(ctx context.Context, filter any, opts ...FindOption) ([]Document, error) {
	return collect(col.FindIter(ctx, filter, opts...))
}

// FindOne returns the first match (after Sort options); an error matching ErrNotFound when
// nothing matched. Limit, Skip and PageSize are ignored.
func (col *Collection) FindOne(ctx context.Context, filter any, opts ...FindOption) (Document, error) {
	var o findOpts
	for _, f := range opts {
		f(&o)
	}
	rb := newRequest(&pb.FindOneRequest{Collection: col.Name, Sort: o.sort}).
		object("filter", filter, "filter", false).
		object("projection", o.projection, "projection", false)
	r := new(pb.FindOneResponse)
	if err := col.c.invokeRaw(ctx, pb.DocumentService_FindOne_FullMethodName, rb, r); err != nil {
		return nil, err
	}
	if r.Document == nil {
		return nil, &Error{Code: ErrNotFound.Code, Message: "no document matched", Method: "FindOne"}
	}
	return fromStruct(r.Document), nil
}

// FindByID returns the document with this id; an error matching ErrNotFound when absent.
func (col *Collection) FindByID(ctx context.Context, id string) (Document, error) {
	r := new(pb.GetResponse)
	if err := col.c.invoke(ctx, pb.DocumentService_Get_FullMethodName, &pb.GetRequest{Collection: col.Name, Id: id}, r); err != nil {
		return nil, err
	}
	return fromStruct(r.GetDocument()), nil
}

// Count counts the documents matching filter (nil: all).
func (col *Collection) Count(ctx context.Context, filter any) (int64, error) {
	r := new(pb.CountResponse)
	rb := newRequest(&pb.CountRequest{Collection: col.Name}).object("filter", filter, "filter", false)
	err := col.c.invokeRaw(ctx, pb.DocumentService_Count_FullMethodName, rb, r)
	return r.GetCount(), err
}

// Update merges fields (or update operators) into one document; false when there is none.
func (col *Collection) Update(ctx context.Context, id string, fields any) (bool, error) {
	r := new(pb.UpdateResponse)
	rb := newRequest(&pb.UpdateRequest{Collection: col.Name, Id: id}).object("update", fields, "update", true)
	err := col.c.invokeRaw(ctx, pb.DocumentService_Update_FullMethodName, rb, r)
	return r.GetSuccess(), err
}

// UpdateMany applies update to every match and returns the number modified.
func (col *Collection) UpdateMany(ctx context.Context, filter, update any) (int64, error) {
	r := new(pb.UpdateManyResponse)
	rb := newRequest(&pb.UpdateManyRequest{Collection: col.Name}).
		object("filter", filter, "filter", false).object("update", update, "update", true)
	err := col.c.invokeRaw(ctx, pb.DocumentService_UpdateMany_FullMethodName, rb, r)
	return r.GetModifiedCount(), err
}

// Delete deletes one document; false when there was none.
func (col *Collection) Delete(ctx context.Context, id string) (bool, error) {
	r := new(pb.DeleteResponse)
	err := col.c.invoke(ctx, pb.DocumentService_Delete_FullMethodName, &pb.DeleteRequest{Collection: col.Name, Id: id}, r)
	return r.GetSuccess(), err
}

// DeleteMany deletes every match (nil: every document) and returns the count.
func (col *Collection) DeleteMany(ctx context.Context, filter any) (int64, error) {
	r := new(pb.DeleteManyResponse)
	rb := newRequest(&pb.DeleteManyRequest{Collection: col.Name}).object("filter", filter, "filter", false)
	err := col.c.invokeRaw(ctx, pb.DocumentService_DeleteMany_FullMethodName, rb, r)
	return r.GetDeletedCount(), err
}

// AggregateIter runs a pipeline and streams its output lazily. A stage whose key order
// matters (a compound $sort) takes an Ordered: Document{"$sort": Ordered{{"n", -1}, {"g", 1}}}.
func (col *Collection) AggregateIter(ctx context.Context, pipeline []Document) iter.Seq2[Document, error] {
	rb := newRequest(&pb.AggregateRequest{Collection: col.Name})
	for i, st := range pipeline {
		st, err := orderedSort(st, i)
		if err != nil {
			return func(yield func(Document, error) bool) { yield(nil, err) }
		}
		rb.object("pipeline", st, fmt.Sprintf("pipeline[%d]", i), true)
	}
	return streamDocs(col.c, ctx, pb.DocumentService_Aggregate_FullMethodName, rb,
		func() *pb.AggregateResponse { return new(pb.AggregateResponse) })
}

// Aggregate runs a pipeline and returns its output.
func (col *Collection) Aggregate(ctx context.Context, pipeline []Document) ([]Document, error) {
	return collect(col.AggregateIter(ctx, pipeline))
}

// Drop drops the collection; false when there was none.
func (col *Collection) Drop(ctx context.Context) (bool, error) {
	return col.c.DropCollection(ctx, col.Name)
}

// orderedSort rewrites a multi-key $sort given as an Ordered into the array form the API
// defines for it ({"$sort": [{"count": -1}, {"_id": 1}]}, see AggregateRequest in
// document.proto). A multi-key $sort given as a map is refused: a Go map has no key order.
func orderedSort(stage Document, i int) (Document, error) {
	spec, ok := stage["$sort"]
	if !ok {
		return stage, nil
	}
	switch s := spec.(type) {
	case Ordered:
		if len(s) < 2 {
			return stage, nil
		}
		arr := make([]any, len(s))
		for j, f := range s {
			arr[j] = Ordered{f}
		}
		out := make(Document, len(stage))
		for k, v := range stage {
			out[k] = v
		}
		out["$sort"] = arr
		return out, nil
	case map[string]any:
		if len(s) > 1 {
			return nil, fmt.Errorf("nexadb: pipeline[%d].$sort: a Go map has no key order; "+
				"use nexadb.Ordered{{Key: ..., Value: ...}, ...} for a multi-key sort", i)
		}
	}
	return stage, nil
}

// IndexField is one key of an index: a field path and its direction (1 or -1).
type IndexField struct {
	Field     string
	Direction int
}

// IndexOption refines CreateIndex.
type IndexOption func(*pb.CreateIndexRequest)

// Unique makes the index refuse a second document with the same key.
func Unique() IndexOption { return func(r *pb.CreateIndexRequest) { r.Unique = true } }

// IndexName names the index (default: the fields joined, e.g. "city_1_age_-1").
func IndexName(name string) IndexOption { return func(r *pb.CreateIndexRequest) { r.Name = name } }

// CreateIndex builds a secondary index over the collection's documents and maintains it.
func (col *Collection) CreateIndex(ctx context.Context, fields []IndexField, opts ...IndexOption) (*pb.IndexInfo, error) {
	req := &pb.CreateIndexRequest{Collection: col.Name}
	for _, f := range fields {
		d := pb.SortDirection_SORT_DIRECTION_ASCENDING
		if f.Direction < 0 {
			d = pb.SortDirection_SORT_DIRECTION_DESCENDING
		}
		req.Fields = append(req.Fields, &pb.IndexField{Field: f.Field, Direction: d})
	}
	for _, o := range opts {
		o(req)
	}
	r := new(pb.CreateIndexResponse)
	err := col.c.invoke(ctx, pb.DocumentService_CreateIndex_FullMethodName, req, r)
	return r.GetIndex(), err
}

// DropIndex drops an index by name; false when there was none.
func (col *Collection) DropIndex(ctx context.Context, name string) (bool, error) {
	r := new(pb.DropIndexResponse)
	err := col.c.invoke(ctx, pb.DocumentService_DropIndex_FullMethodName, &pb.DropIndexRequest{Collection: col.Name, Name: name}, r)
	return r.GetDropped(), err
}

// ListIndexes lists the collection's secondary indexes.
func (col *Collection) ListIndexes(ctx context.Context) ([]*pb.IndexInfo, error) {
	r := new(pb.ListIndexesResponse)
	err := col.c.invoke(ctx, pb.DocumentService_ListIndexes_FullMethodName, &pb.ListIndexesRequest{Collection: col.Name}, r)
	return r.GetIndexes(), err
}
