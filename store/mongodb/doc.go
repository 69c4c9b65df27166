// Package mongodb is Monster's MongoDB store (official driver v2): events in
// one collection per event type, as pymonster keeps them, and the
// consumers' checkpoints, leases, members and dead letters in collections
// of their own. It implements [store.Store]; it works on MongoDB and on
// FerretDB v1 (its conformance suite runs against FerretDB embedded in the
// test binary, and against a real mongod when MONSTER_TEST_MONGO_URL is
// set).
//
// It is a module of its own, so that programs that do not use MongoDB
// never compile the driver. Import it for its side effect to make
// monster.Open take mongodb:// (and mongodb+srv://) URLs:
//
//	import _ "github.com/gomonster/monster/store/mongodb"
//
//	m, err := monster.Open(ctx, "mongodb://db.internal:27017/shop", nil)
//
// The URL's path names the database ("monster" when it names none). Every
// write uses write concern majority with journaling unless
// [Options.WriteConcern] says otherwise.
//
// # Collections
//
//   - events_<type> (the prefix is [Options.Prefix]; dots in the type become
//     underscores): one document per event, _id the event ID, with pos (its
//     position, indexed for consumers' reads), type, time (a BSON date for
//     people; tns keeps the nanoseconds), key, data and meta (the JSON text
//     exactly as logged, as a string; binary if it is not valid UTF-8) and
//     idem (the idempotency key). `db.events_user_bought_shirt.find()` shows
//     a type's events, as in pymonster.
//   - monster_log: the global order, one small document per event: _id the
//     position, id (unique index), type and tns. Read walks it in position
//     order and fetches the events from their types' collections, so a
//     consumer sees one log across all collections.
//   - monster_idempotency: _id the idempotency key, with the event's
//     position, ID and type; the unique _id is the unique index of keys.
//   - monster_counters and monster_counter_versions: the log's head (see
//     below): committed position, append lock, per-type counts (so
//     CountByType(0) reads one document), and a format marker.
//   - monster_consumers and monster_consumer_versions: each consumer with
//     its partitions (checkpoint, owner, lease expiry, epoch, failures, in
//     flight) and its partitioning (absent for consumers registered
//     before it was stored: key, else type), as one state per consumer.
//   - monster_members: heartbeats, one document per consumer and member.
//   - monster_dead_letters: one document per consumer and event.
//
// # Compare-and-set without transactions
//
// The store uses no multi-document transaction and no change stream:
// FerretDB v1 has neither. Worse, FerretDB evaluates
// the filter of an update or findAndModify apart from the write (it reads
// the matching documents, then writes them back by _id), so a conditional
// update ({_id, version: v} → version v+1) is not a compare-and-set there.
// What is atomic on every server is inserting a document whose _id already
// exists: it fails with a duplicate-key error. The store builds every
// compare-and-set on that.
//
// Small states that change as a whole (the log's head, each consumer) are
// kept as versions: version v+1 of a key is a new document with _id
// "key\x00v+1" in the *_versions collection, written only by a writer that
// read version v as the latest; of two writers that read the same version,
// one insert fails and that writer reads again and retries. Readers find
// the latest version by probing _ids forward (galloping, then bisecting)
// from a hint: the cache document in monster_counters or
// monster_consumers, which the last writer replaces after its insert (it
// may be stale; it is only where the search starts). Old versions are
// deleted once there are more than 1024 newer ones and they are an hour
// old; a writer that stalled for an hour between reading a version and
// writing the next could write into a deleted slot, and that is the one
// assumption on timing the scheme makes.
//
// A consumer's partitions live in its one state, so Claim (with its Epoch
// increments), SaveCheckpoints (all or nothing, and only if the member
// holds every partition), Release, Leave and ResetConsumer are each one
// atomic insert. DeleteConsumer writes a deleted state, then removes the
// consumer's members and dead letters.
//
// # Positions, all-or-nothing appends and no skipped events
//
// Appends are serialised by a lease-style lock in the log's head: an
// appender writes the next head version with itself as owner and a lease
// (10s, [Options.AppendLease]) over a head that is free, or whose owner's
// lease expired (a crashed process). Appends of one process also queue on
// a local mutex first; Monster's runtime already groups concurrent Log
// calls into one Append.
//
// Holding the lock, with the head's committed position C, an append:
//
//  1. if the head is marked dirty (an earlier append failed or its owner
//     died), deletes every document at a position after C from
//     monster_log, monster_idempotency and the type collections those log
//     entries name;
//  2. resolves idempotency keys against positions ≤ C;
//  3. inserts the log entries at C+1…C+n, the idempotency keys and the
//     events. A duplicate key here means leftovers of an appender whose
//     lease expired (or of this append's own first try): step 1 again,
//     then one more try; a duplicate then is an event ID already stored
//     (monster_log's unique index on id), and the append fails;
//  4. commits by writing the head version after its lock version with
//     committed C+n, the new counts, and no owner.
//
// Readers (Read, EventByID, Head, PositionBefore, CountByType) first read
// the head and never look past its committed position. So a batch becomes
// visible all at once with step 4, or never: a crash anywhere before it
// leaves documents past C that no reader returns and that the next append
// deletes (the head stays marked dirty by the failed append, or is taken
// over as expired). Positions ≤ C are all occupied by committed events and
// monster_log's _id is unique, so nothing can ever be added at or below a
// position a reader has seen: the no-skip rule holds without transactions.
//
// One imperfection remains: an appender whose lease expired and who keeps
// writing after the next appender cleaned up can leave an event document
// in a type collection that no log entry names. Reads never return it
// (they go through monster_log), but it shows in the mongo shell until
// removed by hand; it takes a process stalled for longer than the lease.
//
// The commit in step 4 is an insert of version L+1 where L is the lock's
// version. If it fails with a duplicate key, the lease expired and another
// appender took the lock over: nothing was committed, and Append says so.
// If its outcome is unknown (a network error, a cancelled context), Append
// settles it by trying to insert version L+1 itself as an abort: if that
// succeeds the batch can never commit and Append returns a plain error; if
// L+1 exists, it reads it and returns success if it is its own commit.
// Only when even that fails does Append return an error wrapping
// store.ErrAmbiguousCommit.
//
// # When the server is unreachable
//
// Every operation fails with an error starting "monster: mongodb:" once
// the driver gives up selecting a server: after the connection string's
// serverSelectionTimeoutMS (30s by default; lower it, for example
// ?serverSelectionTimeoutMS=2000, to make Log fail faster during an
// outage), or at once when a pooled connection is found broken. Log
// returns that error and stores nothing (nothing is dropped silently). An
// append cut off after its commit was sent is settled as described above,
// or reported with store.ErrAmbiguousCommit. Consumers' reads, lease
// renewals and checkpoints fail meanwhile: members stop handling once their
// leases run out, and when the server is back the driver reconnects by
// itself, members claim their partitions again and go on from their saved
// checkpoints. An append that was holding the append lock when the
// connection went leaves it to expire ([Options.AppendLease]).
// TestDatabaseDownAndBack checks this through a TCP proxy it cuts and
// restores.
//
// # What FerretDB lacks, and how the store copes
//
//   - Change streams: the store implements no [store.Notifier]; Monster's
//     runtime polls (Read after the last position) to see events appended
//     by other processes.
//   - Transactions and atomic conditional updates: versions with unique
//     _ids, as above.
//   - Range and sort push-down on SQLite: FerretDB filters and sorts in
//     its own memory, so a Read scans monster_log there. Point reads by
//     _id are pushed down, which is why the head is found by probing _ids.
//     On MongoDB these are index scans.
//
// # Clocks
//
// Lease expiry times (partitions and the append lock) are compared with
// the caller's or the local clock: members of one store need roughly
// synchronised clocks, as for every Monster store.
package mongodb
