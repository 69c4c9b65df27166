package monster_test

import (
	"context"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/gomonster/monster"
	"github.com/gomonster/monster/monstertest"
	"github.com/gomonster/monster/store"
	"github.com/gomonster/monster/store/memstore"
)

// hangingStore makes the first calls of one kind hang until their context
// ends, as a call on a dead connection does (a database that dropped it
// without a reset, a stuck pool checkout); the calls after it work.
type hangingStore struct {
	store.Store
	heartbeats, registrations atomic.Int64 // calls left to hang
	hung                      atomic.Int64 // calls that hung and gave up
}

func (s *hangingStore) hang(ctx context.Context, left *atomic.Int64) error {
	if left.Add(-1) < 0 {
		return nil
	}
	<-ctx.Done()
	s.hung.Add(1)
	return ctx.Err()
}

func (s *hangingStore) Heartbeat(ctx context.Context, p store.HeartbeatParams) ([]string, error) {
	if err := s.hang(ctx, &s.heartbeats); err != nil {
		return nil, err
	}
	return s.Store.Heartbeat(ctx, p)
}

func (s *hangingStore) RegisterConsumer(ctx context.Context, spec store.ConsumerSpec) (store.ConsumerInfo, error) {
	if err := s.hang(ctx, &s.registrations); err != nil {
		return store.ConsumerInfo{}, err
	}
	return s.Store.RegisterConsumer(ctx, spec)
}

// runHanging runs a consumer on st and logs one event; handled reports
// whether the consumer has handled it.
func runHanging(t *testing.T, st *hangingStore) (handled func() bool) {
	t.Helper()
	o := fastOptions(&monster.Options{LeaseTTL: 300 * time.Millisecond})
	m := monster.New(st, &o)
	t.Cleanup(func() { _ = m.Close() })
	var got atomic.Value
	require.NoError(t, m.Consume("worker", monster.Match("work", func(ctx context.Context, e monster.RawEvent) error {
		got.Store(e.ID)
		return nil
	}), nil))
	e, err := m.Log(context.Background(), "work", 1)
	require.NoError(t, err)
	start(t, m)
	return func() bool { id, _ := got.Load().(string); return id == e.ID }
}

// A lease renewal stuck on a dead connection is given up after the lease
// TTL and tried again: the consumer claims its partitions and works. (It
// used to wait on the call for as long as the runner ran.)
func TestConsumerRecoversFromAHungLeaseCall(t *testing.T) {
	t.Parallel()
	st := &hangingStore{Store: memstore.New()}
	t.Cleanup(func() { _ = st.Store.Close() })
	st.heartbeats.Store(1)
	handled := runHanging(t, st)
	monstertest.Eventually(t, "the event handled after the hung heartbeat", handled)
	require.Equal(t, int64(1), st.hung.Load())
}

// A registration stuck on a dead connection is given up after the lease TTL
// (at least 5 s), not after 30 s, and retried.
func TestConsumerRecoversFromAHungRegistration(t *testing.T) {
	t.Parallel()
	st := &hangingStore{Store: memstore.New()}
	t.Cleanup(func() { _ = st.Store.Close() })
	st.registrations.Store(1)
	handled := runHanging(t, st)
	monstertest.Eventually(t, "the event handled after the hung registration", handled)
	require.Equal(t, int64(1), st.hung.Load())
}

// slowClaimStore answers its first Claim only after the leases it grants
// have expired, as a store that is merely very slow does.
type slowClaimStore struct {
	store.Store
	delay time.Duration
	slow  atomic.Bool
}

func (s *slowClaimStore) Claim(ctx context.Context, p store.ClaimParams) ([]store.PartitionInfo, error) {
	if s.slow.CompareAndSwap(true, false) {
		time.Sleep(s.delay) // the store's slowness, not the test's synchronisation
		return s.Store.Claim(context.WithoutCancel(ctx), p)
	}
	return s.Store.Claim(ctx, p)
}

// A renewal that comes back after the leases it took have expired is
// recognised as late and made again, instead of being installed (and then
// dropped by the reader, whose lease-time check keeps it from working on
// them); the consumer then works.
func TestClaimAnsweredAfterItsLeasesExpiredIsNotUsed(t *testing.T) {
	t.Parallel()
	const ttl = 300 * time.Millisecond
	st := &slowClaimStore{Store: memstore.New(), delay: ttl + 100*time.Millisecond}
	t.Cleanup(func() { _ = st.Store.Close() })
	st.slow.Store(true)
	var logged logBuffer
	o := fastOptions(&monster.Options{LeaseTTL: ttl, Logger: slog.New(slog.NewTextHandler(&logged, nil))})
	m := monster.New(st, &o)
	t.Cleanup(func() { _ = m.Close() })
	var got atomic.Int64
	require.NoError(t, m.Consume("worker", monster.Match("work", func(ctx context.Context, e monster.RawEvent) error {
		got.Add(1)
		return nil
	}), nil))
	_, err := m.Log(context.Background(), "work", 1)
	require.NoError(t, err)
	start(t, m)
	monstertest.Eventually(t, "the event handled after the late claim", func() bool { return got.Load() == 1 })
	require.Contains(t, logged.String(), "lease renewal did not complete within the lease TTL")
	require.NotContains(t, logged.String(), "pausing", "partitions with lapsed leases were installed")
}
