package nats_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

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
