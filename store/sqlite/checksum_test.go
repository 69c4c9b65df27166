package sqlite_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/gomonster/monster/store"
	"github.com/gomonster/monster/store/sqlite"
)

// markedEvents returns n events whose data spell their number, so that a
// test can find one in the file.
func markedEvents(n int) []store.NewEvent {
	events := newEvents(n, "marked")
	for i := range events {
		events[i].Data = json.RawMessage(fmt.Sprintf(`"MARKER-%04d-%s"`, i+1, bytes.Repeat([]byte("x"), 40)))
	}
	return events
}

// flipIn flips one bit of the byte at offset off from each place where
// marker stands in the file at path, followed within 200 bytes by within
// when that is not empty (the event's row, not an index holding the same
// value). Each place: SQLite may leave stale copies of a row in free space.
func flipIn(t *testing.T, path, marker, within string, off int) {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	flipped := 0
	for i := 0; ; i++ {
		j := bytes.Index(b[i:], []byte(marker))
		if j < 0 {
			break
		}
		i += j
		if within == "" || bytes.Contains(b[i:min(len(b), i+200)], []byte(within)) {
			b[i+off] ^= 0x04
			flipped++
		}
	}
	require.NotZero(t, flipped, "%q not in the file", marker)
	require.NoError(t, os.WriteFile(path, b, 0o644))
}

// A flipped bit in a stored event is reported as corruption naming its
// position, by every read; the events around it read as before.
func TestFlippedBitIsCorruption(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "monster.db")
	s, err := sqlite.Open(ctx, path, nil)
	require.NoError(t, err)
	events := appendAll(t, s, markedEvents(50))
	require.NoError(t, s.Close()) // the WAL is checkpointed into the file

	flipIn(t, path, "MARKER-0042", "", 9)            // in the data
	flipIn(t, path, events[19].ID, "MARKER-0020", 3) // in the ID of position 20
	s = openPath(t, path)

	for _, pos := range []int64{20, 42} {
		_, err := s.Read(ctx, store.ReadParams{After: pos - 1, Limit: 1})
		require.ErrorIs(t, err, store.ErrCorrupt)
		require.Contains(t, err.Error(), fmt.Sprintf("position %d is corrupt", pos))
	}
	_, err = s.Read(ctx, store.ReadParams{After: 0, Limit: 100})
	require.ErrorIs(t, err, store.ErrCorrupt, "a page holding a corrupt event")
	_, err = s.EventByID(ctx, events[41].ID)
	require.ErrorIs(t, err, store.ErrCorrupt)

	got, err := s.Read(ctx, store.ReadParams{After: 20, Limit: 21})
	require.NoError(t, err)
	require.Equal(t, events[20:41], got, "the events between the damaged ones")
}

// A store of format version 1 (no checksums) is upgraded on open: its
// events read as before, unchecked, and new ones get checksums.
func TestFormatVersion1IsUpgraded(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "monster.db")
	s, err := sqlite.Open(ctx, path, nil)
	require.NoError(t, err)
	old := appendAll(t, s, markedEvents(3))
	// Make it a version 1 file: no sum column (nor version 3's
	// partitioning).
	for _, stmt := range []string{
		`ALTER TABLE events DROP COLUMN sum`,
		`ALTER TABLE consumers DROP COLUMN partitioning`,
		`UPDATE monster_meta SET value = 1 WHERE key = 'format_version'`,
	} {
		_, err := s.DB().ExecContext(ctx, stmt)
		require.NoError(t, err)
	}
	require.NoError(t, s.Close())

	s = openPath(t, path)
	var version int
	require.NoError(t, s.DB().QueryRowContext(ctx, `SELECT value FROM monster_meta WHERE key = 'format_version'`).Scan(&version))
	require.Equal(t, sqlite.FormatVersion, version)
	require.Equal(t, old, readAll(t, s))
	more := appendAll(t, s, newEvents(1, "new"))
	var unsummed int
	require.NoError(t, s.DB().QueryRowContext(ctx, `SELECT count(*) FROM events WHERE sum IS NULL`).Scan(&unsummed))
	require.Equal(t, 3, unsummed, "only the version 1 events lack a checksum")
	require.Equal(t, append(old, more...), readAll(t, s))
}

// A store of format version 2 (no partitioning stored) is upgraded on
// open: its consumers keep the partitioning they were registered with (the
// zero value, key else type), and new consumers store theirs.
func TestFormatVersion2IsUpgraded(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "monster.db")
	s, err := sqlite.Open(ctx, path, nil)
	require.NoError(t, err)
	_, err = s.RegisterConsumer(ctx, store.ConsumerSpec{Name: "old", Types: []string{"*"}, Partitions: 2})
	require.NoError(t, err)
	for _, stmt := range []string{
		`ALTER TABLE consumers DROP COLUMN partitioning`,
		`UPDATE monster_meta SET value = 2 WHERE key = 'format_version'`,
	} {
		_, err := s.DB().ExecContext(ctx, stmt)
		require.NoError(t, err)
	}
	require.NoError(t, s.Close())

	s = openPath(t, path)
	var version int
	require.NoError(t, s.DB().QueryRowContext(ctx, `SELECT value FROM monster_meta WHERE key = 'format_version'`).Scan(&version))
	require.Equal(t, sqlite.FormatVersion, version)
	old, err := s.RegisterConsumer(ctx, store.ConsumerSpec{Name: "old", Types: []string{"*"}, Partitions: 2, Partitioning: store.PartitionByKeyOrID})
	require.NoError(t, err)
	require.Equal(t, store.PartitionByKeyOrType, old.Partitioning, "a consumer of version 2 keeps partitioning by key, else type")
	fresh, err := s.RegisterConsumer(ctx, store.ConsumerSpec{Name: "new", Types: []string{"*"}, Partitions: 2, Partitioning: store.PartitionByKeyOrID})
	require.NoError(t, err)
	require.Equal(t, store.PartitionByKeyOrID, fresh.Partitioning)
}
