package monster

import (
	"context"
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
	// Consumers is every consumer in the store, by name.
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
	for _, info := range infos {
		cs, err := m.consumerStats(ctx, info)
		if err != nil {
			return Stats{}, err
		}
		s.Consumers = append(s.Consumers, cs)
	}
	return s, nil
}

// ConsumerStats returns one consumer's progress, or an error matching
// ErrNotFound.
func (m *Monster) ConsumerStats(ctx context.Context, name string) (ConsumerStats, error) {
	info, err := m.store.Consumer(ctx, name)
	if err != nil {
		return ConsumerStats{}, err
	}
	return m.consumerStats(ctx, info)
}

func (m *Monster) consumerStats(ctx context.Context, info store.ConsumerInfo) (ConsumerStats, error) {
	cs := ConsumerStats{Name: info.Name, Types: info.Types, DeadLetters: info.DeadLetters, Partitions: len(info.Partitions)}
	owners := map[string]bool{}
	for i, p := range info.Partitions {
		if i == 0 || p.Checkpoint < cs.Position {
			cs.Position = p.Checkpoint
		}
		cs.InFlight += p.InFlight
		cs.Failures += p.Failures
		if p.Owner != "" {
			owners[p.Owner] = true
		}
	}
	for o := range owners {
		cs.Owners = append(cs.Owners, o)
	}
	sort.Strings(cs.Owners)
	after, err := m.store.CountByType(ctx, cs.Position)
	if err != nil {
		return ConsumerStats{}, fmt.Errorf("monster: stats of consumer %q: %w", info.Name, err)
	}
	for typ, n := range after {
		for _, p := range info.Types {
			if matchPattern(p, typ) {
				cs.Lag += n
				break
			}
		}
	}
	return cs, nil
}

// ResetConsumer moves a consumer to start: Beginning (replay everything),
// End (skip everything logged so far), AtPosition or AtTime. Processes
// running the consumer notice within Options.LeaseTTL/3 and go on from
// there; events they were handling may be handled again.
func (m *Monster) ResetConsumer(ctx context.Context, name string, start StartPosition) error {
	pos, err := start.checkpoint(ctx, m)
	if err != nil {
		return fmt.Errorf("monster: reset consumer %q: %w", name, err)
	}
	if err := m.store.ResetConsumer(ctx, store.ResetConsumerParams{Consumer: name, Position: pos}); err != nil {
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
// for all).
func (m *Monster) DeadLetters(ctx context.Context, consumer string, limit int) ([]DeadLetter, error) {
	if _, err := m.store.Consumer(ctx, consumer); err != nil {
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
// matching ErrNotFound (and marks none) if an ID names no dead letter.
func (m *Monster) RetryDeadLetters(ctx context.Context, consumer string, eventIDs ...string) (int, error) {
	return m.store.RequestRetry(ctx, store.DeadLetterSelection{Consumer: consumer, IDs: nilIfEmpty(eventIDs)})
}

// DiscardDeadLetters removes dead letters for good (all of the consumer's
// when no ID is given); the events stay in the log. It returns how many it
// removed, or an error matching ErrNotFound (and removes none).
func (m *Monster) DiscardDeadLetters(ctx context.Context, consumer string, eventIDs ...string) (int, error) {
	return m.store.DeleteDeadLetters(ctx, store.DeadLetterSelection{Consumer: consumer, IDs: nilIfEmpty(eventIDs)})
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
