package main

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	wmsql "github.com/ThreeDotsLabs/watermill-sql/v3/pkg/sql"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/message/router/middleware"
	"github.com/ThreeDotsLabs/watermill/pubsub/gochannel"
	_ "github.com/jackc/pgx/v5/stdlib" // database/sql driver "pgx"
)

const wmTopic = "bench"

func watermillSystems(env *environment) []system {
	return []system{
		{
			name: "watermill-gochannel", competing: false, replay: true,
			durability: "no: in memory (the non-durable ceiling)",
			notes:      "gochannel.Config{Persistent: true} so that late subscribers get history; one subscription per consumer (GoChannel has no competing consumers, so the workers setting does not apply); retries with the Retry and PoisonQueue middleware",
			open: func(ctx context.Context) (backend, error) {
				return &gochannelBackend{}, nil
			},
		},
		{
			name: "watermill-sql", competing: true, replay: true,
			smaller:    map[string]int{"publish-1": 5, "burn-down-16": 5, "fan-out-4": 5, "fan-out-16": 10, "replay": 10, "failure": 5},
			durability: "yes: one INSERT per Publish call, committed with synchronous_commit=on",
			notes:      "watermill-sql v3 DefaultPostgreSQLSchema and offsets adapter on database/sql (pgx stdlib), fresh schema; batch 100, PollInterval 10ms; a consumer = a consumer group, its workers = that many subscriptions in the group; retries with the Retry and PoisonQueue middleware",
			open: func(ctx context.Context) (backend, error) {
				return &wmSQLBackend{env: env}, nil
			},
		},
	}
}

// wmHandle wraps a spec's handler as Watermill handler middleware would:
// Retry (MaxRetries attempts-1, the same backoff as the others) then
// PoisonQueue, which moves a message that still fails to a poison topic
// and acknowledges it.
func wmHandle(s consumerSpec, poisonPub message.Publisher) (message.HandlerFunc, error) {
	h := func(msg *message.Message) ([]*message.Message, error) {
		attempt, _ := strconv.Atoi(msg.Metadata.Get("bench_attempt"))
		attempt++
		msg.Metadata.Set("bench_attempt", strconv.Itoa(attempt))
		return nil, s.handle(msg.Context(), msg.Payload, attempt)
	}
	if s.maxAttempts <= 1 {
		return h, nil
	}
	retry := middleware.Retry{MaxRetries: s.maxAttempts - 1, InitialInterval: retryInitial, MaxInterval: retryMax, Multiplier: 2}
	poison, err := middleware.PoisonQueue(poisonPub, "poison")
	if err != nil {
		return nil, err
	}
	return poison(retry.Middleware(h)), nil
}

// drain runs h on each message of ch until it closes, acking on success.
func drain(ch <-chan *message.Message, h message.HandlerFunc) {
	for msg := range ch {
		msg.Metadata.Set("bench_attempt", "0")
		if _, err := h(msg); err != nil {
			msg.Nack()
		} else {
			msg.Ack()
		}
	}
}

func newMessages(ps [][]byte) []*message.Message {
	msgs := make([]*message.Message, len(ps))
	for i, p := range ps {
		msgs[i] = message.NewMessage(watermill.NewUUID(), p)
	}
	return msgs
}

// --- GoChannel ---

type gochannelBackend struct{}

func (gochannelBackend) close() error { return nil }

func (gochannelBackend) fresh(ctx context.Context, o freshOpts) (eventLog, error) {
	return &gochannelLog{gc: gochannel.NewGoChannel(gochannel.Config{Persistent: true, OutputChannelBuffer: 1024}, watermill.NopLogger{})}, nil
}

type gochannelLog struct {
	gc *gochannel.GoChannel
}

func (l *gochannelLog) publish(ctx context.Context, p []byte) error {
	return l.gc.Publish(wmTopic, message.NewMessage(watermill.NewUUID(), p))
}

func (l *gochannelLog) publishBatch(ctx context.Context, ps [][]byte) error {
	return l.gc.Publish(wmTopic, newMessages(ps)...)
}

func (l *gochannelLog) consume(ctx context.Context, specs []consumerSpec) (func(context.Context) error, error) {
	subCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	var wg sync.WaitGroup
	for _, s := range specs {
		h, err := wmHandle(s, l.gc)
		if err != nil {
			cancel()
			return nil, err
		}
		ch, err := l.gc.Subscribe(subCtx, wmTopic)
		if err != nil {
			cancel()
			return nil, err
		}
		wg.Go(func() { drain(ch, h) })
	}
	return func(context.Context) error { cancel(); wg.Wait(); return nil }, nil
}

func (l *gochannelLog) close(ctx context.Context) error { return l.gc.Close() }

// --- watermill-sql on PostgreSQL ---

type wmSQLBackend struct{ env *environment }

func (b *wmSQLBackend) close() error { return nil }

func (b *wmSQLBackend) fresh(ctx context.Context, o freshOpts) (eventLog, error) {
	schema, err := b.env.newSchema(ctx, "watermill")
	if err != nil {
		return nil, err
	}
	db, err := sql.Open("pgx", b.env.pgURL+"?search_path="+schema)
	if err != nil {
		_ = b.env.dropSchema(ctx, schema)
		return nil, err
	}
	db.SetMaxOpenConns(80)
	db.SetMaxIdleConns(80)
	l := &wmSQLLog{env: b.env, schema: schema, db: db}
	l.pub, err = wmsql.NewPublisher(db, wmsql.PublisherConfig{SchemaAdapter: wmSchema(), AutoInitializeSchema: true}, watermill.NopLogger{})
	if err != nil {
		_ = l.close(ctx)
		return nil, err
	}
	// Create the topic's table before any concurrent publish.
	sub, err := l.subscriber("init")
	if err == nil {
		err = sub.SubscribeInitialize(wmTopic)
		_ = sub.Close()
	}
	if err != nil {
		_ = l.close(ctx)
		return nil, fmt.Errorf("watermill-sql: initialise schema: %w", err)
	}
	return l, nil
}

func wmSchema() wmsql.DefaultPostgreSQLSchema {
	return wmsql.DefaultPostgreSQLSchema{SubscribeBatchSize: 100}
}

type wmSQLLog struct {
	env    *environment
	schema string
	db     *sql.DB
	pub    *wmsql.Publisher
}

func (l *wmSQLLog) subscriber(group string) (*wmsql.Subscriber, error) {
	return wmsql.NewSubscriber(l.db, wmsql.SubscriberConfig{
		ConsumerGroup:    group,
		SchemaAdapter:    wmSchema(),
		OffsetsAdapter:   wmsql.DefaultPostgreSQLOffsetsAdapter{},
		InitializeSchema: true,
		PollInterval:     10 * time.Millisecond,
		ResendInterval:   10 * time.Millisecond,
	}, watermill.NopLogger{})
}

func (l *wmSQLLog) publish(ctx context.Context, p []byte) error {
	return l.pub.Publish(wmTopic, message.NewMessage(watermill.NewUUID(), p))
}

func (l *wmSQLLog) publishBatch(ctx context.Context, ps [][]byte) error {
	return l.pub.Publish(wmTopic, newMessages(ps)...)
}

func (l *wmSQLLog) consume(ctx context.Context, specs []consumerSpec) (func(context.Context) error, error) {
	subCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	var wg sync.WaitGroup
	var subs []*wmsql.Subscriber
	stop := func(context.Context) error {
		cancel()
		var errs []error
		for _, s := range subs {
			errs = append(errs, s.Close())
		}
		wg.Wait()
		return errors.Join(errs...)
	}
	for _, s := range specs {
		h, err := wmHandle(s, l.pub)
		if err != nil {
			_ = stop(ctx)
			return nil, err
		}
		sub, err := l.subscriber(s.name)
		if err != nil {
			_ = stop(ctx)
			return nil, err
		}
		subs = append(subs, sub)
		for range max(s.workers, 1) {
			ch, err := sub.Subscribe(subCtx, wmTopic)
			if err != nil {
				_ = stop(ctx)
				return nil, err
			}
			wg.Go(func() { drain(ch, h) })
		}
	}
	return stop, nil
}

func (l *wmSQLLog) close(ctx context.Context) error {
	var errs []error
	if l.pub != nil {
		errs = append(errs, l.pub.Close())
	}
	errs = append(errs, l.db.Close(), l.env.dropSchema(ctx, l.schema))
	return errors.Join(errs...)
}

func (l *wmSQLLog) settle(ctx context.Context) error { return l.env.analyze(ctx, l.schema) }
