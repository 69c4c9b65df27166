package storetest

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/gomonster/monster/store"
)

// deadLetter returns a dead letter of consumer for an event at position.
func deadLetter(consumer, eventID string, position int64) store.DeadLetter {
	return store.DeadLetter{
		Consumer: consumer, EventID: eventID, Type: "order.placed", Position: position,
		Partition: int(position % 4), Attempts: int(position), Error: "storetest: handler failed at " + eventID,
		FailedAt: time.Now().UTC().Truncate(time.Millisecond),
	}
}

// deadLetterFixture registers consumers "c1" (dead letters at positions 10,
// 20, 30, added out of order) and "c2" (one at 10, for the same event as
// c1's), and returns c1's, in position order.
func deadLetterFixture(t testing.TB, ctx context.Context, s store.Store) []store.DeadLetter {
	t.Helper()
	register(t, ctx, s, "c1", 4, 0)
	register(t, ctx, s, "c2", 4, 0)
	dls := []store.DeadLetter{deadLetter("c1", newID(), 10), deadLetter("c1", newID(), 20), deadLetter("c1", newID(), 30)}
	for _, i := range []int{2, 0, 1} {
		require.NoError(t, s.AddDeadLetter(ctx, dls[i]))
	}
	shared := dls[0]
	shared.Consumer = "c2"
	require.NoError(t, s.AddDeadLetter(ctx, shared))
	return dls
}

// listDead lists a consumer's dead letters.
func listDead(t testing.TB, ctx context.Context, s store.Store, consumer string, q store.DeadLetterQuery) []store.DeadLetter {
	t.Helper()
	q.Consumer = consumer
	dls, err := s.DeadLetters(ctx, q)
	require.NoError(t, err)
	return dls
}

// deadIDs returns the event IDs of dead letters.
func deadIDs(dls []store.DeadLetter) []string {
	out := []string{}
	for _, dl := range dls {
		out = append(out, dl.EventID)
	}
	return out
}

// requireSameDeadLetter compares every field of two dead letters.
func requireSameDeadLetter(t testing.TB, want, got store.DeadLetter) {
	t.Helper()
	requireSameTime(t, want.FailedAt, got.FailedAt, "FailedAt of dead letter "+want.EventID)
	want.FailedAt, got.FailedAt = time.Time{}, time.Time{}
	require.Equal(t, want, got)
}

// AddDeadLetter stores dead letters per consumer, replacing one for the same
// event; DeadLetters lists them in position order, filtered by the query.
func testDeadLetters(t *testing.T, b *bundle) {
	ctx, s := b.ctx, b.open()
	dls := deadLetterFixture(t, ctx, s)

	got := listDead(t, ctx, s, "c1", store.DeadLetterQuery{})
	require.Len(t, got, 3)
	for i := range dls {
		requireSameDeadLetter(t, dls[i], got[i])
	}
	require.Equal(t, []string{dls[0].EventID}, deadIDs(listDead(t, ctx, s, "c2", store.DeadLetterQuery{})), "dead letters belong to one consumer")
	info, err := s.Consumer(ctx, "c1")
	require.NoError(t, err)
	require.EqualValues(t, 3, info.DeadLetters)

	id := func(i int) string { return dls[i].EventID }
	require.Equal(t, []string{id(1), id(2)}, deadIDs(listDead(t, ctx, s, "c1", store.DeadLetterQuery{AfterPosition: 10})))
	require.Equal(t, []string{id(0), id(1)}, deadIDs(listDead(t, ctx, s, "c1", store.DeadLetterQuery{Limit: 2})))
	require.Equal(t, []string{id(1)}, deadIDs(listDead(t, ctx, s, "c1", store.DeadLetterQuery{AfterPosition: 10, Limit: 1})))
	require.Empty(t, listDead(t, ctx, s, "c1", store.DeadLetterQuery{AfterPosition: 30}))
	require.Empty(t, listDead(t, ctx, s, "c1", store.DeadLetterQuery{RetryRequested: true}))

	// Replacing: the event failed again after a retry was requested.
	n, err := s.RequestRetry(ctx, store.DeadLetterSelection{Consumer: "c1", IDs: []string{id(1)}})
	require.NoError(t, err)
	require.Equal(t, 1, n)
	require.Equal(t, []string{id(1)}, deadIDs(listDead(t, ctx, s, "c1", store.DeadLetterQuery{RetryRequested: true})))
	again := dls[1]
	again.Attempts, again.Error = 7, "storetest: failed again"
	again.FailedAt = again.FailedAt.Add(time.Minute)
	require.NoError(t, s.AddDeadLetter(ctx, again))
	got = listDead(t, ctx, s, "c1", store.DeadLetterQuery{})
	require.Len(t, got, 3, "a dead letter for the same event replaces the old one")
	requireSameDeadLetter(t, again, got[1])
	require.Empty(t, listDead(t, ctx, s, "c1", store.DeadLetterQuery{RetryRequested: true}), "replacing clears RetryRequested")

	_, err = s.DeadLetters(ctx, store.DeadLetterQuery{Consumer: "nope"})
	requireMonsterError(t, err, store.ErrNotFound, "DeadLetters of an unknown consumer")
	require.Error(t, s.AddDeadLetter(ctx, deadLetter("nope", newID(), 1)), "AddDeadLetter for an unknown consumer")
}

// RequestRetry marks the named dead letters, or all; an unknown ID marks
// none and returns ErrNotFound.
func testRequestRetry(t *testing.T, b *bundle) {
	ctx, s := b.ctx, b.open()
	dls := deadLetterFixture(t, ctx, s)
	id := func(i int) string { return dls[i].EventID }
	marked := func(consumer string) []string {
		return deadIDs(listDead(t, ctx, s, consumer, store.DeadLetterQuery{RetryRequested: true}))
	}

	n, err := s.RequestRetry(ctx, store.DeadLetterSelection{Consumer: "c1", IDs: []string{id(0), id(2)}})
	require.NoError(t, err)
	require.Equal(t, 2, n)
	require.Equal(t, []string{id(0), id(2)}, marked("c1"))
	require.Empty(t, marked("c2"), "marking is per consumer")

	n, err = s.RequestRetry(ctx, store.DeadLetterSelection{Consumer: "c1", IDs: []string{id(1), newID()}})
	requireMonsterError(t, err, store.ErrNotFound, "RequestRetry naming an unknown dead letter")
	require.Zero(t, n)
	require.Equal(t, []string{id(0), id(2)}, marked("c1"), "a failed RequestRetry marks none")

	n, err = s.RequestRetry(ctx, store.DeadLetterSelection{Consumer: "c1", IDs: []string{}})
	require.NoError(t, err)
	require.Zero(t, n, "an empty, non-nil list names no dead letter")
	require.Equal(t, []string{id(0), id(2)}, marked("c1"))

	n, err = s.RequestRetry(ctx, store.DeadLetterSelection{Consumer: "c1", IDs: []string{id(1), id(1)}})
	require.NoError(t, err)
	require.Equal(t, 1, n, "an ID named twice is one dead letter marked")

	require.NoError(t, s.AddDeadLetter(ctx, dls[1])) // unmark it again
	n, err = s.RequestRetry(ctx, store.DeadLetterSelection{Consumer: "c1", IDs: nil})
	require.NoError(t, err)
	require.Equal(t, 3, n, "nil marks every dead letter of the consumer")
	require.Equal(t, []string{id(0), id(1), id(2)}, marked("c1"))
	require.Empty(t, marked("c2"))

	_, err = s.RequestRetry(ctx, store.DeadLetterSelection{Consumer: "nope", IDs: nil})
	requireMonsterError(t, err, store.ErrNotFound, "RequestRetry on an unknown consumer")
}

// DeleteDeadLetters removes the named dead letters, or all; an unknown ID
// removes none and returns ErrNotFound.
func testDeleteDeadLetters(t *testing.T, b *bundle) {
	ctx, s := b.ctx, b.open()
	dls := deadLetterFixture(t, ctx, s)
	id := func(i int) string { return dls[i].EventID }
	left := func(consumer string) []string {
		return deadIDs(listDead(t, ctx, s, consumer, store.DeadLetterQuery{}))
	}

	n, err := s.DeleteDeadLetters(ctx, store.DeadLetterSelection{Consumer: "c1", IDs: []string{id(1), newID()}})
	requireMonsterError(t, err, store.ErrNotFound, "DeleteDeadLetters naming an unknown dead letter")
	require.Zero(t, n)
	require.Equal(t, []string{id(0), id(1), id(2)}, left("c1"), "a failed delete removes none")

	n, err = s.DeleteDeadLetters(ctx, store.DeadLetterSelection{Consumer: "c1", IDs: []string{id(1)}})
	require.NoError(t, err)
	require.Equal(t, 1, n)
	require.Equal(t, []string{id(0), id(2)}, left("c1"))
	info, err := s.Consumer(ctx, "c1")
	require.NoError(t, err)
	require.EqualValues(t, 2, info.DeadLetters)

	n, err = s.DeleteDeadLetters(ctx, store.DeadLetterSelection{Consumer: "c1", IDs: []string{id(0), id(0)}})
	require.NoError(t, err)
	require.Equal(t, 1, n, "an ID named twice is one dead letter removed")
	require.Equal(t, []string{id(2)}, left("c1"))

	n, err = s.DeleteDeadLetters(ctx, store.DeadLetterSelection{Consumer: "c1", IDs: nil})
	require.NoError(t, err)
	require.Equal(t, 1, n, "nil removes every dead letter of the consumer")
	require.Empty(t, left("c1"))
	require.Equal(t, []string{id(0)}, left("c2"), "deleting is per consumer")

	_, err = s.DeleteDeadLetters(ctx, store.DeadLetterSelection{Consumer: "c1", IDs: []string{id(0)}})
	requireMonsterError(t, err, store.ErrNotFound, "deleting a dead letter that is gone")
	_, err = s.DeleteDeadLetters(ctx, store.DeadLetterSelection{Consumer: "nope", IDs: nil})
	requireMonsterError(t, err, store.ErrNotFound, "DeleteDeadLetters on an unknown consumer")
}
