package daemon

import (
	"context"
	"testing"
)

// The daemon's Monster keeps the store's optional capabilities: on SQLite it
// has the store's database, and an event logged in a transaction on it is
// stored with the commit (the shared store used to hide them, and DB was
// nil).
func TestDaemonMonsterKeepsSQLTransactions(t *testing.T) {
	t.Parallel()
	b := setup(t, Config{})
	ctx := context.Background()
	db := b.srv.m.DB()
	if db == nil {
		t.Fatal("Monster.DB is nil in the daemon on a SQLite store")
	}
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	ev, err := b.srv.m.LogTx(ctx, tx, "order.placed", map[string]int{"n": 1})
	if err != nil {
		_ = tx.Rollback()
		t.Fatal(err)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	got, err := b.srv.m.EventByID(ctx, ev.ID)
	if err != nil {
		t.Fatalf("the event logged in the transaction is not stored: %v", err)
	}
	if got.Type != "order.placed" {
		t.Fatalf("stored type %q, want order.placed", got.Type)
	}
}
