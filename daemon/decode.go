package daemon

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
)

// maxBatchEvents caps the events in one POST /v1/events request.
const maxBatchEvents = 10000

// postEventsBody is the body of POST /v1/events: one event, or a batch in
// "events".
type postEventsBody struct {
	NewEvent
	Events []json.RawMessage `json:"events"`
}

// decodeEvents parses the body of POST /v1/events into events, checking
// each event's shape and size (maxEvent bytes of data and meta). It reports
// whether the body was a batch. Every error is an *Error naming the
// problem: 400 for malformed JSON, wrong or unknown fields and missing
// ones, 413 for an oversize event.
//
// The data of the events may be subslices of body.
func decodeEvents(body []byte, maxEvent int) (events []NewEvent, batch bool, err error) {
	events, batch, ok := decodeEventsFast(body)
	if !ok {
		return decodeEventsStrict(body, maxEvent)
	}
	if !batch {
		return events, false, checkNewEvent(&events[0], "", maxEvent)
	}
	for i := range events {
		if !eventOK(&events[i], maxEvent) {
			return nil, true, checkNewEvent(&events[i], fmt.Sprintf("events[%d].", i), maxEvent)
		}
	}
	return events, true, nil
}

// eventOK reports whether checkNewEvent passes e, without building its
// field prefix.
func eventOK(e *NewEvent, maxEvent int) bool {
	return checkNewEvent(e, "", maxEvent) == nil
}

// decodeEventsStrict is decodeEvents with encoding/json: the reference for
// decodeEventsFast, and the decoder of every body the fast one declines.
func decodeEventsStrict(body []byte, maxEvent int) (events []NewEvent, batch bool, err error) {
	trimmed := bytes.TrimLeft(body, " \t\r\n")
	if len(trimmed) == 0 {
		return nil, false, newError(http.StatusBadRequest, CodeInvalidJSON, "request body is empty; want a JSON object such as {\"type\":\"user.signed_up\",\"data\":{}}")
	}
	// A malformed body is answered as such, as encoding/json classifies it,
	// before anything is said of its content: "not json" starts like null
	// and "foo" like false, and {"x":0}0 has an unknown field, but all
	// three are malformed.
	if !json.Valid(body) {
		var v any
		return nil, false, jsonError(json.Unmarshal(body, &v), "")
	}
	if trimmed[0] != '{' {
		return nil, false, newError(http.StatusBadRequest, CodeInvalidJSON, "request body must be a JSON object, not %s", jsonKind(trimmed[0]))
	}
	var top postEventsBody
	if err := strictUnmarshal(body, &top, ""); err != nil {
		return nil, false, err
	}
	if top.Events == nil {
		if err := checkNewEvent(&top.NewEvent, "", maxEvent); err != nil {
			return nil, false, err
		}
		return []NewEvent{top.NewEvent}, false, nil
	}
	if top.Type != "" || top.Data != nil || top.Key != "" || top.IdempotencyKey != "" || top.Meta != nil {
		return nil, true, newError(http.StatusBadRequest, CodeInvalidField, "a body with \"events\" must not also have type, data, key, idempotency_key or meta")
	}
	if len(top.Events) == 0 {
		return nil, true, newError(http.StatusBadRequest, CodeInvalidField, "field \"events\" is empty; send at least one event")
	}
	if len(top.Events) > maxBatchEvents {
		return nil, true, newError(http.StatusRequestEntityTooLarge, CodeTooLarge, "batch of %d events is over the limit of %d per request", len(top.Events), maxBatchEvents)
	}
	events = make([]NewEvent, len(top.Events))
	for i, raw := range top.Events {
		where := fmt.Sprintf("events[%d]", i)
		if t := bytes.TrimLeft(raw, " \t\r\n"); len(t) > 0 && t[0] != '{' {
			return nil, true, newError(http.StatusBadRequest, CodeInvalidField, "%s must be a JSON object, not %s", where, jsonKind(t[0]))
		}
		if err := strictUnmarshal(raw, &events[i], where+"."); err != nil {
			return nil, true, err
		}
		if err := checkNewEvent(&events[i], where+".", maxEvent); err != nil {
			return nil, true, err
		}
	}
	return events, true, nil
}

// checkNewEvent checks what JSON decoding cannot: required fields and the
// size limit. The library checks the type name and the data's validity.
func checkNewEvent(e *NewEvent, prefix string, maxEvent int) error {
	if e.Type == "" {
		return newError(http.StatusBadRequest, CodeInvalidField, "missing field %q: every event needs a type such as \"user.signed_up\"", prefix+"type")
	}
	if e.Data == nil {
		return newError(http.StatusBadRequest, CodeInvalidField, "missing field %q in %q event: send the payload, or null", prefix+"data", e.Type)
	}
	size := len(e.Data)
	for k, v := range e.Meta {
		size += len(k) + len(v)
	}
	if size > maxEvent {
		return &Error{Status: http.StatusRequestEntityTooLarge, Code: CodeTooLarge, Field: prefix + "data",
			Message: fmt.Sprintf("monster: %q event (%s) is %d bytes, over the limit of %d per event", e.Type, strings.TrimSuffix(prefix, "."), size, maxEvent)}
	}
	return nil
}

// strictUnmarshal decodes one JSON object into v, rejecting unknown fields
// and trailing data, with errors naming the field (prefixed by prefix).
func strictUnmarshal(data []byte, v any, prefix string) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return jsonError(err, prefix)
	}
	if _, err := dec.Token(); err != io.EOF {
		return newError(http.StatusBadRequest, CodeInvalidJSON, "unexpected data after the JSON object")
	}
	return nil
}

// jsonError turns an encoding/json error into a 400 naming the field or
// the offset.
func jsonError(err error, prefix string) *Error {
	var typeErr *json.UnmarshalTypeError
	var syntaxErr *json.SyntaxError
	switch {
	case errors.As(err, &typeErr):
		field := prefix + strings.TrimPrefix(typeErr.Field, "NewEvent.")
		return &Error{Status: http.StatusBadRequest, Code: CodeInvalidField, Field: field,
			Message: fmt.Sprintf("monster: field %q: got JSON %s, want %s", field, typeErr.Value, jsonTypeName(typeErr.Type.String()))}
	case errors.As(err, &syntaxErr):
		return newError(http.StatusBadRequest, CodeInvalidJSON, "malformed JSON at byte %d: %v", syntaxErr.Offset, syntaxErr)
	case errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		return newError(http.StatusBadRequest, CodeInvalidJSON, "malformed JSON: the body ends too early")
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		name := strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
		return &Error{Status: http.StatusBadRequest, Code: CodeInvalidField, Field: prefix + name,
			Message: fmt.Sprintf("monster: unknown field %q; an event has type, data, key, idempotency_key and meta", prefix+name)}
	}
	return newError(http.StatusBadRequest, CodeInvalidJSON, "malformed JSON: %v", err)
}

func jsonTypeName(goType string) string {
	switch {
	case goType == "string":
		return "a string"
	case strings.HasPrefix(goType, "map["):
		return "an object of strings"
	case strings.HasPrefix(goType, "[]"):
		return "an array"
	case goType == "int64", goType == "int":
		return "an integer"
	}
	return goType
}

// jsonKind names the kind of the JSON value that starts with b; the value
// must be valid JSON (a malformed one may start like any kind).
func jsonKind(b byte) string {
	switch {
	case b == '[':
		return "an array"
	case b == '"':
		return "a string"
	case b == 'n':
		return "null"
	case b == 't' || b == 'f':
		return "a boolean"
	case b == '-' || (b >= '0' && b <= '9'):
		return "a number"
	}
	return fmt.Sprintf("something starting with %q", b)
}
