package monster_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"log/slog"
	"time"

	"github.com/gomonster/monster"
)

// errNoSuchUser is a failure no retry can fix.
var errNoSuchUser = errors.New("no such user")

// ExamplePermanent shows a handler giving up on an event at once: the
// error it returns is marked with monster.Permanent, so the event goes to
// the consumer's dead letters after one attempt instead of five, with no
// backoff, and the consumer moves on to the next event.
func ExamplePermanent() {
	ctx := context.Background()
	m, err := monster.Open(ctx, "memory://", &monster.Options{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		log.Fatal(err)
	}
	defer m.Close()

	bought := monster.Declare[BoughtShirt](m, "user.bought_shirt")
	users := map[string]bool{"gordon": true}
	err = m.Consume("shirt-mailer", monster.Handle(bought, func(ctx context.Context, e monster.Event[BoughtShirt]) error {
		if !users[e.Data.User] {
			return monster.Permanent(fmt.Errorf("mailing %s: %w", e.Data.User, errNoSuchUser))
		}
		fmt.Printf("mailed %s\n", e.Data.User)
		return nil
	}), &monster.ConsumerOptions{
		// Five attempts, the first retry after a minute: a permanent failure
		// skips them all.
		Retry: monster.RetryPolicy{MaxAttempts: 5, InitialBackoff: time.Minute},
	})
	if err != nil {
		log.Fatal(err)
	}
	if err := m.Start(ctx); err != nil {
		log.Fatal(err)
	}
	for _, user := range []string{"nobody", "gordon"} {
		if _, err := bought.Log(ctx, BoughtShirt{User: user, Quantity: 1}, monster.WithKey("shirts")); err != nil {
			log.Fatal(err)
		}
	}

	waitFor("the mailer to catch up", func() bool {
		s, err := m.ConsumerStats(ctx, "shirt-mailer")
		if err != nil {
			log.Fatal(err)
		}
		return s.Lag == 0
	})
	dls, err := m.DeadLetters(ctx, "shirt-mailer", 0)
	if err != nil {
		log.Fatal(err)
	}
	for _, dl := range dls {
		fmt.Printf("dead letter at position %d after %d attempt: %s\n", dl.Position, dl.Attempts, dl.Error)
	}

	// Output:
	// mailed gordon
	// dead letter at position 1 after 1 attempt: monster: permanent failure (not retried): mailing nobody: no such user
}
