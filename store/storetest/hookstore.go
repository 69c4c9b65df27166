package storetest

import (
	"context"
	"errors"
	"sync/atomic"
	"time"

	"github.com/gomonster/monster/store"
)

// errCrashed is what a crashed member's store calls return.
var errCrashed = errors.New("storetest: the process has crashed")

// hookStore wraps a store so that a test can watch it and break it: it
// stands in for a crashed process (every call fails), a full disk (Append
// fails), a lost reply (the commit happened, the caller hears an error) or a
// slow network (a call waits for the test). Set the hooks before the store
// is used; they must be safe for concurrent use.
type hookStore struct {
	inner store.Store

	// before runs before every method except Features and Close, with the
	// method's name; an error it returns is returned instead of calling the
	// inner store.
	before func(ctx context.Context, method string) error
	// afterAppend sees every successful Append; an error it returns is
	// returned instead of the results (the events stay stored).
	afterAppend func(events []store.NewEvent, results []store.AppendResult) error
	// afterRead sees every successful Read.
	afterRead func(events []store.Event)
	// afterClaim sees every successful Claim.
	afterClaim func(member string, held []store.PartitionInfo)
	// keepOpen makes Close do nothing: the inner store belongs to someone
	// else.
	keepOpen bool
}

// wrap returns h as a store.Store with the optional capabilities of the
// inner store (store.Notifier, store.SQLTxAppender), so that the runtime
// behaves as it would with the bare store.
func (h *hookStore) wrap() store.Store { return store.Wrap(h, h.inner) }

// crashable returns a before hook that fails every call once crashed is
// set, like a process that died: it neither writes nor reads, renews no
// lease and releases none.
func crashable(crashed *atomic.Bool) func(context.Context, string) error {
	return func(context.Context, string) error {
		if crashed.Load() {
			return errCrashed
		}
		return nil
	}
}

// gate returns a before hook that holds the next call to method (after the
// test arms it) until release is closed; entered receives a value when the
// call arrives.
func gate(method string, armed *atomic.Bool, entered chan<- struct{}, release <-chan struct{}) func(context.Context, string) error {
	return func(ctx context.Context, m string) error {
		if m != method || !armed.CompareAndSwap(true, false) {
			return nil
		}
		entered <- struct{}{}
		select {
		case <-release:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(waitTimeout):
			return errors.New("storetest: gate never released")
		}
	}
}

func (h *hookStore) hook(ctx context.Context, method string) error {
	if h.before == nil {
		return nil
	}
	return h.before(ctx, method)
}

func (h *hookStore) Append(ctx context.Context, events []store.NewEvent) ([]store.AppendResult, error) {
	if err := h.hook(ctx, "Append"); err != nil {
		return nil, err
	}
	res, err := h.inner.Append(ctx, events)
	if err == nil && h.afterAppend != nil {
		if err := h.afterAppend(events, res); err != nil {
			return nil, err
		}
	}
	return res, err
}

func (h *hookStore) Read(ctx context.Context, p store.ReadParams) ([]store.Event, error) {
	if err := h.hook(ctx, "Read"); err != nil {
		return nil, err
	}
	events, err := h.inner.Read(ctx, p)
	if err != nil {
		return nil, err
	}
	// A process that crashed while its read was in flight never sees the
	// result: ask the hook again.
	if err := h.hook(ctx, "Read (result)"); err != nil {
		return nil, err
	}
	if h.afterRead != nil {
		h.afterRead(events)
	}
	return events, nil
}

func (h *hookStore) EventByID(ctx context.Context, id string) (store.Event, error) {
	if err := h.hook(ctx, "EventByID"); err != nil {
		return store.Event{}, err
	}
	return h.inner.EventByID(ctx, id)
}

func (h *hookStore) Head(ctx context.Context) (int64, error) {
	if err := h.hook(ctx, "Head"); err != nil {
		return 0, err
	}
	return h.inner.Head(ctx)
}

func (h *hookStore) PositionBefore(ctx context.Context, t time.Time) (int64, error) {
	if err := h.hook(ctx, "PositionBefore"); err != nil {
		return 0, err
	}
	return h.inner.PositionBefore(ctx, t)
}

func (h *hookStore) CountByType(ctx context.Context, after int64) (map[string]int64, error) {
	if err := h.hook(ctx, "CountByType"); err != nil {
		return nil, err
	}
	return h.inner.CountByType(ctx, after)
}

func (h *hookStore) RegisterConsumer(ctx context.Context, spec store.ConsumerSpec) (store.ConsumerInfo, error) {
	if err := h.hook(ctx, "RegisterConsumer"); err != nil {
		return store.ConsumerInfo{}, err
	}
	return h.inner.RegisterConsumer(ctx, spec)
}

func (h *hookStore) Consumer(ctx context.Context, name string) (store.ConsumerInfo, error) {
	if err := h.hook(ctx, "Consumer"); err != nil {
		return store.ConsumerInfo{}, err
	}
	return h.inner.Consumer(ctx, name)
}

func (h *hookStore) Consumers(ctx context.Context) ([]store.ConsumerInfo, error) {
	if err := h.hook(ctx, "Consumers"); err != nil {
		return nil, err
	}
	return h.inner.Consumers(ctx)
}

func (h *hookStore) DeleteConsumer(ctx context.Context, name string) error {
	if err := h.hook(ctx, "DeleteConsumer"); err != nil {
		return err
	}
	return h.inner.DeleteConsumer(ctx, name)
}

func (h *hookStore) Heartbeat(ctx context.Context, p store.HeartbeatParams) ([]string, error) {
	if err := h.hook(ctx, "Heartbeat"); err != nil {
		return nil, err
	}
	return h.inner.Heartbeat(ctx, p)
}

func (h *hookStore) Leave(ctx context.Context, p store.LeaveParams) error {
	if err := h.hook(ctx, "Leave"); err != nil {
		return err
	}
	return h.inner.Leave(ctx, p)
}

func (h *hookStore) Claim(ctx context.Context, p store.ClaimParams) ([]store.PartitionInfo, error) {
	if err := h.hook(ctx, "Claim"); err != nil {
		return nil, err
	}
	held, err := h.inner.Claim(ctx, p)
	if err == nil && h.afterClaim != nil {
		h.afterClaim(p.Member, held)
	}
	return held, err
}

func (h *hookStore) Release(ctx context.Context, p store.ReleaseParams) error {
	if err := h.hook(ctx, "Release"); err != nil {
		return err
	}
	return h.inner.Release(ctx, p)
}

func (h *hookStore) SaveCheckpoints(ctx context.Context, p store.SaveCheckpointsParams) error {
	if err := h.hook(ctx, "SaveCheckpoints"); err != nil {
		return err
	}
	return h.inner.SaveCheckpoints(ctx, p)
}

func (h *hookStore) ResetConsumer(ctx context.Context, p store.ResetConsumerParams) error {
	if err := h.hook(ctx, "ResetConsumer"); err != nil {
		return err
	}
	return h.inner.ResetConsumer(ctx, p)
}

func (h *hookStore) AddDeadLetter(ctx context.Context, dl store.DeadLetter) error {
	if err := h.hook(ctx, "AddDeadLetter"); err != nil {
		return err
	}
	return h.inner.AddDeadLetter(ctx, dl)
}

func (h *hookStore) DeadLetters(ctx context.Context, q store.DeadLetterQuery) ([]store.DeadLetter, error) {
	if err := h.hook(ctx, "DeadLetters"); err != nil {
		return nil, err
	}
	return h.inner.DeadLetters(ctx, q)
}

func (h *hookStore) RequestRetry(ctx context.Context, sel store.DeadLetterSelection) (int, error) {
	if err := h.hook(ctx, "RequestRetry"); err != nil {
		return 0, err
	}
	return h.inner.RequestRetry(ctx, sel)
}

func (h *hookStore) DeleteDeadLetters(ctx context.Context, sel store.DeadLetterSelection) (int, error) {
	if err := h.hook(ctx, "DeleteDeadLetters"); err != nil {
		return 0, err
	}
	return h.inner.DeleteDeadLetters(ctx, sel)
}

func (h *hookStore) Close() error {
	if h.keepOpen {
		return nil
	}
	return h.inner.Close()
}
