package mongodb_test

import (
	"context"
	"io"
	"log/slog"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/gomonster/monster"
	"github.com/gomonster/monster/internal/tcpproxy"
	"github.com/gomonster/monster/store/mongodb"
	"github.com/gomonster/monster/store/mongodb/ferrettest"
)

// A database that is down at start, goes down mid-run and comes back (a
// TCP proxy between the store and FerretDB, cut and restored): Open and
// Log return clear errors while it is unreachable (never a silent drop),
// the consumer pauses and resumes on its own, the first Log after it is
// back succeeds, and no acknowledged event or saved checkpoint is lost.
func TestDatabaseDownAndBack(t *testing.T) {
	ctx := t.Context()
	direct := ferrettest.Database(t, ferrettest.Start(t))
	u, err := url.Parse(direct)
	require.NoError(t, err)
	p := tcpproxy.Start(t, u.Host)
	u.Host = p.Addr()
	q := u.Query()
	// How long an operation waits for an unreachable server before it
	// fails (the driver's default is 30s).
	q.Set("serverSelectionTimeoutMS", "1000")
	u.RawQuery = q.Encode()
	viaProxy := u.String()
	opts := &mongodb.Options{AppendLease: 2 * time.Second}

	p.Cut()
	_, err = mongodb.Open(ctx, viaProxy, opts)
	require.Error(t, err, "Open with the database down")
	require.True(t, strings.HasPrefix(err.Error(), "monster: mongodb: open: "), err.Error())
	p.Restore()

	s, err := mongodb.Open(ctx, viaProxy, opts)
	require.NoError(t, err)
	truth, err := mongodb.Open(ctx, direct, nil) // not through the proxy
	require.NoError(t, err)
	t.Cleanup(func() { _ = truth.Close() })
	m := monster.OpenStore(s, &monster.Options{
		MemberID:           "survivor",
		PollInterval:       10 * time.Millisecond,
		LeaseTTL:           time.Second,
		CheckpointInterval: 10 * time.Millisecond,
		ShutdownTimeout:    5 * time.Second,
		Output:             io.Discard,
		Logger:             slog.New(slog.DiscardHandler),
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
	waitFor := func(what string, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(60 * time.Second)
		for !cond() {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s", what)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}

	logSome(20)
	waitFor("the first events to be handled", allHandled)
	head, err := truth.Head(ctx)
	require.NoError(t, err)
	waitFor("the first checkpoints", func() bool { return checkpointsAt(head) })

	p.Cut()
	for i := range 5 {
		logCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
		start := time.Now()
		_, err := m.Log(logCtx, "lost.while.down", i)
		cancel()
		require.Error(t, err, "Log %d with the database down must fail", i)
		require.True(t, strings.HasPrefix(err.Error(), "monster: "), err.Error())
		require.Less(t, time.Since(start), 20*time.Second, "Log fails, it does not wait for the database: %v", err)
		if i == 0 {
			t.Logf("Log while down: %v (after %v)", err, time.Since(start).Round(time.Millisecond))
		}
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
	// server) wait for the consumer to come back.
	elsewhere, err := mongodb.Open(ctx, direct, nil)
	require.NoError(t, err)
	other := monster.OpenStore(elsewhere, &monster.Options{Logger: slog.New(slog.DiscardHandler)})
	t.Cleanup(func() { _ = other.Close() })
	for i := range 3 {
		ev, err := other.Log(ctx, "logged.elsewhere", i)
		require.NoError(t, err)
		acked = append(acked, ev.ID)
	}
	p.Restore()

	logSome(20) // the first Log after the outage succeeds
	waitFor("the consumer to resume and handle every acknowledged event", allHandled)
	for _, id := range acked {
		_, err := truth.EventByID(ctx, id)
		require.NoError(t, err, "acknowledged event %s is stored", id)
	}
	all, err := truth.Read(ctx, 0, 1000)
	require.NoError(t, err)
	require.Len(t, all, len(acked), "only acknowledged events are stored: no Log that failed while down was stored")
	for _, e := range all {
		require.NotEqual(t, "lost.while.down", e.Type)
	}
	head, err = truth.Head(ctx)
	require.NoError(t, err)
	waitFor("the checkpoints to reach the head", func() bool { return checkpointsAt(head) })
}
