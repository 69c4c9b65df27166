package main

import (
	"context"
	"fmt"

	"github.com/gomonster/monster/daemon"
)

// ResetCommand moves a consumer to the beginning, the end, a position or a
// time.
type ResetCommand struct {
	base
	target   target
	consumer string
	to       string
}

// ParseFlags implements Command.
func (c *ResetCommand) ParseFlags(ctx context.Context, args []string) error {
	fs := newFlagSet("reset", "reset CONSUMER --to beginning|end|POSITION|TIME", &c.base)
	c.target.register(fs, &c.base)
	fs.StringVar(&c.to, "to", "", "beginning, end, a position (the first event handled again) or an RFC 3339 time")
	rest, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if len(rest) != 1 {
		return usageError(fs, "reset wants one CONSUMER, got %d arguments", len(rest))
	}
	if c.to == "" {
		return usageError(fs, "reset needs --to")
	}
	if _, err := daemon.ParseStart(c.to); err != nil {
		return err
	}
	c.consumer = rest[0]
	return nil
}

// Run implements Command.
func (c *ResetCommand) Run(ctx context.Context) error {
	ops, done, err := c.target.open(ctx)
	if err != nil {
		return err
	}
	defer done()
	if err := ops.ResetConsumer(ctx, c.consumer, c.to); err != nil {
		return err
	}
	cs, err := ops.Consumer(ctx, c.consumer)
	if err != nil {
		return err
	}
	if c.target.json {
		return writeJSON(c.stdout, cs)
	}
	_, err = fmt.Fprintf(c.stdout, "consumer %s reset to %s: position %d, lag %d\n", c.consumer, c.to, cs.Position, cs.Lag)
	return err
}
