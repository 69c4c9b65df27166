package storetest

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/gomonster/monster"
	"github.com/gomonster/monster/store"
)

// Append stores every field; Read, EventByID and the Append result agree.
func testAppendAndReadEveryField(t *testing.T, b *bundle) {
	ctx, s := b.ctx, b.open()
	full := newEvent("user.bought_shirt", `{"user":"gordon","quantity":2,"tags":["a","b"],"price":19.99}`)
	full.Key = "gordon"
	full.Meta = []byte(`{"source":"web","request":"r-1"}`)
	full.IdempotencyKey = "order-1"
	bare := newEvent("event_1", `"a really cool message"`)
	in := []store.NewEvent{full, bare}

	res, err := s.Append(ctx, in)
	require.NoError(t, err)
	require.Len(t, res, 2)
	for i := range in {
		require.False(t, res[i].Duplicate, "a new event is not a duplicate")
		requireStored(t, in[i], res[i].Event)
	}
	read, err := s.Read(ctx, store.ReadParams{After: 0, Limit: 10})
	require.NoError(t, err)
	require.Len(t, read, 2)
	for i := range in {
		requireSameEvent(t, res[i].Event, read[i])
		byID, err := s.EventByID(ctx, in[i].ID)
		require.NoError(t, err)
		requireSameEvent(t, res[i].Event, byID)
	}

	// The store keeps its own copy: the caller may reuse its buffers.
	full.Data[1], full.Meta[1] = ' ', ' '
	again, err := s.EventByID(ctx, full.ID)
	require.NoError(t, err)
	requireSameJSON(t, []byte(`{"user":"gordon","quantity":2,"tags":["a","b"],"price":19.99}`), again.Data, "data after the caller reused its buffer")
	requireSameJSON(t, []byte(`{"source":"web","request":"r-1"}`), again.Meta, "meta after the caller reused its buffer")
}

// Append refuses, with a "monster: " error naming the problem, an event
// without an ID, a type (or with a control character in it), a time or
// data, whoever calls it (the runtime never sends one; a tool or another
// language's client might), and stores nothing of the batch.
func testAppendRejectsIncompleteEvents(t *testing.T, b *bundle) {
	ctx, s := b.ctx, b.open()
	before := mustAppend(t, ctx, s, newEvent("good.event", "1"))
	for _, tc := range []struct {
		name  string
		spoil func(e *store.NewEvent)
		text  string
	}{
		{"no ID", func(e *store.NewEvent) { e.ID = "" }, "has no ID"},
		{"no type", func(e *store.NewEvent) { e.Type = "" }, "has no type"},
		{"control character in the type", func(e *store.NewEvent) { e.Type = "bad\ntype" }, "control character"},
		{"no time", func(e *store.NewEvent) { e.Time = time.Time{} }, "has no time"},
		{"no data", func(e *store.NewEvent) { e.Data = nil }, "has no data"},
	} {
		bad := newEvent("bad.event", "2")
		tc.spoil(&bad)
		_, err := s.Append(ctx, []store.NewEvent{newEvent("good.event", "3"), bad})
		require.Error(t, err, tc.name)
		require.True(t, strings.HasPrefix(err.Error(), "monster: "), "%s: %q must start with \"monster: \"", tc.name, err.Error())
		require.Contains(t, err.Error(), tc.text, tc.name)
	}
	after, err := s.Read(ctx, store.ReadParams{After: 0, Limit: 100})
	require.NoError(t, err)
	require.Len(t, after, len(before), "a refused batch stored nothing")
	requireSameEvent(t, before[0], after[0])
}

// Positions are positive and strictly increase in slice order and across
// calls; Read returns them in that order.
func testPositionsIncrease(t *testing.T, b *bundle) {
	ctx, s := b.ctx, b.open()
	var last int64
	var all []int64
	for size := 1; size <= 5; size++ {
		for _, e := range mustAppend(t, ctx, s, newEvents("seq.step", size)...) {
			require.Greater(t, e.Position, last, "positions must increase in slice order and across calls")
			last = e.Position
			all = append(all, e.Position)
		}
	}
	head, err := s.Head(ctx)
	require.NoError(t, err)
	require.Equal(t, last, head)
	var read []int64
	for _, e := range readAll(t, ctx, s) {
		read = append(read, e.Position)
	}
	require.Equal(t, all, read, "Read returns every event in position order")
}

// A failed Append stores nothing: a batch with an event ID already stored,
// or repeated within it, fails as a whole.
func testAppendIsAllOrNothing(t *testing.T, b *bundle) {
	ctx, s := b.ctx, b.open()
	first := mustAppend(t, ctx, s, newEvent("order.placed", `1`))[0]

	fresh := newEvent("order.placed", `2`)
	reused := newEvent("order.placed", `3`)
	reused.ID = first.ID
	_, err := s.Append(ctx, []store.NewEvent{fresh, reused})
	require.Error(t, err, "appending an event ID that is already stored must fail")
	_, err = s.EventByID(ctx, fresh.ID)
	require.ErrorIs(t, err, store.ErrNotFound, "the failed batch's other event must not be stored")

	twice := newEvent("order.placed", `4`)
	again := twice
	again.Data = []byte(`5`)
	_, err = s.Append(ctx, []store.NewEvent{twice, again})
	require.Error(t, err, "a batch repeating an event ID must fail")
	_, err = s.EventByID(ctx, twice.ID)
	require.ErrorIs(t, err, store.ErrNotFound)

	head, err := s.Head(ctx)
	require.NoError(t, err)
	require.Equal(t, first.Position, head, "failed appends must not move the head")
	counts, err := s.CountByType(ctx, 0)
	require.NoError(t, err)
	require.Equal(t, map[string]int64{"order.placed": 1}, nonZero(counts))

	next := mustAppend(t, ctx, s, fresh)[0]
	require.Greater(t, next.Position, first.Position, "the store works after failed appends")
	require.Len(t, readAll(t, ctx, s), 2)
}

// Read returns events after a position, at most limit, and an empty result
// (not an error) past the end.
func testReadAfterAndLimit(t *testing.T, b *bundle) {
	ctx, s := b.ctx, b.open()
	empty, err := s.Read(ctx, store.ReadParams{After: 0, Limit: 10})
	require.NoError(t, err)
	require.Empty(t, empty, "an empty store reads as empty")

	stored := mustAppend(t, ctx, s, newEvents("page.item", 10)...)
	pos := func(events []store.Event) []int64 {
		out := make([]int64, len(events))
		for i, e := range events {
			out[i] = e.Position
		}
		return out
	}
	read := func(after int64, limit int) []store.Event {
		t.Helper()
		events, err := s.Read(ctx, store.ReadParams{After: after, Limit: limit})
		require.NoError(t, err)
		return events
	}
	require.Equal(t, pos(stored), pos(read(0, 10)))
	require.Equal(t, pos(stored), pos(read(0, 100)))
	require.Equal(t, pos(stored[:3]), pos(read(0, 3)), "limit caps the result")
	require.Equal(t, pos(stored[3:6]), pos(read(stored[2].Position, 3)), "after excludes its own position")
	require.Equal(t, pos(stored[5:]), pos(read(stored[4].Position, 100)))
	require.Empty(t, read(stored[9].Position, 5), "nothing after the head")
	require.Empty(t, read(stored[9].Position+100, 5), "nothing far after the head")

	var paged []store.Event
	var after int64
	for {
		page := read(after, 1)
		if len(page) == 0 {
			break
		}
		require.Len(t, page, 1)
		paged = append(paged, page...)
		after = page[0].Position
	}
	require.Equal(t, pos(stored), pos(paged), "paging one by one sees every event")
}

// NoSkippedEvents at the store level: while writers in several handles append
// concurrently (and, for stores with SQL transactions, hold transactions
// open for random times and sometimes roll them back), a tailing reader
// sees positions only increase and, in the end, has seen exactly the
// committed events: it never moved past a committed event it had not seen.
func testReadNeverSkips(t *testing.T, b *bundle) {
	ctx, s := b.ctx, b.open()
	writers := []store.Store{s, b.share(s), b.share(s)}
	reader := b.share(s)

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

	var head atomic.Int64
	readerDone := make(chan error, 1)
	seen := map[string]int64{}
	go func() {
		var after int64
		for {
			events, err := reader.Read(ctx, store.ReadParams{After: after, Limit: 7})
			if err != nil {
				readerDone <- err
				return
			}
			for _, e := range events {
				if e.Position <= after {
					readerDone <- fmt.Errorf("Read after %d returned position %d: a reader must never see a position at or before one it passed", after, e.Position)
					return
				}
				after = e.Position
				seen[e.ID] = e.Position
			}
			if target := head.Load(); target > 0 && after >= target && len(events) == 0 {
				readerDone <- nil
				return
			}
			if len(events) == 0 {
				time.Sleep(time.Millisecond) // tailing: poll again
			}
		}
	}()

	var wg sync.WaitGroup
	errs := make(chan error, 64)
	const appenders, appends = 4, 12
	for w := range appenders {
		wg.Go(func() {
			handle := writers[w%len(writers)]
			for i := range appends {
				time.Sleep(rand.N(time.Millisecond)) // writers arrive at random times
				events := newEvents(fmt.Sprintf("load.w%d", w), 1+i%3)
				if _, err := handle.Append(ctx, events); err != nil {
					errs <- err
					return
				}
				record(committed, events)
			}
		})
	}
	if b.sqlTx {
		for w := range 3 {
			wg.Go(func() {
				txs, ok := writers[(w+1)%len(writers)].(store.SQLTxAppender)
				if !ok { // a handle the suite shares itself
					txs = s.(store.SQLTxAppender)
				}
				for i := range 4 {
					if err := holdTx(ctx, txs, i%3 == 2, record, committed, rolledBack); err != nil {
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
	h, err := s.Head(ctx)
	require.NoError(t, err)
	head.Store(h)
	require.NoError(t, receive(t, "the tailing reader to reach the head", readerDone))

	for id := range committed {
		_, ok := seen[id]
		require.True(t, ok, "the tailing reader skipped committed event %s", id)
	}
	for id := range rolledBack {
		_, ok := seen[id]
		require.False(t, ok, "the tailing reader saw event %s of a rolled-back transaction", id)
	}
	require.Len(t, seen, len(committed), "the reader saw events nobody committed")
	require.Len(t, readAll(t, ctx, s), len(committed))
}

// holdTx appends one or two events in a transaction of the store's
// database, holds it open for a random time, and commits or rolls back.
func holdTx(ctx context.Context, txs store.SQLTxAppender, rollback bool,
	record func(map[string]bool, []store.NewEvent), committed, rolledBack map[string]bool) error {
	tx, err := txs.DB().BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	events := newEvents("load.tx", 1+rand.IntN(2))
	if _, err := txs.AppendTx(ctx, tx, events); err != nil {
		_ = tx.Rollback()
		return err
	}
	time.Sleep(rand.N(3 * time.Millisecond)) // the transaction stays open: the point of the test
	if rollback {
		if err := tx.Rollback(); err != nil {
			return err
		}
		record(rolledBack, events)
		return nil
	}
	if err := tx.Commit(); err != nil {
		return err
	}
	record(committed, events)
	return nil
}

// EventByID finds an event, and returns ErrNotFound for an unknown ID.
func testEventByID(t *testing.T, b *bundle) {
	ctx, s := b.ctx, b.open()
	_, err := s.EventByID(ctx, newID())
	requireMonsterError(t, err, store.ErrNotFound, "EventByID on an empty store")

	events := newEvents("lookup.item", 3)
	stored := mustAppend(t, ctx, s, events...)
	for i := range events {
		got, err := s.EventByID(ctx, events[i].ID)
		require.NoError(t, err)
		requireSameEvent(t, stored[i], got)
	}
	_, err = s.EventByID(ctx, newID())
	requireMonsterError(t, err, store.ErrNotFound, "EventByID of an unknown ID")
}

// Head is 0 for an empty log and then the last position.
func testHead(t *testing.T, b *bundle) {
	ctx, s := b.ctx, b.open()
	head, err := s.Head(ctx)
	require.NoError(t, err)
	require.Zero(t, head, "the head of an empty log is 0")
	for range 3 {
		stored := mustAppend(t, ctx, s, newEvents("head.move", 2)...)
		head, err = s.Head(ctx)
		require.NoError(t, err)
		require.Equal(t, stored[1].Position, head)
	}
}

// PositionBefore returns the last position logged strictly before a time.
func testPositionBefore(t *testing.T, b *bundle) {
	ctx, s := b.ctx, b.open()
	base := time.Now().UTC().Truncate(time.Millisecond).Add(-time.Hour)
	p, err := s.PositionBefore(ctx, base)
	require.NoError(t, err)
	require.Zero(t, p, "empty log")

	events := newEvents("clock.tick", 3)
	for i := range events {
		events[i].Time = base.Add(time.Duration(i) * time.Second)
	}
	stored := mustAppend(t, ctx, s, events...)
	for _, tc := range []struct {
		at   time.Time
		want int64
	}{
		{base.Add(-time.Second), 0},
		{base, 0},
		{base.Add(time.Millisecond), stored[0].Position},
		{base.Add(time.Second), stored[0].Position},
		{base.Add(time.Second + time.Millisecond), stored[1].Position},
		{base.Add(2*time.Second + time.Millisecond), stored[2].Position},
		{base.Add(24 * time.Hour), stored[2].Position},
	} {
		got, err := s.PositionBefore(ctx, tc.at)
		require.NoError(t, err)
		require.Equal(t, tc.want, got, "PositionBefore(base%+v)", tc.at.Sub(base))
	}
}

// CountByType counts the whole log (after 0) and the events after a
// position; duplicates refused by idempotency are not counted.
func testCountByType(t *testing.T, b *bundle) {
	ctx, s := b.ctx, b.open()
	counts, err := s.CountByType(ctx, 0)
	require.NoError(t, err)
	require.Empty(t, nonZero(counts), "an empty log has no counts")

	types := []string{"a.x", "b.y", "a.x", "c.z", "b.y", "a.x", "a.x", "b.y"}
	var events []store.NewEvent
	for _, typ := range types {
		events = append(events, newEvent(typ, `{}`))
	}
	events[0].IdempotencyKey = "count-once"
	stored := mustAppend(t, ctx, s, events...)

	countAfter := func(i int) map[string]int64 { // counts of types[i+1:]
		want := map[string]int64{}
		for _, typ := range types[i+1:] {
			want[typ]++
		}
		return want
	}
	check := func(after int64, want map[string]int64) {
		t.Helper()
		got, err := s.CountByType(ctx, after)
		require.NoError(t, err)
		require.Equal(t, want, nonZero(got), "CountByType(%d)", after)
	}
	check(0, countAfter(-1))
	for i := range stored {
		check(stored[i].Position, countAfter(i))
	}

	dup := newEvent("a.x", `{}`)
	dup.IdempotencyKey = "count-once"
	res, err := s.Append(ctx, []store.NewEvent{dup})
	require.NoError(t, err)
	require.True(t, res[0].Duplicate)
	check(0, countAfter(-1))
}

// nonZero drops zero counts, which a store may or may not report.
func nonZero(counts map[string]int64) map[string]int64 {
	out := map[string]int64{}
	for k, v := range counts {
		if v != 0 {
			out[k] = v
		}
	}
	return out
}

// An idempotency key already stored makes Append return the stored event,
// marked Duplicate, and store nothing.
func testIdempotencyAcrossCalls(t *testing.T, b *bundle) {
	ctx, s := b.ctx, b.open()
	first := newEvent("payment.captured", `{"amount":10}`)
	first.IdempotencyKey = "pay-1"
	stored := mustAppend(t, ctx, s, first)[0]

	retry := newEvent("payment.captured", `{"amount":99}`)
	retry.IdempotencyKey = "pay-1"
	res, err := s.Append(ctx, []store.NewEvent{retry})
	require.NoError(t, err)
	require.Len(t, res, 1)
	require.True(t, res[0].Duplicate, "an idempotency key already stored makes a duplicate")
	requireSameEvent(t, stored, res[0].Event)
	_, err = s.EventByID(ctx, retry.ID)
	require.ErrorIs(t, err, store.ErrNotFound, "the duplicate's own ID is not stored")

	other := newEvent("payment.captured", `{"amount":20}`)
	other.IdempotencyKey = "pay-2"
	again := newEvent("payment.captured", `{"amount":10}`)
	again.IdempotencyKey = "pay-1"
	plain := newEvent("payment.captured", `{"amount":30}`)
	res, err = s.Append(ctx, []store.NewEvent{other, again, plain})
	require.NoError(t, err)
	require.Len(t, res, 3)
	require.False(t, res[0].Duplicate)
	require.True(t, res[1].Duplicate)
	require.False(t, res[2].Duplicate)
	requireSameEvent(t, stored, res[1].Event)
	require.Greater(t, res[0].Event.Position, stored.Position)
	require.Greater(t, res[2].Event.Position, res[0].Event.Position)
	require.Len(t, readAll(t, ctx, s), 3, "duplicates are not stored")
}

// Within one batch, a repeated idempotency key makes the later event a
// duplicate of the earlier one.
func testIdempotencyWithinBatch(t *testing.T, b *bundle) {
	ctx, s := b.ctx, b.open()
	a := newEvent("payment.captured", `{"n":1}`)
	a.IdempotencyKey = "same"
	dup := newEvent("payment.captured", `{"n":2}`)
	dup.IdempotencyKey = "same"
	c := newEvent("payment.captured", `{"n":3}`)
	res, err := s.Append(ctx, []store.NewEvent{a, dup, c})
	require.NoError(t, err)
	require.Len(t, res, 3)
	require.False(t, res[0].Duplicate)
	require.True(t, res[1].Duplicate, "the second event with the key is a duplicate of the first")
	require.Equal(t, a.ID, res[1].Event.ID)
	requireSameEvent(t, res[0].Event, res[1].Event)
	require.False(t, res[2].Duplicate)
	require.Greater(t, res[2].Event.Position, res[0].Event.Position)
	all := readAll(t, ctx, s)
	require.Len(t, all, 2)
	require.Equal(t, []string{a.ID, c.ID}, []string{all[0].ID, all[1].ID})
}

// For stores with SQL transactions: an event appended in a transaction is
// invisible until the commit, stored with it, and gone with a rollback; and
// monster.LogTx does the same through the runtime.
func testAppendTx(t *testing.T, b *bundle) {
	if !b.sqlTx {
		t.Skip("the store has no SQL transactions (it does not implement store.SQLTxAppender)")
	}
	ctx, s := b.ctx, b.open()
	txs := s.(store.SQLTxAppender)
	reader := b.share(s)

	tx, err := txs.DB().BeginTx(ctx, nil)
	require.NoError(t, err)
	events := newEvents("tx.item", 2)
	events[0].IdempotencyKey = "tx-1"
	res, err := txs.AppendTx(ctx, tx, events)
	require.NoError(t, err)
	require.Len(t, res, 2)
	require.Greater(t, res[1].Event.Position, res[0].Event.Position)
	pending, err := reader.Read(ctx, store.ReadParams{After: 0, Limit: 10})
	require.NoError(t, err)
	require.Empty(t, pending, "events of an open transaction must be invisible")
	require.NoError(t, tx.Commit())
	all := readAll(t, ctx, reader)
	require.Len(t, all, 2)
	for i := range events {
		requireStored(t, events[i], all[i])
		require.Equal(t, res[i].Event.Position, all[i].Position)
	}

	tx, err = txs.DB().BeginTx(ctx, nil)
	require.NoError(t, err)
	gone := newEvent("tx.item", `"rolled back"`)
	_, err = txs.AppendTx(ctx, tx, []store.NewEvent{gone})
	require.NoError(t, err)
	require.NoError(t, tx.Rollback())
	_, err = s.EventByID(ctx, gone.ID)
	require.ErrorIs(t, err, store.ErrNotFound, "a rolled-back event is not stored")

	tx, err = txs.DB().BeginTx(ctx, nil)
	require.NoError(t, err)
	dup := newEvent("tx.item", `"again"`)
	dup.IdempotencyKey = "tx-1"
	res, err = txs.AppendTx(ctx, tx, []store.NewEvent{dup})
	require.NoError(t, err)
	require.True(t, res[0].Duplicate, "idempotency keys hold inside transactions")
	require.NoError(t, tx.Commit())

	after := mustAppend(t, ctx, s, newEvent("tx.item", `"plain"`))[0]
	require.Greater(t, after.Position, all[1].Position)

	m := b.monster(s, monster.Options{})
	require.NotNil(t, m.DB(), "Monster.DB on a store with SQL transactions")
	tx, err = m.DB().BeginTx(ctx, nil)
	require.NoError(t, err)
	logged, err := m.LogTx(ctx, tx, "tx.logged", map[string]int{"n": 1})
	require.NoError(t, err)
	require.NoError(t, tx.Commit())
	got, err := reader.EventByID(ctx, logged.ID)
	require.NoError(t, err)
	require.Equal(t, logged.Position, got.Position)
	tx, err = m.DB().BeginTx(ctx, nil)
	require.NoError(t, err)
	dropped, err := m.LogTx(ctx, tx, "tx.logged", map[string]int{"n": 2})
	require.NoError(t, err)
	require.NoError(t, tx.Rollback())
	_, err = reader.EventByID(ctx, dropped.ID)
	require.ErrorIs(t, err, store.ErrNotFound)
	require.Len(t, readAll(t, ctx, reader), 4)
}

// For stores that implement store.Notifier: another handle's append is
// notified, and the channel closes when its context ends.
func testNotifications(t *testing.T, b *bundle) {
	ctx, s := b.ctx, b.open()
	n, ok := s.(store.Notifier)
	if !ok {
		t.Skip("the store does not implement store.Notifier")
	}
	if b.h.Share == nil {
		t.Skip("notifications are about other processes; the harness has no Share")
	}
	other := b.share(s)
	listen, stop := context.WithCancel(ctx)
	ch := n.Notifications(listen)
	mustAppend(t, ctx, other, newEvent("notify.me", `1`))
	receive(t, "a notification of another handle's append", ch)
	stop()
	eventually(t, "the notification channel to close", func() bool {
		select {
		case _, open := <-ch:
			return !open
		default:
			return false
		}
	})
}
