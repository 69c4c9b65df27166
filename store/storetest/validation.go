package storetest

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/gomonster/monster"
	"github.com/gomonster/monster/store"
)

// shirt is the data of a declared type validated by a function.
type shirt struct {
	User     string `json:"user"`
	Quantity int    `json:"quantity"`
}

// order is the data of a declared type that validates itself.
type order struct {
	SKU   string `json:"sku"`
	Count int    `json:"count"`
}

func (o order) Validate() error {
	if o.SKU == "" {
		return monster.FieldError("sku", "is required")
	}
	return nil
}

// requireNothingStored fails if the store holds any event.
func requireNothingStored(t testing.TB, ctx context.Context, s store.Store, what string) {
	t.Helper()
	head, err := s.Head(ctx)
	require.NoError(t, err)
	require.Zero(t, head, "%s: nothing may be stored", what)
	require.Empty(t, readAll(t, ctx, s), "%s: nothing may be stored", what)
}

// Validation: a declared type rejects bad data at Log time, however it is
// logged (typed, raw map, raw JSON, batch), with an error naming the field;
// nothing invalid is stored or delivered.
func testDeclaredTypeRejectsBadData(t *testing.T, b *bundle) {
	ctx, s := b.ctx, b.open()
	m := b.monster(s, monster.Options{})
	bought := monster.Declare[shirt](m, "user.bought_shirt", monster.Validate(func(s shirt) error {
		switch {
		case s.User == "":
			return monster.FieldError("user", "is required")
		case s.Quantity <= 0:
			return monster.FieldError("quantity", "must be positive")
		}
		return nil
	}))
	monster.Declare[order](m, "order.placed")
	d := newDeliveries()
	b.consume(m, "audit", monster.Match("*", d.handle), nil)
	b.start(m)

	_, err := bought.Log(ctx, shirt{User: "gordon", Quantity: 0})
	requireInvalid(t, err, "user.bought_shirt", "quantity", "typed Log")
	for _, tc := range []struct {
		name, typ, field string
		data             any
	}{
		{"raw map, bad value", "user.bought_shirt", "quantity", map[string]any{"user": "gordon", "quantity": -1}},
		{"raw map, wrong JSON type", "user.bought_shirt", "quantity", map[string]any{"user": "gordon", "quantity": "two"}},
		{"raw map, missing field", "user.bought_shirt", "user", map[string]any{"quantity": 2}},
		{"raw JSON", "user.bought_shirt", "quantity", json.RawMessage(`{"user":"gordon","quantity":0}`)},
		{"self-validating type", "order.placed", "sku", map[string]any{"count": 1}},
	} {
		_, err := m.Log(ctx, tc.typ, tc.data)
		requireInvalid(t, err, tc.typ, tc.field, tc.name)
	}
	_, err = m.LogBatch(ctx, []monster.Entry{
		{Type: "user.bought_shirt", Data: shirt{User: "gordon", Quantity: 2}},
		{Type: "user.bought_shirt", Data: shirt{User: "alyx", Quantity: 0}},
	})
	requireInvalid(t, err, "user.bought_shirt", "quantity", "batch")
	require.Contains(t, err.Error(), "batch entry 1", "a batch error names the entry")
	requireNothingStored(t, ctx, s, "after invalid events")

	ok, err := bought.Log(ctx, shirt{User: "gordon", Quantity: 2})
	require.NoError(t, err)
	require.Equal(t, shirt{User: "gordon", Quantity: 2}, ok.Data)
	d.waitFor(t, "the valid event", []string{ok.ID})
	all := readAll(t, ctx, s)
	require.Len(t, all, 1, "only the valid event is stored")
	requireSameJSON(t, []byte(`{"user":"gordon","quantity":2}`), all[0].Data, "stored data")
	require.Equal(t, 1, d.distinct(), "only the valid event is delivered")
}

// requireInvalid checks a validation error: ErrInvalid, a
// *ValidationError naming the type and the field, a message that says so.
func requireInvalid(t testing.TB, err error, typ, field, what string) {
	t.Helper()
	require.ErrorIs(t, err, monster.ErrInvalid, what)
	var ve *monster.ValidationError
	require.ErrorAs(t, err, &ve, what)
	require.Equal(t, typ, ve.Type, what)
	require.Equal(t, field, ve.Field, what)
	require.Contains(t, err.Error(), `field "`+field+`"`, what)
	require.Contains(t, err.Error(), `"`+typ+`"`, what)
}

// Validation: undeclared types are accepted by default; with
// Options.DisallowUndeclared they are rejected with a clear error, and
// nothing is stored, while declared types still work.
func testUndeclaredPolicy(t *testing.T, b *bundle) {
	ctx := b.ctx
	open := b.open()
	m := b.monster(open, monster.Options{})
	ev, err := m.Log(ctx, "anything.goes", map[string]int{"n": 1})
	require.NoError(t, err, "undeclared types are accepted by default")
	got, err := open.EventByID(ctx, ev.ID)
	require.NoError(t, err)
	requireSameJSON(t, []byte(`{"n":1}`), got.Data, "data")

	s := b.open()
	strict := b.monster(s, monster.Options{DisallowUndeclared: true})
	_, err = strict.Log(ctx, "not.declared", map[string]int{"n": 1})
	require.ErrorIs(t, err, monster.ErrUndeclared)
	require.Contains(t, err.Error(), `"not.declared"`, "the error names the type")
	_, err = strict.LogBatch(ctx, []monster.Entry{{Type: "also.not", Data: 1}})
	require.ErrorIs(t, err, monster.ErrUndeclared)
	requireNothingStored(t, ctx, s, "after undeclared events")

	monster.Declare[int](strict, "declared.count")
	ok, err := strict.Log(ctx, "declared.count", 5)
	require.NoError(t, err)
	_, err = strict.Log(ctx, "declared.count", "five")
	require.ErrorIs(t, err, monster.ErrInvalid)
	all := readAll(t, ctx, s)
	require.Len(t, all, 1)
	require.Equal(t, ok.ID, all[0].ID)
}
