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
	ef             int
	exact          bool
}

// Filter ranks only documents matching f (the Find language): a document (see Document).
func Filter(f any) SearchOption { return func(o *searchOpts) { o.filter = f } }

// MinScore drops hits scoring below s.
func MinScore(s float32) SearchOption { return func(o *searchOpts) { o.minScore = &s } }

// IncludeVectors returns each hit's stored vector.
func IncludeVectors() SearchOption { return func(o *searchOpts) { o.includeVectors = true } }

// Ef sets the candidates kept while searching an HNSW collection's graph (higher: better
// recall, slower); the server's 128 when not given.
func Ef(n int) SearchOption { return func(o *searchOpts) { o.ef = n } }

// ExactSearch scores every vector even where a graph exists (recall 1.0).
func ExactSearch() SearchOption { return func(o *searchOpts) { o.exact = true } }

// IndexKind is how a vector collection finds nearest neighbours.
type IndexKind = pb.VectorIndex_Kind

// Index kinds: Exact scores every vector; HNSW keeps a graph built in the background,
// searched approximately once the collection outgrows exact search.
const (
	Exact = pb.VectorIndex_KIND_EXACT
	HNSW  = pb.VectorIndex_KIND_HNSW
)

// Quantization is how an HNSW graph keeps its copy of each vector.
type Quantization = pb.VectorIndex_Quantization

// Quantizations: NoQuantization keeps float32; Int8 keeps int8 codes (a quarter of the bytes);
// Float16 keeps half floats (half the bytes). With either, each search rescores Oversample x
// limit of the graph's hits with the float32 vectors.
const (
	NoQuantization = pb.VectorIndex_QUANTIZATION_NONE
	Int8           = pb.VectorIndex_QUANTIZATION_INT8
	Float16        = pb.VectorIndex_QUANTIZATION_FLOAT16
)

// Index is a vector collection's index; M (2..64), EfConstruction (M..10000), Quantization
// and Oversample (1..100) apply to HNSW, 0 for the server's 16, 200, none and 4.
type Index struct {
	Kind           IndexKind
	M              int
	EfConstruction int
	Quantization   Quantization
	Oversample     int
}

func (ix Index) message() *pb.VectorIndex {
	return &pb.VectorIndex{Kind: ix.Kind, M: int32(ix.M), EfConstruction: int32(ix.EfConstruction),
		Quantization: ix.Quantization, Oversample: int32(ix.Oversample)}
}

// SetIndex changes the collection's index: to HNSW (or other parameters) a graph is built in
// the background while searches go on; to Exact it is dropped. Returns the collection's info.
func (vc *VectorCollection) SetIndex(ctx context.Context, ix Index) (*pb.CollectionInfo, error) {
	r := new(pb.SetVectorIndexResponse)
	err := vc.c.invoke(ctx, pb.VectorService_SetVectorIndex_FullMethodName,
		&pb.SetVectorIndexRequest{Collection: vc.Name, Index: ix.message()}, r)
	return r.GetCollection(), err
}

// CreateIndex builds a secondary index over the documents' fields (Unique, IndexName and
// ExpireAfter apply: an expired document is deleted with its vector), maintained by every
// write: filtered searches and Find reach their matches through it instead of reading every
// document.
func (vc *VectorCollection) CreateIndex(ctx context.Context, fields []IndexField, opts ...IndexOption) (*pb.IndexInfo, error) {
	ix := indexRequest(vc.Name, fields, opts)
	r := new(pb.CreateDocumentIndexResponse)
	err := vc.c.invoke(ctx, pb.VectorService_CreateDocumentIndex_FullMethodName, &pb.CreateDocumentIndexRequest{
		Collection: ix.Collection, Fields: ix.Fields, Unique: ix.Unique, Name: ix.Name, Ttl: ix.Ttl}, r)
	return r.GetIndex(), err
}

// DropIndex drops a secondary index of the documents by name; false when there was none.
func (vc *VectorCollection) DropIndex(ctx context.Context, name string) (bool, error) {
	r := new(pb.DropDocumentIndexResponse)
	err := vc.c.invoke(ctx, pb.VectorService_DropDocumentIndex_FullMethodName,
		&pb.DropDocumentIndexRequest{Collection: vc.Name, Name: name}, r)
	return r.GetDropped(), err
}

// ListIndexes lists the secondary indexes of the collection's documents.
func (vc *VectorCollection) ListIndexes(ctx context.Context) ([]*pb.IndexInfo, error) {
	r := new(pb.ListDocumentIndexesResponse)
	err := vc.c.invoke(ctx, pb.VectorService_ListDocumentIndexes_FullMethodName,
		&pb.ListDocumentIndexesRequest{Collection: vc.Name}, r)
	return r.GetIndexes(), err
}

// Info returns the collection's entry: count, dimensions, metric, index, and the graph's
// progress (Indexed, IndexBuilding, IndexBytes); an error matching ErrNotFound when absent.
func (vc *VectorCollection) Info(ctx context.Context) (*pb.CollectionInfo, error) {
	all, err := vc.c.ListVectorCollections(ctx)
	if err != nil {
		return nil, err
	}
	for _, c := range all {
		if c.GetName() == vc.Name {
			return c, nil
		}
	}
	return nil, fmt.Errorf("nexadb: no vector collection %q: %w", vc.Name, ErrNotFound)
}

// Insert inserts a document (see Document) with its vector and returns its id.
func (vc *VectorCollection) Insert(ctx context.Context, doc any, vector []float32) (string, error) {
	var enc encoder
	req := &pb.InsertVectorRequest{Collection: vc.Name, Document: enc.required(doc, "document"), Vector: vector}
	if enc.err != nil {
		return "", enc.err
	}
	r := new(pb.InsertVectorResponse)
	err := vc.c.invoke(ctx, pb.VectorService_InsertVector_FullMethodName, req, r)
	return r.GetDocumentId(), err
}

// InsertMany inserts docs[i] with vectors[i] in one atomic batch.
func (vc *VectorCollection) InsertMany(ctx context.Context, docs []any, vectors [][]float32) ([]string, error) {
	if len(docs) != len(vectors) {
		return nil, fmt.Errorf("nexadb: %d documents but %d vectors", len(docs), len(vectors))
	}
	var enc encoder
	req := &pb.InsertVectorsRequest{Collection: vc.Name}
	for i, d := range each(&enc, docs, "documents") {
		req.Documents = append(req.Documents, &pb.VectorDocument{Document: d, Vector: vectors[i]})
	}
	if enc.err != nil {
		return nil, enc.err
	}
	r := new(pb.InsertVectorsResponse)
	err := vc.c.invoke(ctx, pb.VectorService_InsertVectors_FullMethodName, req, r)
	return r.GetDocumentIds(), err
}

// Upsert inserts or replaces the document and vector with this id; true when inserted.
func (vc *VectorCollection) Upsert(ctx context.Context, id string, doc any, vector []float32) (bool, error) {
	var enc encoder
	req := &pb.UpsertVectorRequest{Collection: vc.Name, Id: id, Document: enc.required(doc, "document"), Vector: vector}
	if enc.err != nil {
		return false, enc.err
	}
	r := new(pb.UpsertVectorResponse)
	err := vc.c.invoke(ctx, pb.VectorService_UpsertVector_FullMethodName, req, r)
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
	doc, err := fromDocument(r.GetDocument())
	if err != nil {
		return nil, nil, err
	}
	return doc, r.GetVector(), nil
}

// Delete deletes a document and its vector; false when there was none.
func (vc *VectorCollection) Delete(ctx context.Context, id string) (bool, error) {
	r := new(pb.DeleteVectorResponse)
	err := vc.c.invoke(ctx, pb.VectorService_DeleteVector_FullMethodName, &pb.DeleteVectorRequest{Collection: vc.Name, Id: id}, r)
	return r.GetSuccess(), err
}

func searchOptions(opts []SearchOption) searchOpts {
	var o searchOpts
	for _, f := range opts {
		f(&o)
	}
	return o
}

// minScoreValue is the wire form of MinScore: unset when not given.
func (o *searchOpts) minScoreValue() *wrapperspb.FloatValue {
	if o.minScore == nil {
		return nil
	}
	return wrapperspb.Float(*o.minScore)
}

// Search returns the limit most similar documents to vector, best first.
func (vc *VectorCollection) Search(ctx context.Context, vector []float32, limit int, opts ...SearchOption) ([]SearchResult, error) {
	_, res, err := vc.search(ctx, vector, limit, false, opts)
	return res, err
}

// Explain is Search that also returns how it ran (the plan's Path is "exact",
// "exact_postfiltered", "hnsw", "hnsw_postfiltered", "hnsw_filtered", "hnsw_exact_filtered"
// or "hnsw_filtered_fallback").
func (vc *VectorCollection) Explain(ctx context.Context, vector []float32, limit int, opts ...SearchOption) (*pb.SearchPlan, []SearchResult, error) {
	return vc.search(ctx, vector, limit, true, opts)
}

func (vc *VectorCollection) search(ctx context.Context, vector []float32, limit int, explain bool, opts []SearchOption) (*pb.SearchPlan, []SearchResult, error) {
	o := searchOptions(opts)
	var enc encoder
	req := &pb.SearchRequest{Collection: vc.Name, Vector: vector, Limit: int32(limit), Filter: enc.optional(o.filter, "filter"),
		MinScore: o.minScoreValue(), IncludeVectors: o.includeVectors, Dimensions: int32(vc.Dimensions),
		Ef: int32(o.ef), Exact: o.exact, Explain: explain}
	if enc.err != nil {
		return nil, nil, enc.err
	}
	r := new(pb.SearchResponse)
	if err := vc.c.invoke(ctx, pb.VectorService_Search_FullMethodName, req, r); err != nil {
		return nil, nil, err
	}
	res, err := hits(r.GetResults())
	return r.GetPlan(), res, err
}

// SearchBatch runs Search for several query vectors in one pass; one result list per query.
func (vc *VectorCollection) SearchBatch(ctx context.Context, vectors [][]float32, limit int, opts ...SearchOption) ([][]SearchResult, error) {
	o := searchOptions(opts)
	var enc encoder
	req := &pb.SearchBatchRequest{Collection: vc.Name, Limit: int32(limit), Filter: enc.optional(o.filter, "filter"),
		MinScore: o.minScoreValue(), IncludeVectors: o.includeVectors, Ef: int32(o.ef), Exact: o.exact}
	if enc.err != nil {
		return nil, enc.err
	}
	for _, v := range vectors {
		req.Queries = append(req.Queries, &pb.SearchQuery{Vector: v})
	}
	r := new(pb.SearchBatchResponse)
	if err := vc.c.invoke(ctx, pb.VectorService_SearchBatch_FullMethodName, req, r); err != nil {
		return nil, err
	}
	out := make([][]SearchResult, len(r.GetResults()))
	for i, x := range r.GetResults() {
		var err error
		if out[i], err = hits(x.GetResults()); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// VectorDocument is a stored document with its stored vector (unit length under cosine).
type VectorDocument struct {
	Document Document
	Vector   []float32
}

// FindIter streams the documents matching filter (nil: all; a document, see Document) with
// their stored vectors, in _id order from one snapshot (export), lazily as
// Collection.FindIter does. Limit and PageSize apply; other FindOptions are refused.
func (vc *VectorCollection) FindIter(ctx context.Context, filter any, opts ...FindOption) iter.Seq2[VectorDocument, error] {
	o := findOptions(opts)
	if o.skip != 0 || o.sort != nil || o.projection != nil {
		return failed[VectorDocument](fmt.Errorf("nexadb: a vector collection's Find takes only Limit and PageSize"))
	}
	var enc encoder
	req := &pb.FindVectorsRequest{Collection: vc.Name, Filter: enc.optional(filter, "filter"), Limit: o.limit, PageSize: o.pageSize}
	if enc.err != nil {
		return failed[VectorDocument](enc.err)
	}
	return stream(vc.c, ctx, pb.VectorService_FindVectors_FullMethodName, req,
		func() *pb.FindVectorsResponse { return new(pb.FindVectorsResponse) },
		func(vd *pb.VectorDocument) (VectorDocument, error) {
			doc, err := fromDocument(vd.GetDocument())
			return VectorDocument{Document: doc, Vector: vd.GetVector()}, err
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

func hits(rs []*pb.SearchHit) ([]SearchResult, error) {
	out := make([]SearchResult, len(rs))
	for i, h := range rs {
		doc, err := fromDocument(h.GetDocument())
		if err != nil {
			return nil, err
		}
		out[i] = SearchResult{ID: h.GetDocumentId(), Similarity: h.GetSimilarity(), Document: doc, Vector: h.GetVector()}
	}
	return out, nil
}
