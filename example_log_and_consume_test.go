package monster_test

import (
	"context"
	"fmt"
	"log"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/gomonster/monster"
)

// Example_logAndConsume logs pymonster's first events and has a consumer
// handle them in the background: Open, Log, Consume, Start, wait, Stop.
func Example_logAndConsume() {
	ctx := context.Background()

	// "memory://" keeps the example self-contained; a path such as
	// "monster.db" opens the embedded SQLite store.
	m, err := monster.Open(ctx, "memory://", &monster.Options{
		Logger: slog.New(slog.DiscardHandler),
	})
	if err != nil {
		log.Fatal(err)
	}
	defer m.Close()

	// Logging is one line; when Log returns, the event is stored.
	if _, err := m.Log(ctx, "event_1", "a really cool message"); err != nil {
		log.Fatal(err)
	}
	if _, err := m.Log(ctx, "user.bought_shirt", map[string]any{"user": "gordon", "quantity": 2}); err != nil {
		log.Fatal(err)
	}

	// A consumer added after the events starts at the beginning of the log.
	var (
		mu   sync.Mutex
		seen []monster.RawEvent
		done = make(chan struct{})
	)
	err = m.Consume("printer", monster.Match("*", func(ctx context.Context, e monster.RawEvent) error {
		mu.Lock()
		defer mu.Unlock()
		seen = append(seen, e)
		if len(seen) == 3 {
			close(done)
		}
		return nil
	}), nil)
	if err != nil {
		log.Fatal(err)
	}

	if err := m.Start(ctx); err != nil {
		log.Fatal(err)
	}
	// Consumers declared or events logged after Start are handled too.
	if _, err := m.Log(ctx, "custom_1", "logging a really great message"); err != nil {
		log.Fatal(err)
	}

	select {
	case <-done:
	case <-time.After(10 * time.Second):
		log.Fatal("timed out waiting for the consumer")
	}
	if err := m.Stop(ctx); err != nil {
		log.Fatal(err)
	}

	// Events of different types may be handled concurrently (they are in
	// different partitions); print them in log order.
	slices.SortFunc(seen, func(a, b monster.RawEvent) int { return int(a.Position - b.Position) })
	for _, e := range seen {
		fmt.Printf("%d %s %s\n", e.Position, e.Type, e.Data)
	}

	// Output:
	// 1 event_1 "a really cool message"
	// 2 user.bought_shirt {"quantity":2,"user":"gordon"}
	// 3 custom_1 "logging a really great message"
}
