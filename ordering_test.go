package monster_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/gomonster/monster"
	"github.com/gomonster/monster/monstertest"
	"github.com/gomonster/monster/store"
	"github.com/gomonster/monster/store/memstore"
)

func handleNothing(context.Context, monster.RawEvent) error { return nil }

// A consumer cannot start ordering by OrderBy when it was created without,
// nor the reverse: its events would move between partitions and some could
// be skipped. Run fails with an error matching store.ErrConflict that names
// the consumer, what is stored and the way out, and the stored consumer is
// left as it was.
func TestOrderByCannotChangeOnARegisteredConsumer(t *testing.T) {
	t.Parallel()
	byOrder := func(e monster.RawEvent) string { return e.Key }
	for _, tt := range []struct {
		name    string
		stored  store.Partitioning
		orderBy func(monster.RawEvent) string
		want    []string
	}{
		{"created without OrderBy, started with", store.PartitionByKeyOrID, byOrder,
			[]string{`consumer "warehouse"`, `partitioning "key-or-id"`, "now declared with OrderBy", "remove OrderBy", "new name", "DeleteConsumer"}},
		{"created by an earlier version, started with OrderBy", store.PartitionByKeyOrType, byOrder,
			[]string{`consumer "warehouse"`, `partitioning "key-or-type"`, "now declared with OrderBy", "new name"}},
		{"created with OrderBy, started without", store.PartitionByOrderKey, nil,
			[]string{`consumer "warehouse"`, `partitioning "order-key"`, "now declared without OrderBy", "set OrderBy again", "new name", "DeleteConsumer"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			st := memstore.New()
			_, err := st.RegisterConsumer(ctx, store.ConsumerSpec{Name: "warehouse", Types: []string{"order.*"}, Partitions: 16, Partitioning: tt.stored})
			require.NoError(t, err)
			o := fastOptions(nil)
			m := monster.New(st, &o)
			t.Cleanup(func() { _ = m.Close() })
			require.NoError(t, m.Consume("warehouse", monster.Match("order.*", handleNothing), &monster.ConsumerOptions{OrderBy: tt.orderBy}))

			runCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
			defer cancel()
			err = m.Run(runCtx)
			require.ErrorIs(t, err, store.ErrConflict)
			require.NotErrorIs(t, err, context.DeadlineExceeded, "Run returns the conflict, not the end of its context")
			require.True(t, strings.HasPrefix(err.Error(), "monster: "), "error %q", err)
			for _, w := range tt.want {
				require.ErrorContains(t, err, w)
			}
			info, err := st.Consumer(ctx, "warehouse")
			require.NoError(t, err)
			require.Equal(t, tt.stored, info.Partitioning, "the stored partitioning is unchanged")
		})
	}
}

// StartConsumer reports the same conflict.
func TestStartConsumerReportsAnOrderByConflict(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := memstore.New()
	_, err := st.RegisterConsumer(ctx, store.ConsumerSpec{Name: "c", Partitions: 16, Partitioning: store.PartitionByOrderKey})
	require.NoError(t, err)
	o := fastOptions(nil)
	m := monster.New(st, &o)
	t.Cleanup(func() { _ = m.Close() })
	start(t, m)
	require.NoError(t, m.Consume("c", monster.Match("*", handleNothing), nil)) // logs and does not run
	require.NoError(t, m.StopConsumer(ctx, "c"))
	err = m.StartConsumer(ctx, "c")
	require.ErrorIs(t, err, store.ErrConflict)
	require.ErrorContains(t, err, `consumer "c" cannot start`)
	require.ErrorContains(t, err, "without OrderBy")
}

// unknownPartitioning is a store whose consumers look registered by a newer
// version, with a partitioning this one does not know.
type unknownPartitioning struct{ store.Store }

func (s unknownPartitioning) RegisterConsumer(ctx context.Context, spec store.ConsumerSpec) (store.ConsumerInfo, error) {
	info, err := s.Store.RegisterConsumer(ctx, spec)
	info.Partitioning = "by-moon-phase"
	return info, err
}

func TestUnknownStoredPartitioningIsAConflict(t *testing.T) {
	t.Parallel()
	o := fastOptions(nil)
	m := monster.New(unknownPartitioning{memstore.New()}, &o)
	t.Cleanup(func() { _ = m.Close() })
	require.NoError(t, m.Consume("c", monster.Match("*", handleNothing), nil))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := m.Run(ctx)
	require.ErrorIs(t, err, store.ErrConflict)
	require.ErrorContains(t, err, `consumer "c" is stored with partitioning "by-moon-phase"`)
	require.ErrorContains(t, err, "upgrade")
}

// An OrderBy that panics on an event is logged, and the event is handled
// all the same, without order; the others keep theirs.
func TestOrderByPanicIsLoggedAndTheEventHandled(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	logs := &logBuffer{}
	m := newMem(t, &monster.Options{Logger: slog.New(slog.NewTextHandler(logs, nil))})
	rec := &monstertest.Recorder{}
	require.NoError(t, m.Consume("c", rec.Handler("order.*"), &monster.ConsumerOptions{
		OrderBy: func(e monster.RawEvent) string {
			var o struct {
				ID *string `json:"id"`
			}
			_ = json.Unmarshal(e.Data, &o)
			return *o.ID // panics without an id
		},
	}))
	start(t, m)
	_, err := m.Log(ctx, "order.placed", map[string]string{"id": "o-1"})
	require.NoError(t, err)
	bad, err := m.Log(ctx, "order.placed", map[string]string{"other": "x"})
	require.NoError(t, err)
	_, err = m.Log(ctx, "order.shipped", map[string]string{"id": "o-1"})
	require.NoError(t, err)
	monstertest.Eventually(t, "every event handled", func() bool { return len(rec.Events()) == 3 })
	require.Contains(t, logs.String(), "OrderBy panicked; the event is handled without order")
	require.Contains(t, logs.String(), bad.ID, "the log names the event")
}
