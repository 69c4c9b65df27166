package daemon

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
)

func TestMain(m *testing.M) {
	before := runtime.NumGoroutine()
	code := m.Run()
	if code == 0 {
		// Every server, consumer, tail and connection the tests started
		// must be gone.
		deadline := time.Now().Add(10 * time.Second)
		for runtime.NumGoroutine() > before+2 && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
		}
		if n := runtime.NumGoroutine(); n > before+2 {
			buf := make([]byte, 1<<20)
			buf = buf[:runtime.Stack(buf, true)]
			fmt.Fprintf(os.Stderr, "goroutine leak: %d goroutines after the tests, %d before\n%s\n", n, before, buf)
			code = 1
		}
	}
	os.Exit(code)
}

// bundle is a running server and a client for it.
type bundle struct {
	srv    *Server
	url    string
	client *Client
	http   *http.Client
	dir    string
	stop   func() // stops the server and checks Serve returned nil
}

// setup starts a server with cfg (Store defaults to a temp file) on a
// loopback port and stops it when the test ends.
func setup(t *testing.T, cfg Config) *bundle {
	t.Helper()
	dir := t.TempDir()
	if cfg.Store == "" {
		cfg.Store = filepath.Join(dir, "monster.db")
	}
	if cfg.PollInterval == 0 {
		cfg.PollInterval = Duration(10 * time.Millisecond)
	}
	return start(t, cfg, dir)
}

func start(t *testing.T, cfg Config, dir string) *bundle {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cfg.Addr = ln.Addr().String()
	srv, err := New(context.Background(), cfg, slog.New(slog.NewTextHandler(t.Output(), nil)))
	if err != nil {
		ln.Close()
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln) }()
	transport := &http.Transport{}
	hc := &http.Client{Transport: transport, Timeout: 30 * time.Second}
	b := &bundle{srv: srv, url: "http://" + ln.Addr().String(), http: hc, dir: dir}
	b.client = &Client{BaseURL: b.url, HTTP: hc}
	stopped := false
	b.stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Serve returned %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Error("Serve did not return 30s after its context ended")
		}
		transport.CloseIdleConnections()
	}
	t.Cleanup(b.stop)
	return b
}

// call sends a request and returns the status and body.
func (b *bundle) call(t *testing.T, method, path, token string, body any) (int, []byte) {
	t.Helper()
	var r io.Reader
	switch v := body.(type) {
	case nil:
	case string:
		r = strings.NewReader(v)
	case []byte:
		r = bytes.NewReader(v)
	default:
		data, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		r = bytes.NewReader(data)
	}
	req, err := http.NewRequest(method, b.url+path, r)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := b.http.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, data
}

// wantError checks an error answer: status, code, and a message starting
// with "monster: " that contains every one of mentions.
func wantError(t *testing.T, status int, body []byte, wantStatus int, wantCode string, mentions ...string) {
	t.Helper()
	if status != wantStatus {
		t.Fatalf("status %d, want %d; body %s", status, wantStatus, body)
	}
	var eb struct {
		Error *Error `json:"error"`
	}
	if err := json.Unmarshal(body, &eb); err != nil || eb.Error == nil {
		t.Fatalf("error body %s is not {\"error\":{...}}: %v", body, err)
	}
	if eb.Error.Code != wantCode {
		t.Errorf("code %q, want %q (message %q)", eb.Error.Code, wantCode, eb.Error.Message)
	}
	if !strings.HasPrefix(eb.Error.Message, "monster: ") {
		t.Errorf("message %q does not start with \"monster: \"", eb.Error.Message)
	}
	for _, m := range mentions {
		if !strings.Contains(eb.Error.Message, m) {
			t.Errorf("message %q does not mention %q", eb.Error.Message, m)
		}
	}
}

func decode[T any](t *testing.T, body []byte) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(body, &v); err != nil {
		t.Fatalf("decoding %s: %v", body, err)
	}
	return v
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

func httptestServer(h http.Handler) *httptest.Server { return httptest.NewServer(h) }
