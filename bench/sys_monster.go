package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/gomonster/monster"
	_ "github.com/gomonster/monster/store/nats"     // nats:// URLs
	_ "github.com/gomonster/monster/store/postgres" // postgres:// URLs
)

const eventType = "bench.event"

func monsterSystems(env *environment) []system {
	return []system{
		{
			name: "monster-sqlite", ours: true, competing: true, replay: true,
			durability: "yes: SQLite WAL, synchronous=FULL; concurrent Log calls group-committed (one fsync per commit)",
			notes:      "monster.Open on a temp file; default options",
			open: func(ctx context.Context) (backend, error) {
				return &monsterBackend{env: env, sqlite: true}, nil
			},
		},
		natsSystem(env, 1), natsSystem(env, 3),
		{
			name: "monster-postgres", ours: true, competing: true, replay: true,
			durability: "yes: synchronous_commit=on, one WAL flush per group commit",
			notes:      "monster.Open on postgres://…?monster_schema=<fresh schema>; default options",
			open: func(ctx context.Context) (backend, error) {
				return &monsterBackend{env: env}, nil
			},
		},
	}
}

// natsSystem is Monster on one embedded nats-server, or on a 3-node
// cluster with every stream replicated on the three.
func natsSystem(env *environment, nodes int) system {
	s := system{
		name: "monster-nats", ours: true, competing: true, replay: true,
		durability: "yes: nats-server embedded with SyncAlways; each Append one atomic batch, concurrent Log calls group-committed",
		notes:      "monster.Open on nats://…?prefix=<fresh>&max_batch=12288, one embedded nats-server (random port, file storage in a temp dir, max_batch_size 12288, max_payload 8 MiB) for the run",
		smaller:    map[string]int{"replay": 2},
	}
	if nodes > 1 {
		s.name = "monster-nats-r3"
		s.durability = "yes: 3 embedded nats-servers, each with SyncAlways; streams replicated on all three (an Append is acknowledged once a majority has it)"
		s.notes = "monster.Open on nats://n1,n2,n3?replicas=3&prefix=<fresh>&max_batch=12288, a 3-node cluster in the bench process (loopback routes), otherwise as monster-nats"
	}
	s.open = func(ctx context.Context) (backend, error) {
		srv, err := startNATSForMonster(env, nodes)
		if err != nil {
			return nil, err
		}
		return &monsterBackend{env: env, nats: srv, replicas: nodes}, nil
	}
	return s
}

type monsterBackend struct {
	env      *environment
	sqlite   bool
	nats     *natsServer
	replicas int
	seq      int
}

func (b *monsterBackend) close() error {
	if b.nats != nil {
		return b.nats.close()
	}
	return nil
}

func (b *monsterBackend) fresh(ctx context.Context, o freshOpts) (eventLog, error) {
	l := &monsterLog{env: b.env}
	opts := &monster.Options{
		Logger: slog.New(slog.NewTextHandler(&l.logs, &slog.HandlerOptions{Level: slog.LevelWarn})),
		Output: io.Discard,
	}
	var target string
	if b.nats != nil {
		b.seq++
		target = fmt.Sprintf("%s?prefix=bench%d&max_batch=12288&replicas=%d", b.nats.url, b.seq, b.replicas)
	} else if b.sqlite {
		dir, err := os.MkdirTemp(b.env.tmp, "monster-sqlite-")
		if err != nil {
			return nil, err
		}
		l.dir = dir
		target = filepath.Join(dir, "bench.db")
	} else {
		schema, err := b.env.newSchema(ctx, "monster")
		if err != nil {
			return nil, err
		}
		l.schema = schema
		target = b.env.pgURL + "?monster_schema=" + schema
	}
	m, err := monster.Open(ctx, target, opts)
	if err != nil {
		_ = l.close(ctx)
		return nil, err
	}
	l.m = m
	return l, nil
}

type monsterLog struct {
	env    *environment
	m      *monster.Monster
	dir    string
	schema string
	logs   syncBuffer // the runtime's warnings and errors (a stalled consumer says why)
}

func (l *monsterLog) diagnostics() string { return l.logs.String() }

func (l *monsterLog) publish(ctx context.Context, p []byte) error {
	_, err := l.m.Log(ctx, eventType, json.RawMessage(p))
	return err
}

func (l *monsterLog) publishBatch(ctx context.Context, ps [][]byte) error {
	entries := make([]monster.Entry, len(ps))
	for i, p := range ps {
		entries[i] = monster.Entry{Type: eventType, Data: json.RawMessage(p)}
	}
	_, err := l.m.LogBatch(ctx, entries)
	return err
}

func (l *monsterLog) consume(ctx context.Context, specs []consumerSpec) (func(context.Context) error, error) {
	for _, s := range specs {
		opts := &monster.ConsumerOptions{Concurrency: s.workers}
		if s.maxAttempts > 0 {
			opts.Retry = monster.RetryPolicy{MaxAttempts: s.maxAttempts, InitialBackoff: retryInitial, MaxBackoff: retryMax}
		}
		h := s.handle
		err := l.m.Consume(s.name, monster.Match("bench.*", func(ctx context.Context, e monster.RawEvent) error {
			return h(ctx, e.Data, e.Attempt)
		}), opts)
		if err != nil {
			return nil, err
		}
	}
	if err := l.m.Start(context.WithoutCancel(ctx)); err != nil {
		return nil, err
	}
	return l.m.Stop, nil
}

func (l *monsterLog) close(ctx context.Context) error {
	var err error
	if l.m != nil {
		err = l.m.Close()
	}
	if l.dir != "" {
		if e := os.RemoveAll(l.dir); e != nil && err == nil {
			err = e
		}
	}
	if l.schema != "" {
		if e := l.env.dropSchema(ctx, l.schema); e != nil && err == nil {
			err = fmt.Errorf("drop schema %s: %w", l.schema, e)
		}
	}
	return err
}

func (l *monsterLog) settle(ctx context.Context) error {
	if l.schema == "" {
		return nil
	}
	return l.env.analyze(ctx, l.schema)
}
