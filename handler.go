package monster

import (
	"context"
	"encoding/json"
	"fmt"
	"runtime/debug"
)

// HandlerFunc handles one raw event; handler middleware wraps it.
type HandlerFunc func(ctx context.Context, e RawEvent) error

// HandlerMiddleware wraps a consumer's handler: logging, metrics, tracing,
// timeouts. Panics are recovered outside all middleware.
type HandlerMiddleware func(next HandlerFunc) HandlerFunc

// Handler is what a consumer runs: the event types it subscribes to and a
// function per type. Build one with Handle, Match or Route.
type Handler struct {
	routes []route
}

type route struct {
	pattern string
	fn      HandlerFunc
}

// Handle handles events of a declared type, decoded into T.
func Handle[T any](t *Type[T], fn func(ctx context.Context, e Event[T]) error) Handler {
	name := t.name
	return Handler{routes: []route{{pattern: name, fn: func(ctx context.Context, raw RawEvent) error {
		var data T
		if err := json.Unmarshal(raw.Data, &data); err != nil {
			return fmt.Errorf("monster: decode %q event %s: %w", name, raw.ID, err)
		}
		return fn(ctx, typedEvent(raw, data))
	}}}}
}

// Match handles raw events whose type matches pattern: an exact type name,
// or a glob where '*' matches anything ("user.*" or "*").
func Match(pattern string, fn func(ctx context.Context, e RawEvent) error) Handler {
	return Handler{routes: []route{{pattern: pattern, fn: fn}}}
}

// Route combines handlers into one: an event goes to the first whose
// pattern matches its type.
func Route(handlers ...Handler) Handler {
	var h Handler
	for _, x := range handlers {
		h.routes = append(h.routes, x.routes...)
	}
	return h
}

// patterns returns the subscription.
func (h Handler) patterns() []string {
	out := make([]string, len(h.routes))
	for i, r := range h.routes {
		out[i] = r.pattern
	}
	return out
}

// match returns the function for typ, or nil when the handler does not
// subscribe to it.
func (h Handler) match(typ string) HandlerFunc {
	for _, r := range h.routes {
		if matchPattern(r.pattern, typ) {
			return r.fn
		}
	}
	return nil
}

// PanicError is the error a handler's panic becomes; the event is retried
// like any failure.
type PanicError struct {
	Value any
	Stack []byte
}

func (e *PanicError) Error() string { return fmt.Sprintf("monster: handler panicked: %v", e.Value) }

// recovered calls fn, turning a panic into a *PanicError.
func recovered(ctx context.Context, fn HandlerFunc, e RawEvent) (err error) {
	defer func() {
		if v := recover(); v != nil {
			err = &PanicError{Value: v, Stack: debug.Stack()}
		}
	}()
	return fn(ctx, e)
}
