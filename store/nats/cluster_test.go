package nats_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/gomonster/monster/monstertest"
	"github.com/gomonster/monster/store"
	natsstore "github.com/gomonster/monster/store/nats"
)

// On the cluster the store's streams are replicated on the three nodes.
func TestClusterStreamsReplicated(t *testing.T) {
	t.Parallel()
	s := openStore(t, cluster.get(t)+"?replicas=3", newPrefix(), nil)
	ctx := context.Background()
	for _, name := range []string{s.Prefix() + "_events", s.Prefix() + "_state"} {
		st, err := s.JetStream().Stream(ctx, name)
		require.NoError(t, err)
		info, err := st.Info(ctx)
		require.NoError(t, err)
		require.Equal(t, 3, info.Config.Replicas, name)
		require.NotNil(t, info.Cluster, name)
		require.Len(t, info.Cluster.Replicas, 2, "%s: a leader and two replicas", name)
	}
}

// A cluster that lost its quorum cannot create the store's streams: Open
// fails, saying so, instead of hanging.
func TestOpenWithoutQuorum(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("starts a cluster of its own")
	}
	servers, url, err := startServers(3, nil)
	t.Cleanup(func() {
		for _, s := range servers {
			s.Shutdown()
		}
	})
	require.NoError(t, err)
	servers[1].Shutdown()
	servers[2].Shutdown()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, err = natsstore.Open(ctx, url+"?replicas=3", &natsstore.Options{RequestTimeout: 2 * time.Second})
	require.Error(t, err)
	require.Regexp(t, `^monster: nats open .*(no quorum|JetStream does not answer|stream)`, err.Error())
	t.Log(err)
}

// A cluster that loses its quorum after Open: Append fails within the
// request timeout, with a monster: error, and once the nodes are back every
// event acknowledged before is there and appends work again.
func TestQuorumLostAndRegained(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("starts a cluster of its own")
	}
	servers, options, url, err := startNodes(3, nil)
	t.Cleanup(func() {
		for _, s := range servers {
			s.Shutdown()
		}
	})
	require.NoError(t, err)
	s := openStore(t, url+"?replicas=3", newPrefix(), &natsstore.Options{RequestTimeout: 2 * time.Second})
	ctx := context.Background()
	before, err := s.Append(ctx, []store.NewEvent{
		{ID: "a", Type: "x.y", Time: time.Now().UTC(), Data: []byte(`1`)},
		{ID: "b", Type: "x.y", Time: time.Now().UTC(), Data: []byte(`2`)},
	})
	require.NoError(t, err)

	first, second := stopNode(servers, 1), stopNode(servers, 2)
	start := time.Now()
	_, err = s.Append(ctx, []store.NewEvent{{ID: "c", Type: "x.y", Time: time.Now().UTC(), Data: []byte(`3`)}})
	require.Error(t, err, "no quorum: the append cannot be committed")
	require.True(t, strings.HasPrefix(err.Error(), "monster: nats append"), err.Error())
	require.Less(t, time.Since(start), 10*time.Second, "the append fails within about the request timeout")
	t.Logf("append without quorum: %v after %v", err, time.Since(start).Round(time.Millisecond))

	restartNode(t, servers, options, 1, first)
	restartNode(t, servers, options, 2, second)
	var got []store.Event
	monstertest.EventuallyWithin(t, 60*time.Second, "the store to answer again", func() bool {
		got, err = s.Read(ctx, store.ReadParams{Limit: 10})
		return err == nil && len(got) >= 2
	})
	require.Equal(t, before[0].Event.ID, got[0].ID)
	require.Equal(t, before[1].Event.Position, got[1].Position)
	var lastErr error
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("the last append's error: %v", lastErr)
		}
	})
	// An attempt may fail ambiguously and yet be stored: the retries carry
	// an idempotency key, as the runtime's do, and fresh IDs.
	attempt := 0
	monstertest.EventuallyWithin(t, 60*time.Second, "appends to work again", func() bool {
		attempt++
		_, lastErr = s.Append(ctx, []store.NewEvent{{ID: fmt.Sprintf("d%d", attempt), Type: "x.y", Time: time.Now().UTC(),
			Data: []byte(`4`), IdempotencyKey: "d"}})
		return lastErr == nil
	})
}
