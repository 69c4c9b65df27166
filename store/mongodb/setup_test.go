package mongodb_test

import (
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/gomonster/monster/store"
	"github.com/gomonster/monster/store/mongodb"
	"github.com/gomonster/monster/store/mongodb/ferrettest"
	"github.com/gomonster/monster/store/storetest"
)

// target is a server the tests run against.
type target struct {
	name string
	url  string // without a database
}

// targets returns embedded FerretDB, always, and the real MongoDB server
// at MONSTER_TEST_MONGO_URL when it is set.
func targets(t testing.TB) []target {
	out := []target{{"FerretDB", startFerretDB(t)}}
	if u := os.Getenv("MONSTER_TEST_MONGO_URL"); u != "" {
		out = append(out, target{"MongoDB", u})
	}
	return out
}

// startFerretDB runs FerretDB on a free port until the test ends and
// returns its URL.
func startFerretDB(t testing.TB) string { return ferrettest.Start(t) }

// dbURL returns base with its path set to a new database name, and drops
// that database when the test ends.
func dbURL(t testing.TB, base string) string { return ferrettest.Database(t, base) }

func openStore(t *testing.T, u string) *mongodb.Store {
	t.Helper()
	s, err := mongodb.Open(t.Context(), u, nil)
	require.NoError(t, err)
	return s
}

func harness(base string) storetest.Harness {
	return storetest.Harness{
		Open: func(t *testing.T) store.Store {
			return openStore(t, dbURL(t, base))
		},
		Reopen: func(t *testing.T, s store.Store) store.Store {
			u := s.(*mongodb.Store).URL()
			_ = s.Close()
			return openStore(t, u)
		},
		Share: func(t *testing.T, s store.Store) store.Store {
			return openStore(t, s.(*mongodb.Store).URL())
		},
		// Every store call is several round trips to FerretDB, which keeps
		// its data in SQLite; under -race, beside the other packages'
		// tests, a lease renewal took over 1 s (and a member fenced itself
		// off, as it must). Three times the suite's TTLs keeps these tests
		// about the store.
		TimeScale: 3,
	}
}

func TestConformance(t *testing.T) {
	for _, tg := range targets(t) {
		t.Run(tg.name, func(t *testing.T) {
			storetest.Run(t, harness(tg.url))
		})
	}
}

func TestCollectionNames(t *testing.T) {
	for _, tg := range targets(t) {
		t.Run(tg.name, func(t *testing.T) {
			ctx := t.Context()
			u := dbURL(t, tg.url)
			s, err := mongodb.Open(ctx, u, &mongodb.Options{Prefix: "ev_"})
			require.NoError(t, err)
			defer s.Close()
			_, err = s.Append(ctx, []store.NewEvent{{
				ID: "e1", Type: "user.bought_shirt", Time: time.Now().UTC(), Data: []byte(`{"size":"L"}`),
			}})
			require.NoError(t, err)
			c, err := mongo.Connect(options.Client().ApplyURI(u))
			require.NoError(t, err)
			defer c.Disconnect(ctx)
			names, err := c.Database(s.Database()).ListCollectionNames(ctx, map[string]any{})
			require.NoError(t, err)
			require.Contains(t, names, "ev_user_bought_shirt")
			n, err := c.Database(s.Database()).Collection("ev_user_bought_shirt").CountDocuments(ctx, map[string]any{})
			require.NoError(t, err)
			require.EqualValues(t, 1, n)
			require.True(t, strings.HasPrefix(u, "mongodb://"))
		})
	}
}
