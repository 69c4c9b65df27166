// Command eventlib serves the shoe store of eventlib's tutorial: a product
// page that logs shoestore.product_viewed in one line, a consumer writing a
// row per view into an SQLite table, and a consumer counting views in Redis.
// Stop Redis while it runs: the pages still load, the table still fills,
// and the counter catches up when Redis is back.
//
//	go run ./examples/eventlib [-addr 127.0.0.1:8080] [-store monster.db] [-db shoestore.db] [-redis 127.0.0.1:6379]
package main

import (
	"context"
	"database/sql"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"
	_ "modernc.org/sqlite" // database/sql driver "sqlite" for the shop's own database

	"github.com/gomonster/monster"
	"github.com/gomonster/monster/examples/eventlib/shoestore"
	_ "github.com/gomonster/monster/store/mongodb"  // -store mongodb://...
	_ "github.com/gomonster/monster/store/postgres" // -store postgres://...
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "eventlib:", err)
		}
		os.Exit(2)
	}
}

// run serves the shop until ctx is done, then shuts down gracefully.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("eventlib", flag.ContinueOnError)
	fs.SetOutput(stderr)
	defaultStore := os.Getenv("MONSTER_STORE")
	if defaultStore == "" {
		defaultStore = monster.DefaultPath
	}
	addr := fs.String("addr", "127.0.0.1:8080", "HTTP listen `address`")
	storeURL := fs.String("store", defaultStore, "event store `path or URL` ($MONSTER_STORE sets the default)")
	dbPath := fs.String("db", "shoestore.db", "the shop's own SQLite database `file`, with the product_views table")
	redisAddr := fs.String("redis", "127.0.0.1:6379", "Redis `address` for the view counter")
	redisPrefix := fs.String("redis-prefix", "", "`prefix` of the Redis keys the counter writes")
	if err := fs.Parse(args); err != nil {
		return err
	}

	m, err := monster.Open(ctx, *storeURL, &monster.Options{
		Verbose: true, Output: stdout, // "[Event][shoestore.product_viewed] {...}" per view
		// Debug level shows each retry, which this demo is about; a
		// service would keep info and see only dead letters (warnings).
		Logger: slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelDebug})),
	})
	if err != nil {
		return err
	}
	defer m.Close()
	viewed := shoestore.Declare(m)

	db, err := sql.Open("sqlite", "file:"+*dbPath+"?_pragma=busy_timeout(5000)&_pragma=journal_mode(WAL)")
	if err != nil {
		return err
	}
	defer db.Close()
	table := &shoestore.ViewsTable{DB: db}
	if err := table.CreateTable(ctx); err != nil {
		return err
	}

	rdb := redis.NewClient(&redis.Options{Addr: *redisAddr})
	defer rdb.Close()
	consumers := shoestore.Consumers{
		Table: table,
		Counter: &shoestore.RedisCounter{
			Client: rdb, Prefix: *redisPrefix, AllowedSources: []string{"shoeprime"},
		},
	}
	if err := consumers.Register(m, viewed); err != nil {
		return err
	}
	if err := m.Start(ctx); err != nil {
		return err
	}

	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return err
	}
	srv := &http.Server{
		Handler:           shoestore.NewHandler(viewed, shoestore.DemoCatalog(), slog.New(slog.NewTextHandler(stderr, nil))),
		ReadHeaderTimeout: 10 * time.Second,
	}
	fmt.Fprintf(stdout, "shoestore: serving http://%s/ (try http://%s/products/air-1?user=alice)\n", ln.Addr(), ln.Addr())
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()

	select {
	case err := <-served:
		return err
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		return err
	}
	if err := m.Stop(shutdownCtx); err != nil {
		return err
	}
	return m.Close()
}
