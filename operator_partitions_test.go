package monster_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/gomonster/monster"
	"github.com/gomonster/monster/store"
	"github.com/gomonster/monster/store/memstore"
)

// TestConsumerStatsPerPartition sets up a takeover in the store by hand: a
// dead member still holds partitions 0 and 1 (its leases expired, their
// checkpoints at 0), the survivor holds 2 and has moved it to 5. Position
// stays the lowest checkpoint; Members and PerPartition show who works.
func TestConsumerStatsPerPartition(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := memstore.New()
	m := monster.New(st, &monster.Options{Logger: quietLogger})
	t.Cleanup(func() { _ = m.Close() })

	for range 5 {
		_, err := m.Log(ctx, "order.placed", map[string]int{"n": 1})
		require.NoError(t, err)
	}
	_, err := st.RegisterConsumer(ctx, store.ConsumerSpec{Name: "warehouse", Types: []string{"order.*"}, Partitions: 4})
	require.NoError(t, err)
	now := time.Now()
	past, future := now.Add(-time.Minute), now.Add(time.Hour)
	_, err = st.Claim(ctx, store.ClaimParams{Consumer: "warehouse", Member: "dead", Partitions: []int{0, 1}, Expires: past.Add(time.Second), Now: past})
	require.NoError(t, err)
	_, err = st.Claim(ctx, store.ClaimParams{Consumer: "warehouse", Member: "survivor", Partitions: []int{2}, Expires: future, Now: now})
	require.NoError(t, err)
	require.NoError(t, st.SaveCheckpoints(ctx, store.SaveCheckpointsParams{Consumer: "warehouse", Member: "survivor",
		Checkpoints: []store.Checkpoint{{Partition: 2, Position: 5, FailuresDelta: 2}}}))

	cs, err := m.ConsumerStats(ctx, "warehouse")
	require.NoError(t, err)
	require.Equal(t, int64(0), cs.Position, "position is still the lowest checkpoint")
	require.Equal(t, []string{"dead", "survivor"}, cs.Owners)
	require.Equal(t, map[string]int{"dead": 2, "survivor": 1}, cs.Members)
	require.Len(t, cs.PerPartition, 4)
	for i, p := range cs.PerPartition {
		require.Equal(t, i, p.Partition)
	}
	require.Equal(t, "dead", cs.PerPartition[0].Owner)
	require.NotNil(t, cs.PerPartition[0].LeaseExpires)
	require.True(t, cs.PerPartition[0].LeaseExpires.Before(now), "the dead member's lease has expired")
	require.Equal(t, monster.PartitionStats{Partition: 2, Checkpoint: 5, Owner: "survivor", LeaseExpires: cs.PerPartition[2].LeaseExpires, Failures: 2}, cs.PerPartition[2])
	require.True(t, cs.PerPartition[2].LeaseExpires.Equal(future.UTC()))
	require.Equal(t, monster.PartitionStats{Partition: 3}, cs.PerPartition[3], "a free partition has no owner and no lease")
	require.Equal(t, int64(2), cs.Failures)

	// Stats says the same, and the JSON adds fields without changing the old ones.
	stats, err := m.Stats(ctx)
	require.NoError(t, err)
	require.Len(t, stats.Consumers, 1)
	require.Equal(t, cs.Members, stats.Consumers[0].Members)
	require.Equal(t, cs.PerPartition, stats.Consumers[0].PerPartition)
	b, err := json.Marshal(cs)
	require.NoError(t, err)
	var fields map[string]json.RawMessage
	require.NoError(t, json.Unmarshal(b, &fields))
	for _, k := range []string{"name", "types", "position", "lag", "in_flight", "failures", "dead_letters", "partitions", "owners", "members", "per_partition"} {
		require.Contains(t, fields, k)
	}
	require.JSONEq(t, `{"dead":2,"survivor":1}`, string(fields["members"]))
	require.JSONEq(t, `{"partition":3,"checkpoint":0,"in_flight":0,"failures":0}`, string(mustIndex(t, fields["per_partition"], 3)))
}

func mustIndex(t *testing.T, list json.RawMessage, i int) json.RawMessage {
	t.Helper()
	var items []json.RawMessage
	require.NoError(t, json.Unmarshal(list, &items))
	require.Greater(t, len(items), i)
	return items[i]
}
