package crashtest

import (
	"context"
	"flag"
	"os"
	"path/filepath"
	"testing"

	"github.com/gomonster/monster"
)

func TestMain(m *testing.M) {
	flag.Parse()
	code := m.Run()
	RemoveWorkers()
	os.Exit(code)
}

// sqliteWorker is the worker command of the core module's stores.
const sqliteWorker = "github.com/gomonster/monster/internal/crashtest/worker"

// newHarness returns a harness whose workers open SQLite files.
func newHarness(t *testing.T) *harness {
	return newHarnessWith(t, BuildWorker(t, sqliteWorker))
}

// TestScaleOut runs RunScaleOut on one SQLite file shared by the three
// worker processes.
func TestScaleOut(t *testing.T) {
	RunScaleOut(t, ScaleOut{
		Worker: BuildWorker(t, sqliteWorker),
		Store:  filepath.Join(t.TempDir(), "scale.db"),
	})
}

// integrity opens the store the way a user would, checks it with PRAGMA
// integrity_check and foreign_key_check, and returns its number of events
// (counted by SQL) and its events (read through the API).
func integrity(t *testing.T, path string) (int64, []storeEvent) {
	t.Helper()
	ctx := context.Background()
	m, err := monster.Open(ctx, path, &monster.Options{Logger: quietLogger})
	if err != nil {
		t.Fatalf("open the store after the test: %v", err)
	}
	defer m.Close()
	db := m.DB()
	if db == nil {
		t.Fatal("the store has no DB()")
	}
	rows, err := db.QueryContext(ctx, "PRAGMA integrity_check")
	if err != nil {
		t.Fatalf("integrity_check: %v", err)
	}
	var results []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			t.Fatal(err)
		}
		results = append(results, s)
	}
	if err := rows.Close(); err != nil {
		t.Fatal(err)
	}
	if len(results) != 1 || results[0] != "ok" {
		t.Errorf("PRAGMA integrity_check: %q", results)
	}
	fk, err := db.QueryContext(ctx, "PRAGMA foreign_key_check")
	if err != nil {
		t.Fatalf("foreign_key_check: %v", err)
	}
	if fk.Next() {
		t.Errorf("PRAGMA foreign_key_check reports violations")
	}
	fk.Close()
	var count int64
	if err := db.QueryRowContext(ctx, "SELECT count(*) FROM events").Scan(&count); err != nil {
		t.Fatalf("count events: %v", err)
	}
	events, err := readEvents(ctx, m)
	if err != nil {
		t.Fatalf("read events: %v", err)
	}
	if int64(len(events)) != count {
		t.Errorf("Events returned %d events, SELECT count(*) says %d", len(events), count)
	}
	return count, events
}
