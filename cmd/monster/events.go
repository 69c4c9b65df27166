package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/gomonster/monster/daemon"
)

// EventsCommand lists events, oldest first. Past 1,000 events (--limit N,
// or --all for an export) it reads page after page and shows progress.
type EventsCommand struct {
	base
	target   target
	query    daemon.EventsQuery
	all      bool
	progress progressFlag
}

// eventsPage is how many events one read asks for: the API's maximum.
const eventsPage = 1000

// ParseFlags implements Command.
func (c *EventsCommand) ParseFlags(ctx context.Context, args []string) error {
	fs := newFlagSet("events", "events [--type T] [--after P] [--limit N|--all]", &c.base)
	c.target.register(fs, &c.base)
	fs.StringVar(&c.query.Type, "type", "", "only events of this type or glob (\"user.*\")")
	fs.Int64Var(&c.query.After, "after", 0, "only events after this position")
	fs.IntVar(&c.query.Limit, "limit", 100, "at most this many events; over 1000 they are read in pages of 1000")
	fs.BoolVar(&c.all, "all", false, "every event after --after (an export), instead of --limit")
	registerProgress(fs, &c.progress)
	rest, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if len(rest) > 0 {
		return usageError(fs, "events takes no arguments, got %q", rest)
	}
	if c.query.Limit < 1 && !c.all {
		return usageError(fs, "--limit %d: want at least 1 (or --all)", c.query.Limit)
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
	out := newEventsWriter(c.stdout, c.target.json)
	prog := newProgress(c.stderr, c.progress, c.target.json)
	q := c.query
	var n int64
	for {
		q.Limit = eventsPage
		if !c.all {
			q.Limit = min(eventsPage, c.query.Limit-int(n))
		}
		page, err := ops.Events(ctx, q)
		if err != nil {
			prog.clear()
			return err
		}
		if err := out.write(page.Events); err != nil {
			prog.clear()
			return err
		}
		n += int64(len(page.Events))
		if page.HasMore && len(page.Events) == 0 && page.NextAfter <= q.After {
			prog.clear()
			return fmt.Errorf("monster: reading events after %d: the page is empty and does not move on", q.After)
		}
		q.After = page.NextAfter
		more := page.HasMore && (c.all || int(n) < c.query.Limit)
		if !more {
			prog.done("events: %s read, to position %s, in %.1fs (%s)", count(n), count(q.After), prog.elapsed().Seconds(), prog.rate(n))
			return out.end(page.NextAfter, page.HasMore)
		}
		prog.update("events: %s read, at position %s (%s)", count(n), count(q.After), prog.rate(n))
	}
}

// eventsWriter prints events page by page: as a table (aligned within
// each page of 1,000), or as the JSON of daemon.EventsPage, streamed.
type eventsWriter struct {
	w     io.Writer
	json  bool
	table *tabwriter.Writer
	n     int
}

func newEventsWriter(w io.Writer, jsonOutput bool) *eventsWriter {
	return &eventsWriter{w: w, json: jsonOutput}
}

func (ew *eventsWriter) write(events []daemon.Event) error {
	if ew.json {
		var b bytes.Buffer
		for _, e := range events {
			if ew.n == 0 {
				b.WriteString("{\n  \"events\": [")
			}
			if ew.n > 0 {
				b.WriteByte(',')
			}
			b.WriteString("\n    ")
			j, err := json.MarshalIndent(e, "    ", "  ")
			if err != nil {
				return err
			}
			b.Write(j)
			ew.n++
		}
		_, err := ew.w.Write(b.Bytes())
		return err
	}
	if ew.table == nil {
		ew.table = newTable(ew.w)
		fmt.Fprintln(ew.table, "POSITION\tTIME\tTYPE\tKEY\tDATA")
	}
	for _, e := range events {
		printEventRow(ew.table, e)
		ew.n++
	}
	return ew.table.Flush()
}

func (ew *eventsWriter) end(nextAfter int64, hasMore bool) error {
	if ew.json {
		var b bytes.Buffer
		switch ew.n {
		case 0:
			b.WriteString("{\n  \"events\": [],\n")
		default:
			b.WriteString("\n  ],\n")
		}
		fmt.Fprintf(&b, "  \"next_after\": %d,\n  \"has_more\": %t\n}\n", nextAfter, hasMore)
		_, err := ew.w.Write(b.Bytes())
		return err
	}
	if hasMore {
		_, err := fmt.Fprintf(ew.w, "(more: --after %d)\n", nextAfter)
		return err
	}
	return nil
}

func printEventRow(w io.Writer, e daemon.Event) {
	fmt.Fprintf(w, "%d\t%s\t%s\t%s\t%s\n", e.Position, e.Time.Format("2006-01-02 15:04:05.000"), e.Type, e.Key, shorten(string(e.Data), 80))
}
