package postgres_test

import (
	"testing"

	"github.com/gomonster/monster/store"
	"github.com/gomonster/monster/store/postgres"
	"github.com/gomonster/monster/store/storetest"
)

// TestConformance runs the store conformance suite, each test on a schema
// of its own.
func TestConformance(t *testing.T) {
	requireServer(t)
	storetest.Run(t, harness())
}

func harness() storetest.Harness {
	return storetest.Harness{
		Open: func(t *testing.T) store.Store {
			return openStore(t, newSchema(t))
		},
		Reopen: func(t *testing.T, s store.Store) store.Store {
			schema := s.(*postgres.Store).Schema()
			_ = s.Close()
			return openStore(t, schema)
		},
		Share: func(t *testing.T, s store.Store) store.Store {
			return openStore(t, s.(*postgres.Store).Schema())
		},
	}
}
