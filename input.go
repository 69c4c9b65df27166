package monster

import (
	"fmt"
	"unicode"
	"unicode/utf8"
)

// MaxKeyBytes is the longest key and the longest idempotency key an event
// may have, in bytes. Both are stored with the event, indexed, and returned
// with every read of it, so they are kept short: a key identifies an
// entity, not its content.
const MaxKeyBytes = 1024

// checkKeys refuses a key or idempotency key that is too long, is not
// valid UTF-8 or holds a control character: stores differ on those (a NUL
// fails on PostgreSQL and passes on SQLite), and clients of the HTTP API
// cannot always read them back.
func checkKeys(e *Entry) error {
	if err := checkKey(e.Type, "key", e.Key); err != nil {
		return err
	}
	return checkKey(e.Type, "idempotency_key", e.IdempotencyKey)
}

func checkKey(typ, field, key string) error {
	if len(key) > MaxKeyBytes {
		return fmt.Errorf("%w: %q event: %s %s is %d bytes, over the limit of %d (monster.MaxKeyBytes)",
			ErrInvalidKey, typ, field, preview(key), len(key), MaxKeyBytes)
	}
	if !utf8.ValidString(key) {
		return fmt.Errorf("%w: %q event: %s %q is not valid UTF-8", ErrInvalidKey, typ, field, key)
	}
	for i, r := range key {
		if unicode.IsControl(r) {
			return fmt.Errorf("%w: %q event: %s %q has the control character %U at byte %d; keys are printable text",
				ErrInvalidKey, typ, field, key, r, i)
		}
	}
	return nil
}

// preview quotes the start of a long value, for an error message that must
// name the value without repeating all of it.
func preview(s string) string {
	const n = 32
	if len(s) <= n {
		return fmt.Sprintf("%q", s)
	}
	cut := n
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return fmt.Sprintf("%q…", s[:cut])
}
