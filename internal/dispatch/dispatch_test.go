package dispatch

import (
	"context"
	"fmt"
	"hash/fnv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/gomonster/monster/internal/clocktest"
	"github.com/gomonster/monster/store"
)

type bundle struct {
	d       *Dispatcher
	clock   *clocktest.Clock
	expired atomic.Int64
}

// setup returns a Dispatcher over one partition (unless cfg says more),
// holding every partition from checkpoint 0, with leases valid for a
// minute of its fake clock.
func setup(t *testing.T, cfg Config) *bundle {
	t.Helper()
	b := &bundle{clock: clocktest.New()}
	if cfg.Partitions == 0 {
		cfg.Partitions = 1
	}
	if cfg.Match == nil {
		cfg.Match = func(string) bool { return true }
	}
	if cfg.MaxInFlight == 0 {
		cfg.MaxInFlight = 100
	}
	cfg.Now = b.clock.Now
	cfg.LeaseExpired = func() { b.expired.Add(1) }
	b.d = New(cfg)
	var held []store.PartitionInfo
	for n := range cfg.Partitions {
		held = append(held, store.PartitionInfo{Partition: n, Epoch: 1})
	}
	require.True(t, b.d.Apply(held, b.clock.Now().Add(time.Minute)))
	return b
}

func ev(pos int64, key string) store.Event {
	return store.Event{ID: "e" + string(rune('0'+pos)), Type: "test.event", Position: pos, Key: key}
}

// feed dispatches events as one read of every partition held would.
func (b *bundle) feed(events ...store.Event) {
	_, snap, _ := b.d.Plan()
	b.d.Dispatch(events, snap)
}

// ready returns the positions of the items waiting for a worker now.
func (b *bundle) ready() []*Item {
	var out []*Item
	for {
		select {
		case it := <-b.d.Ready():
			out = append(out, it)
		default:
			return out
		}
	}
}

func positions(items []*Item) []int64 {
	out := make([]int64, len(items))
	for i, it := range items {
		out[i] = it.Event.Position
	}
	return out
}

// run starts and finishes an item as a worker whose handler succeeds.
func (b *bundle) run(t *testing.T, it *Item) {
	t.Helper()
	require.True(t, b.d.Start(it))
	b.d.Finish(it)
}

func (b *bundle) checkpoint(t *testing.T, partition int) int64 {
	t.Helper()
	for _, cp := range b.d.Progress().Checkpoints {
		if cp.Partition == partition {
			return cp.Position
		}
	}
	t.Fatalf("no progress for partition %d", partition)
	return 0
}

func TestSameKeyRunsOneAtATimeInLogOrder(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		blocking bool
		keys     []string
	}{
		{name: "same key", keys: []string{"a", "a", "a"}},
		{name: "blocking serialises the partition", blocking: true, keys: []string{"", "b", ""}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t, Config{SerialPartitions: tt.blocking})
			var events []store.Event
			for i, k := range tt.keys {
				events = append(events, ev(int64(i+1), k))
			}
			b.feed(events...)
			for want := int64(1); want <= int64(len(events)); want++ {
				got := b.ready()
				require.Equal(t, []int64{want}, positions(got), "only the next in log order is ready")
				b.run(t, got[0])
			}
			require.Empty(t, b.ready())
		})
	}
}

func TestDifferentKeysRunConcurrently(t *testing.T) {
	t.Parallel()
	b := setup(t, Config{})
	b.feed(ev(1, "a"), ev(2, "b"), ev(3, ""), ev(4, "a"), ev(5, ""))
	first := b.ready()
	require.Equal(t, []int64{1, 2, 3, 5}, positions(first), "different keys and keyless events are ready at once; 4 waits for 1")
	for _, it := range first {
		require.True(t, b.d.Start(it), "all of them can run at once")
	}
	b.d.Finish(first[0])
	require.Equal(t, []int64{4}, positions(b.ready()))
}

func TestCheckpointOnlyPassesFinishedItems(t *testing.T) {
	t.Parallel()
	b := setup(t, Config{})
	b.feed(ev(1, "a"), ev(2, "b"), ev(3, "c"))
	items := b.ready()
	require.Len(t, items, 3)
	steps := []struct {
		finish int
		want   int64
	}{
		{finish: 2, want: 0}, // 1 and 2 are not finished
		{finish: 0, want: 1}, // 2 is not finished
		{finish: 1, want: 3}, // all done: up to what was read
	}
	for _, s := range steps {
		b.run(t, items[s.finish])
		require.Equal(t, s.want, b.checkpoint(t, 0), "after finishing position %d", items[s.finish].Event.Position)
	}
	b.d.Saved(b.d.Progress())
	require.Empty(t, b.d.Progress().Checkpoints, "nothing moved since it was saved")
}

func TestSkippedEventsAdvanceTheCheckpoint(t *testing.T) {
	t.Parallel()
	b := setup(t, Config{Match: func(typ string) bool { return typ == "wanted" }})
	b.feed(store.Event{ID: "x", Type: "other", Position: 7})
	require.Empty(t, b.ready())
	require.Equal(t, int64(7), b.checkpoint(t, 0))
}

func TestLostPartitionDropsItsItems(t *testing.T) {
	t.Parallel()
	b := setup(t, Config{})
	b.feed(ev(1, "a"), ev(2, "a"), ev(3, "b"))
	items := b.ready()
	require.Equal(t, []int64{1, 3}, positions(items))
	require.True(t, b.d.Start(items[0]))
	// The claim comes back without the partition: it moved.
	require.True(t, b.d.Apply(nil, b.clock.Now().Add(time.Minute)))
	require.False(t, b.d.Start(items[1]), "an item of a lost partition does not start")
	require.True(t, b.d.Failed(items[0]), "a failure on a lost partition is its next owner's to retry")
	require.Empty(t, b.ready(), "the item waiting on key a is dropped")
	require.Empty(t, b.d.Progress().Checkpoints)
	require.Empty(t, b.d.Held())
	_, _, room := b.d.Plan()
	require.True(t, room, "dropped items no longer count as in flight")
}

func TestApplyTakesBackAResetPartition(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		info store.PartitionInfo
		lost bool
	}{
		{name: "renewed", info: store.PartitionInfo{Partition: 0, Epoch: 1}},
		{name: "claimed back", info: store.PartitionInfo{Partition: 0, Epoch: 2}, lost: true},
		{name: "checkpoint moved", info: store.PartitionInfo{Partition: 0, Epoch: 1, Checkpoint: 40}, lost: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t, Config{})
			b.feed(ev(1, ""))
			items := b.ready()
			changed := b.d.Apply([]store.PartitionInfo{tt.info}, b.clock.Now().Add(time.Minute))
			require.Equal(t, tt.lost, changed)
			require.Equal(t, !tt.lost, b.d.Start(items[0]))
			if tt.lost {
				cursor, _, _ := b.d.Plan()
				require.Equal(t, tt.info.Checkpoint, cursor, "read again from the stored checkpoint")
			}
		})
	}
}

func TestDrainingPartitionStartsNothing(t *testing.T) {
	t.Parallel()
	b := setup(t, Config{Partitions: 2})
	a, z := ev(1, "k0"), ev(2, "k0")
	p := Router{Partitions: 2}.Partition(a)
	b.feed(a, z)
	items := b.ready()
	require.Len(t, items, 1)
	require.True(t, b.d.Start(items[0]))
	require.Empty(t, b.d.Drain([]int{p}), "a handler still runs: not idle")
	require.Equal(t, []int{1 - p}, b.d.Drain([]int{1 - p}), "the other partition is idle")
	b.d.Finish(items[0])
	require.Empty(t, b.ready(), "the next item of a draining partition does not start")
	require.Equal(t, []int{p}, b.d.Drain([]int{p}))
	_, snap, _ := b.d.Plan()
	require.Empty(t, snap, "draining partitions are not read")
}

func TestLeasesExpiredDropEverything(t *testing.T) {
	t.Parallel()
	b := setup(t, Config{})
	b.feed(ev(1, ""))
	items := b.ready()
	b.clock.Add(time.Minute + time.Nanosecond)
	require.False(t, b.d.Start(items[0]))
	require.Equal(t, int64(1), b.expired.Load())
	require.Empty(t, b.d.Held())
}

func TestFailedCountsTheFailureAndRetryAfterPushesAgain(t *testing.T) {
	t.Parallel()
	b := setup(t, Config{})
	b.feed(ev(1, "a"), ev(2, "a"))
	it := b.ready()[0]
	require.True(t, b.d.Start(it))
	require.Equal(t, 1, it.Attempts)
	require.False(t, b.d.Failed(it))
	require.Equal(t, int64(1), b.d.Progress().Checkpoints[0].FailuresDelta)
	b.d.RetryAfter(it, 0)
	select {
	case got := <-b.d.Ready():
		require.Same(t, it, got, "the failed item comes back before the next of its key")
	case <-time.After(5 * time.Second):
		t.Fatal("the retried item never came back")
	}
	require.Empty(t, b.ready())
}

func TestRouter(t *testing.T) {
	t.Parallel()
	fnv1a := func(s string) uint32 {
		h := fnv.New32a()
		_, _ = h.Write([]byte(s))
		return h.Sum32()
	}
	byOrderID := func(e store.Event) string { return string(e.Data) }
	tests := []struct {
		name      string
		scheme    store.Partitioning
		key, data string
		n         int
		hashed    string // what the partition hashes
		orderKey  string // what serialises the event
	}{
		{name: "key-or-type, keyed", scheme: store.PartitionByKeyOrType, key: "user-1", n: 16, hashed: "user-1", orderKey: "user-1"},
		{name: "key-or-type, keyless: the type", scheme: store.PartitionByKeyOrType, n: 16, hashed: "user.login"},
		{name: "key-or-type, one partition", scheme: store.PartitionByKeyOrType, key: "k", n: 1, hashed: "k", orderKey: "k"},
		{name: "key-or-type, many partitions", scheme: store.PartitionByKeyOrType, key: "order-42", n: 4096, hashed: "order-42", orderKey: "order-42"},
		{name: "key-or-id, keyed", scheme: store.PartitionByKeyOrID, key: "user-1", n: 16, hashed: "user-1", orderKey: "user-1"},
		{name: "key-or-id, keyless: the ID", scheme: store.PartitionByKeyOrID, n: 16, hashed: "0190a3b2-id"},
		{name: "order-key: the function's key, not the event's", scheme: store.PartitionByOrderKey, key: "user-1", data: "order-7", n: 16, hashed: "order-7", orderKey: "order-7"},
		{name: "order-key, keyless", scheme: store.PartitionByOrderKey, data: "order-7", n: 16, hashed: "order-7", orderKey: "order-7"},
		{name: "order-key, none: the ID", scheme: store.PartitionByOrderKey, key: "user-1", n: 16, hashed: "0190a3b2-id"},
	}
	for _, tt := range tests {
		r := Router{Partitions: tt.n, Scheme: tt.scheme, OrderKey: byOrderID}
		e := store.Event{ID: "0190a3b2-id", Type: "user.login", Key: tt.key, Data: []byte(tt.data)}
		key, p := r.Route(e)
		require.Equal(t, tt.orderKey, key, "%s: ordering key", tt.name)
		require.Equal(t, int(fnv1a(tt.hashed)%uint32(tt.n)), p, "%s: partition", tt.name)
		require.Equal(t, p, r.Partition(e), "%s: Partition agrees with Route", tt.name)
	}
}

// Keyless events of one type stay in one partition under the old scheme
// and spread over every partition under the new one.
func TestKeylessEventsSpreadByID(t *testing.T) {
	t.Parallel()
	const n = 8
	old, spread := map[int]bool{}, map[int]bool{}
	for i := range 200 {
		e := store.Event{ID: fmt.Sprintf("0190a3b2-%04d", i), Type: "work.item"}
		old[Router{Partitions: n}.Partition(e)] = true
		spread[Router{Partitions: n, Scheme: store.PartitionByKeyOrID}.Partition(e)] = true
	}
	require.Len(t, old, 1, "key, else type: every keyless event of a type in one partition")
	require.Len(t, spread, n, "key, else ID: keyless events in every partition")
}

// Under PartitionByOrderKey, events with the same derived key wait for
// each other even without an event key, and events without one do not
// wait at all.
func TestOrderKeySerialises(t *testing.T) {
	t.Parallel()
	var calls atomic.Int64
	b := setup(t, Config{
		Partitions: 4, Scheme: store.PartitionByOrderKey,
		Match: func(typ string) bool { return typ != "other.type" },
		OrderKey: func(e store.Event) string {
			calls.Add(1)
			return string(e.Data)
		},
	})
	events := []store.Event{
		{ID: "a", Type: "t", Position: 1, Data: []byte("order-1")},
		{ID: "b", Type: "t", Position: 2, Data: []byte("order-2")},
		{ID: "c", Type: "t", Position: 3, Data: []byte("order-1"), Key: "someone-else"},
		{ID: "d", Type: "t", Position: 4},
		{ID: "e", Type: "t", Position: 5},
		{ID: "f", Type: "other.type", Position: 6, Data: []byte("order-1")},
	}
	b.feed(events...)
	require.EqualValues(t, 5, calls.Load(), "OrderKey runs once per event the consumer handles, never on others")
	items := b.ready()
	require.Equal(t, []int64{1, 2, 4, 5}, positions(items), "order-1's second event waits for its first")
	b.run(t, items[0])
	next := b.ready()
	require.Equal(t, []int64{3}, positions(next), "the next event of order-1 starts when the one before finishes")
	require.Equal(t, items[0].Partition(), next[0].Partition(), "one ordering key, one partition")
}

// fakeReader serves a fixed log.
type fakeReader struct {
	log   []store.Event
	reads atomic.Int64
}

func (r *fakeReader) Read(_ context.Context, p store.ReadParams) ([]store.Event, error) {
	r.reads.Add(1)
	var out []store.Event
	for _, e := range r.log {
		if e.Position > p.After && len(out) < p.Limit {
			out = append(out, e)
		}
	}
	return out, nil
}

func TestReadDispatchesTheLogAndStopsWithContext(t *testing.T) {
	t.Parallel()
	b := setup(t, Config{MaxInFlight: 2 * ReadBatch})
	src := &fakeReader{}
	for i := range ReadBatch + 10 {
		src.log = append(src.log, ev(int64(i+1), ""))
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		b.d.Read(ctx, Source{Store: src, Timeout: time.Minute, PollInterval: time.Hour})
	}()
	var got []int64
	deadline := time.After(10 * time.Second)
	for len(got) < len(src.log) {
		select {
		case it := <-b.d.Ready():
			got = append(got, it.Event.Position)
		case <-deadline:
			t.Fatalf("got %d of %d events", len(got), len(src.log))
		}
	}
	for i, p := range got {
		require.Equal(t, int64(i+1), p)
	}
	cancel()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Read did not return when ctx ended")
	}
}

func TestReadWaitsForRoom(t *testing.T) {
	t.Parallel()
	b := setup(t, Config{MaxInFlight: 2})
	src := &fakeReader{log: []store.Event{ev(1, ""), ev(2, ""), ev(3, "")}}
	b.feed(src.log[:2]...)
	_, _, room := b.d.Plan()
	require.False(t, room, "MaxInFlight items are unfinished")
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	go b.d.Read(ctx, Source{Store: src, Timeout: time.Minute, PollInterval: time.Millisecond})
	items := b.ready()
	require.Len(t, items, 2)
	b.run(t, items[0])
	select {
	case it := <-b.d.Ready():
		require.Equal(t, int64(3), it.Event.Position)
	case <-time.After(10 * time.Second):
		t.Fatal("finishing an item did not make room for a read")
	}
}
