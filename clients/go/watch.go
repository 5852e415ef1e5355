package nexadb

import (
	"context"
	"errors"
	"io"
	"iter"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/connectivity"
	"google.golang.org/grpc/status"

	pb "github.com/nexadb/nexadb/clients/go/nexadbpb"
)

// WatchOptions refines Watch. The zero value watches from the next change.
type WatchOptions struct {
	// Pipeline: stages applied to each event ($match, $project, $addFields, $set, $unset,
	// $replaceRoot, $replaceWith), in MongoDB's shape.
	Pipeline []Document
	// ResumeAfter: a token (an event's _id._data, or ChangeStream.ResumeToken) to start after.
	ResumeAfter string
	// FullDocument: "updateLookup" makes update events carry the document as it is when the
	// event is read; "" or "default": updateDescription only.
	FullDocument string
	// PageSize: events per message at most; 0 lets the server choose.
	PageSize int32
}

// ChangeStream is a change stream (Collection.Watch, Client.Watch): MongoDB-shaped event
// documents ({_id: {_data: token}, operationType, wallTime, ns, documentKey, fullDocument,
// updateDescription}) in commit order, read as the Go driver's change streams are:
//
//	cs, err := users.Watch(ctx, nil)
//	defer cs.Close()
//	for cs.Next() {
//		handle(cs.Event())
//		save(cs.ResumeToken())
//	}
//	if err := cs.Err(); err != nil { ... }
//
// Next blocks until an event comes; it returns false once the stream ended: after a
// collection's "invalidate" event (its drop), after Close, when Watch's ctx is cancelled (Err
// then returns the context's error), or on an error. When the connection drops (UNAVAILABLE)
// the stream reconnects once by itself, waiting for the server up to the client's timeout,
// and resumes after ResumeToken, so no event is lost or repeated; a second failure before the
// server answers ends it. A token older than the server's change log ends it with
// codes.OutOfRange.
//
// Next, Event, ResumeToken and Err are for one goroutine; Close may be called from any.
type ChangeStream struct {
	c       *Client
	ctx     context.Context
	cancel  context.CancelFunc
	req     *pb.WatchRequest
	st      grpc.ClientStream
	pending []*pb.ChangeEvent
	page    string // the resume_token of the message whose events are pending
	token   string
	event   Document
	err     error
	resumed bool // reconnected, and the new stream has not answered yet
	closed  atomic.Bool
}

// Watch opens a change stream of the collection; opts may be nil. It returns once the stream
// is in place (the server's first message read, which carries its position): every change
// committed after Watch returns comes. ResumeAfter reads on from a saved token with nothing
// missed; a bad pipeline or token fails Watch itself.
func (col *Collection) Watch(ctx context.Context, opts *WatchOptions) (*ChangeStream, error) {
	return col.c.watch(ctx, col.Name, opts)
}

// Watch opens a change stream of every document collection (each event's ns says which);
// dropping a collection comes as a "drop" event and the stream goes on. See Collection.Watch.
func (c *Client) Watch(ctx context.Context, opts *WatchOptions) (*ChangeStream, error) {
	return c.watch(ctx, "", opts)
}

func (c *Client) watch(ctx context.Context, coll string, opts *WatchOptions) (*ChangeStream, error) {
	if opts == nil {
		opts = &WatchOptions{}
	}
	for i, st := range opts.Pipeline {
		if err := checkStage(st, i); err != nil {
			return nil, err
		}
	}
	var enc encoder
	req := &pb.WatchRequest{Collection: coll, Pipeline: each(&enc, opts.Pipeline, "pipeline"),
		FullDocument: opts.FullDocument, PageSize: opts.PageSize}
	if enc.err != nil {
		return nil, enc.err
	}
	cs := &ChangeStream{c: c, req: req, token: opts.ResumeAfter}
	cs.ctx, cs.cancel = c.ctx(ctx, false)
	if err := cs.open(false); err != nil {
		cs.cancel()
		return nil, err
	}
	return cs, nil
}

// take takes a message in: its events to hand out, or (none: the first message, a
// heartbeat) the stream's position.
func (cs *ChangeStream) take(msg *pb.WatchResponse) {
	cs.resumed = false
	if evs := msg.GetEvents(); len(evs) > 0 {
		cs.pending, cs.page = evs, msg.GetResumeToken()
	} else if msg.GetResumeToken() != "" {
		cs.token = msg.GetResumeToken()
	}
}

// open starts the call after cs.token and reads the server's first message (the stream is
// then in place). After a dropped connection (reconnect) it tries again while the server
// answers UNAVAILABLE, waiting for the connection each time, up to the client's timeout: a
// connection that still looked ready right after the server died fails the first try.
func (cs *ChangeStream) open(reconnect bool) error {
	method := pb.DocumentService_Watch_FullMethodName
	var deadline time.Time
	if cs.c.timeout > 0 {
		deadline = time.Now().Add(cs.c.timeout)
	}
	for {
		if reconnect {
			if err := cs.c.waitReady(cs.ctx); err != nil {
				return err
			}
		}
		err := cs.start(method)
		if err == nil || !reconnect || status.Code(err) != codes.Unavailable ||
			(!deadline.IsZero() && time.Now().After(deadline)) {
			return wrapErr(err, method)
		}
		select {
		case <-cs.ctx.Done():
			return cs.ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// start makes one attempt: the call, the request, the first message.
func (cs *ChangeStream) start(method string) error {
	req := &pb.WatchRequest{Collection: cs.req.Collection, Pipeline: cs.req.Pipeline,
		FullDocument: cs.req.FullDocument, PageSize: cs.req.PageSize, ResumeAfter: cs.token}
	first := new(pb.WatchResponse)
	st, err := cs.c.openStream(cs.ctx, method, req, first)
	if err == io.EOF {
		err = status.Error(codes.Internal, "the stream ended before its first message")
	}
	if err != nil {
		return err
	}
	cs.st = st
	cs.take(first)
	return nil
}

// waitReady waits until the connection to the target is ready, up to the client's timeout.
func (c *Client) waitReady(ctx context.Context) error {
	conn, err := c.conn(c.Target())
	if err != nil {
		return err
	}
	if c.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.timeout)
		defer cancel()
	}
	for s := conn.GetState(); s != connectivity.Ready; s = conn.GetState() {
		conn.Connect()
		if !conn.WaitForStateChange(ctx, s) {
			return ctx.Err()
		}
	}
	return nil
}

// Next reads the next event (Event), blocking until one comes; false when the stream ended
// (Err says why, nil after Close or the collection's invalidate event).
func (cs *ChangeStream) Next() bool {
	for len(cs.pending) == 0 {
		if cs.st == nil || cs.closed.Load() {
			return false
		}
		msg := new(pb.WatchResponse)
		err := cs.st.RecvMsg(msg)
		if err == io.EOF {
			cs.finish(nil)
			return false
		}
		if err != nil {
			cs.failed(err)
			if cs.st == nil {
				return false
			}
			continue
		}
		cs.take(msg)
	}
	e := cs.pending[0]
	cs.pending = cs.pending[1:]
	cs.token = e.GetToken()
	if len(cs.pending) == 0 && cs.page != "" {
		cs.token = cs.page
	}
	doc, err := fromDocument(e.GetEvent())
	if err != nil {
		cs.finish(err)
		return false
	}
	cs.event = doc
	return true
}

// failed handles a failed read: the end after Close or ctx's cancellation, one reconnection
// after UNAVAILABLE, else the error. cs.st is nil unless the stream goes on.
func (cs *ChangeStream) failed(err error) {
	switch {
	case cs.closed.Load():
		cs.finish(nil)
	case cs.ctx.Err() != nil:
		cs.finish(cs.ctx.Err())
	case status.Code(err) == codes.Unavailable && !cs.resumed:
		cs.resumed = true
		if rerr := cs.open(true); rerr != nil {
			cs.finish(wrapErr(err, pb.DocumentService_Watch_FullMethodName))
		}
	default:
		cs.finish(wrapErr(err, pb.DocumentService_Watch_FullMethodName))
	}
}

func (cs *ChangeStream) finish(err error) {
	cs.err = err
	cs.st = nil
	cs.pending = nil
	cs.cancel()
}

// Event is the event Next read.
func (cs *ChangeStream) Event() Document { return cs.event }

// ResumeToken is where the stream stands: the last event's token, moved on by the server's
// heartbeats (every 5 s without events) past events the pipeline dropped; WatchOptions'
// ResumeAfter takes it. Empty until there is one.
func (cs *ChangeStream) ResumeToken() string { return cs.token }

// Err is why the stream ended: nil while it runs, after Close and after an invalidate event.
func (cs *ChangeStream) Err() error { return cs.err }

// Close stops the stream (a Next blocked in another goroutine returns false). Safe to call
// more than once and from any goroutine.
func (cs *ChangeStream) Close() error {
	cs.closed.Store(true)
	cs.cancel()
	return nil
}

// All ranges over the events until the stream ends, yielding its error last if it failed
// (not a cancelled ctx: that is how a stream is stopped); breaking out of the loop leaves the
// stream open (Close it).
//
//	for ev, err := range cs.All() { ... }
func (cs *ChangeStream) All() iter.Seq2[Document, error] {
	return func(yield func(Document, error) bool) {
		for cs.Next() {
			if !yield(cs.Event(), nil) {
				return
			}
		}
		if err := cs.Err(); err != nil && !errors.Is(err, context.Canceled) {
			yield(nil, err)
		}
	}
}
