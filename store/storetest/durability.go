package storetest

import (
	"context"
	"encoding/json"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/gomonster/monster"
	"github.com/gomonster/monster/store"
)

// Durable: when Log returns, the event is committed: another handle (as
// another process) reads it at once, with every field.
func testLogIsCommittedOnReturn(t *testing.T, b *bundle) {
	ctx, s := b.ctx, b.open()
	m := b.monster(keepOpen(s), monster.Options{})
	other := b.share(s)
	ev, err := m.Log(ctx, "payment.captured", map[string]any{"amount": 42, "currency": "EUR"},
		monster.WithKey("order-7"), monster.WithMeta("source", "storetest"), monster.WithIdempotencyKey("pay-7"))
	require.NoError(t, err)
	got, err := other.EventByID(ctx, ev.ID)
	require.NoError(t, err, "the event must be committed when Log returns")
	requireLogged(t, ev, got)
	require.Equal(t, "pay-7", got.IdempotencyKey)
	requireSameJSON(t, []byte(`{"source":"storetest"}`), got.Meta, "Meta")
}

// requireLogged checks a stored event against what Log returned.
func requireLogged(t testing.TB, ev monster.RawEvent, got store.Event) {
	t.Helper()
	require.Equal(t, ev.ID, got.ID)
	require.Equal(t, ev.Type, got.Type, "Type")
	require.Equal(t, ev.Position, got.Position, "Position")
	require.Equal(t, ev.Key, got.Key, "Key")
	requireSameTime(t, ev.Time, got.Time, "Time")
	requireSameJSON(t, ev.Data, got.Data, "Data")
	if len(ev.Meta) > 0 {
		meta, err := json.Marshal(ev.Meta)
		require.NoError(t, err)
		requireSameJSON(t, meta, got.Meta, "Meta")
	}
}

// Durable: when Log returns, the event is durable: the store is closed
// and opened again while the Monster that logged it is still running (it
// never shut down cleanly), and the event is there, with its idempotency
// key. A suite inside one process cannot pull the plug; a store that syncs
// nothing passes this test and fails its users.
func testLogIsDurableOnReturn(t *testing.T, b *bundle) {
	b.needPersistent()
	ctx, s := b.ctx, b.open()
	m := b.monster(keepOpen(s), monster.Options{})
	one, err := m.Log(ctx, "payment.captured", map[string]any{"amount": 42},
		monster.WithKey("order-7"), monster.WithMeta("source", "storetest"), monster.WithIdempotencyKey("pay-7"))
	require.NoError(t, err)
	batch, err := m.LogBatch(ctx, []monster.Entry{
		{Type: "order.placed", Data: 1, Key: "a"},
		{Type: "order.placed", Data: 2, Key: "b"},
	})
	require.NoError(t, err)

	s = b.reopen(s)
	for _, ev := range append([]monster.RawEvent{one}, batch...) {
		got, err := s.EventByID(ctx, ev.ID)
		require.NoError(t, err, "event %s was lost", ev.ID)
		requireLogged(t, ev, got)
	}
	dup := newEvent("payment.captured", `{}`)
	dup.IdempotencyKey = "pay-7"
	res, err := s.Append(ctx, []store.NewEvent{dup})
	require.NoError(t, err)
	require.True(t, res[0].Duplicate, "the idempotency key is durable too")
	require.Equal(t, one.ID, res[0].Event.ID)
}

// Durable: concurrent Log calls are group-committed. 64 goroutines log
// at once; the first Append waits until every one of them has its event
// ready, so the rest must go to the store in few Append calls; and every
// event is stored.
func testConcurrentLogsShareCommits(t *testing.T, b *bundle) {
	const n = 64
	ctx, s := b.ctx, b.open()
	var ready atomic.Int64
	allReady := make(chan struct{})
	var calls atomic.Int64
	var mu sync.Mutex
	var sizes []int
	counted := &hookStore{
		inner: s,
		before: func(_ context.Context, method string) error {
			if method == "Append" {
				calls.Add(1)
				select {
				case <-allReady:
				case <-time.After(waitTimeout):
				}
			}
			return nil
		},
		afterAppend: func(events []store.NewEvent, _ []store.AppendResult) error {
			mu.Lock()
			sizes = append(sizes, len(events))
			mu.Unlock()
			return nil
		},
	}
	prepared := func(next monster.LogFunc) monster.LogFunc {
		return func(ctx context.Context, e *monster.Entry) error {
			err := next(ctx, e)
			if ready.Add(1) == n {
				close(allReady)
			}
			return err
		}
	}
	m := b.monster(counted.wrap(), monster.Options{LogMiddleware: []monster.LogMiddleware{prepared}})

	start := make(chan struct{})
	var wg sync.WaitGroup
	events := make([]monster.RawEvent, n)
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() {
			<-start
			events[i], errs[i] = m.Log(ctx, "load.concurrent", i)
		})
	}
	close(start)
	wg.Wait()

	ids := map[string]bool{}
	for i := range n {
		require.NoError(t, errs[i], "Log %d", i)
		ids[events[i].ID] = true
		got, err := s.EventByID(ctx, events[i].ID)
		require.NoError(t, err, "event %d is not stored", i)
		require.Equal(t, events[i].Position, got.Position)
	}
	require.Len(t, ids, n)
	require.Len(t, readAll(t, ctx, s), n)
	mu.Lock()
	defer mu.Unlock()
	require.Less(t, calls.Load(), int64(n/2), "concurrent Log calls must share commits; Append batch sizes: %v", sizes)
	require.Greater(t, maxOf(sizes), 1, "some Append must carry several events; sizes: %v", sizes)
}

func maxOf(xs []int) int {
	m := 0
	for _, x := range xs {
		m = max(m, x)
	}
	return m
}
