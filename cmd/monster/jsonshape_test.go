package main

import (
	"encoding/json"
	"io"
	"net/http"
	"reflect"
	"sort"
	"strings"
	"testing"
)

// Each command's --json is the HTTP API's answer for the same question,
// field for field, whether the command reads the store or a daemon.
func TestJSONMatchesHTTPAPI(t *testing.T) {
	t.Parallel()
	store := withDeadLetters(t)
	url := serve(t, store)
	for _, tt := range []struct {
		args []string
		path string
		// exact: the values too; otherwise the shape (the keys, and the
		// kinds of their values) and the list's length.
		exact bool
	}{
		{[]string{"events", "--after", "1", "--limit", "2"}, "/v1/events?after=1&limit=2", true},
		{[]string{"events", "--type", "user.*"}, "/v1/events?type=user.*", true},
		{[]string{"types"}, "/v1/types", false}, // the rates move with the clock
		{[]string{"consumers"}, "/v1/consumers", true},
		{[]string{"dead", "list", "mailer"}, "/v1/consumers/mailer/dead", true},
	} {
		httpAnswer := get(t, url+tt.path)
		for _, env := range []map[string]string{{"MONSTER_STORE": store}, {"MONSTER_SERVER": url}} {
			cli := decodeAny(t, mustRun(t, env, append(tt.args, "--json")...))
			name := strings.Join(tt.args, " ")
			if tt.exact && !reflect.DeepEqual(cli, httpAnswer) {
				t.Errorf("monster %s --json (%v):\n%v\nGET %s:\n%v", name, env, cli, tt.path, httpAnswer)
			}
			if got, want := shape(cli), shape(httpAnswer); got != want {
				t.Errorf("monster %s --json (%v) has the shape\n%s\nGET %s has\n%s", name, env, got, tt.path, want)
			}
		}
	}
}

func get(t *testing.T, url string) any {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d %s, %v", url, resp.StatusCode, b, err)
	}
	return decodeAny(t, string(b))
}

func decodeAny(t *testing.T, s string) any {
	t.Helper()
	var v any
	if err := json.Unmarshal([]byte(s), &v); err != nil {
		t.Fatalf("decoding %s: %v", s, err)
	}
	return v
}

// shape describes a JSON value by its kinds and keys: objects list their
// keys with the shape of each value, arrays their length and the shape of
// each element.
func shape(v any) string {
	switch x := v.(type) {
	case map[string]any:
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		var b strings.Builder
		b.WriteString("{")
		for _, k := range keys {
			b.WriteString(k + ":" + shape(x[k]) + " ")
		}
		return b.String() + "}"
	case []any:
		var b strings.Builder
		b.WriteString("[")
		for _, e := range x {
			b.WriteString(shape(e) + " ")
		}
		return b.String() + "]"
	case nil:
		return "null"
	default:
		return reflect.TypeOf(x).Kind().String()
	}
}

func TestShape(t *testing.T) {
	t.Parallel()
	a := decodeAny(t, `{"types":[{"type":"a","count":1}]}`)
	if got, want := shape(a), "{types:[{count:float64 type:string } ] }"; got != want {
		t.Errorf("shape = %q, want %q", got, want)
	}
	if shape(a) == shape(decodeAny(t, `[{"type":"a","count":1}]`)) {
		t.Error("a bare list has the shape of an object holding it")
	}
}
