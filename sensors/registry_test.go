package sensors_test

import (
	"errors"
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/emberwatch/emberwatch/sensors"
)

// testLogger routes log lines to t.Log.
func testLogger(t testing.TB) zerolog.Logger {
	return zerolog.New(zerolog.NewTestWriter(t))
}

func TestTypes(t *testing.T) {
	types := sensors.Types()
	if !slices.Contains(types, "simulator") {
		t.Errorf("Types() = %v, want it to list simulator", types)
	}
	if !slices.IsSorted(types) {
		t.Errorf("Types() = %v, not sorted", types)
	}
	if len(slices.Compact(slices.Clone(types))) != len(types) {
		t.Errorf("Types() = %v has duplicates", types)
	}
}

func TestNewUnknownType(t *testing.T) {
	src, err := sensors.New(sensors.Config{Name: "x", Type: "bme280-typo", Interval: time.Second}, testLogger(t))
	if err == nil {
		t.Fatalf("New with an unknown type returned %T and no error", src)
	}
	if !errors.Is(err, sensors.ErrUnknownType) {
		t.Errorf("error %v does not wrap ErrUnknownType", err)
	}
	msg := err.Error()
	if !strings.Contains(msg, `"bme280-typo"`) {
		t.Errorf("error %q does not name the type asked for", msg)
	}
	for _, known := range sensors.Types() {
		if !strings.Contains(msg, known) {
			t.Errorf("error %q does not list the known type %q", msg, known)
		}
	}
}

func TestNewSimulator(t *testing.T) {
	cfg := sensors.Config{Type: "simulator", Interval: 10 * time.Second,
		Simulator: sensors.SimulatorConfig{Start: start, Seed: 3}}
	cfg.Normalize()
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	src, err := sensors.New(cfg, testLogger(t))
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	sim, ok := src.(*sensors.Simulator)
	if !ok {
		t.Fatalf("New(simulator) returned %T, want *Simulator", src)
	}
	// It is the same source NewSimulator builds from the same settings.
	want := collect(t, sensors.NewSimulator(cfg.Simulator, cfg.Interval, testLogger(t)), 30)
	got := collect(t, sim, 30)
	if !slices.Equal(got, want) {
		t.Errorf("New and NewSimulator with the same config differ:\n%v\n%v", got, want)
	}
}

func TestRegisterTwicePanics(t *testing.T) {
	before := sensors.Types()
	defer func() {
		r := recover()
		if r == nil {
			t.Fatal("registering simulator a second time did not panic")
		}
		if !strings.Contains(r.(string), "simulator") {
			t.Errorf("panic %q does not name the driver", r)
		}
		if after := sensors.Types(); !slices.Equal(after, before) {
			t.Errorf("Types changed from %v to %v", before, after)
		}
	}()
	sensors.Register("simulator", func(sensors.Config, zerolog.Logger) (sensors.Source, error) { return nil, nil }, nil)
}

func TestConfigNormalize(t *testing.T) {
	c := sensors.Config{Type: "simulator"}
	c.Normalize()
	if c.Name != "simulator" || c.Interval != 10*time.Second {
		t.Errorf("Normalize: Name %q, Interval %s; want simulator, 10s", c.Name, c.Interval)
	}
	c = sensors.Config{Name: "roof", Type: "simulator", Interval: time.Minute}
	c.Normalize()
	if c.Name != "roof" || c.Interval != time.Minute {
		t.Errorf("Normalize overwrote set fields: Name %q, Interval %s", c.Name, c.Interval)
	}
}

func TestConfigValidate(t *testing.T) {
	valid := func() sensors.Config {
		return sensors.Config{Name: "s", Type: "simulator", Interval: 10 * time.Second}
	}
	if c := valid(); c.Validate() != nil {
		t.Fatalf("Validate of a valid config: %v", c.Validate())
	}
	ok := []struct {
		name string
		edit func(*sensors.Config)
	}{
		{"speed 0", func(c *sensors.Config) { c.Simulator.Speed = 0 }},
		{"speed 600", func(c *sensors.Config) { c.Simulator.Speed = 600 }},
		{"event staged", func(c *sensors.Config) {
			c.Simulator.Event = sensors.SimulatedEvent{At: time.Hour, Ramp: time.Minute, Duration: time.Minute, HumidityDrop: 0.5}
		}},
		{"humidity_drop 0 (default)", func(c *sensors.Config) { c.Simulator.Event.HumidityDrop = 0 }},
		{"humidity_drop 0.99", func(c *sensors.Config) { c.Simulator.Event.HumidityDrop = 0.99 }},
	}
	for _, tc := range ok {
		c := valid()
		tc.edit(&c)
		if err := c.Validate(); err != nil {
			t.Errorf("%s: Validate = %v, want nil", tc.name, err)
		}
	}

	bad := []struct {
		name  string
		edit  func(*sensors.Config)
		field string // the error starts with "<field>: "
	}{
		{"no type", func(c *sensors.Config) { c.Type = "" }, "type"},
		{"unknown type", func(c *sensors.Config) { c.Type = "nope" }, "type"},
		{"zero interval", func(c *sensors.Config) { c.Interval = 0 }, "interval"},
		{"negative interval", func(c *sensors.Config) { c.Interval = -time.Second }, "interval"},
		{"negative speed", func(c *sensors.Config) { c.Simulator.Speed = -1 }, "simulator.speed"},
		{"NaN speed", func(c *sensors.Config) { c.Simulator.Speed = math.NaN() }, "simulator.speed"},
		{"infinite speed", func(c *sensors.Config) { c.Simulator.Speed = math.Inf(1) }, "simulator.speed"},
		{"negative at", func(c *sensors.Config) { c.Simulator.Event.At = -time.Minute }, "simulator.event.at"},
		{"negative ramp", func(c *sensors.Config) { c.Simulator.Event.Ramp = -time.Minute }, "simulator.event.ramp"},
		{"negative duration", func(c *sensors.Config) { c.Simulator.Event.Duration = -time.Minute }, "simulator.event.duration"},
		{"humidity_drop 1", func(c *sensors.Config) { c.Simulator.Event.HumidityDrop = 1 }, "simulator.event.humidity_drop"},
		{"negative humidity_drop", func(c *sensors.Config) { c.Simulator.Event.HumidityDrop = -0.1 }, "simulator.event.humidity_drop"},
		// NaN compares false with everything, so "< 0 || >= 1" lets it through.
		{"NaN humidity_drop", func(c *sensors.Config) { c.Simulator.Event.HumidityDrop = math.NaN() }, "simulator.event.humidity_drop"},
		{"NaN temp_rise", func(c *sensors.Config) { c.Simulator.Event.TempRise = math.NaN() }, "simulator.event.temp_rise"},
		{"infinite smoke", func(c *sensors.Config) { c.Simulator.Event.Smoke = math.Inf(1) }, "simulator.event.smoke"},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			c := valid()
			tc.edit(&c)
			err := c.Validate()
			if err == nil {
				t.Fatalf("Validate accepted %+v; want an error naming %s", c, tc.field)
			}
			if !strings.HasPrefix(err.Error(), tc.field+": ") {
				t.Errorf("Validate = %q, want it to start with %q", err, tc.field+": ")
			}
		})
	}

	// An unknown type is an ErrUnknownType for Validate as for New.
	c := valid()
	c.Type = "nope"
	if err := c.Validate(); !errors.Is(err, sensors.ErrUnknownType) {
		t.Errorf("Validate with an unknown type = %v, want it to wrap ErrUnknownType", err)
	}
	c.Type = ""
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "simulator") {
		t.Errorf("Validate with no type = %v, want it to list the known types", err)
	}
}
