package shoestore_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"io"
	"net"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"

	"github.com/gomonster/monster/monstertest"
)

// redisAddr is the local Redis the tests use.
const redisAddr = "127.0.0.1:6379"

// requireRedis returns a client of the local Redis. Without one the test is
// skipped, except under CI=true, where Redis is required and the test fails.
func requireRedis(t *testing.T) *redis.Client {
	t.Helper()
	rdb := redis.NewClient(&redis.Options{Addr: redisAddr, DialTimeout: time.Second})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := rdb.Ping(ctx).Err(); err != nil {
		_ = rdb.Close()
		if os.Getenv("CI") == "true" {
			t.Fatalf("Redis is not reachable at %s, and CI=true requires it: %v", redisAddr, err)
		}
		t.Skipf("skipping: Redis is not reachable at %s (%v); start redis-server to run this test", redisAddr, err)
	}
	t.Cleanup(func() { _ = rdb.Close() })
	return rdb
}

// keyPrefix returns a prefix unique to this test run for the Redis keys it
// writes, and deletes every key under it when the test ends.
func keyPrefix(t *testing.T, rdb *redis.Client) string {
	t.Helper()
	var b [8]byte
	_, _ = rand.Read(b[:])
	prefix := "monster-test:" + hex.EncodeToString(b[:]) + ":"
	t.Cleanup(func() {
		ctx := context.Background()
		iter := rdb.Scan(ctx, 0, prefix+"*", 100).Iterator()
		var keys []string
		for iter.Next(ctx) {
			keys = append(keys, iter.Val())
		}
		if err := iter.Err(); err != nil {
			t.Errorf("listing test keys under %s: %v", prefix, err)
			return
		}
		if len(keys) > 0 {
			if err := rdb.Del(ctx, keys...).Err(); err != nil {
				t.Errorf("deleting test keys under %s: %v", prefix, err)
			}
		}
	})
	return prefix
}

// tcpProxy forwards connections from a local port to a target. Down closes
// the port and every connection through it, so that the target looks
// unreachable; Up opens the same port again.
type tcpProxy struct {
	target string
	addr   string

	mu    sync.Mutex
	ln    net.Listener // nil while down
	conns map[net.Conn]struct{}
	wg    sync.WaitGroup
}

func startProxy(t *testing.T, target string) *tcpProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	p := &tcpProxy{target: target, addr: ln.Addr().String(), conns: map[net.Conn]struct{}{}}
	p.serve(ln)
	t.Cleanup(p.Down)
	return p
}

// Addr is the proxy's address, the same while up and after Up.
func (p *tcpProxy) Addr() string { return p.addr }

// Down closes the port and cuts every open connection.
func (p *tcpProxy) Down() {
	p.mu.Lock()
	if p.ln != nil {
		_ = p.ln.Close()
		p.ln = nil
	}
	for c := range p.conns {
		_ = c.Close()
	}
	p.mu.Unlock()
	p.wg.Wait()
}

// Up listens on the proxy's port again.
func (p *tcpProxy) Up(t *testing.T) {
	t.Helper()
	var ln net.Listener
	monstertest.Eventually(t, "the proxy's port to be free again", func() bool {
		var err error
		ln, err = net.Listen("tcp", p.addr)
		return err == nil
	})
	p.serve(ln)
}

func (p *tcpProxy) serve(ln net.Listener) {
	p.mu.Lock()
	p.ln = ln
	p.mu.Unlock()
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		for {
			client, err := ln.Accept()
			if err != nil {
				return // closed by Down
			}
			upstream, err := net.DialTimeout("tcp", p.target, time.Second)
			if err != nil {
				_ = client.Close()
				continue
			}
			if !p.track(ln, client, upstream) {
				_ = client.Close()
				_ = upstream.Close()
				continue
			}
			p.wg.Add(2)
			go p.pipe(client, upstream)
			go p.pipe(upstream, client)
		}
	}()
}

// track records a connection pair, unless the proxy went down meanwhile.
func (p *tcpProxy) track(ln net.Listener, conns ...net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ln != ln {
		return false
	}
	for _, c := range conns {
		p.conns[c] = struct{}{}
	}
	return true
}

// pipe copies src to dst until either ends, then closes both.
func (p *tcpProxy) pipe(dst, src net.Conn) {
	defer p.wg.Done()
	_, _ = io.Copy(dst, src) // a cut connection ends with an error: expected
	_ = dst.Close()
	_ = src.Close()
	p.mu.Lock()
	delete(p.conns, dst)
	delete(p.conns, src)
	p.mu.Unlock()
}
