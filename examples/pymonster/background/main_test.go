package main

import (
	"bytes"
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/gomonster/monster"
	"github.com/gomonster/monster/examples/pymonster"
)

func TestBackgroundLogsAndConsumesInOneProcessThenExits(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "monster.db")
	var stdout, stderr bytes.Buffer
	require.NoError(t, run(ctx, []string{"-store", path, "-n", "3"}, &stdout, &stderr))
	got := strings.Split(strings.TrimSuffix(stdout.String(), "\n"), "\n")

	// Each side's lines in order; the two sides interleave as they may.
	producer := []string{
		`[Event][event_1] a really cool message`,
		`[Event][user.bought_shirt] {"user":"gordon","quantity":2}`,
		`[CustomEventLogger][custom_1] logging a really great message`,
		`[Event][custom_1] logging a really great message`,
	}
	event1 := []string{`[Consumer][event_1][1]: a really cool message`}
	shirts := []string{`[Consumer][user.bought_shirt][2]: {"user":"gordon","quantity":2}`}
	custom1 := []string{`[CustomConsumer][custom_1][3]: logging a really great message`}
	for i := range 3 {
		producer = append(producer,
			fmt.Sprintf("[Event][event_1] Logging event_1 %d", i),
			fmt.Sprintf("[CustomEventLogger][custom_1] Logging custom event %d", i),
			fmt.Sprintf("[Event][custom_1] Logging custom event %d", i))
		event1 = append(event1, fmt.Sprintf("[Consumer][event_1][%d]: Logging event_1 %d", 4+2*i, i))
		custom1 = append(custom1, fmt.Sprintf("[CustomConsumer][custom_1][%d]: Logging custom event %d", 5+2*i, i))
	}
	for _, side := range [][]string{producer, event1, shirts, custom1} {
		require.Equal(t, side, only(got, side), "lines of one side, in order")
	}
	require.Len(t, got, len(producer)+len(event1)+len(shirts)+len(custom1), "no other lines")

	// It waited for its consumers before exiting.
	m, err := monster.Open(ctx, path, nil)
	require.NoError(t, err)
	defer m.Close()
	for _, name := range pymonster.ConsumerNames() {
		s, err := m.ConsumerStats(ctx, name)
		require.NoError(t, err)
		require.Equal(t, int64(0), s.Lag, name)
	}
}

// only returns the lines of got that are in side, in got's order.
func only(got, side []string) []string {
	in := map[string]bool{}
	for _, l := range side {
		in[l] = true
	}
	var out []string
	for _, l := range got {
		if in[l] {
			out = append(out, l)
		}
	}
	return out
}
