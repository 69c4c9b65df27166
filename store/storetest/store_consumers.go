package storetest

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/gomonster/monster/store"
)

// register registers a consumer and fails the test if it cannot.
func register(t testing.TB, ctx context.Context, s store.Store, name string, partitions int, start int64) store.ConsumerInfo {
	t.Helper()
	info, err := s.RegisterConsumer(ctx, store.ConsumerSpec{Name: name, Types: []string{"*"}, Partitions: partitions, Start: start})
	require.NoError(t, err)
	return info
}

// claim claims partitions and returns the numbers of those held after.
func claim(t testing.TB, ctx context.Context, s store.Store, consumer, member string, partitions []int, expires, now time.Time) []int {
	t.Helper()
	held, err := s.Claim(ctx, store.ClaimParams{Consumer: consumer, Member: member, Partitions: partitions, Expires: expires, Now: now})
	require.NoError(t, err)
	out := []int{}
	for i, p := range held {
		if i > 0 {
			require.Greater(t, p.Partition, held[i-1].Partition, "Claim returns partitions sorted")
		}
		require.Equal(t, member, p.Owner, "Claim returns only the member's partitions")
		out = append(out, p.Partition)
	}
	return out
}

// owners returns each partition's owner.
func owners(t testing.TB, ctx context.Context, s store.Store, consumer string) []string {
	t.Helper()
	info, err := s.Consumer(ctx, consumer)
	require.NoError(t, err)
	out := make([]string, len(info.Partitions))
	for i, p := range info.Partitions {
		require.Equal(t, i, p.Partition, "Consumer lists partitions in order")
		out[i] = p.Owner
	}
	return out
}

// RegisterConsumer creates a consumer with every checkpoint at Start,
// updates only Types when it exists, and refuses another partition count.
func testRegisterConsumer(t *testing.T, b *bundle) {
	ctx, s := b.ctx, b.open()
	_, err := s.Consumer(ctx, "mailer")
	requireMonsterError(t, err, store.ErrNotFound, "Consumer before registration")

	before := time.Now()
	info, err := s.RegisterConsumer(ctx, store.ConsumerSpec{Name: "mailer", Types: []string{"user.*", "order.placed"}, Partitions: 4, Start: 7})
	require.NoError(t, err)
	require.Equal(t, "mailer", info.Name)
	require.Equal(t, []string{"user.*", "order.placed"}, info.Types)
	require.WithinDuration(t, before, info.Created, time.Minute, "Created is when the consumer was registered")
	require.Zero(t, info.DeadLetters)
	require.Len(t, info.Partitions, 4)
	for i, p := range info.Partitions {
		require.Equal(t, store.PartitionInfo{Partition: i, Checkpoint: 7}, store.PartitionInfo{
			Partition: p.Partition, Checkpoint: p.Checkpoint, Owner: p.Owner, Failures: p.Failures, InFlight: p.InFlight,
		}, "partition %d of a new consumer", i)
	}
	got, err := s.Consumer(ctx, "mailer")
	require.NoError(t, err)
	require.Equal(t, info.Name, got.Name)
	require.Equal(t, info.Types, got.Types)
	require.True(t, info.Created.Equal(got.Created), "Created is kept")
	require.Equal(t, info.Partitions, got.Partitions)

	// Progress made, then the consumer registers again (a restart).
	now := time.Now()
	claim(t, ctx, s, "mailer", "m1", []int{0}, now.Add(time.Minute), now)
	require.NoError(t, s.SaveCheckpoints(ctx, store.SaveCheckpointsParams{Consumer: "mailer", Member: "m1", Checkpoints: []store.Checkpoint{{Partition: 0, Position: 12}}}))
	again, err := s.RegisterConsumer(ctx, store.ConsumerSpec{Name: "mailer", Types: []string{"user.*"}, Partitions: 4, Start: 99})
	require.NoError(t, err)
	require.Equal(t, []string{"user.*"}, again.Types, "registering again updates Types")
	require.True(t, info.Created.Equal(again.Created), "registering again keeps Created")
	require.Equal(t, []int64{12, 7, 7, 7}, checkpoints(t, ctx, s, "mailer"), "registering again keeps checkpoints; Start applies only to a new consumer")

	_, err = s.RegisterConsumer(ctx, store.ConsumerSpec{Name: "mailer", Types: []string{"other.*"}, Partitions: 8, Start: 0})
	requireMonsterError(t, err, store.ErrConflict, "registering with another partition count")
	got, err = s.Consumer(ctx, "mailer")
	require.NoError(t, err)
	require.Len(t, got.Partitions, 4, "a conflicting registration changes nothing")
	require.Equal(t, []string{"user.*"}, got.Types, "a conflicting registration changes nothing")

	// Specs no store may accept (store.ValidateConsumerSpec): nothing is
	// registered.
	for _, bad := range []store.ConsumerSpec{
		{Name: "", Partitions: 1},
		{Name: "no-partitions", Partitions: 0},
		{Name: "negative-start", Partitions: 2, Start: -1},
	} {
		_, err := s.RegisterConsumer(ctx, bad)
		require.Error(t, err, "registering %+v", bad)
		require.True(t, strings.HasPrefix(err.Error(), "monster: "), "error %q must start with \"monster: \"", err)
		if bad.Name != "" {
			_, err = s.Consumer(ctx, bad.Name)
			requireMonsterError(t, err, store.ErrNotFound, "a refused registration stores nothing")
		}
	}

	register(t, ctx, s, "b-consumer", 1, 0)
	register(t, ctx, s, "a-consumer", 2, 0)
	all, err := s.Consumers(ctx)
	require.NoError(t, err)
	var names []string
	for _, c := range all {
		names = append(names, c.Name)
	}
	require.Equal(t, []string{"a-consumer", "b-consumer", "mailer"}, names, "Consumers are ordered by name")
	require.Len(t, all[0].Partitions, 2)
}

// DeleteConsumer removes a consumer with its state; a new one of the same
// name starts fresh.
func testDeleteConsumer(t *testing.T, b *bundle) {
	ctx, s := b.ctx, b.open()
	requireMonsterError(t, s.DeleteConsumer(ctx, "nope"), store.ErrNotFound, "DeleteConsumer of an unknown consumer")

	now := time.Now()
	for _, name := range []string{"doomed", "kept"} {
		register(t, ctx, s, name, 2, 0)
		_, err := s.Heartbeat(ctx, store.HeartbeatParams{Consumer: name, Member: "m1", Expires: now.Add(time.Minute), Now: now})
		require.NoError(t, err)
		claim(t, ctx, s, name, "m1", []int{0, 1}, now.Add(time.Minute), now)
		require.NoError(t, s.SaveCheckpoints(ctx, store.SaveCheckpointsParams{Consumer: name, Member: "m1", Checkpoints: []store.Checkpoint{{Partition: 0, Position: 5, FailuresDelta: 2}}}))
		require.NoError(t, s.AddDeadLetter(ctx, deadLetter(name, newID(), 3)))
	}

	require.NoError(t, s.DeleteConsumer(ctx, "doomed"))
	_, err := s.Consumer(ctx, "doomed")
	requireMonsterError(t, err, store.ErrNotFound, "Consumer after DeleteConsumer")
	_, err = s.DeadLetters(ctx, store.DeadLetterQuery{Consumer: "doomed"})
	requireMonsterError(t, err, store.ErrNotFound, "DeadLetters after DeleteConsumer")
	requireMonsterError(t, s.DeleteConsumer(ctx, "doomed"), store.ErrNotFound, "deleting twice")
	all, err := s.Consumers(ctx)
	require.NoError(t, err)
	require.Len(t, all, 1)
	require.Equal(t, "kept", all[0].Name)
	require.EqualValues(t, 1, all[0].DeadLetters, "other consumers keep their state")
	require.Equal(t, []int64{5, 0}, checkpoints(t, ctx, s, "kept"))

	info := register(t, ctx, s, "doomed", 3, 9)
	require.Len(t, info.Partitions, 3)
	require.Zero(t, info.DeadLetters, "a re-created consumer has no dead letters")
	for _, p := range info.Partitions {
		require.Equal(t, int64(9), p.Checkpoint)
		require.Empty(t, p.Owner, "a re-created consumer has no leases")
		require.Zero(t, p.Failures)
	}
	members, err := s.Heartbeat(ctx, store.HeartbeatParams{Consumer: "doomed", Member: "m2", Expires: now.Add(time.Minute), Now: now})
	require.NoError(t, err)
	require.Equal(t, []string{"m2"}, members, "a re-created consumer has no members")
}

// Heartbeat records live members, forgets expired ones, and returns the
// live ones sorted, per consumer.
func testHeartbeat(t *testing.T, b *bundle) {
	ctx, s := b.ctx, b.open()
	register(t, ctx, s, "c", 2, 0)
	register(t, ctx, s, "other", 2, 0)
	now := time.Now()
	at := func(d time.Duration) time.Time { return now.Add(d) }
	beat := func(member string, expires, now time.Time) []string {
		t.Helper()
		members, err := s.Heartbeat(ctx, store.HeartbeatParams{Consumer: "c", Member: member, Expires: expires, Now: now})
		require.NoError(t, err)
		return members
	}
	require.Equal(t, []string{"m-b"}, beat("m-b", at(10*time.Second), at(0)))
	require.Equal(t, []string{"m-a", "m-b"}, beat("m-a", at(time.Second), at(0)))
	require.Equal(t, []string{"m-b", "m-c"}, beat("m-c", at(20*time.Second), at(5*time.Second)), "m-a expired at +1s")
	require.Equal(t, []string{"m-a", "m-b", "m-c"}, beat("m-a", at(30*time.Second), at(6*time.Second)), "a member may come back")
	require.Equal(t, []string{"m-a", "m-c"}, beat("m-c", at(40*time.Second), at(25*time.Second)), "m-b expired at +10s")

	members, err := s.Heartbeat(ctx, store.HeartbeatParams{Consumer: "other", Member: "x", Expires: at(time.Minute), Now: at(0)})
	require.NoError(t, err)
	require.Equal(t, []string{"x"}, members, "members belong to one consumer")
	_, err = s.Heartbeat(ctx, store.HeartbeatParams{Consumer: "nope", Member: "x", Expires: at(time.Minute), Now: at(0)})
	requireMonsterError(t, err, store.ErrNotFound, "Heartbeat of an unknown consumer")
}

// Claim takes free, expired and own partitions, never another member's
// live one, renews the member's own, and returns all the member holds.
func testClaim(t *testing.T, b *bundle) {
	ctx, s := b.ctx, b.open()
	register(t, ctx, s, "c", 4, 5)
	now := time.Now()
	at := func(d time.Duration) time.Time { return now.Add(d) }

	held, err := s.Claim(ctx, store.ClaimParams{Consumer: "c", Member: "a", Partitions: []int{0, 1}, Expires: at(10 * time.Second), Now: at(0)})
	require.NoError(t, err)
	require.Len(t, held, 2)
	for i, p := range held {
		require.Equal(t, i, p.Partition)
		require.Equal(t, "a", p.Owner)
		require.Equal(t, int64(5), p.Checkpoint, "Claim returns the checkpoint")
		requireSameTime(t, at(10*time.Second), p.LeaseExpires, "LeaseExpires")
	}

	require.Equal(t, []int{2}, claim(t, ctx, s, "c", "b", []int{1, 2}, at(30*time.Second), at(0)), "partition 1 is a's, live")
	require.Equal(t, []int{0, 1}, claim(t, ctx, s, "c", "a", []int{0}, at(20*time.Second), at(time.Second)), "Claim returns every partition held, claimed now or not")
	info, err := s.Consumer(ctx, "c")
	require.NoError(t, err)
	requireSameTime(t, at(20*time.Second), info.Partitions[0].LeaseExpires, "a renewed its own partition 0")
	requireSameTime(t, at(10*time.Second), info.Partitions[1].LeaseExpires, "partition 1 was not renewed")
	require.Equal(t, []int{0, 1}, claim(t, ctx, s, "c", "a", nil, at(time.Hour), at(time.Second)), "claiming nothing returns what is held")

	// At +15s a's lease on partition 1 has expired; b's on 2 has not.
	require.Equal(t, []int{1, 2}, claim(t, ctx, s, "c", "b", []int{1}, at(40*time.Second), at(15*time.Second)), "an expired lease can be claimed")
	require.Equal(t, []int{0}, claim(t, ctx, s, "c", "a", []int{1, 2}, at(40*time.Second), at(15*time.Second)), "b's leases are live")
	require.Equal(t, []string{"a", "b", "b", ""}, owners(t, ctx, s, "c"))

	_, err = s.Claim(ctx, store.ClaimParams{Consumer: "nope", Member: "a", Partitions: []int{0}, Expires: at(time.Minute), Now: at(0)})
	requireMonsterError(t, err, store.ErrNotFound, "Claim on an unknown consumer")
}

// Claim changes a partition's epoch each time it changes hands, and only
// then: a member that lost a partition (to a reset, say) and claimed it back
// sees a new epoch even when the checkpoint is the same.
func testClaimEpoch(t *testing.T, b *bundle) {
	ctx, s := b.ctx, b.open()
	register(t, ctx, s, "c", 1, 0)
	now := time.Now()
	epoch := func() int64 {
		info, err := s.Consumer(ctx, "c")
		require.NoError(t, err)
		return info.Partitions[0].Epoch
	}
	held, err := s.Claim(ctx, store.ClaimParams{Consumer: "c", Member: "a", Partitions: []int{0}, Expires: now.Add(time.Minute), Now: now})
	require.NoError(t, err)
	require.Len(t, held, 1)
	first := held[0].Epoch
	require.Equal(t, first, epoch(), "Claim returns the stored epoch")

	held, err = s.Claim(ctx, store.ClaimParams{Consumer: "c", Member: "a", Partitions: []int{0}, Expires: now.Add(2 * time.Minute), Now: now})
	require.NoError(t, err)
	require.Equal(t, first, held[0].Epoch, "renewing keeps the epoch")

	require.NoError(t, s.ResetConsumer(ctx, store.ResetConsumerParams{Consumer: "c", Position: 0}))
	held, err = s.Claim(ctx, store.ClaimParams{Consumer: "c", Member: "a", Partitions: []int{0}, Expires: now.Add(time.Minute), Now: now})
	require.NoError(t, err)
	require.NotEqual(t, first, held[0].Epoch, "claimed back after a reset: a new epoch")
	second := held[0].Epoch

	held, err = s.Claim(ctx, store.ClaimParams{Consumer: "c", Member: "b", Partitions: []int{0}, Expires: now.Add(3 * time.Minute), Now: now.Add(2 * time.Minute)})
	require.NoError(t, err)
	require.Len(t, held, 1)
	require.NotEqual(t, second, held[0].Epoch, "taken over after expiry: a new epoch")
}

// Release frees the member's own partitions and no one else's.
func testRelease(t *testing.T, b *bundle) {
	ctx, s := b.ctx, b.open()
	register(t, ctx, s, "c", 4, 0)
	now := time.Now()
	claim(t, ctx, s, "c", "a", []int{0, 1, 2}, now.Add(time.Minute), now)
	claim(t, ctx, s, "c", "b", []int{3}, now.Add(time.Minute), now)

	require.NoError(t, s.Release(ctx, store.ReleaseParams{Consumer: "c", Member: "a", Partitions: []int{0, 3}}))
	require.Equal(t, []string{"", "a", "a", "b"}, owners(t, ctx, s, "c"), "a released 0 and could not release b's 3")
	require.Equal(t, []int{0, 3}, claim(t, ctx, s, "c", "b", []int{0}, now.Add(time.Minute), now), "a released partition is free")
	require.NoError(t, s.Release(ctx, store.ReleaseParams{Consumer: "c", Member: "a", Partitions: nil}))
	require.Equal(t, []string{"b", "a", "a", "b"}, owners(t, ctx, s, "c"))
	requireMonsterError(t, s.Release(ctx, store.ReleaseParams{Consumer: "nope", Member: "a", Partitions: []int{0}}), store.ErrNotFound, "Release on an unknown consumer")
}

// Leave forgets the member and releases every partition it holds.
func testLeave(t *testing.T, b *bundle) {
	ctx, s := b.ctx, b.open()
	register(t, ctx, s, "c", 3, 0)
	now := time.Now()
	for _, m := range []string{"a", "b"} {
		_, err := s.Heartbeat(ctx, store.HeartbeatParams{Consumer: "c", Member: m, Expires: now.Add(time.Minute), Now: now})
		require.NoError(t, err)
	}
	claim(t, ctx, s, "c", "a", []int{0, 1}, now.Add(time.Minute), now)
	claim(t, ctx, s, "c", "b", []int{2}, now.Add(time.Minute), now)

	require.NoError(t, s.Leave(ctx, store.LeaveParams{Consumer: "c", Member: "a"}))
	require.Equal(t, []string{"", "", "b"}, owners(t, ctx, s, "c"))
	members, err := s.Heartbeat(ctx, store.HeartbeatParams{Consumer: "c", Member: "b", Expires: now.Add(time.Minute), Now: now})
	require.NoError(t, err)
	require.Equal(t, []string{"b"}, members, "a member that left is forgotten before its heartbeat expires")
	err = s.SaveCheckpoints(ctx, store.SaveCheckpointsParams{Consumer: "c", Member: "a", Checkpoints: []store.Checkpoint{{Partition: 0, Position: 1}}})
	requireMonsterError(t, err, store.ErrLeaseLost, "saving after leaving")
	requireMonsterError(t, s.Leave(ctx, store.LeaveParams{Consumer: "nope", Member: "a"}), store.ErrNotFound, "Leave on an unknown consumer")
}

// ScaleOut at the store level: a lease that is not renewed expires, and
// its partition moves with its checkpoint to the member that claims it; the
// old holder can no longer save.
func testLeasesExpireAndMove(t *testing.T, b *bundle) {
	ctx, s := b.ctx, b.open()
	register(t, ctx, s, "c", 2, 0)
	t0 := time.Now()
	at := func(d time.Duration) time.Time { return t0.Add(d) }
	require.Equal(t, []int{0, 1}, claim(t, ctx, s, "c", "a", []int{0, 1}, at(time.Second), at(0)))
	require.NoError(t, s.SaveCheckpoints(ctx, store.SaveCheckpointsParams{Consumer: "c", Member: "a", Checkpoints: []store.Checkpoint{{Partition: 0, Position: 10}, {Partition: 1, Position: 11}}}))

	require.Empty(t, claim(t, ctx, s, "c", "b", []int{0, 1}, at(2*time.Second), at(500*time.Millisecond)), "a's leases are live")
	held, err := s.Claim(ctx, store.ClaimParams{Consumer: "c", Member: "b", Partitions: []int{0, 1}, Expires: at(3 * time.Second), Now: at(2 * time.Second)})
	require.NoError(t, err)
	require.Len(t, held, 2, "a's leases expired at +1s")
	require.Equal(t, int64(10), held[0].Checkpoint, "the checkpoint moves with the partition")
	require.Equal(t, int64(11), held[1].Checkpoint)

	err = s.SaveCheckpoints(ctx, store.SaveCheckpointsParams{Consumer: "c", Member: "a", Checkpoints: []store.Checkpoint{{Partition: 0, Position: 20}}})
	requireMonsterError(t, err, store.ErrLeaseLost, "saving a partition whose lease moved")
	require.Empty(t, claim(t, ctx, s, "c", "a", []int{0, 1}, at(4*time.Second), at(2*time.Second)), "a cannot take them back while b's leases are live")
	require.Equal(t, []int64{10, 11}, checkpoints(t, ctx, s, "c"))
	require.NoError(t, s.SaveCheckpoints(ctx, store.SaveCheckpointsParams{Consumer: "c", Member: "b", Checkpoints: []store.Checkpoint{{Partition: 0, Position: 20}}}))
	require.Equal(t, []int64{20, 11}, checkpoints(t, ctx, s, "c"))
}

// SaveCheckpoints moves checkpoints forward only, adds failures and replaces
// the in-flight figure.
func testSaveCheckpoints(t *testing.T, b *bundle) {
	ctx, s := b.ctx, b.open()
	register(t, ctx, s, "c", 3, 0)
	now := time.Now()
	claim(t, ctx, s, "c", "a", []int{0, 1, 2}, now.Add(time.Minute), now)

	require.NoError(t, s.SaveCheckpoints(ctx, store.SaveCheckpointsParams{Consumer: "c", Member: "a", Checkpoints: []store.Checkpoint{
		{Partition: 0, Position: 10, FailuresDelta: 1, InFlight: 3},
		{Partition: 1, Position: 20, InFlight: 1},
	}}))
	require.NoError(t, s.SaveCheckpoints(ctx, store.SaveCheckpointsParams{Consumer: "c", Member: "a", Checkpoints: []store.Checkpoint{{Partition: 0, Position: 5, FailuresDelta: 2, InFlight: 0}}}))
	info, err := s.Consumer(ctx, "c")
	require.NoError(t, err)
	p := info.Partitions
	require.Equal(t, int64(10), p[0].Checkpoint, "a checkpoint never moves back")
	require.Equal(t, int64(3), p[0].Failures, "failures add up")
	require.Equal(t, int64(0), p[0].InFlight, "in-flight is replaced")
	require.Equal(t, int64(20), p[1].Checkpoint)
	require.Equal(t, int64(1), p[1].InFlight)
	require.Equal(t, int64(0), p[2].Checkpoint, "untouched partitions stay")

	require.NoError(t, s.SaveCheckpoints(ctx, store.SaveCheckpointsParams{Consumer: "c", Member: "a", Checkpoints: []store.Checkpoint{{Partition: 0, Position: 15}}}))
	held, err := s.Claim(ctx, store.ClaimParams{Consumer: "c", Member: "a", Partitions: nil, Expires: now.Add(time.Minute), Now: now})
	require.NoError(t, err)
	require.Equal(t, int64(15), held[0].Checkpoint)
	require.Equal(t, int64(3), held[0].Failures)

	err = s.SaveCheckpoints(ctx, store.SaveCheckpointsParams{Consumer: "nope", Member: "a", Checkpoints: []store.Checkpoint{{Partition: 0, Position: 1}}})
	require.Error(t, err, "saving checkpoints of an unknown consumer")
}

// SaveCheckpoints is all or nothing: if the member does not hold one of the
// partitions, nothing is written and the error is ErrLeaseLost.
func testSaveCheckpointsAllOrNothing(t *testing.T, b *bundle) {
	ctx, s := b.ctx, b.open()
	register(t, ctx, s, "c", 4, 0)
	now := time.Now()
	claim(t, ctx, s, "c", "a", []int{0, 1}, now.Add(time.Minute), now)
	claim(t, ctx, s, "c", "b", []int{2}, now.Add(time.Minute), now)

	err := s.SaveCheckpoints(ctx, store.SaveCheckpointsParams{Consumer: "c", Member: "a", Checkpoints: []store.Checkpoint{{Partition: 0, Position: 10, FailuresDelta: 1}, {Partition: 2, Position: 10}}})
	requireMonsterError(t, err, store.ErrLeaseLost, "saving another member's partition")
	err = s.SaveCheckpoints(ctx, store.SaveCheckpointsParams{Consumer: "c", Member: "a", Checkpoints: []store.Checkpoint{{Partition: 1, Position: 10}, {Partition: 3, Position: 10}}})
	requireMonsterError(t, err, store.ErrLeaseLost, "saving a free partition")
	info, err := s.Consumer(ctx, "c")
	require.NoError(t, err)
	for _, p := range info.Partitions {
		require.Zero(t, p.Checkpoint, "a refused save writes nothing (partition %d)", p.Partition)
		require.Zero(t, p.Failures, "a refused save writes nothing (partition %d)", p.Partition)
	}
	require.NoError(t, s.SaveCheckpoints(ctx, store.SaveCheckpointsParams{Consumer: "c", Member: "a", Checkpoints: []store.Checkpoint{{Partition: 0, Position: 10}, {Partition: 1, Position: 11}}}))
	require.Equal(t, []int64{10, 11, 0, 0}, checkpoints(t, ctx, s, "c"))
}

// ResetConsumer sets every checkpoint, backwards or forwards, and releases
// every lease.
func testResetConsumer(t *testing.T, b *bundle) {
	ctx, s := b.ctx, b.open()
	register(t, ctx, s, "c", 3, 0)
	register(t, ctx, s, "other", 1, 0)
	now := time.Now()
	claim(t, ctx, s, "c", "a", []int{0, 1, 2}, now.Add(time.Minute), now)
	claim(t, ctx, s, "other", "a", []int{0}, now.Add(time.Minute), now)
	require.NoError(t, s.SaveCheckpoints(ctx, store.SaveCheckpointsParams{Consumer: "c", Member: "a", Checkpoints: []store.Checkpoint{{Partition: 0, Position: 10}, {Partition: 1, Position: 20}, {Partition: 2, Position: 30}}}))
	require.NoError(t, s.SaveCheckpoints(ctx, store.SaveCheckpointsParams{Consumer: "other", Member: "a", Checkpoints: []store.Checkpoint{{Partition: 0, Position: 40}}}))

	require.NoError(t, s.ResetConsumer(ctx, store.ResetConsumerParams{Consumer: "c", Position: 15}))
	require.Equal(t, []int64{15, 15, 15}, checkpoints(t, ctx, s, "c"), "reset moves checkpoints backwards and forwards")
	require.Equal(t, []string{"", "", ""}, owners(t, ctx, s, "c"), "reset releases every lease")
	err := s.SaveCheckpoints(ctx, store.SaveCheckpointsParams{Consumer: "c", Member: "a", Checkpoints: []store.Checkpoint{{Partition: 0, Position: 50}}})
	requireMonsterError(t, err, store.ErrLeaseLost, "saving after a reset")
	require.Equal(t, []int64{15, 15, 15}, checkpoints(t, ctx, s, "c"))
	require.Equal(t, []int64{40}, checkpoints(t, ctx, s, "other"), "reset touches one consumer")
	require.Equal(t, []string{"a"}, owners(t, ctx, s, "other"))

	held, err := s.Claim(ctx, store.ClaimParams{Consumer: "c", Member: "a", Partitions: []int{0, 1, 2}, Expires: now.Add(time.Minute), Now: now})
	require.NoError(t, err)
	require.Len(t, held, 3)
	require.Equal(t, int64(15), held[0].Checkpoint)
	require.NoError(t, s.ResetConsumer(ctx, store.ResetConsumerParams{Consumer: "c", Position: 0}))
	require.Equal(t, []int64{0, 0, 0}, checkpoints(t, ctx, s, "c"))
	requireMonsterError(t, s.ResetConsumer(ctx, store.ResetConsumerParams{Consumer: "nope", Position: 0}), store.ErrNotFound, "resetting an unknown consumer")
}

// RegisterConsumer stores a new consumer's Partitioning as given and
// returns it from RegisterConsumer, Consumer and Consumers, after a reopen
// too; registering an existing consumer keeps the stored one, whatever the
// spec says (a store that dropped the field would make a new consumer look
// like one registered before partitionings were stored, and the runtime
// would partition its keyless events by type). A partitioning the contract
// does not know is refused.
func testRegisterConsumerPartitioning(t *testing.T, b *bundle) {
	ctx, s := b.ctx, b.open()
	want := map[string]store.Partitioning{
		"by-key-or-type": store.PartitionByKeyOrType,
		"by-key-or-id":   store.PartitionByKeyOrID,
		"by-order-key":   store.PartitionByOrderKey,
	}
	// Another partitioning than each one's, for registering again.
	other := map[string]store.Partitioning{
		"by-key-or-type": store.PartitionByKeyOrID,
		"by-key-or-id":   store.PartitionByOrderKey,
		"by-order-key":   store.PartitionByKeyOrType,
	}
	check := func(s store.Store, when string) {
		t.Helper()
		for name, p := range want {
			info, err := s.Consumer(ctx, name)
			require.NoError(t, err)
			require.Equal(t, p, info.Partitioning, "Consumer(%q).Partitioning %s", name, when)
		}
		all, err := s.Consumers(ctx)
		require.NoError(t, err)
		require.Len(t, all, len(want))
		for _, info := range all {
			require.Equal(t, want[info.Name], info.Partitioning, "Consumers: %q's Partitioning %s", info.Name, when)
		}
	}
	for name, p := range want {
		info, err := s.RegisterConsumer(ctx, store.ConsumerSpec{Name: name, Types: []string{"*"}, Partitions: 4, Partitioning: p})
		require.NoError(t, err)
		require.Equal(t, p, info.Partitioning, "RegisterConsumer(%q) returns the partitioning it stored", name)
	}
	check(s, "after registration")

	for name, p := range want {
		again, err := s.RegisterConsumer(ctx, store.ConsumerSpec{Name: name, Types: []string{"x.*"}, Partitions: 4, Partitioning: other[name]})
		require.NoError(t, err, "registering %q again with another partitioning is no error: the runtime decides", name)
		require.Equal(t, p, again.Partitioning, "registering %q again keeps the stored partitioning", name)
		require.Equal(t, []string{"x.*"}, again.Types, "registering %q again updates Types", name)
	}
	check(s, "after registering again with other partitionings")

	_, err := s.RegisterConsumer(ctx, store.ConsumerSpec{Name: "unknown", Types: []string{"*"}, Partitions: 4, Partitioning: "by-moon-phase"})
	require.Error(t, err, "an unknown partitioning is refused (store.ValidateConsumerSpec)")
	require.True(t, strings.HasPrefix(err.Error(), "monster: "), "error %q must start with \"monster: \"", err)
	require.Contains(t, err.Error(), "by-moon-phase", "the error names the partitioning")
	_, err = s.Consumer(ctx, "unknown")
	requireMonsterError(t, err, store.ErrNotFound, "a refused registration stores nothing")

	// A deleted consumer registered again is a new consumer.
	require.NoError(t, s.DeleteConsumer(ctx, "by-key-or-type"))
	info, err := s.RegisterConsumer(ctx, store.ConsumerSpec{Name: "by-key-or-type", Types: []string{"*"}, Partitions: 4, Partitioning: store.PartitionByKeyOrID})
	require.NoError(t, err)
	require.Equal(t, store.PartitionByKeyOrID, info.Partitioning, "a consumer deleted and registered again stores the new partitioning")
	_, err = s.RegisterConsumer(ctx, store.ConsumerSpec{Name: "by-key-or-type", Types: []string{"*"}, Partitions: 4, Partitioning: store.PartitionByKeyOrType})
	require.NoError(t, err)
	want["by-key-or-type"] = store.PartitionByKeyOrID

	if !b.h.Limits.NotPersistent {
		s = b.reopen(s)
		check(s, "after a reopen")
	}
}
