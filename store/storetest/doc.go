// Package storetest is the conformance suite every Monster store runs: one
// call checks a [store.Store] implementation against the contract of
// package store and against every guarantee of the design, exercised
// through the real runtime.
//
// It is in the spirit of River's riverdrivertest and Watermill's universal
// Pub/Sub tests: a store author writes no test of their own for what the
// contract promises, and a store that passes is a store Monster's users
// can rely on.
//
// # Running it
//
// In the store's package, add one test that gives the suite a [Harness]:
// how to open a fresh, empty store and, when the store can do it, how to
// open the same data again (Reopen, for persistent stores) and how to open
// a second, independent handle on it (Share, for stores several processes
// may use):
//
//	func TestConformance(t *testing.T) {
//		storetest.Run(t, storetest.Harness{
//			Open: func(t *testing.T) store.Store {
//				s, err := mystore.Open(t.Context(), filepath.Join(t.TempDir(), "test.db"), nil)
//				require.NoError(t, err)
//				return s
//			},
//			Reopen: func(t *testing.T, s store.Store) store.Store {
//				path := s.(*mystore.Store).Path()
//				require.NoError(t, s.Close())
//				again, err := mystore.Open(t.Context(), path, nil)
//				require.NoError(t, err)
//				return again
//			},
//			Share: func(t *testing.T, s store.Store) store.Store {
//				other, err := mystore.Open(t.Context(), s.(*mystore.Store).Path(), nil)
//				require.NoError(t, err)
//				return other
//			},
//		})
//	}
//
// Run the suite with the race detector: go test -race ./store/mystore.
// Every test is a parallel subtest, named after what it checks, so one can
// be run alone with -run, for example
// -run 'TestConformance/ScaleOut/TakeoverWhileReading'. The suite takes
// seconds, not minutes: timings are short (10ms polls, leases of a second
// or less), no test sleeps in place of waiting for a condition, and every
// wait has a deadline.
//
// # What it checks
//
// The Store group calls each method of the contract directly, with chosen
// times, members and lease expiries, so that results are exact: append and
// read with every field, positions, idempotency keys, consumers, heartbeats,
// claims and leases, checkpoints, resets, dead letters, cancelled contexts,
// Close, persistence and shared handles. Its ReadNeverSkips test is the
// no-skip rule of package store under concurrent writers.
//
// The other groups follow the guarantees listed in the package
// documentation of monster one by one, under the same names (Durable,
// AtLeastOnce, NoSkippedEvents, Order, Isolation, IdempotentLogging,
// ScaleOut, Validation, BadInput), with
// Monsters opened on the store through monster.New. Store wrappers
// stand in for what a test process cannot do for real: a process that
// crashes (its calls fail, so it neither renews nor releases leases), a
// checkpoint that never reaches the store, a full disk, a reply lost after
// a commit, a read that is slow at the worst moment.
//
// # Limits and capabilities
//
// A store's harness declares what the store cannot do in [Harness.Limits]
// (keep data across Close, be opened by another process); the tests that
// need it skip and say why. Reopen must be set unless the store is
// declared not persistent, and Share unless it is declared not shared:
// Run fails at once otherwise, so a forgotten Reopen cannot pass as a
// store that keeps nothing. The optional interfaces of package store are
// found by type assertion: a store that implements [store.SQLTxAppender]
// or [store.Notifier] has it tested as well.
//
// A store that fails a test has broken a promise Monster's users rely on.
// Some tests fail because of the runtime rather than the store; their
// messages say which guarantee was broken, and they fail the same way on
// every store.
package storetest
