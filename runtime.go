package monster

// This file runs the consumers: Run, Start and Stop for all of them,
// StartConsumer, StopConsumer and RemoveConsumer for one. Each moving part
// is a package of its own under internal/, with its own tests, and a
// consumerRun wires them for one consumer: dispatch (partition queues and
// per-key order), lease (leases, fair shares, checkpoints) and retry
// (backoff, dead letters and their retries). The group commit behind Log
// is internal/groupcommit.

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/gomonster/monster/internal/dispatch"
	"github.com/gomonster/monster/internal/lease"
	"github.com/gomonster/monster/internal/retry"
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
	r := &runner{m: m, done: make(chan struct{}), stopping: make(chan struct{}), failed: make(chan struct{}), runs: map[string]*consumerRun{}}
	r.handlerCtx, r.cancelHandlers = context.WithCancel(context.WithoutCancel(ctx))
	m.running = r
	defs := make([]*consumerDef, 0, len(m.consumers))
	for _, d := range m.consumers {
		defs = append(defs, d)
	}
	sortDefs(defs)
	for _, d := range defs {
		r.start(d, true, nil)
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

// StartConsumer starts the declared consumer name in this process while
// the consumers run (after Start or Run, before Stop), leaving the others
// be: after StopConsumer, say, or to learn at once whether it can start.
// It registers the consumer in the store before it returns, so a new
// consumer starting at End starts after the events logged before the
// call. It returns nil if the consumer runs already (or in eager mode,
// where consumers run inside Log).
//
// Errors: one matching ErrNotFound if name is not declared (Consume),
// ErrNotRunning if the consumers are not running, ErrClosed, ctx's error,
// or the store's error from registering, which matches store.ErrConflict
// when the consumer exists in the store with another partition count.
func (m *Monster) StartConsumer(ctx context.Context, name string) error {
	m.consumerOps.Lock()
	defer m.consumerOps.Unlock()
	def, r, err := m.declaredConsumer(name)
	if err != nil {
		return err
	}
	if r == nil {
		return fmt.Errorf("%w: cannot start consumer %q", ErrNotRunning, name)
	}
	if m.opts.Eager || r.running(name) {
		return nil
	}
	router, err := registerConsumer(ctx, m, def)
	if err != nil {
		return fmt.Errorf("monster: consumer %q cannot start: %w", name, err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.running != r || m.consumers[name] != def || !r.start(def, false, router) {
		return fmt.Errorf("%w: cannot start consumer %q", ErrNotRunning, name)
	}
	return nil
}

// StopConsumer stops the consumer name in this process, gracefully, and
// leaves the others running: no new event of it starts, its in-flight
// handlers finish (or, when ctx ends first, their contexts are cancelled
// and StopConsumer waits for them to return), its progress is
// checkpointed, and its partitions are released at once for the other
// processes running it. It stays declared: StartConsumer starts it again,
// and so does the next Start or Run. It returns nil if the consumer is not
// running.
//
// Errors: one matching ErrNotFound if name is not declared, ErrClosed, or
// one wrapping ctx's error if the handlers did not finish in time (the
// consumer is stopped all the same).
func (m *Monster) StopConsumer(ctx context.Context, name string) error {
	m.consumerOps.Lock()
	defer m.consumerOps.Unlock()
	_, r, err := m.declaredConsumer(name)
	if err != nil {
		return err
	}
	return stopRun(ctx, r, name)
}

// RemoveConsumer stops the consumer name in this process as StopConsumer
// does and forgets its declaration, so that Consume can declare the name
// again, with another handler or options. What the store keeps of the
// consumer (checkpoints, dead letters) stays; other processes running it
// go on. Its errors are StopConsumer's; the declaration is forgotten
// whatever it returns, except ErrNotFound and ErrClosed.
func (m *Monster) RemoveConsumer(ctx context.Context, name string) error {
	m.consumerOps.Lock()
	defer m.consumerOps.Unlock()
	_, r, err := m.declaredConsumer(name)
	if err != nil {
		return err
	}
	err = stopRun(ctx, r, name)
	m.mu.Lock()
	delete(m.consumers, name)
	m.mu.Unlock()
	return err
}

// declaredConsumer returns the consumer's declaration and the runner (nil
// when the consumers are not running).
func (m *Monster) declaredConsumer(name string) (*consumerDef, *runner, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return nil, nil, ErrClosed
	}
	def, ok := m.consumers[name]
	if !ok {
		return nil, nil, fmt.Errorf("%w: consumer %q is not declared in this Monster", ErrNotFound, name)
	}
	return def, m.running, nil
}

// stopRun stops the consumer's run in r, if any, and waits for it.
func stopRun(ctx context.Context, r *runner, name string) error {
	if r == nil {
		return nil
	}
	if c := r.take(name); c != nil {
		return c.stop(ctx)
	}
	return nil
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

	mu      sync.Mutex
	runs    map[string]*consumerRun // running, by consumer name
	stopped bool                    // stopping has begun: start no more runs

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

// start launches a consumer unless it runs already or the runner is
// stopping; called with m.mu held. A consumer given to Start (initial)
// that cannot run stops the runner; one declared later only logs why it
// does not run, leaving the others be. registered, when not nil, says the
// consumer is registered in the store already (by StartConsumer), with
// the partitioning of this router. It reports false when the runner is
// stopping.
func (r *runner) start(def *consumerDef, initial bool, registered *dispatch.Router) bool {
	if r.m.opts.Eager {
		return true // eager mode runs handlers inside Log
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.stopped {
		return false
	}
	if r.runs[def.name] != nil {
		return true
	}
	c := newConsumerRun(r, def)
	c.initial = initial
	c.registered = registered
	r.runs[def.name] = c
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		defer close(c.done)
		c.run()
		// A run that ended on its own (it could not register) is
		// forgotten, so that StartConsumer can try again.
		r.mu.Lock()
		if r.runs[def.name] == c {
			delete(r.runs, def.name)
		}
		r.mu.Unlock()
	}()
	return true
}

// running reports whether the consumer runs in this runner.
func (r *runner) running(name string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.runs[name] != nil
}

// take removes the consumer's run from the runner and returns it, or nil.
func (r *runner) take(name string) *consumerRun {
	r.mu.Lock()
	defer r.mu.Unlock()
	c := r.runs[name]
	delete(r.runs, name)
	return c
}

func (r *runner) stop(ctx context.Context) error {
	r.stopOnce.Do(func() {
		r.mu.Lock()
		r.stopped = true
		for _, c := range r.runs {
			c.beginStop()
		}
		r.mu.Unlock()
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

// consumerRun runs one consumer in this process: a lease keeper (leases,
// checkpoints, dead-letter retries), a reader that dispatches events of the
// partitions this process holds, and Concurrency workers that run them.
type consumerRun struct {
	m    *Monster
	def  *consumerDef
	r    *runner
	name string
	// initial: given to Start; if it cannot run, the runner stops.
	initial bool
	// registered: StartConsumer registered it already, and this is the
	// router of its stored partitioning; nil: run registers it.
	registered *dispatch.Router

	handlerCtx     context.Context // the runner's, cancelled on its own by stop
	cancelHandlers context.CancelFunc
	stopOnce       sync.Once
	stopping       chan struct{} // closed when the run is to stop
	done           chan struct{} // closed when the run has finished

	parts     *dispatch.Dispatcher
	leases    *lease.Keeper
	failures  retry.Failures
	requested *retry.Requested
}

// deadPollEvery is how many poll intervals pass between looks for dead
// letters to retry.
const deadPollEvery = 10

func newConsumerRun(r *runner, def *consumerDef) *consumerRun {
	m := r.m
	c := &consumerRun{
		m: m, def: def, r: r, name: def.name,
		stopping: make(chan struct{}),
		done:     make(chan struct{}),
	}
	c.handlerCtx, c.cancelHandlers = context.WithCancel(r.handlerCtx)
	log := c.logger()
	c.failures = retry.Failures{
		Consumer: def.name, Policy: retry.Policy(def.opts.Retry), RetryForever: def.opts.BlockOnFailure, Store: m.store,
	}
	c.requested = &retry.Requested{
		Consumer: def.name, Store: m.store,
		ListTimeout: m.opts.LeaseTTL, ReadTimeout: c.readTimeout(), Warn: log.warn,
	}
	return c
}

// prepare makes the run's dispatcher and lease keeper, once the consumer is
// registered: its events are routed under the partitioning stored then.
func (c *consumerRun) prepare(router dispatch.Router) {
	m, def, log := c.m, c.def, c.logger()
	c.parts = dispatch.New(dispatch.Config{
		Partitions:       router.Partitions,
		Scheme:           router.Scheme,
		OrderKey:         router.OrderKey,
		Match:            func(typ string) bool { return def.handler.match(typ) != nil },
		SerialPartitions: def.opts.BlockOnFailure,
		MaxInFlight:      def.opts.MaxInFlight,
		Extra:            retry.MaxRequested,
		LeaseExpired: func() {
			log.warn("leases expired before they could be renewed; pausing", lease.ErrTimeout)
		},
	})
	c.leases = lease.New(lease.Config{
		Consumer: def.name, Member: m.opts.MemberID, Store: m.store, Partitions: c.parts,
		TTL: m.opts.LeaseTTL, RetryInterval: m.opts.PollInterval, CheckpointInterval: m.opts.CheckpointInterval,
		Warn: log.warn,
	})
}

// readTimeout bounds a read, which holds up no lease: only a call stuck on
// a dead connection is given up, after the lease TTL or 30 s, whichever is
// longer; a slow store still makes progress.
func (c *consumerRun) readTimeout() time.Duration {
	return max(c.m.opts.LeaseTTL, 30*time.Second)
}

func (c *consumerRun) logger() *slogLogger { return &slogLogger{c.m.opts.Logger, c.name} }

// beginStop tells the run to stop: no new events are started.
func (c *consumerRun) beginStop() {
	c.stopOnce.Do(func() { close(c.stopping) })
}

// stop stops the run gracefully: it waits for in-flight handlers until ctx
// ends, then cancels their contexts and waits for them to return.
func (c *consumerRun) stop(ctx context.Context) error {
	c.beginStop()
	select {
	case <-c.done:
		return nil
	case <-ctx.Done():
		c.cancelHandlers()
		<-c.done
		return fmt.Errorf("monster: stop consumer %q: handlers did not finish in time: %w", c.name, ctx.Err())
	}
}

// run is the consumer's life in this runner.
func (c *consumerRun) run() {
	defer c.cancelHandlers()
	router := c.registered
	if router == nil {
		if router = c.register(); router == nil {
			return
		}
	}
	c.prepare(*router)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		select {
		case <-c.stopping:
			cancel()
		case <-ctx.Done():
		}
	}()
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
		src := dispatch.Source{
			Store: c.m.store, Timeout: c.readTimeout(), Wake: c.m.wake.wait,
			PollInterval: c.m.opts.PollInterval, Warn: c.logger().warn,
		}
		if n, ok := c.m.store.(store.Notifier); ok {
			src.Notify = n.Notifications(ctx)
		}
		c.parts.Read(ctx, src)
	}()
	c.leases.Run(ctx, lease.Job{Every: c.m.opts.PollInterval * deadPollEvery, Do: c.pickUpDeadLetters})
	<-readerDone
	workers.Wait()
	// Final checkpoint and release, whatever the stop context says: they
	// are short and save redeliveries.
	c.leases.Leave()
}

// registerConsumer creates the consumer in the store, at its StartAt and
// with the partitioning its options ask for, or updates its subscription,
// and returns the router of the partitioning stored. The error matches
// store.ErrConflict when the store holds another partition count, or a
// partitioning the options cannot keep (see consumerDef.router).
func registerConsumer(ctx context.Context, m *Monster, def *consumerDef) (*dispatch.Router, error) {
	start, err := def.opts.StartAt.checkpoint(ctx, m)
	if err != nil {
		return nil, err
	}
	info, err := m.store.RegisterConsumer(ctx, store.ConsumerSpec{
		Name: def.name, Types: def.handler.patterns(), Partitions: def.opts.Partitions, Start: start,
		Partitioning: def.partitioning(),
	})
	if err != nil {
		return nil, err
	}
	return def.router(info, &slogLogger{m.opts.Logger, def.name})
}

// register creates or updates the consumer in the store, retrying until it
// works or the run stops, and returns the router of its stored
// partitioning; nil when it cannot run.
func (c *consumerRun) register() *dispatch.Router {
	backoff := c.m.opts.PollInterval
	// An attempt stuck on a dead connection is given up after the lease
	// TTL (at least 5 s, at most 30 s), and the retry gets a new one.
	attempt := min(max(c.m.opts.LeaseTTL, 5*time.Second), 30*time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), attempt)
		router, err := registerConsumer(ctx, c.m, c.def)
		cancel()
		if err == nil {
			return router
		}
		if errors.Is(err, store.ErrConflict) {
			if !c.initial {
				c.logger().error("cannot start consumer", err)
				return nil
			}
			c.logger().error("cannot start consumer; stopping the consumers", err)
			c.r.fail(fmt.Errorf("monster: consumer %q cannot start: %w", c.name, err))
			return nil
		}
		c.logger().warn("registering consumer (will retry)", err)
		select {
		case <-c.stopping:
			return nil
		case <-time.After(backoff):
			backoff = min(2*backoff, 5*time.Second)
		}
	}
}

// work runs items until the run stops.
func (c *consumerRun) work() {
	for {
		select {
		case <-c.stopping:
			return
		case it := <-c.parts.Ready():
			c.process(it)
		}
	}
}

// process runs the handler on an item and settles the outcome: finished,
// retried later, or dead-lettered.
func (c *consumerRun) process(it *dispatch.Item) {
	if !c.parts.Start(it) {
		return
	}
	ev := rawFromStore(it.Event)
	ev.Attempt = it.Attempts
	if it.Dead != nil {
		ev.Attempt += it.Dead.Attempts
	}
	err := c.def.handle(c.handlerCtx, ev)
	if err == nil {
		c.finish(it, true)
		return
	}
	if c.parts.Failed(it) {
		return
	}
	out := c.failures.Fail(retry.Failure{
		Event: it.Event, Partition: it.Partition(),
		Attempts: it.Attempts, TotalAttempts: ev.Attempt, Err: err, Permanent: isPermanent(err),
	})
	switch {
	case out.StoreErr != nil:
		c.logger().warn("storing dead letter (will retry the event)", out.StoreErr)
		c.parts.RetryAfter(it, out.Delay)
	case out.Retry:
		c.logger().retry(ev, err)
		c.parts.RetryAfter(it, out.Delay)
	default:
		c.logger().dead(ev, err)
		c.finish(it, false)
	}
}

// finish settles a finished item: a partition's item moves its checkpoint;
// a retried dead letter is removed when handled.
func (c *consumerRun) finish(it *dispatch.Item, handled bool) {
	if it.Dead != nil {
		c.requested.Done(it.Event.ID, handled)
		return
	}
	c.parts.Finish(it)
}

// pickUpDeadLetters runs the dead letters an operator asked to retry, for
// the partitions this process holds.
func (c *consumerRun) pickUpDeadLetters(ctx context.Context) {
	c.requested.PickUp(ctx, c.parts.Holds, func(ev store.Event, dl store.DeadLetter) {
		c.parts.Push(&dispatch.Item{Event: ev, Dead: &dl})
	})
}
