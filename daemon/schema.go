package daemon

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/santhosh-tekuri/jsonschema/v6/kind"
	"golang.org/x/text/language"
	"golang.org/x/text/message"

	"github.com/gomonster/monster"
)

var schemaPrinter = message.NewPrinter(language.English)

// declareTypes declares the configured types in m, each validated by its
// JSON Schema, and returns their names. A declared type's data must also be
// valid JSON, which the library checks.
func declareTypes(m *monster.Monster, types map[string]TypeConfig) (map[string]bool, error) {
	names := make([]string, 0, len(types))
	for name := range types {
		names = append(names, name)
	}
	sort.Strings(names)
	declared := map[string]bool{}
	for _, name := range names {
		if !monster.MatchType(name, name) || strings.ContainsAny(name, "*?") {
			return nil, fmt.Errorf("monster: config: type %q: want dotted words of letters, digits, '_' or '-'", name)
		}
		var opts []monster.DeclareOption[json.RawMessage]
		if schema := types[name].Schema; len(schema) > 0 {
			sch, err := compileSchema(name, schema)
			if err != nil {
				return nil, err
			}
			opts = append(opts, monster.Validate(func(data json.RawMessage) error { return checkSchema(sch, data) }))
		}
		monster.Declare[json.RawMessage](m, name, opts...)
		declared[name] = true
	}
	return declared, nil
}

func compileSchema(typ string, schema json.RawMessage) (*jsonschema.Schema, error) {
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(schema))
	if err != nil {
		return nil, fmt.Errorf("monster: config: type %q: schema is not JSON: %v", typ, err)
	}
	c := jsonschema.NewCompiler()
	url := "monster:///types/" + typ + ".json"
	if err := c.AddResource(url, doc); err != nil {
		return nil, fmt.Errorf("monster: config: type %q: schema: %v", typ, err)
	}
	sch, err := c.Compile(url)
	if err != nil {
		return nil, fmt.Errorf("monster: config: type %q: schema: %v", typ, err)
	}
	return sch, nil
}

// checkSchema validates data and returns a monster.FieldError naming the
// first failing field.
func checkSchema(sch *jsonschema.Schema, data json.RawMessage) error {
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(data))
	if err != nil {
		return fmt.Errorf("data is not JSON: %v", err)
	}
	err = sch.Validate(inst)
	if err == nil {
		return nil
	}
	var ve *jsonschema.ValidationError
	if !errors.As(err, &ve) {
		return err
	}
	leaf := ve
	for len(leaf.Causes) > 0 {
		leaf = leaf.Causes[0]
	}
	path := append([]string{}, leaf.InstanceLocation...)
	switch k := leaf.ErrorKind.(type) {
	case *kind.Required:
		if len(k.Missing) > 0 {
			path = append(path, k.Missing[0])
		}
	case *kind.AdditionalProperties:
		if len(k.Properties) > 0 {
			path = append(path, k.Properties[0])
		}
	}
	msg := leaf.ErrorKind.LocalizedString(schemaPrinter)
	if len(path) == 0 {
		return fmt.Errorf("data: %s", msg)
	}
	return monster.FieldError(strings.Join(path, "."), msg)
}
