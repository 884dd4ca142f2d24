package configs

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

var (
	durationType = reflect.TypeFor[time.Duration]()
	timeType     = reflect.TypeFor[time.Time]()
)

// decodeStrict decodes YAML (or JSON, which is YAML) into out. Before the
// decode proper it walks the document against out's type, so that every
// unknown key and ill-typed value is reported with its field path rather than
// as yaml's "line 7: cannot unmarshal".
func decodeStrict(data []byte, out any) error {
	var doc yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil // an empty document: every default
		}
		return fmt.Errorf("config is not valid YAML: %w", err)
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return errors.New("config holds more than one YAML document")
	}
	root := &doc
	if root.Kind == yaml.DocumentNode && len(root.Content) == 1 {
		root = root.Content[0]
	}
	var errs []error
	check(root, reflect.TypeOf(out).Elem(), "", &errs)
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	// The walk found nothing; KnownFields stays on in case it missed a case.
	dec = yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(out); err != nil {
		return fmt.Errorf("config: %w", err)
	}
	return nil
}

func check(n *yaml.Node, t reflect.Type, path string, errs *[]error) {
	if n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
		return
	}
	fail := func(format string, args ...any) {
		p := path
		if p == "" {
			p = "(top level)"
		}
		*errs = append(*errs, &FieldError{Path: p, Err: fmt.Errorf("line %d: "+format, append([]any{n.Line}, args...)...)})
	}
	switch {
	case t.Kind() == reflect.Pointer:
		check(n, t.Elem(), path, errs)
	case t.Kind() == reflect.Struct && t != timeType:
		if n.Kind != yaml.MappingNode {
			fail("want a mapping of keys to values, got %s", describe(n))
			return
		}
		fields := yamlFields(t)
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			if k.Tag == "!!merge" {
				// "<<: *defaults" merges a mapping (or a list of them)
				// into this one: check it as this type.
				if v.Kind == yaml.AliasNode {
					v = v.Alias
				}
				if v.Kind == yaml.SequenceNode {
					for _, m := range v.Content {
						check(m, t, path, errs)
					}
				} else {
					check(v, t, path, errs)
				}
				continue
			}
			f, ok := fields[k.Value]
			kp := join(path, k.Value)
			if !ok {
				msg := fmt.Errorf("line %d: unknown key %q%s", k.Line, k.Value, suggest(k.Value, fields))
				*errs = append(*errs, &FieldError{Path: kp, Err: msg})
				continue
			}
			check(v, f.Type, kp, errs)
		}
	case t.Kind() == reflect.Slice && t.Elem().Kind() != reflect.Uint8:
		if n.Kind != yaml.SequenceNode {
			fail("want a list, got %s", describe(n))
			return
		}
		for i, e := range n.Content {
			check(e, t.Elem(), fmt.Sprintf("%s[%d]", path, i), errs)
		}
	default:
		if n.Kind != yaml.ScalarNode {
			fail("want %s, got %s", want(t), describe(n))
			return
		}
		if err := n.Decode(reflect.New(t).Interface()); err != nil {
			fail("want %s, got %q", want(t), n.Value)
		}
	}
}

// yamlFields maps the yaml keys of t's fields to the fields.
func yamlFields(t reflect.Type) map[string]reflect.StructField {
	m := map[string]reflect.StructField{}
	for f := range t.Fields() {
		if !f.IsExported() {
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if name == "-" {
			continue
		}
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		m[name] = f
	}
	return m
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	}
	return fmt.Sprintf("%q", n.Value)
}

func want(t reflect.Type) string {
	switch {
	case t == durationType:
		return "a duration such as 10s, 5m or 1h30m"
	case t == timeType:
		return "a time in RFC 3339 form such as 2026-07-15T06:00:00Z"
	}
	switch t.Kind() {
	case reflect.Bool:
		return "true or false"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return "an integer"
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "a non-negative integer"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.String:
		return "a string"
	}
	return t.String()
}

// suggest returns ` (did you mean "x"?)` for the known key closest to k, if
// it is close enough to be a typo.
func suggest(k string, fields map[string]reflect.StructField) string {
	best, bestD := "", 3
	for name := range fields {
		if d := editDistance(k, name); d < bestD || d == bestD && name < best {
			best, bestD = name, d
		}
	}
	if best == "" || bestD > max(1, len(k)/3) {
		return ""
	}
	return fmt.Sprintf(" (did you mean %q?)", best)
}

// editDistance is the optimal string alignment distance: insertions,
// deletions, substitutions and swaps of two neighbouring letters ("tpye")
// each cost one.
func editDistance(a, b string) int {
	d := make([][]int, len(a)+1)
	for i := range d {
		d[i] = make([]int, len(b)+1)
		d[i][0] = i
	}
	for j := range d[0] {
		d[0][j] = j
	}
	for i := 1; i <= len(a); i++ {
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			d[i][j] = min(d[i-1][j]+1, d[i][j-1]+1, d[i-1][j-1]+cost)
			if i > 1 && j > 1 && a[i-1] == b[j-2] && a[i-2] == b[j-1] {
				d[i][j] = min(d[i][j], d[i-2][j-2]+1)
			}
		}
	}
	return d[len(a)][len(b)]
}
