package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// environment is what the systems share: a temp directory, the PostgreSQL
// server and the schemas created in it.
type environment struct {
	tmp   string
	pgURL string
	admin *pgxpool.Pool
	runID string

	mu      sync.Mutex
	n       int
	schemas map[string]bool
}

func newEnvironment(ctx context.Context, pgURL string) (*environment, error) {
	tmp, err := os.MkdirTemp("", "monster-bench-")
	if err != nil {
		return nil, err
	}
	admin, err := pgxpool.New(ctx, pgURL)
	if err == nil {
		err = admin.Ping(ctx)
	}
	if err != nil {
		_ = os.RemoveAll(tmp)
		return nil, fmt.Errorf("PostgreSQL at %s: %w", pgURL, err)
	}
	return &environment{
		tmp: tmp, pgURL: pgURL, admin: admin,
		runID:   fmt.Sprintf("%d_%d", time.Now().Unix(), os.Getpid()),
		schemas: map[string]bool{},
	}, nil
}

// newSchema creates a fresh schema, dropped by dropSchema or cleanup.
func (e *environment) newSchema(ctx context.Context, prefix string) (string, error) {
	e.mu.Lock()
	e.n++
	name := fmt.Sprintf("bench_%s_%s_%d", e.runID, prefix, e.n)
	e.schemas[name] = true
	e.mu.Unlock()
	_, err := e.admin.Exec(ctx, "CREATE SCHEMA "+pgx.Identifier{name}.Sanitize())
	return name, err
}

func (e *environment) dropSchema(ctx context.Context, name string) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
	defer cancel()
	_, err := e.admin.Exec(ctx, "DROP SCHEMA IF EXISTS "+pgx.Identifier{name}.Sanitize()+" CASCADE")
	if err == nil {
		e.mu.Lock()
		delete(e.schemas, name)
		e.mu.Unlock()
	}
	return err
}

func (e *environment) cleanup() {
	e.mu.Lock()
	var left []string
	for s := range e.schemas {
		left = append(left, s)
	}
	e.mu.Unlock()
	for _, s := range left {
		if err := e.dropSchema(context.Background(), s); err != nil {
			fmt.Fprintf(os.Stderr, "bench: drop schema %s: %v\n", s, err)
		}
	}
	e.admin.Close()
	_ = os.RemoveAll(e.tmp)
}

// machine describes where the run happened.
type machine struct {
	Cores      int               `json:"cores"`
	CPU        string            `json:"cpu"`
	GoVersion  string            `json:"go_version"`
	OS         string            `json:"os"`
	Kernel     string            `json:"kernel"`
	Postgres   string            `json:"postgres_version"`
	PGSettings map[string]string `json:"postgres_settings"`
	Commit     string            `json:"commit"`
	LoadBefore string            `json:"load_average_before"`
	LoadAfter  string            `json:"load_average_after"`
}

func (e *environment) machine(ctx context.Context) machine {
	m := machine{
		Cores: runtime.NumCPU(), GoVersion: runtime.Version(), OS: runtime.GOOS + "/" + runtime.GOARCH,
		LoadBefore: loadAverage(), PGSettings: map[string]string{},
	}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPU = strings.TrimSpace(v)
				break
			}
		}
	}
	m.Commit = gitState()
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(b))
	}
	_ = e.admin.QueryRow(ctx, "SELECT version()").Scan(&m.Postgres)
	for _, s := range []string{"synchronous_commit", "fsync", "wal_sync_method", "full_page_writes", "commit_delay", "shared_buffers", "max_connections"} {
		var v string
		if err := e.admin.QueryRow(ctx, "SELECT current_setting($1)", s).Scan(&v); err == nil {
			m.PGSettings[s] = v
		}
	}
	return m
}

func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return ""
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return ""
	}
	return strings.Join(f[:3], " ")
}

// analyze refreshes the planner's statistics of every table in schema, as
// autovacuum would on a server that has been running a while: the tables
// here are minutes old, and a plan made without statistics can be slower by
// orders of magnitude, which would measure the planner, not the system.
func (e *environment) analyze(ctx context.Context, schema string) error {
	rows, err := e.admin.Query(ctx, "SELECT tablename FROM pg_tables WHERE schemaname = $1", schema)
	if err != nil {
		return err
	}
	tables, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return err
	}
	for _, t := range tables {
		if _, err := e.admin.Exec(ctx, "ANALYZE "+pgx.Identifier{schema, t}.Sanitize()); err != nil {
			return err
		}
	}
	return nil
}

// gitState is the commit the run was built from, with "+ uncommitted
// changes" when the working tree's Go files outside bench/ differ from it.
func gitState() string {
	out, err := exec.Command("git", "rev-parse", "--short", "HEAD").Output()
	if err != nil {
		return "unknown"
	}
	state := strings.TrimSpace(string(out))
	dirty, err := exec.Command("git", "status", "--porcelain", "--untracked-files=no", "--", "*.go", "*/go.mod", ":!bench/").Output()
	if err == nil && len(strings.TrimSpace(string(dirty))) > 0 {
		state += " + uncommitted changes"
	}
	return state
}
