package postgres

import (
	"context"

	"github.com/jackc/pgx/v5"
)

// Events per type (CountByType) are kept in two parts, so that appends do
// not maintain them: type_totals holds the counts of the events up to the
// position in totals_through, and the events past it (the tail) are counted
// when asked. A fold moves the tail into the totals. Appends fold in the
// background every foldEvery events a store appends, and CountByType
// folds when it counts a tail longer than that, so the tail stays short
// however the store is used.
//
// Folding is exact because of the no-skip rule (see the package
// documentation): in any snapshot the visible events are every event up
// to the highest visible position, so counting the events after
// totals_through and moving totals_through to the highest of them, in one
// statement (one snapshot), neither misses an event nor counts one twice.
// Folds take a transaction-scoped advisory lock, so only one runs at a
// time per schema; the others find it taken and leave the work to it.
//
// Schema version 1 instead updated type_counts in every append, in the
// append's transaction. Measured against that, on a quiet machine,
// BenchmarkLog/producers=64: 10 interleaved pairs of runs, 7 won, +8% on
// average (the counting took about 60 µs of each commit, all of it while
// holding the append lock).
const foldEvery = 50_000

// inTail selects the tail. The upper bound changes no result (no event is
// above the highest), but makes the planner see a range, which it
// estimates as a small part of the table: with a lower bound alone it
// estimated a third of the table (more with the bound from a join), and
// planned and compiled (JIT) for that.
const inTail = `position > (SELECT position FROM S.totals_through) AND position <= (SELECT max(position) FROM S.events)`

// countTotals is CountByType(0)'s query: the totals and the tail, in one
// statement (one snapshot).
const countTotals = `
SELECT type, sum(n)::bigint, sum(tail)::bigint FROM (
	SELECT type, count AS n, 0 AS tail FROM S.type_totals
	UNION ALL
	SELECT type, count(*), count(*) FROM S.events WHERE ` + inTail + ` GROUP BY type
) c GROUP BY type`

// foldTail moves the tail into the totals (see above); it runs in a
// transaction that holds the fold lock.
const foldTail = `
WITH tail AS (
	SELECT type, count(*) AS n, max(position) AS last FROM S.events WHERE ` + inTail + ` GROUP BY type
), added AS (
	INSERT INTO S.type_totals AS c (type, count) SELECT type, n FROM tail
	ON CONFLICT (type) DO UPDATE SET count = c.count + excluded.count
)
UPDATE S.totals_through SET position = (SELECT max(last) FROM tail) WHERE EXISTS (SELECT FROM tail)`

// fold moves the tail into the totals, unless another fold holds the lock.
func (s *Store) fold(ctx context.Context) error {
	return s.writeTx(ctx, "fold type counts", func(tx pgx.Tx) error {
		var locked bool
		if err := tx.QueryRow(ctx, `SELECT pg_try_advisory_xact_lock($1)`, lockKey("fold", s.schema)).Scan(&locked); err != nil || !locked {
			return err
		}
		if err := noJIT(ctx, tx); err != nil {
			return err
		}
		// A new statement, so a new snapshot: it sees the fold that held
		// the lock before this one.
		_, err := tx.Exec(ctx, schemaSQL(s.schema, foldTail))
		return err
	})
}

// noJIT turns PostgreSQL's JIT compilation off for the rest of tx. The
// planner, without statistics on a table that autovacuum has not analyzed
// yet, can estimate a count over the tail above jit_above_cost; compiling
// it then took about a second of CPU (a fifth of the two cores over a
// 150,000-event BenchmarkLog run, by perf), taken from the appends, to
// count 50,000 rows that take milliseconds without it.
func noJIT(ctx context.Context, tx pgx.Tx) error {
	_, err := tx.Exec(ctx, "SET LOCAL jit = off")
	return err
}

// appended counts n events appended through this store, and starts a
// background fold after every foldEvery of them, unless one is running.
func (s *Store) appended(n int) {
	if s.unfolded.Add(int64(n)) >= s.foldAfter && s.startFold() {
		s.unfolded.Store(0)
	}
}

// startFold runs a fold in the background unless one is running or the
// store is closed, and reports whether it started one. Close waits for it.
func (s *Store) startFold() bool {
	if !s.folding.CompareAndSwap(false, true) {
		return false
	}
	s.bgMu.Lock()
	defer s.bgMu.Unlock()
	if s.closed.Load() {
		s.folding.Store(false)
		return false
	}
	s.bg.Go(func() {
		defer s.folding.Store(false)
		// A failed fold leaves the tail longer, not the counts wrong: the
		// next one (or CountByType) does the work.
		_ = s.fold(s.bgCtx)
	})
	return true
}

// CountByType returns the number of events of each type with position >
// after. For after == 0 it reads the totals and counts the tail (see
// foldEvery); otherwise it counts the shorter side of after, in one
// snapshot.
func (s *Store) CountByType(ctx context.Context, after int64) (map[string]int64, error) {
	var (
		counts map[string]int64
		tail   int64
	)
	err := s.readTx(ctx, "count by type", func(tx pgx.Tx) error {
		// From nothing on each try: readTx tries again on a new connection
		// when one is lost.
		counts, tail = make(map[string]int64), 0
		// add adds the counts of query's rows (type, count), and of the
		// tail's when withTail (a third column).
		add := func(sign int64, withTail bool, query string, args ...any) error {
			rows, err := tx.Query(ctx, schemaSQL(s.schema, query), args...)
			if err != nil {
				return err
			}
			defer rows.Close()
			for rows.Next() {
				var t string
				var n, inTail int64
				dest := []any{&t, &n}
				if withTail {
					dest = append(dest, &inTail)
				}
				if err := rows.Scan(dest...); err != nil {
					return err
				}
				counts[t] += sign * n
				tail += inTail
			}
			return rows.Err()
		}
		if err := noJIT(ctx, tx); err != nil {
			return err
		}
		var head int64
		if after > 0 {
			if err := tx.QueryRow(ctx, s.sql.head).Scan(&head); err != nil {
				return err
			}
		}
		if after <= 0 || after < head/2 {
			if err := add(1, true, countTotals); err != nil {
				return err
			}
			if after > 0 {
				return add(-1, false, `SELECT type, count(*) FROM S.events WHERE position <= $1 GROUP BY type`, after)
			}
			return nil
		}
		return add(1, false, `SELECT type, count(*) FROM S.events WHERE position > $1 GROUP BY type`, after)
	})
	if err != nil {
		return nil, err
	}
	if tail > s.foldAfter {
		s.startFold()
	}
	for t, n := range counts {
		if n == 0 {
			delete(counts, t)
		}
	}
	return counts, nil
}
