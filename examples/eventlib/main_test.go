package main

import (
	"bytes"
	"context"
	"database/sql"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/gomonster/monster"
	"github.com/gomonster/monster/examples/eventlib/shoestore"
	"github.com/gomonster/monster/monstertest"
)

// lockedBuffer is a bytes.Buffer the test can read while run writes to it.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// brokenRedis returns the address of a server that accepts connections and
// closes them at once: a Redis that is down.
func brokenRedis(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { _ = ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			_ = c.Close()
		}
	}()
	return ln.Addr().String()
}

// TestServeWithRedisDown runs the program against a Redis that is down: the
// product page answers, the table consumer writes its row, and the Redis
// counter is left behind, failing, until the program stops cleanly.
func TestServeWithRedisDown(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	store, db := filepath.Join(dir, "monster.db"), filepath.Join(dir, "shoestore.db")
	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	var stdout, stderr lockedBuffer
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"-addr", "127.0.0.1:0", "-store", store, "-db", db, "-redis", brokenRedis(t)}, &stdout, &stderr)
	}()

	serving := regexp.MustCompile(`shoestore: serving (http://127\.0\.0\.1:\d+)/ `)
	monstertest.Eventually(t, "the serving line", func() bool { return serving.MatchString(stdout.String()) })
	base := serving.FindStringSubmatch(stdout.String())[1]

	resp, err := http.Get(base + "/products/air-1?user=alice")
	require.NoError(t, err)
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Contains(t, string(body), "Air Runner")
	require.Contains(t, stdout.String(), `[Event][shoestore.product_viewed] {"user":"alice","product":"air-1","source":"shoeprime"}`)

	shopDB, err := sql.Open("sqlite", "file:"+db+"?_pragma=busy_timeout(5000)")
	require.NoError(t, err)
	defer shopDB.Close()
	table := &shoestore.ViewsTable{DB: shopDB}
	monstertest.Eventually(t, "the view's row", func() bool {
		n, err := table.Views(context.Background(), "air-1")
		return err == nil && n == 1
	})

	monstertest.Eventually(t, "the counter to fail", func() bool {
		return strings.Contains(stderr.String(), `msg="monster: handler failed, will retry" consumer=shoestore.redis-counter`)
	})

	stop()
	require.NoError(t, <-done, "stderr: %s", stderr.String())

	m, err := monster.Open(context.Background(), store, nil)
	require.NoError(t, err)
	defer m.Close()
	counter, err := m.ConsumerStats(context.Background(), shoestore.CounterConsumer)
	require.NoError(t, err)
	require.Equal(t, int64(1), counter.Lag, "the view is still to be counted")
	require.Positive(t, counter.Failures)
	require.Zero(t, counter.DeadLetters, "a Redis outage dead-letters nothing")
	tableStats, err := m.ConsumerStats(context.Background(), shoestore.TableConsumer)
	require.NoError(t, err)
	require.Zero(t, tableStats.Lag)
}
