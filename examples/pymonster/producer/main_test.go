package main

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/gomonster/monster"
)

func TestProducerPrintsThePymonsterLinesAndStoresTheEvents(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "monster.db")
	var stdout, stderr bytes.Buffer
	require.NoError(t, run(ctx, []string{"-store", path, "-n", "2"}, &stdout, &stderr))

	require.Equal(t, strings.Join([]string{
		`[Event][event_1] a really cool message`,
		`[Event][user.bought_shirt] {"user":"gordon","quantity":2}`,
		`[CustomEventLogger][custom_1] logging a really great message`,
		`[Event][custom_1] logging a really great message`,
		`[Event][event_1] Logging event_1 0`,
		`[CustomEventLogger][custom_1] Logging custom event 0`,
		`[Event][custom_1] Logging custom event 0`,
		`[Event][event_1] Logging event_1 1`,
		`[CustomEventLogger][custom_1] Logging custom event 1`,
		`[Event][custom_1] Logging custom event 1`,
	}, "\n")+"\n", stdout.String())
	require.Empty(t, stderr.String())

	m, err := monster.Open(ctx, path, nil)
	require.NoError(t, err)
	defer m.Close()
	events, err := m.Events(ctx, 0, 0)
	require.NoError(t, err)
	var got []string
	for _, e := range events {
		got = append(got, e.Type+" "+string(e.Data))
	}
	require.Equal(t, []string{
		`event_1 "a really cool message"`,
		`user.bought_shirt {"user":"gordon","quantity":2}`,
		`custom_1 "logging a really great message"`,
		`event_1 "Logging event_1 0"`,
		`custom_1 "Logging custom event 0"`,
		`event_1 "Logging event_1 1"`,
		`custom_1 "Logging custom event 1"`,
	}, got)
}

func TestProducerReadsTheStoreFromTheEnvironment(t *testing.T) {
	path := filepath.Join(t.TempDir(), "from-env.db")
	t.Setenv("MONSTER_STORE", path)
	var stdout, stderr bytes.Buffer
	require.NoError(t, run(context.Background(), []string{"-n", "0"}, &stdout, &stderr))

	m, err := monster.Open(context.Background(), path, nil)
	require.NoError(t, err)
	defer m.Close()
	stats, err := m.Stats(context.Background())
	require.NoError(t, err)
	require.Equal(t, map[string]int64{"event_1": 1, "user.bought_shirt": 1, "custom_1": 1}, stats.Types)
}

func TestProducerRejectsBadFlags(t *testing.T) {
	t.Parallel()
	var stdout, stderr bytes.Buffer
	err := run(context.Background(), []string{"-n", "lots"}, &stdout, &stderr)
	require.ErrorContains(t, err, `invalid value "lots" for flag -n`)
	require.Contains(t, stderr.String(), "Usage of producer")
	require.Empty(t, stdout.String())
}
