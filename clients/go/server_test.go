package nexadb_test

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// testServer is a real nexadb-server ($NEXADB_SERVER) on free ports in a temp dir; its
// bound gRPC port and generated API key come from its JSON log lines on stderr.
type testServer struct {
	cmd    *exec.Cmd
	dir    string
	Addr   string
	APIKey string
}

var srv *testServer

func TestMain(m *testing.M) {
	var err error
	srv, err = startServer()
	if err != nil {
		fmt.Fprintln(os.Stderr, "starting nexadb-server:", err)
		os.Exit(2)
	}
	code := m.Run()
	srv.stop()
	os.Exit(code)
}

func startServer(extraArgs ...string) (*testServer, error) {
	dir, err := os.MkdirTemp("", "nexadb-go-")
	if err != nil {
		return nil, err
	}
	return startServerIn(dir, extraArgs...)
}

// startServerIn starts a server on dir/data (made when missing), its flags last.
func startServerIn(dir string, extraArgs ...string) (*testServer, error) {
	bin := os.Getenv("NEXADB_SERVER")
	if bin == "" {
		bin = "../../build/test/service/nexadb-server"
	}
	data := filepath.Join(dir, "data")
	args := append([]string{"--data-dir", data, "--grpc-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0"}, extraArgs...)
	cmd := exec.Command(bin, args...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	s := &testServer{cmd: cmd, dir: dir}
	ready := make(chan error, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 1<<16), 1<<20)
		signalled := false
		for sc.Scan() {
			var rec map[string]any
			if json.Unmarshal(sc.Bytes(), &rec) != nil || signalled {
				continue // keep draining so the server never blocks on a full pipe
			}
			if rec["msg"] == "gRPC listening" {
				s.Addr = fmt.Sprintf("127.0.0.1:%d", int(rec["port"].(float64)))
			}
			if k, ok := rec["api_key"].(string); ok {
				s.APIKey = k
			}
			if rec["msg"] == "nexadb-server ready" {
				signalled = true
				ready <- nil
			}
		}
		if !signalled {
			ready <- fmt.Errorf("server exited before it was ready")
		}
	}()
	select {
	case err := <-ready:
		if err != nil {
			return nil, err
		}
	case <-time.After(20 * time.Second):
		cmd.Process.Kill()
		return nil, fmt.Errorf("server did not become ready")
	}
	if s.APIKey == "" {
		if b, err := os.ReadFile(filepath.Join(data, "api_key")); err == nil {
			s.APIKey = strings.Fields(string(b))[0]
		}
	}
	return s, nil
}

func (s *testServer) stop() {
	s.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { s.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(15 * time.Second):
		s.cmd.Process.Kill()
		<-done
	}
	os.RemoveAll(s.dir)
}

var nameSeq int

func uniqueName(prefix string) string {
	nameSeq++
	return fmt.Sprintf("%s_%d_%d", prefix, time.Now().UnixNano()%1e9, nameSeq)
}
