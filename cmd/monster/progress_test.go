package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gomonster/monster"
	"github.com/gomonster/monster/daemon"
)

// runCtx is run with a deadline, for commands that wait.
func runCtx(t *testing.T, timeout time.Duration, env map[string]string, args ...string) (int, string, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var stdout, stderr syncBuffer
	code := NewMain(&stdout, &stderr, func(k string) string { return env[k] }).Run(ctx, args)
	return code, stdout.String(), stderr.String()
}

// logEvents logs n events of type typ into the store at path.
func logEvents(t *testing.T, path string, n int, typ string) {
	t.Helper()
	ctx := context.Background()
	m, err := monster.Open(ctx, path, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	for logged := 0; logged < n; {
		k := min(1000, n-logged)
		entries := make([]monster.Entry, k)
		for i := range entries {
			entries[i] = monster.Entry{Type: typ, Data: json.RawMessage(fmt.Sprint(logged + i + 1))}
		}
		if _, err := m.LogBatch(ctx, entries); err != nil {
			t.Fatal(err)
		}
		logged += k
	}
}

// lastLine is the progress line last drawn on stderr: the text after the
// last "\r", without the erase-line sequence.
func lastLine(stderr string) string {
	s := strings.TrimRight(stderr, "\n")
	if i := strings.LastIndex(s, "\r"); i >= 0 {
		s = s[i+1:]
	}
	return strings.TrimSuffix(s, "\x1b[K")
}

func TestEventsPagesWithProgress(t *testing.T) {
	store := filepath.Join(t.TempDir(), "monster.db")
	logEvents(t, store, 2100, "user.clicked")
	url := serve(t, store)
	for _, env := range []map[string]string{{"MONSTER_STORE": store}, {"MONSTER_SERVER": url}} {
		// An export of everything, as a table, with progress forced on.
		code, out, errOut := run(t, env, "events", "--all", "--progress")
		if code != 0 {
			t.Fatalf("events --all: exit %d: %s", code, errOut)
		}
		if rows := strings.Count(out, "user.clicked"); rows != 2100 {
			t.Errorf("events --all printed %d rows, want 2100", rows)
		}
		if strings.Contains(out, "more:") {
			t.Errorf("events --all says there is more:\n%s", out[len(out)-200:])
		}
		if got := lastLine(errOut); !strings.HasPrefix(got, "events: 2,100 read, to position 2,100, in ") || !strings.HasSuffix(got, "/s)") {
			t.Errorf("events --all: last progress line %q (stderr %q)", got, errOut)
		}
		if !strings.HasPrefix(errOut, "\r") || !strings.HasSuffix(errOut, "\x1b[K\n") {
			t.Errorf("the progress line is not redrawn in place: %q", errOut)
		}

		// Over 1,000 as JSON: the same shape as one page, streamed.
		code, out, errOut = run(t, env, "events", "--json", "--after", "100", "--limit", "1500", "--progress")
		if code != 0 {
			t.Fatalf("events --limit 1500: exit %d: %s", code, errOut)
		}
		var page daemon.EventsPage
		if err := json.Unmarshal([]byte(out), &page); err != nil {
			t.Fatalf("events --json --limit 1500: %v", err)
		}
		if len(page.Events) != 1500 || page.Events[0].Position != 101 || page.Events[1499].Position != 1600 || page.NextAfter != 1600 || !page.HasMore {
			t.Errorf("events --limit 1500: %d events, next_after %d, has_more %v", len(page.Events), page.NextAfter, page.HasMore)
		}
		if got := lastLine(errOut); !strings.HasPrefix(got, "events: 1,500 read, to position 1,600") {
			t.Errorf("events --limit 1500: last progress line %q", got)
		}

		// Not a terminal, no --progress: nothing on stderr.
		for _, args := range [][]string{{"events", "--limit", "1001"}, {"events", "--limit", "1001", "--json"}, {"events", "--all", "--progress=false"}} {
			if code, _, errOut := run(t, env, args...); code != 0 || errOut != "" {
				t.Errorf("monster %v: exit %d, stderr %q; want no progress", args, code, errOut)
			}
		}
	}
}

// The streamed JSON of events is byte for byte what one page encodes to.
func TestEventsJSONMatchesPage(t *testing.T) {
	store := filepath.Join(t.TempDir(), "monster.db")
	logEvents(t, store, 5, "a.b")
	for _, c := range []struct{ after, limit int }{{0, 3}, {0, 10}, {5, 10}} {
		out := mustRun(t, map[string]string{"MONSTER_STORE": store}, "events", "--json", "--after", fmt.Sprint(c.after), "--limit", fmt.Sprint(c.limit))
		m, err := monster.Open(context.Background(), store, nil)
		if err != nil {
			t.Fatal(err)
		}
		page, err := daemon.NewLocal(m, 0).Events(context.Background(), daemon.EventsQuery{After: int64(c.after), Limit: c.limit})
		m.Close()
		if err != nil {
			t.Fatal(err)
		}
		var want bytes.Buffer
		if err := writeJSON(&want, page); err != nil {
			t.Fatal(err)
		}
		if out != want.String() {
			t.Errorf("events --json --after %d --limit %d:\n%s\nwant\n%s", c.after, c.limit, out, want.String())
		}
	}
}

func TestResetWaitShowsProgress(t *testing.T) {
	store := filepath.Join(t.TempDir(), "monster.db")
	logEvents(t, store, 1000, "user.clicked")
	ctx := context.Background()
	m, err := monster.Open(ctx, store, &monster.Options{PollInterval: 5 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	var handled atomic.Int64
	err = m.Consume("counter", monster.Match("user.*", func(ctx context.Context, e monster.RawEvent) error {
		handled.Add(1)
		return nil
	}), nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer m.Stop(ctx)
	deadline := time.Now().Add(30 * time.Second)
	for handled.Load() < 1000 {
		if time.Now().After(deadline) {
			t.Fatalf("%d events handled after 30s, want 1000", handled.Load())
		}
		time.Sleep(5 * time.Millisecond)
	}
	url := serve(t, store)
	runs := int64(1)
	for _, env := range []map[string]string{{"MONSTER_STORE": store}, {"MONSTER_SERVER": url}} {
		code, out, errOut := runCtx(t, time.Minute, env, "reset", "counter", "--to", "beginning", "--wait", "--progress")
		if code != 0 {
			t.Fatalf("reset --wait: exit %d: %s", code, errOut)
		}
		runs++
		if !strings.Contains(out, "consumer counter reset to beginning: position 1000, lag 0") {
			t.Errorf("reset --wait printed %q", out)
		}
		if got := lastLine(errOut); !strings.HasPrefix(got, "consumer counter caught up: position 1,000, ") {
			t.Errorf("reset --wait: last progress line %q", got)
		}
		// Caught up means handled again (at least once: a replay may
		// overlap the first run's checkpoints).
		if h := handled.Load(); h < runs*1000 {
			t.Errorf("reset --wait returned after %d handler runs, want at least %d", h, runs*1000)
		}
	}
}

func TestDeadRetryWaitShowsProgress(t *testing.T) {
	store := filepath.Join(t.TempDir(), "monster.db")
	ctx := context.Background()
	m, err := monster.Open(ctx, store, &monster.Options{PollInterval: 5 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	// Odd events fail until all are healed; even ones until healed.
	var healed, allHealed atomic.Bool
	err = m.Consume("mailer", monster.Match("user.*", func(ctx context.Context, e monster.RawEvent) error {
		var n int
		if err := json.Unmarshal(e.Data, &n); err != nil {
			return err
		}
		if (n%2 == 1 && !allHealed.Load()) || !healed.Load() {
			return errors.New("smtp down")
		}
		return nil
	}), &monster.ConsumerOptions{Retry: monster.RetryPolicy{MaxAttempts: 1}})
	if err != nil {
		t.Fatal(err)
	}
	logEvents(t, store, 10, "user.signed_up")
	if err := m.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer m.Stop(ctx)
	env := map[string]string{"MONSTER_STORE": store}
	deadline := time.Now().Add(30 * time.Second)
	for {
		dls, err := m.DeadLetters(ctx, "mailer", 0)
		if err != nil {
			t.Fatal(err)
		}
		if len(dls) == 10 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d dead letters after 30s, want 10", len(dls))
		}
		time.Sleep(5 * time.Millisecond)
	}
	healed.Store(true)
	// Some failed again: the result is printed, and the exit code says so.
	code, out, errOut := runCtx(t, time.Minute, env, "dead", "retry", "mailer", "--all", "--wait", "--progress", "--json")
	if code != 1 || !strings.HasSuffix(errOut, "monster: 5 of the 10 retried dead letters of mailer failed again; see why with: monster dead list mailer\n") {
		t.Fatalf("dead retry --wait with failures: exit %d, stderr %q; want exit 1 and why", code, errOut)
	}
	var res retryResult
	if err := json.Unmarshal([]byte(out), &res); err != nil || res != (retryResult{Retried: 10, Handled: 5, DeadAgain: 5}) {
		t.Errorf("dead retry --wait --json: %s (%v)", out, err)
	}
	if got := lastLine(strings.TrimSuffix(errOut, "monster: 5 of the 10 retried dead letters of mailer failed again; see why with: monster dead list mailer\n")); !strings.HasPrefix(got, "dead letters of mailer retried: 10 of 10 done, 5 handled, 5 dead again, in ") {
		t.Errorf("dead retry --wait: last progress line %q", got)
	}
	// The odd ones are back, waiting for nothing.
	dls, err := m.DeadLetters(ctx, "mailer", 0)
	if err != nil || len(dls) != 5 || dls[0].RetryRequested {
		t.Errorf("after the retry: %+v, %v", dls, err)
	}
	// Without --progress and not on a terminal, only the result.
	code, out, errOut = runCtx(t, time.Minute, env, "dead", "retry", "mailer", "--all", "--wait")
	if code != 1 || !strings.Contains(out, "5 dead letters of mailer retried: 0 handled, 5 dead again") ||
		errOut != "monster: 5 of the 5 retried dead letters of mailer failed again; see why with: monster dead list mailer\n" {
		t.Errorf("dead retry --wait, all failing again: exit %d, stdout %q, stderr %q; want exit 1", code, out, errOut)
	}
	// All handled: exit 0.
	allHealed.Store(true)
	code, out, errOut = runCtx(t, time.Minute, env, "dead", "retry", "mailer", "--all", "--wait")
	if code != 0 || errOut != "" || !strings.Contains(out, "5 dead letters of mailer retried: 5 handled, 0 dead again") {
		t.Errorf("dead retry --wait, all handled: exit %d, stdout %q, stderr %q; want exit 0", code, out, errOut)
	}
}

func TestProgressLine(t *testing.T) {
	var b bytes.Buffer
	p := newProgress(&b, progressFlag{set: true, on: true}, true)
	p.update("a %d", 1)
	p.update("a %d", 2) // within the interval: not drawn
	p.done("b %s", count(1234567))
	if got, want := b.String(), "\ra 1\x1b[K\rb 1,234,567\x1b[K\n"; got != want {
		t.Errorf("progress printed %q, want %q", got, want)
	}
	b.Reset()
	p = newProgress(&b, progressFlag{}, false) // a buffer is not a terminal
	p.update("x")
	p.done("y")
	if b.Len() != 0 {
		t.Errorf("progress on a non-terminal printed %q", b.String())
	}
	for n, want := range map[int64]string{0: "0", 999: "999", 1000: "1,000", -12345: "-12,345"} {
		if got := count(n); got != want {
			t.Errorf("count(%d) = %q, want %q", n, got, want)
		}
	}
}
