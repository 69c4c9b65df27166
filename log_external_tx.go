package monster

import (
	"context"
	"errors"
	"fmt"

	"github.com/gomonster/monster/store"
)

// LogExternalTx is LogTx for transactions of a driver's own type, which
// the monster package does not know (it imports no database driver): it
// prepares an event exactly as Log does (log middleware, the type-name
// check, the undeclared policy, validation of declared types, encoding,
// Options.MaxEventSize, the event ID and time, WithKey, WithMeta and
// WithIdempotencyKey) and has the store append it inside tx, the
// application's transaction of the type the store documents.
//
// Applications rarely call it: they call their store's typed function,
// such as postgres.LogTx(ctx, m, tx, typ, data), which calls it. The event
// exists if and only if that transaction commits, and is durable when its
// commit returns. As with LogTx, Monster does not see the commit, so no
// Verbose line is printed and no eager handlers run; consumers see the
// event within Options.PollInterval (or sooner, on stores with
// notifications) after the commit.
//
// Errors are those of Log's preparation, with nothing appended;
// ErrNotSupported when the store cannot append in a transaction of its own
// type (it does not implement store.TxAppender); or the store's, such as a
// tx of the wrong type.
func (m *Monster) LogExternalTx(ctx context.Context, tx any, typ string, data any, opts ...LogOption) (RawEvent, error) {
	txs, ok := m.store.(store.TxAppender)
	if !ok {
		return RawEvent{}, fmt.Errorf("%w: LogExternalTx needs a store that appends in transactions of a driver's own type, such as the PostgreSQL store", ErrNotSupported)
	}
	if tx == nil {
		return RawEvent{}, errors.New("monster: LogExternalTx: nil transaction")
	}
	return m.logInTx(ctx, func(ctx context.Context, events []store.NewEvent) ([]store.AppendResult, error) {
		return txs.AppendInTx(ctx, tx, events)
	}, typ, data, opts...)
}

// logInTx prepares an event as Log does and appends it with appendTx,
// inside a transaction Monster does not commit: the path behind LogTx and
// LogExternalTx.
func (m *Monster) logInTx(ctx context.Context, appendTx func(context.Context, []store.NewEvent) ([]store.AppendResult, error), typ string, data any, opts ...LogOption) (RawEvent, error) {
	entry := Entry{Type: typ, Data: data}
	for _, o := range opts {
		o(&entry)
	}
	events, err := m.prepareAll(ctx, []Entry{entry})
	if err != nil {
		return RawEvent{}, err
	}
	results, err := appendTx(ctx, events)
	if err != nil {
		return RawEvent{}, err
	}
	if len(results) != 1 {
		return RawEvent{}, fmt.Errorf("monster: log in transaction: the store returned %d results for 1 event", len(results))
	}
	// The event exists only if the transaction commits, which Monster does
	// not see: no verbose line and no eager handlers for it.
	return rawFromStore(results[0].Event), nil
}
