package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	sqlitedriver "modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/gomonster/monster/store"
)

// ApplicationID is the value of PRAGMA application_id in a Monster store
// file: "MONS" in ASCII.
const ApplicationID = 0x4D4F4E53

// pageSize is the page size of new store files. Group commits of tens of
// events are what Log produces; with 4 KiB pages such a commit writes about
// 40 KB to the WAL, a quarter of what 16 KiB pages cost (which read
// somewhat faster).
const pageSize = 4096

// FormatVersion is the version of the schema this package writes and reads,
// kept in the monster_meta table.
const FormatVersion = 3

// Options configures Open. A nil *Options means all defaults.
type Options struct {
	// BusyTimeout is how long a statement waits for another connection or
	// process to release the database's write lock before it fails with
	// "database is locked". Default: 10s.
	BusyTimeout time.Duration
	// MustExist makes Open fail with an error wrapping [store.ErrNoStore]
	// ("monster: no store at PATH") when the file is missing, empty (0
	// bytes) or an SQLite database without a store's tables, instead of
	// creating and initialising the store: for tools that only read or
	// change a store, so that a mistyped path leaves nothing behind.
	// Default: false, Open creates the store.
	MustExist bool
}

// WithDefaults returns a copy of o with every zero field set to its default.
func (o *Options) WithDefaults() Options {
	var out Options
	if o != nil {
		out = *o
	}
	if out.BusyTimeout == 0 {
		out.BusyTimeout = 10 * time.Second
	}
	return out
}

func (o Options) validate() error {
	if o.BusyTimeout < time.Millisecond {
		return fmt.Errorf("monster: sqlite options: BusyTimeout %v is below 1ms", o.BusyTimeout)
	}
	return nil
}

// Store is a Monster store kept in one SQLite file. It implements
// [store.Store] and [store.SQLTxAppender]; see the package documentation.
type Store struct {
	path   string
	db     *sql.DB
	writer *writeLock
	// writeConn is the one connection the store writes on. SQLite drops a
	// connection's whole page cache when it sees that another connection
	// has committed; writing always on the same one keeps its cache (the
	// right edges of the B-trees that appends touch) warm.
	writeConn    *sql.Conn
	stmts        statements
	checkpointer *checkpointer
	closed       atomic.Bool
}

var (
	_ store.Store         = (*Store)(nil)
	_ store.SQLTxAppender = (*Store)(nil)
)

// Open opens the store in the SQLite file at path, creating and initialising
// the file if it does not exist or is empty. Several processes, and several
// Stores in one process, may open the same file at once.
//
// Open returns an error wrapping [store.ErrNotAStore], without modifying the
// file, when the file is not an SQLite database, belongs to another
// application, or holds a Monster store of an unknown format version.
func Open(ctx context.Context, path string, opts *Options) (*Store, error) {
	o := opts.WithDefaults()
	if err := o.validate(); err != nil {
		return nil, err
	}
	if path == "" {
		return nil, errors.New("monster: sqlite open: empty path")
	}
	if path == ":memory:" || strings.HasPrefix(path, "file::memory:") {
		return nil, fmt.Errorf("monster: sqlite open %q: in-memory databases are not supported: every connection would see its own database", path)
	}

	if o.MustExist {
		if err := checkExists(path); err != nil {
			return nil, err
		}
	}
	if err := prepareFile(ctx, path, o); err != nil {
		return nil, err
	}

	db, err := sql.Open("sqlite", dsn(path, o, true))
	if err != nil {
		return nil, fmt.Errorf("monster: sqlite open %q: %w", path, err)
	}
	// Opening a connection runs the DSN's pragmas and reads the schema;
	// keeping enough idle connections avoids doing that on a busy path.
	db.SetMaxIdleConns(runtime.GOMAXPROCS(0) + 2)

	s := &Store{path: path, db: db}
	if err := s.stmts.prepare(ctx, db); err != nil {
		s.stmts.close()
		db.Close()
		return nil, fmt.Errorf("monster: sqlite open %q: %w", path, err)
	}
	if s.writeConn, err = db.Conn(ctx); err != nil {
		s.stmts.close()
		db.Close()
		return nil, openErr(path, err)
	}
	s.writer = acquireWriteLock(path)
	s.checkpointer = startCheckpointer(db)
	return s, nil
}

// dsn returns the modernc.org/sqlite data source name for path. The file:
// URI form lets any path through (a '?' or '#' in it is escaped); the
// pragmas run on every new connection. journal_mode is left out of the DSN
// used to inspect a file, because switching to WAL rewrites the header of a
// file that may not be ours.
func dsn(path string, o Options, wal bool) string {
	p := filepath.ToSlash(path)
	if filepath.VolumeName(path) != "" {
		p = "/" + p // file:/C:/dir/x.db on Windows
	}
	p = strings.NewReplacer("%", "%25", "?", "%3F", "#", "%23").Replace(p)
	var b strings.Builder
	b.WriteString("file:")
	b.WriteString(p)
	fmt.Fprintf(&b, "?_pragma=busy_timeout(%d)", o.BusyTimeout.Milliseconds())
	b.WriteString("&_pragma=foreign_keys(1)")
	if o.MustExist {
		// SQLite's own refusal to create the file, should it vanish
		// between checkExists and here.
		b.WriteString("&mode=rw")
	}
	if wal {
		b.WriteString("&_pragma=journal_mode(WAL)")
	}
	b.WriteString("&_pragma=synchronous(FULL)")
	b.WriteString("&_pragma=temp_store(MEMORY)")
	fmt.Fprintf(&b, "&_pragma=wal_autocheckpoint(%d)", autoCheckpointPages)
	b.WriteString("&_txlock=immediate")
	return b.String()
}

// notAStoreError is returned by Open for a file that is not a Monster
// store; it wraps store.ErrNotAStore.
type notAStoreError struct {
	path, reason string
}

func (e *notAStoreError) Error() string {
	return fmt.Sprintf("monster: %q is not a monster store: %s", e.path, e.reason)
}

func (e *notAStoreError) Unwrap() error { return store.ErrNotAStore }

// prepareFile checks that the file at path is empty or a Monster store,
// initialises an empty one, and switches it to WAL. It works on one
// connection without journal_mode in its DSN, so that a file that is not
// ours is only read.
func prepareFile(ctx context.Context, path string, o Options) error {
	db, err := sql.Open("sqlite", dsn(path, o, false))
	if err != nil {
		return fmt.Errorf("monster: sqlite open %q: %w", path, err)
	}
	defer db.Close()
	conn, err := db.Conn(ctx)
	if err != nil {
		return openErr(path, err)
	}
	defer conn.Close()

	st, err := inspect(ctx, conn, false)
	if err != nil {
		return openErr(path, err)
	}
	if st == fileEmpty && o.MustExist {
		return noStoreError(path, "the database has no store's tables")
	}
	if st == fileEmpty || st == fileOlder {
		if err := initialise(ctx, conn); err != nil {
			return openErr(path, err)
		}
	}
	if err := enableWAL(ctx, conn, o.BusyTimeout); err != nil {
		return openErr(path, err)
	}
	return nil
}

// checkExists refuses a path with no store file: missing, or empty (SQLite
// would take a 0-byte file for a new database and initialise it).
func checkExists(path string) error {
	fi, err := os.Stat(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return noStoreError(path, "")
	case err != nil:
		return fmt.Errorf("monster: sqlite open %q: %w", path, err)
	case fi.IsDir():
		return &notAStoreError{path: path, reason: "it is a directory"}
	case fi.Size() == 0:
		return noStoreError(path, "the file is empty")
	}
	return nil
}

func noStoreError(path, why string) error {
	if why != "" {
		return store.Errorf(store.ErrNoStore, "monster: no store at %q (%s)", path, why)
	}
	return store.Errorf(store.ErrNoStore, "monster: no store at %q", path)
}

func openErr(path string, err error) error {
	var nas *notAStoreError
	if errors.As(err, &nas) {
		nas.path = path
		return nas
	}
	if sqliteCode(err)&0xff == sqlite3.SQLITE_NOTADB {
		return &notAStoreError{path: path, reason: "file is not a database"}
	}
	if diskFull(path, err) {
		return fmt.Errorf("monster: sqlite open %q: the disk is full: no space left for the store's files (%w)", path, err)
	}
	return fmt.Errorf("monster: sqlite open %q: %w", path, err)
}

type fileState int

const (
	fileEmpty fileState = iota
	fileStore
	fileOlder // a store of an earlier format version, to upgrade
)

// inspect reads the file's application_id, tables and format version and
// tells an empty file from a Monster store; anything else is a
// *notAStoreError (with the path still to be filled in). With inTx, it runs
// inside the caller's transaction.
func inspect(ctx context.Context, conn *sql.Conn, inTx bool) (fileState, error) {
	q := func(query string, dest ...any) error {
		return conn.QueryRowContext(ctx, query).Scan(dest...)
	}
	if !inTx {
		// One read transaction, so that a concurrent initialisation is seen
		// whole or not at all.
		if _, err := conn.ExecContext(ctx, "BEGIN DEFERRED"); err != nil {
			return 0, err
		}
		defer conn.ExecContext(context.Background(), "ROLLBACK")
	}
	var appID int64
	if err := q("PRAGMA application_id", &appID); err != nil {
		return 0, err
	}
	var objects int64
	if err := q("SELECT count(*) FROM sqlite_schema", &objects); err != nil {
		return 0, err
	}
	if appID != ApplicationID && appID != 0 {
		return 0, &notAStoreError{reason: fmt.Sprintf("application_id is %#x, not %#x", appID, ApplicationID)}
	}
	if appID == 0 && objects == 0 {
		return fileEmpty, nil
	}
	var hasMeta int64
	if err := q("SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND name = 'monster_meta'", &hasMeta); err != nil {
		return 0, err
	}
	if hasMeta == 0 {
		return 0, &notAStoreError{reason: "the database has no monster_meta table"}
	}
	var version int64
	err := q("SELECT value FROM monster_meta WHERE key = 'format_version'", &version)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, &notAStoreError{reason: "monster_meta has no format_version"}
	}
	if err != nil {
		return 0, err
	}
	if version < 1 || version > FormatVersion {
		return 0, &notAStoreError{reason: fmt.Sprintf("unknown format version %d (this build reads versions 1 to %d)", version, FormatVersion)}
	}
	if version < FormatVersion {
		return fileOlder, nil
	}
	return fileStore, nil
}

// initialise creates the schema, or upgrades an earlier format version to
// the current one, in one IMMEDIATE transaction. It inspects the file again
// inside the transaction: another process may have initialised or upgraded
// it (or written something else) since the first look.
func initialise(ctx context.Context, conn *sql.Conn) (err error) {
	// The page size of a database is fixed when its first page is written.
	// It is a no-op if another process has initialised the file meanwhile.
	if _, err := conn.ExecContext(ctx, fmt.Sprintf("PRAGMA page_size = %d", pageSize)); err != nil {
		return err
	}
	if _, err := conn.ExecContext(ctx, "BEGIN IMMEDIATE"); err != nil {
		return err
	}
	defer func() {
		if err != nil {
			conn.ExecContext(context.Background(), "ROLLBACK")
		}
	}()
	st, err := inspect(ctx, conn, true)
	if err != nil {
		return err
	}
	if st == fileEmpty {
		if _, err := conn.ExecContext(ctx, fmt.Sprintf("PRAGMA application_id = %d", ApplicationID)); err != nil {
			return err
		}
		if _, err := conn.ExecContext(ctx, schema); err != nil {
			return err
		}
		if _, err := conn.ExecContext(ctx, "INSERT INTO monster_meta (key, value) VALUES ('format_version', ?)", FormatVersion); err != nil {
			return err
		}
	}
	if st == fileOlder {
		var version int64
		if err := conn.QueryRowContext(ctx, "SELECT value FROM monster_meta WHERE key = 'format_version'").Scan(&version); err != nil {
			return err
		}
		for ; version < FormatVersion; version++ {
			if _, err := conn.ExecContext(ctx, upgrades[version]); err != nil {
				return fmt.Errorf("upgrading format version %d to %d: %w", version, version+1, err)
			}
		}
		if _, err := conn.ExecContext(ctx, "UPDATE monster_meta SET value = ? WHERE key = 'format_version'", FormatVersion); err != nil {
			return err
		}
	}
	_, err = conn.ExecContext(ctx, "COMMIT")
	return err
}

// enableWAL switches the file to WAL journaling (a persistent setting).
// Entering WAL mode needs an exclusive lock for a moment; when several
// processes open a new file at once it can fail with SQLITE_BUSY without
// going through the busy handler, so it is retried until the busy timeout.
func enableWAL(ctx context.Context, conn *sql.Conn, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	delay := time.Millisecond
	for {
		var mode string
		err := conn.QueryRowContext(ctx, "PRAGMA journal_mode = WAL").Scan(&mode)
		if err == nil {
			if !strings.EqualFold(mode, "wal") {
				return fmt.Errorf("cannot switch to WAL journal mode (mode is %q)", mode)
			}
			return nil
		}
		if sqliteCode(err)&0xff != sqlite3.SQLITE_BUSY || time.Now().After(deadline) {
			return err
		}
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
		delay = min(2*delay, 50*time.Millisecond)
	}
}

// sqliteCode returns the (extended) SQLite result code of err, or 0.
func sqliteCode(err error) int {
	var e *sqlitedriver.Error
	if errors.As(err, &e) {
		return e.Code()
	}
	return 0
}

// DB returns the store's database, for the application to begin
// transactions on and pass to AppendTx. Transactions begun on it are
// IMMEDIATE: they hold the file's write lock from BEGIN to COMMIT, so keep
// them short.
func (s *Store) DB() *sql.DB { return s.db }

// Path returns the path the store was opened with.
func (s *Store) Path() string { return s.path }

// Close closes the store's connections. It returns an error if the store is
// already closed; other methods called after Close return errors too.
func (s *Store) Close() error {
	if !s.closed.CompareAndSwap(false, true) {
		return errClosed("close")
	}
	s.checkpointer.close()
	s.stmts.close()
	s.writeConn.Close()
	err := s.db.Close()
	s.writer.release()
	if err != nil {
		return fmt.Errorf("monster: sqlite close %q: %w", s.path, err)
	}
	return nil
}

// writeLock serialises the writes of every Store of one process on one
// file. SQLite lets one connection write at a time and makes the others
// poll with sleeps in its busy handler; queueing on a Go channel instead
// hands the lock over at once and in order. Processes still meet in
// SQLite's lock (and the application's transactions on DB() too).
type writeLock struct {
	key  string
	ch   chan struct{}
	refs int // guarded by writeLocks.mu
}

var writeLocks = struct {
	mu sync.Mutex
	m  map[string]*writeLock
}{m: map[string]*writeLock{}}

func writeLockKey(path string) string {
	p, err := filepath.Abs(path)
	if err != nil {
		return path
	}
	if r, err := filepath.EvalSymlinks(p); err == nil {
		return r
	}
	return p
}

func acquireWriteLock(path string) *writeLock {
	key := writeLockKey(path)
	writeLocks.mu.Lock()
	defer writeLocks.mu.Unlock()
	l := writeLocks.m[key]
	if l == nil {
		l = &writeLock{key: key, ch: make(chan struct{}, 1)}
		writeLocks.m[key] = l
	}
	l.refs++
	return l
}

func (l *writeLock) release() {
	writeLocks.mu.Lock()
	defer writeLocks.mu.Unlock()
	l.refs--
	if l.refs == 0 {
		delete(writeLocks.m, l.key)
	}
}

func (l *writeLock) lock(ctx context.Context) error {
	select {
	case l.ch <- struct{}{}:
		return nil
	default:
	}
	select {
	case l.ch <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (l *writeLock) unlock() { <-l.ch }
