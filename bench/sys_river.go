package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/rivermigrate"
	"github.com/riverqueue/river/rivertype"
)

func riverSystem(env *environment) system {
	return system{
		name: "river", competing: true, replay: false,
		smaller:    map[string]int{"publish-1": 5, "burn-down-1": 10, "burn-down-16": 5, "fan-out-4": 5, "fan-out-16": 10, "replay": 10, "failure": 5},
		durability: "yes: each Insert/InsertMany is a transaction committed with synchronous_commit=on",
		notes:      "riverpgxv5 on a pgxpool of 80 connections, rivermigrate in a fresh schema; FetchCooldown 1ms and FetchPollInterval 50ms (River's defaults, 100ms and 1s, cap a queue near 1,000 jobs/s); JobTimeout 20s and RescueStuckJobsAfter 30s (defaults 1 min and 1 h) so that jobs stranded by a fetch that timed out under load are rescued within the run; a consumer = a queue, its workers = the queue's MaxWorkers; fan-out = one job per consumer per event; a later consumer cannot see earlier jobs, so replay is a burn-down of the same number of queued jobs",
		open: func(ctx context.Context) (backend, error) {
			cfg, err := pgxpool.ParseConfig(env.pgURL)
			if err != nil {
				return nil, err
			}
			cfg.MaxConns = 80
			pool, err := pgxpool.NewWithConfig(ctx, cfg)
			if err != nil {
				return nil, err
			}
			return &riverBackend{env: env, pool: pool}, nil
		},
	}
}

// payloadArgs are a job's arguments: the 200-byte payload itself.
type payloadArgs struct{ raw []byte }

func (payloadArgs) Kind() string                    { return "bench" }
func (a payloadArgs) MarshalJSON() ([]byte, error)  { return a.raw, nil }
func (a *payloadArgs) UnmarshalJSON(b []byte) error { a.raw = append([]byte(nil), b...); return nil }

type riverWorker struct {
	river.WorkerDefaults[payloadArgs]
	byQueue map[string]consumerSpec
}

func (w *riverWorker) Work(ctx context.Context, job *river.Job[payloadArgs]) error {
	s, ok := w.byQueue[job.Queue]
	if !ok {
		return fmt.Errorf("job in unknown queue %q", job.Queue)
	}
	return s.handle(ctx, job.Args.raw, job.Attempt)
}

// shortRetry retries after the same backoff as the other systems.
type shortRetry struct{}

func (shortRetry) NextRetry(job *rivertype.JobRow) time.Time {
	return time.Now().Add(retryDelay(job.Attempt))
}

type riverBackend struct {
	env  *environment
	pool *pgxpool.Pool
}

func (b *riverBackend) close() error { b.pool.Close(); return nil }

func (b *riverBackend) fresh(ctx context.Context, o freshOpts) (eventLog, error) {
	schema, err := b.env.newSchema(ctx, "river")
	if err != nil {
		return nil, err
	}
	l := &riverLog{env: b.env, pool: b.pool, schema: schema, queues: o.consumers, maxAttempts: o.maxAttempts}
	if len(l.queues) == 0 {
		l.queues = []string{"c0"}
	}
	mig, err := rivermigrate.New(riverpgxv5.New(b.pool), &rivermigrate.Config{Schema: schema, Logger: slog.New(slog.DiscardHandler)})
	if err == nil {
		_, err = mig.Migrate(ctx, rivermigrate.DirectionUp, nil)
	}
	if err == nil {
		l.inserter, err = river.NewClient(riverpgxv5.New(b.pool), &river.Config{Schema: schema, Logger: slog.New(slog.DiscardHandler)})
	}
	if err != nil {
		_ = l.close(ctx)
		return nil, fmt.Errorf("river: %w", err)
	}
	return l, nil
}

type riverLog struct {
	logs        syncBuffer // River's warnings and errors
	env         *environment
	pool        *pgxpool.Pool
	schema      string
	queues      []string
	maxAttempts int
	inserter    *river.Client[pgx.Tx]
}

func (l *riverLog) params(ps [][]byte) []river.InsertManyParams {
	out := make([]river.InsertManyParams, 0, len(ps)*len(l.queues))
	for _, p := range ps {
		for _, q := range l.queues {
			out = append(out, river.InsertManyParams{Args: payloadArgs{raw: p}, InsertOpts: &river.InsertOpts{Queue: q, MaxAttempts: l.maxAttempts}})
		}
	}
	return out
}

func (l *riverLog) publish(ctx context.Context, p []byte) error {
	if len(l.queues) == 1 {
		_, err := l.inserter.Insert(ctx, payloadArgs{raw: p}, &river.InsertOpts{Queue: l.queues[0], MaxAttempts: l.maxAttempts})
		return err
	}
	_, err := l.inserter.InsertMany(ctx, l.params([][]byte{p}))
	return err
}

func (l *riverLog) publishBatch(ctx context.Context, ps [][]byte) error {
	_, err := l.inserter.InsertMany(ctx, l.params(ps))
	return err
}

func (l *riverLog) consume(ctx context.Context, specs []consumerSpec) (func(context.Context) error, error) {
	w := &riverWorker{byQueue: map[string]consumerSpec{}}
	queues := map[string]river.QueueConfig{}
	for _, s := range specs {
		w.byQueue[s.name] = s
		queues[s.name] = river.QueueConfig{MaxWorkers: max(s.workers, 1)}
	}
	workers := river.NewWorkers()
	if err := river.AddWorkerSafely(workers, w); err != nil {
		return nil, err
	}
	client, err := river.NewClient(riverpgxv5.New(l.pool), &river.Config{
		Schema:            l.schema,
		Queues:            queues,
		Workers:           workers,
		FetchCooldown:     time.Millisecond,
		FetchPollInterval: 50 * time.Millisecond,
		// A fetch that times out under load can leave the jobs it locked
		// "running" until the rescuer frees them (after 1 hour by
		// default), which would lose them for the length of a run.
		JobTimeout:           20 * time.Second,
		RescueStuckJobsAfter: 30 * time.Second,
		RetryPolicy:          shortRetry{},
		Logger:               slog.New(slog.NewTextHandler(&l.logs, &slog.HandlerOptions{Level: slog.LevelWarn})),
	})
	if err != nil {
		return nil, err
	}
	if err := client.Start(context.WithoutCancel(ctx)); err != nil {
		return nil, err
	}
	return func(ctx context.Context) error {
		ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		return client.Stop(ctx)
	}, nil
}

func (l *riverLog) close(ctx context.Context) error {
	return errors.Join(l.env.dropSchema(ctx, l.schema))
}

func (l *riverLog) settle(ctx context.Context) error { return l.env.analyze(ctx, l.schema) }

func (l *riverLog) diagnostics() string { return l.logs.String() }
