package monstertest

import (
	"context"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gomonster/monster"
)

// Timings New and NewAsync use for the options the test leaves unset. They
// are short so that background consumers notice events and save progress
// quickly, which keeps WaitCaughtUp and Recorder.Wait fast.
const (
	testPollInterval       = 5 * time.Millisecond
	testCheckpointInterval = 5 * time.Millisecond
	testShutdownTimeout    = 5 * time.Second
)

// New returns a Monster for a test, in eager mode, on a fresh in-memory
// store, and closes it when the test ends (tb.Cleanup).
//
// In eager mode (monster.Options.Eager) Log runs the handler of every
// consumer whose subscription matches the event, once each, in the calling
// goroutine, before it returns. There is nothing to wait for: when Log
// returns, the handlers have run. Consumers are not registered in the store
// and keep no position, so WaitCaughtUp, ConsumerStats and DeadLetters do
// not apply to them; use NewAsync to test background behaviour (retries,
// dead letters, positions).
//
// A handler's failure fails the test (tb.Errorf, naming the consumer, the
// event and the error), and Log returns what it returns in production, the
// stored event and no error: an HTTP handler under test that logs answers
// as it will in production, where consumers run apart. A test that expects
// failures records them with a HandlerFailures given as
// Options.OnEagerFailure. For Log to return them as *monster.HandlerError,
// as plain eager mode does, open the Monster yourself:
// monster.Open(ctx, "memory://", monstertest.Options(t, &monster.Options{Eager: true})).
//
// opts may be nil. Eager is always set. Fields left zero get test-friendly
// values: OnEagerFailure fails the test, Logger writes to tb.Log (shown
// when the test fails or with -v), and the timings are short. New fails the
// test if the Monster cannot be opened.
func New(tb testing.TB, opts *monster.Options) *monster.Monster {
	tb.Helper()
	o := Options(tb, opts)
	o.Eager = true
	if o.OnEagerFailure == nil {
		o.OnEagerFailure = failTest(tb)
	}
	return open(tb, *o)
}

// NewAsync returns a Monster for a test whose consumers run in the
// background, as in production, on a fresh in-memory store. Its consumers
// are already started: those declared later with Consume start at once.
// They are stopped, and the Monster closed, when the test ends.
//
// Log returns as soon as the event is stored; wait for the consumers with
// WaitCaughtUp or Recorder.Wait. opts is handled as in New, except that
// Eager is always cleared. NewAsync fails the test if the Monster cannot be
// opened or started.
func NewAsync(tb testing.TB, opts *monster.Options) *monster.Monster {
	tb.Helper()
	o := Options(tb, opts)
	o.Eager = false
	m := open(tb, *o)
	// Close (registered by open) stops the consumers; Background never
	// ends, so nothing else does.
	if err := m.Start(context.Background()); err != nil {
		tb.Fatalf("monstertest: starting consumers: %v", err)
	}
	return m
}

// open opens an in-memory Monster and closes it at the end of the test.
func open(tb testing.TB, o monster.Options) *monster.Monster {
	tb.Helper()
	m, err := monster.Open(context.Background(), "memory://", &o)
	if err != nil {
		tb.Fatalf("monstertest: opening an in-memory Monster: %v", err)
		return nil
	}
	tb.Cleanup(func() {
		if err := m.Close(); err != nil {
			tb.Errorf("monstertest: closing the Monster: %v", err)
		}
	})
	return m
}

// Options returns a copy of opts (which may be nil) whose zero fields have
// the values New and NewAsync use: Logger writes to tb.Log (see Logger),
// PollInterval and CheckpointInterval are 5ms, ShutdownTimeout 5s. It is
// for tests that open their own Monster, on an SQLite file for example:
//
//	m, err := monster.Open(ctx, filepath.Join(t.TempDir(), "monster.db"), monstertest.Options(t, nil))
func Options(tb testing.TB, opts *monster.Options) *monster.Options {
	var o monster.Options
	if opts != nil {
		o = *opts
	}
	if o.Logger == nil {
		o.Logger = Logger(tb)
	}
	if o.PollInterval == 0 {
		o.PollInterval = testPollInterval
	}
	if o.CheckpointInterval == 0 {
		o.CheckpointInterval = testCheckpointInterval
	}
	if o.ShutdownTimeout == 0 {
		o.ShutdownTimeout = testShutdownTimeout
	}
	return &o
}

// Logger returns a logger, for Options.Logger, that writes each record
// (Debug and above: retries, dead letters, store errors) to tb.Log, where
// go test shows it when the test fails or with -v. It falls silent once the
// test's cleanup has run, since testing panics on a Log after the test
// completed and a Monster closed late must not cause that.
func Logger(tb testing.TB) *slog.Logger {
	w := &tbWriter{tb: tb}
	tb.Cleanup(func() { w.done.Store(true) })
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// tbWriter turns each record of a slog.TextHandler (one Write per record)
// into a tb.Log line.
type tbWriter struct {
	tb   testing.TB
	done atomic.Bool
}

func (w *tbWriter) Write(p []byte) (int, error) {
	if !w.done.Load() {
		w.tb.Log(strings.TrimSuffix(string(p), "\n"))
	}
	return len(p), nil
}
