package sqlite

import (
	"context"
	"errors"
	"fmt"

	"github.com/gomonster/monster/store"
)

// monsterError is an error whose message is complete and starts with
// "monster: ", wrapping a sentinel of package store (or nothing).
type monsterError struct {
	msg string
	err error
}

func (e *monsterError) Error() string { return e.msg }
func (e *monsterError) Unwrap() error { return e.err }

// errorf returns an error with the formatted message that wraps sentinel.
func errorf(sentinel error, format string, args ...any) error {
	return &monsterError{msg: fmt.Sprintf(format, args...), err: sentinel}
}

func errClosed(op string) error {
	return errorf(nil, "monster: sqlite %s: store is closed", op)
}

// opError describes a failure of operation op. Errors this package already
// worded pass through; others get the "monster: sqlite op: " prefix. When
// ctx is done, the error also wraps ctx.Err(): the driver reports an
// interrupted statement in its own words.
func opError(ctx context.Context, op string, err error) error {
	var me *monsterError
	if errors.As(err, &me) {
		return err
	}
	if ctxErr := ctx.Err(); ctxErr != nil && !errors.Is(err, ctxErr) {
		return fmt.Errorf("monster: sqlite %s: %w (%w)", op, ctxErr, err)
	}
	return fmt.Errorf("monster: sqlite %s: %w", op, err)
}

// commitError describes a failed COMMIT of an Append. The driver itself
// failed to commit (an I/O error while syncing the WAL, say): the frames may
// be in the WAL and become visible after recovery, so the outcome is
// ambiguous.
func commitError(err error) error {
	return fmt.Errorf("monster: sqlite append: commit: %w (%w)", store.ErrAmbiguousCommit, err)
}
