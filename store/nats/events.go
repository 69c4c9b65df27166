package nats

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	natsgo "github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nuid"

	"github.com/gomonster/monster/store"
)

// Event times are kept as int64 Unix nanoseconds.
var (
	earliestTime = time.Date(1678, 1, 1, 0, 0, 0, 0, time.UTC)
	latestTime   = time.Date(2262, 1, 1, 0, 0, 0, 0, time.UTC)
)

// Headers of JetStream's atomic batch publish (ADR-50) and of its
// per-subject compare-and-set.
const (
	hdrBatchID       = "Nats-Batch-Id"
	hdrBatchSequence = "Nats-Batch-Sequence"
	hdrBatchCommit   = "Nats-Batch-Commit"
	hdrExpectLastSub = "Nats-Expected-Last-Subject-Sequence"
	hdrNumPending    = "Nats-Num-Pending" // in a batched direct get's end of batch
)

// batchHeaderRoom is what an event's message carries besides its envelope:
// the batch's headers, with room to spare.
const batchHeaderRoom = 256

// appendAttempts bounds the retries of an Append whose batch the server
// turned away without storing it: a batch that lost to a concurrent one
// on an idempotency key, or one beyond the server's limit of batches in
// flight.
const appendAttempts = 8

// validType reports whether typ can end a subject: dot-separated tokens
// without wildcards or spaces.
func validType(typ string) bool {
	for tok := range strings.SplitSeq(typ, ".") {
		if tok == "" || strings.ContainsAny(tok, " \t\r\n*>") {
			return false
		}
	}
	return true
}

// Append implements store.Store: the events, an ID marker for each and an
// idempotency marker for each with a key, in one atomic batch.
func (s *Store) Append(ctx context.Context, events []store.NewEvent) ([]store.AppendResult, error) {
	if err := s.check(ctx, "append"); err != nil {
		return nil, err
	}
	if err := store.ValidateNewEvents("nats append", events, earliestTime, latestTime); err != nil {
		return nil, err
	}
	for i := range events {
		if !validType(events[i].Type) {
			return nil, fmt.Errorf("monster: nats append: event %q: type %q is not a valid NATS subject (dot-separated words without spaces, '*' or '>')",
				events[i].ID, events[i].Type)
		}
	}
	// dupOf[i] is the earlier event of the call with i's idempotency key.
	dupOf := make([]int, len(events))
	firstWithKey := map[string]int{}
	for i := range events {
		dupOf[i] = -1
		if k := events[i].IdempotencyKey; k != "" {
			if j, ok := firstWithKey[k]; ok {
				dupOf[i] = j
			} else {
				firstWithKey[k] = i
			}
		}
	}
	results := make([]store.AppendResult, len(events))
	stored := make([]bool, len(events)) // found under its key, stored earlier
	for attempt := 1; ; attempt++ {
		var pending []int
		for i := range events {
			if dupOf[i] < 0 && !stored[i] {
				pending = append(pending, i)
			}
		}
		if len(pending) == 0 {
			break
		}
		positions, err := s.publishBatch(ctx, events, pending)
		if noAck := (*errNoAck)(nil); errors.As(err, &noAck) {
			// The acknowledgement was lost; the batch may be stored.
			if found, ok := s.committedAnyway(ctx, events, pending); ok {
				positions, err = found, nil
			}
		}
		if err == nil {
			for k, i := range pending {
				results[i] = store.AppendResult{Event: storedEvent(&events[i], positions[k])}
			}
			break
		}
		retry := false
		switch {
		case isWrongLastSeq(err):
			// An idempotency key is taken (those events are stored
			// already), or an event ID.
			found := false
			for _, i := range pending {
				key := events[i].IdempotencyKey
				if key == "" {
					continue
				}
				ev, err := s.eventByIdempotencyKey(ctx, key)
				if errors.Is(err, store.ErrNotFound) {
					continue
				}
				if err != nil {
					return nil, store.OpError(ctx, "nats", "append", err)
				}
				results[i], stored[i] = store.AppendResult{Event: ev, Duplicate: true}, true
				found = true
			}
			if !found {
				if err := s.checkNewIDs(ctx, events, pending); err != nil {
					return nil, err
				}
			}
			retry = true
		case isBatchTurnedAway(err):
			retry = true
		}
		if !retry || attempt == appendAttempts {
			return nil, s.appendError(ctx, err)
		}
		if err := sleep(ctx, time.Duration(attempt)*5*time.Millisecond); err != nil {
			return nil, store.OpError(ctx, "nats", "append", err)
		}
	}
	for i := range events {
		if j := dupOf[i]; j >= 0 {
			results[i] = store.AppendResult{Event: results[j].Event, Duplicate: true}
		}
	}
	// Wake consumers in other processes (store.Notifier); best effort.
	_ = s.appendConn.Publish(s.names.wakeSubject, nil)
	return results, nil
}

// isBatchTurnedAway reports a batch the server refused before storing any
// of it, which may be sent again: too many batches in flight (10210), or
// incomplete because its first message was refused for that reason.
func isBatchTurnedAway(err error) bool {
	var ae *apiError
	return errors.As(err, &ae) && (ae.ErrCode == 10210 || ae.ErrCode == 10176)
}

// committedAnyway finds out whether a batch whose acknowledgement was
// lost was committed: the batch is atomic, so it was if its first event's
// ID marker is stored, and then its positions follow from the marker's.
// ok is false when the batch is not found (it may still be committing) or
// the store cannot tell: the outcome stays unknown.
func (s *Store) committedAnyway(ctx context.Context, events []store.NewEvent, pending []int) ([]int64, bool) {
	if ctx.Err() != nil {
		return nil, false
	}
	first := events[pending[0]]
	ev, err := s.eventByMarker(ctx, s.names.idSubj+token(first.ID))
	if err != nil || ev.ID != first.ID || !bytes.Equal(ev.Data, first.Data) || !ev.Time.Equal(first.Time) {
		return nil, false
	}
	positions := make([]int64, len(pending))
	offset := int64(0)
	for k, i := range pending {
		positions[k] = ev.Position + offset
		offset += 2
		if events[i].IdempotencyKey != "" {
			offset++
		}
	}
	return positions, true
}

// checkNewIDs fails if the ID of one of events[pending] is stored.
func (s *Store) checkNewIDs(ctx context.Context, events []store.NewEvent, pending []int) error {
	seen := map[string]bool{}
	for _, i := range pending {
		id := events[i].ID
		if seen[id] {
			return store.Errorf(store.ErrConflict, "monster: nats append: event ID %q appears twice: %v", id, store.ErrConflict)
		}
		seen[id] = true
		_, err := s.eventByMarker(ctx, s.names.idSubj+token(id))
		switch {
		case err == nil:
			return store.Errorf(store.ErrConflict, "monster: nats append: event ID %q is already stored: %v", id, store.ErrConflict)
		case !isNoMessage(err):
			return store.OpError(ctx, "nats", "append", err)
		}
	}
	return nil
}

func (s *Store) appendError(ctx context.Context, err error) error {
	var noAck *errNoAck
	var ae *apiError
	switch {
	case errors.As(err, &noAck):
		return store.AmbiguousCommitError("nats", "append", err)
	case errors.As(err, &ae) && ae.ErrCode == errCodeBatchTooLarge:
		return store.Errorf(store.ErrTooManyEvents, "monster: nats append: the server refused the atomic batch as too large (%v): an event takes 2 messages, 3 with an idempotency key; append fewer events at a time, or raise the servers' jetstream { limits { max_batch_size } }",
			err)
	}
	return store.OpError(ctx, "nats", "append", err)
}

func storedEvent(e *store.NewEvent, position int64) store.Event {
	return store.Event{
		ID: e.ID, Type: e.Type, Position: position, Time: e.Time.UTC(), Key: e.Key,
		Data: e.Data, Meta: e.Meta, IdempotencyKey: e.IdempotencyKey,
	}
}

// publishBatch stores events[pending] in one atomic batch and returns
// their positions. An *errNoAck error means the outcome is unknown; any
// other error, that nothing was stored.
func (s *Store) publishBatch(ctx context.Context, events []store.NewEvent, pending []int) ([]int64, error) {
	var msgs []*natsgo.Msg
	offsets := make([]int, len(pending)) // of each event in the batch
	maxPayload := s.appendConn.MaxPayload()
	for k, i := range pending {
		e := &events[i]
		offsets[k] = len(msgs)
		ev := natsgo.NewMsg(s.names.eventSubj + e.Type)
		ev.Data = encodeEnvelope(e)
		// The client would refuse it too, in words that do not say which
		// event or which setting.
		if size := int64(len(ev.Data)) + batchHeaderRoom; maxPayload > 0 && size > maxPayload {
			return nil, store.Errorf(nil, "monster: nats append: event %q of type %q takes %d bytes, over the servers' max_payload of %d: raise max_payload (8MB suits the runtime's 1 MiB events)",
				e.ID, e.Type, size, maxPayload)
		}
		id := natsgo.NewMsg(s.names.idSubj + token(e.ID))
		id.Data = []byte("1") // the event is 1 message before
		// An ID is stored once: the batch fails if the ID's marker exists.
		id.Header.Set(hdrExpectLastSub, "0")
		msgs = append(msgs, ev, id)
		if e.IdempotencyKey != "" {
			idem := natsgo.NewMsg(s.names.idemSubj + token(e.IdempotencyKey))
			idem.Data = []byte("2")
			// Expecting no earlier message on the key's subject makes the
			// whole batch fail if the key is stored, however long ago.
			idem.Header.Set(hdrExpectLastSub, "0")
			msgs = append(msgs, idem)
		}
	}
	if limit := s.opts.MaxBatchMessages; limit > 0 && len(msgs) > limit {
		return nil, store.Errorf(store.ErrTooManyEvents, "monster: nats append: %d events need %d messages in one atomic batch, over the limit of %d (Options.MaxBatchMessages, the servers' max_batch_size): append fewer at a time",
			len(pending), len(msgs), limit)
	}
	batchID := nuid.Next()
	for j, m := range msgs {
		m.Header.Set(hdrBatchID, batchID)
		m.Header.Set(hdrBatchSequence, strconv.Itoa(j+1))
	}
	last := msgs[len(msgs)-1]
	last.Header.Set(hdrBatchCommit, "1")
	for _, m := range msgs[:len(msgs)-1] {
		if err := s.appendConn.PublishMsg(m); err != nil {
			return nil, err // no commit sent: the server drops the batch
		}
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	ack, err := s.request(ctx, s.appendConn, last)
	if err != nil {
		return nil, err
	}
	if ack.Count != len(msgs) || ack.Seq < uint64(len(msgs)) {
		return nil, &errNoAck{fmt.Errorf("acknowledgement of batch %s counts %d messages at sequence %d, want %d", batchID, ack.Count, ack.Seq, len(msgs))}
	}
	first := int64(ack.Seq) - int64(len(msgs)) + 1
	positions := make([]int64, len(pending))
	for k := range pending {
		positions[k] = first + int64(offsets[k])
	}
	return positions, nil
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// eventAt reads the event at position seq through the leader.
func (s *Store) eventAt(ctx context.Context, seq uint64) (store.Event, error) {
	m, err := s.leaderGet(ctx, s.names.events, msgGetRequest{Seq: seq})
	if err != nil {
		return store.Event{}, err
	}
	var ev store.Event
	return ev, s.decodeEvent(m.Subject, m.Seq, m.Data, &ev)
}

func (s *Store) decodeEvent(subject string, seq uint64, body []byte, ev *store.Event) error {
	typ, ok := strings.CutPrefix(subject, s.names.eventSubj)
	if !ok {
		return fmt.Errorf("message %d on %q is not an event", seq, subject)
	}
	if err := decodeEnvelope(body, ev); err != nil {
		return fmt.Errorf("message %d on %q: %w", seq, subject, err)
	}
	if ev.Type != typ {
		return fmt.Errorf("message %d on %q holds an event of type %q", seq, subject, ev.Type)
	}
	ev.Position = int64(seq)
	return nil
}

// eventByMarker reads the event that the marker on subject points to.
func (s *Store) eventByMarker(ctx context.Context, subject string) (store.Event, error) {
	m, err := s.leaderGet(ctx, s.names.events, msgGetRequest{LastFor: subject})
	if err != nil {
		return store.Event{}, err
	}
	back, err := strconv.ParseUint(string(m.Data), 10, 8)
	if err != nil || back == 0 || back >= m.Seq {
		return store.Event{}, fmt.Errorf("marker %d on %q is malformed", m.Seq, subject)
	}
	return s.eventAt(ctx, m.Seq-back)
}

func (s *Store) eventByIdempotencyKey(ctx context.Context, key string) (store.Event, error) {
	ev, err := s.eventByMarker(ctx, s.names.idemSubj+token(key))
	if isNoMessage(err) {
		return ev, store.ErrNotFound
	}
	return ev, err
}

// EventByID implements store.Store.
func (s *Store) EventByID(ctx context.Context, id string) (store.Event, error) {
	if err := s.check(ctx, "event by id"); err != nil {
		return store.Event{}, err
	}
	ev, err := s.eventByMarker(ctx, s.names.idSubj+token(id))
	switch {
	case isNoMessage(err):
		return store.Event{}, store.Errorf(store.ErrNotFound, "monster: nats: event %q: %v", id, store.ErrNotFound)
	case err != nil:
		return store.Event{}, store.OpError(ctx, "nats", "event by id", err)
	case ev.ID != id:
		return store.Event{}, store.Errorf(nil, "monster: nats event by id: the marker of %q points at event %q", id, ev.ID)
	}
	return ev, nil
}

// Read implements store.Store. It reads with batched direct gets, which
// any replica may answer; when a replica runs out of events before the
// limit, the leader is asked whether there is a next one, so a read never
// misses an event that was acknowledged before it began.
func (s *Store) Read(ctx context.Context, p store.ReadParams) ([]store.Event, error) {
	if err := s.check(ctx, "read"); err != nil {
		return nil, err
	}
	out := []store.Event{}
	next := uint64(max(p.After, 0)) + 1
	for len(out) < p.Limit {
		var err error
		var more bool
		out, next, more, err = s.directBatch(ctx, next, p.Limit, out)
		if err != nil {
			return nil, store.OpError(ctx, "nats", "read", err)
		}
		if len(out) == p.Limit || more {
			continue
		}
		if !s.replicated {
			break
		}
		m, err := s.leaderGet(ctx, s.names.events, msgGetRequest{Seq: next, NextFor: s.names.eventSubj + ">"})
		if isNoMessage(err) {
			break
		}
		if err != nil {
			return nil, store.OpError(ctx, "nats", "read", err)
		}
		out = store.GrowEvents(out, p.Limit)
		out = out[:len(out)+1]
		if err := s.decodeEvent(m.Subject, m.Seq, m.Data, &out[len(out)-1]); err != nil {
			return nil, store.OpError(ctx, "nats", "read", err)
		}
		next = m.Seq + 1
	}
	return out, nil
}

// directBatch appends to out the events from sequence seq on, up to limit
// in all, read with one batched direct get, and returns the sequence to
// read from next, and whether the replica has more messages after it.
//
// It asks for every message (events and markers) from seq on, bodies
// only: the server then sends each stored message as it is, without
// formatting headers, and the client parses none, which more than doubled
// the events read per second. An event's type is in its body, and its
// position is its place in the batch: the events stream never has gaps
// (deletes and purges are denied, there are no limits), and the end of
// batch gives the last sequence sent, which checks that no sequence was
// skipped. If one was, the batch is read again with headers.
func (s *Store) directBatch(ctx context.Context, seq uint64, limit int, out []store.Event) ([]store.Event, uint64, bool, error) {
	ctx, cancel := s.callContext(ctx)
	defer cancel()
	var next uint64
	var more bool
	start := len(out)
	err := s.retryRead(ctx, func(attempt context.Context) error {
		var err error
		out, next, more, err = s.directBatchOnce(attempt, seq, limit, out[:start])
		return err
	})
	return out, next, more, callError(ctx, err)
}

func (s *Store) directBatchOnce(ctx context.Context, seq uint64, limit int, out []store.Event) ([]store.Event, uint64, bool, error) {
	inbox := s.nc.NewRespInbox()
	sub, err := s.nc.SubscribeSync(inbox)
	if err != nil {
		return out, seq, false, err
	}
	defer func() { _ = sub.Unsubscribe() }()
	// Each event comes with one or two markers.
	want := 2*(limit-len(out)) + 1
	req := fmt.Appendf(nil, `{"seq":%d,"batch":%d,"no_hdr":true}`, seq, want)
	if err := s.nc.PublishRequest("$JS.API.DIRECT.GET."+s.names.events, inbox, req); err != nil {
		return out, seq, false, err
	}
	start := len(out)
	n := seq // the sequence of the next message, if there are no gaps
	next := seq
	for {
		m, err := sub.NextMsgWithContext(ctx)
		if err != nil {
			return out[:start], seq, false, err
		}
		if len(m.Header) > 0 {
			switch status := m.Header.Get("Status"); status {
			case "":
				// A server that ignores no_hdr: read with headers.
				return s.directBatchWithHeaders(ctx, seq, limit, out[:start])
			case "204": // end of batch
				last, err := strconv.ParseUint(m.Header.Get(jetstream.LastSequenceHeader), 10, 64)
				if err != nil || (n > seq && last != n-1) {
					// A gap: positions cannot be counted.
					return s.directBatchWithHeaders(ctx, seq, limit, out[:start])
				}
				pending, _ := strconv.ParseUint(m.Header.Get(hdrNumPending), 10, 64)
				return out, next, pending > 0 && len(out) < limit, nil
			case "404": // nothing at or after seq
				return out, seq, false, nil
			case "503":
				return out[:start], seq, false, fmt.Errorf("stream %q: %w", s.names.events, errNoDirectGets)
			default:
				return out[:start], seq, false, fmt.Errorf("direct get on stream %q: %s %s", s.names.events, status, m.Header.Get("Description"))
			}
		}
		if isEnvelope(m.Data) && len(out) < limit {
			out = store.GrowEvents(out, limit)
			out = out[:len(out)+1]
			ev := &out[len(out)-1]
			if err := decodeEnvelope(m.Data, ev); err != nil {
				return out[:start], seq, false, fmt.Errorf("message %d: %w", n, err)
			}
			ev.Position = int64(n)
			next = n + 1
		} else if len(out) < limit {
			next = n + 1 // a marker, passed
		}
		n++
	}
}

// directBatchWithHeaders is directBatch for a batch whose sequences must
// be read from each message's headers.
func (s *Store) directBatchWithHeaders(ctx context.Context, seq uint64, limit int, out []store.Event) ([]store.Event, uint64, bool, error) {
	inbox := s.nc.NewRespInbox()
	sub, err := s.nc.SubscribeSync(inbox)
	if err != nil {
		return out, seq, false, err
	}
	defer func() { _ = sub.Unsubscribe() }()
	req := fmt.Appendf(nil, `{"seq":%d,"batch":%d,"next_by_subj":%q}`, seq, limit-len(out), s.names.eventSubj+">")
	if err := s.nc.PublishRequest("$JS.API.DIRECT.GET."+s.names.events, inbox, req); err != nil {
		return out, seq, false, err
	}
	for {
		m, err := sub.NextMsgWithContext(ctx)
		if err != nil {
			return out, seq, false, callError(ctx, err)
		}
		switch status := m.Header.Get("Status"); status {
		case "":
		case "204", "404":
			return out, seq, false, nil
		case "503":
			return out, seq, false, fmt.Errorf("stream %q: %w", s.names.events, errNoDirectGets)
		default:
			return out, seq, false, fmt.Errorf("direct get on stream %q: %s %s", s.names.events, status, m.Header.Get("Description"))
		}
		n, err := strconv.ParseUint(m.Header.Get(jetstream.SequenceHeader), 10, 64)
		if err != nil {
			return out, seq, false, fmt.Errorf("direct get on stream %q: bad sequence %q", s.names.events, m.Header.Get(jetstream.SequenceHeader))
		}
		out = store.GrowEvents(out, limit)
		out = out[:len(out)+1]
		if err := s.decodeEvent(m.Header.Get(jetstream.SubjectHeader), n, m.Data, &out[len(out)-1]); err != nil {
			return out[:len(out)-1], seq, false, err
		}
		seq = n + 1
		if len(out) == limit {
			return out, seq, false, nil
		}
	}
}

// Head implements store.Store: the last message on an event subject,
// through the leader.
func (s *Store) Head(ctx context.Context) (int64, error) {
	if err := s.check(ctx, "head"); err != nil {
		return 0, err
	}
	m, err := s.leaderGet(ctx, s.names.events, msgGetRequest{LastFor: s.names.eventSubj + ">"})
	if isNoMessage(err) {
		return 0, nil
	}
	if err != nil {
		return 0, store.OpError(ctx, "nats", "head", err)
	}
	return int64(m.Seq), nil
}

// scanPage is how many events PositionBefore and CountByType read at once.
const scanPage = 512

// PositionBefore implements store.Store. Event times are the producers',
// not the server's, so it reads the log through; see the package
// documentation.
func (s *Store) PositionBefore(ctx context.Context, t time.Time) (int64, error) {
	if err := s.check(ctx, "position before"); err != nil {
		return 0, err
	}
	var best, after int64
	for {
		page, err := s.Read(ctx, store.ReadParams{After: after, Limit: scanPage})
		if err != nil {
			return 0, store.OpError(ctx, "nats", "position before", err)
		}
		for _, e := range page {
			if e.Time.Before(t) {
				best = e.Position
			}
		}
		if len(page) < scanPage {
			return best, nil
		}
		after = page[len(page)-1].Position
	}
}

// CountByType implements store.Store: for the whole log, from the
// stream's count of messages per subject, without reading events.
func (s *Store) CountByType(ctx context.Context, after int64) (map[string]int64, error) {
	if err := s.check(ctx, "count by type"); err != nil {
		return nil, err
	}
	counts := map[string]int64{}
	if after <= 0 {
		c, cancel := s.callContext(ctx)
		defer cancel()
		st, err := s.js.Stream(c, s.names.events)
		if err != nil {
			return nil, store.OpError(ctx, "nats", "count by type", callError(c, err))
		}
		info, err := st.Info(c, jetstream.WithSubjectFilter(s.names.eventSubj+">"))
		if err != nil {
			return nil, store.OpError(ctx, "nats", "count by type", callError(c, err))
		}
		for subj, n := range info.State.Subjects {
			counts[strings.TrimPrefix(subj, s.names.eventSubj)] = int64(n)
		}
		return counts, nil
	}
	for {
		page, err := s.Read(ctx, store.ReadParams{After: after, Limit: scanPage})
		if err != nil {
			return nil, store.OpError(ctx, "nats", "count by type", err)
		}
		for _, e := range page {
			counts[e.Type]++
		}
		if len(page) < scanPage {
			return counts, nil
		}
		after = page[len(page)-1].Position
	}
}
