package monster_test

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/gomonster/monster"
	"github.com/gomonster/monster/monstertest"
)

// A failure that will be retried is logged at debug level, the dead letter
// at warning level; dead letters with the same error are rate-limited like
// other repeated warnings, and the held-back ones are counted.
func TestRetriesLogAtDebugDeadLettersAtWarn(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	var logged logBuffer
	m := newMem(t, &monster.Options{Logger: slog.New(slog.NewTextHandler(&logged, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	require.NoError(t, m.Consume("webhook", monster.Match("order.*", func(context.Context, monster.RawEvent) error {
		return errors.New("connection refused")
	}), &monster.ConsumerOptions{Retry: monster.RetryPolicy{MaxAttempts: 2, InitialBackoff: time.Millisecond, Jitter: -1}}))
	start(t, m)
	for i := range 3 {
		_, err := m.Log(ctx, "order.placed", i)
		require.NoError(t, err)
	}
	monstertest.WaitCaughtUp(t, m, "webhook")
	dls, err := m.DeadLetters(ctx, "webhook", 0)
	require.NoError(t, err)
	require.Len(t, dls, 3)

	var retries, dead int
	for _, line := range strings.Split(logged.String(), "\n") {
		switch {
		case strings.Contains(line, "handler failed, will retry"):
			retries++
			require.Contains(t, line, "level=DEBUG", line)
		case strings.Contains(line, "event dead-lettered"):
			dead++
			require.Contains(t, line, "level=WARN", line)
		}
	}
	require.Equal(t, 3, retries, "one retry line per event (2 attempts): %s", logged.String())
	require.Equal(t, 1, dead, "identical dead-letter warnings are held back for 10 s: %s", logged.String())
}
