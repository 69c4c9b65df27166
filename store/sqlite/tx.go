package sqlite

import (
	"context"
	"database/sql"
)

// beginWrite takes the process's write lock for the file and begins an
// IMMEDIATE transaction on the store's writer connection. The caller ends
// the transaction, with endWrite or Rollback, then calls unlock.
//
// The transaction is begun without ctx's cancellation: when a
// transaction's context ends, database/sql rolls it back on a goroutine of
// its own, and on the store's one writer connection that rollback could
// come after the next transaction has begun (and fail it, or roll it
// back). The statements still run with ctx, which interrupts them, and
// endWrite checks ctx before COMMIT; BEGIN waits for the file's write lock
// up to the busy timeout.
func (s *Store) beginWrite(ctx context.Context) (tx *sql.Tx, unlock func(), err error) {
	if err := s.writer.lock(ctx); err != nil {
		return nil, nil, err
	}
	if err := ctx.Err(); err != nil {
		s.writer.unlock()
		return nil, nil, err
	}
	tx, err = s.writeConn.BeginTx(context.WithoutCancel(ctx), nil)
	if err != nil {
		s.writer.unlock()
		return nil, nil, err
	}
	return tx, s.writer.unlock, nil
}

// writeTx runs fn in one write transaction and commits if fn returns nil.
func (s *Store) writeTx(ctx context.Context, op string, fn func(tx *sql.Tx) error) error {
	if s.closed.Load() {
		return errClosed(op)
	}
	tx, unlock, err := s.beginWrite(ctx)
	if err != nil {
		return opError(ctx, op, err)
	}
	defer unlock()
	if err := fn(tx); err != nil {
		tx.Rollback()
		return opError(ctx, op, err)
	}
	if err := endWrite(ctx, tx); err != nil {
		return opError(ctx, op, err)
	}
	s.checkpointer.committed(0)
	return nil
}

// endWrite commits tx, or rolls it back if ctx has ended.
func endWrite(ctx context.Context, tx *sql.Tx) error {
	if err := ctx.Err(); err != nil {
		tx.Rollback()
		return err
	}
	return tx.Commit()
}

// readTx runs fn in a read transaction: one snapshot of the file, without
// the write lock (a read-only transaction begins DEFERRED).
func (s *Store) readTx(ctx context.Context, op string, fn func(tx *sql.Tx) error) error {
	if s.closed.Load() {
		return errClosed(op)
	}
	tx, err := s.db.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return opError(ctx, op, err)
	}
	defer tx.Rollback()
	if err := fn(tx); err != nil {
		return opError(ctx, op, err)
	}
	return nil
}
