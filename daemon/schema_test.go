package daemon

import (
	"encoding/json"
	"net/http"
	"testing"
)

// Declared types accept fields their schema does not list, as Go
// declarations do by default; a schema with "additionalProperties": false
// refuses them, naming the field, as monster.Strict does in Go.
func TestSchemaUnknownFields(t *testing.T) {
	t.Parallel()
	b := setup(t, Config{Types: map[string]TypeConfig{
		"order.lenient": {Schema: json.RawMessage(`{"type":"object","properties":{"id":{"type":"string"}}}`)},
		"order.strict": {Schema: json.RawMessage(`{"type":"object","additionalProperties":false,
			"properties":{"id":{"type":"string"},"box":{"type":"object","additionalProperties":false,"properties":{"size":{"type":"integer"}}}}}`)},
	}})
	cases := []struct {
		name, body string
		field      string // "" for accepted
	}{
		{"lenient: unknown field stored", `{"type":"order.lenient","data":{"id":"o1","M":1}}`, ""},
		{"strict: known fields", `{"type":"order.strict","data":{"id":"o1","box":{"size":1}}}`, ""},
		{"strict: unknown field", `{"type":"order.strict","data":{"id":"o1","M":1}}`, "M"},
		{"strict: nested unknown field", `{"type":"order.strict","data":{"id":"o1","box":{"size":1,"colour":"red"}}}`, "box.colour"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			status, body := b.call(t, "POST", "/v1/events", "", c.body)
			if c.field == "" {
				if status != http.StatusCreated {
					t.Fatalf("status %d, want 201: %s", status, body)
				}
				return
			}
			wantError(t, status, body, http.StatusUnprocessableEntity, CodeValidationFailed, `"`+c.field+`"`)
			var eb struct{ Error *Error }
			if err := json.Unmarshal(body, &eb); err != nil || eb.Error.Field != c.field {
				t.Errorf("error %s: want field %q", body, c.field)
			}
		})
	}
}
