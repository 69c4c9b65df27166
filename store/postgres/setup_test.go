package postgres_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"flag"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/gomonster/monster/internal/crashtest"
	"github.com/gomonster/monster/store/postgres"
)

// The tests need a PostgreSQL server: MONSTER_TEST_POSTGRES_URL, or the
// local one of the project's machines. Without one they skip, saying so;
// under CI=true they fail.
const defaultTestURL = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"

func testURL() string {
	if u := os.Getenv("MONSTER_TEST_POSTGRES_URL"); u != "" {
		return u
	}
	return defaultTestURL
}

var (
	serverOnce sync.Once
	serverErr  error
)

// requireServer skips the test (fails it under CI=true) when the test
// server cannot be reached, and returns its URL.
func requireServer(t testing.TB) string {
	t.Helper()
	serverOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, testURL())
		if err != nil {
			serverErr = err
			return
		}
		serverErr = conn.Ping(ctx)
		conn.Close(ctx)
	})
	if serverErr != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("monster: postgres tests: no PostgreSQL server at %s (set MONSTER_TEST_POSTGRES_URL): %v", testURL(), serverErr)
		}
		t.Skipf("monster: postgres tests skipped: no PostgreSQL server at %s (set MONSTER_TEST_POSTGRES_URL; under CI=true this is a failure): %v", testURL(), serverErr)
	}
	return testURL()
}

// newSchema returns a fresh schema name for one test and drops the schema
// when the test ends.
func newSchema(t testing.TB) string {
	t.Helper()
	url := requireServer(t)
	var b [6]byte
	rand.Read(b[:])
	schema := "monster_test_" + hex.EncodeToString(b[:])
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, url)
		if err != nil {
			t.Errorf("drop schema %s: %v", schema, err)
			return
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, "DROP SCHEMA IF EXISTS "+schema+" CASCADE"); err != nil {
			t.Errorf("drop schema %s: %v", schema, err)
		}
	})
	return schema
}

// testOptions are the options of the tests' stores: a small pool, since
// many stores are open at once.
func testOptions(schema string) *postgres.Options {
	return &postgres.Options{Schema: schema, MaxConns: 4, ListenRetry: 50 * time.Millisecond}
}

// openStore opens a store on schema with the test URL (or url, when
// given), closed when the test ends.
func openStore(t testing.TB, schema string) *postgres.Store {
	t.Helper()
	return openStoreAt(t, requireServer(t), testOptions(schema))
}

func openStoreAt(t testing.TB, url string, opts *postgres.Options) *postgres.Store {
	t.Helper()
	s, err := postgres.Open(context.Background(), url, opts)
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// TestMain skips the examples, which need the server, when there is none
// and CI is not set (the tests skip themselves, saying so).
func TestMain(m *testing.M) {
	flag.Parse()
	if os.Getenv("CI") != "true" {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		conn, err := pgx.Connect(ctx, testURL())
		if err == nil {
			err = conn.Ping(ctx)
			conn.Close(ctx)
		}
		cancel()
		if err != nil {
			skip := "^Example"
			if s := flag.Lookup("test.skip").Value.String(); s != "" {
				skip = s + "|" + skip
			}
			_ = flag.Set("test.skip", skip)
		}
	}
	code := m.Run()
	crashtest.RemoveWorkers()
	os.Exit(code)
}
