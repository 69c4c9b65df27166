package monster

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path"
	"reflect"
	"strings"
)

// validTypeName reports whether name is dotted words of letters, digits,
// '_' and '-' ("event_1", "user.bought_shirt", "shoestore.product-viewed"):
// `^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$`, checked by hand because every Log
// checks it (the regular expression cost 4% of Log's CPU time).
func validTypeName(name string) bool {
	word := 0 // bytes in the current word
	for i := 0; i < len(name); i++ {
		switch c := name[i]; {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '_', c == '-':
			word++
		case c == '.' && word > 0:
			word = 0
		default:
			return false
		}
	}
	return word > 0
}

const maxNameLength = 200

// checkTypeName returns an error wrapping ErrInvalidName if name is not a
// valid event type.
func checkTypeName(name string) error {
	if problem := typeNameProblem(name); problem != "" {
		return fmt.Errorf("%w: %s", ErrInvalidName, problem)
	}
	return nil
}

// typeNameProblem says what is wrong with an event type name, or "".
func typeNameProblem(name string) string {
	switch {
	case name == "":
		return "event type is empty"
	case len(name) > maxNameLength:
		return fmt.Sprintf("event type %.40q... is longer than %d bytes", name, maxNameLength)
	case !validTypeName(name):
		return fmt.Sprintf("event type %q: want dotted words of letters, digits, '_' or '-', such as \"user.bought_shirt\"", name)
	}
	return ""
}

// checkPattern validates a subscription pattern: an exact type, or a glob
// where '*' matches any run of characters ("user.*", "*").
func checkPattern(pattern string) error {
	if problem := patternProblem(pattern); problem != "" {
		return fmt.Errorf("%w: %s", ErrInvalidName, problem)
	}
	return nil
}

// patternProblem says what is wrong with a subscription pattern, or "", so
// that callers can name the pattern's owner after ErrInvalidName's text.
func patternProblem(pattern string) string {
	if pattern == "" {
		return "pattern is empty"
	}
	if _, err := path.Match(pattern, ""); err != nil || strings.ContainsAny(pattern, "/\\[]") {
		return fmt.Sprintf("pattern %q: use type names with '*' wildcards, such as \"user.*\"", pattern)
	}
	if !strings.ContainsAny(pattern, "*?") {
		return typeNameProblem(pattern)
	}
	return ""
}

// MatchType reports whether the event type typ matches a subscription
// pattern: an exact type name, or a glob where '*' matches any run of
// characters, dots included ("user.*", "*"). A malformed pattern matches
// nothing.
func MatchType(pattern, typ string) bool {
	return checkPattern(pattern) == nil && matchPattern(pattern, typ)
}

// matchPattern reports whether typ matches pattern. Type names contain no
// '/', so path.Match's '*' matches across dots: "user.*" matches
// "user.bought_shirt" and "user.profile.updated".
func matchPattern(pattern, typ string) bool {
	if pattern == "*" || pattern == typ {
		return true
	}
	ok, _ := path.Match(pattern, typ)
	return ok
}

// Type is a declared event type whose data is a T. Declare one with
// Declare; log with its Log method and consume with Handle.
type Type[T any] struct {
	m        *Monster
	name     string
	validate []func(T) error
	strict   bool // unknown fields are refused (Strict)
}

// DeclareOption configures a declared type.
type DeclareOption[T any] func(*Type[T])

// Validate adds a validation function run on every event of the type at
// Log time, however it is logged (typed, raw, batch or over HTTP). Return
// FieldError to name the offending field.
func Validate[T any](fn func(T) error) DeclareOption[T] {
	return func(t *Type[T]) { t.validate = append(t.validate, fn) }
}

// Strict makes the type refuse, at Log time, data with a field T does not
// have: {"quantitiy": 2} for a T whose field is "quantity" is rejected
// with a *ValidationError naming "quantitiy", and nothing is stored. It
// matters for data that is not a T already: JSON (json.RawMessage, as the
// daemon logs it), maps, other structs.
//
// Without it (the default), unknown fields are accepted and stored as
// given, like encoding/json decodes: a type's declaration is then not the
// bottleneck of a rolling upgrade, when producers already send a field the
// declaring process's T does not know yet, and no data is dropped. Choose
// Strict where a misspelt field is the likelier cause, for data typed by
// people or sent by other languages.
//
// Strict is checked when events are logged, never when they are handled:
// Handle decodes leniently, since the events in the log cannot change and a
// consumer that refused older ones could only dead-letter them.
// Field names match as encoding/json matches them (case-insensitively),
// and a nested unknown field is named by its own name. The daemon's
// equivalent is a JSON Schema with "additionalProperties": false (see
// docs/http-api.md).
func Strict[T any]() DeclareOption[T] {
	return func(t *Type[T]) { t.strict = true }
}

// Validator is implemented by data types that validate themselves; a
// declared type whose T implements it calls Validate on every event.
type Validator interface{ Validate() error }

// Declare declares the event type name with data of Go type T. Events of
// the type are decoded into T and validated when logged; bad data is
// rejected with a *ValidationError and nothing is stored. Fields T does not
// have are accepted and stored unless the type is declared Strict.
//
// Declare panics if name is not a valid type name or is already declared
// with another Go type: both are programming errors, found at start-up.
// Declaring the same name with the same T again returns a Type that shares
// the first one's validation plus its own options.
func Declare[T any](m *Monster, name string, opts ...DeclareOption[T]) *Type[T] {
	if err := checkTypeName(name); err != nil {
		panic(err)
	}
	t := &Type[T]{m: m, name: name}
	for _, opt := range opts {
		opt(t)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if prev, ok := m.declared[name]; ok {
		p, same := prev.(*Type[T])
		if !same {
			panic(fmt.Sprintf("monster: event type %q is already declared with data type %s", name, prev.goType()))
		}
		t.validate = append(append([]func(T) error{}, p.validate...), t.validate...)
		t.strict = t.strict || p.strict
	}
	m.declared[name] = t
	return t
}

// Name returns the type's name.
func (t *Type[T]) Name() string { return t.name }

// Log logs an event of this type; see Monster.Log.
func (t *Type[T]) Log(ctx context.Context, data T, opts ...LogOption) (Event[T], error) {
	raw, err := t.m.Log(ctx, t.name, data, opts...)
	if raw.ID == "" {
		return Event[T]{}, err
	}
	// In eager mode a handler's error comes with the stored event.
	return typedEvent(raw, data), err
}

func typedEvent[T any](raw RawEvent, data T) Event[T] {
	return Event[T]{
		ID: raw.ID, Type: raw.Type, Position: raw.Position, Time: raw.Time, Key: raw.Key,
		Data: data, Meta: raw.Meta, Attempt: raw.Attempt, raw: raw.Data,
	}
}

// declaredType is what Monster keeps of a Type[T] without knowing T.
type declaredType interface {
	// check validates data (a T, a *T, JSON, or anything that encodes to
	// JSON for a T) and returns its JSON encoding.
	check(data any) ([]byte, error)
	goType() reflect.Type
}

func (t *Type[T]) goType() reflect.Type { return reflect.TypeFor[T]() }

func (t *Type[T]) check(data any) ([]byte, error) {
	var value T
	var encoded []byte
	switch d := data.(type) {
	case T:
		value = d
	case *T:
		if d == nil {
			return nil, &ValidationError{Type: t.name, Err: errors.New("data is a nil pointer")}
		}
		value = *d
	default:
		var err error
		if encoded, err = encodeJSON(t.name, data); err != nil {
			return nil, err
		}
		if err := t.decode(encoded, &value); err != nil {
			return nil, decodeError(t.name, err)
		}
	}
	if v, ok := any(value).(Validator); ok {
		if err := v.Validate(); err != nil {
			return nil, validationError(t.name, err)
		}
	}
	for _, fn := range t.validate {
		if err := fn(value); err != nil {
			return nil, validationError(t.name, err)
		}
	}
	if encoded == nil {
		var err error
		if encoded, err = encodeJSON(t.name, value); err != nil {
			return nil, err
		}
	}
	return encoded, nil
}

// decode decodes data, refusing unknown fields when the type is strict.
func (t *Type[T]) decode(data []byte, value *T) error {
	if !t.strict {
		return json.Unmarshal(data, value)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(value); err != nil {
		// encoding/json has no type for this error: its text is the API.
		if name, ok := strings.CutPrefix(err.Error(), `json: unknown field "`); ok {
			return &unknownFieldError{field: strings.TrimSuffix(name, `"`), goType: reflect.TypeFor[T]()}
		}
		return err
	}
	return nil
}

// unknownFieldError is a field a Strict type's T does not have.
type unknownFieldError struct {
	field  string
	goType reflect.Type
}

func (e *unknownFieldError) Error() string {
	return fmt.Sprintf("unknown field %q: the type is strict; send only the fields of %s", e.field, e.goType)
}

func validationError(typ string, err error) error {
	var fe *fieldError
	if errors.As(err, &fe) {
		return &ValidationError{Type: typ, Field: fe.field, Err: errors.New(fe.message)}
	}
	var ve *ValidationError
	if errors.As(err, &ve) {
		return ve
	}
	return &ValidationError{Type: typ, Err: err}
}

// decodeError turns a JSON decoding error into a ValidationError naming the
// field where encoding/json says which.
func decodeError(typ string, err error) error {
	var ue *unknownFieldError
	if errors.As(err, &ue) {
		return &ValidationError{Type: typ, Field: ue.field,
			Err: fmt.Errorf("unknown field: the type is strict (monster.Strict); send only the fields of %s", ue.goType)}
	}
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		return &ValidationError{Type: typ, Field: te.Field,
			Err: fmt.Errorf("got JSON %s, want %s", te.Value, te.Type)}
	}
	return &ValidationError{Type: typ, Err: fmt.Errorf("data does not decode: %v", err)}
}

// encodeJSON encodes data, which may already be JSON (json.RawMessage).
func encodeJSON(typ string, data any) ([]byte, error) {
	if raw, ok := data.(json.RawMessage); ok {
		if !json.Valid(raw) {
			return nil, fmt.Errorf("%w: event %q: data is not valid JSON", ErrEncoding, typ)
		}
		return raw, nil
	}
	b, err := json.Marshal(data)
	if err != nil {
		return nil, fmt.Errorf("%w: event %q: %v", ErrEncoding, typ, err)
	}
	return b, nil
}
