package postgres

import (
	"context"
	"errors"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/gomonster/monster/store"
)

// errorf words an error of this package; see store.Errorf.
func errorf(err error, format string, args ...any) error {
	return store.Errorf(err, format, args...)
}

func errClosed(op string) error { return store.ClosedError("postgres", op) }

// opError describes a failure of operation op; see store.OpError.
func opError(ctx context.Context, op string, err error) error {
	return store.OpError(ctx, "postgres", op, err)
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
	return store.AmbiguousCommitError("postgres", op, err)
}
