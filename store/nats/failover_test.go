package nats_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/stretchr/testify/require"

	"github.com/gomonster/monster"
	"github.com/gomonster/monster/monstertest"
	natsstore "github.com/gomonster/monster/store/nats"
)

// TestLeaderFailover shuts down the events stream's leader while 16
// producers log and two consumers (each on its own connection, as two
// processes would be) run on a 3-node cluster with replicas 3: no
// acknowledged event is lost, every one is handled, the consumers go on
// after the new leader is elected, and the node restarts and catches up.
func TestLeaderFailover(t *testing.T) {
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
	url += "?replicas=3"
	prefix := newPrefix()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	opts := &natsstore.Options{Prefix: prefix, RequestTimeout: 2 * time.Second}
	quiet := slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))

	var mu sync.Mutex
	handled := map[string]int{}
	var consumers []*monster.Monster
	for i := range 2 {
		s, err := natsstore.Open(ctx, url, opts)
		require.NoError(t, err)
		m := monster.New(s, &monster.Options{Logger: quiet, PollInterval: 50 * time.Millisecond, LeaseTTL: 3 * time.Second,
			MemberID: fmt.Sprintf("worker-%d", i)})
		t.Cleanup(func() { _ = m.Close() })
		require.NoError(t, m.Consume("audit", monster.Match("load.*", func(_ context.Context, e monster.RawEvent) error {
			mu.Lock()
			handled[e.ID]++
			mu.Unlock()
			return nil
		}), &monster.ConsumerOptions{Concurrency: 4}))
		require.NoError(t, m.Start(ctx))
		consumers = append(consumers, m)
	}

	ps, err := natsstore.Open(ctx, url, opts)
	require.NoError(t, err)
	producer := monster.New(ps, &monster.Options{Logger: quiet})
	t.Cleanup(func() { _ = producer.Close() })

	var acked sync.Map
	var nAcked, nFailed, nAmbiguous atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for p := range 16 {
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				e, err := producer.Log(ctx, "load.item", map[string]int{"p": p, "i": i}, monster.WithKey(fmt.Sprint(p)))
				switch {
				case err == nil:
					acked.Store(e.ID, true)
					nAcked.Add(1)
				case errors.Is(err, monster.ErrAmbiguous):
					nAmbiguous.Add(1)
				default:
					nFailed.Add(1)
				}
			}
		})
	}
	monstertest.EventuallyWithin(t, 30*time.Second, "200 events acknowledged before the failure", func() bool { return nAcked.Load() >= 200 })

	leader := streamLeader(t, ctx, ps, prefix+"_events")
	var victim int
	for i, s := range servers {
		if s.Name() == leader {
			victim = i
		}
	}
	stopped := stopNode(servers, victim)
	down := time.Now()
	before := nAcked.Load()
	monstertest.EventuallyWithin(t, 60*time.Second, "200 more events acknowledged after the leader went down", func() bool { return nAcked.Load() >= before+200 })
	recovered := time.Since(down)
	// Consumers resume: an event logged now is handled within seconds of
	// the shutdown.
	probe, err := producer.Log(ctx, "load.probe", map[string]int{"probe": 1})
	require.NoError(t, err)
	monstertest.EventuallyWithin(t, 10*time.Second, "an event logged after the failover to be handled", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return handled[probe.ID] > 0
	})
	resumed := time.Since(down)
	acked.Store(probe.ID, true)

	// The node comes back on its ports and data, and catches up.
	restartNode(t, servers, options, victim, stopped)
	monstertest.EventuallyWithin(t, 60*time.Second, "100 more events acknowledged after the node restarted", func() bool { return nAcked.Load() >= before+300 })
	close(stop)
	wg.Wait()

	// Every acknowledged event is stored and handled.
	var ids []string
	acked.Range(func(k, _ any) bool { ids = append(ids, k.(string)); return true })
	for _, id := range ids {
		_, err := ps.EventByID(ctx, id)
		require.NoError(t, err, "acknowledged event %s", id)
	}
	monstertest.EventuallyWithin(t, 60*time.Second, "every acknowledged event handled", func() bool {
		mu.Lock()
		defer mu.Unlock()
		for _, id := range ids {
			if handled[id] == 0 {
				return false
			}
		}
		return true
	})
	monstertest.EventuallyWithin(t, 60*time.Second, "the restarted node to be a current replica", func() bool {
		info, err := ps.JetStream().Stream(ctx, prefix+"_events")
		if err != nil {
			return false
		}
		ci := info.CachedInfo().Cluster
		if ci == nil || len(ci.Replicas) != 2 {
			return false
		}
		for _, r := range ci.Replicas {
			if !r.Current || r.Offline {
				return false
			}
		}
		return true
	})
	mu.Lock()
	redelivered := 0
	for _, n := range handled {
		redelivered += n - 1
	}
	mu.Unlock()
	t.Logf("acknowledged %d, failed %d, ambiguous %d, handled %d distinct (%d redelivered); 200 more acknowledged %v after the leader's shutdown, a new event handled %v after it",
		len(ids), nFailed.Load(), nAmbiguous.Load(), len(handled), redelivered, recovered.Round(time.Millisecond), resumed.Round(time.Millisecond))
}

func streamLeader(t *testing.T, ctx context.Context, s *natsstore.Store, stream string) string {
	t.Helper()
	st, err := s.JetStream().Stream(ctx, stream)
	require.NoError(t, err)
	require.NotNil(t, st.CachedInfo().Cluster)
	return st.CachedInfo().Cluster.Leader
}

// stoppedNode is what restartNode needs of a node stopNode shut down.
type stoppedNode struct{ clientPort, clusterPort int }

// stopNode shuts node i down, as a crash of its process would (its files
// stay).
func stopNode(servers []*server.Server, i int) stoppedNode {
	n := stoppedNode{clientPort: servers[i].Addr().(*net.TCPAddr).Port, clusterPort: servers[i].ClusterAddr().Port}
	servers[i].Shutdown()
	servers[i].WaitForShutdown()
	return n
}

// restartNode starts node i again on its ports and data, with routes to
// the nodes that are running, and puts it in servers[i].
func restartNode(t *testing.T, servers []*server.Server, options []*server.Options, i int, n stoppedNode) {
	t.Helper()
	o := options[i].Clone()
	o.Port, o.Cluster.Port = n.clientPort, n.clusterPort
	var routes []string
	for j, s := range servers {
		if j != i && s.Running() {
			routes = append(routes, "nats-route://"+s.ClusterAddr().String())
		}
	}
	o.Routes = server.RoutesFromStr(strings.Join(routes, ","))
	restarted, err := server.NewServer(o)
	require.NoError(t, err)
	go restarted.Start()
	require.True(t, restarted.ReadyForConnections(10*time.Second), "node %d restarts", i)
	servers[i] = restarted
}
