package nats_test

import (
	"context"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/gomonster/monster/monstertest"
	"github.com/gomonster/monster/store"
	natsstore "github.com/gomonster/monster/store/nats"
)

// replyDropper is a TCP proxy to a NATS server that can stop passing the
// server's bytes to the client while the client's still reach the server:
// a connection lost after a commit was sent, as the client sees it.
type replyDropper struct {
	ln   net.Listener
	drop atomic.Bool
	// only, if set, limits the dropping to connections whose CONNECT
	// names this client.
	only  string
	mu    sync.Mutex
	conns []net.Conn
}

func newReplyDropper(t *testing.T, target string) *replyDropper {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	p := &replyDropper{ln: ln}
	t.Cleanup(func() { _ = ln.Close(); p.cut() })
	go func() {
		for {
			client, err := ln.Accept()
			if err != nil {
				return
			}
			srv, err := net.Dial("tcp", target)
			if err != nil {
				_ = client.Close()
				continue
			}
			p.mu.Lock()
			p.conns = append(p.conns, client, srv)
			p.mu.Unlock()
			var named atomic.Bool
			go func() {
				buf := make([]byte, 32<<10)
				for {
					n, err := client.Read(buf)
					if n > 0 {
						if p.only != "" && strings.Contains(string(buf[:n]), `"name":"`+p.only+`"`) {
							named.Store(true)
						}
						if _, werr := srv.Write(buf[:n]); werr != nil {
							return
						}
					}
					if err != nil {
						_ = srv.Close()
						return
					}
				}
			}()
			go func() {
				buf := make([]byte, 32<<10)
				for {
					n, err := srv.Read(buf)
					dropping := p.drop.Load() && (p.only == "" || named.Load())
					if n > 0 && !dropping {
						if _, werr := client.Write(buf[:n]); werr != nil {
							return
						}
					}
					if err != nil {
						_ = client.Close()
						return
					}
				}
			}()
		}
	}()
	return p
}

// cut closes every proxied connection, so the client reconnects afresh.
func (p *replyDropper) cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		_ = c.Close()
	}
	p.conns = nil
}

// An Append whose acknowledgement never arrives reports an ambiguous
// commit; the batch was in fact stored, and the same idempotency key,
// logged again once the connection is back, returns the stored event.
func TestAmbiguousCommit(t *testing.T) {
	t.Parallel()
	url := single.get(t)
	proxy := newReplyDropper(t, strings.TrimPrefix(url, "nats://"))
	prefix := newPrefix()
	s := openStore(t, "nats://"+proxy.ln.Addr().String(), prefix, &natsstore.Options{RequestTimeout: 500 * time.Millisecond})
	ctx := context.Background()

	ev := store.NewEvent{ID: "pay-1-try-1", Type: "payment.captured", Time: time.Now().UTC(), Data: []byte(`{"amount":5}`), IdempotencyKey: "pay-1"}
	proxy.drop.Store(true)
	_, err := s.Append(ctx, []store.NewEvent{ev})
	require.ErrorIs(t, err, store.ErrAmbiguousCommit)
	require.True(t, strings.HasPrefix(err.Error(), "monster: nats append"), err.Error())

	direct := openStore(t, url, prefix, nil)
	stored, err := direct.EventByID(ctx, ev.ID)
	require.NoError(t, err, "the batch was committed; only its acknowledgement was lost")

	proxy.drop.Store(false)
	proxy.cut()
	ev.ID = "pay-1-try-2"
	var res []store.AppendResult
	monstertest.EventuallyWithin(t, 20*time.Second, "the retried append to succeed after reconnecting", func() bool {
		res, err = s.Append(ctx, []store.NewEvent{ev})
		return err == nil
	})
	require.True(t, res[0].Duplicate)
	require.Equal(t, stored.Position, res[0].Event.Position)
	require.Equal(t, "pay-1-try-1", res[0].Event.ID)
}

// When only the append connection loses the acknowledgement, the store
// finds the batch committed (its first event's ID marker is stored) and
// the Append succeeds, with the events' positions.
func TestLostAcknowledgementResolved(t *testing.T) {
	t.Parallel()
	url := single.get(t)
	proxy := newReplyDropper(t, strings.TrimPrefix(url, "nats://"))
	proxy.only = "monster-append"
	prefix := newPrefix()
	s := openStore(t, "nats://"+proxy.ln.Addr().String(), prefix, &natsstore.Options{RequestTimeout: 2 * time.Second})
	ctx := context.Background()
	before, err := s.Append(ctx, []store.NewEvent{{ID: "first", Type: "a.b", Time: time.Now().UTC(), Data: []byte(`0`)}})
	require.NoError(t, err)

	proxy.drop.Store(true)
	events := []store.NewEvent{
		{ID: "x1", Type: "a.b", Time: time.Now().UTC(), Data: []byte(`1`), IdempotencyKey: "k1"},
		{ID: "x2", Type: "a.c", Time: time.Now().UTC(), Data: []byte(`2`)},
	}
	res, err := s.Append(ctx, events)
	require.NoError(t, err, "the batch was committed; the store must find it")
	read, err := s.Read(ctx, store.ReadParams{After: before[0].Event.Position, Limit: 10})
	require.NoError(t, err)
	require.Len(t, read, 2)
	for i := range read {
		require.Equal(t, read[i].Position, res[i].Event.Position, "event %d's position", i)
		require.Equal(t, read[i].ID, res[i].Event.ID)
	}
}
