package postgres_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/gomonster/monster/monstertest"
	"github.com/gomonster/monster/store"
)

// stallCommits adds to schema a deferred trigger that, at COMMIT, sleeps in
// the transactions that insert a row marked "stall" into table (a row of
// events with that type, or of consumers with that name), so that a test
// can end the backend while it answers COMMIT. It returns the
// application_name the stalled backend shows in pg_stat_activity.
func stallCommits(t *testing.T, conn *pgx.Conn, schema, table, column string) string {
	t.Helper()
	app := "stall_" + schema + "_" + table
	_, err := conn.Exec(t.Context(), fmt.Sprintf(`
CREATE FUNCTION %[1]s.stall_%[2]s() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	IF NEW.%[3]s = 'stall' THEN
		PERFORM set_config('application_name', '%[4]s', true);
		PERFORM pg_sleep(60);
	END IF;
	RETURN NULL;
END $$;
CREATE CONSTRAINT TRIGGER stall_%[2]s AFTER INSERT ON %[1]s.%[2]s
	DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION %[1]s.stall_%[2]s();`,
		schema, table, column, app))
	require.NoError(t, err)
	return app
}

// terminateAtCommit waits for the backend named app to be in its COMMIT
// and ends it as a server restart does: the client gets "FATAL:
// terminating connection due to administrator command (SQLSTATE 57P01)"
// as the answer to COMMIT.
func terminateAtCommit(t *testing.T, conn *pgx.Conn, app string) {
	t.Helper()
	var pid int32
	monstertest.EventuallyWithin(t, 20*time.Second, app+" in COMMIT", func() bool {
		err := conn.QueryRow(t.Context(), `SELECT pid FROM pg_stat_activity
			WHERE application_name = $1 AND lower(query) = 'commit' AND wait_event = 'PgSleep'`, app).Scan(&pid)
		return err == nil
	})
	var ok bool
	require.NoError(t, conn.QueryRow(t.Context(), `SELECT pg_terminate_backend($1)`, pid).Scan(&ok))
	require.True(t, ok, "pg_terminate_backend")
}

// A server that ends the connection in answer to COMMIT (a restart, an
// administrator) may have committed: the store reports the outcome as
// unknown (store.ErrAmbiguousCommit, which the daemon answers 503
// ambiguous), never as a plain failure that would mean "not stored".
func TestConnectionEndedAtCommitIsAmbiguous(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	schema := newSchema(t)
	s := openStore(t, schema)
	admin, err := pgx.Connect(ctx, requireServer(t))
	require.NoError(t, err)
	t.Cleanup(func() { admin.Close(context.Background()) })
	stallEvents := stallCommits(t, admin, schema, "events", "type")
	stallConsumers := stallCommits(t, admin, schema, "consumers", "name")

	event := func(id, idem string) store.NewEvent {
		return store.NewEvent{ID: id, Type: "stall", Time: time.Now().UTC(), Data: []byte(`1`), IdempotencyKey: idem}
	}
	for _, tc := range []struct {
		name  string
		app   string
		write func() error
	}{
		// Events without idempotency keys go in one pipeline ending in
		// COMMIT; with them, in a transaction committed on its own.
		{"append, pipelined", stallEvents, func() error {
			_, err := s.Append(ctx, []store.NewEvent{event("e1", "")})
			return err
		}},
		{"append with an idempotency key", stallEvents, func() error {
			_, err := s.Append(ctx, []store.NewEvent{event("e2", "idem-2")})
			return err
		}},
		{"another write", stallConsumers, func() error {
			_, err := s.RegisterConsumer(ctx, store.ConsumerSpec{Name: "stall", Types: []string{"*"}, Partitions: 1})
			return err
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			done := make(chan error, 1)
			go func() { done <- tc.write() }()
			terminateAtCommit(t, admin, tc.app)
			var err error
			select {
			case err = <-done:
			case <-time.After(20 * time.Second):
				t.Fatal("the write did not return after its backend was terminated")
			}
			require.ErrorIs(t, err, store.ErrAmbiguousCommit)
			require.True(t, strings.HasPrefix(err.Error(), "monster: postgres "), err.Error())
			require.Contains(t, err.Error(), "57P01")
		})
	}
	// The store goes on with new connections.
	_, err = s.Append(ctx, []store.NewEvent{{ID: "after", Type: "a.b", Time: time.Now().UTC(), Data: []byte(`1`)}})
	require.NoError(t, err)
}
