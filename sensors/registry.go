package sensors

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/rs/zerolog"

	"github.com/emberwatch/emberwatch"
)

// ErrUnknownType is returned by New and Config.Validate for a source type that
// no driver registered.
var ErrUnknownType = errors.New("sensors: unknown source type")

// Source produces readings.
type Source interface {
	// Run sends readings to out until ctx is cancelled or the source has no
	// more, then returns. A cancelled context is not an error: Run returns nil.
	Run(ctx context.Context, out chan<- emberwatch.Reading) error
}

// Opener is a source that acquires its device or file before Run. The
// agent opens every source of a new config before it switches to it, so a
// sensor that cannot be opened leaves the running config in place. Close
// releases what Open acquired if Run is then never called; Run releases it
// otherwise.
type Opener interface {
	Open() error
	Close() error
}

// Constructor builds a source from its config. It must not start goroutines
// or touch hardware that Run does not need yet.
type Constructor func(cfg Config, log zerolog.Logger) (Source, error)

// Validator checks the driver-specific part of a config. Field paths in its
// errors are relative to the source, e.g. "event.at".
type Validator func(cfg Config) error

type driver struct {
	build    Constructor
	validate Validator
}

var registry = map[string]driver{}

// Register makes a driver available under typ. It is meant to be called from
// init functions and panics on a duplicate name, which is a programming error.
func Register(typ string, build Constructor, validate Validator) {
	if _, dup := registry[typ]; dup {
		panic("sensors: driver registered twice: " + typ)
	}
	registry[typ] = driver{build: build, validate: validate}
}

// Types lists the registered source types, sorted.
func Types() []string {
	names := make([]string, 0, len(registry))
	for n := range registry {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// New builds the source that cfg describes. cfg must have passed Validate.
func New(cfg Config, log zerolog.Logger) (Source, error) {
	d, ok := registry[cfg.Type]
	if !ok {
		return nil, unknownType(cfg.Type)
	}
	return d.build(cfg, log.With().Str("source", cfg.Name).Logger())
}

func unknownType(typ string) error {
	return fmt.Errorf("%w %q (known: %s)", ErrUnknownType, typ, strings.Join(Types(), ", "))
}

// Config describes one source. Fields that only some drivers use are ignored
// by the others; each driver's Validator says which it needs.
type Config struct {
	// Name identifies the source in logs; defaults to its type.
	Name string `yaml:"name"`
	// Type selects the driver, e.g. "simulator".
	Type string `yaml:"type"`
	// Interval is the time between readings (event time).
	Interval time.Duration `yaml:"interval"`
	// Simulator configures the "simulator" driver.
	Simulator SimulatorConfig `yaml:"simulator"`
	// CSV configures the "csv" driver, which replays a recording.
	CSV CSVConfig `yaml:"csv"`
}

// Simulated reports whether the source runs on a clock of its own (the
// simulator, a replayed recording) rather than the wall clock: its readings'
// timestamps are then their arrival times too.
func (c *Config) Simulated() bool { return c.Type == "simulator" || c.Type == "csv" }

// Normalize fills defaults that depend on other fields.
func (c *Config) Normalize() {
	if c.Name == "" {
		c.Name = c.Type
	}
	if c.Interval == 0 {
		c.Interval = 10 * time.Second
	}
}

// Validate checks the config; errors name the field relative to the source.
func (c *Config) Validate() error {
	if c.Type == "" {
		return fmt.Errorf("type: required (known: %s)", strings.Join(Types(), ", "))
	}
	d, ok := registry[c.Type]
	if !ok {
		return fmt.Errorf("type: %w", unknownType(c.Type))
	}
	if c.Interval <= 0 {
		return fmt.Errorf("interval: must be > 0, got %s", c.Interval)
	}
	if d.validate != nil {
		return d.validate(*c)
	}
	return nil
}

// pacer paces a source whose readings carry a simulated clock: reading at
// simulated offset elapsed is due at start + elapsed/speed of wall time.
type pacer struct {
	start time.Time
	speed float64
	now   func() time.Time
	timer *time.Timer
}

// wait blocks until elapsed is due, and reports false if ctx ended first.
// A speed of 0 or less never waits.
func (p *pacer) wait(ctx context.Context, elapsed time.Duration) bool {
	if p.speed <= 0 {
		return ctx.Err() == nil
	}
	d := p.start.Add(time.Duration(float64(elapsed) / p.speed)).Sub(p.now())
	if d <= 0 {
		return true
	}
	if p.timer == nil {
		p.timer = time.NewTimer(d)
	} else {
		p.timer.Reset(d)
	}
	select {
	case <-ctx.Done():
		return false
	case <-p.timer.C:
		return true
	}
}

// stop releases the timer.
func (p *pacer) stop() {
	if p.timer != nil {
		p.timer.Stop()
	}
}
