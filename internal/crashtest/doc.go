// Package crashtest holds Monster's multi-process tests: several OS
// processes (a worker command, built once per test run) share one store,
// get killed with SIGKILL at random moments and restarted, and the tests
// check from the journals the workers write that no acknowledged event was
// lost, none was invented, and each consumer handled each key's events one
// at a time and in log order (the guarantees AtLeastOnce, NoSkippedEvents,
// Order and ScaleOut in monster's package documentation).
//
// The harness is a package, not only tests, so that the stores in modules
// of their own run the same scenarios: a store's module builds its worker
// command (a main package that imports the store and calls
// crashworker.Main) with BuildWorker and calls RunScaleOut with a store
// URL; store/postgres does (TestScaleOut there). Here the worker is
// ./worker and the store an SQLite file:
//
//   - TestScaleOut: RunScaleOut, one consumer in three processes; one is
//     killed; the survivors take over its partitions within the lease
//     time.
//   - TestTakeoverDuringBackfill: the same while the survivor is busy
//     with a backlog.
//   - TestCrash: a producer and two consumers (two names, so each gets
//     every event) killed and restarted round after round, then run to
//     completion; the store must pass PRAGMA integrity_check.
//   - TestClaimDuringRead: in-process and deterministic, a partition
//     claimed while the reader is inside a Read.
//
// Run them with
//
//	go test ./internal/crashtest
//	go test ./internal/crashtest -run Crash -crash.rounds=20 -v   # the full crash test
//
// Flags (after the package): -crash.rounds (default 5), -crash.seed
// (default random, printed), -crash.keep (keep the stores, journals and
// worker logs; the directory is printed).
package crashtest
