package main

import (
	"context"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/gomonster/monster"
	"github.com/gomonster/monster/daemon"
)

// ConsumersCommand lists consumers: name, types, position, lag, in
// flight, failures, dead letters, and the partitions each member holds;
// with -v, every partition too.
type ConsumersCommand struct {
	base
	target  target
	verbose bool
}

// ParseFlags implements Command.
func (c *ConsumersCommand) ParseFlags(ctx context.Context, args []string) error {
	fs := newFlagSet("consumers", "consumers", &c.base)
	c.target.register(fs, &c.base)
	fs.BoolVar(&c.verbose, "v", false, "also list every partition: checkpoint, owner, lease, in flight, failures")
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
		// The shape of GET /v1/consumers.
		return writeJSON(c.stdout, daemon.ConsumerList{Consumers: orEmpty(cs)})
	}
	now := time.Now()
	tw := newTable(c.stdout)
	fmt.Fprintln(tw, "NAME\tTYPES\tPOSITION\tLAG\tIN FLIGHT\tFAILURES\tDEAD LETTERS\tMEMBERS\tWEBHOOK")
	for _, x := range cs {
		hook := ""
		if x.Webhook != nil {
			hook = x.Webhook.URL
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\t%d\t%d\t%s\t%s\n", x.Name, shorten(strings.Join(x.Types, ","), 40),
			positionCell(x), x.Lag, x.InFlight, x.Failures, x.DeadLetters, membersCell(x.ConsumerStats, now), hook)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if !c.verbose {
		return nil
	}
	for _, x := range cs {
		if err := writePartitions(c.stdout, x.ConsumerStats, now); err != nil {
			return err
		}
	}
	return nil
}

// membersCell is the partitions each member holds, "m1: 8, m2: 8", by
// member name. A member whose every lease has expired (it died or lost the
// store; the others take its partitions over) is marked so, and free
// partitions are counted: during a takeover the cell shows who works
// while Position waits for the lowest checkpoint.
func membersCell(c monster.ConsumerStats, now time.Time) string {
	if c.NotStarted {
		return ""
	}
	live := map[string]bool{}
	free := 0
	for _, p := range c.PerPartition {
		switch {
		case p.Owner == "":
			free++
		case p.LeaseExpires == nil || !p.LeaseExpires.Before(now):
			live[p.Owner] = true
		}
	}
	names := make([]string, 0, len(c.Members))
	for m := range c.Members {
		names = append(names, m)
	}
	sort.Strings(names)
	var parts []string
	for _, m := range names {
		cell := fmt.Sprintf("%s: %d", m, c.Members[m])
		if !live[m] {
			cell += " (lease expired)"
		}
		parts = append(parts, cell)
	}
	if free > 0 {
		parts = append(parts, fmt.Sprintf("free: %d", free))
	}
	if len(parts) == 0 {
		return "-"
	}
	return strings.Join(parts, ", ")
}

// writePartitions prints a consumer's partitions, for -v.
func writePartitions(w io.Writer, c monster.ConsumerStats, now time.Time) error {
	if _, err := fmt.Fprintf(w, "\n%s: %d partitions\n", c.Name, c.Partitions); err != nil {
		return err
	}
	if c.NotStarted {
		_, err := fmt.Fprintln(w, "  not started: no partition is stored yet")
		return err
	}
	tw := newTable(w)
	fmt.Fprintln(tw, "  PARTITION\tCHECKPOINT\tOWNER\tLEASE\tIN FLIGHT\tFAILURES")
	for _, p := range c.PerPartition {
		owner := p.Owner
		if owner == "" {
			owner = "-"
		}
		fmt.Fprintf(tw, "  %d\t%d\t%s\t%s\t%d\t%d\n", p.Partition, p.Checkpoint, owner, leaseCell(p, now), p.InFlight, p.Failures)
	}
	return tw.Flush()
}

// leaseCell says when a partition's lease runs out: "expires in 4s",
// "expired 12s ago" (its owner stopped renewing; another member may take
// it), or "-" when the partition is free.
func leaseCell(p monster.PartitionStats, now time.Time) string {
	if p.Owner == "" || p.LeaseExpires == nil {
		return "-"
	}
	d := p.LeaseExpires.Sub(now)
	if d < 0 {
		return fmt.Sprintf("expired %s ago", roundDuration(-d))
	}
	return fmt.Sprintf("expires in %s", roundDuration(d))
}

// roundDuration keeps a lease's remaining time readable: tenths of a
// second under a minute, seconds above.
func roundDuration(d time.Duration) time.Duration {
	if d < time.Minute {
		return d.Round(100 * time.Millisecond)
	}
	return d.Round(time.Second)
}

// positionCell is a consumer's position, or "not started" for a declared
// consumer that has none in the store yet.
func positionCell(c daemon.Consumer) string {
	if c.NotStarted {
		return "not started"
	}
	return strconv.FormatInt(c.Position, 10)
}
