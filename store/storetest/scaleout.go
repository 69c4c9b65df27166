package storetest

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/gomonster/monster"
	"github.com/gomonster/monster/store"
)

// members records which member handled which event, and whether two
// workers ever ran one event at once.
type members struct {
	mu        sync.Mutex
	running   map[string]string   // event ID → member running it
	handledBy map[string][]string // event ID → members, in order
	order     []string            // event IDs in the order handled
	overlap   string
}

func newMembers() *members {
	return &members{running: map[string]string{}, handledBy: map[string][]string{}}
}

// handler returns member's handler.
func (ms *members) handler(member string) monster.Handler {
	return monster.Match("*", func(ctx context.Context, e monster.RawEvent) error {
		ms.mu.Lock()
		if other, busy := ms.running[e.ID]; busy && ms.overlap == "" {
			ms.overlap = fmt.Sprintf("event %d ran in %s and %s at once", e.Position, other, member)
		}
		ms.running[e.ID] = member
		ms.mu.Unlock()
		time.Sleep(time.Millisecond) // a little work, so that overlaps could show
		ms.mu.Lock()
		defer ms.mu.Unlock()
		delete(ms.running, e.ID)
		ms.handledBy[e.ID] = append(ms.handledBy[e.ID], member)
		ms.order = append(ms.order, e.ID)
		return nil
	})
}

func (ms *members) by(id string) []string {
	ms.mu.Lock()
	defer ms.mu.Unlock()
	return slices.Clone(ms.handledBy[id])
}

func (ms *members) all(ids []string) bool {
	ms.mu.Lock()
	defer ms.mu.Unlock()
	for _, id := range ids {
		if len(ms.handledBy[id]) == 0 {
			return false
		}
	}
	return true
}

// handledAt returns the index of the first time id was handled, or -1.
func (ms *members) handledAt(id string) int {
	ms.mu.Lock()
	defer ms.mu.Unlock()
	return slices.Index(ms.order, id)
}

// currentOwners returns each partition's owner, or nil if the consumer
// cannot be read (it may not be registered yet).
func currentOwners(ctx context.Context, s store.Store, consumer string) []string {
	info, err := s.Consumer(ctx, consumer)
	if err != nil {
		return nil
	}
	out := make([]string, len(info.Partitions))
	for i, p := range info.Partitions {
		out[i] = p.Owner
	}
	return out
}

// ownerSet returns the distinct owners of a consumer's partitions ("" for
// a free one).
func ownerSet(ctx context.Context, s store.Store, consumer string) []string {
	var set []string
	for _, o := range currentOwners(ctx, s, consumer) {
		if !slices.Contains(set, o) {
			set = append(set, o)
		}
	}
	slices.Sort(set)
	return set
}

// ScaleOut: two processes running one consumer split its partitions;
// when one crashes (it stops renewing, it does not leave), its partitions
// move to the survivor within a few lease TTLs and every event is handled,
// never by two workers at once.
func testPartitionsSplitAndMoveOnCrash(t *testing.T, b *bundle) {
	ctx, s := b.ctx, b.open()
	ttl := b.ttl(time.Second)
	var crashed atomic.Bool
	storeA := &hookStore{inner: b.share(s), before: crashable(&crashed)}
	a := b.monster(storeA.wrap(), monster.Options{MemberID: "a", LeaseTTL: ttl})
	bm := b.monster(b.share(s), monster.Options{MemberID: "b", LeaseTTL: ttl})
	ms := newMembers()
	opts := &monster.ConsumerOptions{Partitions: 8, Concurrency: 4}
	b.consume(a, "c", ms.handler("a"), opts)
	b.consume(bm, "c", ms.handler("b"), opts)
	b.start(a)
	b.start(bm)
	eventually(t, "both members to own partitions", func() bool {
		st, err := bm.ConsumerStats(ctx, "c")
		return err == nil && slices.Equal(st.Owners, []string{"a", "b"}) && !slices.Contains(currentOwners(ctx, s, "c"), "")
	})

	before := logBatch(t, ctx, bm, "work.item", 40, keyed)
	eventually(t, "every event before the crash", func() bool { return ms.all(idsOf(before)) })
	var byA, byB int
	for _, ev := range before {
		for _, m := range ms.by(ev.ID) {
			if m == "a" {
				byA++
			} else {
				byB++
			}
		}
	}
	require.Positive(t, byA, "member a handled none of its partitions' events")
	require.Positive(t, byB, "member b handled none of its partitions' events")

	crashed.Store(true)
	crashedAt := time.Now()
	after := logBatch(t, ctx, bm, "work.item", 40, keyed)
	eventually(t, "the crashed member's partitions to move to the survivor", func() bool {
		return slices.Equal(ownerSet(ctx, s, "c"), []string{"b"})
	})
	moved := time.Since(crashedAt)
	require.Less(t, moved, 4*ttl, "partitions must move within a few lease TTLs (TTL %v)", ttl)
	eventually(t, "every event logged after the crash", func() bool { return ms.all(idsOf(after)) })
	for _, ev := range after {
		require.Equal(t, []string{"b"}, ms.by(ev.ID), "event %d after the crash", ev.Position)
	}
	ms.mu.Lock()
	defer ms.mu.Unlock()
	require.Empty(t, ms.overlap, "an event must be handled by one worker at a time")
}

// ScaleOut with NoSkippedEvents: the survivor takes over a crashed member's
// partition while its reader is in the middle of a read. An event of that
// partition that the survivor's reader had passed over (it was not the
// survivor's then) must still be handled: the partition's checkpoint must
// not move past it. The store wrapper holds the survivor's read until the
// takeover has happened, to make the interleaving certain.
func testTakeoverWhileReading(t *testing.T, b *bundle) {
	ctx, s := b.ctx, b.open()
	ttl := b.ttl(500 * time.Millisecond)
	var crashed atomic.Bool
	storeA := &hookStore{inner: b.share(s), before: crashable(&crashed)}

	var armed, sawFirst, claimedBoth atomic.Bool
	entered := make(chan struct{}, 1)
	release := make(chan struct{})
	tookOver := make(chan struct{})
	var once sync.Once
	holdRead := gate("Read", &armed, entered, release)
	storeB := &hookStore{
		inner: b.share(s),
		before: func(ctx context.Context, method string) error {
			// The member's control loop is sequential: its first heartbeat
			// after a claim of both partitions comes after it has taken
			// the claimed partition on.
			if method == "Heartbeat" && claimedBoth.Load() {
				once.Do(func() { close(tookOver) })
			}
			return holdRead(ctx, method)
		},
		afterRead: func(events []store.Event) {
			for _, e := range events {
				if e.Type == "takeover.first" && sawFirst.CompareAndSwap(false, true) {
					armed.Store(true) // hold the next read
				}
			}
		},
		afterClaim: func(_ string, held []store.PartitionInfo) {
			if len(held) == 2 {
				claimedBoth.Store(true)
			}
		},
	}
	a := b.monster(storeA.wrap(), monster.Options{MemberID: "a", LeaseTTL: ttl})
	bm := b.monster(storeB.wrap(), monster.Options{MemberID: "b", LeaseTTL: ttl})
	ms := newMembers()
	opts := &monster.ConsumerOptions{Partitions: 2, Concurrency: 2}
	b.consume(a, "c", ms.handler("a"), opts)
	b.consume(bm, "c", ms.handler("b"), opts)
	b.start(a)
	eventually(t, "member a to own both partitions", func() bool { return slices.Equal(currentOwners(ctx, s, "c"), []string{"a", "a"}) })
	b.start(bm)
	eventually(t, "the members to own a partition each", func() bool {
		return slices.Equal(ownerSet(ctx, s, "c"), []string{"a", "b"})
	})

	// Find a key of a's partition.
	var keyA string
	for i := 0; i < 64 && keyA == ""; i++ {
		key := fmt.Sprintf("key-%d", i)
		probe := logN(t, ctx, bm, "takeover.probe", 1, monster.WithKey(key))[0]
		eventually(t, "a probe event", func() bool { return ms.all([]string{probe.ID}) })
		if ms.by(probe.ID)[0] == "a" {
			keyA = key
		}
	}
	require.NotEmpty(t, keyA, "no key of member a's partition found")

	crashed.Store(true)
	first := logN(t, ctx, bm, "takeover.first", 1, monster.WithKey(keyA))[0]
	receive(t, "member b's read after it passed over the crashed member's event", entered)
	receive(t, "member b to take over the crashed member's partition", tookOver)
	second := logN(t, ctx, bm, "takeover.second", 1, monster.WithKey(keyA))[0]
	close(release)

	eventually(t, "the event logged after the takeover", func() bool { return ms.all([]string{second.ID}) })
	eventually(t, "the checkpoints to pass it", func() bool { return caughtUp(ctx, s, "c", second.Position) })
	require.NotEqual(t, -1, ms.handledAt(first.ID),
		"event %d of the crashed member's partition was skipped: the checkpoint passed it and it was never handled", first.Position)
	require.Less(t, ms.handledAt(first.ID), ms.handledAt(second.ID), "same-key events out of order")
}
