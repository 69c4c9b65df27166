package daemon

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// FuzzPostEvents sends arbitrary bodies to POST /v1/events. The daemon
// must never panic, and must answer either 201 with stored events or a
// documented error status with a JSON error body whose message starts with
// "monster: ". The seed corpus runs in every `go test`; CI runs
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
