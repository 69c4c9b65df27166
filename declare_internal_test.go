package monster

import (
	"regexp"
	"testing"
)

// typeNamePattern is what validTypeName checks by hand.
var typeNamePattern = regexp.MustCompile(`^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$`)

// FuzzValidTypeName checks the hand-written type-name check against the
// regular expression it replaces. go test runs the seeds; go test -fuzz
// FuzzValidTypeName explores further.
func FuzzValidTypeName(f *testing.F) {
	for _, seed := range []string{
		"", ".", "a", "a.", ".a", "a..b", "a.b", "user.bought_shirt", "shoestore.product-viewed",
		"event_1", "A-Z_0.9", "user bought", "user/x", "ü.x", "a.b.c.d", "-", "_._", "a\x00", "a.b\n",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, name string) {
		if got, want := validTypeName(name), typeNamePattern.MatchString(name); got != want {
			t.Fatalf("validTypeName(%q) = %v, the pattern says %v", name, got, want)
		}
	})
}
