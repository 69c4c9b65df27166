package retry

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/gomonster/monster/store"
)

// MaxRequested caps the dead letters one process retries at once.
const MaxRequested = 64

// RequestedStore is the part of the store Requested uses.
type RequestedStore interface {
	DeadLetters(ctx context.Context, q store.DeadLetterQuery) ([]store.DeadLetter, error)
	EventByID(ctx context.Context, id string) (store.Event, error)
	DeleteDeadLetters(ctx context.Context, sel store.DeadLetterSelection) (int, error)
}

// Requested runs the dead letters an operator asked to retry, for the
// partitions this process holds, each once at a time.
type Requested struct {
	Consumer string
	Store    RequestedStore
	// ListTimeout bounds listing the dead letters, ReadTimeout loading an
	// event.
	ListTimeout, ReadTimeout time.Duration
	// Warn, when set, is told of failures (which are retried later).
	Warn func(what string, err error)

	mu       sync.Mutex
	retrying map[string]bool // by event ID: running (true) or just finished
}

func (r *Requested) warn(what string, err error) {
	if r.Warn != nil {
		r.Warn(what, err)
	}
}

// PickUp lists the dead letters to retry and calls run for each whose
// partition holds reports held and that is not running already, at most
// MaxRequested at a time. Each must be reported to Done when it finishes.
func (r *Requested) PickUp(ctx context.Context, holds func(partition int) bool, run func(ev store.Event, dl store.DeadLetter)) {
	// Forget the retries that finished before this listing; those that
	// finish during it stay marked, so a list read before their dead letter
	// was removed cannot run them again.
	r.mu.Lock()
	if r.retrying == nil {
		r.retrying = map[string]bool{}
	}
	for id, running := range r.retrying {
		if !running {
			delete(r.retrying, id)
		}
	}
	r.mu.Unlock()
	listCtx, cancel := context.WithTimeout(ctx, r.ListTimeout)
	dls, err := r.Store.DeadLetters(listCtx, store.DeadLetterQuery{Consumer: r.Consumer, RetryRequested: true, Limit: MaxRequested})
	cancel()
	if err != nil {
		if ctx.Err() == nil {
			r.warn("listing dead letters to retry", err)
		}
		return
	}
	for _, dl := range dls {
		held := holds(dl.Partition)
		r.mu.Lock()
		_, busy := r.retrying[dl.EventID]
		busy = busy || len(r.retrying) >= MaxRequested
		if held && !busy {
			r.retrying[dl.EventID] = true
		}
		r.mu.Unlock()
		if !held || busy {
			continue
		}
		evCtx, cancel := context.WithTimeout(ctx, r.ReadTimeout)
		ev, err := r.Store.EventByID(evCtx, dl.EventID)
		cancel()
		if err != nil {
			r.warn("loading dead letter's event", err)
			r.mu.Lock()
			delete(r.retrying, dl.EventID)
			r.mu.Unlock()
			continue
		}
		run(ev, dl)
	}
}

// Done records that the retry of the dead letter of event id finished:
// handled (the dead letter is removed) or dead-lettered again.
func (r *Requested) Done(id string, handled bool) {
	if handled {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		if _, err := r.Store.DeleteDeadLetters(ctx, store.DeadLetterSelection{Consumer: r.Consumer, IDs: []string{id}}); err != nil && !errors.Is(err, store.ErrNotFound) {
			r.warn("removing retried dead letter", err)
		}
		cancel()
	}
	r.mu.Lock()
	// Kept (as finished) until the next look for dead letters, whose list
	// cannot have been read before this one was removed.
	r.retrying[id] = false
	r.mu.Unlock()
}
