package postgres

import (
	"context"
	"errors"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/gomonster/monster/store"
)

// Connections are lost when the server restarts or the network breaks.
// The pool then still holds idle connections that look fine and fail on
// first use. So when an operation fails because its connection was lost,
// before anything it did can have been committed (the COMMIT was not
// sent, or it only reads), the store drops every idle connection and tries
// once more on a new one. While the server stays unreachable, the second
// attempt fails too and the caller gets the error; once it is back, the
// first call succeeds.

// connLost reports whether err ended conn: a network failure, not an error
// the server reported, while ctx was still live. Errors this package
// worded (a failed COMMIT among them) are never taken for one.
func connLost(ctx context.Context, conn *pgxpool.Conn, err error) bool {
	var me *store.Error
	return err != nil && !errors.As(err, &me) && ctx.Err() == nil && pgCode(err) == "" && conn.Conn().IsClosed()
}

// withConn runs fn on a connection of the pool, and once more on a new one
// if the connection was lost. fn must be safe to run twice: it only reads,
// or it writes in a transaction and reports a failed COMMIT as an error of
// this package (a *store.Error), which is not retried.
func (s *Store) withConn(ctx context.Context, fn func(conn *pgxpool.Conn) error) error {
	for attempt := 0; ; attempt++ {
		conn, err := s.pool.Acquire(ctx)
		if err != nil {
			return err
		}
		err = fn(conn)
		lost := connLost(ctx, conn, err)
		conn.Release()
		if !lost || attempt > 0 {
			return err
		}
		s.pool.Reset()
	}
}

// inTx runs fn in a transaction on conn and commits it. It returns
// committing = true with an error from the COMMIT itself, whose outcome is
// then unknown if the connection was lost.
func inTx(ctx context.Context, conn *pgxpool.Conn, opts pgx.TxOptions, fn func(tx pgx.Tx) error) (committing bool, err error) {
	tx, err := conn.BeginTx(ctx, opts)
	if err != nil {
		return false, err
	}
	if err := fn(tx); err != nil {
		tx.Rollback(context.WithoutCancel(ctx))
		return false, err
	}
	if err := ctx.Err(); err != nil {
		tx.Rollback(context.WithoutCancel(ctx))
		return false, err
	}
	// The COMMIT is not cancelled with ctx: once it is sent, its outcome
	// is known only from its reply.
	return true, tx.Commit(context.WithoutCancel(ctx))
}
