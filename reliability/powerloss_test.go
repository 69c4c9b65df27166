//go:build reliability

package reliability

import (
	"context"
	"database/sql"
	"encoding/json"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gomonster/monster"
	"modernc.org/sqlite"
)

var pad = strings.Repeat("x", 1000)

var cuts = flag.Int("reliability.cuts", 20, "power cuts per power-loss test (issue 13 asks for ≥ 200 in the full run)")

// requireFUSE skips the test without root or /dev/fuse, and fails it
// instead under CI=true, where both must be there.
func requireFUSE(t *testing.T) {
	t.Helper()
	var reason string
	if os.Geteuid() != 0 {
		reason = "needs root to mount a FUSE file system"
	} else if _, err := os.Stat("/dev/fuse"); err != nil {
		reason = "needs /dev/fuse: " + err.Error()
	}
	if reason == "" {
		return
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("CI=true: %s", reason)
	}
	t.Skip(reason)
}

// unsafePaths holds the store files whose SQLite connections get
// PRAGMA synchronous=OFF, to emulate a store that acknowledges before
// syncing. The driver's connection hook runs after the store's own DSN
// pragmas (synchronous=FULL), so it overrides them.
var (
	unsafePaths sync.Map // path → struct{}
	hookOnce    sync.Once
)

func registerUnsafeHook() {
	hookOnce.Do(func() {
		sqlite.RegisterConnectionHook(func(conn sqlite.ExecQuerierContext, dsn string) error {
			unsafe := false
			unsafePaths.Range(func(k, _ any) bool {
				if strings.Contains(dsn, k.(string)) {
					unsafe = true
					return false
				}
				return true
			})
			if !unsafe {
				return nil
			}
			_, err := conn.ExecContext(context.Background(), "PRAGMA synchronous=OFF", nil)
			return err
		})
	})
}

// cutResult is what one cut found.
type cutResult struct {
	acknowledged, stored, lost, invented int
	syncs, dbSyncs                       int64
	problems                             []string
}

// runCut mounts a CutFS, logs events from several goroutines into a store
// on it, cuts the power after a random number of acknowledged events,
// unmounts, reopens the backing file directly and compares.
func runCut(t *testing.T, round int, syncOff bool, rng *rand.Rand) cutResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	// The FUSE server runs in this process, and SQLite (transpiled to Go)
	// touches its -shm file through mmap: a page fault on it during the
	// garbage collector's stop-the-world waits for a server goroutine
	// that cannot run, and the process hangs. With the collector off
	// during a cut this has not happened; running the store in a child
	// process is the real fix (to do).
	defer debug.SetGCPercent(debug.SetGCPercent(-1))

	backing := filepath.Join(t.TempDir(), "backing")
	mnt := filepath.Join(t.TempDir(), "mnt")
	for _, d := range []string{backing, mnt} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	cfs := NewCutFS(backing)
	server, err := cfs.Mount(mnt)
	if err != nil {
		t.Fatalf("round %d: mount: %v", round, err)
	}
	unmounted := false
	unmount := func() {
		if unmounted {
			return
		}
		unmounted = true
		if err := server.Unmount(); err != nil {
			t.Errorf("round %d: unmount: %v", round, err)
		}
	}
	t.Cleanup(unmount) // also when the test fails half-way

	path := filepath.Join(mnt, "store.db")
	// The store is created (and its creation synced by the store's
	// own FULL mode) first; the run then reopens it.
	m, err := monster.Open(ctx, path, nil)
	if err != nil {
		t.Fatalf("round %d: create store: %v", round, err)
	}
	if err := m.Close(); err != nil {
		t.Fatalf("round %d: close new store: %v", round, err)
	}
	if syncOff {
		unsafePaths.Store(mnt, struct{}{})
		defer unsafePaths.Delete(mnt)
	}
	m, err = monster.Open(ctx, path, nil)
	if err != nil {
		t.Fatalf("round %d: open store: %v", round, err)
	}
	closed := false
	t.Cleanup(func() {
		if !closed {
			_ = m.Close()
		}
	})

	const producers = 4
	// Up to 3,000 events of ~1 KiB: enough WAL for the store's
	// checkpoints (every 8 MiB of WAL) to run before some cuts.
	// Under the race detector, up to 300 (too slow otherwise; no
	// checkpoint then).
	maxEvents := 3000
	if raceEnabled {
		maxEvents = 300
	}
	cutAfter := 1 + rng.IntN(maxEvents)
	var (
		mu        sync.Mutex
		attempted = map[string]bool{}
		acked     = map[string]bool{}
		nAcked    atomic.Int64
		reached   = make(chan struct{})
		reachOnce sync.Once
		stop      = make(chan struct{})
		wg        sync.WaitGroup
	)
	for p := range producers {
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				id := fmt.Sprintf("p%d-%d", p, i)
				mu.Lock()
				attempted[id] = true
				mu.Unlock()
				_, err := m.Log(ctx, "power.test", map[string]string{"id": id, "pad": pad})
				if err != nil {
					// After the cut every write fails; before it,
					// nothing should.
					return
				}
				mu.Lock()
				acked[id] = true
				mu.Unlock()
				if nAcked.Add(1) >= int64(cutAfter) {
					reachOnce.Do(func() { close(reached) })
				}
			}
		})
	}
	select {
	case <-reached:
	case <-ctx.Done():
		t.Fatalf("round %d: %d of %d events acknowledged before the deadline", round, nAcked.Load(), cutAfter)
	}
	cfs.Cut()
	close(stop)
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		t.Fatalf("round %d: producers still running after the cut", round)
	}
	_ = m.Close() // fails: the disk is gone
	closed = true
	unmount()

	// Reopen the backing file directly, not through FUSE.
	res := cutResult{acknowledged: len(acked), syncs: cfs.Syncs(), dbSyncs: cfs.DBSyncs()}
	stored := filepath.Join(backing, "store.db")
	m2, err := monster.Open(ctx, stored, nil)
	if err != nil {
		res.problems = append(res.problems, fmt.Sprintf("reopen: %v", err))
		res.lost = len(acked)
		return res
	}
	seen := map[string]bool{}
	var after int64
	for {
		evs, err := m2.Events(ctx, after, 1000)
		if err != nil {
			res.problems = append(res.problems, fmt.Sprintf("read: %v", err))
			break
		}
		if len(evs) == 0 {
			break
		}
		for _, e := range evs {
			after = e.Position
			var id string
			var d struct{ ID string }
			if json.Unmarshal(e.Data, &d) == nil {
				id = d.ID
			}
			if !attempted[id] || seen[id] {
				res.invented++
				continue
			}
			seen[id] = true
			res.stored++
		}
	}
	if err := m2.Close(); err != nil {
		res.problems = append(res.problems, fmt.Sprintf("close reopened store: %v", err))
	}
	for id := range acked {
		if !seen[id] {
			res.lost++
		}
	}
	if msg := integrityCheck(ctx, stored); msg != "ok" {
		res.problems = append(res.problems, "integrity_check: "+msg)
	}
	return res
}

// integrityCheck runs SQLite's integrity check on the file at path: a
// store that needs a repair after a power loss fails it.
func integrityCheck(ctx context.Context, path string) string {
	db, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		return err.Error()
	}
	defer db.Close()
	var msg string
	if err := db.QueryRowContext(ctx, "PRAGMA integrity_check").Scan(&msg); err != nil {
		return err.Error()
	}
	return msg
}

func powerLoss(t *testing.T, syncOff bool) cutResult {
	requireFUSE(t)
	registerUnsafeHook()
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 0))
	var total cutResult
	for round := range *cuts {
		r := runCut(t, round, syncOff, rng)
		if t.Failed() {
			break
		}
		total.acknowledged += r.acknowledged
		total.stored += r.stored
		total.lost += r.lost
		total.invented += r.invented
		total.syncs += r.syncs
		total.dbSyncs += r.dbSyncs
		for _, p := range r.problems {
			total.problems = append(total.problems, fmt.Sprintf("cut %d: %s", round, p))
		}
		if r.lost > 0 || r.invented > 0 {
			t.Logf("cut %d: acknowledged %d, stored %d, lost %d, invented %d", round, r.acknowledged, r.stored, r.lost, r.invented)
		}
	}
	mode := "synchronous=FULL"
	if syncOff {
		mode = "synchronous=OFF"
	}
	fmt.Printf("power loss, SQLite %s: cuts %d, acknowledged %d, stored %d, lost %d, invented %d (file syncs %d, of the .db file %d)\n",
		mode, *cuts, total.acknowledged, total.stored, total.lost, total.invented, total.syncs, total.dbSyncs)
	return total
}

// TestPowerLoss: every event whose Log returned nil before a power cut is
// in the store afterwards, nothing is invented, and the file needs no
// repair.
func TestPowerLoss(t *testing.T) {
	r := powerLoss(t, false)
	if r.lost > 0 || r.invented > 0 {
		t.Errorf("%d acknowledged events lost, %d invented", r.lost, r.invented)
	}
	for _, p := range r.problems {
		t.Error(p)
	}
}

// TestPowerLossCatchesUnsyncedAcknowledgements: the same run against a
// store that acknowledges before syncing (SQLite with synchronous=OFF)
// must lose acknowledged events, or the check above proves nothing.
func TestPowerLossCatchesUnsyncedAcknowledgements(t *testing.T) {
	r := powerLoss(t, true)
	if r.lost == 0 {
		t.Errorf("synchronous=OFF lost no acknowledged event in %d cuts: the file system does not drop unsynced data", *cuts)
	}
	if r.invented > 0 {
		t.Errorf("%d events invented", r.invented)
	}
}
