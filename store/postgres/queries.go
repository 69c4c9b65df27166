package postgres

import "strconv"

// queries are the statements that name the store's schema, built once per
// Store. pgx prepares each on every connection that runs it and keeps it.
type queries struct {
	lock, idem, insert, read, eventByID, head string
	// channel is the LISTEN/NOTIFY channel of the schema.
	channel string
}

// eventColumns are the columns of a store.Event, in scanEvent's order.
const eventColumns = `position, id, type, time, coalesce(key, ''), data, meta, coalesce(idem, '')`

func newQueries(schema string) queries {
	return queries{
		// lock_for_append takes the append lock within lock_timeout and
		// puts the caller's lock_timeout back.
		lock: schemaSQL(schema, `SELECT S.lock_for_append($1, $2)`),
		idem: schemaSQL(schema, `SELECT `+eventColumns+` FROM S.events WHERE idem = ANY($1::text[])`),
		// insert allocates len($1) consecutive positions from the sequence
		// (under the append lock no one else draws from it), inserts the
		// rows in slice order, queues a notification (sent by the server
		// if and when the transaction commits), and returns the last
		// position. (Counts per type are not kept here: counts.go.)
		insert: schemaSQL(schema, `
WITH p AS (
	SELECT setval('S.positions', nextval('S.positions') + cardinality($1::text[]) - 1) AS last
), ins AS (
	INSERT INTO S.events (position, id, type, time, key, data, meta, idem)
	SELECT p.last - cardinality($1::text[]) + u.n, u.id, u.type, u.time, nullif(u.key, ''), u.data, u.meta, nullif(u.idem, '')
	FROM p, unnest($1::text[], $2::text[], $3::timestamptz[], $4::text[], $5::bytea[], $6::bytea[], $7::text[])
		WITH ORDINALITY AS u (id, type, time, key, data, meta, idem, n)
)
SELECT p.last FROM p, LATERAL (SELECT pg_notify($8, p.last::text)) AS n`),
		read:      schemaSQL(schema, `SELECT `+eventColumns+` FROM S.events WHERE position > $1 ORDER BY position LIMIT $2`),
		eventByID: schemaSQL(schema, `SELECT `+eventColumns+` FROM S.events WHERE id = $1`),
		head:      schemaSQL(schema, `SELECT coalesce(max(position), 0) FROM S.events`),
		channel:   channelName(schema),
	}
}

// channelName is the NOTIFY channel for a schema: "monster." and the
// schema name, short of the 63 bytes PostgreSQL keeps of a name.
func channelName(schema string) string {
	name := "monster." + schema
	if len(name) > 63 {
		name = "monster." + strconv.FormatUint(uint64(lockKey("notify", schema)), 36)
	}
	return name
}
