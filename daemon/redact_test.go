package daemon

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gomonster/monster/monstertest"
)

func TestRedactURL(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ in, want string }{
		{"http://127.0.0.1:9000/hook", "http://127.0.0.1:9000/hook"},
		{"https://user:PASSWORD@host/hook?api_key=KEY", "https://user:xxxxx@host/hook?api_key=xxxxx"},
		{"https://user@host/hook", "https://user@host/hook"},
		{"http://host/h?a=1&b=&TOKEN&&c=x%3Dy", "http://host/h?a=xxxxx&b=xxxxx&xxxxx&&c=xxxxx"},
		{"http://host/h?api_key=KEY#frag", "http://host/h?api_key=xxxxx#frag"},
		{"http://a b/%zz?api_key=KEY", "(a malformed URL, not shown)"},
	} {
		if got := redactURL(tc.in); got != tc.want {
			t.Errorf("redactURL(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// lockedBuffer collects log output written from several goroutines.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// A webhook URL's password and query values reach the receiver, and no
// one else: not the API's answers, the dead letters' errors or the log.
func TestWebhookCredentialsAreNotShown(t *testing.T) {
	t.Parallel()
	var logs lockedBuffer
	dir := t.TempDir()
	b := startLogging(t, Config{Store: filepath.Join(dir, "monster.db"), PollInterval: Duration(10 * time.Millisecond)}, dir,
		slog.New(slog.NewTextHandler(io.MultiWriter(&logs, t.Output()), nil)))
	ctx := context.Background()

	var mu sync.Mutex
	var gotUser, gotPassword, gotKey string
	rcv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		gotUser, gotPassword, _ = r.BasicAuth()
		gotKey = r.URL.Query().Get("api_key")
		mu.Unlock()
		http.Error(w, "down for maintenance", http.StatusInternalServerError)
	}))
	t.Cleanup(rcv.Close)
	refused := httptest.NewServer(http.NotFoundHandler())
	refusedHost := strings.TrimPrefix(refused.URL, "http://")
	refused.Close()

	secrets := []string{"PASSWORD1", "KEY1", "PASSWORD2", "KEY2", "TOKEN3"}
	hooks := map[string]string{
		"answers500": "http://user:PASSWORD1@" + strings.TrimPrefix(rcv.URL, "http://") + "/hook?api_key=KEY1&v=2",
		"refused":    "http://user:PASSWORD2@" + refusedHost + "/hook?api_key=KEY2",
	}
	var shown strings.Builder
	for name, url := range hooks {
		spec := fastRetry(url, "s", "a.*")
		spec.MaxAttempts = 2
		status, body := b.call(t, "PUT", "/v1/consumers/"+name, "", spec)
		if status != 201 {
			t.Fatalf("PUT %s: %d %s", name, status, body)
		}
		shown.Write(body)
		if put := decode[PutConsumerResult](t, body); put.Webhook.URL != strings.NewReplacer("PASSWORD1", "xxxxx", "PASSWORD2", "xxxxx", "KEY1", "xxxxx", "KEY2", "xxxxx", "=2", "=xxxxx").Replace(url) {
			t.Errorf("PUT %s answered the URL %q", name, put.Webhook.URL)
		}
	}
	// A refused URL is not echoed either.
	bad := fastRetry("ftp://user:TOKEN3@host/?api_key=TOKEN3", "s", "a.*")
	status, body := b.call(t, "PUT", "/v1/consumers/bad", "", bad)
	wantError(t, status, body, 400, CodeInvalidField, "webhook.url", "ftp://user:xxxxx@host/?api_key=xxxxx")
	shown.Write(body)

	logN(t, b, 1, func(int) string { return "a.b" })
	for name := range hooks {
		monstertest.EventuallyWithin(t, 10*time.Second, name+" dead-letters the event", func() bool {
			dls, err := b.client.DeadLetters(ctx, name, 0)
			return err == nil && len(dls) == 1
		})
		_, body := b.call(t, "GET", "/v1/consumers/"+name+"/dead", "", nil)
		shown.Write(body)
		_, body = b.call(t, "GET", "/v1/consumers/"+name, "", nil)
		shown.Write(body)
	}
	_, body = b.call(t, "GET", "/v1/consumers", "", nil)
	shown.Write(body)
	for _, want := range []string{"user:xxxxx@", "api_key=xxxxx", "500", "refused"} {
		if !strings.Contains(shown.String(), want) {
			t.Errorf("the answers do not show %q:\n%s", want, shown.String())
		}
	}
	b.stop() // every log line is written
	for _, secret := range secrets {
		if strings.Contains(shown.String(), secret) {
			t.Errorf("an API answer shows %s:\n%s", secret, shown.String())
		}
		if strings.Contains(logs.String(), secret) {
			t.Errorf("the log shows %s:\n%s", secret, logs.String())
		}
	}
	if !strings.Contains(logs.String(), "api_key=xxxxx") {
		t.Errorf("the log never names the webhook, redacted:\n%s", logs.String())
	}
	mu.Lock()
	defer mu.Unlock()
	if gotUser != "user" || gotPassword != "PASSWORD1" || gotKey != "KEY1" {
		t.Errorf("the receiver got user %q, password %q, api_key %q: deliveries must use the full URL", gotUser, gotPassword, gotKey)
	}
}
