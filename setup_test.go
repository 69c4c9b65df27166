package monster_test

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/gomonster/monster"
	"github.com/gomonster/monster/store/memstore"
)

// quietLogger drops operational logs in tests.
var quietLogger = slog.New(slog.NewTextHandler(io.Discard, nil))

// newMem returns a Monster on an in-memory store with fast timings.
func newMem(t *testing.T, opts *monster.Options) *monster.Monster {
	t.Helper()
	o := fastOptions(opts)
	m := monster.New(memstore.New(), &o)
	t.Cleanup(func() { _ = m.Close() })
	return m
}

func fastOptions(opts *monster.Options) monster.Options {
	var o monster.Options
	if opts != nil {
		o = *opts
	}
	if o.Logger == nil {
		o.Logger = quietLogger
	}
	if o.PollInterval == 0 {
		o.PollInterval = 10 * time.Millisecond
	}
	if o.LeaseTTL == 0 {
		o.LeaseTTL = time.Second
	}
	if o.CheckpointInterval == 0 {
		o.CheckpointInterval = 10 * time.Millisecond
	}
	return o
}

// start runs m's consumers until the test ends.
func start(t *testing.T, m *monster.Monster) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	require.NoError(t, m.Start(ctx))
	t.Cleanup(func() {
		cancel()
		require.NoError(t, m.Stop(context.Background()))
	})
}
