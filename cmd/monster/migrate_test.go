package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

func TestMigrateSQLite(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "m.db")
	out := mustRun(t, map[string]string{"MONSTER_STORE": path}, "migrate")
	if !strings.Contains(out, "nothing to migrate") {
		t.Errorf("migrate on SQLite printed %q", out)
	}
	if code, _, errOut := run(t, nil, "migrate", "--store", "nosuch://x"); code != 1 || !strings.Contains(errOut, "monster: ") {
		t.Errorf("migrate on an unknown scheme: exit %d, stderr %q", code, errOut)
	}
}

// The command line opens postgres:// stores (the store registers its
// scheme) and migrates their schema.
func TestMigratePostgres(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	url, conn, schema := postgresSchema(t, "cli_migrate")
	out := mustRun(t, nil, "migrate", "--store", url)
	if !strings.Contains(out, "schema up to date") {
		t.Errorf("migrate printed %q", out)
	}
	var tables int
	if err := conn.QueryRow(ctx, "SELECT count(*) FROM information_schema.tables WHERE table_schema = $1", schema).Scan(&tables); err != nil || tables == 0 {
		t.Fatalf("schema %s has %d tables after migrate (%v)", schema, tables, err)
	}
	// And the other commands work on it.
	out = mustRun(t, nil, "log", "--store", url, "user.signed_up", `{"user":"ada"}`)
	if !strings.Contains(out, "logged user.signed_up at position 1") {
		t.Errorf("log on postgres printed %q", out)
	}
}

// postgresSchema returns the URL of a store in a new schema (not created)
// of the test server, a connection to inspect it and the schema's name;
// the schema is dropped when the test ends. The test skips without a
// server, unless CI=true.
func postgresSchema(t *testing.T, prefix string) (url string, conn *pgx.Conn, schema string) {
	t.Helper()
	base := os.Getenv("MONSTER_TEST_POSTGRES_URL")
	if base == "" {
		base = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, base)
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("no PostgreSQL at %s: %v", base, err)
		}
		t.Skipf("no PostgreSQL at %s (under CI=true this fails): %v", base, err)
	}
	schema = fmt.Sprintf("%s_%d", prefix, time.Now().UnixNano())
	t.Cleanup(func() {
		if _, err := conn.Exec(context.Background(), "DROP SCHEMA IF EXISTS "+schema+" CASCADE"); err != nil {
			t.Errorf("dropping test schema %s: %v", schema, err)
		}
		_ = conn.Close(context.Background())
	})
	return base + "&monster_schema=" + schema, conn, schema
}
