package monster

import (
	"context"
	"errors"
	"fmt"

	"github.com/gomonster/monster/store"
)

// TxAppendFunc appends events inside a transaction the application owns,
// for [Monster.LogExternalTx]. It receives the events after Log's whole
// preparation and returns the store's results, one per event, in order.
// A store package implements it around its own transaction type; see
// store/postgres's LogTx (a pgx.Tx), which is built on it.
type TxAppendFunc func(ctx context.Context, events []store.NewEvent) ([]store.AppendResult, error)

// LogExternalTx is the hook behind transactional logging with
// transaction types the monster package does not know (it does not import
// database drivers): it prepares an event exactly as Log does (log
// middleware, the type-name check, the undeclared policy, validation of
// declared types, encoding, Options.MaxEventSize, the event ID and time,
// WithKey, WithMeta and WithIdempotencyKey) and hands it to appendTx,
// which appends it inside the application's transaction. LogTx, for a
// *sql.Tx, is LogExternalTx with the store's AppendTx.
//
// Applications rarely call it: they call their store's function, such as
// postgres.LogTx(ctx, m, tx, typ, data). The event exists if and only if
// that transaction commits, and is durable when its commit returns. As
// with LogTx, Monster does not see the commit, so no Verbose line is
// printed and no eager handlers run; consumers see the event within
// Options.PollInterval (or sooner, on stores with notifications) after the
// commit.
//
// Errors are those of Log's preparation, with nothing handed to appendTx,
// or appendTx's own.
func (m *Monster) LogExternalTx(ctx context.Context, appendTx TxAppendFunc, typ string, data any, opts ...LogOption) (RawEvent, error) {
	if appendTx == nil {
		return RawEvent{}, errors.New("monster: LogExternalTx: nil append function")
	}
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
		return RawEvent{}, fmt.Errorf("monster: LogExternalTx: the append function returned %d results for 1 event", len(results))
	}
	// The event exists only if the transaction commits, which Monster does
	// not see: no verbose line and no eager handlers for it.
	return rawFromStore(results[0].Event), nil
}
