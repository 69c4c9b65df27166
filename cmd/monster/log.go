package main

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/gomonster/monster/daemon"
)

// LogCommand logs one event and prints it as stored.
type LogCommand struct {
	base
	target target
	event  daemon.NewEvent
}

// ParseFlags implements Command.
func (c *LogCommand) ParseFlags(ctx context.Context, args []string) error {
	fs := newFlagSet("log", "log TYPE JSON [--key K] [--idempotency-key K]", &c.base)
	c.target.register(fs, &c.base)
	c.target.mayCreate = true
	fs.StringVar(&c.event.Key, "key", "", "the event's key: events with one key are handled in order")
	fs.StringVar(&c.event.IdempotencyKey, "idempotency-key", "", "store the event once however often it is logged with this key")
	rest, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if len(rest) != 2 {
		return usageError(fs, "log wants TYPE and JSON, got %d arguments", len(rest))
	}
	c.event.Type = rest[0]
	if !json.Valid([]byte(rest[1])) {
		return usageError(fs, "data %q is not JSON (quote a string: '\"hello\"')", rest[1])
	}
	c.event.Data = json.RawMessage(rest[1])
	return nil
}

// Run implements Command.
func (c *LogCommand) Run(ctx context.Context) error {
	ops, done, err := c.target.open(ctx)
	if err != nil {
		return err
	}
	defer done()
	events, err := ops.Log(ctx, []daemon.NewEvent{c.event})
	if err != nil {
		return err
	}
	e := events[0]
	if c.target.json {
		return writeJSON(c.stdout, e)
	}
	_, err = fmt.Fprintf(c.stdout, "logged %s at position %d\nid:   %s\ntime: %s\ndata: %s\n",
		e.Type, e.Position, e.ID, e.Time.Format("2006-01-02T15:04:05.000Z07:00"), e.Data)
	return err
}
