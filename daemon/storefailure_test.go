package daemon

import (
	"errors"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/gomonster/monster/store"
)

// A commit whose outcome is unknown (PostgreSQL ended the connection in
// answer to COMMIT) is answered 503 ambiguous, never as a failure that
// would mean "not stored"; the driver's words go to the log.
func TestAmbiguousCommitAnswers503Ambiguous(t *testing.T) {
	t.Parallel()
	url, fs := faultStoreURL(t)
	var logs lockedBuffer
	b := startLogging(t, Config{Store: url, PollInterval: Duration(10 * time.Millisecond)}, t.TempDir(),
		slog.New(slog.NewTextHandler(io.MultiWriter(&logs, t.Output()), nil)))
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
