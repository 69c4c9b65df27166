package sqlite_test

import (
	"context"
	"database/sql"
	"os"
	"path/filepath"
	"regexp"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	_ "modernc.org/sqlite"

	"github.com/gomonster/monster/store"
	"github.com/gomonster/monster/store/sqlite"
)

func TestReopenKeepsEverything(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "monster.db")
	s, err := sqlite.Open(ctx, path, nil)
	require.NoError(t, err)

	events := appendAll(t, s, newEvents(50, "kept"))
	_, err = s.RegisterConsumer(ctx, store.ConsumerSpec{Name: "mailer", Types: []string{"kept"}, Partitions: 2})
	require.NoError(t, err)
	now := time.Now()
	_, err = s.Claim(ctx, store.ClaimParams{Consumer: "mailer", Member: "m1", Partitions: []int{0, 1}, Expires: now.Add(time.Minute), Now: now})
	require.NoError(t, err)
	require.NoError(t, s.SaveCheckpoints(ctx, store.SaveCheckpointsParams{Consumer: "mailer", Member: "m1", Checkpoints: []store.Checkpoint{
		{Partition: 0, Position: 30, FailuresDelta: 2},
		{Partition: 1, Position: 41},
	}}))
	require.NoError(t, s.AddDeadLetter(ctx, store.DeadLetter{
		Consumer: "mailer", EventID: events[9].ID, Type: "kept", Position: 10, Attempts: 3, Error: "boom",
		FailedAt: time.Unix(1_700_000_000, 5).UTC(),
	}))
	require.NoError(t, s.Close())

	s = openPath(t, path)
	require.Equal(t, events, readAll(t, s))
	info, err := s.Consumer(ctx, "mailer")
	require.NoError(t, err)
	require.Equal(t, []string{"kept"}, info.Types)
	require.Equal(t, int64(30), info.Partitions[0].Checkpoint)
	require.Equal(t, int64(2), info.Partitions[0].Failures)
	require.Equal(t, int64(41), info.Partitions[1].Checkpoint)
	require.Equal(t, int64(1), info.DeadLetters)
	counts, err := s.CountByType(ctx, 0)
	require.NoError(t, err)
	require.Equal(t, map[string]int64{"kept": 50}, counts)

	// Positions continue after the reopen.
	more := appendAll(t, s, newEvents(1, "kept"))
	require.Equal(t, int64(51), more[0].Position)
}

func TestOpenEmptyFile(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "empty.db")
	require.NoError(t, os.WriteFile(path, nil, 0o644))
	s := openPath(t, path)
	appendAll(t, s, newEvents(1, "x"))
}

// With MustExist, Open opens an existing store and creates nothing where
// there is none: no file, an empty file or a database without the store's
// tables stay as they were.
func TestOpenMustExist(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dir := t.TempDir()
	mustExist := &sqlite.Options{MustExist: true}

	missing := filepath.Join(dir, "nosuch.db")
	_, err := sqlite.Open(ctx, missing, mustExist)
	require.ErrorIs(t, err, store.ErrNoStore)
	require.EqualError(t, err, `monster: no store at "`+missing+`"`)
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	require.Empty(t, entries, "Open created files")

	empty := filepath.Join(dir, "empty.db")
	require.NoError(t, os.WriteFile(empty, nil, 0o644))
	_, err = sqlite.Open(ctx, empty, mustExist)
	require.ErrorIs(t, err, store.ErrNoStore)
	require.EqualError(t, err, `monster: no store at "`+empty+`" (the file is empty)`)
	fi, err := os.Stat(empty)
	require.NoError(t, err)
	require.Zero(t, fi.Size(), "Open initialised the empty file")

	bare := filepath.Join(dir, "bare.db")
	db, err := sql.Open("sqlite", bare)
	require.NoError(t, err)
	_, err = db.Exec("PRAGMA user_version = 1") // a database, with no tables
	require.NoError(t, err)
	require.NoError(t, db.Close())
	_, err = sqlite.Open(ctx, bare, mustExist)
	require.ErrorIs(t, err, store.ErrNoStore)
	require.Contains(t, err.Error(), "no store's tables")

	path := filepath.Join(dir, "monster.db")
	s := openPath(t, path)
	events := appendAll(t, s, newEvents(3, "kept"))
	existing, err := sqlite.Open(ctx, path, mustExist)
	require.NoError(t, err)
	t.Cleanup(func() { _ = existing.Close() })
	require.Equal(t, events, readAll(t, existing))
}

func TestOpenNotAStore(t *testing.T) {
	t.Parallel()
	ctx := context.Background()

	sqliteFile := func(t *testing.T, statements ...string) string {
		path := filepath.Join(t.TempDir(), "other.db")
		db, err := sql.Open("sqlite", path)
		require.NoError(t, err)
		defer db.Close()
		for _, stmt := range statements {
			_, err := db.Exec(stmt)
			require.NoError(t, err)
		}
		return path
	}

	for _, tc := range []struct {
		name   string
		file   func(t *testing.T) string
		reason string
	}{
		{
			name: "text file",
			file: func(t *testing.T) string {
				path := filepath.Join(t.TempDir(), "notes.txt")
				require.NoError(t, os.WriteFile(path, []byte("These are my notes, not a database.\n"), 0o644))
				return path
			},
			reason: "file is not a database",
		},
		{
			name: "large binary file",
			file: func(t *testing.T) string {
				path := filepath.Join(t.TempDir(), "blob.bin")
				data := make([]byte, 64<<10)
				for i := range data {
					data[i] = byte(i * 7)
				}
				require.NoError(t, os.WriteFile(path, data, 0o644))
				return path
			},
			reason: "file is not a database",
		},
		{
			name: "another application's database",
			file: func(t *testing.T) string {
				return sqliteFile(t, `CREATE TABLE users (name TEXT)`, `INSERT INTO users VALUES ('gordon')`)
			},
			reason: "the database has no monster_meta table",
		},
		{
			name: "another application_id",
			file: func(t *testing.T) string {
				return sqliteFile(t, `PRAGMA application_id = 42`)
			},
			reason: "application_id is 0x2a, not 0x4d4f4e53",
		},
		{
			name: "unknown format version",
			file: func(t *testing.T) string {
				path := filepath.Join(t.TempDir(), "future.db")
				s, err := sqlite.Open(ctx, path, nil)
				require.NoError(t, err)
				_, err = s.DB().Exec(`UPDATE monster_meta SET value = 99 WHERE key = 'format_version'`)
				require.NoError(t, err)
				require.NoError(t, s.Close())
				return path
			},
			reason: "unknown format version 99 (this build reads versions 1 to 3)",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			path := tc.file(t)
			before, err := os.ReadFile(path)
			require.NoError(t, err)

			_, err = sqlite.Open(ctx, path, nil)
			require.ErrorIs(t, err, store.ErrNotAStore)
			require.EqualError(t, err, `monster: "`+path+`" is not a monster store: `+tc.reason)

			after, err := os.ReadFile(path)
			require.NoError(t, err)
			require.Equal(t, before, after, "Open modified a file that is not a store")
		})
	}
}

// Many Stores open a new file at once, as processes starting together
// would: exactly one initialises it and every Open succeeds.
func TestOpenNewFileConcurrently(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "new.db")
	var wg sync.WaitGroup
	stores := make([]*sqlite.Store, 8)
	errs := make([]error, len(stores))
	for i := range stores {
		wg.Go(func() {
			stores[i], errs[i] = sqlite.Open(context.Background(), path, nil)
		})
	}
	wg.Wait()
	for i, s := range stores {
		require.NoError(t, errs[i])
		t.Cleanup(func() { s.Close() })
	}
	for _, s := range stores {
		appendAll(t, s, newEvents(1, "x"))
	}
	require.Len(t, readAll(t, stores[0]), len(stores))
}

// The path reaches SQLite whole, whatever characters it holds.
func TestOpenOddPath(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "a dir?with#odd%chars")
	require.NoError(t, os.Mkdir(dir, 0o755))
	path := filepath.Join(dir, "monster ?.db")
	s := openPath(t, path)
	appendAll(t, s, newEvents(1, "x"))
	_, err := os.Stat(path)
	require.NoError(t, err)
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	for _, e := range entries {
		require.Regexp(t, "^"+regexp.QuoteMeta("monster ?.db"), e.Name())
	}
}
