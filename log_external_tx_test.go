package monster_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/gomonster/monster"
	"github.com/gomonster/monster/store"
	"github.com/gomonster/monster/store/memstore"
)

// fakeTx is a transaction of a driver's own type: appending in it records
// the events and runs its append.
type fakeTx struct {
	got    [][]store.NewEvent
	append func(ctx context.Context, events []store.NewEvent) ([]store.AppendResult, error)
}

// txStore is a store whose application transactions are *fakeTx values.
type txStore struct{ store.Store }

func (s txStore) AppendInTx(ctx context.Context, tx any, events []store.NewEvent) ([]store.AppendResult, error) {
	ftx, ok := tx.(*fakeTx)
	if !ok {
		return nil, fmt.Errorf("monster: fake append: the transaction is a %T, not a *fakeTx", tx)
	}
	ftx.got = append(ftx.got, events)
	return ftx.append(ctx, events)
}

// LogExternalTx prepares like Log (middleware, validation, options) and
// hands the prepared event and the caller's transaction to the store; a
// refused event never reaches it, and the store's error comes back as is.
func TestLogExternalTx(t *testing.T) {
	ctx := t.Context()
	st := txStore{memstore.New()}
	m := monster.New(st, &monster.Options{Logger: slog.New(slog.DiscardHandler), MaxEventSize: 64})
	defer m.Close()
	type shirt struct {
		Quantity int `json:"quantity"`
	}
	monster.Declare[shirt](m, "user.bought_shirt", monster.Validate(func(s shirt) error {
		if s.Quantity <= 0 {
			return monster.FieldError("quantity", "must be positive")
		}
		return nil
	}))
	m.UseLog(func(next monster.LogFunc) monster.LogFunc {
		return func(ctx context.Context, e *monster.Entry) error {
			e.Meta = map[string]string{"tenant": "t1"}
			return next(ctx, e)
		}
	})

	tx := &fakeTx{append: st.Append} // stands in for the caller's transaction
	ev, err := m.LogExternalTx(ctx, tx, "user.bought_shirt", shirt{Quantity: 2},
		monster.WithKey("gordon"), monster.WithIdempotencyKey("order-1"))
	require.NoError(t, err)
	got := tx.got
	require.Len(t, got, 1)
	require.Len(t, got[0], 1)
	prepared := got[0][0]
	require.Equal(t, "user.bought_shirt", prepared.Type)
	require.Equal(t, "gordon", prepared.Key)
	require.Equal(t, "order-1", prepared.IdempotencyKey)
	require.JSONEq(t, `{"quantity":2}`, string(prepared.Data))
	require.JSONEq(t, `{"tenant":"t1"}`, string(prepared.Meta))
	require.Len(t, prepared.ID, 36)
	require.Equal(t, prepared.ID, ev.ID)
	require.Equal(t, map[string]string{"tenant": "t1"}, ev.Meta)
	require.Positive(t, ev.Position)

	// Refused by Log's checks: the append function is not called.
	for _, c := range []struct {
		typ  string
		data any
		want error
	}{
		{"user.bought_shirt", shirt{Quantity: 0}, monster.ErrInvalid},
		{"", 1, monster.ErrInvalidName},
		{"too.big", string(make([]byte, 100)), monster.ErrTooLarge},
		{"bad.data", func() {}, monster.ErrEncoding},
	} {
		_, err := m.LogExternalTx(ctx, tx, c.typ, c.data)
		require.ErrorIs(t, err, c.want, c.typ)
	}
	require.Len(t, tx.got, 1, "refused events never reach the store")

	boom := errors.New("boom")
	_, err = m.LogExternalTx(ctx, &fakeTx{append: func(context.Context, []store.NewEvent) ([]store.AppendResult, error) { return nil, boom }}, "event_1", "x")
	require.ErrorIs(t, err, boom)
	_, err = m.LogExternalTx(ctx, &fakeTx{append: func(context.Context, []store.NewEvent) ([]store.AppendResult, error) { return nil, nil }}, "event_1", "x")
	require.ErrorContains(t, err, "returned 0 results for 1 event")
	_, err = m.LogExternalTx(ctx, nil, "event_1", "x")
	require.ErrorContains(t, err, "nil transaction")
	_, err = m.LogExternalTx(ctx, "not a transaction", "event_1", "x")
	require.ErrorContains(t, err, "the transaction is a string, not a *fakeTx")

	// A store without transactions of its own type cannot do it.
	plain, err := monster.Open(ctx, "memory://", &monster.Options{Logger: slog.New(slog.DiscardHandler)})
	require.NoError(t, err)
	defer plain.Close()
	_, err = plain.LogExternalTx(ctx, tx, "event_1", "x")
	require.ErrorIs(t, err, monster.ErrNotSupported)
}
