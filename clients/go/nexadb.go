// Package nexadb is a Go client for NexaDB, the document and vector database, over its gRPC
// API (proto/nexadb/v1). It is a thin wrapper: documents travel as BSON, written and read by
// the MongoDB Go driver's bson package (bson.D, bson.M, structs with bson tags; results are
// ordered bson.D), results stream lazily through iterators, and every error is an *Error
// carrying the gRPC code.
//
//	db, err := nexadb.Connect("localhost:6970", nexadb.WithAPIKey(os.Getenv("NEXADB_API_KEY")))
//	users := db.Collection("users")
//	id, err := users.Insert(ctx, bson.D{{Key: "name", Value: "Alice"}, {Key: "age", Value: 28}})
//	docs, err := users.Find(ctx, bson.M{"age": bson.M{"$gt": 25}}, nexadb.Limit(10))
//
// The stubs it wraps (package nexadbpb) are generated from the repository's proto/ by gen.sh
// and checked in.
//
//go:generate ./gen.sh
package nexadb

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"iter"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	pb "github.com/nexadb/nexadb/clients/go/nexadbpb"
)

// DefaultPort is the server's gRPC port. (6969, the brief's port, serves HTTP/JSON.)
const DefaultPort = 6970

// Client is a connection to a NexaDB server. It is safe for concurrent use; make one and
// share it. Close it when done.
//
// In a cluster it follows a follower's redirect: a call a node refuses as not the leader
// (UNAVAILABLE with the trailer nexadb-leader, which says the node ran nothing of it) is sent
// again to the leader it names, and later calls go there too (Target). Its read concern
// (WithReadConcern) says which node may answer its reads.
type Client struct {
	dial        []grpc.DialOption
	apiKey      string
	timeout     time.Duration
	readConcern ReadConcern
	logIndex    atomic.Uint64 // the largest nexadb-log-index a call of this client returned

	mu     sync.Mutex
	target string                      // where calls go: Connect's target, or the leader a node named
	conns  map[string]*grpc.ClientConn // one per address used, kept until Close
	closed bool
}

type options struct {
	apiKey      string
	tls         *tls.Config
	timeout     time.Duration
	dial        []grpc.DialOption
	readConcern ReadConcern
}

// Option configures Connect.
type Option func(*options)

// WithAPIKey sets the API key (default: $NEXADB_API_KEY).
func WithAPIKey(key string) Option { return func(o *options) { o.apiKey = key } }

// WithTLS connects with TLS using cfg (nil: the system roots).
func WithTLS(cfg *tls.Config) Option {
	return func(o *options) {
		if cfg == nil {
			cfg = &tls.Config{MinVersion: tls.VersionTLS12}
		}
		o.tls = cfg
	}
}

// LoadTLSConfig makes a TLS configuration from PEM files: caFile holds the CA certificates
// that sign the server's certificate ("": the system roots); certFile and keyFile are this
// client's certificate chain and key for a server that requires client certificates (mTLS),
// both or neither. Pass the result to WithTLS.
func LoadTLSConfig(caFile, certFile, keyFile string) (*tls.Config, error) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if caFile != "" {
		pem, err := os.ReadFile(caFile)
		if err != nil {
			return nil, fmt.Errorf("nexadb: CA file: %w", err)
		}
		cfg.RootCAs = x509.NewCertPool()
		if !cfg.RootCAs.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("nexadb: CA file %s holds no PEM certificate", caFile)
		}
	}
	if (certFile == "") != (keyFile == "") {
		return nil, errors.New("nexadb: a client certificate and its key go together")
	}
	if certFile != "" {
		pair, err := tls.LoadX509KeyPair(certFile, keyFile)
		if err != nil {
			return nil, fmt.Errorf("nexadb: client certificate: %w", err)
		}
		cfg.Certificates = []tls.Certificate{pair}
	}
	return cfg, nil
}

// WithTimeout sets the deadline applied to each unary call whose context has none
// (default 30s; 0 for none). Streams (Find, Aggregate) are bounded only by their context.
func WithTimeout(d time.Duration) Option { return func(o *options) { o.timeout = d } }

// WithDialOptions passes extra options to grpc.NewClient.
func WithDialOptions(opts ...grpc.DialOption) Option {
	return func(o *options) { o.dial = append(o.dial, opts...) }
}

// ReadConcern says which cluster node may answer a client's reads (WithReadConcern). A single
// server answers every read from its own state, whatever the concern.
type ReadConcern int

const (
	// ReadLinearizable (the default): the leader answers reads, after a Raft barrier, so a
	// read sees every write acknowledged before it. A follower passes the read on or
	// redirects the client to the leader.
	ReadLinearizable ReadConcern = iota
	// ReadLocal: the node the client talks to answers from what it has applied, possibly
	// behind the leader (metadata nexadb-read-concern: local).
	ReadLocal
	// ReadSession (read-your-writes): the node the client talks to answers once it has
	// applied the last log entry this client's calls returned (metadata nexadb-read-after,
	// LastLogIndex); before there is one, as ReadLocal.
	ReadSession
)

// WithReadConcern sets the read concern (default ReadLinearizable). Its metadata goes with
// every call; writes and admin calls ignore it.
func WithReadConcern(rc ReadConcern) Option { return func(o *options) { o.readConcern = rc } }

// Connect makes a client for target ("host:port"). It does not wait for the connection;
// the first call does.
func Connect(target string, opts ...Option) (*Client, error) {
	o := options{apiKey: os.Getenv("NEXADB_API_KEY"), timeout: 30 * time.Second}
	for _, f := range opts {
		f(&o)
	}
	if o.readConcern < ReadLinearizable || o.readConcern > ReadSession {
		return nil, fmt.Errorf("nexadb: unknown read concern %d", o.readConcern)
	}
	creds := insecure.NewCredentials()
	if o.tls != nil {
		creds = credentials.NewTLS(o.tls)
	}
	dial := append([]grpc.DialOption{
		grpc.WithTransportCredentials(creds),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(64<<20), grpc.MaxCallSendMsgSize(64<<20)),
	}, o.dial...)
	c := &Client{dial: dial, apiKey: o.apiKey, timeout: o.timeout, readConcern: o.readConcern, target: target,
		conns: make(map[string]*grpc.ClientConn)}
	if _, err := c.conn(target); err != nil {
		return nil, err
	}
	return c, nil
}

// Close closes the connections (one per address the client has sent calls to).
func (c *Client) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.closed = true
	var errs []error
	for _, cc := range c.conns {
		errs = append(errs, cc.Close())
	}
	return errors.Join(errs...)
}

// Target is the address calls go to: Connect's target until a cluster node names another
// as the leader, then that one.
func (c *Client) Target() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.target
}

// LastLogIndex is the largest log entry a call of this client returned (trailer
// nexadb-log-index: a write's entry in a cluster's log) or AdvanceLogIndex gave, 0 before
// any. A ReadSession client reads after it.
func (c *Client) LastLogIndex() uint64 { return c.logIndex.Load() }

// AdvanceLogIndex raises LastLogIndex to index (another client's LastLogIndex), so that a
// ReadSession client reads that client's writes too; a lower index changes nothing.
func (c *Client) AdvanceLogIndex(index uint64) {
	for old := c.logIndex.Load(); index > old && !c.logIndex.CompareAndSwap(old, index); old = c.logIndex.Load() {
	}
}

// noteLogIndex advances LastLogIndex to the trailer nexadb-log-index of a successful call.
func (c *Client) noteLogIndex(trailer metadata.MD) {
	if v := trailer.Get(logIndexTrailer); len(v) > 0 {
		if n, err := strconv.ParseUint(v[0], 10, 64); err == nil {
			c.AdvanceLogIndex(n)
		}
	}
}

// conn is the connection to addr, made with Connect's options on first use.
func (c *Client) conn(addr string) (*grpc.ClientConn, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if cc := c.conns[addr]; cc != nil {
		return cc, nil
	}
	if c.closed {
		return nil, status.Error(codes.Canceled, "nexadb: the client is closed")
	}
	cc, err := grpc.NewClient(addr, c.dial...)
	if err != nil {
		return nil, fmt.Errorf("nexadb: connect %s: %w", addr, err)
	}
	c.conns[addr] = cc
	return cc, nil
}

// leaderTrailer is the trailer with which a cluster node refuses a call as not the leader,
// having run nothing of it: the leader's address, or "" while no leader is known.
const leaderTrailer = "nexadb-leader"

// logIndexTrailer is the trailer with which a cluster node answers a write: the log entry it
// went into.
const logIndexTrailer = "nexadb-log-index"

// maxRedirects bounds the redirects one call follows.
const maxRedirects = 3

// follow runs attempt, a call on conn that passes opt (which collects its trailer), against
// the target; when the node refuses it naming another as the leader, it makes that the target
// and runs attempt there, up to maxRedirects times. A refusal while no leader is known
// returns UNAVAILABLE saying so. A success notes the trailer's log index (the trailer of a
// stream comes at its end, after follow has returned). Any other error (UNAVAILABLE without the trailer: the
// transport, which may have delivered a write) is returned as it is.
func (c *Client) follow(attempt func(conn *grpc.ClientConn, opt grpc.CallOption) error) error {
	addr := c.Target()
	for hop := 0; ; hop++ {
		conn, err := c.conn(addr)
		if err != nil {
			return err
		}
		var trailer metadata.MD
		err = attempt(conn, grpc.Trailer(&trailer))
		if err == nil {
			c.noteLogIndex(trailer)
		}
		leader := trailer.Get(leaderTrailer)
		if status.Code(err) != codes.Unavailable || len(leader) == 0 {
			return err
		}
		switch {
		case leader[0] == "":
			return status.Error(codes.Unavailable, "no leader is known: "+status.Convert(err).Message())
		case leader[0] == addr || hop == maxRedirects:
			return err
		}
		addr = leader[0]
		c.mu.Lock()
		c.target = addr
		c.mu.Unlock()
	}
}

// ctx adds the API key, the read concern's metadata and, for unary calls, the default
// deadline. The returned cancel must be called.
func (c *Client) ctx(ctx context.Context, unary bool) (context.Context, context.CancelFunc) {
	if c.apiKey != "" {
		ctx = metadata.AppendToOutgoingContext(ctx, "x-api-key", c.apiKey)
	}
	switch index := c.LastLogIndex(); {
	case c.readConcern == ReadSession && index != 0:
		ctx = metadata.AppendToOutgoingContext(ctx, "nexadb-read-after", strconv.FormatUint(index, 10))
	case c.readConcern != ReadLinearizable:
		ctx = metadata.AppendToOutgoingContext(ctx, "nexadb-read-concern", "local")
	}
	if _, has := ctx.Deadline(); unary && !has && c.timeout > 0 {
		return context.WithTimeout(ctx, c.timeout)
	}
	return context.WithCancel(ctx)
}

// invoke runs one unary RPC (method is its full name) with the client's metadata and
// deadline, following redirects to the leader.
func (c *Client) invoke(ctx context.Context, method string, req, resp proto.Message) error {
	ctx, cancel := c.ctx(ctx, true)
	defer cancel()
	return wrapErr(c.follow(func(conn *grpc.ClientConn, opt grpc.CallOption) error {
		return conn.Invoke(ctx, method, req, resp, opt)
	}), method)
}

// openStream starts a server stream (method is its full name), sends req and reads the first
// message into first, following redirects to the leader until one comes (io.EOF: the stream
// ended without any). The stream lives until ctx ends or it is read to its end.
func (c *Client) openStream(ctx context.Context, method string, req, first proto.Message) (grpc.ClientStream, error) {
	var st grpc.ClientStream
	err := c.follow(func(conn *grpc.ClientConn, opt grpc.CallOption) error {
		var err error
		if st, err = conn.NewStream(ctx, &grpc.StreamDesc{ServerStreams: true}, method, opt); err != nil {
			return err
		}
		if err = st.SendMsg(req); err == nil {
			err = st.CloseSend()
		}
		if err != nil && err != io.EOF { // io.EOF: the server ended the call, RecvMsg says how
			return err
		}
		return st.RecvMsg(first)
	})
	return st, err
}

// Status reports the server's status and version; it needs no API key.
func (c *Client) Status(ctx context.Context) (*pb.StatusResponse, error) {
	r := new(pb.StatusResponse)
	return r, c.invoke(ctx, pb.AdminService_Status_FullMethodName, &pb.StatusRequest{}, r)
}

// Stats reports database statistics.
func (c *Client) Stats(ctx context.Context) (*pb.StatsResponse, error) {
	r := new(pb.StatsResponse)
	return r, c.invoke(ctx, pb.AdminService_Stats_FullMethodName, &pb.StatsRequest{}, r)
}

// Collection returns a handle on a document collection (created by the server on first insert).
func (c *Client) Collection(name string) *Collection { return &Collection{c: c, Name: name} }

// ListCollections lists document collections.
func (c *Client) ListCollections(ctx context.Context) ([]*pb.CollectionInfo, error) {
	r := new(pb.ListCollectionsResponse)
	err := c.invoke(ctx, pb.DocumentService_ListCollections_FullMethodName, &pb.ListCollectionsRequest{}, r)
	return r.GetCollections(), err
}

// CreateCollection creates an empty document collection (ALREADY_EXISTS if there is one).
func (c *Client) CreateCollection(ctx context.Context, name string) (*pb.CollectionInfo, error) {
	r := new(pb.CreateCollectionResponse)
	err := c.invoke(ctx, pb.DocumentService_CreateCollection_FullMethodName, &pb.CreateCollectionRequest{Collection: name}, r)
	return r.GetCollection(), err
}

// DropCollection drops a document collection; false when there was none.
func (c *Client) DropCollection(ctx context.Context, name string) (bool, error) {
	r := new(pb.DropCollectionResponse)
	err := c.invoke(ctx, pb.DocumentService_DropCollection_FullMethodName, &pb.DropCollectionRequest{Collection: name}, r)
	return r.GetDropped(), err
}

// Metric is the similarity a vector collection ranks by.
type Metric = pb.VectorMetric

// Metrics.
const (
	Cosine = pb.VectorMetric_VECTOR_METRIC_COSINE
	Dot    = pb.VectorMetric_VECTOR_METRIC_DOT
	L2     = pb.VectorMetric_VECTOR_METRIC_L2
)

// VectorCollectionOption refines VectorCollection.
type VectorCollectionOption func(*pb.CreateVectorCollectionRequest)

// WithIndex creates the collection with this index (Exact when not given); a collection that
// exists with another kind of index is an error (SetIndex changes it).
func WithIndex(ix Index) VectorCollectionOption {
	return func(r *pb.CreateVectorCollectionRequest) { r.Index = ix.message() }
}

// VectorCollection returns a handle on a vector collection, creating it with these
// dimensions and metric unless one with the same exists (a different one is an error).
// With dimensions 0 it only returns the handle.
func (c *Client) VectorCollection(ctx context.Context, name string, dimensions int, metric Metric,
	opts ...VectorCollectionOption) (*VectorCollection, error) {
	if dimensions > 0 {
		req := &pb.CreateVectorCollectionRequest{Collection: name, Dimensions: int32(dimensions), Metric: metric, IfNotExists: true}
		for _, o := range opts {
			o(req)
		}
		err := c.invoke(ctx, pb.VectorService_CreateVectorCollection_FullMethodName, req, new(pb.CreateVectorCollectionResponse))
		if err != nil {
			return nil, err
		}
	}
	return &VectorCollection{c: c, Name: name, Dimensions: dimensions}, nil
}

// ListVectorCollections lists vector collections.
func (c *Client) ListVectorCollections(ctx context.Context) ([]*pb.CollectionInfo, error) {
	r := new(pb.ListVectorCollectionsResponse)
	err := c.invoke(ctx, pb.VectorService_ListVectorCollections_FullMethodName, &pb.ListVectorCollectionsRequest{}, r)
	return r.GetCollections(), err
}

// DropVectorCollection drops a vector collection; false when there was none.
func (c *Client) DropVectorCollection(ctx context.Context, name string) (bool, error) {
	r := new(pb.DropVectorCollectionResponse)
	err := c.invoke(ctx, pb.VectorService_DropVectorCollection_FullMethodName, &pb.DropVectorCollectionRequest{Collection: name}, r)
	return r.GetDropped(), err
}

// stream yields item(entry) for each entry of the documents of a paged server stream
// (method is its full name), reading the next message only when the current page is used
// up. Stopping the loop early cancels the stream. newResp makes an empty response message;
// item's error (a document that does not decode) ends the stream.
func stream[M interface {
	proto.Message
	GetDocuments() []E
}, E any, T any](c *Client, ctx context.Context, method string, req proto.Message, newResp func() M,
	item func(E) (T, error)) iter.Seq2[T, error] {
	var zero T
	return func(yield func(T, error) bool) {
		ctx, cancel := c.ctx(ctx, false)
		defer cancel()
		msg := newResp()
		st, err := c.openStream(ctx, method, req, msg)
		for err == nil {
			for _, e := range msg.GetDocuments() {
				v, err := item(e)
				if !yield(v, err) || err != nil {
					return
				}
			}
			msg = newResp()
			err = st.RecvMsg(msg)
		}
		if err != io.EOF {
			yield(zero, wrapErr(err, method))
		}
	}
}

// streamDocs is stream for responses whose entries are Documents.
func streamDocs[M interface {
	proto.Message
	GetDocuments() []*pb.Document
}](c *Client, ctx context.Context, method string, req proto.Message, newResp func() M) iter.Seq2[Document, error] {
	return stream(c, ctx, method, req, newResp, fromDocument)
}

// failed is an iterator that yields only err: a request that could not be built fails
// where the caller ranges over its results, as a failed call does.
func failed[T any](err error) iter.Seq2[T, error] {
	return func(yield func(T, error) bool) {
		var zero T
		yield(zero, err)
	}
}

// collect drains an iterator into a slice, stopping at the first error.
func collect[T any](seq iter.Seq2[T, error]) ([]T, error) {
	var out []T
	for d, err := range seq {
		if err != nil {
			return out, err
		}
		out = append(out, d)
	}
	return out, nil
}
