package storetest

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gomonster/monster"
	"github.com/gomonster/monster/store"
)

// Payload200 is a 200-byte JSON event, the benchmarks' standard size.
var Payload200 = func() json.RawMessage {
	const head, tail = `{"user":"gordon","item":"shirt","pad":"`, `"}`
	return json.RawMessage(head + strings.Repeat("x", 200-len(head)-len(tail)) + tail)
}()

// benchMonster opens a Monster with default timings (benchmarks measure
// what users get) on a fresh store from open.
func benchMonster(b *testing.B, st store.Store) *monster.Monster {
	m := monster.New(st, &monster.Options{Logger: slog.New(slog.DiscardHandler), Output: io.Discard})
	b.Cleanup(func() { _ = m.Close() })
	return m
}

// RunLogBenchmark measures durable Log throughput from 1 and from 64
// concurrent goroutines, each on a fresh store from open, and reports
// events/s and events per group commit (one store Append each). A store's
// benchmark calls it:
//
//	func BenchmarkLog(b *testing.B) { storetest.RunLogBenchmark(b, openFreshStore) }
func RunLogBenchmark(b *testing.B, open func(b *testing.B) store.Store) {
	for _, producers := range []int{1, 64} {
		b.Run(map[int]string{1: "producers=1", 64: "producers=64"}[producers], func(b *testing.B) {
			counted := &appendCounter{Store: open(b)}
			m := benchMonster(b, counted)
			ctx := context.Background()
			var next atomic.Int64
			var wg sync.WaitGroup
			b.ResetTimer()
			start := time.Now()
			for range producers {
				wg.Go(func() {
					for next.Add(1) <= int64(b.N) {
						if _, err := m.Log(ctx, "bench.event", Payload200); err != nil {
							b.Error(err)
							return
						}
					}
				})
			}
			wg.Wait()
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "events/s")
			b.ReportMetric(float64(counted.events.Load())/float64(counted.calls.Load()), "events/commit")
		})
	}
}

// RunBurnDownBenchmark stores b.N events (in batches of batchSize), then
// measures one consumer working through them, and reports events/s.
func RunBurnDownBenchmark(b *testing.B, open func(b *testing.B) store.Store, batchSize int) {
	m := benchMonster(b, open(b))
	ctx := context.Background()
	batch := make([]monster.Entry, batchSize)
	for i := range batch {
		batch[i] = monster.Entry{Type: "bench.event", Data: Payload200}
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
