package mongodb

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"
	"unicode/utf8"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/gomonster/monster/store"
)

// headDoc is the counters document with _id "log".
type headDoc struct {
	Committed int64       `bson:"committed"`
	Owner     string      `bson:"owner"`
	Until     int64       `bson:"until"`
	Dirty     bool        `bson:"dirty"`
	Counts    []typeCount `bson:"counts"`
	// By is the token of the append that wrote this version.
	By string `bson:"by"`
}

type typeCount struct {
	Type string `bson:"t"`
	N    int64  `bson:"n"`
}

// logDoc is one entry of the global ordering index, monster_log.
type logDoc struct {
	Pos  int64  `bson:"_id"`
	ID   string `bson:"id"`
	Type string `bson:"type"`
	Time int64  `bson:"tns"`
}

// eventDoc is one event in its type's collection.
type eventDoc struct {
	ID             string        `bson:"_id"`
	Pos            int64         `bson:"pos"`
	Type           string        `bson:"type"`
	Time           time.Time     `bson:"time"`
	TimeNanos      int64         `bson:"tns"`
	Key            string        `bson:"key,omitempty"`
	Data           bson.RawValue `bson:"data"`
	Meta           bson.RawValue `bson:"meta,omitempty"`
	IdempotencyKey string        `bson:"idem,omitempty"`
}

func (d *eventDoc) event() store.Event {
	return store.Event{
		ID: d.ID, Type: d.Type, Position: d.Pos, Time: fromNanos(d.TimeNanos), Key: d.Key,
		Data: rawJSON(d.Data), Meta: rawJSON(d.Meta), IdempotencyKey: d.IdempotencyKey,
	}
}

// jsonValue keeps JSON text exactly: as a string (readable in the shell)
// when it is valid UTF-8, else as binary.
func jsonValue(b []byte) any {
	if b == nil {
		return nil
	}
	if utf8.Valid(b) {
		return string(b)
	}
	return bson.Binary{Data: slices.Clone(b)}
}

func rawJSON(v bson.RawValue) []byte {
	switch v.Type {
	case bson.TypeString:
		return []byte(v.StringValue())
	case bson.TypeBinary:
		_, data := v.Binary()
		return slices.Clone(data)
	}
	return nil
}

// readHead returns the log's latest head state.
func (s *Store) readHead(ctx context.Context) (headDoc, error) {
	_, h, err := s.head.latest(ctx, headID)
	return h, err
}

// lockAppend takes the store's append lock: it writes the next version of
// the head with its token as owner, over a head that is free or whose
// owner's lease expired. It returns the version written and the state, and
// waits with a short backoff while another process holds the lock.
func (s *Store) lockAppend(ctx context.Context, token string) (int64, headDoc, error) {
	backoff := time.Millisecond
	for {
		v, h, err := s.head.latest(ctx, headID)
		if err != nil {
			return 0, h, err
		}
		now := time.Now()
		if h.Owner == "" || h.Until < now.UnixNano() {
			next := h
			next.Dirty = h.Dirty || h.Owner != "" // a holder died mid-append
			next.Owner, next.Until, next.By = token, now.Add(s.opts.AppendLease).UnixNano(), token
			ok, err := s.head.put(ctx, headID, v+1, next)
			if err != nil {
				// The insert may have happened (a cancelled context, a lost
				// reply): if the lock is ours, give it back at once rather
				// than leave it to expire.
				if r, err := s.headVersion(v + 1); err == nil && r.Owner == token {
					_, _ = s.abortAppend(v+1, next)
				}
				return 0, h, err
			}
			if ok {
				return v + 1, next, nil
			}
			continue // another appender came first
		}
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return 0, h, ctx.Err()
		case <-t.C:
		}
		backoff = min(2*backoff, 20*time.Millisecond)
	}
}

// endAppend writes the version after the lock's: state as it should be
// after the append (committed or not). It reports false if another
// process wrote that version first (it took the lock over).
func (s *Store) endAppend(ctx context.Context, lockV int64, state headDoc) (bool, error) {
	state.Owner, state.Until = "", 0
	return s.head.put(ctx, headID, lockV+1, state)
}

// abortAppend ends an append that did not commit, leaving the head dirty
// so that the next append removes what it wrote. It reports whether it
// wrote that end: then the append can no longer commit.
func (s *Store) abortAppend(lockV int64, lock headDoc) (bool, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	lock.Dirty = true
	return s.endAppend(ctx, lockV, lock)
}

// cleanup removes what appends that did not commit left behind: every
// document at a position after committed.
func (s *Store) cleanup(ctx context.Context, committed int64) error {
	after := bson.D{{Key: "$gt", Value: committed}}
	cur, err := s.log.Find(ctx, bson.D{{Key: "_id", Value: after}}, options.Find().SetProjection(bson.D{{Key: "type", Value: 1}}))
	if err != nil {
		return err
	}
	var docs []logDoc
	if err := cur.All(ctx, &docs); err != nil {
		return err
	}
	colls := map[string]bool{}
	for _, d := range docs {
		colls[s.CollectionName(d.Type)] = true
	}
	for c := range colls {
		if _, err := s.db.Collection(c).DeleteMany(ctx, bson.D{{Key: "pos", Value: after}}); err != nil {
			return err
		}
	}
	if _, err := s.idem.DeleteMany(ctx, bson.D{{Key: "pos", Value: after}}); err != nil {
		return err
	}
	_, err = s.log.DeleteMany(ctx, bson.D{{Key: "_id", Value: after}})
	return err
}

// ensureType creates the index of a type's collection once per process.
func (s *Store) ensureType(ctx context.Context, coll string) error {
	s.typeMu.Lock()
	ready := s.typeReady[coll]
	s.typeMu.Unlock()
	if ready {
		return nil
	}
	_, err := s.db.Collection(coll).Indexes().CreateOne(ctx, mongo.IndexModel{
		Keys: bson.D{{Key: "pos", Value: 1}}, Options: options.Index().SetName("pos"),
	})
	if err != nil {
		return err
	}
	s.typeMu.Lock()
	s.typeReady[coll] = true
	s.typeMu.Unlock()
	return nil
}

// The times the store accepts: BSON keeps far more, but the years 1 to 9999
// are what RFC 3339 (the HTTP API, the command line) can write.
var minTime, maxTime = time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(9999, 12, 31, 23, 59, 59, 999999999, time.UTC)

// Append implements store.Store. See the package documentation for how
// it makes a batch visible all at once and in position order.
func (s *Store) Append(ctx context.Context, events []store.NewEvent) ([]store.AppendResult, error) {
	if err := s.check(ctx); err != nil {
		return nil, wrap("append", err)
	}
	if len(events) == 0 {
		return []store.AppendResult{}, nil
	}
	if err := store.ValidateNewEvents("mongodb append", events, minTime, maxTime); err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	for _, e := range events {
		if seen[e.ID] {
			return nil, fmt.Errorf("monster: mongodb append: duplicate event id %q in batch", e.ID)
		}
		seen[e.ID] = true
	}
	select {
	case s.appendMu <- struct{}{}:
	case <-ctx.Done():
		return nil, wrap("append", ctx.Err())
	}
	defer func() { <-s.appendMu }()

	token := newToken()
	lockV, head, err := s.lockAppend(ctx, token)
	if err != nil {
		return nil, wrap("append: lock", err)
	}
	res, err := s.appendLocked(ctx, lockV, head, events)
	if err == nil {
		return res, nil
	}
	if errors.Is(err, errCommitUnknown) {
		// The commit was sent; settle its outcome by writing the version
		// it would have written, as an abort.
		aborted, abortErr := s.abortAppend(lockV, head)
		switch {
		case abortErr != nil:
			return nil, fmt.Errorf("monster: mongodb append: %w: %w", store.ErrAmbiguousCommit, err)
		case aborted:
			return nil, wrap("append", err)
		}
		ok, checkErr := s.committedAs(lockV, token)
		if checkErr != nil {
			return nil, fmt.Errorf("monster: mongodb append: %w: %w", store.ErrAmbiguousCommit, err)
		}
		if ok {
			return res, nil
		}
		return nil, wrap("append: append lock lost", err)
	}
	_, _ = s.abortAppend(lockV, head)
	return nil, err
}

var errCommitUnknown = errors.New("commit failed")

// committedAs reports whether the version after the append's lock is its
// commit.
func (s *Store) committedAs(lockV int64, token string) (bool, error) {
	r, err := s.headVersion(lockV + 1)
	if err != nil {
		return false, err
	}
	return r.By == token && r.Owner == "" && !r.Dirty, nil
}

// headVersion reads version v of the head, with a context of its own.
func (s *Store) headVersion(v int64) (headDoc, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var r record[headDoc]
	err := s.head.records.FindOne(ctx, id(recordID(headID, v))).Decode(&r)
	return r.State, err
}

func (s *Store) appendLocked(ctx context.Context, lockV int64, head headDoc, events []store.NewEvent) ([]store.AppendResult, error) {
	committed := head.Committed
	if head.Dirty {
		if err := s.cleanup(ctx, committed); err != nil {
			return nil, wrap("append: clean up an append that did not commit", err)
		}
	}
	// Idempotency keys already stored.
	var keys []string
	for _, e := range events {
		if e.IdempotencyKey != "" {
			keys = append(keys, e.IdempotencyKey)
		}
	}
	stored := map[string]store.Event{}
	if len(keys) > 0 {
		cur, err := s.idem.Find(ctx, bson.D{
			{Key: "_id", Value: bson.D{{Key: "$in", Value: keys}}},
			{Key: "pos", Value: bson.D{{Key: "$lte", Value: committed}}},
		})
		if err != nil {
			return nil, wrap("append", err)
		}
		var docs []idemDoc
		if err := cur.All(ctx, &docs); err != nil {
			return nil, wrap("append", err)
		}
		var positions []logDoc
		for _, d := range docs {
			positions = append(positions, logDoc{Pos: d.Pos, ID: d.ID, Type: d.Type})
		}
		found, err := s.fetch(ctx, positions)
		if err != nil {
			return nil, wrap("append", err)
		}
		for _, e := range found {
			stored[e.IdempotencyKey] = e
		}
	}

	results := make([]store.AppendResult, len(events))
	var logDocs, idemDocs []any
	byColl := map[string][]any{}
	counts := map[string]int64{}
	next := committed
	for i, e := range events {
		if e.IdempotencyKey != "" {
			if prev, ok := stored[e.IdempotencyKey]; ok {
				results[i] = store.AppendResult{Event: prev, Duplicate: true}
				continue
			}
		}
		next++
		ev := store.Event{
			ID: e.ID, Type: e.Type, Position: next, Time: e.Time.UTC(), Key: e.Key,
			Data: slices.Clone(e.Data), Meta: slices.Clone(e.Meta), IdempotencyKey: e.IdempotencyKey,
		}
		results[i] = store.AppendResult{Event: ev}
		if e.IdempotencyKey != "" {
			stored[e.IdempotencyKey] = ev
			idemDocs = append(idemDocs, idemDoc{Key: e.IdempotencyKey, Pos: next, ID: e.ID, Type: e.Type})
		}
		logDocs = append(logDocs, logDoc{Pos: next, ID: e.ID, Type: e.Type, Time: nanos(ev.Time)})
		doc := bson.D{
			{Key: "_id", Value: e.ID},
			{Key: "pos", Value: next},
			{Key: "type", Value: e.Type},
			{Key: "time", Value: ev.Time},
			{Key: "tns", Value: nanos(ev.Time)},
		}
		if e.Key != "" {
			doc = append(doc, bson.E{Key: "key", Value: e.Key})
		}
		doc = append(doc, bson.E{Key: "data", Value: jsonValue(e.Data)})
		if e.Meta != nil {
			doc = append(doc, bson.E{Key: "meta", Value: jsonValue(e.Meta)})
		}
		if e.IdempotencyKey != "" {
			doc = append(doc, bson.E{Key: "idem", Value: e.IdempotencyKey})
		}
		coll := s.CollectionName(e.Type)
		byColl[coll] = append(byColl[coll], doc)
		counts[e.Type]++
	}
	if next == committed {
		// Every event was a duplicate: nothing to write; release the lock.
		if _, err := s.endAppend(context.WithoutCancel(ctx), lockV, headDoc{Committed: committed, Counts: head.Counts, By: head.By}); err != nil {
			return nil, wrap("append", err)
		}
		return results, nil
	}
	// Write the ordering index first (cleanup finds the type collections
	// through it), then the idempotency keys and the events. A duplicate
	// key here means leftovers at uncommitted positions (an appender whose
	// lease expired kept writing): remove them and write again, once.
	for attempt := 0; ; attempt++ {
		err := s.writeBatch(ctx, logDocs, idemDocs, byColl)
		if err == nil {
			break
		}
		if !mongo.IsDuplicateKeyError(err) {
			return nil, wrap("append", err)
		}
		if attempt > 0 {
			// Leftovers are gone, so the duplicate is a committed event's
			// ID (monster_log's unique index on id refuses it).
			return nil, fmt.Errorf("monster: mongodb append: an event ID of the batch is already stored: %w: %w", store.ErrConflict, err)
		}
		if err := s.cleanup(ctx, committed); err != nil {
			return nil, wrap("append: clean up", err)
		}
	}
	// Commit: one insert of the head's next version moves the committed
	// position past the batch and releases the lock, if this append still
	// holds it.
	newCounts := slices.Clone(head.Counts)
	for i := range newCounts {
		if n, ok := counts[newCounts[i].Type]; ok {
			newCounts[i].N += n
			delete(counts, newCounts[i].Type)
		}
	}
	for typ, n := range counts {
		newCounts = append(newCounts, typeCount{Type: typ, N: n})
	}
	if err := ctx.Err(); err != nil {
		return nil, wrap("append", err)
	}
	ok, err := s.endAppend(ctx, lockV, headDoc{Committed: next, Counts: newCounts, By: head.By})
	if err != nil {
		return results, fmt.Errorf("%w: %w", errCommitUnknown, err)
	}
	if !ok {
		return nil, errors.New("monster: mongodb append: the append lock was lost (lease expired); nothing was stored")
	}
	return results, nil
}

// writeBatch inserts an append's documents.
func (s *Store) writeBatch(ctx context.Context, logDocs, idemDocs []any, byColl map[string][]any) error {
	if _, err := s.log.InsertMany(ctx, logDocs); err != nil {
		return err
	}
	if len(idemDocs) > 0 {
		if _, err := s.idem.InsertMany(ctx, idemDocs); err != nil {
			return err
		}
	}
	for coll, docs := range byColl {
		if err := s.ensureType(ctx, coll); err != nil {
			return err
		}
		if _, err := s.db.Collection(coll).InsertMany(ctx, docs); err != nil {
			return err
		}
	}
	return nil
}

type idemDoc struct {
	Key  string `bson:"_id"`
	Pos  int64  `bson:"pos"`
	ID   string `bson:"id"`
	Type string `bson:"type"`
}

// fetch loads the events the log entries name from their type
// collections, in the entries' order.
func (s *Store) fetch(ctx context.Context, entries []logDoc) ([]store.Event, error) {
	byColl := map[string][]string{}
	for _, e := range entries {
		c := s.CollectionName(e.Type)
		byColl[c] = append(byColl[c], e.ID)
	}
	docs := map[string]*eventDoc{}
	for c, ids := range byColl {
		cur, err := s.db.Collection(c).Find(ctx, bson.D{{Key: "_id", Value: bson.D{{Key: "$in", Value: ids}}}})
		if err != nil {
			return nil, err
		}
		var found []*eventDoc
		if err := cur.All(ctx, &found); err != nil {
			return nil, err
		}
		for _, d := range found {
			docs[d.ID] = d
		}
	}
	out := make([]store.Event, 0, len(entries))
	for _, e := range entries {
		d, ok := docs[e.ID]
		if !ok || d.Pos != e.Pos {
			return nil, fmt.Errorf("event %q at position %d is missing from collection %s", e.ID, e.Pos, s.CollectionName(e.Type))
		}
		out = append(out, d.event())
	}
	return out, nil
}

// Read implements store.Store.
func (s *Store) Read(ctx context.Context, arg store.ReadParams) ([]store.Event, error) {
	after, limit := arg.After, arg.Limit
	if err := s.check(ctx); err != nil {
		return nil, wrap("read", err)
	}
	h, err := s.readHead(ctx)
	if err != nil {
		return nil, wrap("read", err)
	}
	if limit <= 0 || after >= h.Committed {
		return []store.Event{}, nil
	}
	cur, err := s.log.Find(ctx, bson.D{{Key: "_id", Value: bson.D{
		{Key: "$gt", Value: after}, {Key: "$lte", Value: h.Committed},
	}}}, options.Find().SetSort(bson.D{{Key: "_id", Value: 1}}).SetLimit(int64(limit)))
	if err != nil {
		return nil, wrap("read", err)
	}
	var entries []logDoc
	if err := cur.All(ctx, &entries); err != nil {
		return nil, wrap("read", err)
	}
	events, err := s.fetch(ctx, entries)
	return events, wrap("read", err)
}

// EventByID implements store.Store.
func (s *Store) EventByID(ctx context.Context, eventID string) (store.Event, error) {
	if err := s.check(ctx); err != nil {
		return store.Event{}, wrap("event by id", err)
	}
	h, err := s.readHead(ctx)
	if err != nil {
		return store.Event{}, wrap("event by id", err)
	}
	var entry logDoc
	err = s.log.FindOne(ctx, bson.D{{Key: "id", Value: eventID}, {Key: "_id", Value: bson.D{{Key: "$lte", Value: h.Committed}}}}).Decode(&entry)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return store.Event{}, fmt.Errorf("monster: event %q: %w", eventID, store.ErrNotFound)
	}
	if err != nil {
		return store.Event{}, wrap("event by id", err)
	}
	events, err := s.fetch(ctx, []logDoc{entry})
	if err != nil {
		return store.Event{}, wrap("event by id", err)
	}
	return events[0], nil
}

// Head implements store.Store.
func (s *Store) Head(ctx context.Context) (int64, error) {
	if err := s.check(ctx); err != nil {
		return 0, wrap("head", err)
	}
	h, err := s.readHead(ctx)
	if err != nil {
		return 0, wrap("head", err)
	}
	return h.Committed, nil
}

// PositionBefore implements store.Store.
func (s *Store) PositionBefore(ctx context.Context, t time.Time) (int64, error) {
	if err := s.check(ctx); err != nil {
		return 0, wrap("position before", err)
	}
	h, err := s.readHead(ctx)
	if err != nil {
		return 0, wrap("position before", err)
	}
	var entry logDoc
	err = s.log.FindOne(ctx, bson.D{
		{Key: "_id", Value: bson.D{{Key: "$lte", Value: h.Committed}}},
		{Key: "tns", Value: bson.D{{Key: "$lt", Value: t.UnixNano()}}},
	}, options.FindOne().SetSort(bson.D{{Key: "_id", Value: -1}})).Decode(&entry)
	if errors.Is(err, mongo.ErrNoDocuments) {
		return 0, nil
	}
	if err != nil {
		return 0, wrap("position before", err)
	}
	return entry.Pos, nil
}

// CountByType implements store.Store. With after 0 it answers from the
// counts kept in the head document, without scanning.
func (s *Store) CountByType(ctx context.Context, after int64) (map[string]int64, error) {
	if err := s.check(ctx); err != nil {
		return nil, wrap("count by type", err)
	}
	h, err := s.readHead(ctx)
	if err != nil {
		return nil, wrap("count by type", err)
	}
	out := map[string]int64{}
	if after <= 0 {
		for _, c := range h.Counts {
			out[c.Type] = c.N
		}
		return out, nil
	}
	if after >= h.Committed {
		return out, nil
	}
	cur, err := s.log.Find(ctx, bson.D{{Key: "_id", Value: bson.D{
		{Key: "$gt", Value: after}, {Key: "$lte", Value: h.Committed},
	}}}, options.Find().SetProjection(bson.D{{Key: "type", Value: 1}}))
	if err != nil {
		return nil, wrap("count by type", err)
	}
	defer cur.Close(ctx)
	for cur.Next(ctx) {
		var d logDoc
		if err := cur.Decode(&d); err != nil {
			return nil, wrap("count by type", err)
		}
		out[d.Type]++
	}
	return out, wrap("count by type", cur.Err())
}
