package daemon

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gomonster/monster/monstertest"
	"github.com/gomonster/monster/store"
)

// receiver is a webhook endpoint that fails the first failures deliveries
// of each event, then accepts, checking every signature.
type receiver struct {
	t        *testing.T
	secret   string
	mu       sync.Mutex
	failures int
	attempts map[string][]int // event ID → Monster-Attempt values seen
	accepted map[string]Event
	badSigs  int
	srv      *httptest.Server
}

func newReceiver(t *testing.T, secret string, failures int) *receiver {
	r := &receiver{t: t, secret: secret, failures: failures, attempts: map[string][]int{}, accepted: map[string]Event{}}
	r.srv = httptest.NewServer(http.HandlerFunc(r.serve))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *receiver) serve(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(req.Body)
	r.mu.Lock()
	defer r.mu.Unlock()
	if !VerifySignature(body, r.secret, req.Header.Get("Monster-Signature")) {
		r.badSigs++
		http.Error(w, "bad signature", http.StatusUnauthorized)
		return
	}
	var e Event
	if err := json.Unmarshal(body, &e); err != nil || e.ID != req.Header.Get("Monster-Event-Id") {
		http.Error(w, "bad body", http.StatusBadRequest)
		return
	}
	attempt, _ := strconv.Atoi(req.Header.Get("Monster-Attempt"))
	r.attempts[e.ID] = append(r.attempts[e.ID], attempt)
	if len(r.attempts[e.ID]) <= r.failures {
		http.Error(w, "not yet", http.StatusServiceUnavailable)
		return
	}
	r.accepted[e.ID] = e
	w.WriteHeader(http.StatusNoContent)
}

func (r *receiver) setFailures(n int) {
	r.mu.Lock()
	r.failures = n
	r.mu.Unlock()
}

func (r *receiver) acceptedCount() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.accepted)
}

func fastRetry(url, secret string, types ...string) ConsumerSpec {
	return ConsumerSpec{
		Types:          types,
		Webhook:        WebhookSpec{URL: url, Secret: secret, Timeout: Duration(5 * time.Second)},
		MaxAttempts:    4,
		InitialBackoff: Duration(5 * time.Millisecond),
		MaxBackoff:     Duration(20 * time.Millisecond),
	}
}

func TestWebhookRetriesUntilReceiverRecovers(t *testing.T) {
	t.Parallel()
	b := setup(t, Config{})
	rcv := newReceiver(t, "s3cret", 2) // two failures per event, then success
	ctx := context.Background()
	res, err := b.client.PutConsumer(ctx, "mailer", fastRetry(rcv.srv.URL, "s3cret", "user.*"))
	if err != nil || !res.Created {
		t.Fatalf("PutConsumer: %+v, %v", res, err)
	}
	evs := logN(t, b, 10, func(i int) string { return []string{"user.signed_up", "order.placed"}[i%2] })
	monstertest.EventuallyWithin(t, 10*time.Second, "5 user events delivered", func() bool { return rcv.acceptedCount() == 5 })

	rcv.mu.Lock()
	for _, e := range evs {
		got := rcv.attempts[e.ID]
		if e.Type == "order.placed" {
			if len(got) != 0 {
				t.Errorf("unsubscribed event %s delivered", e.Type)
			}
			continue
		}
		if len(got) != 3 || got[0] != 1 || got[1] != 2 || got[2] != 3 {
			t.Errorf("event %d: attempts %v, want [1 2 3]", e.Position, got)
		}
		if string(rcv.accepted[e.ID].Data) != string(e.Data) {
			t.Errorf("delivered data %s, want %s", rcv.accepted[e.ID].Data, e.Data)
		}
	}
	if rcv.badSigs != 0 {
		t.Errorf("%d deliveries had bad signatures", rcv.badSigs)
	}
	rcv.mu.Unlock()

	monstertest.EventuallyWithin(t, 10*time.Second, "checkpoint past every event", func() bool {
		c, err := b.client.Consumer(ctx, "mailer")
		return err == nil && c.Position == 10 && c.Lag == 0
	})
	c, err := b.client.Consumer(ctx, "mailer")
	if err != nil || c.Webhook == nil || c.Webhook.URL != rcv.srv.URL || c.Failures != 10 || c.DeadLetters != 0 {
		t.Fatalf("consumer %+v, %v", c, err)
	}
	// The daemon registers a webhook consumer before the runtime does: it
	// must store the partitioning a new consumer gets, or the consumer
	// would keep the earlier one (keyless events by type).
	info, err := b.srv.m.Store().Consumer(ctx, "mailer")
	if err != nil || info.Partitioning != store.PartitionByKeyOrID {
		t.Fatalf("stored partitioning %q, %v; want %q", info.Partitioning, err, store.PartitionByKeyOrID)
	}
}

func TestWebhookDeadLettersAndRetry(t *testing.T) {
	t.Parallel()
	b := setup(t, Config{})
	rcv := newReceiver(t, "k", 1000) // always fails
	ctx := context.Background()
	if _, err := b.client.PutConsumer(ctx, "audit", fastRetry(rcv.srv.URL, "k", "*")); err != nil {
		t.Fatal(err)
	}
	evs := logN(t, b, 3, func(int) string { return "a.b" })
	var dls []DeadLetter
	monstertest.EventuallyWithin(t, 10*time.Second, "3 dead letters", func() bool {
		var err error
		dls, err = b.client.DeadLetters(ctx, "audit", 0)
		return err == nil && len(dls) == 3
	})
	if dls[0].EventID != evs[0].ID || dls[0].Attempts != 4 || !strings.Contains(dls[0].Error, "503") {
		t.Fatalf("dead letter %+v", dls[0])
	}

	// The receiver recovers; retry one dead letter, then all.
	rcv.setFailures(0)
	status, body := b.call(t, "POST", "/v1/consumers/audit/dead/"+evs[0].ID+"/retry", "", nil)
	if status != 200 || decode[RetriedCount](t, body).Retried != 1 {
		t.Fatalf("retry one: %d %s", status, body)
	}
	monstertest.EventuallyWithin(t, 10*time.Second, "retried dead letter delivered", func() bool { return rcv.acceptedCount() == 1 })
	monstertest.EventuallyWithin(t, 10*time.Second, "retried dead letter removed", func() bool {
		dls, err := b.client.DeadLetters(ctx, "audit", 0)
		return err == nil && len(dls) == 2
	})
	// Discard one, retry the rest.
	status, body = b.call(t, "DELETE", "/v1/consumers/audit/dead/"+evs[1].ID, "", nil)
	if status != 200 || decode[DiscardedCount](t, body).Discarded != 1 {
		t.Fatalf("discard one: %d %s", status, body)
	}
	if n, err := b.client.RetryDeadLetters(ctx, "audit"); err != nil || n != 1 {
		t.Fatalf("retry all: %d, %v", n, err)
	}
	monstertest.EventuallyWithin(t, 10*time.Second, "every dead letter handled", func() bool {
		dls, err := b.client.DeadLetters(ctx, "audit", 0)
		return err == nil && len(dls) == 0 && rcv.acceptedCount() == 2
	})
	if n, err := b.client.DiscardDeadLetters(ctx, "audit"); err != nil || n != 0 {
		t.Fatalf("discard all of none: %d, %v", n, err)
	}

	// Errors.
	status, body = b.call(t, "POST", "/v1/consumers/audit/dead/nope/retry", "", nil)
	wantError(t, status, body, 404, CodeNotFound, `"nope"`)
	status, body = b.call(t, "DELETE", "/v1/consumers/audit/dead/nope", "", nil)
	wantError(t, status, body, 404, CodeNotFound, `"nope"`)
	for _, path := range []string{"/v1/consumers/ghost/dead", "/v1/consumers/ghost"} {
		status, body = b.call(t, "GET", path, "", nil)
		wantError(t, status, body, 404, CodeNotFound, `"ghost"`)
	}
	status, body = b.call(t, "POST", "/v1/consumers/ghost/dead/retry", "", nil)
	wantError(t, status, body, 404, CodeNotFound, `"ghost"`)
	status, body = b.call(t, "DELETE", "/v1/consumers/ghost/dead", "", nil)
	wantError(t, status, body, 404, CodeNotFound, `"ghost"`)
	status, body = b.call(t, "GET", "/v1/consumers/audit/dead?limit=x", "", nil)
	wantError(t, status, body, 400, CodeBadRequest, "limit")
}

// A receiver answering 422 says no retry can help: the event is
// dead-lettered after one attempt. Other 4xx answers are retried.
func TestWebhook422IsNotRetried(t *testing.T) {
	t.Parallel()
	b := setup(t, Config{})
	var mu sync.Mutex
	attempts := map[string]int{} // by event type
	rcv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		typ := req.Header.Get("Monster-Event-Type")
		mu.Lock()
		attempts[typ]++
		mu.Unlock()
		switch typ {
		case "order.unprocessable":
			http.Error(w, "no such customer", http.StatusUnprocessableEntity)
		default:
			http.Error(w, "bad request", http.StatusBadRequest)
		}
	}))
	t.Cleanup(rcv.Close)
	ctx := context.Background()
	if _, err := b.client.PutConsumer(ctx, "billing", fastRetry(rcv.URL, "k", "order.*")); err != nil {
		t.Fatal(err)
	}
	evs := logN(t, b, 2, func(i int) string { return []string{"order.unprocessable", "order.bad"}[i] })
	var dls []DeadLetter
	monstertest.EventuallyWithin(t, 10*time.Second, "2 dead letters", func() bool {
		var err error
		dls, err = b.client.DeadLetters(ctx, "billing", 0)
		return err == nil && len(dls) == 2
	})
	if dls[0].EventID != evs[0].ID || dls[0].Attempts != 1 || !strings.Contains(dls[0].Error, "422") || !strings.Contains(dls[0].Error, "no such customer") {
		t.Errorf("422 dead letter %+v, want 1 attempt and the receiver's answer", dls[0])
	}
	if dls[1].EventID != evs[1].ID || dls[1].Attempts != 4 {
		t.Errorf("400 dead letter %+v, want the policy's 4 attempts", dls[1])
	}
	mu.Lock()
	defer mu.Unlock()
	if attempts["order.unprocessable"] != 1 || attempts["order.bad"] != 4 {
		t.Errorf("deliveries by type %v, want 1 of order.unprocessable and 4 of order.bad", attempts)
	}
}

func TestWebhookRefusedConnectionIsRetried(t *testing.T) {
	t.Parallel()
	b := setup(t, Config{})
	// A port nobody listens on: take one, then close it.
	dead := httptest.NewServer(http.NotFoundHandler())
	url := dead.URL
	dead.Close()
	ctx := context.Background()
	spec := fastRetry(url, "k", "*")
	spec.MaxAttempts = 2
	if _, err := b.client.PutConsumer(ctx, "refused", spec); err != nil {
		t.Fatal(err)
	}
	logN(t, b, 1, func(int) string { return "a.b" })
	monstertest.EventuallyWithin(t, 10*time.Second, "dead letter for a refused connection", func() bool {
		dls, err := b.client.DeadLetters(ctx, "refused", 0)
		return err == nil && len(dls) == 1 && dls[0].Attempts == 2 && strings.Contains(dls[0].Error, "refused")
	})
}

func TestConsumerResetAndDelete(t *testing.T) {
	t.Parallel()
	b := setup(t, Config{})
	rcv := newReceiver(t, "k", 0)
	ctx := context.Background()
	logN(t, b, 4, func(int) string { return "a.b" })
	spec := fastRetry(rcv.srv.URL, "k", "a.*")
	spec.StartAt = "end"
	if _, err := b.client.PutConsumer(ctx, "late", spec); err != nil {
		t.Fatal(err)
	}
	monstertest.EventuallyWithin(t, 10*time.Second, "consumer registered at the end", func() bool {
		c, err := b.client.Consumer(ctx, "late")
		return err == nil && c.Position == 4
	})
	if rcv.acceptedCount() != 0 {
		t.Fatal("a consumer starting at the end got history")
	}
	// Reset to position 3: events 3 and 4 are delivered.
	status, body := b.call(t, "POST", "/v1/consumers/late/reset", "", map[string]any{"to": 3})
	if status != 200 || decode[Consumer](t, body).Position != 2 {
		t.Fatalf("reset: %d %s", status, body)
	}
	monstertest.EventuallyWithin(t, 10*time.Second, "events 3 and 4 delivered", func() bool { return rcv.acceptedCount() == 2 })
	if err := b.client.ResetConsumer(ctx, "late", "beginning"); err != nil {
		t.Fatal(err)
	}
	monstertest.EventuallyWithin(t, 10*time.Second, "all 4 delivered", func() bool { return rcv.acceptedCount() == 4 })
	if err := b.client.ResetConsumer(ctx, "late", time.Now().Add(time.Hour).Format(time.RFC3339)); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		body    any
		status  int
		code    string
		mention string
	}{
		{map[string]any{"to": "sideways"}, 400, CodeInvalidField, `"sideways"`},
		{map[string]any{"to": 0}, 400, CodeInvalidField, "position 0"},
		{map[string]any{}, 400, CodeInvalidField, `"to"`},
		{`[1]`, 400, CodeInvalidJSON, "array"},
	} {
		status, body := b.call(t, "POST", "/v1/consumers/late/reset", "", c.body)
		wantError(t, status, body, c.status, c.code, c.mention)
	}
	status, body = b.call(t, "POST", "/v1/consumers/ghost/reset", "", map[string]any{"to": "end"})
	wantError(t, status, body, 404, CodeNotFound, `"ghost"`)

	// PUT errors.
	for _, c := range []struct {
		name, body, mention string
	}{
		{"late", `{"types":[],"webhook":{"url":"http://x","secret":"k"}}`, "types"},
		{"late", `{"types":["a"],"webhook":{"url":"ftp://x","secret":"k"}}`, "ftp://x"},
		{"late", `{"types":["a"],"webhook":{"url":"http://x"}}`, "secret"},
		{"late", `{"types":["a"],"webhook":{"url":"http://x","secret":"k"},"start_at":"soon"}`, "soon"},
		{"bad%20name", `{"types":["a"],"webhook":{"url":"http://x","secret":"k"}}`, `"bad name"`},
		{"late", `{"types":["a"],"webhook":{"url":"http://x","secret":"k"},"colour":1}`, "colour"},
	} {
		status, body := b.call(t, "PUT", "/v1/consumers/"+c.name, "", c.body)
		if status != 400 {
			t.Errorf("PUT %s: status %d %s", c.body, status, body)
			continue
		}
		wantError(t, status, body, 400, decode[errorBody](t, body).Error.Code, c.mention)
	}

	// Consumers lists it; DELETE removes it and its state.
	cs, err := b.client.Consumers(ctx)
	if err != nil || len(cs) != 1 || cs[0].Name != "late" || cs[0].Webhook == nil {
		t.Fatalf("consumers %+v, %v", cs, err)
	}
	if err := b.client.DeleteConsumer(ctx, "late"); err != nil {
		t.Fatal(err)
	}
	if _, err := b.client.Consumer(ctx, "late"); !IsNotFound(err) {
		t.Fatalf("after delete: %v", err)
	}
	status, body = b.call(t, "DELETE", "/v1/consumers/late", "", nil)
	wantError(t, status, body, 404, CodeNotFound, `"late"`)
}

func TestWebhookConsumersFromConfigAndStateFile(t *testing.T) {
	t.Parallel()
	rcv := newReceiver(t, "cfg-secret", 0)
	rcv2 := newReceiver(t, "api-secret", 0)
	dir := t.TempDir()
	cfg := Config{
		Store:        dir + "/monster.db",
		PollInterval: Duration(10 * time.Millisecond),
		Consumers:    map[string]ConsumerSpec{"from-config": fastRetry(rcv.srv.URL, "cfg-secret", "*")},
	}
	b := start(t, cfg, dir)
	ctx := context.Background()
	if _, err := b.client.PutConsumer(ctx, "from-api", fastRetry(rcv2.srv.URL, "api-secret", "*")); err != nil {
		t.Fatal(err)
	}
	status, body := b.call(t, "PUT", "/v1/consumers/from-config", "", fastRetry(rcv2.srv.URL, "x", "*"))
	wantError(t, status, body, 409, CodeConflict, "configuration file")
	status, body = b.call(t, "DELETE", "/v1/consumers/from-config", "", nil)
	wantError(t, status, body, 409, CodeConflict, "configuration file")
	logN(t, b, 2, func(int) string { return "a.b" })
	monstertest.EventuallyWithin(t, 10*time.Second, "both consumers delivered", func() bool {
		return rcv.acceptedCount() == 2 && rcv2.acceptedCount() == 2
	})
	b.stop()

	// A restart keeps the consumer created over the API (the state file)
	// and resumes from the checkpoints.
	b2 := start(t, cfg, dir)
	logN(t, b2, 1, func(int) string { return "a.c" })
	monstertest.EventuallyWithin(t, 10*time.Second, "both consumers resumed", func() bool {
		return rcv.acceptedCount() == 3 && rcv2.acceptedCount() == 3
	})
	c, err := b2.client.Consumer(ctx, "from-api")
	if err != nil || c.Webhook == nil || c.Webhook.Source != "api" {
		t.Fatalf("from-api after restart: %+v, %v", c, err)
	}
}
