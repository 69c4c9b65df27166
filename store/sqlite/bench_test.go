package sqlite_test

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/gomonster/monster/store"
	"github.com/gomonster/monster/store/sqlite"
)

// benchPayload is a 200-byte JSON object.
var benchPayload = func() []byte {
	const prefix, suffix = `{"user":"gordon","item":"shirt","quantity":2,"note":"`, `"}`
	return []byte(prefix + strings.Repeat("x", 200-len(prefix)-len(suffix)) + suffix)
}()

func benchEvents(n, start int) []store.NewEvent {
	now := time.Now().UTC()
	events := make([]store.NewEvent, n)
	for i := range events {
		events[i] = store.NewEvent{
			ID:   fmt.Sprintf("0190a6c0-0000-7000-8000-%012d", start+i),
			Type: "user.bought_shirt",
			Time: now,
			Data: benchPayload,
		}
	}
	return events
}

// cpuTime is the process's user and system CPU time so far: the figure
// that other processes on a shared machine disturb least. It includes the
// store's checkpointing goroutine and the construction of the events.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func BenchmarkAppend(b *testing.B) {
	for _, batch := range []int{1, 64, 100, 1000} {
		b.Run(fmt.Sprintf("batch=%d", batch), func(b *testing.B) {
			ctx := context.Background()
			s, err := sqlite.Open(ctx, filepath.Join(b.TempDir(), "bench.db"), nil)
			require.NoError(b, err)
			defer s.Close()
			appended := 0
			cpu0 := cpuTime()
			b.ResetTimer()
			for b.Loop() {
				b.StopTimer()
				events := benchEvents(batch, appended)
				b.StartTimer()
				_, err := s.Append(ctx, events)
				if err != nil {
					b.Fatal(err)
				}
				appended += batch
			}
			b.ReportMetric(float64(appended)/b.Elapsed().Seconds(), "events/s")
			b.ReportMetric(float64((cpuTime()-cpu0).Microseconds())/float64(appended), "cpu-µs/event")
		})
	}
}

// BenchmarkRead reads a log of a million events in pages of 1000, as a
// consumer working through history does; one op is one page, and the
// reader wraps around at the end of the log.
func BenchmarkRead(b *testing.B) {
	const total, page = 1_000_000, 1000
	ctx := context.Background()
	s, err := sqlite.Open(ctx, filepath.Join(b.TempDir(), "bench.db"), nil)
	require.NoError(b, err)
	defer s.Close()
	for i := 0; i < total; i += 10_000 {
		_, err := s.Append(ctx, benchEvents(10_000, i))
		require.NoError(b, err)
	}
	read := 0
	var after int64
	cpu0 := cpuTime()
	b.ResetTimer()
	for b.Loop() {
		events, err := s.Read(ctx, store.ReadParams{After: after, Limit: page})
		if err != nil {
			b.Fatal(err)
		}
		read += len(events)
		if len(events) < page {
			after = 0
		} else {
			after = events[len(events)-1].Position
		}
	}
	b.ReportMetric(float64(read)/b.Elapsed().Seconds(), "events/s")
	b.ReportMetric(float64((cpuTime()-cpu0).Nanoseconds())/float64(read), "cpu-ns/event")
}
