package postgres_test

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/gomonster/monster"
	"github.com/gomonster/monster/internal/tcpproxy"
	"github.com/gomonster/monster/store/postgres"
)

// proxyURL returns base with the proxy's address as host.
func proxyURL(t *testing.T, p *tcpproxy.Proxy, base string) string {
	u, err := url.Parse(base)
	require.NoError(t, err)
	u.Host = p.Addr()
	return u.String()
}

func serverAddr(t *testing.T, base string) string {
	u, err := url.Parse(base)
	require.NoError(t, err)
	host := u.Host
	if u.Port() == "" {
		host = net.JoinHostPort(u.Hostname(), "5432")
	}
	return host
}

// A database that is down at start, goes down mid-run and comes back:
// Open and Log return clear errors while it is unreachable (never a silent
// drop), the first Log after it is back succeeds, the consumer pauses and
// resumes on its own, and no acknowledged event or saved checkpoint is
// lost.
func TestDatabaseDownAndBack(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	base := requireServer(t)
	schema := newSchema(t)
	p := tcpproxy.Start(t, serverAddr(t, base))
	viaProxy := proxyURL(t, p, base)

	p.Cut()
	_, err := postgres.Open(ctx, viaProxy, testOptions(schema))
	require.Error(t, err, "Open with the database down")
	require.True(t, strings.HasPrefix(err.Error(), "monster: postgres open "), err.Error())
	require.Contains(t, err.Error(), "cannot connect")
	p.Restore()

	s := openStoreAt(t, viaProxy, testOptions(schema))
	direct := openStore(t, schema) // the truth, not through the proxy
	m := monster.OpenStore(s, &monster.Options{
		MemberID:           "survivor",
		PollInterval:       10 * time.Millisecond,
		LeaseTTL:           time.Second,
		CheckpointInterval: 10 * time.Millisecond,
		ShutdownTimeout:    5 * time.Second,
		Output:             io.Discard,
		Logger:             slog.New(slog.NewTextHandler(io.Discard, nil)),
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
		for i := range n {
			ev, err := m.Log(ctx, "survive.me", i)
			require.NoError(t, err)
			acked = append(acked, ev.ID)
		}
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
		info, err := direct.Consumer(ctx, "counter")
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
		deadline := time.Now().Add(20 * time.Second)
		for !cond() {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s", what)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}

	logSome(20)
	waitFor("the first events to be handled", allHandled)
	head, err := direct.Head(ctx)
	require.NoError(t, err)
	waitFor("the first checkpoints", func() bool { return checkpointsAt(head) })

	p.Cut()
	var failed atomic.Int64
	for i := range 5 {
		logCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
		_, err := m.Log(logCtx, "lost.while.down", i)
		cancel()
		require.Error(t, err, "Log %d with the database down must fail", i)
		require.True(t, strings.HasPrefix(err.Error(), "monster: "), err.Error())
		failed.Add(1)
	}
	info, err := direct.Consumer(ctx, "counter")
	require.NoError(t, err)
	for _, part := range info.Partitions {
		require.GreaterOrEqual(t, part.Checkpoint, head, "saved checkpoints survive the outage")
	}
	p.Restore()

	logSome(20) // the first Log after the outage succeeds: stale connections are replaced
	waitFor("the consumer to resume and handle every acknowledged event", allHandled)
	for _, id := range acked {
		_, err := direct.EventByID(ctx, id)
		require.NoError(t, err, "acknowledged event %s is stored", id)
	}
	all, err := direct.Read(ctx, 0, 1000)
	require.NoError(t, err)
	require.Len(t, all, len(acked), "only acknowledged events are stored: no Log that failed while down was stored")
	head, err = direct.Head(ctx)
	require.NoError(t, err)
	waitFor("the checkpoints to reach the head", func() bool { return checkpointsAt(head) })
	require.EqualValues(t, 5, failed.Load())
}
