package monster_test

import (
	"context"
	"fmt"
	"log"
	"log/slog"
	"slices"

	"github.com/gomonster/monster"
)

// ExampleMonster_Stats counts events by type and shows a consumer's
// progress: its position in the log and its lag, the events of its
// subscription it has still to handle.
func ExampleMonster_Stats() {
	ctx := context.Background()
	m, err := monster.Open(ctx, "memory://", &monster.Options{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		log.Fatal(err)
	}
	defer m.Close()

	logEvent := func(typ string, data any) {
		if _, err := m.Log(ctx, typ, data); err != nil {
			log.Fatal(err)
		}
	}
	logEvent("user.bought_shirt", map[string]any{"user": "gordon", "quantity": 2})
	logEvent("event_1", "a really cool message")
	logEvent("user.signed_up", map[string]any{"user": "alyx"})
	logEvent("event_1", "another cool message")
	logEvent("user.bought_shirt", map[string]any{"user": "alyx", "quantity": 1})

	err = m.Consume("audit", monster.Match("user.*", func(ctx context.Context, e monster.RawEvent) error {
		return nil
	}), nil)
	if err != nil {
		log.Fatal(err)
	}
	if err := m.Start(ctx); err != nil {
		log.Fatal(err)
	}
	waitFor("audit to catch up", func() bool {
		s, err := m.ConsumerStats(ctx, "audit") // declared: no error even before it starts
		if err != nil {
			log.Fatal(err)
		}
		return s.Lag == 0
	})
	if err := m.Stop(ctx); err != nil {
		log.Fatal(err)
	}

	// Logged while the consumer is stopped: it is behind by one.
	logEvent("user.signed_up", map[string]any{"user": "barney"})

	stats, err := m.Stats(ctx)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("head:", stats.Head)
	types := make([]string, 0, len(stats.Types))
	for typ := range stats.Types {
		types = append(types, typ)
	}
	slices.Sort(types)
	for _, typ := range types {
		fmt.Printf("%s: %d\n", typ, stats.Types[typ])
	}
	for _, c := range stats.Consumers {
		fmt.Printf("consumer %s %v: position %d, lag %d, dead letters %d\n", c.Name, c.Types, c.Position, c.Lag, c.DeadLetters)
	}

	// Output:
	// head: 6
	// event_1: 2
	// user.bought_shirt: 2
	// user.signed_up: 2
	// consumer audit [user.*]: position 5, lag 1, dead letters 0
}
