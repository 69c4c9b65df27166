package daemon

import (
	"encoding/json"
	"unicode/utf8"
)

// decodeEventsFast parses the usual POST /v1/events bodies in one pass
// over the bytes, without reflection: a single event or {"events":[...]},
// with exactly the lowercase field names, each at most once, and strings
// without escapes in type, key, idempotency_key and meta. The data of each
// event is a subslice of body, so body must not be reused while the events
// are in use.
//
// ok is false for anything else, malformed or merely unusual (escapes,
// duplicate or differently cased names, null for a string, an empty or
// oversize batch, both shapes at once): the caller then decodes with the
// strict decoder, which accepts what encoding/json accepts and names every
// problem. When ok is true the result is what the strict decoder gives
// (FuzzDecodeFastMatchesStrict checks this; .ci/run fuzzes it for 15 s).
func decodeEventsFast(body []byte) (events []NewEvent, batch, ok bool) {
	p := fastParser{b: body}
	p.space()
	if !p.consume('{') {
		return nil, false, false
	}
	var single NewEvent
	var seen fieldSet
	var batchEvents []NewEvent
	hasEvents := false
	if !p.object(func(name []byte) bool {
		if string(name) == "events" {
			if hasEvents {
				return false
			}
			hasEvents = true
			batchEvents, ok = p.eventArray()
			return ok
		}
		return p.eventField(name, &single, &seen)
	}) {
		return nil, false, false
	}
	p.space()
	if p.i != len(p.b) {
		return nil, false, false // trailing data
	}
	if !hasEvents {
		return []NewEvent{single}, false, true
	}
	if seen != 0 || len(batchEvents) == 0 || len(batchEvents) > maxBatchEvents {
		return nil, true, false
	}
	return batchEvents, true, true
}

// fieldSet records which event fields an object had.
type fieldSet uint8

const (
	fieldType fieldSet = 1 << iota
	fieldData
	fieldKey
	fieldIdempotencyKey
	fieldMeta
)

// maxFastDepth is the nesting depth of data the fast parser follows; deeper
// data goes to the strict decoder (encoding/json allows 10,000).
const maxFastDepth = 512

type fastParser struct {
	b     []byte
	i     int
	depth int
}

func (p *fastParser) space() {
	for p.i < len(p.b) {
		switch p.b[p.i] {
		case ' ', '\t', '\n', '\r':
			p.i++
		default:
			return
		}
	}
}

// consume skips whitespace and then c, reporting whether c was there.
func (p *fastParser) consume(c byte) bool {
	p.space()
	if p.i < len(p.b) && p.b[p.i] == c {
		p.i++
		return true
	}
	return false
}

// object parses the members of an object whose '{' is consumed, calling
// field with each name (a plain string) positioned at its value; field
// parses the value.
func (p *fastParser) object(field func(name []byte) bool) bool {
	if p.consume('}') {
		return true
	}
	for {
		p.space()
		name, ok := p.plainString()
		if !ok || !p.consume(':') {
			return false
		}
		p.space()
		if !field(name) {
			return false
		}
		if p.consume(',') {
			continue
		}
		return p.consume('}')
	}
}

// eventField parses the value of one field of an event object into e.
func (p *fastParser) eventField(name []byte, e *NewEvent, seen *fieldSet) bool {
	var bit fieldSet
	var ok bool
	switch string(name) {
	case "type":
		bit = fieldType
		e.Type, ok = p.stringValue()
	case "data":
		bit = fieldData
		start := p.i
		if ok = p.value(); ok {
			e.Data = json.RawMessage(p.b[start:p.i:p.i])
		}
	case "key":
		bit = fieldKey
		e.Key, ok = p.stringValue()
	case "idempotency_key":
		bit = fieldIdempotencyKey
		e.IdempotencyKey, ok = p.stringValue()
	case "meta":
		bit = fieldMeta
		e.Meta, ok = p.meta()
	default:
		return false // unknown, or a name encoding/json would match ignoring case
	}
	if !ok || *seen&bit != 0 {
		return false
	}
	*seen |= bit
	return true
}

// eventArray parses the "events" array: objects with event fields only.
func (p *fastParser) eventArray() ([]NewEvent, bool) {
	if !p.consume('[') {
		return nil, false // null, or not an array
	}
	events := make([]NewEvent, 0, 16)
	if p.consume(']') {
		return events, true
	}
	for {
		if !p.consume('{') {
			return nil, false
		}
		var e NewEvent
		var seen fieldSet
		if !p.object(func(name []byte) bool { return p.eventField(name, &e, &seen) }) {
			return nil, false
		}
		events = append(events, e)
		if len(events) > maxBatchEvents {
			return nil, false
		}
		if p.consume(',') {
			continue
		}
		return events, p.consume(']')
	}
}

// meta parses an object of plain strings.
func (p *fastParser) meta() (map[string]string, bool) {
	if !p.consume('{') {
		return nil, false // null, or not an object
	}
	m := map[string]string{}
	ok := p.object(func(name []byte) bool {
		if _, dup := m[string(name)]; dup {
			return false
		}
		v, ok := p.stringValue()
		m[string(name)] = v
		return ok
	})
	return m, ok
}

// stringValue parses a plain string value (not null).
func (p *fastParser) stringValue() (string, bool) {
	s, ok := p.plainString()
	return string(s), ok
}

// plainString parses a string without escapes whose bytes are valid UTF-8
// (encoding/json would replace invalid bytes), returning its contents.
func (p *fastParser) plainString() ([]byte, bool) {
	if p.i >= len(p.b) || p.b[p.i] != '"' {
		return nil, false
	}
	start := p.i + 1
	ascii := true
	for i := start; i < len(p.b); i++ {
		c := p.b[i]
		switch {
		case c == '"':
			p.i = i + 1
			s := p.b[start:i]
			if !ascii && !utf8.Valid(s) {
				return nil, false
			}
			return s, true
		case c == '\\' || c < 0x20:
			return nil, false
		case c >= 0x80:
			ascii = false
		}
	}
	return nil, false
}

// value skips one JSON value, checking its syntax as encoding/json does.
func (p *fastParser) value() bool {
	if p.i >= len(p.b) {
		return false
	}
	switch c := p.b[p.i]; {
	case c == '{':
		p.i++
		if !p.enter() {
			return false
		}
		ok := p.object(func([]byte) bool { p.space(); return p.value() })
		p.depth--
		return ok
	case c == '[':
		p.i++
		if !p.enter() {
			return false
		}
		defer func() { p.depth-- }()
		if p.consume(']') {
			return true
		}
		for {
			p.space()
			if !p.value() {
				return false
			}
			if p.consume(',') {
				continue
			}
			return p.consume(']')
		}
	case c == '"':
		return p.anyString()
	case c == '-' || (c >= '0' && c <= '9'):
		return p.number()
	case c == 't':
		return p.literal("true")
	case c == 'f':
		return p.literal("false")
	case c == 'n':
		return p.literal("null")
	}
	return false
}

func (p *fastParser) enter() bool {
	p.depth++
	return p.depth <= maxFastDepth
}

func (p *fastParser) literal(lit string) bool {
	if len(p.b)-p.i >= len(lit) && string(p.b[p.i:p.i+len(lit)]) == lit {
		p.i += len(lit)
		return true
	}
	return false
}

// anyString skips a string, escapes included.
func (p *fastParser) anyString() bool {
	for i := p.i + 1; i < len(p.b); i++ {
		switch c := p.b[i]; {
		case c == '"':
			p.i = i + 1
			return true
		case c < 0x20:
			return false
		case c == '\\':
			i++
			if i >= len(p.b) {
				return false
			}
			switch p.b[i] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
			case 'u':
				if i+4 >= len(p.b) {
					return false
				}
				for _, h := range p.b[i+1 : i+5] {
					if !isHex(h) {
						return false
					}
				}
				i += 4
			default:
				return false
			}
		}
	}
	return false
}

func isHex(c byte) bool {
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')
}

// number skips a number: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
func (p *fastParser) number() bool {
	b, i := p.b, p.i
	if i < len(b) && b[i] == '-' {
		i++
	}
	switch {
	case i < len(b) && b[i] == '0':
		i++
	case i < len(b) && b[i] >= '1' && b[i] <= '9':
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
	default:
		return false
	}
	if i < len(b) && b[i] == '.' {
		i++
		if i >= len(b) || b[i] < '0' || b[i] > '9' {
			return false
		}
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		if i >= len(b) || b[i] < '0' || b[i] > '9' {
			return false
		}
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
	}
	p.i = i
	return true
}
