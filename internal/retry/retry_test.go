package retry

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

func TestBackoff(t *testing.T) {
	t.Parallel()
	p := Policy{MaxAttempts: 5, InitialBackoff: 10 * time.Millisecond, MaxBackoff: 50 * time.Millisecond}
	tests := []struct {
		attempt int
		want    time.Duration
	}{
		{1, 10 * time.Millisecond},
		{2, 20 * time.Millisecond},
		{3, 40 * time.Millisecond},
		{4, 50 * time.Millisecond},
		{100, 50 * time.Millisecond},
	}
	for _, tt := range tests {
		require.Equal(t, tt.want, p.Backoff(tt.attempt), "attempt %d", tt.attempt)
	}
	p.Jitter = 0.5
	for range 200 {
		d := p.Backoff(2)
		require.GreaterOrEqual(t, d, 10*time.Millisecond)
		require.LessOrEqual(t, d, 30*time.Millisecond)
	}
}

// fakeStore keeps dead letters in memory; AddDeadLetter fails while
// addErr is set.
type fakeStore struct {
	mu       sync.Mutex
	addErr   error
	dead     map[string]store.DeadLetter
	events   map[string]store.Event
	listErr  error
	lists    int
	removals []string
}

func newFakeStore() *fakeStore {
	return &fakeStore{dead: map[string]store.DeadLetter{}, events: map[string]store.Event{}}
}

func (s *fakeStore) AddDeadLetter(_ context.Context, dl store.DeadLetter) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.addErr != nil {
		return s.addErr
	}
	s.dead[dl.EventID] = dl
	return nil
}

func (s *fakeStore) DeadLetters(_ context.Context, q store.DeadLetterQuery) ([]store.DeadLetter, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.lists++
	if s.listErr != nil {
		return nil, s.listErr
	}
	var out []store.DeadLetter
	for _, dl := range s.dead {
		if dl.Consumer == q.Consumer && (!q.RetryRequested || dl.RetryRequested) {
			out = append(out, dl)
		}
	}
	return out, nil
}

func (s *fakeStore) EventByID(_ context.Context, id string) (store.Event, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.events[id]
	if !ok {
		return store.Event{}, store.ErrNotFound
	}
	return e, nil
}

func (s *fakeStore) DeleteDeadLetters(_ context.Context, sel store.DeadLetterSelection) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ids := sel.IDs
	for _, id := range ids {
		delete(s.dead, id)
		s.removals = append(s.removals, id)
	}
	return len(ids), nil
}

func TestFail(t *testing.T) {
	t.Parallel()
	policy := Policy{MaxAttempts: 3, InitialBackoff: 10 * time.Millisecond, MaxBackoff: time.Second}
	storeDown := errors.New("store down")
	tests := []struct {
		name      string
		blocking  bool
		attempts  int
		addErr    error
		wantRetry bool
		wantDelay time.Duration
		wantDead  bool
	}{
		{name: "first failure retries", attempts: 1, wantRetry: true, wantDelay: 10 * time.Millisecond},
		{name: "attempts left retry", attempts: 2, wantRetry: true, wantDelay: 20 * time.Millisecond},
		{name: "last attempt dead-letters", attempts: 3, wantDead: true},
		{name: "blocking never dead-letters", blocking: true, attempts: 30, wantRetry: true, wantDelay: time.Second},
		{name: "dead letter not stored: retried", attempts: 3, addErr: storeDown, wantRetry: true, wantDelay: 40 * time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			st := newFakeStore()
			st.addErr = tt.addErr
			now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.FixedZone("x", 3600))
			fs := &Failures{Consumer: "audit", Policy: policy, RetryForever: tt.blocking, Store: st, Now: func() time.Time { return now }}
			ev := store.Event{ID: "e1", Type: "user.login", Position: 7}
			out := fs.Fail(Failure{Event: ev, Partition: 3, Attempts: tt.attempts, TotalAttempts: tt.attempts + 2, Err: errors.New("handler broke")})
			require.Equal(t, tt.wantRetry, out.Retry)
			require.Equal(t, tt.wantDelay, out.Delay)
			require.ErrorIs(t, out.StoreErr, tt.addErr)
			if !tt.wantDead {
				require.Empty(t, st.dead)
				return
			}
			require.Equal(t, store.DeadLetter{
				Consumer: "audit", EventID: "e1", Type: "user.login", Position: 7, Partition: 3,
				Attempts: tt.attempts + 2, Error: "handler broke", FailedAt: now.UTC(),
			}, st.dead["e1"])
		})
	}
}

func setupRequested(t *testing.T, n int) (*Requested, *fakeStore) {
	t.Helper()
	st := newFakeStore()
	for i := range n {
		id := fmt.Sprintf("e%d", i)
		st.events[id] = store.Event{ID: id, Type: "t", Position: int64(i + 1)}
		st.dead[id] = store.DeadLetter{Consumer: "audit", EventID: id, Partition: i % 2, Attempts: 5, RetryRequested: true}
	}
	return &Requested{Consumer: "audit", Store: st, ListTimeout: time.Minute, ReadTimeout: time.Minute}, st
}

func TestRequestedRunsHeldPartitionsOnceEach(t *testing.T) {
	t.Parallel()
	r, st := setupRequested(t, 4)
	holdsEven := func(p int) bool { return p == 0 }
	var ran []string
	run := func(ev store.Event, dl store.DeadLetter) {
		require.Equal(t, ev.ID, dl.EventID)
		ran = append(ran, ev.ID)
	}
	ctx := context.Background()
	r.PickUp(ctx, holdsEven, run)
	require.ElementsMatch(t, []string{"e0", "e2"}, ran, "only the held partitions' dead letters")
	r.PickUp(ctx, holdsEven, run)
	require.Len(t, ran, 2, "running retries are not started again")

	r.Done("e0", true)
	r.Done("e2", false)
	require.Equal(t, []string{"e0"}, st.removals, "a handled retry removes its dead letter")
	// e2 was dead-lettered again (its RetryRequested cleared by the
	// store); e0 is gone. A listing after Done may run neither again.
	st.mu.Lock()
	d := st.dead["e2"]
	d.RetryRequested = false
	st.dead["e2"] = d
	st.mu.Unlock()
	r.PickUp(ctx, holdsEven, run)
	require.Len(t, ran, 2)
}

func TestRequestedFailures(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		breakStore func(*fakeStore)
	}{
		{name: "listing fails", breakStore: func(s *fakeStore) { s.listErr = errors.New("down") }},
		{name: "event missing", breakStore: func(s *fakeStore) { delete(s.events, "e0") }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r, st := setupRequested(t, 1)
			var warned []string
			r.Warn = func(what string, _ error) { warned = append(warned, what) }
			tt.breakStore(st)
			ran := 0
			r.PickUp(context.Background(), func(int) bool { return true }, func(store.Event, store.DeadLetter) { ran++ })
			require.Zero(t, ran)
			require.Len(t, warned, 1)
			// Repaired, the next look runs it: a failure does not mark it busy.
			st.mu.Lock()
			st.listErr = nil
			st.events["e0"] = store.Event{ID: "e0"}
			st.mu.Unlock()
			r.PickUp(context.Background(), func(int) bool { return true }, func(store.Event, store.DeadLetter) { ran++ })
			require.Equal(t, 1, ran)
		})
	}
}

func TestRequestedCapsRetriesAtOnce(t *testing.T) {
	t.Parallel()
	r, _ := setupRequested(t, MaxRequested+10)
	ran := 0
	r.PickUp(context.Background(), func(int) bool { return true }, func(store.Event, store.DeadLetter) { ran++ })
	require.Equal(t, MaxRequested, ran)
}
