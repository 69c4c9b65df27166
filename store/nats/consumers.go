package nats

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/gomonster/monster/store"
)

// consumerDoc is a consumer with its partitions and members, kept as one
// message on <prefix>.st.c.<name> in the state stream, so that every change
// (a claim, a batch of checkpoints, a reset, a heartbeat) is one
// compare-and-set on the subject's last sequence: all of it or none.
type consumerDoc struct {
	Name       string           `json:"name"`
	Types      []string         `json:"types"`
	Created    int64            `json:"created"`
	Partitions []partDoc        `json:"partitions"`
	Members    map[string]int64 `json:"members,omitempty"` // heartbeat expiry, Unix ns
	// Partitioning is store.Partitioning's value, written when the
	// consumer is created and kept after; absent (the zero value, key else
	// type) in consumers stored before the field existed.
	Partitioning string `json:"partitioning,omitempty"`
	// Deleted marks a consumer removed by DeleteConsumer.
	Deleted bool `json:"deleted,omitempty"`
}

type partDoc struct {
	Checkpoint   int64  `json:"checkpoint"`
	Owner        string `json:"owner,omitempty"`
	LeaseExpires int64  `json:"lease_expires,omitempty"`
	Epoch        int64  `json:"epoch"`
	Failures     int64  `json:"failures,omitempty"`
	InFlight     int64  `json:"in_flight,omitempty"`
}

func (p partDoc) info(n int) store.PartitionInfo {
	return store.PartitionInfo{
		Partition: n, Checkpoint: p.Checkpoint, Owner: p.Owner, LeaseExpires: fromNanos(p.LeaseExpires),
		Epoch: p.Epoch, Failures: p.Failures, InFlight: p.InFlight,
	}
}

// deadDoc is a dead letter, one message on <prefix>.st.dl.<consumer>.<event ID>.
type deadDoc struct {
	Consumer       string `json:"consumer"`
	EventID        string `json:"event_id"`
	Type           string `json:"type"`
	Position       int64  `json:"position"`
	Partition      int    `json:"partition"`
	Attempts       int    `json:"attempts"`
	Error          string `json:"error"`
	FailedAt       int64  `json:"failed_at"`
	RetryRequested bool   `json:"retry,omitempty"`
}

func (d deadDoc) letter() store.DeadLetter {
	return store.DeadLetter{
		Consumer: d.Consumer, EventID: d.EventID, Type: d.Type, Position: d.Position, Partition: d.Partition,
		Attempts: d.Attempts, Error: d.Error, FailedAt: fromNanos(d.FailedAt), RetryRequested: d.RetryRequested,
	}
}

func nanos(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

func fromNanos(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n).UTC()
}

func (s *Store) consumerSubject(name string) string { return s.names.stateSubj + "c." + token(name) }

func (s *Store) deadPrefix(consumer string) string {
	return s.names.stateSubj + "dl." + token(consumer) + "."
}

func notFound(name string) error {
	return store.Errorf(store.ErrNotFound, "monster: nats: consumer %q: %v", name, store.ErrNotFound)
}

// loadConsumer reads the consumer's latest state through the leader; seq
// is the sequence to compare-and-set against (0: none stored).
func (s *Store) loadConsumer(ctx context.Context, name string) (consumerDoc, uint64, error) {
	var d consumerDoc
	m, err := s.leaderGet(ctx, s.names.state, msgGetRequest{LastFor: s.consumerSubject(name)})
	if isNoMessage(err) {
		return d, 0, nil
	}
	if err != nil {
		return d, 0, err
	}
	if err := json.Unmarshal(m.Data, &d); err != nil {
		return d, 0, fmt.Errorf("consumer %q: malformed state at sequence %d: %w", name, m.Seq, err)
	}
	return d, m.Seq, nil
}

// errUnchanged, returned by an update function, ends update without a write.
var errUnchanged = errors.New("unchanged")

// update applies fn to the consumer's latest state and writes the result
// if no one else wrote in between, else starts again. exists is false
// when the consumer is not stored or deleted.
func (s *Store) update(ctx context.Context, name string, fn func(d *consumerDoc, exists bool) error) (consumerDoc, error) {
	for {
		d, seq, err := s.loadConsumer(ctx, name)
		if err != nil {
			return d, err
		}
		if err := fn(&d, seq > 0 && !d.Deleted); err != nil {
			if errors.Is(err, errUnchanged) {
				return d, nil
			}
			return d, err
		}
		data, err := json.Marshal(d)
		if err != nil {
			return d, err
		}
		_, err = s.publishCAS(ctx, s.consumerSubject(name), data, seq)
		if err == nil || !isWrongLastSeq(err) {
			return d, err
		}
		if err := ctx.Err(); err != nil {
			return d, err
		}
	}
}

// updateExisting is update for a consumer that must exist.
func (s *Store) updateExisting(ctx context.Context, name string, fn func(*consumerDoc) error) (consumerDoc, error) {
	return s.update(ctx, name, func(d *consumerDoc, exists bool) error {
		if !exists {
			return notFound(name)
		}
		return fn(d)
	})
}

// opError words err for op, keeping the store's own errors as they are.
func opError(ctx context.Context, op string, err error) error {
	if err == nil {
		return nil
	}
	return store.OpError(ctx, "nats", op, err)
}

func (s *Store) info(ctx context.Context, d consumerDoc) (store.ConsumerInfo, error) {
	dead, err := s.deadLetterCount(ctx, d.Name)
	if err != nil {
		return store.ConsumerInfo{}, err
	}
	info := store.ConsumerInfo{Name: d.Name, Types: slices.Clone(d.Types), Created: fromNanos(d.Created), DeadLetters: dead,
		Partitioning: store.Partitioning(d.Partitioning)}
	if info.Types == nil {
		info.Types = []string{}
	}
	for n, p := range d.Partitions {
		info.Partitions = append(info.Partitions, p.info(n))
	}
	return info, nil
}

// deadLetterCount counts the consumer's dead letters from the stream's
// count of messages per subject (one per dead letter).
func (s *Store) deadLetterCount(ctx context.Context, consumer string) (int64, error) {
	c, cancel := s.callContext(ctx)
	defer cancel()
	st, err := s.js.Stream(c, s.names.state)
	if err != nil {
		return 0, callError(c, err)
	}
	info, err := st.Info(c, jetstream.WithSubjectFilter(s.deadPrefix(consumer)+">"))
	if err != nil {
		return 0, callError(c, err)
	}
	return int64(len(info.State.Subjects)), nil
}

// RegisterConsumer implements store.Store.
func (s *Store) RegisterConsumer(ctx context.Context, spec store.ConsumerSpec) (store.ConsumerInfo, error) {
	const op = "register consumer"
	if err := s.check(ctx, op); err != nil {
		return store.ConsumerInfo{}, err
	}
	if err := store.ValidateConsumerSpec("nats "+op, spec); err != nil {
		return store.ConsumerInfo{}, err
	}
	types := slices.Clone(spec.Types)
	if types == nil {
		types = []string{}
	}
	d, err := s.update(ctx, spec.Name, func(d *consumerDoc, exists bool) error {
		if exists {
			if len(d.Partitions) != spec.Partitions {
				return store.ConflictingPartitions(spec.Name, len(d.Partitions), spec.Partitions)
			}
			if slices.Equal(d.Types, types) {
				return errUnchanged
			}
			d.Types = types
			return nil
		}
		*d = consumerDoc{Name: spec.Name, Types: types, Created: nanos(time.Now().UTC()),
			Partitioning: string(spec.Partitioning), Partitions: make([]partDoc, spec.Partitions)}
		for i := range d.Partitions {
			d.Partitions[i].Checkpoint = spec.Start
		}
		return nil
	})
	if err != nil {
		if errors.Is(err, store.ErrConflict) {
			return store.ConsumerInfo{}, err
		}
		return store.ConsumerInfo{}, opError(ctx, op, err)
	}
	info, err := s.info(ctx, d)
	return info, opError(ctx, op, err)
}

// Consumer implements store.Store.
func (s *Store) Consumer(ctx context.Context, name string) (store.ConsumerInfo, error) {
	if err := s.check(ctx, "consumer"); err != nil {
		return store.ConsumerInfo{}, err
	}
	d, seq, err := s.loadConsumer(ctx, name)
	if err != nil {
		return store.ConsumerInfo{}, opError(ctx, "consumer", err)
	}
	if seq == 0 || d.Deleted {
		return store.ConsumerInfo{}, notFound(name)
	}
	info, err := s.info(ctx, d)
	return info, opError(ctx, "consumer", err)
}

// Consumers implements store.Store: it walks the consumers' subjects in
// the state stream, which keeps the latest message of each.
func (s *Store) Consumers(ctx context.Context) ([]store.ConsumerInfo, error) {
	if err := s.check(ctx, "consumers"); err != nil {
		return nil, err
	}
	out := []store.ConsumerInfo{}
	filter := s.names.stateSubj + "c.*"
	for seq := uint64(1); ; {
		m, err := s.leaderGet(ctx, s.names.state, msgGetRequest{Seq: seq, NextFor: filter})
		if isNoMessage(err) {
			break
		}
		if err != nil {
			return nil, opError(ctx, "consumers", err)
		}
		seq = m.Seq + 1
		var d consumerDoc
		if err := json.Unmarshal(m.Data, &d); err != nil {
			return nil, opError(ctx, "consumers", fmt.Errorf("malformed state on %q at sequence %d: %w", m.Subject, m.Seq, err))
		}
		if d.Deleted {
			continue
		}
		info, err := s.info(ctx, d)
		if err != nil {
			return nil, opError(ctx, "consumers", err)
		}
		out = append(out, info)
	}
	slices.SortFunc(out, func(a, b store.ConsumerInfo) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}

// DeleteConsumer implements store.Store.
func (s *Store) DeleteConsumer(ctx context.Context, name string) error {
	const op = "delete consumer"
	if err := s.check(ctx, op); err != nil {
		return err
	}
	_, err := s.updateExisting(ctx, name, func(d *consumerDoc) error {
		*d = consumerDoc{Name: name, Deleted: true}
		return nil
	})
	if err != nil {
		return opError(ctx, op, err)
	}
	return opError(ctx, op, s.purge(ctx, s.deadPrefix(name)+">"))
}

func (s *Store) purge(ctx context.Context, subject string) error {
	c, cancel := s.callContext(ctx)
	defer cancel()
	st, err := s.js.Stream(c, s.names.state)
	if err != nil {
		return callError(c, err)
	}
	return callError(c, st.Purge(c, jetstream.WithPurgeSubject(subject)))
}

// Heartbeat implements store.Store: the members live in the consumer's
// state, so a heartbeat is one compare-and-set.
func (s *Store) Heartbeat(ctx context.Context, p store.HeartbeatParams) ([]string, error) {
	if err := s.check(ctx, "heartbeat"); err != nil {
		return nil, err
	}
	d, err := s.updateExisting(ctx, p.Consumer, func(d *consumerDoc) error {
		if d.Members == nil {
			d.Members = map[string]int64{}
		}
		d.Members[p.Member] = nanos(p.Expires)
		for m, exp := range d.Members {
			if exp < nanos(p.Now) {
				delete(d.Members, m)
			}
		}
		return nil
	})
	if err != nil {
		return nil, opError(ctx, "heartbeat", err)
	}
	live := []string{}
	for m := range d.Members {
		live = append(live, m)
	}
	slices.Sort(live)
	return live, nil
}

// Leave implements store.Store.
func (s *Store) Leave(ctx context.Context, p store.LeaveParams) error {
	if err := s.check(ctx, "leave"); err != nil {
		return err
	}
	_, err := s.updateExisting(ctx, p.Consumer, func(d *consumerDoc) error {
		delete(d.Members, p.Member)
		for i := range d.Partitions {
			if q := &d.Partitions[i]; q.Owner == p.Member {
				q.Owner, q.LeaseExpires = "", 0
			}
		}
		return nil
	})
	return opError(ctx, "leave", err)
}

// Claim implements store.Store.
func (s *Store) Claim(ctx context.Context, p store.ClaimParams) ([]store.PartitionInfo, error) {
	if err := s.check(ctx, "claim"); err != nil {
		return nil, err
	}
	d, err := s.updateExisting(ctx, p.Consumer, func(d *consumerDoc) error {
		for _, n := range p.Partitions {
			if n < 0 || n >= len(d.Partitions) {
				continue
			}
			q := &d.Partitions[n]
			if q.Owner == "" || q.Owner == p.Member || fromNanos(q.LeaseExpires).Before(p.Now) {
				if q.Owner != p.Member {
					q.Epoch++
				}
				q.Owner, q.LeaseExpires = p.Member, nanos(p.Expires)
			}
		}
		return nil
	})
	if err != nil {
		return nil, opError(ctx, "claim", err)
	}
	held := []store.PartitionInfo{}
	for n, q := range d.Partitions {
		if q.Owner == p.Member {
			held = append(held, q.info(n))
		}
	}
	return held, nil
}

// Release implements store.Store.
func (s *Store) Release(ctx context.Context, p store.ReleaseParams) error {
	if err := s.check(ctx, "release"); err != nil {
		return err
	}
	_, err := s.updateExisting(ctx, p.Consumer, func(d *consumerDoc) error {
		changed := false
		for _, n := range p.Partitions {
			if n >= 0 && n < len(d.Partitions) && d.Partitions[n].Owner == p.Member {
				d.Partitions[n].Owner, d.Partitions[n].LeaseExpires = "", 0
				changed = true
			}
		}
		if !changed {
			return errUnchanged
		}
		return nil
	})
	return opError(ctx, "release", err)
}

// SaveCheckpoints implements store.Store: one compare-and-set of the
// consumer's state, so every checkpoint is saved or none.
func (s *Store) SaveCheckpoints(ctx context.Context, p store.SaveCheckpointsParams) error {
	if err := s.check(ctx, "save checkpoints"); err != nil {
		return err
	}
	_, err := s.updateExisting(ctx, p.Consumer, func(d *consumerDoc) error {
		for _, cp := range p.Checkpoints {
			if cp.Partition < 0 || cp.Partition >= len(d.Partitions) || d.Partitions[cp.Partition].Owner != p.Member {
				return store.Errorf(store.ErrLeaseLost, "monster: nats: consumer %q partition %d is not held by %q: %v",
					p.Consumer, cp.Partition, p.Member, store.ErrLeaseLost)
			}
		}
		for _, cp := range p.Checkpoints {
			q := &d.Partitions[cp.Partition]
			q.Checkpoint = max(q.Checkpoint, cp.Position)
			q.Failures += cp.FailuresDelta
			q.InFlight = cp.InFlight
		}
		return nil
	})
	return opError(ctx, "save checkpoints", err)
}

// ResetConsumer implements store.Store.
func (s *Store) ResetConsumer(ctx context.Context, p store.ResetConsumerParams) error {
	if err := s.check(ctx, "reset consumer"); err != nil {
		return err
	}
	_, err := s.updateExisting(ctx, p.Consumer, func(d *consumerDoc) error {
		for i := range d.Partitions {
			q := &d.Partitions[i]
			q.Checkpoint, q.Owner, q.LeaseExpires, q.InFlight = p.Position, "", 0, 0
		}
		return nil
	})
	return opError(ctx, "reset consumer", err)
}

// exists fails with ErrNotFound when the consumer does not exist.
func (s *Store) exists(ctx context.Context, name string) error {
	d, seq, err := s.loadConsumer(ctx, name)
	if err != nil {
		return err
	}
	if seq == 0 || d.Deleted {
		return notFound(name)
	}
	return nil
}

// AddDeadLetter implements store.Store: the message replaces the last one
// on the dead letter's subject.
func (s *Store) AddDeadLetter(ctx context.Context, dl store.DeadLetter) error {
	if err := s.check(ctx, "add dead letter"); err != nil {
		return err
	}
	if err := s.exists(ctx, dl.Consumer); err != nil {
		return opError(ctx, "add dead letter", err)
	}
	doc := deadDoc{
		Consumer: dl.Consumer, EventID: dl.EventID, Type: dl.Type, Position: dl.Position, Partition: dl.Partition,
		Attempts: dl.Attempts, Error: dl.Error, FailedAt: nanos(dl.FailedAt),
	}
	data, err := json.Marshal(doc)
	if err != nil {
		return opError(ctx, "add dead letter", err)
	}
	return opError(ctx, "add dead letter", s.publish(ctx, s.deadPrefix(dl.Consumer)+token(dl.EventID), data))
}

// deadLetters reads every dead letter of the consumer, in position order.
func (s *Store) deadLetters(ctx context.Context, consumer string) ([]deadDoc, error) {
	var out []deadDoc
	filter := s.deadPrefix(consumer) + ">"
	for seq := uint64(1); ; {
		m, err := s.leaderGet(ctx, s.names.state, msgGetRequest{Seq: seq, NextFor: filter})
		if isNoMessage(err) {
			break
		}
		if err != nil {
			return nil, err
		}
		seq = m.Seq + 1
		var d deadDoc
		if err := json.Unmarshal(m.Data, &d); err != nil {
			return nil, fmt.Errorf("malformed dead letter on %q at sequence %d: %w", m.Subject, m.Seq, err)
		}
		out = append(out, d)
	}
	slices.SortFunc(out, func(a, b deadDoc) int {
		if a.Position != b.Position {
			return cmpInt(a.Position, b.Position)
		}
		return strings.Compare(a.EventID, b.EventID)
	})
	return out, nil
}

func cmpInt(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// DeadLetters implements store.Store.
func (s *Store) DeadLetters(ctx context.Context, q store.DeadLetterQuery) ([]store.DeadLetter, error) {
	if err := s.check(ctx, "dead letters"); err != nil {
		return nil, err
	}
	if err := s.exists(ctx, q.Consumer); err != nil {
		return nil, opError(ctx, "dead letters", err)
	}
	docs, err := s.deadLetters(ctx, q.Consumer)
	if err != nil {
		return nil, opError(ctx, "dead letters", err)
	}
	var out []store.DeadLetter
	for _, d := range docs {
		if d.Position <= q.AfterPosition || (q.RetryRequested && !d.RetryRequested) {
			continue
		}
		out = append(out, d.letter())
		if q.Limit > 0 && len(out) == q.Limit {
			break
		}
	}
	return out, nil
}

// selectDeadLetters returns the selected dead letters, or ErrNotFound if
// sel.IDs names one that does not exist.
func (s *Store) selectDeadLetters(ctx context.Context, sel store.DeadLetterSelection) ([]deadDoc, error) {
	if err := s.exists(ctx, sel.Consumer); err != nil {
		return nil, err
	}
	if sel.IDs == nil {
		return s.deadLetters(ctx, sel.Consumer)
	}
	var out []deadDoc
	for _, id := range slices.Compact(slices.Sorted(slices.Values(sel.IDs))) {
		m, err := s.leaderGet(ctx, s.names.state, msgGetRequest{LastFor: s.deadPrefix(sel.Consumer) + token(id)})
		if isNoMessage(err) {
			return nil, store.Errorf(store.ErrNotFound, "monster: nats: consumer %q has no dead letter for event %q: %v",
				sel.Consumer, id, store.ErrNotFound)
		}
		if err != nil {
			return nil, err
		}
		var d deadDoc
		if err := json.Unmarshal(m.Data, &d); err != nil {
			return nil, fmt.Errorf("malformed dead letter on %q at sequence %d: %w", m.Subject, m.Seq, err)
		}
		out = append(out, d)
	}
	return out, nil
}

// RequestRetry implements store.Store.
func (s *Store) RequestRetry(ctx context.Context, sel store.DeadLetterSelection) (int, error) {
	if err := s.check(ctx, "request retry"); err != nil {
		return 0, err
	}
	docs, err := s.selectDeadLetters(ctx, sel)
	if err != nil {
		return 0, opError(ctx, "request retry", err)
	}
	for _, d := range docs {
		d.RetryRequested = true
		data, err := json.Marshal(d)
		if err != nil {
			return 0, opError(ctx, "request retry", err)
		}
		if err := s.publish(ctx, s.deadPrefix(sel.Consumer)+token(d.EventID), data); err != nil {
			return 0, opError(ctx, "request retry", err)
		}
	}
	return len(docs), nil
}

// DeleteDeadLetters implements store.Store.
func (s *Store) DeleteDeadLetters(ctx context.Context, sel store.DeadLetterSelection) (int, error) {
	if err := s.check(ctx, "delete dead letters"); err != nil {
		return 0, err
	}
	docs, err := s.selectDeadLetters(ctx, sel)
	if err != nil {
		return 0, opError(ctx, "delete dead letters", err)
	}
	if sel.IDs == nil {
		return len(docs), opError(ctx, "delete dead letters", s.purge(ctx, s.deadPrefix(sel.Consumer)+">"))
	}
	for _, d := range docs {
		if err := s.purge(ctx, s.deadPrefix(sel.Consumer)+token(d.EventID)); err != nil {
			return 0, opError(ctx, "delete dead letters", err)
		}
	}
	return len(docs), nil
}
