package monster_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/gomonster/monster"
)

// Example_deadLetters shows a consumer retrying a failing event, giving up
// on it after its retry policy (the event goes to the consumer's dead
// letters and the consumer moves on), and an operator retrying it once the
// cause is fixed.
func Example_deadLetters() {
	ctx := context.Background()
	m, err := monster.Open(ctx, "memory://", &monster.Options{
		PollInterval: 10 * time.Millisecond,         // pick up retry requests quickly
		Logger:       slog.New(slog.DiscardHandler), // retries and dead letters are logged here
	})
	if err != nil {
		log.Fatal(err)
	}
	defer m.Close()

	bought := monster.Declare[BoughtShirt](m, "user.bought_shirt")
	var mailServerDown atomic.Bool
	mailServerDown.Store(true)
	mailed := make(chan monster.Event[BoughtShirt], 1)
	err = m.Consume("shirt-mailer", monster.Handle(bought, func(ctx context.Context, e monster.Event[BoughtShirt]) error {
		if mailServerDown.Load() {
			return errors.New("mail server down")
		}
		mailed <- e
		return nil
	}), &monster.ConsumerOptions{
		Retry: monster.RetryPolicy{MaxAttempts: 3, InitialBackoff: time.Millisecond, Jitter: -1},
	})
	if err != nil {
		log.Fatal(err)
	}
	if err := m.Start(ctx); err != nil {
		log.Fatal(err)
	}
	if _, err := bought.Log(ctx, BoughtShirt{User: "gordon", Quantity: 2}); err != nil {
		log.Fatal(err)
	}

	// Wait for the consumer to give up on the event.
	deadLetters := func() []monster.DeadLetter {
		dls, err := m.DeadLetters(ctx, "shirt-mailer", 0) // none, not an error, before it starts
		if err != nil {
			log.Fatal(err)
		}
		return dls
	}
	waitFor("a dead letter", func() bool { return len(deadLetters()) == 1 })
	dl := deadLetters()[0]
	fmt.Printf("dead letter: %s at position %d after %d attempts: %s\n", dl.Type, dl.Position, dl.Attempts, dl.Error)

	// The mail server is back: run the dead letters again.
	mailServerDown.Store(false)
	n, err := m.RetryDeadLetters(ctx, "shirt-mailer")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("retrying", n)
	e := <-mailed
	fmt.Printf("mailed %s on attempt %d\n", e.Data.User, e.Attempt)
	waitFor("the dead letter to go", func() bool { return len(deadLetters()) == 0 })

	if err := m.Stop(ctx); err != nil {
		log.Fatal(err)
	}
	stats, err := m.ConsumerStats(ctx, "shirt-mailer")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("failures: %d, dead letters: %d\n", stats.Failures, stats.DeadLetters)

	// Output:
	// dead letter: user.bought_shirt at position 1 after 3 attempts: mail server down
	// retrying 1
	// mailed gordon on attempt 4
	// failures: 3, dead letters: 0
}

// waitFor polls cond until it holds, for the examples' background
// consumers.
func waitFor(what string, cond func() bool) {
	for deadline := time.Now().Add(10 * time.Second); !cond(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			log.Fatalf("timed out waiting for %s", what)
		}
	}
}
