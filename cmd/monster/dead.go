package main

import (
	"context"
	"fmt"
)

// DeadCommand lists, retries or discards a consumer's dead letters.
type DeadCommand struct {
	base
	target   target
	action   string // list, retry or discard
	consumer string
	ids      []string
	all      bool
	limit    int
}

// ParseFlags implements Command.
func (c *DeadCommand) ParseFlags(ctx context.Context, args []string) error {
	fs := newFlagSet("dead", "dead list|retry|discard CONSUMER [ID...|--all]", &c.base)
	c.target.register(fs, &c.base)
	fs.BoolVar(&c.all, "all", false, "retry or discard every dead letter of the consumer")
	fs.IntVar(&c.limit, "limit", 0, "list at most this many (0: all)")
	rest, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if len(rest) < 2 {
		return usageError(fs, "dead wants an action (list, retry, discard) and a CONSUMER")
	}
	c.action, c.consumer, c.ids = rest[0], rest[1], rest[2:]
	switch c.action {
	case "list":
		if len(c.ids) > 0 || c.all {
			return usageError(fs, "dead list takes only a CONSUMER")
		}
	case "retry", "discard":
		if len(c.ids) == 0 && !c.all {
			return usageError(fs, "dead %s wants event IDs or --all", c.action)
		}
		if len(c.ids) > 0 && c.all {
			return usageError(fs, "dead %s takes event IDs or --all, not both", c.action)
		}
	default:
		return usageError(fs, "unknown dead-letter action %q: want list, retry or discard", c.action)
	}
	return nil
}

// Run implements Command.
func (c *DeadCommand) Run(ctx context.Context) error {
	ops, done, err := c.target.open(ctx)
	if err != nil {
		return err
	}
	defer done()
	switch c.action {
	case "list":
		dls, err := ops.DeadLetters(ctx, c.consumer, c.limit)
		if err != nil {
			return err
		}
		if c.target.json {
			return writeJSON(c.stdout, dls)
		}
		tw := newTable(c.stdout)
		fmt.Fprintln(tw, "EVENT ID\tPOSITION\tTYPE\tATTEMPTS\tFAILED AT\tRETRYING\tERROR")
		for _, d := range dls {
			retrying := ""
			if d.RetryRequested {
				retrying = "yes"
			}
			fmt.Fprintf(tw, "%s\t%d\t%s\t%d\t%s\t%s\t%s\n", d.EventID, d.Position, d.Type, d.Attempts,
				d.FailedAt.Format("2006-01-02 15:04:05"), retrying, shorten(d.Error, 80))
		}
		return tw.Flush()
	case "retry":
		n, err := ops.RetryDeadLetters(ctx, c.consumer, c.ids...)
		if err != nil {
			return err
		}
		if c.target.json {
			return writeJSON(c.stdout, map[string]int{"retried": n})
		}
		_, err = fmt.Fprintf(c.stdout, "%d dead letters of %s marked for retry; the processes running it pick them up\n", n, c.consumer)
		return err
	default:
		n, err := ops.DiscardDeadLetters(ctx, c.consumer, c.ids...)
		if err != nil {
			return err
		}
		if c.target.json {
			return writeJSON(c.stdout, map[string]int{"discarded": n})
		}
		_, err = fmt.Fprintf(c.stdout, "%d dead letters of %s discarded (the events stay in the log)\n", n, c.consumer)
		return err
	}
}
