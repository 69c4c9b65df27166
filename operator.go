package monster

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/gomonster/monster/store"
)

// Stats is a snapshot of the log and its consumers.
type Stats struct {
	// Head is the position of the last event logged.
	Head int64 `json:"head"`
	// Types counts the events of each type.
	Types map[string]int64 `json:"types"`
	// Consumers is every consumer in the store, and every consumer
	// declared in this Monster that has not started yet (NotStarted), by
	// name.
	Consumers []ConsumerStats `json:"consumers"`
}

// ConsumerStats is a consumer's progress, as stored by the processes
// running it (they save it every Options.CheckpointInterval).
type ConsumerStats struct {
	Name string `json:"name"`
	// Types is the consumer's subscription.
	Types []string `json:"types"`
	// Position is the consumer's lowest partition checkpoint: every event
	// up to it is handled or dead-lettered.
	Position int64 `json:"position"`
	// Lag counts events of subscribed types logged after Position: exact
	// when the consumer is caught up, an upper bound while its partitions
	// progress unevenly.
	Lag int64 `json:"lag"`
	// InFlight is the number of events being handled or retried.
	InFlight int64 `json:"in_flight"`
	// Failures counts failed handler runs, retried or not.
	Failures int64 `json:"failures"`
	// DeadLetters counts events given up on and not yet retried or
	// discarded.
	DeadLetters int64 `json:"dead_letters"`
	// Partitions is the number of partitions; Owners the processes holding
	// them.
	Partitions int      `json:"partitions"`
	Owners     []string `json:"owners,omitempty"`
	// Members is how many partitions each owner holds, by member (the
	// keys are Owners). During a takeover it shows the work moving: a
	// stopped or dead member keeps its partitions until their leases run
	// out (PerPartition says when), while the others go on with theirs.
	Members map[string]int `json:"members,omitempty"`
	// PerPartition is each partition's stored state, by partition number.
	// Position is the lowest of their checkpoints, so one partition held
	// by a dead member holds Position back until its lease expires and a
	// survivor takes it over; here the other partitions' progress shows.
	PerPartition []PartitionStats `json:"per_partition,omitempty"`
	// NotStarted reports a consumer declared in this Monster (Consume)
	// that has not started yet: the store holds nothing of it until Start,
	// Run or StartConsumer first runs it somewhere. Its Position and Lag are
	// then where it would start and what it would have to handle if it
	// started now (from its ConsumerOptions.StartAt), Partitions is its
	// declared count, and it has no owners, failures or dead letters.
	NotStarted bool `json:"not_started,omitempty"`
}

// PartitionStats is one partition of a consumer, as stored by the member
// holding it (saved every Options.CheckpointInterval).
type PartitionStats struct {
	Partition int `json:"partition"`
	// Checkpoint: every event of this partition up to it is handled or
	// dead-lettered.
	Checkpoint int64 `json:"checkpoint"`
	// Owner is the member holding the partition's lease; empty when the
	// partition is free.
	Owner string `json:"owner,omitempty"`
	// LeaseExpires is when Owner's lease runs out unless renewed, in UTC
	// (nil when free). A time in the past means the owner stopped renewing
	// (it died or lost the store) and any member may take the partition.
	LeaseExpires *time.Time `json:"lease_expires,omitempty"`
	// InFlight is the owner's last reported number of events of this
	// partition being handled or retried.
	InFlight int64 `json:"in_flight"`
	// Failures counts failed handler runs in this partition.
	Failures int64 `json:"failures"`
}

// Stats returns counts per type and every consumer's progress.
func (m *Monster) Stats(ctx context.Context) (Stats, error) {
	head, err := m.store.Head(ctx)
	if err != nil {
		return Stats{}, fmt.Errorf("monster: stats: %w", err)
	}
	types, err := m.store.CountByType(ctx, 0)
	if err != nil {
		return Stats{}, fmt.Errorf("monster: stats: %w", err)
	}
	infos, err := m.store.Consumers(ctx)
	if err != nil {
		return Stats{}, fmt.Errorf("monster: stats: %w", err)
	}
	s := Stats{Head: head, Types: types, Consumers: []ConsumerStats{}}
	stored := map[string]bool{}
	for _, info := range infos {
		stored[info.Name] = true
		cs, err := m.consumerStats(ctx, info)
		if err != nil {
			return Stats{}, err
		}
		s.Consumers = append(s.Consumers, cs)
	}
	for _, def := range m.declarations() {
		if stored[def.name] {
			continue
		}
		cs, err := m.notStartedStats(ctx, def)
		if err != nil {
			return Stats{}, err
		}
		s.Consumers = append(s.Consumers, cs)
	}
	sort.Slice(s.Consumers, func(i, j int) bool { return s.Consumers[i].Name < s.Consumers[j].Name })
	return s, nil
}

// ConsumerStats returns one consumer's progress. A consumer declared in
// this Monster that has not started yet is no error: its stats say
// NotStarted. A consumer neither in the store nor declared here gives an
// error matching ErrNotFound.
func (m *Monster) ConsumerStats(ctx context.Context, name string) (ConsumerStats, error) {
	info, err := m.store.Consumer(ctx, name)
	if errors.Is(err, store.ErrNotFound) {
		if def := m.declaration(name); def != nil {
			return m.notStartedStats(ctx, def)
		}
	}
	if err != nil {
		return ConsumerStats{}, err
	}
	return m.consumerStats(ctx, info)
}

// declaration returns the consumer declared as name in this Monster, or
// nil.
func (m *Monster) declaration(name string) *consumerDef {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.consumers[name]
}

// declarations returns the consumers declared in this Monster.
func (m *Monster) declarations() []*consumerDef {
	m.mu.Lock()
	defer m.mu.Unlock()
	defs := make([]*consumerDef, 0, len(m.consumers))
	for _, d := range m.consumers {
		defs = append(defs, d)
	}
	return defs
}

// notStartedStats is the progress of a declared consumer that is not in
// the store yet: where it would start now, and what it would have to do.
func (m *Monster) notStartedStats(ctx context.Context, def *consumerDef) (ConsumerStats, error) {
	start, err := def.opts.StartAt.checkpoint(ctx, m)
	if err != nil {
		return ConsumerStats{}, fmt.Errorf("monster: stats of consumer %q (not started): %w", def.name, err)
	}
	cs := ConsumerStats{Name: def.name, Types: def.handler.patterns(), Position: start, Partitions: def.opts.Partitions, NotStarted: true}
	if cs.Lag, err = m.lagAfter(ctx, start, cs.Types); err != nil {
		return ConsumerStats{}, fmt.Errorf("monster: stats of consumer %q: %w", def.name, err)
	}
	return cs, nil
}

// lagAfter counts the events of types matching patterns after position.
func (m *Monster) lagAfter(ctx context.Context, position int64, patterns []string) (int64, error) {
	after, err := m.store.CountByType(ctx, position)
	if err != nil {
		return 0, err
	}
	var lag int64
	for typ, n := range after {
		for _, p := range patterns {
			if matchPattern(p, typ) {
				lag += n
				break
			}
		}
	}
	return lag, nil
}

func (m *Monster) consumerStats(ctx context.Context, info store.ConsumerInfo) (ConsumerStats, error) {
	cs := ConsumerStats{Name: info.Name, Types: info.Types, DeadLetters: info.DeadLetters, Partitions: len(info.Partitions)}
	for i, p := range info.Partitions {
		if i == 0 || p.Checkpoint < cs.Position {
			cs.Position = p.Checkpoint
		}
		cs.InFlight += p.InFlight
		cs.Failures += p.Failures
		ps := PartitionStats{Partition: p.Partition, Checkpoint: p.Checkpoint, Owner: p.Owner, InFlight: p.InFlight, Failures: p.Failures}
		if p.Owner != "" {
			if cs.Members == nil {
				cs.Members = map[string]int{}
			}
			cs.Members[p.Owner]++
			if !p.LeaseExpires.IsZero() {
				expires := p.LeaseExpires.UTC()
				ps.LeaseExpires = &expires
			}
		}
		cs.PerPartition = append(cs.PerPartition, ps)
	}
	for o := range cs.Members {
		cs.Owners = append(cs.Owners, o)
	}
	sort.Strings(cs.Owners)
	sort.Slice(cs.PerPartition, func(i, j int) bool { return cs.PerPartition[i].Partition < cs.PerPartition[j].Partition })
	var err error
	if cs.Lag, err = m.lagAfter(ctx, cs.Position, info.Types); err != nil {
		return ConsumerStats{}, fmt.Errorf("monster: stats of consumer %q: %w", info.Name, err)
	}
	return cs, nil
}

// ResetConsumer moves a consumer to start: Beginning (replay everything),
// End (skip everything logged so far), AtPosition or AtTime. Processes
// running the consumer notice within Options.LeaseTTL/3 and go on from
// there; events they were handling may be handled again. A consumer that
// has not started yet (ConsumerStats.NotStarted) cannot be reset: the
// error, matching ErrNotFound, says it starts at its
// ConsumerOptions.StartAt.
func (m *Monster) ResetConsumer(ctx context.Context, name string, start StartPosition) error {
	pos, err := start.checkpoint(ctx, m)
	if err != nil {
		return fmt.Errorf("monster: reset consumer %q: %w", name, err)
	}
	if err := m.store.ResetConsumer(ctx, store.ResetConsumerParams{Consumer: name, Position: pos}); err != nil {
		if def := m.declaration(name); def != nil && errors.Is(err, store.ErrNotFound) {
			return fmt.Errorf("%w: cannot reset consumer %q: it has not started yet, and will start at %s (its ConsumerOptions.StartAt) when Start, Run or StartConsumer first runs it; reset it after that, or declare it with another StartAt",
				ErrNotFound, name, def.opts.StartAt)
		}
		return fmt.Errorf("monster: reset consumer %q to %s: %w", name, start, err)
	}
	return nil
}

// DeadLetter is an event a consumer gave up on after its retry policy. It
// stays in the consumer's dead letters until it is retried with success
// (RetryDeadLetters) or discarded (DiscardDeadLetters); the consumer has
// moved on past it.
type DeadLetter struct {
	// Consumer is the consumer that gave up on the event.
	Consumer string `json:"consumer"`
	// EventID is the event's ID; EventByID returns the event.
	EventID string `json:"event_id"`
	// Type is the event's type.
	Type string `json:"type"`
	// Position is the event's position in the log.
	Position int64 `json:"position"`
	// Partition is the consumer's partition the event belongs to.
	Partition int `json:"partition"`
	// Attempts is how many times the handler ran for the event, counting
	// runs from earlier retries of the dead letter.
	Attempts int `json:"attempts"`
	// Error is the handler's last error message.
	Error string `json:"error"`
	// FailedAt is when the consumer gave up, in UTC.
	FailedAt time.Time `json:"failed_at"`
	// RetryRequested reports that RetryDeadLetters asked for the event to be
	// run again, and that no process holding its partition has done so yet.
	RetryRequested bool `json:"retry_requested"`
}

func deadLetterFromStore(dl store.DeadLetter) DeadLetter {
	return DeadLetter{
		Consumer: dl.Consumer, EventID: dl.EventID, Type: dl.Type, Position: dl.Position,
		Partition: dl.Partition, Attempts: dl.Attempts, Error: dl.Error, FailedAt: dl.FailedAt,
		RetryRequested: dl.RetryRequested,
	}
}

// DeadLetters lists a consumer's dead letters in log order, up to limit (0
// for all). A consumer declared in this Monster that has not started yet
// has none: the list is empty. A consumer neither in the store nor
// declared here gives an error matching ErrNotFound.
func (m *Monster) DeadLetters(ctx context.Context, consumer string, limit int) ([]DeadLetter, error) {
	if _, err := m.store.Consumer(ctx, consumer); err != nil {
		if errors.Is(err, store.ErrNotFound) && m.declaration(consumer) != nil {
			return []DeadLetter{}, nil
		}
		return nil, err
	}
	dls, err := m.store.DeadLetters(ctx, store.DeadLetterQuery{Consumer: consumer, Limit: limit})
	if err != nil {
		return nil, err
	}
	out := make([]DeadLetter, len(dls))
	for i, dl := range dls {
		out[i] = deadLetterFromStore(dl)
	}
	return out, nil
}

// RetryDeadLetters asks the processes running the consumer to run the
// given dead letters again (all of them when no ID is given), with a fresh
// retry policy. A success removes the dead letter; a failure puts it back
// with its attempts added up. It returns how many were marked, or an error
// matching ErrNotFound (and marks none) if an ID names no dead letter. A
// consumer declared here that has not started yet has no dead letters:
// retrying all of them marks 0.
func (m *Monster) RetryDeadLetters(ctx context.Context, consumer string, eventIDs ...string) (int, error) {
	n, err := m.store.RequestRetry(ctx, store.DeadLetterSelection{Consumer: consumer, IDs: nilIfEmpty(eventIDs)})
	return m.noneIfNotStarted(consumer, eventIDs, n, err)
}

// DiscardDeadLetters removes dead letters for good (all of the consumer's
// when no ID is given); the events stay in the log. It returns how many it
// removed, or an error matching ErrNotFound (and removes none). A consumer
// declared here that has not started yet has no dead letters: discarding
// all of them removes 0.
func (m *Monster) DiscardDeadLetters(ctx context.Context, consumer string, eventIDs ...string) (int, error) {
	n, err := m.store.DeleteDeadLetters(ctx, store.DeadLetterSelection{Consumer: consumer, IDs: nilIfEmpty(eventIDs)})
	return m.noneIfNotStarted(consumer, eventIDs, n, err)
}

// noneIfNotStarted turns the store's ErrNotFound for all the dead letters
// of a declared consumer (with no IDs, only the consumer can be missing)
// into 0 of them.
func (m *Monster) noneIfNotStarted(consumer string, ids []string, n int, err error) (int, error) {
	if len(ids) == 0 && errors.Is(err, store.ErrNotFound) && m.declaration(consumer) != nil {
		return 0, nil
	}
	return n, err
}

func nilIfEmpty(ids []string) []string {
	if len(ids) == 0 {
		return nil
	}
	return ids
}

// Events returns up to limit events after position after, in log order
// (limit 0: 100).
func (m *Monster) Events(ctx context.Context, after int64, limit int) ([]RawEvent, error) {
	if limit <= 0 {
		limit = 100
	}
	evs, err := m.store.Read(ctx, store.ReadParams{After: after, Limit: limit})
	if err != nil {
		return nil, fmt.Errorf("monster: read events: %w", err)
	}
	out := make([]RawEvent, len(evs))
	for i, e := range evs {
		out[i] = rawFromStore(e)
	}
	return out, nil
}

// EventByID returns one event, or an error matching ErrNotFound.
func (m *Monster) EventByID(ctx context.Context, id string) (RawEvent, error) {
	e, err := m.store.EventByID(ctx, id)
	if err != nil {
		return RawEvent{}, err
	}
	return rawFromStore(e), nil
}
