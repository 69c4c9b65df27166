package store_test

import (
	"context"
	"database/sql"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/gomonster/monster/store"
)

// bare implements only store.Store (through a nil embedded interface: the
// tests call no method of it).
type bare struct{ store.Store }

type txStore struct{ bare }

func (txStore) DB() *sql.DB { return nil }
func (txStore) AppendTx(context.Context, *sql.Tx, []store.NewEvent) ([]store.AppendResult, error) {
	return nil, nil
}

type notifyStore struct{ bare }

func (notifyStore) Notifications(context.Context) <-chan struct{} { return nil }

type bothStore struct{ txStore }

type driverTxStore struct{ bare }

func (driverTxStore) AppendInTx(context.Context, any, []store.NewEvent) ([]store.AppendResult, error) {
	return nil, nil
}

type allStore struct{ bothStore }

func (allStore) AppendInTx(context.Context, any, []store.NewEvent) ([]store.AppendResult, error) {
	return nil, nil
}

func (bothStore) Notifications(context.Context) <-chan struct{} { return nil }

// outerNotifier is a wrapper with a Notifier of its own.
type outerNotifier struct {
	bare
	ch chan struct{}
}

func (o outerNotifier) Notifications(context.Context) <-chan struct{} { return o.ch }

func TestWrapKeepsOptionalInterfaces(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name                   string
		inner                  store.Store
		tx, notifier, driverTx bool
	}{
		{"bare", bare{}, false, false, false},
		{"sql tx", txStore{}, true, false, false},
		{"notifier", notifyStore{}, false, true, false},
		{"sql tx and notifier", bothStore{}, true, true, false},
		{"driver tx", driverTxStore{}, false, false, true},
		{"all three", allStore{}, true, true, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			outer := bare{}
			w := store.Wrap(outer, tc.inner)
			_, isTx := w.(store.SQLTxAppender)
			_, isNotifier := w.(store.Notifier)
			require.Equal(t, tc.tx, isTx, "SQLTxAppender")
			require.Equal(t, tc.notifier, isNotifier, "Notifier")
			_, isDriverTx := w.(store.TxAppender)
			require.Equal(t, tc.driverTx, isDriverTx, "TxAppender")
		})
	}
}

// The wrapper's own implementation of an optional interface wins over the
// inner store's.
func TestWrapPrefersOuter(t *testing.T) {
	t.Parallel()
	ch := make(chan struct{})
	w := store.Wrap(outerNotifier{ch: ch}, bothStore{})
	n, ok := w.(store.Notifier)
	require.True(t, ok)
	require.Equal(t, (<-chan struct{})(ch), n.Notifications(context.Background()))
	_, isTx := w.(store.SQLTxAppender)
	require.True(t, isTx, "the inner store's SQLTxAppender is kept")
}
