package storetest

import (
	"testing"

	"github.com/gomonster/monster/store"
)

// Harness tells the suite how to get stores of the implementation under
// test. Only Open is always required; Reopen and Share are required when the
// store's Features say it can do what they need.
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
	// be there. Required when Features().Persistent; ignored otherwise, and
	// the tests of persistence skip.
	Reopen func(t *testing.T, s store.Store) store.Store

	// Share returns a second handle on the data of s, an open store returned
	// by Open, independent of s as another process's handle would be: its
	// own connections and its own Close, after which s must go on working.
	// What one handle commits the other must see at once. Required when
	// Features().SharedAcrossProcesses.
	//
	// When Share is nil the suite shares s itself: the same instance, used
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
}

// Run runs the whole suite against the stores h gives, each test as a
// parallel subtest of t:
//
//   - Store/...: every method of the [store.Store] contract, called directly
//     with chosen inputs (times, members, expiries), so that the results are
//     exact.
//   - G1_Durable/... to G9_BadInput/...: one group per guarantee of the
//     design, exercised through the real runtime (monster.OpenStore) with
//     fast timings, store wrappers standing in for crashed processes and
//     broken disks, and concurrent writers.
//
// Tests skip, saying why, only for what the store's Features say it cannot
// do. Run fails at once if h is inconsistent with those Features.
func Run(t *testing.T, h Harness) {
	t.Helper()
	if h.Open == nil {
		t.Fatal("storetest: Harness.Open is nil")
	}
	probe := h.Open(t)
	features := probe.Features()
	_, isTx := probe.(store.SQLTxAppender)
	_ = probe.Close()
	switch {
	case features.Persistent && h.Reopen == nil:
		t.Fatal("storetest: the store's Features().Persistent is set but Harness.Reopen is nil")
	case features.SharedAcrossProcesses && h.Share == nil:
		t.Fatal("storetest: the store's Features().SharedAcrossProcesses is set but Harness.Share is nil")
	case features.SQLTx && !isTx:
		t.Fatal("storetest: the store's Features().SQLTx is set but it does not implement store.SQLTxAppender")
	}
	for _, g := range groups() {
		t.Run(g.name, func(t *testing.T) {
			t.Parallel()
			for _, tc := range g.tests {
				t.Run(tc.name, func(t *testing.T) {
					t.Parallel()
					tc.run(t, newBundle(t, h, features))
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
		{"G1_Durable", []test{
			{"LogIsCommittedOnReturn", testLogIsCommittedOnReturn},
			{"LogIsDurableOnReturn", testLogIsDurableOnReturn},
			{"ConcurrentLogsShareCommits", testConcurrentLogsShareCommits},
		}},
		{"G2_AtLeastOnce", []test{
			{"EveryMatchingEventHandled", testEveryMatchingEventHandled},
			{"CrashBeforeCheckpointRedelivers", testCrashBeforeCheckpointRedelivers},
			{"CrashWhileHandlingRedelivers", testCrashWhileHandlingRedelivers},
			{"CleanRestartResumes", testCleanRestartResumes},
			{"StartPositions", testStartPositions},
			{"ResetAfterCheckpointReplays", testResetAfterCheckpointReplays},
			{"ResetBeforeCheckpointReplays", testResetBeforeCheckpointReplays},
		}},
		{"G3_NoSkippedEvents", []test{
			{"ConsumerTailsConcurrentWriters", testConsumerTailsConcurrentWriters},
		}},
		{"G4_Order", []test{
			{"SameKeyInLogOrder", testSameKeyInLogOrder},
			{"DifferentKeysRunConcurrently", testDifferentKeysRunConcurrently},
			{"StrictTotalOrder", testStrictTotalOrder},
		}},
		{"G5_Isolation", []test{
			{"FailuresStayWithTheirEvent", testFailuresStayWithTheirEvent},
			{"SlowConsumerHoldsNoOne", testSlowConsumerHoldsNoOne},
			{"RetriesBackOff", testRetriesBackOff},
			{"DeadLetterRetriedByOperator", testDeadLetterRetriedByOperator},
		}},
		{"G6_IdempotentLogging", []test{
			{"RetriedLogStoredOnce", testRetriedLogStoredOnce},
			{"ConcurrentRetriesStoredOnce", testConcurrentRetriesStoredOnce},
			{"AmbiguousFailureReported", testAmbiguousFailureReported},
		}},
		{"G7_ScaleOut", []test{
			{"PartitionsSplitAndMoveOnCrash", testPartitionsSplitAndMoveOnCrash},
			{"TakeoverWhileReading", testTakeoverWhileReading},
		}},
		{"G8_Validation", []test{
			{"DeclaredTypeRejectsBadData", testDeclaredTypeRejectsBadData},
			{"UndeclaredPolicy", testUndeclaredPolicy},
		}},
		{"G9_BadInput", []test{
			{"RejectedWithoutCorruption", testRejectedWithoutCorruption},
			{"LargestEventRoundTrips", testLargestEventRoundTrips},
			{"OddButValidJSON", testOddButValidJSON},
			{"BrokenStoreRecovers", testBrokenStoreRecovers},
		}},
	}
}
