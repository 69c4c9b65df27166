package daemon

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// ingestClients is the number of concurrent HTTP clients of the ingest
// benchmarks, each with its own keep-alive connection: the 64 connections
// of the wrk runs in docs/operations.md.
const ingestClients = 64

// benchEvent is the event the ingest benchmarks and the wrk scripts in
// testdata/wrk post: about 150 bytes of JSON.
func benchEvent(i int) string {
	return fmt.Sprintf(`{"type":"user.bought_shirt","data":{"user":"user-%d","size":"L","quantity":%d,"note":"benchmark event of about a hundred bytes"},"key":"user-%d"}`, i%10, i, i%10)
}

// BenchmarkPostEvents measures single-event POST /v1/events through a real
// loopback listener, from 64 concurrent clients; every event is durably
// stored (SQLite, synchronous=FULL) before its 201:
//
//	go test -run '^$' -bench 'PostEvents$' -benchtime 50000x ./daemon
func BenchmarkPostEvents(b *testing.B) {
	benchmarkIngest(b, []byte(benchEvent(1)), 1)
}

// BenchmarkPostBatch measures POST /v1/events with batches of 100 events,
// from 64 concurrent clients. b.N counts requests; events/s is the figure:
//
//	go test -run '^$' -bench 'PostBatch$' -benchtime 3000x ./daemon
func BenchmarkPostBatch(b *testing.B) {
	const perRequest = 100
	events := make([]string, perRequest)
	for i := range events {
		events[i] = benchEvent(i + 1)
	}
	benchmarkIngest(b, []byte(`{"events":[`+strings.Join(events, ",")+`]}`), perRequest)
}

func benchmarkIngest(b *testing.B, body []byte, perRequest int) {
	b.ReportAllocs()
	ctx := context.Background()
	dir := b.TempDir()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	srv, err := New(ctx, Config{Store: filepath.Join(dir, "monster.db"), Addr: ln.Addr().String()},
		slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		ln.Close()
		b.Fatal(err)
	}
	serveCtx, cancel := context.WithCancel(ctx)
	served := make(chan error, 1)
	go func() { served <- srv.Serve(serveCtx, ln) }()
	transport := &http.Transport{MaxIdleConnsPerHost: ingestClients, MaxConnsPerHost: ingestClients}
	client := &http.Client{Transport: transport, Timeout: time.Minute}
	defer func() {
		cancel()
		if err := <-served; err != nil {
			b.Error(err)
		}
		transport.CloseIdleConnections()
	}()
	url := "http://" + ln.Addr().String() + "/v1/events"
	post := func() error {
		resp, err := client.Post(url, "application/json", bytes.NewReader(body))
		if err != nil {
			return err
		}
		answer, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			return err
		}
		if resp.StatusCode != http.StatusCreated {
			return fmt.Errorf("status %d: %s", resp.StatusCode, answer)
		}
		return nil
	}
	// Open the connections before timing.
	var wg sync.WaitGroup
	for range ingestClients {
		wg.Go(func() {
			if err := post(); err != nil {
				b.Error(err)
			}
		})
	}
	wg.Wait()
	if b.Failed() {
		return
	}

	var next atomic.Int64
	var failed atomic.Bool
	b.ResetTimer()
	began := time.Now()
	for range ingestClients {
		wg.Go(func() {
			for next.Add(1) <= int64(b.N) && !failed.Load() {
				if err := post(); err != nil {
					failed.Store(true)
					b.Error(err)
				}
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(began)
	b.StopTimer()
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "requests/s")
	b.ReportMetric(float64(b.N*perRequest)/elapsed.Seconds(), "events/s")
	if st := srv.shared; st.appends.Load() > 0 {
		b.ReportMetric(float64(st.appended.Load())/float64(st.appends.Load()), "events/commit")
	}
	head, err := srv.m.Store().Head(ctx)
	if err != nil {
		b.Fatal(err)
	}
	if want := int64((b.N + ingestClients) * perRequest); head != want && !b.Failed() {
		b.Errorf("head %d after the run, want %d", head, want)
	}
}
