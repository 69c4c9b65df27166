package sqlite_test

import (
	"context"
	"fmt"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/gomonster/monster/store"
	"github.com/gomonster/monster/store/sqlite"
)

// openStore opens a store in a new file of t's temporary directory and
// closes it when the test ends.
func openStore(t *testing.T) (*sqlite.Store, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "monster.db")
	return openPath(t, path), path
}

func openPath(t *testing.T, path string) *sqlite.Store {
	t.Helper()
	s, err := sqlite.Open(context.Background(), path, nil)
	require.NoError(t, err)
	t.Cleanup(func() { s.Close() })
	return s
}

var eventSeq atomic.Int64

// newEvent returns an event with a unique ID, of the given type.
func newEvent(typ string) store.NewEvent {
	n := eventSeq.Add(1)
	return store.NewEvent{
		ID:   fmt.Sprintf("0190a6c0-0000-7000-8000-%012d", n),
		Type: typ,
		Time: time.Unix(1_700_000_000, n).UTC(),
		Data: []byte(fmt.Sprintf(`{"n":%d}`, n)),
	}
}

func newEvents(n int, typ string) []store.NewEvent {
	events := make([]store.NewEvent, n)
	for i := range events {
		events[i] = newEvent(typ)
	}
	return events
}

// appendAll appends events and returns the stored events.
func appendAll(t *testing.T, s store.Store, events []store.NewEvent) []store.Event {
	t.Helper()
	results, err := s.Append(context.Background(), events)
	require.NoError(t, err)
	require.Len(t, results, len(events))
	stored := make([]store.Event, len(results))
	for i, r := range results {
		stored[i] = r.Event
	}
	return stored
}

// readAll reads the whole log in pages of 7.
func readAll(t *testing.T, s store.Store) []store.Event {
	t.Helper()
	var all []store.Event
	var after int64
	for {
		page, err := s.Read(context.Background(), store.ReadParams{After: after, Limit: 7})
		require.NoError(t, err)
		if len(page) == 0 {
			return all
		}
		all = append(all, page...)
		after = page[len(page)-1].Position
	}
}

// stored turns a new event into the event the store should keep.
func stored(e store.NewEvent, position int64) store.Event {
	return store.Event{
		ID:             e.ID,
		Type:           e.Type,
		Position:       position,
		Time:           e.Time,
		Key:            e.Key,
		Data:           e.Data,
		Meta:           e.Meta,
		IdempotencyKey: e.IdempotencyKey,
	}
}
