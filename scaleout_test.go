package monster_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/gomonster/monster"
	"github.com/gomonster/monster/monstertest"
	"github.com/gomonster/monster/store"
	"github.com/gomonster/monster/store/memstore"
)

// sharedStore lets two Monsters in one test use one store, as two
// processes would: closing one Monster leaves the store open.
type sharedStore struct{ store.Store }

func (sharedStore) Close() error { return nil }

// A member that joins while another works through a backlog gets a share of
// the backlog: the first member drains and hands over partitions above its
// fair share instead of keeping them until the backlog is done.
func TestMemberJoiningDuringBacklogGetsWork(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := memstore.New()
	t.Cleanup(func() { _ = st.Close() })
	const events = 1500
	var entries []monster.Entry
	for i := range events {
		entries = append(entries, monster.Entry{Type: "work", Data: i, Key: fmt.Sprintf("k%d", i%32)})
	}
	var handled [2]atomic.Int64
	var ms [2]*monster.Monster
	for i := range ms {
		o := fastOptions(&monster.Options{MemberID: fmt.Sprintf("member-%d", i), LeaseTTL: 300 * time.Millisecond})
		ms[i] = monster.New(sharedStore{st}, &o)
		t.Cleanup(func() { _ = ms[i].Close() })
		require.NoError(t, ms[i].Consume("worker", monster.Match("work", func(ctx context.Context, e monster.RawEvent) error {
			handled[i].Add(1)
			time.Sleep(time.Millisecond) // the work: a backlog that takes a while
			return nil
		}), nil))
	}
	_, err := ms[0].LogBatch(ctx, entries)
	require.NoError(t, err)
	start(t, ms[0])
	monstertest.Eventually(t, "first member busy", func() bool { return handled[0].Load() > 0 })
	start(t, ms[1])
	monstertest.Eventually(t, "backlog done", func() bool { return handled[0].Load()+handled[1].Load() >= events })
	require.Positive(t, handled[1].Load(), "the member that joined got none of the backlog")
	t.Logf("handled: first member %d, joining member %d", handled[0].Load(), handled[1].Load())
}

// stallingStore makes a member's lease calls hang (a store that stopped
// answering, or a writer starved of SQLite's lock) while reads still work.
type stallingStore struct {
	store.Store
	stalled atomic.Bool
	release chan struct{}
}

func (s *stallingStore) wait(ctx context.Context) {
	if s.stalled.Load() {
		select {
		case <-s.release:
		case <-ctx.Done():
		}
	}
}

func (s *stallingStore) Heartbeat(ctx context.Context, p store.HeartbeatParams) ([]string, error) {
	s.wait(ctx)
	return s.Store.Heartbeat(ctx, p)
}

func (s *stallingStore) Claim(ctx context.Context, p store.ClaimParams) ([]store.PartitionInfo, error) {
	s.wait(ctx)
	return s.Store.Claim(ctx, p)
}

// A member whose lease renewals hang stops handling its partitions once its
// leases may have expired, although its reads still work: otherwise it
// would handle events of partitions another member has taken over.
func TestMemberStopsWhenLeasesCannotBeRenewed(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := memstore.New()
	t.Cleanup(func() { _ = st.Close() })
	const ttl = 300 * time.Millisecond
	stalling := &stallingStore{Store: sharedStore{st}, release: make(chan struct{})}
	t.Cleanup(func() { close(stalling.release) })

	var mu sync.Mutex
	handledBy := map[string][]string{} // event ID → members that handled it
	open := func(name string, s store.Store) *monster.Monster {
		o := fastOptions(&monster.Options{MemberID: name, LeaseTTL: ttl})
		m := monster.New(s, &o)
		t.Cleanup(func() { _ = m.Close() })
		require.NoError(t, m.Consume("worker", monster.Match("work", func(ctx context.Context, e monster.RawEvent) error {
			mu.Lock()
			defer mu.Unlock()
			handledBy[e.ID] = append(handledBy[e.ID], name)
			return nil
		}), nil))
		return m
	}
	a := open("a", stalling)
	start(t, a)
	_, err := a.Log(ctx, "work", 0)
	require.NoError(t, err)
	monstertest.Eventually(t, "a handles", func() bool { mu.Lock(); defer mu.Unlock(); return len(handledBy) == 1 })

	stalling.stalled.Store(true)
	b := open("b", sharedStore{st})
	start(t, b)
	// a's leases run out without a renewal; b takes every partition.
	monstertest.Eventually(t, "b to own every partition", func() bool {
		info, err := st.Consumer(ctx, "worker")
		if err != nil {
			return false
		}
		for _, p := range info.Partitions {
			if p.Owner != "b" {
				return false
			}
		}
		return true
	})
	var after []string
	for i := range 50 {
		e, err := b.Log(ctx, "work", i, monster.WithKey(fmt.Sprintf("k%d", i)))
		require.NoError(t, err)
		after = append(after, e.ID)
	}
	monstertest.Eventually(t, "every event logged after the takeover handled", func() bool {
		mu.Lock()
		defer mu.Unlock()
		for _, id := range after {
			if len(handledBy[id]) == 0 {
				return false
			}
		}
		return true
	})
	mu.Lock()
	defer mu.Unlock()
	// b could claim the partitions only once a's leases had expired, so a
	// must start none of the events logged after that.
	for _, id := range after {
		require.Equal(t, []string{"b"}, handledBy[id], "event %s", id)
	}
}
