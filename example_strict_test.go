package monster_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log"

	"github.com/gomonster/monster"
)

// ExampleStrict declares a type that refuses fields its Go type does not
// have: a misspelt field in JSON from another service is rejected at Log
// time, naming the field, instead of being stored while the real field is
// left at its zero value.
func ExampleStrict() {
	ctx := context.Background()
	m, err := monster.Open(ctx, "memory://", nil)
	if err != nil {
		log.Fatal(err)
	}
	defer m.Close()
	monster.Declare(m, "user.bought_shirt", monster.Strict[BoughtShirt]())

	_, err = m.Log(ctx, "user.bought_shirt", json.RawMessage(`{"user":"gordon","quantitiy":2}`))
	var invalid *monster.ValidationError
	if errors.As(err, &invalid) {
		fmt.Println("field:", invalid.Field)
	}
	fmt.Println(err)

	e, err := m.Log(ctx, "user.bought_shirt", json.RawMessage(`{"user":"gordon","quantity":2}`))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("stored at position %d: %s\n", e.Position, e.Data)

	// Output:
	// field: quantitiy
	// monster: invalid "user.bought_shirt" event: field "quantitiy": unknown field: the type is strict (monster.Strict); send only the fields of monster_test.BoughtShirt
	// stored at position 1: {"user":"gordon","quantity":2}
}
