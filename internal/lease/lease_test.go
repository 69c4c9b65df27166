package lease

import (
	"context"
	"errors"
	"sort"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/gomonster/monster/internal/clocktest"
	"github.com/gomonster/monster/internal/dispatch"
	"github.com/gomonster/monster/store"
	"github.com/gomonster/monster/store/memstore"
)

func TestFairShare(t *testing.T) {
	t.Parallel()
	tests := []struct{ total, members, want int }{
		{16, 1, 16},
		{16, 2, 8},
		{16, 3, 6},
		{16, 0, 16},
		{1, 4, 1},
		{0, 3, 0},
	}
	for _, tt := range tests {
		require.Equal(t, tt.want, FairShare(tt.total, tt.members), "%d partitions, %d members", tt.total, tt.members)
	}
}

func held(draining map[int]bool, ns ...int) []dispatch.Held {
	var out []dispatch.Held
	for _, n := range ns {
		out = append(out, dispatch.Held{Partition: n, Draining: draining[n]})
	}
	return out
}

func TestHandOver(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		held     []dispatch.Held
		share    int
		want     []int
		wantNone bool
	}{
		{name: "at the share", held: held(nil, 0, 1, 2, 3), share: 4, wantNone: true},
		{name: "under the share", held: held(nil, 0, 1), share: 4, wantNone: true},
		{name: "above: the highest go", held: held(nil, 3, 0, 2, 1), share: 2, want: []int{3, 2}},
		{name: "draining count towards the extra", held: held(map[int]bool{0: true}, 0, 1, 2, 3), share: 2, want: []int{3, 0}},
		{name: "draining stays draining under the share", held: held(map[int]bool{1: true}, 0, 1), share: 4, want: []int{1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := HandOver(tt.held, tt.share)
			if tt.wantNone {
				require.Empty(t, got)
				return
			}
			require.Equal(t, tt.want, got)
		})
	}
}

func TestToClaim(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	all := []store.PartitionInfo{
		{Partition: 0, Owner: "me", LeaseExpires: now.Add(time.Second)},
		{Partition: 1, Owner: "other", LeaseExpires: now.Add(time.Second)},
		{Partition: 2, Owner: "dead", LeaseExpires: now.Add(-time.Second)},
		{Partition: 3},
		{Partition: 4},
	}
	tests := []struct {
		name  string
		keep  []int
		held  map[int]bool
		share int
		want  []int
	}{
		{name: "free, own and expired; not another's live lease", share: 5, want: []int{0, 2, 3, 4}},
		{name: "up to the share", share: 2, want: []int{0, 2}},
		{name: "held ones are kept, not claimed again", keep: []int{0}, held: map[int]bool{0: true}, share: 3, want: []int{0, 2, 3}},
		{name: "nothing above the share", keep: []int{3, 4}, held: map[int]bool{3: true, 4: true}, share: 2, want: []int{3, 4}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			require.Equal(t, tt.want, ToClaim(tt.keep, tt.held, all, tt.share, "me", now))
		})
	}
}

// fakeStore is an in-memory store whose lease calls can be made to fail
// or to take (fake) time, and which counts them.
type fakeStore struct {
	*memstore.Store
	clock *clocktest.Clock

	mu            sync.Mutex
	heartbeatErr  error // returned by the next failHeartbeat calls
	failHeartbeat int
	claimTakes    time.Duration // added to the clock by every Claim
	calls         map[string]int
}

func (s *fakeStore) count(name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls[name]++
}

func (s *fakeStore) called(name string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls[name]
}

func (s *fakeStore) Heartbeat(ctx context.Context, p store.HeartbeatParams) ([]string, error) {
	s.count("Heartbeat")
	s.mu.Lock()
	if s.failHeartbeat > 0 {
		s.failHeartbeat--
		s.mu.Unlock()
		return nil, s.heartbeatErr
	}
	s.mu.Unlock()
	return s.Store.Heartbeat(ctx, p)
}

func (s *fakeStore) Claim(ctx context.Context, p store.ClaimParams) ([]store.PartitionInfo, error) {
	s.count("Claim")
	s.mu.Lock()
	d := s.claimTakes
	s.mu.Unlock()
	s.clock.Add(d)
	return s.Store.Claim(ctx, p)
}

func (s *fakeStore) Release(ctx context.Context, p store.ReleaseParams) error {
	s.count("Release")
	return s.Store.Release(ctx, p)
}

func (s *fakeStore) SaveCheckpoints(ctx context.Context, p store.SaveCheckpointsParams) error {
	s.count("SaveCheckpoints")
	return s.Store.SaveCheckpoints(ctx, p)
}

type bundle struct {
	st     *fakeStore
	clock  *clocktest.Clock
	warned atomic.Int64
}

const (
	consumer   = "audit"
	partitions = 4
	ttl        = 10 * time.Second
)

// setup returns a store with the consumer registered (4 partitions from
// checkpoint 0) and a fake clock.
func setup(t *testing.T) *bundle {
	t.Helper()
	b := &bundle{clock: clocktest.New()}
	b.st = &fakeStore{Store: memstore.New(), clock: b.clock, calls: map[string]int{}}
	t.Cleanup(func() { _ = b.st.Close() })
	_, err := b.st.RegisterConsumer(context.Background(), store.ConsumerSpec{Name: consumer, Types: []string{"*"}, Partitions: partitions})
	require.NoError(t, err)
	return b
}

// member returns a Keeper for member with its own Dispatcher.
func (b *bundle) member(name string) (*Keeper, *dispatch.Dispatcher) {
	d := dispatch.New(dispatch.Config{
		Partitions: partitions, Match: func(string) bool { return true }, MaxInFlight: 100, Now: b.clock.Now,
	})
	k := New(Config{
		Consumer: consumer, Member: name, Store: b.st, Partitions: d,
		TTL: ttl, RetryInterval: time.Millisecond, CheckpointInterval: time.Hour,
		Warn: func(string, error) { b.warned.Add(1) }, Now: b.clock.Now,
	})
	return k, d
}

func heldPartitions(d *dispatch.Dispatcher) []int {
	var out []int
	for _, h := range d.Held() {
		out = append(out, h.Partition)
	}
	sort.Ints(out)
	return out
}

func TestRefreshClaimsAFairShare(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	k1, d1 := b.member("m1")
	require.True(t, k1.Refresh(ctx))
	require.Equal(t, []int{0, 1, 2, 3}, heldPartitions(d1), "alone, a member claims everything")

	k2, d2 := b.member("m2")
	require.True(t, k2.Refresh(ctx))
	require.Empty(t, heldPartitions(d2), "nothing is free yet")

	require.True(t, k1.Refresh(ctx), "m1 sees two members")
	require.Equal(t, []int{0, 1}, heldPartitions(d1), "above its share, m1 hands over the highest")
	require.Equal(t, 1, b.st.called("Release"))
	require.True(t, k2.Refresh(ctx))
	require.Equal(t, []int{2, 3}, heldPartitions(d2), "the newcomer gets the released ones")
}

func TestRefreshKeepsBusyPartitionsUntilTheirHandlersReturn(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	k1, d1 := b.member("m1")
	require.True(t, k1.Refresh(ctx))
	// An event of partition 3 is running.
	ev := store.Event{ID: "x", Type: "t", Position: 1}
	for i := 0; (dispatch.Router{Partitions: partitions}).Partition(ev) != 3; i++ {
		ev.Key = string(rune('a' + i))
	}
	cursor, snap, _ := d1.Plan()
	require.Zero(t, cursor)
	d1.Dispatch([]store.Event{ev}, snap)
	it := <-d1.Ready()
	require.True(t, d1.Start(it))

	k2, _ := b.member("m2")
	require.True(t, k2.Refresh(ctx))
	require.True(t, k1.Refresh(ctx))
	require.Equal(t, []int{0, 1, 3}, heldPartitions(d1), "partition 3 drains while its handler runs; 2 is released")
	d1.Finish(it)
	require.True(t, k1.Refresh(ctx))
	require.Equal(t, []int{0, 1}, heldPartitions(d1))
	require.Positive(t, b.st.called("SaveCheckpoints"), "checkpoints are saved before partitions are released")
	info, err := b.st.Consumer(ctx, consumer)
	require.NoError(t, err)
	require.Equal(t, int64(1), info.Partitions[3].Checkpoint, "the finished event's checkpoint went with the partition")
}

func TestRefreshTakesOverExpiredLeases(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	k1, _ := b.member("m1")
	require.True(t, k1.Refresh(ctx))
	k2, d2 := b.member("m2")
	require.True(t, k2.Refresh(ctx))
	require.Empty(t, heldPartitions(d2), "m1's leases are live")
	b.clock.Add(ttl + time.Second) // m1 died: its heartbeat and leases expire
	require.True(t, k2.Refresh(ctx))
	require.Equal(t, []int{0, 1, 2, 3}, heldPartitions(d2))
}

func TestRefreshFailures(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		setup func(*bundle)
	}{
		{name: "heartbeat fails", setup: func(b *bundle) {
			b.st.heartbeatErr, b.st.failHeartbeat = errors.New("connection reset"), 1
		}},
		{name: "renewal outlives the leases", setup: func(b *bundle) { b.st.claimTakes = ttl + time.Second }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t)
			tt.setup(b)
			k, d := b.member("m1")
			require.False(t, k.Refresh(context.Background()))
			require.Empty(t, heldPartitions(d), "nothing is held after a failed refresh")
			require.Equal(t, int64(1), b.warned.Load())
		})
	}
}

func TestRunRenewsAndRetriesFailedRefreshesSoon(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.st.heartbeatErr, b.st.failHeartbeat = errors.New("connection reset"), 3
	d := dispatch.New(dispatch.Config{Partitions: partitions, Match: func(string) bool { return true }, MaxInFlight: 100})
	// Real time here: the loop's tickers. The TTL is long enough that the
	// first success can only come from the quick retries, not the ticker.
	k := New(Config{
		Consumer: consumer, Member: "m1", Store: b.st, Partitions: d,
		TTL: time.Minute, RetryInterval: time.Millisecond, CheckpointInterval: time.Hour,
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	var jobs atomic.Int64
	go func() {
		defer close(done)
		k.Run(ctx, Job{Every: time.Millisecond, Do: func(context.Context) { jobs.Add(1) }})
	}()
	require.Eventually(t, func() bool { return len(d.Held()) == partitions }, 10*time.Second, time.Millisecond,
		"the partitions were claimed after the failed refreshes")
	require.Equal(t, 4, b.st.called("Heartbeat"), "three failures, then a success")
	require.Eventually(t, func() bool { return jobs.Load() > 0 }, 10*time.Second, time.Millisecond, "the job runs")
	cancel()
	<-done
}

func TestFlushSavesWhatMovedAndLeaveReleases(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx := context.Background()
	k, d := b.member("m1")
	require.True(t, k.Refresh(ctx))
	require.NoError(t, k.Flush(ctx))
	require.Zero(t, b.st.called("SaveCheckpoints"), "nothing moved")
	_, snap, _ := d.Plan()
	d.Dispatch([]store.Event{{ID: "x", Type: "t", Position: 5}}, snap)
	it := <-d.Ready()
	require.True(t, d.Start(it))
	d.Finish(it)
	require.NoError(t, k.Flush(ctx))
	require.Equal(t, 1, b.st.called("SaveCheckpoints"))
	k.Leave()
	info, err := b.st.Consumer(ctx, consumer)
	require.NoError(t, err)
	for _, p := range info.Partitions {
		require.Equal(t, int64(5), p.Checkpoint)
		require.Empty(t, p.Owner, "Leave released partition %d", p.Partition)
	}
}
