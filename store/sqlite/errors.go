package sqlite

import (
	"context"
	"fmt"

	"github.com/gomonster/monster/store"
)

// errorf words an error of this package; see store.Errorf.
func errorf(err error, format string, args ...any) error {
	return store.Errorf(err, format, args...)
}

func errClosed(op string) error { return store.ClosedError("sqlite", op) }

// opError describes a failure of operation op; see store.OpError.
func opError(ctx context.Context, op string, err error) error {
	return store.OpError(ctx, "sqlite", op, err)
}

// commitError describes a failed COMMIT of an Append. The driver itself
// failed to commit (an I/O error while syncing the WAL, say): the frames may
// be in the WAL and become visible after recovery, so the outcome is
// ambiguous.
func commitError(err error) error {
	return fmt.Errorf("monster: sqlite append: commit: %w (%w)", store.ErrAmbiguousCommit, err)
}
