package storetest

import (
	"testing"

	"github.com/gomonster/monster/store"
)

// Harness tells the suite how to get stores of the implementation under
// test, and declares what the store cannot do. Open is always required;
// Reopen is required unless Limits.NotPersistent is set, and Share unless
// Limits.NotShared is. What a store can do beyond the [store.Store]
// interface the suite finds by type assertion ([store.SQLTxAppender],
// [store.Notifier]) and tests.
//
// The suite closes every store it gets from Open, Reopen and Share before
// the test that asked for it ends. It may call Close on a store that is
// already closed (by a Monster that owned it, or by Reopen) and ignores the
// error; the contract makes a second Close an error, never a panic.
type Harness struct {
	// Open returns a new, empty store, private to the calling test: no
	// events, no consumers, nothing shared with any other call. It is called
	// from parallel tests, once or more per test, with that test's t: keep
	// files under t.TempDir() and fail with t.Fatal. Required.
	Open func(t *testing.T) store.Store

	// Reopen closes s, an open store returned by Open or Reopen, and opens
	// the same data again, as a restarted process would: every committed
	// event and all consumer state (checkpoints, leases, dead letters) must
	// be there. Required unless Limits.NotPersistent.
	Reopen func(t *testing.T, s store.Store) store.Store

	// Share returns a second handle on the data of s, an open store returned
	// by Open, independent of s as another process's handle would be: its
	// own connections and its own Close, after which s must go on working.
	// What one handle commits the other must see at once. Required unless
	// Limits.NotShared.
	//
	// With Limits.NotShared the suite shares s itself: the same instance, used
	// concurrently, behind a handle whose Close does nothing. That is how
	// several Monsters of one process share a store that cannot be shared
	// across processes, and every store supports it, since all its methods
	// are safe for concurrent use.
	Share func(t *testing.T, s store.Store) store.Store

	// TimeScale multiplies the lease TTLs (300 ms to 1 s) that the tests of
	// expiry and takeover use, for a store whose calls can take hundreds of
	// milliseconds on a loaded machine: a member whose lease renewal does
	// not return within the TTL stops handling its partitions, as it must,
	// and such a test then measures the machine rather than the store.
	// Zero means 1.
	TimeScale int

	// Limits declares what the store cannot do; the tests that need it
	// skip, saying why. The zero value claims everything.
	Limits Limits
}

// Limits is what a store cannot do. Declaring a limit is a statement about
// the store, not about the harness: a persistent store whose harness cannot
// reopen it is a harness to fix, and the suite fails it.
type Limits struct {
	// NotPersistent: the store keeps nothing once closed (an in-memory
	// store). Reopen must be nil.
	NotPersistent bool
	// NotShared: no other process can open the store's data; several
	// Monsters of one process share one instance. Share must be nil.
	NotShared bool
}

// Run runs the whole suite against the stores h gives, each test as a
// parallel subtest of t:
//
//   - Store/...: every method of the [store.Store] contract, called directly
//     with chosen inputs (times, members, expiries), so that the results are
//     exact.
//   - Durable/..., AtLeastOnce/..., and so on to BadInput/...: one group
//     per guarantee in the package documentation of monster, named as it
//     is there, exercised through the real runtime (monster.New) with
//     fast timings, store wrappers standing in for crashed processes and
//     broken disks, and concurrent writers.
//
// Tests skip, saying why, only for what h.Limits says the store cannot do
// and for optional interfaces the store does not implement. Run fails at
// once if h is inconsistent with its Limits.
func Run(t *testing.T, h Harness) {
	t.Helper()
	if h.Open == nil {
		t.Fatal("storetest: Harness.Open is nil")
	}
	switch {
	case !h.Limits.NotPersistent && h.Reopen == nil:
		t.Fatal("storetest: Harness.Reopen is nil: set it, or declare Limits.NotPersistent")
	case h.Limits.NotPersistent && h.Reopen != nil:
		t.Fatal("storetest: Harness.Reopen is set but Limits.NotPersistent says the store keeps nothing")
	case !h.Limits.NotShared && h.Share == nil:
		t.Fatal("storetest: Harness.Share is nil: set it, or declare Limits.NotShared")
	case h.Limits.NotShared && h.Share != nil:
		t.Fatal("storetest: Harness.Share is set but Limits.NotShared says no other process can open the store")
	}
	probe := h.Open(t)
	_, sqlTx := probe.(store.SQLTxAppender)
	_ = probe.Close()
	for _, g := range groups() {
		t.Run(g.name, func(t *testing.T) {
			t.Parallel()
			for _, tc := range g.tests {
				t.Run(tc.name, func(t *testing.T) {
					t.Parallel()
					tc.run(t, newBundle(t, h, sqlTx))
				})
			}
		})
	}
}

// test is one conformance test.
type test struct {
	name string
	run  func(t *testing.T, b *bundle)
}

// group is the tests of one part of the contract or one guarantee.
type group struct {
	name  string
	tests []test
}

func groups() []group {
	return []group{
		{"Store", []test{
			{"AppendAndReadEveryField", testAppendAndReadEveryField},
			{"PositionsIncrease", testPositionsIncrease},
			{"AppendIsAllOrNothing", testAppendIsAllOrNothing},
			{"AppendRejectsIncompleteEvents", testAppendRejectsIncompleteEvents},
			{"ReadAfterAndLimit", testReadAfterAndLimit},
			{"ReadNeverSkips", testReadNeverSkips},
			{"EventByID", testEventByID},
			{"Head", testHead},
			{"PositionBefore", testPositionBefore},
			{"CountByType", testCountByType},
			{"IdempotencyAcrossCalls", testIdempotencyAcrossCalls},
			{"IdempotencyWithinBatch", testIdempotencyWithinBatch},
			{"AppendTx", testAppendTx},
			{"Notifications", testNotifications},
			{"RegisterConsumer", testRegisterConsumer},
			{"RegisterConsumerPartitioning", testRegisterConsumerPartitioning},
			{"DeleteConsumer", testDeleteConsumer},
			{"Heartbeat", testHeartbeat},
			{"Claim", testClaim},
			{"ClaimEpoch", testClaimEpoch},
			{"Release", testRelease},
			{"Leave", testLeave},
			{"LeasesExpireAndMove", testLeasesExpireAndMove},
			{"SaveCheckpoints", testSaveCheckpoints},
			{"SaveCheckpointsAllOrNothing", testSaveCheckpointsAllOrNothing},
			{"ResetConsumer", testResetConsumer},
			{"DeadLetters", testDeadLetters},
			{"RequestRetry", testRequestRetry},
			{"DeleteDeadLetters", testDeleteDeadLetters},
			{"CancelledContext", testCancelledContext},
			{"CancelledWritesLeaveStoreUsable", testCancelledWritesLeaveStoreUsable},
			{"MethodsAfterClose", testMethodsAfterClose},
			{"Persistence", testPersistence},
			{"SharedHandles", testSharedHandles},
		}},
		{"Durable", []test{
			{"LogIsCommittedOnReturn", testLogIsCommittedOnReturn},
			{"LogIsDurableOnReturn", testLogIsDurableOnReturn},
			{"ConcurrentLogsShareCommits", testConcurrentLogsShareCommits},
		}},
		{"AtLeastOnce", []test{
			{"EveryMatchingEventHandled", testEveryMatchingEventHandled},
			{"CrashBeforeCheckpointRedelivers", testCrashBeforeCheckpointRedelivers},
			{"CrashWhileHandlingRedelivers", testCrashWhileHandlingRedelivers},
			{"CleanRestartResumes", testCleanRestartResumes},
			{"StartPositions", testStartPositions},
			{"ResetAfterCheckpointReplays", testResetAfterCheckpointReplays},
			{"ResetBeforeCheckpointReplays", testResetBeforeCheckpointReplays},
		}},
		{"NoSkippedEvents", []test{
			{"ConsumerTailsConcurrentWriters", testConsumerTailsConcurrentWriters},
			{"EarlierPartitioningKept", testEarlierPartitioningKept},
		}},
		{"Order", []test{
			{"SameKeyInLogOrder", testSameKeyInLogOrder},
			{"DifferentKeysRunConcurrently", testDifferentKeysRunConcurrently},
			{"StrictTotalOrder", testStrictTotalOrder},
			{"OrderByKeepsOrder", testOrderByKeepsOrder},
		}},
		{"Isolation", []test{
			{"FailuresStayWithTheirEvent", testFailuresStayWithTheirEvent},
			{"SlowConsumerHoldsNoOne", testSlowConsumerHoldsNoOne},
			{"RetriesBackOff", testRetriesBackOff},
			{"DeadLetterRetriedByOperator", testDeadLetterRetriedByOperator},
		}},
		{"IdempotentLogging", []test{
			{"RetriedLogStoredOnce", testRetriedLogStoredOnce},
			{"ConcurrentRetriesStoredOnce", testConcurrentRetriesStoredOnce},
			{"AmbiguousFailureReported", testAmbiguousFailureReported},
		}},
		{"ScaleOut", []test{
			{"PartitionsSplitAndMoveOnCrash", testPartitionsSplitAndMoveOnCrash},
			{"TakeoverWhileReading", testTakeoverWhileReading},
			{"KeylessEventsShared", testKeylessEventsShared},
		}},
		{"Validation", []test{
			{"DeclaredTypeRejectsBadData", testDeclaredTypeRejectsBadData},
			{"UndeclaredPolicy", testUndeclaredPolicy},
		}},
		{"BadInput", []test{
			{"RejectedWithoutCorruption", testRejectedWithoutCorruption},
			{"LargestEventRoundTrips", testLargestEventRoundTrips},
			{"OddButValidJSON", testOddButValidJSON},
			{"BrokenStoreRecovers", testBrokenStoreRecovers},
		}},
	}
}
