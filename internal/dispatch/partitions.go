package dispatch

import (
	"time"

	"github.com/gomonster/monster/store"
)

// This file is the lease keeper's side of the Dispatcher: which partitions
// are held, handing them over, and their checkpoints.

// Held describes a partition this process holds.
type Held struct {
	Partition int
	// Draining: being handed over; no new item of it starts.
	Draining bool
}

// Held returns the partitions held.
func (d *Dispatcher) Held() []Held {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := make([]Held, 0, len(d.parts))
	for n, p := range d.parts {
		out = append(out, Held{Partition: n, Draining: p.draining})
	}
	return out
}

// Holds reports whether partition n is held.
func (d *Dispatcher) Holds(n int) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	_, ok := d.parts[n]
	return ok
}

// Drain marks the held ones among partitions as draining (no item of
// theirs starts from then on) and returns those with no handler running:
// they can be released without any event running in two members at once.
func (d *Dispatcher) Drain(partitions []int) (idle []int) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, n := range partitions {
		p := d.parts[n]
		if p == nil {
			continue
		}
		p.draining = true
		if p.running == 0 {
			idle = append(idle, n)
		}
	}
	return idle
}

// Lose forgets the given partitions: their unfinished items are dropped.
func (d *Dispatcher) Lose(partitions []int) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, n := range partitions {
		if p := d.parts[n]; p != nil {
			d.loseLocked(p)
		}
	}
}

// Apply takes the partitions a claim returned as the ones held, with
// leases valid until until. A partition held before and missing from held,
// or claimed back since (another epoch or checkpoint: an operator's reset),
// is lost and starts again from the stored checkpoint; one not held before
// is taken on at its checkpoint. It reports whether the set changed, and
// then wakes the reader.
func (d *Dispatcher) Apply(held []store.PartitionInfo, until time.Time) (changed bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.leaseUntil = until
	got := make(map[int]store.PartitionInfo, len(held))
	for _, p := range held {
		got[p.Partition] = p
	}
	for n, p := range d.parts {
		info, ok := got[n]
		if !ok || info.Epoch != p.epoch || info.Checkpoint != p.saved {
			d.loseLocked(p)
			changed = true
		}
	}
	for n, info := range got {
		if _, ok := d.parts[n]; !ok {
			d.parts[n] = &partition{n: n, epoch: info.Epoch, fetched: info.Checkpoint, saved: info.Checkpoint, inFlight: info.InFlight}
			changed = true
		}
	}
	if changed {
		signal(d.claimed)
	}
	return changed
}

// Progress is what moved since the last saved checkpoints.
type Progress struct {
	// Checkpoints to save, one per partition that moved.
	Checkpoints []store.Checkpoint
	parts       []*partition
}

// Progress returns the checkpoints that moved (or whose failure count or
// in-flight figure changed) since they were last saved.
func (d *Dispatcher) Progress() Progress {
	d.mu.Lock()
	defer d.mu.Unlock()
	var pr Progress
	for _, p := range d.parts {
		cp := p.checkpoint()
		if cp > p.saved || p.failures != 0 || p.undone != p.inFlight {
			pr.Checkpoints = append(pr.Checkpoints, store.Checkpoint{Partition: p.n, Position: cp, FailuresDelta: p.failures, InFlight: p.undone})
			pr.parts = append(pr.parts, p)
		}
	}
	return pr
}

// Saved records that pr's checkpoints are stored.
func (d *Dispatcher) Saved(pr Progress) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for i, p := range pr.parts {
		cp := pr.Checkpoints[i]
		p.saved = max(p.saved, cp.Position)
		p.failures -= cp.FailuresDelta
		p.inFlight = cp.InFlight
	}
}
