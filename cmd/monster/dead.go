package main

import (
	"context"
	"fmt"
	"time"

	"github.com/gomonster/monster/daemon"
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
	wait     bool
	progress progressFlag
}

// ParseFlags implements Command.
func (c *DeadCommand) ParseFlags(ctx context.Context, args []string) error {
	fs := newFlagSet("dead", "dead list|retry|discard CONSUMER [ID...|--all] [--wait]", &c.base)
	c.target.register(fs, &c.base)
	fs.BoolVar(&c.all, "all", false, "retry or discard every dead letter of the consumer")
	fs.IntVar(&c.limit, "limit", 0, "list at most this many (0: all)")
	fs.BoolVar(&c.wait, "wait", false, "retry: wait until the processes running the consumer have run the retried dead letters, showing progress")
	registerProgress(fs, &c.progress)
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
	if c.wait && c.action != "retry" {
		return usageError(fs, "--wait is for dead retry")
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
			// The shape of GET /v1/consumers/{name}/dead.
			return writeJSON(c.stdout, daemon.DeadLetterList{DeadLetters: orEmpty(dls)})
		}
		tw := newTable(c.stdout)
		fmt.Fprintln(tw, "EVENT ID\tPOSITION\tTYPE\tKEY\tDATA\tATTEMPTS\tFAILED AT\tRETRYING\tERROR")
		for _, d := range dls {
			retrying := ""
			if d.RetryRequested {
				retrying = "yes"
			}
			// The data is cut to a preview; --json has it whole.
			fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\t%d\t%s\t%s\t%s\n", d.EventID, d.Position, d.Type, cell(d.Key, 30),
				cell(string(d.Data), 40), d.Attempts, d.FailedAt.Format("2006-01-02 15:04:05"), retrying, shorten(d.Error, 80))
		}
		return tw.Flush()
	case "retry":
		var retrying map[string]bool // the dead letters retried, for --wait
		if c.wait {
			if retrying, err = c.retrying(ctx, ops); err != nil {
				return err
			}
		}
		n, err := ops.RetryDeadLetters(ctx, c.consumer, c.ids...)
		if err != nil {
			return err
		}
		if c.wait {
			res, err := waitRetried(ctx, ops, c.consumer, retrying, n, newProgress(c.stderr, c.progress, c.target.json))
			if err != nil {
				return err
			}
			if c.target.json {
				err = writeJSON(c.stdout, res)
			} else {
				_, err = fmt.Fprintf(c.stdout, "%d dead letters of %s retried: %d handled, %d dead again\n", n, c.consumer, res.Handled, res.DeadAgain)
			}
			if err == nil && res.DeadAgain > 0 {
				// A script waiting for the retry must see that it did not
				// work: exit 1, with the result printed all the same.
				err = fmt.Errorf("monster: %d of the %d retried dead letters of %s failed again; see why with: monster dead list %s",
					res.DeadAgain, n, c.consumer, c.consumer)
			}
			return err
		}
		if c.target.json {
			return writeJSON(c.stdout, daemon.RetriedCount{Retried: n})
		}
		_, err = fmt.Fprintf(c.stdout, "%d dead letters of %s marked for retry; the processes running it pick them up\n", n, c.consumer)
		return err
	default:
		n, err := ops.DiscardDeadLetters(ctx, c.consumer, c.ids...)
		if err != nil {
			return err
		}
		if c.target.json {
			return writeJSON(c.stdout, daemon.DiscardedCount{Discarded: n})
		}
		_, err = fmt.Fprintf(c.stdout, "%d dead letters of %s discarded (the events stay in the log)\n", n, c.consumer)
		return err
	}
}

// retryResult is what dead retry --wait prints with --json.
type retryResult struct {
	Retried   int `json:"retried"`
	Handled   int `json:"handled"`
	DeadAgain int `json:"dead_again"`
}

// retrying returns the IDs of the dead letters a retry will mark: those
// named, or (--all) every dead letter of the consumer now.
func (c *DeadCommand) retrying(ctx context.Context, ops daemon.Operations) (map[string]bool, error) {
	ids := map[string]bool{}
	for _, id := range c.ids {
		ids[id] = true
	}
	if !c.all {
		return ids, nil
	}
	dls, err := ops.DeadLetters(ctx, c.consumer, 0)
	if err != nil {
		return nil, err
	}
	for _, d := range dls {
		ids[d.EventID] = true
	}
	return ids, nil
}

// waitRetried polls the consumer's dead letters until none is waiting for
// its retry, showing how many of the retried ones were handled (they are
// gone) and how many failed again (back, not waiting any more).
func waitRetried(ctx context.Context, ops daemon.Operations, name string, retrying map[string]bool, retried int, prog *progress) (retryResult, error) {
	tick := time.NewTicker(waitPoll)
	defer tick.Stop()
	res := retryResult{Retried: retried}
	for {
		dls, err := ops.DeadLetters(ctx, name, 0)
		if err != nil {
			prog.clear()
			return res, err
		}
		waiting, back := 0, 0
		for _, d := range dls {
			switch {
			case d.RetryRequested:
				waiting++
			case retrying[d.EventID]:
				back++ // marked by this retry, not waiting: it failed again
			}
		}
		res.DeadAgain = back
		res.Handled = max(retried-waiting-back, 0)
		if waiting == 0 {
			prog.done("dead letters of %s retried: %s of %s done, %s handled, %s dead again, in %.1fs", name,
				count(int64(retried)), count(int64(retried)), count(int64(res.Handled)), count(int64(back)), prog.elapsed().Seconds())
			return res, nil
		}
		done := int64(max(retried-waiting, 0))
		prog.update("dead letters of %s: %s of %s retried, %s handled, %s dead again (%s)", name,
			count(done), count(int64(retried)), count(int64(res.Handled)), count(int64(back)), prog.rate(done))
		select {
		case <-ctx.Done():
			prog.clear()
			return res, fmt.Errorf("monster: stopped waiting for %d dead letters of %s to be retried: %w", waiting, name, context.Cause(ctx))
		case <-tick.C:
		}
	}
}
