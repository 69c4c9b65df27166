// Package crashworker is the child process of the multi-process tests in
// package crashtest, as a library: a worker command is a main package that
// imports the stores it needs for their side effects and calls Main (the
// SQLite one is ../worker; store/postgres has its own). A worker either logs
// events into a store (produce) or runs a consumer over them (consume
// NAME), and records what it did in journal files that the tests check
// after killing and restarting it.
//
//	worker [flags] produce
//	worker [flags] consume NAME
//
// produce logs events of type "crash.event" with -keys keys; each event's
// data carries its key and a per-key sequence number starting at 1. It
// carries on from the highest sequence number of each key already in the
// store, so a restarted producer continues where a killed one stopped.
// Each Log is idempotent (key/seq as idempotency key) and retried on error.
// After each Log that returned nil it appends one record to -journal and
// syncs it:
//
//	#P <eventID> <key> <seq> .
//
// consume runs consumer NAME over "crash.*" and, in the handler, before
// returning nil, appends one record to -journal (opened O_APPEND, one write
// per record, then fsync), so that the file's record order is the order of
// handling across all the processes sharing the journal:
//
//	#H <consumer> <pid> <eventID> <key> <seq> <attempt> <start> <end> .
//
// where start and end are when the handler began and finished (Unix
// nanoseconds).
//
// If two events of one key run at once in this process, it appends
// "#O <consumer> <pid> <key> <seq> ." (an ordering violation).
//
// Every record starts with '#' and ends with " .\n". A process killed in
// the middle of a write (the kernel may stop a write at a page boundary
// when SIGKILL arrives) leaves a torn record without its end; the next
// record, possibly another process's, follows it on the same line, and
// the '#' lets a reader find it.
//
// Both modes stop gracefully on SIGTERM or SIGINT and then exit 0; produce
// with -count also exits 0 once it has logged that many events.
//
// Operational messages and errors go to stderr; lines starting with
// "worker: ERROR" are errors the tests report.
package crashworker

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"os/signal"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/gomonster/monster"
)

// EventType is the type of the events the producer logs.
const EventType = "crash.event"

// Data is the payload of an event.
type Data struct {
	Key string `json:"key"`
	Seq int    `json:"seq"`
}

type config struct {
	store       string
	journal     string
	keys        int
	count       int
	writers     int
	interval    time.Duration
	concurrency int
	partitions  int
	lease       time.Duration
	poll        time.Duration
	checkpoint  time.Duration
	handleDelay time.Duration
	member      string
	fsync       bool
	logLevel    string
}

// Main runs the worker with the command line's arguments and exits.
func Main() {
	var c config
	flag.StringVar(&c.store, "store", "", "store path or URL (required)")
	flag.StringVar(&c.journal, "journal", "", "journal file to append to (required)")
	flag.IntVar(&c.keys, "keys", 20, "produce: number of keys (key-00 ...)")
	flag.IntVar(&c.count, "count", 0, "produce: stop after logging this many events (0: until killed)")
	flag.IntVar(&c.writers, "writers", 4, "produce: goroutines logging at once (each owns a set of keys)")
	flag.DurationVar(&c.interval, "interval", 5*time.Millisecond, "produce: pause after each Log, per writer")
	flag.IntVar(&c.concurrency, "concurrency", 4, "consume: ConsumerOptions.Concurrency")
	flag.IntVar(&c.partitions, "partitions", 16, "consume: ConsumerOptions.Partitions")
	flag.DurationVar(&c.lease, "lease", time.Second, "consume: Options.LeaseTTL")
	flag.DurationVar(&c.poll, "poll", 20*time.Millisecond, "consume: Options.PollInterval")
	flag.DurationVar(&c.checkpoint, "checkpoint", 50*time.Millisecond, "consume: Options.CheckpointInterval")
	flag.DurationVar(&c.handleDelay, "handle-delay", 2*time.Millisecond, "consume: handler works for a random time up to this")
	flag.StringVar(&c.member, "member", "", "consume: Options.MemberID (default: the library's)")
	flag.BoolVar(&c.fsync, "fsync", true, "fsync the journal after each line")
	flag.StringVar(&c.logLevel, "log-level", "warn", "stderr log level: debug, info, warn, error")
	flag.Parse()

	args := flag.Args()
	if c.store == "" || c.journal == "" || len(args) == 0 {
		usage()
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	var err error
	switch {
	case args[0] == "produce" && len(args) == 1:
		err = produce(ctx, c)
	case args[0] == "consume" && len(args) == 2:
		err = consume(ctx, c, args[1])
	default:
		usage()
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "worker: ERROR: %v\n", err)
		os.Exit(1)
	}
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: worker -store PATH -journal PATH [flags] produce | consume NAME")
	flag.PrintDefaults()
	os.Exit(2)
}

func logger(c config) *slog.Logger {
	var level slog.Level
	if err := level.UnmarshalText([]byte(c.logLevel)); err != nil {
		level = slog.LevelWarn
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level})).
		With("pid", os.Getpid())
}

// journal appends lines to a file shared with other processes.
type journal struct {
	f     *os.File
	fsync bool
}

func openJournal(path string, fsync bool) (*journal, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return nil, err
	}
	return &journal{f: f, fsync: fsync}, nil
}

// append writes a record in one write, then syncs.
func (j *journal) append(line string) error {
	if _, err := j.f.WriteString(line); err != nil {
		return fmt.Errorf("journal: %w", err)
	}
	if j.fsync {
		if err := j.f.Sync(); err != nil {
			return fmt.Errorf("journal: sync: %w", err)
		}
	}
	return nil
}

func keyName(i int) string { return fmt.Sprintf("key-%02d", i) }

// produce logs events until ctx ends or c.count events are logged.
func produce(ctx context.Context, c config) error {
	log := logger(c)
	m, err := monster.Open(ctx, c.store, &monster.Options{Logger: log})
	if err != nil {
		return err
	}
	defer m.Close()
	j, err := openJournal(c.journal, c.fsync)
	if err != nil {
		return err
	}

	// Carry on from what the store holds: an event whose Log committed
	// but whose journal line was never written (a kill in between) is in
	// the store, and its sequence number must not be used again.
	next := make(map[string]int, c.keys)
	for i := range c.keys {
		next[keyName(i)] = 1
	}
	var after int64
	for {
		evs, err := m.Events(ctx, after, 1000)
		if err != nil {
			return err
		}
		if len(evs) == 0 {
			break
		}
		for _, e := range evs {
			after = e.Position
			if e.Type != EventType {
				continue
			}
			var d Data
			if err := json.Unmarshal(e.Data, &d); err != nil {
				return fmt.Errorf("event %s at %d: %w", e.ID, e.Position, err)
			}
			if _, ok := next[d.Key]; ok && d.Seq >= next[d.Key] {
				next[d.Key] = d.Seq + 1
			}
		}
	}

	var logged atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, c.writers)
	for w := range c.writers {
		var keys []string
		for i := w; i < c.keys; i += c.writers {
			keys = append(keys, keyName(i))
		}
		if len(keys) == 0 {
			continue
		}
		own := make(map[string]int, len(keys)) // next seq of each key of this writer
		for _, k := range keys {
			own[k] = next[k]
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(os.Getpid()), uint64(w)))
			for ctx.Err() == nil {
				if c.count > 0 && logged.Add(1) > int64(c.count) {
					return
				}
				key := keys[rng.IntN(len(keys))]
				seq := own[key]
				if err := logOne(ctx, m, log, j, key, seq); err != nil {
					if ctx.Err() == nil {
						errs <- err
					}
					return
				}
				own[key] = seq + 1
				if c.interval > 0 {
					select {
					case <-ctx.Done():
					case <-time.After(c.interval):
					}
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	return <-errs
}

// logOne logs seq of key, retrying failures (the idempotency key makes a
// retry of an ambiguous failure safe), then journals it.
func logOne(ctx context.Context, m *monster.Monster, log *slog.Logger, j *journal, key string, seq int) error {
	for attempt := 1; ; attempt++ {
		e, err := m.Log(ctx, EventType, Data{Key: key, Seq: seq},
			monster.WithKey(key), monster.WithIdempotencyKey(fmt.Sprintf("%s/%d", key, seq)))
		if err == nil {
			return j.append(fmt.Sprintf("#P %s %s %d .\n", e.ID, key, seq))
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		fmt.Fprintf(os.Stderr, "worker: ERROR: log %s/%d (attempt %d, will retry): %v\n", key, seq, attempt, err)
		if attempt >= 20 {
			return fmt.Errorf("log %s/%d: giving up after %d attempts: %w", key, seq, attempt, err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Duration(attempt) * 50 * time.Millisecond):
		}
	}
}

// consume runs consumer name until ctx ends.
func consume(ctx context.Context, c config, name string) error {
	log := logger(c)
	m, err := monster.Open(ctx, c.store, &monster.Options{
		Logger:             log,
		LeaseTTL:           c.lease,
		PollInterval:       c.poll,
		CheckpointInterval: c.checkpoint,
		MemberID:           c.member,
		ShutdownTimeout:    10 * time.Second,
	})
	if err != nil {
		return err
	}
	j, err := openJournal(c.journal, c.fsync)
	if err != nil {
		m.Close()
		return err
	}
	pid := os.Getpid()

	var mu sync.Mutex
	running := map[string]int{} // key -> seq being handled in this process
	handler := func(ctx context.Context, e monster.RawEvent) error {
		start := time.Now()
		var d Data
		if err := json.Unmarshal(e.Data, &d); err != nil {
			return fmt.Errorf("event %s: bad data %q: %w", e.ID, e.Data, err)
		}
		if d.Key != e.Key {
			fmt.Fprintf(os.Stderr, "worker: ERROR: event %s has key %q but data key %q\n", e.ID, e.Key, d.Key)
		}
		mu.Lock()
		other, busy := running[e.Key]
		running[e.Key] = d.Seq
		mu.Unlock()
		if busy {
			fmt.Fprintf(os.Stderr, "worker: ERROR: %s: key %s: seq %d started while seq %d runs\n", name, e.Key, d.Seq, other)
			if err := j.append(fmt.Sprintf("#O %s %d %s %d .\n", name, pid, e.Key, d.Seq)); err != nil {
				return err
			}
		}
		defer func() {
			mu.Lock()
			if running[e.Key] == d.Seq {
				delete(running, e.Key)
			}
			mu.Unlock()
		}()
		if c.handleDelay > 0 {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(rand.N(c.handleDelay)):
			}
		}
		return j.append("#H " + name + " " + strconv.Itoa(pid) + " " + e.ID + " " + e.Key + " " +
			strconv.Itoa(d.Seq) + " " + strconv.Itoa(e.Attempt) + " " +
			strconv.FormatInt(start.UnixNano(), 10) + " " + strconv.FormatInt(time.Now().UnixNano(), 10) + " .\n")
	}
	if err := m.Consume(name, monster.Match("crash.*", handler), &monster.ConsumerOptions{
		Concurrency: c.concurrency,
		Partitions:  c.partitions,
	}); err != nil {
		m.Close()
		return err
	}
	runErr := m.Run(ctx)
	closeErr := m.Close()
	if errors.Is(runErr, context.Canceled) {
		runErr = nil
	}
	return errors.Join(runErr, closeErr)
}
