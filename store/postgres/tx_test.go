package postgres_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/gomonster/monster"
	"github.com/gomonster/monster/store"
	"github.com/gomonster/monster/store/postgres"
)

// appTx is an application transaction of either kind.
type appTx struct {
	exec     func(query string, args ...any) error
	append   func(events []store.NewEvent) ([]store.AppendResult, error)
	commit   func() error
	rollback func() error
}

func sqlTx(t *testing.T, s *postgres.Store) appTx {
	ctx := t.Context()
	tx, err := s.DB().BeginTx(ctx, nil)
	require.NoError(t, err)
	return appTx{
		exec:     func(q string, args ...any) error { _, err := tx.ExecContext(ctx, q, args...); return err },
		append:   func(events []store.NewEvent) ([]store.AppendResult, error) { return s.AppendTx(ctx, tx, events) },
		commit:   tx.Commit,
		rollback: tx.Rollback,
	}
}

func pgxTx(t *testing.T, s *postgres.Store) appTx {
	ctx := t.Context()
	tx, err := s.Pool().Begin(ctx)
	require.NoError(t, err)
	return appTx{
		exec:     func(q string, args ...any) error { _, err := tx.Exec(ctx, q, args...); return err },
		append:   func(events []store.NewEvent) ([]store.AppendResult, error) { return s.AppendPgxTx(ctx, tx, events) },
		commit:   func() error { return tx.Commit(ctx) },
		rollback: func() error { return tx.Rollback(ctx) },
	}
}

// The events of an application transaction exist if and only if it
// commits, together with the application's own rows; a failed append
// (a duplicate event ID) leaves the transaction usable.
func TestAppendInApplicationTransactions(t *testing.T) {
	t.Parallel()
	for _, kind := range []struct {
		name  string
		begin func(t *testing.T, s *postgres.Store) appTx
	}{{"database/sql", sqlTx}, {"pgx", pgxTx}} {
		for _, commit := range []bool{true, false} {
			name := kind.name + "/rollback"
			if commit {
				name = kind.name + "/commit"
			}
			t.Run(name, func(t *testing.T) {
				t.Parallel()
				ctx := t.Context()
				schema := newSchema(t)
				s := openStore(t, schema)
				other := openStore(t, schema)
				_, err := s.Pool().Exec(ctx, "CREATE TABLE "+schema+".orders (id text PRIMARY KEY)")
				require.NoError(t, err)
				stored := mustAppendStore(t, s, newEvent("before", `0`))

				tx := kind.begin(t, s)
				require.NoError(t, tx.exec("INSERT INTO "+schema+".orders (id) VALUES ('o-1')"))
				events := newEvents("order.placed", 2)
				res, err := tx.append(events)
				require.NoError(t, err)
				require.Len(t, res, 2)
				require.Equal(t, res[0].Event.Position+1, res[1].Event.Position)

				// A failed append inside the transaction leaves it as it was.
				_, err = tx.append([]store.NewEvent{{ID: stored.ID, Type: "again", Time: time.Now(), Data: []byte(`1`)}})
				require.ErrorIs(t, err, store.ErrConflict)
				require.True(t, strings.HasPrefix(err.Error(), "monster: "), err.Error())

				pending, err := other.Read(ctx, store.ReadParams{After: stored.Position, Limit: 10})
				require.NoError(t, err)
				require.Empty(t, pending, "events of an open transaction are invisible")

				if commit {
					require.NoError(t, tx.commit())
				} else {
					require.NoError(t, tx.rollback())
				}
				var orders int
				require.NoError(t, other.Pool().QueryRow(ctx, "SELECT count(*) FROM "+schema+".orders").Scan(&orders))
				all, err := other.Read(ctx, store.ReadParams{After: stored.Position, Limit: 10})
				require.NoError(t, err)
				for _, e := range events {
					_, err := other.EventByID(ctx, e.ID)
					if commit {
						require.NoError(t, err, "a committed transaction's event is stored")
					} else {
						require.ErrorIs(t, err, store.ErrNotFound, "a rolled-back transaction's event is not stored")
					}
				}
				if commit {
					require.Equal(t, 1, orders)
					require.Len(t, all, 2)
					require.Equal(t, res[1].Event.Position, all[1].Position, "AppendTx returned the stored positions")
				} else {
					require.Zero(t, orders)
					require.Empty(t, all)
				}
				// Appends go on after the transaction, at higher positions.
				later := mustAppendStore(t, s, newEvent("after", `1`))
				require.Greater(t, later.Position, res[1].Event.Position)
			})
		}
	}
}

func mustAppendStore(t *testing.T, s store.Store, e store.NewEvent) store.Event {
	t.Helper()
	res, err := s.Append(t.Context(), []store.NewEvent{e})
	require.NoError(t, err)
	return res[0].Event
}

// monster.LogTx works with the store's DB(): the event exists if and only
// if the transaction commits.
func TestLogTx(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	s := openStore(t, newSchema(t))
	m := monster.New(s, nil)
	t.Cleanup(func() { _ = m.Close() })
	require.NotNil(t, m.DB())

	for _, commit := range []bool{true, false} {
		tx, err := m.DB().BeginTx(ctx, nil)
		require.NoError(t, err)
		ev, err := m.LogTx(ctx, tx, "user.bought_shirt", map[string]any{"user": "gordon", "commit": commit})
		require.NoError(t, err)
		if commit {
			require.NoError(t, tx.Commit())
			got, err := s.EventByID(ctx, ev.ID)
			require.NoError(t, err)
			require.Equal(t, ev.Position, got.Position)
		} else {
			require.NoError(t, tx.Rollback())
			_, err := s.EventByID(ctx, ev.ID)
			require.ErrorIs(t, err, store.ErrNotFound)
		}
	}
}

// A transaction that appended holds the append lock until it ends; an
// append that waits longer than AppendLockTimeout fails with an error that
// says why, instead of hanging, and the transaction's own lock_timeout is
// left as it was.
func TestAppendLockTimeout(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	schema := newSchema(t)
	opts := testOptions(schema)
	opts.AppendLockTimeout = 100 * time.Millisecond
	s := openStoreAt(t, requireServer(t), opts)

	tx, err := s.Pool().Begin(ctx)
	require.NoError(t, err)
	defer tx.Rollback(context.Background())
	_, err = tx.Exec(ctx, "SET LOCAL lock_timeout = '7s'")
	require.NoError(t, err)
	_, err = s.AppendPgxTx(ctx, tx, newEvents("held", 1))
	require.NoError(t, err)
	var timeout string
	require.NoError(t, tx.QueryRow(ctx, "SHOW lock_timeout").Scan(&timeout))
	require.Equal(t, "7s", timeout, "AppendPgxTx leaves the transaction's lock_timeout as it was")

	start := time.Now()
	_, err = s.Append(ctx, newEvents("waiting", 1))
	require.Error(t, err)
	require.GreaterOrEqual(t, time.Since(start), 100*time.Millisecond)
	require.True(t, strings.HasPrefix(err.Error(), "monster: postgres append: "), err.Error())
	require.Contains(t, err.Error(), "append lock")

	require.NoError(t, tx.Commit(ctx))
	mustAppendStore(t, s, newEvent("free", `1`))
}
