package sqlite

import (
	"context"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/gomonster/monster/store"
)

// readSQL selects events for Read in the form cheapest for the driver, which
// pays a few locked calls into SQLite for every column of every row: type
// and ID come as one column, split at the first typeIDSeparator (which
// Append keeps out of types), and optional columns come as NULL rather than
// as empty strings.
const readSQL = `SELECT position, type || char(31) || id, time, key, data, meta, idem
	FROM events WHERE position > ? ORDER BY position LIMIT ?`

const typeIDSeparator = 31

// Read returns up to limit events with position > after, in position order.
//
// Read is the consumers' hot path, so it talks to the driver connection
// directly: database/sql's Rows.Scan would lock and convert every column and
// copy every payload once more.
func (s *Store) Read(ctx context.Context, arg store.ReadParams) ([]store.Event, error) {
	after, limit := arg.After, arg.Limit
	const op = "read"
	if s.closed.Load() {
		return nil, errClosed(op)
	}
	if limit < 0 {
		return nil, fmt.Errorf("monster: sqlite read: negative limit %d", limit)
	}
	if limit == 0 {
		return []store.Event{}, nil
	}
	conn, err := s.db.Conn(ctx)
	if err != nil {
		return nil, opError(ctx, op, err)
	}
	defer conn.Close()
	var events []store.Event
	err = conn.Raw(func(dc any) error {
		var err error
		events, err = readEvents(ctx, dc, after, limit)
		return err
	})
	if err != nil {
		return nil, opError(ctx, op, err)
	}
	return events, nil
}

func readEvents(ctx context.Context, dc any, after int64, limit int) ([]store.Event, error) {
	prep, ok := dc.(driver.ConnPrepareContext)
	if !ok {
		return nil, fmt.Errorf("driver connection %T cannot prepare with a context", dc)
	}
	stmt, err := prep.PrepareContext(ctx, readSQL)
	if err != nil {
		return nil, err
	}
	defer stmt.Close()
	query, ok := stmt.(driver.StmtQueryContext)
	if !ok {
		return nil, fmt.Errorf("driver statement %T cannot query with a context", stmt)
	}
	rows, err := query.QueryContext(ctx, []driver.NamedValue{
		{Ordinal: 1, Value: after},
		{Ordinal: 2, Value: int64(limit)},
	})
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var events []store.Event
	row := make([]driver.Value, 7)
	for {
		err := rows.Next(row)
		if errors.Is(err, io.EOF) {
			if events == nil {
				events = []store.Event{}
			}
			return events, nil
		}
		if err != nil {
			return nil, err
		}
		e, err := eventFromRow(row)
		if err != nil {
			return nil, err
		}
		events = append(store.GrowEvents(events, limit), e)
	}
}

// eventFromRow converts a row of readSQL. The driver hands out new strings
// and byte slices for every row, which the event keeps.
func eventFromRow(row []driver.Value) (store.Event, error) {
	position, ok1 := row[0].(int64)
	typeID, ok2 := row[1].(string)
	nanos, ok3 := row[2].(int64)
	data, ok4 := row[4].([]byte)
	key, ok5 := nullableString(row[3])
	meta, ok6 := nullableBytes(row[5])
	idem, ok7 := nullableString(row[6])
	sep := strings.IndexByte(typeID, typeIDSeparator)
	if !(ok1 && ok2 && ok3 && ok4 && ok5 && ok6 && ok7) || sep < 0 {
		return store.Event{}, fmt.Errorf("unexpected event row: %T, %T, %T, %T, %T, %T, %T",
			row[0], row[1], row[2], row[3], row[4], row[5], row[6])
	}
	return store.Event{
		ID:             typeID[sep+1:],
		Type:           typeID[:sep],
		Position:       position,
		Time:           time.Unix(0, nanos).UTC(),
		Key:            key,
		Data:           data,
		Meta:           meta,
		IdempotencyKey: idem,
	}, nil
}

func nullableString(v driver.Value) (string, bool) {
	if v == nil {
		return "", true
	}
	s, ok := v.(string)
	return s, ok
}

func nullableBytes(v driver.Value) ([]byte, bool) {
	if v == nil {
		return nil, true
	}
	b, ok := v.([]byte)
	return b, ok
}
