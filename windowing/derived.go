package windowing

import (
	"errors"
	"fmt"
	"math"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/emberwatch/emberwatch"
)

// Derived-series operations.
var derivedOps = []string{"difference", "product", "ratio", "sum"}

// DerivedConfig defines a series computed from two others, reading by
// reading, before windowing: e.g. the difference between an indoor and an
// outdoor temperature. The derived series is then windowed like any other.
type DerivedConfig struct {
	// Name is the new series' name.
	Name string `yaml:"name"`
	// Op is difference (of[0] − of[1]), sum, product or ratio (of[0] / of[1]).
	Op string `yaml:"op"`
	// Of names the two input series.
	Of []string `yaml:"of"`
	// Tolerance is how far apart in event time two readings may be and
	// still be paired. Default 0: only readings with equal timestamps.
	Tolerance time.Duration `yaml:"tolerance"`
}

// Validate checks the config; errors name the field relative to it.
func (c *DerivedConfig) Validate() error {
	switch {
	case c.Name == "":
		return errors.New("name: required")
	case !slices.Contains(derivedOps, c.Op):
		return fmt.Errorf("op: unknown operation %q (known: %s)", c.Op, strings.Join(derivedOps, ", "))
	case len(c.Of) != 2:
		return fmt.Errorf("of: want two series, got %d", len(c.Of))
	case c.Of[0] == c.Of[1] || c.Of[0] == "" || c.Of[1] == "":
		return fmt.Errorf("of: want two different series, got %q", c.Of)
	case c.Name == c.Of[0] || c.Name == c.Of[1]:
		return fmt.Errorf("name: %q is also an input", c.Name)
	case c.Tolerance < 0:
		return fmt.Errorf("tolerance: must be >= 0, got %s", c.Tolerance)
	}
	return nil
}

// Deriver computes derived series. Like the Windower it is clock-free and
// belongs to one goroutine.
type Deriver struct {
	defs   []derived
	inputs map[string][]int // series → indexes of the defs it feeds
}

type derived struct {
	cfg      DerivedConfig
	latest   [2]emberwatch.Reading
	have     [2]bool
	lastEmit time.Time
}

// NewDeriver returns a Deriver for valid configs.
func NewDeriver(cfgs []DerivedConfig) *Deriver {
	d := &Deriver{inputs: map[string][]int{}}
	for i, c := range cfgs {
		d.defs = append(d.defs, derived{cfg: c})
		for _, in := range c.Of {
			d.inputs[in] = append(d.inputs[in], i)
		}
	}
	return d
}

// Reconfigure replaces the definitions; one that is unchanged keeps the
// readings it is waiting to pair.
func (d *Deriver) Reconfigure(cfgs []DerivedConfig) {
	nd := NewDeriver(cfgs)
	for i := range nd.defs {
		for _, old := range d.defs {
			if reflect.DeepEqual(old.cfg, nd.defs[i].cfg) {
				nd.defs[i] = old
				break
			}
		}
	}
	*d = *nd
}

// Add notes r and appends to dst every derived reading it completes: when
// both inputs have a reading within Tolerance of each other and the pair is
// newer than the last one used. The derived reading's time is the later of
// the two. A result that is not finite (a ratio by zero) is not emitted.
func (d *Deriver) Add(r emberwatch.Reading, dst []emberwatch.Reading) []emberwatch.Reading {
	for _, i := range d.inputs[r.Series] {
		def := &d.defs[i]
		side := 0
		if def.cfg.Of[1] == r.Series {
			side = 1
		}
		if def.have[side] && r.Time.Before(def.latest[side].Time) {
			continue // an older reading: it pairs with nothing newer
		}
		def.latest[side], def.have[side] = r, true
		if !def.have[1-side] {
			continue
		}
		a, b := def.latest[0], def.latest[1]
		gap := a.Time.Sub(b.Time)
		if gap < 0 {
			gap = -gap
		}
		t := a.Time
		if b.Time.After(t) {
			t = b.Time
		}
		if gap > def.cfg.Tolerance || !t.After(def.lastEmit) {
			continue
		}
		var v float64
		switch def.cfg.Op {
		case "difference":
			v = a.Value - b.Value
		case "sum":
			v = a.Value + b.Value
		case "product":
			v = a.Value * b.Value
		case "ratio":
			v = a.Value / b.Value
		}
		if math.IsNaN(v) || math.IsInf(v, 0) {
			continue
		}
		def.lastEmit = t
		dst = append(dst, emberwatch.Reading{Series: def.cfg.Name, Time: t, Value: v})
	}
	return dst
}
