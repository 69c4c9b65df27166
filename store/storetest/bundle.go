package storetest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/gomonster/monster"
	"github.com/gomonster/monster/monstertest"
	"github.com/gomonster/monster/store"
)

// waitTimeout bounds every wait for a condition. It is long, so that a slow
// machine (or -race) does not fail a correct store; a test that passes never
// waits for it.
const waitTimeout = 15 * time.Second

// Fast runtime timings for the guarantee tests.
const (
	pollInterval       = 10 * time.Millisecond
	leaseTTL           = 5 * time.Second // tests of expiry set their own
	checkpointInterval = 10 * time.Millisecond
)

// bundle is what one test works with: the harness, what the store can do and
// helpers that tie every store and Monster to the test's lifetime.
type bundle struct {
	t       *testing.T
	h       Harness
	sqlTx   bool // the store implements store.SQLTxAppender
	ctx     context.Context
	members atomic.Int64
	logs    *tailBuffer // the Monsters' operational messages
}

// ttl scales a lease TTL by the harness's TimeScale.
func (b *bundle) ttl(d time.Duration) time.Duration {
	return d * time.Duration(max(1, b.h.TimeScale))
}

func newBundle(t *testing.T, h Harness, sqlTx bool) *bundle {
	b := &bundle{t: t, h: h, sqlTx: sqlTx, ctx: t.Context(), logs: &tailBuffer{}}
	// Registered first, so it runs last, after every Monster has stopped.
	t.Cleanup(func() {
		if t.Failed() {
			if logs := b.logs.String(); logs != "" {
				t.Logf("storetest: the runtime's messages during the test:\n%s", logs)
			}
		}
	})
	return b
}

// tailBuffer keeps the last bytes written to it: the runtime's messages,
// shown only when a test fails (the tests break stores on purpose, and the
// warnings that follow are expected).
type tailBuffer struct {
	mu  sync.Mutex
	buf []byte
}

const tailBufferSize = 32 << 10

func (b *tailBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf = append(b.buf, p...)
	if len(b.buf) > tailBufferSize {
		b.buf = append(b.buf[:0], b.buf[len(b.buf)-tailBufferSize:]...)
	}
	return len(p), nil
}

func (b *tailBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return string(b.buf)
}

// open returns a fresh store, closed when the test ends.
func (b *bundle) open() store.Store {
	b.t.Helper()
	s := b.h.Open(b.t)
	require.NotNil(b.t, s, "storetest: Harness.Open returned nil")
	b.t.Cleanup(func() { _ = s.Close() })
	return s
}

// share returns another handle on the data of s (see Harness.Share), closed
// when the test ends.
func (b *bundle) share(s store.Store) store.Store {
	b.t.Helper()
	if b.h.Share == nil {
		return (&hookStore{inner: s, keepOpen: true}).wrap()
	}
	other := b.h.Share(b.t, s)
	require.NotNil(b.t, other, "storetest: Harness.Share returned nil")
	b.t.Cleanup(func() { _ = other.Close() })
	return other
}

// reopen closes s and opens its data again (see Harness.Reopen); it skips
// the test for a store that is not persistent.
func (b *bundle) reopen(s store.Store) store.Store {
	b.t.Helper()
	b.needPersistent()
	again := b.h.Reopen(b.t, s)
	require.NotNil(b.t, again, "storetest: Harness.Reopen returned nil")
	b.t.Cleanup(func() { _ = again.Close() })
	return again
}

func (b *bundle) needPersistent() {
	b.t.Helper()
	if b.h.Limits.NotPersistent {
		b.t.Skip("the store is not persistent (Harness.Limits.NotPersistent)")
	}
}

// keepOpen wraps s so that closing the wrapper (as Monster.Close does)
// leaves s open.
func keepOpen(s store.Store) store.Store {
	return (&hookStore{inner: s, keepOpen: true}).wrap()
}

// options fills in fast timings, a member ID unique in the test, and a
// logger that keeps the runtime's messages for a failure report.
func (b *bundle) options(o monster.Options) *monster.Options {
	if o.MemberID == "" {
		o.MemberID = fmt.Sprintf("member-%d", b.members.Add(1))
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.NewTextHandler(b.logs, nil)).With("member", o.MemberID)
	}
	if o.Output == nil {
		o.Output = io.Discard
	}
	if o.PollInterval == 0 {
		o.PollInterval = pollInterval
	}
	if o.LeaseTTL == 0 {
		o.LeaseTTL = leaseTTL
	}
	if o.CheckpointInterval == 0 {
		o.CheckpointInterval = checkpointInterval
	}
	if o.ShutdownTimeout == 0 {
		o.ShutdownTimeout = 5 * time.Second
	}
	return &o
}

// monster opens a Monster on st, closed (with st) when the test ends.
func (b *bundle) monster(st store.Store, o monster.Options) *monster.Monster {
	m := monster.New(st, b.options(o))
	b.t.Cleanup(func() { _ = m.Close() })
	return m
}

// start runs m's consumers in the background. The returned stop stops them
// gracefully (checkpoints saved, partitions released) and returns Stop's
// error; it runs at the end of the test if the test did not call it.
func (b *bundle) start(m *monster.Monster) (stop func() error) {
	b.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	require.NoError(b.t, m.Start(ctx))
	var once sync.Once
	var err error
	stop = func() error {
		once.Do(func() {
			stopCtx, stopCancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer stopCancel()
			err = m.Stop(stopCtx)
			cancel()
		})
		return err
	}
	b.t.Cleanup(func() { _ = stop() })
	return stop
}

// consume declares a consumer and fails the test if it cannot.
func (b *bundle) consume(m *monster.Monster, name string, h monster.Handler, o *monster.ConsumerOptions) {
	b.t.Helper()
	require.NoError(b.t, m.Consume(name, h, o))
}

// eventually waits until cond holds, polling, and fails the test after
// waitTimeout. It (or monstertest.EventuallyWithin, for waits that include
// a store reconnecting after an outage) is the only way the suite waits.
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	monstertest.EventuallyWithin(t, waitTimeout, what, cond)
}

// receive waits for a value on ch, failing the test after waitTimeout.
func receive[T any](t testing.TB, what string, ch <-chan T) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(waitTimeout):
		t.Fatalf("storetest: timed out after %v waiting for %s", waitTimeout, what)
		panic("unreachable")
	}
}

// newID returns a fresh event ID, a UUIDv7 as the runtime makes them.
func newID() string { return uuid.Must(uuid.NewV7()).String() }

// newEvent returns a NewEvent of type typ with JSON data, logged now.
// Times are cut to microseconds: the contract asks stores to keep times,
// and microseconds is what the common databases keep.
func newEvent(typ, data string) store.NewEvent {
	return store.NewEvent{ID: newID(), Type: typ, Time: time.Now().UTC().Truncate(time.Microsecond), Data: []byte(data)}
}

// newEvents returns n events of type typ with data 0, 1, ...
func newEvents(typ string, n int) []store.NewEvent {
	out := make([]store.NewEvent, n)
	for i := range out {
		out[i] = newEvent(typ, fmt.Sprint(i))
	}
	return out
}

// mustAppend appends events and returns the stored ones.
func mustAppend(t testing.TB, ctx context.Context, s store.Store, events ...store.NewEvent) []store.Event {
	t.Helper()
	res, err := s.Append(ctx, events)
	require.NoError(t, err)
	require.Len(t, res, len(events), "Append must return one result per event")
	out := make([]store.Event, len(res))
	for i, r := range res {
		out[i] = r.Event
	}
	return out
}

// readAll returns every event in the store.
func readAll(t testing.TB, ctx context.Context, s store.Store) []store.Event {
	t.Helper()
	var all []store.Event
	var after int64
	for {
		page, err := s.Read(ctx, store.ReadParams{After: after, Limit: 1000})
		require.NoError(t, err)
		if len(page) == 0 {
			return all
		}
		all = append(all, page...)
		after = page[len(page)-1].Position
	}
}

// sameJSON reports whether a and b are the same JSON value (object key
// order and spacing aside; numbers compared as written).
func sameJSON(a, b []byte) bool {
	decode := func(data []byte) (any, bool) {
		d := json.NewDecoder(bytes.NewReader(data))
		d.UseNumber()
		var v any
		if err := d.Decode(&v); err != nil {
			return nil, false
		}
		return v, !d.More()
	}
	va, okA := decode(a)
	vb, okB := decode(b)
	return okA && okB && reflect.DeepEqual(va, vb)
}

// requireSameJSON fails unless want and got are the same JSON value.
func requireSameJSON(t testing.TB, want, got []byte, what string) {
	t.Helper()
	if !sameJSON(want, got) {
		t.Fatalf("%s: got JSON %.200s, want %.200s", what, got, want)
	}
}

// requireSameTime fails unless got is want, to the microsecond.
func requireSameTime(t testing.TB, want, got time.Time, what string) {
	t.Helper()
	d := got.Sub(want)
	if d < -time.Microsecond || d > time.Microsecond {
		t.Fatalf("%s: got time %v, want %v", what, got, want)
	}
}

// requireStored checks that a stored event is what was appended.
func requireStored(t testing.TB, want store.NewEvent, got store.Event) {
	t.Helper()
	require.Equal(t, want.ID, got.ID, "ID")
	require.Equal(t, want.Type, got.Type, "Type of %s", want.ID)
	require.Equal(t, want.Key, got.Key, "Key of %s", want.ID)
	require.Equal(t, want.IdempotencyKey, got.IdempotencyKey, "IdempotencyKey of %s", want.ID)
	require.Positive(t, got.Position, "Position of %s", want.ID)
	requireSameTime(t, want.Time, got.Time, "Time of "+want.ID)
	require.Equal(t, time.UTC, got.Time.Location(), "Time of %s must be in UTC", want.ID)
	requireSameJSON(t, want.Data, got.Data, "Data of "+want.ID)
	if len(want.Meta) == 0 {
		require.Empty(t, got.Meta, "Meta of %s was not set", want.ID)
	} else {
		requireSameJSON(t, want.Meta, got.Meta, "Meta of "+want.ID)
	}
}

// requireSameEvent fails unless two reads of an event agree.
func requireSameEvent(t testing.TB, want, got store.Event) {
	t.Helper()
	require.Equal(t, want.ID, got.ID, "ID")
	require.Equal(t, want.Position, got.Position, "Position of %s", want.ID)
	require.Equal(t, want.Type, got.Type, "Type of %s", want.ID)
	require.Equal(t, want.Key, got.Key, "Key of %s", want.ID)
	require.Equal(t, want.IdempotencyKey, got.IdempotencyKey, "IdempotencyKey of %s", want.ID)
	requireSameTime(t, want.Time, got.Time, "Time of "+want.ID)
	requireSameJSON(t, want.Data, got.Data, "Data of "+want.ID)
	if len(want.Meta) == 0 {
		require.Empty(t, got.Meta, "Meta of %s", want.ID)
	} else {
		requireSameJSON(t, want.Meta, got.Meta, "Meta of "+want.ID)
	}
}

// requireMonsterError checks an error the store returns for a sentinel
// case: it matches the sentinel and its message starts with "monster: ".
func requireMonsterError(t testing.TB, err, sentinel error, what string) {
	t.Helper()
	require.Error(t, err, what)
	require.ErrorIs(t, err, sentinel, what)
	require.True(t, strings.HasPrefix(err.Error(), "monster: "), "%s: error message %q must start with \"monster: \"", what, err.Error())
}

// deliveries records what a consumer's handlers saw; safe for concurrent
// use.
type deliveries struct {
	mu     sync.Mutex
	events []monster.RawEvent // in the order handled
	count  map[string]int     // by event ID
}

func newDeliveries() *deliveries { return &deliveries{count: map[string]int{}} }

// handle is a handler that records the event and succeeds.
func (d *deliveries) handle(_ context.Context, e monster.RawEvent) error {
	d.add(e)
	return nil
}

func (d *deliveries) add(e monster.RawEvent) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.events = append(d.events, e)
	d.count[e.ID]++
}

// times returns how often the event was handled.
func (d *deliveries) times(id string) int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.count[id]
}

// distinct returns how many different events were handled.
func (d *deliveries) distinct() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.count)
}

// all returns a copy of the events handled, in order.
func (d *deliveries) all() []monster.RawEvent {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]monster.RawEvent(nil), d.events...)
}

// missing returns the ids not handled yet.
func (d *deliveries) missing(ids []string) []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	var out []string
	for _, id := range ids {
		if d.count[id] == 0 {
			out = append(out, id)
		}
	}
	return out
}

// waitFor waits until every id has been handled at least once.
func (d *deliveries) waitFor(t testing.TB, what string, ids []string) {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for {
		missing := d.missing(ids)
		if len(missing) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("storetest: timed out after %v waiting for %s: %d of %d events never handled (first: %s)",
				waitTimeout, what, len(missing), len(ids), missing[0])
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// idsOf returns the IDs of events.
func idsOf(events []monster.RawEvent) []string {
	out := make([]string, len(events))
	for i, e := range events {
		out[i] = e.ID
	}
	return out
}

// logN logs n events of type typ (data 0..n-1) and returns them.
func logN(t testing.TB, ctx context.Context, m *monster.Monster, typ string, n int, opts ...monster.LogOption) []monster.RawEvent {
	t.Helper()
	out := make([]monster.RawEvent, n)
	for i := range out {
		ev, err := m.Log(ctx, typ, i, opts...)
		require.NoError(t, err)
		out[i] = ev
	}
	return out
}

// logBatch logs n events of type typ (data 0..n-1, key(i) as key) in one
// batch and returns them.
func logBatch(t testing.TB, ctx context.Context, m *monster.Monster, typ string, n int, key func(i int) string) []monster.RawEvent {
	t.Helper()
	entries := make([]monster.Entry, n)
	for i := range entries {
		entries[i] = monster.Entry{Type: typ, Data: i, Key: key(i)}
	}
	events, err := m.LogBatch(ctx, entries)
	require.NoError(t, err)
	return events
}

// keyed returns event keys "key-0", "key-1", ...
func keyed(i int) string { return fmt.Sprintf("key-%d", i) }

// checkpoints returns a consumer's stored checkpoints by partition.
func checkpoints(t testing.TB, ctx context.Context, s store.Store, consumer string) []int64 {
	t.Helper()
	info, err := s.Consumer(ctx, consumer)
	require.NoError(t, err)
	out := make([]int64, len(info.Partitions))
	for i, p := range info.Partitions {
		out[i] = p.Checkpoint
	}
	return out
}

// caughtUp reports whether every partition of the consumer is checkpointed
// at or after position.
func caughtUp(ctx context.Context, s store.Store, consumer string, position int64) bool {
	info, err := s.Consumer(ctx, consumer)
	if err != nil || len(info.Partitions) == 0 {
		return false
	}
	for _, p := range info.Partitions {
		if p.Checkpoint < position {
			return false
		}
	}
	return true
}
