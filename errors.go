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
	// ErrInvalidKey: an event's key or idempotency key is over
	// MaxKeyBytes, is not valid UTF-8, or holds a control character (NUL
	// among them).
	ErrInvalidKey = errors.New("monster: invalid key")
	// ErrTooLarge: the encoded event is over Options.MaxEventSize.
	ErrTooLarge = errors.New("monster: event too large")
	// ErrEncoding: the event's data cannot be encoded as JSON, or is not
	// valid Unicode text (bytes that are not UTF-8, or a \u escape of half
	// a UTF-16 surrogate pair, which json.RawMessage lets through).
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
	// ErrNoStore is store.ErrNoStore: OpenExistingStore found no store
	// at the path or URL, and created none.
	ErrNoStore = store.ErrNoStore
	// ErrCorrupt is store.ErrCorrupt: a stored event does not match its
	// checksum; the error names its position.
	ErrCorrupt = store.ErrCorrupt
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
// handler failed, or given to Options.OnEagerFailure; the event itself was
// stored.
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

// Permanent marks a handler's failure as permanent: retrying cannot help
// (the event is malformed for this consumer, the account it names is
// closed), so the event goes to the consumer's dead letters at once,
// without the retry policy's remaining attempts and their backoff, and the
// consumer moves on. It is River's JobCancel and JetStream's Term.
//
//	if errors.Is(err, errAddressRejected) {
//		return monster.Permanent(err)
//	}
//
// The mark survives wrapping: a handler or middleware may wrap the result
// with fmt.Errorf("...: %w", err), and errors.Is(err, ErrPermanent) and
// errors.As(err, **PermanentError) find it, as they find err itself
// through PermanentError.Unwrap. Permanent(nil) is nil.
//
// It applies to consumers with ConsumerOptions.BlockOnFailure too: a
// permanent failure is dead-lettered there as well, and the partition's
// later events go on (see BlockOnFailure). A dead letter retried by an
// operator that fails permanently again goes back to the dead letters at
// once. In eager mode, where nothing is retried, it changes nothing.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return &PermanentError{Err: err}
}

// ErrPermanent matches, with errors.Is, a handler's error marked with
// Permanent. A handler may also return an error wrapping ErrPermanent
// itself (fmt.Errorf("%w: no such account", monster.ErrPermanent)): it is
// permanent the same way.
var ErrPermanent = errors.New("monster: permanent failure")

// PermanentError is the error Permanent returns: a handler's failure that
// is not to be retried.
type PermanentError struct {
	// Err is the handler's error.
	Err error
}

func (e *PermanentError) Error() string {
	return "monster: permanent failure (not retried): " + e.Err.Error()
}

// Unwrap returns the handler's error.
func (e *PermanentError) Unwrap() error { return e.Err }

// Is reports whether target is ErrPermanent.
func (e *PermanentError) Is(target error) bool { return target == ErrPermanent }

// isPermanent reports whether a handler's error is marked Permanent.
func isPermanent(err error) bool { return errors.Is(err, ErrPermanent) }
