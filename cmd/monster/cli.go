package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/gomonster/monster"
	"github.com/gomonster/monster/daemon"
)

// Command is a subcommand: ParseFlags reads its arguments, Run does the
// work. Tests call both with buffers for output.
type Command interface {
	ParseFlags(ctx context.Context, args []string) error
	Run(ctx context.Context) error
}

// Main dispatches to the subcommands.
type Main struct {
	Stdout, Stderr io.Writer
	// Getenv reads the environment (MONSTER_STORE, MONSTER_SERVER,
	// MONSTER_TOKEN).
	Getenv func(string) string
}

// NewMain returns a Main writing to stdout and stderr.
func NewMain(stdout, stderr io.Writer, getenv func(string) string) *Main {
	return &Main{Stdout: stdout, Stderr: stderr, Getenv: getenv}
}

const usage = `monster is a durable event log with independent consumers.

Usage:

	monster <command> [arguments]

Commands:

	serve       run the daemon: the HTTP API and webhook consumers
	log         log an event: monster log TYPE JSON
	events      list events: monster events [--type T] [--after P] [--limit N|--all]
	tail        print events as they are logged: monster tail [GLOB...]
	types       list event types with counts and rates
	consumers   list consumers: position, lag, in flight, failures, dead letters, members (-v: each partition)
	reset       move a consumer: monster reset CONSUMER --to beginning|end|POSITION|TIME [--wait]
	dead        dead letters: monster dead list|retry|discard CONSUMER [ID...|--all] [--wait]
	migrate     create or upgrade a store's schema: monster migrate [--store URL]

Stores: a path or sqlite://PATH (default ./monster.db), postgres://...

Every command but serve and migrate works on a store (--store URL, or MONSTER_STORE;
default ./monster.db) or through a daemon (--server URL, or MONSTER_SERVER,
with --token or MONSTER_TOKEN). Output is a table; --json prints JSON. Long operations
(events --all, reset --wait, dead retry --wait) show progress on stderr when it is a
terminal; --progress forces it, --progress=false hides it.

Run 'monster <command> -h' for a command's flags.
`

// Command returns the subcommand called name.
func (m *Main) Command(name string) (Command, bool) {
	base := base{stdout: m.Stdout, stderr: m.Stderr, getenv: m.Getenv}
	switch name {
	case "serve":
		return &ServeCommand{base: base}, true
	case "log":
		return &LogCommand{base: base}, true
	case "events":
		return &EventsCommand{base: base}, true
	case "tail":
		return &TailCommand{base: base}, true
	case "types":
		return &TypesCommand{base: base}, true
	case "consumers":
		return &ConsumersCommand{base: base}, true
	case "reset":
		return &ResetCommand{base: base}, true
	case "dead":
		return &DeadCommand{base: base}, true
	case "migrate":
		return &MigrateCommand{base: base}, true
	}
	return nil, false
}

// Run runs the command named by args[0] and returns the exit code: 0 for
// success, 1 for a failure, 2 for bad usage.
func (m *Main) Run(ctx context.Context, args []string) int {
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		fmt.Fprint(m.Stdout, usage)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	cmd, ok := m.Command(args[0])
	if !ok {
		fmt.Fprintf(m.Stderr, "monster: unknown command %q\n\n%s", args[0], usage)
		return 2
	}
	if err := cmd.ParseFlags(ctx, args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		fmt.Fprintln(m.Stderr, err)
		return 2
	}
	if err := cmd.Run(ctx); err != nil {
		fmt.Fprintln(m.Stderr, err)
		return 1
	}
	return 0
}

// base is what every command has: output and the environment.
type base struct {
	stdout, stderr io.Writer
	getenv         func(string) string
}

func (b *base) env(name string) string {
	if b.getenv == nil {
		return ""
	}
	return b.getenv(name)
}

// target says where a command works: a store or a daemon.
type target struct {
	store, server, token string
	json                 bool
	// mayCreate lets open create the store when there is none. Only the
	// commands that write events (log; serve and migrate open stores
	// themselves) may: the others, which read or change a store, fail
	// with "monster: no store at ..." rather than leave a new empty store
	// behind a mistyped path.
	mayCreate bool
}

func (t *target) register(fs *flag.FlagSet, b *base) {
	fs.StringVar(&t.store, "store", b.env("MONSTER_STORE"), "store path or URL (env MONSTER_STORE; default ./monster.db)")
	fs.StringVar(&t.server, "server", b.env("MONSTER_SERVER"), "daemon URL such as http://127.0.0.1:7777 (env MONSTER_SERVER); overrides --store")
	fs.StringVar(&t.token, "token", b.env("MONSTER_TOKEN"), "bearer token for --server (env MONSTER_TOKEN)")
	fs.BoolVar(&t.json, "json", false, "print JSON instead of a table")
}

// open returns the operations on the target and a function to release it.
func (t *target) open(ctx context.Context) (daemon.Operations, func(), error) {
	if t.server != "" {
		server := t.server
		if !strings.Contains(server, "://") {
			server = "http://" + server
		}
		return daemon.NewClient(server, t.token), func() {}, nil
	}
	openStore := monster.OpenExistingStore
	if t.mayCreate {
		openStore = monster.OpenStore
	}
	st, err := openStore(ctx, t.store)
	if err != nil {
		return nil, nil, err
	}
	m := monster.New(st, &monster.Options{Output: io.Discard})
	return daemon.NewLocal(m, 0), func() { _ = m.Close() }, nil
}

// newFlagSet returns a flag set that reports errors instead of exiting.
func newFlagSet(name, synopsis string, b *base) *flag.FlagSet {
	fs := flag.NewFlagSet("monster "+name, flag.ContinueOnError)
	fs.SetOutput(b.stderr)
	fs.Usage = func() {
		fmt.Fprintf(b.stderr, "usage: monster %s\n\nflags:\n", synopsis)
		fs.PrintDefaults()
	}
	return fs
}

// parseArgs parses flags anywhere among the arguments ("monster log T J
// --key k" as well as "monster log --key k T J") and returns the others.
func parseArgs(fs *flag.FlagSet, args []string) ([]string, error) {
	var rest []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		args = fs.Args()
		if len(args) == 0 {
			return rest, nil
		}
		if args[0] == "--" {
			return append(rest, args[1:]...), nil
		}
		rest = append(rest, args[0])
		args = args[1:]
	}
}

// usageError is a usage mistake: exit code 2.
func usageError(fs *flag.FlagSet, format string, args ...any) error {
	fs.Usage()
	return fmt.Errorf("monster: "+format, args...)
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// orEmpty is s, or an empty slice for nil, so that --json prints [] as the
// HTTP API does, never null.
func orEmpty[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

func newTable(w io.Writer) *tabwriter.Writer {
	return tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
}

// cell is s for a table cell: cut to n runes, with line breaks and tabs
// (a key or a pretty-printed JSON value may hold them) shown as spaces, so
// that one row stays one line and the columns stay aligned.
func cell(s string, n int) string {
	return shorten(strings.Join(strings.Fields(s), " "), n)
}

// shorten cuts s to n runes for a table cell.
func shorten(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}
