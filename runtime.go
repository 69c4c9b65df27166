package monster

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/gomonster/monster/store"
)

// Run runs the declared consumers until ctx is done, then stops them
// gracefully: no new events are started, in-flight handlers finish (for up
// to Options.ShutdownTimeout, after which their contexts are cancelled),
// progress is checkpointed and partitions are released. It returns nil
// after a clean shutdown. If a consumer cannot run at all, because what it
// asks for conflicts with what the store holds (another partition count
// than the consumer's existing groups use: [store.ErrConflict]), Run stops
// the other consumers the same way and returns that error. (A consumer
// declared while they run only logs the error and does not run.)
func (m *Monster) Run(ctx context.Context) error {
	r, err := m.start(ctx)
	if err != nil {
		return err
	}
	select {
	case <-ctx.Done():
	case <-r.failed:
	}
	stopCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), m.opts.ShutdownTimeout)
	defer cancel()
	return m.stopRunner(stopCtx, r)
}

// Start runs the declared consumers in the background until ctx is done or
// Stop (or Close) is called: the development runner, like pymonster's
// consume_events_debug_thread. Consumers declared after Start start at
// once. It returns an error if consumers are already running.
func (m *Monster) Start(ctx context.Context) error {
	_, err := m.start(ctx)
	return err
}

func (m *Monster) start(ctx context.Context) (*runner, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return nil, ErrClosed
	}
	if m.running != nil {
		return nil, errors.New("monster: consumers are already running")
	}
	r := &runner{m: m, done: make(chan struct{}), stopping: make(chan struct{}), failed: make(chan struct{})}
	r.handlerCtx, r.cancelHandlers = context.WithCancel(context.WithoutCancel(ctx))
	m.running = r
	defs := make([]*consumerDef, 0, len(m.consumers))
	for _, d := range m.consumers {
		defs = append(defs, d)
	}
	sortDefs(defs)
	for _, d := range defs {
		r.start(d, true)
	}
	go func() {
		select {
		case <-ctx.Done():
			stopCtx, cancel := context.WithTimeout(context.Background(), m.opts.ShutdownTimeout)
			defer cancel()
			_ = m.stopRunner(stopCtx, r)
		case <-r.failed:
			// Stop the others but stay the running one: Run, or the next
			// Stop, returns the failure.
			stopCtx, cancel := context.WithTimeout(context.Background(), m.opts.ShutdownTimeout)
			defer cancel()
			_ = r.stop(stopCtx)
		case <-r.stopping:
		}
	}()
	return r, nil
}

// Stop stops consumers started by Start or Run, gracefully (see Run); if
// ctx ends first, it cancels the handlers' contexts, waits for them to
// return, and returns ctx's error. It returns nil if nothing is running,
// and the error of a consumer that could not run (see Run), which has
// stopped the others already.
func (m *Monster) Stop(ctx context.Context) error {
	m.mu.Lock()
	r := m.running
	m.mu.Unlock()
	if r == nil {
		return nil
	}
	return m.stopRunner(ctx, r)
}

// stopRunner stops r and forgets it, if it is still the running one.
func (m *Monster) stopRunner(ctx context.Context, r *runner) error {
	err := r.stop(ctx)
	m.mu.Lock()
	if m.running == r {
		m.running = nil
	}
	m.mu.Unlock()
	return err
}

func sortDefs(defs []*consumerDef) {
	sort.Slice(defs, func(i, j int) bool { return defs[i].name < defs[j].name })
}

// runner is one Start..Stop period of the consumers.
type runner struct {
	m              *Monster
	handlerCtx     context.Context
	cancelHandlers context.CancelFunc
	wg             sync.WaitGroup // consumer runs
	stopOnce       sync.Once
	stopping       chan struct{} // closed when stopping begins
	done           chan struct{} // closed when every run has finished
	runs           []*consumerRun

	failOnce sync.Once
	failed   chan struct{} // closed when a consumer cannot run at all
	failErr  error         // why; set before failed is closed
}

// fail records that a consumer cannot run (its registration conflicts with
// the store's): the runner stops, and Run and Stop return err.
func (r *runner) fail(err error) {
	r.failOnce.Do(func() {
		r.failErr = err
		close(r.failed)
	})
}

// failure returns the error given to fail, or nil.
func (r *runner) failure() error {
	select {
	case <-r.failed:
		return r.failErr
	default:
		return nil
	}
}

// start launches a consumer; called with m.mu held. A consumer given to
// Start (initial) that cannot run stops the runner; one declared later
// only logs why it does not run, leaving the others be.
func (r *runner) start(def *consumerDef, initial bool) {
	if r.m.opts.Eager {
		return // eager mode runs handlers inside Log
	}
	c := newConsumerRun(r, def)
	c.initial = initial
	r.runs = append(r.runs, c)
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		c.run()
	}()
}

func (r *runner) stop(ctx context.Context) error {
	r.stopOnce.Do(func() {
		close(r.stopping)
		go func() {
			r.wg.Wait()
			r.cancelHandlers()
			close(r.done)
		}()
	})
	select {
	case <-r.done:
		return r.failure()
	case <-ctx.Done():
		r.cancelHandlers()
		<-r.done
		return errors.Join(r.failure(), fmt.Errorf("monster: stop: handlers did not finish in time: %w", ctx.Err()))
	}
}

// consumerRun runs one consumer in this process: a control loop (leases,
// checkpoints, dead-letter retries), a reader that dispatches events of the
// partitions this process holds, and Concurrency workers.
type consumerRun struct {
	m      *Monster
	def    *consumerDef
	r      *runner
	st     store.Store
	name   string
	member string
	// initial: given to Start; if it cannot run, the runner stops.
	initial bool

	ready   chan *item    // items to run, never full (see capacity)
	space   chan struct{} // a finished item made room
	claimed chan struct{} // the set of held partitions changed

	mu          sync.Mutex
	parts       map[int]*partition // held partitions
	outstanding int                // dispatched in-order items not finished
	keys        map[string][]*item // keys with an item running → items waiting
	retrying    map[string]bool    // dead letters retried, by event ID: running (true) or just finished
	leaseUntil  time.Time          // leases held are valid until then at least
}

// partition is this process's state of a partition it holds.
type partition struct {
	n        int
	epoch    int64   // the store's epoch when this process claimed it
	fetched  int64   // every event of the partition up to here is dispatched or skipped
	saved    int64   // checkpoint last saved
	queue    []*item // dispatched items in position order; the front is unfinished
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
	return p.queue[0].ev.Position - 1
}

type item struct {
	ev       store.Event
	part     *partition
	attempts int
	done     bool
	key      string            // serialising key; "" for none
	dead     *store.DeadLetter // set when retrying a dead letter
}

const (
	readBatch     = 512
	maxDeadRetry  = 64
	deadPollEvery = 10 // poll intervals between looks for dead letters to retry
)

func newConsumerRun(r *runner, def *consumerDef) *consumerRun {
	return &consumerRun{
		m: r.m, def: def, r: r, st: r.m.store, name: def.name, member: r.m.opts.MemberID,
		ready:    make(chan *item, def.opts.MaxInFlight+readBatch+maxDeadRetry),
		space:    make(chan struct{}, 1),
		claimed:  make(chan struct{}, 1),
		parts:    map[int]*partition{},
		keys:     map[string][]*item{},
		retrying: map[string]bool{},
	}
}

func signal(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

func (c *consumerRun) logger() *slogLogger { return &slogLogger{c.m.opts.Logger, c.name} }

// run is the consumer's life in this runner.
func (c *consumerRun) run() {
	if !c.register() {
		return
	}
	var workers sync.WaitGroup
	for range c.def.opts.Concurrency {
		workers.Add(1)
		go func() {
			defer workers.Done()
			c.work()
		}()
	}
	readerDone := make(chan struct{})
	go func() {
		defer close(readerDone)
		c.read()
	}()
	c.control()
	<-readerDone
	workers.Wait()
	// Final checkpoint and release, whatever the stop context says: they
	// are short and save redeliveries.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c.flush(ctx)
	if err := c.st.Leave(ctx, store.LeaveParams{Consumer: c.name, Member: c.member}); err != nil {
		c.logger().warn("leaving the consumer group", err)
	}
}

// register creates or updates the consumer in the store, retrying until it
// works or the runner stops.
func (c *consumerRun) register() bool {
	backoff := c.m.opts.PollInterval
	// An attempt stuck on a dead connection is given up after the lease
	// TTL (at least 5 s, at most 30 s), and the retry gets a new one.
	attempt := min(max(c.m.opts.LeaseTTL, 5*time.Second), 30*time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), attempt)
		start, err := c.def.opts.StartAt.checkpoint(ctx, c.m)
		if err == nil {
			_, err = c.st.RegisterConsumer(ctx, store.ConsumerSpec{
				Name: c.name, Types: c.def.handler.patterns(), Partitions: c.def.opts.Partitions, Start: start,
			})
		}
		cancel()
		if err == nil {
			return true
		}
		if errors.Is(err, store.ErrConflict) {
			if !c.initial {
				c.logger().error("cannot start consumer", err)
				return false
			}
			c.logger().error("cannot start consumer; stopping the consumers", err)
			c.r.fail(fmt.Errorf("monster: consumer %q cannot start: %w", c.name, err))
			return false
		}
		c.logger().warn("registering consumer (will retry)", err)
		select {
		case <-c.r.stopping:
			return false
		case <-time.After(backoff):
			backoff = min(2*backoff, 5*time.Second)
		}
	}
}

// control renews leases, balances partitions, saves checkpoints and picks
// up dead letters to retry, until the runner stops.
func (c *consumerRun) control() {
	ttl := c.m.opts.LeaseTTL
	leaseTicker := time.NewTicker(ttl / 3)
	defer leaseTicker.Stop()
	flushTicker := time.NewTicker(c.m.opts.CheckpointInterval)
	defer flushTicker.Stop()
	deadTicker := time.NewTicker(c.m.opts.PollInterval * deadPollEvery)
	defer deadTicker.Stop()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		<-c.r.stopping
		cancel()
	}()
	// A refresh that fails is tried again soon, backing off from
	// PollInterval to the renewal period, rather than at the next tick: a
	// member that could not claim its partitions has nothing to do until
	// it does.
	retry := time.NewTimer(time.Hour)
	retry.Stop()
	defer retry.Stop()
	backoff := c.m.opts.PollInterval
	refresh := func() {
		if c.refreshLeases(ctx) {
			backoff = c.m.opts.PollInterval
			retry.Stop()
			return
		}
		retry.Reset(backoff) // Go 1.23+ timers: no stale tick after Reset
		backoff = min(2*backoff, ttl/3)
	}
	refresh()
	for {
		select {
		case <-c.r.stopping:
			return
		case <-leaseTicker.C:
			refresh()
		case <-retry.C:
			refresh()
		case <-flushTicker.C:
			if errors.Is(c.flush(ctx), store.ErrLeaseLost) {
				refresh()
			}
		case <-deadTicker.C:
			c.pickUpDeadLetters(ctx)
		}
	}
}

// callContext bounds one step of the control loop: a store call stuck on a
// dead connection is given up after the lease TTL (when the leases it could
// renew would have expired anyway), so that the next attempt, on a new
// connection, can renew them. ctx is the runner's.
func (c *consumerRun) callContext(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, c.m.opts.LeaseTTL)
}

// readContext bounds a read, which holds up no lease: only a call stuck on
// a dead connection is given up, after the lease TTL or 30 s, whichever is
// longer; a slow store still makes progress.
func (c *consumerRun) readContext(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, max(c.m.opts.LeaseTTL, 30*time.Second))
}

// refreshLeases heartbeats, renews the partitions held, claims free ones up
// to a fair share and releases idle ones above it. It reports whether the
// refresh went through; ctx is the runner's.
func (c *consumerRun) refreshLeases(ctx context.Context) bool {
	stop := ctx
	ctx, cancel := c.callContext(stop)
	defer cancel()
	now := time.Now()
	ttl := c.m.opts.LeaseTTL
	expires := now.Add(ttl)
	members, err := c.st.Heartbeat(ctx, store.HeartbeatParams{Consumer: c.name, Member: c.member, Expires: expires, Now: now})
	var info store.ConsumerInfo
	if err == nil {
		info, err = c.st.Consumer(ctx, c.name)
	}
	if err != nil {
		if stop.Err() == nil {
			c.logger().warn("renewing leases", err)
		}
		// The reader and workers drop the partitions if this goes on past
		// the leases' expiry (checkLeaseTimeLocked).
		return false
	}
	total := len(info.Partitions)
	share := (total + max(len(members), 1) - 1) / max(len(members), 1)

	c.mu.Lock()
	var want, release []int
	for n := range c.parts {
		want = append(want, n)
	}
	// Above the fair share, hand partitions over: drain them (read no more
	// events for them and start none of those read ahead) and release each
	// once its running handlers return, so a member that joins during a
	// backlog gets work at once, and no event runs in two members at once.
	sort.Sort(sort.Reverse(sort.IntSlice(want)))
	extra := len(want) - share
	for _, n := range want {
		if c.parts[n].draining {
			extra--
		}
	}
	var keep []int
	for _, n := range want {
		p := c.parts[n]
		if extra > 0 && !p.draining {
			p.draining = true
			extra--
		}
		if p.draining && p.running == 0 {
			release = append(release, n)
		} else {
			keep = append(keep, n)
		}
	}
	want = keep
	for _, p := range info.Partitions {
		if len(want) >= share {
			break
		}
		if _, held := c.parts[p.Partition]; held {
			continue
		}
		if p.Owner == "" || p.Owner == c.member || p.LeaseExpires.Before(now) {
			want = append(want, p.Partition)
		}
	}
	c.mu.Unlock()

	if len(release) > 0 {
		c.flush(stop)
		c.mu.Lock()
		for _, n := range release {
			if p := c.parts[n]; p != nil {
				c.loseLocked(p)
			}
		}
		c.mu.Unlock()
		if err := c.st.Release(ctx, store.ReleaseParams{Consumer: c.name, Member: c.member, Partitions: release}); err != nil {
			c.logger().warn("releasing partitions", err)
		}
	}
	held, err := c.st.Claim(ctx, store.ClaimParams{Consumer: c.name, Member: c.member, Partitions: want, Expires: expires, Now: now})
	if err != nil {
		if stop.Err() == nil {
			c.logger().warn("claiming partitions", err)
		}
		return false
	}
	if time.Now().After(expires) {
		// The refresh took longer than the leases it took: they have
		// expired already. Try again with a new expiry.
		if stop.Err() == nil {
			c.logger().warn("claiming partitions", errLeaseTimeout)
		}
		return false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.leaseUntil = expires
	changed := false
	got := map[int]store.PartitionInfo{}
	for _, p := range held {
		got[p.Partition] = p
	}
	for n, p := range c.parts {
		info, ok := got[n]
		if !ok || info.Epoch != p.epoch || info.Checkpoint != p.saved {
			// Lost, or released and claimed back (an operator's reset):
			// start again from the stored checkpoint.
			c.loseLocked(p)
			changed = true
		}
	}
	for n, info := range got {
		if _, ok := c.parts[n]; !ok {
			c.parts[n] = &partition{n: n, epoch: info.Epoch, fetched: info.Checkpoint, saved: info.Checkpoint, inFlight: info.InFlight}
			changed = true
		}
	}
	if changed {
		signal(c.claimed)
	}
	return true
}

// loseLocked forgets a partition: its unfinished items are dropped (a
// running handler finishes, but its result is ignored) and no longer
// count as outstanding.
func (c *consumerRun) loseLocked(p *partition) {
	p.lost = true
	c.outstanding -= int(p.undone)
	p.undone = 0
	p.queue = nil
	delete(c.parts, p.n)
	signal(c.space)
}

func (c *consumerRun) dropAllLocked() {
	for _, p := range c.parts {
		c.loseLocked(p)
	}
}

// checkLeaseTimeLocked drops every partition once the leases may have
// expired without a renewal: a store that is merely slow (a writer starved
// of SQLite's lock) must not let two members handle one partition.
func (c *consumerRun) checkLeaseTimeLocked() {
	if len(c.parts) > 0 && time.Now().After(c.leaseUntil) {
		c.logger().warn("leases expired before they could be renewed; pausing", errLeaseTimeout)
		c.dropAllLocked()
	}
}

var errLeaseTimeout = errors.New("monster: lease renewal did not complete within the lease TTL")

// flush saves the checkpoints that moved.
func (c *consumerRun) flush(ctx context.Context) error {
	c.mu.Lock()
	var cps []store.Checkpoint
	var parts []*partition
	for _, p := range c.parts {
		cp := p.checkpoint()
		if cp > p.saved || p.failures != 0 || p.undone != p.inFlight {
			cps = append(cps, store.Checkpoint{Partition: p.n, Position: cp, FailuresDelta: p.failures, InFlight: p.undone})
			parts = append(parts, p)
		}
	}
	c.mu.Unlock()
	if len(cps) == 0 {
		return nil
	}
	callCtx, cancel := c.callContext(ctx)
	defer cancel()
	err := c.st.SaveCheckpoints(callCtx, store.SaveCheckpointsParams{Consumer: c.name, Member: c.member, Checkpoints: cps})
	if err != nil {
		if ctx.Err() == nil {
			c.logger().warn("saving checkpoints", err)
		}
		return err
	}
	c.mu.Lock()
	for i, p := range parts {
		p.saved = max(p.saved, cps[i].Position)
		p.failures -= cps[i].FailuresDelta
		p.inFlight = cps[i].InFlight
	}
	c.mu.Unlock()
	return nil
}

// read dispatches events of held partitions until the runner stops.
func (c *consumerRun) read() {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		<-c.r.stopping
		cancel()
	}()
	var notify <-chan struct{}
	if n, ok := c.st.(store.Notifier); ok {
		notify = n.Notifications(ctx)
	}
	poll := time.NewTimer(0)
	defer poll.Stop()
	for {
		c.mu.Lock()
		c.checkLeaseTimeLocked()
		snapshot := make(map[int]*partition, len(c.parts))
		cursor := int64(-1)
		for n, p := range c.parts {
			if p.draining {
				continue
			}
			snapshot[n] = p
			if cursor < 0 || p.fetched < cursor {
				cursor = p.fetched
			}
		}
		room := c.outstanding < c.def.opts.MaxInFlight
		c.mu.Unlock()

		var got int
		wake := c.m.wake.wait()
		if len(snapshot) > 0 && room {
			readCtx, cancel := c.readContext(ctx)
			events, err := c.st.Read(readCtx, store.ReadParams{After: cursor, Limit: readBatch})
			cancel()
			if err != nil {
				if ctx.Err() != nil {
					return
				}
				c.logger().warn("reading events", err)
			}
			got = len(events)
			if got > 0 {
				c.dispatch(events, snapshot)
			}
		}
		if got == readBatch {
			select {
			case <-c.r.stopping:
				return
			default:
				continue
			}
		}
		if !room {
			wake = nil // wait for room, not for events
		}
		poll.Reset(c.m.opts.PollInterval) // Go 1.23+ timers: no stale tick after Reset
		select {
		case <-c.r.stopping:
			return
		case <-wake:
		case <-notify:
		case <-c.space:
		case <-c.claimed:
		case <-poll.C:
		}
	}
}

// dispatch hands the events that belong to held partitions to the workers.
// snapshot holds the partitions the read covered: a partition claimed while
// the read ran may start before the read's cursor, so it waits for the next
// read.
func (c *consumerRun) dispatch(events []store.Event, snapshot map[int]*partition) {
	partitions := c.def.opts.Partitions
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, ev := range events {
		p := snapshot[partitionOf(ev, partitions)]
		if p == nil || p.lost || ev.Position <= p.fetched {
			continue
		}
		p.fetched = ev.Position
		if c.def.handler.match(ev.Type) == nil {
			continue
		}
		it := &item{ev: ev, part: p, key: c.orderKey(ev, p)}
		p.queue = append(p.queue, it)
		p.undone++
		c.outstanding++
		if it.key == "" {
			c.push(it)
			continue
		}
		if waiting, busy := c.keys[it.key]; busy {
			c.keys[it.key] = append(waiting, it)
		} else {
			c.keys[it.key] = nil
			c.push(it)
		}
	}
	// The read returned every event up to the last one, so the partitions it
	// covered have seen everything up to there, theirs or not.
	last := events[len(events)-1].Position
	for _, p := range snapshot {
		if !p.lost {
			p.fetched = max(p.fetched, last)
		}
	}
}

// orderKey returns what serialises the event: its key, or in blocking
// mode its partition, so that a failing event holds back everything after
// it in the partition. Keyless events are not serialised otherwise.
func (c *consumerRun) orderKey(ev store.Event, p *partition) string {
	if c.def.opts.Blocking {
		return fmt.Sprintf("\x00partition-%d", p.n)
	}
	return ev.Key
}

// push queues an item for the workers without ever blocking the caller
// (who may hold c.mu).
func (c *consumerRun) push(it *item) {
	select {
	case c.ready <- it:
	default:
		go func() { c.ready <- it }()
	}
}

// partitionOf hashes the event's key (its type when it has none) with
// FNV-1a into one of n partitions.
func partitionOf(ev store.Event, n int) int {
	k := ev.Key
	if k == "" {
		k = ev.Type
	}
	h := uint32(2166136261)
	for i := 0; i < len(k); i++ {
		h ^= uint32(k[i])
		h *= 16777619
	}
	return int(h % uint32(n))
}

// work runs items until the runner stops.
func (c *consumerRun) work() {
	for {
		select {
		case <-c.r.stopping:
			return
		case it := <-c.ready:
			c.process(it)
		}
	}
}

func (c *consumerRun) process(it *item) {
	c.mu.Lock()
	c.checkLeaseTimeLocked()
	if p := it.part; p != nil {
		if p.lost || p.draining {
			// Not ours to run any more; the partition's next owner reads it
			// again from the checkpoint, which has not passed it.
			c.nextForKeyLocked(it.key)
			c.mu.Unlock()
			return
		}
		p.running++
	}
	c.mu.Unlock()
	it.attempts++
	ev := rawFromStore(it.ev)
	ev.Attempt = it.attempts
	if it.dead != nil {
		ev.Attempt += it.dead.Attempts
	}
	err := c.def.handle(c.r.handlerCtx, ev)
	if err == nil {
		c.finish(it, true)
		return
	}
	c.mu.Lock()
	if p := it.part; p != nil && p.lost {
		// The partition moved while the handler ran: its next owner runs
		// the event again; neither retry nor dead-letter it here.
		p.running--
		c.nextForKeyLocked(it.key)
		c.mu.Unlock()
		return
	}
	if p := c.parts[partitionOf(it.ev, c.def.opts.Partitions)]; p != nil {
		p.failures++
	}
	c.mu.Unlock()
	policy := c.def.opts.Retry
	if c.def.opts.Blocking || it.attempts < policy.MaxAttempts {
		c.logger().retry(ev, err)
		c.retryLater(it)
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	dl := store.DeadLetter{
		Consumer: c.name, EventID: it.ev.ID, Type: it.ev.Type, Position: it.ev.Position,
		Partition: partitionOf(it.ev, c.def.opts.Partitions), Attempts: ev.Attempt,
		Error: err.Error(), FailedAt: time.Now().UTC(),
	}
	if derr := c.st.AddDeadLetter(ctx, dl); derr != nil {
		// Not dead-lettered, so not done: try the event again later.
		c.logger().warn("storing dead letter (will retry the event)", derr)
		c.retryLater(it)
		return
	}
	c.logger().dead(ev, err)
	c.finish(it, false)
}

// retryLater runs the item again after its backoff. It keeps its key, so
// later events with the same key wait for it.
func (c *consumerRun) retryLater(it *item) {
	if it.part != nil {
		c.mu.Lock()
		it.part.running--
		c.mu.Unlock()
	}
	time.AfterFunc(c.def.opts.Retry.Backoff(it.attempts), func() { c.push(it) })
}

// finish marks an item done, moves its partition's checkpoint, and starts
// the next item waiting on its key. handled says the handler succeeded
// (a retried dead letter is then removed).
func (c *consumerRun) finish(it *item, handled bool) {
	if it.dead != nil {
		if handled {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			if _, err := c.st.DeleteDeadLetters(ctx, store.DeadLetterSelection{Consumer: c.name, IDs: []string{it.ev.ID}}); err != nil && !errors.Is(err, store.ErrNotFound) {
				c.logger().warn("removing retried dead letter", err)
			}
			cancel()
		}
		c.mu.Lock()
		// Kept (as finished) until the next look for dead letters, whose
		// list cannot have been read before this one was removed.
		c.retrying[it.ev.ID] = false
		c.mu.Unlock()
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	it.done = true
	p := it.part
	p.running--
	if !p.lost {
		p.undone--
		c.outstanding--
		q := p.queue
		for len(q) > 0 && q[0].done {
			q[0] = nil
			q = q[1:]
		}
		p.queue = q
		signal(c.space)
	}
	c.nextForKeyLocked(it.key)
}

// nextForKeyLocked starts the next item waiting on key, skipping items of
// partitions this process is giving up; with none left the key is free.
func (c *consumerRun) nextForKeyLocked(key string) {
	if key == "" {
		return
	}
	waiting := c.keys[key]
	for len(waiting) > 0 {
		next := waiting[0]
		waiting = waiting[1:]
		if !next.part.lost && !next.part.draining {
			c.keys[key] = waiting
			c.push(next)
			return
		}
	}
	delete(c.keys, key)
}

// pickUpDeadLetters runs the dead letters an operator asked to retry, for
// the partitions this process holds.
func (c *consumerRun) pickUpDeadLetters(ctx context.Context) {
	// Forget the retries that finished before this listing; those that
	// finish during it stay marked, so a list read before their dead letter
	// was removed cannot run them again.
	c.mu.Lock()
	for id, running := range c.retrying {
		if !running {
			delete(c.retrying, id)
		}
	}
	c.mu.Unlock()
	listCtx, cancel := c.callContext(ctx)
	dls, err := c.st.DeadLetters(listCtx, store.DeadLetterQuery{Consumer: c.name, RetryRequested: true, Limit: maxDeadRetry})
	cancel()
	if err != nil {
		if ctx.Err() == nil {
			c.logger().warn("listing dead letters to retry", err)
		}
		return
	}
	for _, dl := range dls {
		c.mu.Lock()
		_, held := c.parts[dl.Partition]
		_, busy := c.retrying[dl.EventID]
		busy = busy || len(c.retrying) >= maxDeadRetry
		if held && !busy {
			c.retrying[dl.EventID] = true
		}
		c.mu.Unlock()
		if !held || busy {
			continue
		}
		evCtx, cancel := c.readContext(ctx)
		ev, err := c.st.EventByID(evCtx, dl.EventID)
		cancel()
		if err != nil {
			c.logger().warn("loading dead letter's event", err)
			c.mu.Lock()
			delete(c.retrying, dl.EventID)
			c.mu.Unlock()
			continue
		}
		dl := dl
		c.push(&item{ev: ev, dead: &dl})
	}
}
