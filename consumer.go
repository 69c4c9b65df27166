package monster

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"time"

	"github.com/gomonster/monster/internal/retry"
)

// StartPosition says where a new consumer starts. A consumer that already
// exists in the store resumes from its checkpoints; use ResetConsumer to
// move it.
type StartPosition struct {
	kind     startKind
	position int64
	time     time.Time
}

type startKind int

const (
	startBeginning startKind = iota
	startEnd
	startPosition
	startTime
)

var (
	// Beginning starts a new consumer at the first event of the log: it
	// works through history (the default).
	Beginning = StartPosition{kind: startBeginning}
	// End starts a new consumer after the last event logged so far.
	End = StartPosition{kind: startEnd}
)

// AtPosition starts a new consumer at the event at position p (inclusive).
func AtPosition(p int64) StartPosition { return StartPosition{kind: startPosition, position: p} }

// AtTime starts a new consumer at the first event logged at or after t.
func AtTime(t time.Time) StartPosition { return StartPosition{kind: startTime, time: t} }

func (s StartPosition) String() string {
	switch s.kind {
	case startEnd:
		return "end"
	case startPosition:
		return fmt.Sprintf("position %d", s.position)
	case startTime:
		return "time " + s.time.Format(time.RFC3339Nano)
	}
	return "beginning"
}

// checkpoint returns the position after which the consumer starts.
func (s StartPosition) checkpoint(ctx context.Context, m *Monster) (int64, error) {
	switch s.kind {
	case startEnd:
		return m.store.Head(ctx)
	case startPosition:
		return max(s.position-1, 0), nil
	case startTime:
		return m.store.PositionBefore(ctx, s.time)
	}
	return 0, nil
}

// RetryPolicy says how a consumer retries a failed event: exponential
// backoff from InitialBackoff, doubling up to MaxBackoff, each delay
// randomised by ±Jitter, for MaxAttempts runs in all; then the event goes
// to the consumer's dead letters. A failure marked with Permanent skips the
// remaining attempts.
type RetryPolicy struct {
	// MaxAttempts is the number of runs before dead-lettering, including
	// the first. Default 5.
	MaxAttempts int
	// InitialBackoff is the delay before the first retry. Default 100ms.
	InitialBackoff time.Duration
	// MaxBackoff caps the delay. Default 1 minute.
	MaxBackoff time.Duration
	// Jitter is the fraction by which each delay is randomised, 0 to 1.
	// Default 0.2; set a negative value for none.
	Jitter float64
}

func (p RetryPolicy) withDefaults() RetryPolicy {
	if p.MaxAttempts <= 0 {
		p.MaxAttempts = 5
	}
	if p.InitialBackoff <= 0 {
		p.InitialBackoff = 100 * time.Millisecond
	}
	if p.MaxBackoff <= 0 {
		p.MaxBackoff = time.Minute
	}
	if p.Jitter == 0 {
		p.Jitter = 0.2
	}
	p.Jitter = min(max(p.Jitter, 0), 1)
	return p
}

// Backoff returns the delay before the retry that follows attempt (1 for
// the first failure).
func (p RetryPolicy) Backoff(attempt int) time.Duration {
	return retry.Policy(p).Backoff(attempt)
}

// ConsumerOptions configures a consumer. The zero value (or nil) gives the
// defaults each field's comment states.
type ConsumerOptions struct {
	// Concurrency is how many events this process handles at once for the
	// consumer. Events with the same ordering key (their key, or OrderBy's)
	// never run concurrently. Default 1.
	Concurrency int
	// Partitions splits the consumer's events among the processes running
	// it, by a hash of their ordering key: events with the same key share
	// a partition (and run in log order), and keyless events, which have
	// no order to keep, spread over every partition by their ID. Fixed
	// when the consumer is first created. Default 16. Use 1 (with
	// Concurrency 1 and BlockOnFailure) for strict total order.
	//
	// A consumer created by an earlier version of monster (before consumers
	// stored their partitioning; see the CHANGELOG) keeps the
	// partitioning it was created with, in which the keyless events of a
	// type share one partition (so one process handles them): moving an
	// event to another partition could skip it. To spread its keyless
	// events, declare a consumer of a new name.
	Partitions int
	// OrderBy, when set, gives each event's ordering key in place of the
	// key it was logged with: events for which it returns the same string
	// share a partition and are handled one at a time, in log order; those
	// for which it returns "" have no order and spread by ID. It sees only
	// events of the consumer's subscription, and decides for this consumer
	// alone: a warehouse consumer can order by an order ID in the data
	// even when producers log without WithKey. Return e.Key to keep the
	// event's key where it has one.
	//
	// OrderBy must depend on the event alone and be quick: every process
	// running the consumer must place an event alike, and the reader calls
	// it for each event. A panic in it is logged and the event is handled
	// without order.
	//
	// Whether a consumer orders by OrderBy is stored when it is first
	// created and cannot change: starting it with OrderBy when it was
	// created without (or the reverse) fails with an error matching
	// store.ErrConflict, since its events would move between partitions
	// and some could be skipped; declare a consumer of a new name instead.
	// The function itself may change between deployments, at your risk:
	// an event whose key changes moves to another partition, and one whose
	// new partition's checkpoint is already past it is never handled.
	// Change it only when the consumer has caught up and producers are
	// stopped, or accept that risk.
	OrderBy func(e RawEvent) string
	// StartAt is where a new consumer starts. Default Beginning.
	StartAt StartPosition
	// Retry is the retry policy for failed events.
	Retry RetryPolicy
	// BlockOnFailure makes a failed event block its partition: it is
	// retried for ever (with capped backoff) and never dead-lettered, and
	// the partition's later events wait for it. The partition's events then
	// run one at a time, whatever their keys. Default false: after
	// Retry.MaxAttempts the event is dead-lettered and the consumer moves
	// on.
	//
	// A failure the handler marks with Permanent is dead-lettered at once
	// all the same, and the partition goes on: blocking waits out failures
	// that may pass (a database down), and the handler says this one will
	// not; blocking on it would stop the partition until an operator moved
	// the consumer past the event, losing it from view. A handler that
	// wants to keep blocking returns the error unmarked.
	BlockOnFailure bool
	// Timeout bounds each handler run through its context. Default 1
	// minute. A handler must honour ctx; one that ignores it keeps its
	// worker until it returns.
	Timeout time.Duration
	// MaxInFlight caps the events read ahead and not yet finished in this
	// process. Default 1000 or 64×Concurrency, whichever is larger.
	MaxInFlight int
	// Middleware wraps the handler, outermost first.
	Middleware []HandlerMiddleware
}

func (o *ConsumerOptions) withDefaults() ConsumerOptions {
	var out ConsumerOptions
	if o != nil {
		out = *o
	}
	if out.Concurrency <= 0 {
		out.Concurrency = 1
	}
	if out.Partitions <= 0 {
		out.Partitions = 16
	}
	out.Retry = out.Retry.withDefaults()
	if out.Timeout <= 0 {
		out.Timeout = time.Minute
	}
	if out.MaxInFlight <= 0 {
		out.MaxInFlight = max(1000, 64*out.Concurrency)
	}
	return out
}

var consumerNamePattern = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.:-]*$`)

// consumerDef is a consumer as declared with Consume.
type consumerDef struct {
	name    string
	handler Handler
	opts    ConsumerOptions
	run     HandlerFunc // middleware around the routed handler
}

// Consume declares the consumer name, which runs h for every event whose
// type h subscribes to, once Run or Start is called (or at once inside Log
// in eager mode). Several processes may declare the same consumer: they
// share its events by partition. The consumer keeps its position in the
// store, so a restarted process resumes where it left off.
//
// The subscription is h's patterns, and it may change between runs: the
// store takes the new one when the consumer starts. The consumer's position
// does not move for it, so adding a pattern does not backfill: events of
// the new types that the consumer has already passed are never delivered
// to it, only those after its checkpoint (and a removed pattern's events
// not reached yet are skipped). To work through the history of new types,
// declare them in a consumer of a new name (it starts at StartAt, Beginning
// by default) and leave the old one as it was; ResetConsumer to Beginning
// also delivers them, but replays every old event to the handler too.
//
// It returns an error wrapping ErrInvalidName for a malformed name or
// pattern, and an error if the name is already declared in this Monster.
func (m *Monster) Consume(name string, h Handler, opts *ConsumerOptions) error {
	if len(name) > maxNameLength || !consumerNamePattern.MatchString(name) {
		return fmt.Errorf("%w: consumer name %q: use letters, digits and '_', '-', '.', ':'", ErrInvalidName, name)
	}
	if len(h.routes) == 0 {
		return fmt.Errorf("monster: consumer %q: handler subscribes to no event type", name)
	}
	for _, r := range h.routes {
		if problem := patternProblem(r.pattern); problem != "" {
			return fmt.Errorf("%w: consumer %q: %s", ErrInvalidName, name, problem)
		}
		if r.fn == nil {
			return fmt.Errorf("monster: consumer %q: nil handler function for %q", name, r.pattern)
		}
	}
	def := &consumerDef{name: name, handler: h, opts: opts.withDefaults()}
	if def.opts.Partitions > 4096 {
		return fmt.Errorf("monster: consumer %q: %d partitions is over the limit of 4096", name, def.opts.Partitions)
	}
	var run HandlerFunc = func(ctx context.Context, e RawEvent) error {
		fn := h.match(e.Type)
		if fn == nil {
			return nil
		}
		return fn(ctx, e)
	}
	for i := len(def.opts.Middleware) - 1; i >= 0; i-- {
		run = def.opts.Middleware[i](run)
	}
	def.run = run
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return ErrClosed
	}
	if _, dup := m.consumers[name]; dup {
		return fmt.Errorf("monster: consumer %q is already declared", name)
	}
	m.consumers[name] = def
	if m.running != nil {
		m.running.start(def, false, nil)
	}
	return nil
}

// handle runs the consumer's handler once on e, with its timeout and panic
// recovery.
func (d *consumerDef) handle(ctx context.Context, e RawEvent) error {
	ctx, cancel := context.WithTimeout(ctx, d.opts.Timeout)
	defer cancel()
	return recovered(ctx, d.run, e)
}

// runEager runs every matching consumer's handler on e (eager mode) and
// returns their failures, or gives them to Options.OnEagerFailure.
func (m *Monster) runEager(ctx context.Context, e RawEvent) error {
	m.mu.Lock()
	defs := make([]*consumerDef, 0, len(m.consumers))
	for _, d := range m.consumers {
		defs = append(defs, d)
	}
	m.mu.Unlock()
	sortDefs(defs)
	var errs []error
	for _, d := range defs {
		if d.handler.match(e.Type) == nil {
			continue
		}
		ev := e
		ev.Attempt = 1
		if err := d.handle(ctx, ev); err != nil {
			he := &HandlerError{Consumer: d.name, EventID: e.ID, Err: err}
			if m.opts.OnEagerFailure != nil {
				m.opts.OnEagerFailure(he)
				continue
			}
			errs = append(errs, he)
		}
	}
	return errors.Join(errs...)
}
