// Command consumer is the other terminal of pymonster's walkthrough: it
// consumes event_1, user.bought_shirt and custom_1 from the store the
// producer logs into, printing a line per event, until Ctrl-C. Each of its
// consumers keeps its position in the store: started again, it goes on
// where it stopped; started in several terminals, they share the work.
//
//	go run ./examples/pymonster/consumer [-store monster.db]
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
	"syscall"

	"github.com/gomonster/monster"
	"github.com/gomonster/monster/examples/pymonster"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "consumer:", err)
		}
		os.Exit(2)
	}
}

// run consumes until ctx is done (Ctrl-C), then stops gracefully and
// returns nil.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("consumer", flag.ContinueOnError)
	fs.SetOutput(stderr)
	storeURL := pymonster.StoreFlag(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}

	m, err := monster.Open(ctx, *storeURL, &monster.Options{
		Logger: slog.New(slog.NewTextHandler(stderr, nil)), // retries, dead letters
	})
	if err != nil {
		return err
	}
	defer m.Close()

	// pymonster.register_events([[events.event_1, consumers.event_1], ...])
	if err := pymonster.RegisterConsumers(m, pymonster.Synchronized(stdout)); err != nil {
		return err
	}
	fmt.Fprintf(stderr, "consuming %s from %s; press Ctrl-C to stop\n", pymonster.ConsumerNames(), *storeURL)

	// pymonster.consume_events_loop()
	if err := m.Run(ctx); err != nil {
		return err
	}
	return m.Close()
}
