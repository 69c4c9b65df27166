package main

import (
	"context"
	"fmt"

	"github.com/gomonster/monster"
)

// migrator is implemented by stores with versioned schemas (PostgreSQL).
type migrator interface {
	Migrate(ctx context.Context) error
}

// MigrateCommand brings a store's schema up to date.
type MigrateCommand struct {
	base
	store string
}

// ParseFlags implements Command.
func (c *MigrateCommand) ParseFlags(ctx context.Context, args []string) error {
	fs := newFlagSet("migrate", "migrate [--store URL]", &c.base)
	fs.StringVar(&c.store, "store", c.env("MONSTER_STORE"), "store path or URL (env MONSTER_STORE; default ./monster.db)")
	rest, err := parseArgs(fs, args)
	if err != nil {
		return err
	}
	if len(rest) > 0 {
		return usageError(fs, "migrate takes no arguments, got %q", rest)
	}
	return nil
}

// Run implements Command. Opening a store already creates or upgrades its
// schema unless the store was told not to (postgres://...?monster_no_migrate
// or a role without the rights); migrate runs the migrations explicitly and
// says what it found.
func (c *MigrateCommand) Run(ctx context.Context) error {
	st, err := monster.OpenStore(ctx, c.store)
	if err != nil {
		return err
	}
	defer st.Close()
	m, ok := st.(migrator)
	if !ok {
		fmt.Fprintf(c.stdout, "%s: nothing to migrate (the store creates its schema when opened)\n", storeName(c.store))
		return nil
	}
	if err := m.Migrate(ctx); err != nil {
		return err
	}
	fmt.Fprintf(c.stdout, "%s: schema up to date\n", storeName(c.store))
	return nil
}

func storeName(s string) string {
	if s == "" {
		return monster.DefaultPath
	}
	return s
}
