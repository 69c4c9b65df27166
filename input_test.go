package monster_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/gomonster/monster"
)

// Keys and idempotency keys are short printable text: every store keeps
// them the same way, and an oversize key cannot bloat every read.
func TestLogRefusesBadKeys(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	m := newMem(t, nil)
	long := strings.Repeat("k", monster.MaxKeyBytes+1)
	for _, tc := range []struct {
		name     string
		opt      func(string) monster.LogOption
		key      string
		mentions []string
	}{
		{"long key", monster.WithKey, long, []string{"key", `"kkkk`, "1025 bytes", "limit of 1024"}},
		{"long idempotency key", monster.WithIdempotencyKey, long, []string{"idempotency_key", "1025 bytes", "limit of 1024"}},
		{"NUL in key", monster.WithKey, "a\x00b", []string{"key", `"a\x00b"`, "U+0000", "byte 1"}},
		{"NUL in idempotency key", monster.WithIdempotencyKey, "\x00", []string{"idempotency_key", "U+0000"}},
		{"newline in key", monster.WithKey, "a\nb", []string{"key", "U+000A"}},
		{"DEL in key", monster.WithKey, "a\x7f", []string{"key", "U+007F"}},
		{"C1 control in key", monster.WithKey, "a\u0085", []string{"key", "U+0085"}},
		{"invalid UTF-8 in key", monster.WithKey, "a\xffb", []string{"key", "not valid UTF-8"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := m.Log(ctx, "user.signed_up", 1, tc.opt(tc.key))
			require.ErrorIs(t, err, monster.ErrInvalidKey)
			require.True(t, strings.HasPrefix(err.Error(), "monster: "), err.Error())
			require.Contains(t, err.Error(), `"user.signed_up" event`)
			for _, s := range tc.mentions {
				require.Contains(t, err.Error(), s)
			}
			require.Less(t, len(err.Error()), 300, "the error repeats the whole key")
		})
	}
	// In a batch the entry at fault is named, and nothing is stored.
	_, err := m.LogBatch(ctx, []monster.Entry{{Type: "a.b", Data: 1}, {Type: "a.b", Data: 2, Key: "x\x00"}})
	require.ErrorIs(t, err, monster.ErrInvalidKey)
	require.Contains(t, err.Error(), "batch entry 1")
	head, err := m.Store().Head(ctx)
	require.NoError(t, err)
	require.Zero(t, head, "a refused event was stored")

	// At the limit, and printable text beyond ASCII, are fine.
	atLimit := strings.Repeat("é", monster.MaxKeyBytes/2)
	e, err := m.Log(ctx, "user.signed_up", 1, monster.WithKey(atLimit), monster.WithIdempotencyKey(atLimit))
	require.NoError(t, err)
	require.Equal(t, atLimit, e.Key)
}

// Data must be valid Unicode text: raw bytes that are not UTF-8, and \u
// escapes of half a surrogate pair, pass encoding/json's json.Valid but
// break readers in other languages.
func TestLogRefusesDataThatIsNotUnicode(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	m := newMem(t, nil)
	type withRaw struct {
		Note json.RawMessage `json:"note"`
	}
	for _, tc := range []struct {
		name     string
		data     any
		mentions []string
	}{
		{"invalid UTF-8", json.RawMessage("\"\xff\xfe\xc0\""), []string{"not valid UTF-8", "byte 1", "0xff"}},
		{"truncated UTF-8", json.RawMessage("{\"a\":\"\xe2\x82\"}"), []string{"not valid UTF-8", "byte 6"}},
		{"UTF-8 encoded surrogate", json.RawMessage("\"\xed\xa0\x80\""), []string{"not valid UTF-8", "byte 1"}},
		{"lone high surrogate", json.RawMessage(`"\ud800"`), []string{"lone UTF-16 surrogate", `\ud800`, "byte 1"}},
		{"lone low surrogate", json.RawMessage(`["x","\uDC00"]`), []string{"lone UTF-16 surrogate", `\uDC00`, "byte 6"}},
		{"high surrogate then a letter", json.RawMessage(`"\ud800\u0041"`), []string{"lone UTF-16 surrogate", `\ud800`}},
		{"two high surrogates", json.RawMessage(`"\ud800\ud800\udc00"`), []string{`\ud800`, "byte 1"}},
		{"high surrogate at the end", json.RawMessage(`{"a":"\ud83d"}`), []string{`\ud83d`, "byte 6"}},
		{"inside a struct", withRaw{Note: json.RawMessage("\"\xc0\"")}, []string{"not valid UTF-8"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := m.Log(ctx, "note.taken", tc.data)
			require.ErrorIs(t, err, monster.ErrEncoding)
			require.True(t, strings.HasPrefix(err.Error(), "monster: "), err.Error())
			require.Contains(t, err.Error(), `"note.taken"`)
			for _, s := range tc.mentions {
				require.Contains(t, err.Error(), s)
			}
		})
	}
	head, err := m.Store().Head(ctx)
	require.NoError(t, err)
	require.Zero(t, head, "data that is not Unicode was stored")

	// Valid text, pairs and look-alikes are stored as they are.
	for _, raw := range []string{
		`"\ud83d\ude00"`, `"\uD83D\uDE00 and é, 😀"`, `"\\ud800"`, `"\\\ud83d\ude00"`, `"\u0000\uffff\ud7ff\ue000"`, `{"\ud800\udc00":1}`,
	} {
		e, err := m.Log(ctx, "note.taken", json.RawMessage(raw))
		require.NoError(t, err, raw)
		require.Equal(t, raw, string(e.Data))
	}
}
