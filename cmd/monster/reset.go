package main

import (
	"context"
	"fmt"
	"time"

	"github.com/gomonster/monster/daemon"
)

// ResetCommand moves a consumer to the beginning, the end, a position or a
// time.
type ResetCommand struct {
	base
	target   target
	consumer string
	to       string
	wait     bool
	progress progressFlag
}

// ParseFlags implements Command.
func (c *ResetCommand) ParseFlags(ctx context.Context, args []string) error {
	fs := newFlagSet("reset", "reset CONSUMER --to beginning|end|POSITION|TIME [--wait]", &c.base)
	c.target.register(fs, &c.base)
	fs.StringVar(&c.to, "to", "", "beginning, end, a position (the first event handled again) or an RFC 3339 time")
	fs.BoolVar(&c.wait, "wait", false, "wait until the processes running the consumer have caught up (lag 0, nothing in flight), showing progress")
	registerProgress(fs, &c.progress)
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
	if c.wait {
		if cs, err = waitCaughtUp(ctx, ops, c.consumer, newProgress(c.stderr, c.progress, c.target.json)); err != nil {
			return err
		}
	}
	if c.target.json {
		return writeJSON(c.stdout, cs)
	}
	_, err = fmt.Fprintf(c.stdout, "consumer %s reset to %s: position %d, lag %d\n", c.consumer, c.to, cs.Position, cs.Lag)
	return err
}

// waitPoll is how often waiting commands look at a consumer again.
const waitPoll = 250 * time.Millisecond

// waitCaughtUp polls the consumer until its lag is 0 with nothing in
// flight, showing its position, lag and speed on the progress line.
func waitCaughtUp(ctx context.Context, ops daemon.Operations, name string, prog *progress) (daemon.Consumer, error) {
	tick := time.NewTicker(waitPoll)
	defer tick.Stop()
	var start int64 = -1
	for {
		cs, err := ops.Consumer(ctx, name)
		if err != nil {
			prog.clear()
			return cs, err
		}
		if start < 0 {
			start = cs.Position
		}
		if cs.Lag == 0 && cs.InFlight == 0 {
			prog.done("consumer %s caught up: position %s, %s events handled in %.1fs", name, count(cs.Position), count(max(cs.Position-start, 0)), prog.elapsed().Seconds())
			return cs, nil
		}
		note := ""
		if len(cs.Owners) == 0 {
			note = "; no process is running it"
		}
		prog.update("consumer %s: position %s, lag %s, in flight %d (%s)%s", name, count(cs.Position), count(cs.Lag), cs.InFlight, prog.rate(max(cs.Position-start, 0)), note)
		select {
		case <-ctx.Done():
			prog.clear()
			return cs, fmt.Errorf("monster: stopped waiting for consumer %s at position %d, lag %d: %w", name, cs.Position, cs.Lag, context.Cause(ctx))
		case <-tick.C:
		}
	}
}
