package postgres_test

import (
	"context"
	"strings"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/gomonster/monster"
	"github.com/gomonster/monster/store"
	"github.com/gomonster/monster/store/postgres"
)

// Processes that open a new store at once all succeed: one migrates each
// step, under the advisory lock, and the others find it done.
func TestConcurrentOpensMigrateOnce(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	schema := newSchema(t)
	const n = 6
	stores := make([]*postgres.Store, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			stores[i], errs[i] = postgres.Open(ctx, requireServer(t), testOptions(schema))
		})
	}
	wg.Wait()
	for i := range n {
		require.NoError(t, errs[i], "open %d", i)
		t.Cleanup(func() { _ = stores[i].Close() })
	}
	var versions []int
	rows, err := stores[0].Pool().Query(ctx, "SELECT version FROM "+schema+".schema_migrations ORDER BY version")
	require.NoError(t, err)
	versions, err = pgx.CollectRows(rows, pgx.RowTo[int])
	require.NoError(t, err)
	require.Len(t, versions, postgres.SchemaVersion, "each step applied once")
	require.Equal(t, postgres.SchemaVersion, versions[len(versions)-1])
	mustAppendStore(t, stores[n-1], newEvent("works", `1`))
}

// With NoAutoMigrate, Open refuses a schema that is missing; Migrate (the
// monster migrate command) creates it, after which Open works.
func TestNoAutoMigrate(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	schema := newSchema(t)
	opts := testOptions(schema)
	opts.NoAutoMigrate = true
	_, err := postgres.Open(ctx, requireServer(t), opts)
	require.ErrorIs(t, err, postgres.ErrNeedsMigration)
	require.Contains(t, err.Error(), schema)
	require.True(t, strings.HasPrefix(err.Error(), "monster: "), err.Error())

	migrator := openStore(t, schema) // auto-migrating, like monster migrate
	require.NoError(t, migrator.Migrate(ctx), "Migrate on an up-to-date schema does nothing")
	s := openStoreAt(t, requireServer(t), opts)
	mustAppendStore(t, s, newEvent("works", `1`))
}

// A schema that holds something else, or a newer version of the store, is
// refused with ErrNotAStore and left alone.
func TestNotAStore(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	url := requireServer(t)
	conn, err := pgx.Connect(ctx, url)
	require.NoError(t, err)
	defer conn.Close(context.Background())

	foreign := newSchema(t)
	_, err = conn.Exec(ctx, "CREATE SCHEMA "+foreign+"; CREATE TABLE "+foreign+".accounts (id int)")
	require.NoError(t, err)
	_, err = postgres.Open(ctx, url, testOptions(foreign))
	require.ErrorIs(t, err, store.ErrNotAStore)
	require.Contains(t, err.Error(), foreign)
	var tables int
	require.NoError(t, conn.QueryRow(ctx, "SELECT count(*) FROM information_schema.tables WHERE table_schema = $1", foreign).Scan(&tables))
	require.Equal(t, 1, tables, "a foreign schema is left alone")

	newer := newSchema(t)
	openStore(t, newer).Close()
	_, err = conn.Exec(ctx, "INSERT INTO "+newer+".schema_migrations (version, name) VALUES ($1, 'from the future')", postgres.SchemaVersion+1)
	require.NoError(t, err)
	_, err = postgres.Open(ctx, url, testOptions(newer))
	require.ErrorIs(t, err, store.ErrNotAStore)
	require.Contains(t, err.Error(), "newer")
}

// monster.Open takes postgres:// and postgresql:// URLs once the package is
// imported, and the monster_schema parameter picks the schema.
func TestOpenByURL(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	schema := newSchema(t)
	url := requireServer(t)
	sep := "?"
	if strings.Contains(url, "?") {
		sep = "&"
	}
	for _, u := range []string{url + sep + "monster_schema=" + schema, strings.Replace(url, "postgres://", "postgresql://", 1) + sep + "monster_schema=" + schema} {
		m, err := monster.Open(ctx, u, nil)
		require.NoError(t, err, u)
		s, ok := m.Store().(*postgres.Store)
		require.True(t, ok, "%s opens a PostgreSQL store", u)
		require.Equal(t, schema, s.Schema())
		_, err = m.Log(ctx, "opened.by_url", 1)
		require.NoError(t, err)
		require.NoError(t, m.Close())
	}
	s := openStore(t, schema)
	head, err := s.Head(ctx)
	require.NoError(t, err)
	require.EqualValues(t, 2, head)
}

// Bad options and connection strings are refused with errors that name
// them, before any connection is made.
func TestBadOptions(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	for _, tc := range []struct {
		url  string
		opts *postgres.Options
		want string
	}{
		{"postgres://127.0.0.1/x", &postgres.Options{Schema: "Bad-Name"}, `Schema "Bad-Name"`},
		{"postgres://127.0.0.1/x", &postgres.Options{MaxConns: -1}, "MaxConns"},
		{"postgres://127.0.0.1/x?monster_schema=", nil, "monster_schema"},
		{"postgres://127.0.0.1:notaport/x", nil, "invalid connection string"},
	} {
		_, err := postgres.Open(ctx, tc.url, tc.opts)
		require.Error(t, err, tc.url)
		require.True(t, strings.HasPrefix(err.Error(), "monster: postgres"), err.Error())
		require.Contains(t, err.Error(), tc.want)
	}
}

// Open makes WarmConns connections ready (4 by default, at most
// MaxConns), each having run the consumers' read (so it is in pgx's
// statement cache): the first events after Open wait for no new
// connection.
func TestOpenWarmsConnections(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	schema := newSchema(t)
	url := requireServer(t)
	for _, tc := range []struct {
		url  string
		opts postgres.Options
		want int32
	}{
		{url, postgres.Options{MaxConns: 8}, 4},
		{url, postgres.Options{MaxConns: 3}, 3},
		{url, postgres.Options{MaxConns: 4, WarmConns: 2}, 2},
		{url, postgres.Options{MaxConns: 2, WarmConns: 5}, 2},
		{url, postgres.Options{MaxConns: 4, WarmConns: -1}, 1}, // none warmed: the one Open used
	} {
		tc.opts.Schema = schema
		s := openStoreAt(t, tc.url, &tc.opts)
		pool := s.Pool()
		require.Equal(t, tc.want, pool.Stat().TotalConns(), "connections open after Open, %+v", tc.opts)
		require.Equal(t, tc.want, pool.Stat().IdleConns(), "connections idle after Open, %+v", tc.opts)

		// Every connection has run the read: take them all.
		conns := pool.AcquireAllIdle(ctx)
		prepared := make([]string, len(conns))
		for i, conn := range conns {
			rows, err := conn.Query(ctx, `SELECT statement FROM pg_prepared_statements WHERE NOT from_sql`)
			if err == nil {
				var statements []string
				statements, err = pgx.CollectRows(rows, pgx.RowTo[string])
				prepared[i] = strings.Join(statements, "\n")
			}
			conn.Release()
			require.NoError(t, err)
		}
		require.Len(t, conns, int(tc.want))
		events := pgx.Identifier{schema}.Sanitize() + ".events"
		for _, all := range prepared {
			read := "FROM " + events + " WHERE position > $1 ORDER BY position"
			if tc.opts.WarmConns < 0 {
				require.NotContains(t, all, read, "nothing run without warming")
				continue
			}
			require.Contains(t, all, read, "the read's statement, in pgx's statement cache")
		}
		require.NoError(t, s.Close())
	}
}
