package monster_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/gomonster/monster"
	"github.com/gomonster/monster/monstertest"
)

func TestPermanentError(t *testing.T) {
	t.Parallel()
	require.NoError(t, monster.Permanent(nil), "Permanent(nil) is nil, so a handler can return it unchecked")

	cause := errors.New("address rejected")
	err := fmt.Errorf("mailer: %w", monster.Permanent(cause))
	require.ErrorIs(t, err, monster.ErrPermanent)
	require.ErrorIs(t, err, cause, "the handler's error is still found through the mark")
	var pe *monster.PermanentError
	require.ErrorAs(t, err, &pe)
	require.Equal(t, cause, pe.Err)
	require.Equal(t, "mailer: monster: permanent failure (not retried): address rejected", err.Error())

	require.NotErrorIs(t, cause, monster.ErrPermanent)
	require.NotErrorIs(t, errors.New("monster: permanent failure"), monster.ErrPermanent, "the mark is the value, not the text")
}

// permanentSetup is a consumer on a running Monster whose handler fails
// permanently on events whose data is "poison" and records the others.
type permanentSetup struct {
	m       *monster.Monster
	runs    atomic.Int64 // handler runs on the poison event
	mu      sync.Mutex
	handled []string // data of the events handled
}

func setupPermanent(t *testing.T, name string, opts monster.ConsumerOptions, wrap func(error) error) *permanentSetup {
	t.Helper()
	s := &permanentSetup{m: newMem(t, nil)}
	// A retry would come after an hour: only a dead letter at once passes.
	opts.Retry = monster.RetryPolicy{MaxAttempts: 5, InitialBackoff: time.Hour, MaxBackoff: time.Hour, Jitter: -1}
	require.NoError(t, s.m.Consume(name, monster.Match("order.*", func(ctx context.Context, e monster.RawEvent) error {
		if string(e.Data) == `"poison"` {
			s.runs.Add(1)
			return wrap(errors.New("no such customer"))
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		s.handled = append(s.handled, string(e.Data))
		return nil
	}), &opts))
	start(t, s.m)
	return s
}

func (s *permanentSetup) handledData() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.handled...)
}

func TestPermanentFailureIsDeadLetteredAtOnce(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		opts monster.ConsumerOptions
		wrap func(error) error
	}{
		{name: "marked", wrap: monster.Permanent},
		{name: "marked and wrapped by the handler", wrap: func(err error) error {
			return fmt.Errorf("billing: %w", monster.Permanent(err))
		}},
		{name: "wrapping ErrPermanent", wrap: func(err error) error {
			return fmt.Errorf("%w: %v", monster.ErrPermanent, err)
		}},
		// A blocking consumer blocks to wait out failures that may pass;
		// the handler says this one will not, so it is dead-lettered and
		// the partition's next event runs.
		{name: "on a blocking consumer", opts: monster.ConsumerOptions{Partitions: 1, BlockOnFailure: true}, wrap: monster.Permanent},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			s := setupPermanent(t, "billing", tt.opts, tt.wrap)
			poison, err := s.m.Log(ctx, "order.placed", "poison", monster.WithKey("k1"))
			require.NoError(t, err)
			// Same key: with BlockOnFailure it would wait behind the poison
			// event for ever.
			_, err = s.m.Log(ctx, "order.placed", "fine", monster.WithKey("k1"))
			require.NoError(t, err)

			monstertest.WaitCaughtUp(t, s.m, "billing")
			require.Equal(t, []string{`"fine"`}, s.handledData())
			require.Equal(t, int64(1), s.runs.Load(), "a permanent failure is not retried")
			dls, err := s.m.DeadLetters(ctx, "billing", 0)
			require.NoError(t, err)
			require.Len(t, dls, 1)
			require.Equal(t, poison.ID, dls[0].EventID)
			require.Equal(t, 1, dls[0].Attempts)
			require.Contains(t, dls[0].Error, "no such customer")
			stats, err := s.m.ConsumerStats(ctx, "billing")
			require.NoError(t, err)
			require.Equal(t, int64(1), stats.Failures)
		})
	}
}

func TestPermanentFailureOfRetriedDeadLetter(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := setupPermanent(t, "billing", monster.ConsumerOptions{}, monster.Permanent)
	poison, err := s.m.Log(ctx, "order.placed", "poison")
	require.NoError(t, err)
	monstertest.WaitCaughtUp(t, s.m, "billing")

	n, err := s.m.RetryDeadLetters(ctx, "billing")
	require.NoError(t, err)
	require.Equal(t, 1, n)
	// Back at once, not after the retry policy's hour of backoff.
	monstertest.Eventually(t, "the dead letter back after one more run", func() bool {
		dls, err := s.m.DeadLetters(ctx, "billing", 0)
		return err == nil && len(dls) == 1 && !dls[0].RetryRequested
	})
	dls, err := s.m.DeadLetters(ctx, "billing", 0)
	require.NoError(t, err)
	require.Equal(t, poison.ID, dls[0].EventID)
	require.Equal(t, 2, dls[0].Attempts, "attempts add up over the retry")
	require.Equal(t, int64(2), s.runs.Load())
}

// An ordinary failure is still retried: the mark is what makes the
// difference.
func TestUnmarkedFailureIsRetried(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	m := newMem(t, nil)
	var runs atomic.Int64
	require.NoError(t, m.Consume("billing", monster.Match("order.*", func(ctx context.Context, e monster.RawEvent) error {
		runs.Add(1)
		return errors.New("no such customer")
	}), &monster.ConsumerOptions{Retry: monster.RetryPolicy{MaxAttempts: 3, InitialBackoff: time.Millisecond, Jitter: -1}}))
	start(t, m)
	_, err := m.Log(ctx, "order.placed", "poison")
	require.NoError(t, err)
	monstertest.WaitCaughtUp(t, m, "billing")
	dls, err := m.DeadLetters(ctx, "billing", 0)
	require.NoError(t, err)
	require.Len(t, dls, 1)
	require.Equal(t, 3, dls[0].Attempts)
	require.Equal(t, int64(3), runs.Load())
}
