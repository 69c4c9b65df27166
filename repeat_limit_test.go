package monster

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"
)

func TestRepeatLimiter(t *testing.T) {
	t.Parallel()
	var out bytes.Buffer
	h := newRepeatLimiter(slog.NewTextHandler(&out, nil), 10*time.Second)
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	log := func(at time.Duration, level slog.Level, msg, consumer, err string) {
		r := slog.NewRecord(start.Add(at), level, msg, 0)
		if consumer != "" {
			r.AddAttrs(slog.String("consumer", consumer))
		}
		r.AddAttrs(slog.Any("error", errors.New(err)))
		if err := h.Handle(context.Background(), r); err != nil {
			t.Fatal(err)
		}
	}
	// 32 a second for 10 s: one line, then one with the count.
	for i := range 320 {
		log(time.Duration(i)*time.Second/32, slog.LevelWarn, "monster: reading events", "mailer", "disk I/O error")
	}
	log(10*time.Second, slog.LevelWarn, "monster: reading events", "mailer", "disk I/O error")
	// Other consumers, messages and errors are their own; info, and
	// records about no consumer, are never held back.
	log(time.Second, slog.LevelWarn, "monster: reading events", "audit", "disk I/O error")
	log(time.Second, slog.LevelWarn, "monster: reading events", "mailer", "database is locked")
	log(time.Second, slog.LevelWarn, "monster: saving checkpoints", "mailer", "disk I/O error")
	for range 3 {
		log(time.Second, slog.LevelInfo, "monster: handler failed, will retry", "mailer", "boom")
		log(time.Second, slog.LevelWarn, "monster: something", "", "boom")
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	count := func(substrings ...string) int {
		n := 0
		for _, l := range lines {
			all := true
			for _, s := range substrings {
				all = all && strings.Contains(l, s)
			}
			if all {
				n++
			}
		}
		return n
	}
	for _, tc := range []struct {
		want       int
		substrings []string
	}{
		{2, []string{"reading events", "consumer=mailer", "disk I/O error"}},
		{1, []string{"reading events", "consumer=mailer", "disk I/O error", "repeated=319"}},
		{1, []string{"reading events", "consumer=audit"}},
		{1, []string{"reading events", "database is locked"}},
		{1, []string{"saving checkpoints"}},
		{3, []string{"handler failed"}},
		{3, []string{"something"}},
	} {
		if got := count(tc.substrings...); got != tc.want {
			t.Errorf("%d lines with %q, want %d:\n%s", got, tc.substrings, tc.want, out.String())
		}
	}
}
