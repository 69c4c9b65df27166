package daemon

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/gomonster/monster"
	"github.com/gomonster/monster/store"
)

// Local runs Operations on a Monster: the daemon's handlers use it, and so
// does the command line when it works on a store directly.
type Local struct {
	m *monster.Monster
	// declared lists the types declared in the daemon's configuration.
	declared map[string]bool
	// webhooks, in the daemon, adds webhook targets to consumer listings.
	webhooks *webhooks
	// poll is how often Tail looks for events from other processes.
	poll time.Duration
	// onLog, when set, is told of every stored event (metrics).
	onLog func([]Event)
}

// NewLocal returns Operations on m. Tail looks for events logged by other
// processes every poll (0: 100ms), and at once for events logged through m
// when m's store notifies.
func NewLocal(m *monster.Monster, poll time.Duration) *Local {
	if poll <= 0 {
		poll = 100 * time.Millisecond
	}
	return &Local{m: m, poll: poll}
}

// Monster returns the Monster the operations run on.
func (l *Local) Monster() *monster.Monster { return l.m }

// Log implements Operations.
func (l *Local) Log(ctx context.Context, events []NewEvent) ([]Event, error) {
	if len(events) == 0 {
		return nil, newError(http.StatusBadRequest, CodeInvalidField, "no events to log")
	}
	entries := make([]monster.Entry, len(events))
	for i, e := range events {
		if e.Data == nil {
			return nil, newError(http.StatusBadRequest, CodeInvalidField, "event %d (%q) has no data", i, e.Type)
		}
		entries[i] = monster.Entry{Type: e.Type, Data: e.Data, Key: e.Key, IdempotencyKey: e.IdempotencyKey, Meta: e.Meta}
	}
	out, err := l.m.LogBatch(ctx, entries)
	if err != nil {
		return nil, apiError(err)
	}
	if l.onLog != nil {
		l.onLog(out)
	}
	return out, nil
}

// patternSyntax is what a subscription pattern looks like: dotted words
// that may contain '*' or '?'.
var patternSyntax = regexp.MustCompile(`^[A-Za-z0-9_*?-]+(\.[A-Za-z0-9_*?-]+)*$`)

// checkPatterns returns a 400 for a malformed pattern.
func checkPatterns(param string, patterns []string) error {
	for _, p := range patterns {
		if len(p) > 200 || !patternSyntax.MatchString(p) {
			return newError(http.StatusBadRequest, CodeInvalidName, "%s %q: want an event type or a glob such as \"user.*\"", param, p)
		}
	}
	return nil
}

func matchAny(patterns []string, typ string) bool {
	if len(patterns) == 0 {
		return true
	}
	for _, p := range patterns {
		if monster.MatchType(p, typ) {
			return true
		}
	}
	return false
}

// maxScan caps the events one filtered Events call reads, so a rare type
// cannot make a request scan the whole log; the page then ends early with
// NextAfter where the scan stopped.
const maxScan = 20000

// Events implements Operations.
func (l *Local) Events(ctx context.Context, q EventsQuery) (EventsPage, error) {
	if q.Limit <= 0 {
		q.Limit = 100
	}
	if q.Limit > 1000 {
		return EventsPage{}, newError(http.StatusBadRequest, CodeBadRequest, "limit %d is over the maximum of 1000", q.Limit)
	}
	if q.After < 0 {
		return EventsPage{}, newError(http.StatusBadRequest, CodeBadRequest, "after %d is negative", q.After)
	}
	var patterns []string
	if q.Type != "" {
		patterns = []string{q.Type}
		if err := checkPatterns("type", patterns); err != nil {
			return EventsPage{}, err
		}
	}
	page := EventsPage{Events: []Event{}, NextAfter: q.After}
	scanned := 0
	for len(page.Events) < q.Limit && scanned < maxScan {
		n := q.Limit - len(page.Events)
		if patterns != nil {
			n = 1000
		}
		evs, err := l.m.Events(ctx, page.NextAfter, n)
		if err != nil {
			return EventsPage{}, apiError(err)
		}
		for _, e := range evs {
			scanned++
			if matchAny(patterns, e.Type) {
				page.Events = append(page.Events, e)
			}
			page.NextAfter = e.Position
			if len(page.Events) == q.Limit {
				break
			}
		}
		if len(evs) < n {
			break
		}
	}
	head, err := l.m.Store().Head(ctx)
	if err != nil {
		return EventsPage{}, apiError(err)
	}
	page.HasMore = page.NextAfter < head
	return page, nil
}

// Event implements Operations.
func (l *Local) Event(ctx context.Context, id string) (Event, error) {
	e, err := l.m.EventByID(ctx, id)
	if errors.Is(err, monster.ErrNotFound) {
		return Event{}, newError(http.StatusNotFound, CodeNotFound, "no event with id %q", id)
	}
	if err != nil {
		return Event{}, apiError(err)
	}
	return e, nil
}

// Types implements Operations.
func (l *Local) Types(ctx context.Context) ([]TypeInfo, error) {
	st := l.m.Store()
	counts, err := st.CountByType(ctx, 0)
	if err != nil {
		return nil, apiError(err)
	}
	since, err := st.PositionBefore(ctx, time.Now().Add(-time.Minute))
	if err != nil {
		return nil, apiError(err)
	}
	recent, err := st.CountByType(ctx, since)
	if err != nil {
		return nil, apiError(err)
	}
	out := []TypeInfo{}
	for typ, n := range counts {
		out = append(out, TypeInfo{Type: typ, Count: n, LastMinute: recent[typ],
			RatePerSecond: float64(recent[typ]) / 60, Declared: l.declared[typ]})
	}
	for typ := range l.declared {
		if _, ok := counts[typ]; !ok {
			out = append(out, TypeInfo{Type: typ, Declared: true})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Type < out[j].Type })
	return out, nil
}

// Tail implements Operations.
func (l *Local) Tail(ctx context.Context, q TailQuery, fn func(Event) error) error {
	if err := checkPatterns("types", q.Types); err != nil {
		return err
	}
	var notify <-chan struct{}
	if n, ok := l.m.Store().(store.Notifier); ok {
		notify = n.Notifications(ctx)
	}
	cursor := q.After
	if cursor < 0 {
		head, err := l.m.Store().Head(ctx)
		if err != nil {
			return apiError(err)
		}
		cursor = head
	}
	poll := time.NewTimer(l.poll)
	defer poll.Stop()
	const page = 500
	for {
		evs, err := l.m.Events(ctx, cursor, page)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return apiError(err)
		}
		for _, e := range evs {
			cursor = e.Position
			if matchAny(q.Types, e.Type) {
				if err := fn(e); err != nil {
					return err
				}
			}
		}
		if len(evs) == page {
			continue
		}
		poll.Reset(l.poll)
		select {
		case <-ctx.Done():
			return nil
		case <-notify:
		case <-poll.C:
		}
	}
}

// Consumers implements Operations.
func (l *Local) Consumers(ctx context.Context) ([]Consumer, error) {
	stats, err := l.m.Stats(ctx)
	if err != nil {
		return nil, apiError(err)
	}
	out := make([]Consumer, len(stats.Consumers))
	for i, cs := range stats.Consumers {
		out[i] = Consumer{ConsumerStats: cs, Webhook: l.webhookInfo(cs.Name)}
	}
	return out, nil
}

func (l *Local) webhookInfo(name string) *WebhookInfo {
	if l.webhooks == nil {
		return nil
	}
	return l.webhooks.info(name)
}

// Consumer implements Operations.
func (l *Local) Consumer(ctx context.Context, name string) (Consumer, error) {
	cs, err := l.m.ConsumerStats(ctx, name)
	if errors.Is(err, monster.ErrNotFound) {
		return Consumer{}, consumerNotFound(name)
	}
	if err != nil {
		return Consumer{}, apiError(err)
	}
	return Consumer{ConsumerStats: cs, Webhook: l.webhookInfo(name)}, nil
}

func consumerNotFound(name string) *Error {
	return newError(http.StatusNotFound, CodeNotFound, "no consumer named %q", name)
}

// ParseStart parses where a consumer starts or is reset to: "beginning",
// "end", a position (a positive integer: the first event handled), or an
// RFC 3339 time.
func ParseStart(to string) (monster.StartPosition, error) {
	switch strings.ToLower(to) {
	case "", "beginning":
		return monster.Beginning, nil
	case "end":
		return monster.End, nil
	}
	if p, err := strconv.ParseInt(to, 10, 64); err == nil {
		if p < 1 {
			return monster.StartPosition{}, newError(http.StatusBadRequest, CodeInvalidField, "position %d: positions start at 1", p)
		}
		return monster.AtPosition(p), nil
	}
	if t, err := time.Parse(time.RFC3339Nano, to); err == nil {
		return monster.AtTime(t), nil
	}
	return monster.StartPosition{}, newError(http.StatusBadRequest, CodeInvalidField,
		"start %q: want beginning, end, a position (1, 2, ...) or an RFC 3339 time such as 2025-01-02T15:04:05Z", to)
}

// ResetConsumer implements Operations.
func (l *Local) ResetConsumer(ctx context.Context, name, to string) error {
	start, err := ParseStart(to)
	if err != nil {
		return err
	}
	if _, err := l.Consumer(ctx, name); err != nil {
		return err
	}
	if err := l.m.ResetConsumer(ctx, name, start); err != nil {
		return apiError(err)
	}
	return nil
}

// DeadLetters implements Operations.
func (l *Local) DeadLetters(ctx context.Context, consumer string, limit int) ([]DeadLetter, error) {
	if limit < 0 {
		return nil, newError(http.StatusBadRequest, CodeBadRequest, "limit %d is negative", limit)
	}
	dls, err := l.m.DeadLetters(ctx, consumer, limit)
	if errors.Is(err, monster.ErrNotFound) {
		return nil, consumerNotFound(consumer)
	}
	if err != nil {
		return nil, apiError(err)
	}
	out := make([]DeadLetter, len(dls))
	for i, d := range dls {
		out[i] = DeadLetter{EventID: d.EventID, Type: d.Type, Position: d.Position, Partition: d.Partition,
			Attempts: d.Attempts, Error: d.Error, FailedAt: d.FailedAt, RetryRequested: d.RetryRequested}
		// A dead letter names its event; the key and data are the event's.
		// One lookup each: dead letters are few, and listing them is rare.
		e, err := l.m.EventByID(ctx, d.EventID)
		if errors.Is(err, monster.ErrNotFound) {
			continue // not in the log (any more): data null rather than no list
		}
		if err != nil {
			return nil, apiError(fmt.Errorf("monster: dead letter of consumer %q for event %s: %w", consumer, d.EventID, err))
		}
		out[i].Key, out[i].Data = e.Key, e.Data
	}
	return out, nil
}

// RetryDeadLetters implements Operations.
func (l *Local) RetryDeadLetters(ctx context.Context, consumer string, ids ...string) (int, error) {
	return l.deadLetterOp(ctx, consumer, ids, l.m.RetryDeadLetters)
}

// DiscardDeadLetters implements Operations.
func (l *Local) DiscardDeadLetters(ctx context.Context, consumer string, ids ...string) (int, error) {
	return l.deadLetterOp(ctx, consumer, ids, l.m.DiscardDeadLetters)
}

func (l *Local) deadLetterOp(ctx context.Context, consumer string, ids []string,
	op func(context.Context, string, ...string) (int, error)) (int, error) {
	if _, err := l.Consumer(ctx, consumer); err != nil {
		return 0, err
	}
	n, err := op(ctx, consumer, ids...)
	if errors.Is(err, monster.ErrNotFound) {
		return 0, newError(http.StatusNotFound, CodeNotFound, "consumer %q has no dead letter for event %s", consumer, strings.Join(quoteAll(ids), ", "))
	}
	if err != nil {
		return 0, apiError(err)
	}
	return n, nil
}

func quoteAll(ss []string) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = strconv.Quote(s)
	}
	return out
}
