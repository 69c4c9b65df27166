package store_test

import (
	"context"
	"errors"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/gomonster/monster/store"
)

func TestOpError(t *testing.T) {
	t.Parallel()
	driver := errors.New("disk I/O error")

	err := store.OpError(context.Background(), "sqlite", "append", driver)
	require.EqualError(t, err, "monster: sqlite append: disk I/O error")
	require.ErrorIs(t, err, driver)

	// Worded errors pass through unchanged.
	worded := store.Errorf(store.ErrNotFound, "monster: sqlite consumer %q: not found", "c1")
	require.Same(t, worded, store.OpError(context.Background(), "sqlite", "consumer", worded))
	require.ErrorIs(t, worded, store.ErrNotFound)

	// A done context is wrapped whatever the driver said.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err = store.OpError(ctx, "postgres", "read", errors.New("interrupted"))
	require.ErrorIs(t, err, context.Canceled)
	require.Contains(t, err.Error(), "monster: postgres read:")

	amb := store.AmbiguousCommitError("postgres", "append", driver)
	require.ErrorIs(t, amb, store.ErrAmbiguousCommit)
	require.NotErrorIs(t, amb, driver, "the driver's error is named, not wrapped")
	require.EqualError(t, store.ClosedError("mongodb", "read"), "monster: mongodb read: store is closed")
}

func TestValidateConsumerSpec(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		spec store.ConsumerSpec
		want string
	}{
		{store.ConsumerSpec{Name: "c", Partitions: 1}, ""},
		{store.ConsumerSpec{Partitions: 1}, "monster: x register consumer: empty name"},
		{store.ConsumerSpec{Name: "c"}, `monster: x register consumer "c": 0 partitions, want at least 1`},
		{store.ConsumerSpec{Name: "c", Partitions: 2, Start: -1}, `monster: x register consumer "c": negative start position -1`},
	} {
		err := store.ValidateConsumerSpec("x register consumer", tc.spec)
		if tc.want == "" {
			require.NoError(t, err)
		} else {
			require.EqualError(t, err, tc.want)
		}
	}
	require.ErrorIs(t, store.ConflictingPartitions("c", 4, 8), store.ErrConflict)
}
