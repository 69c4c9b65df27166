// Package groupcommit is Monster's group committer: concurrent Log calls
// hand their events to one goroutine, which stores every request waiting
// in one Append (one transaction, one sync) and hands each caller back its
// own results, so that many callers share the cost of one sync.
//
// A Committer knows nothing of Monster: it is given the function that
// appends and hooks to run after each successful commit.
package groupcommit

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"time"

	"github.com/gomonster/monster/store"
)

// ErrClosed is returned by Commit after Close has begun.
var ErrClosed = errors.New("monster: group committer closed")

// AppendFunc stores events atomically, like store.Store.Append.
type AppendFunc func(ctx context.Context, events []store.NewEvent) ([]store.AppendResult, error)

// Config configures a Committer.
type Config struct {
	// Append stores one group's events. Required. It is called with a
	// context no caller can cancel: the group belongs to all of them.
	Append AppendFunc
	// Committed, when set, runs after a successful Append, before any
	// caller of the group learns of it (Verbose printing goes here, so it
	// comes before the callers' next output).
	Committed func(results []store.AppendResult)
	// Released, when set, runs after the callers of a successful group are
	// released (waking consumers goes here).
	Released func()
	// Queue is how many requests may wait for the committer. Default 1024.
	Queue int
}

// Limits of a group. MaxEvents caps the events in one group commit; Yields
// is how many times the committer yields for more callers when they are
// concurrent; MaxLinger caps how long it then waits for the rest of them,
// which it does only after groups of LingerCallers callers or more (a few
// callers at a time are latency, not throughput: they are not held up).
const (
	MaxEvents     = 4096
	Yields        = 4
	MaxLinger     = 100 * time.Microsecond
	LingerCallers = 8
)

// Committer gathers concurrent requests into group commits. It is safe for
// concurrent use.
type Committer struct {
	cfg      Config
	requests chan *request
	loopDone chan struct{}

	mu      sync.Mutex
	closed  bool
	senders sync.WaitGroup // Commit calls about to send on requests
}

// request is one caller waiting for the group commit.
type request struct {
	events  []store.NewEvent
	results []store.AppendResult
	err     error
	done    chan struct{}
}

// New starts a Committer; Close stops it.
func New(cfg Config) *Committer {
	if cfg.Queue <= 0 {
		cfg.Queue = 1024
	}
	c := &Committer{cfg: cfg, requests: make(chan *request, cfg.Queue), loopDone: make(chan struct{})}
	go c.loop()
	return c
}

// Commit stores events in the next group commit and returns their results,
// in order. When the group's Append fails, every caller of the group gets
// its error. If ctx ends before the events are queued, Commit returns an
// error wrapping ctx's and nothing is stored; if it ends after, it returns
// an error wrapping store.ErrAmbiguousCommit and ctx's, since the group
// may be stored. After Close it returns ErrClosed.
func (c *Committer) Commit(ctx context.Context, events []store.NewEvent) ([]store.AppendResult, error) {
	req := &request{events: events, done: make(chan struct{})}
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil, ErrClosed
	}
	c.senders.Add(1) // keeps the channel open until the request is queued
	c.mu.Unlock()
	select {
	case c.requests <- req:
		c.senders.Done()
	case <-ctx.Done():
		c.senders.Done()
		return nil, fmt.Errorf("monster: log: %w", ctx.Err())
	}
	select {
	case <-req.done:
		return req.results, req.err
	case <-ctx.Done():
		return nil, fmt.Errorf("%w: %w", store.ErrAmbiguousCommit, ctx.Err())
	}
}

// Close stops the committer after the requests already queued are
// committed; Commit calls that follow return ErrClosed.
func (c *Committer) Close() {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		<-c.loopDone
		return
	}
	c.closed = true
	c.mu.Unlock()
	// Senders register under mu before closed is set, so after this wait
	// none can send on the closed channel.
	c.senders.Wait()
	close(c.requests)
	<-c.loopDone
}

// loop takes every request waiting and stores them in one Append.
func (c *Committer) loop() {
	defer close(c.loopDone)
	var g gatherer
	g.linger = time.NewTimer(time.Hour)
	g.linger.Stop()
	for req := range c.requests {
		batch := g.gather(req, c.requests)
		c.commit(&g, batch)
		clear(batch)
	}
}

// commit stores batch's events in one Append and releases its callers. A
// store that refuses that many events at once (store.ErrTooManyEvents)
// stored none of them: the two halves of the batch are committed apart,
// down to single callers, who get the error if their own events are too
// many; and the gatherer forms groups of at most half the refused size
// from then on.
func (c *Committer) commit(g *gatherer, batch []*request) {
	var events []store.NewEvent
	for _, r := range batch {
		events = append(events, r.events...)
	}
	began := time.Now()
	results, err := c.cfg.Append(context.Background(), events)
	g.lastCommit = time.Since(began)
	if errors.Is(err, store.ErrTooManyEvents) && len(batch) > 1 {
		g.limit = max(1, min(g.limit, len(events)/2))
		mid := len(batch) / 2
		c.commit(g, batch[:mid])
		c.commit(g, batch[mid:])
		return
	}
	if err == nil && len(results) != len(events) {
		err = fmt.Errorf("monster: store returned %d results for %d events", len(results), len(events))
	}
	if err == nil && c.cfg.Committed != nil {
		c.cfg.Committed(results)
	}
	at := 0
	for _, r := range batch {
		if err != nil {
			r.err = err
		} else {
			r.results = results[at : at+len(r.events)]
		}
		at += len(r.events)
		close(r.done)
	}
	if err == nil && c.cfg.Released != nil {
		c.cfg.Released()
	}
}

// gatherer forms groups, remembering what the last group was like.
type gatherer struct {
	// limit caps the events of a group: MaxEvents (also when zero), or
	// less once the store refused a group as too large.
	limit       int
	batch       []*request
	lastCallers int // callers in the last group
	lastCommit  time.Duration
	linger      *time.Timer
}

// gather returns first and every request that joins it: those waiting,
// and with concurrent callers those that arrive while the committer yields
// or lingers. The slice is reused by the next call.
func (g *gatherer) gather(first *request, requests <-chan *request) []*request {
	if g.limit <= 0 {
		g.limit = MaxEvents
	}
	g.batch = append(g.batch[:0], first)
	n := len(first.events)
	yields := 0
	var lingering <-chan time.Time
gather:
	for n < g.limit {
		var (
			r  *request
			ok bool
		)
		select {
		case r, ok = <-requests:
		default:
			// With concurrent callers, those the last commit released
			// are runnable and about to call again: yielding lets them
			// join this group instead of forming the next one.
			if g.lastCallers < 2 {
				break gather
			}
			if yields < Yields {
				yields++
				runtime.Gosched()
				continue
			}
			// Fewer callers than last time: the others are still
			// preparing their next call. Wait for them a little, up to
			// a quarter of the last commit's time and at most
			// MaxLinger in all. With 64 callers (BenchmarkLog), groups
			// grew from about 42 events to 55-57 on PostgreSQL and 43
			// to 52 on SQLite; over interleaved pairs of runs on a
			// quiet machine, +5% on PostgreSQL (5 of 7 pairs won) and
			// +3% on SQLite (2 of 4 won, 2 even); the latency at 1,000
			// events/s did not move.
			if g.lastCallers < LingerCallers || len(g.batch) >= g.lastCallers {
				break gather
			}
			if lingering == nil {
				d := min(g.lastCommit/4, MaxLinger)
				if d <= 0 {
					break gather
				}
				g.linger.Reset(d) // Go 1.23+ timers: no stale tick after Stop or Reset
				lingering = g.linger.C
			}
			select {
			case r, ok = <-requests:
			case <-lingering:
				break gather
			}
		}
		if !ok {
			break gather
		}
		g.batch = append(g.batch, r)
		n += len(r.events)
	}
	g.linger.Stop() // Go 1.23+ timers: harmless when it fired or never ran
	g.lastCallers = len(g.batch)
	return g.batch
}
