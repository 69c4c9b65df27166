// Package nats is Monster's NATS JetStream store (through the official
// client, nats.go and its jetstream package): the log in one stream, the
// consumers' checkpoints, leases, members and dead letters in another, both
// replicated by JetStream's Raft groups on a cluster. It implements
// [store.Store] and [store.Notifier].
//
// It is a module of its own, so that programs that do not use NATS never
// compile or download its client. Import it for its side effect to make
// monster.Open take nats:// URLs:
//
//	import _ "github.com/gomonster/monster/store/nats"
//
//	m, err := monster.Open(ctx, "nats://10.0.0.1:4222,10.0.0.2:4222,10.0.0.3:4222?replicas=3", nil)
//
// or open it directly, with [Options]:
//
//	s, err := nats.Open(ctx, "nats://10.0.0.1:4222", &nats.Options{Prefix: "orders", Replicas: 3})
//	m := monster.New(s, nil)
//
// The URL lists one or more servers, with user:password@ or token@ before
// the first (it applies to all), and these parameters: prefix (see
// [Options.Prefix]), replicas, creds (a credentials file) and max_batch
// ([Options.MaxBatchMessages]).
//
// # Servers
//
// The oldest nats-server supported is [MinServerVersion], 2.12.0: Append
// relies on atomic batch publish, which arrived in 2.12 (batched direct
// gets, used by Read, in 2.11). Open refuses an older server with an error
// naming both versions. The server must run JetStream with file storage;
// for events of the runtime's default MaxEventSize (1 MiB) its max_payload
// must be raised above the 1 MiB default (8 MiB is a good value), since an
// event's message carries its metadata too.
//
// # Streams and subjects
//
// With the default prefix "monster" the store keeps:
//
//	monster_events   the log: one message per event on monster.ev.<type>,
//	                 with an ID marker on monster.id.<event ID> and, for an
//	                 event with an idempotency key, a marker on
//	                 monster.ik.<key> (IDs and keys base64url-encoded);
//	                 file storage, limits retention with no limits, deletes
//	                 and purges denied, direct gets and atomic batches allowed
//	monster_state    one message per consumer on monster.st.c.<name> and per
//	                 dead letter on monster.st.dl.<consumer>.<event ID>,
//	                 keeping the last message of each subject; no direct gets
//	monster.wake     a core NATS subject (not stored) for wake-ups
//
// Event types are dotted words, so each type is a subject of its own, as
// each type is a collection in pymonster. An event's message body holds
// the event whole (a format byte, type, ID, key, idempotency key, metadata,
// time, then the data), so it reads back byte for byte. Open creates missing
// streams and checks existing ones: a stream of the store's name made by
// something else (no Monster metadata, other subjects, retention or
// storage, limits that would delete messages) is refused with an error
// wrapping [store.ErrNotAStore], and left as it is. The replica count of
// an existing stream is the operator's to change (nats stream edit); Open
// does not compare it, and a process reads the count when it opens the
// store.
//
// The ID markers have a cost: the server keeps an index entry per subject,
// so its memory grows with the log (an embedded server's heap grew by 41
// MB over 200,000 events, about 200 bytes per event, its caches
// included). Plan the servers' memory for the number of events kept.
//
// Each store holds two connections: one carries Appends' batches, the
// other everything else. TLS and other connection settings go in
// [Options.NATSOptions] (nats.RootCAs, nats.ClientCert, ...).
//
// # Positions and the no-skip rule
//
// An event's position is its message's stream sequence. Markers take
// sequences too, so positions have gaps; they only increase. JetStream
// assigns sequences in the order in which it commits messages: on one
// server under the stream's lock, on a cluster in the order of the stream's
// Raft log, whose entries every replica applies in order and only once a
// majority has them. Every replica's copy of the stream is therefore a
// prefix of the committed log, with no holes: a message at sequence n is
// never stored, on any replica, before every message below n is. The
// server also reads a batched direct get under the stream's read lock, so a
// batch is never seen half stored on one server.
//
// Read asks for the messages after a position with one batched direct get
// ($JS.API.DIRECT.GET.<stream> with seq, batch and no_hdr), which any
// replica may answer, and keeps the events, passing markers. It asks for
// bodies only, so each event's position is counted from the first
// sequence asked for: the stream has no gaps (deletes and purges are
// denied, and it has no limits), and the end of the batch names the last
// sequence sent, which Read checks; a batch with a gap is read again with
// each message's headers. What a batch returns is a run of that replica's
// prefix: a later read can only find events above it, never
// one below, which is the no-skip rule, whichever replica answers and while
// a leader changes (a new leader has every committed entry). A follower may
// lag, though: when a replicated stream's answer ends before the limit, the
// store asks the leader for the next event ($JS.API.STREAM.MSG.GET), so a
// read sees every event acknowledged before it began, as the contract's
// shared handles must. Head, EventByID and the consumers' state are read
// through the leader too.
//
// # Durability
//
// Append returns after JetStream's acknowledgement of the batch's commit.
// What an acknowledged event survives depends on the servers:
//
//   - One server with sync_interval: always (the Go option SyncAlways):
//     the server syncs each write to disk before it acknowledges, so an
//     event survives a crash of the process, the machine or its power; not
//     the loss of the disk. Replicas 1 is a single copy.
//   - One server with the default sync_interval (2 minutes): an
//     acknowledged event is in the operating system's page cache only; a
//     crash of the process is survived, a power loss or kernel crash may
//     lose up to the last two minutes. This is not durable on return, and
//     the store cannot detect the setting from the client: configure it.
//   - Three servers, replicas 3, each with sync_interval: always: an event
//     is acknowledged once a majority has it stored and synced; it survives
//     the loss of any one server, its disk included, and crashes of all.
//     With the default sync interval, the majority holds it in memory only.
//
// Jepsen's analysis of NATS 2.12.1 (December 2025) found that JetStream,
// with its default of syncing every two minutes, lost acknowledged writes
// under coordinated power failures, and under an operating system crash of
// a single node combined with network delays or process pauses, with
// persistent split-brain; and that it lost acknowledged writes when data
// files were truncated or corrupted on a minority of nodes, which no sync
// setting prevents. It also reported that process crashes could lose
// streams in 2.10.22, fixed in 2.10.23. Run every node with sync_interval:
// always, and see docs/operations.md.
//
// # Appends: group commit and all or none
//
// The runtime group-commits concurrent Log calls into one Append; the store
// publishes an Append's messages (each event, its ID marker, its
// idempotency marker) as one JetStream atomic batch: headers Nats-Batch-Id
// and Nats-Batch-Sequence on every message, Nats-Batch-Commit on the last,
// which is sent as a request and answered once the whole batch is
// committed, with one sync, or rejected whole. So an Append is stored
// entirely or not at all, and many Log calls share one round trip and one
// sync. Messages before the commit are published without waiting; a batch
// whose commit is never sent (a closed connection, a cancelled call) is
// dropped by the server.
//
// The server limits an atomic batch to 1,000 messages by default
// (jetstream { limits { max_batch_size } }, [ServerDefaultMaxBatch]). An
// event needs two messages, three with an idempotency key, so by default
// an Append of more than 333 to 500 events is refused whole by the server,
// and Append returns an error wrapping store.ErrTooManyEvents, having
// stored nothing. The runtime's group commit, which may gather up to 4,096
// concurrent Log calls, then commits the callers of that group in parts
// and forms smaller groups from then on; a single LogBatch larger than the
// limit fails whole. Run the servers with max_batch_size: 12288 (3 ×
// 4,096; tested on one node and on a cluster, 4,096 events with keys
// committed in about 120 ms) so that every group commit fits in one batch
// and a LogBatch of up to 4,096 events is accepted.
// [Options.MaxBatchMessages] makes the store refuse a larger Append before
// it sends anything, with the same error. The server also allows 50
// batches in flight per stream; a batch turned away for that, stored
// nowhere, is sent again.
//
// # Idempotency keys and event IDs
//
// The idempotency marker is published with
// Nats-Expected-Last-Subject-Sequence: 0, so the batch commits only if no
// event with the key was ever stored: a key is honoured for the life of the
// stream, not only within JetStream's two-minute duplicate window (which
// the store does not use). When the batch fails on that condition, the
// store reads the stored events by their keys' markers, returns them as
// duplicates and sends the rest again. ID markers carry the same condition,
// so an event ID is stored once; EventByID reads the ID's marker and the
// event just before it. A commit that gets no answer (timeout, lost
// connection) may have been stored: Append then reads its first event's ID
// marker, and if it is there (the batch is atomic) returns the events as
// stored; if not, the batch may still be committing, and Append returns an
// error wrapping [store.ErrAmbiguousCommit].
//
// Calls waiting on a connection that drops end at once (the answers will
// not come), and reads are asked again after half a second without an
// answer (a request that reached a node going down, or a stream between
// leaders, gets none): consumers went on within 0.1 to 0.5 s of a leader's
// shutdown in the failover test, instead of after the request timeout.
//
// # Consumers' state
//
// A consumer's registration, partitions (checkpoint, owner, lease expiry,
// epoch, failures, in flight) and members' heartbeats are one JSON message
// on its subject in the state stream. Every change reads the last message
// through the leader and publishes the next with
// Nats-Expected-Last-Subject-Sequence set to the sequence read: JetStream
// stores it only if no one wrote in between, else the store reads again and
// retries. A claim, a set of checkpoints or a reset is therefore one atomic
// write: SaveCheckpoints saves all or none, two members never both win a
// partition. Dead letters are one message each; the consumer's count of
// them is the number of their subjects in the stream's state. Lease expiry
// compares the times members pass in, so members' clocks must roughly
// agree. Nothing is kept in one process's memory: any process opening the
// store sees the same state.
//
// # Wake-ups
//
// After each acknowledged Append the store publishes an empty core NATS
// message on <prefix>.wake; [Store.Notifications] subscribes to it, so
// consumers in every process hear of new events within a round trip,
// without a poll interval. It is sent after the acknowledgement, not
// before (the stream's own subjects carry a batch's messages before it
// commits), and it is best effort: a producer that dies between the two
// leaves the runtime's polling (Options.PollInterval) to find the events.
//
// # Performance
//
// Figures from the bench program (go run ./bench -systems
// monster-nats,monster-nats-r3,jetstream-sync -workloads ...), several runs
// on a shared 2-core machine whose disk sync latency varies from run to
// run; all servers embedded, every write synced; ranges over the runs:
//
//	                     one node          3 nodes, R3       raw JetStream, one node
//	Log, 1 producer      223-243/s         778-918/s         1,798-2,421/s (sync publish)
//	Log, 64 producers    9,287-12,788/s    9,386-22,523/s    1,927-5,815/s (sync publish)
//	burn-down, 100,000   184,000-191,000/s 149,000-154,000/s 154,000-175,000/s (pull
//	  events, 1 worker                                       consumer, explicit acks)
//	latency at 1,000/s   p50 13 ms         p50 4.3 ms        p50 0.9-2.4 ms
//	  (Log to handler)   p99 55-64 ms      p99 18-20 ms      p99 2.4-66 ms
//
// Reads are as fast as JetStream's own consumers (Read asks for message
// bodies only and counts positions). Writes are not: on one node,
// nats-server stages each atomic batch of a file stream with one replica
// in a file store of its own, created and removed per batch, which costs
// about 5 ms per Append whatever its size (an atomic batch of one message
// took 4.7 ms where a plain synced publish took 0.28 ms); on a cluster the
// batch is staged in memory and an Append of one event takes about 0.75
// ms. The runtime's group commit makes 64 producers share those costs,
// 2× to 5× JetStream's synchronous publishes, short of the 10× our SQLite
// and PostgreSQL stores reach. Appends use a connection of their own, so
// that reads and consumers' updates never queue behind a batch being
// staged.
//
// # Counts and times
//
// CountByType for the whole log reads the stream's count of messages per
// subject (stream info with a subject filter), without reading events;
// for the events after a position it reads them. PositionBefore compares
// the events' own times (the producers' clocks, not the server's) and reads
// the log from the beginning to answer: it is for operators' resets, not
// for hot paths.
package nats
