package monster_test

import (
	"context"
	"errors"
	"fmt"
	"log"

	"github.com/gomonster/monster"
)

// Example_eagerMode shows eventlib's test mode: with Options.Eager, Log
// runs every matching consumer's handler before it returns and reports
// their failures. In tests, monstertest.New(t, nil) opens an eager Monster
// on an in-memory store and closes it when the test ends; there a handler's
// failure fails the test instead, and Log returns what it returns in
// production.
func Example_eagerMode() {
	ctx := context.Background()
	m, err := monster.Open(ctx, "memory://", &monster.Options{Eager: true})
	if err != nil {
		log.Fatal(err)
	}
	defer m.Close()

	bought := monster.Declare[BoughtShirt](m, "user.bought_shirt")
	err = m.Consume("shirt-mailer", monster.Handle(bought, func(ctx context.Context, e monster.Event[BoughtShirt]) error {
		if e.Data.Quantity > 10 {
			return errors.New("out of stock")
		}
		fmt.Printf("mailing %s about %d shirts\n", e.Data.User, e.Data.Quantity)
		return nil
	}), nil)
	if err != nil {
		log.Fatal(err)
	}

	// The handler has run when Log returns.
	if _, err := bought.Log(ctx, BoughtShirt{User: "gordon", Quantity: 2}); err != nil {
		log.Fatal(err)
	}

	// A handler's failure comes back from Log; the event is stored anyway.
	_, err = bought.Log(ctx, BoughtShirt{User: "alyx", Quantity: 50})
	var failed *monster.HandlerError
	if errors.As(err, &failed) {
		fmt.Printf("consumer %s failed: %v\n", failed.Consumer, failed.Err)
	}
	stored, err := m.Events(ctx, 0, 0)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("events stored:", len(stored))

	// Output:
	// mailing gordon about 2 shirts
	// consumer shirt-mailer failed: out of stock
	// events stored: 2
}
