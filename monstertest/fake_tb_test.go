package monstertest_test

import (
	"fmt"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeTB is a testing.TB that records failures instead of failing the real
// test, so that tests can check that an assertion fails, and how. Methods it
// does not override (TempDir, Name, ...) go to the real test.
type fakeTB struct {
	testing.TB // the real test; also gives fakeTB testing.TB's private method

	deadline time.Time // returned by Deadline when not zero

	mu       sync.Mutex
	failed   bool
	messages []string
	cleanups []func()
}

func newFakeTB(t *testing.T) *fakeTB { return &fakeTB{TB: t} }

// run calls fn with f the way the testing package runs a test: in its own
// goroutine, so that FailNow can end it, then runs f's cleanups.
func (f *fakeTB) run(fn func(tb testing.TB)) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer f.runCleanups()
		fn(f)
	}()
	<-done
}

func (f *fakeTB) runCleanups() {
	for {
		f.mu.Lock()
		if len(f.cleanups) == 0 {
			f.mu.Unlock()
			return
		}
		fn := f.cleanups[len(f.cleanups)-1]
		f.cleanups = f.cleanups[:len(f.cleanups)-1]
		f.mu.Unlock()
		fn()
	}
}

func (f *fakeTB) Helper() {}

func (f *fakeTB) Cleanup(fn func()) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.cleanups = append(f.cleanups, fn)
}

func (f *fakeTB) Log(args ...any)                 { f.record(false, fmt.Sprintln(args...)) }
func (f *fakeTB) Logf(format string, args ...any) { f.record(false, fmt.Sprintf(format, args...)) }
func (f *fakeTB) Error(args ...any)               { f.record(true, fmt.Sprintln(args...)) }
func (f *fakeTB) Errorf(format string, args ...any) {
	f.record(true, fmt.Sprintf(format, args...))
}
func (f *fakeTB) Fatal(args ...any) { f.record(true, fmt.Sprintln(args...)); f.FailNow() }
func (f *fakeTB) Fatalf(format string, args ...any) {
	f.record(true, fmt.Sprintf(format, args...))
	f.FailNow()
}
func (f *fakeTB) Fail() { f.record(true, "") }
func (f *fakeTB) FailNow() {
	f.Fail()
	runtime.Goexit()
}

func (f *fakeTB) Failed() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.failed
}

// Deadline makes the monstertest waits give up early, as *testing.T's does.
func (f *fakeTB) Deadline() (time.Time, bool) { return f.deadline, !f.deadline.IsZero() }

func (f *fakeTB) record(fail bool, msg string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.failed = f.failed || fail
	if msg = strings.TrimSpace(msg); msg != "" {
		f.messages = append(f.messages, msg)
	}
}

// output returns everything logged or reported, one message a line.
func (f *fakeTB) output() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return strings.Join(f.messages, "\n")
}
