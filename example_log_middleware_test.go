package monster_test

import (
	"context"
	"fmt"
	"log"
	"os"

	"github.com/gomonster/monster"
)

// ExampleMonster_UseLog ports pymonster's custom event class, whose log
// method prints its own line before logging, to log middleware. With
// Options.Verbose the standard line follows once the event is stored.
// Middleware may also enrich an entry (here: a Meta pair) or reject it.
func ExampleMonster_UseLog() {
	ctx := context.Background()
	m, err := monster.Open(ctx, "memory://", &monster.Options{Verbose: true, Output: os.Stdout})
	if err != nil {
		log.Fatal(err)
	}
	defer m.Close()

	customEventLogger := func(next monster.LogFunc) monster.LogFunc {
		return func(ctx context.Context, e *monster.Entry) error {
			if e.Type == "custom_1" {
				fmt.Printf("[CustomEventLogger][%s] %v\n", e.Type, e.Data)
			}
			return next(ctx, e)
		}
	}
	stampApp := func(next monster.LogFunc) monster.LogFunc {
		return func(ctx context.Context, e *monster.Entry) error {
			if e.Meta == nil {
				e.Meta = map[string]string{}
			}
			e.Meta["app"] = "pymonster-example"
			return next(ctx, e)
		}
	}
	m.UseLog(stampApp, customEventLogger)

	e, err := m.Log(ctx, "custom_1", "logging a really great message")
	if err != nil {
		log.Fatal(err)
	}
	if _, err := m.Log(ctx, "event_1", "a really cool message"); err != nil {
		log.Fatal(err)
	}
	fmt.Println("meta:", e.Meta)

	// Output:
	// [CustomEventLogger][custom_1] logging a really great message
	// [Event][custom_1] logging a really great message
	// [Event][event_1] a really cool message
	// meta: map[app:pymonster-example]
}
