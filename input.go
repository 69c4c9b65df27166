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

// checkData refuses encoded data that is not valid Unicode text: bytes
// that are not UTF-8, or a \u escape of half a UTF-16 surrogate pair.
// encoding/json lets both through a json.RawMessage, stores would keep them,
// and readers in other languages (Python's json, JavaScript's TextDecoder
// in fatal mode) then fail on the whole page of history that holds them.
// data is valid JSON.
func checkData(typ string, data []byte) error {
	if !utf8.Valid(data) {
		i := invalidUTF8At(data)
		return fmt.Errorf("%w: event %q: data is not valid UTF-8: byte %d is %#02x; JSON text must be UTF-8",
			ErrEncoding, typ, i, data[i])
	}
	if i := loneSurrogateAt(data); i >= 0 {
		return fmt.Errorf("%w: event %q: data has a lone UTF-16 surrogate %s at byte %d; JSON text must be valid Unicode",
			ErrEncoding, typ, data[i:i+6], i)
	}
	return nil
}

// invalidUTF8At returns the offset of the first byte that does not start
// a valid UTF-8 sequence, or -1.
func invalidUTF8At(b []byte) int {
	for i := 0; i < len(b); {
		if b[i] < utf8.RuneSelf {
			i++
			continue
		}
		r, n := utf8.DecodeRune(b[i:])
		if r == utf8.RuneError && n <= 1 {
			return i
		}
		i += n
	}
	return -1
}

// loneSurrogateAt returns the offset of the first \uXXXX escape in the
// valid JSON b that encodes half a surrogate pair without its other half,
// or -1. In valid JSON every backslash starts an escape inside a string,
// and a \u has four hex digits.
func loneSurrogateAt(b []byte) int {
	for i := 0; i < len(b); i++ {
		if b[i] != '\\' {
			continue
		}
		i++ // the escape's letter
		if i+4 >= len(b) || b[i] != 'u' {
			continue
		}
		start := i - 1
		u := hex4(b[i+1 : i+5])
		i += 4
		switch {
		case u >= 0xDC00 && u <= 0xDFFF:
			return start // a low half with no high half before it
		case u >= 0xD800 && u <= 0xDBFF:
			if i+6 < len(b) && b[i+1] == '\\' && b[i+2] == 'u' {
				if low := hex4(b[i+3 : i+7]); low >= 0xDC00 && low <= 0xDFFF {
					i += 6 // a whole pair
					continue
				}
			}
			return start
		}
	}
	return -1
}

// hex4 decodes four hex digits (valid JSON guarantees them).
func hex4(b []byte) rune {
	var r rune
	for _, c := range b {
		r <<= 4
		switch {
		case c >= '0' && c <= '9':
			r |= rune(c - '0')
		case c >= 'a' && c <= 'f':
			r |= rune(c - 'a' + 10)
		case c >= 'A' && c <= 'F':
			r |= rune(c - 'A' + 10)
		}
	}
	return r
}
