package crashtest

import (
	"context"
	"fmt"
	"hash/fnv"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/gomonster/monster"
	"github.com/gomonster/monster/store"
	"github.com/gomonster/monster/store/sqlite"
)

// slowReadStore is a store whose Read, once armed, waits until the
// consumer has claimed a given partition and finished that lease refresh
// (its next Heartbeat). It stands for a Read that takes a while (a large
// batch, a busy disk) while the control loop claims a partition, which is
// what happens when a process takes over a dead one's partitions while it
// works through a backlog.
type slowReadStore struct {
	store.Store
	member    string
	partition int

	mu        sync.Mutex
	armAfter  int64         // the Read to hold is the one with this after; -1 when disarmed
	holding   chan struct{} // closed when the held Read has begun
	claimed   bool          // Claim returned the partition held by member
	refreshed chan struct{} // closed at the first Heartbeat after that
}

func newSlowReadStore(st store.Store, member string, partition int) *slowReadStore {
	return &slowReadStore{Store: st, member: member, partition: partition, armAfter: -1,
		holding: make(chan struct{}), refreshed: make(chan struct{})}
}

func (s *slowReadStore) arm(after int64) {
	s.mu.Lock()
	s.armAfter = after
	s.mu.Unlock()
}

func (s *slowReadStore) Read(ctx context.Context, p store.ReadParams) ([]store.Event, error) {
	s.mu.Lock()
	hold := s.armAfter >= 0 && p.After == s.armAfter
	if hold {
		s.armAfter = -1
		close(s.holding)
	}
	s.mu.Unlock()
	if hold {
		select {
		case <-s.refreshed:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	return s.Store.Read(ctx, p)
}

func (s *slowReadStore) Claim(ctx context.Context, c store.ClaimParams) ([]store.PartitionInfo, error) {
	held, err := s.Store.Claim(ctx, c)
	if err == nil && c.Member == s.member {
		for _, p := range held {
			if p.Partition == s.partition {
				s.mu.Lock()
				s.claimed = true
				s.mu.Unlock()
			}
		}
	}
	return held, err
}

func (s *slowReadStore) Heartbeat(ctx context.Context, hb store.HeartbeatParams) ([]string, error) {
	s.mu.Lock()
	if s.claimed && hb.Member == s.member {
		select {
		case <-s.refreshed:
		default:
			close(s.refreshed) // the refresh that claimed the partition is over
		}
	}
	s.mu.Unlock()
	return s.Store.Heartbeat(ctx, hb)
}

// keyInPartition returns a key that the runtime puts in partition p of n
// (FNV-1a of the key, as documented for dispatch.HashPartition).
func keyInPartition(p, n int) string {
	for i := 0; ; i++ {
		k := fmt.Sprintf("key-%02d", i)
		h := fnv.New32a()
		h.Write([]byte(k))
		if int(h.Sum32()%uint32(n)) == p {
			return k
		}
	}
}

// TestClaimDuringRead is the deterministic form of a failure the crash
// test finds now and then (a consumer handling seq n of a key before seq
// n-1, which it had skipped): a partition claimed while the consumer's
// reader is inside a Read that started from a cursor ahead of that
// partition's checkpoint. The events of the partition between its
// checkpoint and the cursor must still be handled, in order, before the
// later ones (the guarantees AtLeastOnce, NoSkippedEvents and Order in
// monster's package documentation).
func TestClaimDuringRead(t *testing.T) {
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "race.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	const consumer, live, ghost = "race", "live", "ghost"
	const partitions = 2
	rs := newSlowReadStore(st, live, 1)

	// A member that died holds partition 1; partition 0 is free.
	if _, err := st.RegisterConsumer(ctx, store.ConsumerSpec{Name: consumer, Types: []string{"crash.*"}, Partitions: partitions}); err != nil {
		t.Fatal(err)
	}
	ghostLease := func() {
		now := time.Now()
		if _, err := st.Heartbeat(ctx, store.HeartbeatParams{Consumer: consumer, Member: ghost, Expires: now.Add(400 * time.Millisecond), Now: now}); err != nil {
			t.Error(err)
		}
		if _, err := st.Claim(ctx, store.ClaimParams{Consumer: consumer, Member: ghost, Partitions: []int{1}, Expires: now.Add(400 * time.Millisecond), Now: now}); err != nil {
			t.Error(err)
		}
	}
	ghostLease()
	stopGhost := make(chan struct{})
	ghostDone := make(chan struct{})
	go func() { // the ghost stays alive until the held Read has begun
		defer close(ghostDone)
		for {
			select {
			case <-stopGhost:
				return
			case <-time.After(100 * time.Millisecond):
				ghostLease()
			}
		}
	}()

	m := monster.New(rs, &monster.Options{
		Logger: quietLogger, MemberID: live,
		LeaseTTL: 300 * time.Millisecond, PollInterval: 10 * time.Millisecond, CheckpointInterval: 10 * time.Millisecond,
	})
	defer m.Close()
	a, b := keyInPartition(0, partitions), keyInPartition(1, partitions)

	var mu sync.Mutex
	var got []string // "key/seq" in handling order
	err = m.Consume(consumer, monster.Match("crash.*", func(ctx context.Context, e monster.RawEvent) error {
		mu.Lock()
		got = append(got, fmt.Sprintf("%s/%s", e.Key, e.Meta["seq"]))
		mu.Unlock()
		return nil
	}), &monster.ConsumerOptions{Partitions: partitions})
	if err != nil {
		t.Fatal(err)
	}
	logEvent := func(key string, seq int) monster.RawEvent {
		t.Helper()
		e, err := m.Log(ctx, "crash.event", map[string]any{"key": key, "seq": seq}, monster.WithKey(key), monster.WithMeta("seq", fmt.Sprint(seq)))
		if err != nil {
			t.Fatal(err)
		}
		return e
	}
	// b/1..5 (partition 1, held by the ghost), then a/1..5 (partition 0).
	for i := 1; i <= 5; i++ {
		logEvent(b, i)
	}
	var last monster.RawEvent
	for i := 1; i <= 5; i++ {
		last = logEvent(a, i)
	}
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	if err := m.Start(runCtx); err != nil {
		t.Fatal(err)
	}
	handled := func() []string {
		mu.Lock()
		defer mu.Unlock()
		return append([]string(nil), got...)
	}
	waitFor(t, "the live member to handle partition 0", 10*time.Second, func() (bool, string) {
		h := handled()
		return len(h) == 5, fmt.Sprintf("handled %v", h)
	})

	// The reader now polls from the cursor after a/5. Hold its next Read;
	// meanwhile log b/6 and let the ghost's lease run out, so that the
	// live member claims partition 1 (checkpoint 0) during that Read.
	rs.arm(last.Position)
	select {
	case <-rs.holding:
	case <-time.After(10 * time.Second):
		t.Fatal("the reader did not read again")
	}
	logEvent(b, 6)
	close(stopGhost)
	<-ghostDone

	waitFor(t, "the consumer to reach the head", 20*time.Second, func() (bool, string) {
		cs, err := m.ConsumerStats(ctx, consumer)
		if err != nil {
			return false, err.Error()
		}
		h := handled()
		return cs.Lag == 0 && len(h) >= 6 && h[len(h)-1] == b+"/6",
			fmt.Sprintf("lag %d, owners %v, handled %v", cs.Lag, cs.Owners, h)
	})
	var bs []string
	for _, h := range handled() {
		if h[:len(b)] == b {
			bs = append(bs, h)
		}
	}
	want := []string{b + "/1", b + "/2", b + "/3", b + "/4", b + "/5", b + "/6"}
	if fmt.Sprint(bs) != fmt.Sprint(want) {
		t.Errorf("partition 1 (claimed during a Read) was handled as %v, want %v: the events between its checkpoint and the reader's cursor were skipped", bs, want)
	}
}
