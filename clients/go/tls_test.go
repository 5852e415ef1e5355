package nexadb_test

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"google.golang.org/grpc/codes"

	nexadb "github.com/nexadb/nexadb/clients/go"
)

// TLS and mTLS handshakes against real servers, with certificates made fresh by
// tests/tls/mkcerts.sh: good, expired, wrong CA; client certificates.
func TestTLS(t *testing.T) {
	certs := t.TempDir()
	if out, err := exec.Command("../../tests/tls/mkcerts.sh", certs).CombinedOutput(); err != nil {
		t.Fatalf("mkcerts: %v: %s", err, out)
	}
	f := func(name string) string { return filepath.Join(certs, name) }
	start := func(cert string, clientCA string) *testServer {
		args := []string{"--tls-cert", f(cert + ".crt"), "--tls-key", f(cert + ".key")}
		if clientCA != "" {
			args = append(args, "--tls-client-ca", f(clientCA))
		}
		s, err := startServer(args...)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(s.stop)
		return s
	}
	good, expired, mutual := start("server", ""), start("expired", ""), start("server", "ca.crt")

	try := func(s *testServer, ca, cert, key string) error {
		cfg, err := nexadb.LoadTLSConfig(ca, cert, key)
		if err != nil {
			t.Fatal(err)
		}
		db, err := nexadb.Connect(s.Addr, nexadb.WithAPIKey(s.APIKey), nexadb.WithTLS(cfg))
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_, err = db.Stats(ctx)
		return err
	}
	ok := func(name string, err error) {
		if err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	refused := func(name string, err error) {
		var e *nexadb.Error
		if !errors.As(err, &e) || e.Code != codes.Unavailable {
			t.Errorf("%s: want UNAVAILABLE, got %v", name, err)
		}
	}
	ok("right CA", try(good, f("ca.crt"), "", ""))
	refused("wrong CA", try(good, f("other-ca.crt"), "", ""))
	refused("system roots only", try(good, "", "", ""))
	refused("expired server certificate", try(expired, f("ca.crt"), "", ""))
	ok("mTLS with a client certificate", try(mutual, f("ca.crt"), f("client.crt"), f("client.key")))
	refused("mTLS without a client certificate", try(mutual, f("ca.crt"), "", ""))
	refused("mTLS, client certificate from another CA", try(mutual, f("ca.crt"), f("client-other.crt"), f("client-other.key")))
	refused("mTLS, expired client certificate", try(mutual, f("ca.crt"), f("client-expired.crt"), f("client-expired.key")))

	if _, err := nexadb.LoadTLSConfig("", f("client.crt"), ""); err == nil {
		t.Error("a certificate without its key was accepted")
	}
	if _, err := nexadb.LoadTLSConfig(f("client.key"), "", ""); err == nil {
		t.Error("a CA file without a certificate was accepted")
	}
	if _, err := os.Stat(f("ca.crt")); err != nil {
		t.Fatal(err)
	}
}
