package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"math/bits"
	"strings"
	"time"

	sqlite3 "modernc.org/sqlite/lib"

	"github.com/gomonster/monster/store"
)

// Append stores events in one IMMEDIATE transaction and one synced commit.
// An event whose idempotency key is already stored, or appears earlier in
// the batch, is not inserted; its result is the stored event with
// Duplicate set. If any event fails (an event ID already stored wraps
// [store.ErrConflict]), nothing is stored. A failed COMMIT wraps
// [store.ErrAmbiguousCommit]. Besides the ID, type, time and data every
// event needs, the store asks that types hold no control characters and
// times lie between the years 1678 and 2262 (Unix nanoseconds in an int64).
func (s *Store) Append(ctx context.Context, events []store.NewEvent) ([]store.AppendResult, error) {
	const op = "append"
	if s.closed.Load() {
		return nil, errClosed(op)
	}
	if err := validateEvents(events); err != nil {
		return nil, err
	}
	if len(events) == 0 {
		return []store.AppendResult{}, nil
	}
	tx, unlock, err := s.beginWrite(ctx)
	if err != nil {
		return nil, opError(ctx, op+": begin", err)
	}
	defer unlock()
	results, err := s.appendIn(ctx, tx, events, inOwnTx)
	if err != nil {
		tx.Rollback() // an error if INSERT OR ROLLBACK has rolled back already
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		tx.Rollback()
		return nil, opError(ctx, op, err)
	}
	if err := tx.Commit(); err != nil {
		return nil, commitError(err)
	}
	s.checkpointer.committed(appendedBytes(results))
	return results, nil
}

// AppendTx appends like Append inside tx, which must have been begun on
// DB(); the events are stored if and only if the caller commits tx. The
// work is done under a savepoint: when AppendTx fails, tx is as it was
// before the call, and the caller decides whether to commit the rest.
func (s *Store) AppendTx(ctx context.Context, tx *sql.Tx, events []store.NewEvent) ([]store.AppendResult, error) {
	const op = "append"
	if s.closed.Load() {
		return nil, errClosed(op)
	}
	if tx == nil {
		return nil, errors.New("monster: sqlite append: nil transaction")
	}
	if err := validateEvents(events); err != nil {
		return nil, err
	}
	if len(events) == 0 {
		return []store.AppendResult{}, nil
	}
	if _, err := tx.ExecContext(ctx, "SAVEPOINT monster_append"); err != nil {
		return nil, opError(ctx, op, err)
	}
	results, err := s.appendIn(ctx, tx, events, inCallerTx)
	if err != nil {
		tx.ExecContext(context.WithoutCancel(ctx), "ROLLBACK TO monster_append")
		tx.ExecContext(context.WithoutCancel(ctx), "RELEASE monster_append")
		return nil, err
	}
	if _, err := tx.ExecContext(ctx, "RELEASE monster_append"); err != nil {
		return nil, opError(ctx, op, err)
	}
	// The caller's commit is still to come; counting now is near enough
	// for deciding when to checkpoint.
	s.checkpointer.committed(appendedBytes(results))
	return results, nil
}

// appendedBytes estimates what the new events of results added to the WAL.
func appendedBytes(results []store.AppendResult) int64 {
	var n int64
	for i := range results {
		if !results[i].Duplicate {
			e := &results[i].Event
			n += int64(len(e.Data) + len(e.Meta) + len(e.ID) + len(e.Type) + len(e.Key) + len(e.IdempotencyKey) + 64)
		}
	}
	return n
}

// Times are stored as Unix nanoseconds in an int64.
var minTime, maxTime = time.Unix(0, math.MinInt64), time.Unix(0, math.MaxInt64)

func validateEvents(events []store.NewEvent) error {
	return store.ValidateNewEvents("sqlite append", events, minTime, maxTime)
}

// appendIn does the work of Append inside tx. The transaction holds the
// file's write lock from BEGIN (IMMEDIATE), so no other writer can commit
// before it: positions become visible in order.
func (s *Store) appendIn(ctx context.Context, tx *sql.Tx, events []store.NewEvent, mode insertMode) ([]store.AppendResult, error) {
	const op = "append"
	fail := func(err error) ([]store.AppendResult, error) {
		if strings.Contains(err.Error(), "statement from different database") {
			return nil, fmt.Errorf("monster: sqlite append: the transaction was not begun on the store's DB(): %w", err)
		}
		return nil, opError(ctx, op, err)
	}

	results := make([]store.AppendResult, len(events))
	// fresh lists the indexes of events to insert, in order.
	fresh := make([]int, 0, len(events))
	var (
		seen     map[string]int // idempotency key -> index of its new event in the batch
		repeats  map[int]int    // index of a repeat -> index of the new event it repeats
		idemStmt *sql.Stmt
	)
	for i := range events {
		e := &events[i]
		if e.IdempotencyKey == "" {
			fresh = append(fresh, i)
			continue
		}
		if j, ok := seen[e.IdempotencyKey]; ok {
			if repeats == nil {
				repeats = make(map[int]int)
			}
			repeats[i] = j
			continue
		}
		if idemStmt == nil {
			idemStmt = tx.StmtContext(ctx, s.stmts.idem)
		}
		stored, err := scanEvent(idemStmt.QueryRowContext(ctx, e.IdempotencyKey))
		if err == nil {
			results[i] = store.AppendResult{Event: stored, Duplicate: true}
			continue
		}
		if !errors.Is(err, sql.ErrNoRows) {
			return fail(err)
		}
		if seen == nil {
			seen = make(map[string]int)
		}
		seen[e.IdempotencyKey] = i
		fresh = append(fresh, i)
	}

	if len(fresh) > 0 {
		if err := s.insert(ctx, tx, mode, events, fresh, results); err != nil {
			if sqliteCode(err) == sqlite3.SQLITE_CONSTRAINT_UNIQUE && strings.Contains(err.Error(), "events.id") {
				return nil, s.duplicateIDError(ctx, tx, mode, events, fresh, results)
			}
			return fail(err)
		}
		if err := s.countTypes(ctx, tx, results, fresh); err != nil {
			return fail(err)
		}
	}

	for i, j := range repeats {
		results[i] = store.AppendResult{Event: results[j].Event, Duplicate: true}
	}
	return results, nil
}

// duplicateIDError names the event ID that made an insert fail: repeated in
// the batch, or already stored. It runs on the failure path only.
func (s *Store) duplicateIDError(ctx context.Context, tx *sql.Tx, mode insertMode, events []store.NewEvent, fresh []int, results []store.AppendResult) error {
	seen := make(map[string]bool, len(fresh))
	for _, i := range fresh {
		id := events[i].ID
		if seen[id] {
			return errorf(store.ErrConflict, "monster: sqlite append: event ID %q appears twice in the batch", id)
		}
		seen[id] = true
	}
	// INSERT OR ROLLBACK has ended the store's own transaction; the
	// caller's is still open: it holds the statements of the batch that
	// went through (those events have a position), and maybe the event.
	lookup := s.stmts.eventByID
	if mode == inCallerTx {
		lookup = tx.StmtContext(ctx, lookup)
	}
	for _, i := range fresh {
		if results[i].Event.Position != 0 {
			continue
		}
		if _, err := scanEvent(lookup.QueryRowContext(ctx, events[i].ID)); err == nil {
			return errorf(store.ErrConflict, "monster: sqlite append: event ID %q is already stored", events[i].ID)
		}
	}
	return errorf(store.ErrConflict, "monster: sqlite append: an event ID of the batch is already stored")
}

// insert inserts the events listed in fresh and fills in their results.
// SQLite gives each new row the position after the highest one ever used
// (AUTOINCREMENT), so the rows of one statement get consecutive positions
// ending at its last insert rowid.
func (s *Store) insert(ctx context.Context, tx *sql.Tx, mode insertMode, events []store.NewEvent, fresh []int, results []store.AppendResult) error {
	var stmts [insertShapes][maxInsertLog + 1]*sql.Stmt
	args := make([]any, 0, insertFull.columns()<<min(maxInsertLog, bits.Len(uint(len(fresh)))))
	for len(fresh) > 0 {
		k := min(maxInsertLog, bits.Len(uint(len(fresh)))-1)
		rows := fresh[:1<<k]
		fresh = fresh[1<<k:]
		shape := insertShort
		for _, i := range rows {
			if e := &events[i]; e.Key != "" || len(e.Meta) > 0 || e.IdempotencyKey != "" {
				shape = insertFull
				break
			}
		}
		args = args[:0]
		for _, i := range rows {
			e := &events[i]
			args = append(args, e.ID, e.Type, e.Time.UnixNano(), e.Data, newEventSum(e))
			if shape == insertFull {
				args = append(args, nullString(e.Key), nullBytes(e.Meta), nullString(e.IdempotencyKey))
			}
		}
		stmt := stmts[shape][k]
		if stmt == nil {
			stmt = tx.StmtContext(ctx, s.stmts.insert[mode][shape][k])
			stmts[shape][k] = stmt
		}
		res, err := stmt.ExecContext(ctx, args...)
		if err != nil {
			return err
		}
		last, err := res.LastInsertId()
		if err != nil {
			return err
		}
		for j, i := range rows {
			e := &events[i]
			results[i].Event = store.Event{
				ID:             e.ID,
				Type:           e.Type,
				Position:       last - int64(len(rows)-1-j),
				Time:           time.Unix(0, e.Time.UnixNano()).UTC(),
				Key:            e.Key,
				Data:           e.Data,
				Meta:           e.Meta,
				IdempotencyKey: e.IdempotencyKey,
			}
		}
	}
	return nil
}

// countTypes adds the batch's events to type_counts, so that CountByType
// over the whole log reads one small table.
func (s *Store) countTypes(ctx context.Context, tx *sql.Tx, results []store.AppendResult, fresh []int) error {
	counts := make(map[string]int64, 4)
	order := make([]string, 0, 4) // deterministic statement order
	for _, i := range fresh {
		t := results[i].Event.Type
		if counts[t] == 0 {
			order = append(order, t)
		}
		counts[t]++
	}
	stmt := tx.StmtContext(ctx, s.stmts.countType)
	for _, t := range order {
		if _, err := stmt.ExecContext(ctx, t, counts[t]); err != nil {
			return err
		}
	}
	return nil
}

func nullString(s string) any {
	if s == "" {
		return nil
	}
	return s
}

func nullBytes(b []byte) any {
	if len(b) == 0 {
		return nil
	}
	return b
}

type rowScanner interface {
	Scan(dest ...any) error
}

func scanEvent(row rowScanner) (store.Event, error) {
	var e store.Event
	var nanos int64
	var sum sql.NullInt64
	if err := row.Scan(&e.Position, &e.ID, &e.Type, &nanos, &e.Key, &e.Data, &e.Meta, &e.IdempotencyKey, &sum); err != nil {
		return store.Event{}, err
	}
	e.Time = time.Unix(0, nanos).UTC()
	if sum.Valid {
		if err := checkSum(&e, sum.Int64); err != nil {
			return store.Event{}, err
		}
	}
	return e, nil
}

// EventByID returns the event with the given ID, or an error wrapping
// [store.ErrNotFound].
func (s *Store) EventByID(ctx context.Context, id string) (store.Event, error) {
	const op = "event by ID"
	if s.closed.Load() {
		return store.Event{}, errClosed(op)
	}
	e, err := scanEvent(s.stmts.eventByID.QueryRowContext(ctx, id))
	if errors.Is(err, sql.ErrNoRows) {
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
	var head int64
	if err := s.stmts.head.QueryRowContext(ctx).Scan(&head); err != nil {
		return 0, opError(ctx, op, err)
	}
	return head, nil
}

// PositionBefore returns the highest position of an event whose time is
// before t, or 0. It walks the log backwards from the head and stops at the
// first such event, so it reads the events logged at or after t: fast for a
// recent t, a scan of the log for a t before most of it. (An index on time
// would cost every Append about a sixth of its speed for a rare query; and
// since processes' clocks differ, time order is not position order, so the
// exact answer needs the walk either way.)
func (s *Store) PositionBefore(ctx context.Context, t time.Time) (int64, error) {
	const op = "position before"
	if s.closed.Load() {
		return 0, errClosed(op)
	}
	if !t.After(minTime) {
		return 0, nil
	}
	before := int64(math.MaxInt64) // every stored time is before a later t
	if t.Before(maxTime) {
		before = t.UnixNano()
	}
	var pos int64
	err := s.db.QueryRowContext(ctx, `SELECT position FROM events WHERE time < ? ORDER BY position DESC LIMIT 1`, before).Scan(&pos)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil
	}
	if err != nil {
		return 0, opError(ctx, op, err)
	}
	return pos, nil
}

// CountByType returns the number of events of each type with position >
// after. For after == 0 it reads the type_counts table kept by Append;
// otherwise it counts the shorter side of after and subtracts if needed.
func (s *Store) CountByType(ctx context.Context, after int64) (map[string]int64, error) {
	const op = "count by type"
	if s.closed.Load() {
		return nil, errClosed(op)
	}
	counts := make(map[string]int64)
	err := s.readTx(ctx, op, func(tx *sql.Tx) error {
		add := func(sign int64, query string, args ...any) error {
			rows, err := tx.QueryContext(ctx, query, args...)
			if err != nil {
				return err
			}
			defer rows.Close()
			for rows.Next() {
				var t string
				var n int64
				if err := rows.Scan(&t, &n); err != nil {
					return err
				}
				counts[t] += sign * n
			}
			return rows.Err()
		}
		var head int64
		if after > 0 {
			if err := tx.QueryRowContext(ctx, `SELECT IFNULL(MAX(position), 0) FROM events`).Scan(&head); err != nil {
				return err
			}
		}
		if after <= 0 || after < head/2 {
			if err := add(1, `SELECT type, count FROM type_counts`); err != nil {
				return err
			}
			if after > 0 {
				return add(-1, `SELECT type, COUNT(*) FROM events WHERE position <= ? GROUP BY type`, after)
			}
			return nil
		}
		return add(1, `SELECT type, COUNT(*) FROM events WHERE position > ? GROUP BY type`, after)
	})
	if err != nil {
		return nil, err
	}
	for t, n := range counts {
		if n == 0 {
			delete(counts, t)
		}
	}
	return counts, nil
}
