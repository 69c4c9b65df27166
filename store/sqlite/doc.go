// Package sqlite is Monster's embedded store: the whole log, the consumers'
// checkpoints and leases, and their dead letters in one SQLite file, through
// modernc.org/sqlite (pure Go, no cgo). It implements [store.Store] and
// [store.SQLTxAppender].
//
//	s, err := sqlite.Open(ctx, "monster.db", nil) // nil: default Options
//	if err != nil { ... }
//	defer s.Close()
//
// Applications normally reach it through monster.Open rather than directly.
//
// # The file
//
// A store file is an SQLite database whose PRAGMA application_id is
// [ApplicationID] ("MONS") and whose monster_meta table holds
// format_version = [FormatVersion]. Open initialises a file that does not
// exist or is empty (in one IMMEDIATE transaction, so that processes
// opening a new file at once do not race), and refuses, with an error
// wrapping [store.ErrNotAStore] and without writing to it, a file that is
// not an SQLite database, one of another application, or a store of a
// format version this build does not know.
//
// Format version 3 has these tables (times are Unix nanoseconds, UTC; an
// empty key, metadata or idempotency key is NULL):
//
//	events        position INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT UNIQUE, type,
//	              time, key, data BLOB, meta BLOB, idem TEXT (unique where not NULL),
//	              sum INTEGER (the checksum below; NULL for events of version 1)
//	type_counts   type, count: events per type, kept by every append
//	consumers     name, types (JSON array), partitions, created, partitioning
//	              (store.Partitioning's value; '' for consumers of version 2 or earlier)
//	partitions    consumer, partition, checkpoint, owner, lease_expires, failures, in_flight, epoch
//	members       consumer, member, expires
//	dead_letters  consumer, event_id, type, position, partition, attempts, error,
//	              failed_at, retry_requested
//
// Version 1 lacked events.sum, version 2 consumers.partitioning; Open
// upgrades an older file in place (one IMMEDIATE transaction adding the
// columns; the consumers it had keep the partitioning they were registered
// with, key else type), after which builds that read only older versions
// refuse it.
//
// # Checksums
//
// Every event stored by version 2 carries a CRC-32C of its content (ID,
// type, time, key, data, metadata, idempotency key, each framed by its
// length), checked on every read (Read, EventByID, an idempotency key's
// lookup). An event whose bytes were damaged on disk is not returned: the
// read fails with an error wrapping [store.ErrCorrupt] that names its
// position, such as "monster: sqlite: the event at position 42 is corrupt".
// Events stored by version 1 have no checksum and are read unchecked; the
// position itself (the row's key) is not covered, and damage to SQLite's own
// structures is SQLite's to report ("database disk image is malformed").
//
// New files use 4 KiB pages: a group commit of 64 events writes about a
// quarter of the WAL bytes that 16 KiB pages would. An application may keep its
// own tables in the same file (that is what makes LogTx useful), under
// names of its own.
//
// # Connections
//
// Every connection runs with journal_mode=WAL (readers never block the
// writer nor each other), synchronous=FULL (a commit returns after the WAL
// is fsynced: durable on return), busy_timeout = [Options.BusyTimeout],
// foreign_keys on, temp_store=MEMORY, and _txlock=immediate: every
// transaction, the store's and the application's, takes the write lock at
// BEGIN, so two transactions never deadlock trying to upgrade a read lock.
//
// The store writes on one connection of its own, after queueing on a lock
// shared by every Store of the process on the same file; other processes
// meet it in SQLite's file lock. Append sends a batch as a few multi-row
// INSERTs in one transaction and one commit. Checkpoints (copying the WAL
// back into the database file) run mostly on a goroutine of the store
// rather than on the committing connection. Read works on the driver
// connection directly, without database/sql's per-column conversion.
//
// # Positions and the no-skip rule
//
// A position is the event's rowid. SQLite has one writer at a time, and the
// store's transactions hold the write lock from BEGIN to COMMIT, so each
// transaction's events get the positions after the highest one committed
// and become visible, all at once, before the next transaction can commit:
// commits are in position order, and a reader's snapshot (a WAL read
// transaction) always holds a prefix of the log. No later Read can return
// an event at or below a position an earlier Read returned. AUTOINCREMENT
// keeps a position from ever being handed out twice, and a rolled-back
// transaction leaves no hole: its positions are used by the next one.
//
// # Several processes
//
// Processes on one machine may open the same file at once, as may several
// Stores in one process; SQLite's locks and the WAL's shared-memory index
// coordinate them. As for any SQLite database in WAL mode, the file must be
// on a local file system: not on NFS or another network file system.
// Writers wait up to [Options.BusyTimeout] for the write lock, after which
// the operation fails with "database is locked". Consumer members in
// different processes share partitions through leases whose expiry times
// come from the members' clocks, which must roughly agree.
//
// # Events in the application's transactions
//
// For LogTx, begin the transaction on [Store.DB] and pass it to
// [Store.AppendTx]: the events exist if and only if the transaction
// commits.
//
//	tx, err := s.DB().BeginTx(ctx, nil)
//	...
//	_, err = tx.ExecContext(ctx, "UPDATE accounts SET ...")
//	...
//	_, err = s.AppendTx(ctx, tx, events)
//	...
//	err = tx.Commit()
//
// Such a transaction holds the file's write lock from BEGIN to COMMIT: every
// other writer, in this process and others, waits for it, so keep it short.
// Inside it, do not call store methods that write (Append, consumer
// operations) from the same goroutine: they wait for the lock the
// transaction holds, and fail after the busy timeout. AppendTx works under
// a savepoint, so a failed AppendTx leaves the transaction as it was.
package sqlite
