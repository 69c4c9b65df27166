// Package retry is what happens to an event a consumer's handler failed
// on: it runs again after an exponential backoff with jitter, until the
// policy's attempts are spent, and then goes to the consumer's dead
// letters (in blocking mode it is retried for ever instead). An event
// whose dead letter cannot be stored is not done: it is retried.
//
// It also runs the dead letters an operator asked to retry (Requested).
package retry

import (
	"context"
	"math/rand/v2"
	"time"

	"github.com/gomonster/monster/store"
)

// Policy is monster.RetryPolicy with its defaults applied: exponential
// backoff from InitialBackoff, doubling up to MaxBackoff, each delay
// randomised by ±Jitter, for MaxAttempts runs in all. The field list
// matches monster.RetryPolicy's, so that one converts to the other.
type Policy struct {
	MaxAttempts    int
	InitialBackoff time.Duration
	MaxBackoff     time.Duration
	Jitter         float64
}

// Backoff returns the delay before the retry that follows attempt (1 for
// the first failure).
func (p Policy) Backoff(attempt int) time.Duration {
	d := p.InitialBackoff
	for i := 1; i < attempt && d < p.MaxBackoff; i++ {
		d *= 2
	}
	d = min(d, p.MaxBackoff)
	if p.Jitter > 0 {
		d = time.Duration(float64(d) * (1 + p.Jitter*(2*rand.Float64()-1)))
	}
	return d
}

// DeadLetterStore is the part of the store that keeps dead letters.
type DeadLetterStore interface {
	AddDeadLetter(ctx context.Context, dl store.DeadLetter) error
}

// Failures decides what becomes of one consumer's failed events.
type Failures struct {
	// Consumer names the consumer in its dead letters.
	Consumer string
	Policy   Policy
	// RetryForever retries for ever instead of dead-lettering
	// (ConsumerOptions.BlockOnFailure).
	RetryForever bool
	Store        DeadLetterStore
	// Now is the clock; default time.Now.
	Now func() time.Time
}

// Failure is one failed run of an event.
type Failure struct {
	Event store.Event
	// Partition is the event's partition, recorded in its dead letter.
	Partition int
	// Attempts counts the runs of the event in this run of the consumer
	// (1 after the first failure); the policy's attempts count these.
	Attempts int
	// TotalAttempts counts the runs in all, including those of an earlier
	// dead letter being retried; the dead letter records it.
	TotalAttempts int
	Err           error
}

// Outcome is what becomes of a failure.
type Outcome struct {
	// Retry: run the event again after Delay. Otherwise it is
	// dead-lettered, and done.
	Retry bool
	Delay time.Duration
	// StoreErr is why the dead letter could not be stored, when that is
	// why the event is retried.
	StoreErr error
}

// Fail decides f's outcome and, when its attempts are spent, stores its
// dead letter (with a 10 s bound of its own: the event's fate should not
// depend on a stopping runner's context).
func (fs *Failures) Fail(f Failure) Outcome {
	retry := Outcome{Retry: true, Delay: fs.Policy.Backoff(f.Attempts)}
	if fs.RetryForever || f.Attempts < fs.Policy.MaxAttempts {
		return retry
	}
	now := time.Now
	if fs.Now != nil {
		now = fs.Now
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	dl := store.DeadLetter{
		Consumer: fs.Consumer, EventID: f.Event.ID, Type: f.Event.Type, Position: f.Event.Position,
		Partition: f.Partition, Attempts: f.TotalAttempts,
		Error: f.Err.Error(), FailedAt: now().UTC(),
	}
	if err := fs.Store.AddDeadLetter(ctx, dl); err != nil {
		// Not dead-lettered, so not done: try the event again later.
		retry.StoreErr = err
		return retry
	}
	return Outcome{}
}
