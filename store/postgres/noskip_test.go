package postgres_test

import (
	"context"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/gomonster/monster/store"
	"github.com/gomonster/monster/store/postgres"
)

// noSkipTrials is how many trials TestNoSkippedEvents runs: a few by
// default, 1,000 for the long form (-noskip.trials=1000, or
// MONSTER_NOSKIP_TRIALS=1000).
var noSkipTrials = flag.Int("noskip.trials", envInt("MONSTER_NOSKIP_TRIALS", 5), "trials of TestNoSkippedEvents")

func envInt(name string, def int) int {
	if n, err := strconv.Atoi(os.Getenv(name)); err == nil && n > 0 {
		return n
	}
	return def
}

func newEvent(typ, data string) store.NewEvent {
	return store.NewEvent{ID: uuid.Must(uuid.NewV7()).String(), Type: typ, Time: time.Now().UTC(), Data: []byte(data)}
}

func newEvents(typ string, n int) []store.NewEvent {
	out := make([]store.NewEvent, n)
	for i := range out {
		out[i] = newEvent(typ, strconv.Itoa(i))
	}
	return out
}

// ledger records which events writers committed and rolled back.
type ledger struct {
	mu                    sync.Mutex
	committed, rolledBack map[string]bool
}

func newLedger() *ledger {
	return &ledger{committed: map[string]bool{}, rolledBack: map[string]bool{}}
}

func (l *ledger) record(committed bool, events []store.NewEvent) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, e := range events {
		if committed {
			l.committed[e.ID] = true
		} else {
			l.rolledBack[e.ID] = true
		}
	}
}

// TestNoSkippedEvents is the no-skip rule under the worst the store meets:
// in each trial, writers on three handles (three pools, as three processes
// would have) append on their own and inside application transactions —
// database/sql and pgx — that they hold open for random times and commit
// or roll back, while a reader on a fourth handle tails the log. The
// reader must see every committed event, none rolled back, and positions
// only ever increasing.
func TestNoSkippedEvents(t *testing.T) {
	t.Parallel()
	schema := newSchema(t)
	handles := []*postgres.Store{openStore(t, schema), openStore(t, schema), openStore(t, schema)}
	reader := openStore(t, schema)
	ctx := t.Context()
	var after int64 // the reader's position, carried across trials
	for trial := range *noSkipTrials {
		after = noSkipTrial(t, ctx, handles, reader, after, trial)
		if t.Failed() {
			return
		}
	}
	t.Logf("%d trials, head %d", *noSkipTrials, after)
}

func noSkipTrial(t *testing.T, ctx context.Context, handles []*postgres.Store, reader *postgres.Store, after int64, trial int) int64 {
	l := newLedger()
	writersDone := make(chan struct{})
	type result struct {
		after int64
		seen  map[string]int64
		err   error
	}
	readerDone := make(chan result, 1)
	go func() {
		seen := map[string]int64{}
		last := after
		finishing := false
		for {
			events, err := reader.Read(ctx, store.ReadParams{After: last, Limit: 5})
			if err != nil {
				readerDone <- result{err: err}
				return
			}
			for _, e := range events {
				if e.Position <= last {
					readerDone <- result{err: fmt.Errorf("trial %d: Read after %d returned position %d", trial, last, e.Position)}
					return
				}
				last = e.Position
				seen[e.ID] = e.Position
			}
			if len(events) > 0 {
				continue
			}
			if finishing {
				readerDone <- result{after: last, seen: seen}
				return
			}
			select {
			case <-writersDone:
				// Every writer has finished: one more pass to the end.
				finishing = true
			default:
				time.Sleep(200 * time.Microsecond) // tailing: poll again
			}
		}
	}()

	var wg sync.WaitGroup
	errs := make(chan error, 32)
	hold := func() { time.Sleep(rand.N(4 * time.Millisecond)) } // the point: transactions stay open
	for w := range 4 {
		wg.Go(func() { // plain appends, one commit each
			h := handles[w%len(handles)]
			for range 6 {
				time.Sleep(rand.N(time.Millisecond))
				events := newEvents("plain", 1+rand.IntN(3))
				if _, err := h.Append(ctx, events); err != nil {
					errs <- err
					return
				}
				l.record(true, events)
			}
		})
	}
	for w := range 3 {
		wg.Go(func() { // database/sql transactions
			h := handles[(w+1)%len(handles)]
			for range 3 {
				if err := holdSQLTx(ctx, h, rand.IntN(3) == 0, hold, l); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	for w := range 3 {
		wg.Go(func() { // pgx transactions
			h := handles[(w+2)%len(handles)]
			for range 3 {
				if err := holdPgxTx(ctx, h, rand.IntN(3) == 0, hold, l); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(writersDone)
	close(errs)
	for err := range errs {
		require.NoError(t, err, "trial %d", trial)
	}
	var r result
	select {
	case r = <-readerDone:
	case <-time.After(30 * time.Second):
		t.Fatalf("trial %d: the reader did not reach the end", trial)
	}
	require.NoError(t, r.err)
	for id := range l.committed {
		_, ok := r.seen[id]
		require.True(t, ok, "trial %d: the tailing reader skipped committed event %s", trial, id)
	}
	for id := range l.rolledBack {
		_, ok := r.seen[id]
		require.False(t, ok, "trial %d: the reader saw event %s of a rolled-back transaction", trial, id)
	}
	require.Len(t, r.seen, len(l.committed), "trial %d: the reader saw events nobody committed", trial)
	return r.after
}

// holdSQLTx appends in a database/sql transaction, holds it open, then
// commits or rolls back.
func holdSQLTx(ctx context.Context, s *postgres.Store, rollback bool, hold func(), l *ledger) error {
	tx, err := s.DB().BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	hold() // open before appending, too: the transaction's snapshot is old
	events := newEvents("sqltx", 1+rand.IntN(2))
	if _, err := s.AppendTx(ctx, tx, events); err != nil {
		_ = tx.Rollback()
		return err
	}
	hold()
	if rollback {
		l.record(false, events)
		return tx.Rollback()
	}
	if err := tx.Commit(); err != nil {
		return err
	}
	l.record(true, events)
	return nil
}

// holdPgxTx is holdSQLTx with a pgx transaction.
func holdPgxTx(ctx context.Context, s *postgres.Store, rollback bool, hold func(), l *ledger) error {
	tx, err := s.Pool().Begin(ctx)
	if err != nil {
		return err
	}
	hold()
	events := newEvents("pgxtx", 1+rand.IntN(2))
	if _, err := s.AppendPgxTx(ctx, tx, events); err != nil {
		_ = tx.Rollback(ctx)
		return err
	}
	hold()
	if rollback {
		l.record(false, events)
		return tx.Rollback(ctx)
	}
	if err := tx.Commit(ctx); err != nil {
		return err
	}
	l.record(true, events)
	return nil
}
