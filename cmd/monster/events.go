package main

import (
	"context"
	"fmt"
	"io"

	"github.com/gomonster/monster/daemon"
)

// EventsCommand lists events, oldest first.
type EventsCommand struct {
	base
	target target
	query  daemon.EventsQuery
}

// ParseFlags implements Command.
func (c *EventsCommand) ParseFlags(ctx context.Context, args []string) error {
	fs := newFlagSet("events", "events [--type T] [--after P] [--limit N]", &c.base)
	c.target.register(fs, &c.base)
	fs.StringVar(&c.query.Type, "type", "", "only events of this type or glob (\"user.*\")")
	fs.Int64Var(&c.query.After, "after", 0, "only events after this position")
	fs.IntVar(&c.query.Limit, "limit", 100, "at most this many events (1 to 1000)")
	rest, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if len(rest) > 0 {
		return usageError(fs, "events takes no arguments, got %q", rest)
	}
	return nil
}

// Run implements Command.
func (c *EventsCommand) Run(ctx context.Context) error {
	ops, done, err := c.target.open(ctx)
	if err != nil {
		return err
	}
	defer done()
	page, err := ops.Events(ctx, c.query)
	if err != nil {
		return err
	}
	if c.target.json {
		return writeJSON(c.stdout, page)
	}
	tw := newTable(c.stdout)
	fmt.Fprintln(tw, "POSITION\tTIME\tTYPE\tKEY\tDATA")
	for _, e := range page.Events {
		printEventRow(tw, e)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if page.HasMore {
		fmt.Fprintf(c.stdout, "(more: --after %d)\n", page.NextAfter)
	}
	return nil
}

func printEventRow(w io.Writer, e daemon.Event) {
	fmt.Fprintf(w, "%d\t%s\t%s\t%s\t%s\n", e.Position, e.Time.Format("2006-01-02 15:04:05.000"), e.Type, e.Key, shorten(string(e.Data), 80))
}
