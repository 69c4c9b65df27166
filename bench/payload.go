package main

import (
	"bytes"
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
)

// payloadSize is every system's event size: 200 bytes of JSON.
const payloadSize = 200

// makePayload returns a 200-byte JSON object carrying the event's sequence
// number and the time it was (meant to be) sent, padded to size.
func makePayload(seq int, sent time.Time) []byte {
	head := fmt.Sprintf(`{"seq":%d,"sent":%d,"pad":"`, seq, sent.UnixNano())
	const tail = `"}`
	return []byte(head + strings.Repeat("x", payloadSize-len(head)-len(tail)) + tail)
}

// parsePayload reads seq and sent back. It tolerates the spacing and key
// order PostgreSQL's jsonb gives (River stores its arguments as jsonb).
func parsePayload(b []byte) (seq int, sent int64, err error) {
	num := func(key string) (int64, error) {
		i := bytes.Index(b, []byte(`"`+key+`":`))
		if i < 0 {
			return 0, fmt.Errorf("payload without %q: %.60s", key, b)
		}
		j := i + len(key) + 3
		for j < len(b) && b[j] == ' ' {
			j++
		}
		k := j
		for k < len(b) && b[k] >= '0' && b[k] <= '9' {
			k++
		}
		return strconv.ParseInt(string(b[j:k]), 10, 64)
	}
	s, err := num("seq")
	if err != nil {
		return 0, 0, err
	}
	t, err := num("sent")
	return int(s), t, err
}

// tracker checks that a consumer saw every event (duplicates are allowed:
// every system here is at least once) and signals when it has.
type tracker struct {
	n        int
	seen     []atomic.Bool
	distinct atomic.Int64
	calls    atomic.Int64
	done     chan struct{}
	once     sync.Once
	lastDone atomic.Int64 // unix nanos of the call that completed the set
}

func newTracker(n int) *tracker {
	t := &tracker{n: n, seen: make([]atomic.Bool, n), done: make(chan struct{})}
	if n == 0 {
		close(t.done)
	}
	return t
}

// mark records a successful handling of seq.
func (t *tracker) mark(seq int) error {
	t.calls.Add(1)
	if seq < 0 || seq >= t.n {
		return fmt.Errorf("event seq %d out of range [0,%d)", seq, t.n)
	}
	if !t.seen[seq].Swap(true) {
		if t.distinct.Add(1) == int64(t.n) {
			t.lastDone.Store(time.Now().UnixNano())
			t.once.Do(func() { close(t.done) })
		}
	}
	return nil
}

func (t *tracker) missing() int64 { return int64(t.n) - t.distinct.Load() }

// waitAll waits for every tracker to be complete, or fails with the number
// of events each is missing.
func waitAll(ctx context.Context, timeout time.Duration, ts ...*tracker) error {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for _, t := range ts {
		select {
		case <-t.done:
		case <-deadline.C:
			return lostError(ts)
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

func lostError(ts []*tracker) error {
	var lost int64
	for _, t := range ts {
		lost += t.missing()
	}
	return fmt.Errorf("lost events: %d of %d expected handler calls never arrived before the timeout", lost, int64(len(ts))*int64(ts[0].n))
}

// latencies is a concurrency-safe HdrHistogram of microseconds.
type latencies struct {
	mu sync.Mutex
	h  *hdrhistogram.Histogram
}

func newLatencies() *latencies {
	return &latencies{h: hdrhistogram.New(1, 600_000_000, 3)}
}

func (l *latencies) record(d time.Duration) {
	us := max(d.Microseconds(), 1)
	l.mu.Lock()
	_ = l.h.RecordValue(us)
	l.mu.Unlock()
}

// ms returns the quantile q (0-100) in milliseconds.
func (l *latencies) ms(q float64) float64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return float64(l.h.ValueAtQuantile(q)) / 1000
}
