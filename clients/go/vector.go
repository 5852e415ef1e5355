package nexadb

import (
	"context"
	"fmt"
	"iter"

	"google.golang.org/protobuf/types/known/wrapperspb"

	pb "github.com/nexadb/nexadb/clients/go/nexadbpb"
)

// VectorCollection is a handle on a vector collection.
type VectorCollection struct {
	c          *Client
	Name       string
	Dimensions int // 0 when the handle was made without them
}

// SearchResult is one hit: the brief's (doc_id, similarity, doc).
type SearchResult struct {
	ID         string
	Similarity float32
	Document   Document
	Vector     []float32 // only with IncludeVectors
}

// SearchOption refines Search and SearchBatch.
type SearchOption func(*searchOpts)

type searchOpts struct {
	filter         any
	minScore       *float32
	includeVectors bool
}

// Filter ranks only documents matching f (the Find language): a Document or an Ordered.
func Filter(f any) SearchOption { return func(o *searchOpts) { o.filter = f } }

// MinScore drops hits scoring below s.
func MinScore(s float32) SearchOption { return func(o *searchOpts) { o.minScore = &s } }

// IncludeVectors returns each hit's stored vector.
func IncludeVectors() SearchOption { return func(o *searchOpts) { o.includeVectors = true } }

// Insert inserts a document with its vector and returns its id.
func (vc *VectorCollection) Insert(ctx context.Context, doc any, vector []float32) (string, error) {
	r := new(pb.InsertVectorResponse)
	rb := newRequest(&pb.InsertVectorRequest{Collection: vc.Name, Vector: vector}).object("document", doc, "", true)
	err := vc.c.invokeRaw(ctx, pb.VectorService_InsertVector_FullMethodName, rb, r)
	return r.GetDocumentId(), err
}

// InsertMany inserts docs[i] with vectors[i] in one atomic batch.
func (vc *VectorCollection) InsertMany(ctx context.Context, docs []Document, vectors [][]float32) ([]string, error) {
	if len(docs) != len(vectors) {
		return nil, fmt.Errorf("nexadb: %d documents but %d vectors", len(docs), len(vectors))
	}
	rb := newRequest(&pb.InsertVectorsRequest{Collection: vc.Name})
	for i, d := range docs {
		rb.message("documents", newRequest(&pb.VectorDocument{Vector: vectors[i]}).
			object("document", d, fmt.Sprintf("documents[%d]", i), true))
	}
	r := new(pb.InsertVectorsResponse)
	err := vc.c.invokeRaw(ctx, pb.VectorService_InsertVectors_FullMethodName, rb, r)
	return r.GetDocumentIds(), err
}

// Upsert inserts or replaces the document and vector with this id; true when inserted.
func (vc *VectorCollection) Upsert(ctx context.Context, id string, doc any, vector []float32) (bool, error) {
	r := new(pb.UpsertVectorResponse)
	rb := newRequest(&pb.UpsertVectorRequest{Collection: vc.Name, Id: id, Vector: vector}).object("document", doc, "", true)
	err := vc.c.invokeRaw(ctx, pb.VectorService_UpsertVector_FullMethodName, rb, r)
	return r.GetInserted(), err
}

// Get returns the document with this id and, when includeVector, its stored vector; an error
// matching ErrNotFound when absent.
func (vc *VectorCollection) Get(ctx context.Context, id string, includeVector bool) (Document, []float32, error) {
	r := new(pb.GetVectorResponse)
	err := vc.c.invoke(ctx, pb.VectorService_GetVector_FullMethodName,
		&pb.GetVectorRequest{Collection: vc.Name, Id: id, IncludeVector: includeVector}, r)
	if err != nil {
		return nil, nil, err
	}
	return fromStruct(r.GetDocument()), r.GetVector(), nil
}

// Delete deletes a document and its vector; false when there was none.
func (vc *VectorCollection) Delete(ctx context.Context, id string) (bool, error) {
	r := new(pb.DeleteVectorResponse)
	err := vc.c.invoke(ctx, pb.VectorService_DeleteVector_FullMethodName, &pb.DeleteVectorRequest{Collection: vc.Name, Id: id}, r)
	return r.GetSuccess(), err
}

func (o *searchOpts) apply(opts []SearchOption) {
	for _, f := range opts {
		f(o)
	}
}

// Search returns the limit most similar documents to vector, best first.
func (vc *VectorCollection) Search(ctx context.Context, vector []float32, limit int, opts ...SearchOption) ([]SearchResult, error) {
	var o searchOpts
	o.apply(opts)
	req := &pb.SearchRequest{Collection: vc.Name, Vector: vector, Limit: int32(limit),
		IncludeVectors: o.includeVectors, Dimensions: int32(vc.Dimensions)}
	if o.minScore != nil {
		req.MinScore = wrapperspb.Float(*o.minScore)
	}
	r := new(pb.SearchResponse)
	err := vc.c.invokeRaw(ctx, pb.VectorService_Search_FullMethodName, newRequest(req).object("filter", o.filter, "filter", false), r)
	if err != nil {
		return nil, err
	}
	return hits(r.GetResults()), nil
}

// SearchBatch runs Search for several query vectors in one pass; one result list per query.
func (vc *VectorCollection) SearchBatch(ctx context.Context, vectors [][]float32, limit int, opts ...SearchOption) ([][]SearchResult, error) {
	var o searchOpts
	o.apply(opts)
	req := &pb.SearchBatchRequest{Collection: vc.Name, Limit: int32(limit), IncludeVectors: o.includeVectors}
	for _, v := range vectors {
		req.Queries = append(req.Queries, &pb.SearchQuery{Vector: v})
	}
	if o.minScore != nil {
		req.MinScore = wrapperspb.Float(*o.minScore)
	}
	r := new(pb.SearchBatchResponse)
	err := vc.c.invokeRaw(ctx, pb.VectorService_SearchBatch_FullMethodName, newRequest(req).object("filter", o.filter, "filter", false), r)
	if err != nil {
		return nil, err
	}
	out := make([][]SearchResult, len(r.GetResults()))
	for i, x := range r.GetResults() {
		out[i] = hits(x.GetResults())
	}
	return out, nil
}

// VectorDocument is a stored document with its stored vector (unit length under cosine).
type VectorDocument struct {
	Document Document
	Vector   []float32
}

// FindIter streams the documents matching filter (nil: all; a Document or an Ordered) with
// their stored vectors, in _id order from one snapshot (export), lazily as
// Collection.FindIter does. Limit and PageSize apply; other FindOptions are refused.
func (vc *VectorCollection) FindIter(ctx context.Context, filter any, opts ...FindOption) iter.Seq2[VectorDocument, error] {
	var o findOpts
	for _, f := range opts {
		f(&o)
	}
	if o.skip != 0 || o.sort != nil || o.projection != nil {
		err := fmt.Errorf("nexadb: a vector collection's Find takes only Limit and PageSize")
		return func(yield func(VectorDocument, error) bool) { yield(VectorDocument{}, err) }
	}
	rb := newRequest(&pb.FindVectorsRequest{Collection: vc.Name, Limit: o.limit, PageSize: o.pageSize}).
		object("filter", filter, "filter", false)
	return stream(vc.c, ctx, pb.VectorService_FindVectors_FullMethodName, rb,
		func() *pb.FindVectorsResponse { return new(pb.FindVectorsResponse) },
		func(vd *pb.VectorDocument) VectorDocument {
			return VectorDocument{Document: fromStruct(vd.GetDocument()), Vector: vd.GetVector()}
		})
}

// Find returns every document matching filter (nil: all) with its stored vector.
func (vc *VectorCollection) Find(ctx context.Context, filter any, opts ...FindOption) ([]VectorDocument, error) {
	return collect(vc.FindIter(ctx, filter, opts...))
}

// Drop drops the vector collection; false when there was none.
func (vc *VectorCollection) Drop(ctx context.Context) (bool, error) {
	return vc.c.DropVectorCollection(ctx, vc.Name)
}

func hits(rs []*pb.SearchHit) []SearchResult {
	out := make([]SearchResult, len(rs))
	for i, h := range rs {
		out[i] = SearchResult{ID: h.GetDocumentId(), Similarity: h.GetSimilarity(),
			Document: fromStruct(h.GetDocument()), Vector: h.GetVector()}
	}
	return out
}
