package nats_test

import (
	"testing"

	"github.com/gomonster/monster/internal/crashtest"
)

// TestScaleOut is the core module's three-process scale-out test on the
// embedded 3-node cluster, streams replicated on all three: three worker
// processes share one consumer, one is killed with SIGKILL while the test
// logs events, the survivors take over its partitions within the lease
// time, and every event is handled once its key's earlier events are,
// never two of a key at once.
func TestScaleOut(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("starts worker processes")
	}
	crashtest.RunScaleOut(t, crashtest.ScaleOut{
		Worker: crashtest.BuildWorker(t, "github.com/gomonster/monster/store/nats/internal/crashworker"),
		Store:  cluster.get(t) + "?replicas=3&prefix=" + newPrefix(),
	})
}
