package nexadb

import (
	"context"
	"errors"
	"iter"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

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
	sort        Document
	projection  any
	pageSize    int32
}

func findOptions(opts []FindOption) findOpts {
	var o findOpts
	for _, f := range opts {
		f(&o)
	}
	return o
}

// Limit caps the number of documents (0: no limit).
func Limit(n int64) FindOption { return func(o *findOpts) { o.limit = n } }

// Skip skips the first n matches.
func Skip(n int64) FindOption { return func(o *findOpts) { o.skip = n } }

// Sort orders by field, ascending for dir >= 0 and descending for dir < 0; repeat for more
// keys, the first given sorting first. The keys go out as one ordered document, MongoDB's
// sort shape: Sort("age", -1), Sort("_id", 1) sends {"age": -1, "_id": 1}.
func Sort(field string, dir int) FindOption {
	return func(o *findOpts) {
		d := int32(1)
		if dir < 0 {
			d = -1
		}
		o.sort = append(o.sort, bson.E{Key: field, Value: d})
	}
}

// Projection keeps ({"f": 1}) or drops ({"f": 0}) fields: a document (see Document).
func Projection(p any) FindOption { return func(o *findOpts) { o.projection = p } }

// PageSize sets the documents per streamed message (0: the server chooses).
func PageSize(n int32) FindOption { return func(o *findOpts) { o.pageSize = n } }

// Insert inserts one document (see Document for what may be one; a bson.D keeps its key
// order) and returns its id (its "_id" string if it has one).
func (col *Collection) Insert(ctx context.Context, doc any) (string, error) {
	var enc encoder
	req := &pb.InsertOneRequest{Collection: col.Name, Document: enc.required(doc, "document")}
	if enc.err != nil {
		return "", enc.err
	}
	r := new(pb.InsertOneResponse)
	err := col.c.invoke(ctx, pb.DocumentService_InsertOne_FullMethodName, req, r)
	return r.GetDocumentId(), err
}

// InsertMany inserts documents (each as Insert takes it) in one atomic batch and returns
// their ids in order.
func (col *Collection) InsertMany(ctx context.Context, docs []any) ([]string, error) {
	var enc encoder
	req := &pb.InsertManyRequest{Collection: col.Name, Documents: each(&enc, docs, "documents")}
	if enc.err != nil {
		return nil, enc.err
	}
	r := new(pb.InsertManyResponse)
	err := col.c.invoke(ctx, pb.DocumentService_InsertMany_FullMethodName, req, r)
	return r.GetDocumentIds(), err
}

// FindIter streams the documents matching filter (nil: all) lazily: the next page is read
// only when the loop needs it, and breaking out of the loop cancels the stream.
//
//	for doc, err := range users.FindIter(ctx, nil) { ... }
func (col *Collection) FindIter(ctx context.Context, filter any, opts ...FindOption) iter.Seq2[Document, error] {
	o := findOptions(opts)
	var enc encoder
	req := &pb.FindRequest{Collection: col.Name, Filter: enc.optional(filter, "filter"),
		Projection: enc.optional(o.projection, "projection"), Sort: enc.optional(o.sort, "sort"),
		Skip: o.skip, Limit: o.limit, PageSize: o.pageSize}
	if enc.err != nil {
		return failed[Document](enc.err)
	}
	return streamDocs(col.c, ctx, pb.DocumentService_Find_FullMethodName, req,
		func() *pb.FindResponse { return new(pb.FindResponse) })
}

// Find returns every document matching filter (nil: all), subject to opts.
func (col *Collection) Find(ctx context.Context, filter any, opts ...FindOption) ([]Document, error) {
	return collect(col.FindIter(ctx, filter, opts...))
}

// FindOne returns the first match (after Sort options); an error matching ErrNotFound when
// nothing matched. Limit, Skip and PageSize are ignored.
func (col *Collection) FindOne(ctx context.Context, filter any, opts ...FindOption) (Document, error) {
	o := findOptions(opts)
	var enc encoder
	req := &pb.FindOneRequest{Collection: col.Name, Filter: enc.optional(filter, "filter"),
		Projection: enc.optional(o.projection, "projection"), Sort: enc.optional(o.sort, "sort")}
	if enc.err != nil {
		return nil, enc.err
	}
	r := new(pb.FindOneResponse)
	if err := col.c.invoke(ctx, pb.DocumentService_FindOne_FullMethodName, req, r); err != nil {
		return nil, err
	}
	if r.Document == nil {
		return nil, &Error{Code: ErrNotFound.Code, Message: "no document matched", Method: "FindOne"}
	}
	return fromDocument(r.Document)
}

// FindByID returns the document with this id; an error matching ErrNotFound when absent.
func (col *Collection) FindByID(ctx context.Context, id string) (Document, error) {
	r := new(pb.GetResponse)
	if err := col.c.invoke(ctx, pb.DocumentService_Get_FullMethodName, &pb.GetRequest{Collection: col.Name, Id: id}, r); err != nil {
		return nil, err
	}
	return fromDocument(r.GetDocument())
}

// Count counts the documents matching filter (nil: all).
func (col *Collection) Count(ctx context.Context, filter any) (int64, error) {
	var enc encoder
	req := &pb.CountRequest{Collection: col.Name, Filter: enc.optional(filter, "filter")}
	if enc.err != nil {
		return 0, enc.err
	}
	r := new(pb.CountResponse)
	err := col.c.invoke(ctx, pb.DocumentService_Count_FullMethodName, req, r)
	return r.GetCount(), err
}

// Update merges fields (or update operators) into one document; false when there is none.
func (col *Collection) Update(ctx context.Context, id string, fields any) (bool, error) {
	var enc encoder
	req := &pb.UpdateRequest{Collection: col.Name, Id: id, Update: enc.required(fields, "update")}
	if enc.err != nil {
		return false, enc.err
	}
	return found(col.c.invoke(ctx, pb.DocumentService_Update_FullMethodName, req, new(pb.UpdateResponse)))
}

// UpdateMany applies update to every match and returns the number modified.
func (col *Collection) UpdateMany(ctx context.Context, filter, update any) (int64, error) {
	var enc encoder
	req := &pb.UpdateManyRequest{Collection: col.Name, Filter: enc.optional(filter, "filter"),
		Update: enc.required(update, "update")}
	if enc.err != nil {
		return 0, enc.err
	}
	r := new(pb.UpdateManyResponse)
	err := col.c.invoke(ctx, pb.DocumentService_UpdateMany_FullMethodName, req, r)
	return r.GetModifiedCount(), err
}

// Delete deletes one document; false when there was none.
func (col *Collection) Delete(ctx context.Context, id string) (bool, error) {
	req := &pb.DeleteRequest{Collection: col.Name, Id: id}
	return found(col.c.invoke(ctx, pb.DocumentService_Delete_FullMethodName, req, new(pb.DeleteResponse)))
}

// found is the answer of Update and Delete, which report an id no document has as false:
// the server answers those with NOT_FOUND (it answered success=false before), and so
// only that code is taken for "none".
func found(err error) (bool, error) {
	if errors.Is(err, ErrNotFound) {
		return false, nil
	}
	return err == nil, err
}

// DeleteMany deletes every match (nil: every document) and returns the count.
func (col *Collection) DeleteMany(ctx context.Context, filter any) (int64, error) {
	var enc encoder
	req := &pb.DeleteManyRequest{Collection: col.Name, Filter: enc.optional(filter, "filter")}
	if enc.err != nil {
		return 0, enc.err
	}
	r := new(pb.DeleteManyResponse)
	err := col.c.invoke(ctx, pb.DocumentService_DeleteMany_FullMethodName, req, r)
	return r.GetDeletedCount(), err
}

// AggregateIter runs a pipeline and streams its output lazily. Stages are bson.D in
// MongoDB's shape, so nested key order is kept where it matters:
//
//	nexadb.Document{{Key: "$sort", Value: bson.D{{Key: "count", Value: -1}, {Key: "_id", Value: 1}}}}
//
// A $sort given as a map of several keys is refused (a map has no order).
func (col *Collection) AggregateIter(ctx context.Context, pipeline []Document) iter.Seq2[Document, error] {
	for i, st := range pipeline {
		if err := checkStage(st, i); err != nil {
			return failed[Document](err)
		}
	}
	var enc encoder
	req := &pb.AggregateRequest{Collection: col.Name, Pipeline: each(&enc, pipeline, "pipeline")}
	if enc.err != nil {
		return failed[Document](enc.err)
	}
	return streamDocs(col.c, ctx, pb.DocumentService_Aggregate_FullMethodName, req,
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

// ExpireAfter makes a TTL index (one field), as MongoDB's expireAfterSeconds: the server
// deletes a document once the date in that field (a time.Time or bson.DateTime) is more
// than d old, to the second; its pass runs every --ttl-interval-seconds. A document whose
// field is missing or holds no date never expires.
func ExpireAfter(d time.Duration) IndexOption {
	return func(r *pb.CreateIndexRequest) { r.Ttl = &pb.IndexTtl{ExpireAfterSeconds: int64(d / time.Second)} }
}

// CreateIndex builds a secondary index over the collection's documents and maintains it.
func (col *Collection) CreateIndex(ctx context.Context, fields []IndexField, opts ...IndexOption) (*pb.IndexInfo, error) {
	r := new(pb.CreateIndexResponse)
	err := col.c.invoke(ctx, pb.DocumentService_CreateIndex_FullMethodName, indexRequest(col.Name, fields, opts), r)
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

// indexRequest is the CreateIndexRequest for fields and opts (VectorService's
// CreateDocumentIndex takes the same fields).
func indexRequest(coll string, fields []IndexField, opts []IndexOption) *pb.CreateIndexRequest {
	req := &pb.CreateIndexRequest{Collection: coll}
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
	return req
}
