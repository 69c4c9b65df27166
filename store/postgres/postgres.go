package postgres

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"net/url"
	"regexp"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"

	"github.com/gomonster/monster"
	"github.com/gomonster/monster/store"
)

func init() {
	open := func(ctx context.Context, url string) (store.Store, error) {
		s, err := Open(ctx, url, nil)
		if err != nil {
			return nil, err
		}
		return s, nil
	}
	monster.RegisterStore("postgres", open)
	monster.RegisterStore("postgresql", open)
}

// DefaultSchema is the schema the store's tables live in unless
// [Options.Schema] or the URL's monster_schema parameter says otherwise.
const DefaultSchema = "monster"

// Options configures Open. A nil *Options means all defaults.
type Options struct {
	// Schema is the PostgreSQL schema that holds the store's tables; it is
	// created if missing. Default: the URL's monster_schema query
	// parameter, else [DefaultSchema]. Several stores may live in one
	// database under different schemas.
	Schema string
	// NoAutoMigrate stops Open from creating or upgrading the schema: Open
	// then fails with an error wrapping [ErrNeedsMigration] unless the
	// schema is at [SchemaVersion], and [Store.Migrate] (the monster
	// migrate command) must be run first. Default: false, Open migrates.
	NoAutoMigrate bool
	// MaxConns caps the store's connection pool (LISTEN uses one more
	// connection of its own). Default: the URL's pool_max_conns, else
	// 2 × GOMAXPROCS, at least 8.
	MaxConns int32
	// WarmConns is how many connections Open makes ready before it
	// returns, all at once, each having run the consumers' read once.
	// Without them, the first events after Open waited for new
	// connections (a server process to start and fill its caches): 35-55
	// ms for the first events logged and handled at 1,000 events/s here,
	// where the whole run's p99 is now about 5 ms. They stay in the pool
	// as any connection does (pgx closes one idle for 30 minutes or open
	// for an hour). Default: 4, at most MaxConns: the group committer, and
	// a consumer's reader and its control loop. Negative: none.
	WarmConns int32
	// AppendLockTimeout is how long an append waits for the store's append
	// lock, held by another transaction that is appending until it ends,
	// before failing. It turns a transaction left open after LogTx (or a
	// Log called inside one) into an error instead of a hang. Default: 30s.
	AppendLockTimeout time.Duration
	// ListenRetry is the longest pause between attempts to reconnect the
	// LISTEN connection after it fails. Default: 1s.
	ListenRetry time.Duration
}

// WithDefaults returns a copy of o with every zero field set to its default.
func (o *Options) WithDefaults() Options {
	var out Options
	if o != nil {
		out = *o
	}
	if out.Schema == "" {
		out.Schema = DefaultSchema
	}
	if out.AppendLockTimeout == 0 {
		out.AppendLockTimeout = 30 * time.Second
	}
	if out.ListenRetry == 0 {
		out.ListenRetry = time.Second
	}
	return out
}

var schemaName = regexp.MustCompile(`^[a-z_][a-z0-9_]{0,62}$`)

func (o Options) validate() error {
	switch {
	case !schemaName.MatchString(o.Schema):
		return fmt.Errorf("monster: postgres options: Schema %q must be 1 to 63 lower-case letters, digits and underscores, not starting with a digit", o.Schema)
	case o.MaxConns < 0:
		return fmt.Errorf("monster: postgres options: negative MaxConns %d", o.MaxConns)
	case o.AppendLockTimeout < time.Millisecond:
		return fmt.Errorf("monster: postgres options: AppendLockTimeout %v is below 1ms", o.AppendLockTimeout)
	case o.ListenRetry < time.Millisecond:
		return fmt.Errorf("monster: postgres options: ListenRetry %v is below 1ms", o.ListenRetry)
	}
	return nil
}

// Store is a Monster store in a PostgreSQL database. It implements
// [store.Store], [store.SQLTxAppender] and [store.Notifier]; see the
// package documentation.
type Store struct {
	pool     *pgxpool.Pool
	db       *sql.DB
	schema   string
	opts     Options
	where    string // the server, for error messages: host:port/database
	sql      queries
	listener *listener
	closed   atomic.Bool

	// Background folds of the type counts (counts.go).
	foldAfter int64        // foldEvery, but for tests
	unfolded  atomic.Int64 // events appended since the last fold began
	folding   atomic.Bool  // a fold is running
	bgMu      sync.Mutex   // orders starting a fold against Close
	bg        sync.WaitGroup
	bgCtx     context.Context
	bgStop    context.CancelFunc
}

var (
	_ store.Store         = (*Store)(nil)
	_ store.SQLTxAppender = (*Store)(nil)
	_ store.Notifier      = (*Store)(nil)
)

// Open connects to the PostgreSQL database at connString (a postgres:// URL
// or a key=value DSN, as pgx takes them) and returns the store in its
// schema, migrating the schema first unless opts.NoAutoMigrate is set.
//
// Open fails, with an error naming the server, if the database cannot be
// reached; with an error wrapping [store.ErrNotAStore] if the schema holds
// something else or a newer version of the store; and, with
// NoAutoMigrate, with an error wrapping [ErrNeedsMigration].
func Open(ctx context.Context, connString string, opts *Options) (*Store, error) {
	connString, urlSchema, err := takeSchemaParam(connString)
	if err != nil {
		return nil, err
	}
	if urlSchema != "" && (opts == nil || opts.Schema == "") {
		o := Options{}
		if opts != nil {
			o = *opts
		}
		o.Schema = urlSchema
		opts = &o
	}
	o := opts.WithDefaults()
	if err := o.validate(); err != nil {
		return nil, err
	}
	cfg, err := pgxpool.ParseConfig(connString)
	if err != nil {
		// pgx's message may quote the connection string; ours does not.
		return nil, fmt.Errorf("monster: postgres open: invalid connection string: %w", errors.Unwrap(err))
	}
	if o.MaxConns > 0 {
		cfg.MaxConns = o.MaxConns
	} else if !hasParam(connString, "pool_max_conns") {
		cfg.MaxConns = int32(max(8, 2*runtime.GOMAXPROCS(0)))
	}
	warm := min(o.WarmConns, cfg.MaxConns)
	if o.WarmConns == 0 {
		warm = min(defaultWarmConns, cfg.MaxConns)
	}
	// Durable on return: whatever the server's default, our commits wait
	// for the WAL to be flushed.
	cfg.ConnConfig.RuntimeParams["synchronous_commit"] = "on"
	where := fmt.Sprintf("%s:%d/%s", cfg.ConnConfig.Host, cfg.ConnConfig.Port, cfg.ConnConfig.Database)

	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("monster: postgres open %s: %w", where, err)
	}
	s := &Store{pool: pool, schema: o.Schema, opts: o, where: where}
	s.sql = newQueries(o.Schema)
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, opError(ctx, "open "+where, fmt.Errorf("cannot connect: %w", err))
	}
	if o.NoAutoMigrate {
		err = s.checkVersion(ctx)
	} else {
		err = s.Migrate(ctx)
	}
	if err != nil {
		pool.Close()
		var nas *notAStoreError
		if errors.As(err, &nas) || errors.Is(err, ErrNeedsMigration) {
			return nil, err
		}
		return nil, opError(ctx, "open "+where, err)
	}
	s.foldAfter = foldEvery
	s.bgCtx, s.bgStop = context.WithCancel(context.Background())
	s.warm(ctx, int(warm))
	s.db = stdlib.OpenDBFromPool(pool)
	s.listener = newListener(s, cfg.ConnConfig.Copy())
	return s, nil
}

// defaultWarmConns is Options.WarmConns's default.
const defaultWarmConns = 4

// warm makes n connections ready, at once, so that the first events
// after Open do not wait for new ones, and runs on each the consumers'
// read (finding nothing), which loads the server's caches for the events
// table and leaves the statement in pgx's statement cache. (Statements
// prepared by name would be faster still on first use, but pgx never
// re-prepares those when the schema under them changes; its cache does.
// pgx's own MinConns is no substitute either: it connects in the
// background, and Open's first query, not waiting for it, makes one
// connection more.) A failure here only leaves that work to the first
// calls, as before: the store is open and migrated, and calls report a
// server gone since.
func (s *Store) warm(ctx context.Context, n int) {
	if n <= 0 {
		return
	}
	conns := make([]*pgxpool.Conn, n)
	var wg sync.WaitGroup
	for i := range conns {
		wg.Go(func() {
			conn, err := s.pool.Acquire(ctx)
			if err != nil {
				return
			}
			conns[i] = conn
			if rows, err := conn.Query(ctx, s.sql.read, int64(math.MaxInt64), 1); err == nil {
				rows.Close()
			}
		})
	}
	wg.Wait()
	for _, conn := range conns {
		if conn != nil {
			conn.Release()
		}
	}
}

// takeSchemaParam removes the monster_schema parameter from a postgres://
// URL (the server would reject it as an unknown setting) and returns it.
func takeSchemaParam(connString string) (string, string, error) {
	u, err := url.Parse(connString)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		return connString, "", nil // a key=value DSN; pgx will judge it
	}
	q := u.Query()
	schema := q.Get("monster_schema")
	if !q.Has("monster_schema") {
		return connString, "", nil
	}
	q.Del("monster_schema")
	u.RawQuery = q.Encode()
	if schema == "" {
		return "", "", errors.New("monster: postgres open: empty monster_schema parameter")
	}
	return u.String(), schema, nil
}

func hasParam(connString, name string) bool {
	u, err := url.Parse(connString)
	if err != nil {
		return false
	}
	return u.Query().Has(name)
}

// Schema returns the schema the store's tables live in.
func (s *Store) Schema() string { return s.schema }

// Pool returns the store's pgx connection pool, for the application to
// begin the transactions it passes to [Store.AppendPgxTx].
func (s *Store) Pool() *pgxpool.Pool { return s.pool }

// DB returns a database/sql handle on the store's connection pool (through
// pgx's stdlib driver), for the application to begin the transactions it
// passes to [Store.AppendTx].
func (s *Store) DB() *sql.DB { return s.db }

// Close stops the LISTEN connection and closes the pool, waiting for
// connections in use to be returned. It returns an error if the store is
// already closed; other methods called after Close return errors too.
func (s *Store) Close() error {
	if !s.closed.CompareAndSwap(false, true) {
		return errClosed("close")
	}
	s.bgMu.Lock() // no fold starts after this
	s.bgMu.Unlock()
	s.bgStop()
	s.bg.Wait()
	s.listener.close()
	s.db.Close()
	s.pool.Close()
	return nil
}

// writeTx runs fn in a transaction and commits if fn returns nil. A
// connection lost before the COMMIT is retried on a new one (see
// withConn); one lost during the COMMIT is an error.
func (s *Store) writeTx(ctx context.Context, op string, fn func(tx pgx.Tx) error) error {
	return s.runTx(ctx, op, pgx.TxOptions{}, fn)
}

// readTx runs fn in a read-only REPEATABLE READ transaction: one snapshot.
func (s *Store) readTx(ctx context.Context, op string, fn func(tx pgx.Tx) error) error {
	return s.runTx(ctx, op, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}, fn)
}

func (s *Store) runTx(ctx context.Context, op string, opts pgx.TxOptions, fn func(tx pgx.Tx) error) error {
	if s.closed.Load() {
		return errClosed(op)
	}
	if err := ctx.Err(); err != nil {
		return opError(ctx, op, err)
	}
	var committing bool
	err := s.withConn(ctx, func(conn *pgxpool.Conn) error {
		var err error
		committing, err = inTx(ctx, conn, opts, fn)
		if committing && err != nil {
			// Not to be retried: the COMMIT may have happened.
			return errorf(err, "monster: postgres %s: commit: %v", op, err)
		}
		return err
	})
	if err != nil {
		return opError(ctx, op, err)
	}
	return nil
}
