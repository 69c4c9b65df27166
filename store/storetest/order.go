package storetest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/gomonster/monster"
)

// Order: with Concurrency 8, events with the same key are handled one
// at a time, in log order, whether they were logged before the consumer
// started or while it runs.
func testSameKeyInLogOrder(t *testing.T, b *bundle) {
	const keys, perKey = 6, 20
	ctx, s := b.ctx, b.open()
	m := b.monster(s, monster.Options{})
	var mu sync.Mutex
	running := map[string]bool{}
	seen := map[string][]int{}
	positions := map[string][]int64{}
	var overlap atomic.Value
	b.consume(m, "ordered", monster.Match("seq.*", func(ctx context.Context, e monster.RawEvent) error {
		mu.Lock()
		if running[e.Key] {
			overlap.CompareAndSwap(nil, fmt.Sprintf("two events of key %s ran at once (one at position %d)", e.Key, e.Position))
		}
		running[e.Key] = true
		mu.Unlock()
		runtime.Gosched() // let another worker try the same key
		var n int
		if err := json.Unmarshal(e.Data, &n); err != nil {
			return err
		}
		mu.Lock()
		defer mu.Unlock()
		running[e.Key] = false
		seen[e.Key] = append(seen[e.Key], n)
		positions[e.Key] = append(positions[e.Key], e.Position)
		return nil
	}), &monster.ConsumerOptions{Concurrency: 8, Partitions: 4})

	logRound := func(i int) {
		var entries []monster.Entry
		for k := range keys {
			entries = append(entries, monster.Entry{Type: fmt.Sprintf("seq.t%d", (i+k)%3), Data: i, Key: fmt.Sprintf("key-%d", k)})
		}
		_, err := m.LogBatch(ctx, entries)
		require.NoError(t, err)
	}
	for i := range perKey / 2 {
		logRound(i)
	}
	b.start(m)
	for i := perKey / 2; i < perKey; i++ {
		logRound(i)
	}
	eventually(t, "every event handled", func() bool {
		mu.Lock()
		defer mu.Unlock()
		total := 0
		for _, handled := range seen {
			total += len(handled)
		}
		return total >= keys*perKey
	})
	if v := overlap.Load(); v != nil {
		t.Fatal(v)
	}
	mu.Lock()
	defer mu.Unlock()
	want := make([]int, perKey)
	for i := range want {
		want[i] = i
	}
	for k := range keys {
		key := fmt.Sprintf("key-%d", k)
		require.Equal(t, want, seen[key], "events of %s out of log order", key)
		for i := 1; i < len(positions[key]); i++ {
			require.Greater(t, positions[key][i], positions[key][i-1], "positions of %s", key)
		}
	}
}

// Order: events with different keys may run concurrently. Four
// events with four keys wait for each other in their handlers; they can
// only all finish if they all run at once.
func testDifferentKeysRunConcurrently(t *testing.T, b *bundle) {
	const n = 4
	ctx, s := b.ctx, b.open()
	m := b.monster(s, monster.Options{})
	var arrived atomic.Int64
	all := make(chan struct{})
	b.consume(m, "parallel", monster.Match("fan.out", func(ctx context.Context, e monster.RawEvent) error {
		if arrived.Add(1) == n {
			close(all)
		}
		select {
		case <-all:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}), &monster.ConsumerOptions{Concurrency: 8, Timeout: waitTimeout, Retry: monster.RetryPolicy{MaxAttempts: 1}})
	var entries []monster.Entry
	for k := range n {
		entries = append(entries, monster.Entry{Type: "fan.out", Data: k, Key: fmt.Sprintf("key-%d", k)})
	}
	events, err := m.LogBatch(ctx, entries)
	require.NoError(t, err)
	b.start(m)
	eventually(t, fmt.Sprintf("%d events with different keys to run at once", n), func() bool {
		return arrived.Load() >= n
	})
	eventually(t, "the consumer to finish", func() bool { return caughtUp(ctx, s, "parallel", events[n-1].Position) })
	dead, err := m.DeadLetters(ctx, "parallel", 0)
	require.NoError(t, err)
	require.Empty(t, dead, "no handler timed out waiting for the others")
}

// Order: with Partitions 1, Concurrency 1 and BlockOnFailure, events are
// handled in strict log order across keys and types; a failing event is
// retried past MaxAttempts (never dead-lettered) and holds back every
// later event until it succeeds.
func testStrictTotalOrder(t *testing.T, b *bundle) {
	const n, failures = 10, 4
	ctx, s := b.ctx, b.open()
	m := b.monster(s, monster.Options{})
	var mu sync.Mutex
	var attempts, handled []int
	var attemptsOfBad []int
	var badFailures int
	b.consume(m, "strict", monster.Match("step.*", func(ctx context.Context, e monster.RawEvent) error {
		var i int
		if err := json.Unmarshal(e.Data, &i); err != nil {
			return err
		}
		mu.Lock()
		defer mu.Unlock()
		attempts = append(attempts, i)
		if i == 3 {
			attemptsOfBad = append(attemptsOfBad, e.Attempt)
			if badFailures < failures {
				badFailures++
				return errors.New("storetest: not yet")
			}
		}
		handled = append(handled, i)
		return nil
	}), &monster.ConsumerOptions{
		Partitions: 1, Concurrency: 1, BlockOnFailure: true,
		Retry: monster.RetryPolicy{MaxAttempts: 2, InitialBackoff: time.Millisecond, MaxBackoff: 2 * time.Millisecond},
	})
	for i := range n / 2 {
		_, err := m.Log(ctx, fmt.Sprintf("step.t%d", i%3), i, monster.WithKey(fmt.Sprintf("key-%d", i)))
		require.NoError(t, err)
	}
	b.start(m)
	for i := n / 2; i < n; i++ {
		_, err := m.Log(ctx, fmt.Sprintf("step.t%d", i%3), i, monster.WithKey(fmt.Sprintf("key-%d", i)))
		require.NoError(t, err)
	}
	eventually(t, "every event handled", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(handled) >= n
	})
	mu.Lock()
	defer mu.Unlock()
	require.Equal(t, []int{0, 1, 2, 3, 4, 5, 6, 7, 8, 9}, handled, "strict order")
	require.Equal(t, []int{0, 1, 2, 3, 3, 3, 3, 3, 4, 5, 6, 7, 8, 9}, attempts, "nothing after the failing event may run before it succeeds")
	require.Equal(t, []int{1, 2, 3, 4, 5}, attemptsOfBad, "Attempt counts the runs")
	dead, err := m.DeadLetters(ctx, "strict", 0)
	require.NoError(t, err)
	require.Empty(t, dead, "a blocking consumer never dead-letters")
}
