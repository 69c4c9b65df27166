package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Only log, serve and migrate create a store. The commands that read or
// change one say there is none, exit 1, and leave nothing behind: no file
// for a mistyped path, no initialised store in an empty file.
func TestReadingCommandsCreateNoStore(t *testing.T) {
	t.Parallel()
	commands := [][]string{
		{"consumers"}, {"events"}, {"types"}, {"tail"}, {"reset", "mailer", "--to", "beginning"}, {"dead", "list", "mailer"},
	}
	for _, args := range commands {
		t.Run(args[0], func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			missing := filepath.Join(dir, "nosuch.db")
			// With a deadline: a tail that found a store would wait for
			// events.
			code, out, errOut := runCtx(t, 10*time.Second, nil, append(args, "--store", missing)...)
			if code != 1 || strings.TrimSpace(errOut) != fmt.Sprintf("monster: no store at %q", missing) {
				t.Errorf("monster %s on a missing store: exit %d, stdout %q, stderr %q", args[0], code, out, errOut)
			}
			if entries, _ := os.ReadDir(dir); len(entries) != 0 {
				t.Errorf("monster %s created %v", args[0], entries)
			}

			empty := filepath.Join(dir, "empty.db")
			if err := os.WriteFile(empty, nil, 0o644); err != nil {
				t.Fatal(err)
			}
			code, _, errOut = runCtx(t, 10*time.Second, map[string]string{"MONSTER_STORE": empty}, args...)
			if code != 1 || !strings.Contains(errOut, fmt.Sprintf("monster: no store at %q", empty)) {
				t.Errorf("monster %s on an empty file: exit %d, stderr %q", args[0], code, errOut)
			}
			if fi, err := os.Stat(empty); err != nil || fi.Size() != 0 {
				t.Errorf("monster %s initialised the empty file: %v, %v", args[0], fi, err)
			}
		})
	}
	// log creates the store, and then the others find it.
	path := filepath.Join(t.TempDir(), "new.db")
	mustRun(t, nil, "log", "--store", path, "a.b", "1")
	if out := mustRun(t, nil, "types", "--store", path); !strings.Contains(out, "a.b") {
		t.Errorf("types after log printed %q", out)
	}
}

// On PostgreSQL, a read of a schema that does not exist does not create
// it.
func TestReadingCommandsCreateNoSchema(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	url, conn, schema := postgresSchema(t, "cli_nostore")
	code, _, errOut := run(t, nil, "consumers", "--store", url)
	if code != 1 || !strings.HasPrefix(errOut, "monster: no store at ") || !strings.Contains(errOut, schema) {
		t.Errorf("consumers on a missing schema: exit %d, stderr %q", code, errOut)
	}
	var exists bool
	if err := conn.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM information_schema.schemata WHERE schema_name = $1)", schema).Scan(&exists); err != nil || exists {
		t.Fatalf("schema %s exists after consumers: %v, %v", schema, exists, err)
	}
	mustRun(t, nil, "log", "--store", url, "a.b", "1")
	if out := mustRun(t, nil, "consumers", "--store", url); !strings.Contains(out, "NAME") {
		t.Errorf("consumers after log printed %q", out)
	}
}
