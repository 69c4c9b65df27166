package main

import (
	"context"
	"encoding/json"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/gomonster/monster/daemon"
)

func TestTailLine(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 12, 4, 9, 12, 1, 114_000_000, time.UTC)
	for _, tt := range []struct {
		e    daemon.Event
		want string
	}{
		{daemon.Event{Position: 43, Time: at, Type: "user.signed_up", Key: "ada", Data: json.RawMessage(`{"user":"ada"}`)},
			`43  09:12:01.114  user.signed_up  ada  {"user":"ada"}`},
		{daemon.Event{Position: 44, Time: at, Type: "user.signed_up", Data: json.RawMessage(`{"user":"bob"}`)},
			`44  09:12:01.114  user.signed_up  -  {"user":"bob"}`},
		{daemon.Event{Position: 45, Time: at.In(time.FixedZone("X", 3600)), Type: "a.b", Key: "two words", Data: json.RawMessage(`1`)},
			`45  09:12:01.114  a.b  two words  1`},
	} {
		if got := tailLine(tt.e); got != tt.want {
			t.Errorf("tailLine = %q, want %q", got, tt.want)
		}
	}
}

// The table shows each event's key (or "-"), as events does: a keyed and a
// keyless event of one type no longer look the same.
func TestTailTableShowsKeys(t *testing.T) {
	t.Parallel()
	store := filepath.Join(t.TempDir(), "monster.db")
	env := map[string]string{"MONSTER_STORE": store}
	mustRun(t, env, "log", "user.signed_up", `{"a":1}`)
	mustRun(t, env, "log", "user.signed_up", `{"a":2}`, "--key", "ada")

	var stdout syncBuffer
	cmd := &TailCommand{base: base{stdout: &stdout, stderr: &stdout, getenv: func(k string) string { return env[k] }}}
	if err := cmd.ParseFlags(context.Background(), []string{"--after", "0"}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- cmd.Run(ctx) }()
	deadline := time.Now().Add(10 * time.Second)
	for strings.Count(stdout.String(), "\n") < 2 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond) // polling the output, not waiting for it
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("tail: %v", err)
	}
	want := regexp.MustCompile(`^1  \d\d:\d\d:\d\d\.\d{3}  user\.signed_up  -  \{"a":1\}\n2  \d\d:\d\d:\d\d\.\d{3}  user\.signed_up  ada  \{"a":2\}\n$`)
	if !want.MatchString(stdout.String()) {
		t.Errorf("tail printed:\n%s", stdout.String())
	}
}
