// Command monster is Monster's daemon and command line: `monster serve`
// runs the HTTP API and webhook consumers; the other commands look at
// events, consumers and dead letters on a store (--store) or through a
// daemon (--server). See docs/cli.md.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(NewMain(os.Stdout, os.Stderr, os.Getenv).Run(ctx, os.Args[1:]))
}
