package daemon

import (
	"bufio"
	"context"
	"net/http"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
)

func TestDashboard(t *testing.T) {
	b := setup(t, Config{Tokens: []TokenConfig{{Name: "dashboard", Token: "read-token", Scopes: []string{"read"}}}})

	// The page itself needs no token, even when tokens are configured.
	resp, err := b.http.Get(b.url + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("GET / without a token: %d, want 200", resp.StatusCode)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/html") {
		t.Errorf("GET /: Content-Type %q, want text/html", ct)
	}
	if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'none'") {
		t.Errorf("GET /: Content-Security-Policy %q does not forbid external assets", csp)
	}
	status, page := b.call(t, "GET", "/", "", nil)
	if status != 200 {
		t.Fatalf("GET /: %d", status)
	}
	html := string(page)
	for _, want := range []string{
		`<section id="types">`, `<section id="consumers">`, `<section id="events">`, `<section id="tail">`,
		"rate", "lag", "in flight", "failures", "dead letters", // columns
		"sessionStorage", `"Authorization": "Bearer "`, // the token
	} {
		if !strings.Contains(html, want) {
			t.Errorf("the dashboard lacks %q", want)
		}
	}
	// Self-contained: no external scripts, styles or images.
	if m := regexp.MustCompile(`(?i)(src|href)\s*=\s*["']?(https?:)?//`).FindString(html); m != "" {
		t.Errorf("the dashboard loads an external asset: %s", m)
	}

	// Only "/" is the dashboard: other paths are still JSON 404s, and
	// other methods 405.
	status, body := b.call(t, "GET", "/nope", "", nil)
	wantError(t, status, body, 404, CodeNotFound, "/nope")
	status, body = b.call(t, "POST", "/", "", "x")
	wantError(t, status, body, 405, CodeMethodNotAllowed)

	// The API behind it still wants the token.
	status, body = b.call(t, "GET", "/v1/types", "", nil)
	wantError(t, status, body, 401, CodeUnauthorized)
}

// The dashboard's JavaScript must only call endpoints the server routes,
// and a read token must be enough for every one of them.
func TestDashboardEndpointsExist(t *testing.T) {
	b := setup(t, Config{Tokens: []TokenConfig{{Name: "dashboard", Token: "read-token", Scopes: []string{"read"}}}})
	if status, body := b.call(t, "POST", "/v1/events", "", `{"type":"a.b","data":1}`); status != 401 {
		t.Fatalf("log without a token: %d %s", status, body)
	}

	seen := map[string]bool{}
	for _, m := range regexp.MustCompile(`"(/(?:v1/|healthz|metrics)[^"?]*)`).FindAllStringSubmatch(string(dashboardHTML), -1) {
		seen[m[1]] = true
	}
	var paths []string
	for p := range seen {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	for _, want := range []string{"/v1/consumers", "/v1/events", "/v1/tail", "/v1/types"} {
		if !slices.Contains(paths, want) {
			t.Errorf("the dashboard does not call %s; it calls %v", want, paths)
		}
	}
	t.Logf("the dashboard calls %v", paths)
	mux, ok := b.srv.Handler().(*http.ServeMux)
	if !ok {
		t.Fatalf("Handler is a %T, not a *http.ServeMux", b.srv.Handler())
	}
	for _, p := range paths {
		req, err := http.NewRequest("GET", b.url+p, nil)
		if err != nil {
			t.Fatal(err)
		}
		if _, pattern := mux.Handler(req); pattern == "" || pattern == "/" || pattern == dashboardPath {
			t.Errorf("the dashboard calls %s, which no route serves (pattern %q)", p, pattern)
			continue
		}
		if p == "/v1/tail" {
			continue // a stream: checked below
		}
		if status, body := b.call(t, "GET", p, "read-token", nil); status != 200 {
			t.Errorf("GET %s with a read token: %d %s", p, status, body)
		}
	}

	// The tail, as the page reads it: fetch with the bearer header.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, "GET", b.url+"/v1/tail", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer read-token")
	resp, err := b.http.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		t.Fatalf("GET /v1/tail with a read token: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	line, err := bufio.NewReader(resp.Body).ReadString('\n')
	if err != nil || line != ": monster tail\n" {
		t.Fatalf("tail's first line %q, %v", line, err)
	}
}
