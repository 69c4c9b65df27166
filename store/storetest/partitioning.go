package storetest

import (
	"context"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"runtime"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/gomonster/monster"
	"github.com/gomonster/monster/store"
)

// ScaleOut: keyless events of one type, which have no order to keep, are
// shared by the members running a consumer (they spread over the
// partitions by ID); with partitioning by type, one member would handle
// them all.
func testKeylessEventsShared(t *testing.T, b *bundle) {
	ctx, s := b.ctx, b.open()
	a := b.monster(b.share(s), monster.Options{MemberID: "a"})
	bm := b.monster(b.share(s), monster.Options{MemberID: "b"})
	ms := newMembers()
	opts := &monster.ConsumerOptions{Partitions: 8, Concurrency: 4}
	b.consume(a, "c", ms.handler("a"), opts)
	b.consume(bm, "c", ms.handler("b"), opts)
	b.start(a)
	b.start(bm)
	eventually(t, "both members to own partitions", func() bool {
		return slices.Equal(ownerSet(ctx, s, "c"), []string{"a", "b"})
	})
	info, err := s.Consumer(ctx, "c")
	require.NoError(t, err)
	require.Equal(t, store.PartitionByKeyOrID, info.Partitioning, "a new consumer without OrderBy is stored partitioned by key, else ID")

	events := logBatch(t, ctx, bm, "work.keyless", 40, func(int) string { return "" })
	eventually(t, "every keyless event", func() bool { return ms.all(idsOf(events)) })
	handled := map[string]int{}
	for _, ev := range events {
		for _, m := range ms.by(ev.ID) {
			handled[m]++
		}
	}
	require.Positive(t, handled["a"], "member a handled none of the keyless events of one type (handled: %v)", handled)
	require.Positive(t, handled["b"], "member b handled none of the keyless events of one type (handled: %v)", handled)
	ms.mu.Lock()
	defer ms.mu.Unlock()
	require.Empty(t, ms.overlap, "an event must be handled by one worker at a time")
}

// orderedItem is the data of testOrderByKeepsOrder's events.
type orderedItem struct {
	Order string `json:"order,omitempty"`
	Seq   int    `json:"seq"`
}

// Order: a consumer with OrderBy handles the events for which it returns
// the same key one at a time, in log order, whatever their own keys (none,
// or a different one each) and types; events for which it returns "" are
// handled too. With Concurrency 8, events of one order would otherwise
// overlap.
func testOrderByKeepsOrder(t *testing.T, b *bundle) {
	const orders, perOrder = 5, 16
	ctx, s := b.ctx, b.open()
	m := b.monster(s, monster.Options{})
	var mu sync.Mutex
	running := map[string]bool{}
	seen := map[string][]int{}
	var unordered int
	var overlap string
	b.consume(m, "warehouse", monster.Match("shop.*", func(ctx context.Context, e monster.RawEvent) error {
		var it orderedItem
		if err := json.Unmarshal(e.Data, &it); err != nil {
			return err
		}
		mu.Lock()
		if it.Order == "" {
			unordered++
			mu.Unlock()
			return nil
		}
		if running[it.Order] && overlap == "" {
			overlap = fmt.Sprintf("two events of %s ran at once (one at position %d)", it.Order, e.Position)
		}
		running[it.Order] = true
		mu.Unlock()
		runtime.Gosched() // let another worker try the same order
		mu.Lock()
		defer mu.Unlock()
		running[it.Order] = false
		seen[it.Order] = append(seen[it.Order], it.Seq)
		return nil
	}), &monster.ConsumerOptions{
		Concurrency: 8, Partitions: 4,
		OrderBy: func(e monster.RawEvent) string {
			var it orderedItem
			_ = json.Unmarshal(e.Data, &it)
			return it.Order
		},
	})

	logRound := func(seq int) {
		var entries []monster.Entry
		for o := range orders {
			// Keyless, or a key of its own per event: only OrderBy
			// relates the events of one order.
			key := ""
			if o%2 == 1 {
				key = fmt.Sprintf("event-%d-%d", o, seq)
			}
			entries = append(entries, monster.Entry{
				Type: fmt.Sprintf("shop.t%d", (seq+o)%3), Key: key,
				Data: orderedItem{Order: fmt.Sprintf("order-%d", o), Seq: seq},
			})
		}
		entries = append(entries, monster.Entry{Type: "shop.note", Data: orderedItem{Seq: seq}})
		_, err := m.LogBatch(ctx, entries)
		require.NoError(t, err)
	}
	for seq := range perOrder / 2 {
		logRound(seq)
	}
	b.start(m)
	for seq := perOrder / 2; seq < perOrder; seq++ {
		logRound(seq)
	}
	eventually(t, "every event handled", func() bool {
		mu.Lock()
		defer mu.Unlock()
		total := 0
		for _, handled := range seen {
			total += len(handled)
		}
		return total >= orders*perOrder && unordered >= perOrder
	})
	info, err := s.Consumer(ctx, "warehouse")
	require.NoError(t, err)
	require.Equal(t, store.PartitionByOrderKey, info.Partitioning, "a consumer with OrderBy is stored partitioned by its ordering key")
	mu.Lock()
	defer mu.Unlock()
	require.Empty(t, overlap)
	want := make([]int, perOrder)
	for i := range want {
		want[i] = i
	}
	for o := range orders {
		order := fmt.Sprintf("order-%d", o)
		require.Equal(t, want, seen[order], "events of %s out of log order", order)
	}
}

// NoSkippedEvents: a consumer registered before partitionings were stored
// (the zero Partitioning, as an earlier version wrote it: key, else type)
// and stopped half-way, with some partitions checkpointed further than
// others, resumes under this version with the partitioning it had: every
// event it had not handled is handled, and none it had handled is handled
// again. Partitioned by ID instead, keyless events of a partition behind
// would land in one ahead, past its checkpoint, and be skipped.
func testEarlierPartitioningKept(t *testing.T, b *bundle) {
	const partitions, perType = 4, 12
	ctx, s := b.ctx, b.open()
	// The earlier version's partitioning of a keyless event: FNV-1a of its
	// type. Partitions 0 and 1 will be ahead (done to the end), 2 and 3
	// behind (done to half-way); types are picked to fill both.
	oldPartition := func(typ string) int {
		h := fnv.New32a()
		_, _ = h.Write([]byte(typ))
		return int(h.Sum32() % partitions)
	}
	ahead := func(p int) bool { return p < 2 }
	var types []string
	var nAhead, nBehind int
	for i := 0; nAhead < 3 || nBehind < 3; i++ {
		typ := fmt.Sprintf("legacy.t%d", i)
		if ahead(oldPartition(typ)) && nAhead < 3 {
			nAhead++
			types = append(types, typ)
		} else if !ahead(oldPartition(typ)) && nBehind < 3 {
			nBehind++
			types = append(types, typ)
		}
	}

	// The earlier version registers the consumer and logs keyless events
	// of every type, interleaved.
	_, err := s.RegisterConsumer(ctx, store.ConsumerSpec{Name: "legacy", Types: []string{"legacy.*"}, Partitions: partitions})
	require.NoError(t, err)
	var batch []store.NewEvent
	for i := range perType {
		for _, typ := range types {
			batch = append(batch, newEvent(typ, fmt.Sprint(i)))
		}
	}
	stored := mustAppend(t, ctx, s, batch...)
	mid := stored[len(stored)/2].Position
	head := stored[len(stored)-1].Position

	// It stops half-way: the partitions ahead are checkpointed at the end,
	// those behind half-way.
	old := newMembers()
	var cps []store.Checkpoint
	for p := range partitions {
		cp := mid
		if ahead(p) {
			cp = head
		}
		cps = append(cps, store.Checkpoint{Partition: p, Position: cp})
	}
	done := map[string]bool{}
	for _, e := range stored {
		if ahead(oldPartition(e.Type)) || e.Position <= mid {
			done[e.ID] = true
		}
	}
	claimAll(t, ctx, s, "legacy", "earlier", partitions)
	require.NoError(t, s.SaveCheckpoints(ctx, store.SaveCheckpointsParams{Consumer: "legacy", Member: "earlier", Checkpoints: cps}))
	require.NoError(t, s.Leave(ctx, store.LeaveParams{Consumer: "legacy", Member: "earlier"}))

	// This version resumes it.
	m := b.monster(s, monster.Options{})
	b.consume(m, "legacy", old.handler("now"), &monster.ConsumerOptions{Partitions: partitions, Concurrency: 4})
	b.start(m)
	require.Less(t, len(done), len(stored), "the earlier version left events to handle")
	// A checkpoint passes only finished events: once every partition's is
	// at the head, whatever was not handled never will be.
	eventually(t, "the consumer to catch up", func() bool { return caughtUp(ctx, s, "legacy", head) })
	var skipped []string
	for _, e := range stored {
		if !done[e.ID] && len(old.by(e.ID)) == 0 {
			skipped = append(skipped, fmt.Sprintf("%d (%s)", e.Position, e.Type))
		}
	}
	require.Empty(t, skipped, "events the earlier version had not handled were skipped: the partitioning changed")
	for _, e := range stored {
		if done[e.ID] {
			require.Empty(t, old.by(e.ID), "event %d (%s) was handled before the stop and handled again: the partitioning changed", e.Position, e.Type)
		}
	}
	info, err := s.Consumer(ctx, "legacy")
	require.NoError(t, err)
	require.Equal(t, store.PartitionByKeyOrType, info.Partitioning, "the consumer keeps its partitioning")
}

// claimAll makes member hold every partition of consumer.
func claimAll(t testing.TB, ctx context.Context, s store.Store, consumer, member string, partitions int) {
	t.Helper()
	all := make([]int, partitions)
	for i := range all {
		all[i] = i
	}
	now := time.Now()
	_, err := s.Heartbeat(ctx, store.HeartbeatParams{Consumer: consumer, Member: member, Expires: now.Add(leaseTTL), Now: now})
	require.NoError(t, err)
	require.Len(t, claim(t, ctx, s, consumer, member, all, now.Add(leaseTTL), now), partitions)
}
