// Package memstore is an in-memory [store.Store] for tests and examples.
//
// It keeps everything in one process's memory behind one mutex: nothing
// survives Close, and it cannot be shared between processes. Because every
// append takes the same lock, positions become visible in order and the
// no-skip rule holds trivially. Open it with monster.Open(ctx, "memory://",
// nil) or pass New() to monster.New.
package memstore

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/gomonster/monster/store"
)

// Store is an in-memory store. The zero value is not usable; call New.
type Store struct {
	mu        sync.Mutex
	closed    bool
	events    []store.Event // events[i].Position == i+1
	byID      map[string]int
	byIdem    map[string]int
	counts    map[string]int64
	consumers map[string]*consumer
}

type consumer struct {
	info    store.ConsumerInfo
	members map[string]time.Time
	dead    map[string]store.DeadLetter
}

var _ store.Store = (*Store)(nil)

var errClosed = errors.New("monster: memstore: store is closed")

// New returns an empty store.
func New() *Store {
	return &Store{
		byID:      map[string]int{},
		byIdem:    map[string]int{},
		counts:    map[string]int64{},
		consumers: map[string]*consumer{},
	}
}

func (s *Store) lock(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return errClosed
	}
	return nil
}

// Append implements store.Store.
func (s *Store) Append(ctx context.Context, events []store.NewEvent) ([]store.AppendResult, error) {
	if err := s.lock(ctx); err != nil {
		return nil, err
	}
	defer s.mu.Unlock()
	// Check first so that a bad batch stores nothing.
	if err := store.ValidateNewEvents("memstore append", events, time.Time{}, time.Time{}); err != nil {
		return nil, err
	}
	ids := map[string]bool{}
	for _, e := range events {
		if _, dup := s.byID[e.ID]; dup || ids[e.ID] {
			return nil, fmt.Errorf("monster: memstore append: duplicate event id %q", e.ID)
		}
		ids[e.ID] = true
	}
	results := make([]store.AppendResult, len(events))
	for i, e := range events {
		if e.IdempotencyKey != "" {
			if at, ok := s.byIdem[e.IdempotencyKey]; ok {
				results[i] = store.AppendResult{Event: s.events[at], Duplicate: true}
				continue
			}
		}
		stored := store.Event{
			ID: e.ID, Type: e.Type, Position: int64(len(s.events) + 1), Time: e.Time.UTC(),
			Key: e.Key, Data: slices.Clone(e.Data), Meta: slices.Clone(e.Meta), IdempotencyKey: e.IdempotencyKey,
		}
		s.events = append(s.events, stored)
		s.byID[e.ID] = len(s.events) - 1
		if e.IdempotencyKey != "" {
			s.byIdem[e.IdempotencyKey] = len(s.events) - 1
		}
		s.counts[e.Type]++
		results[i] = store.AppendResult{Event: stored}
	}
	return results, nil
}

// Read implements store.Store.
func (s *Store) Read(ctx context.Context, arg store.ReadParams) ([]store.Event, error) {
	after, limit := arg.After, arg.Limit
	if err := s.lock(ctx); err != nil {
		return nil, err
	}
	defer s.mu.Unlock()
	if after < 0 {
		after = 0
	}
	if after >= int64(len(s.events)) {
		return []store.Event{}, nil
	}
	end := min(int64(len(s.events)), after+int64(limit))
	return slices.Clone(s.events[after:end]), nil
}

// EventByID implements store.Store.
func (s *Store) EventByID(ctx context.Context, id string) (store.Event, error) {
	if err := s.lock(ctx); err != nil {
		return store.Event{}, err
	}
	defer s.mu.Unlock()
	at, ok := s.byID[id]
	if !ok {
		return store.Event{}, fmt.Errorf("monster: event %q: %w", id, store.ErrNotFound)
	}
	return s.events[at], nil
}

// Head implements store.Store.
func (s *Store) Head(ctx context.Context) (int64, error) {
	if err := s.lock(ctx); err != nil {
		return 0, err
	}
	defer s.mu.Unlock()
	return int64(len(s.events)), nil
}

// PositionBefore implements store.Store.
func (s *Store) PositionBefore(ctx context.Context, t time.Time) (int64, error) {
	if err := s.lock(ctx); err != nil {
		return 0, err
	}
	defer s.mu.Unlock()
	var pos int64
	for _, e := range s.events {
		if e.Time.Before(t) {
			pos = e.Position
		}
	}
	return pos, nil
}

// CountByType implements store.Store.
func (s *Store) CountByType(ctx context.Context, after int64) (map[string]int64, error) {
	if err := s.lock(ctx); err != nil {
		return nil, err
	}
	defer s.mu.Unlock()
	out := map[string]int64{}
	if after <= 0 {
		for t, n := range s.counts {
			out[t] = n
		}
		return out, nil
	}
	for _, e := range s.events[min(after, int64(len(s.events))):] {
		out[e.Type]++
	}
	return out, nil
}

// RegisterConsumer implements store.Store.
func (s *Store) RegisterConsumer(ctx context.Context, spec store.ConsumerSpec) (store.ConsumerInfo, error) {
	if err := store.ValidateConsumerSpec("memstore register consumer", spec); err != nil {
		return store.ConsumerInfo{}, err
	}
	if err := s.lock(ctx); err != nil {
		return store.ConsumerInfo{}, err
	}
	defer s.mu.Unlock()
	c, ok := s.consumers[spec.Name]
	if ok {
		if len(c.info.Partitions) != spec.Partitions {
			return store.ConsumerInfo{}, store.ConflictingPartitions(spec.Name, len(c.info.Partitions), spec.Partitions)
		}
		c.info.Types = slices.Clone(spec.Types)
		return s.infoLocked(c), nil
	}
	c = &consumer{
		info:    store.ConsumerInfo{Name: spec.Name, Types: slices.Clone(spec.Types), Created: time.Now().UTC(), Partitioning: spec.Partitioning},
		members: map[string]time.Time{},
		dead:    map[string]store.DeadLetter{},
	}
	for p := range spec.Partitions {
		c.info.Partitions = append(c.info.Partitions, store.PartitionInfo{Partition: p, Checkpoint: spec.Start})
	}
	s.consumers[spec.Name] = c
	return s.infoLocked(c), nil
}

func (s *Store) infoLocked(c *consumer) store.ConsumerInfo {
	info := c.info
	info.Types = slices.Clone(c.info.Types)
	info.Partitions = slices.Clone(c.info.Partitions)
	info.DeadLetters = int64(len(c.dead))
	return info
}

func (s *Store) consumerLocked(name string) (*consumer, error) {
	c, ok := s.consumers[name]
	if !ok {
		return nil, fmt.Errorf("monster: consumer %q: %w", name, store.ErrNotFound)
	}
	return c, nil
}

// Consumer implements store.Store.
func (s *Store) Consumer(ctx context.Context, name string) (store.ConsumerInfo, error) {
	if err := s.lock(ctx); err != nil {
		return store.ConsumerInfo{}, err
	}
	defer s.mu.Unlock()
	c, err := s.consumerLocked(name)
	if err != nil {
		return store.ConsumerInfo{}, err
	}
	return s.infoLocked(c), nil
}

// Consumers implements store.Store.
func (s *Store) Consumers(ctx context.Context) ([]store.ConsumerInfo, error) {
	if err := s.lock(ctx); err != nil {
		return nil, err
	}
	defer s.mu.Unlock()
	out := make([]store.ConsumerInfo, 0, len(s.consumers))
	for _, c := range s.consumers {
		out = append(out, s.infoLocked(c))
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// DeleteConsumer implements store.Store.
func (s *Store) DeleteConsumer(ctx context.Context, name string) error {
	if err := s.lock(ctx); err != nil {
		return err
	}
	defer s.mu.Unlock()
	if _, err := s.consumerLocked(name); err != nil {
		return err
	}
	delete(s.consumers, name)
	return nil
}

// Heartbeat implements store.Store.
func (s *Store) Heartbeat(ctx context.Context, arg store.HeartbeatParams) ([]string, error) {
	consumerName, member, expires, now := arg.Consumer, arg.Member, arg.Expires, arg.Now
	if err := s.lock(ctx); err != nil {
		return nil, err
	}
	defer s.mu.Unlock()
	c, err := s.consumerLocked(consumerName)
	if err != nil {
		return nil, err
	}
	c.members[member] = expires
	var live []string
	for m, exp := range c.members {
		if exp.Before(now) {
			delete(c.members, m)
			continue
		}
		live = append(live, m)
	}
	sort.Strings(live)
	return live, nil
}

// Leave implements store.Store.
func (s *Store) Leave(ctx context.Context, arg store.LeaveParams) error {
	consumerName, member := arg.Consumer, arg.Member
	if err := s.lock(ctx); err != nil {
		return err
	}
	defer s.mu.Unlock()
	c, err := s.consumerLocked(consumerName)
	if err != nil {
		return err
	}
	delete(c.members, member)
	for i := range c.info.Partitions {
		if p := &c.info.Partitions[i]; p.Owner == member {
			p.Owner, p.LeaseExpires = "", time.Time{}
		}
	}
	return nil
}

// Claim implements store.Store.
func (s *Store) Claim(ctx context.Context, arg store.ClaimParams) ([]store.PartitionInfo, error) {
	consumerName, member, partitions, expires, now := arg.Consumer, arg.Member, arg.Partitions, arg.Expires, arg.Now
	if err := s.lock(ctx); err != nil {
		return nil, err
	}
	defer s.mu.Unlock()
	c, err := s.consumerLocked(consumerName)
	if err != nil {
		return nil, err
	}
	for _, n := range partitions {
		if n < 0 || n >= len(c.info.Partitions) {
			continue
		}
		p := &c.info.Partitions[n]
		if p.Owner == "" || p.Owner == member || p.LeaseExpires.Before(now) {
			if p.Owner != member {
				p.Epoch++
			}
			p.Owner, p.LeaseExpires = member, expires
		}
	}
	var held []store.PartitionInfo
	for _, p := range c.info.Partitions {
		if p.Owner == member {
			held = append(held, p)
		}
	}
	return held, nil
}

// Release implements store.Store.
func (s *Store) Release(ctx context.Context, arg store.ReleaseParams) error {
	consumerName, member, partitions := arg.Consumer, arg.Member, arg.Partitions
	if err := s.lock(ctx); err != nil {
		return err
	}
	defer s.mu.Unlock()
	c, err := s.consumerLocked(consumerName)
	if err != nil {
		return err
	}
	for _, n := range partitions {
		if n >= 0 && n < len(c.info.Partitions) && c.info.Partitions[n].Owner == member {
			c.info.Partitions[n].Owner, c.info.Partitions[n].LeaseExpires = "", time.Time{}
		}
	}
	return nil
}

// SaveCheckpoints implements store.Store.
func (s *Store) SaveCheckpoints(ctx context.Context, arg store.SaveCheckpointsParams) error {
	consumerName, member, checkpoints := arg.Consumer, arg.Member, arg.Checkpoints
	if err := s.lock(ctx); err != nil {
		return err
	}
	defer s.mu.Unlock()
	c, err := s.consumerLocked(consumerName)
	if err != nil {
		return err
	}
	for _, cp := range checkpoints {
		if cp.Partition < 0 || cp.Partition >= len(c.info.Partitions) || c.info.Partitions[cp.Partition].Owner != member {
			return fmt.Errorf("monster: consumer %q partition %d is not held by %q: %w", consumerName, cp.Partition, member, store.ErrLeaseLost)
		}
	}
	for _, cp := range checkpoints {
		p := &c.info.Partitions[cp.Partition]
		p.Checkpoint = max(p.Checkpoint, cp.Position)
		p.Failures += cp.FailuresDelta
		p.InFlight = cp.InFlight
	}
	return nil
}

// ResetConsumer implements store.Store.
func (s *Store) ResetConsumer(ctx context.Context, arg store.ResetConsumerParams) error {
	consumerName, position := arg.Consumer, arg.Position
	if err := s.lock(ctx); err != nil {
		return err
	}
	defer s.mu.Unlock()
	c, err := s.consumerLocked(consumerName)
	if err != nil {
		return err
	}
	for i := range c.info.Partitions {
		p := &c.info.Partitions[i]
		p.Checkpoint, p.Owner, p.LeaseExpires, p.InFlight = position, "", time.Time{}, 0
	}
	return nil
}

// AddDeadLetter implements store.Store.
func (s *Store) AddDeadLetter(ctx context.Context, dl store.DeadLetter) error {
	if err := s.lock(ctx); err != nil {
		return err
	}
	defer s.mu.Unlock()
	c, err := s.consumerLocked(dl.Consumer)
	if err != nil {
		return err
	}
	dl.RetryRequested = false
	c.dead[dl.EventID] = dl
	return nil
}

// DeadLetters implements store.Store.
func (s *Store) DeadLetters(ctx context.Context, q store.DeadLetterQuery) ([]store.DeadLetter, error) {
	consumerName := q.Consumer
	if err := s.lock(ctx); err != nil {
		return nil, err
	}
	defer s.mu.Unlock()
	c, err := s.consumerLocked(consumerName)
	if err != nil {
		return nil, err
	}
	var out []store.DeadLetter
	for _, dl := range c.dead {
		if dl.Position > q.AfterPosition && (!q.RetryRequested || dl.RetryRequested) {
			out = append(out, dl)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Position < out[j].Position })
	if q.Limit > 0 && len(out) > q.Limit {
		out = out[:q.Limit]
	}
	return out, nil
}

// RequestRetry implements store.Store.
func (s *Store) RequestRetry(ctx context.Context, sel store.DeadLetterSelection) (int, error) {
	consumerName, ids := sel.Consumer, sel.IDs
	return s.eachDeadLetter(ctx, consumerName, ids, func(c *consumer, id string) {
		dl := c.dead[id]
		dl.RetryRequested = true
		c.dead[id] = dl
	})
}

// DeleteDeadLetters implements store.Store.
func (s *Store) DeleteDeadLetters(ctx context.Context, sel store.DeadLetterSelection) (int, error) {
	consumerName, ids := sel.Consumer, sel.IDs
	return s.eachDeadLetter(ctx, consumerName, ids, func(c *consumer, id string) { delete(c.dead, id) })
}

// eachDeadLetter applies fn to the named dead letters (all when ids is nil)
// after checking that every named one exists.
func (s *Store) eachDeadLetter(ctx context.Context, consumerName string, ids []string, fn func(*consumer, string)) (int, error) {
	if err := s.lock(ctx); err != nil {
		return 0, err
	}
	defer s.mu.Unlock()
	c, err := s.consumerLocked(consumerName)
	if err != nil {
		return 0, err
	}
	if ids == nil {
		for id := range c.dead {
			ids = append(ids, id)
		}
	}
	ids = slices.Compact(slices.Sorted(slices.Values(ids)))
	for _, id := range ids {
		if _, ok := c.dead[id]; !ok {
			return 0, fmt.Errorf("monster: consumer %q has no dead letter for event %q: %w", consumerName, id, store.ErrNotFound)
		}
	}
	for _, id := range ids {
		fn(c, id)
	}
	return len(ids), nil
}

// Close implements store.Store.
func (s *Store) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	return nil
}
