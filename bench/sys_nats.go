package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

func natsSystems(env *environment) []system {
	mk := func(sync bool) system {
		s := system{
			name: "jetstream-default", competing: true, replay: true,
			durability: "no: file storage with the default sync_interval (2 minutes); a PubAck means written to the OS, not synced",
			notes:      "nats-server embedded (random port, file storage in a temp dir), one stream per run, durable pull consumers with explicit acks (Consume, PullMaxMessages 500); workers = that many Consume subscriptions on the consumer; retries by NakWithDelay, MaxDeliver, Term after the last attempt",
		}
		if sync {
			s.smaller = map[string]int{"publish-1": 5, "publish-64": 10, "publish-batch": 10, "fan-out-4": 10, "fan-out-16": 10, "replay": 20, "failure": 10, "latency-5000": 5}
			s.name = "jetstream-sync"
			s.durability = "yes: SyncAlways (every write fsynced before the PubAck)"
		}
		s.open = func(ctx context.Context) (backend, error) { return openNATS(env, sync) }
		return s
	}
	return []system{mk(true), mk(false)}
}

type natsBackend struct {
	srv *server.Server
	nc  *nats.Conn
	js  jetstream.JetStream
	dir string
	seq atomic.Int64
}

func openNATS(env *environment, syncAlways bool) (*natsBackend, error) {
	dir, err := os.MkdirTemp(env.tmp, "jetstream-")
	if err != nil {
		return nil, err
	}
	opts := &server.Options{
		Host: "127.0.0.1", Port: server.RANDOM_PORT, // never 4222: the machine's own NATS holds it
		JetStream: true, StoreDir: dir, SyncAlways: syncAlways,
		NoLog: true, NoSigs: true,
		JetStreamMaxMemory: 1 << 30, JetStreamMaxStore: 20 << 30,
	}
	srv, err := server.NewServer(opts)
	if err != nil {
		return nil, err
	}
	go srv.Start()
	if !srv.ReadyForConnections(10 * time.Second) {
		srv.Shutdown()
		return nil, errors.New("nats-server did not start")
	}
	nc, err := nats.Connect(srv.ClientURL())
	if err != nil {
		srv.Shutdown()
		return nil, err
	}
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(4096))
	if err != nil {
		nc.Close()
		srv.Shutdown()
		return nil, err
	}
	return &natsBackend{srv: srv, nc: nc, js: js, dir: dir}, nil
}

func (b *natsBackend) close() error {
	b.nc.Close()
	b.srv.Shutdown()
	b.srv.WaitForShutdown()
	return os.RemoveAll(b.dir)
}

func (b *natsBackend) fresh(ctx context.Context, o freshOpts) (eventLog, error) {
	n := b.seq.Add(1)
	name := fmt.Sprintf("BENCH%d", n)
	subj := fmt.Sprintf("bench%d.event", n)
	st, err := b.js.CreateStream(ctx, jetstream.StreamConfig{
		Name: name, Subjects: []string{subj}, Storage: jetstream.FileStorage, Retention: jetstream.LimitsPolicy,
	})
	if err != nil {
		return nil, err
	}
	return &natsLog{b: b, stream: st, name: name, subj: subj}, nil
}

type natsLog struct {
	b      *natsBackend
	stream jetstream.Stream
	name   string
	subj   string
}

func (l *natsLog) publish(ctx context.Context, p []byte) error {
	_, err := l.b.js.Publish(ctx, l.subj, p)
	return err
}

func (l *natsLog) publishBatch(ctx context.Context, ps [][]byte) error {
	futures := make([]jetstream.PubAckFuture, 0, len(ps))
	for _, p := range ps {
		f, err := l.b.js.PublishAsync(l.subj, p)
		if err != nil {
			return err
		}
		futures = append(futures, f)
	}
	for _, f := range futures {
		select {
		case <-f.Ok():
		case err := <-f.Err():
			return err
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

func (l *natsLog) consume(ctx context.Context, specs []consumerSpec) (func(context.Context) error, error) {
	var ccs []jetstream.ConsumeContext
	stop := func(context.Context) error {
		for _, cc := range ccs {
			cc.Stop()
		}
		for _, cc := range ccs {
			<-cc.Closed()
		}
		return nil
	}
	for _, s := range specs {
		cfg := jetstream.ConsumerConfig{
			Durable: s.name, AckPolicy: jetstream.AckExplicitPolicy, DeliverPolicy: jetstream.DeliverAllPolicy,
			AckWait: 30 * time.Second, // MaxAckPending: the default, 1,000
		}
		if s.maxAttempts > 0 {
			cfg.MaxDeliver = s.maxAttempts
		}
		cons, err := l.stream.CreateOrUpdateConsumer(ctx, cfg)
		if err != nil {
			_ = stop(ctx)
			return nil, err
		}
		h := s.handle
		maxAttempts := s.maxAttempts
		for range max(s.workers, 1) {
			cc, err := cons.Consume(func(msg jetstream.Msg) {
				attempt := 1
				if md, err := msg.Metadata(); err == nil {
					attempt = int(md.NumDelivered)
				}
				if err := h(context.Background(), msg.Data(), attempt); err != nil {
					if maxAttempts > 0 && attempt >= maxAttempts {
						_ = msg.Term()
					} else {
						_ = msg.NakWithDelay(retryDelay(attempt))
					}
					return
				}
				_ = msg.Ack()
			}, jetstream.PullMaxMessages(500))
			if err != nil {
				_ = stop(ctx)
				return nil, err
			}
			ccs = append(ccs, cc)
		}
	}
	return stop, nil
}

func (l *natsLog) close(ctx context.Context) error {
	return l.b.js.DeleteStream(ctx, l.name)
}

// natsServer is the embedded nats-server, or the 3-node cluster, of a
// monster-nats system.
type natsServer struct {
	servers []*server.Server
	url     string // every node's client address
	dir     string
}

// startNATSForMonster starts nodes nats-servers (a cluster when nodes > 1)
// on random ports, each syncing every write, with room for atomic batches
// of the runtime's largest group commit.
func startNATSForMonster(env *environment, nodes int) (*natsServer, error) {
	dir, err := os.MkdirTemp(env.tmp, "monster-nats-")
	if err != nil {
		return nil, err
	}
	n := &natsServer{dir: dir}
	var routes, hosts []string
	for i := range nodes {
		opts := &server.Options{
			ServerName: fmt.Sprintf("n%d", i+1),
			Host:       "127.0.0.1", Port: server.RANDOM_PORT, // never 4222: the machine's own NATS holds it
			JetStream: true, StoreDir: fmt.Sprintf("%s/n%d", dir, i+1), SyncAlways: true, MaxPayload: 8 << 20,
			JetStreamLimits: server.JSLimitOpts{MaxBatchSize: 12288},
			NoLog:           true, NoSigs: true,
			JetStreamMaxMemory: 1 << 30, JetStreamMaxStore: 20 << 30,
		}
		if nodes > 1 {
			opts.Cluster = server.ClusterOpts{Name: "bench", Host: "127.0.0.1", Port: server.RANDOM_PORT}
			opts.Routes = server.RoutesFromStr(strings.Join(routes, ","))
		}
		srv, err := server.NewServer(opts)
		if err != nil {
			_ = n.close()
			return nil, err
		}
		go srv.Start()
		n.servers = append(n.servers, srv)
		if !srv.ReadyForConnections(10 * time.Second) {
			_ = n.close()
			return nil, errors.New("nats-server did not start")
		}
		if nodes > 1 {
			routes = append(routes, "nats-route://"+srv.ClusterAddr().String())
		}
		hosts = append(hosts, strings.TrimPrefix(srv.ClientURL(), "nats://"))
	}
	n.url = "nats://" + strings.Join(hosts, ",")
	deadline := time.Now().Add(30 * time.Second)
	for nodes > 1 && !n.jetStreamReady() {
		if time.Now().After(deadline) {
			_ = n.close()
			return nil, errors.New("the nats cluster's JetStream did not form")
		}
		time.Sleep(20 * time.Millisecond)
	}
	return n, nil
}

func (n *natsServer) jetStreamReady() bool {
	for _, s := range n.servers {
		if !s.JetStreamIsCurrent() {
			return false
		}
	}
	return n.servers[0].JetStreamIsClustered()
}

func (n *natsServer) close() error {
	for _, s := range n.servers {
		s.Shutdown()
		s.WaitForShutdown()
	}
	return os.RemoveAll(n.dir)
}
