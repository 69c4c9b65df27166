package monster_test

import (
	"context"
	"encoding/json"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gomonster/monster"
	"github.com/gomonster/monster/store"
	"github.com/gomonster/monster/store/sqlite"
)

// payload200 is a 200-byte JSON event, the benchmarks' standard size.
var payload200 = func() json.RawMessage {
	const head, tail = `{"user":"gordon","item":"shirt","pad":"`, `"}`
	return json.RawMessage(head + strings.Repeat("x", 200-len(head)-len(tail)) + tail)
}()

func openBenchStore(b *testing.B) *monster.Monster {
	b.Helper()
	// Default timings: benchmarks measure what users get.
	o := monster.Options{Logger: quietLogger}
	m, err := monster.Open(context.Background(), filepath.Join(b.TempDir(), "bench.db"), &o)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = m.Close() })
	return m
}

// BenchmarkLog measures durable Log throughput (SQLite, synchronous FULL)
// from 1 and from 64 concurrent goroutines.
//
//	go test -run '^$' -bench 'BenchmarkLog$' -benchtime 100000x
func BenchmarkLog(b *testing.B) {
	if !json.Valid(payload200) || len(payload200) != 200 {
		b.Fatalf("payload is %d bytes, valid=%v", len(payload200), json.Valid(payload200))
	}
	for _, producers := range []int{1, 64} {
		b.Run(map[int]string{1: "producers=1", 64: "producers=64"}[producers], func(b *testing.B) {
			st, err := sqlite.Open(context.Background(), filepath.Join(b.TempDir(), "bench.db"), nil)
			if err != nil {
				b.Fatal(err)
			}
			counted := &appendCounter{Store: st}
			m := monster.OpenStore(counted, &monster.Options{Logger: quietLogger})
			b.Cleanup(func() { _ = m.Close() })
			ctx := context.Background()
			var next atomic.Int64
			var wg sync.WaitGroup
			b.ResetTimer()
			start := time.Now()
			for range producers {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for next.Add(1) <= int64(b.N) {
						if _, err := m.Log(ctx, "bench.event", payload200); err != nil {
							b.Error(err)
							return
						}
					}
				}()
			}
			wg.Wait()
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "events/s")
			// The group commit's effect: events per Append, one sync each.
			b.ReportMetric(float64(counted.events.Load())/float64(counted.calls.Load()), "events/commit")
		})
	}
}

// BenchmarkBurnDown measures one consumer working through stored events.
//
//	go test -run '^$' -bench BurnDown -benchtime 1000000x
func BenchmarkBurnDown(b *testing.B) {
	m := openBenchStore(b)
	ctx := context.Background()
	batch := make([]monster.Entry, 1000)
	for i := range batch {
		batch[i] = monster.Entry{Type: "bench.event", Data: payload200}
	}
	for n := 0; n < b.N; n += len(batch) {
		if _, err := m.LogBatch(ctx, batch[:min(len(batch), b.N-n)]); err != nil {
			b.Fatal(err)
		}
	}
	var handled atomic.Int64
	done := make(chan struct{})
	if err := m.Consume("burn", monster.Match("*", func(ctx context.Context, e monster.RawEvent) error {
		if handled.Add(1) == int64(b.N) {
			close(done)
		}
		return nil
	}), nil); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	start := time.Now()
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	if err := m.Start(runCtx); err != nil {
		b.Fatal(err)
	}
	<-done
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "events/s")
	b.StopTimer()
	_ = m.Stop(ctx)
}

// BenchmarkLatency logs at a fixed rate (1,000 events/s) and measures the
// time from Log being called to the handler starting, in one process.
//
//	go test -run '^$' -bench Latency -benchtime 5000x
func BenchmarkLatency(b *testing.B) {
	m := openBenchStore(b)
	ctx := context.Background()
	var mu sync.Mutex
	latencies := make([]time.Duration, 0, b.N)
	done := make(chan struct{})
	if err := m.Consume("latency", monster.Match("*", func(ctx context.Context, e monster.RawEvent) error {
		var sent time.Time
		if err := sent.UnmarshalText(e.Data[1 : len(e.Data)-1]); err != nil {
			return err
		}
		mu.Lock()
		latencies = append(latencies, time.Since(sent))
		if len(latencies) == b.N {
			close(done)
		}
		mu.Unlock()
		return nil
	}), &monster.ConsumerOptions{StartAt: monster.End}); err != nil {
		b.Fatal(err)
	}
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	if err := m.Start(runCtx); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	for range b.N {
		<-tick.C
		go func() {
			if _, err := m.Log(ctx, "bench.latency", time.Now()); err != nil {
				b.Error(err)
			}
		}()
	}
	<-done
	b.StopTimer()
	slices.Sort(latencies)
	pct := func(p float64) float64 {
		return float64(latencies[int(float64(len(latencies)-1)*p)].Microseconds()) / 1000
	}
	b.ReportMetric(pct(0.50), "p50-ms")
	b.ReportMetric(pct(0.99), "p99-ms")
	b.ReportMetric(pct(0.999), "p99.9-ms")
	_ = m.Stop(ctx)
}

// appendCounter counts a store's Append calls and the events they carry.
type appendCounter struct {
	store.Store
	calls, events atomic.Int64
}

func (c *appendCounter) Append(ctx context.Context, evs []store.NewEvent) ([]store.AppendResult, error) {
	c.calls.Add(1)
	c.events.Add(int64(len(evs)))
	return c.Store.Append(ctx, evs)
}
