// Command producer is the first terminal of pymonster's walkthrough: it
// logs event_1, user.bought_shirt and custom_1 (through its
// CustomEventLogger), then the loop of event_1/custom_1 pairs, printing
// pymonster's verbose lines. Run the consumer command in another terminal,
// before or after, on the same store to watch them being consumed.
//
//	go run ./examples/pymonster/producer [-store monster.db] [-n 20]
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

	"github.com/gomonster/monster"
	"github.com/gomonster/monster/examples/pymonster"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "producer:", err)
		}
		os.Exit(2)
	}
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("producer", flag.ContinueOnError)
	fs.SetOutput(stderr)
	storeURL := pymonster.StoreFlag(fs)
	rounds := fs.Int("n", 20, "rounds of the event_1/custom_1 loop")
	if err := fs.Parse(args); err != nil {
		return err
	}

	// pymonster.verbose = True: print "[Event][type] data" for each event.
	m, err := monster.Open(ctx, *storeURL, &monster.Options{
		Verbose: true, Output: stdout,
		Logger: slog.New(slog.NewTextHandler(stderr, nil)),
	})
	if err != nil {
		return err
	}
	defer m.Close()
	events := pymonster.Declare(m, stdout)

	// events.event_1.log('a really cool message')
	if _, err := m.Log(ctx, pymonster.Event1, "a really cool message"); err != nil {
		return err
	}
	// events.user.bought_shirt.log({'user':'gordon','quantity':2})
	if _, err := events.BoughtShirt.Log(ctx, pymonster.Shirt{User: "gordon", Quantity: 2}); err != nil {
		return err
	}
	// events.custom_1.log('logging a really great message')
	if _, err := m.Log(ctx, pymonster.Custom1, "logging a really great message"); err != nil {
		return err
	}
	// "In the original terminal, fire off some events and watch them get
	// consumed."
	for i := range *rounds {
		if _, err := m.Log(ctx, pymonster.Event1, fmt.Sprintf("Logging event_1 %d", i)); err != nil {
			return err
		}
		if _, err := m.Log(ctx, pymonster.Custom1, fmt.Sprintf("Logging custom event %d", i)); err != nil {
			return err
		}
	}
	return m.Close()
}
