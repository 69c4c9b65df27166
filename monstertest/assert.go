package monstertest

import (
	"context"
	"encoding/json"
	"fmt"
	"path"
	"slices"
	"strings"
	"testing"

	"github.com/gomonster/monster"
)

// Logged returns the events stored in m whose type matches pattern, in log
// order. pattern is an exact type ("user.bought_shirt") or a glob where '*'
// matches any run of characters ("user.*", "*"), as in monster.Match. It
// fails the test if pattern is malformed or the store cannot be read.
func Logged(tb testing.TB, m *monster.Monster, pattern string) []monster.RawEvent {
	tb.Helper()
	if _, err := path.Match(pattern, ""); err != nil || pattern == "" {
		tb.Fatalf("monstertest: malformed pattern %q: use a type name with '*' wildcards, such as \"user.*\"", pattern)
		return nil
	}
	all, err := allEvents(m)
	if err != nil {
		tb.Fatalf("monstertest: reading the log: %v", err)
		return nil
	}
	var out []monster.RawEvent
	for _, e := range all {
		if matches(pattern, e.Type) {
			out = append(out, e)
		}
	}
	return out
}

// RequireLogged fails the test at once unless exactly n events whose type
// matches typ (an exact type or a glob, as in Logged) are stored in m. It
// returns them, in log order, for further checks. The failure message lists
// what was logged instead.
func RequireLogged(tb testing.TB, m *monster.Monster, typ string, n int) []monster.RawEvent {
	tb.Helper()
	got := Logged(tb, m, typ)
	if len(got) != n {
		tb.Fatalf("monstertest: want %d %q event(s) logged, got %d; the log holds %s",
			n, typ, len(got), summary(Logged(tb, m, "*")))
	}
	return got
}

// RequireNotLogged fails the test at once if any event whose type matches
// pattern (an exact type or a glob, as in Logged) is stored in m.
func RequireNotLogged(tb testing.TB, m *monster.Monster, pattern string) {
	tb.Helper()
	if got := Logged(tb, m, pattern); len(got) > 0 {
		tb.Fatalf("monstertest: want no %q event logged, got %d: %s", pattern, len(got), describe(got, 5))
	}
}

// Data decodes an event's JSON data into a T, failing the test at once if
// it does not decode.
func Data[T any](tb testing.TB, e monster.RawEvent) T {
	tb.Helper()
	var v T
	if err := json.Unmarshal(e.Data, &v); err != nil {
		tb.Fatalf("monstertest: decoding %q event at position %d into %T: %v", e.Type, e.Position, v, err)
	}
	return v
}

// allEvents reads the whole log.
func allEvents(m *monster.Monster) ([]monster.RawEvent, error) {
	const page = 1000
	ctx := context.Background()
	var out []monster.RawEvent
	var after int64
	for {
		events, err := m.Events(ctx, after, page)
		if err != nil {
			return nil, err
		}
		out = append(out, events...)
		if len(events) < page {
			return out, nil
		}
		after = events[len(events)-1].Position
	}
}

// matches reports whether typ matches pattern with monster.Match's rules:
// type names contain no '/', so path.Match's '*' matches across dots.
func matches(pattern, typ string) bool {
	ok, _ := path.Match(pattern, typ)
	return ok
}

// summary describes a log by counting its types: `2 events: event_1 ×1,
// user.bought_shirt ×1`.
func summary(events []monster.RawEvent) string {
	if len(events) == 0 {
		return "no events"
	}
	counts := map[string]int{}
	for _, e := range events {
		counts[e.Type]++
	}
	types := make([]string, 0, len(counts))
	for t := range counts {
		types = append(types, t)
	}
	slices.Sort(types)
	parts := make([]string, len(types))
	for i, t := range types {
		parts[i] = fmt.Sprintf("%s ×%d", t, counts[t])
	}
	return fmt.Sprintf("%d event(s): %s", len(events), strings.Join(parts, ", "))
}

// describe lists up to limit events as "type@position data".
func describe(events []monster.RawEvent, limit int) string {
	var parts []string
	for i, e := range events {
		if i == limit {
			parts = append(parts, fmt.Sprintf("and %d more", len(events)-limit))
			break
		}
		parts = append(parts, fmt.Sprintf("%s@%d %s", e.Type, e.Position, e.Data))
	}
	return strings.Join(parts, "; ")
}
