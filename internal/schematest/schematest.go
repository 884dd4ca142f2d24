// Package schematest checks messages against the JSON Schemas (draft
// 2020-12) in the repository's schemas/ folder, so that any test that sees
// what the agent publishes can hold it to the documented format.
//
// The schemas are read from the module root's schemas/ folder, found by
// walking up from the working directory (a package's folder under go test)
// to go.mod, and compiled once per test binary with format assertions on:
// "format": "date-time" is checked, not just an annotation.
package schematest

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

// Kind is a message kind; its schema is schemas/<kind>.json.
type Kind string

// The message kinds, one per topic.
const (
	Alert          Kind = "alert"           // <prefix>/<device>/alerts
	Summary        Kind = "summary"         // <prefix>/<device>/summaries
	Status         Kind = "status"          // <prefix>/<device>/status, retained
	ConfigAck      Kind = "config-ack"      // <prefix>/<device>/config/ack, retained
	ConfigEnvelope Kind = "config-envelope" // <prefix>/<device>/config, retained, down
)

// Kinds lists every message kind, in the order of the design's topic table.
var Kinds = []Kind{Alert, Summary, Status, ConfigAck, ConfigEnvelope}

// BaseID is what every schema's $id starts with.
const BaseID = "https://emberwatch.dev/schemas/v1/"

// File is the schema's file name in schemas/.
func (k Kind) File() string { return string(k) + ".json" }

// ID is the schema's $id.
func (k Kind) ID() string { return BaseID + k.File() }

// KindOf returns the kind of message published on topic, by the topic's
// last levels (alerts, summaries, status, config/ack, config); it reports
// false for any other topic.
func KindOf(topic string) (Kind, bool) {
	switch {
	case strings.HasSuffix(topic, "/config/ack"):
		return ConfigAck, true
	case strings.HasSuffix(topic, "/alerts"):
		return Alert, true
	case strings.HasSuffix(topic, "/summaries"):
		return Summary, true
	case strings.HasSuffix(topic, "/status"):
		return Status, true
	case strings.HasSuffix(topic, "/config"):
		return ConfigEnvelope, true
	}
	return "", false
}

// Dir returns the schemas/ folder of the module that holds the working
// directory.
func Dir() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return filepath.Join(dir, "schemas"), nil
		}
		up := filepath.Dir(dir)
		if up == dir {
			return "", errors.New("schematest: no go.mod above the working directory")
		}
		dir = up
	}
}

// Compile reads and compiles the schema of every kind from dir. Each file
// must be valid against the draft 2020-12 metaschema and carry its kind's
// $id; formats are asserted.
func Compile(dir string) (map[Kind]*jsonschema.Schema, error) {
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft2020)
	c.AssertFormat()
	for _, k := range Kinds {
		b, err := os.ReadFile(filepath.Join(dir, k.File()))
		if err != nil {
			return nil, fmt.Errorf("schematest: %w", err)
		}
		doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
		if err != nil {
			return nil, fmt.Errorf("schematest: %s: %w", k.File(), err)
		}
		obj, _ := doc.(map[string]any)
		if id, _ := obj["$id"].(string); id != k.ID() {
			return nil, fmt.Errorf("schematest: %s: $id is %q, want %q", k.File(), id, k.ID())
		}
		// Registered under its $id, so compiling never fetches anything.
		if err := c.AddResource(k.ID(), doc); err != nil {
			return nil, fmt.Errorf("schematest: %s: %w", k.File(), err)
		}
	}
	out := make(map[Kind]*jsonschema.Schema, len(Kinds))
	for _, k := range Kinds {
		s, err := c.Compile(k.ID())
		if err != nil {
			return nil, fmt.Errorf("schematest: compile %s: %w", k.File(), err)
		}
		out[k] = s
	}
	return out, nil
}

// compiled is the repository's schemas, compiled on first use.
var compiled = sync.OnceValues(func() (map[Kind]*jsonschema.Schema, error) {
	dir, err := Dir()
	if err != nil {
		return nil, err
	}
	return Compile(dir)
})

// Check validates payload, one JSON document, against kind's schema. It
// returns nil when the payload is valid; the error of an invalid payload
// lists every violation with its location. Check is safe for concurrent
// use.
func Check(kind Kind, payload []byte) error {
	schemas, err := compiled()
	if err != nil {
		return err
	}
	s, ok := schemas[kind]
	if !ok {
		return fmt.Errorf("schematest: unknown message kind %q", kind)
	}
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(payload))
	if err != nil {
		return fmt.Errorf("not JSON: %w", err)
	}
	return s.Validate(doc)
}

// Validate fails the test (without stopping it) when payload does not
// match kind's schema, quoting the payload and every violation.
func Validate(t testing.TB, kind Kind, payload []byte) {
	t.Helper()
	if err := Check(kind, payload); err != nil {
		t.Errorf("%s message does not match schemas/%s: %v\npayload: %s", kind, kind.File(), err, payload)
	}
}
