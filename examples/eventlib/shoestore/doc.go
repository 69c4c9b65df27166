// Package shoestore is the shoe store of eventlib's tutorial, on Monster.
//
// The product page logs a shoestore.product_viewed event in one line and
// renders the page; nothing else in the request depends on what happens to
// the event. Two independent consumers then act on it, each with its own
// position, retries and dead letters:
//
//   - ViewsTable writes a row per view into an SQL table (eventlib's
//     log_to_mysql handler);
//   - RedisCounter increments a per-user, per-product counter in Redis,
//     only for products from an allowed source (log_to_redis, with the
//     ticket's "do not increase the counter if the product is not from the
//     source X" rule).
//
// If Redis is down, the page still answers, the table is still written, and
// the counter catches up when Redis is back: its consumer retries without
// dead-lettering (ConsumerOptions.BlockOnFailure), and counts each event once
// even when it is delivered again.
package shoestore
