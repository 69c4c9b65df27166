package nats_test

import (
	"testing"

	"github.com/gomonster/monster/store"
	natsstore "github.com/gomonster/monster/store/nats"
	"github.com/gomonster/monster/store/storetest"
)

// TestConformance runs the store conformance suite on one embedded node
// that syncs every write, each test under a prefix of its own.
func TestConformance(t *testing.T) {
	t.Parallel()
	storetest.Run(t, harness(single.get(t), nil, 1))
}

// TestConformanceCluster runs the suite on an embedded 3-node cluster with
// every stream replicated on all three.
func TestConformanceCluster(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("the 3-node cluster run is long")
	}
	storetest.Run(t, harness(cluster.get(t), &natsstore.Options{Replicas: 3}, 2))
}

func harness(url string, opts *natsstore.Options, timeScale int) storetest.Harness {
	return storetest.Harness{
		Open: func(t *testing.T) store.Store {
			return openStore(t, url, newPrefix(), opts)
		},
		Reopen: func(t *testing.T, s store.Store) store.Store {
			prefix := s.(*natsstore.Store).Prefix()
			_ = s.Close()
			return openStore(t, url, prefix, opts)
		},
		Share: func(t *testing.T, s store.Store) store.Store {
			return openStore(t, url, s.(*natsstore.Store).Prefix(), opts)
		},
		TimeScale: timeScale,
	}
}
