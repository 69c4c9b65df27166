package monster_test

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/gomonster/monster"
	"github.com/gomonster/monster/monstertest"
	"github.com/gomonster/monster/store"
	"github.com/gomonster/monster/store/memstore"
)

// readFailingStore is a store whose reads fail, as during an outage.
type readFailingStore struct {
	store.Store
	reads atomic.Int64
}

func (s *readFailingStore) Read(ctx context.Context, p store.ReadParams) ([]store.Event, error) {
	s.reads.Add(1)
	return nil, errors.New("monster: test store read: disk I/O error")
}

// During an outage a consumer retries its reads many times a second; the
// log gets one warning, not one per attempt.
func TestOutageWarningsAreNotRepeated(t *testing.T) {
	t.Parallel()
	st := &readFailingStore{Store: memstore.New()}
	var logs logBuffer
	o := fastOptions(&monster.Options{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	m := monster.New(st, &o)
	t.Cleanup(func() { _ = m.Close() })
	require.NoError(t, m.Consume("mailer", monster.Match("*", func(context.Context, monster.RawEvent) error { return nil }), nil))
	start(t, m)
	monstertest.EventuallyWithin(t, 30*time.Second, "20 failed reads", func() bool { return st.reads.Load() >= 20 })
	lines := strings.Count(logs.String(), "reading events")
	require.Equal(t, 1, lines, "warnings about failed reads after %d reads:\n%s", st.reads.Load(), logs.String())
}
