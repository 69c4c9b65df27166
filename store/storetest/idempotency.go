package storetest

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/gomonster/monster"
	"github.com/gomonster/monster/store"
)

// eventsWithKey returns the stored events with an idempotency key.
func eventsWithKey(t testing.TB, ctx context.Context, s store.Store, key string) []store.Event {
	t.Helper()
	var out []store.Event
	for _, e := range readAll(t, ctx, s) {
		if e.IdempotencyKey == key {
			out = append(out, e)
		}
	}
	return out
}

// IdempotentLogging: an event logged with an idempotency key is stored once
// however often the call is retried (even with other data); every call
// returns the stored event; a consumer sees one event.
func testRetriedLogStoredOnce(t *testing.T, b *bundle) {
	ctx, s := b.ctx, b.open()
	m := b.monster(s, monster.Options{})
	d := newDeliveries()
	b.consume(m, "payments", monster.Match("payment.*", d.handle), nil)
	first, err := m.Log(ctx, "payment.captured", map[string]int{"amount": 10}, monster.WithIdempotencyKey("pay-1"))
	require.NoError(t, err)
	for _, data := range []any{map[string]int{"amount": 10}, map[string]int{"amount": 99}} {
		again, err := m.Log(ctx, "payment.captured", data, monster.WithIdempotencyKey("pay-1"))
		require.NoError(t, err)
		require.Equal(t, first.ID, again.ID, "a retried Log returns the stored event")
		require.Equal(t, first.Position, again.Position)
		requireSameJSON(t, first.Data, again.Data, "a retried Log returns the stored data")
	}
	batch, err := m.LogBatch(ctx, []monster.Entry{
		{Type: "payment.captured", Data: 1, IdempotencyKey: "pay-2"},
		{Type: "payment.captured", Data: 2, IdempotencyKey: "pay-2"},
		{Type: "payment.captured", Data: 3, IdempotencyKey: "pay-1"},
	})
	require.NoError(t, err)
	require.Equal(t, batch[0].ID, batch[1].ID, "a key repeated in a batch is stored once")
	require.Equal(t, first.ID, batch[2].ID)

	require.Len(t, eventsWithKey(t, ctx, s, "pay-1"), 1)
	require.Len(t, eventsWithKey(t, ctx, s, "pay-2"), 1)
	counts, err := s.CountByType(ctx, 0)
	require.NoError(t, err)
	require.Equal(t, map[string]int64{"payment.captured": 2}, nonZero(counts))
	b.start(m)
	d.waitFor(t, "the consumer", []string{first.ID, batch[0].ID})
	require.Equal(t, 2, d.distinct(), "the consumer sees each stored event, not each call")
}

// IdempotentLogging: the same idempotent call retried from many goroutines at
// once (so that copies meet in one group commit, and in concurrent ones)
// is stored once, and every call returns it.
func testConcurrentRetriesStoredOnce(t *testing.T, b *bundle) {
	const n = 16
	ctx, s := b.ctx, b.open()
	m := b.monster(s, monster.Options{})
	for round := range 3 {
		key := fmt.Sprintf("order-%d", round)
		start := make(chan struct{})
		var wg sync.WaitGroup
		ids := make([]string, n)
		errs := make([]error, n)
		for i := range n {
			wg.Go(func() {
				<-start
				ev, err := m.Log(ctx, "order.placed", map[string]int{"try": i}, monster.WithIdempotencyKey(key))
				ids[i], errs[i] = ev.ID, err
			})
		}
		close(start)
		wg.Wait()
		for i := range n {
			require.NoError(t, errs[i])
			require.Equal(t, ids[0], ids[i], "every call returns the one stored event")
		}
		stored := eventsWithKey(t, ctx, s, key)
		require.Len(t, stored, 1, "stored once")
		require.Equal(t, ids[0], stored[0].ID)
	}
}

// IdempotentLogging: an ambiguous failure is reported as such, and a retry with
// the same idempotency key settles it: the event is stored exactly once.
// Two ways to be ambiguous: the caller's context ends while the commit is
// under way, and the store reports that it cannot tell (the connection was
// lost after the commit).
func testAmbiguousFailureReported(t *testing.T, b *bundle) {
	ctx, s := b.ctx, b.open()
	var armed atomic.Bool
	entered := make(chan struct{}, 1)
	release := make(chan struct{})
	var lostReply atomic.Bool
	broken := &hookStore{
		inner:  s,
		before: gate("Append", &armed, entered, release),
		afterAppend: func([]store.NewEvent, []store.AppendResult) error {
			if lostReply.CompareAndSwap(true, false) {
				return fmt.Errorf("storetest: connection lost after the commit was sent: %w", store.ErrAmbiguousCommit)
			}
			return nil
		},
	}
	m := b.monster(broken.wrap(), monster.Options{})

	// The caller gives up while the store is committing.
	armed.Store(true)
	callCtx, cancel := context.WithCancel(ctx)
	errc := make(chan error, 1)
	go func() {
		_, err := m.Log(callCtx, "payment.captured", map[string]int{"amount": 5}, monster.WithIdempotencyKey("pay-5"))
		errc <- err
	}()
	receive(t, "the commit to start", entered)
	cancel()
	err := receive(t, "Log to return after its context ended", errc)
	require.ErrorIs(t, err, monster.ErrAmbiguous, "a Log whose context ends during the commit must say the outcome is unknown")
	close(release)
	ev, err := m.Log(ctx, "payment.captured", map[string]int{"amount": 5}, monster.WithIdempotencyKey("pay-5"))
	require.NoError(t, err)
	stored := eventsWithKey(t, ctx, s, "pay-5")
	require.Len(t, stored, 1, "the retry settles it: stored once")
	require.Equal(t, stored[0].ID, ev.ID)

	// The store committed, but the reply was lost.
	lostReply.Store(true)
	_, err = m.Log(ctx, "payment.captured", map[string]int{"amount": 6}, monster.WithIdempotencyKey("pay-6"))
	require.ErrorIs(t, err, monster.ErrAmbiguous, "the store's ambiguous commit must reach the caller as such")
	ev, err = m.Log(ctx, "payment.captured", map[string]int{"amount": 6}, monster.WithIdempotencyKey("pay-6"))
	require.NoError(t, err)
	stored = eventsWithKey(t, ctx, s, "pay-6")
	require.Len(t, stored, 1)
	require.Equal(t, stored[0].ID, ev.ID)
	require.Len(t, readAll(t, ctx, s), 2)
}
