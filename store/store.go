// Package store defines the contract between Monster's runtime and the
// databases that keep its events, in the manner of database/sql/driver.
//
// Application code does not use this package; it opens a store through
// monster.Open and uses the monster API. Store authors implement [Store] and
// run the conformance suite in package storetest, which checks every
// guarantee of the design (durability, no skipped events, leases, dead
// letters) against the implementation.
//
// # Model
//
// A store keeps one append-only log of events. Each committed event has a
// position: a positive integer, unique in the store, that increases in the
// order in which readers may observe events. The single most important
// promise a store makes is the no-skip rule: once [Store.Read] has returned
// an event at position p, no later call may ever return a new event at a
// position lower than or equal to p. Stores where writers can commit out of
// position order (a sequence in PostgreSQL) must hide uncommitted gaps from
// readers; stores with a single writer (SQLite) get the rule for free.
//
// Consumers' progress is kept per consumer and per partition: a checkpoint
// is the highest position up to which every event of that partition has
// been handled or dead-lettered. Partitions are claimed by members (one per
// running process) with time-limited leases; a store compares lease expiry
// times with the now passed in by the caller, so all members of one store
// must have roughly synchronised clocks.
//
// # Errors
//
// Methods return [ErrNotFound] for a missing event, consumer or dead
// letter, [ErrLeaseLost] when a member writes to a partition it no longer
// holds, and [ErrConflict] for a request that contradicts stored state (a
// consumer re-registered with a different partition count). Any other
// error means the store could not do the work; the caller may retry.
// Messages start with "monster: ", and name the store and the operation;
// [Errorf], [OpError] and [ClosedError] word them the same way for every
// store, and [ValidateNewEvents] and [ValidateConsumerSpec] make the checks
// every store must make before it writes.
//
// # Optional capabilities
//
// What a store can do beyond [Store] it says by implementing an optional
// interface, found with a type assertion, as database/sql/driver does:
// [SQLTxAppender] (appends inside the application's own database/sql
// transaction), [TxAppender] (the same for a driver's own transaction type)
// and [Notifier] (wake-ups when other processes append). A store that wraps
// another returns [Wrap](wrapper, inner), which keeps the inner store's
// capabilities visible. The conformance suite (package storetest) tests
// each capability a store implements; what a store cannot do at all
// (persist across Close, be shared by processes) its test harness declares.
//
// # Stability
//
// This contract is for store authors, inside and outside this module, and
// it will grow (history queries are planned). The rules:
//
//   - A call's parameter struct, and a record a store keeps (ConsumerSpec,
//     ConsumerInfo), may gain fields. A new field's zero value always means
//     what the call meant before: a store that ignores a new field of a
//     request stays correct. A new field a store must keep (as
//     ConsumerSpec.Partitioning) is listed under "Store contract" in the
//     release notes, with a conformance test that fails until the store
//     keeps it.
//   - A new capability arrives as a new optional interface, never as a new
//     method of [Store].
//   - A new required method of [Store], or a changed meaning of an existing
//     one, happens only at a new minor version of this module (v0.x) and is
//     listed under "Store contract" in the release notes; the conformance
//     suite gains tests for it at the same time, so a store that still
//     passes package storetest of the new version keeps every promise.
//   - The conformance suite may gain tests at any release: run it in your
//     CI against the version you depend on.
package store

import (
	"context"
	"database/sql"
	"errors"
	"time"
)

// Sentinel errors a store returns, wrapped or as they are.
var (
	// ErrNotFound means the event, consumer or dead letter does not exist.
	ErrNotFound = errors.New("monster: not found")
	// ErrLeaseLost means the member no longer holds the partition it tried
	// to write a checkpoint for: its lease expired and moved, or an operator
	// reset the consumer.
	ErrLeaseLost = errors.New("monster: partition lease lost")
	// ErrConflict means the request contradicts what is stored.
	ErrConflict = errors.New("monster: conflict with stored state")
	// ErrTooManyEvents means an Append held more events than the store can
	// commit at once; nothing was stored.
	ErrTooManyEvents = errors.New("monster: too many events for one commit")
	// ErrNotAStore means the file or database exists but does not hold a
	// Monster store (or holds one of an unknown format version).
	ErrNotAStore = errors.New("monster: not a monster store")
	// ErrNoStore means there is no store where one was to be opened (no
	// file, an empty file, no schema) and the caller asked that none be
	// created: the store packages' MustExist options.
	ErrNoStore = errors.New("monster: no store")
	// ErrCorrupt means stored data does not match the checksum stored
	// with it: the store's files or tables were damaged. The error names
	// what is damaged (the event's position).
	ErrCorrupt = errors.New("monster: stored data is corrupt")
)

// NewEvent is an event about to be appended. The runtime has already
// validated and encoded it.
type NewEvent struct {
	// ID is the event's unique identifier, chosen by the runtime (a UUIDv7).
	ID string
	// Type is the event type, a validated dotted name.
	Type string
	// Time is when the event was logged, in UTC.
	Time time.Time
	// Key orders events: a consumer handles events with the same key one at
	// a time, in log order. Empty means no key.
	Key string
	// Data is the event's JSON payload; never empty.
	Data []byte
	// Meta is a JSON object with metadata, or nil.
	Meta []byte
	// IdempotencyKey, when not empty, makes the append idempotent: if an
	// event with the same idempotency key is already stored (or earlier in
	// the same batch), the store does not append a new one and returns the
	// stored event instead, with Duplicate set.
	IdempotencyKey string
}

// Event is a stored event.
type Event struct {
	ID             string
	Type           string
	Position       int64
	Time           time.Time
	Key            string
	Data           []byte
	Meta           []byte
	IdempotencyKey string
}

// AppendResult is the outcome of appending one NewEvent.
type AppendResult struct {
	// Event is the stored event: the one just appended, or the earlier one
	// with the same idempotency key.
	Event Event
	// Duplicate reports that no new event was appended because of the
	// idempotency key.
	Duplicate bool
}

// ConsumerSpec describes a consumer when it registers.
type ConsumerSpec struct {
	// Name identifies the consumer in the store.
	Name string
	// Types are the subscription's patterns, kept for operators.
	Types []string
	// Partitions is the number of partitions; fixed when the consumer is
	// first registered.
	Partitions int
	// Start is the checkpoint every partition gets when the consumer is
	// first registered: 0 to start at the beginning of the log, or the
	// position after which to start.
	Start int64
	// Partitioning is how the runtime spreads the consumer's events over
	// its partitions; like Partitions, it is fixed when the consumer is
	// first registered. A store keeps it as given and returns it in
	// ConsumerInfo; registering an existing consumer leaves the stored
	// value as it is, whatever the spec says (the runtime compares them).
	// The zero value is [PartitionByKeyOrType], what every consumer
	// registered before the field existed uses.
	Partitioning Partitioning
}

// Partitioning names how a consumer's events are spread over its
// partitions. Moving an event to another partition could skip it (the new
// partition's checkpoint may be past it), so a consumer keeps the
// partitioning it was registered with for as long as it exists; the store
// keeps it for the runtime.
type Partitioning string

const (
	// PartitionByKeyOrType hashes the event's key, or its type when it has
	// none: all keyless events of one type share a partition. The zero
	// value, so that consumers registered before partitionings were
	// stored (and stores that do not keep the field) mean it.
	PartitionByKeyOrType Partitioning = ""
	// PartitionByKeyOrID hashes the event's key, or its ID when it has
	// none: keyless events, which have no order to keep, spread over every
	// partition. New consumers use it unless they order by a function of
	// their own.
	PartitionByKeyOrID Partitioning = "key-or-id"
	// PartitionByOrderKey hashes the ordering key the consumer's own
	// function derives from each event (ConsumerOptions.OrderBy), or the
	// event's ID when the function returns none. The store keeps only
	// that the consumer orders by a function, not the function.
	PartitionByOrderKey Partitioning = "order-key"
)

// Known reports whether p is one of the partitionings this version of the
// runtime knows.
func (p Partitioning) Known() bool {
	switch p {
	case PartitionByKeyOrType, PartitionByKeyOrID, PartitionByOrderKey:
		return true
	}
	return false
}

// String returns the stored name, or "key-or-type" for the zero value.
func (p Partitioning) String() string {
	if p == PartitionByKeyOrType {
		return "key-or-type"
	}
	return string(p)
}

// ConsumerInfo is a consumer's stored state.
type ConsumerInfo struct {
	Name    string
	Types   []string
	Created time.Time
	// Partitioning is the partitioning stored when the consumer was first
	// registered (see [ConsumerSpec]); the zero value for a consumer
	// registered before it was stored.
	Partitioning Partitioning
	Partitions   []PartitionInfo
	// DeadLetters is the number of dead letters the consumer has.
	DeadLetters int64
}

// PartitionInfo is one partition's stored state.
type PartitionInfo struct {
	Partition int
	// Checkpoint: every event of this partition at or before it is done.
	Checkpoint int64
	// Owner is the member holding the lease, or "" when free.
	Owner string
	// LeaseExpires is when the owner's lease runs out.
	LeaseExpires time.Time
	// Epoch changes every time the partition is claimed by a member that
	// did not hold it (Claim increments it), so a member that lost a
	// partition and claimed it back — after an operator's ResetConsumer,
	// say — can tell, even when the checkpoint looks unchanged.
	Epoch int64
	// Failures counts handler failures recorded with checkpoints.
	Failures int64
	// InFlight is the owner's last reported number of events in progress.
	InFlight int64
}

// Checkpoint is one partition's progress, saved by the member holding it.
type Checkpoint struct {
	Partition int
	// Position is the new checkpoint. A store never moves a checkpoint
	// backwards in SaveCheckpoints (only ResetConsumer does).
	Position int64
	// FailuresDelta is added to the partition's failure count.
	FailuresDelta int64
	// InFlight replaces the partition's in-flight figure.
	InFlight int64
}

// DeadLetter is an event a consumer gave up on.
type DeadLetter struct {
	Consumer  string
	EventID   string
	Type      string
	Position  int64
	Partition int
	// Attempts is how many times the handler was run for this event.
	Attempts int
	// Error is the handler's last error message.
	Error    string
	FailedAt time.Time
	// RetryRequested is set by an operator asking to run the event again;
	// the member holding the partition picks it up.
	RetryRequested bool
}

// DeadLetterQuery selects dead letters.
type DeadLetterQuery struct {
	// Consumer is the consumer whose dead letters are listed.
	Consumer string
	// AfterPosition returns only dead letters of events after this position.
	AfterPosition int64
	// Limit caps the number returned; 0 means no limit.
	Limit int
	// RetryRequested returns only those an operator asked to retry.
	RetryRequested bool
}

// ReadParams selects the events [Store.Read] returns.
type ReadParams struct {
	// After: only events with a position greater than After.
	After int64
	// Limit caps the number of events returned; it is always positive.
	Limit int
}

// HeartbeatParams is a member's sign of life in a consumer group.
type HeartbeatParams struct {
	Consumer string
	Member   string
	// Expires is when the member counts as gone if it does not beat again.
	Expires time.Time
	// Now is the caller's clock: members whose heartbeat expired before it
	// are forgotten.
	Now time.Time
}

// LeaveParams names a member that leaves a consumer group.
type LeaveParams struct {
	Consumer string
	Member   string
}

// ClaimParams asks for leases on partitions of a consumer.
type ClaimParams struct {
	Consumer string
	Member   string
	// Partitions are the partitions the member wants; its own that are not
	// listed stay its own (Release frees them).
	Partitions []int
	// Expires is when the leases claimed or renewed run out.
	Expires time.Time
	// Now is the caller's clock: a lease that expired before it is free.
	Now time.Time
}

// ReleaseParams frees partitions a member holds.
type ReleaseParams struct {
	Consumer   string
	Member     string
	Partitions []int
}

// SaveCheckpointsParams is a member's progress on the partitions it holds.
type SaveCheckpointsParams struct {
	Consumer    string
	Member      string
	Checkpoints []Checkpoint
}

// ResetConsumerParams moves every partition of a consumer.
type ResetConsumerParams struct {
	Consumer string
	// Position is the new checkpoint of every partition: the consumer
	// handles the events after it.
	Position int64
}

// DeadLetterSelection names dead letters of one consumer.
type DeadLetterSelection struct {
	Consumer string
	// IDs are the events' IDs; nil selects all of the consumer's dead
	// letters. An empty, non-nil slice selects none.
	IDs []string
}

// Store is the contract every backend implements. All methods must be safe
// for concurrent use and honour ctx.
//
// Methods whose requests are likely to grow take a parameter struct, so that
// a new field (with a zero value meaning what the call meant before) does
// not break existing stores. What a store can do beyond this interface it
// says by implementing an optional interface ([SQLTxAppender], [Notifier]);
// callers find out with a type assertion, and wrappers keep them with
// [Wrap].
type Store interface {
	// Append stores the events atomically, in order, in one durable commit:
	// when it returns nil, every event is committed and synced; when it
	// returns an error, none is stored, unless the error wraps
	// [ErrAmbiguousCommit] (the store cannot tell). Positions are assigned by
	// the store, increasing in slice order. The result
	// has one entry per input event, in order. An event that
	// [ValidateNewEvents] refuses (no ID, type, time or data) fails the
	// whole call before anything is stored. A store that can take only so
	// many events in one commit (NATS JetStream's atomic batches) refuses
	// a larger call whole with an error wrapping [ErrTooManyEvents]; the
	// runtime then commits the callers of a group commit apart.
	Append(ctx context.Context, events []NewEvent) ([]AppendResult, error)

	// Read returns up to p.Limit committed events with position > p.After,
	// in increasing position order, and obeys the no-skip rule of the
	// package documentation. It returns an empty slice, not an error, when
	// there are none.
	Read(ctx context.Context, p ReadParams) ([]Event, error)

	// EventByID returns the event with the given ID, or ErrNotFound.
	EventByID(ctx context.Context, id string) (Event, error)

	// Head returns the highest committed position, or 0 for an empty log.
	Head(ctx context.Context) (int64, error)

	// PositionBefore returns the highest position of an event logged
	// before t, or 0 if there is none.
	PositionBefore(ctx context.Context, t time.Time) (int64, error)

	// CountByType returns the number of events per type with position >
	// after (after 0: the whole log). Stores should answer after == 0
	// without scanning the log.
	CountByType(ctx context.Context, after int64) (map[string]int64, error)

	// RegisterConsumer creates the consumer if it does not exist, with
	// every partition's checkpoint at spec.Start and spec.Partitioning
	// stored as given, and otherwise updates its Types (and nothing else:
	// an existing consumer keeps its stored Partitioning, which the result
	// reports). It returns ErrConflict if the consumer exists with a
	// different number of partitions. [ValidateConsumerSpec] says what a
	// spec must hold.
	RegisterConsumer(ctx context.Context, spec ConsumerSpec) (ConsumerInfo, error)

	// Consumer returns a consumer's state, or ErrNotFound.
	Consumer(ctx context.Context, name string) (ConsumerInfo, error)

	// Consumers returns every consumer's state, ordered by name.
	Consumers(ctx context.Context) ([]ConsumerInfo, error)

	// DeleteConsumer removes a consumer with its checkpoints, leases and
	// dead letters; ErrNotFound if it does not exist.
	DeleteConsumer(ctx context.Context, name string) error

	// Heartbeat records that p.Member is alive for p.Consumer until
	// p.Expires, forgets members whose heartbeat expired before p.Now, and
	// returns the live members, sorted.
	Heartbeat(ctx context.Context, p HeartbeatParams) ([]string, error)

	// Leave forgets p.Member and releases every partition it holds.
	Leave(ctx context.Context, p LeaveParams) error

	// Claim gives p.Member a lease until p.Expires on each of p.Partitions
	// that is free, expired (as of p.Now), or already its own; it renews
	// the member's own, and increments the Epoch of each partition it
	// takes over (one whose owner was not the member). It returns every
	// partition the member holds afterwards (claimed or not), sorted, with
	// its checkpoint and epoch.
	Claim(ctx context.Context, p ClaimParams) ([]PartitionInfo, error)

	// Release frees p.Partitions that p.Member holds.
	Release(ctx context.Context, p ReleaseParams) error

	// SaveCheckpoints writes checkpoints for partitions p.Member holds, in
	// one commit. If the member does not hold one of them, nothing is
	// written and the error wraps ErrLeaseLost.
	SaveCheckpoints(ctx context.Context, p SaveCheckpointsParams) error

	// ResetConsumer sets every partition's checkpoint to p.Position and
	// releases every lease, so running members re-read from there;
	// ErrNotFound if the consumer does not exist.
	ResetConsumer(ctx context.Context, p ResetConsumerParams) error

	// AddDeadLetter stores a dead letter, replacing one for the same
	// consumer and event (and clearing its RetryRequested).
	AddDeadLetter(ctx context.Context, dl DeadLetter) error

	// DeadLetters lists q.Consumer's dead letters in position order.
	DeadLetters(ctx context.Context, q DeadLetterQuery) ([]DeadLetter, error)

	// RequestRetry marks the selected dead letters for retry. It returns
	// how many it marked; ErrNotFound if sel.IDs names one that does not
	// exist (none is marked).
	RequestRetry(ctx context.Context, sel DeadLetterSelection) (int, error)

	// DeleteDeadLetters removes the selected dead letters. It returns how
	// many it removed; ErrNotFound if sel.IDs names one that does not exist
	// (none is removed).
	DeleteDeadLetters(ctx context.Context, sel DeadLetterSelection) (int, error)

	// Close releases the store's resources. Methods called after Close
	// return errors; a second Close returns an error, never panics.
	Close() error
}

// ErrAmbiguousCommit is returned (wrapped) by Append when the store cannot
// tell whether the commit happened, for example when the connection was
// lost after the commit was sent. The events may or may not be stored.
var ErrAmbiguousCommit = errors.New("monster: commit outcome unknown; the events may have been stored")

// SQLTxAppender is implemented by stores kept in a database/sql database
// (SQLite): the application can append events inside its own transaction,
// so that the events exist if and only if the transaction commits.
type SQLTxAppender interface {
	// DB returns the database the store lives in, for the application to
	// begin transactions on.
	DB() *sql.DB
	// AppendTx appends like Append, inside tx. Durability comes with the
	// caller's commit.
	AppendTx(ctx context.Context, tx *sql.Tx, events []NewEvent) ([]AppendResult, error)
}

// TxAppender is implemented by stores kept in a database whose application
// transactions are of a type of the driver's own (pgx.Tx for PostgreSQL):
// the application logs an event inside its transaction through the store
// package's typed function (postgres.LogTx), which hands the transaction to
// AppendInTx as it is.
type TxAppender interface {
	// AppendInTx appends like Append, inside tx, the application's
	// transaction of the type the store documents; durability comes with
	// the caller's commit. A tx of another type is an error naming both
	// types, and nothing is appended.
	AppendInTx(ctx context.Context, tx any, events []NewEvent) ([]AppendResult, error)
}

// Notifier is implemented by stores that can tell a process when another
// process appended events (PostgreSQL's LISTEN/NOTIFY). Without it, the
// runtime polls for events appended by other processes.
type Notifier interface {
	// Notifications returns a channel that receives a value, without
	// blocking the store, after other processes append events. It is
	// closed when ctx is done.
	Notifications(ctx context.Context) <-chan struct{}
}
