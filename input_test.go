package monster_test

import (
	"context"
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
