package storetest

import (
	"context"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/gomonster/monster"
	"github.com/gomonster/monster/monstertest"
	"github.com/gomonster/monster/store"
)

// Outage describes a store whose connection to its database the test can
// cut and restore (a TCP proxy it controls), for [RunOutage].
type Outage struct {
	// ViaProxy is an open, empty store that reaches its database through
	// the proxy. RunOutage closes it.
	ViaProxy store.Store
	// Direct opens another handle on the same data, not through the
	// proxy: the truth the test checks, and another process logging while
	// the proxy is cut. The handles are closed by RunOutage.
	Direct func(t *testing.T) store.Store
	// Cut and Restore stop and resume the proxy's traffic.
	Cut, Restore func()
	// LogTimeout bounds each Log while the database is down (default
	// 10 s). Log must fail on its own well before 20 s.
	LogTimeout time.Duration
}

// RunOutage checks the guarantees of monster's package documentation against
// a database that goes down mid-run and comes back: Log returns a clear
// "monster: " error while it is unreachable (never a silent drop, never a
// wait for the database); the consumer pauses and resumes on its own; events
// that another process logged meanwhile wait for it; the first Log after the
// outage succeeds; and no acknowledged event or saved checkpoint is lost,
// nor is any event of a failed Log stored.
func RunOutage(t *testing.T, o Outage) {
	t.Helper()
	ctx := t.Context()
	logTimeout := o.LogTimeout
	if logTimeout == 0 {
		logTimeout = 10 * time.Second
	}
	quiet := slog.New(slog.DiscardHandler)
	truth := o.Direct(t)
	t.Cleanup(func() { _ = truth.Close() })
	m := monster.New(o.ViaProxy, &monster.Options{
		MemberID:           "survivor",
		PollInterval:       10 * time.Millisecond,
		LeaseTTL:           time.Second,
		CheckpointInterval: 10 * time.Millisecond,
		ShutdownTimeout:    5 * time.Second,
		Output:             io.Discard,
		Logger:             quiet,
	})
	t.Cleanup(func() { _ = m.Close() })
	var mu sync.Mutex
	handled := map[string]int{}
	require.NoError(t, m.Consume("counter", monster.Match("*", func(_ context.Context, e monster.RawEvent) error {
		mu.Lock()
		handled[e.ID]++
		mu.Unlock()
		return nil
	}), &monster.ConsumerOptions{Partitions: 2}))
	runCtx, stop := context.WithCancel(context.Background())
	defer stop()
	require.NoError(t, m.Start(runCtx))
	t.Cleanup(func() {
		stopCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = m.Stop(stopCtx)
	})

	var acked []string
	logSome := func(n int) {
		t.Helper()
		for i := range n {
			ev, err := m.Log(ctx, "survive.me", i)
			require.NoError(t, err)
			acked = append(acked, ev.ID)
		}
	}
	handledCount := func() int {
		mu.Lock()
		defer mu.Unlock()
		return len(handled)
	}
	allHandled := func() bool {
		mu.Lock()
		defer mu.Unlock()
		for _, id := range acked {
			if handled[id] == 0 {
				return false
			}
		}
		return true
	}
	checkpointsAt := func(head int64) bool {
		info, err := truth.Consumer(ctx, "counter")
		if err != nil {
			return false
		}
		for _, part := range info.Partitions {
			if part.Checkpoint < head {
				return false
			}
		}
		return true
	}
	// The driver's reconnection after the outage can take longer than
	// waitTimeout.
	waitFor := func(what string, cond func() bool) {
		t.Helper()
		monstertest.EventuallyWithin(t, 60*time.Second, what, cond)
	}

	logSome(20)
	waitFor("the first events to be handled", allHandled)
	head, err := truth.Head(ctx)
	require.NoError(t, err)
	waitFor("the first checkpoints", func() bool { return checkpointsAt(head) })

	o.Cut()
	for i := range 5 {
		logCtx, cancel := context.WithTimeout(ctx, logTimeout)
		start := time.Now()
		_, err := m.Log(logCtx, "lost.while.down", i)
		cancel()
		require.Error(t, err, "Log %d with the database down must fail", i)
		require.True(t, strings.HasPrefix(err.Error(), "monster: "), err.Error())
		require.Less(t, time.Since(start), 20*time.Second, "Log fails, it does not wait for the database: %v", err)
	}
	// The consumer is paused: nothing new to handle, and nothing handled
	// twice or invented.
	require.Equal(t, len(acked), handledCount())
	info, err := truth.Consumer(ctx, "counter")
	require.NoError(t, err)
	for _, part := range info.Partitions {
		require.GreaterOrEqual(t, part.Checkpoint, head, "saved checkpoints survive the outage")
	}
	// Events logged meanwhile by another process (straight to the
	// database) wait for the consumer to come back.
	other := monster.New(o.Direct(t), &monster.Options{Logger: quiet})
	t.Cleanup(func() { _ = other.Close() })
	for i := range 3 {
		ev, err := other.Log(ctx, "logged.elsewhere", i)
		require.NoError(t, err)
		acked = append(acked, ev.ID)
	}
	o.Restore()

	logSome(20) // the first Log after the outage succeeds: stale connections are replaced
	waitFor("the consumer to resume and handle every acknowledged event", allHandled)
	for _, id := range acked {
		_, err := truth.EventByID(ctx, id)
		require.NoError(t, err, "acknowledged event %s is stored", id)
	}
	all, err := truth.Read(ctx, store.ReadParams{After: 0, Limit: 1000})
	require.NoError(t, err)
	require.Len(t, all, len(acked), "only acknowledged events are stored: no Log that failed while down was stored")
	for _, e := range all {
		require.NotEqual(t, "lost.while.down", e.Type)
	}
	head, err = truth.Head(ctx)
	require.NoError(t, err)
	waitFor("the checkpoints to reach the head", func() bool { return checkpointsAt(head) })
}
