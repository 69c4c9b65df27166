package mongodb_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gomonster/monster"
	"github.com/gomonster/monster/store/mongodb"
)

// payload200 is a 200-byte JSON event, the benchmarks' standard size.
var payload200 = func() json.RawMessage {
	const head, tail = `{"user":"gordon","item":"shirt","pad":"`, `"}`
	return json.RawMessage(head + strings.Repeat("x", 200-len(head)-len(tail)) + tail)
}()

// benchServer is MONSTER_TEST_MONGO_URL when set, else embedded FerretDB.
func benchServer(b *testing.B) string {
	if u := os.Getenv("MONSTER_TEST_MONGO_URL"); u != "" {
		return u
	}
	return startFerretDB(b)
}

func openBenchMonster(b *testing.B, base string) *monster.Monster {
	b.Helper()
	s, err := mongodb.Open(context.Background(), dbURL(b, base), nil)
	if err != nil {
		b.Fatal(err)
	}
	m := monster.OpenStore(s, &monster.Options{Logger: slog.New(slog.DiscardHandler), Output: io.Discard})
	b.Cleanup(func() { _ = m.Close() })
	return m
}

// BenchmarkLog measures durable Log throughput from 1 and from 64
// concurrent goroutines.
//
//	go test -run '^$' -bench 'BenchmarkLog$' -benchtime 5000x
func BenchmarkLog(b *testing.B) {
	base := benchServer(b)
	for _, producers := range []int{1, 64} {
		b.Run(map[int]string{1: "producers=1", 64: "producers=64"}[producers], func(b *testing.B) {
			m := openBenchMonster(b, base)
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
//	go test -run '^$' -bench BurnDown -benchtime 20000x
func BenchmarkBurnDown(b *testing.B) {
	m := openBenchMonster(b, benchServer(b))
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
