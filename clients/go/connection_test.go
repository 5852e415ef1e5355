package nexadb_test

import (
	"context"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	nexadb "github.com/nexadb/nexadb/clients/go"
)

func connect(t *testing.T, opts ...nexadb.Option) *nexadb.Client {
	t.Helper()
	db, err := nexadb.Connect(srv.Addr, append([]nexadb.Option{nexadb.WithAPIKey(srv.APIKey)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func TestStatusNeedsNoKey(t *testing.T) {
	db := connect(t, nexadb.WithAPIKey(""))
	st, err := db.Status(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if st.GetStatus() != "ok" || st.GetVersion() == "" {
		t.Fatalf("status = %v", st)
	}
}

func TestStatsWithKey(t *testing.T) {
	st, err := connect(t).Stats(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if st.GetRssBytes() <= 0 {
		t.Fatalf("rss_bytes = %d", st.GetRssBytes())
	}
}

func TestMissingKeyIsUnauthenticated(t *testing.T) {
	t.Setenv("NEXADB_API_KEY", "")
	db := connect(t, nexadb.WithAPIKey(""))
	_, err := db.Stats(context.Background())
	if !errors.Is(err, nexadb.ErrUnauthenticated) {
		t.Fatalf("err = %v, want UNAUTHENTICATED", err)
	}
	var e *nexadb.Error
	if !errors.As(err, &e) || e.Code != codes.Unauthenticated || !strings.Contains(e.Message, "API key") || e.Method != "Stats" {
		t.Fatalf("err = %#v", err)
	}
	if status.Code(err) != codes.Unauthenticated {
		t.Fatalf("status.Code = %v", status.Code(err))
	}
	if errors.Is(err, nexadb.ErrNotFound) {
		t.Fatal("UNAUTHENTICATED matched ErrNotFound")
	}
}

func TestAPIKeyFromEnvironment(t *testing.T) {
	t.Setenv("NEXADB_API_KEY", srv.APIKey)
	db, err := nexadb.Connect(srv.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Stats(context.Background()); err != nil {
		t.Fatal(err)
	}
}

func TestUnreachableIsUnavailable(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	db, err := nexadb.Connect(addr, nexadb.WithAPIKey("k"), nexadb.WithTimeout(3*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Status(context.Background()); !errors.Is(err, nexadb.ErrUnavailable) {
		t.Fatalf("Status err = %v", err)
	}
	// Find is lazy: the iterator reports the error when it is ranged over
	seq := db.Collection("c").FindIter(context.Background(), nil)
	for _, err := range seq {
		if !errors.Is(err, nexadb.ErrUnavailable) {
			t.Fatalf("FindIter err = %v", err)
		}
	}
}

func TestBadValuesRefusedBeforeSending(t *testing.T) {
	db := connect(t)
	c := db.Collection("c")
	ctx := context.Background()
	for _, tc := range []struct {
		call func() error
		want string
	}{
		{func() error { _, err := c.Insert(ctx, bson.M{"ch": make(chan int)}); return err }, "nexadb: document: no encoder found for chan int"},
		{func() error { _, err := c.Insert(ctx, nil); return err }, "nexadb: document: nil"},
		{func() error { _, err := c.Insert(ctx, []int{1}); return err }, "[]int is not a document"},
		{func() error { _, err := c.Update(ctx, "id", nil); return err }, "nexadb: update: nil"},
		{func() error { _, err := c.Count(ctx, "age > 3"); return err }, "nexadb: filter: string is not a document"},
		{func() error { _, err := c.Find(ctx, nil, nexadb.Projection(bson.M{"x": func() {}})); return err }, "nexadb: projection: "},
		{func() error {
			_, err := c.InsertMany(ctx, []any{bson.M{}, bson.M{"a": bson.M{"b": uint64(1) << 63}}})
			return err
		}, "nexadb: documents[1]: 9223372036854775808 overflows int64"},
		{func() error {
			_, err := c.Aggregate(ctx, []nexadb.Document{{{Key: "$match", Value: bson.M{}}}, nil})
			return err
		}, "nexadb: pipeline[1]: nil"},
	} {
		if err := tc.call(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("err = %v; want %q", err, tc.want)
		}
	}
	vc, _ := db.VectorCollection(ctx, "v", 0, nexadb.Cosine)
	if _, err := vc.InsertMany(ctx, []any{bson.M{}, bson.M{}}, [][]float32{{1}}); err == nil {
		t.Fatal("mismatched InsertMany accepted")
	}
}
