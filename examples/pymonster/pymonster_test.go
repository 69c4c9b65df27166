package pymonster_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/gomonster/monster"
	"github.com/gomonster/monster/examples/pymonster"
	"github.com/gomonster/monster/monstertest"
)

// TestWalkthroughInTwoProcesses runs the README's two terminals as two
// processes on one SQLite file: a consumer started first sees everything
// the producer logs, stops on Ctrl-C, and when started again goes on from
// where it stopped.
func TestWalkthroughInTwoProcesses(t *testing.T) {
	t.Parallel()
	bin := buildCommands(t, "./producer", "./consumer")
	store := filepath.Join(t.TempDir(), "monster.db")

	// Terminal 2: the consumer, waiting for events.
	first := startConsumer(t, bin, store)

	// Terminal 1: the producer, with the README's 20 rounds.
	producerOut := runProducer(t, bin, store, 20)
	require.Len(t, producerOut, 3+1+2*20+20, "3 events, 1 custom line, 20 rounds of 2 events and 1 custom line")
	require.Equal(t, "[CustomEventLogger][custom_1] logging a really great message", producerOut[2])
	require.Equal(t, "[Event][custom_1] Logging custom event 19", producerOut[len(producerOut)-1])

	want := consumerLines(1, 20)
	got := first.waitLines(t, len(want))
	first.interrupt(t)
	require.ElementsMatch(t, want, got)
	requireOrderedPerConsumer(t, got)

	// Five more events, then the consumer again: it prints only those.
	runProducer(t, bin, store, 1)
	second := startConsumer(t, bin, store)
	want = consumerLines(44, 1)
	got = second.waitLines(t, len(want))
	got = append(got, second.interrupt(t)...)
	require.ElementsMatch(t, want, got, "a restarted consumer resumes from its stored position")
}

// consumerLines returns the consumer's lines for a producer run of rounds
// rounds whose first event is at position first.
func consumerLines(first int64, rounds int) []string {
	lines := []string{
		fmt.Sprintf("[Consumer][event_1][%d]: a really cool message", first),
		fmt.Sprintf(`[Consumer][user.bought_shirt][%d]: {"user":"gordon","quantity":2}`, first+1),
		fmt.Sprintf("[CustomConsumer][custom_1][%d]: logging a really great message", first+2),
	}
	for i := range rounds {
		p := first + 3 + 2*int64(i)
		lines = append(lines,
			fmt.Sprintf("[Consumer][event_1][%d]: Logging event_1 %d", p, i),
			fmt.Sprintf("[CustomConsumer][custom_1][%d]: Logging custom event %d", p+1, i))
	}
	return lines
}

// requireOrderedPerConsumer checks that each consumer printed its events in
// log order (the consumers are independent, so their lines interleave).
func requireOrderedPerConsumer(t *testing.T, lines []string) {
	t.Helper()
	last := map[string]int64{}
	for _, l := range lines {
		var consumer, typ string
		var pos int64
		// "[Consumer][event_1][4]: ..." → "Consumer", "event_1", 4
		fields := strings.FieldsFunc(l[:strings.Index(l, ":")], func(r rune) bool { return r == '[' || r == ']' })
		require.Len(t, fields, 3, l)
		consumer, typ = fields[0], fields[1]
		_, err := fmt.Sscan(fields[2], &pos)
		require.NoError(t, err, l)
		key := consumer + "/" + typ
		require.Greater(t, pos, last[key], "%s printed out of order: %s", key, l)
		last[key] = pos
	}
}

// buildCommands builds the packages into a temporary directory and returns
// it.
func buildCommands(t *testing.T, pkgs ...string) string {
	t.Helper()
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skip("the go command is not on PATH; cannot build the example programs")
	}
	dir := t.TempDir()
	// Without -race even in a -race test: the programs are not under test
	// for races here (their own tests are), and a race build links slowly.
	cmd := exec.Command(goTool, append([]string{"build", "-o", dir + string(filepath.Separator)}, pkgs...)...)
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "go build: %s", out)
	return dir
}

func runProducer(t *testing.T, bin, store string, rounds int) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), monstertest.WaitTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(bin, "producer"), "-store", store, "-n", fmt.Sprint(rounds))
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	require.NoError(t, err, "producer: %s", stderr.String())
	return strings.Split(strings.TrimSuffix(string(out), "\n"), "\n")
}

// consumerProcess is a running consumer command and the lines it printed.
type consumerProcess struct {
	cmd    *exec.Cmd
	lines  chan string
	stderr *lockedBuffer
}

// lockedBuffer keeps a process's stderr, readable while it runs.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func startConsumer(t *testing.T, bin, store string) *consumerProcess {
	t.Helper()
	cmd := exec.Command(filepath.Join(bin, "consumer"), "-store", store)
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	p := &consumerProcess{cmd: cmd, lines: make(chan string, 1000), stderr: &lockedBuffer{}}
	cmd.Stderr = p.stderr
	require.NoError(t, cmd.Start())
	t.Cleanup(func() { _ = cmd.Process.Kill() }) // if the test fails before interrupt
	go func() {
		defer close(p.lines)
		s := bufio.NewScanner(stdout)
		for s.Scan() {
			p.lines <- s.Text()
		}
		_, _ = io.Copy(io.Discard, stdout)
	}()
	return p
}

// waitLines waits for n lines.
func (p *consumerProcess) waitLines(t *testing.T, n int) []string {
	t.Helper()
	timeout := time.NewTimer(monstertest.WaitTimeout)
	defer timeout.Stop()
	var got []string
	for len(got) < n {
		select {
		case l, ok := <-p.lines:
			if !ok {
				t.Fatalf("consumer exited after %d of %d lines: %v\nstderr: %s", len(got), n, got, p.stderr)
			}
			got = append(got, l)
		case <-timeout.C:
			t.Fatalf("timed out waiting for %d consumer lines, got %d: %v", n, len(got), got)
		}
	}
	return got
}

// interrupt sends Ctrl-C, checks that the consumer exits cleanly, and
// returns the lines it printed since the last waitLines.
func (p *consumerProcess) interrupt(t *testing.T) []string {
	t.Helper()
	require.NoError(t, p.cmd.Process.Signal(os.Interrupt))
	timeout := time.NewTimer(monstertest.WaitTimeout)
	defer timeout.Stop()
	var rest []string
	for open := true; open; {
		select {
		case l, ok := <-p.lines: // closed when the process closes stdout
			if ok {
				rest = append(rest, l)
			}
			open = ok
		case <-timeout.C:
			_ = p.cmd.Process.Kill()
			t.Fatalf("consumer did not exit on Ctrl-C; stderr: %s", p.stderr)
		}
	}
	err := p.cmd.Wait()
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		t.Fatalf("consumer exited with %v; stderr: %s", err, p.stderr)
	}
	require.NoError(t, err)
	return rest
}

func TestDeclaredShirtIsValidated(t *testing.T) {
	t.Parallel()
	m := monstertest.New(t, nil)
	events := pymonster.Declare(m, io.Discard)
	_, err := events.BoughtShirt.Log(context.Background(), pymonster.Shirt{User: "gordon"})
	var invalid *monster.ValidationError
	require.ErrorAs(t, err, &invalid)
	require.Equal(t, "quantity", invalid.Field)
	monstertest.RequireNotLogged(t, m, pymonster.BoughtShirt)
}

func TestCustomEventLoggerPrintsOnlyForCustom1(t *testing.T) {
	t.Parallel()
	var out bytes.Buffer
	m := monstertest.New(t, &monster.Options{Verbose: true, Output: &out})
	pymonster.Declare(m, &out)
	_, err := m.Log(context.Background(), pymonster.Event1, "a really cool message")
	require.NoError(t, err)
	_, err = m.Log(context.Background(), pymonster.Custom1, "logging a really great message")
	require.NoError(t, err)
	require.Equal(t, "[Event][event_1] a really cool message\n"+
		"[CustomEventLogger][custom_1] logging a really great message\n"+
		"[Event][custom_1] logging a really great message\n", out.String())
}

func TestCustomConsumerRejectsDataThatIsNotAMessage(t *testing.T) {
	t.Parallel()
	var out bytes.Buffer
	failures := &monstertest.HandlerFailures{}
	m := monstertest.New(t, &monster.Options{OnEagerFailure: failures.Record})
	require.NoError(t, pymonster.RegisterConsumers(m, &out))

	_, err := m.Log(context.Background(), pymonster.Custom1, map[string]int{"not": 1})
	require.NoError(t, err, "stored; the consumer's failure is not the producer's")
	require.Equal(t, 1, failures.Len())
	failed := failures.All()[0]
	require.Equal(t, "custom_1", failed.Consumer)
	require.ErrorContains(t, failed, `custom_1 wants a string message, got {"not":1}`)

	_, err = m.Log(context.Background(), pymonster.Custom1, "fine")
	require.NoError(t, err)
	require.Equal(t, 1, failures.Len())
	require.Equal(t, "[CustomConsumer][custom_1][2]: fine\n", out.String())
}
