package storetest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/gomonster/monster"
)

// BadInput: malformed JSON, oversized events and bad type names are
// refused with clear errors (the sentinel, "monster: ", the value at
// fault); the events and checkpoints stored before are intact afterwards,
// and the consumer goes on.
func testRejectedWithoutCorruption(t *testing.T, b *bundle) {
	ctx, s := b.ctx, b.open()
	m := b.monster(s, monster.Options{MaxEventSize: 1024})
	d := newDeliveries()
	b.consume(m, "c", monster.Match("*", d.handle), &monster.ConsumerOptions{Partitions: 2})
	b.start(m)
	good := logN(t, ctx, m, "good.event", 5)
	d.waitFor(t, "the good events", idsOf(good))
	eventually(t, "checkpoints", func() bool { return caughtUp(ctx, s, "c", good[4].Position) })
	before := readAll(t, ctx, s)
	checkpointsBefore := checkpoints(t, ctx, s, "c")

	for _, tc := range []struct {
		name string
		typ  string
		data any
		opts []monster.LogOption
		want error
		text string
	}{
		{"malformed raw JSON", "bad.input", json.RawMessage(`{"a":`), nil, monster.ErrEncoding, "not valid JSON"},
		{"empty raw JSON", "bad.input", json.RawMessage(nil), nil, monster.ErrEncoding, `"bad.input"`},
		{"raw JSON with trailing garbage", "bad.input", json.RawMessage(`{"a":1} x`), nil, monster.ErrEncoding, `"bad.input"`},
		{"malformed JSON inside a value", "bad.input", map[string]any{"a": json.RawMessage(`[1,`)}, nil, monster.ErrEncoding, `"bad.input"`},
		{"value JSON cannot encode", "bad.input", make(chan int), nil, monster.ErrEncoding, "chan int"},
		{"NaN", "bad.input", math.NaN(), nil, monster.ErrEncoding, "NaN"},
		{"oversized data", "bad.input", strings.Repeat("x", 2000), nil, monster.ErrTooLarge, "over the limit of 1024"},
		{"oversized meta", "bad.input", 1, []monster.LogOption{monster.WithMeta("blob", strings.Repeat("y", 2000))}, monster.ErrTooLarge, "over the limit of 1024"},
		{"empty type", "", 1, nil, monster.ErrInvalidName, "event type is empty"},
		{"malformed type", "user..bought", 1, nil, monster.ErrInvalidName, `"user..bought"`},
		{"type with a space", "user bought", 1, nil, monster.ErrInvalidName, `"user bought"`},
		{"type with a slash", "user/bought", 1, nil, monster.ErrInvalidName, `"user/bought"`},
		{"type with invalid UTF-8", "user.\xff", 1, nil, monster.ErrInvalidName, "user."},
		{"overlong type", strings.Repeat("a", 300), 1, nil, monster.ErrInvalidName, "longer than"},
	} {
		_, err := m.Log(ctx, tc.typ, tc.data, tc.opts...)
		require.ErrorIs(t, err, tc.want, tc.name)
		require.True(t, strings.HasPrefix(err.Error(), "monster: "), "%s: %q must start with \"monster: \"", tc.name, err.Error())
		require.Contains(t, err.Error(), tc.text, tc.name)
	}
	_, err := m.LogBatch(ctx, []monster.Entry{{Type: "good.event", Data: 6}, {Type: "bad.input", Data: json.RawMessage(`{`)}})
	require.ErrorIs(t, err, monster.ErrEncoding, "a batch with one bad entry")
	require.Contains(t, err.Error(), "batch entry 1")

	after := readAll(t, ctx, s)
	require.Len(t, after, len(before), "bad input stored nothing")
	for i := range before {
		requireSameEvent(t, before[i], after[i])
	}
	require.Equal(t, checkpointsBefore, checkpoints(t, ctx, s, "c"), "checkpoints are intact")
	later := logN(t, ctx, m, "good.event", 1)[0]
	d.waitFor(t, "the consumer to go on", []string{later.ID})
	require.Equal(t, 6, d.distinct(), "only good events were delivered")
}

// BadInput, and the store's side of oversized events: an event of exactly
// the default Options.MaxEventSize (1 MiB) is stored and delivered intact;
// one byte more is refused before it reaches the store.
func testLargestEventRoundTrips(t *testing.T, b *bundle) {
	const limit = 1 << 20
	ctx, s := b.ctx, b.open()
	m := b.monster(s, monster.Options{})
	var delivered atomic.Int64
	b.consume(m, "c", monster.Match("blob.*", func(_ context.Context, e monster.RawEvent) error {
		delivered.Store(int64(len(e.Data)))
		return nil
	}), nil)
	b.start(m)
	big := strings.Repeat("x", limit-2) // a JSON string of limit bytes with its quotes
	ev, err := m.Log(ctx, "blob.large", big)
	require.NoError(t, err, "an event of exactly MaxEventSize must be accepted and stored")
	got, err := s.EventByID(ctx, ev.ID)
	require.NoError(t, err)
	require.Len(t, got.Data, limit)
	require.True(t, sameJSON([]byte(`"`+big+`"`), got.Data), "the large event's data changed")
	eventually(t, "the large event to be delivered", func() bool { return delivered.Load() == limit })

	_, err = m.Log(ctx, "blob.large", big+"x")
	require.ErrorIs(t, err, monster.ErrTooLarge)
	require.Len(t, readAll(t, ctx, s), 1)
}

// BadInput: JSON that is valid but unusual (NUL escapes, invalid UTF-8
// in strings, huge numbers, duplicate keys, deep nesting, spacing) is either
// refused with ErrEncoding or ErrInvalid, or stored and read back as the
// same JSON value; either way the log stays intact.
func testOddButValidJSON(t *testing.T, b *bundle) {
	ctx, s := b.ctx, b.open()
	m := b.monster(s, monster.Options{})
	accepted := 0
	for _, data := range []string{
		`"\u0000 nul"`,
		"\"\xff\xfe not UTF-8\"",
		`1e400`,
		`123456789012345678901234567890`,
		`-0`,
		`0.10`,
		`{"z":1,"a":{"b":[1,[2,[3,{}]]]}}`,
		`{"a":1,"a":2}`,
		`"😀 \u00e9 \ud83d\ude00"`,
		`[]`,
		`null`,
		`{"key with spaces":"\"quoted\" \\ back\nslash \u2028"}`,
		" {\"padded\" :\n true} ",
	} {
		ev, err := m.Log(ctx, "odd.json", json.RawMessage(data))
		if err != nil {
			require.True(t, errors.Is(err, monster.ErrEncoding) || errors.Is(err, monster.ErrInvalid),
				"JSON %q must be stored or refused as bad input, not fail with %v", data, err)
			continue
		}
		accepted++
		got, err := s.EventByID(ctx, ev.ID)
		require.NoError(t, err)
		require.True(t, sameJSON([]byte(data), got.Data), "JSON %q was stored as %q", data, got.Data)
		require.True(t, sameJSON([]byte(data), ev.Data), "JSON %q was returned by Log as %q", data, ev.Data)
	}
	require.Positive(t, accepted)
	require.Len(t, readAll(t, ctx, s), accepted, "only accepted events are stored")
	_, err := m.Log(ctx, "odd.json", "plain")
	require.NoError(t, err, "the log works after odd input")
}

// BadInput: a broken store (a full disk for writes, an unreachable one
// for the consumer's reads, leases and checkpoints) gives the caller clear
// errors and corrupts nothing; when it recovers, the consumer goes on from
// its checkpoints and handles every committed event.
func testBrokenStoreRecovers(t *testing.T, b *bundle) {
	ctx, s := b.ctx, b.open()
	errDiskFull := errors.New("storetest: no space left on device")
	errUnreachable := errors.New("storetest: store unreachable")
	var appendBroken, consumerBroken atomic.Bool
	var failedBeats atomic.Int64
	broken := &hookStore{inner: s, before: func(_ context.Context, method string) error {
		if appendBroken.Load() && method == "Append" {
			return fmt.Errorf("monster: store append: %w", errDiskFull)
		}
		if consumerBroken.Load() && method != "Append" {
			if method == "Heartbeat" {
				failedBeats.Add(1)
			}
			return errUnreachable
		}
		return nil
	}}
	ttl := b.ttl(300 * time.Millisecond)
	m := b.monster(broken.wrap(), monster.Options{LeaseTTL: ttl})
	d := newDeliveries()
	b.consume(m, "c", monster.Match("*", d.handle), &monster.ConsumerOptions{Partitions: 2, Concurrency: 2})
	b.start(m)
	logged := logN(t, ctx, m, "steady.event", 5)
	d.waitFor(t, "the first events", idsOf(logged))
	eventually(t, "checkpoints", func() bool { return caughtUp(ctx, s, "c", logged[4].Position) })

	appendBroken.Store(true)
	_, err := m.Log(ctx, "steady.event", 99)
	require.ErrorIs(t, err, errDiskFull, "the store's error reaches the caller")
	require.Contains(t, err.Error(), "no space left on device")
	_, err = m.LogBatch(ctx, []monster.Entry{{Type: "steady.event", Data: 1}, {Type: "steady.event", Data: 2}})
	require.ErrorIs(t, err, errDiskFull)
	head, err := s.Head(ctx)
	require.NoError(t, err)
	require.Equal(t, logged[4].Position, head, "failed appends stored nothing")
	appendBroken.Store(false)
	logged = append(logged, logN(t, ctx, m, "steady.event", 3)...)

	consumerBroken.Store(true)
	logged = append(logged, logN(t, ctx, m, "steady.event", 5)...)
	eventually(t, "the consumer to go more than a lease TTL without its store", func() bool { return failedBeats.Load() >= 4 })
	consumerBroken.Store(false)

	d.waitFor(t, "every event once the store recovers", idsOf(logged))
	last := logged[len(logged)-1].Position
	eventually(t, "the checkpoints to reach the last event", func() bool { return caughtUp(ctx, s, "c", last) })
	all := readAll(t, ctx, s)
	require.Len(t, all, len(logged), "the store holds exactly the committed events")
	for i, ev := range logged {
		require.Equal(t, ev.ID, all[i].ID)
		requireLogged(t, ev, all[i])
	}
}
