package nexadb

import (
	"context"
	"fmt"

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
	filter         Document
	minScore       *float32
	includeVectors bool
}

// Filter ranks only documents matching f (the Find language).
func Filter(f Document) SearchOption { return func(o *searchOpts) { o.filter = f } }

// MinScore drops hits scoring below s.
func MinScore(s float32) SearchOption { return func(o *searchOpts) { o.minScore = &s } }

// IncludeVectors returns each hit's stored vector.
func IncludeVectors() SearchOption { return func(o *searchOpts) { o.includeVectors = true } }

// Insert inserts a document with its vector and returns its id.
func (vc *VectorCollection) Insert(ctx context.Context, doc Document, vector []float32) (string, error) {
	s, err := toStruct(doc, "")
	if err != nil {
		return "", err
	}
	r, err := call(vc.c, ctx, "InsertVector", vc.c.vecs.InsertVector,
		&pb.InsertVectorRequest{Collection: vc.Name, Document: s, Vector: vector})
	return r.GetDocumentId(), err
}

// InsertMany inserts docs[i] with vectors[i] in one atomic batch.
func (vc *VectorCollection) InsertMany(ctx context.Context, docs []Document, vectors [][]float32) ([]string, error) {
	if len(docs) != len(vectors) {
		return nil, fmt.Errorf("nexadb: %d documents but %d vectors", len(docs), len(vectors))
	}
	req := &pb.InsertVectorsRequest{Collection: vc.Name, Documents: make([]*pb.VectorDocument, len(docs))}
	for i, d := range docs {
		s, err := toStruct(d, fmt.Sprintf("documents[%d]", i))
		if err != nil {
			return nil, err
		}
		req.Documents[i] = &pb.VectorDocument{Document: s, Vector: vectors[i]}
	}
	r, err := call(vc.c, ctx, "InsertVectors", vc.c.vecs.InsertVectors, req)
	return r.GetDocumentIds(), err
}

// Upsert inserts or replaces the document and vector with this id; true when inserted.
func (vc *VectorCollection) Upsert(ctx context.Context, id string, doc Document, vector []float32) (bool, error) {
	s, err := toStruct(doc, "")
	if err != nil {
		return false, err
	}
	r, err := call(vc.c, ctx, "UpsertVector", vc.c.vecs.UpsertVector,
		&pb.UpsertVectorRequest{Collection: vc.Name, Id: id, Document: s, Vector: vector})
	return r.GetInserted(), err
}

// Get returns the document with this id and, when includeVector, its stored vector; an error
// matching ErrNotFound when absent.
func (vc *VectorCollection) Get(ctx context.Context, id string, includeVector bool) (Document, []float32, error) {
	r, err := call(vc.c, ctx, "GetVector", vc.c.vecs.GetVector,
		&pb.GetVectorRequest{Collection: vc.Name, Id: id, IncludeVector: includeVector})
	if err != nil {
		return nil, nil, err
	}
	return fromStruct(r.GetDocument()), r.GetVector(), nil
}

// Delete deletes a document and its vector; false when there was none.
func (vc *VectorCollection) Delete(ctx context.Context, id string) (bool, error) {
	r, err := call(vc.c, ctx, "DeleteVector", vc.c.vecs.DeleteVector, &pb.DeleteVectorRequest{Collection: vc.Name, Id: id})
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
	f, err := optStruct(o.filter, "filter")
	if err != nil {
		return nil, err
	}
	req := &pb.SearchRequest{Collection: vc.Name, Vector: vector, Limit: int32(limit), Filter: f,
		IncludeVectors: o.includeVectors, Dimensions: int32(vc.Dimensions)}
	if o.minScore != nil {
		req.MinScore = wrapperspb.Float(*o.minScore)
	}
	r, err := call(vc.c, ctx, "Search", vc.c.vecs.Search, req)
	if err != nil {
		return nil, err
	}
	return hits(r.GetResults()), nil
}

// SearchBatch runs Search for several query vectors in one pass; one result list per query.
func (vc *VectorCollection) SearchBatch(ctx context.Context, vectors [][]float32, limit int, opts ...SearchOption) ([][]SearchResult, error) {
	var o searchOpts
	o.apply(opts)
	f, err := optStruct(o.filter, "filter")
	if err != nil {
		return nil, err
	}
	req := &pb.SearchBatchRequest{Collection: vc.Name, Limit: int32(limit), Filter: f, IncludeVectors: o.includeVectors}
	for _, v := range vectors {
		req.Queries = append(req.Queries, &pb.SearchQuery{Vector: v})
	}
	if o.minScore != nil {
		req.MinScore = wrapperspb.Float(*o.minScore)
	}
	r, err := call(vc.c, ctx, "SearchBatch", vc.c.vecs.SearchBatch, req)
	if err != nil {
		return nil, err
	}
	out := make([][]SearchResult, len(r.GetResults()))
	for i, x := range r.GetResults() {
		out[i] = hits(x.GetResults())
	}
	return out, nil
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
