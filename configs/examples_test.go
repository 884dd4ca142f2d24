package configs_test

import (
	"bytes"
	"fmt"
	"io/fs"
	"path/filepath"
	"slices"
	"testing"

	"github.com/emberwatch/emberwatch/configs"
)

// TestExamplesParse parses and validates every example config shipped in
// this folder.
func TestExamplesParse(t *testing.T) {
	names, err := fs.Glob(configs.Examples, "*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(names, configs.DemoFile) {
		t.Fatalf("embedded examples %v do not include %s", names, configs.DemoFile)
	}
	// Every .yaml file in the folder is embedded, so none escapes this test.
	onDisk, err := filepath.Glob("*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(onDisk, names) {
		t.Errorf("files on disk %v, embedded %v", onDisk, names)
	}
	for _, name := range names {
		t.Run(name, func(t *testing.T) {
			data, err := fs.ReadFile(configs.Examples, name)
			if err != nil {
				t.Fatal(err)
			}
			c, err := configs.Parse(data)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if err := c.Validate(); err != nil {
				t.Errorf("Validate after Parse: %v", err)
			}
			if c.Device == "" || len(c.Sources) == 0 || len(c.Windows) == 0 {
				t.Errorf("parsed to a near-empty config: %+v", c)
			}
		})
	}
}

func TestDemo(t *testing.T) {
	want, err := fs.ReadFile(configs.Examples, configs.DemoFile)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(configs.Demo(), want) {
		t.Error("Demo() is not the embedded demo.yaml")
	}
	c, err := configs.Parse(configs.Demo())
	if err != nil {
		t.Fatalf("Parse(Demo()): %v", err)
	}
	// The demo stages an event: the simulator has a seed and an event time.
	if s := c.Sources[0].Simulator; s.Event.At <= 0 || s.Speed <= 0 {
		t.Errorf("demo simulator = %+v; want a staged event and a speed-up", s)
	}
	if len(c.Rules) == 0 || len(c.Detectors) == 0 {
		t.Errorf("demo has %d rules and %d detectors; want some of each", len(c.Rules), len(c.Detectors))
	}
}

// ExampleParse shows the defaults a minimal config gets.
func ExampleParse() {
	c, err := configs.Parse([]byte(`
device: ridge-07
sources:
  - type: simulator
windows:
  - size: 10m
`))
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(c.Topics().Alerts)
	fmt.Println(c.Outbox.Path, c.Outbox.MaxRecords)
	fmt.Println(c.Sources[0].Name, c.Sources[0].Interval, c.Windows[0].Series, c.Windows[0].Hop)
	// Output:
	// emberwatch/ridge-07/alerts
	// data/outbox.db 1000000
	// simulator 10s * 10m0s
}

// ExampleParse_errors shows that every problem is reported, each under its
// field path.
func ExampleParse_errors() {
	_, err := configs.Parse([]byte(`
device: ridge-07
sources:
  - type: simulator
windws:
  - size: 10m
`))
	fmt.Println(err)
	_, err = configs.Parse([]byte(`
sources:
  - type: simulator
windows:
  - size: -10m
`))
	fmt.Println(err)
	// Output:
	// windws: line 5: unknown key "windws" (did you mean "windows"?)
	// device: required
	// windows[0].size: must be > 0, got -10m0s
}
