package daemon

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
)

// fastSeeds are bodies for the fast decoder: the usual shapes, which it
// must take, and the unusual ones, which it must leave to the strict
// decoder or decode the same way.
var fastSeeds = []string{
	`{"type":"user.bought_shirt","data":{"user":"gordon","quantity":2}}`,
	` {"type" : "a.b" , "data" : [1, 2.5e3, -0.1, true, false, null, "x\"y\u00e9\n"] , "key":"k"} `,
	`{"events":[{"type":"a.b","data":1},{"type":"a.c","data":null,"key":"k","idempotency_key":"i","meta":{"a":"b"}}]}`,
	`{"events":[{"type":"a.b","data":1}],"type":"a"}`,
	`{"events":[]}`, `{"events":null}`, `{"events":[1]}`, `{"events":[{"events":[]}]}`, `{"events":{}}`,
	`{"type":"a","data":1,"type":"b"}`, `{"TYPE":"a","data":1}`, `{"Data":1,"type":"a"}`,
	`{"type":"a\u0062","data":1}`, `{"type":"a","data":1,"key":null}`, `{"type":null,"data":1}`,
	`{"type":"a","data":1,"meta":{}}`, `{"type":"a","data":1,"meta":null}`, `{"type":"a","data":1,"meta":{"x":"1","x":"2"}}`,
	`{"type":"a","data":1,"meta":{"x":1}}`, `{"type":"\xff","data":1}`, `{"type":"é.b","data":"\xff"}`,
	`{"type":"a","data":01}`, `{"type":"a","data":1.}`, `{"type":"a","data":-}`, `{"type":"a","data":1e}`,
	`{"type":"a","data":"\x01"}`, `{"type":"a","data":"\u12"}`, `{"type":"a","data":"\q"}`,
	`{"type":"a","data":tru}`, `{"type":"a","data":{"a":1,}}`, `{"type":"a","data":[1,]}`, `{"type":"a","data":{1:2}}`,
	`{"type":"a","data":1}{}`, `{"type":"a","data":1}  `, `{"type":"a","data":1`, `{}`, `{"data":1}`, `{"type":"a"}`,
	`{"type":"a","data":` + strings.Repeat("[", 600) + strings.Repeat("]", 600) + `}`,
	`{"type":"a","data":` + strings.Repeat(`{"a":`, 100) + `1` + strings.Repeat("}", 100) + `}`,
	`{"type":"a","data":"` + strings.Repeat("y", 300) + `"}`,
	`{"type":"a","data":1,"unknown":2}`, `[]`, `""`, `null`, ``, "\ufeff{}",
	`not json`, `foo`, `nul`, `tru`, `-`, `"x" y`, `[1,]`, `"str"`, `123`, `true`, ` [{}] `, `{"events":[1,}`,
	`{"type":"a","data":nul}`, `{"type":5,"data":1}`, `{"events":[{"type":"a","data":1},"x"]}`, `{"events":["x",1}`,
}

// FuzzDecodeFastMatchesStrict: whatever body the fast decoder takes, the
// strict (encoding/json) decoder gives the same events, or the same error.
func FuzzDecodeFastMatchesStrict(f *testing.F) {
	for _, s := range fastSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		checkFastMatchesStrict(t, body)
	})
}

func checkFastMatchesStrict(t *testing.T, body []byte) {
	t.Helper()
	const maxEvent = 256
	got, gotBatch, gotErr := decodeEvents(body, maxEvent)
	want, wantBatch, wantErr := decodeEventsStrict(body, maxEvent)
	if (gotErr == nil) != (wantErr == nil) || (gotErr != nil && gotErr.Error() != wantErr.Error()) {
		t.Fatalf("body %q: error %v, strict decoder %v", body, gotErr, wantErr)
	}
	checkErrorClass(t, body, gotErr)
	if gotErr != nil {
		return
	}
	if gotBatch != wantBatch || !reflect.DeepEqual(got, want) {
		t.Fatalf("body %q:\n got %v %+v\nwant %v %+v", body, gotBatch, got, wantBatch, want)
	}
}

// checkErrorClass checks that err says what encoding/json says of body: a
// malformed body (a syntax error: json.Valid is false) gets a "malformed JSON", "empty" or "trailing data" answer; a
// well-formed body that is not an object is named by its kind; a
// well-formed object never gets a syntax answer, and a type error in it
// (encoding/json cannot store a field) names that field.
func checkErrorClass(t *testing.T, body []byte, err error) {
	t.Helper()
	var e *Error
	if err != nil && !errors.As(err, &e) {
		t.Fatalf("body %q: error %T %v is not an *Error", body, err, err)
	}
	syntaxAnswer := e != nil && e.Code == CodeInvalidJSON && (strings.HasPrefix(e.Message, "monster: malformed JSON") ||
		strings.HasPrefix(e.Message, "monster: request body is empty") || strings.HasPrefix(e.Message, "monster: unexpected data after"))
	if !json.Valid(body) {
		if !syntaxAnswer {
			t.Fatalf("body %q is malformed JSON for encoding/json, but the answer is %v", body, err)
		}
		return
	}
	if syntaxAnswer {
		t.Fatalf("body %q is well-formed JSON for encoding/json, but the answer is %v", body, err)
	}
	var v any
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber() // 1E700 is well-formed, but not a float64
	if err := dec.Decode(&v); err != nil {
		t.Fatalf("body %q: json.Valid, but %v", body, err)
	}
	kind := map[reflect.Type]string{reflect.TypeFor[[]any](): "an array", reflect.TypeFor[string](): "a string",
		reflect.TypeFor[bool](): "a boolean", reflect.TypeFor[json.Number](): "a number"}
	if _, isObject := v.(map[string]any); !isObject {
		want := "null"
		if v != nil {
			want = kind[reflect.TypeOf(v)]
		}
		if err == nil || e.Message != "monster: request body must be a JSON object, not "+want {
			t.Fatalf("body %q is %s for encoding/json, but the answer is %v", body, want, err)
		}
		return
	}
	var top struct {
		Type           string            `json:"type"`
		Key            string            `json:"key"`
		IdempotencyKey string            `json:"idempotency_key"`
		Meta           map[string]string `json:"meta"`
	}
	var typeErr *json.UnmarshalTypeError
	if errors.As(json.Unmarshal(body, &top), &typeErr) && typeErr.Field != "" && !strings.Contains(typeErr.Field, ".") {
		if err == nil || e.Code != CodeInvalidField {
			t.Fatalf("body %q: encoding/json finds a type error in field %q, but the answer is %v", body, typeErr.Field, err)
		}
	}
}

func TestDecodeFastMatchesStrict(t *testing.T) {
	for _, s := range fastSeeds {
		checkFastMatchesStrict(t, []byte(s))
	}
}

// The usual bodies take the fast path.
func TestDecodeFastTakesUsualBodies(t *testing.T) {
	for _, s := range []string{
		`{"type":"user.bought_shirt","data":{"user":"gordon","quantity":2}}`,
		` {"type" : "a.b" , "data" : [1, 2.5e3, -0.1, true, false, null, "x\"y\u00e9\n"] , "key":"k"} `,
		`{"events":[{"type":"a.b","data":1},{"type":"a.c","data":null,"key":"k","idempotency_key":"i","meta":{"a":"b"}}]}`,
		`{"type":"é.b","data":1,"meta":{}}`,
	} {
		if _, _, ok := decodeEventsFast([]byte(s)); !ok {
			t.Errorf("the fast decoder declined %s", s)
		}
	}
}

// The answer to POST /v1/events is the lean stored event; Client.Log
// completes it with what was sent, and reads back events posted with an
// idempotency key, which may have been stored with other data.
func TestClientLogCompletesEvents(t *testing.T) {
	t.Parallel()
	b := setup(t, Config{})
	ctx := context.Background()
	out, err := b.client.Log(ctx, []NewEvent{{Type: "a.b", Data: json.RawMessage(`{"x":1}`), Key: "k", Meta: map[string]string{"m": "v"}}})
	if err != nil {
		t.Fatal(err)
	}
	if e := out[0]; e.Position != 1 || e.Key != "k" || string(e.Data) != `{"x":1}` || e.Meta["m"] != "v" || e.ID == "" || e.Time.IsZero() {
		t.Fatalf("Log returned %+v", e)
	}
	first, err := b.client.Log(ctx, []NewEvent{{Type: "a.b", Data: json.RawMessage(`"first"`), IdempotencyKey: "once"}})
	if err != nil {
		t.Fatal(err)
	}
	again, err := b.client.Log(ctx, []NewEvent{
		{Type: "a.c", Data: json.RawMessage(`2`)},
		{Type: "a.b", Data: json.RawMessage(`"second"`), IdempotencyKey: "once"},
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(again) != 2 || again[0].Position != 3 || string(again[0].Data) != "2" {
		t.Fatalf("batch returned %+v", again)
	}
	if e := again[1]; e.ID != first[0].ID || string(e.Data) != `"first"` {
		t.Errorf("a repeated idempotency key returned %+v, want the stored event %+v", e, first[0])
	}
	// The answers, as sent.
	status, body := b.call(t, "POST", "/v1/events", "", `{"events":[{"type":"a.d","data":1},{"type":"a.d","data":2}]}`)
	if status != 201 || !bytes.HasPrefix(body, []byte(`{"events":[{"id":"`)) || bytes.Contains(body, []byte(`"data"`)) {
		t.Fatalf("batch answer %d %s", status, body)
	}
	var batch struct{ Events []StoredEvent }
	if err := json.Unmarshal(body, &batch); err != nil || len(batch.Events) != 2 || batch.Events[1].Position != 5 || batch.Events[1].Type != "a.d" {
		t.Fatalf("batch answer %s: %v", body, err)
	}
}
