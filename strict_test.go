package monster_test

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/gomonster/monster"
	"github.com/gomonster/monster/monstertest"
)

type strictInner struct {
	Size int `json:"size"`
}

type strictOrder struct {
	ID    string      `json:"id"`
	Items int         `json:"items"`
	Box   strictInner `json:"box"`
}

func TestUnknownFieldsAreAcceptedByDefault(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	m := newMem(t, nil)
	monster.Declare[strictOrder](m, "order.placed")
	e, err := m.Log(ctx, "order.placed", map[string]any{"id": "o1", "M": 1})
	require.NoError(t, err)
	require.JSONEq(t, `{"id":"o1","M":1}`, string(e.Data), "stored as given: nothing is dropped")
}

func TestStrictRefusesUnknownFields(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		data      any
		wantField string // "" for accepted
	}{
		{name: "top-level unknown field", data: json.RawMessage(`{"id":"o1","M":1}`), wantField: "M"},
		{name: "nested unknown field", data: json.RawMessage(`{"id":"o1","box":{"size":1,"colour":"red"}}`), wantField: "colour"},
		{name: "map with an unknown key", data: map[string]any{"id": "o1", "itemz": 2}, wantField: "itemz"},
		{name: "another struct", data: struct {
			ID    string `json:"id"`
			Extra bool   `json:"extra"`
		}{"o1", true}, wantField: "extra"},
		{name: "known fields", data: json.RawMessage(`{"id":"o1","items":2,"box":{"size":1}}`)},
		{name: "fields matched as encoding/json does", data: json.RawMessage(`{"ID":"o1"}`)},
		{name: "the Go type itself", data: strictOrder{ID: "o1"}},
		{name: "a pointer to it", data: &strictOrder{ID: "o1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			m := newMem(t, nil)
			monster.Declare(m, "order.placed", monster.Strict[strictOrder]())
			_, err := m.Log(ctx, "order.placed", tt.data)
			if tt.wantField == "" {
				require.NoError(t, err)
				monstertest.RequireLogged(t, m, "order.placed", 1)
				return
			}
			require.ErrorIs(t, err, monster.ErrInvalid)
			var ve *monster.ValidationError
			require.ErrorAs(t, err, &ve)
			require.Equal(t, tt.wantField, ve.Field)
			require.Contains(t, err.Error(), "unknown field: the type is strict (monster.Strict); send only the fields of monster_test.strictOrder")
			monstertest.RequireNotLogged(t, m, "*")
		})
	}
}

// Declaring the type again keeps it strict, and a batch's error names the
// entry.
func TestStrictSurvivesRedeclarationAndBatches(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	m := newMem(t, nil)
	monster.Declare(m, "order.placed", monster.Strict[strictOrder]())
	monster.Declare[strictOrder](m, "order.placed")
	_, err := m.LogBatch(ctx, []monster.Entry{
		{Type: "order.placed", Data: json.RawMessage(`{"id":"o1"}`)},
		{Type: "order.placed", Data: json.RawMessage(`{"id":"o2","M":1}`)},
	})
	var ve *monster.ValidationError
	require.ErrorAs(t, err, &ve)
	require.Equal(t, "M", ve.Field)
	require.ErrorContains(t, err, "monster: batch entry 1: ")
	monstertest.RequireNotLogged(t, m, "*")
}

// Handlers decode leniently: events stored before the type became strict
// (or by a process that declares it leniently) are still handled.
func TestStrictDoesNotApplyToHandlers(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	m := newMem(t, nil)
	_, err := m.Log(ctx, "order.placed", json.RawMessage(`{"id":"o1","M":1}`))
	require.NoError(t, err)
	placed := monster.Declare(m, "order.placed", monster.Strict[strictOrder]())
	got := make(chan string, 1)
	require.NoError(t, m.Consume("orders", monster.Handle(placed, func(ctx context.Context, e monster.Event[strictOrder]) error {
		got <- e.Data.ID
		return nil
	}), nil))
	start(t, m)
	monstertest.WaitCaughtUp(t, m, "orders")
	require.Equal(t, "o1", <-got)
	dls, err := m.DeadLetters(ctx, "orders", 0)
	require.NoError(t, err)
	require.Empty(t, dls)
}
