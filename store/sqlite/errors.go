package sqlite

import (
	"context"
	"fmt"

	sqlite3 "modernc.org/sqlite/lib"

	"github.com/gomonster/monster/store"
)

// errorf words an error of this package; see store.Errorf.
func errorf(err error, format string, args ...any) error {
	return store.Errorf(err, format, args...)
}

func errClosed(op string) error { return store.ClosedError("sqlite", op) }

// opError describes a failure of operation op; see store.OpError.
func opError(ctx context.Context, op string, err error) error {
	if diskFull("", err) {
		err = fmt.Errorf("the disk is full (%w)", err)
	}
	return store.OpError(ctx, "sqlite", op, err)
}

// diskFull reports whether SQLite's err comes from a full disk:
// SQLITE_FULL, or an I/O error while the file system holding path (when
// known) has no space left. SQLite reports the latter when it cannot
// create or grow the -shm or -wal file: "disk I/O error (4874)" is
// SQLITE_IOERR_SHMSIZE.
func diskFull(path string, err error) bool {
	switch sqliteCode(err) & 0xff {
	case sqlite3.SQLITE_FULL:
		return true
	case sqlite3.SQLITE_IOERR, sqlite3.SQLITE_CANTOPEN:
		return path != "" && noSpaceLeft(path)
	}
	return false
}

// commitError describes a failed COMMIT of an Append. The driver itself
// failed to commit (an I/O error while syncing the WAL, say): the frames may
// be in the WAL and become visible after recovery, so the outcome is
// ambiguous.
func commitError(err error) error {
	return fmt.Errorf("monster: sqlite append: commit: %w (%w)", store.ErrAmbiguousCommit, err)
}
