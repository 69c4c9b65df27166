package postgres

import (
	"context"
	"errors"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

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

// commitOutcomeUnknown reports whether err, from a transaction whose COMMIT
// was sent on conn, leaves the outcome unknown. Only an ERROR the server
// answered on a connection that is still open means the transaction was
// rolled back. Anything else ended the connection and may have come after
// the commit: a network failure, or a FATAL such as 57P01 ("terminating
// connection due to administrator command", on a restart or
// pg_terminate_backend), which the server can send after the commit record
// is flushed and before it answers COMMIT.
func commitOutcomeUnknown(conn *pgxpool.Conn, err error) bool {
	var pe *pgconn.PgError
	if !errors.As(err, &pe) {
		return true
	}
	severity := pe.SeverityUnlocalized
	if severity == "" {
		severity = pe.Severity
	}
	return severity == "FATAL" || severity == "PANIC" || conn.Conn().IsClosed()
}

// commitError describes a COMMIT whose outcome is unknown: the connection
// failed after the COMMIT was sent, so the server may have committed.
func commitError(op string, err error) error {
	return store.AmbiguousCommitError("postgres", op, err)
}
