package nats_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	natsgo "github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/gomonster/monster"
	"github.com/gomonster/monster/store"
	natsstore "github.com/gomonster/monster/store/nats"
)

func openErr(t *testing.T, url string, opts *natsstore.Options) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	s, err := natsstore.Open(ctx, url, opts)
	if err == nil {
		_ = s.Close()
		t.Fatalf("Open(%q) succeeded, want an error", url)
	}
	require.True(t, strings.HasPrefix(err.Error(), "monster: nats open"), "error %q", err)
	return err
}

func TestOpenRefusesBadURLs(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ url, want string }{
		{"nats://", "names no server"},
		{"nats://?replicas=3", "names no server"},
		{"nats://127.0.0.1:1?replicas=zero", `replicas="zero"`},
		{"nats://127.0.0.1:1?prefix=a.b", `prefix "a.b"`},
		{"nats://127.0.0.1:1?replicas=7", "7 replicas"},
		{"http://127.0.0.1:1", "does not start with nats://"},
	} {
		err := openErr(t, tc.url, nil)
		require.ErrorContains(t, err, tc.want, tc.url)
	}
}

func TestOpenUnreachableServer(t *testing.T) {
	t.Parallel()
	// A port nothing listens on: bound, then closed.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	require.NoError(t, l.Close())
	err = openErr(t, "nats://user:secret@"+addr, nil)
	require.ErrorContains(t, err, "cannot connect")
	require.ErrorContains(t, err, addr, "the error names the server")
	require.NotContains(t, err.Error(), "secret", "the error hides the password")
}

// A stream under the store's name that someone else made (other subjects,
// another storage, no marker) is refused, and left as it was.
func TestOpenRefusesForeignStreams(t *testing.T) {
	t.Parallel()
	url := single.get(t)
	nc, err := natsgo.Connect(url)
	require.NoError(t, err)
	defer nc.Close()
	js, err := jetstream.New(nc)
	require.NoError(t, err)
	ctx := context.Background()
	for _, tc := range []struct {
		name   string
		stream func(prefix string) jetstream.StreamConfig
		want   string
	}{
		{"other subjects", func(p string) jetstream.StreamConfig {
			return jetstream.StreamConfig{Name: p + "_events", Subjects: []string{p + ".orders.>"}}
		}, "monster_store"},
		{"memory storage", func(p string) jetstream.StreamConfig {
			return jetstream.StreamConfig{Name: p + "_events", Subjects: []string{p + ".ev.>", p + ".id.>", p + ".ik.>"},
				Storage: jetstream.MemoryStorage, AllowDirect: true, AllowAtomicPublish: true, DenyDelete: true, DenyPurge: true,
				Metadata: map[string]string{"monster_store": "events", "monster_store_version": "1"}}
		}, "storage Memory"},
		{"work queue", func(p string) jetstream.StreamConfig {
			return jetstream.StreamConfig{Name: p + "_events", Subjects: []string{p + ".ev.>", p + ".id.>", p + ".ik.>"},
				Retention: jetstream.WorkQueuePolicy, AllowDirect: true, AllowAtomicPublish: true,
				Metadata: map[string]string{"monster_store": "events", "monster_store_version": "1"}}
		}, "retention WorkQueue"},
		{"a bucket made by something else", func(p string) jetstream.StreamConfig {
			return jetstream.StreamConfig{Name: p + "_state", Subjects: []string{p + ".st.>"}, MaxMsgsPerSubject: 5}
		}, `stream "` + "%s" + `_state"`},
	} {
		prefix := newPrefix()
		cfg := tc.stream(prefix)
		_, err := js.CreateStream(ctx, cfg)
		require.NoError(t, err, tc.name)
		_, err = js.Publish(ctx, cfg.Subjects[0][:len(cfg.Subjects[0])-1]+"x", []byte("theirs"))
		require.NoError(t, err, tc.name)

		err = openErr(t, url+"?prefix="+prefix, nil)
		require.ErrorIs(t, err, store.ErrNotAStore, tc.name)
		want := tc.want
		if strings.Contains(want, "%s") {
			want = strings.ReplaceAll(want, "%s", prefix)
		}
		require.ErrorContains(t, err, want, tc.name)

		st, err := js.Stream(ctx, cfg.Name)
		require.NoError(t, err)
		info, err := st.Info(ctx)
		require.NoError(t, err)
		require.Equal(t, uint64(1), info.State.Msgs, "%s: the stream's message is still there", tc.name)
		require.Equal(t, cfg.Subjects, info.Config.Subjects, "%s: the stream is unchanged", tc.name)
	}
}

// The URL's parameters reach the store, and monster.Open takes nats://.
func TestOpenByURL(t *testing.T) {
	t.Parallel()
	prefix := newPrefix()
	ctx := context.Background()
	m, err := monster.Open(ctx, single.get(t)+"?prefix="+prefix, nil)
	require.NoError(t, err)
	ev, err := m.Log(ctx, "user.signed_up", map[string]string{"user": "gordon"})
	require.NoError(t, err)
	require.NoError(t, m.Close())

	s := openStore(t, single.get(t), prefix, nil)
	got, err := s.EventByID(ctx, ev.ID)
	require.NoError(t, err)
	require.Equal(t, "user.signed_up", got.Type)
	require.Equal(t, prefix, s.Prefix())
}

// An Append that needs more messages than the server lets one atomic batch
// hold fails whole, and says why; with Options.MaxBatchMessages it fails
// before anything is sent.
func TestAppendOverBatchLimit(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := openStore(t, single.get(t), newPrefix(), nil)
	events := make([]store.NewEvent, natsstore.ServerDefaultMaxBatch/2+1)
	for i := range events {
		events[i] = store.NewEvent{ID: fmt.Sprintf("bulk-%d", i), Type: "bulk.item", Time: time.Now().UTC(), Data: []byte(`1`)}
	}
	_, err := s.Append(ctx, events)
	require.ErrorContains(t, err, "refused the atomic batch as too large")
	require.ErrorContains(t, err, "1000", "the error names the server's limit")
	require.ErrorIs(t, err, store.ErrTooManyEvents, "the runtime splits its group commits on it")
	head, err := s.Head(ctx)
	require.NoError(t, err)
	require.Zero(t, head, "nothing is stored")

	limited := openStore(t, single.get(t), s.Prefix(), &natsstore.Options{MaxBatchMessages: 1000})
	_, err = limited.Append(ctx, events)
	require.ErrorContains(t, err, "1002 messages in one atomic batch, over the limit of 1000")
	require.ErrorIs(t, err, store.ErrTooManyEvents)

	// The largest that fits is stored whole.
	res, err := s.Append(ctx, events[:natsstore.ServerDefaultMaxBatch/2])
	require.NoError(t, err)
	got, err := s.Read(ctx, store.ReadParams{Limit: 1000})
	require.NoError(t, err)
	require.Len(t, got, len(res))
	require.Equal(t, res[len(res)-1].Event.Position, got[len(got)-1].Position)
}

// An idempotency key is honoured long after JetStream's duplicate window:
// the store's marker, not Nats-Msg-Id, finds the stored event.
func TestIdempotencyKeyAfterReopen(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	url, prefix := single.get(t), newPrefix()
	s := openStore(t, url, prefix, nil)
	ev := store.NewEvent{ID: "first", Type: "pay.captured", Time: time.Now().UTC(), Data: []byte(`5`), IdempotencyKey: "pay-5"}
	first, err := s.Append(ctx, []store.NewEvent{ev})
	require.NoError(t, err)
	require.NoError(t, s.Close())

	s = openStore(t, url, prefix, nil)
	ev.ID = "second"
	again, err := s.Append(ctx, []store.NewEvent{ev, {ID: "other", Type: "pay.captured", Time: time.Now().UTC(), Data: []byte(`6`)}})
	require.NoError(t, err)
	require.True(t, again[0].Duplicate)
	require.Equal(t, first[0].Event.Position, again[0].Event.Position)
	require.Equal(t, "first", again[0].Event.ID)
	require.False(t, again[1].Duplicate, "the batch's other event is stored")
	_, err = s.EventByID(ctx, "second")
	require.True(t, errors.Is(err, store.ErrNotFound), "the duplicate is not stored: %v", err)
}

func TestReadPathsAgree(t *testing.T) {
	t.Parallel()
	natsstore.CompareReadPaths(t, openStore(t, single.get(t), newPrefix(), nil))
	natsstore.CompareReadPaths(t, openStore(t, cluster.get(t)+"?replicas=3", newPrefix(), nil))
}

// An event over the server's max_payload is refused with an error naming
// the event and the setting, and nothing of its Append is stored.
func TestAppendOverMaxPayload(t *testing.T) {
	t.Parallel()
	servers, url, err := startServers(1, func(o *server.Options) { o.MaxPayload = 64 << 10 })
	t.Cleanup(func() {
		for _, s := range servers {
			s.Shutdown()
		}
	})
	require.NoError(t, err)
	s := openStore(t, url, newPrefix(), nil)
	ctx := context.Background()
	events := []store.NewEvent{
		{ID: "small", Type: "blob.small", Time: time.Now().UTC(), Data: []byte(`1`)},
		{ID: "large", Type: "blob.large", Time: time.Now().UTC(), Data: []byte(`"` + strings.Repeat("x", 64<<10) + `"`)},
	}
	_, err = s.Append(ctx, events)
	require.ErrorContains(t, err, `event "large" of type "blob.large"`)
	require.ErrorContains(t, err, "max_payload of 65536")
	head, err := s.Head(ctx)
	require.NoError(t, err)
	require.Zero(t, head)
}

// A server older than MinServerVersion is refused, naming both versions.
// The old server is a fake that speaks enough of the protocol to connect:
// it announces itself as the Debian package's 2.9.10.
func TestOpenRefusesOldServer(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	t.Cleanup(func() { _ = ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				_, _ = fmt.Fprintf(c, "INFO {\"server_id\":\"old\",\"version\":\"2.9.10\",\"proto\":1,\"headers\":true,\"max_payload\":1048576}\r\n")
				r := bufio.NewReader(c)
				for {
					line, err := r.ReadString('\n')
					if err != nil {
						return
					}
					if strings.HasPrefix(line, "PING") {
						_, _ = c.Write([]byte("PONG\r\n"))
					}
				}
			}()
		}
	}()
	err = openErr(t, "nats://"+ln.Addr().String(), nil)
	require.ErrorContains(t, err, "nats-server 2.9.10 is older than 2.12.0")
}

// More concurrent Log calls than one atomic batch can hold (the servers'
// default admits 500 events per Append): the group commit the store
// refuses as too large is committed in parts, and every call succeeds.
func TestConcurrentLogsBeyondTheBatchLimit(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := openStore(t, single.get(t), newPrefix(), nil)
	m := monster.New(s, &monster.Options{Logger: slog.New(slog.DiscardHandler)})
	t.Cleanup(func() { _ = m.Close() })
	const callers = 1200
	errs := make(chan error, callers)
	var wg sync.WaitGroup
	for i := range callers {
		wg.Go(func() {
			_, err := m.Log(ctx, "load.item", i)
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	counts, err := s.CountByType(ctx, 0)
	require.NoError(t, err)
	require.Equal(t, int64(callers), counts["load.item"], "every call's event is stored once")

	// One LogBatch over the limit cannot be split: it fails whole.
	entries := make([]monster.Entry, natsstore.ServerDefaultMaxBatch)
	for i := range entries {
		entries[i] = monster.Entry{Type: "bulk.item", Data: i}
	}
	_, err = m.LogBatch(ctx, entries)
	require.ErrorIs(t, err, store.ErrTooManyEvents)
	counts, err = s.CountByType(ctx, 0)
	require.NoError(t, err)
	require.Zero(t, counts["bulk.item"], "nothing of the refused batch is stored")
}
