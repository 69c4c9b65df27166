package nats

import (
	"context"
	"sync"

	natsgo "github.com/nats-io/nats.go"
)

// Notifications implements store.Notifier. Every Append publishes a core
// NATS message on <prefix>.wake after its batch is acknowledged (not
// before: a consumer woken by a message on the events' own subjects could
// read before the batch commits, find nothing and sleep until its poll).
func (s *Store) Notifications(ctx context.Context) <-chan struct{} {
	ch := make(chan struct{}, 1)
	var mu sync.Mutex
	done := false
	sub, err := s.nc.Subscribe(s.names.wakeSubject, func(*natsgo.Msg) {
		mu.Lock()
		defer mu.Unlock()
		if done {
			return
		}
		select {
		case ch <- struct{}{}:
		default:
		}
	})
	go func() {
		<-ctx.Done()
		if err == nil {
			_ = sub.Unsubscribe()
		}
		mu.Lock()
		done = true
		close(ch)
		mu.Unlock()
	}()
	return ch
}
