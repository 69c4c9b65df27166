// Command background is pymonster's consume_events_debug_thread: one
// process that runs the walkthrough's consumers in the background and logs
// its events, printing both sides, then waits for the consumers to handle
// everything and exits. It needs nothing installed: the store is an SQLite
// file, and the program compiles no other store's driver.
//
// By default each run starts clean: the file is a new one in a temporary
// directory, removed when the program exits, so every run prints the same
// positions. -store PATH (or MONSTER_STORE) keeps the log in PATH instead;
// run again on the same file, the program logs the next events after the
// ones already there and the consumers, which remember their positions,
// print only the new ones.
//
//	go run ./examples/pymonster/background [-store PATH] [-n 3]
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"time"

	"github.com/gomonster/monster"
	"github.com/gomonster/monster/examples/pymonster"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr); err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "background:", err)
		}
		os.Exit(2)
	}
}

// run is the program; getenv gives MONSTER_STORE.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("background", flag.ContinueOnError)
	fs.SetOutput(stderr)
	storePath := fs.String("store", getenv("MONSTER_STORE"),
		"SQLite file `path` to keep the log in ($MONSTER_STORE sets the default; without either, a new file removed at exit)")
	rounds := fs.Int("n", 3, "rounds of the event_1/custom_1 loop (the README's walkthrough has 20)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *storePath == "" {
		dir, err := os.MkdirTemp("", "monster-background-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(dir)
		*storePath = filepath.Join(dir, monster.DefaultPath)
		fmt.Fprintf(stderr, "store: %s (new, removed at exit; -store PATH keeps the log)\n", *storePath)
	}

	// Consumers print from their own goroutines: serialise the lines.
	out := pymonster.Synchronized(stdout)
	m, err := monster.Open(ctx, *storePath, &monster.Options{
		Verbose: true, Output: out,
		Logger: slog.New(slog.NewTextHandler(stderr, nil)), // retries, dead letters
	})
	if errors.Is(err, monster.ErrUnknownStore) {
		return fmt.Errorf("%w; this program runs on an SQLite file only: the producer and consumer programs open postgres:// and mongodb:// URLs", err)
	}
	if err != nil {
		return err
	}
	defer m.Close()
	events := pymonster.Declare(m, out)
	if err := pymonster.RegisterConsumers(m, out); err != nil {
		return err
	}

	// pymonster.consume_events_debug_thread(): the consumers run in this
	// process, in the background, until Stop.
	if err := m.Start(ctx); err != nil {
		return err
	}

	if _, err := m.Log(ctx, pymonster.Event1, "a really cool message"); err != nil {
		return err
	}
	if _, err := events.BoughtShirt.Log(ctx, pymonster.Shirt{User: "gordon", Quantity: 2}); err != nil {
		return err
	}
	if _, err := m.Log(ctx, pymonster.Custom1, "logging a really great message"); err != nil {
		return err
	}
	for i := range *rounds {
		if _, err := m.Log(ctx, pymonster.Event1, fmt.Sprintf("Logging event_1 %d", i)); err != nil {
			return err
		}
		if _, err := m.Log(ctx, pymonster.Custom1, fmt.Sprintf("Logging custom event %d", i)); err != nil {
			return err
		}
	}

	if err := waitCaughtUp(ctx, m, pymonster.ConsumerNames()); err != nil {
		return err
	}
	if err := m.Stop(ctx); err != nil {
		return err
	}
	return m.Close()
}

// waitCaughtUp waits until every named consumer has handled all the events
// of its types logged so far (its lag is 0), or ctx is done.
func waitCaughtUp(ctx context.Context, m *monster.Monster, consumers []string) error {
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for _, name := range consumers {
		for {
			s, err := m.ConsumerStats(ctx, name)
			if err != nil {
				return err
			}
			if s.Lag == 0 {
				break
			}
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-tick.C:
			}
		}
	}
	return nil
}
