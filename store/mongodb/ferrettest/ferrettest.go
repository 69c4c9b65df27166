// Package ferrettest runs FerretDB v1 (the MongoDB wire protocol over an
// SQLite file) inside a test binary, for tests that need a MongoDB server
// without installing one: the MongoDB store's own tests, and programs'
// tests that run against it (such as the pymonster example on mongodb://).
//
//	base := ferrettest.Start(t)          // mongodb://127.0.0.1:PORT/
//	u := ferrettest.Database(t, base)    // a fresh database, dropped when the test ends
//	m, err := monster.Open(ctx, u, nil)  // with the mongodb store imported
//
// Importing it compiles FerretDB into the test binary; only tests should.
package ferrettest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"sync/atomic"
	"testing"
	"time"

	"github.com/FerretDB/FerretDB/ferretdb"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// Start runs FerretDB (SQLite handler, data in t.TempDir()) on a free port
// of 127.0.0.1 until the test ends, and returns its URL, without a
// database.
func Start(t testing.TB) string {
	t.Helper()
	f, err := ferretdb.New(&ferretdb.Config{
		Listener: ferretdb.ListenerConfig{TCP: "127.0.0.1:0"},
		Logger:   slog.New(slog.DiscardHandler),
		Handler:  "sqlite",
		// WAL with synchronous=normal: the test server survives a process
		// crash but skips an fsync per commit (durability against power
		// loss is the real server's business, not the store's).
		SQLiteURL: "file:" + t.TempDir() + "/?_pragma=synchronous(normal)",
	})
	if err != nil {
		t.Fatalf("FerretDB: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- f.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
			t.Errorf("FerretDB: %v", err)
		}
	})
	return f.MongoDBURI()
}

var dbCounter atomic.Int64

// Database returns base with its path set to a new database name, and
// drops that database when the test ends.
func Database(t testing.TB, base string) string {
	t.Helper()
	u, err := url.Parse(base)
	if err != nil {
		t.Fatalf("ferrettest: %v", err)
	}
	name := fmt.Sprintf("monster_test_%d_%d", time.Now().UnixNano()%1_000_000_000, dbCounter.Add(1))
	u.Path = "/" + name
	full := u.String()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		c, err := mongo.Connect(options.Client().ApplyURI(full))
		if err != nil {
			return
		}
		defer func() { _ = c.Disconnect(ctx) }()
		_ = c.Database(name).Drop(ctx)
	})
	return full
}
