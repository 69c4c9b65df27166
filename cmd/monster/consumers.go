package main

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/gomonster/monster/daemon"
)

// ConsumersCommand lists consumers: name, types, position, lag, in
// flight, failures and dead letters.
type ConsumersCommand struct {
	base
	target target
}

// ParseFlags implements Command.
func (c *ConsumersCommand) ParseFlags(ctx context.Context, args []string) error {
	fs := newFlagSet("consumers", "consumers", &c.base)
	c.target.register(fs, &c.base)
	rest, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if len(rest) > 0 {
		return usageError(fs, "consumers takes no arguments, got %q", rest)
	}
	return nil
}

// Run implements Command.
func (c *ConsumersCommand) Run(ctx context.Context) error {
	ops, done, err := c.target.open(ctx)
	if err != nil {
		return err
	}
	defer done()
	cs, err := ops.Consumers(ctx)
	if err != nil {
		return err
	}
	if c.target.json {
		return writeJSON(c.stdout, cs)
	}
	tw := newTable(c.stdout)
	fmt.Fprintln(tw, "NAME\tTYPES\tPOSITION\tLAG\tIN FLIGHT\tFAILURES\tDEAD LETTERS\tWEBHOOK")
	for _, x := range cs {
		hook := ""
		if x.Webhook != nil {
			hook = x.Webhook.URL
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\t%d\t%d\t%s\n", x.Name, shorten(strings.Join(x.Types, ","), 40),
			positionCell(x), x.Lag, x.InFlight, x.Failures, x.DeadLetters, hook)
	}
	return tw.Flush()
}

// positionCell is a consumer's position, or "not started" for a declared
// consumer that has none in the store yet.
func positionCell(c daemon.Consumer) string {
	if c.NotStarted {
		return "not started"
	}
	return strconv.FormatInt(c.Position, 10)
}
