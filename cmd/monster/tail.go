package main

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/gomonster/monster/daemon"
)

// TailCommand prints events as they are logged, until interrupted.
type TailCommand struct {
	base
	target target
	query  daemon.TailQuery
}

// ParseFlags implements Command.
func (c *TailCommand) ParseFlags(ctx context.Context, args []string) error {
	fs := newFlagSet("tail", "tail [GLOB...] [--after P]", &c.base)
	c.target.register(fs, &c.base)
	fs.Int64Var(&c.query.After, "after", -1, "start after this position (default: from now)")
	rest, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	c.query.Types = rest
	return nil
}

// Run implements Command. It returns nil when ctx ends.
func (c *TailCommand) Run(ctx context.Context) error {
	ops, done, err := c.target.open(ctx)
	if err != nil {
		return err
	}
	defer done()
	enc := json.NewEncoder(c.stdout)
	return ops.Tail(ctx, c.query, func(e daemon.Event) error {
		if c.target.json {
			return enc.Encode(e) // one JSON object per line
		}
		_, err := fmt.Fprintln(c.stdout, tailLine(e))
		return err
	})
}

// tailLine is one event as tail prints it: position, time (UTC), type, key
// ("-" when it has none, so that every line has the same columns) and data.
func tailLine(e daemon.Event) string {
	key := e.Key
	if key == "" {
		key = "-"
	}
	return fmt.Sprintf("%d  %s  %s  %s  %s", e.Position, e.Time.UTC().Format("15:04:05.000"), e.Type, strings.Join(strings.Fields(key), " "), e.Data)
}
