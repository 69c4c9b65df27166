package daemon

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"testing"
	"time"
)

const shirtSchema = `{
  "type": "object",
  "properties": {
    "user": {"type": "string", "minLength": 1},
    "quantity": {"type": "integer", "minimum": 1},
    "address": {"type": "object", "properties": {"zip": {"type": "string", "pattern": "^[0-9]{5}$"}}}
  },
  "required": ["user", "quantity"]
}`

func TestPostEventSingleAndBatch(t *testing.T) {
	t.Parallel()
	b := setup(t, Config{})

	status, body := b.call(t, "POST", "/v1/events", "", `{"type":"user.bought_shirt","data":{"user":"gordon","quantity":2},"key":"gordon","meta":{"source":"test"}}`)
	if status != http.StatusCreated {
		t.Fatalf("status %d: %s", status, body)
	}
	// The answer is lean, as docs/http-api.md has it: id, type, position, time.
	if fields := decode[map[string]json.RawMessage](t, body); len(fields) != 4 {
		t.Errorf("answer %s: want exactly id, type, position and time", body)
	}
	e := decode[Event](t, body)
	if e.ID == "" || e.Type != "user.bought_shirt" || e.Position != 1 || e.Time.IsZero() || time.Since(e.Time) > time.Minute {
		t.Fatalf("stored event %+v", e)
	}

	status, body = b.call(t, "POST", "/v1/events", "", `{"events":[{"type":"a.b","data":1},{"type":"a.c","data":"x","idempotency_key":"k1"}]}`)
	if status != http.StatusCreated {
		t.Fatalf("status %d: %s", status, body)
	}
	batch := decode[struct{ Events []Event }](t, body)
	if len(batch.Events) != 2 || batch.Events[0].Position != 2 || batch.Events[1].Position != 3 || batch.Events[1].Type != "a.c" {
		t.Fatalf("batch %+v", batch)
	}

	// The same idempotency key stores nothing new and returns the stored event.
	status, body = b.call(t, "POST", "/v1/events", "", `{"type":"a.c","data":"x","idempotency_key":"k1"}`)
	if status != http.StatusCreated {
		t.Fatalf("status %d: %s", status, body)
	}
	if again := decode[Event](t, body); again.ID != batch.Events[1].ID {
		t.Errorf("idempotent post returned %s, want %s", again.ID, batch.Events[1].ID)
	}

	// Stored for real: GET finds them, with key, data and meta.
	got, err := b.client.Event(context.Background(), e.ID)
	if err != nil || got.Position != 1 || got.Key != "gordon" || got.Meta["source"] != "test" || !got.Time.Equal(e.Time) {
		t.Fatalf("Event(%s) = %+v, %v", e.ID, got, err)
	}
	if string(got.Data) != `{"user":"gordon","quantity":2}` {
		t.Errorf("data %s", got.Data)
	}
}

func TestPostEventErrors(t *testing.T) {
	t.Parallel()
	b := setup(t, Config{
		UndeclaredTypes: "reject",
		MaxEventBytes:   1000,
		MaxRequestBytes: 4000,
		Types: map[string]TypeConfig{
			"user.bought_shirt": {Schema: json.RawMessage(shirtSchema)},
			"user.signed_up":    {},
		},
	})
	big := strings.Repeat("x", 1200)
	huge := `{"events":[` + strings.Repeat(`{"type":"user.signed_up","data":"`+strings.Repeat("y", 500)+`"},`, 8) + `{"type":"user.signed_up","data":1}]}`
	cases := []struct {
		name     string
		body     string
		status   int
		code     string
		mentions []string
	}{
		{"malformed JSON", `{"type":"user.signed_up","data":`, 400, CodeInvalidJSON, []string{"malformed JSON"}},
		{"syntax error", `{"type" "x"}`, 400, CodeInvalidJSON, []string{"byte"}},
		{"empty body", ``, 400, CodeInvalidJSON, []string{"empty"}},
		{"array body", `[{"type":"a"}]`, 400, CodeInvalidJSON, []string{"an array"}},
		{"number body", ` 12.5 `, 400, CodeInvalidJSON, []string{"must be a JSON object, not a number"}},
		{"words starting like null", `not json`, 400, CodeInvalidJSON, []string{"malformed JSON at byte 2", "invalid character 'o'"}},
		{"a word starting like false", `foo`, 400, CodeInvalidJSON, []string{"malformed JSON at byte 2", "invalid character 'o'"}},
		{"unknown field then trailing data", `{"x":0}0`, 400, CodeInvalidJSON, []string{"malformed JSON at byte 8", "after top-level value"}},
		{"trailing data", `{"type":"user.signed_up","data":1} {}`, 400, CodeInvalidJSON, []string{"after"}},
		{"type is a number", `{"type":5,"data":1}`, 400, CodeInvalidField, []string{`"type"`, "number", "string"}},
		{"meta is not strings", `{"type":"user.signed_up","data":1,"meta":{"a":1}}`, 400, CodeInvalidField, []string{"meta"}},
		{"batch element wrong type", `{"events":[{"type":"user.signed_up","data":1},{"type":true,"data":1}]}`, 400, CodeInvalidField, []string{`events[1].type`}},
		{"batch element not object", `{"events":[1]}`, 400, CodeInvalidField, []string{"events[0]"}},
		{"events not array", `{"events":{}}`, 400, CodeInvalidField, []string{"events"}},
		{"unknown field", `{"typ":"user.signed_up","data":1}`, 400, CodeInvalidField, []string{`"typ"`}},
		{"missing type", `{"data":1}`, 400, CodeInvalidField, []string{`"type"`}},
		{"missing data", `{"type":"user.signed_up"}`, 400, CodeInvalidField, []string{`"data"`}},
		{"missing data in batch", `{"events":[{"type":"user.signed_up"}]}`, 400, CodeInvalidField, []string{`events[0].data`}},
		{"empty batch", `{"events":[]}`, 400, CodeInvalidField, []string{"empty"}},
		{"both shapes", `{"type":"user.signed_up","data":1,"events":[{"type":"a","data":1}]}`, 400, CodeInvalidField, []string{"events"}},
		{"bad type name", `{"type":"user bought","data":1}`, 400, CodeInvalidName, []string{`"user bought"`}},
		{"undeclared type", `{"type":"user.unknown","data":1}`, 422, CodeUndeclaredType, []string{`"user.unknown"`}},
		{"undeclared in batch", `{"events":[{"type":"user.signed_up","data":1},{"type":"nope","data":1}]}`, 422, CodeUndeclaredType, []string{"entry 1", `"nope"`}},
		{"schema: missing field", `{"type":"user.bought_shirt","data":{"user":"gordon"}}`, 422, CodeValidationFailed, []string{`"quantity"`}},
		{"schema: wrong value", `{"type":"user.bought_shirt","data":{"user":"gordon","quantity":0}}`, 422, CodeValidationFailed, []string{`"quantity"`, "minimum"}},
		{"schema: nested field", `{"type":"user.bought_shirt","data":{"user":"g","quantity":1,"address":{"zip":"abc"}}}`, 422, CodeValidationFailed, []string{`"address.zip"`}},
		{"oversize event", `{"type":"user.signed_up","data":"` + big + `"}`, 413, CodeTooLarge, []string{"1000"}},
		{"oversize request", huge, 413, CodeTooLarge, []string{"4000"}},
		{"invalid UTF-8 in data", "{\"type\":\"user.signed_up\",\"data\":\"\xff\xfe\xc0\"}", 400, CodeInvalidJSON, []string{"not valid UTF-8", "0xff"}},
		{"lone surrogate in data", `{"type":"user.signed_up","data":{"name":"\ud800"}}`, 400, CodeInvalidJSON, []string{"lone UTF-16 surrogate", `\ud800`}},
		{"lone surrogate in a batch", `{"events":[{"type":"user.signed_up","data":1},{"type":"user.signed_up","data":"\udfff"}]}`, 400, CodeInvalidJSON, []string{"entry 1", `\udfff`}},
		{"oversize key", `{"type":"user.signed_up","data":1,"key":"` + strings.Repeat("k", 1100) + `"}`, 400, CodeInvalidField, []string{"key", "1100 bytes", "limit of 1024"}},
		{"oversize idempotency key", `{"type":"user.signed_up","data":1,"idempotency_key":"` + strings.Repeat("i", 1025) + `"}`, 400, CodeInvalidField, []string{"idempotency_key", "1025 bytes", "limit of 1024"}},
		{"NUL in key", `{"type":"user.signed_up","data":1,"key":"a\u0000b"}`, 400, CodeInvalidField, []string{"key", "U+0000"}},
		{"control character in idempotency key", `{"type":"user.signed_up","data":1,"idempotency_key":"a\u001bb"}`, 400, CodeInvalidField, []string{"idempotency_key", "U+001B"}},
		{"NUL in a batch's key", `{"events":[{"type":"user.signed_up","data":1},{"type":"user.signed_up","data":1,"key":"\u0000"}]}`, 400, CodeInvalidField, []string{"entry 1", "key", "U+0000"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			status, body := b.call(t, "POST", "/v1/events", "", c.body)
			wantError(t, status, body, c.status, c.code, c.mentions...)
		})
	}
	// Nothing malformed reached the store.
	page, err := b.client.Events(context.Background(), EventsQuery{})
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Events) != 0 {
		t.Errorf("the store has %d events after only bad requests: %+v", len(page.Events), page.Events)
	}
	// The valid forms are accepted.
	status, body := b.call(t, "POST", "/v1/events", "", `{"type":"user.bought_shirt","data":{"user":"gordon","quantity":2,"address":{"zip":"12345"}}}`)
	if status != 201 {
		t.Fatalf("valid event: %d %s", status, body)
	}
}

func logN(t *testing.T, b *bundle, n int, typ func(i int) string) []Event {
	t.Helper()
	var evs []NewEvent
	for i := range n {
		evs = append(evs, NewEvent{Type: typ(i), Data: json.RawMessage(fmt.Sprint(i))})
	}
	out, err := b.client.Log(context.Background(), evs)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestGetEventsPaginated(t *testing.T) {
	t.Parallel()
	b := setup(t, Config{})
	logN(t, b, 25, func(i int) string {
		if i%5 == 0 {
			return "order.placed"
		}
		return "user.clicked"
	})
	ctx := context.Background()

	var all []Event
	q := EventsQuery{Limit: 10}
	for {
		page, err := b.client.Events(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, page.Events...)
		if !page.HasMore {
			break
		}
		q.After = page.NextAfter
	}
	if len(all) != 25 {
		t.Fatalf("paged through %d events, want 25", len(all))
	}
	for i, e := range all {
		if e.Position != int64(i+1) {
			t.Fatalf("event %d has position %d", i, e.Position)
		}
	}

	page, err := b.client.Events(ctx, EventsQuery{Type: "order.*", Limit: 3})
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Events) != 3 || page.Events[2].Position != 11 || !page.HasMore || page.NextAfter != 11 {
		t.Fatalf("filtered page %+v", page)
	}
	page, err = b.client.Events(ctx, EventsQuery{Type: "order.placed", After: page.NextAfter})
	if err != nil || len(page.Events) != 2 || page.HasMore {
		t.Fatalf("second filtered page %+v, %v", page, err)
	}

	for _, c := range []struct{ query, mention string }{
		{"?limit=abc", "limit"},
		{"?after=x", "after"},
		{"?limit=0", "limit"},
		{"?limit=5000", "1000"},
		{"?after=-3", "negative"},
		{"?type=a/b", `"a/b"`},
	} {
		status, body := b.call(t, "GET", "/v1/events"+c.query, "", nil)
		wantError(t, status, body, 400, codeFor(c.query), c.mention)
	}
}

func codeFor(q string) string {
	if strings.HasPrefix(q, "?type") {
		return CodeInvalidName
	}
	return CodeBadRequest
}

func TestGetEventByID(t *testing.T) {
	t.Parallel()
	b := setup(t, Config{})
	evs := logN(t, b, 1, func(int) string { return "a.b" })
	status, body := b.call(t, "GET", "/v1/events/"+evs[0].ID, "", nil)
	if status != 200 || decode[Event](t, body).ID != evs[0].ID {
		t.Fatalf("%d %s", status, body)
	}
	status, body = b.call(t, "GET", "/v1/events/nope", "", nil)
	wantError(t, status, body, 404, CodeNotFound, `"nope"`)
}

func TestTypes(t *testing.T) {
	t.Parallel()
	b := setup(t, Config{Types: map[string]TypeConfig{"declared.only": {}}})
	logN(t, b, 5, func(i int) string { return []string{"a.x", "a.y"}[i%2] })
	types, err := b.client.Types(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]int64{"a.x": 3, "a.y": 2, "declared.only": 0}
	if len(types) != len(want) {
		t.Fatalf("types %+v", types)
	}
	for _, ti := range types {
		if ti.Count != want[ti.Type] || ti.LastMinute != ti.Count || ti.Declared != (ti.Type == "declared.only") {
			t.Errorf("type %+v", ti)
		}
	}
	if types[0].RatePerSecond != 3.0/60 {
		t.Errorf("rate %v", types[0].RatePerSecond)
	}
}

func TestTailStreamsLiveEvents(t *testing.T) {
	t.Parallel()
	b := setup(t, Config{})
	logN(t, b, 2, func(int) string { return "user.old" }) // before the tail: not sent

	req, _ := http.NewRequest("GET", b.url+"/v1/tail?types=user.*,order.placed", nil)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	resp, err := b.http.Do(req.WithContext(ctx))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("tail answered %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	lines := bufio.NewScanner(resp.Body)
	lines.Scan() // the opening comment tells us the tail is running
	logN(t, b, 3, func(i int) string { return []string{"user.new", "other.thing", "order.placed"}[i] })
	var got []string
	for len(got) < 2 && lines.Scan() {
		if data, ok := strings.CutPrefix(lines.Text(), "data: "); ok {
			got = append(got, decode[Event](t, []byte(data)).Type)
		}
	}
	if strings.Join(got, ",") != "user.new,order.placed" {
		t.Fatalf("tail sent %v", got)
	}

	// The Go client, resuming after a position.
	var types []string
	tctx, tcancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer tcancel()
	err = b.client.Tail(tctx, TailQuery{After: 0}, func(e Event) error {
		types = append(types, e.Type)
		if len(types) == 5 {
			tcancel()
		}
		return nil
	})
	if err != nil || len(types) != 5 || types[0] != "user.old" {
		t.Fatalf("client tail: %v, %v", types, err)
	}

	status, body := b.call(t, "GET", "/v1/tail?types=a/b", "", nil)
	wantError(t, status, body, 400, CodeInvalidName, "a/b")
}

func TestRoutingErrors(t *testing.T) {
	t.Parallel()
	b := setup(t, Config{})
	status, body := b.call(t, "GET", "/v2/nothing", "", nil)
	wantError(t, status, body, 404, CodeNotFound, "/v2/nothing")
	status, body = b.call(t, "PATCH", "/v1/events", "", nil)
	wantError(t, status, body, 405, CodeMethodNotAllowed, "PATCH", "GET, POST")
	status, body = b.call(t, "GET", "/healthz", "", nil)
	if status != 200 || !strings.Contains(string(body), `"ok"`) {
		t.Fatalf("healthz %d %s", status, body)
	}
}

// A Content-Length alone does not make the daemon allocate: a body
// announcing 8 MiB that brings 40 bytes costs kilobytes, not megabytes.
func TestAnnouncedBodyLengthIsNotAllocated(t *testing.T) {
	s, err := New(context.Background(), Config{Store: "memory://"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Shutdown(context.Background())
	h := s.Handler()
	post := func() int {
		req := httptest.NewRequest(http.MethodPost, "/v1/events", strings.NewReader(`{"type":"a.b","data":1}`))
		req.ContentLength = 8 << 20
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return rec.Code
	}
	post() // warm up
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	const n = 20
	for range n {
		if code := post(); code != http.StatusCreated {
			t.Fatalf("status %d", code)
		}
	}
	runtime.ReadMemStats(&after)
	if perRequest := (after.TotalAlloc - before.TotalAlloc) / n; perRequest > 1<<20 {
		t.Errorf("%d bytes allocated per request announcing 8 MiB, want well under 1 MiB", perRequest)
	}
}
