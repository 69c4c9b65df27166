package mongodb_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/FerretDB/FerretDB/ferretdb"
	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/gomonster/monster/store"
	"github.com/gomonster/monster/store/mongodb"
	"github.com/gomonster/monster/store/storetest"
)

// target is a server the tests run against.
type target struct {
	name string
	url  string // without a database
}

// targets returns embedded FerretDB, always, and the real MongoDB server
// at MONSTER_TEST_MONGO_URL when it is set.
func targets(t testing.TB) []target {
	out := []target{{"FerretDB", startFerretDB(t)}}
	if u := os.Getenv("MONSTER_TEST_MONGO_URL"); u != "" {
		out = append(out, target{"MongoDB", u})
	}
	return out
}

// startFerretDB runs FerretDB (SQLite handler, data in t.TempDir()) on a
// free port of 127.0.0.1 until the test ends, and returns its URL.
func startFerretDB(t testing.TB) string {
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
	require.NoError(t, err)
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

// dbURL returns base with its path set to a new database name, and drops
// that database when the test ends.
func dbURL(t testing.TB, base string) string {
	t.Helper()
	u, err := url.Parse(base)
	require.NoError(t, err)
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

func openStore(t *testing.T, u string) *mongodb.Store {
	t.Helper()
	s, err := mongodb.Open(t.Context(), u, nil)
	require.NoError(t, err)
	return s
}

func harness(base string) storetest.Harness {
	return storetest.Harness{
		Open: func(t *testing.T) store.Store {
			return openStore(t, dbURL(t, base))
		},
		Reopen: func(t *testing.T, s store.Store) store.Store {
			u := s.(*mongodb.Store).URL()
			_ = s.Close()
			return openStore(t, u)
		},
		Share: func(t *testing.T, s store.Store) store.Store {
			return openStore(t, s.(*mongodb.Store).URL())
		},
	}
}

func TestConformance(t *testing.T) {
	for _, tg := range targets(t) {
		t.Run(tg.name, func(t *testing.T) {
			storetest.Run(t, harness(tg.url))
		})
	}
}

func TestCollectionNames(t *testing.T) {
	for _, tg := range targets(t) {
		t.Run(tg.name, func(t *testing.T) {
			ctx := t.Context()
			u := dbURL(t, tg.url)
			s, err := mongodb.Open(ctx, u, &mongodb.Options{Prefix: "ev_"})
			require.NoError(t, err)
			defer s.Close()
			_, err = s.Append(ctx, []store.NewEvent{{
				ID: "e1", Type: "user.bought_shirt", Time: time.Now().UTC(), Data: []byte(`{"size":"L"}`),
			}})
			require.NoError(t, err)
			c, err := mongo.Connect(options.Client().ApplyURI(u))
			require.NoError(t, err)
			defer c.Disconnect(ctx)
			names, err := c.Database(s.Database()).ListCollectionNames(ctx, map[string]any{})
			require.NoError(t, err)
			require.Contains(t, names, "ev_user_bought_shirt")
			n, err := c.Database(s.Database()).Collection("ev_user_bought_shirt").CountDocuments(ctx, map[string]any{})
			require.NoError(t, err)
			require.EqualValues(t, 1, n)
			require.True(t, strings.HasPrefix(u, "mongodb://"))
		})
	}
}
