package sqlite_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/gomonster/monster/store"
	"github.com/gomonster/monster/store/sqlite"
)

// tail reads s from the start until done is closed (the writers have
// returned) and a read finds nothing more, checking the no-skip rule on the
// way: positions only ever increase. It returns the IDs in the order read.
func tail(ctx context.Context, s store.Store, done <-chan struct{}) ([]string, error) {
	var ids []string
	var after int64
	writersDone := false
	for {
		page, err := s.Read(ctx, store.ReadParams{After: after, Limit: 50})
		if err != nil {
			return nil, err
		}
		for _, e := range page {
			if e.Position <= after {
				return nil, fmt.Errorf("read after %d returned position %d", after, e.Position)
			}
			after = e.Position
			ids = append(ids, e.ID)
		}
		if len(page) > 0 {
			continue
		}
		if writersDone {
			return ids, nil
		}
		select {
		case <-done:
			writersDone = true // everything is committed: one more pass
		default:
			runtime.Gosched()
		}
	}
}

// Two Stores on one file, each appending from many goroutines, while a
// third tails the log: positions are unique, the tail sees them in
// increasing order and misses none.
func TestConcurrentAppendsTwoStores(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	s1, path := openStore(t)
	s2 := openPath(t, path)
	reader := openPath(t, path)

	const goroutines, batches = 8, 25
	batchSize := func(b int) int { return 1 + b%3 }
	want := 0
	for b := range batches {
		want += goroutines * batchSize(b)
	}
	var mu sync.Mutex
	appended := map[string]int64{} // ID -> position
	done := make(chan struct{})
	tailed := make(chan []string, 1)
	tailErr := make(chan error, 1)
	go func() {
		ids, err := tail(ctx, reader, done)
		tailed <- ids
		tailErr <- err
	}()

	var wg sync.WaitGroup
	for g := range goroutines {
		s := s1
		if g%2 == 1 {
			s = s2
		}
		wg.Go(func() {
			for b := range batches {
				results, err := s.Append(ctx, newEvents(batchSize(b), "load"))
				if !noError(t, err) {
					return
				}
				mu.Lock()
				for _, r := range results {
					appended[r.Event.ID] = r.Event.Position
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	close(done)

	require.Len(t, appended, want)
	positions := map[int64]bool{}
	for _, p := range appended {
		require.False(t, positions[p], "position %d handed out twice", p)
		positions[p] = true
	}
	require.NoError(t, <-tailErr)
	ids := <-tailed
	require.Len(t, ids, want)
	for i, id := range ids {
		require.Equal(t, int64(i+1), appended[id], "tail order")
	}
}

// noError reports err to t from a goroutine other than the test's.
func noError(t *testing.T, err error) bool {
	if err != nil {
		t.Error(err)
		return false
	}
	return true
}

// Other processes append to the same file while this one appends and
// tails: SQLite's file locks, not only the in-process write lock, keep
// positions unique and in commit order.
func TestConcurrentAppendsOtherProcesses(t *testing.T) {
	if testing.Short() {
		t.Skip("starts processes")
	}
	t.Parallel()
	ctx := t.Context()
	s, path := openStore(t)

	const processes, perProcess = 2, 300
	const local = 300
	done := make(chan struct{})
	tailed := make(chan []string, 1)
	tailErr := make(chan error, 1)
	go func() {
		ids, err := tail(ctx, s, done)
		tailed <- ids
		tailErr <- err
	}()

	var wg sync.WaitGroup
	for p := range processes {
		wg.Go(func() {
			cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestHelperProcessAppend$", "-test.count=1")
			cmd.Env = append(os.Environ(),
				"MONSTER_SQLITE_HELPER_PATH="+path,
				"MONSTER_SQLITE_HELPER_EVENTS="+strconv.Itoa(perProcess),
				"MONSTER_SQLITE_HELPER_PREFIX="+fmt.Sprintf("proc%d-", p),
			)
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Errorf("helper process: %v\n%s", err, out)
			}
		})
	}
	for range local / 3 {
		appendAll(t, s, newEvents(3, "local"))
	}
	wg.Wait()
	close(done)

	require.NoError(t, <-tailErr)
	ids := <-tailed
	require.Len(t, ids, processes*perProcess+local)
	all := readAll(t, s)
	require.Len(t, all, len(ids))
	for i, e := range all {
		require.Equal(t, int64(i+1), e.Position)
		require.Equal(t, ids[i], e.ID)
	}
	counts, err := s.CountByType(ctx, 0)
	require.NoError(t, err)
	require.Equal(t, map[string]int64{"local": local, "remote": processes * perProcess}, counts)
}

// TestHelperProcessAppend is the other process of
// TestConcurrentAppendsOtherProcesses; it does nothing in a normal run.
func TestHelperProcessAppend(t *testing.T) {
	path := os.Getenv("MONSTER_SQLITE_HELPER_PATH")
	if path == "" {
		t.Skip("helper process")
	}
	n, err := strconv.Atoi(os.Getenv("MONSTER_SQLITE_HELPER_EVENTS"))
	require.NoError(t, err)
	prefix := os.Getenv("MONSTER_SQLITE_HELPER_PREFIX")
	s, err := sqlite.Open(context.Background(), filepath.Clean(path), nil)
	require.NoError(t, err)
	defer s.Close()
	for i := 0; i < n; {
		batch := make([]store.NewEvent, 0, 4)
		for j := 0; j < 1+i%4 && i < n; j++ {
			e := newEvent("remote")
			e.ID = prefix + e.ID
			batch = append(batch, e)
			i++
		}
		_, err := s.Append(context.Background(), batch)
		require.NoError(t, err)
	}
}
