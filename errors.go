package monster

import (
	"errors"
	"fmt"

	"github.com/gomonster/monster/store"
)

// Errors returned by Monster, to be tested with errors.Is. Functions wrap
// them with the details (the type, the field, the consumer).
var (
	// ErrUndeclared: the event's type is not declared and the Monster was
	// opened with Options.DisallowUndeclared.
	ErrUndeclared = errors.New("monster: undeclared event type")
	// ErrInvalid: the event failed validation; the error is a
	// *ValidationError naming the field.
	ErrInvalid = errors.New("monster: invalid event")
	// ErrInvalidName: an event type, pattern or consumer name is empty or
	// malformed.
	ErrInvalidName = errors.New("monster: invalid name")
	// ErrTooLarge: the encoded event is over Options.MaxEventSize.
	ErrTooLarge = errors.New("monster: event too large")
	// ErrEncoding: the event's data cannot be encoded as JSON.
	ErrEncoding = errors.New("monster: data cannot be encoded as JSON")
	// ErrUnknownStore: the URL names a store scheme nobody registered.
	ErrUnknownStore = errors.New("monster: unknown store")
	// ErrClosed: the Monster was closed.
	ErrClosed = errors.New("monster: closed")
	// ErrNotRunning: the consumers are not running (neither Start nor Run
	// is in progress), so a single consumer cannot be started.
	ErrNotRunning = errors.New("monster: consumers are not running")
	// ErrNotSupported: the store cannot do what was asked (LogTx on a store
	// without transactions).
	ErrNotSupported = errors.New("monster: not supported by this store")

	// ErrNotFound is store.ErrNotFound: a missing event, consumer or dead
	// letter.
	ErrNotFound = store.ErrNotFound
	// ErrNotAStore is store.ErrNotAStore: the file or database is not a
	// Monster store.
	ErrNotAStore = store.ErrNotAStore
	// ErrAmbiguous is store.ErrAmbiguousCommit: the call failed in a way
	// that hides whether the events were stored (the context ended while
	// the commit was under way, or the connection was lost after the commit
	// was sent). Retrying with an idempotency key is safe.
	ErrAmbiguous = store.ErrAmbiguousCommit
)

// ValidationError reports an event that failed validation. It matches
// ErrInvalid with errors.Is.
type ValidationError struct {
	// Type is the event type.
	Type string
	// Field names the offending field (a JSON path such as "quantity"), or
	// is empty when the problem is not with one field.
	Field string
	// Err is the cause.
	Err error
}

func (e *ValidationError) Error() string {
	if e.Field != "" {
		return fmt.Sprintf("monster: invalid %q event: field %q: %v", e.Type, e.Field, e.Err)
	}
	return fmt.Sprintf("monster: invalid %q event: %v", e.Type, e.Err)
}

// Unwrap returns the cause.
func (e *ValidationError) Unwrap() error { return e.Err }

// Is reports whether target is ErrInvalid.
func (e *ValidationError) Is(target error) bool { return target == ErrInvalid }

// FieldError is what a validation function returns to name the field at
// fault: FieldError("quantity", "must be positive").
func FieldError(field, message string) error {
	return &fieldError{field: field, message: message}
}

type fieldError struct{ field, message string }

func (e *fieldError) Error() string { return e.field + ": " + e.message }

// HandlerError is returned by Log in eager mode (Options.Eager) when a
// handler failed; the event itself was stored.
type HandlerError struct {
	Consumer string
	EventID  string
	Err      error
}

func (e *HandlerError) Error() string {
	return fmt.Sprintf("monster: consumer %q failed on event %s: %v", e.Consumer, e.EventID, e.Err)
}

// Unwrap returns the handler's error.
func (e *HandlerError) Unwrap() error { return e.Err }
