package postgres_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gomonster/monster"
	"github.com/gomonster/monster/store/postgres"
)

// payload200 is a 200-byte JSON event, the benchmarks' standard size.
var payload200 = func() json.RawMessage {
	const head, tail = `{"user":"gordon","item":"shirt","pad":"`, `"}`
	return json.RawMessage(head + strings.Repeat("x", 200-len(head)-len(tail)) + tail)
}()

var quietLogger = slog.New(slog.NewTextHandler(io.Discard, nil))

// openBenchMonster opens a Monster on a fresh schema with default options
// (a pool of the default size): benchmarks measure what users get.
func openBenchMonster(b *testing.B, schema string) *monster.Monster {
	b.Helper()
	s, err := postgres.Open(context.Background(), requireServer(b), &postgres.Options{Schema: schema})
	if err != nil {
		b.Fatal(err)
	}
	m := monster.OpenStore(s, &monster.Options{Logger: quietLogger, Output: io.Discard})
	b.Cleanup(func() { _ = m.Close() })
	return m
}

// BenchmarkLog measures durable Log throughput (synchronous_commit on)
// from 1 and from 64 concurrent goroutines.
//
//	go test -run '^$' -bench 'BenchmarkLog$' -benchtime 100000x
func BenchmarkLog(b *testing.B) {
	for _, producers := range []int{1, 64} {
		b.Run(map[int]string{1: "producers=1", 64: "producers=64"}[producers], func(b *testing.B) {
			m := openBenchMonster(b, newSchema(b))
			ctx := context.Background()
			var next atomic.Int64
			var wg sync.WaitGroup
			b.ResetTimer()
			start := time.Now()
			for range producers {
				wg.Go(func() {
					for next.Add(1) <= int64(b.N) {
						if _, err := m.Log(ctx, "bench.event", payload200); err != nil {
							b.Error(err)
							return
						}
					}
				})
			}
			wg.Wait()
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "events/s")
		})
	}
}

// BenchmarkBurnDown measures one consumer working through stored events.
//
//	go test -run '^$' -bench BurnDown -benchtime 1000000x
func BenchmarkBurnDown(b *testing.B) {
	m := openBenchMonster(b, newSchema(b))
	ctx := context.Background()
	batch := make([]monster.Entry, 4000)
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

// BenchmarkLatencyAcrossProcesses logs at 1,000 events/s through one
// store handle and measures the time from Log being called to the handler
// starting in a Monster on another handle (its own pool and LISTEN
// connection, as another process would have): LISTEN/NOTIFY carries the
// wake-up.
//
//	go test -run '^$' -bench LatencyAcross -benchtime 5000x
func BenchmarkLatencyAcrossProcesses(b *testing.B) {
	schema := newSchema(b)
	producer := openBenchMonster(b, schema)
	consumer := openBenchMonster(b, schema)
	ctx := context.Background()
	var mu sync.Mutex
	latencies := make([]time.Duration, 0, b.N)
	done := make(chan struct{})
	if err := consumer.Consume("latency", monster.Match("*", func(ctx context.Context, e monster.RawEvent) error {
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
	if err := consumer.Start(runCtx); err != nil {
		b.Fatal(err)
	}
	defer consumer.Stop(ctx)
	// Wait until the consumer holds its partitions, so its first
	// claim does not count as latency.
	for {
		infos, err := consumer.Store().Consumer(ctx, "latency")
		if err == nil && len(infos.Partitions) > 0 && infos.Partitions[0].Owner != "" {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	b.ResetTimer()
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	for range b.N {
		<-tick.C
		now := time.Now()
		if _, err := producer.Log(ctx, "bench.latency", now.Format(time.RFC3339Nano)); err != nil {
			b.Fatal(err)
		}
	}
	<-done
	b.StopTimer()
	slices.Sort(latencies)
	q := func(p float64) float64 {
		return float64(latencies[int(p*float64(len(latencies)-1))].Microseconds()) / 1000
	}
	b.ReportMetric(q(0.50), "p50-ms")
	b.ReportMetric(q(0.99), "p99-ms")
	b.ReportMetric(q(1), "max-ms")
}

// BenchmarkAppend measures the store alone: one goroutine appending
// batches of 1, 64 and 1,000 events, one transaction each.
//
//	go test -run '^$' -bench BenchmarkAppend -benchtime 100000x
func BenchmarkAppend(b *testing.B) {
	for _, size := range []int{1, 64, 1000} {
		b.Run("batch="+strconv.Itoa(size), func(b *testing.B) {
			s := openStoreAt(b, requireServer(b), &postgres.Options{Schema: newSchema(b)})
			ctx := context.Background()
			b.ResetTimer()
			start := time.Now()
			for n := 0; n < b.N; n += size {
				events := newEvents("bench.event", min(size, b.N-n))
				for i := range events {
					events[i].Data = payload200
				}
				if _, err := s.Append(ctx, events); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "events/s")
		})
	}
}
