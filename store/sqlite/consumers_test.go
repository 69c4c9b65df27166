package sqlite_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/gomonster/monster/store"
)

var t0 = time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)

func TestRegisterConsumer(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, _ := openStore(t)

	info, err := s.RegisterConsumer(ctx, store.ConsumerSpec{Name: "mailer", Types: []string{"user.*"}, Partitions: 3, Start: 7})
	require.NoError(t, err)
	require.Equal(t, "mailer", info.Name)
	require.Equal(t, []string{"user.*"}, info.Types)
	require.WithinDuration(t, time.Now(), info.Created, time.Minute)
	require.Equal(t, []store.PartitionInfo{{Partition: 0, Checkpoint: 7}, {Partition: 1, Checkpoint: 7}, {Partition: 2, Checkpoint: 7}}, info.Partitions)

	// Registering again updates the types only; Start applies to a new
	// consumer only.
	again, err := s.RegisterConsumer(ctx, store.ConsumerSpec{Name: "mailer", Types: []string{"user.*", "order.*"}, Partitions: 3, Start: 100})
	require.NoError(t, err)
	require.Equal(t, []string{"user.*", "order.*"}, again.Types)
	require.Equal(t, info.Created, again.Created)
	require.Equal(t, info.Partitions, again.Partitions)

	_, err = s.RegisterConsumer(ctx, store.ConsumerSpec{Name: "mailer", Partitions: 4})
	require.ErrorIs(t, err, store.ErrConflict)
	require.EqualError(t, err, `monster: consumer "mailer" is registered with 3 partitions, not 4; the count is fixed when the consumer is first registered (delete the consumer to change it)`)

	_, err = s.RegisterConsumer(ctx, store.ConsumerSpec{Name: "audit", Partitions: 1})
	require.NoError(t, err)
	list, err := s.Consumers(ctx)
	require.NoError(t, err)
	require.Len(t, list, 2)
	require.Equal(t, "audit", list[0].Name)
	require.Nil(t, list[0].Types)
	require.Equal(t, again, list[1])

	got, err := s.Consumer(ctx, "mailer")
	require.NoError(t, err)
	require.Equal(t, again, got)

	for _, spec := range []store.ConsumerSpec{
		{Name: "", Partitions: 1},
		{Name: "x", Partitions: 0},
		{Name: "x", Partitions: 1, Start: -1},
	} {
		_, err := s.RegisterConsumer(ctx, spec)
		require.ErrorContains(t, err, "monster: sqlite register consumer")
	}
}

func TestMissingConsumer(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, _ := openStore(t)
	errs := map[string]error{}
	_, errs["Consumer"] = s.Consumer(ctx, "ghost")
	_, errs["Consumer empty name"] = s.Consumer(ctx, "")
	errs["DeleteConsumer"] = s.DeleteConsumer(ctx, "ghost")
	_, errs["Heartbeat"] = s.Heartbeat(ctx, store.HeartbeatParams{Consumer: "ghost", Member: "m", Expires: t0, Now: t0})
	errs["Leave"] = s.Leave(ctx, store.LeaveParams{Consumer: "ghost", Member: "m"})
	_, errs["Claim"] = s.Claim(ctx, store.ClaimParams{Consumer: "ghost", Member: "m", Partitions: []int{0}, Expires: t0, Now: t0})
	errs["Release"] = s.Release(ctx, store.ReleaseParams{Consumer: "ghost", Member: "m", Partitions: []int{0}})
	errs["SaveCheckpoints"] = s.SaveCheckpoints(ctx, store.SaveCheckpointsParams{Consumer: "ghost", Member: "m", Checkpoints: nil})
	errs["ResetConsumer"] = s.ResetConsumer(ctx, store.ResetConsumerParams{Consumer: "ghost", Position: 0})
	errs["AddDeadLetter"] = s.AddDeadLetter(ctx, store.DeadLetter{Consumer: "ghost", EventID: "e"})
	_, errs["DeadLetters"] = s.DeadLetters(ctx, store.DeadLetterQuery{Consumer: "ghost"})
	_, errs["RequestRetry"] = s.RequestRetry(ctx, store.DeadLetterSelection{Consumer: "ghost", IDs: nil})
	_, errs["DeleteDeadLetters"] = s.DeleteDeadLetters(ctx, store.DeadLetterSelection{Consumer: "ghost", IDs: nil})
	for method, err := range errs {
		require.ErrorIs(t, err, store.ErrNotFound, method)
		require.ErrorContains(t, err, `monster: consumer "`, method)
	}
}

func TestDeleteConsumer(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, _ := openStore(t)
	_, err := s.RegisterConsumer(ctx, store.ConsumerSpec{Name: "c", Partitions: 2})
	require.NoError(t, err)
	_, err = s.Heartbeat(ctx, store.HeartbeatParams{Consumer: "c", Member: "m1", Expires: t0.Add(time.Minute), Now: t0})
	require.NoError(t, err)
	_, err = s.Claim(ctx, store.ClaimParams{Consumer: "c", Member: "m1", Partitions: []int{0, 1}, Expires: t0.Add(time.Minute), Now: t0})
	require.NoError(t, err)
	require.NoError(t, s.AddDeadLetter(ctx, store.DeadLetter{Consumer: "c", EventID: "e1", Position: 1}))

	require.NoError(t, s.DeleteConsumer(ctx, "c"))
	_, err = s.Consumer(ctx, "c")
	require.ErrorIs(t, err, store.ErrNotFound)

	// A new consumer of the same name starts from nothing.
	info, err := s.RegisterConsumer(ctx, store.ConsumerSpec{Name: "c", Partitions: 1})
	require.NoError(t, err)
	require.Equal(t, []store.PartitionInfo{{Partition: 0}}, info.Partitions)
	require.Zero(t, info.DeadLetters)
	members, err := s.Heartbeat(ctx, store.HeartbeatParams{Consumer: "c", Member: "m2", Expires: t0.Add(time.Minute), Now: t0})
	require.NoError(t, err)
	require.Equal(t, []string{"m2"}, members)
}

func TestHeartbeatAndLeave(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, _ := openStore(t)
	_, err := s.RegisterConsumer(ctx, store.ConsumerSpec{Name: "c", Partitions: 2})
	require.NoError(t, err)

	members, err := s.Heartbeat(ctx, store.HeartbeatParams{Consumer: "c", Member: "b", Expires: t0.Add(10 * time.Second), Now: t0})
	require.NoError(t, err)
	require.Equal(t, []string{"b"}, members)
	members, err = s.Heartbeat(ctx, store.HeartbeatParams{Consumer: "c", Member: "a", Expires: t0.Add(10 * time.Second), Now: t0})
	require.NoError(t, err)
	require.Equal(t, []string{"a", "b"}, members)

	// b stops beating; when a beats after b's expiry, b is forgotten.
	members, err = s.Heartbeat(ctx, store.HeartbeatParams{Consumer: "c", Member: "a", Expires: t0.Add(30 * time.Second), Now: t0.Add(20 * time.Second)})
	require.NoError(t, err)
	require.Equal(t, []string{"a"}, members)

	_, err = s.Claim(ctx, store.ClaimParams{Consumer: "c", Member: "a", Partitions: []int{0, 1}, Expires: t0.Add(time.Minute), Now: t0})
	require.NoError(t, err)
	require.NoError(t, s.Leave(ctx, store.LeaveParams{Consumer: "c", Member: "a"}))
	info, err := s.Consumer(ctx, "c")
	require.NoError(t, err)
	for _, p := range info.Partitions {
		require.Empty(t, p.Owner)
		require.True(t, p.LeaseExpires.IsZero())
	}
	members, err = s.Heartbeat(ctx, store.HeartbeatParams{Consumer: "c", Member: "z", Expires: t0.Add(time.Minute), Now: t0})
	require.NoError(t, err)
	require.Equal(t, []string{"z"}, members)
}

func TestLeases(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, _ := openStore(t)
	_, err := s.RegisterConsumer(ctx, store.ConsumerSpec{Name: "c", Partitions: 4, Start: 5})
	require.NoError(t, err)
	lease := 10 * time.Second

	held, err := s.Claim(ctx, store.ClaimParams{Consumer: "c", Member: "a", Partitions: []int{0, 1}, Expires: t0.Add(lease), Now: t0})
	require.NoError(t, err)
	require.Equal(t, []store.PartitionInfo{
		{Partition: 0, Checkpoint: 5, Owner: "a", LeaseExpires: t0.Add(lease), Epoch: 1},
		{Partition: 1, Checkpoint: 5, Owner: "a", LeaseExpires: t0.Add(lease), Epoch: 1},
	}, held, "a first claim takes each partition to epoch 1")

	// b cannot take a's live leases, only the free partition.
	held, err = s.Claim(ctx, store.ClaimParams{Consumer: "c", Member: "b", Partitions: []int{1, 2}, Expires: t0.Add(lease), Now: t0.Add(time.Second)})
	require.NoError(t, err)
	require.Equal(t, []store.PartitionInfo{{Partition: 2, Checkpoint: 5, Owner: "b", LeaseExpires: t0.Add(lease), Epoch: 1}}, held)

	// a renews partition 0 only; the result lists every partition a holds.
	require.NoError(t, s.SaveCheckpoints(ctx, store.SaveCheckpointsParams{Consumer: "c", Member: "a", Checkpoints: []store.Checkpoint{{Partition: 0, Position: 9, InFlight: 3}}}))
	held, err = s.Claim(ctx, store.ClaimParams{Consumer: "c", Member: "a", Partitions: []int{0}, Expires: t0.Add(2 * lease), Now: t0.Add(5 * time.Second)})
	require.NoError(t, err)
	require.Equal(t, []store.PartitionInfo{
		{Partition: 0, Checkpoint: 9, Owner: "a", LeaseExpires: t0.Add(2 * lease), InFlight: 3, Epoch: 1},
		{Partition: 1, Checkpoint: 5, Owner: "a", LeaseExpires: t0.Add(lease), Epoch: 1},
	}, held, "renewing keeps the epoch")

	// At a's expiry of partition 1, b steals it; partition 0 was renewed.
	held, err = s.Claim(ctx, store.ClaimParams{Consumer: "c", Member: "b", Partitions: []int{0, 1}, Expires: t0.Add(lease + lease), Now: t0.Add(lease)})
	require.NoError(t, err)
	require.Equal(t, []store.PartitionInfo{
		{Partition: 1, Checkpoint: 5, Owner: "b", LeaseExpires: t0.Add(2 * lease), Epoch: 2},
		{Partition: 2, Checkpoint: 5, Owner: "b", LeaseExpires: t0.Add(lease), Epoch: 1},
	}, held, "a partition that changes hands moves to a new epoch")

	// a has lost partition 1: a checkpoint for it and for the partition a
	// still holds writes nothing.
	err = s.SaveCheckpoints(ctx, store.SaveCheckpointsParams{Consumer: "c", Member: "a", Checkpoints: []store.Checkpoint{
		{Partition: 0, Position: 20, FailuresDelta: 1},
		{Partition: 1, Position: 20},
	}})
	require.ErrorIs(t, err, store.ErrLeaseLost)
	require.EqualError(t, err, `monster: consumer "c" partition 1 is held by "b", not member "a": partition lease lost`)
	info, err := s.Consumer(ctx, "c")
	require.NoError(t, err)
	require.Equal(t, int64(9), info.Partitions[0].Checkpoint)
	require.Zero(t, info.Partitions[0].Failures)
	require.Equal(t, int64(5), info.Partitions[1].Checkpoint)

	// Release frees what the member holds, and nothing else.
	require.NoError(t, s.Release(ctx, store.ReleaseParams{Consumer: "c", Member: "a", Partitions: []int{0, 1}}))
	info, err = s.Consumer(ctx, "c")
	require.NoError(t, err)
	require.Equal(t, "", info.Partitions[0].Owner)
	require.Equal(t, "b", info.Partitions[1].Owner)
	err = s.SaveCheckpoints(ctx, store.SaveCheckpointsParams{Consumer: "c", Member: "a", Checkpoints: []store.Checkpoint{{Partition: 0, Position: 30}}})
	require.ErrorIs(t, err, store.ErrLeaseLost)
	require.ErrorContains(t, err, "held by nobody")

	// A partition the consumer does not have.
	_, err = s.Claim(ctx, store.ClaimParams{Consumer: "c", Member: "a", Partitions: []int{4}, Expires: t0.Add(lease), Now: t0})
	require.ErrorIs(t, err, store.ErrNotFound)
	err = s.SaveCheckpoints(ctx, store.SaveCheckpointsParams{Consumer: "c", Member: "b", Checkpoints: []store.Checkpoint{{Partition: -1}}})
	require.ErrorIs(t, err, store.ErrNotFound)
}

func TestSaveCheckpoints(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, _ := openStore(t)
	_, err := s.RegisterConsumer(ctx, store.ConsumerSpec{Name: "c", Partitions: 2})
	require.NoError(t, err)
	_, err = s.Claim(ctx, store.ClaimParams{Consumer: "c", Member: "m", Partitions: []int{0, 1}, Expires: t0.Add(time.Minute), Now: t0})
	require.NoError(t, err)

	require.NoError(t, s.SaveCheckpoints(ctx, store.SaveCheckpointsParams{Consumer: "c", Member: "m", Checkpoints: []store.Checkpoint{
		{Partition: 0, Position: 10, FailuresDelta: 2, InFlight: 4},
		{Partition: 1, Position: 3},
	}}))
	// Never backwards; failures add up; in-flight is replaced.
	require.NoError(t, s.SaveCheckpoints(ctx, store.SaveCheckpointsParams{Consumer: "c", Member: "m", Checkpoints: []store.Checkpoint{
		{Partition: 0, Position: 8, FailuresDelta: 1, InFlight: 0},
	}}))
	info, err := s.Consumer(ctx, "c")
	require.NoError(t, err)
	require.Equal(t, store.PartitionInfo{Partition: 0, Checkpoint: 10, Owner: "m", LeaseExpires: t0.Add(time.Minute), Failures: 3, Epoch: 1}, info.Partitions[0])
	require.Equal(t, int64(3), info.Partitions[1].Checkpoint)
	require.NoError(t, s.SaveCheckpoints(ctx, store.SaveCheckpointsParams{Consumer: "c", Member: "m", Checkpoints: nil}))
}

func TestResetConsumer(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, _ := openStore(t)
	_, err := s.RegisterConsumer(ctx, store.ConsumerSpec{Name: "c", Partitions: 3})
	require.NoError(t, err)
	_, err = s.Claim(ctx, store.ClaimParams{Consumer: "c", Member: "m", Partitions: []int{0, 1}, Expires: t0.Add(time.Minute), Now: t0})
	require.NoError(t, err)
	require.NoError(t, s.SaveCheckpoints(ctx, store.SaveCheckpointsParams{Consumer: "c", Member: "m", Checkpoints: []store.Checkpoint{{Partition: 0, Position: 50, InFlight: 2}, {Partition: 1, Position: 60}}}))

	require.NoError(t, s.ResetConsumer(ctx, store.ResetConsumerParams{Consumer: "c", Position: 7}))
	info, err := s.Consumer(ctx, "c")
	require.NoError(t, err)
	for _, p := range info.Partitions {
		// The epoch stays: the next claim (by anyone) moves it on.
		require.Equal(t, store.PartitionInfo{Partition: p.Partition, Checkpoint: 7, Epoch: p.Epoch}, p)
	}
	require.Equal(t, []int64{1, 1, 0}, []int64{info.Partitions[0].Epoch, info.Partitions[1].Epoch, info.Partitions[2].Epoch})
	// The member lost its leases: it must claim again before it saves.
	err = s.SaveCheckpoints(ctx, store.SaveCheckpointsParams{Consumer: "c", Member: "m", Checkpoints: []store.Checkpoint{{Partition: 0, Position: 51}}})
	require.ErrorIs(t, err, store.ErrLeaseLost)
	require.ErrorContains(t, s.ResetConsumer(ctx, store.ResetConsumerParams{Consumer: "c", Position: -1}), "negative position")
}

func TestDeadLetters(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s, _ := openStore(t)
	_, err := s.RegisterConsumer(ctx, store.ConsumerSpec{Name: "c", Partitions: 2})
	require.NoError(t, err)
	_, err = s.RegisterConsumer(ctx, store.ConsumerSpec{Name: "other", Partitions: 1})
	require.NoError(t, err)

	dl := func(id string, position int64) store.DeadLetter {
		return store.DeadLetter{
			Consumer: "c", EventID: id, Type: "user.x", Position: position, Partition: int(position % 2),
			Attempts: 5, Error: "handler failed: " + id, FailedAt: t0.Add(time.Duration(position) * time.Second),
		}
	}
	for _, d := range []store.DeadLetter{dl("e30", 30), dl("e10", 10), dl("e20", 20)} {
		require.NoError(t, s.AddDeadLetter(ctx, d))
	}
	require.NoError(t, s.AddDeadLetter(ctx, store.DeadLetter{Consumer: "other", EventID: "e10", Position: 10}))

	list, err := s.DeadLetters(ctx, store.DeadLetterQuery{Consumer: "c"})
	require.NoError(t, err)
	require.Equal(t, []store.DeadLetter{dl("e10", 10), dl("e20", 20), dl("e30", 30)}, list)
	list, err = s.DeadLetters(ctx, store.DeadLetterQuery{Consumer: "c", AfterPosition: 10, Limit: 1})
	require.NoError(t, err)
	require.Equal(t, []store.DeadLetter{dl("e20", 20)}, list)
	info, err := s.Consumer(ctx, "c")
	require.NoError(t, err)
	require.Equal(t, int64(3), info.DeadLetters)

	// Retry: an unknown ID marks none.
	_, err = s.RequestRetry(ctx, store.DeadLetterSelection{Consumer: "c", IDs: []string{"e10", "nope"}})
	require.ErrorIs(t, err, store.ErrNotFound)
	require.EqualError(t, err, `monster: consumer "c" has no dead letter for event "nope"`)
	list, err = s.DeadLetters(ctx, store.DeadLetterQuery{Consumer: "c", RetryRequested: true})
	require.NoError(t, err)
	require.Empty(t, list)

	n, err := s.RequestRetry(ctx, store.DeadLetterSelection{Consumer: "c", IDs: []string{"e10", "e30", "e10"}})
	require.NoError(t, err)
	require.Equal(t, 2, n)
	list, err = s.DeadLetters(ctx, store.DeadLetterQuery{Consumer: "c", RetryRequested: true})
	require.NoError(t, err)
	require.Len(t, list, 2)
	require.True(t, list[0].RetryRequested)
	require.Equal(t, "e10", list[0].EventID)

	// Failing again replaces the dead letter and clears the request.
	again := dl("e10", 10)
	again.Attempts, again.Error = 6, "still failing"
	require.NoError(t, s.AddDeadLetter(ctx, again))
	list, err = s.DeadLetters(ctx, store.DeadLetterQuery{Consumer: "c", RetryRequested: true})
	require.NoError(t, err)
	require.Equal(t, []string{"e30"}, eventIDs(list))
	list, err = s.DeadLetters(ctx, store.DeadLetterQuery{Consumer: "c", Limit: 1})
	require.NoError(t, err)
	require.Equal(t, []store.DeadLetter{again}, list)

	n, err = s.RequestRetry(ctx, store.DeadLetterSelection{Consumer: "c", IDs: nil})
	require.NoError(t, err)
	require.Equal(t, 3, n)
	n, err = s.RequestRetry(ctx, store.DeadLetterSelection{Consumer: "c", IDs: []string{}})
	require.NoError(t, err)
	require.Zero(t, n)

	// Delete: an unknown ID removes none.
	_, err = s.DeleteDeadLetters(ctx, store.DeadLetterSelection{Consumer: "c", IDs: []string{"e20", "nope"}})
	require.ErrorIs(t, err, store.ErrNotFound)
	n, err = s.DeleteDeadLetters(ctx, store.DeadLetterSelection{Consumer: "c", IDs: []string{"e20"}})
	require.NoError(t, err)
	require.Equal(t, 1, n)
	n, err = s.DeleteDeadLetters(ctx, store.DeadLetterSelection{Consumer: "c", IDs: nil})
	require.NoError(t, err)
	require.Equal(t, 2, n)
	list, err = s.DeadLetters(ctx, store.DeadLetterQuery{Consumer: "c"})
	require.NoError(t, err)
	require.Empty(t, list)

	// The other consumer's dead letter was never touched.
	list, err = s.DeadLetters(ctx, store.DeadLetterQuery{Consumer: "other"})
	require.NoError(t, err)
	require.Len(t, list, 1)
	require.False(t, list[0].RetryRequested)
}

func eventIDs(list []store.DeadLetter) []string {
	ids := make([]string, len(list))
	for i, d := range list {
		ids[i] = d.EventID
	}
	return ids
}
