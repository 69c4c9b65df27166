package storetest

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/gomonster/monster"
	"github.com/gomonster/monster/store"
)

// AtLeastOnce (with backfill: a new consumer starts at the beginning): every committed event that matches the
// subscription (exact names and globs) reaches the handler, whether it was
// logged before the consumer existed or while it runs, with every field as
// logged; events of other types do not.
func testEveryMatchingEventHandled(t *testing.T, b *bundle) {
	ctx, s := b.ctx, b.open()
	m := b.monster(s, monster.Options{})
	types := []string{"user.signed_up", "user.bought_shirt", "order.placed", "audit.noise", "user.profile.updated"}
	logged := map[string]monster.RawEvent{}
	var mu sync.Mutex
	logOne := func(i int) error {
		ev, err := m.Log(ctx, types[i%len(types)], map[string]int{"n": i},
			monster.WithKey(fmt.Sprintf("k%d", i%3)), monster.WithMeta("n", fmt.Sprint(i)))
		if err == nil {
			mu.Lock()
			logged[ev.ID] = ev
			mu.Unlock()
		}
		return err
	}
	for i := range 10 {
		require.NoError(t, logOne(i), "history")
	}

	d := newDeliveries()
	b.consume(m, "audit", monster.Route(monster.Match("user.*", d.handle), monster.Match("order.placed", d.handle)),
		&monster.ConsumerOptions{Concurrency: 4, Partitions: 4})
	b.start(m)
	var wg sync.WaitGroup
	errs := make(chan error, 20)
	for w := range 4 {
		wg.Go(func() {
			for i := range 5 {
				errs <- logOne(10 + w*5 + i)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err, "live")
	}

	var want []string
	for id, ev := range logged {
		if ev.Type != "audit.noise" {
			want = append(want, id)
		}
	}
	require.Len(t, want, 24)
	d.waitFor(t, "every matching event", want)
	for _, got := range d.all() {
		ev, ok := logged[got.ID]
		require.True(t, ok, "handled an event nobody logged: %s", got.ID)
		require.NotEqual(t, "audit.noise", got.Type, "handled an event the consumer does not subscribe to")
		require.Equal(t, ev.Type, got.Type)
		require.Equal(t, ev.Position, got.Position)
		require.Equal(t, ev.Key, got.Key)
		require.Equal(t, ev.Meta, got.Meta)
		requireSameTime(t, ev.Time, got.Time, "Time")
		requireSameJSON(t, ev.Data, got.Data, "Data")
		require.Equal(t, 1, got.Attempt, "first delivery")
	}
	head, err := s.Head(ctx)
	require.NoError(t, err)
	eventually(t, "the consumer's checkpoints to reach the head", func() bool { return caughtUp(ctx, s, "audit", head) })
	stats, err := m.ConsumerStats(ctx, "audit")
	require.NoError(t, err)
	require.Zero(t, stats.Lag)
}

// AtLeastOnce: a crash between handling and checkpointing only causes
// redelivery. Member a handles every event, but its checkpoints never
// reach the store, and then it crashes (no checkpoint, no release: its
// store calls fail). Member b, a new process on the same data, handles
// every event again once a's leases expire.
func testCrashBeforeCheckpointRedelivers(t *testing.T, b *bundle) {
	ctx, s := b.ctx, b.open()
	ttl := b.ttl(500 * time.Millisecond)
	var crashed atomic.Bool
	crashA := crashable(&crashed)
	storeA := &hookStore{inner: b.share(s), before: func(ctx context.Context, method string) error {
		if err := crashA(ctx, method); err != nil {
			return err
		}
		if method == "SaveCheckpoints" {
			return errors.New("storetest: the process dies before its checkpoint is written")
		}
		return nil
	}}
	a := b.monster(storeA.wrap(), monster.Options{MemberID: "a", LeaseTTL: ttl})
	opts := &monster.ConsumerOptions{Partitions: 4, Concurrency: 2}
	handledA := newDeliveries()
	b.consume(a, "c", monster.Match("job.*", handledA.handle), opts)
	events := logN(t, ctx, a, "job.run", 20, monster.WithKey("same"))
	events = append(events, logN(t, ctx, a, "job.other", 10)...)
	stopA := b.start(a)
	handledA.waitFor(t, "member a to handle every event", idsOf(events))
	require.Equal(t, []int64{0, 0, 0, 0}, checkpoints(t, ctx, s, "c"), "no checkpoint reached the store")
	crashed.Store(true)
	_ = stopA() // the process is gone: nothing it does reaches the store

	bm := b.monster(b.share(s), monster.Options{MemberID: "b", LeaseTTL: ttl})
	handledB := newDeliveries()
	b.consume(bm, "c", monster.Match("job.*", handledB.handle), opts)
	b.start(bm)
	handledB.waitFor(t, "member b to handle again every event a handled but did not checkpoint", idsOf(events))
	last := events[len(events)-1].Position
	eventually(t, "member b's checkpoints to pass the last event", func() bool { return caughtUp(ctx, s, "c", last) })
}

// AtLeastOnce: a crash while handlers are running loses nothing. Member a
// saves checkpoints as it goes, but two events hang in their handlers when
// it crashes; its checkpoints must not have passed them, so member b
// handles them once a's leases expire.
func testCrashWhileHandlingRedelivers(t *testing.T, b *bundle) {
	ctx, s := b.ctx, b.open()
	ttl := b.ttl(500 * time.Millisecond)
	var crashed atomic.Bool
	storeA := &hookStore{inner: b.share(s), before: crashable(&crashed)}
	a := b.monster(storeA.wrap(), monster.Options{MemberID: "a", LeaseTTL: ttl})
	release := make(chan struct{})
	var releaseOnce sync.Once
	var hanging atomic.Int64
	handledA := newDeliveries()
	opts := &monster.ConsumerOptions{Partitions: 2, Concurrency: 4}
	b.consume(a, "c", monster.Match("*", func(ctx context.Context, e monster.RawEvent) error {
		if string(e.Data) == `"hang"` {
			hanging.Add(1)
			select {
			case <-release:
			case <-ctx.Done():
			}
			return errors.New("storetest: the process died under this handler")
		}
		handledA.add(e)
		return nil
	}), opts)
	var events []monster.RawEvent
	for i := range 10 {
		data := "work"
		if i == 3 || i == 7 {
			data = "hang"
		}
		ev, err := a.Log(ctx, "job.run", data, monster.WithKey(fmt.Sprintf("key-%d", i)))
		require.NoError(t, err)
		events = append(events, ev)
	}
	b.start(a)
	t.Cleanup(func() { releaseOnce.Do(func() { close(release) }) }) // before a stops
	eventually(t, "both hanging events to start", func() bool { return hanging.Load() == 2 })
	var done []string
	for i, ev := range events {
		if i != 3 && i != 7 {
			done = append(done, ev.ID)
		}
	}
	handledA.waitFor(t, "member a to handle the other events", done)
	eventually(t, "member a to save progress", func() bool {
		for _, cp := range checkpoints(t, ctx, s, "c") {
			if cp > 0 {
				return true
			}
		}
		return false
	})
	crashed.Store(true)

	bm := b.monster(b.share(s), monster.Options{MemberID: "b", LeaseTTL: ttl})
	handledB := newDeliveries()
	b.consume(bm, "c", monster.Match("*", handledB.handle), opts)
	b.start(bm)
	handledB.waitFor(t, "member b to handle the events that were in flight when a crashed", []string{events[3].ID, events[7].ID})
	eventually(t, "member b's checkpoints to pass the last event", func() bool { return caughtUp(ctx, s, "c", events[9].Position) })
}

// After a clean stop (checkpoints saved, partitions released), the consumer
// resumes where it left off in a new process: the new member handles the
// new events and none of the old ones.
func testCleanRestartResumes(t *testing.T, b *bundle) {
	ctx, s := b.ctx, b.open()
	opts := &monster.ConsumerOptions{Partitions: 4, Concurrency: 2}
	a := b.monster(b.share(s), monster.Options{MemberID: "a"})
	handledA := newDeliveries()
	b.consume(a, "c", monster.Match("*", handledA.handle), opts)
	old := logN(t, ctx, a, "job.run", 10)
	stopA := b.start(a)
	handledA.waitFor(t, "member a to handle the first events", idsOf(old))
	require.NoError(t, stopA(), "a clean stop")
	info, err := s.Consumer(ctx, "c")
	require.NoError(t, err)
	for _, p := range info.Partitions {
		require.GreaterOrEqual(t, p.Checkpoint, old[9].Position, "a clean stop saves every checkpoint (partition %d)", p.Partition)
		require.Empty(t, p.Owner, "a clean stop releases partition %d", p.Partition)
	}

	bm := b.monster(b.share(s), monster.Options{MemberID: "b"})
	handledB := newDeliveries()
	b.consume(bm, "c", monster.Match("*", handledB.handle), opts)
	fresh := logN(t, ctx, bm, "job.run", 5)
	b.start(bm)
	handledB.waitFor(t, "member b to handle the new events", idsOf(fresh))
	for _, ev := range old {
		require.Zero(t, handledB.times(ev.ID), "an event checkpointed before a clean stop was handled again")
	}
}

// A new consumer starts where StartAt says: the beginning (backfill), the
// end, a position (inclusive) or a time (the first event at or after it).
func testStartPositions(t *testing.T, b *bundle) {
	ctx, s := b.ctx, b.open()
	m := b.monster(s, monster.Options{})
	history := logN(t, ctx, m, "tick", 5)
	starts := map[string]monster.StartPosition{
		"from-beginning": monster.Beginning,
		"from-end":       monster.End,
		"from-position":  monster.AtPosition(history[2].Position),
		"from-time":      monster.AtTime(history[3].Time),
	}
	handled := map[string]*deliveries{}
	for name, start := range starts {
		handled[name] = newDeliveries()
		b.consume(m, name, monster.Match("tick", handled[name].handle), &monster.ConsumerOptions{StartAt: start, Partitions: 2})
	}
	b.start(m)
	for name := range starts {
		eventually(t, "consumer "+name+" to register", func() bool {
			_, err := s.Consumer(ctx, name)
			return err == nil
		})
	}
	later := logN(t, ctx, m, "tick", 1)[0]
	want := map[string][]monster.RawEvent{
		"from-beginning": append(history, later),
		"from-end":       {later},
		"from-position":  append(history[2:], later),
		"from-time":      append(history[3:], later),
	}
	for name, events := range want {
		handled[name].waitFor(t, "consumer "+name, idsOf(events))
	}
	for name, events := range want {
		require.Equal(t, len(events), handled[name].distinct(), "consumer %s handled events before its start", name)
	}
}

// ResetConsumer on a running consumer whose checkpoints are saved: every
// event is handled again.
func testResetAfterCheckpointReplays(t *testing.T, b *bundle) {
	ctx, s := b.ctx, b.open()
	m := b.monster(s, monster.Options{LeaseTTL: b.ttl(300 * time.Millisecond)})
	d := newDeliveries()
	b.consume(m, "c", monster.Match("*", d.handle), &monster.ConsumerOptions{Partitions: 2})
	events := logN(t, ctx, m, "replay.me", 6)
	b.start(m)
	d.waitFor(t, "the first pass", idsOf(events))
	eventually(t, "checkpoints to be saved", func() bool { return caughtUp(ctx, s, "c", events[5].Position) })
	require.NoError(t, m.ResetConsumer(ctx, "c", monster.Beginning))
	eventually(t, "every event to be handled again after ResetConsumer(Beginning)", func() bool {
		for _, ev := range events {
			if d.times(ev.ID) < 2 {
				return false
			}
		}
		return true
	})
}

// ResetConsumer on a running consumer that has handled events but not yet
// saved a checkpoint (Options.CheckpointInterval is long): the reset must
// not be lost. With one partition and one worker, the replay of the reset
// events must come before an event logged after the member has renewed its
// leases twice since the reset.
func testResetBeforeCheckpointReplays(t *testing.T, b *bundle) {
	ctx, s := b.ctx, b.open()
	var claims atomic.Int64
	watched := &hookStore{inner: s, afterClaim: func(string, []store.PartitionInfo) { claims.Add(1) }}
	m := b.monster(watched.wrap(), monster.Options{LeaseTTL: b.ttl(300 * time.Millisecond), CheckpointInterval: time.Hour})
	d := newDeliveries()
	b.consume(m, "c", monster.Match("*", d.handle), &monster.ConsumerOptions{Partitions: 1, Concurrency: 1})
	events := logN(t, ctx, m, "replay.me", 6)
	b.start(m)
	d.waitFor(t, "the first pass", idsOf(events))

	// A slow store may let the 300 ms lease lapse once, and the member
	// then replays from its (unsaved) checkpoint on its own; that is
	// at-least-once, not a lost reset. What must hold is that every event
	// is handled again after the reset, before the marker logged after it
	// (one partition, one worker: in order).
	before := make(map[string]int, len(events))
	for _, ev := range events {
		before[ev.ID] = d.times(ev.ID)
	}
	require.NoError(t, m.ResetConsumer(ctx, "c", monster.Beginning))
	seen := claims.Load()
	eventually(t, "two lease renewals after the reset", func() bool { return claims.Load() >= seen+2 })
	marker := logN(t, ctx, m, "replay.marker", 1)[0]
	d.waitFor(t, "the event logged after the reset", []string{marker.ID})
	for _, ev := range events {
		require.Greater(t, d.times(ev.ID), before[ev.ID],
			"event %d was not handled again: ResetConsumer(Beginning) was lost because the member had not saved a checkpoint yet", ev.Position)
	}
}

// NoSkippedEvents through the runtime: many writers (goroutines of this
// process, another process's Monster, and, for SQL stores, transactions
// held open for random times, some rolled back) log while a consumer tails
// and a reader on another handle tails the raw log. The consumer handles
// every committed event and no rolled-back one; the reader never sees a
// position at or before one it passed, and sees every committed event.
func testConsumerTailsConcurrentWriters(t *testing.T, b *bundle) {
	ctx, s := b.ctx, b.open()
	m := b.monster(s, monster.Options{MemberID: "tail"})
	other := b.monster(b.share(s), monster.Options{MemberID: "writer"})
	d := newDeliveries()
	b.consume(m, "tail", monster.Match("load.*", d.handle), &monster.ConsumerOptions{Concurrency: 4, Partitions: 4})
	b.start(m)

	tailer := b.share(s)
	var target atomic.Int64
	seen := map[string]bool{}
	tailDone := make(chan error, 1)
	go func() {
		var after int64
		for {
			events, err := tailer.Read(ctx, store.ReadParams{After: after, Limit: 13})
			if err != nil {
				tailDone <- err
				return
			}
			for _, e := range events {
				if e.Position <= after {
					tailDone <- fmt.Errorf("storetest: Read after %d returned position %d", after, e.Position)
					return
				}
				after = e.Position
				seen[e.ID] = true
			}
			if len(events) == 0 {
				if end := target.Load(); end > 0 && after >= end {
					tailDone <- nil
					return
				}
				time.Sleep(time.Millisecond) // tailing: poll again
			}
		}
	}()

	var mu sync.Mutex
	committed := map[string]bool{}
	rolledBack := map[string]bool{}
	record := func(set map[string]bool, events []store.NewEvent) {
		mu.Lock()
		defer mu.Unlock()
		for _, e := range events {
			set[e.ID] = true
		}
	}
	errs := make(chan error, 100)
	var wg sync.WaitGroup
	writer := func(w *monster.Monster, typ string) {
		for i := range 12 {
			time.Sleep(rand.N(2 * time.Millisecond)) // writers arrive at random times
			ev, err := w.Log(ctx, typ, i, monster.WithKey(fmt.Sprintf("k%d", rand.IntN(5))))
			if err != nil {
				errs <- err
				return
			}
			mu.Lock()
			committed[ev.ID] = true
			mu.Unlock()
		}
	}
	for range 4 {
		wg.Go(func() { writer(m, "load.local") })
	}
	for range 2 {
		wg.Go(func() { writer(other, "load.remote") })
	}
	if b.sqlTx {
		txHandle := b.share(s)
		txs, ok := txHandle.(store.SQLTxAppender)
		if !ok {
			txs = s.(store.SQLTxAppender)
		}
		for range 3 {
			wg.Go(func() {
				for i := range 4 {
					if err := holdTx(ctx, txs, i%3 == 1, record, committed, rolledBack); err != nil {
						errs <- err
						return
					}
				}
			})
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	var want []string
	for id := range committed {
		want = append(want, id)
	}
	d.waitFor(t, "the consumer to handle every committed event", want)
	head, err := s.Head(ctx)
	require.NoError(t, err)
	target.Store(head)
	require.NoError(t, receive(t, "the tailing reader to reach the head", tailDone))
	for id := range committed {
		require.True(t, seen[id], "the tailing reader skipped committed event %s", id)
	}
	for id := range rolledBack {
		require.Zero(t, d.times(id), "the consumer handled event %s of a rolled-back transaction", id)
		require.False(t, seen[id], "the reader saw event %s of a rolled-back transaction", id)
	}
	require.Len(t, seen, len(committed))
	require.Equal(t, len(committed), d.distinct())
	eventually(t, "the consumer's checkpoints to reach the head", func() bool { return caughtUp(ctx, s, "tail", head) })
}
