package windowing

import (
	"fmt"
	"path"
	"slices"
	"strings"
	"time"

	"github.com/emberwatch/emberwatch"
)

// Window kinds.
const (
	KindSliding  = "sliding"  // size and hop; a tumbling window when hop = size
	KindTumbling = "tumbling" // size; hop is size
	KindCount    = "count"    // the last Count readings, every Every readings
	KindSession  = "session"  // readings no more than Gap apart
)

// Late policies.
const (
	LateDrop   = "drop"   // count the reading and drop it
	LateUpdate = "update" // fold it in and emit corrected windows marked Update
)

// Time modes.
const (
	TimeEvent      = "event"      // the reading's own timestamp
	TimeProcessing = "processing" // the time it arrived, for sensors with bad clocks
)

// Aggregates lists every aggregate name a window can compute, besides the
// quantiles "pNN".
var Aggregates = []string{"count", "sum", "mean", "min", "max", "variance", "stddev",
	"first", "last", "delta", "rate", "ewma", "median", "mad"}

// defaultAggregates are the O(1) ones: what a window computes when the
// config names none.
var defaultAggregates = []string{"count", "sum", "mean", "min", "max", "variance", "stddev",
	"first", "last", "delta", "rate"}

// Config is one window spec.
type Config struct {
	// Series is a series name or a path.Match pattern ("*" in a pattern
	// stops at a "/"); "*" alone, the default, matches every series.
	Series string `yaml:"series"`
	// Kind is sliding (default), tumbling, count or session.
	Kind string `yaml:"kind"`
	// Size is the window length in event time (sliding, tumbling).
	Size time.Duration `yaml:"size"`
	// Hop is how far consecutive windows are apart; it defaults to Size
	// (tumbling windows) and must divide Size.
	Hop time.Duration `yaml:"hop"`
	// Count is the number of readings in a count window; Every (default
	// Count) is how many new readings make it emit, and must divide Count.
	Count int `yaml:"count"`
	Every int `yaml:"every"`
	// Gap ends a session window: the session closes once no reading has
	// come for Gap of event time.
	Gap time.Duration `yaml:"gap"`
	// Lateness is how far out of order a reading may arrive and still be
	// counted in its window. Default 0: readings must arrive in order.
	Lateness time.Duration `yaml:"lateness"`
	// LatePolicy is what happens to a reading later than that: drop
	// (default; counted) or update (folded in, and every window it belongs
	// to that is still held is emitted again, marked as an update).
	LatePolicy string `yaml:"late_policy"`
	// IdleTimeout closes the windows of a series that has had no reading
	// for this long (processing time), as if its event time had kept
	// pace with the clock. 0 (default) waits forever.
	IdleTimeout time.Duration `yaml:"idle_timeout"`
	// Time is event (default) or processing.
	Time string `yaml:"time"`
	// MaxFuture rejects readings stamped further than this ahead of their
	// arrival: a sensor clock gone wrong. Default 24h.
	MaxFuture time.Duration `yaml:"max_future"`
	// Aggregates names what each window computes; default every O(1)
	// aggregate (count sum mean min max variance stddev first last delta
	// rate). Add ewma, median, mad or quantiles "p50", "p99.9" as needed.
	Aggregates []string `yaml:"aggregates"`
	// HalfLife is the EWMA's half-life; default a quarter of the window.
	HalfLife time.Duration `yaml:"half_life"`
	// MaxPoints caps the readings one series holds (its open and current
	// windows); past it, readings are rejected and counted. Default 10000.
	MaxPoints int `yaml:"max_points"`
}

// Normalize fills defaults.
func (c *Config) Normalize() {
	if c.Series == "" {
		c.Series = "*"
	}
	if c.Kind == "" {
		c.Kind = KindSliding
	}
	if c.Kind == KindTumbling || c.Hop == 0 {
		c.Hop = c.Size
	}
	if c.Every == 0 {
		c.Every = c.Count
	}
	if c.LatePolicy == "" {
		c.LatePolicy = LateDrop
	}
	if c.Time == "" {
		c.Time = TimeEvent
	}
	if c.MaxFuture == 0 {
		c.MaxFuture = 24 * time.Hour
	}
	if len(c.Aggregates) == 0 {
		c.Aggregates = slices.Clone(defaultAggregates)
	}
	if c.HalfLife == 0 {
		switch c.Kind {
		case KindSession:
			c.HalfLife = c.Gap
		case KindCount:
			c.HalfLife = time.Minute
		default:
			c.HalfLife = c.Size / 4
		}
	}
	if c.MaxPoints == 0 {
		c.MaxPoints = max(10_000, c.Count)
	}
}

// Validate checks the spec; errors name the field relative to the spec.
func (c *Config) Validate() error {
	if _, err := path.Match(c.Series, ""); err != nil {
		return fmt.Errorf("series: bad pattern %q: %v", c.Series, err)
	}
	switch c.Kind {
	case KindSliding, KindTumbling:
		if c.Size <= 0 {
			return fmt.Errorf("size: must be > 0, got %s", c.Size)
		}
		if c.Hop <= 0 {
			return fmt.Errorf("hop: must be > 0, got %s", c.Hop)
		}
		if c.Hop > c.Size {
			return fmt.Errorf("hop: must not exceed size (%s), got %s", c.Size, c.Hop)
		}
		if c.Size%c.Hop != 0 {
			return fmt.Errorf("hop: must divide size (%s) evenly, got %s", c.Size, c.Hop)
		}
	case KindCount:
		if c.Count < 1 {
			return fmt.Errorf("count: must be >= 1, got %d", c.Count)
		}
		if c.Every < 1 || c.Every > c.Count || c.Count%c.Every != 0 {
			return fmt.Errorf("every: must divide count (%d), got %d", c.Count, c.Every)
		}
	case KindSession:
		if c.Gap <= 0 {
			return fmt.Errorf("gap: must be > 0, got %s", c.Gap)
		}
	default:
		return fmt.Errorf("kind: unknown window kind %q (known: count, session, sliding, tumbling)", c.Kind)
	}
	if c.Lateness < 0 {
		return fmt.Errorf("lateness: must be >= 0, got %s", c.Lateness)
	}
	if c.LatePolicy != LateDrop && c.LatePolicy != LateUpdate {
		return fmt.Errorf("late_policy: must be drop or update, got %q", c.LatePolicy)
	}
	if c.IdleTimeout < 0 {
		return fmt.Errorf("idle_timeout: must be >= 0, got %s", c.IdleTimeout)
	}
	if c.Time != TimeEvent && c.Time != TimeProcessing {
		return fmt.Errorf("time: must be event or processing, got %q", c.Time)
	}
	if c.MaxFuture <= 0 {
		return fmt.Errorf("max_future: must be > 0, got %s", c.MaxFuture)
	}
	if c.HalfLife <= 0 {
		return fmt.Errorf("half_life: must be > 0, got %s", c.HalfLife)
	}
	if c.MaxPoints < 1 {
		return fmt.Errorf("max_points: must be >= 1, got %d", c.MaxPoints)
	}
	if c.Kind == KindCount && c.MaxPoints < c.Count {
		return fmt.Errorf("max_points: must be >= count (%d), got %d", c.Count, c.MaxPoints)
	}
	nq := 0
	seen := map[string]bool{}
	for i, a := range c.Aggregates {
		if seen[a] {
			return fmt.Errorf("aggregates[%d]: %q listed twice", i, a)
		}
		seen[a] = true
		if _, ok := emberwatch.ParseQuantile(a); ok {
			nq++
			continue
		}
		if !slices.Contains(Aggregates, a) {
			return fmt.Errorf("aggregates[%d]: unknown aggregate %q (known: %s, or a quantile such as p90)", i, a, strings.Join(Aggregates, ", "))
		}
	}
	if nq > emberwatch.MaxQuantiles {
		return fmt.Errorf("aggregates: at most %d quantiles, got %d", emberwatch.MaxQuantiles, nq)
	}
	return nil
}

func (c *Config) matches(series string) bool {
	if c.Series == "*" {
		return true // every series, even names with a "/"
	}
	ok, _ := path.Match(c.Series, series)
	return ok
}
