package monstertest

import (
	"sync"
	"sync/atomic"
	"testing"

	"github.com/gomonster/monster"
)

// HandlerFailures records the handler failures of an eager Monster, for a
// test that expects some: New fails the test at the first handler failure
// unless the test gives it a HandlerFailures to record them instead.
//
//	failures := &monstertest.HandlerFailures{}
//	m := monstertest.New(t, &monster.Options{OnEagerFailure: failures.Record})
//	... // the code under test logs; a handler fails; Log returns nil
//	require.Equal(t, 1, failures.Len())
//
// The zero value is ready to use; it is safe for concurrent use.
type HandlerFailures struct {
	mu   sync.Mutex
	errs []*monster.HandlerError
}

// Record records a failure; it is what monster.Options.OnEagerFailure
// takes.
func (f *HandlerFailures) Record(err *monster.HandlerError) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.errs = append(f.errs, err)
}

// All returns the failures recorded so far, in order.
func (f *HandlerFailures) All() []*monster.HandlerError {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]*monster.HandlerError(nil), f.errs...)
}

// Len returns the number of failures recorded so far.
func (f *HandlerFailures) Len() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.errs)
}

// failTest returns the OnEagerFailure New uses when the test sets none: the
// failure fails the test (tb.Errorf, which any goroutine may call, since Log
// may run in an HTTP server's), and falls silent once the test's cleanup
// has run, when testing would panic on it.
func failTest(tb testing.TB) func(*monster.HandlerError) {
	var done atomic.Bool
	tb.Cleanup(func() { done.Store(true) })
	return func(err *monster.HandlerError) {
		if done.Load() {
			return
		}
		tb.Errorf("monstertest: %v\n\tThe event is stored, and Log returned no error for it, as in production. "+
			"If the test expects this failure, record it: monster.Options{OnEagerFailure: (&monstertest.HandlerFailures{}).Record}", err)
	}
}
