package daemon

import (
	"context"
	"sync"
	"sync/atomic"

	"github.com/gomonster/monster/store"
)

// sharedStore is the daemon's view of its store: it tells every tail at
// once about events appended through the daemon's Monster, counts the
// appends for /metrics, and its Close does nothing: the daemon closes the
// underlying store last.
type sharedStore struct {
	store.Store

	mu   sync.Mutex
	subs map[chan struct{}]struct{}

	// appends and appended count successful Append calls (group commits)
	// and the events they stored, for /metrics.
	appends, appended atomic.Int64
}

func newSharedStore(st store.Store) *sharedStore {
	return &sharedStore{Store: st, subs: map[chan struct{}]struct{}{}}
}

// store returns s as the Monsters' store: with the underlying store's
// optional capabilities (SQL transactions, so that Monster.DB and LogTx
// work in the daemon as they do in a program), and its own Notifier.
func (s *sharedStore) store() store.Store { return store.Wrap(s, s.Store) }

// Append appends and, on success, wakes every subscriber.
func (s *sharedStore) Append(ctx context.Context, events []store.NewEvent) ([]store.AppendResult, error) {
	res, err := s.Store.Append(ctx, events)
	if err == nil {
		s.appends.Add(1)
		s.appended.Add(int64(len(events)))
		s.broadcast()
	}
	return res, err
}

func (s *sharedStore) broadcast() {
	s.mu.Lock()
	for ch := range s.subs {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
	s.mu.Unlock()
}

// Notifications implements store.Notifier: the channel gets a value after
// appends through this daemon, and after the underlying store's own
// notifications when it has them (other processes' appends).
func (s *sharedStore) Notifications(ctx context.Context) <-chan struct{} {
	ch := make(chan struct{}, 1)
	s.mu.Lock()
	s.subs[ch] = struct{}{}
	s.mu.Unlock()
	var inner <-chan struct{}
	if n, ok := s.Store.(store.Notifier); ok {
		inner = n.Notifications(ctx)
	}
	go func() {
		defer func() {
			s.mu.Lock()
			delete(s.subs, ch)
			close(ch)
			s.mu.Unlock()
		}()
		for {
			select {
			case <-ctx.Done():
				return
			case _, ok := <-inner:
				if !ok {
					inner = nil
					continue
				}
				select {
				case ch <- struct{}{}:
				default:
				}
			}
		}
	}()
	return ch
}

// Close does nothing; see sharedStore.
func (s *sharedStore) Close() error { return nil }
