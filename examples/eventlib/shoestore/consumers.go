package shoestore

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/gomonster/monster"
)

// Names of the shop's consumers.
const (
	TableConsumer   = "shoestore.views-table"
	CounterConsumer = "shoestore.redis-counter"
)

// Consumers are the shop's two consumers of shoestore.product_viewed,
// eventlib's two handlers of ProductViewedEvent. Each is a separate Monster
// consumer: a failure of one never delays, fails or loses events for the
// other, nor the page that logged them.
type Consumers struct {
	Table   *ViewsTable
	Counter *RedisCounter
	// CounterRetry is the Redis counter's backoff. The counter retries a
	// failed event until it succeeds, holding back the events after it
	// (ConsumerOptions.BlockOnFailure), so that a Redis outage delays counts but
	// loses none. Zero fields default to 100ms growing to 5s.
	CounterRetry monster.RetryPolicy
}

// Register declares both consumers on m.
func (c Consumers) Register(m *monster.Monster, viewed *monster.Type[ProductViewed]) error {
	if err := m.Consume(TableConsumer, monster.Handle(viewed, c.Table.Handle), nil); err != nil {
		return err
	}
	retry := c.CounterRetry
	if retry.MaxBackoff == 0 {
		retry.MaxBackoff = 5 * time.Second
	}
	return m.Consume(CounterConsumer, monster.Handle(viewed, c.Counter.Handle), &monster.ConsumerOptions{
		BlockOnFailure: true,
		Retry:          retry,
	})
}

// ViewsTable keeps a row per product view in the SQL table product_views.
type ViewsTable struct {
	DB *sql.DB
}

// CreateTable creates the product_views table if it does not exist.
func (t *ViewsTable) CreateTable(ctx context.Context) error {
	_, err := t.DB.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS product_views (
		event_id  TEXT PRIMARY KEY,
		user      TEXT NOT NULL,
		product   TEXT NOT NULL,
		viewed_at TEXT NOT NULL
	)`)
	if err != nil {
		return fmt.Errorf("shoestore: creating product_views: %w", err)
	}
	return nil
}

// Handle inserts the view. Keyed by the event's ID, the insert is
// idempotent: an event delivered again (Monster delivers at least once)
// leaves one row.
func (t *ViewsTable) Handle(ctx context.Context, e monster.Event[ProductViewed]) error {
	_, err := t.DB.ExecContext(ctx,
		`INSERT INTO product_views (event_id, user, product, viewed_at) VALUES (?, ?, ?, ?)
		 ON CONFLICT (event_id) DO NOTHING`,
		e.ID, e.Data.User, e.Data.Product, e.Time.Format(time.RFC3339Nano))
	if err != nil {
		return fmt.Errorf("shoestore: recording view %s: %w", e.ID, err)
	}
	return nil
}

// Views returns the number of rows for product ("" for all products).
func (t *ViewsTable) Views(ctx context.Context, product string) (int, error) {
	var n int
	err := t.DB.QueryRowContext(ctx,
		`SELECT count(*) FROM product_views WHERE ? = '' OR product = ?`, product, product).Scan(&n)
	return n, err
}

// RedisCounter counts views of products from allowed sources in Redis, in
// the key "<Prefix>shoeprimehit:<user>:<product>".
type RedisCounter struct {
	Client redis.Scripter
	// Prefix is prepended to every key the counter writes.
	Prefix string
	// AllowedSources are the product sources whose views count; views of
	// other products are ignored.
	AllowedSources []string
	// Remember is how long the counter remembers the events it counted, to
	// count an event delivered again only once. Default 24h.
	Remember time.Duration
}

// Key returns the counter's key for user and product.
func (c *RedisCounter) Key(user, product string) string {
	return c.Prefix + "shoeprimehit:" + user + ":" + product
}

// countOnce increments KEYS[1] unless KEYS[2] (the event's marker) exists,
// and sets the marker, atomically.
var countOnce = redis.NewScript(`
if redis.call('SET', KEYS[2], '1', 'NX', 'PX', ARGV[1]) then
	return redis.call('INCR', KEYS[1])
end
return 0
`)

// Handle increments the counter for a view of a product from an allowed
// source, once per event: if Redis counted the event but the reply was
// lost, the retry finds the event's marker and does not count it again.
func (c *RedisCounter) Handle(ctx context.Context, e monster.Event[ProductViewed]) error {
	if !slices.Contains(c.AllowedSources, e.Data.Source) {
		return nil
	}
	remember := c.Remember
	if remember <= 0 {
		remember = 24 * time.Hour
	}
	keys := []string{c.Key(e.Data.User, e.Data.Product), c.Prefix + "shoeprimehit-counted:" + e.ID}
	if err := countOnce.Run(ctx, c.Client, keys, remember.Milliseconds()).Err(); err != nil {
		return fmt.Errorf("shoestore: counting view %s in Redis: %w", e.ID, err)
	}
	return nil
}
