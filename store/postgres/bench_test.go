package postgres_test

import (
	"context"
	"io"
	"log/slog"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/gomonster/monster"
	"github.com/gomonster/monster/store"
	"github.com/gomonster/monster/store/postgres"
	"github.com/gomonster/monster/store/storetest"
)

var quietLogger = slog.New(slog.NewTextHandler(io.Discard, nil))

// payload200 is the benchmarks' standard 200-byte event.
var payload200 = storetest.Payload200

// openSchemaStore opens the store on schema with default options (a pool
// of the default size): benchmarks measure what users get.
func openSchemaStore(b *testing.B, schema string) store.Store {
	b.Helper()
	s, err := postgres.Open(context.Background(), requireServer(b), &postgres.Options{Schema: schema})
	if err != nil {
		b.Fatal(err)
	}
	return s
}

// openBenchStore opens the store on a fresh schema.
func openBenchStore(b *testing.B) store.Store { return openSchemaStore(b, newSchema(b)) }

// openBenchMonster opens a Monster on schema.
func openBenchMonster(b *testing.B, schema string) *monster.Monster {
	b.Helper()
	m := monster.New(openSchemaStore(b, schema), &monster.Options{Logger: quietLogger, Output: io.Discard})
	b.Cleanup(func() { _ = m.Close() })
	return m
}

// BenchmarkLog measures durable Log throughput (synchronous_commit on)
// from 1 and from 64 concurrent goroutines.
//
//	go test -run '^$' -bench 'BenchmarkLog$' -benchtime 100000x
func BenchmarkLog(b *testing.B) { storetest.RunLogBenchmark(b, openBenchStore) }

// BenchmarkBurnDown measures one consumer working through stored events.
//
//	go test -run '^$' -bench BurnDown -benchtime 1000000x
func BenchmarkBurnDown(b *testing.B) { storetest.RunBurnDownBenchmark(b, openBenchStore, 4000) }

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
