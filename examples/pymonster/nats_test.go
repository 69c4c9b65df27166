package pymonster_test

import (
	"regexp"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	natsgo "github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"
)

// TestWalkthroughOnNATS runs the README's two terminals on NATS JetStream
// (nats-server embedded in this test, random port): the producer with
// MONSTER_STORE=nats://..., the consumer with -store nats://...; the
// consumer prints every event in order, and the events stream holds one
// subject per event type, as pymonster held one collection per type.
func TestWalkthroughOnNATS(t *testing.T) {
	t.Parallel()
	bin := buildCommands(t, "./producer", "./consumer")
	srv, err := server.NewServer(&server.Options{
		Host: "127.0.0.1", Port: -1, JetStream: true, StoreDir: t.TempDir(), SyncAlways: true, NoLog: true, NoSigs: true,
	})
	require.NoError(t, err)
	go srv.Start()
	t.Cleanup(srv.Shutdown)
	require.True(t, srv.ReadyForConnections(10*time.Second))
	storeURL := srv.ClientURL() + "?prefix=walkthrough"

	consumer := startConsumer(t, bin, storeURL)

	lines := runProducer(t, bin, storeURL, 20)
	require.Len(t, lines, 3+1+2*20+20)
	require.Equal(t, `[Event][user.bought_shirt] {"user":"gordon","quantity":2}`, lines[1])

	// Positions on NATS are stream sequences, which the events' markers
	// share, so they have gaps: compare the lines without them.
	want := consumerLines(1, 20)
	got := consumer.waitLines(t, len(want))
	consumer.interrupt(t)
	require.ElementsMatch(t, withoutPositions(want), withoutPositions(got))
	requireOrderedPerConsumer(t, got)

	// "Take a peek": one subject per event type in the events stream.
	nc, err := natsgo.Connect(srv.ClientURL())
	require.NoError(t, err)
	defer nc.Close()
	js, err := jetstream.New(nc)
	require.NoError(t, err)
	ctx := t.Context()
	st, err := js.Stream(ctx, "walkthrough_events")
	require.NoError(t, err)
	info, err := st.Info(ctx, jetstream.WithSubjectFilter("walkthrough.ev.>"))
	require.NoError(t, err)
	require.Equal(t, map[string]uint64{
		"walkthrough.ev.event_1": 21, "walkthrough.ev.user.bought_shirt": 1, "walkthrough.ev.custom_1": 21,
	}, info.State.Subjects)
}

var position = regexp.MustCompile(`\]\[[0-9]+\]: `)

func withoutPositions(lines []string) []string {
	out := make([]string, len(lines))
	for i, l := range lines {
		out[i] = position.ReplaceAllString(l, "][]: ")
	}
	return out
}
