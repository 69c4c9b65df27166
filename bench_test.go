package monster_test

import (
	"context"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/gomonster/monster"
	"github.com/gomonster/monster/store"
	"github.com/gomonster/monster/store/sqlite"
	"github.com/gomonster/monster/store/storetest"
)

// openBenchSQLite opens a fresh SQLite store for a benchmark.
func openBenchSQLite(b *testing.B) store.Store {
	st, err := sqlite.Open(context.Background(), filepath.Join(b.TempDir(), "bench.db"), nil)
	if err != nil {
		b.Fatal(err)
	}
	return st
}

func openBenchStore(b *testing.B) *monster.Monster {
	b.Helper()
	// Default timings: benchmarks measure what users get.
	m := monster.New(openBenchSQLite(b), &monster.Options{Logger: quietLogger})
	b.Cleanup(func() { _ = m.Close() })
	return m
}

// BenchmarkLog measures durable Log throughput (SQLite, synchronous FULL)
// from 1 and from 64 concurrent goroutines, with events per group commit.
//
//	go test -run '^$' -bench 'BenchmarkLog$' -benchtime 100000x
func BenchmarkLog(b *testing.B) { storetest.RunLogBenchmark(b, openBenchSQLite) }

// BenchmarkBurnDown measures one consumer working through stored events.
//
//	go test -run '^$' -bench BurnDown -benchtime 1000000x
func BenchmarkBurnDown(b *testing.B) { storetest.RunBurnDownBenchmark(b, openBenchSQLite, 1000) }

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
