package monster_test

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/gomonster/monster"
	"github.com/gomonster/monster/monstertest"
	"github.com/gomonster/monster/store"
)

func openFile(t *testing.T, opts *monster.Options) (*monster.Monster, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "monster.db")
	o := fastOptions(opts)
	m, err := monster.Open(context.Background(), path, &o)
	require.NoError(t, err)
	t.Cleanup(func() { _ = m.Close() })
	return m, path
}

func TestLogTxCommitAndRollback(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	m, _ := openFile(t, nil)
	var mu sync.Mutex
	var got []string
	require.NoError(t, m.Consume("orders", monster.Match("order.*", func(ctx context.Context, e monster.RawEvent) error {
		mu.Lock()
		defer mu.Unlock()
		got = append(got, string(e.Data))
		return nil
	}), nil))
	start(t, m)

	db := m.DB()
	require.NotNil(t, db)
	_, err := db.ExecContext(ctx, `CREATE TABLE orders (id INTEGER PRIMARY KEY, item TEXT)`)
	require.NoError(t, err)

	// Rolled back: neither the row nor the event exists.
	tx, err := db.BeginTx(ctx, nil)
	require.NoError(t, err)
	_, err = tx.ExecContext(ctx, `INSERT INTO orders (item) VALUES ('boots')`)
	require.NoError(t, err)
	_, err = m.LogTx(ctx, tx, "order.placed", "boots")
	require.NoError(t, err)
	require.NoError(t, tx.Rollback())

	// Committed: both exist, and the consumer sees the event.
	tx, err = db.BeginTx(ctx, nil)
	require.NoError(t, err)
	_, err = tx.ExecContext(ctx, `INSERT INTO orders (item) VALUES ('shirt')`)
	require.NoError(t, err)
	e, err := m.LogTx(ctx, tx, "order.placed", "shirt")
	require.NoError(t, err)
	require.NoError(t, tx.Commit())

	monstertest.Eventually(t, "committed event handled", func() bool { mu.Lock(); defer mu.Unlock(); return len(got) == 1 })
	mu.Lock()
	require.Equal(t, []string{`"shirt"`}, got)
	mu.Unlock()
	events, err := m.Events(ctx, 0, 10)
	require.NoError(t, err)
	require.Len(t, events, 1)
	require.Equal(t, e.ID, events[0].ID)
	var rows int
	require.NoError(t, db.QueryRowContext(ctx, `SELECT count(*) FROM orders`).Scan(&rows))
	require.Equal(t, 1, rows)

	mem := newMem(t, nil)
	_, err = mem.LogTx(ctx, tx, "order.placed", "x")
	require.ErrorIs(t, err, monster.ErrNotSupported)
}

func TestOpenErrors(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	_, err := monster.Open(ctx, "nosuch://somewhere", nil)
	require.ErrorIs(t, err, monster.ErrUnknownStore)
	require.Contains(t, err.Error(), `scheme "nosuch"`)

	path := filepath.Join(t.TempDir(), "notes.txt")
	content := []byte("these are my notes, not a database\n")
	require.NoError(t, os.WriteFile(path, content, 0o600))
	_, err = monster.Open(ctx, path, nil)
	require.ErrorIs(t, err, monster.ErrNotAStore)
	require.Contains(t, err.Error(), "monster: ")
	after, err := os.ReadFile(path)
	require.NoError(t, err)
	require.Equal(t, content, after, "a file that is not a store is left alone")
}

func TestHandlerMiddlewareOrderAndPanicRecovery(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	m := newMem(t, nil)
	var mu sync.Mutex
	var trace []string
	mw := func(name string) monster.HandlerMiddleware {
		return func(next monster.HandlerFunc) monster.HandlerFunc {
			return func(ctx context.Context, e monster.RawEvent) error {
				mu.Lock()
				trace = append(trace, name+">")
				mu.Unlock()
				err := next(ctx, e)
				mu.Lock()
				trace = append(trace, "<"+name)
				mu.Unlock()
				return err
			}
		}
	}
	var attempts atomic.Int64
	require.NoError(t, m.Consume("mw", monster.Match("x", func(ctx context.Context, e monster.RawEvent) error {
		if attempts.Add(1) == 1 {
			panic("first attempt panics")
		}
		return nil
	}), &monster.ConsumerOptions{
		Middleware: []monster.HandlerMiddleware{mw("outer"), mw("inner")},
		Retry:      monster.RetryPolicy{InitialBackoff: time.Millisecond},
	}))
	start(t, m)
	_, err := m.Log(ctx, "x", 1)
	require.NoError(t, err)
	monstertest.Eventually(t, "retried after the panic", func() bool { return attempts.Load() == 2 })
	monstertest.Eventually(t, "second run traced", func() bool { mu.Lock(); defer mu.Unlock(); return len(trace) >= 6 })
	mu.Lock()
	defer mu.Unlock()
	// The first run panicked inside the middleware: recovery sits outside
	// all of it, so the outer layers never saw the run return.
	require.Equal(t, []string{"outer>", "inner>", "outer>", "inner>", "<inner", "<outer"}, trace)
}

func TestRetryPolicyBackoff(t *testing.T) {
	t.Parallel()
	p := monster.RetryPolicy{InitialBackoff: 10 * time.Millisecond, MaxBackoff: 70 * time.Millisecond, Jitter: -1}
	want := []time.Duration{10, 20, 40, 70, 70}
	for i, w := range want {
		require.Equal(t, w*time.Millisecond, p.Backoff(i+1), "attempt %d", i+1)
	}
	p.Jitter = 0.5
	for range 200 {
		d := p.Backoff(2)
		require.GreaterOrEqual(t, d, 10*time.Millisecond)
		require.LessOrEqual(t, d, 30*time.Millisecond)
	}
}

func TestConsumeAfterStartAndStopIsGraceful(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	m := newMem(t, nil)
	require.NoError(t, m.Start(ctx))
	require.Error(t, m.Start(ctx), "already running")
	release := make(chan struct{})
	var started, finished atomic.Int64
	require.NoError(t, m.Consume("late", monster.Match("*", func(ctx context.Context, e monster.RawEvent) error {
		started.Add(1)
		<-release
		finished.Add(1)
		return nil
	}), nil))
	_, err := m.Log(ctx, "job", 1)
	require.NoError(t, err)
	monstertest.Eventually(t, "handler started", func() bool { return started.Load() == 1 })
	stopped := make(chan error, 1)
	go func() { stopped <- m.Stop(ctx) }()
	select {
	case err := <-stopped:
		t.Fatalf("Stop returned (%v) before the in-flight handler finished", err)
	case <-time.After(20 * time.Millisecond):
	}
	close(release)
	require.NoError(t, <-stopped)
	require.Equal(t, int64(1), finished.Load())
	s, err := m.ConsumerStats(ctx, "late")
	require.NoError(t, err)
	require.Equal(t, int64(1), s.Position, "the finished event was checkpointed at shutdown")
	require.Empty(t, s.Owners, "partitions released at shutdown")
}

// A consumer whose registration conflicts with the store's (another
// partition count than its group already uses) cannot run: Run stops the
// other consumers and returns the error, instead of running without it.
func TestRunReturnsWhenAConsumerCannotStart(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	first, path := openFile(t, nil)
	noop := monster.Match("*", func(context.Context, monster.RawEvent) error { return nil })
	require.NoError(t, first.Consume("audit", noop, &monster.ConsumerOptions{Partitions: 4}))
	runCtx, stop := context.WithCancel(ctx)
	require.NoError(t, first.Start(runCtx))
	require.Eventually(t, func() bool {
		stats, err := first.ConsumerStats(ctx, "audit")
		return err == nil && stats.Partitions == 4
	}, 10*time.Second, 5*time.Millisecond, "the first process never registered its consumer")
	stop()

	o := fastOptions(nil)
	second, err := monster.Open(ctx, path, &o)
	require.NoError(t, err)
	t.Cleanup(func() { _ = second.Close() })
	var handled atomic.Int64
	require.NoError(t, second.Consume("other", monster.Match("*", func(context.Context, monster.RawEvent) error {
		handled.Add(1)
		return nil
	}), nil))
	require.NoError(t, second.Consume("audit", noop, &monster.ConsumerOptions{Partitions: 8}))

	done := make(chan error, 1)
	go func() { done <- second.Run(ctx) }() // ctx never ends: only the failure can stop Run
	select {
	case err := <-done:
		require.ErrorIs(t, err, store.ErrConflict)
		require.ErrorContains(t, err, `consumer "audit" cannot start`)
		require.ErrorContains(t, err, "4 partitions, not 8")
	case <-time.After(10 * time.Second):
		t.Fatal("Run kept running although consumer audit could not start")
	}
	// Run has reported the failure and forgotten the runner.
	require.NoError(t, second.Stop(ctx))
}

// A conflicting consumer declared while the others run does not stop them.
func TestConsumerDeclaredLateThatCannotStartLeavesOthersRunning(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	first, path := openFile(t, nil)
	noop := monster.Match("*", func(context.Context, monster.RawEvent) error { return nil })
	require.NoError(t, first.Consume("audit", noop, &monster.ConsumerOptions{Partitions: 4}))
	require.NoError(t, first.Start(ctx))
	require.Eventually(t, func() bool {
		stats, err := first.ConsumerStats(ctx, "audit")
		return err == nil && stats.Partitions == 4
	}, 10*time.Second, 5*time.Millisecond, "the first process never registered its consumer")
	require.NoError(t, first.Stop(ctx))

	var logged logBuffer
	o := fastOptions(&monster.Options{Logger: slog.New(slog.NewTextHandler(&logged, nil))})
	second, err := monster.Open(ctx, path, &o)
	require.NoError(t, err)
	t.Cleanup(func() { _ = second.Close() })
	var handled atomic.Int64
	require.NoError(t, second.Consume("other", monster.Match("*", func(context.Context, monster.RawEvent) error {
		handled.Add(1)
		return nil
	}), nil))
	require.NoError(t, second.Start(ctx))
	require.NoError(t, second.Consume("audit", noop, &monster.ConsumerOptions{Partitions: 8}))
	for i := range 3 {
		_, err := second.Log(ctx, "still.running", i)
		require.NoError(t, err)
	}
	require.Eventually(t, func() bool { return strings.Contains(logged.String(), "cannot start consumer") }, 10*time.Second, 5*time.Millisecond,
		"the conflict of audit was never logged")
	require.Eventually(t, func() bool { return handled.Load() == 3 }, 10*time.Second, 5*time.Millisecond,
		"consumer other stopped handling when audit could not start")
	stats, err := second.ConsumerStats(ctx, "audit")
	require.NoError(t, err)
	require.Equal(t, 4, stats.Partitions, "the store's registration of audit was changed")
	require.NoError(t, second.Stop(ctx))
}

// logBuffer is a bytes.Buffer safe for a logger and a test to share.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
