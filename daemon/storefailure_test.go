package daemon

import (
	"errors"
	"strings"
	"testing"

	"github.com/gomonster/monster/store"
)

// A commit whose outcome is unknown (PostgreSQL ended the connection in
// answer to COMMIT) is answered 503 ambiguous, never as a failure that
// would mean "not stored"; the driver's words go to the log.
func TestAmbiguousCommitAnswers503Ambiguous(t *testing.T) {
	t.Parallel()
	b, fs, logs := setupFaulty(t)
	fs.setAppendError(store.AmbiguousCommitError("postgres", "append",
		errors.New("FATAL: terminating connection due to administrator command (SQLSTATE 57P01)")))
	status, body := b.call(t, "POST", "/v1/events", "", `{"type":"order.placed","data":1,"idempotency_key":"o-1"}`)
	wantError(t, status, body, 503, CodeAmbiguous, "unknown", "may or may not be stored", "idempotency_key")
	if strings.Contains(string(body), "57P01") {
		t.Errorf("the answer carries the driver's error: %s", body)
	}
	b.stop()
	if !strings.Contains(logs.String(), "57P01") {
		t.Errorf("the log does not have the driver's error:\n%s", logs.String())
	}
}

// A 500 answer says what kind of failure it was, never the store's own
// words: those carry connection strings and paths, for the log only.
func TestStoreFailureAnswerKeepsInternals(t *testing.T) {
	t.Parallel()
	b, fs, logs := setupFaulty(t)
	internals := `failed to connect to "user=monster password=S3CRET host=db.internal database=events"`
	for _, tc := range []struct {
		name, storeErr, says string
	}{
		{"connection", "monster: postgres append: " + internals, "the store failed"},
		{"full disk", `monster: sqlite append: the disk is full (database or disk is full (13)) at "/srv/secret/monster.db"`, "the disk is full"},
	} {
		fs.setAppendError(errors.New(tc.storeErr))
		status, body := b.call(t, "POST", "/v1/events", "", `{"type":"a.b","data":1}`)
		wantError(t, status, body, 500, CodeInternal, "internal error", tc.says, "log")
		for _, secret := range []string{"S3CRET", "db.internal", "/srv/secret", "(13)"} {
			if strings.Contains(string(body), secret) {
				t.Errorf("%s: the answer shows %q: %s", tc.name, secret, body)
			}
		}
	}
	b.stop()
	if !strings.Contains(logs.String(), "S3CRET") || !strings.Contains(logs.String(), "/srv/secret") {
		t.Errorf("the log lacks the store's errors:\n%s", logs.String())
	}
}

// While writes fail (a full disk), /healthz says so instead of ok, and it
// recovers by itself once a write succeeds.
func TestHealthReportsFailingWrites(t *testing.T) {
	t.Parallel()
	b, fs, _ := setupFaulty(t)
	status, body := b.call(t, "GET", "/healthz", "", nil)
	if status != 200 || !strings.Contains(string(body), `"ok"`) {
		t.Fatalf("healthz before: %d %s", status, body)
	}

	fs.setAppendError(errors.New(`monster: sqlite append: the disk is full (database or disk is full (13)) at "/srv/secret/monster.db"`))
	status, body = b.call(t, "POST", "/v1/events", "", `{"type":"a.b","data":1}`)
	wantError(t, status, body, 500, CodeInternal, "the disk is full")
	status, body = b.call(t, "GET", "/healthz", "", nil)
	wantError(t, status, body, 503, CodeUnavailable, "last write", "failed", "the disk is full")
	if strings.Contains(string(body), "/srv/secret") {
		t.Errorf("healthz shows the store's error: %s", body)
	}
	// Refused input is not the store's failure: still unhealthy.
	status, _ = b.call(t, "POST", "/v1/events", "", `{"type":"a b","data":1}`)
	if status != 400 {
		t.Fatalf("bad type answered %d", status)
	}
	if status, body = b.call(t, "GET", "/healthz", "", nil); status != 503 {
		t.Fatalf("healthz after refused input: %d %s", status, body)
	}

	fs.setAppendError(nil) // space freed
	status, body = b.call(t, "POST", "/v1/events", "", `{"type":"a.b","data":1}`)
	if status != 201 {
		t.Fatalf("POST after recovery: %d %s", status, body)
	}
	status, body = b.call(t, "GET", "/healthz", "", nil)
	if status != 200 || !strings.Contains(string(body), `"ok"`) {
		t.Fatalf("healthz after recovery: %d %s", status, body)
	}
}
