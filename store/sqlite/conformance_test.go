package sqlite_test

import (
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/gomonster/monster/store"
	"github.com/gomonster/monster/store/sqlite"
	"github.com/gomonster/monster/store/storetest"
)

// TestConformance runs the store conformance suite on SQLite files in a
// temporary directory. Reopen and Share open the same file again, as a
// restarted process and another process would.
func TestConformance(t *testing.T) {
	open := func(t *testing.T, path string) store.Store {
		s, err := sqlite.Open(t.Context(), path, nil)
		require.NoError(t, err)
		return s
	}
	pathOf := func(t *testing.T, s store.Store) string {
		sq, ok := s.(*sqlite.Store)
		require.True(t, ok, "storetest passed a %T, not the *sqlite.Store it was given", s)
		return sq.Path()
	}
	storetest.Run(t, storetest.Harness{
		Open: func(t *testing.T) store.Store {
			return open(t, filepath.Join(t.TempDir(), "monster.db"))
		},
		Reopen: func(t *testing.T, s store.Store) store.Store {
			path := pathOf(t, s)
			require.NoError(t, s.Close())
			return open(t, path)
		},
		Share: func(t *testing.T, s store.Store) store.Store {
			return open(t, pathOf(t, s))
		},
	})
}
