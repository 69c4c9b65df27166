package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"

	"github.com/gomonster/monster/daemon"
)

// ServeCommand runs the daemon until its context ends (SIGINT or SIGTERM),
// then stops gracefully: no new requests, in-flight deliveries finish,
// progress is checkpointed.
type ServeCommand struct {
	base
	config daemon.Config
	// Listening, when set, receives the address once the daemon listens
	// (tests use it to learn the port of --addr 127.0.0.1:0).
	Listening chan<- string
}

// ParseFlags implements Command.
func (c *ServeCommand) ParseFlags(ctx context.Context, args []string) error {
	fs := newFlagSet("serve", "serve [--store URL] [--addr 127.0.0.1:7777] [--config FILE]", &c.base)
	store := fs.String("store", c.env("MONSTER_STORE"), "store path or URL (env MONSTER_STORE; default ./monster.db)")
	addr := fs.String("addr", "", "address to listen on (default 127.0.0.1:7777; non-loopback needs tokens)")
	configFile := fs.String("config", c.env("MONSTER_CONFIG"), "configuration file, JSON or YAML (env MONSTER_CONFIG)")
	verbose := fs.Bool("verbose", false, "print a line for every logged event")
	rest, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if len(rest) > 0 {
		return usageError(fs, "serve takes no arguments, got %q", rest)
	}
	if *configFile != "" {
		if c.config, err = daemon.LoadConfig(*configFile); err != nil {
			return err
		}
	}
	if *store != "" {
		c.config.Store = *store
	}
	if *addr != "" {
		c.config.Addr = *addr
	}
	if *verbose {
		c.config.Verbose = true
	}
	return nil
}

// Run implements Command.
func (c *ServeCommand) Run(ctx context.Context) error {
	logger := slog.New(slog.NewTextHandler(c.stderr, nil))
	srv, err := daemon.New(ctx, c.config, logger)
	if err != nil {
		return err
	}
	cfg := srv.Config()
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		_ = srv.Shutdown(context.Background())
		return fmt.Errorf("monster: listen on %q: %w", cfg.Addr, err)
	}
	logger.Info("monster: serving", "url", "http://"+ln.Addr().String(), "store", cfg.Store, "tokens", len(cfg.Tokens))
	if c.Listening != nil {
		c.Listening <- ln.Addr().String()
	}
	err = srv.Serve(ctx, ln)
	logger.Info("monster: stopped")
	return err
}
