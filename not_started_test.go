package monster_test

import (
	"context"
	"errors"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/gomonster/monster"
	"github.com/gomonster/monster/monstertest"
)

// A consumer declared with Consume exists before it first runs: the
// operator calls answer for it ("not started") instead of ErrNotFound.
func TestDeclaredConsumerNotStartedYet(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	m := newMem(t, nil)
	for _, typ := range []string{"user.signed_up", "order.placed", "user.bought_shirt"} {
		_, err := m.Log(ctx, typ, "x")
		require.NoError(t, err)
	}
	noop := func(ctx context.Context, e monster.RawEvent) error { return nil }
	require.NoError(t, m.Consume("audit", monster.Match("user.*", noop), &monster.ConsumerOptions{Partitions: 4}))
	require.NoError(t, m.Consume("tail", monster.Match("*", noop), &monster.ConsumerOptions{StartAt: monster.End}))

	audit, err := m.ConsumerStats(ctx, "audit")
	require.NoError(t, err)
	require.Equal(t, monster.ConsumerStats{Name: "audit", Types: []string{"user.*"}, Position: 0, Lag: 2, Partitions: 4, NotStarted: true}, audit,
		"from the beginning, with the two user events to handle")
	tail, err := m.ConsumerStats(ctx, "tail")
	require.NoError(t, err)
	require.Equal(t, monster.ConsumerStats{Name: "tail", Types: []string{"*"}, Position: 3, Lag: 0, Partitions: 16, NotStarted: true}, tail,
		"at the end: nothing to handle")

	stats, err := m.Stats(ctx)
	require.NoError(t, err)
	require.Equal(t, []monster.ConsumerStats{audit, tail}, stats.Consumers)

	dls, err := m.DeadLetters(ctx, "audit", 0)
	require.NoError(t, err)
	require.Empty(t, dls)
	n, err := m.RetryDeadLetters(ctx, "audit")
	require.NoError(t, err)
	require.Zero(t, n)
	n, err = m.DiscardDeadLetters(ctx, "audit")
	require.NoError(t, err)
	require.Zero(t, n)
	_, err = m.RetryDeadLetters(ctx, "audit", "no-such-event")
	require.ErrorIs(t, err, monster.ErrNotFound, "a named dead letter it cannot have is not found")
	err = m.ResetConsumer(ctx, "audit", monster.Beginning)
	require.ErrorIs(t, err, monster.ErrNotFound)
	require.ErrorContains(t, err, `consumer "audit": it has not started yet, and will start at beginning`)

	// A name neither declared nor in the store is still not found.
	_, err = m.ConsumerStats(ctx, "ghost")
	require.ErrorIs(t, err, monster.ErrNotFound)
	_, err = m.DeadLetters(ctx, "ghost", 0)
	require.ErrorIs(t, err, monster.ErrNotFound)
	_, err = m.RetryDeadLetters(ctx, "ghost")
	require.ErrorIs(t, err, monster.ErrNotFound)

	// Once started, the store's state is what counts.
	start(t, m)
	monstertest.WaitCaughtUp(t, m, "audit")
	audit, err = m.ConsumerStats(ctx, "audit")
	require.NoError(t, err)
	require.False(t, audit.NotStarted)
	require.Equal(t, int64(3), audit.Position)
	require.Equal(t, 4, audit.Partitions)
	stats, err = m.Stats(ctx)
	require.NoError(t, err)
	require.Len(t, stats.Consumers, 2)
	for _, c := range stats.Consumers {
		require.False(t, c.NotStarted, c.Name)
	}
}

// Another process on the same store, which does not declare the consumer,
// sees only what the store holds.
func TestConsumerNotDeclaredHereIsNotFound(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "monster.db")
	open := func() *monster.Monster {
		o := fastOptions(nil)
		m, err := monster.Open(ctx, path, &o)
		require.NoError(t, err)
		t.Cleanup(func() { _ = m.Close() })
		return m
	}
	m, other := open(), open()
	require.NoError(t, m.Consume("audit", monster.Match("*", func(ctx context.Context, e monster.RawEvent) error { return nil }), nil))
	_, err := m.ConsumerStats(ctx, "audit")
	require.NoError(t, err)
	_, err = other.ConsumerStats(ctx, "audit")
	require.True(t, errors.Is(err, monster.ErrNotFound), "got %v", err)
	stats, err := other.Stats(ctx)
	require.NoError(t, err)
	require.Empty(t, stats.Consumers)
}
