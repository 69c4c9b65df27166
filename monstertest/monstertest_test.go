package monstertest_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/gomonster/monster"
	"github.com/gomonster/monster/monstertest"
)

type boughtShirt struct {
	User     string `json:"user"`
	Quantity int    `json:"quantity"`
}

var ctx = context.Background()

func logOrFail(t testing.TB, m *monster.Monster, typ string, data any) monster.RawEvent {
	t.Helper()
	e, err := m.Log(ctx, typ, data)
	require.NoError(t, err)
	return e
}

func TestNewRunsHandlersInsideLogAndClosesAtCleanup(t *testing.T) {
	t.Parallel()
	fake := newFakeTB(t)
	var m *monster.Monster
	fake.run(func(tb testing.TB) {
		m = monstertest.New(tb, nil)
		rec := monstertest.Record(tb, m, "audit", "user.*")
		logOrFail(tb, m, "user.bought_shirt", boughtShirt{User: "gordon", Quantity: 2})
		require.Equal(tb, []string{"user.bought_shirt"}, rec.Types(), "the handler must have run when Log returned")
		logOrFail(tb, m, "event_1", "a really cool message")
		require.Equal(tb, 1, rec.Len(), "event_1 is not in the subscription")
	})
	require.False(t, fake.Failed(), fake.output())
	_, err := m.Log(ctx, "event_1", "after the test")
	require.ErrorIs(t, err, monster.ErrClosed, "New must close the Monster at cleanup")
}

func TestNewReturnsHandlerErrorsFromLog(t *testing.T) {
	t.Parallel()
	m := monstertest.New(t, nil)
	rec := monstertest.Record(t, m, "mailer", "user.bought_shirt")
	boom := errors.New("mail server down")
	rec.FailWith(boom)

	_, err := m.Log(ctx, "user.bought_shirt", boughtShirt{User: "gordon", Quantity: 2})
	var he *monster.HandlerError
	require.ErrorAs(t, err, &he)
	require.Equal(t, "mailer", he.Consumer)
	require.ErrorIs(t, err, boom)
	require.Equal(t, 1, rec.Len())
	monstertest.RequireLogged(t, m, "user.bought_shirt", 1) // stored all the same

	rec.FailWith(nil)
	logOrFail(t, m, "user.bought_shirt", boughtShirt{User: "alyx", Quantity: 1})
	require.Equal(t, 2, rec.Len())
}

func TestLoggedMatchesExactTypesAndGlobs(t *testing.T) {
	t.Parallel()
	m := monstertest.New(t, nil)
	logOrFail(t, m, "user.bought_shirt", boughtShirt{User: "gordon", Quantity: 2})
	logOrFail(t, m, "event_1", "a really cool message")
	logOrFail(t, m, "user.signed_up", map[string]string{"user": "alyx"})

	positions := func(events []monster.RawEvent) []int64 {
		var out []int64
		for _, e := range events {
			out = append(out, e.Position)
		}
		return out
	}
	for _, tc := range []struct {
		pattern string
		want    []int64
	}{
		{"user.*", []int64{1, 3}},
		{"user.bought_shirt", []int64{1}},
		{"*", []int64{1, 2, 3}},
		{"custom_1", nil},
	} {
		require.Equal(t, tc.want, positions(monstertest.Logged(t, m, tc.pattern)), tc.pattern)
	}
}

func TestRequireLogged(t *testing.T) {
	t.Parallel()
	m := monstertest.New(t, nil)
	logOrFail(t, m, "user.bought_shirt", boughtShirt{User: "gordon", Quantity: 2})
	logOrFail(t, m, "event_1", "a really cool message")

	t.Run("passes with the right count", func(t *testing.T) {
		events := monstertest.RequireLogged(t, m, "user.bought_shirt", 1)
		require.Equal(t, "gordon", monstertest.Data[boughtShirt](t, events[0]).User)
		monstertest.RequireLogged(t, m, "custom_1", 0)
	})
	t.Run("fails at once with the wrong count", func(t *testing.T) {
		fake := newFakeTB(t)
		carriedOn := false
		fake.run(func(tb testing.TB) {
			monstertest.RequireLogged(tb, m, "user.bought_shirt", 2)
			carriedOn = true
		})
		require.True(t, fake.Failed())
		require.False(t, carriedOn, "RequireLogged must stop the test")
		require.Equal(t, `monstertest: want 2 "user.bought_shirt" event(s) logged, got 1; `+
			`the log holds 2 event(s): event_1 ×1, user.bought_shirt ×1`, fake.output())
	})
}

func TestRequireNotLogged(t *testing.T) {
	t.Parallel()
	m := monstertest.New(t, nil)
	logOrFail(t, m, "user.bought_shirt", boughtShirt{User: "gordon", Quantity: 2})

	monstertest.RequireNotLogged(t, m, "payment.*")

	fake := newFakeTB(t)
	fake.run(func(tb testing.TB) { monstertest.RequireNotLogged(tb, m, "user.*") })
	require.True(t, fake.Failed())
	require.Equal(t, `monstertest: want no "user.*" event logged, got 1: `+
		`user.bought_shirt@1 {"user":"gordon","quantity":2}`, fake.output())
}

func TestLoggedRejectsMalformedPatterns(t *testing.T) {
	t.Parallel()
	m := monstertest.New(t, nil)
	fake := newFakeTB(t)
	fake.run(func(tb testing.TB) { monstertest.Logged(tb, m, "user.[") })
	require.True(t, fake.Failed())
	require.Contains(t, fake.output(), `malformed pattern "user.["`)
}

func TestDataFailsOnDataOfAnotherShape(t *testing.T) {
	t.Parallel()
	m := monstertest.New(t, nil)
	e := logOrFail(t, m, "event_1", "a really cool message")
	fake := newFakeTB(t)
	fake.run(func(tb testing.TB) { monstertest.Data[boughtShirt](tb, e) })
	require.True(t, fake.Failed())
	require.Contains(t, fake.output(), `decoding "event_1" event at position 1 into monstertest_test.boughtShirt`)
}

func TestNewAsyncRunsConsumersInTheBackground(t *testing.T) {
	t.Parallel()
	m := monstertest.NewAsync(t, nil)
	rec := monstertest.Record(t, m, "audit", "event_1")
	for i := range 50 {
		logOrFail(t, m, "event_1", fmt.Sprintf("Logging event_1 %d", i))
	}
	logOrFail(t, m, "custom_1", "not for audit")

	monstertest.WaitCaughtUp(t, m, "audit")
	events := rec.Events()
	require.Len(t, events, 50)
	for i, e := range events {
		require.Equal(t, int64(i+1), e.Position, "one partition, concurrency 1: log order")
	}
	stats, err := m.ConsumerStats(ctx, "audit")
	require.NoError(t, err)
	require.Equal(t, int64(0), stats.Lag)
}

func TestRecorderWait(t *testing.T) {
	t.Parallel()
	m := monstertest.NewAsync(t, nil)
	rec := monstertest.Record(t, m, "audit")
	logOrFail(t, m, "event_1", "one")
	logOrFail(t, m, "custom_1", "two")
	got := rec.Wait(t, 2)
	require.Len(t, got, 2)
	require.ElementsMatch(t, []string{"event_1", "custom_1"}, rec.Types())

	fake := newFakeTB(t)
	fake.deadline = time.Now().Add(50 * time.Millisecond)
	fake.run(func(tb testing.TB) { rec.Wait(tb, 3) })
	require.True(t, fake.Failed())
	require.Contains(t, fake.output(), "for 3 deliveries, got 2: ")

	rec.Reset()
	require.Equal(t, 0, rec.Len())
}

func TestRetriesAndDeadLettersWithARecorder(t *testing.T) {
	t.Parallel()
	fake := newFakeTB(t) // to see the Monster's log lines
	fake.run(func(tb testing.TB) {
		m := monstertest.NewAsync(tb, nil)
		rec := &monstertest.Recorder{}
		rec.FailWith(errors.New("mail server down"))
		require.NoError(tb, m.Consume("mailer", rec.Handler("user.bought_shirt"), &monster.ConsumerOptions{
			Retry: monster.RetryPolicy{MaxAttempts: 2, InitialBackoff: time.Millisecond, Jitter: -1},
		}))
		e := logOrFail(tb, m, "user.bought_shirt", boughtShirt{User: "gordon", Quantity: 2})

		monstertest.WaitCaughtUp(tb, m, "mailer")
		attempts := []int{}
		for _, d := range rec.Events() {
			require.Equal(tb, e.ID, d.ID)
			attempts = append(attempts, d.Attempt)
		}
		require.Equal(tb, []int{1, 2}, attempts)
		dead, err := m.DeadLetters(ctx, "mailer", 0)
		require.NoError(tb, err)
		require.Len(tb, dead, 1)
		require.Equal(tb, "mail server down", dead[0].Error)
	})
	require.False(t, fake.Failed(), fake.output())
	require.Contains(t, fake.output(), "handler failed, will retry", "the Monster's logger must write to tb.Log")
	require.Contains(t, fake.output(), "event dead-lettered")
}

func TestWaitCaughtUpReportsWhereTheConsumerIs(t *testing.T) {
	t.Parallel()
	m := monstertest.NewAsync(t, nil)
	rec := &monstertest.Recorder{}
	rec.FailWith(errors.New("redis is down"))
	require.NoError(t, m.Consume("counter", rec.Handler("event_1"), &monster.ConsumerOptions{
		BlockOnFailure: true, Retry: monster.RetryPolicy{InitialBackoff: time.Millisecond, MaxBackoff: 5 * time.Millisecond},
	}))
	logOrFail(t, m, "event_1", "stuck")

	t.Run("stuck consumer", func(t *testing.T) {
		rec.Wait(t, 1) // registered and failing
		fake := newFakeTB(t)
		fake.deadline = time.Now().Add(100 * time.Millisecond)
		fake.run(func(tb testing.TB) { monstertest.WaitCaughtUp(tb, m, "counter") })
		require.True(t, fake.Failed())
		require.Contains(t, fake.output(), `timed out waiting for consumer "counter" to catch up: it is at position 0 with lag 1`)
	})
	t.Run("unknown consumer", func(t *testing.T) {
		fake := newFakeTB(t)
		fake.deadline = time.Now().Add(20 * time.Millisecond)
		fake.run(func(tb testing.TB) { monstertest.WaitCaughtUp(tb, m, "nobody") })
		require.True(t, fake.Failed())
		require.Contains(t, fake.output(), `consumer "nobody" to catch up: it is not in the store`)
	})
	t.Run("recovers", func(t *testing.T) {
		rec.FailWith(nil)
		monstertest.WaitCaughtUp(t, m, "counter")
	})
}

func TestEventually(t *testing.T) {
	t.Parallel()
	calls := 0
	monstertest.Eventually(t, "the third call", func() bool { calls++; return calls == 3 })
	require.Equal(t, 3, calls)

	fake := newFakeTB(t)
	fake.deadline = time.Now().Add(10 * time.Millisecond)
	fake.run(func(tb testing.TB) { monstertest.Eventually(tb, "pigs to fly", func() bool { return false }) })
	require.True(t, fake.Failed())
	require.Equal(t, "monstertest: timed out waiting for pigs to fly", fake.output())

	// EventuallyWithin gives up after its own timeout, well before the
	// test's deadline.
	short := newFakeTB(t)
	began := time.Now()
	short.run(func(tb testing.TB) {
		monstertest.EventuallyWithin(tb, 20*time.Millisecond, "a short wait", func() bool { return false })
	})
	require.True(t, short.Failed())
	require.Less(t, time.Since(began), monstertest.WaitTimeout, "EventuallyWithin waited for WaitTimeout instead of its own timeout")
	require.Equal(t, "monstertest: timed out waiting for a short wait", short.output())
}

func TestOptionsFillsOnlyZeroFields(t *testing.T) {
	t.Parallel()
	o := monstertest.Options(t, &monster.Options{PollInterval: time.Second, Verbose: true})
	require.Equal(t, time.Second, o.PollInterval, "set fields are kept")
	require.True(t, o.Verbose)
	require.False(t, o.Eager)
	require.NotNil(t, o.Logger)
	require.Positive(t, o.CheckpointInterval)
	require.Less(t, o.CheckpointInterval, 100*time.Millisecond, "faster than the default")

	fake := newFakeTB(t)
	fake.run(func(tb testing.TB) { monstertest.Logger(tb).Info("monster: hello", "consumer", "audit") })
	require.Contains(t, fake.output(), `msg="monster: hello" consumer=audit`)
	require.False(t, fake.Failed())
}
