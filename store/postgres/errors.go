package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5/pgconn"

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
	return errorf(nil, "monster: postgres %s: store is closed", op)
}

// opError describes a failure of operation op. Errors this package already
// worded pass through; others get the "monster: postgres op: " prefix. When
// ctx is done, the error also wraps ctx.Err(), whatever words pgx chose.
func opError(ctx context.Context, op string, err error) error {
	var me *monsterError
	if errors.As(err, &me) {
		return err
	}
	if ctxErr := ctx.Err(); ctxErr != nil && !errors.Is(err, ctxErr) {
		return fmt.Errorf("monster: postgres %s: %w (%w)", op, ctxErr, err)
	}
	return fmt.Errorf("monster: postgres %s: %w", op, err)
}

// pgCode returns the SQLSTATE of err, or "".
func pgCode(err error) string {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.Code
	}
	return ""
}

// SQLSTATEs the store tells apart.
const (
	codeUniqueViolation  = "23505"
	codeLockNotAvailable = "55P03"
	codeQueryCanceled    = "57014"
)

// commitError describes a COMMIT whose outcome is unknown: the connection
// failed after the COMMIT was sent, so the server may have committed.
func commitError(op string, err error) error {
	return errorf(store.ErrAmbiguousCommit, "monster: postgres %s: commit: %v (%v)", op, store.ErrAmbiguousCommit, err)
}
