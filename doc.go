/*
Package monster is a durable event log with independent consumers.

A Go service logs an event in one line; the event is stored for good; any
number of named consumers — in the same process, in other processes on the
same store, or on other machines — each handle it at least once, with their
own position, retries and dead letters. No consumer can slow down, break or
lose data for another, or for the producer.

The default store is an embedded SQLite file (./monster.db), with nothing to
install. Other stores register URL schemes: "memory://" for tests, and
PostgreSQL, MongoDB and NATS JetStream in their own packages.

# Logging

	m, err := monster.Open(ctx, "monster.db", nil)
	if err != nil { ... }
	defer m.Close()

	m.Log(ctx, "event_1", "a really cool message")
	m.Log(ctx, "user.bought_shirt", map[string]any{"user": "gordon", "quantity": 2})

When Log returns nil, the event is committed and synced. Concurrent Log
calls share one transaction and one sync (group commit), which is what makes
a durable log fast. LogBatch stores several events atomically; LogTx stores
one inside the application's own SQL transaction (Monster.DB, on SQLite and
PostgreSQL), so it exists if and only if that transaction commits. Store
packages offer the same for their drivers' transactions through
LogExternalTx (postgres.LogTx takes a pgx.Tx).

Options on each call: WithKey orders events (a consumer handles events with
the same key one at a time, in log order), WithIdempotencyKey stores an
event once however often the call is retried, WithMeta adds metadata.

# Declared types

Any type name is accepted by default (pymonster's allow_undeclared_events).
Declaring a type gives it a Go type and validation, checked whenever an
event of the type is logged, however it is logged:

	type BoughtShirt struct {
		User     string `json:"user"`
		Quantity int    `json:"quantity"`
	}
	bought := monster.Declare[BoughtShirt](m, "user.bought_shirt",
		monster.Validate(func(b BoughtShirt) error {
			if b.Quantity <= 0 {
				return monster.FieldError("quantity", "must be positive")
			}
			return nil
		}))
	bought.Log(ctx, BoughtShirt{User: "gordon", Quantity: 2})

Bad data gets a *ValidationError (errors.Is ErrInvalid) naming the field,
and nothing is stored. Options.DisallowUndeclared rejects undeclared types
with ErrUndeclared.

Log middleware (UseLog, Options.LogMiddleware) runs before an event is
stored, like pymonster's custom Event.log: it can enrich, transform,
validate or print the entry.

# Consumers

A consumer is a name, a subscription and a handler:

	m.Consume("shirt-mailer", monster.Handle(bought,
		func(ctx context.Context, e monster.Event[BoughtShirt]) error {
			return mail(e.Data.User)
		}), &monster.ConsumerOptions{Concurrency: 8})

	m.Consume("audit", monster.Match("user.*",
		func(ctx context.Context, e monster.RawEvent) error { ... }), nil)

	err = m.Run(ctx) // until ctx is done; graceful

Each consumer keeps its own checkpoint in the store: a new one starts at the
beginning of the log by default (it works through history) or at End,
AtPosition or AtTime. A failed handler (error, panic or timeout) is retried
with exponential backoff, jitter and a cap; after RetryPolicy.MaxAttempts the
event goes to the consumer's dead letters and the consumer moves on — unless
it blocks on failure (ConsumerOptions.BlockOnFailure). Other consumers are never affected. Handler middleware
(ConsumerOptions.Middleware) wraps handlers for logging, metrics or tracing.

Events logged in this process wake its consumers at once; events logged by
other processes are found within Options.PollInterval.

Start runs consumers in the background (pymonster's debug thread) until Stop
or Close. While they run, StopConsumer and StartConsumer stop and start one
consumer and leave the others be; RemoveConsumer stops one and forgets it, so
that Consume can declare the name again with another handler.

# Scale-out

Run the same consumer in several processes on one store and they share its
events: a consumer's events are split into partitions by key (by type for
events without a key), each process holds leases on a fair share of them,
and when a process dies its partitions move to the others within
Options.LeaseTTL. Events with the same key stay in order across the move.

# Guarantees

Each has a group of its own, under the same name, in the conformance suite
(package store/storetest), which tests it against every store:

  - Durable: Log returns after the commit and sync; concurrent Log calls
    share one commit.
  - AtLeastOnce: every committed event of a consumer's subscription is
    handled until the handler succeeds or the event is dead-lettered; a
    crash anywhere only causes redelivery of events that were in flight
    (handled since the last checkpoint).
  - NoSkippedEvents: a consumer never moves past a committed event it has
    not handled, even when writers commit out of position order.
  - Order: events with the same key are handled one at a time, in log
    order, within a consumer; strict total order with Partitions 1,
    Concurrency 1 and BlockOnFailure.
  - Isolation: a handler's error, panic or timeout affects only that event
    for that consumer; one slow consumer holds up no other.
  - IdempotentLogging: an event logged with an idempotency key is stored
    once however often the call is retried; an unknown outcome is reported
    as ErrAmbiguous.
  - ScaleOut: one consumer run by several processes shares its partitions
    among them, and a dead process's partitions move within the lease time.
  - Validation: declared types reject bad data at Log, naming the field.
  - BadInput: bad input gets a clear error and never corrupts stored data.

# Operating

Stats gives counts per type and each consumer's position, lag, in-flight
events, failures and dead letters. DeadLetters, RetryDeadLetters and
DiscardDeadLetters manage dead letters; ResetConsumer replays or skips.

# Testing

Package monstertest gives an eager Monster whose Log runs the handlers
before returning (eventlib's test mode) and assertion helpers.
*/
package monster
