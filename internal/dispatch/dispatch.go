// Package dispatch hands a consumer's events to its workers in the order
// the design promises: events with the same ordering key one at a time, in
// log order; others concurrently.
//
// A Dispatcher keeps, for each partition this process holds, a queue of
// the events read and not yet finished. The partition's checkpoint is
// just before the front of its queue, so it never passes an event that is
// not finished. Items whose key is busy wait in a per-key list; the next
// starts when the one before finishes. A partition that is lost (its lease
// moved) drops its items; one that is draining (being handed to another
// member) starts none of them.
//
// The lease keeper (package lease) tells the Dispatcher which partitions
// are held; the reader (Read) fills it from the store; workers take items
// from Ready and report back with Start, Finish, Failed and RetryAfter.
package dispatch

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/gomonster/monster/store"
)

// ReadBatch is how many events one read asks the store for.
const ReadBatch = 512

// Item is one event for a worker to run.
type Item struct {
	Event store.Event
	// Attempts counts the runs of the event in this process (Start counts
	// them).
	Attempts int
	// Dead is set when the item retries a dead letter; such items belong to
	// no partition queue and have no key.
	Dead *store.DeadLetter

	part *partition // nil for a dead letter's retry
	key  string     // serialising key; "" for none
	done bool
}

// Partition returns the partition the item belongs to: its queue's, or for
// a dead letter's retry the one stored with the dead letter.
func (it *Item) Partition() int {
	if it.Dead != nil {
		return it.Dead.Partition
	}
	return it.part.n
}

// partition is this process's state of a partition it holds.
type partition struct {
	n        int
	epoch    int64   // the store's epoch when this process claimed it
	fetched  int64   // every event of the partition up to here is dispatched or skipped
	saved    int64   // checkpoint last saved
	queue    []*Item // dispatched items in position order; the front is unfinished
	undone   int64
	failures int64 // failures not yet saved
	inFlight int64 // in-flight figure last saved
	lost     bool  // the lease is gone: drop its items
	draining bool  // to be released: read and start no more events for it
	running  int   // items whose handler is running
}

// checkpoint is the highest position up to which everything is done.
func (p *partition) checkpoint() int64 {
	if len(p.queue) == 0 {
		return p.fetched
	}
	return p.queue[0].Event.Position - 1
}

// Config configures a Dispatcher.
type Config struct {
	// Partitions is the consumer's partition count. Required.
	Partitions int
	// Scheme is the consumer's partitioning as stored (see Router); the
	// zero value is key, else type.
	Scheme store.Partitioning
	// OrderKey derives the ordering key from an event, for Scheme
	// store.PartitionByOrderKey; required with it.
	OrderKey func(store.Event) string
	// Match reports whether the consumer handles events of a type; events
	// it does not handle are skipped. Required.
	Match func(typ string) bool
	// SerialPartitions serialises each partition as a whole, so that a
	// failing event holds back everything after it in its partition
	// (ConsumerOptions.BlockOnFailure).
	SerialPartitions bool
	// MaxInFlight caps the items read and not finished. Required.
	MaxInFlight int
	// Extra is how many items beyond MaxInFlight+ReadBatch may be pushed
	// (dead letters' retries), so that pushing never blocks.
	Extra int
	// LeaseExpired, when set, is told when every partition is dropped
	// because the leases were not renewed in time.
	LeaseExpired func()
	// Now is the clock; default time.Now.
	Now func() time.Time
}

// Dispatcher is one consumer's partitions and queues in this process. It
// is safe for concurrent use.
type Dispatcher struct {
	cfg     Config
	ready   chan *Item    // items to run, never full (see Config.Extra)
	space   chan struct{} // a finished item made room
	claimed chan struct{} // the set of held partitions changed

	mu          sync.Mutex
	parts       map[int]*partition // held partitions
	outstanding int                // dispatched in-order items not finished
	keys        map[string][]*Item // keys with an item running → items waiting
	leaseUntil  time.Time          // leases held are valid until then at least
}

// New returns a Dispatcher holding no partitions.
func New(cfg Config) *Dispatcher {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Dispatcher{
		cfg:     cfg,
		ready:   make(chan *Item, cfg.MaxInFlight+ReadBatch+cfg.Extra),
		space:   make(chan struct{}, 1),
		claimed: make(chan struct{}, 1),
		parts:   map[int]*partition{},
		keys:    map[string][]*Item{},
	}
}

func signal(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

// Router places a consumer's events in its partitions, under the
// partitioning the consumer was registered with, and says which ordering
// key serialises each one.
type Router struct {
	// Partitions is the partition count.
	Partitions int
	// Scheme is the partitioning:
	//   - store.PartitionByKeyOrType (the zero value, consumers registered
	//     before partitionings were stored): the partition hashes the key,
	//     or the type for a keyless event, so all keyless events of a type
	//     share one partition.
	//   - store.PartitionByKeyOrID: the key, or the ID for a keyless event,
	//     so keyless events spread over every partition.
	//   - store.PartitionByOrderKey: OrderKey's result, or the ID when it
	//     returns "".
	// Under each, the ordering key (the key, or OrderKey's result)
	// serialises events; a keyless event is not serialised.
	Scheme store.Partitioning
	// OrderKey derives the ordering key from an event, for
	// store.PartitionByOrderKey. It must depend on the event alone: every
	// member must place an event in the same partition.
	OrderKey func(store.Event) string
}

// Route returns the event's ordering key ("" for none) and its partition.
func (r Router) Route(ev store.Event) (orderKey string, partition int) {
	switch r.Scheme {
	case store.PartitionByOrderKey:
		orderKey = r.OrderKey(ev)
		if orderKey == "" {
			return "", HashPartition(ev.ID, r.Partitions)
		}
	case store.PartitionByKeyOrID:
		orderKey = ev.Key
		if orderKey == "" {
			return "", HashPartition(ev.ID, r.Partitions)
		}
	default:
		orderKey = ev.Key
		if orderKey == "" {
			return "", HashPartition(ev.Type, r.Partitions)
		}
	}
	return orderKey, HashPartition(orderKey, r.Partitions)
}

// Partition returns the event's partition.
func (r Router) Partition(ev store.Event) int {
	_, p := r.Route(ev)
	return p
}

// HashPartition hashes s with FNV-1a into one of n partitions. Stored
// checkpoints depend on it: it never changes.
func HashPartition(s string, n int) int {
	h := uint32(2166136261)
	for i := 0; i < len(s); i++ {
		h ^= uint32(s[i])
		h *= 16777619
	}
	return int(h % uint32(n))
}

// Router returns the Router of the consumer's partitioning.
func (d *Dispatcher) Router() Router {
	return Router{Partitions: d.cfg.Partitions, Scheme: d.cfg.Scheme, OrderKey: d.cfg.OrderKey}
}

// Ready delivers the items to run.
func (d *Dispatcher) Ready() <-chan *Item { return d.ready }

// Snapshot is the set of partitions one read covers.
type Snapshot map[int]*partition

// Plan returns what the next read covers: the partitions held and not
// draining, and the position to read after (the lowest of theirs). room
// reports whether the items in flight are under MaxInFlight. It first
// drops every partition if the leases may have expired.
func (d *Dispatcher) Plan() (cursor int64, snap Snapshot, room bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.checkLeaseTimeLocked()
	snap = make(Snapshot, len(d.parts))
	cursor = -1
	for n, p := range d.parts {
		if p.draining {
			continue
		}
		snap[n] = p
		if cursor < 0 || p.fetched < cursor {
			cursor = p.fetched
		}
	}
	return cursor, snap, d.outstanding < d.cfg.MaxInFlight
}

// Dispatch queues the events that belong to the partitions of snap, the
// result of a read after Plan's cursor, in position order. A partition
// claimed while the read ran may start before the read's cursor, so it
// waits for the next read.
func (d *Dispatcher) Dispatch(events []store.Event, snap Snapshot) {
	if len(events) == 0 {
		return
	}
	router := d.Router()
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, ev := range events {
		// Events the consumer does not handle belong to no partition in
		// particular: the loop after this one moves every partition past
		// them. Only events it handles go through the router, so that an
		// OrderKey function sees only the types it was written for.
		if !d.cfg.Match(ev.Type) {
			continue
		}
		key, n := router.Route(ev)
		p := snap[n]
		if p == nil || p.lost || ev.Position <= p.fetched {
			continue
		}
		p.fetched = ev.Position
		it := &Item{Event: ev, part: p, key: d.serialKey(key, p)}
		p.queue = append(p.queue, it)
		p.undone++
		d.outstanding++
		if it.key == "" {
			d.Push(it)
			continue
		}
		if waiting, busy := d.keys[it.key]; busy {
			d.keys[it.key] = append(waiting, it)
		} else {
			d.keys[it.key] = nil
			d.Push(it)
		}
	}
	// The read returned every event up to the last one, so the partitions it
	// covered have seen everything up to there, theirs or not.
	last := events[len(events)-1].Position
	for _, p := range snap {
		if !p.lost {
			p.fetched = max(p.fetched, last)
		}
	}
}

// serialKey returns what serialises an event of ordering key key in
// partition p: the key, or in blocking mode the partition, so that a
// failing event holds back everything after it in the partition. Events
// without an ordering key are not serialised otherwise.
func (d *Dispatcher) serialKey(key string, p *partition) string {
	if d.cfg.SerialPartitions {
		return fmt.Sprintf("\x00partition-%d", p.n)
	}
	return key
}

// Push queues an item for the workers without ever blocking the caller
// (who may hold the Dispatcher's lock). Items of dead letters' retries
// come in this way.
func (d *Dispatcher) Push(it *Item) {
	select {
	case d.ready <- it:
	default:
		go func() { d.ready <- it }()
	}
}

// Start is called by a worker before it runs it: it counts the attempt
// and the running handler and reports true, or false when the item's
// partition is lost or draining (its next owner reads it again from the
// checkpoint, which has not passed it), in which case the worker drops it.
func (d *Dispatcher) Start(it *Item) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.checkLeaseTimeLocked()
	if p := it.part; p != nil {
		if p.lost || p.draining {
			d.nextForKeyLocked(it.key)
			return false
		}
		p.running++
	}
	it.Attempts++
	return true
}

// Failed is called by a worker when the handler failed. It reports true
// when the item's partition was lost while the handler ran: its next owner
// runs the event again, so it is neither retried nor dead-lettered here
// (the worker drops it). Otherwise it counts the failure for the event's
// partition, if held.
func (d *Dispatcher) Failed(it *Item) (stale bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if p := it.part; p != nil && p.lost {
		p.running--
		d.nextForKeyLocked(it.key)
		return true
	}
	if p := d.parts[it.Partition()]; p != nil {
		p.failures++
	}
	return false
}

// RetryAfter pushes the item again after delay. It keeps its key, so later
// events with the same key wait for it.
func (d *Dispatcher) RetryAfter(it *Item, delay time.Duration) {
	if it.part != nil {
		d.mu.Lock()
		it.part.running--
		d.mu.Unlock()
	}
	time.AfterFunc(delay, func() { d.Push(it) })
}

// Finish marks a partition's item done (handled or dead-lettered), moves
// the partition's checkpoint past every finished item at the front of its
// queue, and starts the next item waiting on its key. Items of dead
// letters' retries are not the Dispatcher's: it ignores them.
func (d *Dispatcher) Finish(it *Item) {
	p := it.part
	if p == nil {
		return
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	it.done = true
	p.running--
	if !p.lost {
		p.undone--
		d.outstanding--
		q := p.queue
		for len(q) > 0 && q[0].done {
			q[0] = nil
			q = q[1:]
		}
		p.queue = q
		signal(d.space)
	}
	d.nextForKeyLocked(it.key)
}

// nextForKeyLocked starts the next item waiting on key, skipping items of
// partitions this process is giving up; with none left the key is free.
func (d *Dispatcher) nextForKeyLocked(key string) {
	if key == "" {
		return
	}
	waiting := d.keys[key]
	for len(waiting) > 0 {
		next := waiting[0]
		waiting = waiting[1:]
		if !next.part.lost && !next.part.draining {
			d.keys[key] = waiting
			d.Push(next)
			return
		}
	}
	delete(d.keys, key)
}

// checkLeaseTimeLocked drops every partition once the leases may have
// expired without a renewal: a store that is merely slow (a writer starved
// of SQLite's lock) must not let two members handle one partition.
func (d *Dispatcher) checkLeaseTimeLocked() {
	if len(d.parts) > 0 && d.cfg.Now().After(d.leaseUntil) {
		if d.cfg.LeaseExpired != nil {
			d.cfg.LeaseExpired()
		}
		for _, p := range d.parts {
			d.loseLocked(p)
		}
	}
}

// loseLocked forgets a partition: its unfinished items are dropped (a
// running handler finishes, but its result is ignored) and no longer
// count as outstanding.
func (d *Dispatcher) loseLocked(p *partition) {
	p.lost = true
	d.outstanding -= int(p.undone)
	p.undone = 0
	p.queue = nil
	delete(d.parts, p.n)
	signal(d.space)
}

// Read fills the Dispatcher from the store until ctx is done: it reads
// after the lowest position of the partitions held, in batches of
// ReadBatch, while there is room, and otherwise waits for a wake-up, a
// notification, room, a change of partitions or the poll interval.
func (d *Dispatcher) Read(ctx context.Context, src Source) {
	poll := time.NewTimer(0)
	defer poll.Stop()
	for {
		cursor, snap, room := d.Plan()
		var got int
		var wake <-chan struct{}
		if src.Wake != nil {
			wake = src.Wake()
		}
		if len(snap) > 0 && room {
			readCtx, cancel := context.WithTimeout(ctx, src.Timeout)
			events, err := src.Store.Read(readCtx, store.ReadParams{After: cursor, Limit: ReadBatch})
			cancel()
			if err != nil {
				if ctx.Err() != nil {
					return
				}
				if src.Warn != nil {
					src.Warn("reading events", err)
				}
			}
			got = len(events)
			d.Dispatch(events, snap)
		}
		if got == ReadBatch {
			if ctx.Err() != nil {
				return
			}
			continue
		}
		if !room {
			wake = nil // wait for room, not for events
		}
		poll.Reset(src.PollInterval) // Go 1.23+ timers: no stale tick after Reset
		select {
		case <-ctx.Done():
			return
		case <-wake:
		case <-src.Notify:
		case <-d.space:
		case <-d.claimed:
		case <-poll.C:
		}
	}
}

// Reader is the part of the store the reader uses.
type Reader interface {
	Read(ctx context.Context, p store.ReadParams) ([]store.Event, error)
}

// Source is where Read gets events and wake-ups from.
type Source struct {
	Store Reader
	// Timeout bounds one read: only a call stuck on a dead connection is
	// given up.
	Timeout time.Duration
	// Wake, when set, returns a channel closed when this process logs the
	// next event.
	Wake func() <-chan struct{}
	// Notify, when set, gets a value when other processes log events.
	Notify <-chan struct{}
	// PollInterval is how often Read looks for events without a wake-up.
	PollInterval time.Duration
	// Warn, when set, is told of failed reads (which are retried).
	Warn func(what string, err error)
}
