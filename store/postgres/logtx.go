package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/gomonster/monster"
	"github.com/gomonster/monster/store"
)

// LogTx is [monster.Monster.LogTx] for a pgx transaction: it logs an event
// of type typ inside tx, prepared exactly as m.Log prepares one (log
// middleware, validation of declared types, the undeclared policy, size
// limit, key, metadata, idempotency key). The event exists if and only if
// tx commits, and is durable when tx.Commit returns.
//
// m must be open on a PostgreSQL store ([Store], through monster.Open with
// a postgres:// URL or monster.New), and tx a transaction on the
// store's database: from [Store.Pool], or from any pgx connection to the
// same database, for example the application's own pool:
//
//	tx, err := pool.Begin(ctx)
//	_, err = tx.Exec(ctx, "UPDATE accounts SET ...")
//	_, err = postgres.LogTx(ctx, m, tx, "account.debited", debit)
//	err = tx.Commit(ctx)
//
// From this call to the end of tx, tx holds the store's append lock (see
// the package documentation): log last, just before committing, and do not
// call m.Log inside tx. A failed LogTx leaves tx as it was (the append runs
// under a savepoint), unless the connection failed. Since Monster does not
// see the commit, LogTx prints no Verbose line and runs no eager handlers;
// consumers hear of the event through LISTEN/NOTIFY when tx commits.
//
// It returns an error wrapping monster.ErrNotSupported when m's store is
// not a PostgreSQL store (it does not implement store.TxAppender).
func LogTx(ctx context.Context, m *monster.Monster, tx pgx.Tx, typ string, data any, opts ...monster.LogOption) (monster.RawEvent, error) {
	if m == nil {
		return monster.RawEvent{}, errors.New("monster: postgres LogTx: nil Monster")
	}
	if tx == nil {
		// A nil pgx.Tx in an interface of type any is not nil.
		return m.LogExternalTx(ctx, nil, typ, data, opts...)
	}
	return m.LogExternalTx(ctx, tx, typ, data, opts...)
}

// AppendInTx implements store.TxAppender: tx must be a pgx.Tx (see
// AppendPgxTx), the transaction monster.Monster.LogExternalTx hands over
// from LogTx.
func (s *Store) AppendInTx(ctx context.Context, tx any, events []store.NewEvent) ([]store.AppendResult, error) {
	pgxTx, ok := tx.(pgx.Tx)
	if !ok {
		return nil, fmt.Errorf("monster: postgres append: the transaction is a %T, not a pgx.Tx", tx)
	}
	return s.AppendPgxTx(ctx, pgxTx, events)
}
