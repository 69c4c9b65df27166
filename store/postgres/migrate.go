package postgres

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/gomonster/monster/store"
)

// migration is one step of the schema's history. Steps are applied in
// order, each in its own transaction; a step, once released, never
// changes: a change of schema is a new step.
type migration struct {
	version int
	name    string
	sql     string // "S." stands for the store's quoted schema name
}

// migrations is the schema's history; SchemaVersion is its last version.
var migrations = []migration{
	{1, "events, consumers, checkpoints, leases and dead letters", `
CREATE SEQUENCE S.positions AS bigint MINVALUE 1 CACHE 1;

CREATE TABLE S.events (
	position bigint PRIMARY KEY,
	id       text NOT NULL UNIQUE,
	type     text NOT NULL,
	time     timestamptz NOT NULL,
	key      text,
	data     bytea NOT NULL,
	meta     bytea,
	idem     text
);
CREATE UNIQUE INDEX events_idem ON S.events (idem) WHERE idem IS NOT NULL;

CREATE TABLE S.type_counts (
	type  text PRIMARY KEY,
	count bigint NOT NULL
);

CREATE TABLE S.consumers (
	name       text PRIMARY KEY,
	types      text[] NOT NULL,
	partitions integer NOT NULL,
	created    timestamptz NOT NULL
);

CREATE TABLE S.partitions (
	consumer      text NOT NULL REFERENCES S.consumers (name) ON DELETE CASCADE,
	partition     integer NOT NULL,
	checkpoint    bigint NOT NULL,
	owner         text NOT NULL DEFAULT '',
	lease_expires timestamptz,
	failures      bigint NOT NULL DEFAULT 0,
	in_flight     bigint NOT NULL DEFAULT 0,
	epoch         bigint NOT NULL DEFAULT 0,
	PRIMARY KEY (consumer, partition)
);

CREATE TABLE S.members (
	consumer text NOT NULL REFERENCES S.consumers (name) ON DELETE CASCADE,
	member   text NOT NULL,
	expires  timestamptz NOT NULL,
	PRIMARY KEY (consumer, member)
);

CREATE TABLE S.dead_letters (
	consumer        text NOT NULL REFERENCES S.consumers (name) ON DELETE CASCADE,
	event_id        text NOT NULL,
	type            text NOT NULL,
	position        bigint NOT NULL,
	partition       integer NOT NULL,
	attempts        integer NOT NULL,
	error           text NOT NULL,
	failed_at       timestamptz,
	retry_requested boolean NOT NULL DEFAULT false,
	PRIMARY KEY (consumer, event_id)
);
CREATE INDEX dead_letters_position ON S.dead_letters (consumer, position);

-- lock_for_append takes the store's append lock (see the package
-- documentation) waiting at most timeout_ms, and leaves the transaction's
-- lock_timeout as it was. Should the wait fail, the transaction (or the
-- savepoint) is aborted, and the setting with it.
CREATE FUNCTION S.lock_for_append(lock_key bigint, timeout_ms integer) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
	previous text := current_setting('lock_timeout');
BEGIN
	PERFORM set_config('lock_timeout', timeout_ms::text || 'ms', true);
	PERFORM pg_advisory_xact_lock(lock_key);
	PERFORM set_config('lock_timeout', previous, true);
END
$$;
`},
	{2, "type counts folded in the background, not kept by every append", `
-- type_totals counts the events up to totals_through's position; the
-- events after it are counted when asked (see counts.go). Both start from
-- version 1's type_counts, read in one statement (one snapshot), in which
-- type_counts counts exactly the visible events. type_counts stays, no
-- longer read: processes still running version 1 during an upgrade keep
-- writing it and keep working.
CREATE TABLE S.type_totals (
	type  text PRIMARY KEY,
	count bigint NOT NULL
);

CREATE TABLE S.totals_through (
	one      boolean PRIMARY KEY DEFAULT true CHECK (one),
	position bigint NOT NULL
);

WITH copied AS (
	INSERT INTO S.type_totals (type, count) SELECT type, count FROM S.type_counts WHERE count <> 0
)
INSERT INTO S.totals_through (position) SELECT coalesce(max(position), 0) FROM S.events;

COMMENT ON TABLE S.type_counts IS 'Not used since schema version 2 (see type_totals); kept for version 1 processes during an upgrade.';
`},
	{3, "consumers keep the partitioning they were registered with", `
-- store.Partitioning's value. The consumers that exist, and those that
-- processes of version 2 still running register, get '': key, else type,
-- the partitioning they have always had.
ALTER TABLE S.consumers ADD COLUMN partitioning text NOT NULL DEFAULT '';
`},
}

// SchemaVersion is the schema version this build of the package writes and
// reads, kept in the schema's schema_migrations table.
var SchemaVersion = migrations[len(migrations)-1].version

// lockKey returns the advisory lock key for one purpose in one schema:
// stores in different schemas of one database do not wait for each other.
func lockKey(purpose, schema string) int64 {
	h := fnv.New64a()
	h.Write([]byte("monster " + purpose + " " + schema))
	return int64(h.Sum64())
}

// schemaSQL puts the quoted schema name in place of "S." in query.
func schemaSQL(schema, query string) string {
	return strings.ReplaceAll(query, "S.", pgx.Identifier{schema}.Sanitize()+".")
}

// Migrate brings the store's schema up to [SchemaVersion], creating it if
// it does not exist. Each step runs in its own transaction holding a
// transaction-scoped advisory lock for the schema, so that several
// processes may migrate at once: one applies each step and the others
// find it done. Open calls Migrate unless [Options.NoAutoMigrate] is set.
//
// Migrate returns an error wrapping [store.ErrNotAStore] if the schema is
// at a version newer than this build knows, or holds tables but no
// schema_migrations table.
func (s *Store) Migrate(ctx context.Context) error {
	if s.closed.Load() {
		return errClosed("migrate")
	}
	for {
		done, err := s.migrateStep(ctx)
		if err != nil {
			return opError(ctx, fmt.Sprintf("migrate schema %q", s.schema), err)
		}
		if done {
			return nil
		}
	}
}

// migrateStep applies the next pending step, if any, and reports whether
// the schema was already up to date.
func (s *Store) migrateStep(ctx context.Context) (upToDate bool, err error) {
	err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, lockKey("migrate", s.schema)); err != nil {
			return err
		}
		version, err := schemaVersion(ctx, tx, s.schema)
		if err != nil {
			return err
		}
		if version == SchemaVersion {
			upToDate = true
			return nil
		}
		if version == 0 {
			if _, err := tx.Exec(ctx, schemaSQL(s.schema, `
CREATE SCHEMA IF NOT EXISTS `+pgx.Identifier{s.schema}.Sanitize()+`;
CREATE TABLE S.schema_migrations (
	version    integer PRIMARY KEY,
	name       text NOT NULL,
	applied_at timestamptz NOT NULL DEFAULT now()
);`)); err != nil {
				return err
			}
		}
		step := migrations[version] // versions are 1, 2, ...: the next is at index version
		if _, err := tx.Exec(ctx, schemaSQL(s.schema, step.sql)); err != nil {
			return fmt.Errorf("step %d (%s): %w", step.version, step.name, err)
		}
		_, err = tx.Exec(ctx, schemaSQL(s.schema, `INSERT INTO S.schema_migrations (version, name) VALUES ($1, $2)`), step.version, step.name)
		return err
	})
	return upToDate, err
}

// schemaVersion returns the version of the store's schema: 0 when the
// schema does not exist or is empty. A schema with tables but no
// schema_migrations table, or at an unknown version, is a
// *notAStoreError.
func schemaVersion(ctx context.Context, q interface {
	QueryRow(context.Context, string, ...any) pgx.Row
}, schema string) (int, error) {
	var tables, hasMigrations int
	err := q.QueryRow(ctx, `SELECT count(*), count(*) FILTER (WHERE table_name = 'schema_migrations')
		FROM information_schema.tables WHERE table_schema = $1`, schema).Scan(&tables, &hasMigrations)
	if err != nil {
		return 0, err
	}
	if tables == 0 {
		return 0, nil
	}
	if hasMigrations == 0 {
		return 0, &notAStoreError{schema: schema, reason: "it has tables but no schema_migrations table"}
	}
	var version int
	if err := q.QueryRow(ctx, schemaSQL(schema, `SELECT coalesce(max(version), 0) FROM S.schema_migrations`)).Scan(&version); err != nil {
		return 0, err
	}
	if version > SchemaVersion {
		return 0, &notAStoreError{schema: schema, reason: fmt.Sprintf("its schema version %d is newer than this build's %d", version, SchemaVersion)}
	}
	return version, nil
}

// notAStoreError is returned for a schema that does not hold a Monster
// store this build can use; it wraps store.ErrNotAStore.
type notAStoreError struct {
	schema, reason string
}

func (e *notAStoreError) Error() string {
	return fmt.Sprintf("monster: postgres schema %q is not a monster store: %s", e.schema, e.reason)
}

func (e *notAStoreError) Unwrap() error { return store.ErrNotAStore }

// ErrNeedsMigration is returned (wrapped) by Open with
// [Options.NoAutoMigrate] when the schema is missing or older than
// [SchemaVersion]: run Migrate (the monster migrate command) first.
var ErrNeedsMigration = errors.New("monster: postgres schema needs migrating")

// checkVersion is Open's check when it does not migrate.
// checkExists refuses a schema that does not exist or has no tables, for
// Options.MustExist.
func (s *Store) checkExists(ctx context.Context) error {
	var tables int
	if err := s.pool.QueryRow(ctx, `SELECT count(*) FROM information_schema.tables WHERE table_schema = $1`, s.schema).Scan(&tables); err != nil {
		return err
	}
	if tables == 0 {
		return store.Errorf(store.ErrNoStore, "monster: no store at %s, schema %q", s.where, s.schema)
	}
	return nil
}

func (s *Store) checkVersion(ctx context.Context) error {
	version, err := schemaVersion(ctx, s.pool, s.schema)
	if err != nil {
		return err
	}
	if version < SchemaVersion {
		return fmt.Errorf("%w: schema %q is at version %d, this build needs %d (run Migrate, or monster migrate)",
			ErrNeedsMigration, s.schema, version, SchemaVersion)
	}
	return nil
}
