package crashtest

import (
	"context"
	"flag"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"sort"
	"testing"
	"time"

	"github.com/gomonster/monster"
)

var (
	crashRounds = flag.Int("crash.rounds", 5, "rounds of random SIGKILLs in TestCrash (the full form is 20)")
	crashSeed   = flag.Uint64("crash.seed", 0, "seed of TestCrash's random kills (0: a random seed, printed)")
)

// TestCrash runs a producer process and two consumer processes (two
// different consumers, so each must get every event) on one SQLite file,
// SIGKILLs them at random moments and restarts them, round after round,
// while events are logged. Then it runs everything to completion without
// kills and checks (the guarantees AtLeastOnce, NoSkippedEvents, Order,
// Durable and BadInput in monster's package documentation):
//
//   - every event whose Log returned nil (the producer journal) is stored,
//     and was handled at least once by each consumer, as was every other
//     stored event;
//   - no consumer handled an event that is not in the store;
//   - per consumer and key, the first handlings follow the log order;
//   - the store opens normally and passes PRAGMA integrity_check.
func TestCrash(t *testing.T) {
	h := newHarness(t)
	seed := *crashSeed
	if seed == 0 {
		seed = rand.Uint64()
	}
	rounds := *crashRounds
	t.Logf("seed %d, %d rounds (rerun with -crash.seed=%d -crash.rounds=%d)", seed, rounds, seed, rounds)
	rng := rand.New(rand.NewPCG(seed, 0x6d6f6e73746572))
	began := time.Now()

	dir := h.dir
	storePath := filepath.Join(dir, "crash.db")
	producerJournal := filepath.Join(dir, "producer.journal")
	handledJournal := filepath.Join(dir, "handled.journal")
	consumers := []string{"alpha", "beta"}
	const partitions = 8

	producerArgs := func(count int) []string {
		return []string{"-store", storePath, "-journal", producerJournal,
			"-keys", fmt.Sprint(numKeys), "-writers", "4", "-interval", "5ms",
			"-count", fmt.Sprint(count), "produce"}
	}
	// alpha gets a new member ID at each start (the default kind: its
	// partitions stay leased to the dead process until the lease runs
	// out); beta keeps one (a configured MemberID: a restart reclaims its
	// own leases at once).
	serial := 0
	startConsumer := func(name string) *proc {
		serial++
		member := name + "-fixed"
		if name == "alpha" {
			member = fmt.Sprintf("%s-%d", name, serial)
		}
		return h.start(name, consumerArgs(storePath, handledJournal, member, name, partitions)...)
	}

	roles := []string{"producer", "alpha", "beta"}
	running := map[string]*proc{}
	kills := map[string]int{}
	starts := map[string]int{}
	startRole := func(role string) {
		starts[role]++
		if role == "producer" {
			running[role] = h.start(role, producerArgs(0)...)
		} else {
			running[role] = startConsumer(role)
		}
	}

	for round := 1; round <= rounds; round++ {
		for _, role := range roles {
			if p := running[role]; p == nil || p.exited() {
				startRole(role)
			}
		}
		// Each process is killed at a random moment of the round, or
		// (one time in five) lives on into the next round.
		roundStart := time.Now()
		window := 300*time.Millisecond + time.Duration(rng.Int64N(int64(1700*time.Millisecond)))
		type kill struct {
			at   time.Duration
			role string
		}
		var plan []kill
		for _, role := range roles {
			if rng.IntN(5) > 0 {
				plan = append(plan, kill{time.Duration(rng.Int64N(int64(window))), role})
			}
		}
		sort.Slice(plan, func(i, j int) bool { return plan[i].at < plan[j].at })
		for _, k := range plan {
			time.Sleep(time.Until(roundStart.Add(k.at))) // the test's randomness
			running[k.role].kill(t)
			kills[k.role]++
		}
		time.Sleep(time.Until(roundStart.Add(window)))
		for _, role := range roles {
			if p := running[role]; !p.killed {
				mustBeAlive(t, p)
			}
		}
	}
	t.Logf("%d rounds of kills in %v: kills %v, starts %v", rounds, time.Since(began).Round(time.Millisecond), kills, starts)

	// To completion, without kills: a producer that logs a last batch and
	// exits, both consumers until they have handled everything.
	if p := running["producer"]; p != nil && !p.exited() {
		if err := p.stop(t, 20*time.Second); err != nil {
			t.Errorf("producer (pid %d) after SIGTERM: %v", p.pid, err)
		}
	}
	producer := h.start("producer", producerArgs(200)...)
	for _, name := range consumers {
		if p := running[name]; p == nil || p.exited() {
			startRole(name)
		}
	}
	finalStart := time.Now()
	if err := producer.wait(t, 60*time.Second); err != nil {
		t.Fatalf("final producer: %v\n%s", err, tail(producer.logPath, 20))
	}

	ctx := context.Background()
	m, err := monster.Open(ctx, storePath, &monster.Options{Logger: quietLogger})
	if err != nil {
		t.Fatalf("open the store: %v", err)
	}
	head, err := m.Store().Head(ctx)
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "both consumers to catch up", 120*time.Second, func() (bool, string) {
		status := ""
		ok := true
		for _, name := range consumers {
			mustBeAlive(t, running[name])
			cs, err := m.ConsumerStats(ctx, name)
			if err != nil {
				return false, err.Error()
			}
			status += fmt.Sprintf("%s: position %d of %d, lag %d, owners %v; ", name, cs.Position, head, cs.Lag, cs.Owners)
			ok = ok && cs.Position >= head && cs.Lag == 0
		}
		return ok, status
	})
	for _, name := range consumers {
		cs, err := m.ConsumerStats(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		if cs.DeadLetters != 0 {
			t.Errorf("consumer %s has %d dead letters; its handler never fails", name, cs.DeadLetters)
		}
	}
	if err := m.Close(); err != nil {
		t.Errorf("close: %v", err)
	}
	for _, name := range consumers {
		p := running[name]
		if err := p.stop(t, 20*time.Second); err != nil {
			t.Errorf("consumer %s (pid %d) after SIGTERM: %v\n%s", name, p.pid, err, tail(p.logPath, 20))
		}
	}
	t.Logf("final run to completion: %v", time.Since(finalStart).Round(time.Millisecond))

	// Every process is gone: the store must open as it is.
	count, stored := integrity(t, storePath)
	for _, p := range checkLogOrder(stored) {
		t.Error(p)
	}

	pj, err := readJournal(producerJournal)
	if err != nil {
		t.Fatal(err)
	}
	byID := map[string]storeEvent{}
	for _, e := range stored {
		byID[e.id] = e
	}
	lost := 0
	for _, p := range pj.produced {
		e, ok := byID[p.id]
		switch {
		case !ok:
			lost++
			if lost <= 10 {
				t.Errorf("event %s (%s/%d): Log returned nil, but it is not in the store", p.id, p.key, p.seq)
			}
		case e.key != p.key || e.seq != p.seq:
			t.Errorf("event %s: logged as %s/%d, stored as %s/%d", p.id, p.key, p.seq, e.key, e.seq)
		}
	}
	if lost > 0 {
		t.Errorf("%d of %d acknowledged events are not in the store", lost, len(pj.produced))
	}
	if len(pj.torn) > kills["producer"] {
		t.Errorf("%d torn producer journal records, more than the %d producer kills: %v", len(pj.torn), kills["producer"], pj.torn)
	}

	hj, err := readJournal(handledJournal)
	if err != nil {
		t.Fatal(err)
	}
	if len(hj.torn) > kills["alpha"]+kills["beta"] {
		t.Errorf("%d torn handled-journal records, more than the %d consumer kills: %v", len(hj.torn), kills["alpha"]+kills["beta"], hj.torn)
	}
	for _, o := range hj.overlaps {
		t.Errorf("same-key events ran at once: %s", o)
	}
	var reports []consumerReport
	for _, name := range consumers {
		rep, problems := checkConsumer(name, stored, hj.handled)
		for _, p := range problems {
			t.Error(p)
		}
		reports = append(reports, rep)
	}
	for _, e := range h.workerErrors() {
		t.Errorf("worker error: %s", e)
	}

	t.Logf("events logged: %d in the store, %d acknowledged in the producer journal", count, len(pj.produced))
	for _, rep := range reports {
		t.Logf("consumer %s: handled %d events in %d handler runs by %d processes; %d redeliveries; %d same-key overlaps",
			rep.name, rep.unique, rep.lines, len(rep.pids), rep.redelivered, rep.overlaps)
	}
	t.Logf("kills: producer %d, alpha %d, beta %d (total %d); torn journal records: producer %d, handled %d; total time %v",
		kills["producer"], kills["alpha"], kills["beta"], kills["producer"]+kills["alpha"]+kills["beta"],
		len(pj.torn), len(hj.torn), time.Since(began).Round(time.Millisecond))
}
