package crashtest

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gomonster/monster"
)

var keepFiles = flag.Bool("crash.keep", false, "keep the stores, journals and worker logs of the tests (the path is printed)")

// quietLogger drops the test process's own operational logs.
var quietLogger = slog.New(slog.NewTextHandler(io.Discard, nil))

// ---------------------------------------------------------------------
// Processes

// harness starts worker processes and kills whatever is left of them when
// the test ends.
type harness struct {
	t      *testing.T
	bin    string
	dir    string // the test's files: stores, journals, logs of the workers
	mu     sync.Mutex
	procs  []*proc
	serial int
}

// newHarnessWith returns a harness that starts the worker binary bin (see
// BuildWorker).
func newHarnessWith(t *testing.T, bin string) *harness {
	h := &harness{t: t, bin: bin}
	if *keepFiles {
		dir, err := os.MkdirTemp("", "monster-"+t.Name()+"-")
		if err != nil {
			t.Fatal(err)
		}
		h.dir = dir
		t.Logf("keeping the store, journals and worker logs in %s", dir)
	} else {
		h.dir = t.TempDir()
	}
	t.Cleanup(func() {
		h.mu.Lock()
		procs := append([]*proc(nil), h.procs...)
		h.mu.Unlock()
		for _, p := range procs {
			if !p.exited() {
				_ = p.cmd.Process.Kill()
				select {
				case <-p.done:
				case <-time.After(10 * time.Second):
					t.Errorf("worker %s (pid %d) did not die after SIGKILL", p.label, p.pid)
				}
			}
		}
		if t.Failed() {
			for _, p := range procs {
				t.Logf("---- log of %s (pid %d, %s):\n%s", p.label, p.pid, p.logPath, tail(p.logPath, 30))
			}
		}
	})
	return h
}

// proc is one worker process.
type proc struct {
	label   string
	pid     int
	cmd     *exec.Cmd
	logPath string
	done    chan struct{} // closed when the process has exited
	waitErr error         // set before done is closed
	killed  bool          // by us, with SIGKILL
}

func (h *harness) start(label string, args ...string) *proc {
	h.t.Helper()
	h.mu.Lock()
	h.serial++
	n := h.serial
	h.mu.Unlock()
	logPath := filepath.Join(h.dir, fmt.Sprintf("%03d-%s.log", n, label))
	logFile, err := os.Create(logPath)
	if err != nil {
		h.t.Fatal(err)
	}
	cmd := exec.Command(h.bin, args...)
	cmd.Stdout = logFile
	cmd.Stderr = logFile
	cmd.SysProcAttr = sysProcAttr()
	if err := cmd.Start(); err != nil {
		logFile.Close()
		h.t.Fatalf("start worker %s: %v", label, err)
	}
	p := &proc{label: label, pid: cmd.Process.Pid, cmd: cmd, logPath: logPath, done: make(chan struct{})}
	go func() {
		p.waitErr = cmd.Wait()
		logFile.Close()
		close(p.done)
	}()
	h.mu.Lock()
	h.procs = append(h.procs, p)
	h.mu.Unlock()
	return p
}

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// kill sends SIGKILL and waits for the process to be gone.
func (p *proc) kill(t *testing.T) {
	t.Helper()
	if p.exited() {
		t.Fatalf("worker %s (pid %d) exited by itself before it was killed: %v\n%s", p.label, p.pid, p.waitErr, tail(p.logPath, 30))
	}
	p.killed = true
	if err := p.cmd.Process.Kill(); err != nil && !errors.Is(err, os.ErrProcessDone) {
		t.Fatalf("kill worker %s: %v", p.label, err)
	}
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		t.Fatalf("worker %s (pid %d) did not die after SIGKILL", p.label, p.pid)
	}
}

// stop sends SIGTERM and returns the process's exit error (nil for exit
// status 0), failing the test if it does not exit within timeout.
func (p *proc) stop(t *testing.T, timeout time.Duration) error {
	t.Helper()
	if p.exited() {
		return fmt.Errorf("worker %s (pid %d) had already exited: %v", p.label, p.pid, p.waitErr)
	}
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatalf("SIGTERM worker %s: %v", p.label, err)
	}
	return p.wait(t, timeout)
}

// wait waits for the process to exit by itself and returns its exit error.
func (p *proc) wait(t *testing.T, timeout time.Duration) error {
	t.Helper()
	select {
	case <-p.done:
		return p.waitErr
	case <-time.After(timeout):
		t.Fatalf("worker %s (pid %d) did not exit within %v\n%s", p.label, p.pid, timeout, tail(p.logPath, 30))
		return nil
	}
}

// mustBeAlive fails the test if a worker that should run has exited.
func mustBeAlive(t *testing.T, procs ...*proc) {
	t.Helper()
	for _, p := range procs {
		if p != nil && p.exited() {
			t.Fatalf("worker %s (pid %d) exited unexpectedly: %v\n%s", p.label, p.pid, p.waitErr, tail(p.logPath, 30))
		}
	}
}

// tail returns the last n lines of a file.
func tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// workerErrors returns the "worker: ERROR" lines of the workers' logs.
func (h *harness) workerErrors() []string {
	h.mu.Lock()
	procs := append([]*proc(nil), h.procs...)
	h.mu.Unlock()
	var out []string
	for _, p := range procs {
		b, err := os.ReadFile(p.logPath)
		if err != nil {
			out = append(out, err.Error())
			continue
		}
		for _, line := range strings.Split(string(b), "\n") {
			if strings.Contains(line, "worker: ERROR") {
				out = append(out, fmt.Sprintf("%s (pid %d): %s", p.label, p.pid, line))
			}
		}
	}
	return out
}

// waitFor polls cond until it reports true, and fails the test with cond's
// last status after timeout. It returns how long it waited.
func waitFor(t *testing.T, what string, timeout time.Duration, cond func() (bool, string)) time.Duration {
	t.Helper()
	start := time.Now()
	deadline := start.Add(timeout)
	for {
		ok, status := cond()
		if ok {
			return time.Since(start)
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s; last status: %s", timeout, what, status)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// ---------------------------------------------------------------------
// Journals

// produced is a "P" line: Log returned nil for this event.
type produced struct {
	id, key string
	seq     int
}

// handled is an "H" line: a handler ran for this event and was about to
// return nil.
type handled struct {
	line     int // 1-based record number in the journal
	consumer string
	pid      int
	id, key  string
	seq      int
	attempt  int
	start    time.Time // when the handler began
	end      time.Time // when it wrote the record
}

// journal is a parsed journal file.
type journal struct {
	produced []produced
	handled  []handled
	overlaps []string // "O" lines: same-key events ran at once in a process
	torn     []string // lines that do not parse (a kill mid-write)
}

// readJournal parses a journal. Records start with '#' and end with " ."
// (see the worker's documentation); a record cut short by a kill has no
// end and is kept in torn, and the record written after it, on the same
// line, is still read.
func readJournal(path string) (journal, error) {
	var j journal
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return j, nil
	}
	if err != nil {
		return j, err
	}
	n := 0
	for _, rec := range strings.Split(string(b), "#") {
		if rec == "" {
			continue
		}
		n++
		f := strings.Fields(rec)
		ok := len(f) >= 2 && f[len(f)-1] == "." && strings.HasSuffix(rec, "\n")
		if ok {
			f = f[:len(f)-1]
			ok = false
			switch {
			case f[0] == "P" && len(f) == 4:
				seq, err := strconv.Atoi(f[3])
				if err == nil && len(f[1]) == 36 {
					j.produced = append(j.produced, produced{id: f[1], key: f[2], seq: seq})
					ok = true
				}
			case f[0] == "H" && len(f) == 9:
				pid, err1 := strconv.Atoi(f[2])
				seq, err2 := strconv.Atoi(f[5])
				attempt, err3 := strconv.Atoi(f[6])
				start, err4 := strconv.ParseInt(f[7], 10, 64)
				end, err5 := strconv.ParseInt(f[8], 10, 64)
				if err1 == nil && err2 == nil && err3 == nil && err4 == nil && err5 == nil && len(f[3]) == 36 && start > 0 && end >= start {
					j.handled = append(j.handled, handled{line: n, consumer: f[1], pid: pid, id: f[3], key: f[4], seq: seq, attempt: attempt,
						start: time.Unix(0, start), end: time.Unix(0, end)})
					ok = true
				}
			case f[0] == "O":
				j.overlaps = append(j.overlaps, rec)
				ok = true
			}
		}
		if !ok {
			j.torn = append(j.torn, fmt.Sprintf("record %d: %q", n, rec))
		}
	}
	return j, nil
}

// ---------------------------------------------------------------------
// Store

// storeEvent is an event as the store holds it.
type storeEvent struct {
	position int64
	id, key  string
	seq      int
}

// readEvents returns every event of m's store in log order.
func readEvents(ctx context.Context, m *monster.Monster) ([]storeEvent, error) {
	var out []storeEvent
	var after int64
	for {
		evs, err := m.Events(ctx, after, 1000)
		if err != nil {
			return nil, err
		}
		if len(evs) == 0 {
			return out, nil
		}
		for _, e := range evs {
			after = e.Position
			var d struct {
				Key string `json:"key"`
				Seq int    `json:"seq"`
			}
			if err := json.Unmarshal(e.Data, &d); err != nil {
				return nil, fmt.Errorf("event %s at %d: %w", e.ID, e.Position, err)
			}
			if d.Key != e.Key {
				return nil, fmt.Errorf("event %s at %d: key %q, data key %q", e.ID, e.Position, e.Key, d.Key)
			}
			out = append(out, storeEvent{position: e.Position, id: e.ID, key: e.Key, seq: d.Seq})
		}
	}
}

// checkLogOrder checks what the per-key order check relies on: each key's
// events carry seq 1, 2, 3, ... in log order, once each.
func checkLogOrder(events []storeEvent) []string {
	var problems []string
	next := map[string]int{}
	for _, e := range events {
		want := next[e.key] + 1
		if e.seq != want {
			problems = append(problems, fmt.Sprintf("store: key %s: event %s at position %d has seq %d, want %d", e.key, e.id, e.position, e.seq, want))
			if len(problems) >= 10 {
				break
			}
		}
		next[e.key] = max(next[e.key], e.seq)
	}
	return problems
}

// consumerReport sums up one consumer's handling.
type consumerReport struct {
	name        string
	lines       int // H lines
	unique      int // events handled
	redelivered int // lines - unique
	overlaps    int // handler runs of one key that overlapped in time
	pids        map[int]int
}

// checkConsumer checks the handled lines of one consumer against the
// store's events: every event handled at least once, nothing handled that
// was never logged, and per-key order (when seq n of a key is first
// handled, seqs 1..n-1 have already been handled).
func checkConsumer(name string, events []storeEvent, lines []handled) (consumerReport, []string) {
	rep := consumerReport{name: name, pids: map[int]int{}}
	byID := make(map[string]storeEvent, len(events))
	for _, e := range events {
		byID[e.id] = e
	}
	var problems []string
	add := func(format string, args ...any) {
		if len(problems) < 20 {
			problems = append(problems, fmt.Sprintf("consumer %s: ", name)+fmt.Sprintf(format, args...))
		}
	}
	seen := map[string]bool{}
	done := map[string]int{}           // key -> highest seq s such that 1..s are handled
	early := map[string]map[int]bool{} // key -> seqs handled beyond done+1
	for _, h := range lines {
		if h.consumer != name {
			continue
		}
		rep.lines++
		rep.pids[h.pid]++
		e, ok := byID[h.id]
		if !ok {
			add("journal record %d: handled event %s (%s/%d) that is not in the store", h.line, h.id, h.key, h.seq)
			continue
		}
		if e.key != h.key || e.seq != h.seq {
			add("journal record %d: event %s handled as %s/%d, stored as %s/%d", h.line, h.id, h.key, h.seq, e.key, e.seq)
		}
		if seen[h.id] {
			continue
		}
		seen[h.id] = true
		if e.seq != done[e.key]+1 {
			add("journal record %d: key %s: seq %d (position %d) handled (pid %d) before seq %d",
				h.line, e.key, e.seq, e.position, h.pid, done[e.key]+1)
			if early[e.key] == nil {
				early[e.key] = map[int]bool{}
			}
			early[e.key][e.seq] = true
			continue
		}
		done[e.key] = e.seq
		for early[e.key][done[e.key]+1] {
			delete(early[e.key], done[e.key]+1)
			done[e.key]++
		}
	}
	rep.unique = len(seen)
	rep.redelivered = rep.lines - rep.unique

	// One at a time per key, across processes too: no two handler runs of
	// the same key overlap in time (a run's interval is from the handler's
	// start to just before it wrote its record, so it is never overstated).
	byKey := map[string][]handled{}
	for _, h := range lines {
		if h.consumer == name {
			byKey[h.key] = append(byKey[h.key], h)
		}
	}
	for key, runs := range byKey {
		sort.Slice(runs, func(i, j int) bool { return runs[i].start.Before(runs[j].start) })
		var last handled // the run that ends last so far
		for i, r := range runs {
			if i > 0 && r.start.Before(last.end) {
				rep.overlaps++
				add("key %s: seq %d (pid %d, record %d) started %v before seq %d (pid %d, record %d) finished",
					key, r.seq, r.pid, r.line, last.end.Sub(r.start), last.seq, last.pid, last.line)
			}
			if i == 0 || r.end.After(last.end) {
				last = r
			}
		}
	}
	var missing []storeEvent
	for _, e := range events {
		if !seen[e.id] {
			missing = append(missing, e)
		}
	}
	if len(missing) > 0 {
		var b strings.Builder
		for i, e := range missing {
			if i == 10 {
				fmt.Fprintf(&b, " ...")
				break
			}
			fmt.Fprintf(&b, " [%d %s %s/%d]", e.position, e.id, e.key, e.seq)
		}
		add("%d of %d stored events were never handled:%s", len(missing), len(events), b.String())
	}
	return rep, problems
}

// handledAll reports whether consumer has handled every event in events,
// for polling; the status names what is left.
func handledAll(path, consumer string, events []storeEvent) (bool, string) {
	j, err := readJournal(path)
	if err != nil {
		return false, err.Error()
	}
	seen := map[string]bool{}
	for _, h := range j.handled {
		if h.consumer == consumer {
			seen[h.id] = true
		}
	}
	left := 0
	for _, e := range events {
		if !seen[e.id] {
			left++
		}
	}
	return left == 0, fmt.Sprintf("%s: %d of %d events not handled yet", consumer, left, len(events))
}
