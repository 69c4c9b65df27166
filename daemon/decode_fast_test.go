package daemon

import (
	"bytes"
	"context"
	"encoding/json"
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
	if gotErr != nil {
		return
	}
	if gotBatch != wantBatch || !reflect.DeepEqual(got, want) {
		t.Fatalf("body %q:\n got %v %+v\nwant %v %+v", body, gotBatch, got, wantBatch, want)
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
