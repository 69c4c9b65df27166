package monster_test

import (
	"context"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/gomonster/monster"
)

// A malformed subscription names the consumer and the pattern once, after
// one "monster: " (it said `monster: consumer "c2": monster: invalid
// name: ...`).
func TestConsumeNamesTheBadPatternOnce(t *testing.T) {
	t.Parallel()
	m := newMem(t, nil)
	noop := func(context.Context, monster.RawEvent) error { return nil }
	for _, tc := range []struct{ pattern, want string }{
		{"user.[x", `monster: invalid name: consumer "c2": pattern "user.[x": use type names with '*' wildcards, such as "user.*"`},
		{"user bought", `monster: invalid name: consumer "c2": event type "user bought": want dotted words of letters, digits, '_' or '-', such as "user.bought_shirt"`},
		{"", `monster: invalid name: consumer "c2": pattern is empty`},
	} {
		err := m.Consume("c2", monster.Match(tc.pattern, noop), nil)
		require.ErrorIs(t, err, monster.ErrInvalidName)
		require.EqualError(t, err, tc.want)
		require.Equal(t, 1, strings.Count(err.Error(), "monster:"), err.Error())
	}
}
