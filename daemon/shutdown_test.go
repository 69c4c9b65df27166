package daemon

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/gomonster/monster"
	"github.com/gomonster/monster/monstertest"
)

// TestShutdownFinishesInFlightDeliveries stops the daemon while a webhook
// delivery is in flight: the delivery completes, its checkpoint is saved,
// and Serve returns nil.
func TestShutdownFinishesInFlightDeliveries(t *testing.T) {
	t.Parallel()
	started := make(chan struct{})
	release := make(chan struct{})
	finishedOK := make(chan bool, 1)
	hook := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(started)
		<-release
		finishedOK <- r.Context().Err() == nil
		w.WriteHeader(http.StatusOK)
	})
	rcvSrv := newTestServer(t, hook)
	b := setup(t, Config{})
	ctx := context.Background()
	spec := fastRetry(rcvSrv, "k", "*")
	spec.Concurrency = 1
	if _, err := b.client.PutConsumer(ctx, "slow", spec); err != nil {
		t.Fatal(err)
	}
	logN(t, b, 1, func(int) string { return "a.b" })
	<-started

	stopped := make(chan struct{})
	go func() {
		b.stop()
		close(stopped)
	}()
	// The daemon stops taking requests while the delivery is in flight.
	probe := &http.Client{Timeout: time.Second}
	monstertest.EventuallyWithin(t, 10*time.Second, "the listener to close", func() bool {
		resp, err := probe.Get(b.url + "/healthz")
		if err == nil {
			resp.Body.Close()
		}
		return err != nil
	})
	select {
	case <-stopped:
		t.Fatal("Serve returned with a delivery in flight")
	default:
	}
	close(release)
	<-stopped
	if !<-finishedOK {
		t.Fatal("the in-flight delivery was cancelled")
	}
	m, err := monster.Open(ctx, b.srv.Config().Store, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	cs, err := m.ConsumerStats(ctx, "slow")
	if err != nil || cs.Position != 1 {
		t.Fatalf("checkpoint after shutdown: %+v, %v", cs, err)
	}
}

func newTestServer(t *testing.T, h http.Handler) string {
	srv := httptestServer(h)
	t.Cleanup(srv.Close)
	return srv.URL
}
