package postgres_test

import (
	"context"
	"fmt"
	"log"
	"log/slog"
	"time"

	"github.com/gomonster/monster"
	"github.com/gomonster/monster/store/postgres"
)

// ExampleLogTx logs an event in the same pgx transaction as the
// application's own change (the transactional outbox): the order row and
// the order.placed event are committed together, or not at all. A consumer
// then handles the event.
func ExampleLogTx() {
	ctx := context.Background()
	// The tests' server; an application passes its own URL. The example
	// works in a schema of its own and drops it at the end.
	schema := fmt.Sprintf("monster_example_%d", time.Now().UnixNano())
	s, err := postgres.Open(ctx, testURL(), &postgres.Options{Schema: schema})
	if err != nil {
		log.Fatal(err)
	}
	m := monster.New(s, &monster.Options{
		Logger:       slog.New(slog.DiscardHandler),
		PollInterval: 20 * time.Millisecond,
	})
	defer m.Close()
	pool := s.Pool() // or the application's own pgx pool on the same database
	defer pool.Exec(context.Background(), "DROP SCHEMA "+schema+" CASCADE")
	if _, err := pool.Exec(ctx, "CREATE TABLE "+schema+".orders (id text PRIMARY KEY, total int)"); err != nil {
		log.Fatal(err)
	}

	for _, commit := range []bool{true, false} {
		id := fmt.Sprintf("order-%v", commit)
		tx, err := pool.Begin(ctx)
		if err != nil {
			log.Fatal(err)
		}
		if _, err := tx.Exec(ctx, "INSERT INTO "+schema+".orders VALUES ($1, 30)", id); err != nil {
			log.Fatal(err)
		}
		// Log last, just before the commit: the transaction holds the
		// store's append lock from here on.
		if _, err := postgres.LogTx(ctx, m, tx, "order.placed", map[string]any{"id": id, "total": 30}); err != nil {
			log.Fatal(err)
		}
		if commit {
			err = tx.Commit(ctx)
		} else {
			err = tx.Rollback(ctx) // the event goes with the order
		}
		if err != nil {
			log.Fatal(err)
		}
	}

	// Only the committed order's event is in the log, and a consumer
	// handles it.
	handled := make(chan string, 2)
	m.Consume("mailer", monster.Match("order.*", func(ctx context.Context, e monster.RawEvent) error {
		handled <- string(e.Data)
		return nil
	}), nil)
	runCtx, stop := context.WithCancel(ctx)
	if err := m.Start(runCtx); err != nil {
		log.Fatal(err)
	}
	fmt.Println("handled:", <-handled)
	stop()
	stopCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	m.Stop(stopCtx)
	events, err := m.Events(ctx, 0, 10)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("events in the log:", len(events))
	// Output:
	// handled: {"id":"order-true","total":30}
	// events in the log: 1
}
