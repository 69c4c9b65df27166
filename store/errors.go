package store

import (
	"context"
	"errors"
	"fmt"
)

// Error is an error whose message is complete and starts with "monster: ",
// wrapping a sentinel of this package (or nothing). [OpError] passes it
// through as it is: a store words its own errors once, with Errorf, and
// gives everything else (driver errors) to OpError.
type Error struct {
	msg string
	err error
}

func (e *Error) Error() string { return e.msg }

// Unwrap returns the sentinel the error wraps, or nil.
func (e *Error) Unwrap() error { return e.err }

// Errorf returns an *Error with the formatted message, wrapping err: a
// sentinel of this package, the driver's error it describes, or nil.
// Arguments are formatted, not wrapped: only err is seen by errors.Is.
func Errorf(err error, format string, args ...any) error {
	return &Error{msg: fmt.Sprintf(format, args...), err: err}
}

// ClosedError is what a store's methods return after Close: "monster:
// <store> <op>: store is closed".
func ClosedError(storeName, op string) error {
	return Errorf(nil, "monster: %s %s: store is closed", storeName, op)
}

// OpError describes a failure of operation op (such as "append") of the
// store named storeName (such as "sqlite"). Errors already worded with
// [Errorf] pass through; others get the prefix "monster: <store> <op>: ".
// When ctx is done, the error also wraps ctx.Err(), whatever words the
// driver chose for an interrupted call, so that callers can tell a
// cancellation with errors.Is.
func OpError(ctx context.Context, storeName, op string, err error) error {
	var se *Error
	if errors.As(err, &se) {
		return err
	}
	if ctxErr := ctx.Err(); ctxErr != nil && !errors.Is(err, ctxErr) {
		return fmt.Errorf("monster: %s %s: %w (%w)", storeName, op, ctxErr, err)
	}
	return fmt.Errorf("monster: %s %s: %w", storeName, op, err)
}

// AmbiguousCommitError describes a commit whose outcome the store cannot
// know (the connection failed after the commit was sent): it wraps
// [ErrAmbiguousCommit], and the driver's error by its text.
func AmbiguousCommitError(storeName, op string, err error) error {
	return Errorf(ErrAmbiguousCommit, "monster: %s %s: commit: %v (%v)", storeName, op, ErrAmbiguousCommit, err)
}
