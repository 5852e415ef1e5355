package nexadb_test

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"syscall"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	nexadb "github.com/nexadb/nexadb/clients/go"
)

// settle: time for a goroutine to block in Next.
const settle = 500 * time.Millisecond

// take reads n events as "operationType id" strings.
func take(t *testing.T, cs *nexadb.ChangeStream, n int) []string {
	t.Helper()
	var out []string
	for len(out) < n && cs.Next() {
		ev := cs.Event()
		key, _ := field(ev, "documentKey").(bson.D)
		out = append(out, fmt.Sprintf("%v %v", field(ev, "operationType"), field(key, "_id")))
	}
	if len(out) < n {
		t.Fatalf("the stream ended after %v of %d events: %v", out, n, cs.Err())
	}
	return out
}

func TestWatchInsertUpdateDeleteInOrder(t *testing.T) {
	ctx := context.Background()
	c := connect(t).Collection(uniqueName("watch"))
	cs, err := c.Watch(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer cs.Close()
	if _, err := c.InsertMany(ctx, []any{M{"_id": "a", "n": 1}, M{"_id": "b"}}); err != nil {
		t.Fatal(err)
	}
	if ok, err := c.Update(ctx, "a", M{"$set": M{"n": 2}}); !ok || err != nil {
		t.Fatalf("= %v, %v", ok, err)
	}
	if ok, err := c.Delete(ctx, "b"); !ok || err != nil {
		t.Fatalf("= %v, %v", ok, err)
	}
	got := take(t, cs, 2)
	second := cs.ResumeToken() // the second event's, though the others came in the same message
	got = append(got, take(t, cs, 2)...)
	if want := []string{"insert a", "insert b", "update a", "delete b"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("events %v, want %v", got, want)
	}
	id, _ := field(cs.Event(), "_id").(bson.D)
	if tok := field(id, "_data"); tok != cs.ResumeToken() || cs.ResumeToken() == "" {
		t.Fatalf("ResumeToken %q, the last event's %v", cs.ResumeToken(), tok)
	}

	// resuming after the second event's token delivers exactly the rest
	cs2, err := c.Watch(ctx, &nexadb.WatchOptions{ResumeAfter: second})
	if err != nil {
		t.Fatal(err)
	}
	defer cs2.Close()
	if got := take(t, cs2, 2); !reflect.DeepEqual(got, []string{"update a", "delete b"}) {
		t.Fatalf("after the second token: %v", got)
	}
}

func TestWatchCloseAndContextStopIt(t *testing.T) {
	c := connect(t).Collection(uniqueName("watch"))
	for _, viaCtx := range []bool{false, true} {
		ctx, cancel := context.WithCancel(context.Background())
		cs, err := c.Watch(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		done := make(chan bool)
		go func() { done <- cs.Next() }()
		time.Sleep(settle)
		if viaCtx {
			cancel()
		} else {
			cs.Close()
		}
		select {
		case got := <-done:
			if got {
				t.Fatal("Next read an event from a stopped stream")
			}
		case <-time.After(10 * time.Second):
			t.Fatal("Next still blocked after the stream was stopped")
		}
		if err := cs.Err(); viaCtx != (err != nil) || (viaCtx && !errors.Is(err, context.Canceled)) {
			t.Fatalf("ctx %v: Err() = %v", viaCtx, err)
		}
		cancel()
	}
}

func TestWatchPipelineAndInvalidate(t *testing.T) {
	ctx := context.Background()
	c := connect(t).Collection(uniqueName("watch"))
	cs, err := c.Watch(ctx, &nexadb.WatchOptions{Pipeline: []nexadb.Document{
		{{Key: "$match", Value: M{"operationType": M{"$in": []string{"delete", "invalidate"}}}}}}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Insert(ctx, M{"_id": "a"}); err != nil {
		t.Fatal(err)
	}
	if ok, err := c.Delete(ctx, "a"); !ok || err != nil {
		t.Fatalf("= %v, %v", ok, err)
	}
	if ok, err := c.Drop(ctx); !ok || err != nil {
		t.Fatalf("= %v, %v", ok, err)
	}
	var ops []any
	for ev, err := range cs.All() {
		if err != nil {
			t.Fatal(err)
		}
		ops = append(ops, field(ev, "operationType"))
	}
	if !reflect.DeepEqual(ops, []any{"delete", "invalidate"}) || cs.Err() != nil {
		t.Fatalf("events %v, Err %v", ops, cs.Err())
	}
}

func TestWatchReconnectsOnceAfterADroppedConnection(t *testing.T) {
	s, err := startServer()
	if err != nil {
		t.Fatal(err)
	}
	defer func() { s.stop() }()
	db, err := nexadb.Connect(s.Addr, nexadb.WithAPIKey(s.APIKey))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ctx := context.Background()
	c := db.Collection("w")
	cs, err := c.Watch(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer cs.Close()
	if _, err := c.InsertMany(ctx, []any{M{"_id": "1"}, M{"_id": "2"}}); err != nil {
		t.Fatal(err)
	}
	take(t, cs, 2)
	// kill -9 and start again on the same port and data
	s.cmd.Process.Signal(syscall.SIGKILL)
	s.cmd.Wait()
	s2, err := startServerIn(s.dir, "--grpc-addr", s.Addr)
	if err != nil {
		t.Fatal(err)
	}
	s = s2
	if _, err := c.Insert(ctx, M{"_id": "3"}); err != nil {
		t.Fatal(err)
	}
	if ok, err := c.Delete(ctx, "1"); !ok || err != nil {
		t.Fatalf("= %v, %v", ok, err)
	}
	if got := take(t, cs, 2); !reflect.DeepEqual(got, []string{"insert 3", "delete 1"}) {
		t.Fatalf("after the reconnection: %v", got)
	}
}

func TestWatchFailsWhenTheServerStaysDown(t *testing.T) {
	s, err := startServer()
	if err != nil {
		t.Fatal(err)
	}
	defer s.stop()
	db, err := nexadb.Connect(s.Addr, nexadb.WithAPIKey(s.APIKey), nexadb.WithTimeout(1500*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	cs, err := db.Collection("w").Watch(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer cs.Close()
	s.cmd.Process.Signal(syscall.SIGKILL)
	s.cmd.Wait()
	start := time.Now()
	if cs.Next() || !errors.Is(cs.Err(), nexadb.ErrUnavailable) {
		t.Fatalf("Next after the server died: Err %v", cs.Err())
	}
	if time.Since(start) < time.Second {
		t.Fatalf("gave up after %v without waiting for the server", time.Since(start))
	}
}
