package monstertest

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/gomonster/monster"
)

// Recorder is a consumer's handler that records every delivery it gets,
// for assertions: what the consumer saw, in the order it saw it. A retried
// event is recorded once per attempt (see RawEvent.Attempt). The zero value
// is ready to use; a Recorder is safe for concurrent use.
type Recorder struct {
	mu      sync.Mutex
	events  []monster.RawEvent
	err     error
	changed chan struct{} // closed and replaced at each delivery
}

// Record declares a consumer named name on m whose handler is a new
// Recorder, subscribed to patterns (exact types or globs such as "user.*";
// every type when none is given), and returns the Recorder. It fails the
// test at once if Consume does.
//
// With New (eager mode) the Recorder has the events as soon as Log
// returns; with NewAsync, use Wait or WaitCaughtUp.
func Record(tb testing.TB, m *monster.Monster, name string, patterns ...string) *Recorder {
	tb.Helper()
	r := &Recorder{}
	if err := m.Consume(name, r.Handler(patterns...), nil); err != nil {
		tb.Fatalf("monstertest: declaring recording consumer %q: %v", name, err)
	}
	return r
}

// Handler returns a monster.Handler that records events whose types match
// patterns (every type when none is given), for Consume with options of
// your own.
func (r *Recorder) Handler(patterns ...string) monster.Handler {
	if len(patterns) == 0 {
		patterns = []string{"*"}
	}
	routes := make([]monster.Handler, len(patterns))
	for i, p := range patterns {
		routes[i] = monster.Match(p, r.Handle)
	}
	return monster.Route(routes...)
}

// Handle records e and returns the error set with FailWith (nil by
// default). It has the signature monster.Match takes.
func (r *Recorder) Handle(_ context.Context, e monster.RawEvent) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, e)
	if r.changed != nil {
		close(r.changed)
		r.changed = nil
	}
	return r.err
}

// FailWith makes later deliveries return err (after recording them), to
// test retries, dead letters and eager-mode errors. FailWith(nil) makes
// them succeed again.
func (r *Recorder) FailWith(err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.err = err
}

// Events returns a copy of the deliveries recorded so far, in the order
// they happened.
func (r *Recorder) Events() []monster.RawEvent {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]monster.RawEvent, len(r.events))
	copy(out, r.events)
	return out
}

// Types returns the type of each delivery recorded so far, in order.
func (r *Recorder) Types() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]string, len(r.events))
	for i, e := range r.events {
		out[i] = e.Type
	}
	return out
}

// Len returns the number of deliveries recorded so far.
func (r *Recorder) Len() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.events)
}

// Reset forgets the deliveries recorded so far.
func (r *Recorder) Reset() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = nil
}

// Wait waits until at least n deliveries are recorded and returns them
// all. It fails the test at once if that does not happen within
// WaitTimeout (or by the test's deadline, if nearer).
func (r *Recorder) Wait(tb testing.TB, n int) []monster.RawEvent {
	tb.Helper()
	start := time.Now()
	timer := time.NewTimer(time.Until(waitDeadline(tb, WaitTimeout)))
	defer timer.Stop()
	for {
		r.mu.Lock()
		if len(r.events) >= n {
			out := make([]monster.RawEvent, len(r.events))
			copy(out, r.events)
			r.mu.Unlock()
			return out
		}
		if r.changed == nil {
			r.changed = make(chan struct{})
		}
		changed, got := r.changed, len(r.events)
		r.mu.Unlock()
		select {
		case <-changed:
		case <-timer.C:
			tb.Fatalf("monstertest: waited %v for %d deliveries, got %d: %s",
				time.Since(start).Round(time.Millisecond), n, got, describe(r.Events(), 5))
			return nil
		}
	}
}
