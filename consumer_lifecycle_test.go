package monster_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/gomonster/monster"
	"github.com/gomonster/monster/monstertest"
	"github.com/gomonster/monster/store"
	"github.com/gomonster/monster/store/memstore"
)

// counting returns a handler that counts the events it handles.
func counting(n *atomic.Int64) monster.Handler {
	return monster.Match("*", func(context.Context, monster.RawEvent) error {
		n.Add(1)
		return nil
	})
}

// waiting returns a handler that tells started of each event and returns
// when release is closed, or, recording it in cancelled, when its context
// ends.
func waiting(started chan<- struct{}, release <-chan struct{}, cancelled *atomic.Bool) monster.Handler {
	return monster.Match("*", func(ctx context.Context, e monster.RawEvent) error {
		started <- struct{}{}
		select {
		case <-release:
			return nil
		case <-ctx.Done():
			cancelled.Store(true)
			return ctx.Err()
		}
	})
}

func logN(t *testing.T, m *monster.Monster, n int) {
	t.Helper()
	for i := range n {
		_, err := m.Log(context.Background(), "job", i)
		require.NoError(t, err)
	}
}

func TestStopConsumerLeavesTheOthersRunning(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	m := newMem(t, nil)
	var a, b atomic.Int64
	require.NoError(t, m.Consume("a", counting(&a), nil))
	require.NoError(t, m.Consume("b", counting(&b), nil))
	start(t, m)
	logN(t, m, 3)
	monstertest.Eventually(t, "both consumers handled the first events", func() bool { return a.Load() == 3 && b.Load() == 3 })

	require.NoError(t, m.StopConsumer(ctx, "a"))
	require.NoError(t, m.StopConsumer(ctx, "a"), "stopping a stopped consumer is a no-op")
	stats, err := m.ConsumerStats(ctx, "a")
	require.NoError(t, err)
	require.Empty(t, stats.Owners, "a stopped consumer releases its partitions")
	require.Equal(t, int64(3), stats.Position, "and checkpoints its progress")

	logN(t, m, 4)
	monstertest.Eventually(t, "b goes on", func() bool { return b.Load() == 7 })
	require.Equal(t, int64(3), a.Load())

	require.NoError(t, m.StartConsumer(ctx, "a"))
	require.NoError(t, m.StartConsumer(ctx, "a"), "starting a running consumer is a no-op")
	monstertest.Eventually(t, "a catches up where it stopped", func() bool { return a.Load() == 7 })
}

func TestStopConsumerWaitsForInFlightHandlers(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	m := newMem(t, nil)
	started := make(chan struct{}, 1)
	release := make(chan struct{})
	var cancelled atomic.Bool
	require.NoError(t, m.Consume("slow", waiting(started, release, &cancelled), nil))
	var other atomic.Int64
	require.NoError(t, m.Consume("other", counting(&other), nil))
	start(t, m)
	logN(t, m, 1)
	<-started

	t.Run("finishes in time", func(t *testing.T) {
		stopped := make(chan error, 1)
		go func() { stopped <- m.StopConsumer(ctx, "slow") }()
		monstertest.Eventually(t, "slow released nothing yet, other handled its event", func() bool { return other.Load() == 1 })
		select {
		case err := <-stopped:
			t.Fatalf("StopConsumer returned (%v) before the in-flight handler finished", err)
		default:
		}
		close(release)
		require.NoError(t, <-stopped)
		require.False(t, cancelled.Load())
	})

	t.Run("cancelled when ctx ends", func(t *testing.T) {
		require.NoError(t, m.StartConsumer(ctx, "slow"))
		logN(t, m, 1)
		<-started // the second event; release is closed, so it returns at once
		release2 := make(chan struct{})
		require.NoError(t, m.RemoveConsumer(ctx, "slow"))
		require.NoError(t, m.Consume("slow", waiting(started, release2, &cancelled), nil))
		logN(t, m, 1)
		<-started
		stopCtx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
		defer cancel()
		err := m.StopConsumer(stopCtx, "slow")
		require.ErrorIs(t, err, context.DeadlineExceeded)
		require.ErrorContains(t, err, `consumer "slow"`)
		require.True(t, cancelled.Load(), "the handler's context was cancelled, and StopConsumer waited for it")
		logN(t, m, 1)
		monstertest.Eventually(t, "other still runs", func() bool { return other.Load() == 4 })
	})
}

func TestRemoveConsumerLetsTheNameBeDeclaredAgain(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	m := newMem(t, nil)
	var first, second atomic.Int64
	require.NoError(t, m.Consume("mailer", counting(&first), nil))
	start(t, m)
	logN(t, m, 2)
	monstertest.Eventually(t, "first handler done", func() bool { return first.Load() == 2 })
	require.Error(t, m.Consume("mailer", counting(&second), nil), "still declared")
	require.NoError(t, m.RemoveConsumer(ctx, "mailer"))
	require.ErrorIs(t, m.StopConsumer(ctx, "mailer"), monster.ErrNotFound, "forgotten")
	logN(t, m, 3)
	require.NoError(t, m.Consume("mailer", counting(&second), nil))
	monstertest.Eventually(t, "the new handler resumes from the checkpoint", func() bool { return second.Load() == 3 })
	require.Equal(t, int64(2), first.Load())
}

func TestStartConsumerRegistersBeforeItReturns(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	m := newMem(t, nil)
	start(t, m)
	var n atomic.Int64
	require.NoError(t, m.Consume("fresh", counting(&n), &monster.ConsumerOptions{StartAt: monster.End}))
	// Stop it and forget it in the store, wherever it had got to, so that
	// StartConsumer creates it anew.
	require.NoError(t, m.StopConsumer(ctx, "fresh"))
	if err := m.Store().DeleteConsumer(ctx, "fresh"); err != nil {
		require.ErrorIs(t, err, store.ErrNotFound)
	}
	logN(t, m, 5)
	require.NoError(t, m.StartConsumer(ctx, "fresh"))
	stats, err := m.ConsumerStats(ctx, "fresh")
	require.NoError(t, err, "registered when StartConsumer returns")
	require.Equal(t, int64(5), stats.Position, "End is the end at the call")
	logN(t, m, 2)
	monstertest.Eventually(t, "only the later events are handled", func() bool { return n.Load() == 2 })
}

func TestStartConsumerErrors(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	noop := monster.Match("*", func(context.Context, monster.RawEvent) error { return nil })

	t.Run("not declared", func(t *testing.T) {
		t.Parallel()
		m := newMem(t, nil)
		start(t, m)
		require.ErrorIs(t, m.StartConsumer(ctx, "nobody"), monster.ErrNotFound)
		require.ErrorIs(t, m.StopConsumer(ctx, "nobody"), monster.ErrNotFound)
		require.ErrorIs(t, m.RemoveConsumer(ctx, "nobody"), monster.ErrNotFound)
	})
	t.Run("not running", func(t *testing.T) {
		t.Parallel()
		m := newMem(t, nil)
		require.NoError(t, m.Consume("c", noop, nil))
		require.ErrorIs(t, m.StartConsumer(ctx, "c"), monster.ErrNotRunning)
		require.NoError(t, m.StopConsumer(ctx, "c"), "nothing to stop")
	})
	t.Run("conflict with the store", func(t *testing.T) {
		t.Parallel()
		st := memstore.New()
		_, err := st.RegisterConsumer(ctx, store.ConsumerSpec{Name: "c", Partitions: 4})
		require.NoError(t, err)
		o := fastOptions(nil)
		m := monster.New(st, &o)
		t.Cleanup(func() { _ = m.Close() })
		start(t, m)
		require.NoError(t, m.Consume("c", noop, &monster.ConsumerOptions{Partitions: 8})) // logs and does not run
		require.NoError(t, m.StopConsumer(ctx, "c"))                                      // whether or not it got that far
		err = m.StartConsumer(ctx, "c")
		require.ErrorIs(t, err, store.ErrConflict)
		require.ErrorContains(t, err, `consumer "c" cannot start`)
	})
	t.Run("closed", func(t *testing.T) {
		t.Parallel()
		m := newMem(t, nil)
		require.NoError(t, m.Consume("c", noop, nil))
		require.NoError(t, m.Close())
		require.ErrorIs(t, m.StartConsumer(ctx, "c"), monster.ErrClosed)
		require.ErrorIs(t, m.StopConsumer(ctx, "c"), monster.ErrClosed)
	})
}
