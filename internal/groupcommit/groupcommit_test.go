package groupcommit

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/gomonster/monster/store"
)

// fakeStore appends in memory, numbering events from 1, and records each
// group. While gate is set, every Append waits on it.
type fakeStore struct {
	mu      sync.Mutex
	groups  [][]store.NewEvent
	next    int64
	fail    error // returned by Append number failAt (from 1; 0: the next)
	failAt  int
	gate    chan struct{}
	entered chan struct{} // gets a value when an Append starts
	// max, when positive, is the most events one Append takes; a larger
	// one is refused whole with store.ErrTooManyEvents.
	max     int
	refused []int // the sizes of the Appends refused for max
}

func newFakeStore() *fakeStore { return &fakeStore{entered: make(chan struct{}, 100)} }

func (s *fakeStore) append(_ context.Context, events []store.NewEvent) ([]store.AppendResult, error) {
	s.entered <- struct{}{}
	s.mu.Lock()
	gate := s.gate
	s.mu.Unlock()
	if gate != nil {
		<-gate
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.max > 0 && len(events) > s.max {
		s.refused = append(s.refused, len(events))
		return nil, fmt.Errorf("fake append: %d events: %w", len(events), store.ErrTooManyEvents)
	}
	s.groups = append(s.groups, append([]store.NewEvent(nil), events...))
	if s.fail != nil && (s.failAt == 0 || s.failAt == len(s.groups)) {
		return nil, s.fail
	}
	out := make([]store.AppendResult, len(events))
	for i, e := range events {
		s.next++
		out[i] = store.AppendResult{Event: store.Event{ID: e.ID, Type: e.Type, Position: s.next}}
	}
	return out, nil
}

func (s *fakeStore) hold() chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.gate = make(chan struct{})
	return s.gate
}

func (s *fakeStore) groupCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.groups)
}

func events(caller, n int) []store.NewEvent {
	out := make([]store.NewEvent, n)
	for i := range out {
		out[i] = store.NewEvent{ID: fmt.Sprintf("c%d-e%d", caller, i), Type: "test.event"}
	}
	return out
}

// waitFor fails the test unless cond holds within a few seconds.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	require.Eventually(t, cond, 5*time.Second, time.Millisecond, what)
}

type outcome struct {
	caller  int
	results []store.AppendResult
	err     error
}

// setup returns a committer on a fake store whose first Append is held
// until the returned function is called, and which already has that first
// request in flight, so that the requests that follow queue up.
func setup(t *testing.T, cfg Config) (*Committer, *fakeStore, func(), <-chan outcome) {
	t.Helper()
	st := newFakeStore()
	cfg.Append = st.append
	c := New(cfg)
	t.Cleanup(c.Close)
	gate := st.hold()
	first := make(chan outcome, 1)
	go func() {
		res, err := c.Commit(context.Background(), events(0, 1))
		first <- outcome{0, res, err}
	}()
	<-st.entered
	var once sync.Once
	return c, st, func() {
		once.Do(func() {
			st.mu.Lock()
			st.gate = nil
			st.mu.Unlock()
			close(gate)
		})
	}, first
}

// queue starts callers 1..n, each committing size(i) events, and returns
// once their requests wait in the queue; their outcomes follow on the
// channel.
func queue(t *testing.T, c *Committer, n int, size func(int) int) <-chan outcome {
	t.Helper()
	out := make(chan outcome, n)
	for i := 1; i <= n; i++ {
		go func() {
			res, err := c.Commit(context.Background(), events(i, size(i)))
			out <- outcome{i, res, err}
		}()
	}
	waitFor(t, "callers queued", func() bool { return len(c.requests) == n })
	return out
}

func TestCommitGroupsConcurrentCallers(t *testing.T) {
	t.Parallel()
	for _, callers := range []int{2, 8, 50} {
		t.Run(fmt.Sprint(callers), func(t *testing.T) {
			t.Parallel()
			c, st, release, first := setup(t, Config{})
			out := queue(t, c, callers, func(i int) int { return i%3 + 1 })
			release()
			require.NoError(t, (<-first).err)
			for range callers {
				o := <-out
				require.NoError(t, o.err)
				want := events(o.caller, o.caller%3+1)
				require.Len(t, o.results, len(want))
				for i, r := range o.results {
					require.Equal(t, want[i].ID, r.Event.ID, "results map back to their caller, in order")
				}
			}
			require.Equal(t, 2, st.groupCount(), "the queued callers share one Append")
		})
	}
}

func TestCommitAppendErrorReachesEveryCallerOfTheGroup(t *testing.T) {
	t.Parallel()
	c, st, release, first := setup(t, Config{})
	const callers = 5
	out := queue(t, c, callers, func(int) int { return 1 })
	boom := errors.New("disk full")
	st.mu.Lock()
	st.fail, st.failAt = boom, 2 // the group of the queued callers
	st.mu.Unlock()
	release()
	require.NoError(t, (<-first).err, "the first group is not affected")
	for range callers {
		o := <-out
		require.ErrorIs(t, o.err, boom)
		require.Nil(t, o.results)
	}
	require.Equal(t, 2, st.groupCount())
}

func TestCommitHooks(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		fail      error
		wantCalls int
	}{
		{name: "success", wantCalls: 1},
		{name: "append fails", fail: errors.New("broken"), wantCalls: 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			st := newFakeStore()
			st.fail = tt.fail
			var mu sync.Mutex
			var committed [][]store.AppendResult
			released := 0
			c := New(Config{
				Append: st.append,
				Committed: func(r []store.AppendResult) {
					mu.Lock()
					defer mu.Unlock()
					require.Zero(t, released, "Committed runs before the callers are released")
					committed = append(committed, r)
				},
				Released: func() {
					mu.Lock()
					defer mu.Unlock()
					released++
				},
			})
			_, err := c.Commit(context.Background(), events(1, 2))
			require.ErrorIs(t, err, tt.fail)
			c.Close() // the loop has finished with the group, hooks included
			mu.Lock()
			defer mu.Unlock()
			require.Len(t, committed, tt.wantCalls)
			require.Equal(t, tt.wantCalls, released)
		})
	}
}

func TestCommitWrongResultCount(t *testing.T) {
	t.Parallel()
	c := New(Config{Append: func(context.Context, []store.NewEvent) ([]store.AppendResult, error) {
		return []store.AppendResult{{}}, nil
	}})
	t.Cleanup(c.Close)
	_, err := c.Commit(context.Background(), events(1, 2))
	require.ErrorContains(t, err, "1 results for 2 events")
}

func TestCloseDrainsQueuedRequests(t *testing.T) {
	t.Parallel()
	c, st, release, first := setup(t, Config{})
	const callers = 4
	out := queue(t, c, callers, func(int) int { return 1 })
	closed := make(chan struct{})
	go func() {
		c.Close()
		close(closed)
	}()
	waitFor(t, "Close begun", func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		return c.closed
	})
	_, err := c.Commit(context.Background(), events(9, 1))
	require.ErrorIs(t, err, ErrClosed)
	select {
	case <-closed:
		t.Fatal("Close returned with requests still queued")
	default:
	}
	release()
	<-closed
	require.NoError(t, (<-first).err)
	for range callers {
		require.NoError(t, (<-out).err)
	}
	require.Equal(t, 2, st.groupCount())
}

func TestCommitContextEnds(t *testing.T) {
	t.Parallel()
	t.Run("before queueing: plain error", func(t *testing.T) {
		t.Parallel()
		c, _, release, _ := setup(t, Config{Queue: 1})
		t.Cleanup(release)
		go func() { _, _ = c.Commit(context.Background(), events(1, 1)) }() // fills the queue
		waitFor(t, "queue full", func() bool { return len(c.requests) == 1 })
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		_, err := c.Commit(ctx, events(2, 1))
		require.ErrorIs(t, err, context.Canceled)
		require.NotErrorIs(t, err, store.ErrAmbiguousCommit)
	})
	t.Run("after queueing: ambiguous", func(t *testing.T) {
		t.Parallel()
		c, _, release, _ := setup(t, Config{})
		t.Cleanup(release)
		ctx, cancel := context.WithCancel(context.Background())
		errc := make(chan error, 1)
		go func() {
			_, err := c.Commit(ctx, events(1, 1))
			errc <- err
		}()
		waitFor(t, "request queued", func() bool { return len(c.requests) == 1 })
		cancel()
		err := <-errc
		require.ErrorIs(t, err, store.ErrAmbiguousCommit)
		require.ErrorIs(t, err, context.Canceled)
	})
}

func TestGatherCapsGroupSize(t *testing.T) {
	t.Parallel()
	requests := make(chan *request, 4)
	for range 3 {
		requests <- &request{events: make([]store.NewEvent, MaxEvents/2)}
	}
	var g gatherer
	g.linger = time.NewTimer(time.Hour)
	g.linger.Stop()
	batch := g.gather(&request{events: make([]store.NewEvent, 1)}, requests)
	require.Len(t, batch, 3, "the group stops once it reaches MaxEvents")
	require.Len(t, requests, 1)
}

// A store that takes only so many events at once refuses a group whole:
// the committer commits the group's callers apart, each gets its own
// results, only a caller whose own events are too many gets the error, and
// later groups stay under the refused size.
func TestCommitSplitsGroupsTheStoreRefusesAsTooLarge(t *testing.T) {
	t.Parallel()
	c, st, release, first := setup(t, Config{})
	st.mu.Lock()
	st.max = 6
	st.mu.Unlock()
	const callers = 12
	size := func(i int) int {
		if i == callers {
			return 7 // more than the store takes at once
		}
		return i%3 + 1
	}
	out := queue(t, c, callers, size)
	release()
	require.NoError(t, (<-first).err)
	for range callers {
		o := <-out
		if o.caller == callers {
			require.ErrorIs(t, o.err, store.ErrTooManyEvents, "a caller whose own events are too many gets the error")
			continue
		}
		require.NoError(t, o.err, "caller %d", o.caller)
		want := events(o.caller, size(o.caller))
		require.Len(t, o.results, len(want))
		for i, r := range o.results {
			require.Equal(t, want[i].ID, r.Event.ID, "results map back to their caller, in order")
		}
	}
	st.mu.Lock()
	require.NotEmpty(t, st.refused, "the first group was too large for the store")
	for _, g := range st.groups {
		require.LessOrEqual(t, len(g), 6, "every stored group fits the store")
	}
	stored := 0
	for _, g := range st.groups {
		stored += len(g)
	}
	refusedBefore := len(st.refused)
	st.mu.Unlock()
	wantStored := 1 // the first caller's
	for i := 1; i < callers; i++ {
		wantStored += size(i)
	}
	require.Equal(t, wantStored, stored, "every event but the refused caller's is stored, once")

	// Later groups are formed under the refused size: a queue of small
	// callers is not refused again.
	for len(st.entered) > 0 { // every Append of the first part has returned
		<-st.entered
	}
	gate := st.hold()
	held := make(chan error, 1)
	go func() {
		_, err := c.Commit(context.Background(), events(100, 1))
		held <- err
	}()
	<-st.entered // its Append waits at the gate, so the next callers queue
	more := queue(t, c, 10, func(int) int { return 1 })
	st.mu.Lock()
	st.gate = nil
	st.mu.Unlock()
	close(gate)
	require.NoError(t, <-held)
	for range 10 {
		require.NoError(t, (<-more).err)
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	require.Len(t, st.refused, refusedBefore, "groups formed after a refusal fit the store")
}
