package monster_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/gomonster/monster"
	"github.com/gomonster/monster/monstertest"
)

func TestLogAndConsume(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	m := newMem(t, nil)
	var mu sync.Mutex
	var got []string
	require.NoError(t, m.Consume("audit", monster.Match("user.*", func(ctx context.Context, e monster.RawEvent) error {
		mu.Lock()
		defer mu.Unlock()
		got = append(got, e.Type+" "+string(e.Data))
		return nil
	}), nil))
	_, err := m.Log(ctx, "user.bought_shirt", map[string]any{"user": "gordon", "quantity": 2})
	require.NoError(t, err)
	_, err = m.Log(ctx, "event_1", "a really cool message")
	require.NoError(t, err)
	start(t, m)
	_, err = m.Log(ctx, "user.signed_up", map[string]any{"user": "alyx"})
	require.NoError(t, err)
	monstertest.Eventually(t, "two user events", func() bool { mu.Lock(); defer mu.Unlock(); return len(got) == 2 })
	mu.Lock()
	require.Equal(t, []string{`user.bought_shirt {"quantity":2,"user":"gordon"}`, `user.signed_up {"user":"alyx"}`}, got)
	mu.Unlock()
	monstertest.Eventually(t, "lag 0", func() bool {
		s, err := m.ConsumerStats(ctx, "audit")
		return err == nil && s.Lag == 0 && s.Position == 3
	})
}

type boughtShirt struct {
	User     string `json:"user"`
	Quantity int    `json:"quantity"`
}

func TestDeclaredTypeValidation(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	m := newMem(t, nil)
	bought := monster.Declare[boughtShirt](m, "user.bought_shirt", monster.Validate(func(b boughtShirt) error {
		if b.Quantity <= 0 {
			return monster.FieldError("quantity", "must be positive")
		}
		return nil
	}))
	_, err := bought.Log(ctx, boughtShirt{User: "gordon", Quantity: 0})
	var ve *monster.ValidationError
	require.ErrorAs(t, err, &ve)
	require.ErrorIs(t, err, monster.ErrInvalid)
	require.Equal(t, "quantity", ve.Field)
	require.Contains(t, err.Error(), `monster: invalid "user.bought_shirt" event: field "quantity"`)

	_, err = m.Log(ctx, "user.bought_shirt", map[string]any{"user": "gordon", "quantity": "two"})
	require.ErrorAs(t, err, &ve)
	require.Equal(t, "quantity", ve.Field)

	e, err := bought.Log(ctx, boughtShirt{User: "gordon", Quantity: 2})
	require.NoError(t, err)
	require.Equal(t, int64(1), e.Position, "rejected events must not be stored")

	var handled atomic.Int64
	require.NoError(t, m.Consume("mailer", monster.Handle(bought, func(ctx context.Context, e monster.Event[boughtShirt]) error {
		if e.Data.User != "gordon" || e.Data.Quantity != 2 {
			return fmt.Errorf("unexpected data %+v", e.Data)
		}
		handled.Add(1)
		return nil
	}), nil))
	start(t, m)
	monstertest.Eventually(t, "typed handler", func() bool { return handled.Load() == 1 })
}

func TestBadInput(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	m := newMem(t, &monster.Options{MaxEventSize: 100})
	cases := []struct {
		name string
		typ  string
		data any
		want error
		text string
	}{
		{"empty type", "", 1, monster.ErrInvalidName, "event type is empty"},
		{"malformed type", "user..x", 1, monster.ErrInvalidName, `"user..x"`},
		{"space in type", "user bought", 1, monster.ErrInvalidName, `"user bought"`},
		{"not JSON", "x", make(chan int), monster.ErrEncoding, "chan int"},
		{"bad raw JSON", "x", json.RawMessage(`{"a":`), monster.ErrEncoding, "not valid JSON"},
		{"too large", "x", string(make([]byte, 200)), monster.ErrTooLarge, "over the limit of 100"},
	}
	for _, tc := range cases {
		_, err := m.Log(ctx, tc.typ, tc.data)
		require.ErrorIs(t, err, tc.want, tc.name)
		require.Contains(t, err.Error(), "monster: ", tc.name)
		require.Contains(t, err.Error(), tc.text, tc.name)
	}
	stats, err := m.Stats(ctx)
	require.NoError(t, err)
	require.Zero(t, stats.Head, "nothing stored")

	_, err = m.LogBatch(ctx, []monster.Entry{{Type: "ok", Data: 1}, {Type: "bad type", Data: 2}})
	require.ErrorIs(t, err, monster.ErrInvalidName)
	require.Contains(t, err.Error(), "batch entry 1")
	stats, err = m.Stats(ctx)
	require.NoError(t, err)
	require.Zero(t, stats.Head, "a batch is all or nothing")
}

func TestUndeclaredPolicy(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	m := newMem(t, &monster.Options{DisallowUndeclared: true})
	_, err := m.Log(ctx, "event_1", "hello")
	require.ErrorIs(t, err, monster.ErrUndeclared)
	require.Contains(t, err.Error(), `"event_1"`)
	monster.Declare[string](m, "event_1")
	_, err = m.Log(ctx, "event_1", "hello")
	require.NoError(t, err)
}

func TestRetryThenDeadLetterThenRetryByOperator(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	m := newMem(t, nil)
	var fail atomic.Bool
	fail.Store(true)
	var attempts, other atomic.Int64
	retry := monster.RetryPolicy{MaxAttempts: 3, InitialBackoff: 1, MaxBackoff: 5 * 1000 * 1000}
	require.NoError(t, m.Consume("flaky", monster.Match("order.*", func(ctx context.Context, e monster.RawEvent) error {
		attempts.Add(1)
		if fail.Load() && string(e.Data) == `"poison"` {
			panic("boom")
		}
		return nil
	}), &monster.ConsumerOptions{Retry: retry}))
	require.NoError(t, m.Consume("other", monster.Match("*", func(ctx context.Context, e monster.RawEvent) error {
		other.Add(1)
		return nil
	}), nil))
	start(t, m)
	poison, err := m.Log(ctx, "order.placed", "poison", monster.WithKey("k1"))
	require.NoError(t, err)
	_, err = m.Log(ctx, "order.placed", "fine", monster.WithKey("k2"))
	require.NoError(t, err)
	monstertest.Eventually(t, "dead letter", func() bool {
		dls, err := m.DeadLetters(ctx, "flaky", 0)
		return err == nil && len(dls) == 1
	})
	dls, err := m.DeadLetters(ctx, "flaky", 0)
	require.NoError(t, err)
	require.Equal(t, poison.ID, dls[0].EventID)
	require.Equal(t, 3, dls[0].Attempts)
	require.Contains(t, dls[0].Error, "boom")
	monstertest.Eventually(t, "other consumer unaffected", func() bool { return other.Load() == 2 })
	monstertest.Eventually(t, "consumer moved on", func() bool {
		s, err := m.ConsumerStats(ctx, "flaky")
		return err == nil && s.Lag == 0 && s.DeadLetters == 1 && s.Failures == 3
	})

	fail.Store(false)
	n, err := m.RetryDeadLetters(ctx, "flaky")
	require.NoError(t, err)
	require.Equal(t, 1, n)
	monstertest.Eventually(t, "dead letter retried away", func() bool {
		dls, err := m.DeadLetters(ctx, "flaky", 0)
		return err == nil && len(dls) == 0
	})
	_, err = m.DiscardDeadLetters(ctx, "flaky", "nope")
	require.True(t, errors.Is(err, monster.ErrNotFound))
}

func TestPerKeyOrderWithConcurrency(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	m := newMem(t, nil)
	const keys, perKey = 8, 50
	var mu sync.Mutex
	seen := map[string][]int{}
	running := map[string]bool{}
	var overlap atomic.Bool
	require.NoError(t, m.Consume("ordered", monster.Match("seq", func(ctx context.Context, e monster.RawEvent) error {
		mu.Lock()
		if running[e.Key] {
			overlap.Store(true)
		}
		running[e.Key] = true
		mu.Unlock()
		var n int
		if err := json.Unmarshal(e.Data, &n); err != nil {
			return err
		}
		mu.Lock()
		seen[e.Key] = append(seen[e.Key], n)
		running[e.Key] = false
		mu.Unlock()
		return nil
	}), &monster.ConsumerOptions{Concurrency: 8}))
	for i := range perKey {
		var entries []monster.Entry
		for k := range keys {
			entries = append(entries, monster.Entry{Type: "seq", Data: i, Key: fmt.Sprintf("k%d", k)})
		}
		_, err := m.LogBatch(ctx, entries)
		require.NoError(t, err)
	}
	start(t, m)
	monstertest.Eventually(t, "all handled", func() bool {
		mu.Lock()
		defer mu.Unlock()
		total := 0
		for _, s := range seen {
			total += len(s)
		}
		return total == keys*perKey
	})
	require.False(t, overlap.Load(), "same-key events ran concurrently")
	for k, s := range seen {
		for i, n := range s {
			require.Equal(t, i, n, "key %s out of order", k)
		}
	}
}
