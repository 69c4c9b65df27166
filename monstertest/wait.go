package monstertest

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/gomonster/monster"
)

// WaitTimeout is how long the waiting helpers (Eventually, WaitCaughtUp,
// Recorder.Wait) wait before they fail the test. They give up earlier when
// the test's deadline (go test -timeout) is nearer, so that the failure
// names what was awaited instead of ending in a timeout panic.
const WaitTimeout = 10 * time.Second

// pollEvery is how often Eventually and WaitCaughtUp check their condition.
const pollEvery = 2 * time.Millisecond

// Eventually waits until cond returns true, checking it every few
// milliseconds, and fails the test at once if it is still false after
// WaitTimeout (or at the test's deadline, if nearer). what says what was
// awaited, for the failure message.
func Eventually(tb testing.TB, what string, cond func() bool) {
	tb.Helper()
	EventuallyWithin(tb, WaitTimeout, what, cond)
}

// EventuallyWithin is Eventually with a timeout of its own instead of
// WaitTimeout, for waits known to be longer (a server restarting, a lease
// expiring) or that must be shorter. The test's deadline still caps it.
func EventuallyWithin(tb testing.TB, timeout time.Duration, what string, cond func() bool) {
	tb.Helper()
	deadline := waitDeadline(tb, timeout)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("monstertest: timed out waiting for %s", what)
			return
		}
		time.Sleep(pollEvery)
	}
}

// WaitCaughtUp waits until the consumer named consumer has handled (or
// dead-lettered) every event of its subscription stored in m so far: its
// lag, as Monster.ConsumerStats reports it, is 0. It fails the test at once
// if that does not happen within WaitTimeout (or by the test's deadline,
// if nearer), saying where the consumer stands.
//
// It is for Monsters whose consumers run in the background (NewAsync, or
// Start/Run on any Monster). In eager mode (New) there is nothing to wait
// for, and the consumer is never registered in the store, so WaitCaughtUp
// would time out reporting that it cannot find it.
func WaitCaughtUp(tb testing.TB, m *monster.Monster, consumer string) {
	tb.Helper()
	deadline := waitDeadline(tb, WaitTimeout)
	for {
		stats, err := m.ConsumerStats(context.Background(), consumer)
		if err == nil && stats.Lag == 0 {
			return
		}
		if err != nil && !errors.Is(err, monster.ErrNotFound) {
			tb.Fatalf("monstertest: reading consumer %q's progress: %v", consumer, err)
			return
		}
		if time.Now().After(deadline) {
			var where string
			if err != nil {
				where = "it is not in the store: is it declared (with Consume) and running (Start or Run; not eager mode)?"
			} else {
				where = fmt.Sprintf("it is at position %d with lag %d (%d in flight, %d failures, %d dead letters)",
					stats.Position, stats.Lag, stats.InFlight, stats.Failures, stats.DeadLetters)
			}
			tb.Fatalf("monstertest: timed out waiting for consumer %q to catch up: %s", consumer, where)
			return
		}
		time.Sleep(pollEvery)
	}
}

// waitDeadline returns when a wait of timeout started now must give up.
func waitDeadline(tb testing.TB, timeout time.Duration) time.Time {
	deadline := time.Now().Add(timeout)
	// *testing.T has Deadline; testing.TB does not.
	if d, ok := tb.(interface{ Deadline() (time.Time, bool) }); ok {
		if end, ok := d.Deadline(); ok && end.Before(deadline) {
			deadline = end
		}
	}
	return deadline
}
