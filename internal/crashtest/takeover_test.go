package crashtest

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/gomonster/monster"
)

// TestTakeoverDuringBackfill is the scale-out scenario under load: two
// processes of one consumer work through a backlog, one is killed with
// SIGKILL, and the survivor takes over its partitions while it is still
// reading the backlog (so the claim lands while its reader is busy, ahead
// of the dead process's checkpoints). Every event must still be handled, in
// per-key order (the guarantees AtLeastOnce, NoSkippedEvents, Order and
// ScaleOut in monster's package documentation).
func TestTakeoverDuringBackfill(t *testing.T) {
	h := newHarness(t)
	dir := h.dir
	storePath := filepath.Join(dir, "backfill.db")
	journalPath := filepath.Join(dir, "handled.journal")
	const consumer = "fill"
	const partitions = 12
	const backlog = 6000
	ctx := context.Background()

	m, err := monster.Open(ctx, storePath, &monster.Options{Logger: quietLogger})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	members := []string{"fill-a", "fill-b"}
	victim := h.start(members[0], consumerArgs(storePath, journalPath, members[0], consumer, partitions, "-handle-delay", "4ms")...)
	survivor := h.start(members[1], consumerArgs(storePath, journalPath, members[1], consumer, partitions, "-handle-delay", "4ms")...)

	handledBy := func() (map[int]int, int, error) {
		j, err := readJournal(journalPath)
		if err != nil {
			return nil, 0, err
		}
		byPid := map[int]int{}
		unique := map[string]bool{}
		for _, l := range j.handled {
			byPid[l.pid]++
			unique[l.id] = true
		}
		return byPid, len(unique), nil
	}
	owners := func() []string {
		cs, err := m.ConsumerStats(ctx, consumer)
		if err != nil {
			return []string{"error: " + err.Error()}
		}
		return cs.Owners
	}

	// Share the partitions first: a process that joins while another works
	// through a backlog gets none until the backlog is done (the holder
	// releases only idle partitions).
	waitFor(t, "both processes to hold partitions", 30*time.Second, func() (bool, string) {
		mustBeAlive(t, victim, survivor)
		got := owners()
		return slices.Equal(got, members), fmt.Sprintf("owners %v", got)
	})
	seq := map[string]int{}
	var logged []storeEvent
	for len(logged) < backlog {
		batch := make([]monster.Entry, 500)
		for i := range batch {
			key := fmt.Sprintf("key-%02d", (len(logged)+i)%numKeys)
			seq[key]++
			batch[i] = monster.Entry{Type: "crash.event", Key: key, Data: map[string]any{"key": key, "seq": seq[key]}}
		}
		evs, err := m.LogBatch(ctx, batch)
		if err != nil {
			t.Fatal(err)
		}
		for i, e := range evs {
			d := batch[i].Data.(map[string]any)
			logged = append(logged, storeEvent{position: e.Position, id: e.ID, key: e.Key, seq: d["seq"].(int)})
		}
	}

	waitFor(t, "both processes to hold partitions and handle events", 30*time.Second, func() (bool, string) {
		mustBeAlive(t, victim, survivor)
		byPid, _, err := handledBy()
		if err != nil {
			return false, err.Error()
		}
		got := owners()
		return slices.Equal(got, members) && byPid[victim.pid] >= 50 && byPid[survivor.pid] >= 50,
			fmt.Sprintf("owners %v, handled by pid %v", got, byPid)
	})
	victim.kill(t)
	killedAt := time.Now()
	if j, err := readJournal(journalPath); err == nil {
		t.Logf("SIGKILL to %s (pid %d) after journal record %d", victim.label, victim.pid, len(j.handled)+len(j.torn))
	}

	waitFor(t, "the survivor to take over", 30*time.Second, func() (bool, string) {
		mustBeAlive(t, survivor)
		got := owners()
		return slices.Equal(got, members[1:]), fmt.Sprintf("owners %v", got)
	})
	_, handledAtTakeover, err := handledBy()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("takeover %v after SIGKILL, with %d of %d events handled", time.Since(killedAt).Round(time.Millisecond), handledAtTakeover, backlog)
	if handledAtTakeover >= backlog {
		t.Logf("note: the backlog was done before the takeover; this run did not exercise a claim during backfill")
	}

	// Wait for the consumer's checkpoints to reach the head, not for the
	// journal to be complete: a skipped event is behind a checkpoint and
	// would never be handled.
	waitFor(t, "the consumer to reach the head of the log", 60*time.Second, func() (bool, string) {
		mustBeAlive(t, survivor)
		cs, err := m.ConsumerStats(ctx, consumer)
		if err != nil {
			return false, err.Error()
		}
		return cs.Lag == 0 && cs.Position == logged[len(logged)-1].position,
			fmt.Sprintf("position %d, lag %d, in flight %d", cs.Position, cs.Lag, cs.InFlight)
	})
	if err := survivor.stop(t, 20*time.Second); err != nil {
		t.Errorf("survivor after SIGTERM: %v\n%s", err, tail(survivor.logPath, 20))
	}

	j, err := readJournal(journalPath)
	if err != nil {
		t.Fatal(err)
	}
	rep, problems := checkConsumer(consumer, logged, j.handled)
	for _, p := range problems {
		t.Error(p)
	}
	for _, o := range j.overlaps {
		t.Errorf("same-key events ran at once: %s", o)
	}
	if len(j.torn) > 1 {
		t.Errorf("%d torn journal records: %v", len(j.torn), j.torn)
	}
	for _, e := range h.workerErrors() {
		t.Errorf("worker error: %s", e)
	}
	t.Logf("events logged: %d; handled: %d handler runs, %d events, %d redeliveries; by pid %v (killed: %d)",
		len(logged), rep.lines, rep.unique, rep.redelivered, rep.pids, victim.pid)
}
