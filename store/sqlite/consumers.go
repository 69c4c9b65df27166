package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/gomonster/monster/store"
)

// unixNano and fromUnixNano convert times to and from the stored form; the
// zero time is stored as 0 and read back as the zero time.
func unixNano(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

func fromUnixNano(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n).UTC()
}

// requireConsumer returns the consumer's partition count, or an error
// wrapping store.ErrNotFound.
func requireConsumer(ctx context.Context, tx *sql.Tx, name string) (int, error) {
	var partitions int
	err := tx.QueryRowContext(ctx, `SELECT partitions FROM consumers WHERE name = ?`, name).Scan(&partitions)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, errorf(store.ErrNotFound, "monster: consumer %q not found", name)
	}
	return partitions, err
}

// RegisterConsumer creates the consumer with every partition's checkpoint at
// spec.Start, or updates the Types of an existing one. It returns an error
// wrapping [store.ErrConflict] if the consumer exists with another number
// of partitions.
func (s *Store) RegisterConsumer(ctx context.Context, spec store.ConsumerSpec) (store.ConsumerInfo, error) {
	if err := store.ValidateConsumerSpec("sqlite register consumer", spec); err != nil {
		return store.ConsumerInfo{}, err
	}
	types, err := json.Marshal(spec.Types)
	if err != nil {
		return store.ConsumerInfo{}, fmt.Errorf("monster: sqlite register consumer %q: %w", spec.Name, err)
	}
	var info store.ConsumerInfo
	err = s.writeTx(ctx, "register consumer", func(tx *sql.Tx) error {
		partitions, err := requireConsumer(ctx, tx, spec.Name)
		switch {
		case errors.Is(err, store.ErrNotFound):
			if _, err := tx.ExecContext(ctx, `INSERT INTO consumers (name, types, partitions, created, partitioning) VALUES (?, ?, ?, ?, ?)`,
				spec.Name, types, spec.Partitions, time.Now().UnixNano(), string(spec.Partitioning)); err != nil {
				return err
			}
			insert, err := tx.PrepareContext(ctx, `INSERT INTO partitions (consumer, partition, checkpoint) VALUES (?, ?, ?)`)
			if err != nil {
				return err
			}
			defer insert.Close()
			for p := range spec.Partitions {
				if _, err := insert.ExecContext(ctx, spec.Name, p, spec.Start); err != nil {
					return err
				}
			}
		case err != nil:
			return err
		case partitions != spec.Partitions:
			return store.ConflictingPartitions(spec.Name, partitions, spec.Partitions)
		default:
			if _, err := tx.ExecContext(ctx, `UPDATE consumers SET types = ? WHERE name = ?`, types, spec.Name); err != nil {
				return err
			}
		}
		infos, err := loadConsumers(ctx, tx, spec.Name)
		if err != nil {
			return err
		}
		info = infos[0]
		return nil
	})
	return info, err
}

// Consumer returns the consumer's state, or an error wrapping
// [store.ErrNotFound].
func (s *Store) Consumer(ctx context.Context, name string) (store.ConsumerInfo, error) {
	var info store.ConsumerInfo
	err := s.readTx(ctx, "consumer", func(tx *sql.Tx) error {
		var infos []store.ConsumerInfo
		var err error
		if name != "" {
			infos, err = loadConsumers(ctx, tx, name)
		}
		if err != nil {
			return err
		}
		if len(infos) == 0 {
			return errorf(store.ErrNotFound, "monster: consumer %q not found", name)
		}
		info = infos[0]
		return nil
	})
	return info, err
}

// Consumers returns every consumer's state, ordered by name.
func (s *Store) Consumers(ctx context.Context) ([]store.ConsumerInfo, error) {
	var infos []store.ConsumerInfo
	err := s.readTx(ctx, "consumers", func(tx *sql.Tx) error {
		var err error
		infos, err = loadConsumers(ctx, tx, "")
		return err
	})
	return infos, err
}

// loadConsumers reads the named consumer, or all of them when name is "",
// ordered by name, with their partitions and dead letter counts.
func loadConsumers(ctx context.Context, tx *sql.Tx, name string) ([]store.ConsumerInfo, error) {
	var where, whereName string
	var args []any
	if name != "" {
		where, whereName, args = ` WHERE consumer = ?`, ` WHERE name = ?`, []any{name}
	}
	infos := []store.ConsumerInfo{}
	index := map[string]int{}
	err := queryRows(ctx, tx, func(rows *sql.Rows) error {
		var info store.ConsumerInfo
		var types []byte
		var created int64
		if err := rows.Scan(&info.Name, &types, &created, &info.Partitioning); err != nil {
			return err
		}
		if err := json.Unmarshal(types, &info.Types); err != nil {
			return fmt.Errorf("consumer %q: types: %w", info.Name, err)
		}
		if len(info.Types) == 0 {
			info.Types = nil
		}
		info.Created = fromUnixNano(created)
		info.Partitions = []store.PartitionInfo{}
		index[info.Name] = len(infos)
		infos = append(infos, info)
		return nil
	}, `SELECT name, types, created, partitioning FROM consumers`+whereName+` ORDER BY name`, args...)
	if err != nil || len(infos) == 0 {
		return infos, err
	}
	err = queryRows(ctx, tx, func(rows *sql.Rows) error {
		var consumer string
		var p store.PartitionInfo
		var expires int64
		if err := rows.Scan(&consumer, &p.Partition, &p.Checkpoint, &p.Owner, &expires, &p.Failures, &p.InFlight, &p.Epoch); err != nil {
			return err
		}
		p.LeaseExpires = fromUnixNano(expires)
		if i, ok := index[consumer]; ok {
			infos[i].Partitions = append(infos[i].Partitions, p)
		}
		return nil
	}, `SELECT consumer, partition, checkpoint, owner, lease_expires, failures, in_flight, epoch FROM partitions`+where+` ORDER BY consumer, partition`, args...)
	if err != nil {
		return nil, err
	}
	err = queryRows(ctx, tx, func(rows *sql.Rows) error {
		var consumer string
		var n int64
		if err := rows.Scan(&consumer, &n); err != nil {
			return err
		}
		if i, ok := index[consumer]; ok {
			infos[i].DeadLetters = n
		}
		return nil
	}, `SELECT consumer, COUNT(*) FROM dead_letters`+where+` GROUP BY consumer`, args...)
	if err != nil {
		return nil, err
	}
	return infos, nil
}

// queryRows runs query and calls scan for each row.
func queryRows(ctx context.Context, tx *sql.Tx, scan func(*sql.Rows) error, query string, args ...any) error {
	rows, err := tx.QueryContext(ctx, query, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		if err := scan(rows); err != nil {
			return err
		}
	}
	return rows.Err()
}

// DeleteConsumer removes the consumer with its partitions, members and dead
// letters, or returns an error wrapping [store.ErrNotFound].
func (s *Store) DeleteConsumer(ctx context.Context, name string) error {
	return s.writeTx(ctx, "delete consumer", func(tx *sql.Tx) error {
		if _, err := requireConsumer(ctx, tx, name); err != nil {
			return err
		}
		for _, table := range []string{"dead_letters", "members", "partitions"} {
			if _, err := tx.ExecContext(ctx, `DELETE FROM `+table+` WHERE consumer = ?`, name); err != nil {
				return err
			}
		}
		_, err := tx.ExecContext(ctx, `DELETE FROM consumers WHERE name = ?`, name)
		return err
	})
}

// Heartbeat records that member is alive until expires, forgets the members
// whose heartbeat expired before now, and returns the live members, sorted.
func (s *Store) Heartbeat(ctx context.Context, arg store.HeartbeatParams) ([]string, error) {
	consumer, member, expires, now := arg.Consumer, arg.Member, arg.Expires, arg.Now
	if member == "" {
		return nil, fmt.Errorf("monster: sqlite heartbeat: consumer %q: empty member name", consumer)
	}
	members := []string{}
	err := s.writeTx(ctx, "heartbeat", func(tx *sql.Tx) error {
		if _, err := requireConsumer(ctx, tx, consumer); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO members (consumer, member, expires) VALUES (?, ?, ?)
			ON CONFLICT (consumer, member) DO UPDATE SET expires = excluded.expires`, consumer, member, expires.UnixNano()); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM members WHERE consumer = ? AND expires < ?`, consumer, now.UnixNano()); err != nil {
			return err
		}
		return queryRows(ctx, tx, func(rows *sql.Rows) error {
			var m string
			if err := rows.Scan(&m); err != nil {
				return err
			}
			members = append(members, m)
			return nil
		}, `SELECT member FROM members WHERE consumer = ? ORDER BY member`, consumer)
	})
	if err != nil {
		return nil, err
	}
	return members, nil
}

// Leave forgets member and releases every partition it holds.
func (s *Store) Leave(ctx context.Context, arg store.LeaveParams) error {
	consumer, member := arg.Consumer, arg.Member
	return s.writeTx(ctx, "leave", func(tx *sql.Tx) error {
		if _, err := requireConsumer(ctx, tx, consumer); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM members WHERE consumer = ? AND member = ?`, consumer, member); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `UPDATE partitions SET owner = '', lease_expires = 0, in_flight = 0
			WHERE consumer = ? AND owner = ?`, consumer, member)
		return err
	})
}

// Claim gives member a lease until expires on each listed partition that is
// free, expired as of now, or its own, and returns every partition member
// holds afterwards, sorted. A partition the consumer does not have is an
// error wrapping [store.ErrNotFound].
func (s *Store) Claim(ctx context.Context, arg store.ClaimParams) ([]store.PartitionInfo, error) {
	consumer, member, partitions, expires, now := arg.Consumer, arg.Member, arg.Partitions, arg.Expires, arg.Now
	if member == "" {
		return nil, fmt.Errorf("monster: sqlite claim: consumer %q: empty member name", consumer)
	}
	held := []store.PartitionInfo{}
	err := s.writeTx(ctx, "claim", func(tx *sql.Tx) error {
		n, err := requireConsumer(ctx, tx, consumer)
		if err != nil {
			return err
		}
		if err := checkPartitions(consumer, n, partitions); err != nil {
			return err
		}
		if len(partitions) > 0 {
			// A lease that changes hands starts with nothing in flight.
			claim, err := tx.PrepareContext(ctx, `UPDATE partitions
				SET owner = ?1, lease_expires = ?2, in_flight = CASE WHEN owner = ?1 THEN in_flight ELSE 0 END,
					epoch = CASE WHEN owner = ?1 THEN epoch ELSE epoch + 1 END
				WHERE consumer = ?3 AND partition = ?4 AND (owner = '' OR owner = ?1 OR lease_expires <= ?5)`)
			if err != nil {
				return err
			}
			defer claim.Close()
			for _, p := range partitions {
				if _, err := claim.ExecContext(ctx, member, expires.UnixNano(), consumer, p, now.UnixNano()); err != nil {
					return err
				}
			}
		}
		return queryRows(ctx, tx, func(rows *sql.Rows) error {
			var p store.PartitionInfo
			var expires int64
			if err := rows.Scan(&p.Partition, &p.Checkpoint, &p.Owner, &expires, &p.Failures, &p.InFlight, &p.Epoch); err != nil {
				return err
			}
			p.LeaseExpires = fromUnixNano(expires)
			held = append(held, p)
			return nil
		}, `SELECT partition, checkpoint, owner, lease_expires, failures, in_flight, epoch FROM partitions
			WHERE consumer = ? AND owner = ? ORDER BY partition`, consumer, member)
	})
	if err != nil {
		return nil, err
	}
	return held, nil
}

func checkPartitions(consumer string, n int, partitions []int) error {
	for _, p := range partitions {
		if p < 0 || p >= n {
			return errorf(store.ErrNotFound, "monster: consumer %q has no partition %d (it has %d)", consumer, p, n)
		}
	}
	return nil
}

// Release frees the listed partitions that member holds.
func (s *Store) Release(ctx context.Context, arg store.ReleaseParams) error {
	consumer, member, partitions := arg.Consumer, arg.Member, arg.Partitions
	return s.writeTx(ctx, "release", func(tx *sql.Tx) error {
		if _, err := requireConsumer(ctx, tx, consumer); err != nil {
			return err
		}
		for _, p := range partitions {
			if _, err := tx.ExecContext(ctx, `UPDATE partitions SET owner = '', lease_expires = 0, in_flight = 0
				WHERE consumer = ? AND partition = ? AND owner = ?`, consumer, p, member); err != nil {
				return err
			}
		}
		return nil
	})
}

// SaveCheckpoints writes the checkpoints in one commit if member holds every
// listed partition; otherwise it writes nothing and returns an error
// wrapping [store.ErrLeaseLost]. A checkpoint never moves backwards here.
func (s *Store) SaveCheckpoints(ctx context.Context, arg store.SaveCheckpointsParams) error {
	consumer, member, checkpoints := arg.Consumer, arg.Member, arg.Checkpoints
	return s.writeTx(ctx, "save checkpoints", func(tx *sql.Tx) error {
		n, err := requireConsumer(ctx, tx, consumer)
		if err != nil {
			return err
		}
		for _, cp := range checkpoints {
			if err := checkPartitions(consumer, n, []int{cp.Partition}); err != nil {
				return err
			}
			var owner string
			if err := tx.QueryRowContext(ctx, `SELECT owner FROM partitions WHERE consumer = ? AND partition = ?`,
				consumer, cp.Partition).Scan(&owner); err != nil {
				return err
			}
			if owner != member {
				holder := "nobody"
				if owner != "" {
					holder = fmt.Sprintf("%q", owner)
				}
				return errorf(store.ErrLeaseLost, "monster: consumer %q partition %d is held by %s, not member %q: partition lease lost",
					consumer, cp.Partition, holder, member)
			}
		}
		for _, cp := range checkpoints {
			if _, err := tx.ExecContext(ctx, `UPDATE partitions
				SET checkpoint = MAX(checkpoint, ?), failures = failures + ?, in_flight = ?
				WHERE consumer = ? AND partition = ?`,
				cp.Position, cp.FailuresDelta, cp.InFlight, consumer, cp.Partition); err != nil {
				return err
			}
		}
		return nil
	})
}

// ResetConsumer sets every partition's checkpoint to position and releases
// every lease.
func (s *Store) ResetConsumer(ctx context.Context, arg store.ResetConsumerParams) error {
	consumer, position := arg.Consumer, arg.Position
	if position < 0 {
		return fmt.Errorf("monster: sqlite reset consumer %q: negative position %d", consumer, position)
	}
	return s.writeTx(ctx, "reset consumer", func(tx *sql.Tx) error {
		if _, err := requireConsumer(ctx, tx, consumer); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `UPDATE partitions SET checkpoint = ?, owner = '', lease_expires = 0, in_flight = 0
			WHERE consumer = ?`, position, consumer)
		return err
	})
}

// AddDeadLetter stores a dead letter, replacing the consumer's one for the
// same event and clearing its RetryRequested.
func (s *Store) AddDeadLetter(ctx context.Context, dl store.DeadLetter) error {
	if dl.EventID == "" {
		return fmt.Errorf("monster: sqlite add dead letter: consumer %q: empty event ID", dl.Consumer)
	}
	return s.writeTx(ctx, "add dead letter", func(tx *sql.Tx) error {
		if _, err := requireConsumer(ctx, tx, dl.Consumer); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO dead_letters
			(consumer, event_id, type, position, partition, attempts, error, failed_at, retry_requested)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, 0)
			ON CONFLICT (consumer, event_id) DO UPDATE SET
				type = excluded.type, position = excluded.position, partition = excluded.partition,
				attempts = excluded.attempts, error = excluded.error, failed_at = excluded.failed_at,
				retry_requested = 0`,
			dl.Consumer, dl.EventID, dl.Type, dl.Position, dl.Partition, dl.Attempts, dl.Error, unixNano(dl.FailedAt))
		return err
	})
}

// DeadLetters lists the consumer's dead letters selected by q, in position
// order; an error wrapping [store.ErrNotFound] if the consumer does not
// exist.
func (s *Store) DeadLetters(ctx context.Context, q store.DeadLetterQuery) ([]store.DeadLetter, error) {
	consumer := q.Consumer
	limit := int64(-1) // SQLite: no limit
	if q.Limit > 0 {
		limit = int64(q.Limit)
	}
	list := []store.DeadLetter{}
	err := s.readTx(ctx, "dead letters", func(tx *sql.Tx) error {
		if _, err := requireConsumer(ctx, tx, consumer); err != nil {
			return err
		}
		return queryRows(ctx, tx, func(rows *sql.Rows) error {
			dl := store.DeadLetter{Consumer: consumer}
			var failedAt int64
			if err := rows.Scan(&dl.EventID, &dl.Type, &dl.Position, &dl.Partition, &dl.Attempts, &dl.Error, &failedAt, &dl.RetryRequested); err != nil {
				return err
			}
			dl.FailedAt = fromUnixNano(failedAt)
			list = append(list, dl)
			return nil
		}, `SELECT event_id, type, position, partition, attempts, error, failed_at, retry_requested
			FROM dead_letters WHERE consumer = ? AND position > ? AND (? = 0 OR retry_requested = 1)
			ORDER BY position, event_id LIMIT ?`, consumer, q.AfterPosition, q.RetryRequested, limit)
	})
	if err != nil {
		return nil, err
	}
	return list, nil
}

// RequestRetry marks the consumer's dead letters with the given event IDs
// (all of them when ids is nil) for retry and returns how many it marked.
// If an ID has no dead letter, it marks none and returns an error wrapping
// [store.ErrNotFound].
func (s *Store) RequestRetry(ctx context.Context, sel store.DeadLetterSelection) (int, error) {
	consumer, ids := sel.Consumer, sel.IDs
	return s.changeDeadLetters(ctx, "request retry", consumer, ids,
		`UPDATE dead_letters SET retry_requested = 1 WHERE consumer = ?`)
}

// DeleteDeadLetters removes the consumer's dead letters with the given event
// IDs (all of them when ids is nil) and returns how many it removed. If an
// ID has no dead letter, it removes none and returns an error wrapping
// [store.ErrNotFound].
func (s *Store) DeleteDeadLetters(ctx context.Context, sel store.DeadLetterSelection) (int, error) {
	consumer, ids := sel.Consumer, sel.IDs
	return s.changeDeadLetters(ctx, "delete dead letters", consumer, ids,
		`DELETE FROM dead_letters WHERE consumer = ?`)
}

// changeDeadLetters runs statement (which selects the consumer's dead
// letters by its one parameter) for all of them, or for each of ids after
// checking that they all exist.
func (s *Store) changeDeadLetters(ctx context.Context, op, consumer string, ids []string, statement string) (int, error) {
	var changed int64
	err := s.writeTx(ctx, op, func(tx *sql.Tx) error {
		if _, err := requireConsumer(ctx, tx, consumer); err != nil {
			return err
		}
		if ids == nil {
			res, err := tx.ExecContext(ctx, statement, consumer)
			if err != nil {
				return err
			}
			changed, err = res.RowsAffected()
			return err
		}
		unique := make(map[string]bool, len(ids))
		for _, id := range ids {
			if unique[id] {
				continue
			}
			unique[id] = true
			var one int
			err := tx.QueryRowContext(ctx, `SELECT 1 FROM dead_letters WHERE consumer = ? AND event_id = ?`, consumer, id).Scan(&one)
			if errors.Is(err, sql.ErrNoRows) {
				return errorf(store.ErrNotFound, "monster: consumer %q has no dead letter for event %q", consumer, id)
			}
			if err != nil {
				return err
			}
		}
		stmt, err := tx.PrepareContext(ctx, statement+` AND event_id = ?`)
		if err != nil {
			return err
		}
		defer stmt.Close()
		for id := range unique {
			res, err := stmt.ExecContext(ctx, consumer, id)
			if err != nil {
				return err
			}
			n, err := res.RowsAffected()
			if err != nil {
				return err
			}
			changed += n
		}
		return nil
	})
	return int(changed), err
}
