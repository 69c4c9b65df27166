package postgres

import (
	"context"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
)

// listener keeps one connection LISTENing on the schema's channel and
// passes each notification on to every channel returned by Notifications.
// It starts with the first call to Notifications. When the connection
// fails it reconnects, backing off up to Options.ListenRetry, and wakes
// every subscriber once it is listening again: notifications sent while it
// was away are lost, and the wake-up makes the runtime read anyway.
type listener struct {
	s   *Store
	cfg *pgx.ConnConfig

	mu      sync.Mutex
	subs    map[*subscriber]struct{}
	started bool
	stop    context.CancelFunc
	done    chan struct{}
}

type subscriber struct {
	ch chan struct{}
}

func newListener(s *Store, cfg *pgx.ConnConfig) *listener {
	return &listener{s: s, cfg: cfg, subs: map[*subscriber]struct{}{}, done: make(chan struct{})}
}

// Notifications returns a channel that receives a value after events are
// appended to the store, by this process or another, and whenever the
// LISTEN connection comes back after a failure. Values are coalesced: a
// slow receiver gets one value for many appends, never a blocked store.
// The channel is closed when ctx is done or the store is closed.
func (s *Store) Notifications(ctx context.Context) <-chan struct{} {
	return s.listener.subscribe(ctx)
}

func (l *listener) subscribe(ctx context.Context) <-chan struct{} {
	sub := &subscriber{ch: make(chan struct{}, 1)}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.s.closed.Load() {
		close(sub.ch)
		return sub.ch
	}
	if !l.started {
		l.started = true
		runCtx, stop := context.WithCancel(context.Background())
		l.stop = stop
		go l.run(runCtx)
	}
	l.subs[sub] = struct{}{}
	go func() {
		select {
		case <-ctx.Done():
		case <-l.done:
		}
		l.mu.Lock()
		defer l.mu.Unlock()
		if _, ok := l.subs[sub]; ok {
			delete(l.subs, sub)
			close(sub.ch)
		}
	}()
	return sub.ch
}

// wake sends a value to every subscriber that has none pending.
func (l *listener) wake() {
	l.mu.Lock()
	defer l.mu.Unlock()
	for sub := range l.subs {
		select {
		case sub.ch <- struct{}{}:
		default:
		}
	}
}

func (l *listener) run(ctx context.Context) {
	defer close(l.done)
	delay := 10 * time.Millisecond
	for ctx.Err() == nil {
		listening := l.listen(ctx)
		if ctx.Err() != nil {
			return
		}
		if listening {
			delay = 10 * time.Millisecond
		}
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		delay = min(2*delay, l.s.opts.ListenRetry)
	}
}

// listen connects, LISTENs and passes notifications on until the
// connection fails or ctx ends. It reports whether it got as far as
// listening.
func (l *listener) listen(ctx context.Context) bool {
	conn, err := pgx.ConnectConfig(ctx, l.cfg)
	if err != nil {
		return false
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, "LISTEN "+pgx.Identifier{l.s.sql.channel}.Sanitize()); err != nil {
		return false
	}
	// Anything appended while no connection was listening would otherwise
	// wait for the runtime's next poll.
	l.wake()
	for {
		if _, err := conn.WaitForNotification(ctx); err != nil {
			return true
		}
		l.wake()
	}
}

// close stops the listener, if it was started, and closes every
// subscriber's channel.
func (l *listener) close() {
	l.mu.Lock()
	started := l.started
	l.started = true // no start after close
	l.mu.Unlock()
	if !started {
		close(l.done)
		l.mu.Lock()
		for sub := range l.subs {
			delete(l.subs, sub)
			close(sub.ch)
		}
		l.mu.Unlock()
		return
	}
	l.stop()
	<-l.done
	l.mu.Lock()
	defer l.mu.Unlock()
	for sub := range l.subs {
		delete(l.subs, sub)
		close(sub.ch)
	}
}
