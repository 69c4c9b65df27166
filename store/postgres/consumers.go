package postgres

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/gomonster/monster/store"
)

// nullTime stores the zero time as NULL.
func nullTime(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

func fromNullTime(t *time.Time) time.Time {
	if t == nil {
		return time.Time{}
	}
	return t.UTC()
}

// requireConsumer returns the consumer's partition count, or an error
// wrapping store.ErrNotFound.
func (s *Store) requireConsumer(ctx context.Context, tx pgx.Tx, name string) (int, error) {
	var partitions int
	err := tx.QueryRow(ctx, schemaSQL(s.schema, `SELECT partitions FROM S.consumers WHERE name = $1`), name).Scan(&partitions)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, errorf(store.ErrNotFound, "monster: consumer %q not found", name)
	}
	return partitions, err
}

// RegisterConsumer creates the consumer with every partition's checkpoint at
// spec.Start, or updates the Types of an existing one. It returns an error
// wrapping [store.ErrConflict] if the consumer exists with another number
// of partitions. Processes registering one consumer at once agree: one
// creates it, the others find it.
func (s *Store) RegisterConsumer(ctx context.Context, spec store.ConsumerSpec) (store.ConsumerInfo, error) {
	if err := store.ValidateConsumerSpec("postgres register consumer", spec); err != nil {
		return store.ConsumerInfo{}, err
	}
	types := spec.Types
	if types == nil {
		types = []string{}
	}
	var info store.ConsumerInfo
	err := s.writeTx(ctx, "register consumer", func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, schemaSQL(s.schema, `INSERT INTO S.consumers (name, types, partitions, created, partitioning)
			VALUES ($1, $2, $3, $4, $5) ON CONFLICT (name) DO NOTHING`), spec.Name, types, spec.Partitions, time.Now().UTC(), string(spec.Partitioning))
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 1 {
			if _, err := tx.Exec(ctx, schemaSQL(s.schema, `INSERT INTO S.partitions (consumer, partition, checkpoint)
				SELECT $1, p, $2 FROM generate_series(0, $3 - 1) AS p`), spec.Name, spec.Start, spec.Partitions); err != nil {
				return err
			}
		} else {
			var partitions int
			if err := tx.QueryRow(ctx, schemaSQL(s.schema, `SELECT partitions FROM S.consumers WHERE name = $1 FOR UPDATE`), spec.Name).Scan(&partitions); err != nil {
				return err
			}
			if partitions != spec.Partitions {
				return store.ConflictingPartitions(spec.Name, partitions, spec.Partitions)
			}
			if _, err := tx.Exec(ctx, schemaSQL(s.schema, `UPDATE S.consumers SET types = $2 WHERE name = $1`), spec.Name, types); err != nil {
				return err
			}
		}
		infos, err := s.loadConsumers(ctx, tx, spec.Name)
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
	err := s.readTx(ctx, "consumer", func(tx pgx.Tx) error {
		var infos []store.ConsumerInfo
		var err error
		if name != "" {
			infos, err = s.loadConsumers(ctx, tx, name)
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
	err := s.readTx(ctx, "consumers", func(tx pgx.Tx) error {
		var err error
		infos, err = s.loadConsumers(ctx, tx, "")
		return err
	})
	return infos, err
}

// loadConsumers reads the named consumer, or all of them when name is "",
// ordered by name, with their partitions and dead letter counts.
func (s *Store) loadConsumers(ctx context.Context, tx pgx.Tx, name string) ([]store.ConsumerInfo, error) {
	// $1 = '' selects every consumer.
	infos := []store.ConsumerInfo{}
	index := map[string]int{}
	rows, err := tx.Query(ctx, schemaSQL(s.schema, `SELECT name, types, created, partitioning FROM S.consumers
		WHERE $1 = '' OR name = $1 ORDER BY name`), name)
	if err != nil {
		return nil, err
	}
	for rows.Next() {
		var info store.ConsumerInfo
		var partitioning string
		if err := rows.Scan(&info.Name, &info.Types, &info.Created, &partitioning); err != nil {
			rows.Close()
			return nil, err
		}
		info.Partitioning = store.Partitioning(partitioning)
		if len(info.Types) == 0 {
			info.Types = nil
		}
		info.Created = info.Created.UTC()
		info.Partitions = []store.PartitionInfo{}
		index[info.Name] = len(infos)
		infos = append(infos, info)
	}
	if err := rows.Err(); err != nil || len(infos) == 0 {
		return infos, err
	}
	rows, err = tx.Query(ctx, schemaSQL(s.schema, `SELECT consumer, partition, checkpoint, owner, lease_expires, failures, in_flight, epoch
		FROM S.partitions WHERE $1 = '' OR consumer = $1 ORDER BY consumer, partition`), name)
	if err != nil {
		return nil, err
	}
	for rows.Next() {
		var consumer string
		var p store.PartitionInfo
		var expires *time.Time
		if err := rows.Scan(&consumer, &p.Partition, &p.Checkpoint, &p.Owner, &expires, &p.Failures, &p.InFlight, &p.Epoch); err != nil {
			rows.Close()
			return nil, err
		}
		p.LeaseExpires = fromNullTime(expires)
		if i, ok := index[consumer]; ok {
			infos[i].Partitions = append(infos[i].Partitions, p)
		}
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	rows, err = tx.Query(ctx, schemaSQL(s.schema, `SELECT consumer, count(*) FROM S.dead_letters
		WHERE $1 = '' OR consumer = $1 GROUP BY consumer`), name)
	if err != nil {
		return nil, err
	}
	for rows.Next() {
		var consumer string
		var n int64
		if err := rows.Scan(&consumer, &n); err != nil {
			rows.Close()
			return nil, err
		}
		if i, ok := index[consumer]; ok {
			infos[i].DeadLetters = n
		}
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	return infos, nil
}

// DeleteConsumer removes the consumer with its partitions, members and dead
// letters, or returns an error wrapping [store.ErrNotFound].
func (s *Store) DeleteConsumer(ctx context.Context, name string) error {
	return s.writeTx(ctx, "delete consumer", func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, schemaSQL(s.schema, `DELETE FROM S.consumers WHERE name = $1`), name)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return errorf(store.ErrNotFound, "monster: consumer %q not found", name)
		}
		return nil
	})
}

// Heartbeat records that member is alive until expires, forgets the members
// whose heartbeat expired before now, and returns the live members, sorted.
func (s *Store) Heartbeat(ctx context.Context, arg store.HeartbeatParams) ([]string, error) {
	consumer, member, expires, now := arg.Consumer, arg.Member, arg.Expires, arg.Now
	if member == "" {
		return nil, fmt.Errorf("monster: postgres heartbeat: consumer %q: empty member name", consumer)
	}
	members := []string{}
	err := s.writeTx(ctx, "heartbeat", func(tx pgx.Tx) error {
		if _, err := s.requireConsumer(ctx, tx, consumer); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, schemaSQL(s.schema, `INSERT INTO S.members (consumer, member, expires) VALUES ($1, $2, $3)
			ON CONFLICT (consumer, member) DO UPDATE SET expires = excluded.expires`), consumer, member, expires); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, schemaSQL(s.schema, `DELETE FROM S.members WHERE consumer = $1 AND expires < $2`), consumer, now); err != nil {
			return err
		}
		rows, err := tx.Query(ctx, schemaSQL(s.schema, `SELECT member FROM S.members WHERE consumer = $1 ORDER BY member`), consumer)
		if err != nil {
			return err
		}
		members, err = pgx.CollectRows(rows, pgx.RowTo[string])
		return err
	})
	if err != nil {
		return nil, err
	}
	return members, nil
}

// Leave forgets member and releases every partition it holds.
func (s *Store) Leave(ctx context.Context, arg store.LeaveParams) error {
	consumer, member := arg.Consumer, arg.Member
	return s.writeTx(ctx, "leave", func(tx pgx.Tx) error {
		if _, err := s.requireConsumer(ctx, tx, consumer); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, schemaSQL(s.schema, `DELETE FROM S.members WHERE consumer = $1 AND member = $2`), consumer, member); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, schemaSQL(s.schema, `UPDATE S.partitions SET owner = '', lease_expires = NULL, in_flight = 0
			WHERE consumer = $1 AND owner = $2`), consumer, member)
		return err
	})
}

// Claim gives member a lease until expires on each listed partition that is
// free, expired as of now, or its own, and returns every partition member
// holds afterwards, sorted. A partition the consumer does not have is an
// error wrapping [store.ErrNotFound]. Each row is claimed in one UPDATE
// whose condition PostgreSQL checks again on the latest version of the row,
// so two members claiming at once never both get a partition.
func (s *Store) Claim(ctx context.Context, arg store.ClaimParams) ([]store.PartitionInfo, error) {
	consumer, member, partitions, expires, now := arg.Consumer, arg.Member, arg.Partitions, arg.Expires, arg.Now
	if member == "" {
		return nil, fmt.Errorf("monster: postgres claim: consumer %q: empty member name", consumer)
	}
	held := []store.PartitionInfo{}
	err := s.writeTx(ctx, "claim", func(tx pgx.Tx) error {
		n, err := s.requireConsumer(ctx, tx, consumer)
		if err != nil {
			return err
		}
		if err := checkPartitions(consumer, n, partitions); err != nil {
			return err
		}
		if len(partitions) > 0 {
			// Sorted, so that claims of overlapping sets lock rows in one
			// order and cannot deadlock. A lease that changes hands starts
			// with nothing in flight, in a new epoch.
			sorted := slices.Clone(partitions)
			slices.Sort(sorted)
			if _, err := tx.Exec(ctx, schemaSQL(s.schema, `UPDATE S.partitions
				SET owner = $1, lease_expires = $2, in_flight = CASE WHEN owner = $1 THEN in_flight ELSE 0 END,
					epoch = CASE WHEN owner = $1 THEN epoch ELSE epoch + 1 END
				WHERE consumer = $3 AND partition = ANY($4::integer[])
					AND (owner = '' OR owner = $1 OR lease_expires <= $5)`),
				member, expires, consumer, sorted, now); err != nil {
				return err
			}
		}
		rows, err := tx.Query(ctx, schemaSQL(s.schema, `SELECT partition, checkpoint, owner, lease_expires, failures, in_flight, epoch
			FROM S.partitions WHERE consumer = $1 AND owner = $2 ORDER BY partition`), consumer, member)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var p store.PartitionInfo
			var expires *time.Time
			if err := rows.Scan(&p.Partition, &p.Checkpoint, &p.Owner, &expires, &p.Failures, &p.InFlight, &p.Epoch); err != nil {
				return err
			}
			p.LeaseExpires = fromNullTime(expires)
			held = append(held, p)
		}
		return rows.Err()
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
	return s.writeTx(ctx, "release", func(tx pgx.Tx) error {
		if _, err := s.requireConsumer(ctx, tx, consumer); err != nil {
			return err
		}
		if len(partitions) == 0 {
			return nil
		}
		_, err := tx.Exec(ctx, schemaSQL(s.schema, `UPDATE S.partitions SET owner = '', lease_expires = NULL, in_flight = 0
			WHERE consumer = $1 AND partition = ANY($2::integer[]) AND owner = $3`), consumer, partitions, member)
		return err
	})
}

// SaveCheckpoints writes the checkpoints in one commit if member holds every
// listed partition; otherwise it writes nothing and returns an error
// wrapping [store.ErrLeaseLost]. A checkpoint never moves backwards here.
// The partitions' rows are locked while their owners are checked, so a
// claim by another member cannot slip in between.
func (s *Store) SaveCheckpoints(ctx context.Context, arg store.SaveCheckpointsParams) error {
	consumer, member, checkpoints := arg.Consumer, arg.Member, arg.Checkpoints
	return s.writeTx(ctx, "save checkpoints", func(tx pgx.Tx) error {
		n, err := s.requireConsumer(ctx, tx, consumer)
		if err != nil {
			return err
		}
		parts := make([]int, len(checkpoints))
		for i, cp := range checkpoints {
			parts[i] = cp.Partition
		}
		if err := checkPartitions(consumer, n, parts); err != nil {
			return err
		}
		if len(checkpoints) == 0 {
			return nil
		}
		sorted := slices.Clone(parts)
		slices.Sort(sorted)
		rows, err := tx.Query(ctx, schemaSQL(s.schema, `SELECT partition, owner FROM S.partitions
			WHERE consumer = $1 AND partition = ANY($2::integer[]) ORDER BY partition FOR UPDATE`), consumer, sorted)
		if err != nil {
			return err
		}
		owners := make(map[int]string, len(parts))
		for rows.Next() {
			var p int
			var owner string
			if err := rows.Scan(&p, &owner); err != nil {
				rows.Close()
				return err
			}
			owners[p] = owner
		}
		if err := rows.Err(); err != nil {
			return err
		}
		for _, p := range sorted {
			if owner := owners[p]; owner != member {
				holder := "nobody"
				if owner != "" {
					holder = fmt.Sprintf("%q", owner)
				}
				return errorf(store.ErrLeaseLost, "monster: consumer %q partition %d is held by %s, not member %q: partition lease lost",
					consumer, p, holder, member)
			}
		}
		positions, failures, inFlight := make([]int64, len(checkpoints)), make([]int64, len(checkpoints)), make([]int64, len(checkpoints))
		for i, cp := range checkpoints {
			positions[i], failures[i], inFlight[i] = cp.Position, cp.FailuresDelta, cp.InFlight
		}
		// One row per partition: if a partition is listed twice, the
		// later entry's in-flight figure wins and failures add up.
		_, err = tx.Exec(ctx, schemaSQL(s.schema, `UPDATE S.partitions AS p
			SET checkpoint = greatest(p.checkpoint, c.position), failures = p.failures + c.failures, in_flight = c.in_flight
			FROM (
				SELECT partition, max(position) AS position, sum(failures)::bigint AS failures,
					(array_agg(in_flight ORDER BY n DESC))[1] AS in_flight
				FROM unnest($2::integer[], $3::bigint[], $4::bigint[], $5::bigint[]) WITH ORDINALITY
					AS u (partition, position, failures, in_flight, n)
				GROUP BY partition
			) AS c
			WHERE p.consumer = $1 AND p.partition = c.partition`), consumer, parts, positions, failures, inFlight)
		return err
	})
}

// ResetConsumer sets every partition's checkpoint to position and releases
// every lease.
func (s *Store) ResetConsumer(ctx context.Context, arg store.ResetConsumerParams) error {
	consumer, position := arg.Consumer, arg.Position
	if position < 0 {
		return fmt.Errorf("monster: postgres reset consumer %q: negative position %d", consumer, position)
	}
	return s.writeTx(ctx, "reset consumer", func(tx pgx.Tx) error {
		if _, err := s.requireConsumer(ctx, tx, consumer); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, schemaSQL(s.schema, `UPDATE S.partitions SET checkpoint = $2, owner = '', lease_expires = NULL, in_flight = 0
			WHERE consumer = $1`), consumer, position)
		return err
	})
}

// AddDeadLetter stores a dead letter, replacing the consumer's one for the
// same event and clearing its RetryRequested.
func (s *Store) AddDeadLetter(ctx context.Context, dl store.DeadLetter) error {
	if dl.EventID == "" {
		return fmt.Errorf("monster: postgres add dead letter: consumer %q: empty event ID", dl.Consumer)
	}
	return s.writeTx(ctx, "add dead letter", func(tx pgx.Tx) error {
		if _, err := s.requireConsumer(ctx, tx, dl.Consumer); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, schemaSQL(s.schema, `INSERT INTO S.dead_letters
			(consumer, event_id, type, position, partition, attempts, error, failed_at, retry_requested)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, false)
			ON CONFLICT (consumer, event_id) DO UPDATE SET
				type = excluded.type, position = excluded.position, partition = excluded.partition,
				attempts = excluded.attempts, error = excluded.error, failed_at = excluded.failed_at,
				retry_requested = false`),
			dl.Consumer, dl.EventID, dl.Type, dl.Position, dl.Partition, dl.Attempts, textOnly(dl.Error), nullTime(dl.FailedAt))
		return err
	})
}

// textOnly makes a handler's error message storable in a text column:
// PostgreSQL refuses NUL and invalid UTF-8, which an error may hold.
func textOnly(s string) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	return strings.ReplaceAll(s, "\x00", "\uFFFD")
}

// DeadLetters lists the consumer's dead letters selected by q, in position
// order; an error wrapping [store.ErrNotFound] if the consumer does not
// exist.
func (s *Store) DeadLetters(ctx context.Context, q store.DeadLetterQuery) ([]store.DeadLetter, error) {
	consumer := q.Consumer
	var limit *int
	if q.Limit > 0 {
		limit = &q.Limit
	}
	list := []store.DeadLetter{}
	err := s.readTx(ctx, "dead letters", func(tx pgx.Tx) error {
		if _, err := s.requireConsumer(ctx, tx, consumer); err != nil {
			return err
		}
		rows, err := tx.Query(ctx, schemaSQL(s.schema, `SELECT event_id, type, position, partition, attempts, error, failed_at, retry_requested
			FROM S.dead_letters WHERE consumer = $1 AND position > $2 AND (NOT $3 OR retry_requested)
			ORDER BY position, event_id LIMIT $4`), consumer, q.AfterPosition, q.RetryRequested, limit)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			dl := store.DeadLetter{Consumer: consumer}
			var failedAt *time.Time
			if err := rows.Scan(&dl.EventID, &dl.Type, &dl.Position, &dl.Partition, &dl.Attempts, &dl.Error, &failedAt, &dl.RetryRequested); err != nil {
				return err
			}
			dl.FailedAt = fromNullTime(failedAt)
			list = append(list, dl)
		}
		return rows.Err()
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
		`UPDATE S.dead_letters SET retry_requested = true WHERE consumer = $1`)
}

// DeleteDeadLetters removes the consumer's dead letters with the given event
// IDs (all of them when ids is nil) and returns how many it removed. If an
// ID has no dead letter, it removes none and returns an error wrapping
// [store.ErrNotFound].
func (s *Store) DeleteDeadLetters(ctx context.Context, sel store.DeadLetterSelection) (int, error) {
	consumer, ids := sel.Consumer, sel.IDs
	return s.changeDeadLetters(ctx, "delete dead letters", consumer, ids,
		`DELETE FROM S.dead_letters WHERE consumer = $1`)
}

// changeDeadLetters runs statement (which selects the consumer's dead
// letters by $1) for all of them, or for those of ids after checking, with
// their rows locked, that they all exist.
func (s *Store) changeDeadLetters(ctx context.Context, op, consumer string, ids []string, statement string) (int, error) {
	var changed int64
	err := s.writeTx(ctx, op, func(tx pgx.Tx) error {
		if _, err := s.requireConsumer(ctx, tx, consumer); err != nil {
			return err
		}
		if ids == nil {
			tag, err := tx.Exec(ctx, schemaSQL(s.schema, statement), consumer)
			changed = tag.RowsAffected()
			return err
		}
		unique := slices.Compact(slices.Sorted(slices.Values(ids)))
		rows, err := tx.Query(ctx, schemaSQL(s.schema, `SELECT event_id FROM S.dead_letters
			WHERE consumer = $1 AND event_id = ANY($2::text[]) ORDER BY event_id FOR UPDATE`), consumer, unique)
		if err != nil {
			return err
		}
		found, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			return err
		}
		exists := make(map[string]bool, len(found))
		for _, id := range found {
			exists[id] = true
		}
		for _, id := range unique {
			if !exists[id] {
				return errorf(store.ErrNotFound, "monster: consumer %q has no dead letter for event %q", consumer, id)
			}
		}
		tag, err := tx.Exec(ctx, schemaSQL(s.schema, statement+` AND event_id = ANY($2::text[])`), consumer, unique)
		changed = tag.RowsAffected()
		return err
	})
	return int(changed), err
}
