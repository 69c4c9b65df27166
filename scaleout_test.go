package monster_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/gomonster/monster"
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
		ms[i] = monster.OpenStore(sharedStore{st}, &o)
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
	eventually(t, "first member busy", func() bool { return handled[0].Load() > 0 })
	start(t, ms[1])
	eventually(t, "backlog done", func() bool { return handled[0].Load()+handled[1].Load() >= events })
	require.Positive(t, handled[1].Load(), "the member that joined got none of the backlog")
	t.Logf("handled: first member %d, joining member %d", handled[0].Load(), handled[1].Load())
}
