package nats_test

import (
	"context"
	"fmt"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/gomonster/monster/internal/crashtest"
	"github.com/gomonster/monster/store"
	natsstore "github.com/gomonster/monster/store/nats"
)

// The tests share embedded servers, one single node and one 3-node
// cluster, started on first use on random ports; each test keeps its
// store under a prefix of its own.
var (
	single        = &lazyServers{nodes: 1}
	cluster       = &lazyServers{nodes: 3}
	prefixCounter atomic.Int64
	storeRoot     string
)

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "monster-nats-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	storeRoot = dir
	code := m.Run()
	crashtest.RemoveWorkers()
	single.shutdown()
	cluster.shutdown()
	_ = os.RemoveAll(dir)
	os.Exit(code)
}

type lazyServers struct {
	nodes   int
	once    sync.Once
	servers []*server.Server
	url     string
	err     error
}

func (l *lazyServers) get(t *testing.T) string {
	t.Helper()
	l.once.Do(func() { l.servers, l.url, l.err = startServers(l.nodes, nil) })
	if l.err != nil {
		t.Fatal(l.err)
	}
	return l.url
}

func (l *lazyServers) shutdown() {
	for _, s := range l.servers {
		s.Shutdown()
	}
}

// serverOptions are the options of one embedded node: random ports, a
// store that syncs every write (durable on return), and room for events
// of 1 MiB.
func serverOptions(name, dir string) *server.Options {
	return &server.Options{
		ServerName: name,
		Host:       "127.0.0.1",
		Port:       -1,
		JetStream:  true,
		StoreDir:   dir,
		SyncAlways: true,
		MaxPayload: 8 << 20,
		NoLog:      true,
		NoSigs:     true,
	}
}

// startServers starts n nodes (a cluster when n > 1) and returns them with
// a URL listing their client ports. tweak, if not nil, changes each node's
// options before it starts.
func startServers(n int, tweak func(*server.Options)) ([]*server.Server, string, error) {
	servers, _, url, err := startNodes(n, tweak)
	return servers, url, err
}

// startNodes is startServers that also returns each node's options.
func startNodes(n int, tweak func(*server.Options)) ([]*server.Server, []*server.Options, string, error) {
	dir, err := os.MkdirTemp(storeRoot, "servers-")
	if err != nil {
		return nil, nil, "", err
	}
	var servers []*server.Server
	var options []*server.Options
	var routes []string
	for i := range n {
		name := fmt.Sprintf("n%d", i+1)
		o := serverOptions(name, dir+"/"+name)
		if n > 1 {
			o.Cluster = server.ClusterOpts{Name: "monster-test", Host: "127.0.0.1", Port: -1}
			o.Routes = server.RoutesFromStr(strings.Join(routes, ","))
		}
		if tweak != nil {
			tweak(o)
		}
		options = append(options, o.Clone())
		s, err := server.NewServer(o)
		if err != nil {
			return servers, options, "", err
		}
		go s.Start()
		if !s.ReadyForConnections(10 * time.Second) {
			return servers, options, "", fmt.Errorf("server %s did not start", name)
		}
		servers = append(servers, s)
		if n > 1 {
			routes = append(routes, fmt.Sprintf("nats-route://%s", s.ClusterAddr().String()))
		}
	}
	if n > 1 {
		if err := waitFor(30*time.Second, func() bool {
			for _, s := range servers {
				if !s.JetStreamIsCurrent() {
					return false
				}
			}
			return servers[0].JetStreamIsClustered()
		}); err != nil {
			return servers, options, "", fmt.Errorf("the cluster's JetStream did not form: %w", err)
		}
	}
	return servers, options, serversURL(servers), nil
}

func serversURL(servers []*server.Server) string {
	var hosts []string
	for _, s := range servers {
		hosts = append(hosts, strings.TrimPrefix(s.ClientURL(), "nats://"))
	}
	return "nats://" + strings.Join(hosts, ",")
}

// waitFor polls cond until it holds or the time is up.
func waitFor(timeout time.Duration, cond func() bool) error {
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			return fmt.Errorf("condition not met within %v", timeout)
		}
		time.Sleep(10 * time.Millisecond)
	}
	return nil
}

func newPrefix() string { return fmt.Sprintf("t%d", prefixCounter.Add(1)) }

// openStore opens the store under prefix at url, closed when t ends.
func openStore(t *testing.T, url, prefix string, opts *natsstore.Options) *natsstore.Store {
	t.Helper()
	o := natsstore.Options{}
	if opts != nil {
		o = *opts
	}
	o.Prefix = prefix
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := natsstore.Open(ctx, url, &o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

var _ store.Store = (*natsstore.Store)(nil)
