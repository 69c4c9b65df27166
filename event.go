package monster

import (
	"encoding/json"
	"time"

	"github.com/gomonster/monster/store"
)

// Event is a stored event as a handler sees it, with its data decoded into
// T. RawEvent is Event[json.RawMessage].
type Event[T any] struct {
	// ID is the event's unique identifier (a UUIDv7 string).
	ID string `json:"id"`
	// Type is the event type, such as "user.bought_shirt".
	Type string `json:"type"`
	// Position is the event's place in the store-wide log.
	Position int64 `json:"position"`
	// Time is when the event was logged, in UTC.
	Time time.Time `json:"time"`
	// Key orders the event among others with the same key; may be empty.
	Key string `json:"key,omitempty"`
	// Data is the event's payload.
	Data T `json:"data"`
	// Meta holds metadata set at Log time (by options or log middleware).
	Meta map[string]string `json:"meta,omitempty"`
	// Attempt is 1 on first delivery to a handler and grows with each retry;
	// 0 outside handlers.
	Attempt int `json:"attempt,omitempty"`

	// raw is the data as stored, for Raw.
	raw json.RawMessage
}

// Raw returns the event with its data as JSON: the same event a Match
// handler gets, so that typed (Handle) and raw handlers can feed one sink.
// Its Data is the JSON as stored, byte for byte, not a re-encoding of
// e.Data (which may have dropped fields T does not have). For an Event
// built by hand rather than delivered or returned by Monster, Data is
// e.Data encoded with encoding/json (nil if it does not encode).
func (e Event[T]) Raw() RawEvent {
	data := e.raw
	if data == nil {
		if d, ok := any(e.Data).(json.RawMessage); ok {
			data = d
		} else if b, err := json.Marshal(e.Data); err == nil {
			data = b
		}
	}
	return RawEvent{
		ID: e.ID, Type: e.Type, Position: e.Position, Time: e.Time, Key: e.Key,
		Data: data, Meta: e.Meta, Attempt: e.Attempt,
	}
}

// RawEvent is an event with its data as JSON.
type RawEvent = Event[json.RawMessage]

func rawFromStore(e store.Event) RawEvent {
	ev := RawEvent{
		ID: e.ID, Type: e.Type, Position: e.Position, Time: e.Time, Key: e.Key,
		Data: json.RawMessage(e.Data),
	}
	if len(e.Meta) > 0 {
		// Meta was encoded by Log from a map[string]string; a store that
		// returns something else gets no meta rather than a failed delivery.
		_ = json.Unmarshal(e.Meta, &ev.Meta)
	}
	return ev
}

// Entry is an event on its way into the store: what log middleware sees
// and may change.
type Entry struct {
	// Type is the event type.
	Type string
	// Data is the payload, any JSON-encodable value (or json.RawMessage).
	Data any
	// Key, when set, orders the event among others with the same key and
	// picks its partition. At most MaxKeyBytes, valid UTF-8, no control
	// characters (ErrInvalidKey).
	Key string
	// IdempotencyKey, when set, makes logging idempotent: the event is
	// stored once however often it is logged with this key. Same limits as
	// Key.
	IdempotencyKey string
	// Meta is free-form metadata kept with the event.
	Meta map[string]string
}

// LogOption sets an optional field of a logged event.
type LogOption func(*Entry)

// WithKey sets the event's key: a consumer handles events with the same key
// one at a time, in log order.
func WithKey(key string) LogOption { return func(e *Entry) { e.Key = key } }

// WithIdempotencyKey makes the call idempotent: the event is stored once
// however often it is logged with this key, and later calls return the
// stored event.
func WithIdempotencyKey(key string) LogOption { return func(e *Entry) { e.IdempotencyKey = key } }

// WithMeta adds a metadata pair to the event.
func WithMeta(key, value string) LogOption {
	return func(e *Entry) {
		if e.Meta == nil {
			e.Meta = map[string]string{}
		}
		e.Meta[key] = value
	}
}
