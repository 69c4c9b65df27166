package daemon

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// BenchmarkWebhookDelivery measures how fast one webhook consumer with
// concurrency 16 delivers b.N events, logged beforehand, to a local
// receiver that answers 204:
//
//	go test -run '^$' -bench WebhookDelivery -benchtime 20000x ./daemon
func BenchmarkWebhookDelivery(b *testing.B) {
	b.ReportAllocs()
	ctx := context.Background()
	dir := b.TempDir()
	srv, err := New(ctx, Config{
		Store:        filepath.Join(dir, "monster.db"),
		Addr:         "127.0.0.1:0",
		PollInterval: Duration(10 * time.Millisecond),
	}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		b.Fatal(err)
	}
	defer func() {
		if err := srv.Shutdown(ctx); err != nil {
			b.Error(err)
		}
	}()

	n := int64(b.N)
	var delivered atomic.Int64
	done := make(chan struct{})
	var once sync.Once
	receiver := httptestServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.WriteHeader(http.StatusNoContent)
		if delivered.Add(1) >= n {
			once.Do(func() { close(done) })
		}
	}))
	defer receiver.Close()

	const batch = 1000
	data := json.RawMessage(`{"user":"gordon","shirt":"blue","quantity":2}`)
	for logged := 0; logged < b.N; {
		k := min(batch, b.N-logged)
		events := make([]NewEvent, k)
		for i := range events {
			events[i] = NewEvent{Type: "user.bought_shirt", Data: data}
		}
		if _, err := srv.Local().Log(ctx, events); err != nil {
			b.Fatal(err)
		}
		logged += k
	}

	b.ResetTimer()
	began := time.Now()
	err = srv.webhooks.put(ctx, "bench", ConsumerSpec{
		Types:       []string{"user.*"},
		Webhook:     WebhookSpec{URL: receiver.URL + "/hook", Secret: "s3cret"},
		Concurrency: 16,
	}, "api")
	if err != nil {
		b.Fatal(err)
	}
	select {
	case <-done:
	case <-time.After(10 * time.Minute):
		b.Fatalf("%d of %d events delivered after 10 minutes", delivered.Load(), b.N)
	}
	elapsed := time.Since(began)
	b.StopTimer()
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "deliveries/s")
	if got := delivered.Load(); got < n {
		b.Fatal(fmt.Sprintf("%d deliveries, want %d", got, n))
	}
}

// The pooled signer must agree with Sign, also when deliveries run at once.
func TestDeliverySignMatchesSign(t *testing.T) {
	d := newDelivery("c", "http://127.0.0.1:1/", "s3cret", http.DefaultClient, newMetrics(nil, nil))
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 200 {
				body := []byte(fmt.Sprintf(`{"g":%d,"i":%d}`, g, i))
				if got, want := d.sign(body), Sign(body, "s3cret"); got != want {
					t.Errorf("sign(%s) = %s, want %s", body, got, want)
					return
				}
			}
		}()
	}
	wg.Wait()
	if d.sign(nil) == Sign(nil, "other") {
		t.Error("the signature does not depend on the secret")
	}
}
