package configs_test

import (
	"bytes"
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/emberwatch/emberwatch/configs"
)

// FuzzParse checks that Parse never panics, that a failure is a non-empty
// error and no config, and that a config it accepts still validates and
// survives being written out and parsed again unchanged.
//
//	go test -run='^$' -fuzz=FuzzParse$ -fuzztime=30s ./configs
func FuzzParse(f *testing.F) {
	examples, err := fs.Glob(configs.Examples, "*.yaml")
	if err != nil {
		f.Fatal(err)
	}
	for _, name := range examples {
		data, err := fs.ReadFile(configs.Examples, name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	invalid, err := filepath.Glob(filepath.Join("testdata", "invalid", "*.yaml"))
	if err != nil {
		f.Fatal(err)
	}
	for _, name := range invalid {
		data, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	for _, tc := range parseErrorCases {
		f.Add([]byte(tc.in))
	}
	for _, s := range []string{
		"device: d1\nsources:\n  - type: simulator\nwindows:\n  - &ten {size: 10m, hop: 1m}\n  - <<: *ten\n    series: smoke\n",
		"device: d1\nsources:\n  - tpye: simulator\n",
		minimal,
		"",
		"~",
		"[]",
		minimal + "---\ndevice: d2\n",
		"device: [d1\n",
		`{"device": "d1", "sources": [{"type": "simulator"}], "windows": [{"size": "1m"}]}`,
		"device: d1\nsources:\n  - type: simulator\nwindows:\n  - &w {size: 1m}\n  - *w\n",
		"device: d1\nsources:\n  - type: simulator\n    simulator: {start: 2026-07-15T06:00:00+02:00, seed: 18446744073709551615}\nwindows:\n  - size: 1m\n",
	} {
		f.Add([]byte(s))
	}

	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := configs.Parse(data)
		if err != nil {
			if c != nil {
				t.Errorf("Parse returned a config and the error %v", err)
			}
			if err.Error() == "" {
				t.Error("Parse returned an error with no text")
			}
			return
		}
		if c == nil {
			t.Fatal("Parse returned neither a config nor an error")
		}
		if err := c.Validate(); err != nil {
			t.Fatalf("Parse accepted a config that Validate rejects: %v\ninput: %q", err, data)
		}
		// Written out and read back, a parsed config is the same config.
		out, err := yaml.Marshal(c)
		if err != nil {
			t.Fatalf("marshal the parsed config: %v", err)
		}
		c2, err := configs.Parse(out)
		if err != nil {
			t.Fatalf("a parsed config, written out, does not parse again: %v\ninput: %q\nwritten:\n%s", err, data, out)
		}
		out2, err := yaml.Marshal(c2)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(out, out2) {
			t.Fatalf("parse → write → parse changed the config\ninput: %q\nfirst:\n%s\nsecond:\n%s", data, out, out2)
		}
	})
}
