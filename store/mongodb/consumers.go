package mongodb

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/gomonster/monster/store"
)

// consumerDoc is a consumer with its partitions, kept as one versioned
// state so that every change to its partitions (a claim, a batch of
// checkpoints, a reset) is one atomic insert of the next version.
type consumerDoc struct {
	Name       string    `bson:"name"`
	Types      []string  `bson:"types"`
	Created    int64     `bson:"created"`
	Partitions []partDoc `bson:"partitions"`
	// Partitioning is store.Partitioning's value; absent (the zero value,
	// key else type) in documents written before it was stored.
	Partitioning string `bson:"partitioning,omitempty"`
	// Deleted marks a consumer removed by DeleteConsumer.
	Deleted bool `bson:"deleted,omitempty"`
}

type partDoc struct {
	Partition    int    `bson:"p"`
	Checkpoint   int64  `bson:"checkpoint"`
	Owner        string `bson:"owner"`
	LeaseExpires int64  `bson:"lease_expires"`
	Epoch        int64  `bson:"epoch"`
	Failures     int64  `bson:"failures"`
	InFlight     int64  `bson:"in_flight"`
}

func (p partDoc) info() store.PartitionInfo {
	return store.PartitionInfo{
		Partition: p.Partition, Checkpoint: p.Checkpoint, Owner: p.Owner,
		LeaseExpires: fromNanos(p.LeaseExpires), Epoch: p.Epoch, Failures: p.Failures, InFlight: p.InFlight,
	}
}

type memberDoc struct {
	ID       string `bson:"_id"`
	Consumer string `bson:"c"`
	Member   string `bson:"m"`
	Expires  int64  `bson:"expires"`
}

type deadDoc struct {
	ID             string `bson:"_id"`
	Consumer       string `bson:"c"`
	EventID        string `bson:"event_id"`
	Type           string `bson:"type"`
	Position       int64  `bson:"pos"`
	Partition      int    `bson:"partition"`
	Attempts       int    `bson:"attempts"`
	Error          string `bson:"error"`
	FailedAt       int64  `bson:"failed_at"`
	RetryRequested bool   `bson:"retry"`
}

func (d deadDoc) letter() store.DeadLetter {
	return store.DeadLetter{
		Consumer: d.Consumer, EventID: d.EventID, Type: d.Type, Position: d.Position, Partition: d.Partition,
		Attempts: d.Attempts, Error: d.Error, FailedAt: fromNanos(d.FailedAt), RetryRequested: d.RetryRequested,
	}
}

// pairID joins a consumer name with a member or event ID into an _id.
func pairID(consumer, other string) string { return consumer + "\x00" + other }

func notFound(name string) error {
	return fmt.Errorf("monster: consumer %q: %w", name, store.ErrNotFound)
}

func (s *Store) loadConsumer(ctx context.Context, name string) (consumerDoc, error) {
	v, d, err := s.cons.latest(ctx, name)
	if err != nil {
		return d, err
	}
	if v == 0 || d.Deleted {
		return d, notFound(name)
	}
	return d, nil
}

// updateConsumer applies fn to the consumer's latest state and writes the
// result as its next version, retrying when another writer came first.
func (s *Store) updateConsumer(ctx context.Context, name string, fn func(*consumerDoc) error) (consumerDoc, error) {
	return s.cons.update(ctx, name, func(d *consumerDoc, exists bool) error {
		if !exists || d.Deleted {
			return notFound(name)
		}
		return fn(d)
	})
}

func (s *Store) info(ctx context.Context, d consumerDoc) (store.ConsumerInfo, error) {
	n, err := s.dead.CountDocuments(ctx, bson.D{{Key: "c", Value: d.Name}})
	if err != nil {
		return store.ConsumerInfo{}, err
	}
	info := store.ConsumerInfo{
		Name: d.Name, Types: slices.Clone(d.Types), Created: fromNanos(d.Created), DeadLetters: n,
		Partitioning: store.Partitioning(d.Partitioning),
	}
	if info.Types == nil {
		info.Types = []string{}
	}
	for _, p := range d.Partitions {
		info.Partitions = append(info.Partitions, p.info())
	}
	return info, nil
}

// RegisterConsumer implements store.Store.
func (s *Store) RegisterConsumer(ctx context.Context, spec store.ConsumerSpec) (store.ConsumerInfo, error) {
	if err := store.ValidateConsumerSpec("mongodb register consumer", spec); err != nil {
		return store.ConsumerInfo{}, err
	}
	if err := s.check(ctx); err != nil {
		return store.ConsumerInfo{}, wrap("register consumer", err)
	}
	types := slices.Clone(spec.Types)
	if types == nil {
		types = []string{}
	}
	d, err := s.cons.update(ctx, spec.Name, func(d *consumerDoc, exists bool) error {
		if exists && !d.Deleted {
			if len(d.Partitions) != spec.Partitions {
				return store.ConflictingPartitions(spec.Name, len(d.Partitions), spec.Partitions)
			}
			d.Types = types
			return nil
		}
		*d = consumerDoc{Name: spec.Name, Types: types, Created: nanos(time.Now().UTC()), Partitioning: string(spec.Partitioning)}
		for p := range spec.Partitions {
			d.Partitions = append(d.Partitions, partDoc{Partition: p, Checkpoint: spec.Start})
		}
		return nil
	})
	if err != nil {
		if errors.Is(err, store.ErrConflict) {
			return store.ConsumerInfo{}, err
		}
		return store.ConsumerInfo{}, wrap("register consumer", err)
	}
	info, err := s.info(ctx, d)
	return info, wrap("register consumer", err)
}

// Consumer implements store.Store.
func (s *Store) Consumer(ctx context.Context, name string) (store.ConsumerInfo, error) {
	if err := s.check(ctx); err != nil {
		return store.ConsumerInfo{}, wrap("consumer", err)
	}
	d, err := s.loadConsumer(ctx, name)
	if err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return store.ConsumerInfo{}, err
		}
		return store.ConsumerInfo{}, wrap("consumer", err)
	}
	info, err := s.info(ctx, d)
	return info, wrap("consumer", err)
}

// Consumers implements store.Store.
func (s *Store) Consumers(ctx context.Context) ([]store.ConsumerInfo, error) {
	if err := s.check(ctx); err != nil {
		return nil, wrap("consumers", err)
	}
	cur, err := s.consumers.Find(ctx, bson.D{}, options.Find().SetProjection(bson.D{{Key: "_id", Value: 1}}))
	if err != nil {
		return nil, wrap("consumers", err)
	}
	var keys []struct {
		Name string `bson:"_id"`
	}
	if err := cur.All(ctx, &keys); err != nil {
		return nil, wrap("consumers", err)
	}
	out := make([]store.ConsumerInfo, 0, len(keys))
	for _, k := range keys {
		d, err := s.loadConsumer(ctx, k.Name)
		if errors.Is(err, store.ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, wrap("consumers", err)
		}
		info, err := s.info(ctx, d)
		if err != nil {
			return nil, wrap("consumers", err)
		}
		out = append(out, info)
	}
	slices.SortFunc(out, func(a, b store.ConsumerInfo) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}

// DeleteConsumer implements store.Store.
func (s *Store) DeleteConsumer(ctx context.Context, name string) error {
	if err := s.check(ctx); err != nil {
		return wrap("delete consumer", err)
	}
	_, err := s.updateConsumer(ctx, name, func(d *consumerDoc) error {
		*d = consumerDoc{Name: name, Deleted: true}
		return nil
	})
	if err != nil {
		return keepNotFound("delete consumer", err)
	}
	filter := bson.D{{Key: "c", Value: name}}
	if _, err := s.dead.DeleteMany(ctx, filter); err != nil {
		return wrap("delete consumer", err)
	}
	_, err = s.members.DeleteMany(ctx, filter)
	return wrap("delete consumer", err)
}

// exists fails with ErrNotFound when the consumer does not exist.
func (s *Store) exists(ctx context.Context, name string) error {
	_, err := s.loadConsumer(ctx, name)
	return err
}

// keepNotFound wraps err unless it is ErrNotFound-style already.
func keepNotFound(what string, err error) error {
	if err == nil || errors.Is(err, store.ErrNotFound) || errors.Is(err, store.ErrLeaseLost) {
		return err
	}
	return wrap(what, err)
}

// Heartbeat implements store.Store.
func (s *Store) Heartbeat(ctx context.Context, arg store.HeartbeatParams) ([]string, error) {
	consumer, member, expires, now := arg.Consumer, arg.Member, arg.Expires, arg.Now
	if err := s.check(ctx); err != nil {
		return nil, wrap("heartbeat", err)
	}
	if err := s.exists(ctx, consumer); err != nil {
		return nil, keepNotFound("heartbeat", err)
	}
	_, err := s.members.ReplaceOne(ctx, id(pairID(consumer, member)),
		memberDoc{ID: pairID(consumer, member), Consumer: consumer, Member: member, Expires: nanos(expires)},
		options.Replace().SetUpsert(true))
	if err != nil {
		return nil, wrap("heartbeat", err)
	}
	_, err = s.members.DeleteMany(ctx, bson.D{{Key: "c", Value: consumer}, {Key: "expires", Value: bson.D{{Key: "$lt", Value: nanos(now)}}}})
	if err != nil {
		return nil, wrap("heartbeat", err)
	}
	cur, err := s.members.Find(ctx, bson.D{{Key: "c", Value: consumer}}, options.Find().SetSort(bson.D{{Key: "m", Value: 1}}))
	if err != nil {
		return nil, wrap("heartbeat", err)
	}
	var docs []memberDoc
	if err := cur.All(ctx, &docs); err != nil {
		return nil, wrap("heartbeat", err)
	}
	live := []string{}
	for _, d := range docs {
		live = append(live, d.Member)
	}
	slices.Sort(live)
	return live, nil
}

// Leave implements store.Store.
func (s *Store) Leave(ctx context.Context, arg store.LeaveParams) error {
	consumer, member := arg.Consumer, arg.Member
	if err := s.check(ctx); err != nil {
		return wrap("leave", err)
	}
	if err := s.exists(ctx, consumer); err != nil {
		return keepNotFound("leave", err)
	}
	if _, err := s.members.DeleteOne(ctx, id(pairID(consumer, member))); err != nil {
		return wrap("leave", err)
	}
	_, err := s.updateConsumer(ctx, consumer, func(d *consumerDoc) error {
		for i := range d.Partitions {
			if p := &d.Partitions[i]; p.Owner == member {
				p.Owner, p.LeaseExpires = "", 0
			}
		}
		return nil
	})
	return keepNotFound("leave", err)
}

// Claim implements store.Store.
func (s *Store) Claim(ctx context.Context, arg store.ClaimParams) ([]store.PartitionInfo, error) {
	consumer, member, partitions, expires, now := arg.Consumer, arg.Member, arg.Partitions, arg.Expires, arg.Now
	if err := s.check(ctx); err != nil {
		return nil, wrap("claim", err)
	}
	d, err := s.updateConsumer(ctx, consumer, func(d *consumerDoc) error {
		for _, n := range partitions {
			if n < 0 || n >= len(d.Partitions) {
				continue
			}
			p := &d.Partitions[n]
			if p.Owner == "" || p.Owner == member || fromNanos(p.LeaseExpires).Before(now) {
				if p.Owner != member {
					p.Epoch++
				}
				p.Owner, p.LeaseExpires = member, nanos(expires)
			}
		}
		return nil
	})
	if err != nil {
		return nil, keepNotFound("claim", err)
	}
	held := []store.PartitionInfo{}
	for _, p := range d.Partitions {
		if p.Owner == member {
			held = append(held, p.info())
		}
	}
	return held, nil
}

// Release implements store.Store.
func (s *Store) Release(ctx context.Context, arg store.ReleaseParams) error {
	consumer, member, partitions := arg.Consumer, arg.Member, arg.Partitions
	if err := s.check(ctx); err != nil {
		return wrap("release", err)
	}
	_, err := s.updateConsumer(ctx, consumer, func(d *consumerDoc) error {
		for _, n := range partitions {
			if n >= 0 && n < len(d.Partitions) && d.Partitions[n].Owner == member {
				d.Partitions[n].Owner, d.Partitions[n].LeaseExpires = "", 0
			}
		}
		return nil
	})
	return keepNotFound("release", err)
}

// SaveCheckpoints implements store.Store: one write of the consumer's
// document, so all checkpoints are saved or none.
func (s *Store) SaveCheckpoints(ctx context.Context, arg store.SaveCheckpointsParams) error {
	consumer, member, checkpoints := arg.Consumer, arg.Member, arg.Checkpoints
	if err := s.check(ctx); err != nil {
		return wrap("save checkpoints", err)
	}
	_, err := s.updateConsumer(ctx, consumer, func(d *consumerDoc) error {
		for _, cp := range checkpoints {
			if cp.Partition < 0 || cp.Partition >= len(d.Partitions) || d.Partitions[cp.Partition].Owner != member {
				return fmt.Errorf("monster: consumer %q partition %d is not held by %q: %w", consumer, cp.Partition, member, store.ErrLeaseLost)
			}
		}
		for _, cp := range checkpoints {
			p := &d.Partitions[cp.Partition]
			p.Checkpoint = max(p.Checkpoint, cp.Position)
			p.Failures += cp.FailuresDelta
			p.InFlight = cp.InFlight
		}
		return nil
	})
	return keepNotFound("save checkpoints", err)
}

// ResetConsumer implements store.Store.
func (s *Store) ResetConsumer(ctx context.Context, arg store.ResetConsumerParams) error {
	consumer, position := arg.Consumer, arg.Position
	if err := s.check(ctx); err != nil {
		return wrap("reset consumer", err)
	}
	_, err := s.updateConsumer(ctx, consumer, func(d *consumerDoc) error {
		for i := range d.Partitions {
			p := &d.Partitions[i]
			p.Checkpoint, p.Owner, p.LeaseExpires, p.InFlight = position, "", 0, 0
		}
		return nil
	})
	return keepNotFound("reset consumer", err)
}

// AddDeadLetter implements store.Store.
func (s *Store) AddDeadLetter(ctx context.Context, dl store.DeadLetter) error {
	if err := s.check(ctx); err != nil {
		return wrap("add dead letter", err)
	}
	if err := s.exists(ctx, dl.Consumer); err != nil {
		return keepNotFound("add dead letter", err)
	}
	doc := deadDoc{
		ID: pairID(dl.Consumer, dl.EventID), Consumer: dl.Consumer, EventID: dl.EventID, Type: dl.Type,
		Position: dl.Position, Partition: dl.Partition, Attempts: dl.Attempts, Error: dl.Error,
		FailedAt: nanos(dl.FailedAt),
	}
	_, err := s.dead.ReplaceOne(ctx, id(doc.ID), doc, options.Replace().SetUpsert(true))
	return wrap("add dead letter", err)
}

// DeadLetters implements store.Store.
func (s *Store) DeadLetters(ctx context.Context, q store.DeadLetterQuery) ([]store.DeadLetter, error) {
	consumer := q.Consumer
	if err := s.check(ctx); err != nil {
		return nil, wrap("dead letters", err)
	}
	if err := s.exists(ctx, consumer); err != nil {
		return nil, keepNotFound("dead letters", err)
	}
	filter := bson.D{{Key: "c", Value: consumer}, {Key: "pos", Value: bson.D{{Key: "$gt", Value: q.AfterPosition}}}}
	if q.RetryRequested {
		filter = append(filter, bson.E{Key: "retry", Value: true})
	}
	opts := options.Find().SetSort(bson.D{{Key: "pos", Value: 1}, {Key: "_id", Value: 1}})
	if q.Limit > 0 {
		opts.SetLimit(int64(q.Limit))
	}
	cur, err := s.dead.Find(ctx, filter, opts)
	if err != nil {
		return nil, wrap("dead letters", err)
	}
	var docs []deadDoc
	if err := cur.All(ctx, &docs); err != nil {
		return nil, wrap("dead letters", err)
	}
	var out []store.DeadLetter
	for _, d := range docs {
		out = append(out, d.letter())
	}
	return out, nil
}

// RequestRetry implements store.Store.
func (s *Store) RequestRetry(ctx context.Context, sel store.DeadLetterSelection) (int, error) {
	consumer, ids := sel.Consumer, sel.IDs
	return s.eachDeadLetter(ctx, "request retry", consumer, ids, func(filter bson.D) (int64, error) {
		res, err := s.dead.UpdateMany(ctx, filter, bson.D{{Key: "$set", Value: bson.D{{Key: "retry", Value: true}}}})
		if err != nil {
			return 0, err
		}
		return res.MatchedCount, nil
	})
}

// DeleteDeadLetters implements store.Store.
func (s *Store) DeleteDeadLetters(ctx context.Context, sel store.DeadLetterSelection) (int, error) {
	consumer, ids := sel.Consumer, sel.IDs
	return s.eachDeadLetter(ctx, "delete dead letters", consumer, ids, func(filter bson.D) (int64, error) {
		res, err := s.dead.DeleteMany(ctx, filter)
		if err != nil {
			return 0, err
		}
		return res.DeletedCount, nil
	})
}

// eachDeadLetter checks that every named dead letter exists, then applies
// fn to them (all of the consumer's when ids is nil) in one multi-document
// write.
func (s *Store) eachDeadLetter(ctx context.Context, what, consumer string, ids []string, fn func(bson.D) (int64, error)) (int, error) {
	if err := s.check(ctx); err != nil {
		return 0, wrap(what, err)
	}
	if err := s.exists(ctx, consumer); err != nil {
		return 0, keepNotFound(what, err)
	}
	filter := bson.D{{Key: "c", Value: consumer}}
	if ids != nil {
		ids = slices.Compact(slices.Sorted(slices.Values(ids)))
		pairs := make([]string, len(ids))
		for i, eid := range ids {
			pairs[i] = pairID(consumer, eid)
		}
		filter = bson.D{{Key: "_id", Value: bson.D{{Key: "$in", Value: pairs}}}}
		cur, err := s.dead.Find(ctx, filter, options.Find().SetProjection(bson.D{{Key: "event_id", Value: 1}}))
		if err != nil {
			return 0, wrap(what, err)
		}
		var docs []deadDoc
		if err := cur.All(ctx, &docs); err != nil {
			return 0, wrap(what, err)
		}
		if len(docs) != len(ids) {
			have := map[string]bool{}
			for _, d := range docs {
				have[d.EventID] = true
			}
			for _, eid := range ids {
				if !have[eid] {
					return 0, fmt.Errorf("monster: consumer %q has no dead letter for event %q: %w", consumer, eid, store.ErrNotFound)
				}
			}
		}
	}
	n, err := fn(filter)
	if err != nil {
		return 0, wrap(what, err)
	}
	return int(n), nil
}
