package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
)

// schema is format version 3. Times are Unix nanoseconds (UTC); empty
// strings of optional fields (key, idem, meta) are stored as NULL; sum is
// the event's checksum (checksum.go), NULL for events stored by format
// version 1; a consumer's partitioning is store.Partitioning's value,
// empty (key, else type) for consumers registered by format version 2 or
// earlier.
const schema = `
CREATE TABLE IF NOT EXISTS monster_meta (
	key   TEXT PRIMARY KEY,
	value ANY NOT NULL
) WITHOUT ROWID;

CREATE TABLE IF NOT EXISTS events (
	-- AUTOINCREMENT: a position is never handed out twice, even if the
	-- newest events were ever deleted by hand.
	position INTEGER PRIMARY KEY AUTOINCREMENT,
	id       TEXT NOT NULL UNIQUE,
	type     TEXT NOT NULL,
	time     INTEGER NOT NULL,
	key      TEXT,
	data     BLOB NOT NULL,
	meta     BLOB,
	idem     TEXT,
	sum      INTEGER
);
CREATE UNIQUE INDEX IF NOT EXISTS events_idem ON events (idem) WHERE idem IS NOT NULL;

CREATE TABLE IF NOT EXISTS type_counts (
	type  TEXT PRIMARY KEY,
	count INTEGER NOT NULL
) WITHOUT ROWID;

CREATE TABLE IF NOT EXISTS consumers (
	name         TEXT PRIMARY KEY,
	types        TEXT NOT NULL,
	partitions   INTEGER NOT NULL,
	created      INTEGER NOT NULL,
	partitioning TEXT NOT NULL DEFAULT ''
) WITHOUT ROWID;

CREATE TABLE IF NOT EXISTS partitions (
	consumer      TEXT NOT NULL REFERENCES consumers (name) ON DELETE CASCADE,
	partition     INTEGER NOT NULL,
	checkpoint    INTEGER NOT NULL,
	owner         TEXT NOT NULL DEFAULT '',
	lease_expires INTEGER NOT NULL DEFAULT 0,
	failures      INTEGER NOT NULL DEFAULT 0,
	in_flight     INTEGER NOT NULL DEFAULT 0,
	epoch         INTEGER NOT NULL DEFAULT 0,
	PRIMARY KEY (consumer, partition)
) WITHOUT ROWID;

CREATE TABLE IF NOT EXISTS members (
	consumer TEXT NOT NULL REFERENCES consumers (name) ON DELETE CASCADE,
	member   TEXT NOT NULL,
	expires  INTEGER NOT NULL,
	PRIMARY KEY (consumer, member)
) WITHOUT ROWID;

CREATE TABLE IF NOT EXISTS dead_letters (
	consumer        TEXT NOT NULL REFERENCES consumers (name) ON DELETE CASCADE,
	event_id        TEXT NOT NULL,
	type            TEXT NOT NULL,
	position        INTEGER NOT NULL,
	partition       INTEGER NOT NULL,
	attempts        INTEGER NOT NULL,
	error           TEXT NOT NULL,
	failed_at       INTEGER NOT NULL,
	retry_requested INTEGER NOT NULL DEFAULT 0,
	PRIMARY KEY (consumer, event_id)
);
CREATE INDEX IF NOT EXISTS dead_letters_position ON dead_letters (consumer, position);
`

const eventColumns = `position, id, type, time, IFNULL(key, ''), data, meta, IFNULL(idem, ''), sum`

// upgrades[v] turns format version v into v+1.
var upgrades = map[int64]string{
	1: `ALTER TABLE events ADD COLUMN sum INTEGER`,
	// Consumers registered before keep the partitioning they were
	// registered with: key, else type.
	2: `ALTER TABLE consumers ADD COLUMN partitioning TEXT NOT NULL DEFAULT ''`,
}

// Append inserts events with multi-row INSERT statements of 2^k rows, up to
// 2^maxInsertLog: per event, that is a fraction of the statement overhead
// of database/sql and the driver. Events that have no key, metadata or
// idempotency key (the common case) use a statement without those columns,
// saving three NULL bindings each.
const maxInsertLog = 6

// insertShape selects the columns of an insert statement.
type insertShape int

const (
	insertShort insertShape = iota // id, type, time, data, sum
	insertFull                     // and key, meta, idem
	insertShapes
)

func (sh insertShape) columns() int {
	if sh == insertShort {
		return 5
	}
	return 8
}

// insertMode says whose transaction an insert runs in. In the store's own
// (Append), a failed row rolls the whole transaction back (INSERT OR
// ROLLBACK), which spares SQLite the statement journal it keeps to undo
// half a multi-row statement. In the caller's (AppendTx), only the
// statement fails, and the transaction is the caller's to end.
type insertMode int

const (
	inCallerTx insertMode = iota
	inOwnTx
	insertModes
)

func insertSQL(mode insertMode, sh insertShape, rows int) string {
	var b strings.Builder
	b.WriteString("INSERT ")
	if mode == inOwnTx {
		b.WriteString("OR ROLLBACK ")
	}
	row := "(?,?,?,?,?)"
	if sh == insertShort {
		b.WriteString("INTO events (id, type, time, data, sum) VALUES ")
	} else {
		b.WriteString("INTO events (id, type, time, data, sum, key, meta, idem) VALUES ")
		row = "(?,?,?,?,?,?,?,?)"
	}
	for i := range rows {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(row)
	}
	return b.String()
}

// statements are prepared once on the *sql.DB; database/sql prepares each
// again on every connection that runs it and keeps it there.
type statements struct {
	eventByID, head, idem, countType *sql.Stmt
	// insert[mode][shape][k] inserts 2^k rows.
	insert [insertModes][insertShapes][maxInsertLog + 1]*sql.Stmt
}

func (st *statements) all() []**sql.Stmt {
	list := []**sql.Stmt{&st.eventByID, &st.head, &st.idem, &st.countType}
	for mode := range st.insert {
		for sh := range st.insert[mode] {
			for k := range st.insert[mode][sh] {
				list = append(list, &st.insert[mode][sh][k])
			}
		}
	}
	return list
}

func (st *statements) prepare(ctx context.Context, db *sql.DB) error {
	queries := []string{
		`SELECT ` + eventColumns + ` FROM events WHERE id = ?`,
		`SELECT IFNULL(MAX(position), 0) FROM events`,
		`SELECT ` + eventColumns + ` FROM events WHERE idem = ?`,
		`INSERT INTO type_counts (type, count) VALUES (?, ?) ON CONFLICT (type) DO UPDATE SET count = count + excluded.count`,
	}
	for mode := range insertModes {
		for sh := range insertShapes {
			for k := range maxInsertLog + 1 {
				queries = append(queries, insertSQL(mode, sh, 1<<k))
			}
		}
	}
	for i, p := range st.all() {
		s, err := db.PrepareContext(ctx, queries[i])
		if err != nil {
			return fmt.Errorf("prepare %.40q: %w", queries[i], err)
		}
		*p = s
	}
	return nil
}

func (st *statements) close() {
	for _, p := range st.all() {
		if *p != nil {
			(*p).Close()
		}
	}
}
