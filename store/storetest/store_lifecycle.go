package storetest

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/gomonster/monster/store"
)

// call is one store method called with fixed arguments.
type call struct {
	method string
	do     func(ctx context.Context, s store.Store) error
}

// everyMethod calls each method of the contract (but Features and Close)
// with plausible arguments.
func everyMethod() []call {
	now := time.Now()
	return []call{
		{"Append", func(ctx context.Context, s store.Store) error {
			_, err := s.Append(ctx, []store.NewEvent{newEvent("after.close", `1`)})
			return err
		}},
		{"Read", func(ctx context.Context, s store.Store) error {
			_, err := s.Read(ctx, store.ReadParams{After: 0, Limit: 10})
			return err
		}},
		{"EventByID", func(ctx context.Context, s store.Store) error { _, err := s.EventByID(ctx, newID()); return err }},
		{"Head", func(ctx context.Context, s store.Store) error { _, err := s.Head(ctx); return err }},
		{"PositionBefore", func(ctx context.Context, s store.Store) error { _, err := s.PositionBefore(ctx, now); return err }},
		{"CountByType", func(ctx context.Context, s store.Store) error { _, err := s.CountByType(ctx, 0); return err }},
		{"RegisterConsumer", func(ctx context.Context, s store.Store) error {
			_, err := s.RegisterConsumer(ctx, store.ConsumerSpec{Name: "late", Types: []string{"*"}, Partitions: 2})
			return err
		}},
		{"Consumer", func(ctx context.Context, s store.Store) error { _, err := s.Consumer(ctx, "c"); return err }},
		{"Consumers", func(ctx context.Context, s store.Store) error { _, err := s.Consumers(ctx); return err }},
		{"DeleteConsumer", func(ctx context.Context, s store.Store) error { return s.DeleteConsumer(ctx, "c") }},
		{"Heartbeat", func(ctx context.Context, s store.Store) error {
			_, err := s.Heartbeat(ctx, store.HeartbeatParams{Consumer: "c", Member: "m", Expires: now.Add(time.Minute), Now: now})
			return err
		}},
		{"Leave", func(ctx context.Context, s store.Store) error {
			return s.Leave(ctx, store.LeaveParams{Consumer: "c", Member: "m"})
		}},
		{"Claim", func(ctx context.Context, s store.Store) error {
			_, err := s.Claim(ctx, store.ClaimParams{Consumer: "c", Member: "m", Partitions: []int{0}, Expires: now.Add(time.Minute), Now: now})
			return err
		}},
		{"Release", func(ctx context.Context, s store.Store) error {
			return s.Release(ctx, store.ReleaseParams{Consumer: "c", Member: "m", Partitions: []int{0}})
		}},
		{"SaveCheckpoints", func(ctx context.Context, s store.Store) error {
			return s.SaveCheckpoints(ctx, store.SaveCheckpointsParams{Consumer: "c", Member: "m", Checkpoints: []store.Checkpoint{{Partition: 0, Position: 1}}})
		}},
		{"ResetConsumer", func(ctx context.Context, s store.Store) error {
			return s.ResetConsumer(ctx, store.ResetConsumerParams{Consumer: "c", Position: 0})
		}},
		{"AddDeadLetter", func(ctx context.Context, s store.Store) error {
			return s.AddDeadLetter(ctx, deadLetter("c", newID(), 1))
		}},
		{"DeadLetters", func(ctx context.Context, s store.Store) error {
			_, err := s.DeadLetters(ctx, store.DeadLetterQuery{Consumer: "c"})
			return err
		}},
		{"RequestRetry", func(ctx context.Context, s store.Store) error {
			_, err := s.RequestRetry(ctx, store.DeadLetterSelection{Consumer: "c", IDs: nil})
			return err
		}},
		{"DeleteDeadLetters", func(ctx context.Context, s store.Store) error {
			_, err := s.DeleteDeadLetters(ctx, store.DeadLetterSelection{Consumer: "c", IDs: nil})
			return err
		}},
	}
}

// fixtureForCalls gives everyMethod's calls something to work on: an event
// and consumer "c", held by member "m", with a dead letter.
func fixtureForCalls(t testing.TB, ctx context.Context, s store.Store) {
	t.Helper()
	mustAppend(t, ctx, s, newEvent("before.close", `1`))
	register(t, ctx, s, "c", 2, 0)
	now := time.Now()
	claim(t, ctx, s, "c", "m", []int{0, 1}, now.Add(time.Minute), now)
	require.NoError(t, s.AddDeadLetter(ctx, deadLetter("c", newID(), 1)))
}

// protect runs fn, turning a panic into an error.
func protect(fn func() error) (err error) {
	defer func() {
		if v := recover(); v != nil {
			err = fmt.Errorf("panic: %v", v)
		}
	}()
	return fn()
}

// Every method honours a context that is already done: it returns an error
// and changes nothing.
func testCancelledContext(t *testing.T, b *bundle) {
	ctx, s := b.ctx, b.open()
	fixtureForCalls(t, ctx, s)
	done, cancel := context.WithCancel(ctx)
	cancel()
	for _, c := range everyMethod() {
		err := protect(func() error { return c.do(done, s) })
		require.Error(t, err, "%s with a cancelled context must fail", c.method)
		require.NotContains(t, err.Error(), "panic:", "%s with a cancelled context", c.method)
	}
	all := readAll(t, ctx, s)
	require.Len(t, all, 1, "an Append with a cancelled context stores nothing")
	_, err := s.Consumer(ctx, "late")
	require.ErrorIs(t, err, store.ErrNotFound, "a RegisterConsumer with a cancelled context creates nothing")
	require.Equal(t, []string{"m", "m"}, owners(t, ctx, s, "c"), "a Leave or Release with a cancelled context releases nothing")
	require.Equal(t, []int64{0, 0}, checkpoints(t, ctx, s, "c"))
	require.Len(t, listDead(t, ctx, s, "c", store.DeadLetterQuery{}), 1)
}

// A write whose context ends while it runs (the runtime cancels its
// control loop's calls when a Monster stops) either happens or not, and
// leaves the store working: the next call, with a live context, succeeds.
// A store that reuses a connection left inside the cancelled call's
// transaction fails the next write (or blocks every other writer). The
// cancellation moments vary, as they do in production; a correct store
// passes every time.
func testCancelledWritesLeaveStoreUsable(t *testing.T, b *bundle) {
	ctx, s := b.ctx, b.open()
	register(t, ctx, s, "c", 2, 0)
	now := time.Now()
	claim(t, ctx, s, "c", "m", []int{0, 1}, now.Add(time.Hour), now)
	var appended, refused int
	for i := range 200 {
		callCtx, cancel := context.WithCancel(ctx)
		done := make(chan error, 1)
		ev := newEvent("cancel.me", fmt.Sprint(i))
		go func() {
			if i%2 == 0 {
				done <- s.SaveCheckpoints(callCtx, store.SaveCheckpointsParams{Consumer: "c", Member: "m", Checkpoints: []store.Checkpoint{{Partition: i % 4 / 2, Position: int64(i)}}})
				return
			}
			_, err := s.Append(callCtx, []store.NewEvent{ev})
			done <- err
		}()
		time.Sleep(time.Duration(i%25) * 20 * time.Microsecond) // cancel at varying moments of the call
		cancel()
		err := <-done
		if i%2 == 1 {
			_, lookErr := s.EventByID(ctx, ev.ID)
			switch {
			case err == nil:
				require.NoError(t, lookErr, "Append %d returned nil but its event is not stored", i)
				appended++
			case !errors.Is(err, store.ErrAmbiguousCommit):
				require.ErrorIs(t, lookErr, store.ErrNotFound, "Append %d failed (%v) but its event is stored", i, err)
				refused++
			}
		}
		_, err = s.Heartbeat(ctx, store.HeartbeatParams{Consumer: "c", Member: "m", Expires: now.Add(time.Hour), Now: now})
		require.NoError(t, err, "a write after call %d, whose context was cancelled while it ran", i)
	}
	t.Logf("cancelled appends: %d stored, %d refused", appended, refused)
	mustAppend(t, ctx, s, newEvent("cancel.after", `1`))
}

// After Close every method returns an error; none panics, nor does a
// second Close.
func testMethodsAfterClose(t *testing.T, b *bundle) {
	ctx, s := b.ctx, b.open()
	fixtureForCalls(t, ctx, s)
	require.NoError(t, s.Close())
	for _, c := range everyMethod() {
		err := protect(func() error { return c.do(ctx, s) })
		require.Error(t, err, "%s after Close must fail", c.method)
		require.NotContains(t, err.Error(), "panic:", "%s after Close", c.method)
	}
	require.NotPanics(t, func() { _ = s.Close() }, "a second Close")
}

// Everything survives Close and a new Open: events with every field,
// idempotency keys, consumers, checkpoints, leases and dead letters; and
// positions go on increasing.
func testPersistence(t *testing.T, b *bundle) {
	b.needPersistent()
	ctx, s := b.ctx, b.open()
	full := newEvent("user.bought_shirt", `{"user":"gordon","quantity":2}`)
	full.Key, full.Meta, full.IdempotencyKey = "gordon", []byte(`{"source":"web"}`), "order-1"
	events := append([]store.NewEvent{full}, newEvents("persist.item", 4)...)
	stored := mustAppend(t, ctx, s, events...)
	register(t, ctx, s, "c", 2, 0)
	now := time.Now()
	_, err := s.Heartbeat(ctx, store.HeartbeatParams{Consumer: "c", Member: "m", Expires: now.Add(time.Hour), Now: now})
	require.NoError(t, err)
	claim(t, ctx, s, "c", "m", []int{0}, now.Add(time.Hour), now)
	require.NoError(t, s.SaveCheckpoints(ctx, store.SaveCheckpointsParams{Consumer: "c", Member: "m", Checkpoints: []store.Checkpoint{{Partition: 0, Position: stored[2].Position, FailuresDelta: 3}}}))
	dl := deadLetter("c", stored[1].ID, stored[1].Position)
	require.NoError(t, s.AddDeadLetter(ctx, dl))
	_, err = s.RequestRetry(ctx, store.DeadLetterSelection{Consumer: "c", IDs: nil})
	require.NoError(t, err)

	s = b.reopen(s)
	all := readAll(t, ctx, s)
	require.Len(t, all, len(stored))
	for i := range stored {
		requireSameEvent(t, stored[i], all[i])
		requireStored(t, events[i], all[i])
	}
	head, err := s.Head(ctx)
	require.NoError(t, err)
	require.Equal(t, stored[len(stored)-1].Position, head)
	counts, err := s.CountByType(ctx, 0)
	require.NoError(t, err)
	require.Equal(t, map[string]int64{"user.bought_shirt": 1, "persist.item": 4}, nonZero(counts))

	info, err := s.Consumer(ctx, "c")
	require.NoError(t, err)
	require.Equal(t, []string{"*"}, info.Types)
	require.Equal(t, stored[2].Position, info.Partitions[0].Checkpoint)
	require.EqualValues(t, 3, info.Partitions[0].Failures)
	require.Equal(t, "m", info.Partitions[0].Owner, "a live lease survives")
	require.Equal(t, []int{1}, claim(t, ctx, s, "c", "other", []int{0, 1}, now.Add(time.Hour), now.Add(time.Second)), "a live lease is not free after a restart")
	dls := listDead(t, ctx, s, "c", store.DeadLetterQuery{})
	require.Len(t, dls, 1)
	dl.RetryRequested = true
	requireSameDeadLetter(t, dl, dls[0])

	dup := newEvent("user.bought_shirt", `{}`)
	dup.IdempotencyKey = "order-1"
	res, err := s.Append(ctx, []store.NewEvent{dup})
	require.NoError(t, err)
	require.True(t, res[0].Duplicate, "idempotency keys survive")
	next := mustAppend(t, ctx, s, newEvent("persist.item", `5`))[0]
	require.Greater(t, next.Position, head, "positions go on increasing")
}

// Two handles on the same data see each other's writes at once, and closing
// one leaves the other working.
func testSharedHandles(t *testing.T, b *bundle) {
	ctx, s := b.ctx, b.open()
	other := b.share(s)
	stored := mustAppend(t, ctx, s, newEvents("shared.item", 3)...)
	got, err := other.EventByID(ctx, stored[2].ID)
	require.NoError(t, err, "a committed event is visible to another handle at once")
	requireSameEvent(t, stored[2], got)
	head, err := other.Head(ctx)
	require.NoError(t, err)
	require.Equal(t, stored[2].Position, head)

	register(t, ctx, other, "c", 2, 0)
	now := time.Now()
	claim(t, ctx, s, "c", "a", []int{0}, now.Add(time.Minute), now)
	require.Equal(t, []int{1}, claim(t, ctx, other, "c", "b", []int{0, 1}, now.Add(time.Minute), now), "leases are in the data, not in the handle")
	require.NoError(t, other.SaveCheckpoints(ctx, store.SaveCheckpointsParams{Consumer: "c", Member: "a", Checkpoints: []store.Checkpoint{{Partition: 0, Position: 2}}}))
	require.Equal(t, []int64{2, 0}, checkpoints(t, ctx, s, "c"))

	require.NoError(t, other.Close())
	more := mustAppend(t, ctx, s, newEvent("shared.item", `3`))[0]
	require.Greater(t, more.Position, stored[2].Position, "closing one handle leaves the other working")
	require.Len(t, readAll(t, ctx, s), 4)
}
