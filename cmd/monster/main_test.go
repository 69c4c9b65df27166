package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gomonster/monster"
	"github.com/gomonster/monster/daemon"
)

// syncBuffer is a bytes.Buffer safe for a command writing while the test
// reads.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// run runs a command line with env and returns the exit code and output.
func run(t *testing.T, env map[string]string, args ...string) (int, string, string) {
	t.Helper()
	var stdout, stderr syncBuffer
	m := NewMain(&stdout, &stderr, func(k string) string { return env[k] })
	code := m.Run(context.Background(), args)
	return code, stdout.String(), stderr.String()
}

func mustRun(t *testing.T, env map[string]string, args ...string) string {
	t.Helper()
	code, out, errOut := run(t, env, args...)
	if code != 0 {
		t.Fatalf("monster %s: exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), code, out, errOut)
	}
	return out
}

// withDeadLetters makes a store with events and a consumer "mailer" that
// dead-lettered the "user.*" ones.
func withDeadLetters(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "monster.db")
	ctx := context.Background()
	m, err := monster.Open(ctx, path, &monster.Options{PollInterval: 5 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	err = m.Consume("mailer", monster.Match("user.*", func(ctx context.Context, e monster.RawEvent) error {
		return errors.New("smtp down")
	}), &monster.ConsumerOptions{Retry: monster.RetryPolicy{MaxAttempts: 1}})
	if err != nil {
		t.Fatal(err)
	}
	for _, typ := range []string{"user.signed_up", "order.placed", "user.bought_shirt"} {
		var opts []monster.LogOption
		if typ == "user.signed_up" {
			opts = append(opts, monster.WithKey("ada"))
		}
		if typ == "user.bought_shirt" {
			// Data longer than the table's preview.
			data := map[string]string{"t": typ, "note": strings.Repeat("x", 100)}
			if _, err := m.Log(ctx, typ, data, opts...); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if _, err := m.Log(ctx, typ, map[string]string{"t": typ}, opts...); err != nil {
			t.Fatal(err)
		}
	}
	if err := m.Start(ctx); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		dls, err := m.DeadLetters(ctx, "mailer", 0)
		if err == nil && len(dls) == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no dead letters: %v %v", dls, err)
		}
		time.Sleep(5 * time.Millisecond)
	}
	return path
}

// compactJSON is b without insignificant space (--json indents).
func compactJSON(t *testing.T, b []byte) string {
	t.Helper()
	var out bytes.Buffer
	if err := json.Compact(&out, b); err != nil {
		t.Fatalf("compacting %s: %v", b, err)
	}
	return out.String()
}

// serve runs `monster serve` on store at a loopback port until the test
// ends and returns its URL.
func serve(t *testing.T, store string, extra ...string) string {
	t.Helper()
	listening := make(chan string, 1)
	var stderr syncBuffer
	cmd := &ServeCommand{base: base{stdout: &stderr, stderr: &stderr, getenv: func(string) string { return "" }}, Listening: listening}
	if err := cmd.ParseFlags(context.Background(), append([]string{"--store", store, "--addr", "127.0.0.1:0"}, extra...)); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- cmd.Run(ctx) }()
	var addr string
	select {
	case addr = <-listening:
	case err := <-done:
		t.Fatalf("serve exited: %v\n%s", err, stderr.String())
	}
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
		if !strings.Contains(stderr.String(), "monster: stopped") {
			t.Errorf("serve did not log its stop:\n%s", stderr.String())
		}
	})
	return "http://" + addr
}

// TestCommands runs every command on a store directly and through a
// daemon; the answers must agree.
func TestCommands(t *testing.T) {
	store := withDeadLetters(t)
	url := serve(t, store)
	for _, mode := range []struct {
		name string
		env  map[string]string
	}{
		{"store", map[string]string{"MONSTER_STORE": store}},
		{"server", map[string]string{"MONSTER_SERVER": url}},
	} {
		t.Run(mode.name, func(t *testing.T) {
			env := mode.env
			out := mustRun(t, env, "log", "user.signed_up", `{"user":"ada"}`, "--key", "ada")
			if !strings.Contains(out, "logged user.signed_up at position") || !strings.Contains(out, `{"user":"ada"}`) {
				t.Errorf("log printed %q", out)
			}
			var e daemon.Event
			if err := json.Unmarshal([]byte(mustRun(t, env, "log", "--json", "order.placed", "7")), &e); err != nil || e.Type != "order.placed" || e.Position < 4 {
				t.Errorf("log --json: %+v, %v", e, err)
			}

			out = mustRun(t, env, "events", "--type", "user.*")
			if !strings.Contains(out, "POSITION") || !strings.Contains(out, "user.bought_shirt") || strings.Contains(out, "order.placed") {
				t.Errorf("events --type user.*:\n%s", out)
			}
			var page daemon.EventsPage
			if err := json.Unmarshal([]byte(mustRun(t, env, "events", "--json", "--after", "1", "--limit", "2")), &page); err != nil ||
				len(page.Events) != 2 || page.Events[0].Position != 2 || !page.HasMore {
				t.Errorf("events --json: %+v, %v", page, err)
			}

			out = mustRun(t, env, "types")
			if !strings.Contains(out, "TYPE") || !strings.Contains(out, "user.signed_up") {
				t.Errorf("types:\n%s", out)
			}

			out = mustRun(t, env, "consumers")
			for _, col := range []string{"NAME", "TYPES", "POSITION", "LAG", "IN FLIGHT", "FAILURES", "DEAD LETTERS", "mailer", "user.*"} {
				if !strings.Contains(out, col) {
					t.Errorf("consumers lacks %q:\n%s", col, out)
				}
			}

			var list daemon.DeadLetterList
			if err := json.Unmarshal([]byte(mustRun(t, env, "dead", "list", "mailer", "--json")), &list); err != nil || len(list.DeadLetters) != 2 || !strings.Contains(list.DeadLetters[0].Error, "smtp down") {
				t.Fatalf("dead list: %+v, %v", list, err)
			}
			dls := list.DeadLetters
			// The event's key and data: whole in JSON, a preview in the table.
			if dls[0].Key != "ada" || compactJSON(t, dls[0].Data) != `{"t":"user.signed_up"}` || dls[1].Key != "" ||
				!strings.Contains(string(dls[1].Data), strings.Repeat("x", 100)) {
				t.Errorf("dead list --json: key and data %q %s, %q %s", dls[0].Key, dls[0].Data, dls[1].Key, dls[1].Data)
			}
			out = mustRun(t, env, "dead", "list", "mailer")
			for _, want := range []string{dls[0].EventID, "smtp down", "KEY", "DATA", "ada", `{"t":"user.signed_up"}`, "xxxxxxxxxx…"} {
				if !strings.Contains(out, want) {
					t.Errorf("dead list table lacks %q:\n%s", want, out)
				}
			}
			if strings.Contains(out, strings.Repeat("x", 100)) {
				t.Errorf("dead list table shows the whole data, want a preview:\n%s", out)
			}
			out = mustRun(t, env, "dead", "retry", "mailer", dls[0].EventID)
			if !strings.Contains(out, "1 dead letters of mailer marked for retry") {
				t.Errorf("dead retry: %q", out)
			}
			if err := json.Unmarshal([]byte(mustRun(t, env, "dead", "list", "mailer", "--json")), &list); err != nil || !list.DeadLetters[0].RetryRequested {
				t.Errorf("after retry: %+v, %v", list, err)
			}

			out = mustRun(t, env, "reset", "mailer", "--to", "end")
			if !strings.Contains(out, "consumer mailer reset to end") || !strings.Contains(out, "lag 0") {
				t.Errorf("reset: %q", out)
			}
			var cs daemon.Consumer
			if err := json.Unmarshal([]byte(mustRun(t, env, "reset", "mailer", "--to", "1", "--json")), &cs); err != nil || cs.Position != 0 {
				t.Errorf("reset --to 1: %+v, %v", cs, err)
			}

			code, _, errOut := run(t, env, "reset", "ghost", "--to", "end")
			if code != 1 || !strings.Contains(errOut, `monster: no consumer named "ghost"`) {
				t.Errorf("reset ghost: %d %q", code, errOut)
			}
			code, _, errOut = run(t, env, "dead", "retry", "mailer", "nope")
			if code != 1 || !strings.Contains(errOut, `"nope"`) {
				t.Errorf("dead retry nope: %d %q", code, errOut)
			}
		})
	}
	// Discard everything last (both modes share the store).
	out := mustRun(t, map[string]string{"MONSTER_SERVER": url}, "dead", "discard", "mailer", "--all")
	if !strings.Contains(out, "2 dead letters of mailer discarded") {
		t.Errorf("dead discard --all: %q", out)
	}
}

func TestTailCommand(t *testing.T) {
	store := filepath.Join(t.TempDir(), "monster.db")
	url := serve(t, store)
	for _, env := range []map[string]string{{"MONSTER_STORE": store}, {"MONSTER_SERVER": url}} {
		var stdout syncBuffer
		cmd := &TailCommand{base: base{stdout: &stdout, stderr: &stdout, getenv: func(k string) string { return env[k] }}}
		if err := cmd.ParseFlags(context.Background(), []string{"user.*", "--json", "--after", "0"}); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- cmd.Run(ctx) }()
		mustRun(t, map[string]string{"MONSTER_SERVER": url}, "log", "user.tailed", `{"n":1}`)
		mustRun(t, map[string]string{"MONSTER_SERVER": url}, "log", "other.skipped", `1`)
		deadline := time.Now().Add(10 * time.Second)
		for strings.Count(stdout.String(), "user.tailed") < 1 && time.Now().Before(deadline) {
			time.Sleep(5 * time.Millisecond)
		}
		cancel()
		if err := <-done; err != nil {
			t.Fatalf("tail: %v", err)
		}
		if !strings.Contains(stdout.String(), `"type":"user.tailed"`) || strings.Contains(stdout.String(), "other.skipped") {
			t.Fatalf("tail %v printed %q", env, stdout.String())
		}
	}
}

func TestUsageErrors(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		args    []string
		code    int
		mention string
	}{
		{nil, 2, "Usage"},
		{[]string{"frobnicate"}, 2, `unknown command "frobnicate"`},
		{[]string{"log", "a.b"}, 2, "log wants TYPE and JSON"},
		{[]string{"log", "a.b", "{bad"}, 2, `"{bad" is not JSON`},
		{[]string{"reset", "mailer"}, 2, "--to"},
		{[]string{"reset", "mailer", "--to", "later"}, 2, `"later"`},
		{[]string{"dead", "bury", "mailer"}, 2, `"bury"`},
		{[]string{"dead", "retry", "mailer"}, 2, "--all"},
		{[]string{"events", "--limit", "x"}, 2, "invalid value"},
		{[]string{"serve", "--addr", "0.0.0.0:0", "--store", "memory://"}, 1, "without a token"},
		{[]string{"events", "--server", "http://127.0.0.1:1"}, 1, "monster: GET"},
	} {
		code, out, errOut := run(t, nil, c.args...)
		if code != c.code || !strings.Contains(out+errOut, c.mention) {
			t.Errorf("monster %v: exit %d, output %q %q; want exit %d mentioning %q", c.args, code, out, errOut, c.code, c.mention)
		}
	}
}
