package main

import (
	"context"
	"fmt"

	"github.com/gomonster/monster/daemon"
)

// TypesCommand lists event types with counts and recent rates.
type TypesCommand struct {
	base
	target target
}

// ParseFlags implements Command.
func (c *TypesCommand) ParseFlags(ctx context.Context, args []string) error {
	fs := newFlagSet("types", "types", &c.base)
	c.target.register(fs, &c.base)
	rest, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if len(rest) > 0 {
		return usageError(fs, "types takes no arguments, got %q", rest)
	}
	return nil
}

// Run implements Command.
func (c *TypesCommand) Run(ctx context.Context) error {
	ops, done, err := c.target.open(ctx)
	if err != nil {
		return err
	}
	defer done()
	types, err := ops.Types(ctx)
	if err != nil {
		return err
	}
	if c.target.json {
		// The shape of GET /v1/types.
		return writeJSON(c.stdout, daemon.TypeList{Types: orEmpty(types)})
	}
	tw := newTable(c.stdout)
	fmt.Fprintln(tw, "TYPE\tCOUNT\tLAST MINUTE\tRATE/S\tDECLARED")
	for _, t := range types {
		declared := ""
		if t.Declared {
			declared = "yes"
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%.2f\t%s\n", t.Type, t.Count, t.LastMinute, t.RatePerSecond, declared)
	}
	return tw.Flush()
}
