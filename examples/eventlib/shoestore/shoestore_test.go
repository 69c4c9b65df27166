package shoestore_test

import (
	"context"
	"database/sql"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"
	_ "modernc.org/sqlite"

	"github.com/gomonster/monster"
	"github.com/gomonster/monster/examples/eventlib/shoestore"
	"github.com/gomonster/monster/monstertest"
)

var ctx = context.Background()

// openDB opens the shop's own database in a temporary SQLite file, with
// the product_views table.
func openDB(t *testing.T) *shoestore.ViewsTable {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+filepath.Join(t.TempDir(), "shoestore.db")+"?_pragma=busy_timeout(5000)&_pragma=journal_mode(WAL)")
	require.NoError(t, err)
	t.Cleanup(func() { _ = db.Close() })
	table := &shoestore.ViewsTable{DB: db}
	require.NoError(t, table.CreateTable(ctx))
	return table
}

// get requests path from the handler and returns the status and body.
func get(t *testing.T, h http.Handler, path string) (int, string) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
	return rec.Code, rec.Body.String()
}

func TestProductPageLogsOneViewAndRenders(t *testing.T) {
	t.Parallel()
	m := monstertest.New(t, nil)
	views := monstertest.Record(t, m, "views", shoestore.ProductViewedType)
	page := shoestore.NewHandler(shoestore.Declare(m), shoestore.DemoCatalog(), nil)

	code, body := get(t, page, "/products/air-1?user=alice")
	require.Equal(t, http.StatusOK, code)
	require.Contains(t, body, "<h1>Air Runner</h1>")
	require.Contains(t, body, "$89.00")

	events := monstertest.RequireLogged(t, m, shoestore.ProductViewedType, 1)
	require.Equal(t, shoestore.ProductViewed{User: "alice", Product: "air-1", Source: "shoeprime"},
		monstertest.Data[shoestore.ProductViewed](t, events[0]))
	require.Equal(t, 1, views.Len(), "eager mode: the consumer ran inside the request")
}

func TestProductPageNeedsAUserAndAProduct(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, path string
		code       int
	}{
		{"no user", "/products/air-1", http.StatusUnauthorized},
		{"unknown product", "/products/moon-boot?user=alice", http.StatusNotFound},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			m := monstertest.New(t, nil)
			code, _ := get(t, shoestore.NewHandler(shoestore.Declare(m), shoestore.DemoCatalog(), nil), tc.path)
			require.Equal(t, tc.code, code)
			monstertest.RequireNotLogged(t, m, "*")
		})
	}
}

func TestProductListLinksEveryProduct(t *testing.T) {
	t.Parallel()
	m := monstertest.New(t, nil)
	code, body := get(t, shoestore.NewHandler(shoestore.Declare(m), shoestore.DemoCatalog(), nil), "/")
	require.Equal(t, http.StatusOK, code)
	for id := range shoestore.DemoCatalog() {
		require.Contains(t, body, `href="/products/`+id+`?user=alice"`)
	}
	monstertest.RequireNotLogged(t, m, "*")
}

func TestProductPageAnswersWhenAConsumerFails(t *testing.T) {
	t.Parallel()
	failures := &monstertest.HandlerFailures{} // expected: do not fail the test
	m := monstertest.New(t, &monster.Options{OnEagerFailure: failures.Record})
	broken := monstertest.Record(t, m, "broken", shoestore.ProductViewedType)
	broken.FailWith(errors.New("redis: connection refused"))

	code, body := get(t, shoestore.NewHandler(shoestore.Declare(m), shoestore.DemoCatalog(), monstertest.Logger(t)), "/products/clog-3?user=alice")
	require.Equal(t, http.StatusOK, code)
	require.Contains(t, body, "Garden Clog")
	monstertest.RequireLogged(t, m, shoestore.ProductViewedType, 1)
	require.Equal(t, 1, failures.Len())
	require.Equal(t, "broken", failures.All()[0].Consumer)
}

func TestProductViewedIsValidated(t *testing.T) {
	t.Parallel()
	m := monstertest.New(t, nil)
	_, err := shoestore.Declare(m).Log(ctx, shoestore.ProductViewed{User: "alice", Product: "air-1"})
	var invalid *monster.ValidationError
	require.ErrorAs(t, err, &invalid)
	require.Equal(t, "source", invalid.Field)
	monstertest.RequireNotLogged(t, m, "*")
}

func TestViewsTableKeepsOneRowPerEvent(t *testing.T) {
	t.Parallel()
	m := monstertest.New(t, nil)
	viewed := shoestore.Declare(m)
	table := openDB(t)
	require.NoError(t, m.Consume(shoestore.TableConsumer, monster.Handle(viewed, table.Handle), nil))

	e, err := viewed.Log(ctx, shoestore.ProductViewed{User: "alice", Product: "air-1", Source: "shoeprime"})
	require.NoError(t, err)
	_, err = viewed.Log(ctx, shoestore.ProductViewed{User: "bob", Product: "clog-3", Source: "marketplace"})
	require.NoError(t, err)
	require.NoError(t, table.Handle(ctx, e), "a redelivery")

	for product, want := range map[string]int{"": 2, "air-1": 1, "clog-3": 1, "trail-2": 0} {
		n, err := table.Views(ctx, product)
		require.NoError(t, err)
		require.Equal(t, want, n, "views of %q", product)
	}
}

func TestRedisCounterCountsAllowedSourcesOnce(t *testing.T) {
	t.Parallel()
	rdb := requireRedis(t)
	counter := &shoestore.RedisCounter{Client: rdb, Prefix: keyPrefix(t, rdb), AllowedSources: []string{"shoeprime"}}
	m := monstertest.New(t, nil)
	viewed := shoestore.Declare(m)
	require.NoError(t, m.Consume(shoestore.CounterConsumer, monster.Handle(viewed, counter.Handle), nil))

	e, err := viewed.Log(ctx, shoestore.ProductViewed{User: "alice", Product: "air-1", Source: "shoeprime"})
	require.NoError(t, err)
	_, err = viewed.Log(ctx, shoestore.ProductViewed{User: "alice", Product: "clog-3", Source: "marketplace"})
	require.NoError(t, err)
	require.NoError(t, counter.Handle(ctx, e), "a redelivery")

	n, err := rdb.Get(ctx, counter.Key("alice", "air-1")).Int()
	require.NoError(t, err)
	require.Equal(t, 1, n, "counted once however often delivered")
	require.ErrorIs(t, rdb.Get(ctx, counter.Key("alice", "clog-3")).Err(), redis.Nil, "not from an allowed source")
}

// TestRedisOutage is the tutorial's promise: with Redis down, customers
// still get their product pages and the database consumer still runs; the
// Redis consumer falls behind and catches up, exactly, when Redis is back.
// The consumer reaches Redis through a proxy the test closes and reopens.
func TestRedisOutage(t *testing.T) {
	t.Parallel()
	rdb := requireRedis(t)
	prefix := keyPrefix(t, rdb)
	proxy := startProxy(t, redisAddr)

	m, err := monster.Open(ctx, filepath.Join(t.TempDir(), "monster.db"), monstertest.Options(t, nil))
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, m.Close()) })
	viewed := shoestore.Declare(m)
	table := openDB(t)
	counterClient := redis.NewClient(&redis.Options{Addr: proxy.Addr(), DialTimeout: time.Second, MaxRetries: -1})
	t.Cleanup(func() { _ = counterClient.Close() })
	counter := &shoestore.RedisCounter{Client: counterClient, Prefix: prefix, AllowedSources: []string{"shoeprime"}}
	consumers := shoestore.Consumers{
		Table: table, Counter: counter,
		CounterRetry: monster.RetryPolicy{InitialBackoff: 5 * time.Millisecond, MaxBackoff: 20 * time.Millisecond},
	}
	require.NoError(t, consumers.Register(m, viewed))
	require.NoError(t, m.Start(ctx))

	shop := httptest.NewServer(shoestore.NewHandler(viewed, shoestore.DemoCatalog(), monstertest.Logger(t)))
	t.Cleanup(shop.Close)
	view := func(product, user string) {
		t.Helper()
		resp, err := http.Get(shop.URL + "/products/" + product + "?user=" + user)
		require.NoError(t, err)
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		require.NoError(t, err)
		require.Equal(t, http.StatusOK, resp.StatusCode, "%s", body)
	}
	count := func(user, product string) int {
		t.Helper()
		n, err := rdb.Get(ctx, counter.Key(user, product)).Int()
		if errors.Is(err, redis.Nil) {
			return 0
		}
		require.NoError(t, err)
		return n
	}
	stats := func(consumer string) monster.ConsumerStats {
		t.Helper()
		s, err := m.ConsumerStats(ctx, consumer)
		require.NoError(t, err)
		return s
	}

	// Redis up: everything flows.
	view("air-1", "alice")
	monstertest.WaitCaughtUp(t, m, shoestore.CounterConsumer)
	require.Equal(t, 1, count("alice", "air-1"))

	// Redis down: the pages and the table carry on.
	proxy.Down()
	for range 3 {
		view("air-1", "alice")
	}
	view("trail-2", "bob")
	view("clog-3", "alice") // marketplace: never counted
	view("clog-3", "alice")
	monstertest.WaitCaughtUp(t, m, shoestore.TableConsumer)
	views, err := table.Views(ctx, "")
	require.NoError(t, err)
	require.Equal(t, 7, views)
	monstertest.Eventually(t, "the counter to fail against the closed proxy", func() bool {
		return stats(shoestore.CounterConsumer).Failures > 0
	})
	require.Positive(t, stats(shoestore.CounterConsumer).Lag, "the counter is behind")
	require.Equal(t, 1, count("alice", "air-1"), "nothing reached Redis")

	// Redis back: the counter catches up, counting each view once.
	proxy.Up(t)
	monstertest.WaitCaughtUp(t, m, shoestore.CounterConsumer)
	require.Equal(t, 4, count("alice", "air-1"))
	require.Equal(t, 1, count("bob", "trail-2"))
	require.Equal(t, 0, count("alice", "clog-3"))
	for _, consumer := range []string{shoestore.TableConsumer, shoestore.CounterConsumer} {
		require.Zero(t, stats(consumer).DeadLetters, consumer)
	}
}
