package monster_test

import (
	"context"
	"errors"
	"fmt"
	"log"

	"github.com/gomonster/monster"
)

// BoughtShirt is the data of a user.bought_shirt event.
type BoughtShirt struct {
	User     string `json:"user"`
	Quantity int    `json:"quantity"`
}

// Example_declaredType declares an event type with its Go type and a
// validation rule: bad data is rejected at Log time with an error naming
// the field, and nothing is stored.
func Example_declaredType() {
	ctx := context.Background()
	m, err := monster.Open(ctx, "memory://", nil)
	if err != nil {
		log.Fatal(err)
	}
	defer m.Close()

	bought := monster.Declare(m, "user.bought_shirt", monster.Validate(func(b BoughtShirt) error {
		if b.User == "" {
			return monster.FieldError("user", "is required")
		}
		if b.Quantity <= 0 {
			return monster.FieldError("quantity", "must be positive")
		}
		return nil
	}))

	_, err = bought.Log(ctx, BoughtShirt{User: "gordon", Quantity: 0})
	fmt.Println(err)
	var invalid *monster.ValidationError
	if errors.As(err, &invalid) {
		fmt.Println("field:", invalid.Field)
	}

	// The declaration also applies to untyped Log calls (and batches, and
	// the HTTP API): the data must decode into a BoughtShirt.
	_, err = m.Log(ctx, "user.bought_shirt", map[string]any{"user": "gordon", "quantity": "two"})
	fmt.Println(errors.Is(err, monster.ErrInvalid), err)

	e, err := bought.Log(ctx, BoughtShirt{User: "gordon", Quantity: 2})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("stored at position %d: %+v\n", e.Position, e.Data)

	// Output:
	// monster: invalid "user.bought_shirt" event: field "quantity": must be positive
	// field: quantity
	// true monster: invalid "user.bought_shirt" event: field "quantity": got JSON string, want int
	// stored at position 1: {User:gordon Quantity:2}
}

// Example_disallowUndeclared turns off undeclared event types, like
// pymonster's allow_undeclared_events = False.
func Example_disallowUndeclared() {
	ctx := context.Background()
	m, err := monster.Open(ctx, "memory://", &monster.Options{DisallowUndeclared: true})
	if err != nil {
		log.Fatal(err)
	}
	defer m.Close()
	monster.Declare[BoughtShirt](m, "user.bought_shirt")

	_, err = m.Log(ctx, "event_1", "a really cool message")
	fmt.Println(errors.Is(err, monster.ErrUndeclared))

	_, err = m.Log(ctx, "user.bought_shirt", BoughtShirt{User: "gordon", Quantity: 2})
	fmt.Println(err)

	// Output:
	// true
	// <nil>
}
