package crashtest

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/gomonster/monster"
	"github.com/gomonster/monster/internal/crashtest/crashworker"
)

// Timings of the consumer workers: short leases so that a dead process's
// partitions move within the test's patience.
const (
	leaseTTL        = time.Second
	pollInterval    = 20 * time.Millisecond
	checkpointEvery = 50 * time.Millisecond
	numKeys         = 20
)

// consumerArgs are the worker arguments that run consumer name; extra
// flags override the defaults.
func consumerArgs(storePath, journalPath, member, name string, partitions int, extra ...string) []string {
	args := []string{
		"-store", storePath, "-journal", journalPath,
		"-concurrency", "4", "-partitions", fmt.Sprint(partitions),
		"-lease", leaseTTL.String(), "-poll", pollInterval.String(), "-checkpoint", checkpointEvery.String(),
		"-handle-delay", "2ms", "-member", member,
	}
	args = append(args, extra...)
	return append(args, "consume", name)
}

// eventLogger logs events from the test process: numKeys keys, each with
// seq 1, 2, ... in log order, as the producer worker does.
type eventLogger struct {
	mu     sync.Mutex
	events []storeEvent
	err    error
	quit   chan struct{}
	done   chan struct{}
}

func startLogging(m *monster.Monster, pause time.Duration) *eventLogger {
	l := &eventLogger{quit: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(l.done)
		seq := map[string]int{}
		for i := 0; ; i++ {
			// Log is never cancelled: every event it stores is recorded.
			key := fmt.Sprintf("key-%02d", (i*7)%numKeys)
			s := seq[key] + 1
			e, err := m.Log(context.Background(), crashworker.EventType, map[string]any{"key": key, "seq": s}, monster.WithKey(key))
			if err != nil {
				l.mu.Lock()
				l.err = err
				l.mu.Unlock()
				return
			}
			seq[key] = s
			l.mu.Lock()
			l.events = append(l.events, storeEvent{position: e.Position, id: e.ID, key: key, seq: s})
			l.mu.Unlock()
			select { // pacing, not synchronisation
			case <-l.quit:
				return
			case <-time.After(pause):
			}
		}
	}()
	return l
}

func (l *eventLogger) count() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.events)
}

func (l *eventLogger) stop() ([]storeEvent, error) {
	select {
	case <-l.quit:
	default:
		close(l.quit)
	}
	<-l.done
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.events), l.err
}

// ScaleOut configures RunScaleOut.
type ScaleOut struct {
	// Worker is the worker command's binary (see BuildWorker); it must
	// open Store.
	Worker string
	// Store is the store's path or URL, which the test process and the
	// workers pass to monster.Open. The store must be empty.
	Store string
}

// RunScaleOut runs one consumer in three worker processes on one store,
// kills one of them with SIGKILL while the test process logs events, and
// checks that the survivors take over its partitions within the lease
// time and that every event is handled, in per-key order, with no two runs
// of one key overlapping across processes (the guarantees ScaleOut,
// AtLeastOnce and Order in monster's package documentation). The test
// process must be able to open cfg.Store (import the store's package).
func RunScaleOut(t *testing.T, cfg ScaleOut) {
	h := newHarnessWith(t, cfg.Worker)
	dir := h.dir
	storePath := cfg.Store
	journalPath := filepath.Join(dir, "handled.journal")
	const consumer = "scale"
	const partitions = 12
	ctx := context.Background()

	m, err := monster.Open(ctx, storePath, &monster.Options{Logger: quietLogger})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	logger := startLogging(m, 3*time.Millisecond)
	defer logger.stop()

	members := []string{"scale-a", "scale-b", "scale-c"}
	procs := make([]*proc, len(members))
	for i, member := range members {
		procs[i] = h.start(member, consumerArgs(storePath, journalPath, member, consumer, partitions)...)
	}

	owners := func() []string {
		cs, err := m.ConsumerStats(ctx, consumer)
		if err != nil {
			return []string{"error: " + err.Error()}
		}
		return cs.Owners
	}

	// The partitions are split between the three processes, and each has
	// handled events.
	waitFor(t, "three processes to share the partitions and handle events", 30*time.Second, func() (bool, string) {
		mustBeAlive(t, procs...)
		got := owners()
		j, err := readJournal(journalPath)
		if err != nil {
			return false, err.Error()
		}
		byPid := map[int]int{}
		for _, l := range j.handled {
			byPid[l.pid]++
		}
		for _, p := range procs {
			if byPid[p.pid] == 0 {
				return false, fmt.Sprintf("owners %v; pid %d (%s) has handled nothing yet", got, p.pid, p.label)
			}
		}
		return slices.Equal(got, members), fmt.Sprintf("owners %v, want %v; handled by pid %v", got, members, byPid)
	})
	t.Logf("partitions shared by %v after %d events", members, logger.count())

	// kill -9 one of them while logging goes on.
	victim, survivors := procs[1], []*proc{procs[0], procs[2]}
	victim.kill(t)
	killedAt := time.Now()
	loggedAtKill := logger.count()

	// Its lease and heartbeat run out within leaseTTL of its last renewal
	// (at most leaseTTL ago); the survivors look every leaseTTL/3. The
	// bound leaves room for a slow, loaded machine.
	bound := 3*leaseTTL + 2*time.Second
	want := []string{members[0], members[2]}
	waitFor(t, "the survivors to take over the killed process's partitions", 30*time.Second, func() (bool, string) {
		mustBeAlive(t, survivors...)
		got := owners()
		return slices.Equal(got, want), fmt.Sprintf("owners %v, want %v", got, want)
	})
	takeover := time.Since(killedAt)
	t.Logf("partitions of %s (pid %d) taken over %v after SIGKILL (bound %v, lease TTL %v)", victim.label, victim.pid, takeover.Round(time.Millisecond), bound, leaseTTL)
	if takeover > bound {
		t.Errorf("takeover took %v, more than %v (lease TTL %v)", takeover, bound, leaseTTL)
	}

	// Keep logging for a while with two processes, then stop.
	afterTakeover := logger.count()
	waitFor(t, "more events to be logged", 30*time.Second, func() (bool, string) {
		n := logger.count()
		return n >= afterTakeover+300, fmt.Sprintf("%d logged", n)
	})
	logged, err := logger.stop()
	if err != nil {
		t.Fatalf("Log: %v", err)
	}

	waitFor(t, "every logged event to be handled", 60*time.Second, func() (bool, string) {
		mustBeAlive(t, survivors...)
		return handledAll(journalPath, consumer, logged)
	})

	// Graceful stop: exit 0, partitions released, nothing left to do.
	for _, p := range survivors {
		if err := p.stop(t, 20*time.Second); err != nil {
			t.Errorf("worker %s (pid %d) after SIGTERM: %v\n%s", p.label, p.pid, err, tail(p.logPath, 20))
		}
	}
	cs, err := m.ConsumerStats(ctx, consumer)
	if err != nil {
		t.Fatal(err)
	}
	if len(cs.Owners) != 0 || cs.Lag != 0 || cs.DeadLetters != 0 {
		t.Errorf("after a graceful stop: owners %v, lag %d, dead letters %d; want none, 0, 0", cs.Owners, cs.Lag, cs.DeadLetters)
	}

	// The log: every event the test logged is stored, in seq order per key.
	stored, err := readEvents(ctx, m)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range checkLogOrder(stored) {
		t.Error(p)
	}
	if len(stored) != len(logged) {
		t.Errorf("the store holds %d events, the test logged %d", len(stored), len(logged))
	}

	j, err := readJournal(journalPath)
	if err != nil {
		t.Fatal(err)
	}
	rep, problems := checkConsumer(consumer, stored, j.handled)
	for _, p := range problems {
		t.Error(p)
	}
	for _, o := range j.overlaps {
		t.Errorf("same-key events ran at once: %s", o)
	}
	if len(j.torn) > 1 { // only the killed process can have been cut mid-write
		t.Errorf("%d torn journal records: %v", len(j.torn), j.torn)
	}
	for _, p := range procs {
		if rep.pids[p.pid] == 0 {
			t.Errorf("worker %s (pid %d) handled no event", p.label, p.pid)
		}
	}
	for _, e := range h.workerErrors() {
		t.Errorf("worker error: %s", e)
	}
	t.Logf("events logged: %d (%d before the kill); handled: %d handler runs, %d events, %d redeliveries; by pid %v (killed: %d)",
		len(logged), loggedAtKill, rep.lines, rep.unique, rep.redelivered, rep.pids, victim.pid)
}
