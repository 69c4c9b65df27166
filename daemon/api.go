package daemon

import (
	"context"
	"encoding/json"
	"time"

	"github.com/gomonster/monster"
)

// Event is a stored event as the API returns it:
// {"id","type","position","time","key"?,"data","meta"?}.
type Event = monster.RawEvent

// NewEvent is an event to log: the body of POST /v1/events, or one element
// of its "events" array.
type NewEvent struct {
	// Type is the event type, such as "user.bought_shirt". Required.
	Type string `json:"type"`
	// Data is the payload, any JSON value. Required.
	Data json.RawMessage `json:"data"`
	// Key orders the event among others with the same key.
	Key string `json:"key,omitempty"`
	// IdempotencyKey makes logging idempotent: the event is stored once
	// however often it is posted with this key.
	IdempotencyKey string `json:"idempotency_key,omitempty"`
	// Meta is free-form metadata kept with the event.
	Meta map[string]string `json:"meta,omitempty"`
}

// EventsQuery selects events for GET /v1/events.
type EventsQuery struct {
	// Type is an event type or a glob ("user.*"); empty for every type.
	Type string
	// After returns events with a position after this one (0: from the
	// beginning).
	After int64
	// Limit caps the events returned; 0 means 100, and at most 1000.
	Limit int
}

// EventsPage is one page of history. Pass NextAfter as the next query's
// After to continue; HasMore says whether the log goes on past it.
type EventsPage struct {
	Events    []Event `json:"events"`
	NextAfter int64   `json:"next_after"`
	HasMore   bool    `json:"has_more"`
}

// TypeInfo describes one event type: how many events it has and how fast
// they come.
type TypeInfo struct {
	Type  string `json:"type"`
	Count int64  `json:"count"`
	// LastMinute counts the events of the type logged in the last minute.
	LastMinute int64 `json:"last_minute"`
	// RatePerSecond is LastMinute / 60.
	RatePerSecond float64 `json:"rate_per_second"`
	// Declared reports a type declared in the daemon's configuration.
	Declared bool `json:"declared"`
}

// Consumer is a consumer's progress, plus its webhook when the daemon
// delivers it to one.
type Consumer struct {
	monster.ConsumerStats
	Webhook *WebhookInfo `json:"webhook,omitempty"`
}

// WebhookInfo is a webhook consumer's target, without its secret.
type WebhookInfo struct {
	URL string `json:"url"`
	// Source is "config" for consumers declared in the configuration file
	// and "api" for those created with PUT /v1/consumers/{name}.
	Source string `json:"source"`
}

// DeadLetter is an event a consumer gave up on, with the event's key and
// data so that an operator sees what failed without looking it up.
type DeadLetter struct {
	EventID        string    `json:"event_id"`
	Type           string    `json:"type"`
	Position       int64     `json:"position"`
	Partition      int       `json:"partition"`
	Attempts       int       `json:"attempts"`
	Error          string    `json:"error"`
	FailedAt       time.Time `json:"failed_at"`
	RetryRequested bool      `json:"retry_requested"`
	// Key is the event's key, if it has one.
	Key string `json:"key,omitempty"`
	// Data is the event's data, as stored.
	Data json.RawMessage `json:"data"`
}

// TypeList is the answer to GET /v1/types (and monster types --json).
type TypeList struct {
	Types []TypeInfo `json:"types"`
}

// ConsumerList is the answer to GET /v1/consumers (and monster consumers
// --json).
type ConsumerList struct {
	Consumers []Consumer `json:"consumers"`
}

// DeadLetterList is the answer to GET /v1/consumers/{name}/dead (and
// monster dead list --json).
type DeadLetterList struct {
	DeadLetters []DeadLetter `json:"dead_letters"`
}

// RetriedCount is the answer to the dead-letter retry requests (and
// monster dead retry --json without --wait).
type RetriedCount struct {
	Retried int `json:"retried"`
}

// DiscardedCount is the answer to the dead-letter discard requests (and
// monster dead discard --json).
type DiscardedCount struct {
	Discarded int `json:"discarded"`
}

// TailQuery selects the live events GET /v1/tail streams.
type TailQuery struct {
	// Types are event types or globs; empty for every type.
	Types []string
	// After starts the stream after this position; negative (the default
	// of the HTTP API) for events logged from now on.
	After int64
}

// Operations is what the daemon serves and the command line uses: Local
// runs them on a store, Client on a daemon over HTTP. Errors are *Error
// values carrying the HTTP status and code the API documents.
type Operations interface {
	// Log stores events atomically and returns them as stored.
	Log(ctx context.Context, events []NewEvent) ([]Event, error)
	// Events returns a page of history.
	Events(ctx context.Context, q EventsQuery) (EventsPage, error)
	// Event returns one event by ID.
	Event(ctx context.Context, id string) (Event, error)
	// Types lists event types with counts and recent rates.
	Types(ctx context.Context) ([]TypeInfo, error)
	// Tail calls fn for each matching event as it is logged, until ctx
	// ends (it then returns nil) or fn returns an error.
	Tail(ctx context.Context, q TailQuery, fn func(Event) error) error
	// Consumers lists every consumer's progress.
	Consumers(ctx context.Context) ([]Consumer, error)
	// Consumer returns one consumer's progress.
	Consumer(ctx context.Context, name string) (Consumer, error)
	// ResetConsumer moves a consumer to "beginning", "end", a position or
	// an RFC 3339 time.
	ResetConsumer(ctx context.Context, name, to string) error
	// DeadLetters lists a consumer's dead letters (limit 0: all).
	DeadLetters(ctx context.Context, consumer string, limit int) ([]DeadLetter, error)
	// RetryDeadLetters asks for dead letters to be run again (all of the
	// consumer's when no ID is given) and returns how many were marked.
	RetryDeadLetters(ctx context.Context, consumer string, ids ...string) (int, error)
	// DiscardDeadLetters removes dead letters (all when no ID is given) and
	// returns how many were removed.
	DiscardDeadLetters(ctx context.Context, consumer string, ids ...string) (int, error)
}
