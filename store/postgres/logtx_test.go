package postgres_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/gomonster/monster"
	"github.com/gomonster/monster/store"
	"github.com/gomonster/monster/store/postgres"
)

// postgres.LogTx (pgx.Tx) and Monster.LogTx (*sql.Tx) from the
// application's side: the event exists if and only if the transaction
// commits, together with the application's row, and a running consumer
// handles the committed event and never sees the rolled-back one.
func TestLogTxOutcomes(t *testing.T) {
	t.Parallel()
	type logTx struct {
		exec     func(query string) error
		log      func(typ string, data any, opts ...monster.LogOption) (monster.RawEvent, error)
		commit   func() error
		rollback func() error
	}
	kinds := []struct {
		name  string
		begin func(t *testing.T, m *monster.Monster, s *postgres.Store) logTx
	}{
		{"pgx", func(t *testing.T, m *monster.Monster, s *postgres.Store) logTx {
			ctx := t.Context()
			tx, err := s.Pool().Begin(ctx)
			require.NoError(t, err)
			t.Cleanup(func() { _ = tx.Rollback(context.Background()) })
			return logTx{
				exec: func(q string) error { _, err := tx.Exec(ctx, q); return err },
				log: func(typ string, data any, opts ...monster.LogOption) (monster.RawEvent, error) {
					return postgres.LogTx(ctx, m, tx, typ, data, opts...)
				},
				commit:   func() error { return tx.Commit(ctx) },
				rollback: func() error { return tx.Rollback(ctx) },
			}
		}},
		{"database/sql", func(t *testing.T, m *monster.Monster, s *postgres.Store) logTx {
			ctx := t.Context()
			tx, err := m.DB().BeginTx(ctx, nil)
			require.NoError(t, err)
			t.Cleanup(func() { _ = tx.Rollback() })
			return logTx{
				exec: func(q string) error { _, err := tx.ExecContext(ctx, q); return err },
				log: func(typ string, data any, opts ...monster.LogOption) (monster.RawEvent, error) {
					return m.LogTx(ctx, tx, typ, data, opts...)
				},
				commit:   tx.Commit,
				rollback: tx.Rollback,
			}
		}},
	}
	for _, kind := range kinds {
		t.Run(kind.name, func(t *testing.T) {
			t.Parallel()
			ctx := t.Context()
			schema := newSchema(t)
			s := openStore(t, schema)
			_, err := s.Pool().Exec(ctx, "CREATE TABLE "+schema+".orders (id text PRIMARY KEY)")
			require.NoError(t, err)

			m := monster.New(s, &monster.Options{
				PollInterval: 20 * time.Millisecond,
				Output:       io.Discard,
				Logger:       slog.New(slog.DiscardHandler),
			})
			t.Cleanup(func() { _ = m.Close() })
			type order struct {
				ID    string `json:"id"`
				Total int    `json:"total"`
			}
			placed := monster.Declare[order](m, "order.placed", monster.Validate(func(o order) error {
				if o.Total <= 0 {
					return monster.FieldError("total", "must be positive")
				}
				return nil
			}))
			_ = placed
			var enriched []string
			m.UseLog(func(next monster.LogFunc) monster.LogFunc {
				return func(ctx context.Context, e *monster.Entry) error {
					enriched = append(enriched, e.Type)
					e.Meta = map[string]string{"via": "middleware"}
					return next(ctx, e)
				}
			})

			// One partition, one at a time: the consumer handles in log
			// order, so once it has handled a later event it has seen every
			// earlier one there will ever be.
			var mu sync.Mutex
			var handled []monster.RawEvent
			require.NoError(t, m.Consume("shipper", monster.Match("order.*", func(_ context.Context, e monster.RawEvent) error {
				mu.Lock()
				handled = append(handled, e)
				mu.Unlock()
				return nil
			}), &monster.ConsumerOptions{Partitions: 1, Concurrency: 1}))
			runCtx, stop := context.WithCancel(context.Background())
			require.NoError(t, m.Start(runCtx))
			t.Cleanup(func() {
				stop()
				stopCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				defer cancel()
				_ = m.Stop(stopCtx)
			})
			handledIDs := func() []string {
				mu.Lock()
				defer mu.Unlock()
				ids := make([]string, len(handled))
				for i, e := range handled {
					ids[i] = e.ID
				}
				return ids
			}
			waitHandled := func(id string) {
				t.Helper()
				deadline := time.Now().Add(20 * time.Second)
				for !contains(handledIDs(), id) {
					if time.Now().After(deadline) {
						t.Fatalf("the consumer did not handle %s within 20s; handled %v", id, handledIDs())
					}
					time.Sleep(5 * time.Millisecond)
				}
			}
			orders := func() int {
				var n int
				require.NoError(t, s.Pool().QueryRow(ctx, "SELECT count(*) FROM "+schema+".orders").Scan(&n))
				return n
			}

			// Commit: the row and the event, and the consumer handles it.
			tx := kind.begin(t, m, s)
			require.NoError(t, tx.exec("INSERT INTO "+schema+".orders (id) VALUES ('o-1')"))
			// Log's preparation runs: a declared type's validation refuses
			// bad data, nothing is stored, and the transaction goes on.
			_, err = tx.log("order.placed", order{ID: "o-1", Total: 0})
			require.ErrorIs(t, err, monster.ErrInvalid)
			require.ErrorContains(t, err, "total")
			committed, err := tx.log("order.placed", order{ID: "o-1", Total: 30}, monster.WithKey("o-1"))
			require.NoError(t, err)
			require.Equal(t, "o-1", committed.Key)
			require.Equal(t, map[string]string{"via": "middleware"}, committed.Meta)
			_, err = s.EventByID(ctx, committed.ID)
			require.ErrorIs(t, err, store.ErrNotFound, "invisible before the commit")
			require.NoError(t, tx.commit())
			got, err := s.EventByID(ctx, committed.ID)
			require.NoError(t, err)
			require.Equal(t, committed.Position, got.Position)
			require.JSONEq(t, `{"id":"o-1","total":30}`, string(got.Data))
			require.Equal(t, 1, orders())
			waitHandled(committed.ID)

			// Rollback: neither the row nor the event.
			tx = kind.begin(t, m, s)
			require.NoError(t, tx.exec("INSERT INTO "+schema+".orders (id) VALUES ('o-2')"))
			rolledBack, err := tx.log("order.placed", order{ID: "o-2", Total: 40})
			require.NoError(t, err)
			require.NoError(t, tx.rollback())
			_, err = s.EventByID(ctx, rolledBack.ID)
			require.ErrorIs(t, err, store.ErrNotFound, "a rolled-back transaction's event is not stored")
			require.Equal(t, 1, orders())

			// A later event, logged outside any transaction: once the
			// consumer has handled it, it has passed the rolled-back one's
			// position without handling it.
			later, err := m.Log(ctx, "order.shipped", map[string]string{"id": "o-1"})
			require.NoError(t, err)
			require.Greater(t, later.Position, rolledBack.Position)
			waitHandled(later.ID)
			require.Equal(t, []string{committed.ID, later.ID}, handledIDs())
			require.Equal(t, []string{"order.placed", "order.placed", "order.placed", "order.shipped"}, enriched,
				"log middleware ran for every call, the refused one included")
		})
	}
}

func contains(ids []string, id string) bool {
	for _, x := range ids {
		if x == id {
			return true
		}
	}
	return false
}

// postgres.LogTx refuses, before preparing anything, a Monster on another
// store and a nil transaction.
func TestLogTxRefuses(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	mem, err := monster.Open(ctx, "memory://", &monster.Options{Logger: slog.New(slog.DiscardHandler)})
	require.NoError(t, err)
	defer mem.Close()
	ran := false
	mem.UseLog(func(next monster.LogFunc) monster.LogFunc {
		return func(ctx context.Context, e *monster.Entry) error { ran = true; return next(ctx, e) }
	})
	var tx pgx.Tx
	_, err = postgres.LogTx(ctx, mem, tx, "order.placed", 1)
	require.ErrorIs(t, err, monster.ErrNotSupported)
	require.ErrorContains(t, err, "PostgreSQL store")
	require.False(t, ran, "nothing prepared for a store that cannot take it")
	_, err = postgres.LogTx(ctx, nil, tx, "order.placed", 1)
	require.Error(t, err)

	s := openStore(t, newSchema(t))
	m := monster.New(s, &monster.Options{Logger: slog.New(slog.DiscardHandler)})
	defer m.Close()
	_, err = postgres.LogTx(ctx, m, nil, "order.placed", 1)
	require.ErrorContains(t, err, "nil transaction")
	require.False(t, errors.Is(err, monster.ErrNotSupported))
}
