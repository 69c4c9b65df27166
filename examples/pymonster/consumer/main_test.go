package main

import (
	"bytes"
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/gomonster/monster"
	"github.com/gomonster/monster/examples/pymonster"
	"github.com/gomonster/monster/monstertest"
)

// lockedBuffer is a bytes.Buffer the test can read while run writes to it.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func (b *lockedBuffer) lines() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return strings.Split(strings.TrimSuffix(b.buf.String(), "\n"), "\n")
}

func TestConsumerPrintsEveryEventUntilCancelled(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "monster.db")

	// Events logged before the consumer starts: it works through them.
	producer, err := monster.Open(ctx, path, nil)
	require.NoError(t, err)
	defer producer.Close()
	events := pymonster.Declare(producer, &bytes.Buffer{})
	_, err = producer.Log(ctx, pymonster.Event1, "a really cool message")
	require.NoError(t, err)
	_, err = events.BoughtShirt.Log(ctx, pymonster.Shirt{User: "gordon", Quantity: 2})
	require.NoError(t, err)
	_, err = producer.Log(ctx, pymonster.Custom1, "logging a really great message")
	require.NoError(t, err)

	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	var stdout, stderr lockedBuffer
	done := make(chan error, 1)
	go func() { done <- run(runCtx, []string{"-store", path}, &stdout, &stderr) }()

	// And one logged while it runs: it is tailing the log.
	_, err = producer.Log(ctx, pymonster.Event1, "Logging event_1 0")
	require.NoError(t, err)

	want := []string{
		`[Consumer][event_1][1]: a really cool message`,
		`[Consumer][user.bought_shirt][2]: {"user":"gordon","quantity":2}`,
		`[CustomConsumer][custom_1][3]: logging a really great message`,
		`[Consumer][event_1][4]: Logging event_1 0`,
	}
	monstertest.Eventually(t, "four consumer lines", func() bool { return len(stdout.lines()) >= len(want) })
	stop() // Ctrl-C
	require.NoError(t, <-done, "a cancelled consumer stops cleanly")

	got := stdout.lines()
	// The three consumers run independently: only each one's own lines
	// are ordered.
	require.ElementsMatch(t, want, got)
	require.Less(t, slices.Index(got, want[0]), slices.Index(got, want[3]), "event_1 consumer in log order")
	t.Log(stderr.String())
	require.Contains(t, stderr.String(), fmt.Sprintf("consuming %s from %s; press Ctrl-C to stop\n", pymonster.ConsumerNames(), path))

	// Positions are saved in the store: a restarted consumer goes on from
	// there.
	for _, name := range pymonster.ConsumerNames() {
		s, err := producer.ConsumerStats(ctx, name)
		require.NoError(t, err)
		require.Equal(t, int64(0), s.Lag, name)
	}
}
