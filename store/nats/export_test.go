package nats

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/gomonster/monster/store"
)

// CompareReadPaths checks that Read, with its header-less batched reads
// (positions counted), and the read with headers (positions from the
// server), its fallback when a batch has a gap, return the same events.
func CompareReadPaths(t *testing.T, s *Store) {
	ctx := context.Background()
	var events []store.NewEvent
	for i := range 50 {
		e := store.NewEvent{ID: fmt.Sprintf("e%d", i), Type: fmt.Sprintf("t.n%d", i%3), Time: time.Now().UTC(), Data: []byte(fmt.Sprint(i))}
		if i%4 == 0 {
			e.IdempotencyKey = fmt.Sprintf("k%d", i)
		}
		events = append(events, e)
	}
	_, err := s.Append(ctx, events[:20])
	require.NoError(t, err)
	_, err = s.Append(ctx, events[20:])
	require.NoError(t, err)
	for _, after := range []uint64{0, 3, 17} {
		for _, limit := range []int{1, 7, 100} {
			fast, err := s.Read(ctx, store.ReadParams{After: int64(after), Limit: limit})
			require.NoError(t, err)
			slow, _, _, err := s.directBatchWithHeaders(ctx, after+1, limit, nil)
			require.NoError(t, err)
			require.Equal(t, slow, fast, "after %d, limit %d", after, limit)
			require.NotEmpty(t, fast)
		}
	}
}
