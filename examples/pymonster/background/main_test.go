package main

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/gomonster/monster"
	"github.com/gomonster/monster/examples/pymonster"
)

// noEnv is a getenv for a shell without MONSTER_STORE.
func noEnv(string) string { return "" }

func TestBackgroundLogsAndConsumesInOneProcessThenExits(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "monster.db")
	var stdout, stderr bytes.Buffer
	require.NoError(t, run(ctx, []string{"-store", path, "-n", "3"}, noEnv, &stdout, &stderr))
	requireFirstRunLines(t, stdout.String())

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

// TestBackgroundStartsCleanByDefault runs the README's command twice: each
// run prints the README's positions, and the temporary file is gone
// afterwards.
func TestBackgroundStartsCleanByDefault(t *testing.T) {
	t.Parallel()
	for range 2 {
		var stdout, stderr bytes.Buffer
		require.NoError(t, run(context.Background(), nil, noEnv, &stdout, &stderr))
		requireFirstRunLines(t, stdout.String())
		path, ok := strings.CutPrefix(strings.SplitN(stderr.String(), " (", 2)[0], "store: ")
		require.True(t, ok, "stderr names the store: %s", stderr.String())
		require.NoDirExists(t, filepath.Dir(path), "the temporary store is removed at exit")
	}
}

// TestBackgroundKeptStoreGoesOn runs twice on one -store file, as the README
// says: the second run logs positions 10 to 18 and its consumers print only
// those.
func TestBackgroundKeptStoreGoesOn(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "kept.db")
	var first, second, stderr bytes.Buffer
	require.NoError(t, run(ctx, []string{"-store", path}, noEnv, &first, &stderr))
	requireFirstRunLines(t, first.String())
	require.NoError(t, run(ctx, nil, func(string) string { return path }, &second, &stderr),
		"MONSTER_STORE names the file as -store does")

	var positions []int
	for _, l := range strings.Split(strings.TrimSuffix(second.String(), "\n"), "\n") {
		if !strings.HasPrefix(l, "[Consumer]") && !strings.HasPrefix(l, "[CustomConsumer]") {
			continue
		}
		var p int
		_, err := fmt.Sscanf(l[strings.LastIndex(l, "][")+2:], "%d]", &p)
		require.NoError(t, err, l)
		positions = append(positions, p)
	}
	slices.Sort(positions)
	require.Equal(t, []int{10, 11, 12, 13, 14, 15, 16, 17, 18}, positions,
		"the second run's consumers print only the second run's events")
	require.Contains(t, second.String(), "[Consumer][event_1][10]: a really cool message")
}

func TestBackgroundRefusesServerStoresWithTheWayOut(t *testing.T) {
	t.Parallel()
	var stdout, stderr bytes.Buffer
	err := run(context.Background(), []string{"-store", "postgres://127.0.0.1/x"}, noEnv, &stdout, &stderr)
	require.ErrorIs(t, err, monster.ErrUnknownStore)
	require.ErrorContains(t, err, "the producer and consumer programs open postgres://")
}

// TestBackgroundCompilesNoServerDriver checks the README's first command
// compiles only the embedded store: the PostgreSQL and MongoDB stores and
// their drivers stay out of this program's import graph.
func TestBackgroundCompilesNoServerDriver(t *testing.T) {
	t.Parallel()
	out, err := exec.Command("go", "list", "-deps", ".").Output()
	require.NoError(t, err)
	deps := strings.Fields(string(out))
	require.Contains(t, deps, "github.com/gomonster/monster/store/sqlite", "the graph is this program's")
	for _, dep := range deps {
		for _, banned := range []string{
			"github.com/gomonster/monster/store/postgres", "github.com/gomonster/monster/store/mongodb",
			"github.com/gomonster/monster/store/nats",
			"github.com/jackc/pgx", "go.mongodb.org/", "github.com/nats-io/",
		} {
			require.False(t, strings.HasPrefix(dep, banned), "background imports %s", dep)
		}
	}
}

// requireFirstRunLines checks the output of a run on a new store with -n 3:
// the lines of the README, the two sides interleaved as they may be.
func requireFirstRunLines(t *testing.T, stdout string) {
	t.Helper()
	got := strings.Split(strings.TrimSuffix(stdout, "\n"), "\n")

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
