package daemon

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/gomonster/monster/monstertest"
)

func TestAuthTokensAndScopes(t *testing.T) {
	t.Setenv("MONSTER_TEST_ADMIN_TOKEN", "admin-token")
	b := setup(t, Config{Tokens: []TokenConfig{
		{Name: "shop", Token: "log-token", Scopes: []string{"log"}},
		{Name: "dashboard", Token: "read-token", Scopes: []string{"read"}},
		{Name: "ops", TokenEnv: "MONSTER_TEST_ADMIN_TOKEN", Scopes: []string{"admin"}},
	}})
	event := `{"type":"a.b","data":1}`

	status, body := b.call(t, "POST", "/v1/events", "", event)
	wantError(t, status, body, 401, CodeUnauthorized, "missing bearer token")
	status, body = b.call(t, "POST", "/v1/events", "wrong", event)
	wantError(t, status, body, 401, CodeUnauthorized, "unknown bearer token")
	status, body = b.call(t, "POST", "/v1/events", "read-token", event)
	wantError(t, status, body, 403, CodeForbidden, `"dashboard"`, `"log"`)
	status, body = b.call(t, "GET", "/v1/events", "log-token", nil)
	wantError(t, status, body, 403, CodeForbidden, `"read"`)
	status, body = b.call(t, "POST", "/v1/consumers/x/reset", "read-token", map[string]string{"to": "end"})
	wantError(t, status, body, 403, CodeForbidden, `"admin"`)
	status, body = b.call(t, "GET", "/metrics", "", nil)
	wantError(t, status, body, 401, CodeUnauthorized)

	if status, body = b.call(t, "POST", "/v1/events", "log-token", event); status != 201 {
		t.Fatalf("log token: %d %s", status, body)
	}
	if status, body = b.call(t, "GET", "/v1/events", "read-token", nil); status != 200 {
		t.Fatalf("read token: %d %s", status, body)
	}
	// Admin may do everything.
	for _, r := range []struct{ method, path string }{{"POST", "/v1/events"}, {"GET", "/v1/types"}, {"GET", "/metrics"}} {
		var body any
		if r.method == "POST" {
			body = event
		}
		if status, data := b.call(t, r.method, r.path, "admin-token", body); status/100 != 2 {
			t.Errorf("admin %s %s: %d %s", r.method, r.path, status, data)
		}
	}
	// The health check needs no token.
	if status, _ = b.call(t, "GET", "/healthz", "", nil); status != 200 {
		t.Errorf("healthz without a token: %d", status)
	}
	// The Go client sends its token.
	c := &Client{BaseURL: b.url, Token: "read-token", HTTP: b.http}
	if page, err := c.Events(context.Background(), EventsQuery{}); err != nil || len(page.Events) != 2 {
		t.Fatalf("client with token: %+v, %v", page, err)
	}
	c.Token = "nope"
	_, err := c.Types(context.Background())
	var apiErr *Error
	if !asError(err, &apiErr) || apiErr.Status != 401 || apiErr.Code != CodeUnauthorized {
		t.Fatalf("client with a wrong token: %v", err)
	}
}

func asError(err error, target **Error) bool {
	e, ok := err.(*Error)
	if ok {
		*target = e
	}
	return ok
}

func TestConfigRefusals(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	for _, c := range []struct {
		name    string
		cfg     Config
		mention string
	}{
		{"public address without token", Config{Addr: "0.0.0.0:7777"}, `refusing to listen on "0.0.0.0:7777" without a token`},
		{"hostname without token", Config{Addr: "example.com:7777"}, "without a token"},
		{"bad policy", Config{UndeclaredTypes: "maybe"}, `"maybe"`},
		{"token without scopes", Config{Tokens: []TokenConfig{{Name: "t", Token: "x"}}}, "no scopes"},
		{"unknown scope", Config{Tokens: []TokenConfig{{Name: "t", Token: "x", Scopes: []string{"write"}}}}, `"write"`},
		{"empty token env", Config{Tokens: []TokenConfig{{Name: "t", TokenEnv: "MONSTER_TEST_UNSET_VAR", Scopes: []string{"read"}}}}, "MONSTER_TEST_UNSET_VAR"},
		{"bad schema", Config{Types: map[string]TypeConfig{"a.b": {Schema: []byte(`{"type":"nonsense"}`)}}}, `"a.b"`},
		{"bad consumer", Config{Consumers: map[string]ConsumerSpec{"c": {Types: []string{"a"}}}}, "webhook.url"},
	} {
		t.Run(c.name, func(t *testing.T) {
			c.cfg.Store = dir + "/" + strings.ReplaceAll(c.name, " ", "-") + ".db"
			_, err := New(context.Background(), c.cfg, nil)
			if err == nil || !strings.HasPrefix(err.Error(), "monster: ") || !strings.Contains(err.Error(), c.mention) {
				t.Fatalf("New: %v; want an error mentioning %q", err, c.mention)
			}
		})
	}
	// With a token, a public address is allowed.
	cfg := Config{Addr: "0.0.0.0:0", Store: dir + "/ok.db", Tokens: []TokenConfig{{Name: "t", Token: "x", Scopes: []string{"read"}}}}
	s, err := New(context.Background(), cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
}

func TestLoadConfigYAMLAndJSON(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	yaml := dir + "/monster.yaml"
	writeFile(t, yaml, `
addr: 127.0.0.1:7777
undeclared_types: reject
tokens:
  - {name: shop, token: abc, scopes: [log]}
types:
  user.bought_shirt:
    schema: {type: object, required: [user]}
consumers:
  mailer:
    types: ["user.*"]
    webhook: {url: "http://127.0.0.1:9/hook", secret: s, timeout: 2s}
`)
	cfg, err := LoadConfig(yaml)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.UndeclaredTypes != "reject" || len(cfg.Tokens) != 1 || cfg.Consumers["mailer"].Webhook.Timeout != Duration(2*time.Second) ||
		!strings.Contains(string(cfg.Types["user.bought_shirt"].Schema), `"required"`) {
		t.Fatalf("config %+v", cfg)
	}
	bad := dir + "/bad.json"
	writeFile(t, bad, `{"adr": "x"}`)
	if _, err := LoadConfig(bad); err == nil || !strings.Contains(err.Error(), "adr") {
		t.Fatalf("unknown field: %v", err)
	}
}

func TestMetrics(t *testing.T) {
	t.Parallel()
	b := setup(t, Config{})
	rcv := newReceiver(t, "k", 1)
	if _, err := b.client.PutConsumer(context.Background(), "m1", fastRetry(rcv.srv.URL, "k", "*")); err != nil {
		t.Fatal(err)
	}
	logN(t, b, 3, func(int) string { return "user.signed_up" })
	monstertest.EventuallyWithin(t, 10*time.Second, "deliveries", func() bool { return rcv.acceptedCount() == 3 })
	var text string
	monstertest.EventuallyWithin(t, 10*time.Second, "metrics with the consumer caught up", func() bool {
		status, body := b.call(t, "GET", "/metrics", "", nil)
		text = string(body)
		return status == http.StatusOK && strings.Contains(text, `monster_consumer_position{consumer="m1"} 3`)
	})
	for _, want := range []string{
		`monster_events_logged_total{type="user.signed_up"} 3`,
		`monster_events_stored{type="user.signed_up"} 3`,
		`monster_head_position 3`,
		`monster_consumer_lag{consumer="m1"} 0`,
		`monster_consumer_failures_total{consumer="m1"} 3`,
		`monster_consumer_dead_letters{consumer="m1"} 0`,
		`monster_webhook_duration_seconds_count{consumer="m1",outcome="ok"} 3`,
		`monster_webhook_duration_seconds_count{consumer="m1",outcome="503"} 3`,
		`monster_handler_duration_seconds_count{consumer="m1",outcome="error"} 3`,
		`monster_http_requests_total{code="201",route="/v1/events"} 1`,
		"monster_store_appends_total 1\n",
		"monster_store_appended_events_total 3\n",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
}

// logged counts by type, runs of one type at once.
func TestMetricsLoggedByType(t *testing.T) {
	met := newMetrics(nil, nil)
	met.logged([]Event{{Type: "a"}, {Type: "a"}, {Type: "b"}, {Type: "a"}})
	met.logged([]Event{{Type: "b"}})
	for typ, want := range map[string]float64{"a": 3, "b": 2} {
		if got := testutil.ToFloat64(met.eventsLogged.WithLabelValues(typ)); got != want {
			t.Errorf("events logged of type %s: %v, want %v", typ, got, want)
		}
	}
}
