package monster_test

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/gomonster/monster"
	"github.com/gomonster/monster/monstertest"
)

// A typed handler's event and a raw handler's event of the same stored
// event are one RawEvent through Raw, data byte for byte as stored.
func TestEventRaw(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	m := monstertest.New(t, nil)
	bought := monster.Declare[BoughtShirt](m, "user.bought_shirt")
	var typed, raw []monster.RawEvent
	require.NoError(t, m.Consume("typed", monster.Handle(bought, func(ctx context.Context, e monster.Event[BoughtShirt]) error {
		typed = append(typed, e.Raw())
		return nil
	}), nil))
	require.NoError(t, m.Consume("raw", monster.Match("user.*", func(ctx context.Context, e monster.RawEvent) error {
		raw = append(raw, e.Raw())
		return nil
	}), nil))

	// A field BoughtShirt does not have is stored, and Raw keeps it.
	stored := `{"user":"gordon", "quantity":2, "gift":true}`
	logged, err := m.Log(ctx, "user.bought_shirt", json.RawMessage(stored), monster.WithKey("gordon"), monster.WithMeta("source", "web"))
	require.NoError(t, err)
	require.Len(t, typed, 1)
	require.Len(t, raw, 1)
	require.Equal(t, raw[0], typed[0])
	require.Equal(t, stored, string(typed[0].Data), "the JSON as stored, not re-encoded from BoughtShirt")
	require.Equal(t, logged.ID, typed[0].ID)
	require.Equal(t, "gordon", typed[0].Key)
	require.Equal(t, map[string]string{"source": "web"}, typed[0].Meta)
	require.Equal(t, 1, typed[0].Attempt)

	// The typed Log's event has the stored JSON too.
	e, err := bought.Log(ctx, BoughtShirt{User: "alyx", Quantity: 1})
	require.NoError(t, err)
	require.JSONEq(t, `{"user":"alyx","quantity":1}`, string(e.Raw().Data))
	require.Equal(t, e.Position, e.Raw().Position)
}

func TestEventRawOfAHandBuiltEvent(t *testing.T) {
	t.Parallel()
	e := monster.Event[BoughtShirt]{ID: "e1", Type: "user.bought_shirt", Position: 3, Data: BoughtShirt{User: "gordon", Quantity: 2}}
	r := e.Raw()
	require.Equal(t, `{"user":"gordon","quantity":2}`, string(r.Data), "encoded with encoding/json")
	require.Equal(t, "e1", r.ID)
	require.Equal(t, int64(3), r.Position)

	rawIn := monster.RawEvent{ID: "e2", Data: json.RawMessage(`{ "spaced" : 1 }`)}
	require.Equal(t, rawIn, rawIn.Raw(), "a RawEvent is its own Raw")

	bad := monster.Event[chan int]{ID: "e3", Data: make(chan int)}
	require.Nil(t, bad.Raw().Data, "data that does not encode is nil")
}
