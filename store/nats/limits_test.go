package nats_test

import (
	"bytes"
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/stretchr/testify/require"

	"github.com/gomonster/monster/store"
	natsstore "github.com/gomonster/monster/store/nats"
)

// With the server's max_batch_size raised (and the store told), an Append
// as large as the runtime's largest group commit (4,096 events) is one
// atomic batch, on one node and on a cluster; so are several events of
// 1 MiB.
func TestLargeAppends(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("starts servers of its own")
	}
	const maxBatch = 3 * 4096
	raise := func(o *server.Options) { o.JetStreamLimits.MaxBatchSize = maxBatch }
	for _, n := range []int{1, 3} {
		t.Run(fmt.Sprintf("%d nodes", n), func(t *testing.T) {
			t.Parallel()
			servers, url, err := startServers(n, raise)
			t.Cleanup(func() {
				for _, s := range servers {
					s.Shutdown()
				}
			})
			require.NoError(t, err)
			s := openStore(t, url, newPrefix(), &natsstore.Options{Replicas: n, MaxBatchMessages: maxBatch})
			ctx := context.Background()
			events := make([]store.NewEvent, 4096)
			for i := range events {
				events[i] = store.NewEvent{ID: fmt.Sprintf("e%d", i), Type: "bulk.item", Time: time.Now().UTC(),
					Data: []byte(`{"n":1}`), IdempotencyKey: fmt.Sprintf("k%d", i)}
			}
			start := time.Now()
			res, err := s.Append(ctx, events)
			require.NoError(t, err)
			t.Logf("4,096 events with idempotency keys (12,288 messages) in one batch: %v", time.Since(start))
			require.Len(t, res, 4096)

			big := bytes.Repeat([]byte("x"), 1<<20-2)
			data := append(append([]byte(`"`), big...), '"')
			var large []store.NewEvent
			for i := range 6 {
				large = append(large, store.NewEvent{ID: fmt.Sprintf("big%d", i), Type: "blob.large", Time: time.Now().UTC(), Data: data})
			}
			start = time.Now()
			_, err = s.Append(ctx, large)
			t.Logf("6 events of 1 MiB in one batch: %v, %v", time.Since(start), err)
			require.NoError(t, err)
			got, err := s.Read(ctx, store.ReadParams{After: res[4095].Event.Position, Limit: 10})
			require.NoError(t, err)
			require.Len(t, got, 6)
		})
	}
}
