package monster

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"

	"github.com/gomonster/monster/internal/groupcommit"
	"github.com/gomonster/monster/store"
)

// LogFunc stores one entry; log middleware wraps it.
type LogFunc func(ctx context.Context, e *Entry) error

// LogMiddleware wraps logging, like pymonster's custom Event.log: it runs
// before the event is encoded, validated and stored, and may enrich the
// entry (add Meta, set Key), transform its Data, validate it (return an
// error and nothing is stored), or print it. Call next to go on.
type LogMiddleware func(next LogFunc) LogFunc

// UseLog adds log middleware around the existing chain (outermost last
// added). Use it at start-up, before logging.
func (m *Monster) UseLog(mw ...LogMiddleware) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, w := range mw {
		m.log = w(m.log)
	}
}

// preparedKey carries the encoded event from the innermost LogFunc back to
// the caller through the Entry.
type prepared struct {
	entry *Entry
	event store.NewEvent
}

type preparedCtxKey struct{}

// Log stores an event of type typ with data (any JSON-encodable value) and
// returns the stored event. When it returns nil error the event is
// committed and synced; concurrent calls share one commit.
//
// Errors: ErrInvalidName for a malformed type, ErrUndeclared, ErrInvalid
// (a *ValidationError naming the field), ErrEncoding, ErrTooLarge, a
// middleware's error, ErrClosed, or a store error. With all of these
// nothing is stored, except ErrAmbiguous: ctx ended (or the store lost its
// connection) after the event was handed to the store, which may have
// stored it; log with WithIdempotencyKey to retry safely. In eager mode
// (Options.Eager) a handler's failure is returned, as *HandlerError,
// together with the stored event.
func (m *Monster) Log(ctx context.Context, typ string, data any, opts ...LogOption) (RawEvent, error) {
	entry := Entry{Type: typ, Data: data}
	for _, o := range opts {
		o(&entry)
	}
	events, err := m.LogBatch(ctx, []Entry{entry})
	if len(events) == 0 {
		return RawEvent{}, err
	}
	// In eager mode a handler's error comes with the stored event.
	return events[0], err
}

// LogBatch stores several events atomically, in order: all or none. It
// returns the stored events in the same order. Errors are those of Log and
// name the entry at fault by its index.
func (m *Monster) LogBatch(ctx context.Context, entries []Entry) ([]RawEvent, error) {
	events, err := m.prepareAll(ctx, entries)
	if err != nil {
		return nil, err
	}
	results, err := m.commit(ctx, events)
	if err != nil {
		return nil, err
	}
	return m.afterStore(ctx, results)
}

// LogTx stores an event inside the caller's transaction on the store's own
// database (Monster.DB): it exists if and only if tx commits, and it is
// durable when tx.Commit returns. Consumers in this process see it within
// Options.PollInterval after the commit. Since Monster does not see the
// commit, LogTx prints no Verbose line and runs no eager handlers. It
// returns ErrNotSupported on a store without SQL transactions.
func (m *Monster) LogTx(ctx context.Context, tx *sql.Tx, typ string, data any, opts ...LogOption) (RawEvent, error) {
	txs, ok := m.store.(store.SQLTxAppender)
	if !ok {
		return RawEvent{}, fmt.Errorf("%w: LogTx needs a store with SQL transactions", ErrNotSupported)
	}
	return m.logInTx(ctx, func(ctx context.Context, events []store.NewEvent) ([]store.AppendResult, error) {
		return txs.AppendTx(ctx, tx, events)
	}, typ, data, opts...)
}

// DB returns the SQL database the store keeps its data in, for beginning
// the transactions LogTx takes; nil for stores without one.
func (m *Monster) DB() *sql.DB {
	if txs, ok := m.store.(store.SQLTxAppender); ok {
		return txs.DB()
	}
	return nil
}

// prepareAll runs every entry through the middleware chain and the
// encoder.
func (m *Monster) prepareAll(ctx context.Context, entries []Entry) ([]store.NewEvent, error) {
	if len(entries) == 0 {
		return nil, errors.New("monster: LogBatch: no events")
	}
	m.mu.Lock()
	chain := m.log
	m.mu.Unlock()
	events := make([]store.NewEvent, len(entries))
	for i := range entries {
		p := &prepared{}
		if err := chain(context.WithValue(ctx, preparedCtxKey{}, p), &entries[i]); err != nil {
			if len(entries) > 1 {
				return nil, fmt.Errorf("monster: batch entry %d: %w", i, err)
			}
			return nil, err
		}
		if p.entry == nil {
			return nil, fmt.Errorf("monster: log middleware did not call next for %q event", entries[i].Type)
		}
		events[i] = p.event
	}
	return events, nil
}

// prepare is the innermost LogFunc: it checks and encodes the entry.
func (m *Monster) prepare(ctx context.Context, e *Entry) error {
	p, _ := ctx.Value(preparedCtxKey{}).(*prepared)
	if p == nil {
		return errors.New("monster: LogFunc called outside Log")
	}
	if err := checkTypeName(e.Type); err != nil {
		return err
	}
	m.mu.Lock()
	decl := m.declared[e.Type]
	m.mu.Unlock()
	var data []byte
	var err error
	switch {
	case decl != nil:
		data, err = decl.check(e.Data)
	case m.opts.DisallowUndeclared:
		err = fmt.Errorf("%w: %q (declare it with monster.Declare, or leave Options.DisallowUndeclared off)", ErrUndeclared, e.Type)
	default:
		data, err = encodeJSON(e.Type, e.Data)
	}
	if err != nil {
		return err
	}
	var meta []byte
	if len(e.Meta) > 0 {
		if meta, err = json.Marshal(e.Meta); err != nil {
			return fmt.Errorf("%w: event %q meta: %v", ErrEncoding, e.Type, err)
		}
	}
	if size := len(data) + len(meta); size > m.opts.MaxEventSize {
		return fmt.Errorf("%w: %q event is %d bytes, over the limit of %d (Options.MaxEventSize)", ErrTooLarge, e.Type, size, m.opts.MaxEventSize)
	}
	id, err := uuid.NewV7()
	if err != nil {
		return fmt.Errorf("monster: event id: %w", err)
	}
	p.entry = e
	p.event = store.NewEvent{
		ID: id.String(), Type: e.Type, Time: time.Now().UTC(), Key: e.Key,
		Data: data, Meta: meta, IdempotencyKey: e.IdempotencyKey,
	}
	return nil
}

// afterStore converts results and runs eager handlers.
func (m *Monster) afterStore(ctx context.Context, results []store.AppendResult) ([]RawEvent, error) {
	out := make([]RawEvent, len(results))
	for i, r := range results {
		out[i] = rawFromStore(r.Event)
	}

	if !m.opts.Eager {
		return out, nil
	}
	var errs []error
	for i, r := range results {
		if !r.Duplicate {
			errs = append(errs, m.runEager(ctx, out[i]))
		}
	}
	return out, errors.Join(errs...)
}

// commit hands events to the group committer and waits for the outcome.
func (m *Monster) commit(ctx context.Context, events []store.NewEvent) ([]store.AppendResult, error) {
	results, err := m.committer.Commit(ctx, events)
	if errors.Is(err, groupcommit.ErrClosed) {
		return nil, ErrClosed
	}
	return results, err
}

// printEvents writes pymonster's verbose line for each new event when
// Options.Verbose is set: [Event][type] data. A JSON string is printed
// without its quotes, as pymonster printed messages.
func (m *Monster) printEvents(results []store.AppendResult) {
	if !m.opts.Verbose {
		return
	}
	m.outputMu.Lock()
	defer m.outputMu.Unlock()
	for _, r := range results {
		if r.Duplicate {
			continue
		}
		var text string
		if err := json.Unmarshal(r.Event.Data, &text); err != nil {
			text = string(r.Event.Data)
		}
		fmt.Fprintf(m.opts.Output, "[Event][%s] %s\n", r.Event.Type, text)
	}
}
