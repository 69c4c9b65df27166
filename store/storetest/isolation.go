package storetest

import (
	"context"
	"encoding/json"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/gomonster/monster"
	"github.com/gomonster/monster/store"
)

// Isolation: a handler's error, panic and timeout each affect only that
// event for that consumer. The failing events are retried, then
// dead-lettered with their attempts and last error; the consumer moves on
// (later events of the same key included); another consumer of the same
// events gets every one; and no Log call fails.
func testFailuresStayWithTheirEvent(t *testing.T, b *bundle) {
	ctx, s := b.ctx, b.open()
	m := b.monster(s, monster.Options{})
	var mu sync.Mutex
	attempts := map[string][]int{}
	fragile := newDeliveries()
	b.consume(m, "fragile", monster.Match("*", func(ctx context.Context, e monster.RawEvent) error {
		var what string
		if err := json.Unmarshal(e.Data, &what); err != nil {
			return err
		}
		mu.Lock()
		attempts[what] = append(attempts[what], e.Attempt)
		mu.Unlock()
		switch what {
		case "error":
			return errors.New("storetest: boom-error")
		case "panic":
			panic("storetest: boom-panic")
		case "timeout":
			<-ctx.Done()
			return ctx.Err()
		}
		fragile.add(e)
		return nil
	}), &monster.ConsumerOptions{
		Concurrency: 4, Partitions: 4, Timeout: 100 * time.Millisecond,
		Retry: monster.RetryPolicy{MaxAttempts: 3, InitialBackoff: time.Millisecond, MaxBackoff: 4 * time.Millisecond},
	})
	steady := newDeliveries()
	b.consume(m, "steady", monster.Match("*", steady.handle), nil)
	b.start(m)

	logged := map[string]monster.RawEvent{}
	var all []string
	for _, e := range []struct{ what, key string }{
		{"ok-1", "k-error"}, {"error", "k-error"}, {"ok-2", "k-error"},
		{"panic", "k-panic"}, {"ok-3", "k-panic"},
		{"timeout", "k-timeout"}, {"ok-4", "k-timeout"},
		{"ok-5", ""},
	} {
		ev, err := m.Log(ctx, "order.placed", e.what, monster.WithKey(e.key))
		require.NoError(t, err, "a failing consumer must never fail the producer")
		logged[e.what] = ev
		all = append(all, ev.ID)
	}

	eventually(t, "three dead letters", func() bool {
		dls, err := m.DeadLetters(ctx, "fragile", 0)
		return err == nil && len(dls) == 3
	})
	dls, err := m.DeadLetters(ctx, "fragile", 0)
	require.NoError(t, err)
	wantErr := map[string]string{"error": "boom-error", "panic": "boom-panic", "timeout": "deadline exceeded"}
	for _, dl := range dls {
		var what string
		for w, ev := range logged {
			if ev.ID == dl.EventID {
				what = w
			}
		}
		require.Contains(t, wantErr, what, "dead letter for an event that did not fail: %+v", dl)
		ev := logged[what]
		require.Equal(t, "fragile", dl.Consumer)
		require.Equal(t, ev.Type, dl.Type)
		require.Equal(t, ev.Position, dl.Position)
		require.Equal(t, 3, dl.Attempts, "attempts of %q", what)
		require.Contains(t, dl.Error, wantErr[what], "last error of %q", what)
		require.GreaterOrEqual(t, dl.Partition, 0)
		require.Less(t, dl.Partition, 4)
		require.WithinDuration(t, time.Now(), dl.FailedAt, time.Minute)
		require.False(t, dl.RetryRequested)
	}

	var good []string
	for what, ev := range logged {
		if _, bad := wantErr[what]; !bad {
			good = append(good, ev.ID)
		}
	}
	fragile.waitFor(t, "the consumer to move on past its failures", good)
	steady.waitFor(t, "the other consumer to get every event", all)
	mu.Lock()
	for what := range wantErr {
		require.Equal(t, []int{1, 2, 3}, attempts[what], "attempts of %q", what)
	}
	mu.Unlock()
	eventually(t, "the fragile consumer's stats", func() bool {
		st, err := m.ConsumerStats(ctx, "fragile")
		return err == nil && st.Lag == 0 && st.DeadLetters == 3 && st.Failures == 9
	})
	st, err := m.ConsumerStats(ctx, "steady")
	require.NoError(t, err)
	require.Zero(t, st.DeadLetters, "another consumer's failures are not the steady consumer's")
	require.Zero(t, st.Failures)
	for _, ev := range logged {
		require.Equal(t, 1, steady.times(ev.ID), "the steady consumer handles each event once")
	}
}

// Isolation (and consumers' independence): a consumer whose handlers hang neither blocks nor
// slows another consumer, nor the producer; it catches up once released.
func testSlowConsumerHoldsNoOne(t *testing.T, b *bundle) {
	ctx, s := b.ctx, b.open()
	m := b.monster(s, monster.Options{})
	release := make(chan struct{})
	var slowStarted atomic.Int64
	slow := newDeliveries()
	b.consume(m, "slow", monster.Match("*", func(ctx context.Context, e monster.RawEvent) error {
		slowStarted.Add(1)
		select {
		case <-release:
		case <-ctx.Done():
			return ctx.Err()
		}
		slow.add(e)
		return nil
	}), &monster.ConsumerOptions{Concurrency: 2})
	fast := newDeliveries()
	b.consume(m, "fast", monster.Match("*", fast.handle), nil)
	b.start(m)

	first := logBatch(t, ctx, m, "work.item", 20, keyed)
	fast.waitFor(t, "the fast consumer while the slow one hangs", idsOf(first))
	eventually(t, "the slow consumer to start", func() bool { return slowStarted.Load() > 0 })
	more := logBatch(t, ctx, m, "work.item", 20, keyed)
	fast.waitFor(t, "the fast consumer while the slow one still hangs", idsOf(more))
	require.Zero(t, slow.distinct(), "the slow consumer is stuck")
	close(release)
	slow.waitFor(t, "the slow consumer to catch up", append(idsOf(first), idsOf(more)...))
}

// Isolation: retries back off exponentially up to a cap, with jitter.
// Through the runtime, retries of an event come no sooner than the backoff
// (timers never fire early, so these bounds are exact); the cap and the
// jitter's range are checked on the policy itself.
func testRetriesBackOff(t *testing.T, b *bundle) {
	ctx, s := b.ctx, b.open()
	m := b.monster(s, monster.Options{})
	var mu sync.Mutex
	var runs []time.Time
	b.consume(m, "backoff", monster.Match("*", func(context.Context, monster.RawEvent) error {
		mu.Lock()
		runs = append(runs, time.Now())
		mu.Unlock()
		return errors.New("storetest: always failing")
	}), &monster.ConsumerOptions{Retry: monster.RetryPolicy{
		MaxAttempts: 4, InitialBackoff: 30 * time.Millisecond, MaxBackoff: 60 * time.Millisecond, Jitter: -1,
	}})
	ev := logN(t, ctx, m, "retry.me", 1)[0]
	b.start(m)
	eventually(t, "the dead letter", func() bool {
		dls, err := m.DeadLetters(ctx, "backoff", 0)
		return err == nil && len(dls) == 1
	})
	dls, err := m.DeadLetters(ctx, "backoff", 0)
	require.NoError(t, err)
	require.Equal(t, ev.ID, dls[0].EventID)
	require.Equal(t, 4, dls[0].Attempts)
	mu.Lock()
	require.Len(t, runs, 4)
	for i, least := range []time.Duration{30 * time.Millisecond, 60 * time.Millisecond, 60 * time.Millisecond} {
		require.GreaterOrEqual(t, runs[i+1].Sub(runs[i]), least, "delay before run %d", i+2)
	}
	mu.Unlock()

	policy := monster.RetryPolicy{MaxAttempts: 5, InitialBackoff: 10 * time.Millisecond, MaxBackoff: 80 * time.Millisecond, Jitter: 0.25}
	for attempt := 1; attempt <= 8; attempt++ {
		base := min(10*time.Millisecond<<(attempt-1), 80*time.Millisecond)
		values := map[time.Duration]bool{}
		for range 50 {
			d := policy.Backoff(attempt)
			require.GreaterOrEqual(t, d, base*3/4, "backoff after attempt %d", attempt)
			require.LessOrEqual(t, d, base*5/4, "backoff after attempt %d", attempt)
			values[d] = true
		}
		require.Greater(t, len(values), 1, "backoff after attempt %d has no jitter", attempt)
	}
	require.LessOrEqual(t, policy.Backoff(1000), 100*time.Millisecond, "the cap holds for any attempt")
}

// A dead letter an operator retries runs again: a failure puts it back with
// the attempts added up, a success removes it; a discarded one is gone from
// the list but not from the log.
func testDeadLetterRetriedByOperator(t *testing.T, b *bundle) {
	ctx, s := b.ctx, b.open()
	m := b.monster(s, monster.Options{})
	var fail atomic.Bool
	fail.Store(true)
	d := newDeliveries()
	b.consume(m, "flaky", monster.Match("order.*", func(_ context.Context, e monster.RawEvent) error {
		if string(e.Data) == `"poison"` && fail.Load() {
			return errors.New("storetest: poisoned")
		}
		d.add(e)
		return nil
	}), &monster.ConsumerOptions{Retry: monster.RetryPolicy{MaxAttempts: 2, InitialBackoff: time.Millisecond, MaxBackoff: 2 * time.Millisecond}})
	b.start(m)
	poison, err := m.Log(ctx, "order.placed", "poison", monster.WithKey("k1"))
	require.NoError(t, err)
	fine, err := m.Log(ctx, "order.placed", "fine", monster.WithKey("k1"))
	require.NoError(t, err)
	deadOne := func(attempts int, retry bool) func() bool {
		return func() bool {
			dls, err := m.DeadLetters(ctx, "flaky", 0)
			return err == nil && len(dls) == 1 && dls[0].EventID == poison.ID && dls[0].Attempts == attempts && dls[0].RetryRequested == retry
		}
	}
	eventually(t, "the dead letter", deadOne(2, false))
	d.waitFor(t, "the next event of the same key", []string{fine.ID})

	n, err := m.RetryDeadLetters(ctx, "flaky")
	require.NoError(t, err)
	require.Equal(t, 1, n)
	eventually(t, "the retried dead letter to fail again and come back with 4 attempts", deadOne(4, false))

	fail.Store(false)
	n, err = m.RetryDeadLetters(ctx, "flaky", poison.ID)
	require.NoError(t, err)
	require.Equal(t, 1, n)
	eventually(t, "the retried dead letter to succeed and go", func() bool {
		dls, err := m.DeadLetters(ctx, "flaky", 0)
		return err == nil && len(dls) == 0
	})
	require.Equal(t, 1, d.times(poison.ID))

	_, err = m.DiscardDeadLetters(ctx, "flaky", newID())
	require.ErrorIs(t, err, monster.ErrNotFound)
	fail.Store(true)
	again, err := m.Log(ctx, "order.placed", "poison")
	require.NoError(t, err)
	eventually(t, "a second dead letter", func() bool {
		dls, err := s.DeadLetters(ctx, store.DeadLetterQuery{Consumer: "flaky"})
		return err == nil && len(dls) == 1 && dls[0].EventID == again.ID
	})
	n, err = m.DiscardDeadLetters(ctx, "flaky", again.ID)
	require.NoError(t, err)
	require.Equal(t, 1, n)
	dls, err := m.DeadLetters(ctx, "flaky", 0)
	require.NoError(t, err)
	require.Empty(t, dls)
	_, err = m.EventByID(ctx, again.ID)
	require.NoError(t, err, "a discarded dead letter's event stays in the log")
}
