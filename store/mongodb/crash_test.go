package mongodb_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/gomonster/monster/store"
	"github.com/gomonster/monster/store/mongodb"
)

// An appender that dies after writing part of a batch leaves nothing
// visible; once its lease expires the next append removes what it wrote
// and takes its position, and the dead appender can no longer commit.
func TestCrashMidAppend(t *testing.T) {
	for _, tg := range targets(t) {
		t.Run(tg.name, func(t *testing.T) {
			ctx := t.Context()
			u := dbURL(t, tg.url)
			opts := &mongodb.Options{AppendLease: 200 * time.Millisecond}
			crashed, err := mongodb.Open(ctx, u, opts)
			require.NoError(t, err)
			defer crashed.Close()
			alive, err := mongodb.Open(ctx, u, opts)
			require.NoError(t, err)
			defer alive.Close()

			ev := func(id string) store.NewEvent {
				return store.NewEvent{ID: id, Type: "crash.test", Time: time.Now().UTC(), Data: []byte(`{"n":1}`)}
			}
			first, err := alive.Append(ctx, []store.NewEvent{ev("first")})
			require.NoError(t, err)

			commitLate, err := crashed.CrashMidAppend(ctx, "ghost", "crash.test")
			require.NoError(t, err)

			read, err := alive.Read(ctx, store.ReadParams{After: 0, Limit: 10})
			require.NoError(t, err)
			require.Len(t, read, 1, "a batch that did not commit is invisible")
			_, err = alive.EventByID(ctx, "ghost")
			require.ErrorIs(t, err, store.ErrNotFound)
			head, err := alive.Head(ctx)
			require.NoError(t, err)
			require.Equal(t, first[0].Event.Position, head)

			// Waits for the dead appender's lease, then cleans up.
			res, err := alive.Append(ctx, []store.NewEvent{ev("second")})
			require.NoError(t, err)
			require.Equal(t, first[0].Event.Position+1, res[0].Event.Position, "the dead batch's position is reused")

			ok, err := commitLate()
			require.NoError(t, err)
			require.False(t, ok, "an appender whose lock was taken over cannot commit")

			read, err = alive.Read(ctx, store.ReadParams{After: 0, Limit: 10})
			require.NoError(t, err)
			require.Len(t, read, 2)
			require.Equal(t, "second", read[1].ID)
			_, err = alive.EventByID(ctx, "ghost")
			require.ErrorIs(t, err, store.ErrNotFound)
			counts, err := alive.CountByType(ctx, 0)
			require.NoError(t, err)
			require.Equal(t, int64(2), counts["crash.test"])

			c, err := mongo.Connect(options.Client().ApplyURI(u))
			require.NoError(t, err)
			defer c.Disconnect(ctx)
			n, err := c.Database(alive.Database()).Collection("events_crash_test").CountDocuments(ctx, bson.D{{Key: "_id", Value: "ghost"}})
			require.NoError(t, err)
			require.Zero(t, n, "the dead batch's event was removed from its type's collection")
		})
	}
}
