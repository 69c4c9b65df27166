package postgres_test

import (
	"net/url"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/gomonster/monster/internal/crashtest"
)

// TestScaleOut is the core module's three-process scale-out test on
// PostgreSQL: three worker processes share one consumer on one schema,
// one is killed with SIGKILL while the test logs events, the survivors
// take over its partitions within the lease time, and every event is
// handled once its key's earlier events are, never two of a key at once.
func TestScaleOut(t *testing.T) {
	t.Parallel()
	u, err := url.Parse(requireServer(t))
	require.NoError(t, err)
	q := u.Query()
	q.Set("monster_schema", newSchema(t))
	q.Set("pool_max_conns", "4") // four processes, beside the other tests
	u.RawQuery = q.Encode()
	crashtest.RunScaleOut(t, crashtest.ScaleOut{
		Worker: crashtest.BuildWorker(t, "github.com/gomonster/monster/store/postgres/internal/crashworker"),
		Store:  u.String(),
	})
}
