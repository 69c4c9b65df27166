package memstore_test

import (
	"testing"

	"github.com/gomonster/monster/store"
	"github.com/gomonster/monster/store/memstore"
	"github.com/gomonster/monster/store/storetest"
)

// TestConformance runs the store conformance suite. The in-memory store is
// neither persistent nor shared across processes, as its Limits declare:
// persistence tests skip, and the suite shares one instance between the
// Monsters of a test by itself.
func TestConformance(t *testing.T) {
	storetest.Run(t, storetest.Harness{
		Open:   func(t *testing.T) store.Store { return memstore.New() },
		Limits: storetest.Limits{NotPersistent: true, NotShared: true},
	})
}
