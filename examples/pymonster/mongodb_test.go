package pymonster_test

import (
	"bytes"
	"context"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/gomonster/monster/store/mongodb/ferrettest"
)

// TestWalkthroughOnMongoDB runs the README's two terminals on MongoDB
// (FerretDB, embedded in this test): the producer with
// MONSTER_STORE=mongodb://..., the consumer with -store mongodb://...; the
// consumer prints every event, and the database holds one collection per
// event type, named as pymonster named them, with the events in it.
func TestWalkthroughOnMongoDB(t *testing.T) {
	t.Parallel()
	bin := buildCommands(t, "./producer", "./consumer")
	storeURL := ferrettest.Database(t, ferrettest.Start(t))
	require.True(t, strings.HasPrefix(storeURL, "mongodb://"), storeURL)

	consumer := startConsumer(t, bin, storeURL)

	// FerretDB runs in this (race-enabled) test binary and is slow: give
	// the producer's 43 events time.
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(bin, "producer"), "-n", "20")
	cmd.Env = append(os.Environ(), "MONSTER_STORE="+storeURL)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	require.NoError(t, err, "producer: %s", stderr.String())
	lines := strings.Split(strings.TrimSuffix(string(out), "\n"), "\n")
	require.Len(t, lines, 3+1+2*20+20)
	require.Equal(t, `[Event][user.bought_shirt] {"user":"gordon","quantity":2}`, lines[1])

	want := consumerLines(1, 20)
	got := consumer.waitLines(t, len(want))
	consumer.interrupt(t)
	require.ElementsMatch(t, want, got)
	requireOrderedPerConsumer(t, got)

	// "Take a peek in the mongo shell": one collection per event type.
	ctx = t.Context()
	u, err := url.Parse(storeURL)
	require.NoError(t, err)
	client, err := mongo.Connect(options.Client().ApplyURI(storeURL))
	require.NoError(t, err)
	defer client.Disconnect(context.Background())
	db := client.Database(strings.TrimPrefix(u.Path, "/"))
	names, err := db.ListCollectionNames(ctx, bson.D{})
	require.NoError(t, err)
	counts := map[string]int64{"events_event_1": 21, "events_user_bought_shirt": 1, "events_custom_1": 21}
	for name, n := range counts {
		require.Contains(t, names, name)
		got, err := db.Collection(name).CountDocuments(ctx, bson.D{})
		require.NoError(t, err)
		require.Equal(t, n, got, "documents in %s", name)
	}
	var shirt struct {
		Type string `bson:"type"`
		Pos  int64  `bson:"pos"`
		Data string `bson:"data"`
	}
	require.NoError(t, db.Collection("events_user_bought_shirt").FindOne(ctx, bson.D{}).Decode(&shirt))
	require.Equal(t, "user.bought_shirt", shirt.Type)
	require.EqualValues(t, 2, shirt.Pos)
	require.JSONEq(t, `{"user":"gordon","quantity":2}`, shirt.Data)
	var first struct {
		Data string `bson:"data"`
	}
	require.NoError(t, db.Collection("events_event_1").FindOne(ctx, bson.D{{Key: "pos", Value: 1}}).Decode(&first))
	require.Equal(t, `"a really cool message"`, first.Data, fmt.Sprintf("event_1 at position 1 in %s", names))
}
