package monster

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// repeatWindow is how long a consumer's warning, once logged, holds back
// identical ones (same message, consumer and error). During an outage
// every consumer retries its store calls many times a second, and each
// failure would otherwise be a line of its own.
const repeatWindow = 10 * time.Second

// repeatLimiter is the slog.Handler of a Monster's logger: it passes every
// record on, except a warning or error about a consumer (a record with a
// "consumer" attribute) identical to one logged less than window ago.
// The next identical record after the window is logged with "repeated", the
// number held back since the last one logged.
type repeatLimiter struct {
	inner  slog.Handler
	window time.Duration
	state  *repeatState // shared by the handlers WithAttrs and WithGroup return
}

type repeatState struct {
	mu   sync.Mutex
	seen map[repeatKey]*repeatCount
}

type repeatKey struct{ level, message, consumer, err string }

type repeatCount struct {
	logged time.Time // when the last of these was logged
	held   int       // identical records held back since
}

// maxRepeatKeys bounds the records remembered; past it, those logged more
// than a window ago are forgotten.
const maxRepeatKeys = 1024

func newRepeatLimiter(inner slog.Handler, window time.Duration) *repeatLimiter {
	return &repeatLimiter{inner: inner, window: window, state: &repeatState{seen: map[repeatKey]*repeatCount{}}}
}

func (h *repeatLimiter) Enabled(ctx context.Context, level slog.Level) bool {
	return h.inner.Enabled(ctx, level)
}

func (h *repeatLimiter) WithAttrs(attrs []slog.Attr) slog.Handler {
	return &repeatLimiter{inner: h.inner.WithAttrs(attrs), window: h.window, state: h.state}
}

func (h *repeatLimiter) WithGroup(name string) slog.Handler {
	return &repeatLimiter{inner: h.inner.WithGroup(name), window: h.window, state: h.state}
}

func (h *repeatLimiter) Handle(ctx context.Context, r slog.Record) error {
	if r.Level < slog.LevelWarn {
		return h.inner.Handle(ctx, r)
	}
	key := repeatKey{level: r.Level.String(), message: r.Message}
	r.Attrs(func(a slog.Attr) bool {
		switch a.Key {
		case "consumer":
			key.consumer = a.Value.String()
		case "error":
			key.err = a.Value.String()
		}
		return true
	})
	if key.consumer == "" {
		return h.inner.Handle(ctx, r)
	}
	now := r.Time
	if now.IsZero() {
		now = time.Now()
	}
	s := h.state
	s.mu.Lock()
	c := s.seen[key]
	if c != nil && now.Sub(c.logged) < h.window {
		c.held++
		s.mu.Unlock()
		return nil
	}
	held := 0
	if c != nil {
		held = c.held
	}
	if len(s.seen) >= maxRepeatKeys {
		for k, old := range s.seen {
			if now.Sub(old.logged) >= h.window {
				delete(s.seen, k)
			}
		}
	}
	s.seen[key] = &repeatCount{logged: now}
	s.mu.Unlock()
	if held > 0 {
		r = r.Clone()
		r.AddAttrs(slog.Int("repeated", held))
	}
	return h.inner.Handle(ctx, r)
}
