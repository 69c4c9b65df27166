package postgres_test

import (
	"fmt"
	"math"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/gomonster/monster/store"
	"github.com/gomonster/monster/store/postgres"
)

// mixedEvents returns n events whose types are drawn from types, and adds
// them to want.
func mixedEvents(n int, types []string, want map[string]int64) []store.NewEvent {
	out := make([]store.NewEvent, n)
	for i := range out {
		typ := types[rand.IntN(len(types))]
		out[i] = newEvent(typ, "1")
		want[typ]++
	}
	return out
}

// queryCounts runs query, whose rows are (type, count), on s's pool.
func queryCounts(t *testing.T, s *postgres.Store, query string, args ...any) map[string]int64 {
	t.Helper()
	counts := map[string]int64{}
	rows, err := s.Pool().Query(t.Context(), query, args...)
	require.NoError(t, err)
	for rows.Next() {
		var typ string
		var n int64
		require.NoError(t, rows.Scan(&typ, &n))
		counts[typ] = n
	}
	require.NoError(t, rows.Err())
	return counts
}

// requireCounts checks CountByType(after) against a count of the events
// table itself.
func requireCounts(t *testing.T, s *postgres.Store, after int64) {
	t.Helper()
	want := queryCounts(t, s, "SELECT type, count(*) FROM "+s.Schema()+".events WHERE position > $1 GROUP BY type", after)
	got, err := s.CountByType(t.Context(), after)
	require.NoError(t, err)
	require.Equal(t, want, got, "CountByType(%d)", after)
}

// through returns the position the type totals count up to.
func through(t *testing.T, s *postgres.Store) int64 {
	t.Helper()
	var p int64
	require.NoError(t, s.Pool().QueryRow(t.Context(), "SELECT position FROM "+s.Schema()+".totals_through").Scan(&p))
	return p
}

// TestTypeCountsFold checks that CountByType is exact before, after and
// across folds of the tail into the totals, at every position.
func TestTypeCountsFold(t *testing.T) {
	t.Parallel()
	s := openStore(t, newSchema(t))
	ctx := t.Context()
	types := []string{"a", "b", "c"}
	want := map[string]int64{}

	got, err := s.CountByType(ctx, 0)
	require.NoError(t, err)
	require.Empty(t, got)
	require.NoError(t, s.Fold(ctx)) // an empty tail: nothing to do
	require.Zero(t, through(t, s))

	_, err = s.Append(ctx, mixedEvents(40, types, want))
	require.NoError(t, err)
	requireCounts(t, s, 0) // all in the tail
	require.Zero(t, through(t, s))

	require.NoError(t, s.Fold(ctx))
	require.EqualValues(t, 40, through(t, s))
	requireCounts(t, s, 0) // all in the totals

	_, err = s.Append(ctx, mixedEvents(25, []string{"c", "d"}, want))
	require.NoError(t, err)
	got, err = s.CountByType(ctx, 0) // totals and tail
	require.NoError(t, err)
	require.Equal(t, want, got)
	for _, after := range []int64{1, 20, 39, 40, 41, 64, 65, 100} {
		requireCounts(t, s, after)
	}
	require.NoError(t, s.Fold(ctx))
	require.EqualValues(t, 65, through(t, s))
	requireCounts(t, s, 0)
	requireCounts(t, s, 10)
}

// TestTypeCountsFoldConcurrently folds again and again while several
// appenders append: every fold must count each event once, whatever
// commits around it.
func TestTypeCountsFoldConcurrently(t *testing.T) {
	t.Parallel()
	schema := newSchema(t)
	s := openStore(t, schema)
	other := openStore(t, schema) // folds from another pool, as another process would
	ctx := t.Context()
	types := []string{"a", "b", "c", "d"}

	var appenders sync.WaitGroup
	var done atomic.Bool
	wants := make([]map[string]int64, 3)
	for i := range wants {
		wants[i] = map[string]int64{}
		appenders.Go(func() {
			for range 30 {
				if _, err := s.Append(ctx, mixedEvents(1+rand.IntN(20), types, wants[i])); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	var folders sync.WaitGroup
	folds := atomic.Int64{}
	for _, f := range []*postgres.Store{s, other, other} {
		folders.Go(func() {
			for !done.Load() {
				if err := f.Fold(ctx); err != nil {
					t.Error(err)
					return
				}
				folds.Add(1)
			}
		})
	}
	appenders.Wait()
	done.Store(true)
	folders.Wait()
	require.Positive(t, folds.Load())

	want := map[string]int64{}
	for _, w := range wants {
		for typ, n := range w {
			want[typ] += n
		}
	}
	got, err := s.CountByType(ctx, 0)
	require.NoError(t, err)
	require.Equal(t, want, got)
	require.NoError(t, s.Fold(ctx))
	head, err := s.Head(ctx)
	require.NoError(t, err)
	require.Equal(t, head, through(t, s))
	totals := queryCounts(t, s, "SELECT type, count FROM "+schema+".type_totals")
	require.Equal(t, want, totals, "the totals alone, the tail being empty")
}

// TestTypeCountsFoldInBackground checks that appends start folds every so
// many events, and that CountByType starts one when it counts a long
// tail.
func TestTypeCountsFoldInBackground(t *testing.T) {
	t.Parallel()
	s := openStore(t, newSchema(t))
	ctx := t.Context()
	want := map[string]int64{}

	s.SetFoldAfter(100)
	for range 5 {
		_, err := s.Append(ctx, mixedEvents(30, []string{"a", "b"}, want))
		require.NoError(t, err)
	}
	s.WaitFolds()
	require.GreaterOrEqual(t, through(t, s), int64(120), "a fold started after the 4th append of 30 events")
	requireCounts(t, s, 0)

	s.SetFoldAfter(math.MaxInt64)
	_, err := s.Append(ctx, mixedEvents(150, []string{"b", "c"}, want))
	require.NoError(t, err)
	s.WaitFolds()
	require.Less(t, through(t, s), int64(300), "no fold: the threshold is out of reach")
	s.SetFoldAfter(100)
	got, err := s.CountByType(ctx, 0) // counts a tail of 150, and starts a fold
	require.NoError(t, err)
	require.Equal(t, want, got)
	s.WaitFolds()
	require.EqualValues(t, 300, through(t, s))
	requireCounts(t, s, 0)
}

// TestMigrateTypeCountsFromVersion1 opens a store whose schema version 1
// made, with counts kept by version 1's appends, and checks that version
// 2 starts its totals from them, and that a version 1 process still
// appending during the upgrade does not upset the counts.
func TestMigrateTypeCountsFromVersion1(t *testing.T) {
	t.Parallel()
	schema := newSchema(t)
	ctx := t.Context()
	pool, err := pgxpool.New(ctx, requireServer(t))
	require.NoError(t, err)
	defer pool.Close()
	require.NoError(t, postgres.CreateV1Schema(ctx, pool, schema))

	// v1Append appends as version 1 did: the event and its count, under
	// the append lock (here: in one transaction, alone).
	v1Append := func(typ string) {
		t.Helper()
		_, err := pool.Exec(ctx, fmt.Sprintf(`
WITH e AS (
	INSERT INTO %[1]s.events (position, id, type, time, data) VALUES (nextval('%[1]s.positions'), gen_random_uuid()::text, $1, now(), '1')
)
INSERT INTO %[1]s.type_counts AS c (type, count) VALUES ($1, 1) ON CONFLICT (type) DO UPDATE SET count = c.count + 1`, schema), typ)
		require.NoError(t, err)
	}
	for _, typ := range []string{"a", "a", "b", "a", "b"} {
		v1Append(typ)
	}

	s := openStore(t, schema) // migrates to the current version
	var version int
	require.NoError(t, pool.QueryRow(ctx, "SELECT max(version) FROM "+schema+".schema_migrations").Scan(&version))
	require.Equal(t, postgres.SchemaVersion, version)
	require.EqualValues(t, 5, through(t, s), "the totals start from version 1's counts")
	got, err := s.CountByType(ctx, 0)
	require.NoError(t, err)
	require.Equal(t, map[string]int64{"a": 3, "b": 2}, got)

	v1Append("a") // a version 1 process, not yet upgraded
	_, err = s.Append(ctx, []store.NewEvent{newEvent("c", "1")})
	require.NoError(t, err)
	want := map[string]int64{"a": 4, "b": 2, "c": 1}
	got, err = s.CountByType(ctx, 0)
	require.NoError(t, err)
	require.Equal(t, want, got)
	require.NoError(t, s.Fold(ctx))
	got, err = s.CountByType(ctx, 0)
	require.NoError(t, err)
	require.Equal(t, want, got)
	requireCounts(t, s, 2)
}

// TestMigratePartitioningFromVersion2 opens a store whose schema version 2
// made, with a consumer registered by version 2, and checks that the
// consumer keeps the partitioning it was registered with (key, else type)
// while new consumers store theirs.
func TestMigratePartitioningFromVersion2(t *testing.T) {
	t.Parallel()
	schema := newSchema(t)
	ctx := t.Context()
	pool, err := pgxpool.New(ctx, requireServer(t))
	require.NoError(t, err)
	defer pool.Close()
	require.NoError(t, postgres.CreateSchemaAt(ctx, pool, schema, 2))
	_, err = pool.Exec(ctx, fmt.Sprintf(`INSERT INTO %[1]s.consumers (name, types, partitions, created) VALUES ('old', '{*}', 2, now());
INSERT INTO %[1]s.partitions (consumer, partition, checkpoint) VALUES ('old', 0, 0), ('old', 1, 0)`, schema))
	require.NoError(t, err)

	s := openStore(t, schema) // migrates to the current version
	old, err := s.RegisterConsumer(ctx, store.ConsumerSpec{Name: "old", Types: []string{"*"}, Partitions: 2, Partitioning: store.PartitionByKeyOrID})
	require.NoError(t, err)
	require.Equal(t, store.PartitionByKeyOrType, old.Partitioning, "a consumer of version 2 keeps partitioning by key, else type")
	fresh, err := s.RegisterConsumer(ctx, store.ConsumerSpec{Name: "new", Types: []string{"*"}, Partitions: 2, Partitioning: store.PartitionByOrderKey})
	require.NoError(t, err)
	require.Equal(t, store.PartitionByOrderKey, fresh.Partitioning)
}
