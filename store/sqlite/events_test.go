package sqlite_test

import (
	"context"
	"database/sql"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/gomonster/monster/store"
	"github.com/gomonster/monster/store/sqlite"
)

// The SQLite store appends inside the application's transactions; the
// runtime finds that out by type assertion.
func TestOptionalCapabilities(t *testing.T) {
	t.Parallel()
	s, _ := openStore(t)
	var st store.Store = s
	_, isTx := st.(store.SQLTxAppender)
	require.True(t, isTx, "the SQLite store must implement store.SQLTxAppender")
}

func TestAppendReadRoundTrip(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, _ := openStore(t)

	head, err := s.Head(ctx)
	require.NoError(t, err)
	require.Zero(t, head)
	empty, err := s.Read(ctx, store.ReadParams{After: 0, Limit: 10})
	require.NoError(t, err)
	require.NotNil(t, empty)
	require.Empty(t, empty)

	full := store.NewEvent{
		ID:             "0190a6c0-1111-7000-8000-000000000001",
		Type:           "user.bought_shirt",
		Time:           time.Date(2026, 3, 4, 5, 6, 7, 123456789, time.UTC),
		Key:            "gordon",
		Data:           []byte(`{"user":"gordon","quantity":2}`),
		Meta:           []byte(`{"trace":"abc"}`),
		IdempotencyKey: "order-17",
	}
	bare := newEvent("user.login")
	results, err := s.Append(ctx, []store.NewEvent{full, bare})
	require.NoError(t, err)
	require.Equal(t, []store.AppendResult{
		{Event: stored(full, 1)},
		{Event: stored(bare, 2)},
	}, results)

	events, err := s.Read(ctx, store.ReadParams{After: 0, Limit: 10})
	require.NoError(t, err)
	require.Equal(t, []store.Event{stored(full, 1), stored(bare, 2)}, events)
	require.Nil(t, events[1].Meta)

	byID, err := s.EventByID(ctx, full.ID)
	require.NoError(t, err)
	require.Equal(t, stored(full, 1), byID)
	_, err = s.EventByID(ctx, "no-such-id")
	require.ErrorIs(t, err, store.ErrNotFound)
	require.ErrorContains(t, err, `monster: event "no-such-id" not found`)

	head, err = s.Head(ctx)
	require.NoError(t, err)
	require.Equal(t, int64(2), head)

	// Paging: after and limit.
	more := appendAll(t, s, newEvents(20, "user.login"))
	require.Equal(t, int64(3), more[0].Position)
	require.Equal(t, int64(22), more[19].Position)
	page, err := s.Read(ctx, store.ReadParams{After: 5, Limit: 3})
	require.NoError(t, err)
	require.Equal(t, more[3:6], page)
	all := readAll(t, s)
	require.Len(t, all, 22)
	for i, e := range all {
		require.Equal(t, int64(i+1), e.Position)
	}
	none, err := s.Read(ctx, store.ReadParams{After: 22, Limit: 10})
	require.NoError(t, err)
	require.Empty(t, none)
	zero, err := s.Read(ctx, store.ReadParams{After: 0, Limit: 0})
	require.NoError(t, err)
	require.Empty(t, zero)
	_, err = s.Read(ctx, store.ReadParams{After: 0, Limit: -1})
	require.ErrorContains(t, err, "monster: ")
}

func TestAppendEmptyBatch(t *testing.T) {
	t.Parallel()
	s, _ := openStore(t)
	results, err := s.Append(context.Background(), nil)
	require.NoError(t, err)
	require.Empty(t, results)
}

func TestAppendRejectsInvalidEvents(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, _ := openStore(t)
	for name, mutate := range map[string]func(*store.NewEvent){
		"no ID":           func(e *store.NewEvent) { e.ID = "" },
		"no type":         func(e *store.NewEvent) { e.Type = "" },
		"no data":         func(e *store.NewEvent) { e.Data = nil },
		"no time":         func(e *store.NewEvent) { e.Time = time.Time{} },
		"control in type": func(e *store.NewEvent) { e.Type = "a\x1fb" },
		"time too late":   func(e *store.NewEvent) { e.Time = time.Date(2300, 1, 1, 0, 0, 0, 0, time.UTC) },
	} {
		events := newEvents(3, "ok")
		mutate(&events[2])
		_, err := s.Append(ctx, events)
		require.Error(t, err, name)
		require.ErrorContains(t, err, "monster: sqlite append: ", name)
	}
	head, err := s.Head(ctx)
	require.NoError(t, err)
	require.Zero(t, head)
}

// Batches of every size go through the multi-row statements of every
// size; positions must follow slice order.
func TestAppendBatchSizes(t *testing.T) {
	t.Parallel()
	s, _ := openStore(t)
	var want []store.Event
	for _, n := range []int{1, 2, 3, 63, 64, 65, 127, 200} {
		events := newEvents(n, "size.test")
		events[n/2].Key = "k" // one event of the batch needs the full statement
		got := appendAll(t, s, events)
		for i, e := range events {
			require.Equal(t, stored(e, int64(len(want)+i+1)), got[i])
		}
		want = append(want, got...)
	}
	require.Equal(t, want, readAll(t, s))
}

func TestAppendIdempotency(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, _ := openStore(t)

	first := newEvent("order.placed")
	first.IdempotencyKey = "order-1"
	results, err := s.Append(ctx, []store.NewEvent{first})
	require.NoError(t, err)
	require.False(t, results[0].Duplicate)

	// A retry with a new ID but the same key returns the stored event.
	retry := newEvent("order.placed")
	retry.IdempotencyKey = "order-1"
	other := newEvent("order.placed")
	results, err = s.Append(ctx, []store.NewEvent{retry, other})
	require.NoError(t, err)
	require.Equal(t, store.AppendResult{Event: stored(first, 1), Duplicate: true}, results[0])
	require.Equal(t, store.AppendResult{Event: stored(other, 2)}, results[1])

	// Within one batch: the second use of a key repeats the first.
	a := newEvent("order.placed")
	a.IdempotencyKey = "order-2"
	b := newEvent("order.placed")
	b.IdempotencyKey = "order-2"
	c := newEvent("order.placed")
	results, err = s.Append(ctx, []store.NewEvent{a, c, b})
	require.NoError(t, err)
	require.Equal(t, []store.AppendResult{
		{Event: stored(a, 3)},
		{Event: stored(c, 4)},
		{Event: stored(a, 3), Duplicate: true},
	}, results)

	require.Len(t, readAll(t, s), 4)
	counts, err := s.CountByType(ctx, 0)
	require.NoError(t, err)
	require.Equal(t, map[string]int64{"order.placed": 4}, counts)
}

func TestAppendIsAtomic(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, _ := openStore(t)
	kept := appendAll(t, s, newEvents(3, "kept"))

	// A batch that repeats an event ID far into it: the rows before the
	// repeat were inserted when it fails, and must be rolled back.
	batch := newEvents(600, "lost")
	batch[550].ID = batch[2].ID
	_, err := s.Append(ctx, batch)
	require.ErrorIs(t, err, store.ErrConflict)
	require.EqualError(t, err, `monster: sqlite append: event ID "`+batch[2].ID+`" appears twice in the batch`)

	// An ID already stored.
	batch = newEvents(10, "lost")
	batch[9].ID = kept[1].ID
	_, err = s.Append(ctx, batch)
	require.ErrorIs(t, err, store.ErrConflict)
	require.EqualError(t, err, `monster: sqlite append: event ID "`+kept[1].ID+`" is already stored`)

	// A cancelled context.
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	_, err = s.Append(cancelled, newEvents(10, "lost"))
	require.ErrorIs(t, err, context.Canceled)

	require.Equal(t, kept, readAll(t, s))
	counts, err := s.CountByType(ctx, 0)
	require.NoError(t, err)
	require.Equal(t, map[string]int64{"kept": 3}, counts)

	// The store still works, and positions continue without a hole.
	next := appendAll(t, s, newEvents(2, "kept"))
	require.Equal(t, int64(4), next[0].Position)
}

func TestPositionBefore(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, _ := openStore(t)
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	events := newEvents(5, "t")
	for i := range events {
		events[i].Time = base.Add(time.Duration(i) * time.Minute)
	}
	// Another process's clock was behind: event 5 is logged "before" 4.
	events[4].Time = base.Add(150 * time.Second)
	appendAll(t, s, events)

	for _, tc := range []struct {
		t    time.Time
		want int64
	}{
		{base, 0},
		{base.Add(time.Nanosecond), 1},
		{base.Add(time.Minute), 1},
		{base.Add(90 * time.Second), 2},
		{base.Add(151 * time.Second), 5},
		{base.Add(time.Hour), 5},
		{time.Time{}, 0},
		{time.Date(3000, 1, 1, 0, 0, 0, 0, time.UTC), 5},
	} {
		got, err := s.PositionBefore(ctx, tc.t)
		require.NoError(t, err)
		require.Equal(t, tc.want, got, "before %v", tc.t)
	}
}

func TestCountByType(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, _ := openStore(t)
	empty, err := s.CountByType(ctx, 0)
	require.NoError(t, err)
	require.Empty(t, empty)

	appendAll(t, s, newEvents(10, "a"))
	appendAll(t, s, newEvents(5, "b"))
	appendAll(t, s, newEvents(5, "a"))

	for after, want := range map[int64]map[string]int64{
		0:  {"a": 15, "b": 5},
		3:  {"a": 12, "b": 5}, // counted as the whole log minus the first 3
		12: {"a": 5, "b": 3},  // counted from position 12 on
		15: {"a": 5},
		20: {},
	} {
		got, err := s.CountByType(ctx, after)
		require.NoError(t, err)
		require.Equal(t, want, got, "after %d", after)
	}
}

func TestAppendTx(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, _ := openStore(t)
	db := s.DB()
	_, err := db.ExecContext(ctx, `CREATE TABLE orders (id TEXT PRIMARY KEY)`)
	require.NoError(t, err)

	// Committed: the application's row and the event both exist.
	committed := newEvent("order.placed")
	tx, err := db.BeginTx(ctx, nil)
	require.NoError(t, err)
	_, err = tx.ExecContext(ctx, `INSERT INTO orders (id) VALUES ('o1')`)
	require.NoError(t, err)
	results, err := s.AppendTx(ctx, tx, []store.NewEvent{committed})
	require.NoError(t, err)
	require.Equal(t, stored(committed, 1), results[0].Event)
	require.NoError(t, tx.Commit())

	got, err := s.EventByID(ctx, committed.ID)
	require.NoError(t, err)
	require.Equal(t, stored(committed, 1), got)

	// Rolled back: neither exists, and the position is not burnt.
	rolledBack := newEvent("order.placed")
	tx, err = db.BeginTx(ctx, nil)
	require.NoError(t, err)
	_, err = tx.ExecContext(ctx, `INSERT INTO orders (id) VALUES ('o2')`)
	require.NoError(t, err)
	_, err = s.AppendTx(ctx, tx, []store.NewEvent{rolledBack})
	require.NoError(t, err)
	require.NoError(t, tx.Rollback())

	_, err = s.EventByID(ctx, rolledBack.ID)
	require.ErrorIs(t, err, store.ErrNotFound)
	var orders int
	require.NoError(t, db.QueryRowContext(ctx, `SELECT count(*) FROM orders`).Scan(&orders))
	require.Equal(t, 1, orders)
	counts, err := s.CountByType(ctx, 0)
	require.NoError(t, err)
	require.Equal(t, map[string]int64{"order.placed": 1}, counts)
	next := appendAll(t, s, []store.NewEvent{newEvent("order.placed")})
	require.Equal(t, int64(2), next[0].Position)
}

// A failed AppendTx leaves the caller's transaction open and as it was
// before the call, even though part of the batch had been inserted.
func TestAppendTxFailureKeepsCallerTx(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, _ := openStore(t)
	kept := appendAll(t, s, newEvents(1, "kept"))

	tx, err := s.DB().BeginTx(ctx, nil)
	require.NoError(t, err)
	first := newEvents(3, "tx")
	_, err = s.AppendTx(ctx, tx, first)
	require.NoError(t, err)
	batch := newEvents(100, "lost")
	batch[99].ID = kept[0].ID
	_, err = s.AppendTx(ctx, tx, batch)
	require.ErrorIs(t, err, store.ErrConflict)
	require.EqualError(t, err, `monster: sqlite append: event ID "`+kept[0].ID+`" is already stored`)
	require.NoError(t, tx.Commit())

	all := readAll(t, s)
	require.Len(t, all, 4)
	for i, e := range first {
		require.Equal(t, stored(e, int64(i+2)), all[i+1])
	}
}

func TestAppendTxFromAnotherDB(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, path := openStore(t)
	other, err := sql.Open("sqlite", path)
	require.NoError(t, err)
	defer other.Close()
	tx, err := other.BeginTx(ctx, nil)
	require.NoError(t, err)
	defer tx.Rollback()
	_, err = s.AppendTx(ctx, tx, newEvents(1, "x"))
	require.ErrorContains(t, err, "monster: sqlite append: the transaction was not begun on the store's DB()")
}

func TestClosedStore(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "closed.db"), nil)
	require.NoError(t, err)
	require.NoError(t, s.Close())

	checks := map[string]error{
		"Close": s.Close(),
	}
	_, checks["Append"] = s.Append(ctx, newEvents(1, "x"))
	_, checks["Read"] = s.Read(ctx, store.ReadParams{After: 0, Limit: 10})
	_, checks["EventByID"] = s.EventByID(ctx, "x")
	_, checks["Head"] = s.Head(ctx)
	_, checks["PositionBefore"] = s.PositionBefore(ctx, time.Now())
	_, checks["CountByType"] = s.CountByType(ctx, 0)
	_, checks["RegisterConsumer"] = s.RegisterConsumer(ctx, store.ConsumerSpec{Name: "c", Partitions: 1})
	_, checks["Consumer"] = s.Consumer(ctx, "c")
	_, checks["Consumers"] = s.Consumers(ctx)
	checks["DeleteConsumer"] = s.DeleteConsumer(ctx, "c")
	_, checks["Heartbeat"] = s.Heartbeat(ctx, store.HeartbeatParams{Consumer: "c", Member: "m", Expires: time.Now(), Now: time.Now()})
	checks["Leave"] = s.Leave(ctx, store.LeaveParams{Consumer: "c", Member: "m"})
	_, checks["Claim"] = s.Claim(ctx, store.ClaimParams{Consumer: "c", Member: "m", Partitions: []int{0}, Expires: time.Now(), Now: time.Now()})
	checks["Release"] = s.Release(ctx, store.ReleaseParams{Consumer: "c", Member: "m", Partitions: []int{0}})
	checks["SaveCheckpoints"] = s.SaveCheckpoints(ctx, store.SaveCheckpointsParams{Consumer: "c", Member: "m", Checkpoints: nil})
	checks["ResetConsumer"] = s.ResetConsumer(ctx, store.ResetConsumerParams{Consumer: "c", Position: 0})
	checks["AddDeadLetter"] = s.AddDeadLetter(ctx, store.DeadLetter{Consumer: "c", EventID: "e"})
	_, checks["DeadLetters"] = s.DeadLetters(ctx, store.DeadLetterQuery{Consumer: "c"})
	_, checks["RequestRetry"] = s.RequestRetry(ctx, store.DeadLetterSelection{Consumer: "c", IDs: nil})
	_, checks["DeleteDeadLetters"] = s.DeleteDeadLetters(ctx, store.DeadLetterSelection{Consumer: "c", IDs: nil})
	_, checks["AppendTx"] = s.AppendTx(ctx, &sql.Tx{}, newEvents(1, "x"))
	for method, err := range checks {
		require.ErrorContains(t, err, "store is closed", method)
		require.Regexp(t, `^monster: sqlite `, err.Error(), method)
	}
}

// Errors of every kind say "monster: " first.
func TestErrorMessages(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, _ := openStore(t)
	_, err := s.Consumer(ctx, "nobody")
	require.ErrorIs(t, err, store.ErrNotFound)
	require.EqualError(t, err, `monster: consumer "nobody" not found`)
	_, err = sqlite.Open(ctx, "", nil)
	require.EqualError(t, err, "monster: sqlite open: empty path")
	_, err = sqlite.Open(ctx, filepath.Join(t.TempDir(), "no", "such", "dir", "x.db"), nil)
	require.Regexp(t, `^monster: sqlite open ".*x.db": `, err.Error())
	_, err = sqlite.Open(ctx, ":memory:", nil)
	require.Regexp(t, `^monster: sqlite open ":memory:": `, err.Error())
	_, err = sqlite.Open(ctx, filepath.Join(t.TempDir(), "x.db"), &sqlite.Options{BusyTimeout: -time.Second})
	require.Regexp(t, `^monster: sqlite options: `, err.Error())
}

// Writes whose context ends while they run either happen or not, and leave
// the store working: the store writes on one connection, which must never
// be left inside a transaction.
func TestCancelledWritesLeaveStoreUsable(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, _ := openStore(t)
	_, err := s.RegisterConsumer(ctx, store.ConsumerSpec{Name: "c", Partitions: 1})
	require.NoError(t, err)
	_, err = s.Claim(ctx, store.ClaimParams{Consumer: "c", Member: "m", Partitions: []int{0}, Expires: t0.Add(time.Hour), Now: t0})
	require.NoError(t, err)
	for i := range 300 {
		callCtx, cancel := context.WithCancel(ctx)
		go cancel() // lands at a different moment of the call each time
		event := newEvent("cancel.me")
		if i%2 == 0 {
			_, err := s.Append(callCtx, []store.NewEvent{event})
			_, lookErr := s.EventByID(ctx, event.ID)
			if err == nil {
				require.NoError(t, lookErr, "Append %d returned nil but stored nothing", i)
			} else {
				require.ErrorIs(t, lookErr, store.ErrNotFound, "Append %d failed (%v) but stored its event", i, err)
			}
		} else {
			_ = s.SaveCheckpoints(callCtx, store.SaveCheckpointsParams{Consumer: "c", Member: "m", Checkpoints: []store.Checkpoint{{Partition: 0, Position: int64(i)}}})
		}
		_, err := s.Heartbeat(ctx, store.HeartbeatParams{Consumer: "c", Member: "m", Expires: t0.Add(time.Hour), Now: t0})
		require.NoError(t, err, "a write after call %d", i)
	}
}
