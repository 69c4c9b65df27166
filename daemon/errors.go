package daemon

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/gomonster/monster"
)

// Error codes of the API's error bodies, {"error":{"code","message"}}.
const (
	CodeBadRequest       = "bad_request"        // 400: malformed query or body
	CodeInvalidJSON      = "invalid_json"       // 400: the body is not JSON
	CodeInvalidField     = "invalid_field"      // 400: a field is missing, unknown or of the wrong type
	CodeInvalidName      = "invalid_name"       // 400: malformed event type, pattern or consumer name
	CodeUnauthorized     = "unauthorized"       // 401: missing or unknown token
	CodeForbidden        = "forbidden"          // 403: the token lacks the scope
	CodeNotFound         = "not_found"          // 404: no such event, consumer, dead letter or route
	CodeMethodNotAllowed = "method_not_allowed" // 405
	CodeRequestTimeout   = "request_timeout"    // 408: the request body stopped arriving
	CodeConflict         = "conflict"           // 409: contradicts stored state
	CodeTooLarge         = "too_large"          // 413: an event or the request is over its size limit
	CodeUndeclaredType   = "undeclared_type"    // 422: unknown type while undeclared types are rejected
	CodeValidationFailed = "validation_failed"  // 422: the data fails the type's schema
	CodeUnavailable      = "unavailable"        // 503: shutting down, or the store does not answer
	CodeAmbiguous        = "ambiguous"          // 503: the commit's outcome is unknown; the events may be stored
	CodeInternal         = "internal"           // 500
)

// Error is an API error: the HTTP status, a stable code and a message that
// names the problem. Client returns it for every error answer, and Local
// for every failure, so the command line reports both the same way.
type Error struct {
	Status  int    `json:"-"`
	Code    string `json:"code"`
	Message string `json:"message"`
	// Field names the offending field of a validation failure, when known.
	Field string `json:"field,omitempty"`

	err error // the cause, for errors.Is on the library's sentinels
}

func (e *Error) Error() string { return e.Message }

// Unwrap returns the library error behind the API error, if any.
func (e *Error) Unwrap() error { return e.err }

func newError(status int, code, format string, args ...any) *Error {
	return &Error{Status: status, Code: code, Message: fmt.Sprintf("monster: "+format, args...)}
}

// errorBody is the JSON shape of every error answer.
type errorBody struct {
	Error *Error `json:"error"`
}

// apiError maps an error from the library to the API's status and code.
func apiError(err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	out := &Error{Message: err.Error(), err: err}
	var ve *monster.ValidationError
	switch {
	case errors.As(err, &ve):
		out.Status, out.Code, out.Field = http.StatusUnprocessableEntity, CodeValidationFailed, ve.Field
	case errors.Is(err, monster.ErrUndeclared):
		out.Status, out.Code = http.StatusUnprocessableEntity, CodeUndeclaredType
	case errors.Is(err, monster.ErrInvalidKey):
		out.Status, out.Code = http.StatusBadRequest, CodeInvalidField
	case errors.Is(err, monster.ErrInvalidName):
		out.Status, out.Code = http.StatusBadRequest, CodeInvalidName
	case errors.Is(err, monster.ErrTooLarge):
		out.Status, out.Code = http.StatusRequestEntityTooLarge, CodeTooLarge
	case errors.Is(err, monster.ErrEncoding):
		out.Status, out.Code = http.StatusBadRequest, CodeInvalidJSON
	case errors.Is(err, monster.ErrNotFound):
		out.Status, out.Code = http.StatusNotFound, CodeNotFound
	case errors.Is(err, monster.ErrAmbiguous):
		// The store's words (the driver's error) go to the log only.
		out.Status, out.Code = http.StatusServiceUnavailable, CodeAmbiguous
		out.Message = "monster: the outcome of the commit is unknown: the store's connection failed after the commit was sent, " +
			"so the events may or may not be stored; retry with the same idempotency_key to store them exactly once"
	case errors.Is(err, monster.ErrClosed):
		out.Status, out.Code = http.StatusServiceUnavailable, CodeUnavailable
	default:
		out.Status, out.Code = http.StatusInternalServerError, CodeInternal
	}
	return out
}

// storeTrouble says what went wrong with the store in words any API user
// may see: no connection string, path or driver message.
func storeTrouble(err error) string {
	switch {
	case errors.Is(err, monster.ErrAmbiguous):
		return "the store's connection failed during a commit"
	case strings.Contains(err.Error(), "disk is full"):
		// The SQLite store's words for SQLITE_FULL and ENOSPC.
		return "the disk is full"
	case errors.Is(err, context.DeadlineExceeded):
		return "the store did not answer in time"
	}
	return "the store failed"
}

// IsNotFound reports whether err is a not-found answer or error.
func IsNotFound(err error) bool {
	var e *Error
	if errors.As(err, &e) {
		return e.Status == http.StatusNotFound
	}
	return errors.Is(err, monster.ErrNotFound)
}
