package postgres

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/gomonster/monster/store"
)

// txConn is what an append needs of a transaction: the store's own, an
// application's pgx.Tx, or an application's *sql.Tx.
type txConn interface {
	exec(ctx context.Context, query string, args ...any) error
	queryRow(ctx context.Context, query string, args ...any) rowScanner
	queryEvents(ctx context.Context, query string, args ...any) ([]store.Event, error)
}

type rowScanner interface {
	Scan(dest ...any) error
}

// pgxConn adapts a pgx.Tx.
type pgxConn struct{ tx pgx.Tx }

func (c pgxConn) exec(ctx context.Context, query string, args ...any) error {
	_, err := c.tx.Exec(ctx, query, args...)
	return err
}

func (c pgxConn) queryRow(ctx context.Context, query string, args ...any) rowScanner {
	return c.tx.QueryRow(ctx, query, args...)
}

func (c pgxConn) queryEvents(ctx context.Context, query string, args ...any) ([]store.Event, error) {
	rows, err := c.tx.Query(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	return collectEvents(rows, 0)
}

// sqlConn adapts a *sql.Tx begun on DB(). pgx's stdlib driver passes
// arguments through to pgx unchanged, so the same statements work.
type sqlConn struct{ tx *sql.Tx }

func (c sqlConn) exec(ctx context.Context, query string, args ...any) error {
	_, err := c.tx.ExecContext(ctx, query, args...)
	return err
}

func (c sqlConn) queryRow(ctx context.Context, query string, args ...any) rowScanner {
	return c.tx.QueryRowContext(ctx, query, args...)
}

func (c sqlConn) queryEvents(ctx context.Context, query string, args ...any) ([]store.Event, error) {
	rows, err := c.tx.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var events []store.Event
	for rows.Next() {
		e, err := scanEvent(rows)
		if err != nil {
			return nil, err
		}
		events = append(events, e)
	}
	return events, rows.Err()
}

func scanEvent(row rowScanner) (store.Event, error) {
	var e store.Event
	if err := row.Scan(&e.Position, &e.ID, &e.Type, &e.Time, &e.Key, &e.Data, &e.Meta, &e.IdempotencyKey); err != nil {
		return store.Event{}, err
	}
	e.Time = e.Time.UTC()
	if len(e.Meta) == 0 {
		e.Meta = nil
	}
	return e, nil
}

// collectEvents reads rows of eventColumns, at most limit of them (0:
// unknown), and closes them.
func collectEvents(rows pgx.Rows, limit int) ([]store.Event, error) {
	defer rows.Close()
	events := []store.Event{}
	for rows.Next() {
		e, err := scanEvent(rows)
		if err != nil {
			return nil, err
		}
		events = append(store.GrowEvents(events, limit), e)
	}
	return events, rows.Err()
}

// Append stores events in one transaction and one synced commit, holding
// the append lock from before it draws positions until its commit (see the
// package documentation). An event whose idempotency key is already
// stored, or appears earlier in the batch, is not inserted; its result is
// the stored event with Duplicate set. If any event fails (an event ID
// already stored wraps [store.ErrConflict]), nothing is stored. A COMMIT
// whose outcome is unknown (the connection failed after sending it) wraps
// [store.ErrAmbiguousCommit].
func (s *Store) Append(ctx context.Context, events []store.NewEvent) ([]store.AppendResult, error) {
	const op = "append"
	if s.closed.Load() {
		return nil, errClosed(op)
	}
	if err := validateEvents(events); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, opError(ctx, op, err)
	}
	if len(events) == 0 {
		return []store.AppendResult{}, nil
	}
	fast := !slices.ContainsFunc(events, func(e store.NewEvent) bool { return e.IdempotencyKey != "" })
	var (
		results    []store.AppendResult
		committing bool
	)
	err := s.withConn(ctx, func(conn *pgxpool.Conn) error {
		var err error
		if fast {
			results, committing, err = s.appendPipelined(ctx, conn, events)
		} else {
			committing, err = inTx(ctx, conn, pgx.TxOptions{}, func(tx pgx.Tx) error {
				results, err = s.appendIn(ctx, pgxConn{tx}, events)
				return err
			})
		}
		if committing && err != nil {
			// Not retried: the COMMIT may have happened, unless the
			// server itself refused it.
			if pgCode(err) == "" {
				return commitError(op, err)
			}
			return errorf(nil, "monster: postgres %s: commit: %v", op, err)
		}
		return err
	})
	switch {
	case err == nil:
		s.appended(len(events))
		return results, nil
	case errors.Is(err, errDuplicateID):
		return nil, s.duplicateIDError(ctx, nil, events)
	default:
		return nil, opError(ctx, op, err)
	}
}

// AppendTx appends like Append inside tx, a transaction begun on DB(): the
// events are stored if and only if the caller commits tx, and are durable
// when that commit returns. From this call to the end of tx, tx holds the
// store's append lock: every other append waits for it (see the package
// documentation), so log last, just before committing. The work is done
// under a savepoint: when AppendTx fails, tx is as it was before the call
// (unless the failure was the connection's), and the caller decides
// whether to commit the rest.
func (s *Store) AppendTx(ctx context.Context, tx *sql.Tx, events []store.NewEvent) ([]store.AppendResult, error) {
	if tx == nil {
		return nil, errors.New("monster: postgres append: nil transaction")
	}
	return s.appendInCallerTx(ctx, sqlConn{tx}, events)
}

// AppendPgxTx is AppendTx for a pgx transaction, begun on [Store.Pool] or
// on any pgx connection to the store's database.
func (s *Store) AppendPgxTx(ctx context.Context, tx pgx.Tx, events []store.NewEvent) ([]store.AppendResult, error) {
	if tx == nil {
		return nil, errors.New("monster: postgres append: nil transaction")
	}
	return s.appendInCallerTx(ctx, pgxConn{tx}, events)
}

func (s *Store) appendInCallerTx(ctx context.Context, c txConn, events []store.NewEvent) ([]store.AppendResult, error) {
	const op = "append"
	if s.closed.Load() {
		return nil, errClosed(op)
	}
	if err := validateEvents(events); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, opError(ctx, op, err)
	}
	if len(events) == 0 {
		return []store.AppendResult{}, nil
	}
	if err := c.exec(ctx, "SAVEPOINT monster_append"); err != nil {
		return nil, opError(ctx, op, err)
	}
	results, err := s.appendIn(ctx, c, events)
	if err != nil {
		undo := context.WithoutCancel(ctx)
		c.exec(undo, "ROLLBACK TO SAVEPOINT monster_append")
		c.exec(undo, "RELEASE SAVEPOINT monster_append")
		if errors.Is(err, errDuplicateID) {
			return nil, s.duplicateIDError(ctx, c, events)
		}
		return nil, opError(ctx, op, err)
	}
	if err := c.exec(ctx, "RELEASE SAVEPOINT monster_append"); err != nil {
		return nil, opError(ctx, op, err)
	}
	s.appended(len(events))
	return results, nil
}

// errDuplicateID marks an insert that failed on the unique event ID.
var errDuplicateID = errors.New("duplicate event ID")

// appendIn does the work of Append inside a transaction: take the append
// lock, look up idempotency keys, insert the new events.
func (s *Store) appendIn(ctx context.Context, c txConn, events []store.NewEvent) ([]store.AppendResult, error) {
	if err := c.exec(ctx, s.sql.lock, lockKey("append", s.schema), s.opts.AppendLockTimeout.Milliseconds()); err != nil {
		if pgCode(err) == codeLockNotAvailable {
			return nil, s.lockTimeoutError(err)
		}
		return nil, err
	}

	results := make([]store.AppendResult, len(events))
	fresh := make([]int, 0, len(events)) // indexes of the events to insert, in order
	var (
		keys    []string       // idempotency keys to look up
		seen    map[string]int // idempotency key -> index of its first event in the batch
		repeats map[int]int    // index of a repeat -> index of the event it repeats
	)
	for i := range events {
		k := events[i].IdempotencyKey
		if k == "" {
			continue
		}
		if seen == nil {
			seen = make(map[string]int)
			repeats = make(map[int]int)
		}
		if j, ok := seen[k]; ok {
			repeats[i] = j
			continue
		}
		seen[k] = i
		keys = append(keys, k)
	}
	var stored map[string]store.Event
	if len(keys) > 0 {
		found, err := c.queryEvents(ctx, s.sql.idem, keys)
		if err != nil {
			return nil, err
		}
		stored = make(map[string]store.Event, len(found))
		for _, e := range found {
			stored[e.IdempotencyKey] = e
		}
	}
	for i := range events {
		if _, ok := repeats[i]; ok {
			continue
		}
		if e, ok := stored[events[i].IdempotencyKey]; ok && events[i].IdempotencyKey != "" {
			results[i] = store.AppendResult{Event: e, Duplicate: true}
			continue
		}
		fresh = append(fresh, i)
	}

	if len(fresh) > 0 {
		ins := newInsert(events, fresh)
		var last int64
		if err := c.queryRow(ctx, s.sql.insert, ins.args(s.sql.channel)...).Scan(&last); err != nil {
			return nil, insertError(err)
		}
		ins.fill(events, fresh, last, results)
	}
	for i, j := range repeats {
		results[i] = store.AppendResult{Event: results[j].Event, Duplicate: true}
	}
	return results, nil
}

// insert is the arguments of queries.insert: one array per column.
type insert struct {
	ids, types, keys, idems []string
	times                   []time.Time
	data, meta              [][]byte
}

// newInsert prepares the insert of the events listed in fresh, in order.
func newInsert(events []store.NewEvent, fresh []int) *insert {
	n := len(fresh)
	ins := &insert{
		ids: make([]string, n), types: make([]string, n), keys: make([]string, n), idems: make([]string, n),
		times: make([]time.Time, n), data: make([][]byte, n), meta: make([][]byte, n),
	}
	for j, i := range fresh {
		e := &events[i]
		ins.ids[j], ins.types[j], ins.keys[j], ins.idems[j] = e.ID, e.Type, e.Key, e.IdempotencyKey
		ins.times[j] = e.Time.Truncate(time.Microsecond)
		ins.data[j] = e.Data
		if len(e.Meta) > 0 {
			ins.meta[j] = e.Meta
		}
	}
	return ins
}

func (ins *insert) args(channel string) []any {
	return []any{ins.ids, ins.types, ins.times, ins.keys, ins.data, ins.meta, ins.idems, channel}
}

// fill sets the results of the inserted events, given the last position.
func (ins *insert) fill(events []store.NewEvent, fresh []int, last int64, results []store.AppendResult) {
	n := len(fresh)
	for j, i := range fresh {
		e := &events[i]
		results[i].Event = store.Event{
			ID:             e.ID,
			Type:           e.Type,
			Position:       last - int64(n-1-j),
			Time:           ins.times[j].UTC(),
			Key:            e.Key,
			Data:           e.Data,
			Meta:           ins.meta[j],
			IdempotencyKey: e.IdempotencyKey,
		}
	}
}

func insertError(err error) error {
	if pgCode(err) == codeUniqueViolation && strings.Contains(err.Error(), "events_id_key") {
		return errDuplicateID
	}
	return err
}

// appendPipelined is Append's fast path, for batches without idempotency
// keys (the common case): BEGIN, the append lock, the INSERT and the COMMIT
// go to the server in one round trip (a pipeline ending in one Sync), so
// the lock is held for the INSERT and the WAL flush, not for a round trip
// more (which counts for more the farther the server is). On loopback
// here, against sending the COMMIT in a second round trip, Log from 64
// goroutines won 14 of 21 interleaved pairs of runs, by about 5% on average
// (BenchmarkLog/producers=64).
//
// If a statement fails, the server skips the rest up to the Sync,
// COMMIT included, and the transaction is left open and failed: it is
// rolled back, and nothing was stored. If the connection fails, the
// COMMIT may have happened: the error is ambiguous.
func (s *Store) appendPipelined(ctx context.Context, conn *pgxpool.Conn, events []store.NewEvent) (results []store.AppendResult, committing bool, err error) {
	fresh := make([]int, len(events))
	for i := range fresh {
		fresh[i] = i
	}
	ins := newInsert(events, fresh)
	var (
		b    pgx.Batch
		last int64
		tag  pgconn.CommandTag
	)
	b.Queue("BEGIN")
	b.Queue(s.sql.lock, lockKey("append", s.schema), s.opts.AppendLockTimeout.Milliseconds())
	b.Queue(s.sql.insert, ins.args(s.sql.channel)...).QueryRow(func(row pgx.Row) error { return row.Scan(&last) })
	b.Queue("COMMIT").Exec(func(ct pgconn.CommandTag) error { tag = ct; return nil })
	if err := conn.SendBatch(ctx, &b).Close(); err != nil {
		if pgconn.SafeToRetry(err) {
			return nil, false, err // nothing reached the server
		}
		if pgCode(err) == "" {
			return nil, true, err // the connection failed: the COMMIT may have happened
		}
		if !conn.Conn().IsClosed() {
			conn.Exec(context.WithoutCancel(ctx), "ROLLBACK")
		}
		if pgCode(err) == codeLockNotAvailable {
			return nil, false, s.lockTimeoutError(err)
		}
		return nil, false, insertError(err)
	}
	if tag.String() != "COMMIT" {
		return nil, true, fmt.Errorf("the server answered %q to COMMIT", tag.String())
	}
	results = make([]store.AppendResult, len(events))
	ins.fill(events, fresh, last, results)
	return results, true, nil
}

func (s *Store) lockTimeoutError(err error) error {
	return fmt.Errorf("waited %v for the append lock, which another transaction holds from its append until it ends (a transaction left open after LogTx, or a Log inside one?): %w",
		s.opts.AppendLockTimeout, err)
}

// duplicateIDError names the event ID that made an insert fail: repeated in
// the batch, or already stored. It runs on the failure path only; c is the
// caller's transaction (after its savepoint was rolled back), or nil.
func (s *Store) duplicateIDError(ctx context.Context, c txConn, events []store.NewEvent) error {
	seen := make(map[string]bool, len(events))
	ids := make([]string, 0, len(events))
	for _, e := range events {
		if seen[e.ID] {
			return errorf(store.ErrConflict, "monster: postgres append: event ID %q appears twice in the batch", e.ID)
		}
		seen[e.ID] = true
		ids = append(ids, e.ID)
	}
	query := schemaSQL(s.schema, `SELECT id FROM S.events WHERE id = ANY($1::text[]) LIMIT 1`)
	var row rowScanner
	if c != nil {
		row = c.queryRow(ctx, query, ids)
	} else {
		row = s.pool.QueryRow(ctx, query, ids)
	}
	var id string
	if err := row.Scan(&id); err == nil {
		return errorf(store.ErrConflict, "monster: postgres append: event ID %q is already stored", id)
	}
	return errorf(store.ErrConflict, "monster: postgres append: an event ID of the batch is already stored")
}

// The times PostgreSQL's timestamptz keeps, as RFC 3339 can write them.
var minTime, maxTime = time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(9999, 12, 31, 23, 59, 59, 999999999, time.UTC)

// validateEvents checks what the contract leaves to stores
// (store.ValidateNewEvents), and that the text fields can be kept in
// PostgreSQL text columns (valid UTF-8 without NUL).
func validateEvents(events []store.NewEvent) error {
	if err := store.ValidateNewEvents("postgres append", events, minTime, maxTime); err != nil {
		return err
	}
	for i := range events {
		e := &events[i]
		for _, f := range [...]struct{ name, v string }{{"ID", e.ID}, {"type", e.Type}, {"key", e.Key}, {"idempotency key", e.IdempotencyKey}} {
			if !utf8.ValidString(f.v) || strings.IndexByte(f.v, 0) >= 0 {
				return fmt.Errorf("monster: postgres append: event %q: %s %q is not valid UTF-8 text without NUL", e.ID, f.name, f.v)
			}
		}
	}
	return nil
}

// Read returns up to limit events with position > after, in position
// order. Every event it returns was committed before any event of a higher
// position could be (see the package documentation), so it never skips.
func (s *Store) Read(ctx context.Context, arg store.ReadParams) ([]store.Event, error) {
	after, limit := arg.After, arg.Limit
	const op = "read"
	if s.closed.Load() {
		return nil, errClosed(op)
	}
	if limit < 0 {
		return nil, fmt.Errorf("monster: postgres read: negative limit %d", limit)
	}
	if err := ctx.Err(); err != nil {
		return nil, opError(ctx, op, err)
	}
	if limit == 0 {
		return []store.Event{}, nil
	}
	var events []store.Event
	err := s.withConn(ctx, func(conn *pgxpool.Conn) error {
		rows, err := conn.Query(ctx, s.sql.read, after, limit)
		if err != nil {
			return err
		}
		events, err = collectEvents(rows, limit)
		return err
	})
	if err != nil {
		return nil, opError(ctx, op, err)
	}
	return events, nil
}

// EventByID returns the event with the given ID, or an error wrapping
// [store.ErrNotFound].
func (s *Store) EventByID(ctx context.Context, id string) (store.Event, error) {
	const op = "event by ID"
	if s.closed.Load() {
		return store.Event{}, errClosed(op)
	}
	if err := ctx.Err(); err != nil {
		return store.Event{}, opError(ctx, op, err)
	}
	var e store.Event
	err := s.withConn(ctx, func(conn *pgxpool.Conn) error {
		var err error
		e, err = scanEvent(conn.QueryRow(ctx, s.sql.eventByID, id))
		return err
	})
	if errors.Is(err, pgx.ErrNoRows) {
		return store.Event{}, errorf(store.ErrNotFound, "monster: event %q not found", id)
	}
	if err != nil {
		return store.Event{}, opError(ctx, op, err)
	}
	return e, nil
}

// Head returns the highest committed position, or 0 for an empty log.
func (s *Store) Head(ctx context.Context) (int64, error) {
	const op = "head"
	if s.closed.Load() {
		return 0, errClosed(op)
	}
	if err := ctx.Err(); err != nil {
		return 0, opError(ctx, op, err)
	}
	var head int64
	err := s.withConn(ctx, func(conn *pgxpool.Conn) error {
		return conn.QueryRow(ctx, s.sql.head).Scan(&head)
	})
	if err != nil {
		return 0, opError(ctx, op, err)
	}
	return head, nil
}

// PositionBefore returns the highest position of an event whose time is
// before t, or 0. It walks the log backwards from the head and stops at the
// first such event: fast for a recent t, a scan for a t before most of the
// log. (Processes' clocks differ, so time order is not position order, and
// an index on time would not give the exact answer.)
func (s *Store) PositionBefore(ctx context.Context, t time.Time) (int64, error) {
	const op = "position before"
	if s.closed.Load() {
		return 0, errClosed(op)
	}
	if err := ctx.Err(); err != nil {
		return 0, opError(ctx, op, err)
	}
	if t.Year() < 1 {
		return 0, nil
	}
	if t.Year() > 9999 {
		return s.Head(ctx)
	}
	var pos int64
	err := s.withConn(ctx, func(conn *pgxpool.Conn) error {
		return conn.QueryRow(ctx, schemaSQL(s.schema, `SELECT position FROM S.events WHERE time < $1 ORDER BY position DESC LIMIT 1`), t).Scan(&pos)
	})
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, nil
	}
	if err != nil {
		return 0, opError(ctx, op, err)
	}
	return pos, nil
}
