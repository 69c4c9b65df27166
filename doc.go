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
event once however often the call is retried, WithMeta adds metadata. Keys
and idempotency keys are short printable text: at most MaxKeyBytes (1,024)
each, with no control characters, or Log returns ErrInvalidKey.

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
AtPosition or AtTime. A pattern added to an existing consumer does not
backfill: declare the new types in a consumer of a new name to work through
their history (see Consume). A failed handler (error, panic or timeout) is retried
with exponential backoff, jitter and a cap; after RetryPolicy.MaxAttempts the
event goes to the consumer's dead letters and the consumer moves on — unless
it blocks on failure (ConsumerOptions.BlockOnFailure). A handler that knows
retrying cannot help returns its error marked with Permanent, and the event
goes to the dead letters at once (see ExamplePermanent). Other consumers are
never affected. Handler middleware
(ConsumerOptions.Middleware) wraps handlers for logging, metrics or tracing.

Events logged in this process wake its consumers at once; events logged by
other processes are found within Options.PollInterval.

Start runs consumers in the background (pymonster's debug thread) until Stop
or Close. While they run, StopConsumer and StartConsumer stop and start one
consumer and leave the others be; RemoveConsumer stops one and forgets it, so
that Consume can declare the name again with another handler.

# Scale-out

Run the same consumer in several processes on one store and they share its
events: a consumer's events are split into partitions by a hash of their
ordering key, each process holds leases on a fair share of them, and when a
process dies its partitions move to the others within Options.LeaseTTL.
Events with the same ordering key stay in order across the move; keyless
events, which have no order to keep, spread over every partition by their
ID, so even a stream of one type without keys is shared by every process.

An event's ordering key is the key it was logged with (WithKey), unless
the consumer chooses its own with ConsumerOptions.OrderBy, a function of
the event (type, key, data):

	err := m.Consume("warehouse", monster.Handle(placed, ship), &monster.ConsumerOptions{
		Concurrency: 8,
		// Ship each order's events in order, whoever logged them and with
		// whatever key.
		OrderBy: func(e monster.RawEvent) string {
			var o struct {
				OrderID string `json:"order_id"`
			}
			_ = json.Unmarshal(e.Data, &o)
			return o.OrderID
		},
	})

How a consumer partitions is fixed when it is first created: a consumer
created by an earlier version of monster keeps the keyless events of a type
in one partition, and a consumer created without OrderBy cannot start with
it (nor the reverse), since an event moved to another partition could be
skipped. Declare a consumer of a new name to change either.

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
  - Order: events with the same ordering key (their key, or the one
    ConsumerOptions.OrderBy gives) are handled one at a time, in log
    order, within a consumer; events without one have no order; strict
    total order with Partitions 1, Concurrency 1 and BlockOnFailure.
  - Isolation: a handler's error, panic or timeout affects only that event
    for that consumer; one slow consumer holds up no other.
  - IdempotentLogging: an event logged with an idempotency key is stored
    once however often the call is retried; an unknown outcome is reported
    as ErrAmbiguous.
  - ScaleOut: one consumer run by several processes shares its partitions
    among them, keyless events of one type included, and a dead process's
    partitions move within the lease time.
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
