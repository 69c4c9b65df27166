package daemon

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"

	"github.com/gomonster/monster"
)

// FuzzPostEvents sends arbitrary bodies to POST /v1/events. The daemon
// must never panic, and must answer either 201 with stored events that read
// back as valid Unicode text (checkStoredText) or a documented error status
// with a JSON error body whose message starts with "monster: ". The seed corpus runs in every `go test`; CI runs
// `go test ./daemon -run '^$' -fuzz '^FuzzPostEvents$' -fuzztime 15s` (.ci/run).
func FuzzPostEvents(f *testing.F) {
	for _, seed := range []string{
		`{"type":"user.bought_shirt","data":{"user":"gordon","quantity":2}}`,
		`{"events":[{"type":"a.b","data":1},{"type":"a.c","data":null,"key":"k","idempotency_key":"i","meta":{"a":"b"}}]}`,
		`{"type":"decl.strict","data":{"n":0}}`,
		`{"type":"decl.strict","data":{"n":"x"}}`,
		`{"type":"a b","data":1}`, `{"type":5}`, `{"events":[1,{}]}`, `{"events":{}}`, `[]`, `""`, `null`, ``,
		`{"type":"a","data":1}{}`, `{"type":"a","data":1,"meta":{"x":[]}}`, `{"type":"a","data":"\ud800"}`,
		`{"type":"a","data":` + strings.Repeat("[", 100) + strings.Repeat("]", 100) + `}`,
		"{\"type\":\"a\",\"data\":\"\xff\xfe\xc0\"}", `{"type":"a","data":"\ud83d\ude00"}`, `{"type":"a","data":"\\ud800"}`,
		`{"type":"a","data":["\udc00"]}`, `{"type":"a","data":"\ud800\u0041"}`, `{"type":"a","data":{"\ud800":1}}`,
		`{"type":"a","data":1,"key":"\u0000"}`, `{"type":"a","data":1,"idempotency_key":"a\u001fb"}`,
		`{"type":"a","data":1,"key":"` + strings.Repeat("k", 1025) + `"}`,
	} {
		f.Add([]byte(seed))
	}
	s, err := New(context.Background(), Config{
		Store: "memory://", MaxEventBytes: 512, MaxRequestBytes: 4096,
		Types: map[string]TypeConfig{"decl.strict": {Schema: json.RawMessage(`{"type":"object","properties":{"n":{"type":"integer","minimum":1}}}`)}},
	}, nil)
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { _ = s.Shutdown(context.Background()) })
	h := s.Handler()
	documented := map[int]bool{201: true, 400: true, 413: true, 422: true}
	f.Fuzz(func(t *testing.T, body []byte) {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/v1/events", bytes.NewReader(body)))
		if !documented[rec.Code] {
			t.Fatalf("status %d for %q: %s", rec.Code, body, rec.Body)
		}
		if rec.Code == 201 {
			checkStoredText(t, h, body, rec.Body.Bytes())
			return
		}
		var eb errorBody
		if err := json.Unmarshal(rec.Body.Bytes(), &eb); err != nil || eb.Error == nil || !strings.HasPrefix(eb.Error.Message, "monster: ") || eb.Error.Code == "" {
			t.Fatalf("error body %s for %q", rec.Body, body)
		}
	})
}

// FuzzDecodeEvents checks the decoder alone: any input gives events that
// all have a type and data within the limit, or an *Error.
func FuzzDecodeEvents(f *testing.F) {
	f.Add([]byte(`{"type":"a","data":1}`))
	f.Add([]byte(`{"events":[{"type":"a","data":1}]}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		events, _, err := decodeEvents(body, 256)
		if err != nil {
			if _, ok := err.(*Error); !ok {
				t.Fatalf("error %T %v is not an *Error", err, err)
			}
			return
		}
		if len(events) == 0 {
			t.Fatal("no events and no error")
		}
		for _, e := range events {
			if e.Type == "" || e.Data == nil || len(e.Data) > 256 || !json.Valid(e.Data) {
				t.Fatalf("decoded a bad event %+v from %q", e, body)
			}
		}
	})
}

// checkStoredText reads back the events a 201 answer names and checks that
// what was stored is text every JSON reader accepts: valid UTF-8, no half
// surrogate pair, keys without control characters and within the limit.
func checkStoredText(t *testing.T, h http.Handler, body, answer []byte) {
	t.Helper()
	var stored []Event
	if bytes.HasPrefix(answer, []byte(`{"events":`)) {
		var batch struct{ Events []Event }
		if err := json.Unmarshal(answer, &batch); err != nil {
			t.Fatalf("201 answer %s: %v", answer, err)
		}
		stored = batch.Events
	} else {
		var e Event
		if err := json.Unmarshal(answer, &e); err != nil {
			t.Fatalf("201 answer %s: %v", answer, err)
		}
		stored = []Event{e}
	}
	for _, s := range stored {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/v1/events/"+s.ID, nil))
		if rec.Code != 200 {
			t.Fatalf("GET event %s of %q: %d %s", s.ID, body, rec.Code, rec.Body)
		}
		var e Event
		if err := json.Unmarshal(rec.Body.Bytes(), &e); err != nil {
			t.Fatalf("event %s of %q: %v", s.ID, body, err)
		}
		if !utf8.Valid(e.Data) {
			t.Fatalf("stored data %q of %q is not UTF-8", e.Data, body)
		}
		var v any
		if err := json.Unmarshal(e.Data, &v); err != nil {
			t.Fatalf("stored data %q of %q: %v", e.Data, body, err)
		}
		// encoding/json decodes half a surrogate pair as U+FFFD: decoding
		// must not add replacement characters the stored bytes do not
		// spell.
		spelled := bytes.Count(e.Data, []byte("\uFFFD")) + bytes.Count(bytes.ToLower(e.Data), []byte(`\ufffd`))
		if decoded := replacementChars(v); decoded > spelled {
			t.Fatalf("stored data %q of %q has a lone surrogate: %d U+FFFD decoded, %d spelled", e.Data, body, decoded, spelled)
		}
		if len(e.Key) > monster.MaxKeyBytes || strings.ContainsFunc(e.Key, unicode.IsControl) {
			t.Fatalf("stored key %q of %q", e.Key, body)
		}
	}
}

// replacementChars counts U+FFFD in the strings of a decoded JSON value,
// object keys included.
func replacementChars(v any) int {
	switch v := v.(type) {
	case string:
		return strings.Count(v, "\uFFFD")
	case []any:
		n := 0
		for _, x := range v {
			n += replacementChars(x)
		}
		return n
	case map[string]any:
		n := 0
		for k, x := range v {
			n += strings.Count(k, "\uFFFD") + replacementChars(x)
		}
		return n
	}
	return 0
}
