// Package postgres is Monster's PostgreSQL store (through pgx v5): the log,
// the consumers' checkpoints and leases, and their dead letters in tables
// of one schema. It implements [store.Store], [store.SQLTxAppender] and
// [store.Notifier].
//
// It is a module of its own, so that programs that do not use PostgreSQL
// never compile or download pgx. Import it for its side effect to make
// monster.Open take postgres:// and postgresql:// URLs:
//
//	import _ "github.com/gomonster/monster/store/postgres"
//
//	m, err := monster.Open(ctx, "postgres://app@db.internal/app?monster_schema=events", nil)
//
// or open it directly, with [Options]:
//
//	s, err := postgres.Open(ctx, "postgres://app@db.internal/app", &postgres.Options{Schema: "events"})
//	m := monster.New(s, nil)
//
// # Schema and migrations
//
// The tables live in one schema, "monster" unless [Options.Schema] or the
// URL's monster_schema parameter names another, so several stores may share
// a database. The schema's history is a list of numbered steps recorded in
// its schema_migrations table; [Store.Migrate] applies the missing ones,
// each in its own transaction holding a transaction-scoped advisory lock
// for the schema, so processes that start at once do not race: one applies
// a step, the others find it applied. Open migrates unless
// [Options.NoAutoMigrate] is set, in which case it refuses a schema that is
// not at [SchemaVersion] with [ErrNeedsMigration], and an operator runs
// Migrate (monster migrate) with a role allowed to change the schema.
//
// Version 2 has these tables (an empty key, metadata or idempotency key is
// NULL; times are timestamptz, to the microsecond):
//
//	events             position bigint PRIMARY KEY, id text UNIQUE, type, time, key,
//	                   data bytea, meta bytea, idem text (unique where not NULL)
//	type_totals        type, count: events per type up to totals_through
//	totals_through     position: one row; the events after it are counted when
//	                   asked, and folded into type_totals in the background
//	type_counts        version 1's events per type, kept by every append; no
//	                   longer used (version 1 processes still running during
//	                   an upgrade write it)
//	consumers          name, types text[], partitions, created
//	partitions         consumer, partition, checkpoint, owner, lease_expires,
//	                   failures, in_flight, epoch
//	members            consumer, member, expires
//	dead_letters       consumer, event_id, type, position, partition, attempts,
//	                   error, failed_at, retry_requested
//	schema_migrations  version, name, applied_at
//
// Data and metadata are kept as bytea, byte for byte as logged: the json
// type would keep them too, but would refuse some JSON Go accepts (invalid
// UTF-8 in strings). To look at them in psql, convert:
// convert_from(data, 'UTF8')::jsonb.
//
// # Positions and the no-skip rule
//
// Positions come from a sequence, and writers in several processes commit
// in any order: a reader doing "position > checkpoint" over a plain
// sequence would pass a position whose transaction commits a moment later,
// and skip that event forever. The store prevents it with an append lock:
// every append transaction, the store's own and an application's
// (AppendTx, AppendPgxTx), first takes a transaction-scoped advisory lock
// for the schema (pg_advisory_xact_lock), then draws its positions from
// the sequence and inserts its events; the lock is released when the
// transaction ends. So:
//
//   - appending transactions hold positions one transaction at a time, and
//     each draws positions above those of every transaction that held the
//     lock before it;
//   - PostgreSQL releases a transaction's locks only after its commit is
//     visible to new snapshots, so when a transaction gets the lock, the
//     previous holder's events are already visible (or rolled back, leaving
//     a harmless gap);
//   - a reader's snapshot (one statement) that sees a transaction's events
//     therefore sees every event at a lower position that will ever exist.
//
// No later Read can return an event at or below a position an earlier Read
// returned. This holds across processes and for applications' long
// transactions alike; TestNoSkippedEvents checks it (and fails within one
// trial when the lock is taken out), with writers holding database/sql and
// pgx transactions open for random times.
//
// The price is that appends are serialised per schema, the COMMIT's WAL
// flush included. The runtime's group commit hands the store many Log calls
// in one Append (one transaction, one multi-row INSERT, one flush), which is
// how 64 concurrent producers still reach tens of thousands of events per
// second. An application transaction holds the lock from its AppendTx until
// it ends: keep it short after logging (log last, just before COMMIT), and
// never call Log, which waits for the same lock, inside it. An append that
// waits longer than [Options.AppendLockTimeout] fails with an error saying
// so instead of hanging.
//
// # Events in the application's transactions
//
// LogTx (the transactional outbox) takes a *sql.Tx begun on [Store.DB], a
// database/sql handle on the store's own pool through pgx's stdlib driver:
//
//	tx, err := m.DB().BeginTx(ctx, nil)
//	_, err = tx.ExecContext(ctx, "UPDATE accounts SET ...")
//	_, err = m.LogTx(ctx, tx, "account.debited", debit)
//	err = tx.Commit()
//
// Applications on pgx log with [LogTx] and a pgx.Tx (from [Store.Pool] or
// any pgx connection to the same database):
//
//	tx, err := pool.Begin(ctx)
//	_, err = tx.Exec(ctx, "UPDATE accounts SET ...")
//	_, err = postgres.LogTx(ctx, m, tx, "account.debited", debit)
//	err = tx.Commit(ctx)
//
// Both prepare the event exactly as m.Log does (log middleware,
// validation of declared types, the undeclared policy, the size limit,
// WithKey, WithMeta, WithIdempotencyKey): the monster package, which does
// not import pgx, exposes that preparation as Monster.LogExternalTx: LogTx
// hands it the pgx.Tx, and the store appends the prepared event with
// [Store.AppendInTx] (store.TxAppender), which calls [Store.AppendPgxTx].
// Code that works on stores directly calls [Store.AppendTx] and
// [Store.AppendPgxTx] with store.NewEvent values. Either way the events
// exist if and only if the transaction commits, and are durable when the
// commit returns (consumers hear of them through the commit's NOTIFY);
// the work is done under a savepoint, so a failed append leaves the
// transaction as it was. The no-skip rule holds at every isolation
// level; under REPEATABLE READ or SERIALIZABLE, though, an idempotency key
// that another transaction committed after the caller's snapshot was taken
// makes the append fail (a unique violation) instead of returning the
// stored event.
//
// # Durability and connections
//
// Every connection runs with synchronous_commit = on, whatever the server's
// default: Append returns after the commit's WAL is flushed. When a
// connection is lost before an operation's COMMIT was sent, the store
// drops its idle connections and tries once more on a new one, so the
// first call after a server restart succeeds; while the server is
// unreachable, calls fail with errors that say what failed, and nothing is
// dropped silently. An Append whose connection is lost after the COMMIT was
// sent returns an error wrapping [store.ErrAmbiguousCommit].
//
// Open makes [Options.WarmConns] connections (4 by default) before it
// returns, so that the first events logged and consumed after it do not
// wait for the server to start new backends.
//
// # Wake-ups
//
// Each append queues a NOTIFY on the channel "monster.<schema>", which the
// server delivers when (and only if) the transaction commits.
// [Store.Notifications] LISTENs on one connection of its own and wakes
// the runtime's consumers, in this process and others, within a
// millisecond or so of the commit. When that connection fails it
// reconnects with backoff and wakes every consumer once it is back, since
// notifications sent meanwhile are lost; the runtime's polling
// (Options.PollInterval) remains the fallback.
//
// # Leases and checkpoints
//
// Claims are single UPDATEs whose condition (free, expired or already the
// member's) PostgreSQL evaluates again on the latest version of each row,
// so two members never both win a partition. SaveCheckpoints locks the
// partitions' rows, checks that the member holds every one, and writes all
// checkpoints or none. Lease expiry compares the times members pass in, so
// members' clocks must roughly agree. TestScaleOut runs the core module's
// three-process test (internal/crashtest) on a schema: one consumer in
// three worker processes, one killed with SIGKILL, its partitions taken
// over within the lease time, every event handled in per-key order.
package postgres
